#!/usr/bin/env bash
# Builds critest and crictl from cri-tools' source release (with its vendored
# Go modules) offline, with Go 1.23 (Debian bookworm-backports), into OUTDIR.
# Cached: nothing is rebuilt while the tarball and the Go version are the same.
#
#   scripts/k8s/build-critools.sh TARBALL OUTDIR
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 TARBALL OUTDIR" >&2; exit 2; }
TARBALL=$1
OUT=$2
GO=${GO:-/usr/lib/go-1.23/bin/go}
[ -x "$GO" ] || { echo "build-critools: $GO not found (golang-1.23-go from bookworm-backports; scripts/test-deps.sh installs it)" >&2; exit 1; }

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
stamp="$(sha256sum <"$TARBALL" | cut -d' ' -f1) $("$GO" version)"
if [ -x "$OUT/bin/critest" ] && [ -x "$OUT/bin/crictl" ] && [ "$(cat "$OUT/bin/.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "build-critools: cached in $OUT/bin"
    exit 0
fi

src="$OUT/src"
rm -rf "$src" "$OUT/bin"
mkdir -p "$src" "$OUT/bin"
tar -xzf "$TARBALL" -C "$src" --strip-components=1
version=$(sed -n 's/.*cri-tools-v\([0-9][0-9.]*\)-src.*/\1/p' <<<"$(basename "$TARBALL")")

# Offline and reproducible: the vendor/ tree only, this Go only; caches under
# OUT so a read-only home does not matter.
export GOPROXY=off GOTOOLCHAIN=local GOFLAGS="-mod=vendor -trimpath" CGO_ENABLED=0 \
    GOCACHE="$OUT/gocache" GOPATH="$OUT/gopath" GO111MODULE=on
ldflags="-X sigs.k8s.io/cri-tools/pkg/version.Version=${version:-unknown}"
(
    cd "$src"
    "$GO" test -c -o "$OUT/bin/critest" -ldflags "$ldflags" ./cmd/critest
    "$GO" build -o "$OUT/bin/crictl" -ldflags "$ldflags" ./cmd/crictl
)
echo "$stamp" >"$OUT/bin/.stamp"
echo "build-critools: critest and crictl in $OUT/bin"
