#!/usr/bin/env bash
# Builds the operator's container image from a release binary without any registry (buildah, from
# scratch), with the same layout as the Dockerfile's distroless image:
#   /usr/local/bin/reteach-personio-operator, the shared libraries `ldd` lists (Debian 12 glibc, as in
#   gcr.io/distroless/cc-debian12), /etc/passwd with the nonroot user, user 65532:65532,
#   entrypoint the binary, cmd `run --log-format=json`, port 8080, OCI labels (title, version,
#   revision, created, source, licenses), and the SBOM of the production build (CycloneDX,
#   scripts/sbom.py) at /usr/share/doc/reteach-personio-operator/sbom.cdx.json, named with its
#   SHA-256 in the labels io.reteach.sbom.path / io.reteach.sbom.sha256.
# Usage: scripts/build-image.sh BINARY OUT_DIR [TAG]
#   BINARY  a release build without the dev tools:
#           cargo build --release --no-default-features --bin reteach-personio-operator
#   OUT_DIR where the docker archive goes: OUT_DIR/reteach-personio-operator-TAG.tar
#   TAG     image tag (default: the crate version), image name localhost/reteach-personio-operator
# Prints the archive's path on its last line; the image size (uncompressed) goes to stderr.
set -euo pipefail
BINARY=$(realpath "${1:?usage: build-image.sh BINARY OUT_DIR [TAG]}")
OUT=$(realpath -m "${2:?usage: build-image.sh BINARY OUT_DIR [TAG]}")
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The source tree the binary was built from (labels, SBOM): this checkout, or RPO_IMAGE_SOURCE (a
# previous release's tree, built by tests/cluster/run.sh) with RPO_IMAGE_REVISION its commit.
SOURCE=$(realpath "${RPO_IMAGE_SOURCE:-$REPO}")
VERSION=$(sed -n '/^\[package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$SOURCE/Cargo.toml" | head -1)
TAG=${3:-$VERSION}
NAME=reteach-personio-operator
REVISION=${RPO_IMAGE_REVISION:-$(git -C "$SOURCE" rev-parse HEAD 2>/dev/null || echo unknown)}
# The commit's time, not the build's: two builds of one commit get the same labels.
CREATED=$(git -C "$REPO" log -1 --format=%cI "$REVISION" 2>/dev/null || echo 1970-01-01T00:00:00Z)
SBOM_PATH=/usr/share/doc/$NAME/sbom.cdx.json
command -v buildah >/dev/null || {
  echo "buildah is missing: apt-get install buildah (scripts/kube/install-node.sh installs it)" >&2
  exit 1
}
# The production binary carries no simulators, demo or benchmark.
if "$BINARY" --help | grep -Eq '^  (demo|bench|sim) '; then
  echo "$BINARY was built with the dev tools; build it with --no-default-features" >&2
  exit 1
fi

mkdir -p "$OUT"
STORE=$(mktemp -d "${TMPDIR:-/tmp}/rpo-buildah.XXXXXX")
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/rpo-rootfs.XXXXXX")
B=(buildah --root "$STORE/root" --runroot "$STORE/runroot" --storage-driver vfs)
cleanup() { "${B[@]}" rm --all >/dev/null 2>&1 || true; rm -rf "$STORE" "$ROOT"; }
trap cleanup EXIT

mkdir -p "$ROOT/usr/local/bin" "$ROOT/etc" "$ROOT/tmp" "$ROOT/home/nonroot"
chmod 1777 "$ROOT/tmp"
install -m 0755 "$BINARY" "$ROOT/usr/local/bin/$NAME"
# Symbols only serve a debugger, which the image has not: strip them (as the Dockerfile does).
strip --strip-unneeded "$ROOT/usr/local/bin/$NAME"
for lib in $(ldd "$BINARY" | grep -o '/[^ ]*'); do
  mkdir -p "$ROOT$(dirname "$lib")"
  cp -L "$lib" "$ROOT$lib"
done
mkdir -p "$ROOT$(dirname "$SBOM_PATH")"
python3 "$REPO/scripts/sbom.py" --source "$SOURCE" --revision "$REVISION" --output "$ROOT$SBOM_PATH"
SBOM_SHA256=$(sha256sum "$ROOT$SBOM_PATH" | cut -d' ' -f1)
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$ROOT/etc/group"
chown -R 65532:65532 "$ROOT/home/nonroot"

container=$("${B[@]}" from scratch)
"${B[@]}" copy "$container" "$ROOT" / >/dev/null
"${B[@]}" config \
  --user 65532:65532 \
  --entrypoint "[\"/usr/local/bin/$NAME\"]" \
  --cmd 'run --log-format=json' \
  --port 8080 \
  --label org.opencontainers.image.title=$NAME \
  --label "org.opencontainers.image.description=Syncs Personio employees into reteach and reteach certificates into Personio" \
  --label org.opencontainers.image.source=https://github.com/reteach/reteach-personio-operator \
  --label "org.opencontainers.image.version=$VERSION" \
  --label "org.opencontainers.image.revision=$REVISION" \
  --label org.opencontainers.image.licenses=Apache-2.0 \
  --label "org.opencontainers.image.created=$CREATED" \
  --label "io.reteach.sbom.path=$SBOM_PATH" \
  --label "io.reteach.sbom.sha256=$SBOM_SHA256" \
  --label io.reteach.sbom.format=CycloneDX-1.5 \
  "$container"
"${B[@]}" commit -q "$container" "localhost/$NAME:$TAG" >/dev/null
SIZE=$("${B[@]}" inspect --format '{{.ImageSize}}' 2>/dev/null "localhost/$NAME:$TAG" || true)
ARCHIVE="$OUT/$NAME-$TAG.tar"
"${B[@]}" push -q "localhost/$NAME:$TAG" "docker-archive:$ARCHIVE.tmp:localhost/$NAME:$TAG"
mv "$ARCHIVE.tmp" "$ARCHIVE"
binary_mib=$(awk -v b="$(stat -c %s "$ROOT/usr/local/bin/$NAME")" 'BEGIN{printf "%.1f", b/1048576}')
rootfs_mib=$(du -s --apparent-size -B1 "$ROOT" | awk '{printf "%.1f", $1/1048576}')
echo "image localhost/$NAME:$TAG: root file system ${rootfs_mib} MiB (binary ${binary_mib} MiB), archive $(stat -c %s "$ARCHIVE" | awk '{printf "%.1f", $1/1048576}') MiB${SIZE:+, buildah size $SIZE}" >&2
echo "$ARCHIVE"
