#!/bin/sh
# AppArmor tests, run INSIDE the test VM (busybox sh; see scripts/vm/init):
# Debian's kernel has AppArmor built in and on by default, and /init mounts
# securityfs. tests/lsm.rs runs it through scripts/vm/run.sh with
# apparmor_parser (and runc) packed (VM_EXTRA_BINS); by hand:
#
#   VM_EXTRA_BINS="/usr/sbin/apparmor_parser /usr/sbin/runc" \
#       scripts/vm/build-initramfs.sh target/vm-lsm
#   scripts/vm/run.sh --initramfs target/vm-lsm/initramfs.cpio.gz \
#       --env RUNTIMES="rrun runc" scripts/vm/lsm-tests.sh
#
# It loads a profile, rrun-test (everything allowed but reading
# /etc/group), and checks for each runtime in $RUNTIMES (default rrun):
# a container with process.apparmorProfile runs its program in the profile
# (attr/current, and EACCES on /etc/group) and its init is still
# unconfined until start; exec --apparmor confines an exec'd process and
# an exec'd process inherits the container's profile; an unknown profile
# fails create (one line, nothing left) and exec (container unharmed).
# Unconfined controls show the checks can fail. Each check prints "ok -
# NAME" or "not ok - NAME: DETAILS"; exit 1 if any failed.

PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUNTIMES=${RUNTIMES:-rrun}
ROOTFS=${RRUN_VM_BUNDLE_ROOTFS:-/bundles/busybox/rootfs}
PARENT=${RRUN_VM_CGROUP:-/harness}
CGMNT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
SECFS=/sys/kernel/security
WORK=/tmp/rrun-lsmtest
PROFILE=rrun-test
NOPE=rrun-no-such-profile

PASS=0
FAIL=0

ok() { echo "ok - $1"; PASS=$((PASS + 1)); }
nok() { echo "not ok - $1: $2"; FAIL=$((FAIL + 1)); }
# check NAME GOT WANT
check() {
    if [ "$2" = "$3" ]; then ok "$1"; else nok "$1" "got '$2', want '$3'"; fi
}
# has NAME TEXT NEEDLE
has() {
    case $2 in
        *"$3"*) ok "$1" ;;
        *) nok "$1" "no '$3' in: $(echo "$2" | tr '\n' '|')" ;;
    esac
}
# lacks NAME TEXT NEEDLE
lacks() {
    case $2 in
        *"$3"*) nok "$1" "'$3' in: $(echo "$2" | tr '\n' '|')" ;;
        *) ok "$1" ;;
    esac
}

# --- the VM's AppArmor and the test profile ------------------------------------
if ! grep -qw apparmor "$SECFS/lsm" 2>/dev/null; then
    nok "AppArmor is enabled in the VM kernel" "lsm: $(cat "$SECFS/lsm" 2>&1)"
    echo "# $PASS passed, $FAIL failed"
    exit 1
fi
ok "AppArmor is enabled in the VM kernel ($(cat "$SECFS/lsm"))"
mkdir -p "$WORK"
# attach_disconnected: after pivot_root the container's files lie outside
# the mount namespace's root; the profile names them from the container's /.
cat > "$WORK/profile" <<EOF
profile $PROFILE flags=(attach_disconnected,mediate_deleted) {
  file,
  capability,
  network,
  mount,
  umount,
  pivot_root,
  ptrace,
  signal,
  unix,
  deny /etc/group r,
}
EOF
if out=$(apparmor_parser -r -K "$WORK/profile" 2>&1); then
    ok "apparmor_parser loads $PROFILE"
else
    nok "apparmor_parser loads $PROFILE" "$out"
fi
has "$PROFILE is loaded in enforce mode" "$(cat "$SECFS/apparmor/profiles")" "$PROFILE (enforce)"
check "this shell is unconfined" "$(cat /proc/self/attr/current)" "unconfined"

