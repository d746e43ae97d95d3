//! Security regressions: see the module list in tests/security.rs.
//!
//! Seccomp architectures and the syscalls a profile does not name: i386
//! syscalls (int 0x80, the entry 32-bit programs use) follow the profile
//! when it lists SCMP_ARCH_X86 and are killed when it does not; x32
//! numbers (x86_64 numbers with bit 30 set) never bypass an x86_64 rule;
//! a syscall newer than every one the profile names gets ENOSYS. Then
//! real profiles (podman's, Docker's, an older Docker's, a minimal
//! allowlist) must never break rrun's own steps, with and without
//! noNewPrivileges, for run, exec and the built-in init.
//!
//! The probe is a small static C program (gcc -static) bind-mounted at
//! /probe: each argument is one syscall, `NR` (x86_64), `i386:NR` (int
//! 0x80) or `x32:NR`, made with zero arguments; it prints `ARG=RESULT`
//! (the return value, or -errno) and flushes before the next one, so a
//! killed probe shows how far it got.

use crate::common::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const PROBE_C: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static long i386_call(long nr) {
    long ret;
    __asm__ volatile ("int $0x80" : "=a"(ret) : "a"(nr), "b"(0), "c"(0), "d"(0) : "memory");
    return ret;
}
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        long r;
        if (!strncmp(s, "i386:", 5)) {
            r = i386_call(strtol(s + 5, 0, 0));
        } else if (!strncmp(s, "x32:", 4)) {
            r = syscall(strtol(s + 4, 0, 0) | 0x40000000L, 0, 0, 0);
            if (r < 0) r = -errno;
        } else {
            r = syscall(strtol(s, 0, 0), 0, 0, 0);
            if (r < 0) r = -errno;
        }
        printf("%s=%ld\n", s, r);
        fflush(stdout);
    }
    return 0;
}
"#;

/// A real 32-bit program (gcc -m32 -static, glibc's i386 entry points):
/// ordinary calls, and mkdir and swapoff, which an engine profile decides.
const PROBE32_C: &str = r#"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/utsname.h>
#include <unistd.h>
int main(void) {
    struct utsname u;
    char cwd[256];
    setvbuf(stdout, NULL, _IONBF, 0);
    int fd = open("/proc/self/status", O_RDONLY);
    printf("open=%d\n", fd >= 0 ? 0 : -errno);
    printf("getpid=%d\n", getpid());
    printf("uname=%d\n", uname(&u) == 0 ? 0 : -errno);
    printf("getcwd=%d\n", getcwd(cwd, sizeof cwd) ? 0 : -errno);
    printf("mkdir=%d\n", mkdir("/dev/shm/from-i386", 0755) == 0 ? 0 : -errno);
    printf("swapoff=%d\n", swapoff("/rrun-no-such-swap") == 0 ? 0 : -errno);
    return 0;
}
"#;

/// The directory holding the static probe `p`, built once per test run;
/// None (with a skip notice) without gcc.
fn probe_dir() -> Option<PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    let dir = DIR
        .get_or_init(|| {
            if !have_cmd("gcc") {
                return None;
            }
            let dir = target_dir().join("seccomp-probe");
            fs::create_dir_all(&dir).unwrap();
            set_mode(&dir, 0o755);
            // Built under a name of this process's, then renamed: another
            // test binary may be running the old one.
            let build = |name: &str, src: &str, flags: &[&str]| {
                let tmp = dir.join(format!("{name}.{}", std::process::id()));
                let c_file = tmp.with_extension("c");
                fs::write(&c_file, src).unwrap();
                let mut c = Command::new("gcc");
                c.args(flags).arg("-o").arg(&tmp).arg(&c_file);
                let ok = run_timeout(c, TIMEOUT).success();
                let _ = fs::remove_file(&c_file);
                if ok {
                    fs::rename(&tmp, dir.join(name)).unwrap();
                }
                ok
            };
            assert!(
                build("p", PROBE_C, &["-static", "-O2"]),
                "gcc -static failed"
            );
            // p32 only where gcc builds 32-bit programs (gcc-multilib).
            build("p32", PROBE32_C, &["-m32", "-static", "-O2"]);
            Some(dir)
        })
        .clone();
    if dir.is_none() {
        skip("gcc missing (apt-get install build-essential): no static probe");
    }
    dir
}

