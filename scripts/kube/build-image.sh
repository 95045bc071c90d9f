#!/usr/bin/env bash
# Vendored from the workplace's shared tools (tools/kube-node/build-image.sh) so that a clone of this repository alone can
# run its tests; scripts/lib.sh prefers ../shared/tools when it exists. Same caches (~/.cache), same output.
# Build small images with buildah (no registry, private buildah storage), saved as docker archives
# that `ctr -n k8s.io images import` accepts.
# Usage: build-image.sh OUT_DIR TARGET...
#   pause              -> OUT_DIR/pause.tar            localhost/pause:3.4.1 (static kubernetes pause.c)
#   httpd:TAG[:TEXT]   -> OUT_DIR/bbhttpd-TAG.tar      localhost/bbhttpd:TAG (busybox httpd -f -p 8081)
#   bin:NAME:TAG:PATH  -> OUT_DIR/NAME-TAG.tar         localhost/NAME:TAG: a dynamically linked host binary
#                         plus its ldd libraries (Debian 12 glibc, like distroless/cc-debian12), at
#                         /usr/local/bin/NAME, user 65532, entrypoint the binary
set -euo pipefail
OUT=$(realpath -m "${1:?OUT_DIR}"); shift; mkdir -p "$OUT"
SRC=$(dirname "$(realpath "$0")")
B=(buildah --root "$OUT/.buildah-root" --runroot "$OUT/.buildah-runroot" --storage-driver vfs)
save() { # ref file
  "${B[@]}" push -q "$1" "docker-archive:$2.tmp:$1"; mv "$2.tmp" "$2"; "${B[@]}" rmi "$1" >/dev/null
}
for t in "$@"; do
  case "$t" in
  pause)
    [ -s "$OUT/pause.tar" ] && continue
    tmp=$(mktemp -d)
    gcc -Os -static -DVERSION=v3.4.1-local -o "$tmp/pause" "${PAUSE_C:?PAUSE_C: path of kubernetes build/pause/linux/pause.c}"; strip "$tmp/pause"
    c=$("${B[@]}" from scratch)
    "${B[@]}" copy "$c" "$tmp/pause" /pause >/dev/null
    "${B[@]}" config --entrypoint '["/pause"]' --user 65535:65535 "$c"
    "${B[@]}" commit -q "$c" localhost/pause:3.4.1 >/dev/null; "${B[@]}" rm "$c" >/dev/null
    save localhost/pause:3.4.1 "$OUT/pause.tar"; rm -rf "$tmp";;
  httpd:*)
    IFS=: read -r _ tag text <<<"$t"; text=${text:-hello from bbhttpd $tag}
    [ -s "$OUT/bbhttpd-$tag.tar" ] && continue
    root=$(mktemp -d); mkdir -p "$root/bin" "$root/www" "$root/tmp"; chmod 1777 "$root/tmp"
    cp /bin/busybox "$root/bin/busybox"
    for a in sh ls cat wget id ps env sleep httpd touch grep; do ln -s busybox "$root/bin/$a"; done
    echo "$text" > "$root/www/index.html"
    c=$("${B[@]}" from scratch)
    "${B[@]}" copy "$c" "$root" / >/dev/null
    "${B[@]}" config --env PATH=/bin --port 8081 \
      --entrypoint '["/bin/busybox","httpd","-f","-v","-p","8081","-h","/www"]' "$c"
    "${B[@]}" commit -q "$c" "localhost/bbhttpd:$tag" >/dev/null; "${B[@]}" rm "$c" >/dev/null
    save "localhost/bbhttpd:$tag" "$OUT/bbhttpd-$tag.tar"; rm -rf "$root";;
  bin:*)
    IFS=: read -r _ name tag path <<<"$t"
    [ -s "$OUT/$name-$tag.tar" ] && continue
    root=$(mktemp -d); mkdir -p "$root/usr/local/bin" "$root/etc" "$root/tmp"; chmod 1777 "$root/tmp"
    cp "$path" "$root/usr/local/bin/$name"
    for lib in $(ldd "$path" | grep -o '/[^ ]*'); do mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"; done
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$root/etc/passwd"
    printf 'root:x:0:\nnonroot:x:65532:\n' > "$root/etc/group"
    c=$("${B[@]}" from scratch)
    "${B[@]}" copy "$c" "$root" / >/dev/null
    "${B[@]}" config --user 65532:65532 --entrypoint "[\"/usr/local/bin/$name\"]" "$c"
    "${B[@]}" commit -q "$c" "localhost/$name:$tag" >/dev/null; "${B[@]}" rm "$c" >/dev/null
    save "localhost/$name:$tag" "$OUT/$name-$tag.tar"; rm -rf "$root";;
  *) echo "unknown target $t" >&2; exit 2;;
  esac
done
rm -rf "$OUT/.buildah-root" "$OUT/.buildah-runroot" 2>/dev/null || true
echo "$OUT"
