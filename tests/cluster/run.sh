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
#  4. a local OCI registry (Debian's docker-registry) gets the image and the chart (`helm push`);
#     `helm install oci://… --wait` with the chart's defaults (plus the image, pulled by the
#     kubelet, and the simulators' hosts) — of the previous release (RELEASES; built once from its
#     commit through a git worktree, cached in ~/.cache/rpo-releases) when there is one; an
#     EmployeeSync and a CertificateSync sync against the simulators — status Succeeded and the
#     upstreams changed (employees linked in reteach, certificates in Personio);
#  4b. upgrade from the previous release: the current CRDs applied, `helm upgrade oci://…` to the
#     current chart and image; Ready stays True throughout, no status or ledger field is lost,
#     no certificate is uploaded twice, and the next scheduled runs are incremental;
#  5. `helm upgrade --wait` to two replicas with leader election and the webhook receiver: both
#     pods Ready, the receiver's EndpointSlice names the leader only; one holds the
#     Lease, named after the release;
#  6. a second upgrade rolls both pods while the Lease is sampled: no gap without a live leader
#     longer than the Lease duration, and the new leader syncs (a requested run succeeds);
#  7. `get secrets` removed from the chart's ClusterRole: the EmployeeSync turns Stalled with a
#     message naming the Secret and the missing permission;
#  8. the release uninstalled, the chaos soak's short form on the same cluster (tests/cluster/soak.sh:
#     two leader-elected pods backfill thousands of certificates while pods are killed, the Lease
#     holder is paused, kube-apiserver restarts and a helm upgrade rolls the pods; 0 duplicates,
#     0 missing, every set-aside accounted for).
# The cluster is stopped in a trap whatever happens; logs stay in the run dir when a step fails.
# One cluster per machine (fixed ports, one bridge): concurrent runs wait on a lock.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/reteach-target}
# shellcheck source=scripts/lib.sh
source "$REPO/scripts/lib.sh"
# shellcheck source=tests/cluster/tenant.sh
source "$REPO/tests/cluster/tenant.sh"
cd "$REPO"

