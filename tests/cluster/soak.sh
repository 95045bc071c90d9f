#!/usr/bin/env bash
# Chaos soak on the real single-node cluster (issue 27): two leader-elected operator pods (the
# Helm chart, replicas=2, leader election on) backfill thousands of certificates from the reteach
# simulator into the Personio simulator, both on the host, while a seeded plan kills pods, pauses
# the Lease holder (SIGSTOP longer than the Lease, then SIGCONT), restarts kube-apiserver once and
# rolls the pods with a `helm upgrade` — every action fired mid-backfill (tests/cluster/soak.py).
# End state, read from the simulators' own state: 0 duplicate documents, 0 missing certificates,
# no document of a broken certificate, and the ledger's set-aside entries are exactly the broken
# certificates. Bounded by a hard timeout.
#
#   tests/cluster/soak.sh            short form (CI: tests/cluster/run.sh runs it on its cluster)
#   tests/cluster/soak.sh --long     long form, by hand
#
# Env (defaults short/long): SOAK_CERTIFICATES (1000/6000), SOAK_ROUNDS chaos actions (6/20, at least 6: every kind once),
#   SOAK_SEED (27), SOAK_TIMEOUT seconds for the backfill under chaos (540/3600), SOAK_BROKEN
#   certificates whose download is broken (3), SOAK_RATE_SCALE (40): the operator's client-side
#   Personio/reteach limits and the Personio simulator's limits run this many times faster (at
#   Personio's real 60 uploads/min a backfill of thousands takes hours), SOAK_REPORT (a file for
#   the JSON report).
# Standalone it builds the image, starts the simulators and the cluster (under the machine's
# kube-node locks) and stops everything in a trap. With SOAK_ATTACHED=1 (tests/cluster/run.sh) it
# uses the caller's running cluster: SOAK_KUBE_RUN (its run dir), SOAK_PORTS ("personio reteach",
# host ports the cluster exposes to pods), SOAK_SIM_BIN, SOAK_IMAGE_REPOSITORY/_TAG/_PULL_POLICY.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/reteach-target}
# shellcheck source=scripts/lib.sh
source "$REPO/scripts/lib.sh"
# shellcheck source=tests/cluster/tenant.sh
source "$REPO/tests/cluster/tenant.sh"
cd "$REPO"

