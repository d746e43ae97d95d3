#!/usr/bin/env bash
# Build the pure-cgroup-v2 test VM: a kernel and a gzip'd cpio initramfs.
#
#   scripts/vm/build-initramfs.sh OUT_DIR
#
# Writes into OUT_DIR (relative paths are taken from the repository root):
#   vmlinuz            the host distribution kernel (/boot/vmlinuz-*, newest)
#   vmlinux            the same kernel uncompressed, when it can boot via PVH
#                      (faster under TCG; run.sh prefers it; VM_PVH=0: skip)
#   initramfs.cpio.gz  busybox + applet links, rrun (and VM_EXTRA_BINS) and
#                      the shared libraries they need (from ldd), a busybox
#                      test rootfs at /bundles/busybox/rootfs, optional
#                      kernel modules, /init
#   kernel-version     the kernel release, e.g. 6.1.0-56-amd64
#
# The test script is not in this archive: scripts/vm/run.sh appends it as a
# second cpio archive, so changing the script does not need a rebuild.
#
# Environment:
#   RRUN_BIN     rrun binary to pack (default target/debug/rrun). A dynamic
#                binary gets its ldd libraries packed; a static one
#                (-C target-feature=+crt-static) needs none.
#   VM_KERNEL    kernel image to use (default: newest /boot/vmlinuz-*)
#   VM_MODULES   kernel modules to pack and load at boot, e.g. "overlay veth
#                bridge" (default none: everything the cgroup tests need is
#                built into the Debian kernel). Dependencies come from
#                modules.dep; compressed modules are unpacked.
#   VM_EXTRA_BINS  more host executables to pack into /usr/local/bin, each
#                with its ldd libraries (e.g. "/usr/sbin/apparmor_parser
#                /usr/sbin/runc" for the LSM tests); default none.
#   VM_STRIP     1 (default) strips debug info from the packed rrun copy
#                (the debug build is ~60 MB, mostly DWARF); 0 keeps it.
#   VM_NO_APT    1: never run apt-get, fail if something is missing.
#
# Needs root only for apt-get and for reading /boot/vmlinuz-* (mode 0600 on
# Debian).
set -euo pipefail

