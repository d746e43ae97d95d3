#!/bin/sh
# cgroup v2 tests for rrun, run INSIDE the test VM (busybox sh, pure cgroup
# v2 with every controller; see scripts/vm/init). tests/cgroups_v2.rs runs it
# through scripts/vm/run.sh; by hand:
#
#   scripts/vm/run.sh scripts/vm/cgroup-tests.sh
#
# Each check prints "ok - NAME" or "not ok - NAME: DETAILS" (or "skip - NAME:
# REASON"); the script exits 1 if any check failed. Every container gets an
# absolute cgroupsPath under the harness cgroup ($RRUN_VM_CGROUP), whose
# subtree_control enables every controller.

PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RRUN=${RRUN:-rrun}
ROOTFS=${RRUN_VM_BUNDLE_ROOTFS:-/bundles/busybox/rootfs}
PARENT=${RRUN_VM_CGROUP:-/harness}
CGMNT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
STATE=/run/rrun-cgtest
WORK=/tmp/rrun-cgtest
MIB=1048576

PASS=0
FAIL=0
SKIP=0
IDS=""

ok() { echo "ok - $1"; PASS=$((PASS + 1)); }
nok() { echo "not ok - $1: $2"; FAIL=$((FAIL + 1)); }
skip() { echo "skip - $1: $2"; SKIP=$((SKIP + 1)); }

# check NAME GOT WANT
check() {
    if [ "$2" = "$3" ]; then ok "$1"; else nok "$1" "got '$2', want '$3'"; fi
}

# rr ARGS...: the runtime with a state root and a timeout.
rr() { timeout 30 "$RRUN" --root "$STATE" "$@"; }

# cg ID FILE: a file of the container's cgroup.
cg() { cat "$CGMNT$PARENT/$1/$2" 2>&1; }
cgdir() { echo "$CGMNT$PARENT/$1"; }

# Key value from a "key value" per line file: kv FILE KEY
kv() { awk -v k="$2" '$1 == k { print $2 }' "$1" 2>/dev/null; }

# bundle ID ARGS_JSON RESOURCES_JSON [DEVICES_JSON] [EXTRA_CAPS] [EXTRA_MOUNTS]
# writes $WORK/ID/config.json; the cgroupsPath is $PARENT/ID.
bundle() {
    id=$1 args=$2 res=$3 devs=${4:-[]} caps=$5 mnts=$6
    caps='"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"'${caps:+, $caps}
    mkdir -p "$WORK/$id"
    cat > "$WORK/$id/config.json" <<EOF
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": { "uid": 0, "gid": 0 },
    "args": $args,
    "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
    "cwd": "/",
    "capabilities": {
      "bounding": [$caps], "effective": [$caps], "permitted": [$caps]
    },
    "noNewPrivileges": true
  },
  "root": { "path": "$ROOTFS", "readonly": true },
  "hostname": "cgtest",
  "mounts": [
    { "destination": "/proc", "type": "proc", "source": "proc" },
    { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
      "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
      "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] },
    { "destination": "/sys", "type": "sysfs", "source": "sysfs",
      "options": ["nosuid", "noexec", "nodev", "ro"] }${mnts:+, $mnts}
  ],
  "linux": {
    "cgroupsPath": "$PARENT/$id",
    "resources": $res,
    "devices": $devs,
    "namespaces": [
      { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
      { "type": "uts" }, { "type": "mount" }
    ]
  }
}
EOF
}

# Default device rule set: deny everything (the runtime adds its defaults).
DENY='"devices": [{ "allow": false, "access": "rwm" }]'

# up ID: create and start a bundle written by `bundle`; 0 when running,
# else 1 with the runtime's error in $UPERR.
up() {
    IDS="$IDS $1"
    UPERR=
    if ! rr create --bundle "$WORK/$1" "$1" > "$WORK/$1/out" 2>&1 < /dev/null; then
        UPERR="create: $(tr '\n' ' ' < "$WORK/$1/out")"
        return 1
    fi
    if ! rr start "$1" > "$WORK/$1/start.out" 2>&1; then
        UPERR="start: $(tr '\n' ' ' < "$WORK/$1/start.out")"
        return 1
    fi
}

