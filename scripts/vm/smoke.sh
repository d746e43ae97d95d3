#!/bin/sh
# Smoke test, run INSIDE the VM by scripts/vm/run.sh (busybox sh):
#
#   scripts/vm/run.sh scripts/vm/smoke.sh
#
# Checks the pure cgroup v2 setup /init made, then runs real containers with
# rrun on the busybox rootfs and checks what they see:
#   1. the `rrun spec` devices rule (deny all, then rrun's defaults), which
#      on pure v2 is a BPF_PROG_TYPE_CGROUP_DEVICE program: must exit 0;
#   2. absolute cgroupsPath $RRUN_VM_CGROUP/vmtest-abs: must exit 0 and see
#      memory, pids, cpu and io in its /sys/fs/cgroup/cgroup.controllers;
#   3. relative cgroupsPath "vmtest": must exit 0; its controllers are
#      checked too (runc would place it in $RRUN_VM_CGROUP/vmtest, beside
#      its own leaf cgroup, and give it every controller — see /init);
#   4. the same relative path with linux.resources.pids.limit 64: must exit
#      0 and show pids.max 64.
# 2-4 use no devices rule, so that they test the cgroup placement alone.
# scripts/vm/run.sh --env SMOKE_STRICT_RELATIVE=0 turns 3-4 failures into
# KNOWN-ISSUE lines.
set -u
SMOKE_STRICT_RELATIVE=${SMOKE_STRICT_RELATIVE:-1}

fails=0
ok() { echo "smoke: ok: $*"; }
fail() { echo "smoke: FAIL: $*"; fails=$((fails + 1)); }

echo "smoke: uname -r: $(uname -r)"
echo "smoke: /sys/fs/cgroup/cgroup.controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
echo "smoke: own cgroup: $(cat /proc/self/cgroup)"
# /proc/mounts: "SOURCE MOUNTPOINT FSTYPE OPTIONS 0 0"
awk '$2 == "/sys/fs/cgroup" && $3 == "cgroup2" { f = 1 } END { exit !f }' /proc/mounts &&
    ok "cgroup2 at /sys/fs/cgroup" || fail "cgroup2 not mounted at /sys/fs/cgroup"
awk '$3 == "cgroup" { f = 1 } END { exit !f }' /proc/mounts &&
    fail "a v1 cgroup hierarchy is mounted" || ok "no v1 hierarchy"

H=/sys/fs/cgroup${RRUN_VM_CGROUP:-/harness}
sub=$(cat "$H/cgroup.subtree_control")
echo "smoke: $H/cgroup.subtree_control: $sub"
for c in memory pids cpu io; do
    case " $sub " in
        *" $c "*) ok "$c enabled for children of $H" ;;
        *) fail "$c not enabled in $H/cgroup.subtree_control" ;;
    esac
done

RRUN=$(command -v rrun) || { fail "rrun not in PATH"; exit 1; }
echo "smoke: rrun --version: $($RRUN --version 2>&1 | tr '\n' ' ')"

B=/run/bundle
mkdir -p $B
ln -s "${RRUN_VM_BUNDLE_ROOTFS:-/bundles/busybox/rootfs}" $B/rootfs
# rrun spec must work here too; the config used is written out below (no jq
# in busybox), following the spec output with terminal false.
(cd $B && $RRUN spec) && [ -s $B/config.json ] && ok "rrun spec" || fail "rrun spec"

