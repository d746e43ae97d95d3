#!/usr/bin/env bash
# The systemd cgroup driver's tests, run inside the systemd + pure cgroup v2
# VM (make vm-systemd; scripts/vm/systemd/run.sh runs this script there as
# root, from the repository root, which the VM sees at the same path).
#
#   scripts/vm/systemd-driver-tests.sh [SUITE...]
#
# Runs the test binaries built beforehand on the host
# (cargo test --no-run --test systemd --test lifecycle --test exec
# --test cgroups): tests/systemd.rs as it is, and the lifecycle, exec and
# cgroups suites with RRUN_TEST_SYSTEMD_CGROUP=1 (every runtime command
# gets --systemd-cgroup and a system.slice:rrun-test:<unique> cgroupsPath).
# RRUN_BIN=$(command -v runc) runs the same against runc. One PASS/FAIL
# line per suite; exits non-zero if any failed. SUITE narrows the list
# (systemd, lifecycle, exec, cgroups, cgroups_v2); TEST_FILTER is passed to
# each binary as its name filter. cgroups_v2 is scripts/vm/cgroup-tests.sh
# (the pure v2 resource checks tests/cgroups_v2.rs runs in the plain VM)
# with RRUN_CG_SYSTEMD=1: every container a scope of system.slice.
# rootless: a user with lingering (its own systemd and bus) runs a rootless
# container with --systemd-cgroup: the scope is the user systemd's, under
# user@UID.service, with the pids limit, and delete leaves no unit.
set -euo pipefail

REPO=${RRUN_SD_REPO:-$(pwd)}
cd "$REPO"
DEPS=target/x86_64-unknown-linux-gnu/debug/deps

if [ ! -d /run/systemd/system ]; then
    echo "systemd-driver-tests: systemd is not PID 1 here: run this in the systemd VM" >&2
    exit 2
fi

# shellcheck source=test-binary.sh
. scripts/vm/test-binary.sh   # from the repository root, as DEPS

suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(systemd lifecycle exec cgroups cgroups_v2 rootless)

