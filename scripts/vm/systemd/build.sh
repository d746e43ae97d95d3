#!/usr/bin/env bash
# Build the systemd + pure cgroup v2 test VM: a kernel and a small initramfs
# that mounts the HOST's root filesystem read-only over 9p, puts a tmpfs
# overlay on top and switch_roots into the host's own systemd.
#
#   scripts/vm/systemd/build.sh [OUT_DIR]     (default target/vm-systemd)
#
# Writes into OUT_DIR (relative paths are taken from the repository root):
#   vmlinux / vmlinuz   the newest /boot/vmlinuz-* (vmlinux: uncompressed,
#                       PVH entry, faster under TCG; VM_PVH=0 skips it)
#   initramfs.cpio.gz   static busybox, the kernel modules for 9p, virtio
#                       and overlayfs, /init (scripts/vm/systemd/init)
#   kernel-version      e.g. 6.1.0-57-amd64
#   stamp               inputs of this build; a rebuild is skipped when
#                       they did not change (VM_REBUILD=1 forces one)
#
# Everything else the VM runs (systemd, dbus, podman, containerd, dockerd,
# runc, rrun, test binaries) is the host's, seen at the same paths, so the
# image never needs rebuilding when those change. The kernel's other modules
# (veth, bridge, nf_tables, ...) are loaded inside from the host's
# /lib/modules/KVER, which must therefore belong to the chosen kernel.
#
# Environment: VM_KERNEL (default newest /boot/vmlinuz-*), VM_NO_APT=1
# (never run apt-get), VM_REBUILD=1, VM_PVH=0.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$REPO"
OUT=${1:-target/vm-systemd}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

log() { echo "vm-systemd build: $*" >&2; }
die() { log "$*"; exit 1; }

# --- host packages (only what is missing: a second run never touches apt) ---
need=()
compgen -G '/boot/vmlinuz-*' >/dev/null || [ -n "${VM_KERNEL:-}" ] || need+=(linux-image-amd64)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v cpio >/dev/null || need+=(cpio)
[ -x /lib/systemd/systemd ] || need+=(systemd)
command -v dbus-daemon >/dev/null || need+=(dbus)
if [ ! -x /bin/busybox ] || LC_ALL=C readelf -l /bin/busybox 2>/dev/null | grep -qi 'program interpreter'; then
    need+=(busybox-static)
