#!/usr/bin/env bash
# rrun's built-in init under a systemd service, run INSIDE the systemd VM
# (a suite of scripts/vm/systemd/suites.sh; needs systemd as PID 1):
#
#   RRUN_BIN=PATH scripts/vm/systemd/init-unit-test.sh
#
# A unit runs `rrun run` in the foreground on a bundle whose PID 1 is
# rrun-init (annotation rrun.init=true) and whose program traps SIGTERM.
# Checks: the unit starts and the container runs with rrun-init as its
# PID 1; `systemctl stop` ends it cleanly (the program saw SIGTERM, the
# unit is inactive with result success, well before the stop timeout); and
# nothing is left: no container state, no processes, no cgroup. With
# --systemd-cgroup support in rrun (`rrun features` reports systemd) the
# container gets its own scope (system.slice:rrun-unit:ID) and that scope
# must be gone too; else the cgroupfs driver puts it under the service's
# delegated cgroup.
# Prints "ok - ..." / "not ok - ..." lines; exits 1 if a check failed.
set -uo pipefail

REPO=${RRUN_VM_REPO:-$(pwd)}
RRUN=${RRUN_BIN:-$REPO/target/x86_64-unknown-linux-gnu/debug/rrun}
ROOTFS=${RRUN_VM_BUNDLE_ROOTFS:-$REPO/target/x86_64-unknown-linux-gnu/test-rootfs}
UNIT=rrun-init-unit-test.service
ID=rrun-unit-$$
STATE=/run/rrun-unit-test
WORK=$(mktemp -d /tmp/rrun-unit.XXXXXX)
fails=0
ok() { echo "ok - $*"; }
nok() { echo "not ok - $*"; fails=$((fails + 1)); }

[ -d /run/systemd/system ] || { echo "init-unit-test: systemd is not PID 1 here" >&2; exit 2; }
[ -x "$RRUN" ] || { echo "init-unit-test: no rrun at $RRUN" >&2; exit 2; }
[ -x "$ROOTFS/bin/busybox" ] || { echo "init-unit-test: no busybox rootfs at $ROOTFS" >&2; exit 2; }

cleanup() {
    systemctl stop "$UNIT" >/dev/null 2>&1
    systemctl reset-failed "$UNIT" >/dev/null 2>&1
    rm -f "/run/systemd/system/$UNIT"
    systemctl daemon-reload
    "$RRUN" --root "$STATE" delete --force "$ID" >/dev/null 2>&1
    rm -rf "$WORK" "$STATE"
}
trap cleanup EXIT

SYSTEMD_FLAG=
CGPATH=
if "$RRUN" features 2>/dev/null | grep -q '"systemd": *true'; then
    SYSTEMD_FLAG=--systemd-cgroup
    CGPATH=system.slice:rrun-unit:$ID
fi
echo "init-unit-test: runtime $RRUN${SYSTEMD_FLAG:+ $SYSTEMD_FLAG (cgroupsPath $CGPATH)}"

# The bundle: rrun spec, made read-only on the shared rootfs, the init on,
# a program that reports SIGTERM through a bind-mounted directory.
B=$WORK/bundle
mkdir -p "$B" "$WORK/out"
(cd "$B" && "$RRUN" spec) || { nok "rrun spec"; exit 1; }
prog='trap "echo got-term > /out/term; exit 0" TERM; echo started > /out/started; while :; do sleep 0.1; done'
jq --arg root "$ROOTFS" --arg out "$WORK/out" --arg prog "$prog" --arg cg "$CGPATH" '
    .process.terminal = false
    | .process.args = ["sh", "-c", $prog]
    | .root = { path: $root, readonly: true }
    | .mounts += [{ destination: "/out", type: "bind", source: $out, options: ["rbind", "rw"] }]
    | .annotations = { "rrun.init": "true", "rrun.stop-timeout": "10s" }
    | if $cg != "" then .linux.cgroupsPath = $cg else . end
' "$B/config.json" > "$B/config.json.new" && mv "$B/config.json.new" "$B/config.json" ||
    { nok "bundle config (jq)"; exit 1; }