SHARED=$(find_shared || true)
install_apt_packages
ensure_helm
# The lock also covers the node's install: two first runs would build in the same directory.
exec 9>"${TMPDIR:-/tmp}/rpo-kube-node.lock"
log "waiting for the machine's kube-node lock (one cluster per machine)"
flock 9
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
REGISTRY_PID=
PREVIOUS_WORKTREE=

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
  [ -z "$REGISTRY_PID" ] || kill "$REGISTRY_PID" 2>/dev/null || true
  [ -z "$PREVIOUS_WORKTREE" ] || git -C "$REPO" worktree remove --force "$PREVIOUS_WORKTREE" >/dev/null 2>&1 || true
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
step "1. production binary and its image (and the previous release's)"
VERSION=$(sed -n '/^\[package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
# The previous release (RELEASES): its binary is built once from its commit through a git worktree,
# into the same target dir (its dependencies are mostly compiled already), and cached by commit.
# Built before the current tree, whose build then puts the current binary back in place.
PREVIOUS_VERSION= PREVIOUS_COMMIT=
read -r PREVIOUS_VERSION PREVIOUS_COMMIT < <(scripts/release.sh previous 2>/dev/null) || true
if [ -n "$PREVIOUS_COMMIT" ] && [ "$PREVIOUS_VERSION" != "$VERSION" ]; then
  PREVIOUS_CACHE=$HOME/.cache/rpo-releases/$PREVIOUS_COMMIT
  if [ ! -x "$PREVIOUS_CACHE/reteach-personio-operator" ]; then
    log "building release $PREVIOUS_VERSION ($PREVIOUS_COMMIT) once; cached in $PREVIOUS_CACHE"
    PREVIOUS_WORKTREE=$WORK/previous-release
    git worktree add --detach "$PREVIOUS_WORKTREE" "$PREVIOUS_COMMIT" >/dev/null
    cargo build --release --locked --no-default-features --bin reteach-personio-operator \
      --manifest-path "$PREVIOUS_WORKTREE/Cargo.toml"
    mkdir -p "$PREVIOUS_CACHE"
    install -m 0755 "$CARGO_TARGET_DIR/release/reteach-personio-operator" "$PREVIOUS_CACHE/reteach-personio-operator.tmp"
    mv "$PREVIOUS_CACHE/reteach-personio-operator.tmp" "$PREVIOUS_CACHE/reteach-personio-operator"
    git -C "$REPO" worktree remove --force "$PREVIOUS_WORKTREE"
    PREVIOUS_WORKTREE=
    rm -f "$CARGO_TARGET_DIR/release/reteach-personio-operator" # the current build puts its own back
  fi
  "$PREVIOUS_CACHE/reteach-personio-operator" --version | grep -q " $PREVIOUS_VERSION\$" ||
    fail "the cached release binary $PREVIOUS_CACHE is not $PREVIOUS_VERSION"
else
  PREVIOUS_VERSION=
  log "no earlier release in RELEASES: the upgrade test (step 4b) is skipped"
fi
cargo build --release --locked --no-default-features --bin reteach-personio-operator
install -m 0755 "$CARGO_TARGET_DIR/release/reteach-personio-operator" "$WORK/reteach-personio-operator"
"$WORK/reteach-personio-operator" --version | grep -q " $VERSION\$" || fail "the current binary is not $VERSION"
cargo build --locked --bin reteach-personio-operator # the dev build: `sim`
SIM_BIN=$CARGO_TARGET_DIR/debug/reteach-personio-operator
IMAGE_TAR=$(scripts/build-image.sh "$WORK/reteach-personio-operator" "$WORK/images" "$VERSION" | tail -1)
python3 - "$IMAGE_TAR" "$VERSION" "$(git rev-parse HEAD)" <<'PY'
import hashlib, json, sys, tarfile
archive, version, revision = sys.argv[1:4]
with tarfile.open(archive) as tar:
    manifest = json.load(tar.extractfile("manifest.json"))[0]
    config = json.load(tar.extractfile(manifest["Config"]))["config"]
    labels = config.get("Labels") or {}
    sbom = None
    for layer in manifest["Layers"]:
        with tarfile.open(fileobj=tar.extractfile(layer)) as files:
            for member in files.getmembers():
                if member.name.lstrip("./") == labels.get("io.reteach.sbom.path", "-").lstrip("/"):
                    sbom = files.extractfile(member).read()
for key in ("source", "version", "licenses", "revision", "created"):
    assert labels.get(f"org.opencontainers.image.{key}"), f"image label org.opencontainers.image.{key} missing: {labels}"
assert labels["org.opencontainers.image.version"] == version, labels
assert labels["org.opencontainers.image.revision"] == revision, labels
assert sbom is not None, f"no SBOM at {labels.get('io.reteach.sbom.path')} in the image"
assert hashlib.sha256(sbom).hexdigest() == labels["io.reteach.sbom.sha256"], "the SBOM's label hash differs"
document = json.loads(sbom)
assert document["metadata"]["component"]["version"] == version, document["metadata"]
assert config.get("User") == "65532:65532", f"image user is {config.get('User')!r}, want 65532:65532"
assert config.get("Entrypoint") == ["/usr/local/bin/reteach-personio-operator"], config.get("Entrypoint")
print(f"image config ok: user 65532:65532, OCI labels {sorted(labels)}, SBOM of {len(document['components'])} crates", file=sys.stderr)
PY
if [ -n "$PREVIOUS_VERSION" ]; then
  PREVIOUS_SOURCE=$WORK/previous-source
  mkdir -p "$PREVIOUS_SOURCE"
  git archive "$PREVIOUS_COMMIT" | tar -x -C "$PREVIOUS_SOURCE"
  PREVIOUS_IMAGE_TAR=$(RPO_IMAGE_SOURCE=$PREVIOUS_SOURCE RPO_IMAGE_REVISION=$PREVIOUS_COMMIT \
    scripts/build-image.sh "$PREVIOUS_CACHE/reteach-personio-operator" "$WORK/images" "$PREVIOUS_VERSION" | tail -1)
fi

step "2. simulators on the host"
read -r PERSONIO_PORT RETEACH_PORT SOAK_PERSONIO_PORT SOAK_RETEACH_PORT < <(python3 - <<'PY'
import socket
ports = []
for _ in range(4):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); ports.append(s.getsockname()[1]); s.close()
print(*ports)
PY
)
"$SIM_BIN" sim --personio-addr "127.0.0.1:$PERSONIO_PORT" --reteach-addr "127.0.0.1:$RETEACH_PORT" \
  --employees 12 --reteach-customers 6 --link-reteach-customers >"$WORK/sim.log" 2>&1 &
