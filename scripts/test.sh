#!/usr/bin/env bash
# Runs every test of the project, end-to-end tests included, against a fresh local control plane.
#
#   scripts/test.sh [extra cargo test args...]     e.g. scripts/test.sh --test e2e_crds
#
# What it does (idempotent; safe to run in parallel — each run gets its own ports and temp dir):
#   1. installs what is missing: apt packages, kube-apiserver + etcd (KUBEBUILDER_ASSETS, built once into
#      ~/.cache by ../shared/tools/kube-control-plane/install.sh), helm (../shared/tools/install-helm.sh);
#   2. starts etcd + kube-apiserver on free loopback ports in a temp dir;
#   3. runs `cargo test --all-targets` with RPO_E2E_KUBECONFIG and HELM_BIN exported;
#   4. stops the control plane on exit, whatever happened.
# Environment: KUBEBUILDER_ASSETS (skip the install; setup-envtest's binaries work too), HELM_BIN,
# RPO_SHARED_DIR (where shared/tools lives), CARGO_TARGET_DIR (default ~/.cache/reteach-target),
# RPO_KEEP_CONTROL_PLANE=1 (leave the run dir for debugging; processes are still stopped).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/reteach-target}

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf '\nERROR: %s\n' "$*" >&2; exit 1; }

# shared/ sits beside the checkout; from a git worktree it sits beside the main checkout.
find_shared() {
  local candidates=("${RPO_SHARED_DIR:-}" "$REPO/../shared")
  local common
  if common=$(git -C "$REPO" rev-parse --path-format=absolute --git-common-dir 2>/dev/null); then
    candidates+=("$(dirname "$common")/../shared")
  fi
  for dir in "${candidates[@]}"; do
    if [ -n "$dir" ] && [ -x "$dir/tools/kube-control-plane/start.sh" ]; then
      (cd "$dir" && pwd); return 0
    fi
  done
  return 1
}

install_apt_packages() {
  local missing=()
  command -v curl >/dev/null || missing+=(curl)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v python3 >/dev/null || missing+=(python3 python3-pip)
  command -v git >/dev/null || missing+=(git)
  command -v cc >/dev/null || missing+=(build-essential)
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing apt packages: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

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
SHARED=$(find_shared || true)

if [ -z "${KUBEBUILDER_ASSETS:-}" ]; then
  [ -n "$SHARED" ] || die "no control plane: KUBEBUILDER_ASSETS is unset and shared/tools was not found beside the repository ($REPO/../shared); set RPO_SHARED_DIR or KUBEBUILDER_ASSETS (setup-envtest use 1.20+)"
  log "control plane binaries (cached in ~/.cache/kube-control-plane)"
  KUBEBUILDER_ASSETS=$("$SHARED/tools/kube-control-plane/install.sh" | tail -1)
fi
export KUBEBUILDER_ASSETS
[ -x "$KUBEBUILDER_ASSETS/kube-apiserver" ] && [ -x "$KUBEBUILDER_ASSETS/etcd" ] ||
  die "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS holds no kube-apiserver/etcd"

if [ -z "${HELM_BIN:-}" ]; then
  [ -n "$SHARED" ] || die "no helm: HELM_BIN is unset and shared/tools/install-helm.sh was not found; set HELM_BIN or RPO_SHARED_DIR"
  HELM_BIN=$("$SHARED/tools/install-helm.sh" | tail -1)
fi
export HELM_BIN
[ -x "$HELM_BIN" ] || die "HELM_BIN=$HELM_BIN is not executable"

# start.sh/stop.sh come from shared/: the assets alone do not say how to run them.
[ -n "$SHARED" ] || die "shared/tools/kube-control-plane/start.sh not found; set RPO_SHARED_DIR"
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/rpo-e2e.XXXXXX")
cleanup() {
  local rc=$?
  "$SHARED/tools/kube-control-plane/stop.sh" "$RUN_DIR" >/dev/null 2>&1 || true
  if [ "${RPO_KEEP_CONTROL_PLANE:-}" = 1 ] || [ $rc -ne 0 ]; then
    echo "control plane logs kept in $RUN_DIR" >&2
  else
    rm -rf "$RUN_DIR"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r ETCD_PORT API_PORT < <(free_ports)
log "starting kube-apiserver on 127.0.0.1:$API_PORT (etcd $ETCD_PORT) in $RUN_DIR"
API_PORT=$API_PORT ETCD_PORT=$ETCD_PORT "$SHARED/tools/kube-control-plane/start.sh" "$RUN_DIR" >/dev/null
export RPO_E2E_KUBECONFIG=$RUN_DIR/kubeconfig

log "cargo test --all-targets $*"
cd "$REPO"
cargo test --all-targets "$@"
log "all tests passed"