cat > "/run/systemd/system/$UNIT" <<EOT
[Unit]
Description=rrun built-in init under systemd (init-unit-test.sh)

[Service]
ExecStart=$RRUN --root $STATE $SYSTEMD_FLAG run --bundle $B $ID
# rrun forwards SIGTERM to the container's init, which stops the program.
KillMode=mixed
Delegate=yes
TimeoutStopSec=30
EOT
systemctl daemon-reload

systemctl start "$UNIT" && ok "systemctl start $UNIT" || nok "systemctl start $UNIT"
started=
for _ in $(seq 1 300); do
    [ -s "$WORK/out/started" ] && { started=1; break; }
    sleep 0.1
done
[ -n "$started" ] && ok "the container's program started" || nok "the program did not start in 30 s"
st=$("$RRUN" --root "$STATE" state "$ID" 2>&1)
status=$(echo "$st" | jq -r .status 2>/dev/null)
pid=$(echo "$st" | jq -r .pid 2>/dev/null)
[ "$status" = running ] && ok "rrun state: running" || nok "rrun state: $st"
exe=$(readlink "/proc/$pid/exe" 2>/dev/null)
case $exe in
    /memfd:rrun-init*) ok "the container's PID 1 is rrun-init ($exe)" ;;
    *) nok "the container's PID 1 ($pid) runs '$exe', not rrun-init" ;;
esac
cg=$(sed -n 's/^0:://p' "/proc/$pid/cgroup" 2>/dev/null)
echo "init-unit-test: container cgroup $cg"
if [ -n "$SYSTEMD_FLAG" ]; then
    [ "$cg" = "/system.slice/rrun-unit-$ID.scope" ] && ok "the container is in its scope" ||
        nok "container cgroup '$cg', want /system.slice/rrun-unit-$ID.scope"
fi
systemctl is-active --quiet "$UNIT" && ok "$UNIT active" || nok "$UNIT not active: $(systemctl is-active "$UNIT")"

t0=$(date +%s%N)
systemctl stop "$UNIT"
took=$((($(date +%s%N) - t0) / 1000000))
[ "$(cat "$WORK/out/term" 2>/dev/null)" = got-term ] && ok "the program got SIGTERM" ||
    nok "the program did not see SIGTERM"
[ "$took" -lt 10000 ] && ok "systemctl stop took ${took} ms (< the 10 s stop timeout)" ||
    nok "systemctl stop took ${took} ms (killed at the timeout?)"
res=$(systemctl show -P Result "$UNIT")
act=$(systemctl show -P ActiveState "$UNIT")
[ "$res/$act" = success/inactive ] && ok "unit inactive, result success" ||
    nok "unit $act, result $res (main process exit $(systemctl show -P ExecMainStatus "$UNIT"))"

# Nothing left behind.
left=$("$RRUN" --root "$STATE" list -q 2>/dev/null)
[ -z "$left" ] && ok "no container state left" || nok "containers left: $left"
[ ! -e "$STATE/$ID" ] && ok "no state directory left" || nok "$STATE/$ID left"
kill -0 "$pid" 2>/dev/null && nok "the container's init $pid still runs" || ok "no process left"
if [ -n "$cg" ]; then
    [ ! -d "/sys/fs/cgroup$cg" ] && ok "cgroup $cg removed" || nok "cgroup $cg left"
fi
if [ -n "$SYSTEMD_FLAG" ]; then
    u=$(systemctl list-units --all --no-legend --plain "rrun-unit-$ID.scope" | awk '{print $1}')
    [ -z "$u" ] && ok "no scope unit left" || nok "unit left: $u"
fi
n=$(find /sys/fs/cgroup -name "*$ID*" 2>/dev/null | wc -l)
[ "$n" -eq 0 ] && ok "no cgroup named after the container anywhere" ||
    nok "cgroups left: $(find /sys/fs/cgroup -name "*$ID*" | tr '\n' ' ')"

[ "$fails" -eq 0 ] && { echo "init-unit-test: PASS"; exit 0; }
echo "init-unit-test: $fails check(s) failed"
exit 1