status() { rr state "$1" 2>/dev/null | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p'; }

# wait_for SECONDS COMMAND...: retry COMMAND every 0.1 s.
wait_for() {
    n=$(($1 * 10))
    shift
    while [ $n -gt 0 ]; do
        "$@" && return 0
        sleep 0.1
        n=$((n - 1))
    done
    return 1
}

# has_event TYPE ID FILE: a JSON line of that type and id (any key order).
has_event() { grep '"type":"'$1'"' "$3" | grep -q '"id":"'$2'"'; }

is_status() { [ "$(status "$1")" = "$2" ]; }

# down ID: kill, delete; checks the cgroup is gone.
down() {
    rr kill "$1" KILL > /dev/null 2>&1
    wait_for 10 is_status "$1" stopped
    rr delete --force "$1" > /dev/null 2>&1
}

cleanup() {
    for id in $IDS; do
        [ -d "$STATE/$id" ] && rr delete --force "$id" > /dev/null 2>&1
        d=$(cgdir "$id")
        if [ -d "$d" ]; then
            echo 0 > "$d/cgroup.freeze" 2> /dev/null
            find "$d" -depth -type d -exec rmdir {} \; 2> /dev/null
        fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

has_ctrl() { grep -qw "$1" "$CGMNT$PARENT/cgroup.subtree_control"; }

mkdir -p "$WORK" "$STATE"
echo "# rrun $($RRUN --version 2>&1 | head -n 1); cgroup2 at $CGMNT; parent $PARENT"
echo "# controllers: $(cat "$CGMNT$PARENT/cgroup.subtree_control")"
if [ -z "$CGMNT" ] || [ ! -f "$CGMNT/cgroup.controllers" ]; then
    nok "cgroup2 mounted" "no cgroup2 mount in /proc/mounts"
    exit 1
fi
if grep -q ' cgroup ' /proc/mounts; then
    nok "pure cgroup v2" "a v1 hierarchy is mounted"
fi
SLEEP='["sleep", "300"]'
# runc 1.1 (the oracle, when packed as the VM's rrun) spells it --cpu-share.
SHARES=--cpu-shares
case $($RRUN --version 2>&1) in runc*) SHARES=--cpu-share ;; esac

# --- memory: max / low / swap.max, OOM kill ------------------------------------
id=mem
bundle $id "$SLEEP" "{ $DENY, \"memory\": { \"limit\": $((16 * MIB)), \"reservation\": $((8 * MIB)), \"swap\": $((24 * MIB)) } }"
if up $id; then
    check "memory.max from limit" "$(cg $id memory.max)" $((16 * MIB))
    check "memory.low from reservation" "$(cg $id memory.low)" $((8 * MIB))
    if [ -f "$(cgdir $id)/memory.swap.max" ]; then
        check "memory.swap.max is swap - limit" "$(cg $id memory.swap.max)" $((8 * MIB))
    else
        skip "memory.swap.max is swap - limit" "no memory.swap.max (no swap accounting)"
    fi
    out=$(rr exec $id sh -c 'head -c 64m /dev/zero | tail; echo rc=$?' 2>&1)
    kills=$(kv "$(cgdir $id)/memory.events" oom_kill)
    case $out in
        *rc=137*) ok "OOM kill of a 64 MiB hog under memory.max 16 MiB" ;;
        *) nok "OOM kill of a 64 MiB hog under memory.max 16 MiB" "exec said: $out" ;;
    esac
    if [ "${kills:-0}" -gt 0 ]; then ok "memory.events oom_kill counts it"; else
        nok "memory.events oom_kill counts it" "$(cat "$(cgdir $id)/memory.events")"
    fi
    out=$(rr exec $id sh -c 'head -c 2m /dev/zero | tail | wc -c' 2>&1)
    check "2 MiB under the limit works" "$(echo $out)" 2097152
    check "container survives the OOM kill" "$(status $id)" running
    down $id
else
    nok "memory container" "$UPERR"
fi

