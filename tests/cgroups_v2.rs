//! Cgroups on a pure cgroup v2 host: scripts/vm/cgroup-tests.sh run inside
//! the test VM (scripts/vm: Debian's kernel under qemu TCG, an initramfs with
//! the runtime under test, busybox and a rootfs, every controller enabled).
//!
//! The script checks every resource on v2 (memory.max/low/swap.max, OOM
//! kill, cpu.weight/max, cpuset, pids, io.weight, hugetlb, unified, the BPF
//! device allowlist), update, pause/resume, ps, events and delete; it prints
//! `ok - NAME` / `not ok - NAME: DETAILS` per check and exits non-zero if
//! any failed. This test builds the initramfs around `$RRUN_BIN` (so
//! `RRUN_BIN=/usr/sbin/runc` runs the same checks against runc), boots it
//! once and prints the VM's output when the script fails.

#[macro_use]
mod common;

use common::vm::{self, VmRun};

/// Seconds the VM may run (boot ~4 s, the script ~1 min under TCG).
const VM_TIMEOUT_SECS: u64 = 280;

#[test]
fn cgroup_v2_tests_in_vm() {
    let missing = vm::missing();
    require!(missing.is_none(), "{}", missing.unwrap_or_default());
    VmRun {
        name: "cgroups",
        script: "scripts/vm/cgroup-tests.sh",
        extra_bins: Vec::new(),
        env: Vec::new(),
        kernel_args: "",
        timeout_secs: VM_TIMEOUT_SECS,
    }
    .run();
}

#[test]
fn vm_script_is_valid_sh() {
    vm::check_syntax("scripts/vm/cgroup-tests.sh");
}
