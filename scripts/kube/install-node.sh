#!/usr/bin/env bash
# Vendored from the workplace's shared tools (tools/kube-node/install.sh) so that a clone of this repository alone can
# run its tests; scripts/lib.sh prefers ../shared/tools when it exists. Same caches (~/.cache), same output.
# Install everything a real single-node Kubernetes 1.20.2 cluster needs, from Debian bookworm only:
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubelet built from Debian's `kubernetes`
#   source package (upstream 1.20.2 tree + vendor/, Go 1.19), etcd (etcd-server), containerd 1.6 (CRI),
#   runc, CNI plugins, and a locally built pause image (no registry needed).
# Usage: install.sh [BIN_DIR]   (default ~/.cache/kube-node/1.20.2; idempotent, cached)
# Env: WORK (build dir, default ${TMPDIR:-/tmp}/kube-node-build), KEEP_BUILD=1 keeps the source tree + Go cache.
# Prints BIN_DIR on its last line.
set -euo pipefail
BIN=$(realpath -m "${1:-$HOME/.cache/kube-node/1.20.2}")
WORK=${WORK:-${TMPDIR:-/tmp}/kube-node-build}
SRC_DIR=$(dirname "$(realpath "$0")")
BINS=(kube-apiserver kube-controller-manager kube-scheduler kubelet)
command -v kubectl >/dev/null || BINS+=(kubectl)      # else the machine's kubectl is linked
# kube-apiserver from the kube-control-plane tool's cache, when it was built there already
CP=${CP_APISERVER-$HOME/.cache/kube-control-plane/1.20.2/kube-apiserver}   # CP_APISERVER= : always build
[ -x "$BIN/kube-apiserver" ] || { [ -n "$CP" ] && [ -x "$CP" ] && mkdir -p "$BIN" && cp "$CP" "$BIN/kube-apiserver"; } || true
missing=(); for b in "${BINS[@]}"; do [ -x "$BIN/$b" ] || missing+=("$b"); done

need=()
# runtime: command (or file) -> Debian package
for cp in containerd:containerd runc:runc /usr/lib/cni/bridge:containernetworking-plugins iptables:iptables \
          ip:iproute2 ss:iproute2 etcd:etcd-server openssl:openssl curl:curl python3:python3 \
          buildah:buildah /bin/busybox:busybox-static gcc:gcc /usr/lib/x86_64-linux-gnu/libc.a:libc6-dev; do
  c=${cp%%:*}; p=${cp#*:}
  if [ "${c:0:1}" = / ]; then [ -e "$c" ]; else command -v "$c" >/dev/null; fi || need+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then   # build
  for p in golang-1.19-go rsync make golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
  done
fi
[ ${#need[@]} -eq 0 ] || mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
if [ ${#need[@]} -gt 0 ]; then
  if [ ${#missing[@]} -gt 0 ] && ! grep -rqs "deb-src" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      > /etc/apt/sources.list.d/debian-src.sources
  fi
  apt-get update -qq >&2
  # policy-rc.d: the containerd package must not start a system containerd (on machines with an init)
  added_policy=; if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; added_policy=1; fi
  rc=0; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2 || rc=$?
  [ -z "$added_policy" ] || rm -f /usr/sbin/policy-rc.d
  [ "$rc" = 0 ] || exit "$rc"
fi
mkdir -p "$BIN/images"

if [ ${#missing[@]} -gt 0 ]; then
  t0=$(date +%s)
  echo "building ${missing[*]} 1.20.2 from Debian source (about 9 minutes on 2 cores)..." >&2
  mkdir -p "$WORK"; cd "$WORK"
  ls kubernetes_*really1.20.2.orig.tar.gz >/dev/null 2>&1 || cp "${TMPDIR:-/tmp}"/kube-apiserver-build/kubernetes_*really1.20.2.orig.tar.gz . 2>/dev/null \
    || apt-get source --download-only -qq kubernetes/bookworm >&2
  if [ ! -d kubernetes-1.20.2/_output/local/go/cache ]; then
    rm -rf kubernetes-1.20.2 && tar xzf kubernetes_*really1.20.2.orig.tar.gz
    # The vendored reflect2 1.0.1 / json-iterator 1.1.10 crash under Go >= 1.18; use Debian's newer copies.
    for d in github.com/modern-go/reflect2 github.com/json-iterator/go; do
      rm -rf "kubernetes-1.20.2/vendor/$d"; mkdir -p "kubernetes-1.20.2/vendor/$d"
      find "/usr/share/gocode/src/$d" -maxdepth 1 -name '*.go' ! -name '*_test.go' -exec cp {} "kubernetes-1.20.2/vendor/$d/" \;
    done
  fi
  cd kubernetes-1.20.2
  export PATH=/usr/lib/go-1.19/bin:$PATH; unset GOPATH GO111MODULE GOFLAGS GOCACHE   # cache: _output/local/go/cache
  [ -f pkg/generated/openapi/zz_generated.openapi.go ] || make generated_files >/dev/null
  make WHAT="$(printf 'cmd/%s ' "${missing[@]}")" GOLDFLAGS="-s -w" >/dev/null
  for b in "${missing[@]}"; do cp "_output/bin/$b" "$BIN/$b.tmp" && mv "$BIN/$b.tmp" "$BIN/$b"; done
  cd /; [ "${KEEP_BUILD:-0}" = 1 ] || rm -rf "$WORK/kubernetes-1.20.2"
  echo "built in $(( $(date +%s) - t0 ))s" >&2
fi
ln -sf "$(command -v etcd)" "$BIN/etcd"
command -v kubectl >/dev/null && [ ! -x "$BIN/kubectl" -o -L "$BIN/kubectl" ] && ln -sf "$(command -v kubectl)" "$BIN/kubectl"

# pause image, built locally from the pause.c of the same Kubernetes source (static), saved as a docker
# archive for `ctr images import`
if [ ! -s "$BIN/images/pause.tar" ]; then
  if [ ! -s "$BIN/images/pause.c" ]; then
    mkdir -p "$WORK"; cd "$WORK"
    ls kubernetes_*really1.20.2.orig.tar.gz >/dev/null 2>&1 || apt-get source --download-only -qq kubernetes/bookworm >&2
    tar xzf kubernetes_*really1.20.2.orig.tar.gz -O kubernetes-1.20.2/build/pause/linux/pause.c > "$BIN/images/pause.c"
    cd /
  fi
  PAUSE_C="$BIN/images/pause.c" "$SRC_DIR/build-image.sh" "$BIN/images" pause >/dev/null
fi
for b in kube-apiserver kube-controller-manager kube-scheduler kubelet; do echo "$b $("$BIN/$b" --version)" >&2; done
echo "$BIN"