# --- pids ------------------------------------------------------------------------
id=pids
bundle $id '["sh", "-c", "(for i in $(seq 20); do sleep 60 & done) 2>&1; echo loop-done; exec sleep 300"]' \
    "{ $DENY, \"pids\": { \"limit\": 10 } }"
if up $id; then
    check "pids.max" "$(cg $id pids.max)" 10
    wait_for 10 grep -q loop-done "$WORK/$id/out"
    if grep -q -e fork -e 'Resource temporarily' "$WORK/$id/out"; then
        ok "fork loop stops at pids.max"
    else
        nok "fork loop stops at pids.max" "$(cat "$WORK/$id/out")"
    fi
    cur=$(cg $id pids.current)
    if [ "$cur" -le 10 ] 2> /dev/null; then ok "pids.current <= 10"; else nok "pids.current <= 10" "$cur"; fi
    down $id
else
    nok "pids container" "$UPERR"
fi

# --- cpu: weight from shares, max from quota/period; cpuset -------------------
id=cpu
bundle $id "$SLEEP" "{ $DENY, \"cpu\": { \"shares\": 1024, \"quota\": 50000, \"period\": 100000, \"cpus\": \"0\", \"mems\": \"0\" } }"
if up $id; then
    check "cpu.weight from shares 1024" "$(cg $id cpu.weight)" 39
    check "cpu.max from quota/period" "$(cg $id cpu.max)" "50000 100000"
    if has_ctrl cpuset; then
        check "cpuset.cpus" "$(cg $id cpuset.cpus)" 0
        check "cpuset.mems" "$(cg $id cpuset.mems)" 0
        check "Cpus_allowed_list inside" \
            "$(rr exec $id grep Cpus_allowed_list /proc/self/status | awk '{ print $2 }')" 0
    else
        skip "cpuset" "no cpuset controller"
    fi
    down $id
else
    nok "cpu container" "$UPERR"
fi

# A busy loop under a 20% quota gets throttled (only the count of throttled
# periods is checked: CPU time under TCG emulation is too noisy to measure).
id=cpuq
bundle $id '["sh", "-c", "while :; do :; done"]' "{ $DENY, \"cpu\": { \"quota\": 20000, \"period\": 100000 } }"
if up $id; then
    sleep 2
    thr=$(kv "$(cgdir $id)/cpu.stat" nr_throttled)
    if [ "${thr:-0}" -gt 0 ]; then
        ok "cpu.max throttles a busy loop"
    else
        nok "cpu.max throttles a busy loop" "nr_throttled=$thr after 2 s: $(cat "$(cgdir $id)/cpu.stat")"
    fi
    down $id
else
    nok "cpu quota container" "$UPERR"
fi

# --- io.weight -------------------------------------------------------------------
id=io
if has_ctrl io; then
    bundle $id "$SLEEP" "{ $DENY, \"blockIO\": { \"weight\": 500 } }"
    if up $id; then
        if [ -f "$(cgdir $id)/io.weight" ]; then
            w=$(awk '$1 == "default" { print $2 }' "$(cgdir $id)/io.weight")
            check "io.weight from blkio weight 500" "$w" 4950
        else
            skip "io.weight from blkio weight 500" "no io.weight file (no iocost/BFQ)"
        fi
        down $id
    else
        nok "io container" "$UPERR"
    fi
else
    skip "io.weight" "no io controller"
fi

# --- hugetlb ---------------------------------------------------------------------
if has_ctrl hugetlb; then
    # The smallest page size (a 4 MiB limit of 1GB pages rounds down to 0).
    sizes=$(ls "$CGMNT$PARENT" | sed -n 's/^hugetlb\.\([^.]*\)\.max$/\1/p')
    size=$(echo "$sizes" | grep -E '^[0-9]+[kKM]B$' | head -n 1)
    size=${size:-$(echo "$sizes" | head -n 1)}
    id=huge
    bundle $id "$SLEEP" "{ $DENY, \"hugepageLimits\": [{ \"pageSize\": \"$size\", \"limit\": $((4 * MIB)) }] }"
    if up $id; then
        check "hugetlb.$size.max" "$(cg $id hugetlb.$size.max)" $((4 * MIB))
        down $id
    else
        nok "hugetlb container" "$UPERR"
    fi