# write_config CGROUPS_PATH RESOURCES_BODY: config.json for a container that
# prints its cgroup, its controllers and (if present) pids.max.
DENY_ALL='"devices": [ { "allow": false, "access": "rwm" } ]'
write_config() {
    cat > $B/config.json <<EOF
{
  "ociVersion": "1.2.1",
  "process": {
    "terminal": false,
    "user": { "uid": 0, "gid": 0 },
    "args": [ "sh", "-c", "echo cgroup: \$(cat /proc/self/cgroup); echo controllers: \$(cat /sys/fs/cgroup/cgroup.controllers); [ -e /sys/fs/cgroup/pids.max ] && echo pids.max: \$(cat /sys/fs/cgroup/pids.max); true" ],
    "env": [ "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" ],
    "cwd": "/",
    "capabilities": {
      "bounding": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ],
      "effective": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ],
      "permitted": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ]
    },
    "rlimits": [ { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 } ],
    "noNewPrivileges": true
  },
  "root": { "path": "rootfs", "readonly": true },
  "hostname": "vmtest",
  "mounts": [
    { "destination": "/proc", "type": "proc", "source": "proc" },
    { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
      "options": [ "nosuid", "strictatime", "mode=755", "size=65536k" ] },
    { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
      "options": [ "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5" ] },
    { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
      "options": [ "nosuid", "noexec", "nodev", "mode=1777", "size=65536k" ] },
    { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
      "options": [ "nosuid", "noexec", "nodev" ] },
    { "destination": "/sys", "type": "sysfs", "source": "sysfs",
      "options": [ "nosuid", "noexec", "nodev", "ro" ] },
    { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
      "options": [ "nosuid", "noexec", "nodev", "relatime", "ro" ] }
  ],
  "linux": {
    "cgroupsPath": "$1",
    "resources": { $2 },
    "namespaces": [
      { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
      { "type": "uts" }, { "type": "mount" }, { "type": "cgroup" }
    ],
    "maskedPaths": [ "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
      "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
      "/proc/sched_debug", "/sys/firmware", "/proc/scsi" ],
    "readonlyPaths": [ "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
      "/proc/sysrq-trigger" ]
  }
}
EOF
}

# run_container ID: runs it, output in /run/out.ID; returns rrun's exit code.
run_container() {
    echo "smoke: rrun --root /run/rrun run -b $B $1  (cgroupsPath $(sed -n 's/.*"cgroupsPath": "\(.*\)",/\1/p' $B/config.json))"
    $RRUN --root /run/rrun run -b $B "$1" > "/run/out.$1" 2>&1
    rc=$?
    sed 's/^/    | /' "/run/out.$1"
    echo "    exit $rc"
    return $rc
}
has_controllers() { # FILE: the controllers line lists memory pids cpu io
    line=$(grep '^controllers:' "$1")
    for c in memory pids cpu io; do
        case " $line " in *" $c "*) ;; *) return 1 ;; esac
    done
}

# 1. The default devices rule.
write_config "${RRUN_VM_CGROUP:-/harness}/vmtest-dev" "$DENY_ALL"
if run_container vmtest-dev; then
    ok "container with the rrun spec devices rule exited 0"
else
    fail "container with the rrun spec devices rule (deny all): see the rrun error above"
fi

# 2. Absolute path under the harness cgroup.
write_config "${RRUN_VM_CGROUP:-/harness}/vmtest-abs" ""
if run_container vmtest-abs; then
    ok "container with absolute cgroupsPath exited 0"
    has_controllers /run/out.vmtest-abs && ok "absolute cgroupsPath: memory pids cpu io visible" ||
        fail "absolute cgroupsPath: memory/pids/cpu/io missing in the container"
else
    fail "container with absolute cgroupsPath"
fi
[ -e "$H/vmtest-abs" ] && fail "$H/vmtest-abs left behind after run" || ok "cgroup removed after run"

# 3. Relative path (what most callers use).
relative_issue() {
    if [ "$SMOKE_STRICT_RELATIVE" = 1 ]; then
        fail "$*"
    else
        echo "smoke: KNOWN-ISSUE: $*"
    fi
}
write_config vmtest ""
if run_container vmtest; then
    ok "container with relative cgroupsPath exited 0"
    has_controllers /run/out.vmtest && ok "relative cgroupsPath: memory pids cpu io visible" ||
        relative_issue "relative cgroupsPath: memory/pids/cpu/io missing in the container" \
            "(rrun puts it under its own cgroup, which holds processes; runc uses the parent)"
else
    fail "container with relative cgroupsPath"
fi

# 4. Relative path with a pids limit: needs the pids controller there.
write_config vmtest-pids '"pids": { "limit": 64 }'
if run_container vmtest-pids && grep -q '^pids.max: 64$' /run/out.vmtest-pids; then
    ok "relative cgroupsPath with pids.limit 64"
else
    relative_issue "relative cgroupsPath with linux.resources.pids.limit 64"
fi

if [ "$fails" -eq 0 ]; then
    echo "smoke: PASS"
    exit 0
fi
echo "smoke: $fails check(s) failed"
exit 1
