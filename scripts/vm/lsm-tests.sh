#!/bin/sh
# LSM label tests, run INSIDE the test VM (busybox sh; see scripts/vm/init,
# which mounts securityfs). Debian's kernel has AppArmor and SELinux built
# in, AppArmor on by default; booted with security=selinux it runs SELinux
# instead. The script tests whichever is on. tests/lsm.rs boots the VM
# once per LSM with apparmor_parser, checkpolicy (and runc) packed
# (VM_EXTRA_BINS); by hand:
#
#   VM_EXTRA_BINS="/usr/sbin/apparmor_parser /usr/bin/checkpolicy /usr/sbin/runc" \
#       scripts/vm/build-initramfs.sh target/vm-lsm
#   scripts/vm/run.sh --initramfs target/vm-lsm/initramfs.cpio.gz \
#       --env RUNTIMES="rrun runc" scripts/vm/lsm-tests.sh
#   VM_APPEND=security=selinux scripts/vm/run.sh ...   # the same for SELinux
#
# AppArmor: loads a profile, rrun-test (everything but reading /etc/group).
# SELinux: compiles and loads a minimal policy (permissive: labels and
# transitions are real, denials only logged) with the types container_t,
# other_t and container_file_t.
# $WANT_LSM, when set, is the LSM the boot must have.
# For each runtime in $RUNTIMES (default rrun): a container with the
# profile or label runs its program in it (and with AppArmor, gets EACCES
# on /etc/group); its created init is not yet in it; exec'd processes
# inherit it, exec --apparmor / --process-label set another; rrun's
# built-in init passes it on to the program; an unknown profile or label,
# or no procfs at /proc, fails create (one line, nothing left), an unknown
# one fails exec (the container unharmed); SELinux: linux.mountLabel is the
# context= of the tmpfs, devpts and masking mounts, not of proc, sysfs and
# mqueue. Unlabelled controls show the checks can fail. Each check prints "ok - NAME" or
# "not ok - NAME: DETAILS"; exit 1 if any failed.

PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUNTIMES=${RUNTIMES:-rrun}
ROOTFS=${RRUN_VM_BUNDLE_ROOTFS:-/bundles/busybox/rootfs}
PARENT=${RRUN_VM_CGROUP:-/harness}
CGMNT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
SECFS=/sys/kernel/security
WORK=/tmp/rrun-lsmtest

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
finish() {
    echo "# $PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
    exit
}
# attr FILE: an attr file without its trailing NUL or newline.
attr() { tr -d '\0' < "$1" 2>&1; }

LSMS=$(cat "$SECFS/lsm" 2>&1)
mkdir -p "$WORK"
case ,$LSMS, in
    *,apparmor,*) LSM=apparmor ;;
    *,selinux,*) LSM=selinux ;;
    *)
        nok "AppArmor or SELinux is enabled in the VM kernel" "lsm: $LSMS"
        finish
        ;;
esac
ok "$LSM is enabled in the VM kernel ($LSMS)"
if [ -n "${WANT_LSM:-}" ] && [ "$WANT_LSM" != $LSM ]; then
    nok "the VM runs $WANT_LSM" "it runs $LSM"
    finish
fi

# --- the policy ---------------------------------------------------------------------
if [ $LSM = apparmor ]; then
    # attach_disconnected: after pivot_root the container's files lie outside
    # the mount namespace's root; the profile names them from the container's /.
    cat > "$WORK/profile" << EOF