else
    skip "hugetlb" "no hugetlb controller"
fi

# --- unified ---------------------------------------------------------------------
id=unified
bundle $id "$SLEEP" "{ $DENY, \"unified\": { \"memory.high\": \"50331648\", \"pids.max\": \"42\" } }"
if up $id; then
    check "unified memory.high as given" "$(cg $id memory.high)" 50331648
    check "unified pids.max as given" "$(cg $id pids.max)" 42
    down $id
else
    nok "unified container" "$UPERR"
fi

# --- devices (BPF allowlist) -------------------------------------------------------
DEVS='[{ "path": "/dev/mem", "type": "c", "major": 1, "minor": 1, "fileMode": 416, "uid": 0, "gid": 0 }]'
id=devdeny
bundle $id "$SLEEP" "{ $DENY }" "$DEVS" '"CAP_SYS_RAWIO"'
if up $id; then
    out=$(rr exec $id head -c1 /dev/mem 2>&1)
    case $out in
        *"Operation not permitted"*) ok "denied device cannot be opened" ;;
        *) nok "denied device cannot be opened" "head -c1 /dev/mem said: $out" ;;
    esac
    out=$(rr exec $id sh -c 'echo x > /dev/null && head -c3 /dev/zero | wc -c' 2>&1)
    check "/dev/null and /dev/zero work" "$(echo $out)" 3
    down $id
else
    nok "device deny container" "$UPERR"
fi
id=devallow
bundle $id "$SLEEP" \
    '{ "devices": [{ "allow": false, "access": "rwm" }, { "allow": true, "type": "c", "major": 1, "minor": 1, "access": "r" }] }' \
    "$DEVS" '"CAP_SYS_RAWIO"'
if up $id; then
    out=$(rr exec $id head -c1 /dev/mem 2>&1)
    case $out in
        *"Operation not permitted"*) nok "allowed device can be opened" "head -c1 /dev/mem said: $out" ;;
        *) ok "allowed device can be opened" ;;
    esac
    out=$(rr exec $id sh -c 'echo x > /dev/mem' 2>&1)
    case $out in
        *"Operation not permitted"*) ok "device allowed r only cannot be written" ;;
        *) nok "device allowed r only cannot be written" "echo x > /dev/mem said: $out" ;;
    esac
    down $id
else
    nok "device allow container" "$UPERR"
fi