# The rootless check (see the top). Prints what failed; returns non-zero.
ROOTLESS_USER=rrunsdtest
rootless_cleanup() {
    loginctl disable-linger "$ROOTLESS_USER" >/dev/null 2>&1 || true
    systemctl stop "user@$(id -u "$ROOTLESS_USER" 2>/dev/null).service" >/dev/null 2>&1 || true
    userdel -r "$ROOTLESS_USER" >/dev/null 2>&1 || true
}
rootless() {
    local rt=$1 uid home name out
    rt=$(readlink -f "$rt")
    name=rl-$$
    useradd -m "$ROOTLESS_USER" || return 1
    uid=$(id -u "$ROOTLESS_USER")
    home=$(getent passwd "$ROOTLESS_USER" | cut -d: -f6)
    loginctl enable-linger "$ROOTLESS_USER"
    # Lingering starts the user's systemd; a second round right after a
    # cleanup may need the start asked for.
    systemctl start "user@$uid.service" || true
    for _ in $(seq 1 60); do [ -S "/run/user/$uid/bus" ] && break; sleep 1; done
    [ -S "/run/user/$uid/bus" ] || { echo "rootless: no user bus for $uid"; return 1; }
    out=$(su -s /bin/sh "$ROOTLESS_USER" -c "
        set -e
        export XDG_RUNTIME_DIR=/run/user/$uid DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/$uid/bus
        mkdir -p $home/b && cd $home/b && '$rt' spec --rootless
        python3 - <<'PY'
import json
c = json.load(open('config.json'))
c['root'] = {'path': '$REPO/target/x86_64-unknown-linux-gnu/test-rootfs', 'readonly': True}
c['process']['terminal'] = False
c['process']['args'] = ['sleep', '100']
c['linux']['resources'] = {'pids': {'limit': 42}}
json.dump(c, open('config.json', 'w'))
PY
        '$rt' --systemd-cgroup run -d $name
        pid=\$('$rt' --systemd-cgroup state $name | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"pid\"])')
        cg=\$(cut -d: -f3 /proc/\$pid/cgroup)
        echo cgroup=\$cg
        echo pids.max=\$(cat /sys/fs/cgroup\$cg/pids.max)
        systemctl --user is-active \$(basename \$cg)
        '$rt' --systemd-cgroup delete -f $name
        echo units-left=\$(systemctl --user list-units --all --no-legend --plain '*$name*' | wc -l)
    " 2>&1) || { echo "$out"; return 1; }
    echo "$out"
    case $out in
        *"cgroup=/user.slice/user-$uid.slice/user@$uid.service/user.slice/"*"-$name.scope"*) ;;
        *) echo "rootless: the scope is not the user systemd's"; return 1 ;;
    esac
    case $out in *pids.max=42*) ;; *) echo "rootless: pids.max not 42"; return 1 ;; esac
    case $out in *units-left=0*) ;; *) echo "rootless: a unit is left"; return 1 ;; esac
}
rc=0
results=()
for s in "${suites[@]}"; do
    if [ "$s" = rootless ]; then
        echo "=== $s (${RRUN_BIN:-rrun}, --systemd-cgroup, the user's systemd) ==="
        if [ ! -e /usr/lib/systemd/user/dbus.socket ] && [ ! -e /lib/systemd/user/dbus.socket ]; then
            results+=("SKIP $s: no user bus (apt-get install dbus-user-session)")
            continue
        fi
        start=$(date +%s)
        rootless_cleanup
        if rootless "${RRUN_BIN:-$REPO/target/x86_64-unknown-linux-gnu/debug/rrun}"; then
            results+=("PASS $s ($(($(date +%s) - start)) s)")
        else
            results+=("FAIL $s ($(($(date +%s) - start)) s)")
            rc=1
        fi
        rootless_cleanup
        continue
    fi
    if [ "$s" = cgroups_v2 ]; then
        echo "=== $s (${RRUN_BIN:-rrun}, --systemd-cgroup) ==="
        start=$(date +%s)
        if RRUN=${RRUN_BIN:-$REPO/target/x86_64-unknown-linux-gnu/debug/rrun} RRUN_CG_SYSTEMD=1 \
            RRUN_VM_BUNDLE_ROOTFS=$REPO/target/x86_64-unknown-linux-gnu/test-rootfs \
            sh scripts/vm/cgroup-tests.sh; then
            results+=("PASS $s ($(($(date +%s) - start)) s)")
        else
            results+=("FAIL $s ($(($(date +%s) - start)) s)")
            rc=1
        fi
        continue
    fi
    bin=$(binary "$s")
    if [ -z "$bin" ]; then
        results+=("FAIL $s: no test binary in $DEPS (cargo test --no-run --test $s)")
        rc=1
        continue
    fi
    mode=()
    [ "$s" = systemd ] || mode=(env RRUN_TEST_SYSTEMD_CGROUP=1)
    echo "=== $s (${RRUN_BIN:-rrun}${mode[*]:+, --systemd-cgroup}) ==="
    start=$(date +%s)
    if "${mode[@]}" "$bin" --test-threads=2 ${TEST_FILTER:+"$TEST_FILTER"}; then
        results+=("PASS $s ($(($(date +%s) - start)) s)")
    else
        results+=("FAIL $s ($(($(date +%s) - start)) s)")
        rc=1
    fi
    # Nothing of the tests may be left in systemd.
    left=$(systemctl list-units --all --no-legend --plain 'rrun-test-*' 'rrtest*' | awk '{print $1}')
    if [ -n "$left" ]; then
        results+=("FAIL $s: units left: $(echo $left)")
        rc=1
        for u in $left; do systemctl stop "$u" >/dev/null 2>&1 || true; done
    fi
done
printf '%s\n' "${results[@]}"
exit "$rc"