profile rrun-test flags=(attach_disconnected,mediate_deleted) {
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
        ok "apparmor_parser loads rrun-test"
    else
        nok "apparmor_parser loads rrun-test" "$out"
    fi
    has "rrun-test is loaded in enforce mode" "$(cat "$SECFS/apparmor/profiles")" "rrun-test (enforce)"
    HOST_LABEL=unconfined
    LABEL="rrun-test (enforce)"   # what attr/current shows
    OTHER="unconfined"
    SET_LABEL='"apparmorProfile": "rrun-test",'
    SET_NOPE='"apparmorProfile": "rrun-no-such-profile",'
    EXEC_FLAG=--apparmor
    EXEC_OTHER=unconfined
    EXEC_SAME=rrun-test
    EXEC_NOPE=rrun-no-such-profile
    ERRWORD=apparmor
else
    # A minimal policy: the kernel needs the process class (with transition
    # and dyntransition) and the initial SIDs' contexts; unknown classes are
    # allowed (-U allow). nnp_nosuid_transition lets a noNewPrivileges
    # process change domain at exec (in permissive mode).
    mkdir -p /sys/fs/selinux
    mount -t selinuxfs selinuxfs /sys/fs/selinux 2> /dev/null
    cat > "$WORK/policy.conf" << 'EOF'
class security
class process
class process2
class file
class dir
class filesystem
class key
sid kernel
sid security
sid unlabeled
sid fs
sid file
class security { load_policy setenforce }
class process { transition dyntransition setexec setkeycreate setcurrent }
class process2 { nnp_transition nosuid_transition }
class file { read write execute relabelfrom relabelto }
class dir { read write search relabelfrom relabelto }
class filesystem { mount relabelfrom relabelto associate }
class key { create view read write search link setattr }
policycap nnp_nosuid_transition;
type kernel_t;
type container_t;
type other_t;
type unlabeled_t;
type fs_t;
type file_t;
type container_file_t;
role system_r;
role system_r types { kernel_t container_t other_t };
allow kernel_t self:process transition;
user system_u roles { system_r object_r };
sid kernel system_u:system_r:kernel_t
sid security system_u:object_r:unlabeled_t
sid unlabeled system_u:object_r:unlabeled_t
sid fs system_u:object_r:fs_t
sid file system_u:object_r:file_t
fs_use_trans tmpfs system_u:object_r:fs_t;
fs_use_trans devpts system_u:object_r:fs_t;
fs_use_trans mqueue system_u:object_r:fs_t;
genfscon proc / system_u:object_r:fs_t
genfscon sysfs / system_u:object_r:fs_t
genfscon selinuxfs / system_u:object_r:fs_t
genfscon cgroup2 / system_u:object_r:fs_t
EOF
    if out=$(checkpolicy -U allow -o "$WORK/policy.bin" "$WORK/policy.conf" 2>&1); then
        ok "checkpolicy compiles the test policy"
    else
        nok "checkpolicy compiles the test policy" "$out"
    fi
    # One write(2): selinuxfs takes the policy at offset 0 only.
    if out=$(dd if="$WORK/policy.bin" of=/sys/fs/selinux/load bs=1M 2>&1); then
        ok "the test policy loads"
    else
        nok "the test policy loads" "$out"
    fi
    check "SELinux is permissive" "$(cat /sys/fs/selinux/enforce)" 0
    HOST_LABEL=system_u:system_r:kernel_t
    LABEL=system_u:system_r:container_t
    OTHER=system_u:system_r:other_t
    MOUNT_LABEL=system_u:object_r:container_file_t
    SET_LABEL="\"selinuxLabel\": \"$LABEL\","
    SET_NOPE='"selinuxLabel": "system_u:system_r:nope_t",'
    EXEC_FLAG=--process-label
    EXEC_OTHER=$OTHER
    EXEC_SAME=$LABEL
    EXEC_NOPE=system_u:system_r:nope_t
    ERRWORD=
fi
check "this shell is $HOST_LABEL" "$(attr /proc/self/attr/current)" "$HOST_LABEL"

# bundle ID ARGS_JSON [PROCESS_JSON] [LINUX_JSON] [TOP_JSON]:
# $WORK/ID/config.json; the JSON arguments are extra fields of process,
# linux and the top level, each ending with a comma. NOPROC=1: no /proc.
bundle() {
    mkdir -p "$WORK/$1"
    proc='{ "destination": "/proc", "type": "proc", "source": "proc" },'
    masked='"maskedPaths": ["/mnt"],' ro=true
    # rrun masks and remounts through /proc/self/fd: without /proc, neither.
    [ "${NOPROC:-0}" = 1 ] && proc= masked= ro=false
    cat > "$WORK/$1/config.json" << EOF
{
  $5
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": { "uid": 0, "gid": 0 },
    "args": $2,
    "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
    "cwd": "/",
    $3
    "capabilities": {
      "bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]
    },
    "noNewPrivileges": true
  },
  "root": { "path": "$ROOTFS", "readonly": $ro },
  "hostname": "lsmtest",
  "mounts": [
    $proc
    { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
      "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
      "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] },
    { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
      "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
    { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
      "options": ["nosuid", "noexec", "nodev"] },
    { "destination": "/sys", "type": "sysfs", "source": "sysfs",
      "options": ["nosuid", "noexec", "nodev", "ro"] }
  ],
  "linux": {
    $4
    "cgroupsPath": "$PARENT/$1",
    $masked
    "namespaces": [
      { "type": "pid" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" }
    ]
  }
}
EOF
}

# What the container's program reports about itself: its label (line 1;
# AppArmor's own attr/apparmor/current on line 2), whether /etc/passwd and
# /etc/group can be read (EACCES shows up as "Permission denied"), and its
# mounts as "mnt MOUNTPOINT SUPEROPTIONS" lines.
SELF='tr -d \"\\000\\n\" < /proc/self/attr/current; echo; tr -d \"\\000\\n\" < /proc/self/attr/apparmor/current 2> /dev/null; echo'
PROBE='["sh", "-c", "'"$SELF"'; cat /etc/passwd > /dev/null && echo passwd-read; cat /etc/group 2>&1 > /dev/null; awk '"'"'{ for (i = 7; $i != \"-\"; i++); print \"mnt\", $5, $(i + 3) }'"'"' /proc/self/mountinfo"]'
SLEEP='["sleep", "3001"]'
# probe [FLAGS] ID: label and /etc/group from a process exec'd into the container.
probe() {
    rr exec "$@" sh -c 'tr -d "\000\n" < /proc/self/attr/current; echo; cat /etc/group 2>&1 > /dev/null; echo end' 2>&1
}
# label OUTPUT: the first line of a probe, without NULs.
label() { echo "$1" | tr -d '\0' | sed -n 1p; }
# mnt OUTPUT DIR: the superoptions of the mount at DIR in a probe.
mnt() { echo "$1" | awk -v d="$2" '$1 == "mnt" && $2 == d { print $3 }'; }

# pid ID: the container's init pid, from state.
pid_of() { rr state "$1" 2> /dev/null | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p'; }
# leftovers ID: what a failed create left behind, or nothing.
leftovers() {
    left=
    [ -e "$STATE/$1" ] && left="$left state dir $STATE/$1;"
    [ -d "$CGMNT$PARENT/$1" ] && left="$left cgroup $PARENT/$1;"
    rr list 2> /dev/null | grep -qw "$1" && left="$left listed;"
    for p in /proc/[0-9]*; do
        grep -q "sleep.3002" "$p/cmdline" 2> /dev/null && left="$left process ${p#/proc/};"
    done
    echo "$left"
}
# fails_cleanly NAME ID: create of bundle ID fails in one line naming
# $ERRWORD (if set) and leaves nothing.
fails_cleanly() {
    if rr create --bundle "$WORK/$2" $2 > "$WORK/$2/out" 2>&1 < /dev/null; then
        nok "$T: $1: create fails" "it succeeded: $(cat "$WORK/$2/out")"
    else
        ok "$T: $1: create fails"
        out=$(cat "$WORK/$2/out")
        echo "# $T says: $out"
        check "$T: $1: one line" "$(echo "$out" | wc -l)" 1
        [ -z "$ERRWORD" ] || has "$T: $1: error names $ERRWORD" "$(echo "$out" | tr A-Z a-z)" $ERRWORD
    fi
    check "$T: $1: leaves nothing" "$(leftovers $2)" ""
}

for RT in $RUNTIMES; do
    T=$(basename "$RT")
    STATE=/run/lsmtest-$T
    rr() { timeout 30 "$RT" --root "$STATE" "$@"; }
    version=$("$RT" --version 2>&1 | head -n 1)
    echo "# runtime $T: $version"
    # rrun's own features (RRUN_BIN=runc packs runc as "rrun").
    case $version in rrun*) IS_RRUN=true ;; *) IS_RRUN=false ;; esac
    ids=
    has "$T: features says $LSM is enabled" "$("$RT" features 2>&1 | tr -d ' \n')" "\"$LSM\":{\"enabled\":true}"

    # A container with the label (and the mount label) runs in it.
    id=$T-lbl
    ids="$ids $id"
    [ $LSM = selinux ] && mlabel="\"mountLabel\": \"$MOUNT_LABEL\","
    bundle $id "$PROBE" "$SET_LABEL" "$mlabel"
    out=$(rr run --bundle "$WORK/$id" $id 2>&1 < /dev/null)
    check "$T: run with the label: attr/current" "$(label "$out")" "$LABEL"
    has "$T: run with the label: files readable" "$out" passwd-read
    if [ $LSM = apparmor ]; then
        check "$T: run with the label: attr/apparmor/current" \
            "$(echo "$out" | sed -n 2p)" "$LABEL"
        has "$T: run with the label: the denied file gives EACCES" "$out" \
            "can't open '/etc/group': Permission denied"
    else
        for d in /dev /dev/shm /dev/pts /mnt; do
            has "$T: mountLabel is the context of $d" "$(mnt "$out" $d)" "context=$MOUNT_LABEL"
        done
        for d in /proc /sys /dev/mqueue; do
            lacks "$T: mountLabel is not the context of $d" "$(mnt "$out" $d)" "context="
        done
    fi
    rr delete -f $id > /dev/null 2>&1

    # Control: the same container without labels.
    id=$T-none
    ids="$ids $id"
    bundle $id "$PROBE"
    out=$(rr run --bundle "$WORK/$id" $id 2>&1 < /dev/null)
    check "$T: run without a label: the runtime's" "$(label "$out")" "$HOST_LABEL"
    lacks "$T: run without a label: /etc/group readable" "$out" "Permission denied"
    lacks "$T: run without a label: no context= mount option" "$out" "context="
    rr delete -f $id > /dev/null 2>&1

    # The label takes effect at the exec of the program: the created init
    # still runs the runtime's code in the runtime's label. (Its pending
    # attr/exec cannot be read from outside: AppArmor answers a read of
    # another task's attr/exec from the reader's own context.)
    id=$T-ctr
    ids="$ids $id"
    bundle $id "$SLEEP" "$SET_LABEL"
    # Output to a file: the container inherits it (a pipe would stay open).
    if rr create --bundle "$WORK/$id" $id > "$WORK/$id/out" 2>&1 < /dev/null; then
        pid=$(pid_of $id)
        check "$T: created init: the runtime's label" "$(attr /proc/$pid/attr/current)" "$HOST_LABEL"
        rr start $id > /dev/null 2>&1
        # runc's start returns before its init has exec'd: wait for it.
        n=50
        while [ $n -gt 0 ] && [ "$(attr /proc/$pid/attr/current)" != "$LABEL" ]; do
            sleep 0.1
            n=$((n - 1))
        done
        check "$T: started program: the label" "$(attr /proc/$pid/attr/current)" "$LABEL"
        out=$(probe $id)
        check "$T: exec inherits the container's label" "$(label "$out")" "$LABEL"
        [ $LSM = apparmor ] && has "$T: exec inherits the container's profile: EACCES" "$out" "Permission denied"
        out=$(probe $EXEC_FLAG $EXEC_OTHER $id)
        check "$T: exec $EXEC_FLAG $EXEC_OTHER" "$(label "$out")" "$OTHER"
    else
        nok "$T: create with the label" "$(cat "$WORK/$id/out")"
    fi

    # A container without a label, exec'd into with one.
    id=$T-exec
    ids="$ids $id"
    bundle $id "$SLEEP"
    if rr run -d --bundle "$WORK/$id" $id > "$WORK/$id/out" 2>&1 < /dev/null; then
        out=$(probe $EXEC_FLAG $EXEC_SAME $id)
        check "$T: exec $EXEC_FLAG $EXEC_SAME" "$(label "$out")" "$LABEL"
        [ $LSM = apparmor ] && has "$T: exec --apparmor rrun-test: EACCES" "$out" \
            "can't open '/etc/group': Permission denied"
        out=$(probe $id)
        check "$T: exec without $EXEC_FLAG: the runtime's" "$(label "$out")" "$HOST_LABEL"
        # An unknown profile or label: exec fails, the container is unharmed.
        if rr exec $EXEC_FLAG $EXEC_NOPE $id echo ran > "$WORK/$id/exec.out" 2>&1; then
            nok "$T: exec $EXEC_FLAG $EXEC_NOPE fails" "it ran: $(cat "$WORK/$id/exec.out")"
        else
            ok "$T: exec $EXEC_FLAG $EXEC_NOPE fails"
            out=$(cat "$WORK/$id/exec.out")
            echo "# $T says: $out"
            [ -z "$ERRWORD" ] || has "$T: exec $EXEC_FLAG $EXEC_NOPE: error names $ERRWORD" \
                "$(echo "$out" | tr A-Z a-z)" $ERRWORD
        fi
        check "$T: failed exec leaves the container running" \
            "$(rr state $id 2> /dev/null | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p')" running
        check "$T: failed exec leaves no process" "$(wc -l < "$CGMNT$PARENT/$id/cgroup.procs")" 1
    else
        nok "$T: run -d without a label" "$(cat "$WORK/$id/out")"
    fi

    # rrun's built-in init execs into the label; the program, its child,
    # inherits it (as a container's init does under docker --init).
    if $IS_RRUN; then
        id=$T-init
        ids="$ids $id"
        bundle $id "$PROBE" "$SET_LABEL" "" '"annotations": { "rrun.init": "true" },'
        out=$(rr run --bundle "$WORK/$id" $id 2>&1 < /dev/null)
        check "$T: built-in init: the program has the label" "$(label "$out")" "$LABEL"
        [ $LSM = apparmor ] && has "$T: built-in init: EACCES" "$out" "Permission denied"
        rr delete -f $id > /dev/null 2>&1
    fi

    # Unknown profile or label: create fails in one line, leaving nothing.
    id=$T-nope
    ids="$ids $id"
    bundle $id '["sleep", "3002"]' "$SET_NOPE"
    fails_cleanly "an unknown label" $id
    # No procfs at /proc: the attr write has nowhere safe to go.
    id=$T-noproc
    ids="$ids $id"
    NOPROC=1 bundle $id '["sleep", "3002"]' "$SET_LABEL"
    fails_cleanly "no procfs at /proc" $id
    $IS_RRUN && has "$T: no procfs at /proc: says so" "$(cat "$WORK/$id/out")" "procfs"
    if [ $LSM = selinux ]; then
        id=$T-mnope
        ids="$ids $id"
        bundle $id '["sleep", "3002"]' "" '"mountLabel": "system_u:object_r:nope_t",'
        fails_cleanly "an invalid mountLabel" $id
    fi

    for id in $ids; do rr delete -f $id > /dev/null 2>&1; done
done

# Nothing of the runtimes' is left running in a test label.
for p in /proc/[0-9]*; do
    l=$(attr "$p/attr/current")
    if [ "$l" = "$LABEL" ] || { [ "$OTHER" != "$HOST_LABEL" ] && [ "$l" = "$OTHER" ]; }; then
        nok "no process left in a test label" "pid ${p#/proc/}: $(tr '\0' ' ' < "$p/cmdline")"
    fi
done

finish
