#!/usr/bin/env bash
# Build a minimal busybox root filesystem for rrun bundles and tests.
#
#   scripts/mkrootfs.sh DEST
#
# Uses the statically linked busybox from the host (Debian: busybox-static).
# Idempotent: running it again over an existing DEST refreshes it in place.
set -euo pipefail

usage() { echo "usage: $0 DEST" >&2; exit 2; }
[ $# -eq 1 ] || usage
DEST=$1
[ -n "$DEST" ] || usage

BUSYBOX=${BUSYBOX:-/bin/busybox}
if [ ! -x "$BUSYBOX" ]; then
    echo "mkrootfs: $BUSYBOX not found; install busybox-static (apt-get install busybox-static)" >&2
    exit 1
fi
# A dynamically linked busybox would not run inside the rootfs.
if command -v file >/dev/null 2>&1; then
    if file -L "$BUSYBOX" | grep -q 'dynamically linked'; then
        echo "mkrootfs: $BUSYBOX is dynamically linked; install busybox-static" >&2
        exit 1
    fi
elif [ -n "$(LC_ALL=C readelf -l "$BUSYBOX" 2>/dev/null | grep -i 'program interpreter' || true)" ]; then
    echo "mkrootfs: $BUSYBOX is dynamically linked; install busybox-static" >&2
    exit 1
fi

mkdir -p "$DEST"
cd "$DEST"

for d in bin sbin usr/bin usr/sbin proc sys dev tmp etc root home/user var/tmp run mnt; do
    mkdir -p "$d"
done
chmod 1777 tmp var/tmp
chmod 700 root
chown 1000:1000 home/user 2>/dev/null || true

# Copy (not link) so the rootfs is self-contained; replace atomically.
cp -f "$BUSYBOX" bin/busybox.new
chmod 755 bin/busybox.new
mv -f bin/busybox.new bin/busybox

# Applet symlinks: busybox --list-full gives paths like usr/bin/env.
"$BUSYBOX" --list-full | while read -r applet; do
    [ -n "$applet" ] || continue
    [ "$applet" = "bin/busybox" ] && continue
    dir=$(dirname "$applet")
    mkdir -p "$dir"
    # relative link back to /bin/busybox
    up=$(echo "$dir" | sed -e 's#[^/][^/]*#..#g')
    ln -sfn "$up/bin/busybox" "$applet"
done
# Make sure the basics are reachable under /bin whatever the layout.
for a in sh ls cat echo id env sleep true false; do
    [ -e "bin/$a" ] || ln -sfn busybox "bin/$a"
done

cat > etc/passwd <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD

cat > etc/group <<'GROUP'
root:x:0:
user:x:1000:
extra:x:2000:user
nogroup:x:65534:
GROUP

echo rrun > etc/hostname
cat > etc/hosts <<'HOSTS'
127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
HOSTS
: > etc/resolv.conf
echo "rrun busybox rootfs" > etc/issue

echo "mkrootfs: rootfs ready in $DEST" >&2