LONG=
[ "${1:-}" = --long ] && LONG=1
CERTIFICATES=${SOAK_CERTIFICATES:-$([ -n "$LONG" ] && echo 6000 || echo 1000)}
ROUNDS=${SOAK_ROUNDS:-$([ -n "$LONG" ] && echo 20 || echo 6)}
TIMEOUT=${SOAK_TIMEOUT:-$([ -n "$LONG" ] && echo 3600 || echo 540)}
SEED=${SOAK_SEED:-27}
BROKEN=${SOAK_BROKEN:-3}
RATE_SCALE=${SOAK_RATE_SCALE:-40}
PER_EMPLOYEE=10 # completions per reteach user: certificates / 10 employees
EMPLOYEES=$(((CERTIFICATES + PER_EMPLOYEE - 1) / PER_EMPLOYEE))
NS=soak-system
TENANT=soak
RELEASE=soak
CHART=charts/reteach-personio-operator
GATEWAY=10.244.0.1 # pods reach host services on 127.0.0.1:P at GATEWAY:P (kube-node README)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rpo-soak.XXXXXX")
SIM_PID=
NODE_RUN=
NODE_STOP=
cleanup() {
  local rc=$?
  if [ $rc -ne 0 ] && [ -n "${KUBECONFIG:-}" ]; then
    {
      echo "--- pods"
      kubectl get pods -A -o wide
      echo "--- operator logs"
      kubectl -n "$NS" logs -l "app.kubernetes.io/instance=$RELEASE" --tail=60 --prefix
      echo "--- CertificateSync"
      kubectl -n "$TENANT" get certificatesync certificates -o yaml
    } >"$WORK/diagnostics.txt" 2>&1 || true
  fi
  if [ -n "${SOAK_ATTACHED:-}" ] && [ -n "${KUBECONFIG:-}" ]; then
    "${HELM_BIN:-helm}" uninstall "$RELEASE" --namespace "$NS" >/dev/null 2>&1 || true
    kubectl delete namespace "$TENANT" "$NS" --wait=false >/dev/null 2>&1 || true
  fi
  [ -z "$NODE_STOP" ] || "$NODE_STOP" "$NODE_RUN" >/dev/null 2>&1 || true
  [ -z "$SIM_PID" ] || kill "$SIM_PID" 2>/dev/null || true
  if [ $rc -ne 0 ]; then
    echo "soak FAILED; logs and diagnostics kept in $WORK" >&2
    [ -f "$WORK/diagnostics.txt" ] && tail -40 "$WORK/diagnostics.txt" >&2
  else
    rm -rf "$WORK"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
step() { printf '\n--- soak: %s  (+%ss)\n' "$*" "$SECONDS" >&2; }
wait_until() { # seconds description cmd...
  local seconds=$1 what=$2
  shift 2
  for _ in $(seq 1 "$seconds"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  die "soak: timed out after ${seconds}s waiting for: $what"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

if [ -n "${SOAK_ATTACHED:-}" ]; then
  : "${SOAK_KUBE_RUN:?}" "${SOAK_PORTS:?}" "${SOAK_SIM_BIN:?}" "${SOAK_IMAGE_REPOSITORY:?}" "${SOAK_IMAGE_TAG:?}"
  NODE_RUN=$SOAK_KUBE_RUN
  read -r PERSONIO_PORT RETEACH_PORT <<<"$SOAK_PORTS"
  SIM_BIN=$SOAK_SIM_BIN
  IMAGE_VALUES=(--set "image.repository=$SOAK_IMAGE_REPOSITORY" --set "image.tag=$SOAK_IMAGE_TAG"
    --set "image.pullPolicy=${SOAK_IMAGE_PULL_POLICY:-IfNotPresent}")
else
  install_apt_packages
  ensure_helm
  step "production binary, its image, the dev build (simulators)"
  VERSION=$(sed -n '/^\[package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
  cargo build --release --locked --no-default-features --bin reteach-personio-operator
  install -m 0755 "$CARGO_TARGET_DIR/release/reteach-personio-operator" "$WORK/reteach-personio-operator"
  cargo build --locked --bin reteach-personio-operator
  SIM_BIN=$CARGO_TARGET_DIR/debug/reteach-personio-operator
  IMAGE_TAR=$(scripts/build-image.sh "$WORK/reteach-personio-operator" "$WORK/images" soak | tail -1)
  IMAGE_VALUES=(--set image.repository=localhost/reteach-personio-operator --set image.tag=soak
    --set image.pullPolicy=Never)
  PERSONIO_PORT=$(free_port)
  RETEACH_PORT=$(free_port)
fi

step "simulators: $EMPLOYEES employees, $CERTIFICATES certificates ($BROKEN broken), rates x$RATE_SCALE"
"$SIM_BIN" sim --personio-addr "127.0.0.1:$PERSONIO_PORT" --reteach-addr "127.0.0.1:$RETEACH_PORT" \
  --employees "$EMPLOYEES" --reteach-customers "$EMPLOYEES" --link-reteach-customers \
  --reteach-completions-per-customer "$PER_EMPLOYEE" --reteach-broken-certificates "$BROKEN" \
  --personio-time-scale "$RATE_SCALE" >"$WORK/sim.log" 2>&1 &
SIM_PID=$!
wait_until 60 "simulators answer" curl -fsS "http://127.0.0.1:$RETEACH_PORT/sim/inspect/certificates" -o /dev/null
wait_until 60 "simulators answer" curl -fsS "http://127.0.0.1:$PERSONIO_PORT/sim/inspect/documents" -o /dev/null

if [ -z "${SOAK_ATTACHED:-}" ]; then
  # One cluster per machine: the machine's lock (other sessions) and the one tests/cluster/run.sh
  # takes, held only while the node runs (released when this script exits).
  exec 8>/tmp/kube-node.lock
  exec 9>"${TMPDIR:-/tmp}/rpo-kube-node.lock"
  log "waiting for the machine's kube-node locks"
  flock 8
  flock 9
  NODE_BIN=$("$(kube_tool kube-node/install.sh)" | tail -1)
  export PATH="$NODE_BIN:$PATH"
  NODE_RUN=$WORK/node
  NODE_STOP=$(kube_tool kube-node/stop.sh)
  step "cluster"
  IMAGES=$IMAGE_TAR EXPOSE_HOST_PORTS="$PERSONIO_PORT $RETEACH_PORT" \
    "$(kube_tool kube-node/start.sh)" "$NODE_RUN" >"$WORK/start.log" 2>&1 ||
    { tail -20 "$WORK/start.log" >&2; die "soak: the cluster did not start"; }
fi
export KUBECONFIG=$NODE_RUN/kubeconfig

step "helm install: 2 replicas, leader election"
kubectl create namespace "$TENANT" >/dev/null # its Role comes with the release (watchNamespaces)
# Runs start at once after a restart (no start-up spread), no process-wide Personio budget (one
# tenant), rates scaled like the simulator's; a foreign in-flight upload is taken over after 20 s
# (the simulators answer in milliseconds, so 20 s is longer than any download plus upload).
"${HELM_BIN:-helm}" install "$RELEASE" "$CHART" --namespace "$NS" --create-namespace --wait --timeout 180s \
  "${IMAGE_VALUES[@]}" --set replicaCount=2 --set leaderElection.enabled=true \
  --set allowInsecureHttp=true --set "allowedUpstreamHosts={$GATEWAY:$PERSONIO_PORT,$GATEWAY:$RETEACH_PORT}" \
  --set certificateDownloads.allowPrivateAddresses=true --set "watchNamespaces={$TENANT}" \
  --set personioBudgetPerMinute=0 --set startupSpread=0s \
  --set 'extraEnv[0].name=UPSTREAM_RATE_SCALE' --set-string "extraEnv[0].value=$RATE_SCALE" \
  --set 'extraEnv[1].name=HANDOVER_GRACE' --set-string 'extraEnv[1].value=20s' >/dev/null
# The generated company has ~20 % former employees: their users get locked in the first run,
# which the guard would hold for approval. The soak is about certificates.
apply_sim_tenant "$TENANT" "$GATEWAY" "$PERSONIO_PORT" "$RETEACH_PORT" \
  '  massChangeGuard: {enabled: false}' '  maxAttempts: 2'

step "backfill under chaos: $ROUNDS actions, seed $SEED, hard timeout ${TIMEOUT}s"
REPORT=${SOAK_REPORT:-$WORK/report.json}
timeout --kill-after=30 $((TIMEOUT + 300)) python3 tests/cluster/soak.py \
  --personio "http://127.0.0.1:$PERSONIO_PORT" --reteach "http://127.0.0.1:$RETEACH_PORT" \
  --namespace "$NS" --tenant "$TENANT" --release "$RELEASE" --chart "$CHART" --helm "${HELM_BIN:-helm}" \
  --run-dir "$NODE_RUN" --seed "$SEED" --rounds "$ROUNDS" --deadline "$TIMEOUT" --report "$REPORT" ||
  die "soak: the end state is wrong or the backfill did not finish (report: $REPORT)"
log "soak passed in ${SECONDS}s: $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); r.pop("actions"); print(json.dumps(r))' "$REPORT")"
