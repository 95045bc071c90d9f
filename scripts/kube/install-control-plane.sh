#!/usr/bin/env bash
# Vendored from the workplace's shared tools (tools/kube-control-plane/install.sh) so that a clone of this repository alone can
# run its tests; scripts/lib.sh prefers ../shared/tools when it exists. Same caches (~/.cache), same output.
# Provide a real Kubernetes control plane for tests, from Debian's packages only:
#   kube-apiserver v1.20.2 built from Debian bookworm's `kubernetes` source package (full upstream
#   tree with vendor/, compiled offline with Debian's Go 1.19), etcd 3.4 from `etcd-server`, and the
#   machine's kubectl. Result: an envtest-style assets folder holding kube-apiserver, etcd, kubectl.
# Usage: install.sh [ASSETS_DIR]   (default ~/.cache/kube-control-plane/1.20.2; idempotent, cached)
# Prints the assets folder on its last line: export KUBEBUILDER_ASSETS=$(install.sh | tail -1)
set -euo pipefail
ASSETS=$(realpath -m "${1:-$HOME/.cache/kube-control-plane/1.20.2}")
WORK=${WORK:-${TMPDIR:-/tmp}/kube-apiserver-build}
# The node install (install-node.sh) builds the same kube-apiserver: reuse it when it is there.
NODE_APISERVER=$HOME/.cache/kube-node/1.20.2/kube-apiserver
mkdir -p "$ASSETS"
if [ ! -x "$ASSETS/kube-apiserver" ] && [ -x "$NODE_APISERVER" ]; then cp "$NODE_APISERVER" "$ASSETS/kube-apiserver"; fi
need_pkgs=()
command -v etcd >/dev/null || need_pkgs+=(etcd-server)
command -v openssl >/dev/null || need_pkgs+=(openssl)
command -v curl >/dev/null || need_pkgs+=(curl)
if [ ! -x "$ASSETS/kube-apiserver" ]; then
  need_pkgs+=(golang-1.19-go rsync make golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev)
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ ! -x "$ASSETS/kube-apiserver" ] && ! grep -rqs "deb-src" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      > /etc/apt/sources.list.d/debian-src.sources
  fi
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >&2
fi
mkdir -p "$ASSETS"
if [ ! -x "$ASSETS/kube-apiserver" ]; then
  echo "building kube-apiserver 1.20.2 from Debian source (about 4 minutes on 2 cores)..." >&2
  mkdir -p "$WORK"; cd "$WORK"
  apt-get source --download-only -qq kubernetes/bookworm >&2 2>&1 || true
  rm -rf kubernetes-1.20.2 && tar xzf kubernetes_*really1.20.2.orig.tar.gz
  cd kubernetes-1.20.2
  # The vendored reflect2 1.0.1 / json-iterator 1.1.10 crash under Go >= 1.18 on the first custom
  # resource create; Debian's newer copies of both fix it.
  for d in github.com/modern-go/reflect2 github.com/json-iterator/go; do
    rm -rf "vendor/$d"; mkdir -p "vendor/$d"
    find "/usr/share/gocode/src/$d" -maxdepth 1 -name '*.go' ! -name '*_test.go' -exec cp {} "vendor/$d/" \;
  done
  export PATH=/usr/lib/go-1.19/bin:$PATH GOCACHE="$WORK/gocache"; unset GOPATH GO111MODULE GOFLAGS
  make generated_files >/dev/null
  make WHAT=cmd/kube-apiserver GOLDFLAGS="-s -w" >/dev/null
  cp _output/bin/kube-apiserver "$ASSETS/kube-apiserver.tmp" && mv "$ASSETS/kube-apiserver.tmp" "$ASSETS/kube-apiserver"
  cd / && rm -rf "$WORK/kubernetes-1.20.2"
fi
ln -sf "$(command -v etcd)" "$ASSETS/etcd"
ln -sf "$(command -v kubectl)" "$ASSETS/kubectl"
"$ASSETS/kube-apiserver" --version >&2
echo "$ASSETS"