# --- per runtime -----------------------------------------------------------------
# bundle ID PROFILE ARGS_JSON: $WORK/ID/config.json; PROFILE "" for none.
bundle() {
    mkdir -p "$WORK/$1"
    aa=
    [ -n "$2" ] && aa="\"apparmorProfile\": \"$2\","
    cat > "$WORK/$1/config.json" <<EOF
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": { "uid": 0, "gid": 0 },
    "args": $3,
    "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
    "cwd": "/",
    $aa
    "capabilities": {
      "bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]
    },
    "noNewPrivileges": true
  },
  "root": { "path": "$ROOTFS", "readonly": true },
  "hostname": "lsmtest",
  "mounts": [
    { "destination": "/proc", "type": "proc", "source": "proc" },
    { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
      "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] }
  ],
  "linux": {
    "cgroupsPath": "$PARENT/$1",
    "namespaces": [
      { "type": "pid" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" }
    ]
  }
}
EOF
}

# What the container's program reports about itself.
PROBE='["sh", "-c", "cat /proc/self/attr/current; cat /proc/self/attr/apparmor/current; cat /etc/passwd > /dev/null && echo passwd-read; cat /etc/group 2>&1 > /dev/null; echo end"]'
SLEEP='["sleep", "3001"]'
# Run inside a container by exec: the same probe.
probe() { rr exec "$@" sh -c 'cat /proc/self/attr/current; cat /etc/group 2>&1 > /dev/null; echo end' 2>&1; }

