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

use common::*;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Seconds the VM may run (boot ~4 s, the script ~1 min under TCG).
const VM_TIMEOUT_SECS: u64 = 280;

/// A readable kernel image for the VM, as build-initramfs.sh picks it.
fn kernel_image() -> Option<PathBuf> {
    if let Some(k) = std::env::var_os("VM_KERNEL").filter(|k| !k.is_empty()) {
        return Some(PathBuf::from(k));
    }
    let mut v: Vec<PathBuf> = fs::read_dir("/boot")
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .collect();
    v.sort();
    v.pop().filter(|p| File::open(p).is_ok())
}

/// The not-ok lines of the script's output (for a short failure summary).
fn failures(out: &str) -> Vec<&str> {
    out.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| l.starts_with("not ok - "))
        .collect()
}

#[test]
fn cgroup_v2_tests_in_vm() {
    require!(is_root(), "needs root");
    require!(
        have_cmd("qemu-system-x86_64"),
        "qemu-system-x86_64 missing (apt-get install qemu-system-x86)"
    );
    require!(
        kernel_image().is_some(),
        "no readable kernel image in /boot (apt-get install linux-image-amd64)"
    );
    for tool in ["cpio", "gzip"] {
        require!(have_cmd(tool), "{tool} missing");
    }
    let repo = repo_dir();
    let script = repo.join("scripts/vm/cgroup-tests.sh");
    let builder = repo.join("scripts/vm/build-initramfs.sh");
    let runner = repo.join("scripts/vm/run.sh");
    for f in [&script, &builder, &runner] {
        assert!(f.is_file(), "{} missing", f.display());
    }

    // One initramfs per runtime binary; parallel runs serialise on a lock.
    let bin = rrun_bin();
    let flavour = bin
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "rrun".into());
    let out_dir = target_dir().join(format!("vm-cgroups-{flavour}"));
    fs::create_dir_all(&out_dir).unwrap();
    let lock = File::create(out_dir.with_extension("lock")).unwrap();
    lock.lock().expect("lock the VM build directory");

    let t = Instant::now();
    let mut build = Command::new("bash");
    build
        .arg(&builder)
        .arg(&out_dir)
        .env("RRUN_BIN", &bin)
        .env("VM_NO_APT", "1")
        .current_dir(&repo);
    let o = run_timeout(build, Duration::from_secs(180));
    assert!(o.success(), "building the VM initramfs failed:\n{o}");
    let built = t.elapsed();

    let t = Instant::now();
    let mut run = Command::new("bash");
    run.arg(&runner)
        .arg("--initramfs")
        .arg(out_dir.join("initramfs.cpio.gz"))
        .arg("--timeout")
        .arg(VM_TIMEOUT_SECS.to_string())
        .arg(&script)
        .current_dir(&repo);
    let o = run_timeout(run, Duration::from_secs(VM_TIMEOUT_SECS + 30));
    lock.unlock().ok();
    let console = format!("{}{}", o.stdout, o.stderr);
    let summary: Vec<&str> = console
        .lines()
        .filter(|l| l.starts_with("# ") && l.contains("passed"))
        .collect();
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!(
            "cgroup v2 VM ({}): build {built:?}, run {:?}: {}\n",
            bin.display(),
            t.elapsed(),
            summary.join(" ")
        )
        .as_bytes(),
    );
    assert!(
        o.success(),
        "cgroup-tests.sh in the VM failed (exit {:?}); failed checks:\n  {}\n\nVM output:\n{}",
        o.code,
        failures(&console).join("\n  "),
        console
    );
    assert!(
        console.lines().any(|l| l.starts_with("ok - ")),
        "the VM ran no checks:\n{console}"
    );
    assert!(failures(&console).is_empty(), "{console}");
}

#[test]
fn vm_script_is_valid_sh() {
    // Cheap and host-only: a syntax error would only show up inside the VM.
    let script: &Path = &repo_dir().join("scripts/vm/cgroup-tests.sh");
    let mut c = Command::new("sh");
    c.arg("-n").arg(script);
    run_timeout(c, TIMEOUT).ok();
    if have_cmd("busybox") {
        let mut c = Command::new("busybox");
        c.arg("sh").arg("-n").arg(script);
        run_timeout(c, TIMEOUT).ok();
    }
}
