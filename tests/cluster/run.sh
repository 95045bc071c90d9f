#!/usr/bin/env bash
# End-to-end tests on a real single-node Kubernetes cluster (apiserver, controller-manager, scheduler,
# kubelet, containerd): the operator as users run it — its image, `helm install`, the chart's own
# ServiceAccount and RBAC, probes, rolling upgrades with leader election.
#
#   tests/cluster/run.sh        (scripts/test.sh runs it after the cargo tests; .ci/run through that)
#
#  1. builds the production binary (--no-default-features) and its image without a registry
#     (scripts/build-image.sh), and checks the image: uid 65532, OCI labels, no dev tools;
#  2. starts the Personio and reteach simulators on the host (the dev build's `sim`), reachable
#     from pods at the pod network's gateway;
#  3. starts the cluster (scripts/kube/start-node.sh, or ../shared/tools/kube-node) with the image;
#  4. `helm install --wait` with the chart's defaults (plus the image and the simulators' hosts);
#     an EmployeeSync and a CertificateSync sync against the simulators — status Succeeded and the
#     upstreams changed (employees linked in reteach, certificates in Personio);
#  5. `helm upgrade --wait` to two replicas with leader election and the webhook receiver: both
#     pods Ready, the receiver's EndpointSlice names the leader only; one holds the
#     Lease, named after the release;
#  6. a second upgrade rolls both pods while the Lease is sampled: no gap without a live leader
#     longer than the Lease duration, and the new leader syncs (a requested run succeeds);
#  7. `get secrets` removed from the chart's ClusterRole: the EmployeeSync turns Stalled with a
#     message naming the Secret and the missing permission.
# The cluster is stopped in a trap whatever happens; logs stay in the run dir when a step fails.
# One cluster per machine (fixed ports, one bridge): concurrent runs wait on a lock.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/reteach-target}
# shellcheck source=scripts/lib.sh
source "$REPO/scripts/lib.sh"
cd "$REPO"

SHARED=$(find_shared || true)
install_apt_packages
ensure_helm
log "cluster binaries (built once, cached in ~/.cache/kube-node)"
NODE_BIN=$("$(kube_tool kube-node/install.sh)" | tail -1)
export PATH="$NODE_BIN:$PATH"
NODE_START=$(kube_tool kube-node/start.sh)
NODE_STOP=$(kube_tool kube-node/stop.sh)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rpo-cluster.XXXXXX")
RUN=$WORK/node
NS=rpo-system
TENANT=academy-cluster
RELEASE=rpo
FULLNAME=rpo-reteach-personio-operator
CHART=charts/reteach-personio-operator
GATEWAY=10.244.0.1 # pods reach host services on 127.0.0.1:P at GATEWAY:P (kube-node README)
SIM_PID=
SAMPLER_PID=

exec 9>"${TMPDIR:-/tmp}/rpo-kube-node.lock"
log "waiting for the machine's kube-node lock (one cluster per machine)"
flock 9