usage() { echo "usage: $0 OUT_DIR" >&2; exit 2; }
[ $# -eq 1 ] && [ -n "$1" ] || usage

REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"
OUT=$1
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

log() { echo "build-initramfs: $*" >&2; }
die() { log "$*"; exit 1; }

# --- host packages -----------------------------------------------------------
# Install only what is missing, so a second run never touches apt.
need=()
compgen -G '/boot/vmlinuz-*' >/dev/null || [ -n "${VM_KERNEL:-}" ] || need+=(linux-image-amd64)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v cpio >/dev/null || need+=(cpio)
command -v gzip >/dev/null || need+=(gzip)
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

# --- kernel --------------------------------------------------------------------
KERNEL=${VM_KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)}
[ -r "$KERNEL" ] || die "no readable kernel image (${KERNEL:-/boot/vmlinuz-*})"
KVER=${KERNEL##*/vmlinuz-}
[ "$KVER" != "$KERNEL" ] || KVER=$(basename "$KERNEL")
log "kernel $KERNEL ($KVER)"
cp -f "$KERNEL" "$OUT/vmlinuz"
echo "$KVER" > "$OUT/kernel-version"

# Under TCG the bzImage spends ~2.5 s decompressing itself. When the kernel
# has a PVH entry point (CONFIG_PVH, ELF note 0x12: Debian has it), QEMU can
# boot the uncompressed ELF directly: extract it once here, run.sh prefers it.
extract_vmlinux() {
    local magic tool off
    for magic in 'xz:\xfd7zXZ\x00' 'zstd:\x28\xb5\x2f\xfd' 'gzip:\x1f\x8b\x08'; do
        tool=${magic%%:*}
        command -v "$tool" >/dev/null || continue
        for off in $(LC_ALL=C grep -obUaP "${magic#*:}" "$OUT/vmlinuz" | cut -d: -f1); do
            tail -c +$((off + 1)) "$OUT/vmlinuz" | "$tool" -dc 2>/dev/null > "$OUT/vmlinux.tmp"
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

# --- rrun ---------------------------------------------------------------------
RRUN_BIN=${RRUN_BIN:-target/debug/rrun}
[ -x "$RRUN_BIN" ] || die "$RRUN_BIN not found: run cargo build first (or set RRUN_BIN)"

# --- staging tree ----------------------------------------------------------------
STAGE="$OUT/stage"
rm -rf "$STAGE"
mkdir -p "$STAGE"
trap 'rm -rf "$STAGE"' EXIT

# The VM's own root is a busybox rootfs too: busybox, applet links, passwd.
scripts/mkrootfs.sh "$STAGE" 2>/dev/null
mkdir -p "$STAGE"/{newroot,usr/local/bin,etc/vm,bundles/busybox}
# The container rootfs the tests run on.
scripts/mkrootfs.sh "$STAGE/bundles/busybox/rootfs" 2>/dev/null

# rrun carries its built-in init inside: one binary to pack.
BINS=(rrun)
install -m 0755 "$RRUN_BIN" "$STAGE/usr/local/bin/rrun"
for b in ${VM_EXTRA_BINS:-}; do
    [ -x "$b" ] && [ -f "$b" ] || die "VM_EXTRA_BINS: $b is not an executable file"
    name=$(basename "$b")
    [ "$name" != rrun ] || die "VM_EXTRA_BINS: $b would replace rrun"
    install -m 0755 "$b" "$STAGE/usr/local/bin/$name"
    BINS+=("$name")
done
if [ "${VM_STRIP:-1}" = 1 ] && command -v strip >/dev/null; then
    for b in "${BINS[@]}"; do strip --strip-debug "$STAGE/usr/local/bin/$b"; done
fi

# Shared libraries (and the ELF interpreter), at the paths ldd reports.
copy_libs() {
    local bin=$1 lib
    # "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and
    # "/lib64/ld-linux-x86-64.so.2 (0x...)"; static: "not a dynamic executable".
    for lib in $(ldd "$bin" 2>/dev/null | sed -n -e 's/.*=> \(\/[^ ]*\) .*/\1/p' -e 's/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p'); do
        [ -e "$STAGE$lib" ] && continue
        mkdir -p "$STAGE$(dirname "$lib")"
        cp -L "$lib" "$STAGE$lib"
    done
}
for b in "${BINS[@]}"; do copy_libs "$STAGE/usr/local/bin/$b"; done

# --- kernel modules ----------------------------------------------------------------
# modules.dep lines: "kernel/fs/overlayfs/overlay.ko: dep.ko ..." (deps are
# listed so that loading them right to left satisfies each one).
MODDIR=/lib/modules/$KVER
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
for m in ${VM_MODULES:-}; do
    [ -r "$MODDIR/modules.dep" ] || die "$MODDIR/modules.dep missing: cannot pack $m"
    # Module names treat - and _ alike.
    pat=$(echo "$m" | sed 's/[-_]/[-_]/g')
    rel=$(grep -E "(^|/)$pat\.ko(\.(xz|zst|gz))?:" "$MODDIR/modules.dep" | head -n 1 | cut -d: -f1)
    if [ -z "$rel" ]; then
        if grep -qE "(^|/)$pat\.ko" "$MODDIR/modules.builtin" 2>/dev/null; then
            log "module $m is built in"
            continue
        fi
        die "module $m not found for $KVER"
    fi
    pack_module "$rel"
done
[ -s "$STAGE/etc/vm/modules" ] && log "modules: $(tr '\n' ' ' < "$STAGE/etc/vm/modules")"

# --- /init ----------------------------------------------------------------------
install -m 0755 scripts/vm/init "$STAGE/init"
echo "$KVER" > "$STAGE/etc/vm/kernel-version"

# --- archive ----------------------------------------------------------------------
( cd "$STAGE" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc ) |
    gzip -1 > "$OUT/initramfs.cpio.gz.tmp"
# Pad to 4 bytes so run.sh can append another archive (zeros are skipped).
size=$(stat -c %s "$OUT/initramfs.cpio.gz.tmp")
pad=$(( (4 - size % 4) % 4 ))
[ "$pad" -eq 0 ] || head -c "$pad" /dev/zero >> "$OUT/initramfs.cpio.gz.tmp"
mv -f "$OUT/initramfs.cpio.gz.tmp" "$OUT/initramfs.cpio.gz"
log "wrote $OUT/initramfs.cpio.gz ($(du -h "$OUT/initramfs.cpio.gz" | cut -f1)) and $OUT/vmlinuz"