fi
if [ ${#need[@]} -gt 0 ]; then
    [ "${VM_NO_APT:-0}" != 1 ] || die "missing packages: ${need[*]} (VM_NO_APT=1)"
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${need[@]}" >&2 ||
        { apt-get update >&2 && apt-get install -y --no-install-recommends "${need[@]}" >&2; }
fi

# --- kernel ----------------------------------------------------------------
KERNEL=${VM_KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)}
[ -r "$KERNEL" ] || die "no readable kernel image (${KERNEL:-/boot/vmlinuz-*})"
KVER=${KERNEL##*/vmlinuz-}
MODDIR=/lib/modules/$KVER
[ -r "$MODDIR/modules.dep" ] || die "$MODDIR/modules.dep missing: the VM loads its modules from there"

# Modules the initramfs loads before the host root is reachable.
MODULES="virtio_pci 9pnet_virtio 9p overlay"

stamp="kernel=$KERNEL $(stat -c '%s %Y' "$KERNEL") pvh=${VM_PVH:-1} modules=$MODULES
busybox=$(stat -c '%s %Y' /bin/busybox)
$(sha256sum "$0" scripts/vm/systemd/init | cut -d' ' -f1)"
if [ "${VM_REBUILD:-0}" != 1 ] && [ -s "$OUT/initramfs.cpio.gz" ] && [ -f "$OUT/stamp" ] &&
    [ "$(cat "$OUT/stamp")" = "$stamp" ]; then
    log "$OUT is up to date (VM_REBUILD=1 forces a rebuild)"
    exit 0
fi

log "kernel $KERNEL ($KVER)"
cp -f "$KERNEL" "$OUT/vmlinuz"
echo "$KVER" > "$OUT/kernel-version"

# Under TCG the bzImage spends seconds decompressing itself; with a PVH entry
# point (ELF note 0x12, Debian's kernels have it) QEMU boots the ELF directly.
extract_vmlinux() {
    local magic tool off
    for magic in 'xz:\xfd7zXZ\x00' 'zstd:\x28\xb5\x2f\xfd' 'gzip:\x1f\x8b\x08'; do
        tool=${magic%%:*}
        command -v "$tool" >/dev/null || continue
        for off in $(LC_ALL=C grep -obUaP "${magic#*:}" "$OUT/vmlinuz" | cut -d: -f1); do
            tail -c +$((off + 1)) "$OUT/vmlinuz" | "$tool" -dc 2>/dev/null > "$OUT/vmlinux.tmp" || true
            if LC_ALL=C readelf -n "$OUT/vmlinux.tmp" 2>/dev/null | grep -q '(0x00000012)'; then
                mv -f "$OUT/vmlinux.tmp" "$OUT/vmlinux"
                return 0
            fi
        done
    done
    rm -f "$OUT/vmlinux.tmp"
    return 1
}
rm -f "$OUT/vmlinux"
if [ "${VM_PVH:-1}" = 1 ] && command -v readelf >/dev/null && extract_vmlinux; then
    log "extracted $OUT/vmlinux (PVH boot)"
else
    log "no PVH vmlinux: booting the compressed $OUT/vmlinuz"
fi

# --- initramfs -------------------------------------------------------------
STAGE="$OUT/stage"
rm -rf "$STAGE"
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE"
scripts/mkrootfs.sh "$STAGE" 2>/dev/null
mkdir -p "$STAGE"/{lower,rw,newroot,etc/vm}

# modules.dep lines: "kernel/fs/9p/9p.ko: dep.ko ..."; dependencies are
# packed (and listed for insmod) before the module needing them.
: > "$STAGE/etc/vm/modules"
declare -A packed=()
pack_module() { # $1: path relative to $MODDIR, as in modules.dep
    local rel=$1 deps d dst
    [ -n "${packed[$rel]:-}" ] && return 0
    packed[$rel]=1
    deps=$(awk -v m="$rel" -F': *' '$1 == m { print $2 }' "$MODDIR/modules.dep")
    for d in $deps; do pack_module "$d"; done
    dst="$STAGE$MODDIR/${rel%.xz}"; dst=${dst%.zst}; dst=${dst%.gz}
    mkdir -p "$(dirname "$dst")"
    case $rel in
        *.xz) xz -dc "$MODDIR/$rel" > "$dst" ;;
        *.zst) zstd -qdc "$MODDIR/$rel" > "$dst" ;;
        *.gz) gzip -dc "$MODDIR/$rel" > "$dst" ;;
        *) cp "$MODDIR/$rel" "$dst" ;;
    esac
    echo "${dst#"$STAGE"}" >> "$STAGE/etc/vm/modules"
}
for m in $MODULES; do
    pat=$(echo "$m" | sed 's/[-_]/[-_]/g')
    rel=$(grep -E "(^|/)$pat\.ko(\.(xz|zst|gz))?:" "$MODDIR/modules.dep" | head -n 1 | cut -d: -f1)
    if [ -z "$rel" ]; then
        grep -qE "(^|/)$pat\.ko" "$MODDIR/modules.builtin" 2>/dev/null && continue
        die "module $m not found for $KVER"
    fi
    pack_module "$rel"
done
log "modules: $(tr '\n' ' ' < "$STAGE/etc/vm/modules")"

install -m 0755 scripts/vm/systemd/init "$STAGE/init"
( cd "$STAGE" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc ) |
    gzip -1 > "$OUT/initramfs.cpio.gz.tmp"
mv -f "$OUT/initramfs.cpio.gz.tmp" "$OUT/initramfs.cpio.gz"
echo "$stamp" > "$OUT/stamp"
log "wrote $OUT/initramfs.cpio.gz ($(du -h "$OUT/initramfs.cpio.gz" | cut -f1))"