SIM_PID=$!
wait_until 30 "simulators answer" upstream
log "simulators: Personio 127.0.0.1:$PERSONIO_PORT, reteach 127.0.0.1:$RETEACH_PORT; $(upstream)"

step "2b. a local OCI registry with the images and the charts"
# Debian's docker-registry (the CNCF distribution registry) on loopback: the kubelet pulls the
# image from it (containerd speaks plain http to a loopback registry), Helm installs the chart
# from it (oci://, --plain-http). Nothing is side-loaded into the node.
command -v docker-registry >/dev/null || {
  log "installing docker-registry (Debian)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry >/dev/null; }
}
REGISTRY_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
REGISTRY=127.0.0.1:$REGISTRY_PORT
mkdir -p "$WORK/registry"
printf 'version: 0.1\nlog: {level: warn}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: "%s"}\n' \
  "$WORK/registry/data" "$REGISTRY" >"$WORK/registry/config.yml"
docker-registry serve "$WORK/registry/config.yml" >"$WORK/registry.log" 2>&1 &
REGISTRY_PID=$!
wait_until 30 "the registry answers /v2/" curl -fsS "http://$REGISTRY/v2/"
# Pushes a docker archive as REGISTRY/reteach-personio-operator:TAG, and the chart DIR packaged.
push_release() { # image_tar tag chart_dir
  local store
  store=$(mktemp -d "$WORK/buildah.XXXXXX")
  local b=(buildah --root "$store/root" --runroot "$store/runroot" --storage-driver vfs)
  "${b[@]}" pull -q "docker-archive:$1" >/dev/null
  "${b[@]}" push -q --tls-verify=false "localhost/reteach-personio-operator:$2" "docker://$REGISTRY/reteach-personio-operator:$2"
  "${b[@]}" rmi --all >/dev/null 2>&1 || true
  rm -rf "$store"
  mkdir -p "$WORK/charts-$2"
  "$HELM_BIN" package "$3" --destination "$WORK/charts-$2" >/dev/null
  "$HELM_BIN" push "$WORK/charts-$2/reteach-personio-operator-$2.tgz" "oci://$REGISTRY/charts" --plain-http >&2
}
push_release "$IMAGE_TAR" "$VERSION" "$CHART"
[ -z "$PREVIOUS_VERSION" ] || push_release "$PREVIOUS_IMAGE_TAR" "$PREVIOUS_VERSION" "$PREVIOUS_SOURCE/$CHART"
log "registry $REGISTRY: $(curl -fsS "http://$REGISTRY/v2/_catalog"), operator tags $(curl -fsS "http://$REGISTRY/v2/reteach-personio-operator/tags/list")"

step "3. cluster"
EXPOSE_HOST_PORTS="$PERSONIO_PORT $RETEACH_PORT $SOAK_PERSONIO_PORT $SOAK_RETEACH_PORT" "$NODE_START" "$RUN" >"$WORK/start.log" 2>&1 ||
  { tail -20 "$WORK/start.log" >&2; fail "the cluster did not start"; }
export KUBECONFIG=$RUN/kubeconfig
kubectl get nodes >&2

step "4. helm install oci://… --wait (defaults) of ${PREVIOUS_VERSION:-$VERSION}, both syncs against the simulators"
INSTALL_VERSION=${PREVIOUS_VERSION:-$VERSION}
OCI_CHART=oci://$REGISTRY/charts/reteach-personio-operator
# The image comes from the registry: no tag set, so it is the chart's appVersion, pulled by the
# kubelet (nothing was imported into the node).
IMAGE_VALUES=(--set "image.repository=$REGISTRY/reteach-personio-operator" --set image.pullPolicy=IfNotPresent)
# The simulators speak plain http on the pod network's gateway: the two rails a production
# install keeps closed are opened for them, and nothing else differs from the defaults.
SIM_VALUES=(--set allowInsecureHttp=true
  --set "allowedUpstreamHosts={$GATEWAY:$PERSONIO_PORT,$GATEWAY:$RETEACH_PORT}"
  --set certificateDownloads.allowPrivateAddresses=true)
"$HELM_BIN" install "$RELEASE" "$OCI_CHART" --version "$INSTALL_VERSION" --plain-http \
  --namespace "$NS" --create-namespace --wait --timeout 180s "${IMAGE_VALUES[@]}" "${SIM_VALUES[@]}"
