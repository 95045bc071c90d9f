#!/usr/bin/env bash
# Vendored from the workplace's shared tools (tools/kube-control-plane/start.sh) so that a clone of this repository alone can
# run its tests; scripts/lib.sh prefers ../shared/tools when it exists. Same caches (~/.cache), same output.
# Start etcd + kube-apiserver on loopback, as a throwaway test cluster (no nodes, no controller-manager).
# Usage: start.sh RUN_DIR [ASSETS_DIR]     ASSETS_DIR defaults to $KUBEBUILDER_ASSETS.
# Ports: API_PORT (6443), ETCD_PORT (12379). Writes RUN_DIR/kubeconfig (HTTPS, bearer token, admin).
# Prints on its last line: export KUBECONFIG=RUN_DIR/kubeconfig
set -euo pipefail
RUN=$(realpath -m "$1"); ASSETS=${2:-${KUBEBUILDER_ASSETS:?set KUBEBUILDER_ASSETS or pass ASSETS_DIR}}
API_PORT=${API_PORT:-6443}; ETCD_PORT=${ETCD_PORT:-12379}
mkdir -p "$RUN"; cd "$RUN"
[ -f sa.key ] || { openssl genrsa -out sa.key 2048 2>/dev/null; openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null; }
echo "test-token,admin,admin-uid,system:masters" > tokens.csv
setsid "$ASSETS/etcd" --data-dir "$RUN/etcd-data" --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
  --unsafe-no-fsync=true > etcd.log 2>&1 & echo $! > etcd.pid
for _ in $(seq 1 100); do curl -s "http://127.0.0.1:$ETCD_PORT/health" | grep -q true && break; sleep 0.2; done
setsid "$ASSETS/kube-apiserver" --etcd-servers="http://127.0.0.1:$ETCD_PORT" --secure-port="$API_PORT" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --endpoint-reconciler-type=none --cert-dir="$RUN/certs" \
  --token-auth-file="$RUN/tokens.csv" --authorization-mode=RBAC \
  --service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$RUN/sa.pub" \
  --service-account-signing-key-file="$RUN/sa.key" --service-cluster-ip-range=10.0.0.0/24 \
  > apiserver.log 2>&1 & echo $! > apiserver.pid
ready=
for _ in $(seq 1 240); do
  if [ "$(curl -sk -H 'Authorization: Bearer test-token' "https://127.0.0.1:$API_PORT/readyz" 2>/dev/null)" = ok ]; then ready=1; break; fi
  sleep 0.5
done
[ -n "$ready" ] || { echo "kube-apiserver did not become ready; see $RUN/apiserver.log" >&2; tail -20 "$RUN/apiserver.log" >&2; exit 1; }
cat > kubeconfig <<KC
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "https://127.0.0.1:$API_PORT", certificate-authority: "$RUN/certs/apiserver.crt"}
users:
- name: admin
  user: {token: test-token}
contexts:
- name: local
  context: {cluster: local, user: admin, namespace: default}
current-context: local
KC
echo "export KUBECONFIG=$RUN/kubeconfig"
