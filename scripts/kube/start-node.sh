#!/usr/bin/env bash
# Vendored from the workplace's shared tools (tools/kube-node/start.sh) so that a clone of this repository alone can
# run its tests; scripts/lib.sh prefers ../shared/tools when it exists. Same caches (~/.cache), same output.
# Start a real single-node Kubernetes 1.20.2 cluster on this machine, loopback only:
#   etcd + kube-apiserver + kube-controller-manager + kube-scheduler + containerd (CRI, runc, cgroupfs)
#   + kubelet, and a CNI bridge network for pods. Everything it starts is recorded in RUN_DIR/*.pid.
# Usage: start.sh RUN_DIR            (install.sh must have run; stop with stop.sh RUN_DIR)
# Env: API_PORT (16443) ETCD_PORT (12379, +1 peer) KUBELET_PORT (10250) KUBELET_HEALTHZ_PORT (10248)
#      CM_PORT (10257) SCHED_PORT (10259) CRI_STREAM_PORT (10010)  -- all bound on 127.0.0.1 only
#      POD_CIDR (10.244.0.0/24) SERVICE_CIDR (10.0.0.0/24) BRIDGE (kubenode0) NODE_NAME (localhost)
#      NETWORK=bridge|host  (host: no pod network; only hostNetwork pods can run)
#      IMAGES="a.tar b.tar"  extra docker/OCI archives to import into containerd's k8s.io namespace
#      EXPOSE_HOST_PORTS="p1 p2"  host services on 127.0.0.1:p that pods may reach as <bridge gateway>:p
#      KUBE_NODE_BIN (~/.cache/kube-node/1.20.2)  CTRD_SOCK (/run/kube-node-containerd/containerd.sock)
# Prints on its last line: export KUBECONFIG=RUN_DIR/kubeconfig
set -euo pipefail
RUN=$(realpath -m "${1:?usage: start.sh RUN_DIR}")
BIN=${KUBE_NODE_BIN:-$HOME/.cache/kube-node/1.20.2}; export PATH="$BIN:$PATH"   # $BIN/kubectl
API_PORT=${API_PORT:-16443}; ETCD_PORT=${ETCD_PORT:-12379}
KUBELET_PORT=${KUBELET_PORT:-10250}; KUBELET_HEALTHZ_PORT=${KUBELET_HEALTHZ_PORT:-10248}
CM_PORT=${CM_PORT:-10257}; SCHED_PORT=${SCHED_PORT:-10259}; CRI_STREAM_PORT=${CRI_STREAM_PORT:-10010}
POD_CIDR=${POD_CIDR:-10.244.0.0/24}; SERVICE_CIDR=${SERVICE_CIDR:-10.0.0.0/24}
BRIDGE=${BRIDGE:-kubenode0}; NODE_NAME=${NODE_NAME:-localhost}; NETWORK=${NETWORK:-bridge}
CTRD_SOCK=${CTRD_SOCK:-/run/kube-node-containerd/containerd.sock}
# 10.0.0.0/24 -> 10.0.0.1 (the `kubernetes` Service IP); 10.244.0.0/24 -> 10.244.0.1 (bridge gateway)
first_ip() { echo "${1%/*}" | awk -F. '{print $1"."$2"."$3"."$4+1}'; }   # network address + 1
SVC_IP=$(first_ip "$SERVICE_CIDR"); GW_IP=$(first_ip "$POD_CIDR"); GW_PREFIX=${POD_CIDR#*/}
t_start=$(date +%s.%N)
ts() { awk -v a="$t_start" -v b="$(date +%s.%N)" -v m="$*" 'BEGIN{printf "[%6.1fs] %s\n", b-a, m}' >&2; }
for b in kube-apiserver kube-controller-manager kube-scheduler kubelet etcd; do
  [ -x "$BIN/$b" ] || { echo "missing $BIN/$b: run install.sh" >&2; exit 1; }
done
running=1; for n in etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet; do
  [ -f "$RUN/$n.pid" ] && kill -0 "$(cat "$RUN/$n.pid")" 2>/dev/null || running=; done
[ -z "$running" ] || { echo "already running" >&2; echo "export KUBECONFIG=$RUN/kubeconfig"; exit 0; }
for p in "$API_PORT" "$ETCD_PORT" $((ETCD_PORT + 1)) "$KUBELET_PORT" "$KUBELET_HEALTHZ_PORT" "$CM_PORT" "$SCHED_PORT" "$CRI_STREAM_PORT"; do
  if ss -Hltn "sport = :$p" | grep -q .; then echo "port $p is already bound (ss -ltnp); set another" >&2; exit 1; fi
done
[ -S "$CTRD_SOCK" ] && ! [ -f "$RUN/containerd.pid" ] && { echo "$CTRD_SOCK exists: another containerd runs?" >&2; exit 1; }
mkdir -p "$RUN"/{pki,cni/net.d,cni/ipam,containerd,kubelet,logs}; cd "$RUN"

# --- certificates and credentials (once per RUN_DIR) ---
if [ ! -f pki/ca.crt ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout pki/ca.key -out pki/ca.crt -days 3650 -subj "/CN=kube-node-ca" 2>/dev/null
  sign() { # name subject extensions
    openssl req -newkey rsa:2048 -nodes -keyout "pki/$1.key" -out "pki/$1.csr" -subj "$2" 2>/dev/null
    openssl x509 -req -in "pki/$1.csr" -CA pki/ca.crt -CAkey pki/ca.key -CAcreateserial -days 3650 \
      -out "pki/$1.crt" -extfile <(printf '%s\n' "$3") 2>/dev/null
    rm -f "pki/$1.csr"
  }
  sign apiserver "/CN=kube-apiserver" "subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:$SVC_IP
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature,keyEncipherment"
  # the apiserver's client certificate towards the kubelet (exec, logs, port-forward)
  sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature,keyEncipherment"
  openssl genrsa -out pki/sa.key 2048 2>/dev/null; openssl rsa -in pki/sa.key -pubout -out pki/sa.pub 2>/dev/null
  tok() { head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
  cat > pki/tokens.csv <<EOF
$(tok),admin,admin,system:masters
$(tok),system:kube-controller-manager,system:kube-controller-manager
$(tok),system:kube-scheduler,system:kube-scheduler
$(tok),system:node:$NODE_NAME,system:node:$NODE_NAME,system:nodes
EOF
  chmod 600 pki/*.key pki/tokens.csv
fi
kubeconfig() { # file user
  local token; token=$(awk -F, -v u="$2" '$2==u {print $1}' pki/tokens.csv)
  cat > "$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "https://127.0.0.1:$API_PORT", certificate-authority: "$RUN/pki/ca.crt"}
users:
- name: u
  user: {token: "$token"}
contexts:
- name: local
  context: {cluster: local, user: u, namespace: default}
current-context: local
KC
}
kubeconfig kubeconfig admin
kubeconfig controller-manager.kubeconfig system:kube-controller-manager
kubeconfig scheduler.kubeconfig system:kube-scheduler
kubeconfig kubelet.kubeconfig "system:node:$NODE_NAME"

launch() { # name cmd...   (own session, detached from the caller; pid in RUN_DIR/name.pid)
  local name=$1; shift
  if [ -f "$name.pid" ] && kill -0 "$(cat "$name.pid")" 2>/dev/null; then return 0; fi
  setsid "$@" > "logs/$name.log" 2>&1 < /dev/null & echo $! > "$name.pid"
}
wait_for() { # what seconds cmd...
  local what=$1 secs=$2; shift 2
  for _ in $(seq 1 $((secs * 5))); do "$@" >/dev/null 2>&1 && { ts "$what ready"; return 0; }; sleep 0.2; done
  echo "timed out waiting for $what; logs in $RUN/logs" >&2; exit 1
}

# --- etcd + kube-apiserver ---
launch etcd "$BIN/etcd" --data-dir "$RUN/etcd-data" --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
  --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
  --initial-cluster "default=http://127.0.0.1:$((ETCD_PORT + 1))" --unsafe-no-fsync=true
wait_for etcd 30 sh -c "curl -sf http://127.0.0.1:$ETCD_PORT/health | grep -q true"
launch kube-apiserver "$BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --secure-port="$API_PORT" --insecure-port=0 --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
  --endpoint-reconciler-type=none --tls-cert-file=pki/apiserver.crt --tls-private-key-file=pki/apiserver.key \
  --client-ca-file=pki/ca.crt --token-auth-file=pki/tokens.csv \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local --service-account-key-file=pki/sa.pub \
  --service-account-signing-key-file=pki/sa.key --service-cluster-ip-range="$SERVICE_CIDR" \
  --kubelet-preferred-address-types=Hostname,InternalIP \
  --kubelet-client-certificate=pki/apiserver-kubelet-client.crt --kubelet-client-key=pki/apiserver-kubelet-client.key \
  --allow-privileged=true
export KUBECONFIG="$RUN/kubeconfig"
wait_for kube-apiserver 120 sh -c "kubectl get --raw /readyz | grep -qx ok"

# --- controller-manager + scheduler ---
launch kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig=controller-manager.kubeconfig \
  --authentication-kubeconfig=controller-manager.kubeconfig --authorization-kubeconfig=controller-manager.kubeconfig \
  --bind-address=127.0.0.1 --secure-port="$CM_PORT" --port=0 --leader-elect=false \
  --use-service-account-credentials=true --service-account-private-key-file=pki/sa.key \
  --root-ca-file=pki/ca.crt --cluster-signing-cert-file=pki/ca.crt --cluster-signing-key-file=pki/ca.key \
  --controllers='*,-cloud-node-lifecycle,-route,-service' --node-monitor-grace-period=20s
launch kube-scheduler "$BIN/kube-scheduler" --kubeconfig=scheduler.kubeconfig \
  --authentication-kubeconfig=scheduler.kubeconfig --authorization-kubeconfig=scheduler.kubeconfig \
  --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" --port=0 --leader-elect=false

# --- pod network (CNI bridge on a host-only bridge) ---
rm -f cni/net.d/*
if [ "$NETWORK" = bridge ]; then
  # Pre-create the bridge so that route_localnet can be set: pods reach the apiserver (127.0.0.1) through
  # the `kubernetes` Service IP, DNAT'ed to 127.0.0.1:API_PORT (there is no kube-proxy).
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  ip addr replace "$GW_IP/$GW_PREFIX" dev "$BRIDGE"; ip link set "$BRIDGE" up
  sysctl -qw "net.ipv4.conf.$BRIDGE.route_localnet=1"
  [ "$(cat /proc/sys/net/ipv4/ip_forward)" = 1 ] || sysctl -qw net.ipv4.ip_forward=1
  rule=(-s "$POD_CIDR" -d "$SVC_IP/32" -p tcp --dport 443 -m comment --comment "kube-node $RUN"
        -j DNAT --to-destination "127.0.0.1:$API_PORT")
  iptables -w -t nat -C PREROUTING "${rule[@]}" 2>/dev/null || iptables -w -t nat -I PREROUTING "${rule[@]}"
  # host services listening on 127.0.0.1:P, reachable from pods as GW_IP:P (e.g. test doubles of upstreams)
  for p in ${EXPOSE_HOST_PORTS:-}; do
    rule=(-s "$POD_CIDR" -d "$GW_IP/32" -p tcp --dport "$p" -m comment --comment "kube-node $RUN"
          -j DNAT --to-destination "127.0.0.1:$p")
    iptables -w -t nat -C PREROUTING "${rule[@]}" 2>/dev/null || iptables -w -t nat -I PREROUTING "${rule[@]}"
  done
  cat > cni/net.d/10-kube-node.conflist <<EOF
{
  "cniVersion": "0.4.0",
  "name": "kube-node-pods",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$GW_IP"}]],
              "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$RUN/cni/ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
else
  # No pod network: containerd still needs a CNI config to report NetworkReady (hostNetwork pods only).
  cat > cni/net.d/10-kube-node.conflist <<EOF
{"cniVersion": "0.4.0", "name": "kube-node-host-only", "plugins": [{"type": "loopback"}]}
EOF
fi

# --- containerd (CRI v1alpha2 for kubelet 1.20), runc, cgroupfs ---
cat > containerd.toml <<EOF
version = 2
root = "$RUN/containerd/root"
state = "$(dirname "$CTRD_SOCK")"
[grpc]
  address = "$CTRD_SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:3.4.1"
  disable_apparmor = true
  # CAP_SYS_RESOURCE is not in this machine's bounding set: nobody may lower oom_score_adj below 0, so
  # runc fails ("failed to update /proc/self/oom_score_adj: Permission denied") unless CRI clamps it.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "$CRI_STREAM_PORT"
  disable_tcp_service = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "$(command -v runc)"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$RUN/cni/net.d"
EOF
launch containerd containerd --config "$RUN/containerd.toml"
wait_for containerd 30 ctr --address "$CTRD_SOCK" version
for img in "$BIN/images/pause.tar" ${IMAGES:-}; do
  ctr --address "$CTRD_SOCK" -n k8s.io images import "$img" >/dev/null
done
ts "images imported"

# --- kubelet ---
# kubelet 1.20 sets vm.overcommit_memory=1, kernel.panic=10, kernel.panic_on_oops=1; stop.sh restores these
[ -f sysctl.orig ] || for k in vm.overcommit_memory kernel.panic kernel.panic_on_oops; do
  echo "$k=$(sysctl -n "$k")"; done > sysctl.orig
launch kubelet "$BIN/kubelet" --kubeconfig=kubelet.kubeconfig --hostname-override="$NODE_NAME" \
  --root-dir="$RUN/kubelet" --cert-dir="$RUN/kubelet/pki" --volume-plugin-dir="$RUN/kubelet/volume-plugins" \
  --address=127.0.0.1 --port="$KUBELET_PORT" --read-only-port=0 \
  --healthz-bind-address=127.0.0.1 --healthz-port="$KUBELET_HEALTHZ_PORT" \
  --anonymous-auth=false --client-ca-file=pki/ca.crt --authentication-token-webhook --authorization-mode=Webhook \
  --container-runtime=remote --container-runtime-endpoint="unix://$CTRD_SOCK" --runtime-request-timeout=5m \
  --pod-infra-container-image=localhost/pause:3.4.1 \
  --cgroup-driver=cgroupfs --fail-swap-on=false --make-iptables-util-chains=false \
  --image-gc-high-threshold=100 --image-gc-low-threshold=99 \
  --eviction-hard='memory.available<50Mi,nodefs.available<1%,imagefs.available<1%' \
  --node-status-update-frequency=3s --resolv-conf=/etc/resolv.conf --cluster-domain=cluster.local --v=1
wait_for "node $NODE_NAME Ready" 180 sh -c \
  "kubectl get node '$NODE_NAME' -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
# the ServiceAccount token controller has created the default SA's token (pods need it to start)
wait_for "default ServiceAccount token" 60 sh -c "kubectl get sa default -o jsonpath='{.secrets[0].name}' | grep -q ."
echo "export KUBECONFIG=$RUN/kubeconfig"