kubectl -n "$NS" get pods -o wide >&2
running_image() { # -> "image imageID" of the operator pods not being deleted
  kubectl -n "$NS" get pods -l app.kubernetes.io/instance=$RELEASE -o json | python3 -c '
import json, sys
for pod in json.load(sys.stdin)["items"]:
    if not pod["metadata"].get("deletionTimestamp"):
        for c in pod["status"].get("containerStatuses", []):
            print(c["image"], c.get("imageID", ""))'
}
pulled=$(running_image)
grep -q "^$REGISTRY/reteach-personio-operator:$INSTALL_VERSION .*sha256:" <<<"$pulled" ||
  fail "the operator pod does not run $INSTALL_VERSION pulled from the registry: $pulled"
log "the kubelet pulled $pulled"
[ "$(kubectl -n "$NS" get pods -l app.kubernetes.io/instance=$RELEASE -o jsonpath='{.items[0].spec.serviceAccountName}')" = "$FULLNAME" ] ||
  fail "the operator pod does not run as the chart's ServiceAccount"

kubectl create namespace "$TENANT" >/dev/null
apply_sim_tenant "$TENANT" "$GATEWAY" "$PERSONIO_PORT" "$RETEACH_PORT"
wait_until 120 "EmployeeSync Ready=True/Succeeded" condition_is employeesync personio Ready True Succeeded
wait_until 180 "CertificateSync Ready=True/Succeeded" condition_is certificatesync certificates Ready True Succeeded
state=$(upstream)
log "upstream after the first runs: $state"
linked=$(upstream_field linkedCustomers)
documents=$(upstream_field certificateDocuments)
[ "$linked" = 12 ] || fail "want all 12 Personio employees in reteach, found $linked linked customers"
[ "$documents" = 12 ] || fail "want the 12 certificates of the 6 linked reteach users in Personio, found $documents"

if [ -n "$PREVIOUS_VERSION" ]; then
  step "4b. upgrade $PREVIOUS_VERSION -> $VERSION: CRDs, then helm upgrade oci://…; nothing lost"
  snapshot() { kubectl -n "$TENANT" get employeesync/personio certificatesync/certificates -o json; }
  snapshot >"$WORK/before-upgrade.json"
  # Ready of both resources, sampled every 0.5 s from now until the checks below are done.
  (
    while true; do
      for kind in employeesync/personio certificatesync/certificates; do
        # A failed read (the apiserver busy with the CRD update) is no sample; a read one must say True.
        if ready=$(kubectl -n "$TENANT" get "$kind" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null); then
          [ "$ready" = True ] || echo "$(date -u +%T) $kind Ready=${ready:-absent}"
        fi
      done
      sleep 0.5
    done
  ) >"$WORK/ready-samples.txt" 2>&1 &
  SAMPLER_PID=$!
  # The documented order: the new CRDs first (Helm never upgrades a chart's crds/), then the chart.
  kubectl apply --server-side --force-conflicts -f crds/ >&2
  "$HELM_BIN" upgrade "$RELEASE" "$OCI_CHART" --version "$VERSION" --plain-http --namespace "$NS" \
    --wait --timeout 180s --reset-then-reuse-values
  runs_only_current() { ! running_image | grep -q ":$PREVIOUS_VERSION " && running_image | grep -q ":$VERSION "; }
  wait_until 60 "only operator pods of $VERSION" runs_only_current
  UPGRADED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ) # the old pod is gone (Recreate): runs from here are $VERSION's
  pulled=$(running_image)
  grep -q "^$REGISTRY/reteach-personio-operator:$VERSION .*sha256:" <<<"$pulled" ||
    fail "after the upgrade the operator does not run $VERSION from the registry: $pulled"
  # The next scheduled runs (not requested ones: those are full runs by design).
  ran_after_upgrade() { # kind name
    [ "$(kubectl -n "$TENANT" get "$1" "$2" -o jsonpath='{.status.lastRun.finishedAt}' | python3 -c "import sys; print(sys.stdin.read().strip() > '$UPGRADED_AT')")" = True ]
  }
  wait_until 150 "a scheduled EmployeeSync run after the upgrade" ran_after_upgrade employeesync personio
  wait_until 150 "a scheduled CertificateSync run after the upgrade" ran_after_upgrade certificatesync certificates
  sleep 2
  kill "$SAMPLER_PID" 2>/dev/null || true
  wait "$SAMPLER_PID" 2>/dev/null || true
  SAMPLER_PID=
  snapshot >"$WORK/after-upgrade.json"
  [ ! -s "$WORK/ready-samples.txt" ] || fail "Ready was not True during the upgrade: $(head -5 "$WORK/ready-samples.txt")"
  python3 - "$WORK/before-upgrade.json" "$WORK/after-upgrade.json" <<'PY' || fail "the upgrade lost or repeated work (above)"
