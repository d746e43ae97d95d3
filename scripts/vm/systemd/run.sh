#!/usr/bin/env bash
# Boot the systemd + pure cgroup v2 test VM under QEMU and run SCRIPT in it
# as root, as a systemd service; stream the console, exit with SCRIPT's code.
#
#   scripts/vm/systemd/run.sh [--dir DIR] [--kernel FILE] [--timeout SECS]
#                             [--env NAME=VALUE]... [--want UNIT]...
#                             [--units DIR [--enable UNIT]...]
#                             [--out HOSTDIR] SCRIPT [ARGS...]
#
# The VM (built by scripts/vm/systemd/build.sh into --dir, default
# target/vm-systemd) runs the host's own systemd as PID 1 with only the
# unified cgroup hierarchy, on the host's root filesystem (read-only 9p)
# under a tmpfs overlay: every host path, the repository's target/ included,
# is visible at the same place, and nothing written inside reaches the host.
# /tmp, /var/tmp and /var/lib/{containers,containerd,docker} are tmpfs.
#
# SCRIPT (any executable: a #! line picks the interpreter) runs as
# rrun-vm-test.service in rrun-vm.target (basic.target + dbus), from the
# repository root, with ARGS, stdin /dev/null, PATH the usual one and
#   RRUN_VM=1 RRUN_VM_SYSTEMD=1 RRUN_VM_REPO=<repo root>
#   RRUN_VM_OUT=<dir>   files put there are copied to --out HOSTDIR
# plus each --env NAME=VALUE. --want UNIT (repeatable) starts UNIT first
# (Wants= + After=), e.g. --want docker.service --want containerd.service;
# anything else can be started by the script itself (systemctl start ...).
# --units DIR copies DIR's unit files into the VM's /etc/systemd/system
# before systemd starts, and --enable UNIT (repeatable) enables one as
# `systemctl enable` does (here, offline: systemctl --root); since the VM
# boots rrun-vm.target, what is enabled into multi-user.target is wanted by
# rrun-vm.target too: such units start AT BOOT, beside SCRIPT, which is not
# ordered after them (it waits for them itself).
#
# Exit code: SCRIPT's; 124 on --timeout (default 900 s; qemu is killed),
# 125 when the VM died without reporting one, 126 when the VM could not set
# itself up. VM_CGROUPS (v2, the default, or hybrid), VM_MEM (MiB, default 4096), VM_SMP (default 2), VM_APPEND
# (extra kernel arguments), VM_ACCEL (default tcg; kvm where available)
# tune it. Works without a terminal: the serial console goes to stdout.
set -euo pipefail
# shellcheck source=../qemu-wait.sh
. "$(dirname "$0")/../qemu-wait.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
usage() {
    echo "usage: $0 [--dir DIR] [--kernel FILE] [--timeout SECS] [--env NAME=VALUE]... [--want UNIT]... [--units DIR [--enable UNIT]...] [--out HOSTDIR] SCRIPT [ARGS...]" >&2
    exit 2
}

DIR=$REPO/target/vm-systemd
KERNEL=
TIMEOUT=900
OUTDIR=
UNITS=
ENVS=()
WANTS=()
ENABLES=()
while [ $# -gt 0 ]; do
    case $1 in
        --dir) [ $# -ge 2 ] || usage; DIR=$2; shift 2 ;;
        --kernel) [ $# -ge 2 ] || usage; KERNEL=$2; shift 2 ;;
        --timeout) [ $# -ge 2 ] || usage; TIMEOUT=$2; shift 2 ;;
        --out) [ $# -ge 2 ] || usage; OUTDIR=$2; shift 2 ;;
        --units) [ $# -ge 2 ] || usage; UNITS=$2; shift 2 ;;
        --enable)
            [ $# -ge 2 ] || usage
            case $2 in *[!A-Za-z0-9@._:-]* | '') usage ;; esac
            ENABLES+=("$2"); shift 2 ;;
        --env)
            [ $# -ge 2 ] || usage
            case $2 in [A-Za-z_]*=*) ;; *) usage ;; esac
            case ${2%%=*} in *[!A-Za-z0-9_]*) usage ;; esac
            ENVS+=("$2"); shift 2 ;;
        --want)
            [ $# -ge 2 ] || usage
            case $2 in *[!A-Za-z0-9@._:-]* | '') usage ;; esac
            WANTS+=("$2"); shift 2 ;;
        -h | --help) usage ;;
        --) shift; break ;;
        -*) usage ;;
        *) break ;;
    esac
done
[ $# -ge 1 ] || usage
SCRIPT=$1
shift
[ -f "$SCRIPT" ] || { echo "run.sh: no such script: $SCRIPT" >&2; exit 2; }
case $TIMEOUT in '' | *[!0-9]*) usage ;; esac

INITRAMFS=$DIR/initramfs.cpio.gz
if [ -z "$KERNEL" ]; then
    KERNEL=$DIR/vmlinux # PVH entry: no self-decompression
    [ -r "$KERNEL" ] || KERNEL=$DIR/vmlinuz
fi
for f in "$INITRAMFS" "$KERNEL"; do
    [ -r "$f" ] || { echo "run.sh: $f missing: run make vm-systemd (scripts/vm/systemd/build.sh)" >&2; exit 2; }
