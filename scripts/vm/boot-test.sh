#!/usr/bin/env bash
# `make vm-boot-test`: a two-service compose project started AT BOOT by
# systemd (PID 1, pure cgroup v2) from the units `rrun app unit` generates,
# in the systemd test VM (scripts/vm/systemd/run.sh; `make vm-systemd`
# builds it).
#
#   scripts/vm/boot-test.sh            on the host: write the project, make
#                                      its units, boot the VM with them enabled
#   scripts/vm/boot-test.sh --guest    in the VM (run.sh runs it): the checks
#
# The project: db (healthy a few seconds after it starts, by a health check
# on a file its command creates) and web (depends on db being healthy,
# publishes a port, restart: always), both from the test web image
# (tests/common/app.rs web_image; built here by the test that makes it).
# Checked in the VM, without starting anything by hand:
#   1. both units active (started at boot through rrun-boot.target);
#   2. db was READY (= healthy) before web's unit began to start;
#   3. web answers on its published port; its container's cgroup is inside
#      its unit's cgroup; the unit's main process is the app's monitor;
#   4. kill -9 of web's program: rrun's init restarts it, web answers again,
#      the unit stays active with the same MainPID and NRestarts=0;
#   5. `systemctl stop rrun-boot.target` stops both cleanly (inactive, not
#      failed), and no app, container cgroup or mount is left.
# Exit 0 when all hold. Host environment: VM_BOOT_TIMEOUT (seconds, default
# 900) and run.sh's VM_* variables.
set -euo pipefail

P=boot
APP_ROOT=/var/tmp/rrun-boot-test # a tmpfs in the VM (an upper layer overlayfs accepts)
PORT=18080

if [ "${1:-}" != "--guest" ]; then
    HERE=$(cd "$(dirname "$0")" && pwd)
    REPO=$(cd "$HERE/../.." && pwd)
    cd "$REPO"
    T=target/x86_64-unknown-linux-gnu
    RRUN=$REPO/$T/debug/rrun
    IMG=$REPO/$T/app-test-image/web.tar
    [ -x "$RRUN" ] || { echo "boot-test: $RRUN missing: cargo build" >&2; exit 2; }
    if [ ! -f "$IMG" ]; then
        # The image the app tests use, made the way they make it.
        cargo test --test app_unit the_test_web_image_builds -- --exact >&2
    fi
    WORK=$REPO/target/vm-boot-test
    rm -rf "$WORK"
    mkdir -p "$WORK"
    cat > "$WORK/compose.yaml" <<EOF
name: $P
services:
  db:
    image: $IMG
    command: ["sh", "-c", "sleep 3; touch /tmp/ready; exec httpd -f -p 5432 -h /www"]
    healthcheck:
      test: ["CMD", "test", "-e", "/tmp/ready"]
      interval: 1s
      retries: 120
  web:
    image: $IMG
    command: ["httpd", "-f", "-p", "80", "-h", "/www"]
    ports: ["$PORT:80"]
    restart: always
    depends_on:
      db:
        condition: service_healthy
EOF
    "$RRUN" app --app-root "$APP_ROOT" unit --output "$WORK/units" -f "$WORK/compose.yaml" >/dev/null
    start=$(date +%s)
    rc=0
    "$HERE/systemd/run.sh" --dir "${VM_SYSTEMD_DIR:-$REPO/target/vm-systemd}" --timeout "${VM_BOOT_TIMEOUT:-900}" --out "$WORK/out" \
        --units "$WORK/units" --enable "rrun-$P.target" \
        "$0" --guest || rc=$?
    echo "boot-test: $( [ $rc = 0 ] && echo PASS || echo "FAIL (exit $rc)" ) in $(( $(date +%s) - start ))s (logs: $WORK/out)" >&2
    exit $rc
fi

# ---- in the VM ----
REPO=${RRUN_VM_REPO:?}
RRUN=$REPO/target/x86_64-unknown-linux-gnu/debug/rrun
OUT=${RRUN_VM_OUT:-/tmp}
DB=rrun-$P-db.service
WEB=rrun-$P-web.service
t0=$(date +%s)
say() { echo "boot-test: [$(( $(date +%s) - t0 ))s] $*"; }
fail() {
    echo "boot-test: FAIL: $*"
    systemctl status --no-pager -n 30 "$DB" "$WEB" > "$OUT/status.txt" 2>&1 || true
    journalctl -b --no-pager -u "$DB" -u "$WEB" -u "rrun-$P.target" > "$OUT/journal.txt" 2>&1 || true
    tail -n 40 "$OUT/journal.txt"
    exit 1
}
prop() { systemctl show -P "$2" "$1"; }
app() { "$RRUN" app --app-root "$APP_ROOT" "$@"; }
# live APP KEY: a field of `rrun app inspect APP`'s "live" object.
live() {
    app inspect "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["live"].get(sys.argv[1]))' "$2"
}
# Waits up to $1 seconds for the command to succeed.
wait_for() {
    local n=$(( $1 * 5 ))
    shift
    while ! "$@" >/dev/null 2>&1; do
        n=$(( n - 1 ))
        [ $n -gt 0 ] || return 1
        sleep 0.2
    done
}
active() { [ "$(prop "$1" ActiveState)" = active ]; }
failed_either() { [ "$(prop "$DB" ActiveState)" = failed ] || [ "$(prop "$WEB" ActiveState)" = failed ]; }
both_active() {
    failed_either && fail "a unit failed at boot"
    active "$DB" && active "$WEB"
}