# --- update ------------------------------------------------------------------------
id=upd
bundle $id "$SLEEP" "{ $DENY, \"memory\": { \"limit\": $((32 * MIB)) }, \"pids\": { \"limit\": 20 }, \"cpu\": { \"shares\": 512 } }"
if up $id; then
    if rr update --memory 64m --pids-limit 50 --cpu-quota 30000 --cpu-period 200000 \
        $SHARES 2048 --cpuset-cpus 0 $id > "$WORK/upd.out" 2>&1; then
        check "update --memory" "$(cg $id memory.max)" $((64 * MIB))
        check "update --pids-limit" "$(cg $id pids.max)" 50
        check "update --cpu-quota/--cpu-period" "$(cg $id cpu.max)" "30000 200000"
        check "update --cpu-shares 2048 (cpu.weight)" "$(cg $id cpu.weight)" 79
        has_ctrl cpuset && check "update --cpuset-cpus" "$(cg $id cpuset.cpus)" 0
    else
        nok "update flags" "$(cat "$WORK/upd.out")"
    fi
    if has_ctrl io && [ -f "$(cgdir $id)/io.weight" ]; then
        rr update --blkio-weight 300 $id > "$WORK/upd.out" 2>&1
        check "update --blkio-weight 300 (io.weight)" \
            "$(awk '$1 == "default" { print $2 }' "$(cgdir $id)/io.weight")" \
            $((1 + (290 * 9999) / 990))
    fi
    echo "{\"memory\": {\"limit\": $((48 * MIB))}, \"pids\": {\"limit\": 33}}" > "$WORK/res.json"
    rr update --resources "$WORK/res.json" $id > "$WORK/upd.out" 2>&1
    check "update --resources FILE memory" "$(cg $id memory.max)" $((48 * MIB))
    check "update --resources FILE pids" "$(cg $id pids.max)" 33
    echo "{\"pids\": {\"limit\": 22}}" | timeout 30 "$RRUN" --root "$STATE" update --resources - $id > "$WORK/upd.out" 2>&1
    check "update --resources - (stdin)" "$(cg $id pids.max)" 22
    check "memory kept across a pids update" "$(cg $id memory.max)" $((48 * MIB))

    # --- ps and events --stats on the same container ---
    rr exec --detach $id sleep 301 > /dev/null 2>&1
    sleep 0.2
    want=$(sort -n "$(cgdir $id)/cgroup.procs" | tr '\n' ' ')
    got=$(rr ps --format json $id 2>&1 | tr -d '[]' | tr ',' '\n' | sort -n | tr '\n' ' ')
    check "ps --format json lists cgroup.procs" "$got" "$want"
    rows=$(rr ps $id 2>&1 | awk 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "PID") c = i; next } c { print $c }' | sort -n | tr '\n' ' ')
    check "ps table rows are the container's" "$rows" "$want"
    ev=$(rr events --stats $id 2>&1)
    case $ev in
        *'"type":"stats"'*'"id":"'$id'"'* | *'"id":"'$id'"'*'"type":"stats"'*)
            ok "events --stats is a stats event of the container" ;;
        *) nok "events --stats is a stats event of the container" "$ev" ;;
    esac
    check "events --stats is one line" "$(echo "$ev" | wc -l)" 1
    cur=$(echo "$ev" | sed -n 's/.*"pids":{[^}]*"current":\([0-9]*\).*/\1/p')
    check "events --stats pids.current" "$cur" "$(cg $id pids.current)"
    case $ev in
        *'"limit":'$((48 * MIB))[,}]*) ok "events --stats memory limit" ;;
        *) nok "events --stats memory limit" "no \"limit\":$((48 * MIB)) in $ev" ;;
    esac
    use=$(echo "$ev" | sed -n 's/.*"memory":{.*"usage":{[^}]*"usage":\([0-9]*\).*/\1/p')
    if [ "${use:-0}" -gt 0 ]; then ok "events --stats memory usage > 0"; else nok "events --stats memory usage > 0" "$use"; fi

    # --- pause / resume ---
    rr resume $id > /dev/null 2>&1 && nok "resume of a running container fails" "it succeeded" ||
        ok "resume of a running container fails"
    if rr pause $id > "$WORK/p.out" 2>&1; then
        check "pause: state paused" "$(status $id)" paused
        check "pause: cgroup.freeze" "$(cg $id cgroup.freeze)" 1
        if grep -q '^frozen 1' "$(cgdir $id)/cgroup.events"; then ok "pause: cgroup.events frozen 1"; else
            nok "pause: cgroup.events frozen 1" "$(cat "$(cgdir $id)/cgroup.events")"
        fi
        rr pause $id > /dev/null 2>&1 && nok "pause of a paused container fails" "it succeeded" ||
            ok "pause of a paused container fails"
        rr resume $id > "$WORK/p.out" 2>&1 || nok "resume" "$(cat "$WORK/p.out")"
        check "resume: state running" "$(status $id)" running
        check "resume: cgroup.freeze" "$(cg $id cgroup.freeze)" 0
    else
        nok "pause" "$(cat "$WORK/p.out")"
    fi
    down $id
    if [ -d "$(cgdir $id)" ]; then nok "delete removes the cgroup" "$(cgdir $id) left"; else
        ok "delete removes the cgroup"
    fi
    out=$(rr update --pids-limit 5 $id 2>&1) && nok "update of a deleted container fails" "$out" ||
        ok "update of a deleted container fails"
else
    nok "update container" "$UPERR"
fi

# --- pause stops progress ------------------------------------------------------------
id=frz
mkdir -p "$WORK/frz-data"
bundle $id '["sh", "-c", "while true; do echo x >> /data/c; done"]' "{ $DENY }" '[]' '' \
    "{ \"destination\": \"/data\", \"type\": \"bind\", \"source\": \"$WORK/frz-data\", \"options\": [\"rbind\", \"rw\"] }"
