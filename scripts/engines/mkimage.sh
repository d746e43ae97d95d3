#!/usr/bin/env bash
# Build a one-layer busybox image as a docker-archive (the `docker save`
# format), loadable by `docker load`, `ctr images import` and `podman load`,
# without any registry: the layer is the rootfs made by scripts/mkrootfs.sh.
#
#   scripts/engines/mkimage.sh OUT.tar [NAME:TAG]     (default localhost/busybox:rrun-test)
#
# Needs tar and sha256sum. The archive is reproducible for a given rootfs.
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: $0 OUT.tar [NAME:TAG]" >&2; exit 2; }
OUT=$1
TAG=${2:-localhost/busybox:rrun-test}
HERE=$(cd "$(dirname "$0")" && pwd)

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

"$HERE/../mkrootfs.sh" "$WORK/rootfs" >/dev/null
mkdir -p "$WORK/img"
tar --sort=name --mtime=@0 --numeric-owner -C "$WORK/rootfs" -cf "$WORK/layer.tar" .
layer=$(sha256sum "$WORK/layer.tar" | cut -d' ' -f1)
mkdir -p "$WORK/img/$layer"
mv "$WORK/layer.tar" "$WORK/img/$layer/layer.tar"

cat > "$WORK/config.json" <<JSON
{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z",
 "config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh"]},
 "rootfs":{"type":"layers","diff_ids":["sha256:$layer"]},
 "history":[{"created":"1970-01-01T00:00:00Z","created_by":"scripts/engines/mkimage.sh"}]}
JSON
cfg=$(sha256sum "$WORK/config.json" | cut -d' ' -f1)
mv "$WORK/config.json" "$WORK/img/$cfg.json"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]\n' "$cfg" "$TAG" "$layer" \
    > "$WORK/img/manifest.json"
printf '{"%s":{"%s":"%s"}}\n' "${TAG%:*}" "${TAG##*:}" "$layer" > "$WORK/img/repositories"

mkdir -p "$(dirname "$OUT")"
tar --sort=name --mtime=@0 --numeric-owner -C "$WORK/img" -cf "$OUT.tmp" .
mv "$OUT.tmp" "$OUT"
echo "mkimage: $TAG in $OUT"