# 1. Started at boot: nobody here starts them.
wait_for 600 both_active || fail "the units did not become active (db $(prop "$DB" ActiveState), web $(prop "$WEB" ActiveState))"
say "both units active"

# 2. db READY (healthy) before web's unit began starting.
db_ready=$(prop "$DB" ActiveEnterTimestampMonotonic)
web_began=$(prop "$WEB" InactiveExitTimestampMonotonic)
[ "$db_ready" -gt 0 ] && [ "$web_began" -ge "$db_ready" ] ||
    fail "order: db active at ${db_ready}us, web began at ${web_began}us"
[ "$(live "$P-db" health)" = healthy ] || fail "db is not healthy: $(app inspect "$P-db")"
say "db ready at ${db_ready}us, web began at ${web_began}us"

# 3. web answers; its container is in its unit's cgroup; MainPID = monitor.
get() { curl -sf -m 3 "http://127.0.0.1:$PORT/" | grep -q "hello from rrun app"; }
wait_for 60 get || fail "web does not answer on port $PORT"
init_pid=$(live "$P-web" pid)
monitor=$(live "$P-web" monitorPid)
main=$(prop "$WEB" MainPID)
[ -n "$monitor" ] && [ "$main" = "$monitor" ] || fail "web's MainPID $main is not its monitor ($monitor)"
unit_cg=$(prop "$WEB" ControlGroup)
ctr_cg=$(sed -n 's/^0:://p' "/proc/$init_pid/cgroup")
case $ctr_cg in
    "$unit_cg"/*) ;;
    *) fail "web's container cgroup $ctr_cg is not inside its unit's $unit_cg" ;;
esac
systemd-cgls --no-pager -u "$WEB" > "$OUT/cgls-web.txt" 2>&1 || true
say "web answers; container cgroup $ctr_cg; MainPID $main = monitor"

# 4. A crash of web's program: restarted inside by rrun's init; the unit
# does not notice.
prog=$(cat "/proc/$init_pid/task/$init_pid/children" | awk '{print $1}')
[ -n "$prog" ] || fail "no program under web's init ($init_pid)"
kill -9 "$prog"
restarted() {
    local p
    p=$(awk '{print $1}' "/proc/$init_pid/task/$init_pid/children" 2>/dev/null)
    [ -n "$p" ] && [ "$p" != "$prog" ] && get
}
wait_for 60 restarted || fail "web's program was not restarted after kill -9"
active "$WEB" || fail "web's unit is $(prop "$WEB" ActiveState) after the crash"
[ "$(prop "$WEB" MainPID)" = "$main" ] || fail "web's MainPID changed: $(prop "$WEB" MainPID)"
[ "$(prop "$WEB" NRestarts)" = 0 ] || fail "systemd restarted web"
say "web's program (pid $prog) killed, restarted by the init; unit active, MainPID $main"

# 5. Stop the project.
systemctl stop "rrun-$P.target" || fail "systemctl stop rrun-$P.target"
# The target's stop job returns first; the services' (PartOf) follow.
settled() {
    local u
    for u in "$WEB" "$DB"; do
        case $(prop "$u" ActiveState) in inactive | failed) ;; *) return 1 ;; esac
    done
}
wait_for 120 settled || fail "the units did not stop: web $(prop "$WEB" ActiveState), db $(prop "$DB" ActiveState)"
for u in "$WEB" "$DB"; do
    st=$(prop "$u" ActiveState)
    [ "$st" = inactive ] || fail "$u is $st after stop"
    [ "$(prop "$u" Result)" = success ] || fail "$u result $(prop "$u" Result)"
done
web_stop=$(prop "$WEB" InactiveEnterTimestampMonotonic)
db_stop=$(prop "$DB" InactiveEnterTimestampMonotonic)
[ "$web_stop" -le "$db_stop" ] || fail "db stopped before web"
left=$(app ls -a --format json)
[ "$left" = "[]" ] || fail "apps left: $left"
for u in "$WEB" "$DB"; do
    [ ! -d "/sys/fs/cgroup/system.slice/$u" ] || fail "cgroup of $u left: $(find "/sys/fs/cgroup/system.slice/$u" -type d)"
done
if grep -q "$APP_ROOT" /proc/self/mountinfo; then
    fail "mounts left: $(grep "$APP_ROOT" /proc/self/mountinfo)"
fi
journalctl -b --no-pager -u "$DB" -u "$WEB" > "$OUT/journal.txt" 2>&1 || true
say "stopped cleanly (web then db); nothing left"
say "PASS"
