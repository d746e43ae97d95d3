#!/usr/bin/env bash
# Boot the pure-cgroup-v2 test VM under QEMU (TCG, no KVM needed), run SCRIPT
# inside it as /test.sh, stream the console and exit with SCRIPT's code.
#
#   scripts/vm/run.sh [--initramfs FILE] [--kernel FILE] [--timeout SECS]
#                     [--env NAME=VALUE]... SCRIPT
#
# Defaults: --initramfs target/vm/initramfs.cpio.gz, --kernel the vmlinux
# (PVH) or else the vmlinuz next to it (both from scripts/vm/build-initramfs.sh target/vm), --timeout
# 300 (then qemu is killed and the exit code is 124). --env exports a
# variable to SCRIPT (repeatable). VM_MEM (MiB, default
# 1024), VM_SMP (default 2) and VM_APPEND (extra kernel arguments) tune it.
#
# SCRIPT is appended to the initramfs as a second cpio archive, so trying
# another script does not rebuild anything. The exit code comes from the
# "RRUN-VM-EXIT=<code>" line /init prints; if it is missing (kernel panic,
# init crash) the exit code is 125. Works without a terminal: stdin is
# /dev/null and the serial console goes to stdout.
set -euo pipefail
# shellcheck source=qemu-wait.sh
. "$(dirname "$0")/qemu-wait.sh"

REPO=$(cd "$(dirname "$0")/../.." && pwd)
usage() {
    echo "usage: $0 [--initramfs FILE] [--kernel FILE] [--timeout SECS] [--env NAME=VALUE]... SCRIPT" >&2
    exit 2
}

INITRAMFS=
KERNEL=
TIMEOUT=300
ENVS=()
while [ $# -gt 0 ]; do
    case $1 in
        --initramfs) [ $# -ge 2 ] || usage; INITRAMFS=$2; shift 2 ;;
        --kernel) [ $# -ge 2 ] || usage; KERNEL=$2; shift 2 ;;
        --timeout) [ $# -ge 2 ] || usage; TIMEOUT=$2; shift 2 ;;
        --env)
            [ $# -ge 2 ] || usage
            case $2 in [A-Za-z_]*=*) ;; *) usage ;; esac
            case ${2%%=*} in *[!A-Za-z0-9_]*) usage ;; esac
            ENVS+=("$2"); shift 2 ;;
        -h | --help) usage ;;
        --) shift; break ;;
        -*) usage ;;
        *) break ;;
    esac
done
[ $# -eq 1 ] || usage
SCRIPT=$1
[ -f "$SCRIPT" ] || { echo "run.sh: no such script: $SCRIPT" >&2; exit 2; }
case $TIMEOUT in '' | *[!0-9]*) usage ;; esac

INITRAMFS=${INITRAMFS:-$REPO/target/vm/initramfs.cpio.gz}
if [ -z "$KERNEL" ]; then
    KERNEL=$(dirname "$INITRAMFS")/vmlinux # PVH entry: no self-decompression
    [ -r "$KERNEL" ] || KERNEL=$(dirname "$INITRAMFS")/vmlinuz
fi
for f in "$INITRAMFS" "$KERNEL"; do
    [ -r "$f" ] || { echo "run.sh: $f missing: run scripts/vm/build-initramfs.sh target/vm" >&2; exit 2; }
done
command -v qemu-system-x86_64 >/dev/null ||
    { echo "run.sh: qemu-system-x86_64 missing (apt-get install qemu-system-x86)" >&2; exit 2; }

# Scratch space next to the initramfs (not /tmp: the combined image is as
# big as the initramfs), removed on any exit along with qemu.
TMP=$(mktemp -d "$(dirname "$INITRAMFS")/run.XXXXXX")
QPID=
WPID=
cleanup() {
    set +e # kill of an already gone pid must not end the cleanup early
    [ -n "$WPID" ] && kill "$WPID" 2>/dev/null
    if [ -n "$QPID" ] && kill -0 "$QPID" 2>/dev/null; then
        kill -TERM "$QPID" 2>/dev/null
        sleep 1
        kill -KILL "$QPID" 2>/dev/null
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$TMP/tree/etc/vm"
cp "$SCRIPT" "$TMP/tree/test.sh"
chmod 0755 "$TMP/tree/test.sh"
# /etc/vm/test.env, sourced by /init: export NAME='VALUE' (quotes escaped).
for kv in "${ENVS[@]}"; do
    v=${kv#*=}
    printf "export %s='%s'\n" "${kv%%=*}" "${v//\'/\'\\\'\'}"
done > "$TMP/tree/etc/vm/test.env"
(cd "$TMP/tree" && printf '%s\n' test.sh etc/vm/test.env | cpio --quiet -o -H newc -R 0:0) |
    gzip -1 > "$TMP/test.cpio.gz"
cat "$INITRAMFS" "$TMP/test.cpio.gz" > "$TMP/initrd.img"

# qboot (qemu-system-data) starts the kernel ~1 s sooner than SeaBIOS.
BIOS=()
for d in /usr/share/qemu /usr/share/seabios /usr/local/share/qemu; do
    [ -e "$d/qboot.rom" ] && { BIOS=(-bios qboot.rom); break; }
done

LOG=$TMP/console.log
mkfifo "$TMP/console"
# stdbuf-free streaming: tee reads the fifo as qemu writes it.
tee "$LOG" < "$TMP/console" &
TEEPID=$!

start=$(date +%s.%N)
qemu-system-x86_64 \
    -accel tcg -cpu max -smp "${VM_SMP:-2}" -m "${VM_MEM:-1024}" \
    -nographic -monitor none -serial stdio -no-reboot \
    -nodefaults -no-user-config "${BIOS[@]}" \
    -kernel "$KERNEL" -initrd "$TMP/initrd.img" \
    -append "console=ttyS0 quiet panic=-1 ${VM_APPEND:-}" \
    < /dev/null > "$TMP/console" 2>&1 &
QPID=$!

vm_wait

elapsed=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
if [ -e "$TMP/timed-out" ]; then
    echo "run.sh: VM timed out after ${elapsed}s" >&2
    exit 124
fi
code=$(tr -d '\r' < "$LOG" | sed -n 's/^RRUN-VM-EXIT=\([0-9][0-9]*\)$/\1/p' | tail -n 1)
if [ -z "$code" ]; then
    echo "run.sh: no RRUN-VM-EXIT marker (qemu exit $qrc) after ${elapsed}s" >&2
    exit 125
fi
echo "run.sh: boot+run+poweroff ${elapsed}s, test exit code $code" >&2
exit "$code"