/// `b` with the probe at /probe/p.
fn with_probe(b: Bundle, dir: &Path) -> Bundle {
    b.bind_mount(dir, "/probe", &["rbind", "ro"])
}

/// `ARG=RESULT` lines of the probe.
fn results(out: &str) -> BTreeMap<String, i64> {
    out.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

fn nnp(b: Bundle, on: bool) -> Bundle {
    b.with(|c| c["process"]["noNewPrivileges"] = json!(on))
}

const SIGSYS_EXIT: i32 = 128 + 31;
const EPERM: i64 = -1;
const ENOSYS: i64 = -38;
const EXDEV: i64 = -18;

/// An allowlist with i386 listed: i386 getpid (20) allowed, mkdir (39 on
/// i386, 83 on x86_64) EXDEV, anything else (getpgrp, 65 on i386) EPERM.
fn allowlist(arches: &[&str]) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": arches,
        "syscalls": [
            { "names": MINIMAL, "action": "SCMP_ACT_ALLOW" },
            // runc 1.1 checks /proc/self/fd (fstatfs) and the program (faccessat)
            // after the filter.
            { "names": ["fstatfs", "faccessat"], "action": "SCMP_ACT_ALLOW" },
            { "names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18 }
        ]
    })
}

#[test]
fn seccomp_i386_syscalls_follow_the_profile_when_listed() {
    let Some(dir) = probe_dir() else { return };
    for on in [true, false] {
        let b = nnp(with_probe(Bundle::new(), &dir), on)
            .with(|c| c["linux"]["seccomp"] = allowlist(&["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]))
            .args(&[
                "/probe/p",
                "i386:20",
                "i386:39",
                "i386:65",
                "83",
                "i386:1000",
            ]);
        let c = Container::new(b);
        let o = c.run();
        o.ok();
        let r = results(&o.stdout);
        assert_eq!(r["i386:20"], 1, "i386 getpid of PID 1, nnp={on}: {o}");
        assert_eq!(r["i386:39"], EXDEV, "i386 mkdir's rule: {o}");
        assert_eq!(r["i386:65"], EPERM, "i386 uname: the default: {o}");
        assert_eq!(r["83"], EXDEV, "x86_64 mkdir's rule: {o}");
        assert_eq!(r["i386:1000"], ENOSYS, "beyond the i386 table: {o}");
    }
}

#[test]
fn seccomp_unlisted_architectures_and_x32_are_killed() {
    let Some(dir) = probe_dir() else { return };
    // A blocklist: everything allowed but mkdir. x32's mkdir is 83 | bit
    // 30: a filter that only compares numbers lets it through (the kernel
    // then runs it where x32 is enabled, or says ENOSYS).
    let blocklist = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [ { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO" } ]
    });
    let run = |profile: &Value, args: &[&str]| {
        let mut argv = vec!["/probe/p"];
        argv.extend_from_slice(args);
        let b = with_probe(Bundle::new(), &dir)
            .with(|c| c["linux"]["seccomp"] = profile.clone())
            .args(&argv);
        Container::new(b).run()
    };
    let o = run(&blocklist, &["83", "x32:83", "39"]);
    assert_eq!(results(&o.stdout).get("83"), Some(&EPERM), "{o}");
    assert_eq!(o.code, Some(SIGSYS_EXIT), "x32 mkdir is killed: {o}");
    assert!(!o.stdout.contains("x32:83="), "{o}");
    let o = run(&blocklist, &["39", "i386:39"]);
    assert_eq!(results(&o.stdout).get("39"), Some(&1), "{o}");
    assert_eq!(o.code, Some(SIGSYS_EXIT), "i386 not listed: {o}");
    // With SCMP_ARCH_X32 listed, x32 syscalls get the x86_64 rules: mkdir
    // is the profile's EPERM, getpid is allowed (and is then the kernel's
    // answer: ENOSYS where x32 is off, the pid where it is on).
    let mut with_x32 = blocklist.clone();
    with_x32["architectures"] = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"]);
    let o = run(&with_x32, &["x32:83", "x32:39"]);
    o.ok();
    let r = results(&o.stdout);
    assert_eq!(r["x32:83"], EPERM, "{o}");
    assert!(r["x32:39"] == 1 || r["x32:39"] == ENOSYS, "{o}");
}

#[test]
fn seccomp_syscalls_newer_than_the_profile_get_enosys() {
    let Some(dir) = probe_dir() else { return };
    // MINIMAL's newest syscall is older than clone3 (435), openat2 (437)
    // and faccessat2 (439); 1000 is no syscall at all. getpgrp (111) is
    // older and unnamed: the profile's default, EPERM.
    let b = with_probe(Bundle::new(), &dir)
        .with(|c| c["linux"]["seccomp"] = allowlist(&["SCMP_ARCH_X86_64"]))
        .args(&["/probe/p", "435", "437", "439", "1000", "111"]);
    let o = Container::new(b).run();
    o.ok();
    let r = results(&o.stdout);
    for k in ["435", "437", "439", "1000"] {
        assert_eq!(r[k], ENOSYS, "{k}: {o}");
    }
    assert_eq!(r["111"], EPERM, "{o}");
    // A profile that names openat2 answers it itself; close_range (436)
    // is then older than the newest name and gets the default.
    let mut p = allowlist(&["SCMP_ARCH_X86_64"]);
    p["syscalls"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "names": ["openat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18 }));
    let b = with_probe(Bundle::new(), &dir)
        .with(|c| c["linux"]["seccomp"] = p)
        .args(&["/probe/p", "436", "437", "439"]);
    let o = Container::new(b).run();
    o.ok();
    let r = results(&o.stdout);
    assert_eq!(
        (r["436"], r["437"], r["439"]),
        (EPERM, EXDEV, ENOSYS),
        "{o}"
    );
}

// ---------------------------------------------------------------------------
// Real profiles never break rrun's own steps
// ---------------------------------------------------------------------------

/// What busybox's sh, ls, cat, echo and sleep need, plus the steps of a
/// runtime's init after an early filter (setgroups, setresuid, capset,
/// prctl, fchdir, umask, fcntl, close, execve...). Nothing newer than
/// Linux 3.17 (getrandom): every syscall since gets ENOSYS.
const MINIMAL: &[&str] = &[
    "read",
    "write",
    "readv",
    "writev",
    "close",
    "open",
    "openat",
    "stat",
    "fstat",
    "lstat",
    "newfstatat",
    "lseek",
    "mmap",
    "munmap",
    "mprotect",
    "brk",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "ioctl",
    "access",
    "pipe",
    "pipe2",
    "dup",
    "dup2",
    "dup3",
    "getpid",
    "getppid",
    "gettid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getgroups",
    "fork",
    "vfork",
    "clone",
    "execve",
    "exit",
    "exit_group",
    "wait4",
    "kill",
    "uname",
    "fcntl",
    "getdents64",
    "getcwd",
    "chdir",
    "fchdir",
    "umask",
    "setgroups",
    "setresuid",
    "setresgid",
    "setuid",
    "setgid",
    "capget",
    "capset",
    "prctl",
    "arch_prctl",
    "set_tid_address",
    "set_robust_list",
    "futex",
    "nanosleep",
    "clock_nanosleep",
    "clock_gettime",
    "getrandom",
    "poll",
    "sysinfo",
    "prlimit64",
    "getrlimit",
    "madvise",
    "sendmsg",
    "sendto",
    "recvmsg",
    "recvfrom",
    "accept4",
    "rt_sigtimedwait",
    "setsid",
    "rename",
    "unlink",
    "restart_syscall",
];

const SCRIPT: &str = "echo started; grep Seccomp: /proc/self/status; ls /etc >/dev/null && \
    echo ls-ok; cat /etc/hostname >/dev/null && echo cat-ok; sleep 0.1 && echo sleep-ok; \
    sh -c 'echo nested-ok'";

#[track_caller]
fn assert_ran(out: &str, what: &str) {
    for w in ["started", "ls-ok", "cat-ok", "sleep-ok", "nested-ok"] {
        assert!(out.lines().any(|l| l == w), "{what}: {w} missing:\n{out}");
    }
    assert!(out.contains("Seccomp:\t2"), "{what}: filtered:\n{out}");
}

/// Docker's profile from the moby source Debian ships
/// (golang-github-docker-docker-dev), in the engine format.
const DOCKER_PROFILE: &str =
    "/usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json";

fn engine_profile(path: &str, package: &str) -> Option<Value> {
    let Ok(text) = fs::read_to_string(path) else {
        skip(&format!("{path} missing (apt-get install {package})"));
        return None;
    };
    let engine: Value = serde_json::from_str(&text).expect("an engine profile is JSON");
    let mut oci = super::engine_profile_to_oci(&engine, DEFAULT_CAPS);
    // As the engines pass it on amd64: the archMap's x86_64 entry.
    oci["architectures"] = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    Some(oci)
}

/// The Docker profile as it was before Linux 5.1's syscalls (pidfd_*,
/// io_uring, clone3, close_range, openat2, faccessat2...) were added to
/// it: every name numbered 424 or more on x86_64 is taken out.
fn older_docker(profile: &Value) -> Value {
    use std::str::FromStr;
    let old = |n: &Value| {
        n.as_str()
            .and_then(|n| syscalls::x86_64::Sysno::from_str(n).ok())
            .is_none_or(|s| s.id() < 424)
    };
    let mut p = profile.clone();
    let rules: Vec<Value> = p["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| {
            let names: Vec<Value> = r["names"]
                .as_array()?
                .iter()
                .filter(|n| old(n))
                .cloned()
                .collect();
            (!names.is_empty()).then(|| {
                let mut r = r.clone();
                r["names"] = json!(names);
                r
            })
        })
        .collect();
    p["syscalls"] = json!(rules);
    p
}

fn minimal_profile() -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [ { "names": MINIMAL, "action": "SCMP_ACT_ALLOW" } ]
    })
}

/// run, create + start + exec, and the built-in init, each with and
/// without noNewPrivileges.
fn assert_profile_never_breaks_rrun(name: &str, profile: &Value) {
    for on in [true, false] {
        let what = format!("{name}, noNewPrivileges={on}");
        // A startContainer hook with a timeout: run in the container,
        // under the filter (state on stdin, waited for with a deadline).
        let b = nnp(Bundle::new(), on)
            .with(|c| c["linux"]["seccomp"] = profile.clone())
            .hook(
                "startContainer",
                json!({ "path": "/bin/true", "args": ["true"], "timeout": 5 }),
            )
            .sh(SCRIPT);
        assert_ran(&Container::new(b).run_ok(), &format!("run, {what}"));

        let b = nnp(Bundle::new(), on)
            .with(|c| c["linux"]["seccomp"] = profile.clone())
            .args(&["sleep", "60"]);
        let c = Container::new(b);
        c.create().ok();
        c.start().ok();
        c.wait_status("running");
        for flags in [&[][..], &["--user", "1000:1000"][..]] {
            let mut args = vec!["exec"];
            args.extend_from_slice(flags);
            args.extend_from_slice(&[&c.id, "sh", "-c", SCRIPT]);
            let o = c.rrun(&args);
            o.ok();
            assert_ran(&o.stdout, &format!("exec {flags:?}, {what}"));
        }
        drop(c);

        if is_runc() {
            continue; // the built-in init is rrun's
        }
        let b = nnp(Bundle::new(), on)
            .with(|c| {
                c["linux"]["seccomp"] = profile.clone();
                c["annotations"] = json!({ "rrun.init": "true" });
            })
            .sh(SCRIPT);
        assert_ran(
            &Container::new(b).run_ok(),
            &format!("built-in init, {what}"),
        );
    }
}

/// An engine profile lists i386: a 32-bit getpid is allowed (it used to
/// kill the process), an i386 syscall the profile refuses (swapoff, 115)
/// gets the profile's errno.
fn assert_engine_i386(name: &str, profile: &Value) {
    let Some(dir) = probe_dir() else { return };
    let b = with_probe(Bundle::new(), &dir)
        .with(|c| c["linux"]["seccomp"] = profile.clone())
        .args(&["/probe/p", "i386:20", "i386:115"]);
    let o = Container::new(b).run();
    o.ok();
    let r = results(&o.stdout);
    assert_eq!(r["i386:20"], 1, "{name}: {o}");
    assert!([EPERM, ENOSYS].contains(&r["i386:115"]), "{name}: {o}");
}

/// A real 32-bit program under Docker's default (which lists
/// SCMP_ARCH_X86) runs, with the profile's answers for i386; under the
/// same profile with only SCMP_ARCH_X86_64 it is killed at its first
/// syscall.
#[test]
fn seccomp_32bit_program_under_dockers_profile() {
    let Some(dir) = probe_dir() else { return };
    if !dir.join("p32").exists() {
        skip("gcc -m32 -static fails (apt-get install gcc-multilib)");
        return;
    }
    let Some(p) = engine_profile(DOCKER_PROFILE, "golang-github-docker-docker-dev") else {
        return;
    };
    let b = with_probe(Bundle::new(), &dir)
        .with(|c| c["linux"]["seccomp"] = p.clone())
        .args(&["/probe/p32"]);
    let o = Container::new(b).run();
    o.ok();
    let r = results(&o.stdout);
    for k in ["open", "uname", "getcwd", "mkdir"] {
        assert_eq!(r[k], 0, "{k}: {o}");
    }
    assert_eq!(r["getpid"], 1, "{o}");
    assert_eq!(
        r["swapoff"], EPERM,
        "swapoff needs CAP_SYS_ADMIN in the profile: {o}"
    );
    let mut native = p;
    native["architectures"] = json!(["SCMP_ARCH_X86_64"]);
    let b = with_probe(Bundle::new(), &dir)
        .with(|c| c["linux"]["seccomp"] = native)
        .args(&["/probe/p32"]);
    let o = Container::new(b).run();
    assert_eq!(o.code, Some(SIGSYS_EXIT), "{o}");
    assert!(o.stdout.is_empty(), "{o}");
}

#[test]
fn seccomp_podman_default_never_breaks_rrun() {
    let Some(p) = engine_profile(super::PODMAN_PROFILE, "golang-github-containers-common") else {
        return;
    };
    assert_profile_never_breaks_rrun("podman", &p);
    assert_engine_i386("podman", &p);
}

#[test]
fn seccomp_docker_default_never_breaks_rrun() {
    let Some(p) = engine_profile(DOCKER_PROFILE, "golang-github-docker-docker-dev") else {
        return;
    };
    assert_profile_never_breaks_rrun("docker", &p);
    assert_engine_i386("docker", &p);
}

#[test]
fn seccomp_older_docker_default_never_breaks_rrun() {
    let Some(p) = engine_profile(DOCKER_PROFILE, "golang-github-docker-docker-dev") else {
        return;
    };
    let old = older_docker(&p);
    let names = |p: &Value| p["syscalls"].to_string();
    for n in [
        "\"openat2\"",
        "\"close_range\"",
        "\"clone3\"",
        "\"faccessat2\"",
    ] {
        assert!(names(&p).contains(n) && !names(&old).contains(n), "{n}");
    }
    assert_profile_never_breaks_rrun("older docker", &old);
}

#[test]
fn seccomp_minimal_allowlist_never_breaks_rrun() {
    if is_runc() {
        skip("runc 1.1 needs fstatfs after an early filter (its /proc/self/fd check)");
        return;
    }
    assert_profile_never_breaks_rrun("minimal", &minimal_profile());
}

#[test]
fn seccomp_profile_denying_the_inits_wait_fails_create_clearly() {
    if is_runc() {
        skip("runc's init waits on a fifo (open/write), not accept4");
        return;
    }
    let mut p = minimal_profile();
    p["syscalls"][0]["names"] = json!(
        MINIMAL
            .iter()
            .filter(|n| **n != "accept4")
            .collect::<Vec<_>>()
    );
    // With noNewPrivileges the filter comes after the wait: it works.
    let b = nnp(Bundle::new(), true)
        .with(|c| c["linux"]["seccomp"] = p.clone())
        .sh(SCRIPT);
    assert_ran(
        &Container::new(b).run_ok(),
        "accept4 denied, noNewPrivileges",
    );
    // Without, the filter is loaded first: create says why, leaves nothing.
    let b = nnp(Bundle::new(), false).with(|c| c["linux"]["seccomp"] = p);
    let c = Container::new(b);
    c.create()
        .failed()
        .stderr_is_short_error()
        .stderr_mentions(&["linux.seccomp", "accept4"]);
    c.assert_clean();
}

#[test]
fn seccomp_start_container_hooks_run_under_the_filter() {
    // The hook makes a directory on the container's /dev/shm; the profile
    // refuses mkdir and mkdirat: start fails, whichever way it is loaded.
    let deny_mkdir = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [ { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO" } ]
    });
    for on in [true, false] {
        let b = nnp(Bundle::new(), on)
            .with(|c| c["linux"]["seccomp"] = deny_mkdir.clone())
            .hook(
                "startContainer",
                json!({ "path": "/bin/mkdir", "args": ["mkdir", "/dev/shm/hook-ran"] }),
            )
            .args(&["sleep", "60"]);
        let c = Container::new(b);
        c.create().ok();
        let o = c.start();
        // rrun's start reports the hook's failure; runc's start returns
        // before the hooks run, and the init then exits: either way the
        // program (sleep 60) never runs.
        assert!(
            !o.success() || is_runc(),
            "noNewPrivileges={on}: the hook's mkdir is filtered: {o}"
        );
        let stopped = poll(STATUS_TIMEOUT, || (c.status() == "stopped").then_some(()));
        assert!(stopped.is_some(), "noNewPrivileges={on}: {}", c.status());
        // Without the filter the same hook succeeds: the failure is the
        // filter's, not the hook's.
        let b = nnp(Bundle::new(), on)
            .hook(
                "startContainer",
                json!({ "path": "/bin/mkdir", "args": ["mkdir", "/dev/shm/hook-ran"] }),
            )
            .args(&["sh", "-c", "test -d /dev/shm/hook-ran && echo hook-ran"]);
        let out = Container::new(b).run_ok();
        assert!(out.contains("hook-ran"), "noNewPrivileges={on}: {out}");
    }
}

/// A profile may answer the credential syscalls with "success" without
/// running them (SCMP_ACT_ERRNO with errnoRet 0). Without
/// noNewPrivileges the filter is loaded before they run, so the process
/// would keep rrun's root and full capabilities while the config asks for
/// uid 1000 and none: rrun reads the result back and refuses (runc 1.1
/// runs the program as root).
#[test]
fn faked_credential_syscalls_are_caught() {
    require!(is_root(), "needs root");
    require!(
        !is_runc(),
        "runc 1.1 runs the program with uid 0 and its capabilities"
    );
    for faked in [
        &["setresuid", "setuid"][..],
        &["setresgid", "setgid"],
        &["setgroups"],
        &["capset"],
    ] {
        let b = crate::common::Bundle::new()
            .user(1000, 1000, &[5])
            .args(&["id"])
            .with(|c| {
                c["process"]["noNewPrivileges"] = serde_json::json!(false);
                c["linux"]["seccomp"] = serde_json::json!({
                    "defaultAction": "SCMP_ACT_ALLOW",
                    "architectures": ["SCMP_ARCH_X86_64"],
                    "syscalls": [
                        {"names": faked, "action": "SCMP_ACT_ERRNO", "errnoRet": 0},
                        // The getters refused too: the kernel's
                        // /proc/self/status answers instead.
                        {"names": ["getresuid", "getresgid", "getgroups"],
                         "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
                    ]
                });
            });
        let c = Container::new(b);
        let o = c.run();
        assert!(!o.success(), "{faked:?} faked, the program ran: {o}");
        assert!(
            o.stderr.contains("seccomp") && !o.stdout.contains("uid=0"),
            "{faked:?} faked: {o}"
        );
        c.assert_clean();
    }
}
