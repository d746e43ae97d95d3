#!/usr/bin/env bash
# The suites of `make vm-systemd-test`, run INSIDE the systemd + pure cgroup
# v2 VM (scripts/vm/systemd/run.sh runs this as root from the repository
# root; scripts/vm/systemd/test.sh prepares everything on the host first):
#
#   scripts/vm/systemd/suites.sh [SUITE...]
#
# Suites (default: all, in this order):
#   engines-rrun, engines-runc  tests/engines.rs, engines on their systemd
#                 defaults (RRUN_ENGINES_SYSTEMD=1), rrun / runc as runtime
#   <suite>-rrun, <suite>-runc  when the tree has the systemd driver's
#                 scripts/vm/systemd-driver-tests.sh: each of its suites
#                 (systemd, lifecycle, exec, cgroups, cgroups_v2, rootless:
#                 every runtime command with --systemd-cgroup); else
#                 lifecycle, exec and cgroups, the test binaries as they
#                 are (cgroupfs driver, under this service's delegated cgroup)
#   cgroups-v2-cgroupfs-rrun, -runc  scripts/vm/cgroup-tests.sh (the checks
#                 of tests/cgroups_v2.rs) with the cgroupfs driver under
#                 this service's delegated cgroup
#   init-unit     rrun's built-in init as a systemd service
#                 (scripts/vm/systemd/init-unit-test.sh)
#   app           tests/app.rs: `rrun app` (image store, overlay, monitor,
#                 CNI networks) on this host (rrun only; not in the default
#                 list: name it)
#
# Prints one "PASS NAME (N s)" / "FAIL NAME (N s)" line per suite (and the
# tail of a failed suite's log); full logs go to $RRUN_VM_OUT/NAME.log
# (run.sh --out brings them to the host). Exits 1 if any suite failed.
# Environment: RUNTIMES (default "rrun runc": which runtimes the default
# list runs each suite with), SUITE_TIMEOUT (seconds per suite, default 1500),
# TEST_THREADS (default 2), RRUN_ENGINES_IMAGE (the prebuilt image).
set -uo pipefail

REPO=${RRUN_VM_REPO:-$(pwd)}
cd "$REPO" || exit 2
T=target/x86_64-unknown-linux-gnu
DEPS=$T/debug/deps
RRUN=$REPO/$T/debug/rrun
RUNC=$(command -v runc || true)
OUT=${RRUN_VM_OUT:-/tmp/vm-suites}
mkdir -p "$OUT"
SUITE_TIMEOUT=${SUITE_TIMEOUT:-1500}
THREADS=${TEST_THREADS:-2}
DRIVER=scripts/vm/systemd-driver-tests.sh

# shellcheck source=../test-binary.sh
. scripts/vm/test-binary.sh   # from the repository root (cd above)

if [ $# -gt 0 ]; then
    SUITES=("$@")
else
    if [ -x "$DRIVER" ]; then
        bases=(engines systemd lifecycle exec cgroups cgroups_v2 rootless cgroups-v2-cgroupfs)
    else
        bases=(engines lifecycle exec cgroups cgroups-v2-cgroupfs)
    fi
    SUITES=()
    for s in "${bases[@]}"; do
        for rt in ${RUNTIMES:-rrun runc}; do SUITES+=("$s-$rt"); done
    done
    SUITES+=(init-unit)
fi

# suite_cmd NAME: sets CMD (argv) and ENVS for the suite; 1 if unknown.
suite_cmd() {
    local name=$1 base rt bin
    base=${name%-rrun}
    base=${base%-runc}
    rt=rrun
    case $name in *-runc) rt=runc ;; esac
    ENVS=()
    if [ "$rt" = runc ]; then
        [ -n "$RUNC" ] || { CMD=(sh -c 'echo "runc not installed"; exit 1'); return 0; }
        ENVS+=("RRUN_BIN=$RUNC")
    else
        ENVS+=("RRUN_BIN=$RRUN")
    fi
    case $base in
        engines)
            bin=$(binary engines)
            ENVS+=(RRUN_ENGINES_SYSTEMD=1 "RRUN_ENGINES_IMAGE=${RRUN_ENGINES_IMAGE:-}"
                "RRUN_ENGINES_TIME_SCALE=${RRUN_ENGINES_TIME_SCALE:-4}")
            CMD=("$bin" --test-threads=1) ;;
        lifecycle | exec | cgroups | systemd | cgroups_v2 | rootless)
            if [ -x "$DRIVER" ]; then
                CMD=("$DRIVER" "$base")
            else
                bin=$(binary "$base")
                CMD=("$bin" "--test-threads=$THREADS")
            fi ;;
        cgroups-v2-cgroupfs)
            # The same checks as the busybox VM, under this service's
            # delegated cgroup (run-test enabled every controller there).
            ENVS+=("RRUN=${ENVS[0]#RRUN_BIN=}" "RRUN_VM_BUNDLE_ROOTFS=$REPO/$T/test-rootfs")
            CMD=(sh scripts/vm/cgroup-tests.sh) ;;
        init-unit)
            CMD=(scripts/vm/systemd/init-unit-test.sh) ;;
        app)
            # `rrun app` (tests/app.rs) on systemd + pure cgroup v2, on
            # Debian's kernel (overlay layers by mount(2), not fsconfig).
            bin=$(binary app)
            # Under TCG many parallel apps outlast the per-command timeout:
            # the fifty-apps test runs on the host (make test).
            ENVS+=("RRUN_APP_TEST_PARALLEL=${RRUN_APP_TEST_PARALLEL:-8}")
            CMD=("$bin" "--test-threads=$THREADS" --skip fifty_apps) ;;
        *) return 1 ;;
    esac
    [ -n "${CMD[0]}" ] || CMD=(sh -c "echo 'no test binary for $base: cargo test --no-run --test $base'; exit 1")
    return 0
}

rc=0
RESULTS=()
total_start=$(date +%s)
for s in "${SUITES[@]}"; do
    if ! suite_cmd "$s"; then
        echo "suites: unknown suite $s" >&2
        RESULTS+=("FAIL $s (unknown suite)")
        rc=1
        continue
    fi
    log=$OUT/$s.log
    echo "=== $s: ${ENVS[*]} ${CMD[*]}"
    start=$(date +%s)
    env "${ENVS[@]}" timeout -k 10 "$SUITE_TIMEOUT" "${CMD[@]}" > "$log" 2>&1 < /dev/null
    code=$?
    took=$(($(date +%s) - start))
    if [ "$code" -eq 0 ]; then
        line="PASS $s (${took} s)"
    else
        [ "$code" -eq 124 ] && echo "suites: $s timed out after ${SUITE_TIMEOUT}s" >> "$log"
        line="FAIL $s (${took} s, exit $code)"
        echo "--- last 60 lines of $s.log:"
        tail -n 60 "$log" | sed 's/^/    | /'
        rc=1
    fi
    echo "$line"
    RESULTS+=("$line")
done
echo "=== summary ($(($(date +%s) - total_start)) s)"
printf '%s\n' "${RESULTS[@]}" | tee "$OUT/summary.txt"
exit "$rc"