cleanup() {
  local rc=$?
  [ -z "$SAMPLER_PID" ] || kill "$SAMPLER_PID" 2>/dev/null || true
  if [ $rc -ne 0 ] && [ -f "$RUN/kubeconfig" ]; then
    {
      echo "--- pods"
      kubectl --kubeconfig "$RUN/kubeconfig" get pods -A -o wide
      echo "--- operator logs"
      kubectl --kubeconfig "$RUN/kubeconfig" -n "$NS" logs -l app.kubernetes.io/name=reteach-personio-operator --tail=80 --prefix
      echo "--- resources"
      kubectl --kubeconfig "$RUN/kubeconfig" -n "$TENANT" get employeesyncs,certificatesyncs -o yaml
    } >"$WORK/diagnostics.txt" 2>&1 || true
  fi
  "$NODE_STOP" "$RUN" >/dev/null 2>&1 || true
  [ -z "$SIM_PID" ] || kill "$SIM_PID" 2>/dev/null || true
  if [ $rc -ne 0 ]; then
    echo "cluster tests FAILED; logs and diagnostics kept in $WORK" >&2
    [ -f "$WORK/diagnostics.txt" ] && tail -60 "$WORK/diagnostics.txt" >&2
  else
    rm -rf "$WORK"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { die "cluster test: $*"; }
step() { printf '\n--- %s  (+%ss)\n' "$*" "$SECONDS" >&2; }

# Polls `cmd` every second until it succeeds or `seconds` pass.
wait_until() { # seconds description cmd...
  local seconds=$1 what=$2
  shift 2
  for _ in $(seq 1 "$seconds"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  fail "timed out after ${seconds}s waiting for: $what"
}

condition() { # kind name type -> "status|reason|message"
  kubectl -n "$TENANT" get "$1" "$2" -o jsonpath="{.status.conditions[?(@.type==\"$3\")].status}|{.status.conditions[?(@.type==\"$3\")].reason}|{.status.conditions[?(@.type==\"$3\")].message}"
}
condition_is() { # kind name type status reason
  [ "$(condition "$1" "$2" "$3" | cut -d'|' -f1-2)" = "$4|$5" ]
}
upstream() { python3 tests/cluster/upstream.py "http://127.0.0.1:$PERSONIO_PORT" "http://127.0.0.1:$RETEACH_PORT"; }
upstream_field() { upstream | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

# ---------------------------------------------------------------------------------------------
step "1. production binary and its image"
cargo build --release --locked --no-default-features --bin reteach-personio-operator
install -m 0755 "$CARGO_TARGET_DIR/release/reteach-personio-operator" "$WORK/reteach-personio-operator"
cargo build --locked --bin reteach-personio-operator # the dev build: `sim`
SIM_BIN=$CARGO_TARGET_DIR/debug/reteach-personio-operator
IMAGE_TAR=$(scripts/build-image.sh "$WORK/reteach-personio-operator" "$WORK/images" ci | tail -1)
python3 - "$IMAGE_TAR" <<'PY'
import json, sys, tarfile
with tarfile.open(sys.argv[1]) as tar:
    manifest = json.load(tar.extractfile("manifest.json"))[0]
    config = json.load(tar.extractfile(manifest["Config"]))["config"]
labels = config.get("Labels") or {}
for key in ("source", "version", "licenses", "revision"):
    assert labels.get(f"org.opencontainers.image.{key}"), f"image label org.opencontainers.image.{key} missing: {labels}"
assert config.get("User") == "65532:65532", f"image user is {config.get('User')!r}, want 65532:65532"
assert config.get("Entrypoint") == ["/usr/local/bin/reteach-personio-operator"], config.get("Entrypoint")
print("image config ok: user 65532:65532, OCI labels", sorted(labels), file=sys.stderr)
PY

step "2. simulators on the host"
read -r PERSONIO_PORT RETEACH_PORT < <(python3 - <<'PY'
import socket
ports = []
for _ in range(2):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); ports.append(s.getsockname()[1]); s.close()
print(*ports)
PY
)
"$SIM_BIN" sim --personio-addr "127.0.0.1:$PERSONIO_PORT" --reteach-addr "127.0.0.1:$RETEACH_PORT" \
  --employees 12 --reteach-customers 6 --link-reteach-customers >"$WORK/sim.log" 2>&1 &
SIM_PID=$!
wait_until 30 "simulators answer" upstream
log "simulators: Personio 127.0.0.1:$PERSONIO_PORT, reteach 127.0.0.1:$RETEACH_PORT; $(upstream)"

step "3. cluster"
IMAGES=$IMAGE_TAR EXPOSE_HOST_PORTS="$PERSONIO_PORT $RETEACH_PORT" "$NODE_START" "$RUN" >"$WORK/start.log" 2>&1 ||
  { tail -20 "$WORK/start.log" >&2; fail "the cluster did not start"; }
export KUBECONFIG=$RUN/kubeconfig
kubectl get nodes >&2

step "4. helm install --wait (defaults), both syncs against the simulators"
IMAGE_VALUES=(--set image.repository=localhost/reteach-personio-operator --set image.tag=ci --set image.pullPolicy=Never)
# The simulators speak plain http on the pod network's gateway: the two rails a production
# install keeps closed are opened for them, and nothing else differs from the defaults.
SIM_VALUES=(--set allowInsecureHttp=true
  --set "allowedUpstreamHosts={$GATEWAY:$PERSONIO_PORT,$GATEWAY:$RETEACH_PORT}"
  --set certificateDownloads.allowPrivateAddresses=true)
"$HELM_BIN" install "$RELEASE" "$CHART" --namespace "$NS" --create-namespace --wait --timeout 180s \
  "${IMAGE_VALUES[@]}" "${SIM_VALUES[@]}"
kubectl -n "$NS" get pods -o wide >&2
[ "$(kubectl -n "$NS" get pods -l app.kubernetes.io/instance=$RELEASE -o jsonpath='{.items[0].spec.serviceAccountName}')" = "$FULLNAME" ] ||
  fail "the operator pod does not run as the chart's ServiceAccount"

kubectl create namespace "$TENANT" >/dev/null
kubectl -n "$TENANT" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Secret
metadata: {name: personio-api, labels: {sync.reteach.io/credentials: "true"}}
stringData: {clientId: sim-personio-client, clientSecret: sim-personio-secret}
---
apiVersion: v1
kind: Secret
metadata: {name: reteach-api, labels: {sync.reteach.io/credentials: "true"}}
stringData: {clientId: sim-client-id, clientSecret: sim-client-secret, clientCode: sim-client-code}
---
apiVersion: sync.reteach.io/v1alpha1
kind: EmployeeSync
metadata: {name: personio}
spec:
  interval: 1m
  personio:
    baseUrl: http://$GATEWAY:$PERSONIO_PORT
    allowInsecureHttp: true
    credentialsSecretRef: {name: personio-api}
  reteach:
    baseUrl: http://$GATEWAY:$RETEACH_PORT
    allowInsecureHttp: true
    credentialsSecretRef: {name: reteach-api}
---
apiVersion: sync.reteach.io/v1alpha1
kind: CertificateSync
metadata: {name: certificates}
spec:
  interval: 1m
  employeeSyncRef: {name: personio}
  documentCategory: {name: Learning Certificates}
EOF
wait_until 120 "EmployeeSync Ready=True/Succeeded" condition_is employeesync personio Ready True Succeeded
wait_until 180 "CertificateSync Ready=True/Succeeded" condition_is certificatesync certificates Ready True Succeeded
state=$(upstream)
log "upstream after the first runs: $state"
linked=$(upstream_field linkedCustomers)
documents=$(upstream_field certificateDocuments)
[ "$linked" = 12 ] || fail "want all 12 Personio employees in reteach, found $linked linked customers"
[ "$documents" = 12 ] || fail "want the 12 certificates of the 6 linked reteach users in Personio, found $documents"

step "5. helm upgrade --wait: two replicas with leader election and the webhook receiver"
"$HELM_BIN" upgrade "$RELEASE" "$CHART" --namespace "$NS" --wait --timeout 180s --reuse-values \
  --set replicaCount=2 --set leaderElection.enabled=true --set webhook.enabled=true
# Pods of the single-replica Deployment may still be terminating when helm returns.
ready_pods() { # -> lines "name Ready-status" of the operator pods not being deleted
  kubectl -n "$NS" get pods -l app.kubernetes.io/instance=$RELEASE -o json | python3 -c '
import json, sys
for pod in json.load(sys.stdin)["items"]:
    if pod["metadata"].get("deletionTimestamp"):
        continue
    ready = [c["status"] for c in pod["status"].get("conditions", []) if c["type"] == "Ready"]
    print(pod["metadata"]["name"], (ready or ["False"])[0])'
}
two_ready() { [ "$(ready_pods | grep -c " True$")" = 2 ] && [ "$(ready_pods | wc -l)" = 2 ]; }
wait_until 60 "exactly 2 operator pods, both Ready (the standby answers /readyz 200)" two_ready
ready_pods >&2
LEASE=$FULLNAME-leader
wait_until 60 "Lease $LEASE held by an operator pod" \
  sh -c "kubectl -n $NS get lease $LEASE -o jsonpath='{.spec.holderIdentity}' | grep -q ."
log "Lease $LEASE held by $(kubectl -n "$NS" get lease "$LEASE" -o jsonpath='{.spec.holderIdentity}')"
# The receiver Service has no selector: its EndpointSlice names the leader only, and the leader's
# receiver answers there (no kube-proxy here, so the test goes to the address the slice names).
SLICE=$FULLNAME-webhook
slice_names_the_leader() {
  local holder names
  holder=$(kubectl -n "$NS" get lease "$LEASE" -o jsonpath='{.spec.holderIdentity}')
  names=$(kubectl -n "$NS" get endpointslice "$SLICE" -o jsonpath='{range .endpoints[*]}{.targetRef.name}{" "}{end}')
  [ -n "$holder" ] && [ "$names" = "$holder " ]
}
check_webhook_routing() {
  wait_until 60 "EndpointSlice $SLICE naming the Lease holder only" slice_names_the_leader
  local ip code
  ip=$(kubectl -n "$NS" get endpointslice "$SLICE" -o jsonpath='{.endpoints[0].addresses[0]}')
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' \
    --data '{}' "http://$ip:8443/reteach/$TENANT/unknown/not-a-token" || true)
  log "webhook Service -> $ip (leader $(kubectl -n "$NS" get lease "$LEASE" -o jsonpath='{.spec.holderIdentity}')): HTTP $code for an unknown target"
  [ "$code" = 404 ] || fail "the leader's receiver behind $SLICE answered '$code', want 404 for an unknown target"
}
check_webhook_routing

step "6. second upgrade rolls both pods; the Lease never lapses longer than its duration"
LEASE_SECONDS=$(kubectl -n "$NS" get lease "$LEASE" -o jsonpath='{.spec.leaseDurationSeconds}')
# Samples every 0.25 s: is the Lease held and renewed within its duration? Writes the longest
# stretch without a live leader (seconds) and the holders seen.
python3 - "$NS" "$LEASE" "$WORK/lease-samples.json" <<'PY' &
import json, subprocess, sys, time
from datetime import datetime, timezone
ns, lease, out = sys.argv[1:4]
holders, gap, worst, start = [], None, 0.0, time.time()
while time.time() - start < 600:
    now = datetime.now(timezone.utc)
    try:
        spec = json.loads(subprocess.run(["kubectl", "-n", ns, "get", "lease", lease, "-o", "json"],
                                         capture_output=True, check=True, timeout=5).stdout)["spec"]
    except Exception:
        spec = {}
    holder = spec.get("holderIdentity") or ""
    renew = spec.get("renewTime")
    live = False
    if holder and renew:
        renewed = datetime.strptime(renew.replace("Z", "+00:00").split(".")[0].split("+")[0], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
        live = (now - renewed).total_seconds() <= spec.get("leaseDurationSeconds", 15)
    if holder and (not holders or holders[-1] != holder):
        holders.append(holder)
    if live:
        gap = None
    else:
        gap = gap or time.time()
        worst = max(worst, time.time() - gap)
    with open(out, "w") as f:
        json.dump({"worstGapSeconds": round(worst, 2), "holders": holders}, f)
    time.sleep(0.25)
PY
SAMPLER_PID=$!
sleep 2
"$HELM_BIN" upgrade "$RELEASE" "$CHART" --namespace "$NS" --wait --timeout 240s --reuse-values \
  --set-string podAnnotations.rollout=second
# The rollout is done for Kubernetes; give the new pods one Lease duration to settle the Lease.
wait_until 60 "Lease held by one of the new pods" sh -c \
  "kubectl -n $NS get pods -l app.kubernetes.io/instance=$RELEASE -o jsonpath='{.items[*].metadata.name}' | tr ' ' '\n' | grep -qx \"\$(kubectl -n $NS get lease $LEASE -o jsonpath='{.spec.holderIdentity}')\""
sleep 2
kill "$SAMPLER_PID" 2>/dev/null || true
wait "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=
samples=$(cat "$WORK/lease-samples.json")
log "Lease during the rolling upgrade: $samples (Lease duration ${LEASE_SECONDS}s)"
python3 - "$samples" "$LEASE_SECONDS" <<'PY' || fail "a leader gap exceeded the Lease duration during the rollout"
import json, sys
samples, limit = json.loads(sys.argv[1]), float(sys.argv[2])
assert len(samples["holders"]) >= 2, f"the Lease never changed hands: {samples}"
assert samples["worstGapSeconds"] <= limit, f"no live leader for {samples['worstGapSeconds']}s > {limit}s"
PY
wait_until 60 "exactly 2 operator pods after the rollout, both Ready" two_ready
check_webhook_routing
# The new leader works: a requested run of the EmployeeSync succeeds again.
before=$(kubectl -n "$TENANT" get employeesync personio -o jsonpath='{.status.lastSuccessfulSyncTime}')
kubectl -n "$TENANT" annotate employeesync personio --overwrite "reconcile.fluxcd.io/requestedAt=after-rollout" >/dev/null
wait_until 120 "a run after the rollout (lastHandledReconcileAt)" sh -c \
  "kubectl -n $TENANT get employeesync personio -o jsonpath='{.status.lastHandledReconcileAt}' | grep -qx after-rollout"
condition_is employeesync personio Ready True Succeeded || fail "the run after the rollout did not succeed: $(condition employeesync personio Ready)"
log "run after the rollout: lastSuccessTime $before -> $(kubectl -n "$TENANT" get employeesync personio -o jsonpath='{.status.lastSuccessfulSyncTime}')"
[ "$(upstream_field certificateDocuments)" = 12 ] || fail "the rollout changed the number of certificate documents"

step "7. a permission removed from the chart's role: Stalled, naming it"
kubectl get clusterrole "$FULLNAME" -o json | python3 -c '
import json, sys
role = json.load(sys.stdin)
role["rules"] = [r for r in role["rules"] if "secrets" not in r.get("resources", [])]
json.dump(role, sys.stdout)' | kubectl replace -f - >/dev/null
kubectl -n "$TENANT" annotate employeesync personio --overwrite "reconcile.fluxcd.io/requestedAt=no-secrets" >/dev/null
wait_until 120 "EmployeeSync Stalled=True" sh -c \
  "kubectl -n $TENANT get employeesync personio -o jsonpath='{.status.conditions[?(@.type==\"Stalled\")].status}' | grep -qx True"
message=$(condition employeesync personio Stalled)
log "Stalled: $message"
grep -q 'secrets' <<<"$message" && grep -q 'personio-api' <<<"$message" && grep -qi 'get' <<<"$message" ||
  fail "the Stalled message does not name the Secret and the missing permission: $message"

log "cluster tests passed in ${SECONDS}s"
