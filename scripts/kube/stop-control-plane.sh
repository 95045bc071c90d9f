#!/usr/bin/env bash
# Vendored from the workplace's shared tools (tools/kube-control-plane/stop.sh) so that a clone of this repository alone can
# run its tests; scripts/lib.sh prefers ../shared/tools when it exists. Same caches (~/.cache), same output.
# Stop what start.sh RUN_DIR started (by the process ids it recorded), and remove its data.
RUN=$(realpath -m "$1")
for p in apiserver etcd; do
  if [ -f "$RUN/$p.pid" ]; then kill "$(cat "$RUN/$p.pid")" 2>/dev/null || true; rm -f "$RUN/$p.pid"; fi
done
sleep 1
rm -rf "$RUN/etcd-data"