import json, sys
before, after = (json.load(open(p))["items"] for p in sys.argv[1:3])
# Per-run details and transient entries come and go; everything else that was there must stay.
VOLATILE = ("lastRun", "failures", "plannedActions", "capabilities", "conditions", "inFlight", "pending")
def paths(value, prefix=""):
    if isinstance(value, dict):
        for key, child in value.items():
            if key in VOLATILE:
                continue
            yield f"{prefix}.{key}"
            yield from paths(child, f"{prefix}.{key}")
    elif isinstance(value, list):
        for child in value:
            yield from paths(child, f"{prefix}[]")
problems = []
for old, new in zip(before, after):
    kind, status, now = old["kind"], old.get("status", {}), new.get("status", {})
    lost = sorted(set(paths(status)) - set(paths(now)))
    if lost:
        problems.append(f"{kind}: status fields lost: {lost}")
    ready = [c for c in now.get("conditions", []) if c["type"] == "Ready"]
    if not ready or ready[0]["status"] != "True":
        problems.append(f"{kind}: Ready after the upgrade is {ready}")
    run = now.get("lastRun", {})
    if kind == "EmployeeSync":
        if run.get("mode") != "Incremental":
            problems.append(f"EmployeeSync: the next run is {run.get('mode')}, want Incremental")
        if run.get("created", 0):
            problems.append(f"EmployeeSync: {run['created']} users created again")
        if (now.get("cursor") or "") < (status.get("cursor") or ""):
            problems.append(f"EmployeeSync: cursor went back {status.get('cursor')} -> {now.get('cursor')}")
    else:
        if now.get("uploadedTotal", 0) != status.get("uploadedTotal", 0):
            problems.append(f"CertificateSync: uploadedTotal {status.get('uploadedTotal')} -> {now.get('uploadedTotal')}")
        if run.get("uploaded", 0) or run.get("backfill") or run.get("fullPass"):
            problems.append(f"CertificateSync: the next run was not incremental or uploaded again: {run}")
        old_cursor = (status.get("ledger") or {}).get("cursor") or ""
        new_cursor = (now.get("ledger") or {}).get("cursor") or ""
        if new_cursor < old_cursor:
            problems.append(f"CertificateSync: ledger cursor went back {old_cursor} -> {new_cursor}")
for problem in problems:
    print(problem, file=sys.stderr)
print(f"upgrade kept {sum(1 for _ in paths(before[0].get('status', {})))} + {sum(1 for _ in paths(before[1].get('status', {})))} status fields", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
  [ "$(upstream_field certificateDocuments)" = 12 ] || fail "the upgrade changed the number of certificate documents: $(upstream)"
  [ "$(upstream_field linkedCustomers)" = 12 ] && [ "$(upstream_field customers)" = "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["customers"])' "$state")" ] ||
    fail "the upgrade changed the reteach users: $(upstream)"
  log "upgrade $PREVIOUS_VERSION -> $VERSION: Ready stayed True, no status field lost, no certificate twice, next runs incremental"
fi

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

step "8. chaos soak, short form, on this cluster (tests/cluster/soak.sh)"
# The soak installs its own release; this one would sync its resources too.
"$HELM_BIN" uninstall "$RELEASE" --namespace "$NS" --wait --timeout 120s >&2
kubectl delete namespace "$TENANT" --wait=false >/dev/null
SOAK_ATTACHED=1 SOAK_KUBE_RUN=$RUN SOAK_PORTS="$SOAK_PERSONIO_PORT $SOAK_RETEACH_PORT" SOAK_SIM_BIN=$SIM_BIN \
  SOAK_IMAGE_REPOSITORY=$REGISTRY/reteach-personio-operator SOAK_IMAGE_TAG=$VERSION HELM_BIN=$HELM_BIN \
  tests/cluster/soak.sh

log "cluster tests passed in ${SECONDS}s"
