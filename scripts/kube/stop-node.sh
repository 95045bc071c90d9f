#!/usr/bin/env bash
# Vendored from the workplace's shared tools (tools/kube-node/stop.sh) so that a clone of this repository alone can
# run its tests; scripts/lib.sh prefers ../shared/tools when it exists. Same caches (~/.cache), same output.
# Stop what start.sh RUN_DIR started (by the process ids it recorded), tear down its pods, network,
# mounts and cgroups, and remove its state (etcd data, containerd root, kubelet dir). Keeps pki/ and logs/.
# Usage: stop.sh RUN_DIR      (idempotent; safe to run when nothing is running)
set -uo pipefail
RUN=$(realpath -m "${1:?usage: stop.sh RUN_DIR}")
[ -d "$RUN" ] || exit 0
cd "$RUN"
BRIDGE=${BRIDGE:-kubenode0}
CTRD_SOCK=$(sed -n 's/^ *address = "\(.*\)"/\1/p' containerd.toml 2>/dev/null | head -1)
CTRD_SOCK=${CTRD_SOCK:-/run/kube-node-containerd/containerd.sock}
CTRD_STATE=$(dirname "$CTRD_SOCK")
alive() { [ -f "$1.pid" ] && kill -0 "$(cat "$1.pid")" 2>/dev/null; }
stop() { # name [seconds]
  alive "$1" || { rm -f "$1.pid"; return 0; }
  local pid; pid=$(cat "$1.pid")
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 $(( ${2:-10} * 5 ))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null; rm -f "$1.pid"
}
ctrd() { ctr --address "$CTRD_SOCK" -n k8s.io "$@"; }

# 1. No new pods: stop the scheduler and controller-manager; then let the kubelet tear the pods down
#    (it runs CNI DEL and removes network namespaces through containerd).
stop kube-scheduler; stop kube-controller-manager
pod_uids=()
if alive kubelet && alive kube-apiserver && [ -f kubeconfig ]; then
  pod_uids=($(KUBECONFIG=$RUN/kubeconfig kubectl get pods -A -o jsonpath='{.items[*].metadata.uid}' 2>/dev/null))
  KUBECONFIG=$RUN/kubeconfig kubectl delete pods --all --all-namespaces --grace-period=0 --force --wait=false >/dev/null 2>&1
  for _ in $(seq 1 60); do
    alive containerd || break
    [ -z "$(ctrd tasks ls -q 2>/dev/null)" ] && break
    sleep 0.5
  done
fi
stop kubelet
if [ -f sysctl.orig ]; then while read -r kv; do sysctl -qw "$kv"; done < sysctl.orig; rm -f sysctl.orig; fi

# 2. Whatever is left in containerd: kill tasks, delete containers; remember shims and netns to clean.
shim_pids=(); netns=()
if alive containerd; then
  for id in $(ctrd containers ls -q 2>/dev/null); do
    ns=$(ctrd containers info "$id" 2>/dev/null | python3 -c 'import json,sys
for n in json.load(sys.stdin).get("Spec",{}).get("linux",{}).get("namespaces",[]):
    if n.get("type")=="network" and n.get("path"): print(n["path"])' 2>/dev/null)
    [ -n "$ns" ] && netns+=("$ns")
    ctrd tasks kill -s SIGKILL "$id" >/dev/null 2>&1
  done
  sleep 1
  for id in $(ctrd containers ls -q 2>/dev/null); do
    ctrd tasks delete -f "$id" >/dev/null 2>&1; ctrd containers delete "$id" >/dev/null 2>&1
  done
fi
for f in "$CTRD_STATE"/io.containerd.runtime.v2.task/k8s.io/*/shim.pid; do
  [ -f "$f" ] && shim_pids+=("$(cat "$f")")
done
stop containerd
for p in "${shim_pids[@]}"; do
  # only containerd shims (a recorded pid that was reused by something else is left alone)
  grep -qs containerd-shim "/proc/$p/cmdline" && kill -KILL "$p" 2>/dev/null
done
stop kube-apiserver; stop etcd

# 3. Mounts under RUN_DIR (secret tmpfs volumes, overlay rootfs), pod network namespaces, network, cgroups.
findmnt -rn -o TARGET | grep -F "$RUN/" | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
for ns in "${netns[@]}"; do
  case "$ns" in /var/run/netns/cni-*|/run/netns/cni-*) umount "$ns" 2>/dev/null; rm -f "$ns";; esac
done
iptables -w -t nat -S PREROUTING 2>/dev/null | grep -F -- "\"kube-node $RUN\"" | sed 's/^-A /-D /' |
  while read -r rule; do eval "iptables -w -t nat $rule"; done
if grep -qs '"type": "bridge"' cni/net.d/*.conflist && ip link show "$BRIDGE" >/dev/null 2>&1; then
  ip link del "$BRIDGE"
fi
for c in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/*/kubepods.slice; do
  [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null
done
# kubelet state outside --root-dir (hard-coded in 1.20): pod log dirs of this run's pods, device-plugin socket
for d in "$RUN"/kubelet/pods/*/; do [ -d "$d" ] && pod_uids+=("$(basename "$d")"); done
for uid in "${pod_uids[@]}"; do
  for l in /var/log/containers/*.log; do
    case "$(readlink "$l")" in /var/log/pods/*_"$uid"/*) rm -f "$l";; esac
  done
  rm -rf /var/log/pods/*_"$uid"
done
if [ -f kubelet.kubeconfig ]; then
  rm -f /var/lib/kubelet/device-plugins/kubelet.sock /var/lib/kubelet/device-plugins/DEPRECATION
  rmdir /var/lib/kubelet/device-plugins /var/lib/kubelet 2>/dev/null
  rmdir /var/log/pods /var/log/containers 2>/dev/null   # only when empty
fi
# containerd: its private state dir; the shim's hard-coded /run/containerd/{runc/k8s.io,s} only if empty
[ "$CTRD_STATE" != /run/containerd ] && ! alive containerd && rm -rf "$CTRD_STATE"
rmdir /run/containerd/runc/k8s.io /run/containerd/runc /run/containerd/s /run/containerd 2>/dev/null
rm -rf "$RUN/etcd-data" "$RUN/containerd" "$RUN/kubelet" "$RUN/cni"
exit 0
