#!/usr/bin/env bash
# `make vm-systemd-test`: prepare on the host, boot the systemd + pure
# cgroup v2 VM once and run scripts/vm/systemd/suites.sh in it.
#
#   scripts/vm/systemd/test.sh [SUITE...]      (default: every suite)
#
# On the host (the VM sees the host's files, but building there under TCG
# would take ages): the VM image (build.sh, cached), rrun and the test
# binaries (cargo test --no-run), the engines' busybox image
# (scripts/engines/mkimage.sh) and the tests' shared busybox rootfs. Then
# one VM runs every suite; one PASS/FAIL line per suite; logs in
# $VM_SYSTEMD_DIR/logs/. Exits non-zero if any suite failed (or the VM
# did not report).
# Environment: VM_SYSTEMD_DIR (default target/vm-systemd),
# VM_SYSTEMD_TIMEOUT (seconds for the whole VM run, default 5400),
# RUNTIMES (default "rrun runc"; "rrun" halves the run), SUITE_TIMEOUT,
# TEST_THREADS (see suites.sh), CARGO.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$REPO"
DIR=${VM_SYSTEMD_DIR:-target/vm-systemd}
T=target/x86_64-unknown-linux-gnu
CARGO=${CARGO:-cargo}
log() { echo "vm-systemd-test: $*" >&2; }

t0=$(date +%s)
scripts/vm/systemd/build.sh "$DIR"

tests=(--test engines --test lifecycle --test exec --test cgroups)
[ -f tests/systemd.rs ] && tests+=(--test systemd)
log "building rrun and the test binaries"
"$CARGO" build
"$CARGO" test --no-run "${tests[@]}"

# What the tests would otherwise build inside the VM (minutes under TCG).
scripts/engines/mkimage.sh "$DIR/busybox.tar" >&2
if [ "$(cat "$T/test-rootfs/.done" 2>/dev/null)" != "$(cat scripts/mkrootfs.sh)" ]; then
    bash scripts/mkrootfs.sh "$T/test-rootfs"
    cp scripts/mkrootfs.sh "$T/test-rootfs/.done"
fi
prep=$(($(date +%s) - t0))
log "host preparation ${prep}s; booting the VM"

rm -rf "$DIR/logs"
rc=0
scripts/vm/systemd/run.sh --dir "$DIR" --timeout "${VM_SYSTEMD_TIMEOUT:-5400}" \
    --env "RRUN_ENGINES_IMAGE=$REPO/$DIR/busybox.tar" \
    --env "SUITE_TIMEOUT=${SUITE_TIMEOUT:-1500}" --env "TEST_THREADS=${TEST_THREADS:-2}" \
    --env "RUNTIMES=${RUNTIMES:-rrun runc}" \
    --out "$DIR/logs" scripts/vm/systemd/suites.sh "$@" || rc=$?
echo
echo "==== make vm-systemd-test: $(($(date +%s) - t0)) s in all (host preparation ${prep} s); logs in $DIR/logs/"
if [ -f "$DIR/logs/summary.txt" ]; then
    cat "$DIR/logs/summary.txt"
else
    echo "FAIL vm (no summary: the VM ended with exit $rc)"
    [ "$rc" -ne 0 ] || rc=1
fi
exit "$rc"