done
command -v qemu-system-x86_64 >/dev/null ||
    { echo "run.sh: qemu-system-x86_64 missing (apt-get install qemu-system-x86)" >&2; exit 2; }

# The run directory: shared writable with the VM as /rrun-vm.
TMP=$(mktemp -d "$DIR/run.XXXXXX")
QPID=
WPID=
TEEPID=
cleanup() {
    set +e # kill of an already gone pid must not end the cleanup early
    [ -n "$WPID" ] && kill "$WPID" 2>/dev/null
    if [ -n "$QPID" ] && kill -0 "$QPID" 2>/dev/null; then
        kill -TERM "$QPID" 2>/dev/null
        sleep 1
        kill -KILL "$QPID" 2>/dev/null
    fi
    [ -n "$TEEPID" ] && wait "$TEEPID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$TMP/guest" "$TMP/out"
cp "$HERE"/guest/* "$TMP/guest/"
install -m 0755 "$SCRIPT" "$TMP/test-script"
: > "$TMP/test.args"
for a in "$@"; do printf '%s\n' "$a" >> "$TMP/test.args"; done
{
    printf 'export RRUN_VM_REPO=%q\n' "$REPO"
    for e in "${ENVS[@]}"; do printf 'export %s=%q\n' "${e%%=*}" "${e#*=}"; done
} > "$TMP/test.env"
if [ -n "$UNITS" ]; then
    [ -d "$UNITS" ] || { echo "run.sh: --units $UNITS: no such directory" >&2; exit 2; }
    mkdir -p "$TMP/units/etc/systemd/system"
    cp "$UNITS"/* "$TMP/units/etc/systemd/system/"
    for u in "${ENABLES[@]}"; do
        systemctl --root="$TMP/units" --quiet enable "$u" 2>/dev/null ||
            { echo "run.sh: systemctl --root enable $u failed" >&2; exit 2; }
    done
elif [ ${#ENABLES[@]} -gt 0 ]; then
    usage
fi
if [ ${#WANTS[@]} -gt 0 ]; then
    mkdir -p "$TMP/unit.d"
    printf '[Unit]\nWants=%s\nAfter=%s\n' "${WANTS[*]}" "${WANTS[*]}" > "$TMP/unit.d/want.conf"
fi

# qboot (qemu-system-data) starts the kernel ~1 s sooner than SeaBIOS.
BIOS=()
for d in /usr/share/qemu /usr/share/seabios /usr/local/share/qemu; do
    [ -e "$d/qboot.rom" ] && { BIOS=(-bios qboot.rom); break; }
done

LOG=$TMP/console.log
mkfifo "$TMP/console"
tee "$LOG" < "$TMP/console" &
TEEPID=$!

# cgroup_no_v1=all + systemd.unified_cgroup_hierarchy=1: pure cgroup v2
# (the default); VM_CGROUPS=hybrid boots systemd's hybrid layout instead
# (v1 controllers, systemd's own tree in cgroup2 at /sys/fs/cgroup/unified:
# the v1 hosts with systemd that still exist).
APPEND="console=ttyS0 quiet panic=-1 systemd.unit=rrun-vm.target systemd.show_status=0"
case ${VM_CGROUPS:-v2} in
    v2) APPEND="$APPEND systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all" ;;
    hybrid) APPEND="$APPEND systemd.unified_cgroup_hierarchy=0 systemd.legacy_systemd_cgroup_controller=0" ;;
    *) echo "run.sh: VM_CGROUPS must be v2 or hybrid" >&2; exit 2 ;;
esac
APPEND="$APPEND ${VM_APPEND:-}"
start=$(date +%s.%N)
# multidevs=remap: the host root spans several filesystems (proc, sys, ...);
# remapping keeps inode numbers unique inside the VM.
qemu-system-x86_64 \
    -accel "${VM_ACCEL:-tcg}" -cpu max -smp "${VM_SMP:-2}" -m "${VM_MEM:-4096}" \
    -nographic -monitor none -serial stdio -no-reboot \
    -nodefaults -no-user-config "${BIOS[@]}" \
    -kernel "$KERNEL" -initrd "$INITRAMFS" -append "$APPEND" \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap,id=hostroot \
    -virtfs local,path="$TMP",mount_tag=rrunio,security_model=none,id=rrunio \
    < /dev/null > "$TMP/console" 2>&1 &
QPID=$!

vm_wait

if [ -n "$OUTDIR" ]; then
    mkdir -p "$OUTDIR"
    cp -a "$TMP/out/." "$OUTDIR/" 2>/dev/null || true
fi
elapsed=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
if [ -e "$TMP/timed-out" ]; then
    echo "run.sh: VM timed out after ${elapsed}s" >&2
    exit 124
fi
code=$(cat "$TMP/exit-code" 2>/dev/null || true)
[ -n "$code" ] || code=$(tr -d '\r' < "$LOG" | sed -n 's/^RRUN-VM-EXIT=\([0-9][0-9]*\)$/\1/p' | tail -n 1)
if [ -z "$code" ]; then
    echo "run.sh: no exit code from the VM (qemu exit $qrc) after ${elapsed}s" >&2
    exit 125
fi
echo "run.sh: boot+run+poweroff ${elapsed}s, test exit code $code" >&2
exit "$code"