# pid ID: the container's init pid, from state.
pid_of() { rr state "$1" 2>/dev/null | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p'; }
# leftovers ID: what a failed create left behind, or nothing.
leftovers() {
    left=
    [ -e "$STATE/$1" ] && left="$left state dir $STATE/$1;"
    [ -d "$CGMNT$PARENT/$1" ] && left="$left cgroup $PARENT/$1;"
    rr list 2>/dev/null | grep -qw "$1" && left="$left listed;"
    for p in /proc/[0-9]*; do
        grep -q "sleep.3002" "$p/cmdline" 2>/dev/null && left="$left process ${p#/proc/};"
    done
    echo "$left"
}

for RT in $RUNTIMES; do
    T=$(basename "$RT")
    STATE=/run/lsmtest-$T
    rr() { timeout 30 "$RT" --root "$STATE" "$@"; }
    echo "# runtime $T: $("$RT" --version 2>&1 | head -n 1)"
    ids=
    has "$T: features says AppArmor is enabled" "$("$RT" features 2>&1 | tr -d ' \n')" '"apparmor":{"enabled":true}'

    # A container in the profile: the program is confined; reading
    # /etc/group is denied (EACCES) while /etc/passwd is not.
    id=$T-aa
    ids="$ids $id"
    bundle $id $PROFILE "$PROBE"
    out=$(rr run --bundle "$WORK/$id" $id 2>&1 < /dev/null)
    check "$T: run with apparmorProfile: attr/current" "$(echo "$out" | sed -n 1p)" "$PROFILE (enforce)"
    check "$T: run with apparmorProfile: attr/apparmor/current" "$(echo "$out" | sed -n 2p)" "$PROFILE (enforce)"
    has "$T: run with apparmorProfile: other files readable" "$out" passwd-read
    has "$T: run with apparmorProfile: the denied file gives EACCES" "$out" "can't open '/etc/group': Permission denied"
    rr delete -f $id > /dev/null 2>&1

    # Control: the same container without a profile.
    id=$T-none
    ids="$ids $id"
    bundle $id "" "$PROBE"
    out=$(rr run --bundle "$WORK/$id" $id 2>&1 < /dev/null)
    check "$T: run without a profile: unconfined" "$(echo "$out" | sed -n 1p)" unconfined
    lacks "$T: run without a profile: /etc/group readable" "$out" "Permission denied"
    rr delete -f $id > /dev/null 2>&1

    # The profile takes effect at the exec of the program: the created
    # init still runs the runtime's code, unconfined. (Its pending attr/exec
    # cannot be read from outside: AppArmor answers a read of another
    # task's attr/exec from the reader's own context.)
    id=$T-ctr
    ids="$ids $id"
    bundle $id $PROFILE "$SLEEP"
    # Output to a file: the container inherits it (a pipe would stay open).
    if rr create --bundle "$WORK/$id" $id > "$WORK/$id/out" 2>&1 < /dev/null; then
        pid=$(pid_of $id)
        check "$T: created init is unconfined" "$(cat /proc/$pid/attr/current 2>&1)" unconfined
        rr start $id > /dev/null 2>&1
        check "$T: started program is in the profile" "$(cat /proc/$pid/attr/current 2>&1)" "$PROFILE (enforce)"
        # exec without --apparmor: the container's profile.
        out=$(probe $id)
        check "$T: exec inherits the container's profile" "$(echo "$out" | sed -n 1p)" "$PROFILE (enforce)"
        has "$T: exec inherits the container's profile: EACCES" "$out" "Permission denied"
        # exec --apparmor unconfined: the flag wins over the config.
        out=$(probe --apparmor unconfined $id)
        check "$T: exec --apparmor unconfined" "$(echo "$out" | sed -n 1p)" unconfined
    else
        nok "$T: create with apparmorProfile" "$(cat "$WORK/$id/out")"
    fi

    # A container without a profile, exec'd into with --apparmor.
    id=$T-exec
    ids="$ids $id"
    bundle $id "" "$SLEEP"
    if rr run -d --bundle "$WORK/$id" $id > "$WORK/$id/out" 2>&1 < /dev/null; then
        out=$(probe --apparmor $PROFILE $id)
        check "$T: exec --apparmor $PROFILE" "$(echo "$out" | sed -n 1p)" "$PROFILE (enforce)"
        has "$T: exec --apparmor $PROFILE: EACCES" "$out" "can't open '/etc/group': Permission denied"
        out=$(probe $id)
        check "$T: exec without --apparmor stays unconfined" "$(echo "$out" | sed -n 1p)" unconfined
        # An unknown profile: exec fails, the container is unharmed.
        if rr exec --apparmor $NOPE $id echo ran > "$WORK/$id/exec.out" 2>&1; then
            nok "$T: exec --apparmor $NOPE fails" "it ran: $(cat "$WORK/$id/exec.out")"
        else
            ok "$T: exec --apparmor $NOPE fails"
            out=$(cat "$WORK/$id/exec.out")
            echo "# $T says: $out"
            has "$T: exec --apparmor $NOPE: error names AppArmor" "$(echo "$out" | tr A-Z a-z)" apparmor
        fi
        check "$T: failed exec leaves the container running" \
            "$(rr state $id 2>/dev/null | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p')" running
        check "$T: failed exec leaves no process" "$(wc -l < "$CGMNT$PARENT/$id/cgroup.procs")" 1
    else
        nok "$T: run -d without a profile" "$(cat "$WORK/$id/out")"
    fi

    # An unknown profile fails create, in one line, leaving nothing.
    id=$T-nope
    ids="$ids $id"
    bundle $id $NOPE '["sleep", "3002"]'
    if rr create --bundle "$WORK/$id" $id > "$WORK/$id/out" 2>&1 < /dev/null; then
        nok "$T: create with an unknown profile fails" "it succeeded: $(cat "$WORK/$id/out")"
    else
        ok "$T: create with an unknown profile fails"
        out=$(cat "$WORK/$id/out")
        check "$T: create with an unknown profile: one line" "$(echo "$out" | wc -l)" 1
        has "$T: create with an unknown profile: error names AppArmor" "$(echo "$out" | tr A-Z a-z)" apparmor
        echo "# $T says: $out"
    fi
    check "$T: failed create leaves nothing" "$(leftovers $id)" ""

    for id in $ids; do rr delete -f $id > /dev/null 2>&1; done
done

# Nothing of the runtimes' is left confined or running.
for p in /proc/[0-9]*; do
    case $(cat "$p/attr/current" 2>/dev/null) in
        "$PROFILE"*) nok "no process left in $PROFILE" "pid ${p#/proc/}: $(tr '\0' ' ' < "$p/cmdline")" ;;
    esac
done

echo "# $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