if up $id; then
    wait_for 10 test -s "$WORK/frz-data/c"
    rr pause $id > "$WORK/p.out" 2>&1 || nok "pause counter" "$(cat "$WORK/p.out")"
    a=$(wc -c < "$WORK/frz-data/c")
    sleep 0.5
    b=$(wc -c < "$WORK/frz-data/c")
    check "counter frozen while paused" "$b" "$a"
    rr resume $id > /dev/null 2>&1
    sleep 0.5
    c=$(wc -c < "$WORK/frz-data/c")
    if [ "$c" -gt "$b" ]; then ok "counter grows after resume"; else nok "counter grows after resume" "$b -> $c"; fi
    # delete --force of a paused container.
    rr pause $id > /dev/null 2>&1
    if rr delete --force $id > "$WORK/p.out" 2>&1 && [ ! -d "$(cgdir $id)" ]; then
        ok "delete --force of a paused container"
    else
        nok "delete --force of a paused container" "$(cat "$WORK/p.out"); cgroup exists: $([ -d "$(cgdir $id)" ] && echo yes)"
    fi
else
    nok "freezer container" "$UPERR"
fi

# --- events stream and OOM event ----------------------------------------------------------
id=evoom
bundle $id "$SLEEP" "{ $DENY, \"memory\": { \"limit\": $((16 * MIB)), \"swap\": $((16 * MIB)) } }"
if up $id; then
    timeout 30 "$RRUN" --root "$STATE" events --interval 1s $id > "$WORK/events.out" 2>&1 &
    evpid=$!
    wait_for 10 grep -q '"type":"stats"' "$WORK/events.out"
    rr exec $id sh -c 'head -c 64m /dev/zero | tail' > /dev/null 2>&1
    if wait_for 10 has_event oom $id "$WORK/events.out"; then
        ok "events reports the OOM kill"
    else
        nok "events reports the OOM kill" "$(head -c 600 "$WORK/events.out")"
    fi
    n=$(grep '"type":"stats"' "$WORK/events.out" | grep -c '"id":"'$id'"')
    if [ "$n" -ge 1 ]; then ok "events streams stats"; else nok "events streams stats" "$(head -c 600 "$WORK/events.out")"; fi
    down $id
    wait_for 10 sh -c "! kill -0 $evpid 2> /dev/null" && ok "events ends with the container" ||
        nok "events ends with the container" "still running"
    kill $evpid 2> /dev/null
    wait $evpid 2> /dev/null
else
    nok "events container" "$UPERR"
fi

# --- delete: nested cgroups, container died on its own -------------------------------------
id=del
bundle $id "$SLEEP" "{ $DENY, \"pids\": { \"limit\": 50 } }"
if up $id; then
    mkdir -p "$(cgdir $id)/nested/deeper"
    pid=$(rr state $id | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
    kill -9 "$pid"
    wait_for 10 is_status $id stopped
    rr delete $id > "$WORK/d.out" 2>&1 || nok "delete after the container died" "$(cat "$WORK/d.out")"
    if [ -d "$(cgdir $id)" ]; then nok "delete removes nested cgroups" "$(find "$(cgdir $id)" -type d)"; else
        ok "delete removes nested cgroups"
    fi
else
    nok "delete container" "$UPERR"
fi

# --- bad input ---------------------------------------------------------------------------
id=bad
bundle $id "$SLEEP" "{ $DENY, \"memory\": { \"limit\": $((32 * MIB)), \"swap\": $((16 * MIB)) } }"
IDS="$IDS $id"
if rr create --bundle "$WORK/$id" $id > "$WORK/$id/out" 2>&1 < /dev/null; then
    nok "swap below the memory limit is refused" "create succeeded"
else
    ok "swap below the memory limit is refused"
fi
[ -d "$(cgdir $id)" ] && nok "failed create leaves no cgroup" "$(cgdir $id)" || ok "failed create leaves no cgroup"

echo "# $PASS passed, $FAIL failed, $SKIP skipped"
[ "$FAIL" -eq 0 ]
