//! Security regressions: one test (or a few) per known container-escape
//! class, each written so that it fails on a runtime that has the bug, plus
//! seccomp (podman's real default profile and a hand-written one) and
//! capability checks.
//!
//! Probes that would damage the host on a vulnerable runtime are made
//! harmless where possible: files are opened for writing with O_APPEND (or
//! O_RDWR) and never written, host values are written back unchanged, and a
//! guard restores /proc/sys/kernel/core_pattern.
//!
//! runc 1.1.5 (the reference in `make test-runc`) is vulnerable to some of
//! these (CVE-2024-21626 is fixed in 1.1.12, CVE-2025-31133/52565/52881 in
//! 1.2.8); those tests are skipped under runc with the reason printed, so
//! the suite stays green there.

#[macro_use]
mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A host temp dir readable by everybody, named `rrun-test-<what>-...`.
fn host_dir(what: &str) -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix(&format!("rrun-test-{what}-"))
        .tempdir()
        .expect("tempdir");
    set_mode(d.path(), 0o755);
    d
}

/// Sorted names in a directory.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn sha256_hex(p: &Path) -> String {
    use sha2::{Digest, Sha256};
    let data = fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The runtime's binaries on the host (rrun and rrun-init beside it).
fn runtime_binaries() -> Vec<PathBuf> {
    let main = fs::canonicalize(rrun_bin()).expect("canonicalize the runtime binary");
    let mut v = vec![main.clone()];
    let init = main.with_file_name("rrun-init");
    if !is_runc() && init.exists() {
        v.push(fs::canonicalize(init).unwrap());
    }
    v
}

/// The runtime binaries, held open with their sha256. Hashing through the
/// held fd checks the very inode a container could reach through
/// /proc/<pid>/exe, even if the file is rebuilt (replaced) meanwhile.
struct PinnedBinaries(Vec<(PathBuf, fs::File, String)>);

fn binary_hashes() -> PinnedBinaries {
    PinnedBinaries(
        runtime_binaries()
            .into_iter()
            .map(|p| {
                let mut f = fs::File::open(&p).unwrap();
                let h = sha256_fd(&mut f);
                (p, f, h)
            })
            .collect(),
    )
}

fn sha256_fd(f: &mut fs::File) -> String {
    use sha2::{Digest, Sha256};
    use std::io::{Read, Seek, SeekFrom};
    let mut data = Vec::new();
    f.seek(SeekFrom::Start(0)).unwrap();
    f.read_to_end(&mut data).unwrap();
    Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[track_caller]
fn assert_binaries_unchanged(before: &PinnedBinaries) {
    for (p, f, h) in &before.0 {
        let mut f = f.try_clone().unwrap();
        assert_eq!(
            &sha256_fd(&mut f),
            h,
            "host runtime binary {} was modified from inside a container",
            p.display()
        );
        if fs::metadata(p).map(|m| m.ino()).ok() == f.metadata().map(|m| m.ino()).ok() {
            assert_eq!(&sha256_hex(p), h, "{} modified", p.display());
        } else {
            eprintln!("note: {} was replaced on disk during the test", p.display());
        }
    }
}

/// A running container (the process is the bundle's).
#[track_caller]
fn running(b: Bundle) -> Container {
    let c = Container::new(b);
    c.create().ok();
    c.start().ok();
    c.wait_status("running");
    c
}

/// `exec FLAGS... ID COMMAND...` in the foreground.
#[track_caller]
fn exec(c: &Container, flags: &[&str], command: &[&str]) -> Output {
    let mut args = vec!["exec"];
    args.extend_from_slice(flags);
    args.push(&c.id);
    args.extend_from_slice(command);
    c.rrun(&args)
}

/// Set every capability set (ambient too) to `caps`.
fn with_caps(b: Bundle, caps: &[&str]) -> Bundle {
    b.with(|c| {
        c["process"]["capabilities"] = json!({
            "bounding": caps, "effective": caps, "permitted": caps,
            "inheritable": caps, "ambient": caps
        })
    })
}

fn caps_plus(extra: &[&'static str]) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = DEFAULT_CAPS.to_vec();
    v.extend_from_slice(extra);
    v
}

/// The value of `Key:` in /proc/<pid>/status-like text.
fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key}: in {status:?}"))
}

/// Wrap a runtime command so that it starts with fds 3..=10 open without
/// close-on-exec: odd ones on `dir`, even ones on the host's `/` (what a
/// careless caller, or a runtime's own leak, would hand over).
fn with_leaked_fds(cmd: Command, dir: &Path) -> Command {
    let mut w = Command::new("bash");
    w.arg("-c")
        .arg("exec 3<\"$1\" 4</ 5<\"$1\" 6</ 7<\"$1\" 8</ 9<\"$1\" 10</; shift; exec \"$@\"")
        .arg("bash")
        .arg(dir)
        .arg(cmd.get_program());
    w.args(cmd.get_args());
    if let Some(d) = cmd.get_current_dir() {
        w.current_dir(d);
    }
    w
}

/// Fd numbers listed by `ls -l /proc/self/fd` (lines `... N -> target`).
fn fd_numbers(ls: &str) -> BTreeSet<u32> {
    ls.lines()
        .filter_map(|l| {
            let (left, _) = l.split_once(" -> ")?;
            left.split_whitespace().last()?.parse().ok()
        })
        .collect()
}

/// The host's /dev/null: (uid, gid, mode, rdev).
fn dev_null_stat() -> (u32, u32, u32, u64) {
    let m = fs::metadata("/dev/null").unwrap();
    (m.uid(), m.gid(), m.mode(), m.rdev())
}

/// Restores /proc/sys/kernel/core_pattern on drop if a test changed it
/// (only a vulnerable runtime would let a container do that).
struct CorePatternGuard(String);

impl CorePatternGuard {
    fn new() -> Self {
        CorePatternGuard(fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap())
    }
    fn changed(&self) -> bool {
        fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap() != self.0
    }
}

impl Drop for CorePatternGuard {
    fn drop(&mut self) {
        if self.changed() {
            let _ = fs::write("/proc/sys/kernel/core_pattern", self.0.trim_end());
        }
    }
}

/// Run a runtime command under `script(1)`, so that it has a terminal.
fn under_script(cmd: &Command) -> Command {
    let mut line = format!("'{}'", cmd.get_program().to_string_lossy());
    for a in cmd.get_args() {
        line.push_str(&format!(" '{}'", a.to_string_lossy()));
    }
    let mut s = Command::new("script");
    s.arg("-qec").arg(line).arg("/dev/null");
    s
}

// ---------------------------------------------------------------------------
// Seccomp: podman's default profile
// ---------------------------------------------------------------------------

const PODMAN_PROFILE: &str = "/usr/share/containers/seccomp.json";

fn kernel_version() -> (u32, u32) {
    let r = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut it = r.trim().split(|c: char| !c.is_ascii_digit());
    let a = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let b = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (a, b)
}

/// Convert a containers/common (Docker engine format) seccomp profile to an
/// OCI `linux.seccomp` for x86_64 and a container whose bounding set is
/// `caps`, as the engines do: an entry is kept when all its `includes`
/// hold (arches contain amd64, every cap is in the set, kernel >= minKernel)
/// and no `excludes` applies (arches contain amd64, any cap in the set).
fn engine_profile_to_oci(profile: &Value, caps: &[&str]) -> Value {
    const ARCH: &[&str] = &["amd64", "x86_64", "SCMP_ARCH_X86_64"];
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let kernel = kernel_version();
    let kernel_ok = |v: &Value| match v.as_str() {
        None | Some("") => true,
        Some(k) => {
            let mut it = k.split('.').map(|s| s.parse::<u32>().unwrap_or(0));
            let want = (it.next().unwrap_or(0), it.next().unwrap_or(0));
            kernel >= want
        }
    };
    let mut syscalls = Vec::new();
    for s in profile["syscalls"].as_array().expect("syscalls[]") {
        let inc = &s["includes"];
        let exc = &s["excludes"];
        let inc_arches = strs(&inc["arches"]);
        if !inc_arches.is_empty() && !inc_arches.iter().any(|a| ARCH.contains(&a.as_str())) {
            continue;
        }
        if !strs(&inc["caps"])
            .iter()
            .all(|c| caps.contains(&c.as_str()))
        {
            continue;
        }
        if !kernel_ok(&inc["minKernel"]) {
            continue;
        }
        if strs(&exc["arches"])
            .iter()
            .any(|a| ARCH.contains(&a.as_str()))
        {
            continue;
        }
        if strs(&exc["caps"])
            .iter()
            .any(|c| caps.contains(&c.as_str()))
        {
            continue;
        }
        if exc.get("minKernel").is_some_and(|k| !k.is_null()) && kernel_ok(&exc["minKernel"]) {
            continue;
        }
        let mut e = json!({ "names": s["names"], "action": s["action"] });
        if let Some(a) = s
            .get("args")
            .filter(|a| a.as_array().is_some_and(|a| !a.is_empty()))
        {
            e["args"] = a.clone();
        }
        if let Some(r) = s.get("errnoRet").filter(|r| !r.is_null()) {
            e["errnoRet"] = r.clone();
        }
        syscalls.push(e);
    }
    let mut out = json!({
        "defaultAction": profile["defaultAction"],
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": syscalls,
    });
    if let Some(r) = profile.get("defaultErrnoRet").filter(|r| !r.is_null()) {
        out["defaultErrnoRet"] = r.clone();
    }
    out
}

/// podman's profile converted for `caps`, or None (with a skip notice).
fn podman_profile(caps: &[&str]) -> Option<Value> {
    let Ok(text) = fs::read_to_string(PODMAN_PROFILE) else {
        skip(&format!(
            "{PODMAN_PROFILE} missing (Debian 12: apt-get install golang-github-containers-common)"
        ));
        return None;
    };
    let profile: Value = serde_json::from_str(&text).expect("seccomp.json is JSON");
    Some(engine_profile_to_oci(&profile, caps))
}

/// Names the converted profile allows without argument conditions.
fn allowed_names(oci: &Value) -> BTreeSet<String> {
    oci["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"] == "SCMP_ACT_ALLOW" && s.get("args").is_none())
        .flat_map(|s| s["names"].as_array().unwrap().iter())
        .map(|n| n.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn podman_profile_conversion_follows_includes_and_excludes() {
    let Some(plain) = podman_profile(DEFAULT_CAPS) else {
        return;
    };
    let Some(admin) = podman_profile(&caps_plus(&["CAP_SYS_ADMIN"])) else {
        return;
    };
    let (p, a) = (allowed_names(&plain), allowed_names(&admin));
    for n in ["read", "write", "execve", "arch_prctl", "modify_ldt"] {
        assert!(p.contains(n), "{n} should be allowed on x86_64");
    }
    for n in ["sync_file_range2", "s390_runtime_instr", "breakpoint"] {
        assert!(!p.contains(n), "{n} is for another architecture");
    }
    assert!(
        !p.contains("bpf") && a.contains("bpf"),
        "bpf needs CAP_SYS_ADMIN"
    );
    for n in ["sethostname", "quotactl", "setdomainname"] {
        assert!(!p.contains(n) && a.contains(n), "{n} needs CAP_SYS_ADMIN");
    }
    for n in ["swapon", "kexec_load", "add_key", "request_key"] {
        assert!(!p.contains(n) && !a.contains(n), "{n} is never allowed");
    }
    assert_eq!(plain["architectures"], json!(["SCMP_ARCH_X86_64"]));
    assert!(
        plain["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s.get("includes").is_none() && s.get("excludes").is_none())
    );
}

/// What every podman-profile container checks; prints `key=rc` lines.
const SECCOMP_PROBES: &str = "grep Seccomp: /proc/self/status; \
    ls / >/dev/null && echo ls-ok; \
    echo hello > /dev/shm/f.$(id -u) && cat /dev/shm/f.$(id -u); \
    sleep 0.1 && echo sleep-ok; \
    sh -c 'echo nested-ok'; \
    hostname rrun-changed 2>&1; echo hostname=$?; \
    swapoff /rrun-no-such-swap 2>&1; echo swapoff=$?; \
    mount -t tmpfs none /mnt 2>&1; echo mount=$?; \
    unshare -m true 2>&1; echo unshare-m=$?; \
    nsenter -t 1 -n true 2>&1; echo nsenter=$?; \
    chroot / true 2>&1; echo chroot=$?";

/// The line of `out` following the probe `key` (its message) and its rc.
fn probe(out: &str, key: &str) -> (String, i32) {
    let lines: Vec<&str> = out.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.starts_with(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {out:?}"));
    let rc = lines[i][key.len() + 1..].trim().parse().unwrap();
    let msg = if i > 0 && !lines[i - 1].contains('=') {
        lines[i - 1].to_string()
    } else {
        String::new()
    };
    (msg, rc)
}

#[track_caller]
fn assert_ordinary_commands_work(out: &str) {
    assert_eq!(status_field(out, "Seccomp"), "2", "filter mode:\n{out}");
    for w in ["ls-ok", "hello", "sleep-ok", "nested-ok"] {
        assert!(out.lines().any(|l| l == w), "{w} missing:\n{out}");
    }
}

#[test]
fn seccomp_podman_default_profile() {
    let Some(profile) = podman_profile(DEFAULT_CAPS) else {
        return;
    };
    let b = Bundle::new()
        .with(|c| c["linux"]["seccomp"] = profile)
        .sh(SECCOMP_PROBES);
    let c = Container::new(b);
    let o = c.run();
    o.ok();
    let out = &o.stdout;
    assert_ordinary_commands_work(out);
    // Denied by the profile (sethostname needs CAP_SYS_ADMIN, swapoff is
    // always EPERM).
    for k in ["hostname", "swapoff"] {
        let (msg, rc) = probe(out, k);
        assert!(
            rc != 0 && msg.contains("not permitted"),
            "{k}: {msg:?}\n{out}"
        );
    }
    // Allowed by the profile, denied for lack of capabilities.
    for k in ["mount", "unshare-m", "nsenter", "chroot"] {
        let (msg, rc) = probe(out, k);
        assert!(rc != 0, "{k} should fail: {msg:?}\n{out}");
    }
    let (msg, _) = probe(out, "mount");
    assert!(
        msg.contains("not permitted") || msg.contains("permission denied"),
        "mount: {msg:?}"
    );
}

#[test]
fn seccomp_podman_profile_with_cap_sys_admin() {
    // The same profile converted for CAP_SYS_ADMIN: mount and sethostname
    // are allowed now, swapoff stays denied (EPERM from the filter, where
    // the same container without the filter gets ENOENT for the missing
    // file): the denial is seccomp's, not the capability check's.
    let caps = caps_plus(&["CAP_SYS_ADMIN"]);
    let Some(profile) = podman_profile(&caps) else {
        return;
    };
    let bare = Container::new(with_caps(Bundle::new(), &caps).sh(SECCOMP_PROBES));
    let base = bare.run_ok();
    let (msg, rc) = probe(&base, "swapoff");
    assert!(
        rc != 0 && !msg.contains("not permitted"),
        "baseline: {base}"
    );
    let b = with_caps(Bundle::new(), &caps)
        .with(|c| c["linux"]["seccomp"] = profile)
        .sh(SECCOMP_PROBES);
    let c = Container::new(b);
    let o = c.run();
    o.ok();
    let out = &o.stdout;
    assert_ordinary_commands_work(out);
    assert_eq!(probe(out, "mount").1, 0, "{out}");
    assert_eq!(probe(out, "hostname").1, 0, "{out}");
    let (msg, rc) = probe(out, "swapoff");
    assert!(
        rc != 0 && msg.contains("not permitted"),
        "swapoff: {msg:?}\n{out}"
    );
}

#[test]
fn seccomp_podman_profile_applies_to_exec() {
    let Some(profile) = podman_profile(DEFAULT_CAPS) else {
        return;
    };
    let c = running(
        Bundle::new()
            .with(|c| c["linux"]["seccomp"] = profile)
            .args(&["sleep", "60"]),
    );
    for flags in [&[][..], &["--user", "1000:1000"][..]] {
        let o = exec(&c, flags, &["sh", "-c", SECCOMP_PROBES]);
        o.ok();
        assert_ordinary_commands_work(&o.stdout);
        for k in ["hostname", "swapoff"] {
            let (msg, rc) = probe(&o.stdout, k);
            assert!(
                rc != 0 && msg.contains("not permitted"),
                "exec {flags:?}: {o}"
            );
        }
        assert_ne!(probe(&o.stdout, "mount").1, 0, "{o}");
    }
}

// ---------------------------------------------------------------------------
// Seccomp: a hand-written profile with every action
// ---------------------------------------------------------------------------

const CLONE_NEWUSER: u64 = 0x1000_0000;

fn handwritten_profile() -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            // EXDEV: "Invalid cross-device link", unlike the EPERM the
            // missing CAP_SYS_ADMIN would give.
            { "names": ["sethostname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18 },
            // unshare(CLONE_NEWUSER|...) only: EOPNOTSUPP.
            { "names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95,
              "args": [ { "index": 0, "value": CLONE_NEWUSER, "valueTwo": CLONE_NEWUSER,
                          "op": "SCMP_CMP_MASKED_EQ" } ] },
            { "names": ["sync"], "action": "SCMP_ACT_KILL_PROCESS" },
            { "names": ["sysinfo"], "action": "SCMP_ACT_TRAP" },
            { "names": ["getcwd"], "action": "SCMP_ACT_LOG" },
            { "names": ["rrun_no_such_syscall"], "action": "SCMP_ACT_KILL" },
            { "names": ["rrun_no_such_syscall_either", "uname"], "action": "SCMP_ACT_ERRNO",
              "errnoRet": 5 }
        ]
    })
}

const HANDWRITTEN_PROBES: &str = "grep Seccomp: /proc/self/status; \
    hostname rrun-changed 2>&1; echo hostname=$?; \
    unshare -U true 2>&1; echo unshare-user=$?; \
    unshare -n true 2>&1; echo unshare-net=$?; \
    sync; echo sync=$?; \
    free >/dev/null; echo free=$?; \
    pwd; echo pwd=$?; \
    echo uname[$(uname -s)]; \
    echo alive";

#[track_caller]
fn assert_handwritten(out: &str) {
    assert_eq!(status_field(out, "Seccomp"), "2", "{out}");
    let (msg, rc) = probe(out, "hostname");
    assert!(
        rc != 0 && msg.contains("cross-device"),
        "errnoRet: {msg:?}\n{out}"
    );
    let (msg, rc) = probe(out, "unshare-user");
    assert!(
        rc != 0 && msg.contains("supported"),
        "MASKED_EQ match: {msg:?}\n{out}"
    );
    let (msg, rc) = probe(out, "unshare-net");
    assert!(
        rc != 0 && !msg.contains("supported"),
        "MASKED_EQ no match: {msg:?}\n{out}"
    );
    assert_eq!(probe(out, "sync").1, 159, "KILL_PROCESS is SIGSYS:\n{out}");
    assert_eq!(probe(out, "free").1, 159, "TRAP is SIGSYS:\n{out}");
    assert_eq!(probe(out, "pwd").1, 0, "LOG allows:\n{out}");
    assert!(out.lines().any(|l| l == "/"), "pwd output:\n{out}");
    // uname(2) fails with EIO (an entry that also names an unknown
    // syscall): busybox then prints an empty name instead of "Linux".
    assert!(out.contains("uname[]"), "uname: {out}");
    assert!(out.lines().any(|l| l == "alive"), "{out}");
}

#[test]
fn seccomp_handwritten_profile_actions_and_args() {
    let b = Bundle::new()
        .with(|c| c["linux"]["seccomp"] = handwritten_profile())
        .sh(HANDWRITTEN_PROBES);
    let c = Container::new(b);
    let o = c.run();
    // Unknown syscall names are skipped (a warning at most), not fatal.
    o.ok();
    assert_handwritten(&o.stdout);
}

#[test]
fn seccomp_kill_process_ends_the_container_with_sigsys() {
    let b = Bundle::new()
        .with(|c| c["linux"]["seccomp"] = handwritten_profile())
        .args(&["sync"]);
    let c = Container::new(b);
    let o = c.run();
    assert_eq!(o.code, Some(128 + 31), "run's status is 128+SIGSYS:\n{o}");
}

#[test]
fn seccomp_handwritten_profile_applies_to_exec() {
    let c = running(
        Bundle::new()
            .with(|c| c["linux"]["seccomp"] = handwritten_profile())
            .args(&["sleep", "60"]),
    );
    let o = exec(&c, &[], &["sh", "-c", HANDWRITTEN_PROBES]);
    o.ok();
    assert_handwritten(&o.stdout);
    let o = exec(&c, &[], &["sync"]);
    assert_eq!(o.code, Some(159), "exec'd sync is killed by SIGSYS:\n{o}");
    let o = exec(&c, &["--user", "1000:1000"], &["hostname", "x"]);
    assert!(
        !o.success() && o.stderr.contains("cross-device"),
        "non-root exec is filtered too:\n{o}"
    );
}

// ---------------------------------------------------------------------------
// CVE-2019-5736: the host binary overwritten through /proc/<pid>/exe
// ---------------------------------------------------------------------------

/// Tries to open /proc/1/exe for writing (O_APPEND and O_RDWR: nothing is
/// truncated or written even when the open succeeds).
const OPEN_PID1_EXE: &str = "echo exe=$(readlink /proc/1/exe 2>&1); \
    if true 3>>/proc/1/exe; then echo OPENED-APPEND; fi; \
    if true 3<>/proc/1/exe; then echo OPENED-RDWR; fi; \
    echo probed";

#[track_caller]
fn assert_not_opened(o: &Output) {
    o.ok();
    assert!(o.stdout.contains("probed"), "{o}");
    assert!(
        !o.stdout.contains("OPENED"),
        "/proc/1/exe could be opened for writing:\n{o}"
    );
    for p in runtime_binaries() {
        assert!(
            !o.stdout.contains(&*p.to_string_lossy()),
            "/proc/1/exe shows the host binary {}:\n{o}",
            p.display()
        );
    }
}

#[test]
fn cve_2019_5736_builtin_init_exe_is_not_writable() {
    require!(
        !is_runc(),
        "runc has no built-in init (rrun.init annotation)"
    );
    let before = binary_hashes();
    let b = Bundle::new()
        .with(|c| c["annotations"] = json!({ "rrun.init": "true" }))
        .args(&["sleep", "60"]);
    let c = running(b);
    for flags in [&[][..], &["--user", "1000:1000"][..]] {
        let o = exec(&c, flags, &["sh", "-c", OPEN_PID1_EXE]);
        assert_not_opened(&o);
    }
    // With CAP_SYS_PTRACE the container can follow /proc/1/exe; it must
    // still only find the sealed memfd.
    let b = with_caps(Bundle::new(), &caps_plus(&["CAP_SYS_PTRACE"]))
        .with(|c| c["annotations"] = json!({ "rrun.init": "true" }))
        .args(&["sleep", "60"]);
    let c2 = running(b);
    let o = exec(&c2, &[], &["sh", "-c", OPEN_PID1_EXE]);
    assert_not_opened(&o);
    assert!(
        o.stdout.contains("exe=/memfd:"),
        "PID 1's exe should be a memfd:\n{o}"
    );
    drop(c);
    drop(c2);
    assert_binaries_unchanged(&before);
}

#[test]
fn cve_2019_5736_created_container_init_exe_is_not_writable() {
    // Before `start` PID 1 is the runtime itself (rrun's clone, runc init).
    let before = binary_hashes();
    let c = Container::new(Bundle::new().args(&["sleep", "60"]));
    c.create().ok();
    let o = exec(&c, &[], &["sh", "-c", OPEN_PID1_EXE]);
    assert_not_opened(&o);
    drop(c);
    assert_binaries_unchanged(&before);
}

/// Inside the container: until /mnt/stop appears, look at every process's
/// exe; each one that resolves (and is not the container's busybox) is
/// recorded, opened for writing (O_APPEND, never written) and held open
/// O_RDONLY by a `sleep` — the CVE-2019-5736 trick: once the runtime has
/// exited, reopen the held fd for writing through /proc/<holder>/fd/3.
const EXE_RACE: &str = r#"
holders=""; n=0
while [ ! -e /mnt/stop ]; do
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$p" = 1 ] && continue
    l=$(readlink $d/exe 2>/dev/null) || continue
    case "$l" in /bin/*|/sbin/*|/usr/*|"") continue;; esac
    echo "SEEN $p $l" >> /mnt/res
    if true 4>>$d/exe 2>/dev/null; then echo "OPENED $p $l" >> /mnt/res; fi
    sleep 30 3<$d/exe 2>/dev/null &
    holders="$holders $!"
  done
  n=$((n+1))
done
sleep 1
for h in $holders; do
  if [ -e /proc/$h/fd/3 ] && true 4>>/proc/$h/fd/3 2>/dev/null; then
    echo "REOPENED $h $(readlink /proc/$h/fd/3)" >> /mnt/res
  fi
  kill $h 2>/dev/null
done
echo "loops $n" >> /mnt/res
touch /mnt/done
sleep 60
"#;

fn exe_race(caps: &[&str]) {
    let before = binary_hashes();
    let out = host_dir("exe-race");
    fs::write(out.path().join("res"), "").unwrap();
    let b = with_caps(Bundle::new(), caps)
        .bind_mount(out.path(), "/mnt", &["rbind", "rw"])
        .sh(EXE_RACE);
    let c = running(b);
    let mut failures = 0;
    for _ in 0..60 {
        if !exec(&c, &[], &["true"]).success() {
            failures += 1;
        }
    }
    fs::write(out.path().join("stop"), "").unwrap();
    let done = poll(Duration::from_secs(30), || {
        out.path().join("done").exists().then_some(())
    });
    let res = fs::read_to_string(out.path().join("res")).unwrap();
    assert!(done.is_some(), "the probe loop did not finish:\n{res}");
    eprintln!("exe race ({caps:?}), {failures} failed execs:\n{res}");
    assert!(
        !res.contains("OPENED"),
        "a runtime process's exe was opened for writing from the container:\n{res}"
    );
    drop(c);
    assert_binaries_unchanged(&before);
}

#[test]
fn cve_2019_5736_exec_race_default_caps() {
    exe_race(DEFAULT_CAPS);
}

#[test]
fn cve_2019_5736_exec_race_with_cap_sys_ptrace() {
    // CAP_SYS_PTRACE (docker --cap-add SYS_PTRACE) defeats non-dumpable:
    // only a runtime that never shows its host binary to the container
    // (runc's memfd clone) survives this one.
    exe_race(&caps_plus(&["CAP_SYS_PTRACE"]));
}

// ---------------------------------------------------------------------------
// CVE-2024-21626: leaked host fds, cwd in a host directory
// ---------------------------------------------------------------------------

const FD_REPORT: &str = "ls -l /proc/self/fd; echo pwd=$(pwd)";

#[track_caller]
fn assert_only_stdio(o: &Output, marker: &str) {
    o.ok();
    let fds = fd_numbers(&o.stdout);
    assert!(
        fds.contains(&0) && fds.contains(&1) && fds.contains(&2),
        "stdio missing: {o}"
    );
    assert!(
        fds.iter().all(|n| *n <= 3),
        "host fds leaked into the container ({fds:?}):\n{o}"
    );
    assert!(!o.stdout.contains(marker), "{o}");
}

#[test]
fn cve_2024_21626_no_host_fd_leaks_into_run_or_exec() {
    let host = host_dir("leak");
    let marker = host.path().to_string_lossy().into_owned();
    let c = Container::new(Bundle::new().sh(FD_REPORT));
    c.bundle.write();
    let b = c.bundle_arg();
    let o = run_timeout(
        with_leaked_fds(c.cmd(&["run", "--bundle", &b, &c.id]), host.path()),
        TIMEOUT,
    );
    assert_only_stdio(&o, &marker);

    let r = running(Bundle::new().args(&["sleep", "60"]));
    let o = run_timeout(
        with_leaked_fds(r.cmd(&["exec", &r.id, "sh", "-c", FD_REPORT]), host.path()),
        TIMEOUT,
    );
    assert_only_stdio(&o, &marker);
    // The container's own process either.
    let o = exec(&r, &[], &["ls", "-l", "/proc/1/fd"]);
    o.ok();
    assert!(
        fd_numbers(&o.stdout).iter().all(|n| *n <= 2),
        "PID 1 holds extra fds:\n{o}"
    );
}

/// The cwd report of a container whose cwd may be a leaked fd: the run
/// fails, or its cwd is reachable from its root and not the host dir.
#[track_caller]
fn assert_cwd_contained(o: &Output, host: &Path, marker_file: &str) {
    if !o.success() {
        return; // refused: fine
    }
    let pwd = o
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("pwd="))
        .unwrap_or_else(|| panic!("no pwd= line:\n{o}"));
    assert!(
        !pwd.contains("unreachable") && !pwd.contains(&*host.to_string_lossy()),
        "cwd escaped the container root ({pwd}):\n{o}"
    );
    assert!(
        !o.stdout.contains(marker_file),
        "the container listed the host directory:\n{o}"
    );
}

const CWD_REPORT: &str = "echo pwd=$(pwd); ls -a; ls -a ..; ls -a ../..";

#[test]
fn cve_2024_21626_cwd_through_proc_self_fd() {
    require!(
        !is_runc(),
        "runc 1.1.5 is vulnerable to CVE-2024-21626 (fixed in 1.1.12): its init chdirs \
         through fds it inherited"
    );
    let host = host_dir("cwd");
    let marker = format!("host-marker-{}", unique_name());
    fs::write(host.path().join(&marker), "").unwrap();
    // The runtime's own fds first (a plain `run`, nothing leaked by the
    // caller): none may be a way out, e.g. the state dir.
    for n in 3..=12 {
        let cwd = format!("/proc/self/fd/{n}");
        let c = Container::new(Bundle::new().cwd(&cwd).sh(CWD_REPORT));
        let o = c.run();
        eprintln!("cwd {cwd} (no leaked fds): {o}");
        assert_cwd_contained(&o, Path::new("/run"), "state.json");
    }
    for n in 3..=10 {
        let cwd = format!("/proc/self/fd/{n}");
        let c = Container::new(Bundle::new().cwd(&cwd).sh(CWD_REPORT));
        c.bundle.write();
        let b = c.bundle_arg();
        let o = run_timeout(
            with_leaked_fds(c.cmd(&["run", "--bundle", &b, &c.id]), host.path()),
            TIMEOUT,
        );
        eprintln!("cwd {cwd}: {o}");
        assert_cwd_contained(&o, host.path(), &marker);
    }
}

#[test]
fn cve_2024_21626_exec_cwd_through_proc_self_fd() {
    require!(
        !is_runc(),
        "runc 1.1.5 is vulnerable to CVE-2024-21626 (fixed in 1.1.12)"
    );
    let host = host_dir("cwd");
    let marker = format!("host-marker-{}", unique_name());
    fs::write(host.path().join(&marker), "").unwrap();
    let c = running(Bundle::new().args(&["sleep", "60"]));
    for n in 3..=10 {
        let cwd = format!("/proc/self/fd/{n}");
        let o = run_timeout(
            with_leaked_fds(
                c.cmd(&["exec", "--cwd", &cwd, &c.id, "sh", "-c", CWD_REPORT]),
                host.path(),
            ),
            TIMEOUT,
        );
        eprintln!("exec --cwd {cwd}: {o}");
        assert_cwd_contained(&o, host.path(), &marker);
    }
}

// ---------------------------------------------------------------------------
// CVE-2021-30465: mount destinations through symlinks
// ---------------------------------------------------------------------------

/// Mount points (field 5) in mountinfo text.
fn mount_points(mountinfo: &str) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
        .collect()
}

#[test]
fn cve_2021_30465_mount_destination_symlinks_stay_in_rootfs() {
    let host = host_dir("mnt-marker");
    fs::write(host.path().join("marker"), "").unwrap();
    let host_before = listing(host.path());
    let src = host_dir("mnt-src");
    fs::write(src.path().join("src-file"), "").unwrap();
    let token = unique_name();
    let b = Bundle::new().private_rootfs();
    let r = b.rootfs.clone();
    let hp = host.path().to_string_lossy().into_owned();
    // Absolute symlink to a host path, relative one climbing out, and one
    // to "/". The host path exists in the rootfs too, so a runtime that
    // resolves in the root succeeds; one that follows the links on the host
    // creates dirs in (and mounts over) the host's marker dir.
    fs::create_dir_all(r.join(hp.trim_start_matches('/'))).unwrap();
    symlink(&hp, r.join("esc")).unwrap();
    symlink(format!("{}{hp}", "../".repeat(12)), r.join("up")).unwrap();
    fs::create_dir_all(r.join("mnt")).unwrap();
    symlink("/", r.join("mnt/target")).unwrap();
    let bound = format!("/{token}-bound");
    let b = b
        .mount(json!({ "destination": "/esc/new/sub", "type": "tmpfs", "source": "tmpfs" }))
        .mount(json!({ "destination": "/up/new2", "type": "tmpfs", "source": "tmpfs" }))
        .bind_mount(src.path(), &format!("/mnt/target{bound}"), &["rbind", "ro"])
        .sh(&format!("cat /proc/self/mountinfo; echo ==; ls {bound}"));
    let c = Container::new(b);
    let o = c.run();
    assert_eq!(listing(host.path()), host_before, "host dir touched:\n{o}");
    assert!(
        !Path::new(&bound).exists(),
        "the runtime created {bound} on the host"
    );
    assert!(mounts_mentioning(&hp).is_empty(), "host mounts on {hp}");
    o.ok();
    let (mi, ls) = o.stdout.split_once("==").unwrap();
    let mps = mount_points(mi);
    for want in [format!("{hp}/new/sub"), format!("{hp}/new2"), bound.clone()] {
        assert!(
            mps.contains(&want),
            "{want} should be a mount point inside the container: {mps:#?}"
        );
    }
    assert!(ls.contains("src-file"), "{o}");
    assert!(r.join(hp.trim_start_matches('/')).join("new/sub").is_dir());

    // A link whose target exists nowhere in the root: refused (rrun) or
    // created inside the rootfs (runc), never on the host.
    let nowhere = format!("/{token}-nowhere");
    let b = Bundle::new().private_rootfs();
    symlink(&nowhere, b.rootfs.join("dangle")).unwrap();
    let b = b
        .mount(json!({ "destination": "/dangle/x", "type": "tmpfs", "source": "tmpfs" }))
        .sh("true");
    let c = Container::new(b);
    let o = c.run();
    eprintln!("dangling symlink destination: {o}");
    assert!(
        !Path::new(&nowhere).exists(),
        "{nowhere} created on the host"
    );
    if o.success() {
        assert!(c.bundle.rootfs.join(&nowhere[1..]).join("x").is_dir());
    }
}

#[test]
fn cve_2021_30465_symlink_swapped_during_create() {
    require!(
        !is_runc(),
        "runc 1.1.5 fails this: its MkdirAll races with the swap and creates the mount \
         point on the host (CVE-2024-45310, fixed in 1.1.14)"
    );
    let host = host_dir("swap-marker");
    fs::write(host.path().join("marker"), "").unwrap();
    let host_before = listing(host.path());
    let hp = host.path().to_string_lossy().into_owned();
    let src = host_dir("swap-src");
    fs::write(src.path().join("src-file"), "").unwrap();
    let base = Bundle::new().private_rootfs();
    let r = base.rootfs.clone();
    fs::create_dir_all(r.join("race/m")).unwrap();
    symlink(&hp, r.join("race-alt")).unwrap();

    // Swap `race` (a dir) and `race-alt` (a symlink to the host dir)
    // atomically, as fast as possible, while containers are created.
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    let swapper = {
        let (stop, swaps) = (stop.clone(), swaps.clone());
        let a = std::ffi::CString::new(r.join("race").to_string_lossy().as_bytes()).unwrap();
        let b = std::ffi::CString::new(r.join("race-alt").to_string_lossy().as_bytes()).unwrap();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // SAFETY: two valid C strings; renameat2 has no other inputs.
                let rc = unsafe {
                    libc::renameat2(
                        libc::AT_FDCWD,
                        a.as_ptr(),
                        libc::AT_FDCWD,
                        b.as_ptr(),
                        libc::RENAME_EXCHANGE,
                    )
                };
                if rc == 0 {
                    swaps.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    struct StopOnDrop(Arc<AtomicBool>);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let guard = StopOnDrop(stop.clone());

    let (mut created, mut refused) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in 0..25 {
        if Instant::now() > deadline {
            break;
        }
        let rootfs = r.to_string_lossy().into_owned();
        let b = Bundle::new()
            .with(|c| c["root"] = json!({ "path": rootfs, "readonly": false }))
            .mount(json!({ "destination": "/race/m", "type": "tmpfs", "source": "tmpfs" }))
            .bind_mount(src.path(), "/race/m/b", &["rbind", "ro"])
            .bind_mount(src.path(), &format!("/race/n{i}"), &["rbind", "ro"])
            .args(&["sleep", "30"]);
        let c = Container::new(b);
        if c.create().success() {
            created += 1;
        } else {
            refused += 1;
        }
        assert_eq!(
            listing(host.path()),
            host_before,
            "iteration {i}: a mount destination was created on the host"
        );
        assert!(
            mounts_mentioning(&hp).is_empty(),
            "iteration {i}: host mounts on {hp}: {:#?}",
            mounts_mentioning(&hp)
        );
        drop(c);
    }
    drop(guard);
    swapper.join().unwrap();
    eprintln!(
        "swap race: {created} created, {refused} refused, {} swaps",
        swaps.load(Ordering::Relaxed)
    );
    assert_eq!(listing(host.path()), host_before);
    assert!(swaps.load(Ordering::Relaxed) > 0, "the swapper never ran");
}

// ---------------------------------------------------------------------------
// CVE-2025-31133 / CVE-2025-52565: a fake /dev/null or /dev/console
// ---------------------------------------------------------------------------

/// A bundle whose /dev is a bind mount of `rootfs/fakedev` (where `null`
/// and `console` may be planted symlinks) instead of a tmpfs.
fn fake_dev_bundle(plant: impl FnOnce(&Path)) -> Bundle {
    let b = Bundle::new().private_rootfs();
    let fake = b.rootfs.join("fakedev");
    for d in ["pts", "shm", "mqueue"] {
        fs::create_dir_all(fake.join(d)).unwrap();
    }
    plant(&fake);
    let src = fake.to_string_lossy().into_owned();
    b.with(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        let i = mounts
            .iter()
            .position(|m| m["destination"] == "/dev")
            .unwrap();
        mounts[i] = json!({ "destination": "/dev", "type": "bind", "source": src,
                            "options": ["rbind", "rw"] });
    })
}

const MASK_PROBE: &str = r#"
for f in /proc/kcore /proc/keys /proc/timer_list /proc/latency_stats /proc/sched_debug /proc/scsi /proc/acpi; do
  [ -e $f ] || continue
  echo "READ $f [$(head -c 200 $f 2>/dev/null)]"
  if [ -f $f ] || [ -c $f ]; then
    if echo "$TOKEN" > $f 2>/dev/null; then echo "WROTE $f"; fi
  fi
done
grep core_pattern /proc/self/mountinfo && echo CORE-MOUNTED
echo probed
"#;

#[test]
fn cve_2025_31133_dev_null_symlink_to_core_pattern() {
    require!(
        !is_runc(),
        "runc 1.1.5 is vulnerable to CVE-2025-31133 (fixed in 1.2.8): running this against it \
         would let the container write the host's core_pattern"
    );
    let guard = CorePatternGuard::new();
    let token = format!("rrun-test-core-{}", unique_name());
    let b = fake_dev_bundle(|d| symlink("/proc/sys/kernel/core_pattern", d.join("null")).unwrap())
        .env(&format!("TOKEN={token}"))
        .sh(MASK_PROBE);
    let c = Container::new(b);
    let o = c.run();
    let changed = guard.changed();
    assert!(
        !changed,
        "the container changed the host's core_pattern:\n{o}"
    );
    if !o.success() {
        eprintln!("refused (fine): {o}");
        return;
    }
    assert!(o.stdout.contains("probed"), "{o}");
    assert!(
        !o.stdout.contains("WROTE"),
        "a masked path was writable:\n{o}"
    );
    assert!(
        !o.stdout.contains("CORE-MOUNTED"),
        "core_pattern was mounted:\n{o}"
    );
    let core = guard.0.trim();
    assert!(
        !o.stdout.contains(&format!("[{core}]")),
        "a masked path shows core_pattern:\n{o}"
    );
}

#[test]
fn cve_2025_52565_dev_console_symlink() {
    require!(
        !is_runc(),
        "runc 1.1.5 is vulnerable to CVE-2025-52565 (fixed in 1.2.8)"
    );
    require!(
        have_cmd("script"),
        "script(1) (util-linux) is needed for a terminal"
    );
    let guard = CorePatternGuard::new();
    let token = unique_name();
    let hostish = format!("/{token}-console");
    for target in ["/proc/sys/kernel/core_pattern", hostish.as_str()] {
        let b = fake_dev_bundle(|d| symlink(target, d.join("console")).unwrap())
            .with(|c| c["process"]["terminal"] = json!(true))
            .sh("grep -E 'core_pattern|console' /proc/self/mountinfo; \
                 cat /proc/sys/kernel/core_pattern; echo probed");
        let c = Container::new(b);
        c.bundle.write();
        let bundle = c.bundle_arg();
        let o = run_timeout(
            under_script(&c.cmd(&["run", "--bundle", &bundle, &c.id])),
            TIMEOUT,
        );
        eprintln!("/dev/console -> {target}: {o}");
        assert!(!guard.changed(), "host core_pattern changed:\n{o}");
        assert!(
            !Path::new(&hostish).exists(),
            "{hostish} created on the host"
        );
        assert!(
            !o.stdout.contains("/proc/sys/kernel/core_pattern "),
            "something was mounted over core_pattern:\n{o}"
        );
        if o.stdout.contains("probed") {
            // The pty must not have been mounted over the symlink's target.
            let core = guard.0.trim();
            assert!(o.stdout.contains(core), "core_pattern unreadable:\n{o}");
        }
    }
}

// ---------------------------------------------------------------------------
// CVE-2025-52881: writes to /proc redirected by mounts
// ---------------------------------------------------------------------------

#[test]
fn cve_2025_52881_bind_mount_over_proc_sys_is_refused() {
    let host = host_dir("procsys");
    let f = host.path().join("ip_forward");
    fs::write(&f, "0\n").unwrap();
    let b = Bundle::new()
        .mount(
            json!({ "destination": "/proc/sys/net/ipv4/ip_forward", "type": "bind",
                       "source": f.to_string_lossy(), "options": ["bind", "rw"] }),
        )
        .with(|c| c["linux"]["sysctl"] = json!({ "net.ipv4.ip_forward": "1" }))
        .sh("cat /proc/sys/net/ipv4/ip_forward");
    let c = Container::new(b);
    let o = c.run();
    assert_eq!(
        fs::read_to_string(&f).unwrap(),
        "0\n",
        "a sysctl write landed in the bind-mounted host file:\n{o}"
    );
    o.failed();
}

#[test]
fn sysctl_still_reaches_procfs() {
    let host_before = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let want = if host_before.trim() == "1" { "0" } else { "1" };
    let b = Bundle::new()
        .with(|c| c["linux"]["sysctl"] = json!({ "net.ipv4.ip_forward": want }))
        .sh(
            "cat /proc/sys/net/ipv4/ip_forward; grep ' /proc/sys' /proc/self/mountinfo | \
             grep -v ' - proc ' || echo only-procfs",
        );
    let c = Container::new(b);
    let out = c.run_ok();
    assert_eq!(out.lines().next(), Some(want), "{out}");
    assert!(out.contains("only-procfs"), "{out}");
    assert_eq!(
        fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_before,
        "the container's sysctl changed the host"
    );
}

// ---------------------------------------------------------------------------
// CVE-2022-29162: inheritable capabilities beyond the config
// ---------------------------------------------------------------------------

fn no_inheritable_bundle() -> Bundle {
    Bundle::new().with(|c| {
        c["process"]["capabilities"] = json!({
            "bounding": DEFAULT_CAPS, "effective": DEFAULT_CAPS,
            "permitted": DEFAULT_CAPS, "inheritable": [], "ambient": DEFAULT_CAPS
        })
    })
}

#[track_caller]
fn assert_no_inh_amb(out: &str, what: &str) {
    assert_eq!(
        status_field(out, "CapInh"),
        "0000000000000000",
        "{what}:\n{out}"
    );
    assert_eq!(
        status_field(out, "CapAmb"),
        "0000000000000000",
        "{what}:\n{out}"
    );
}

#[test]
fn cve_2022_29162_no_inheritable_beyond_config() {
    let caps = "grep ^Cap /proc/self/status";
    let c = Container::new(no_inheritable_bundle().sh(caps));
    assert_no_inh_amb(&c.run_ok(), "run as root");
    let c = Container::new(no_inheritable_bundle().user(1000, 1000, &[]).sh(caps));
    assert_no_inh_amb(&c.run_ok(), "run as 1000");
    let c = running(no_inheritable_bundle().args(&["sleep", "60"]));
    for flags in [&[][..], &["--user", "1000:1000"][..]] {
        let o = exec(&c, flags, &["sh", "-c", caps]);
        o.ok();
        assert_no_inh_amb(&o.stdout, &format!("exec {flags:?}"));
    }
    // An explicit --cap adds to the sets but never to the inheritable one.
    let o = exec(&c, &["--cap", "CAP_CHOWN"], &["sh", "-c", caps]);
    o.ok();
    assert_eq!(status_field(&o.stdout, "CapInh"), "0000000000000000", "{o}");
}

// ---------------------------------------------------------------------------
// crun 1.8.1: exec --user chowned the host's /dev/null
// ---------------------------------------------------------------------------

#[test]
fn exec_user_leaves_host_dev_null_alone() {
    let before = dev_null_stat();
    let c = running(Bundle::new().args(&["sleep", "60"]));
    exec(&c, &["--user", "1000:1000"], &["true"]).ok();
    exec(
        &c,
        &["--user", "1000:1000"],
        &["sh", "-c", "true </dev/null"],
    )
    .ok();
    assert_eq!(dev_null_stat(), before, "exec --user");
    let r = Container::new(Bundle::new().user(1000, 1000, &[]).sh("true"));
    r.run().ok();
    assert_eq!(dev_null_stat(), before, "run as 1000");
    if have_cmd("script") {
        let cmd = c.cmd(&["exec", "-t", "--user", "1000:1000", &c.id, "true"]);
        let o = run_timeout(under_script(&cmd), TIMEOUT);
        o.ok();
        assert_eq!(dev_null_stat(), before, "exec -t --user");
    } else {
        skip("script(1) missing: the terminal exec part was not run");
    }
}

// ---------------------------------------------------------------------------
// exec/state never show the container a host fd, cwd or /proc entry
// ---------------------------------------------------------------------------

/// For every process: readlink of cwd, root, exe and fds; targets that are
/// absolute paths which do not exist in the container are host paths.
/// While a process is still the runtime (comm before and after the probe),
/// any resolved link or an open of environ/mem is a leak.
const PROC_PROBE: &str = r#"
n=0; rt=0
while [ ! -e /mnt/stop ]; do
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$p" = 1 ] && continue
    c1=$(cat $d/comm 2>/dev/null) || continue
    case "$c1" in rrun*|runc*) isrt=1; rt=$((rt+1));; *) isrt=0;; esac
    for l in $d/cwd $d/root $d/exe $d/fd/*; do
      # 0-2: the stdio the caller handed over (host files, by design).
      case "$l" in */fd/0|*/fd/1|*/fd/2) stdio=1;; *) stdio=0;; esac
      t=$(readlink $l 2>/dev/null) || continue
      if [ $isrt = 1 ]; then
        c2=$(cat $d/comm 2>/dev/null)
        [ "$c2" = "$c1" ] && echo "RUNTIME-LINK $p $c1 $l -> $t" >> /mnt/res
      fi
      [ $stdio = 1 ] && continue
      case "$t" in /*) [ -e "$t" ] || echo "HOST-LINK $p $c1 $l -> $t" >> /mnt/res;; esac
    done
    if [ $isrt = 1 ]; then
      for f in environ mem; do
        if true 5<$d/$f 2>/dev/null; then
          c2=$(cat $d/comm 2>/dev/null)
          [ "$c2" = "$c1" ] && echo "RUNTIME-OPEN $p $c1 $f" >> /mnt/res
        fi
      done
    fi
  done
  n=$((n+1))
done
echo "loops $n runtime-sightings $rt" >> /mnt/res
touch /mnt/done
sleep 60
"#;

#[test]
fn exec_and_state_expose_no_host_fd_cwd_or_proc_entry() {
    let out = host_dir("proc-probe");
    fs::write(out.path().join("res"), "").unwrap();
    let cwd = host_dir("exec-cwd");
    let b = Bundle::new()
        .bind_mount(out.path(), "/mnt", &["rbind", "rw"])
        .sh(PROC_PROBE);
    let c = running(b);
    for i in 0..40 {
        let mut cmd = c.cmd(&["exec", &c.id, "sh", "-c", "sleep 0.05"]);
        cmd.current_dir(cwd.path());
        let o = run_timeout(with_leaked_fds(cmd, cwd.path()), TIMEOUT);
        assert!(o.success(), "exec {i}: {o}");
        c.state_output().ok();
    }
    fs::write(out.path().join("stop"), "").unwrap();
    let done = poll(Duration::from_secs(30), || {
        out.path().join("done").exists().then_some(())
    });
    let res = fs::read_to_string(out.path().join("res")).unwrap();
    assert!(done.is_some(), "probe loop did not finish:\n{res}");
    eprintln!("proc probe: {}", res.lines().last().unwrap_or(""));
    let bad: Vec<&str> = res
        .lines()
        .filter(|l| l.starts_with("RUNTIME-") || l.starts_with("HOST-LINK"))
        .collect();
    assert!(
        bad.is_empty(),
        "the container resolved runtime/host entries: {bad:#?}"
    );
    assert!(!res.contains(&*cwd.path().to_string_lossy()), "{res}");
}

// ---------------------------------------------------------------------------
// Basic isolation from the host
// ---------------------------------------------------------------------------

#[test]
fn container_cannot_see_or_signal_host_processes() {
    let me = std::process::id();
    let b = Bundle::new().sh(&format!(
        "kill -0 {me} 2>&1; echo kill=$?; kill -0 1; echo kill1=$?; \
         echo pids: $(ls -d /proc/[0-9]* | sed 's,/proc/,,'); ps -o pid | tail -n +2"
    ));
    let c = Container::new(b);
    let out = c.run_ok();
    assert_ne!(probe(&out, "kill").1, 0, "kill -0 of a host pid:\n{out}");
    assert_eq!(probe(&out, "kill1").1, 0, "{out}");
    let pids: Vec<u32> = out
        .lines()
        .find_map(|l| l.strip_prefix("pids:"))
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(pids.contains(&1), "{out}");
    assert!(!pids.contains(&me), "host pid visible:\n{out}");
    assert!(pids.iter().all(|p| *p < 100), "host-like pids: {pids:?}");
}

#[test]
fn container_sees_no_host_mounts() {
    let host = host_dir("mnt-visible");
    let hp = host.path().to_string_lossy().into_owned();
    let b = Bundle::new().sh(&format!(
        "cut -d' ' -f5 /proc/self/mountinfo; ls {hp} 2>&1; echo ls=$?"
    ));
    let bundle_path = b.path().to_string_lossy().into_owned();
    let c = Container::new(b);
    let out = c.run_ok();
    let mps: Vec<&str> = out.lines().filter(|l| l.starts_with('/')).collect();
    for mp in &mps {
        if mp.starts_with(&hp) {
            continue; // the ls error line
        }
        assert!(
            *mp == "/"
                || mp.starts_with("/proc")
                || mp.starts_with("/dev")
                || mp.starts_with("/sys"),
            "host mount visible in the container: {mp}\n{out}"
        );
        assert!(!mp.contains(&bundle_path), "{out}");
    }
    assert_ne!(
        probe(&out, "ls").1,
        0,
        "the host temp dir is visible:\n{out}"
    );
}

#[test]
fn container_cannot_write_proc_sys_or_sys() {
    // Values are written back unchanged: harmless even where it succeeds.
    let b = Bundle::new().sh(
        "v=$(cat /proc/sys/kernel/panic); { echo $v > /proc/sys/kernel/panic; } 2>&1; echo panic=$?; \
         v=$(cat /proc/sys/kernel/hostname); { echo $v > /proc/sys/kernel/hostname; } 2>&1; \
         echo hostname=$?; \
         touch /sys/rrun-test 2>&1; echo systouch=$?; \
         if [ -e /sys/kernel/uevent_helper ]; then \
           v=$(cat /sys/kernel/uevent_helper); { echo \"$v\" > /sys/kernel/uevent_helper; } 2>&1; \
           echo uevent=$?; else echo uevent=1; fi; \
         grep -w /sys /proc/self/mountinfo",
    );
    let c = Container::new(b);
    let out = c.run_ok();
    for k in ["panic", "hostname", "systouch", "uevent"] {
        assert_ne!(probe(&out, k).1, 0, "{k} was writable:\n{out}");
    }
    let (msg, _) = probe(&out, "panic");
    assert!(msg.contains("Read-only"), "/proc/sys is read-only: {msg:?}");
    let (msg, _) = probe(&out, "systouch");
    assert!(msg.contains("Read-only"), "/sys is read-only: {msg:?}");
}

// ---------------------------------------------------------------------------
// Seccomp user notification (SCMP_ACT_NOTIFY, linux.seccomp.listenerPath)
// ---------------------------------------------------------------------------

/// One notification the test agent answered.
#[derive(Debug, Clone)]
struct Notified {
    nr: i64,
    /// The caller's pid, in the agent's (the host's) pid namespace.
    pid: u32,
    /// The path argument of mkdir/mkdirat, read from the caller's memory.
    path: Option<String>,
}

#[derive(Default)]
struct AgentLog {
    /// Every container process state received, with its fd count.
    states: Vec<(Value, usize)>,
    notified: Vec<Notified>,
    problems: Vec<String>,
    /// Connections the runtime closed after the state, and those it left
    /// open (the spec: "MUST be closed after sending").
    closed: usize,
    left_open: usize,
}

/// A seccomp agent, as an engine would run one: it listens on a unix
/// stream socket, takes each container process state with its listener
/// fd (SCM_RIGHTS), and answers notifications: mkdir of a path whose name
/// starts with `deny` fails with EDQUOT, any other mkdir "succeeds" without
/// anything being done, every other syscall continues as if not filtered.
struct Agent {
    _dir: tempfile::TempDir,
    path: PathBuf,
    log: Arc<std::sync::Mutex<AgentLog>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Agent {
    fn start() -> Agent {
        let dir = host_dir("agent");
        let path = dir.path().join("agent.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind agent socket");
        listener.set_nonblocking(true).unwrap();
        let log = Arc::new(std::sync::Mutex::new(AgentLog::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s) = (log.clone(), stop.clone());
        let thread = std::thread::spawn(move || agent_loop(listener, &l, &s));
        Agent {
            _dir: dir,
            path,
            log,
            stop,
            thread: Some(thread),
        }
    }

    fn path_str(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    /// Waits until `n` container process states arrived; returns them.
    #[track_caller]
    fn states(&self, n: usize) -> Vec<(Value, usize)> {
        let got = poll(STATUS_TIMEOUT, || {
            let l = self.log.lock().unwrap();
            (l.states.len() >= n).then(|| l.states.clone())
        });
        let l = self.log.lock().unwrap();
        assert!(l.problems.is_empty(), "agent problems: {:?}", l.problems);
        got.unwrap_or_else(|| {
            panic!(
                "agent got {} states, not {n}: {:?}",
                l.states.len(),
                l.states
            )
        })
    }

    /// What the agent got, for failure messages.
    fn report(&self) -> String {
        let l = self.log.lock().unwrap();
        format!(
            "states {:?}, {} notifications, problems {:?}",
            l.states,
            l.notified.len(),
            l.problems
        )
    }

    /// Waits until the runtime closed all `n` connections (rrun; runc 1.1
    /// leaves exec's open, so that is skipped under runc).
    #[track_caller]
    fn assert_connections_closed(&self, n: usize) {
        if is_runc() {
            skip("part skipped: runc 1.1 may keep the agent connection open");
            return;
        }
        let done = poll(STATUS_TIMEOUT, || {
            let l = self.log.lock().unwrap();
            (l.closed + l.left_open >= n).then_some(())
        });
        let l = self.log.lock().unwrap();
        assert!(
            done.is_some() && l.closed == n && l.left_open == 0,
            "closed {} and left open {} of {n} connections",
            l.closed,
            l.left_open
        );
    }

    fn notified(&self) -> Vec<Notified> {
        self.log.lock().unwrap().notified.clone()
    }

    /// Stops serving: the socket goes, every listener fd is closed.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = fs::remove_file(&self.path);
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
    }
}

fn agent_loop(
    listener: std::os::unix::net::UnixListener,
    log: &std::sync::Mutex<AgentLog>,
    stop: &AtomicBool,
) {
    use nix::poll::{PollFd, PollFlags, PollTimeout};
    use std::os::fd::{AsFd, OwnedFd};
    let mut fds: Vec<OwnedFd> = Vec::new();
    // Connections whose state was read, until EOF or a deadline.
    let mut open: Vec<(std::os::unix::net::UnixStream, Instant)> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => match receive_process_state(&stream) {
                Ok((v, got)) => {
                    log.lock().unwrap().states.push((v, got.len()));
                    fds.extend(got);
                    open.push((stream, Instant::now() + Duration::from_secs(2)));
                }
                Err(e) => log.lock().unwrap().problems.push(e),
            },
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => log.lock().unwrap().problems.push(format!("accept: {e}")),
        }
        open.retain(|(stream, deadline)| match connection_closed(stream) {
            Some(true) => {
                log.lock().unwrap().closed += 1;
                false
            }
            Some(false) => {
                let p = "data after the container process state".to_string();
                log.lock().unwrap().problems.push(p);
                false
            }
            None if Instant::now() > *deadline => {
                log.lock().unwrap().left_open += 1;
                false
            }
            None => true,
        });
        if fds.is_empty() {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let mut pfds: Vec<PollFd> = fds
            .iter()
            .map(|f| PollFd::new(f.as_fd(), PollFlags::POLLIN))
            .collect();
        if nix::poll::poll(&mut pfds, PollTimeout::from(20u8)).is_err() {
            continue;
        }
        let ready: Vec<(bool, bool)> = pfds
            .iter()
            .map(|p| {
                let r = p.revents().unwrap_or(PollFlags::empty());
                (
                    r.contains(PollFlags::POLLIN),
                    r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL),
                )
            })
            .collect();
        drop(pfds);
        for (i, (readable, gone)) in ready.into_iter().enumerate().rev() {
            if readable {
                answer_one(&fds[i], log);
            } else if gone {
                // Every process using the filter has exited.
                fds.remove(i);
            }
        }
    }
}

/// Accepts the container process state: JSON, with the fds in the first
/// message's SCM_RIGHTS; the runtime closes the connection after it.
fn receive_process_state(
    stream: &std::os::unix::net::UnixStream,
) -> Result<(Value, Vec<std::os::fd::OwnedFd>), String> {
    use std::io::Read;
    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
    let (mut data, fds) = recv_with_fds(stream, 64 * 1024, Duration::from_secs(5))?;
    // The state may come in several sends: read until it is whole JSON
    // (whether the runtime then closes is checked apart, see agent_loop).
    loop {
        match serde_json::from_slice::<Value>(&data) {
            Ok(v) => return Ok((v, fds)),
            Err(e) if e.is_eof() => {
                let mut chunk = [0u8; 4096];
                let n = (&*stream)
                    .read(&mut chunk)
                    .map_err(|e| format!("reading the rest of the state: {e}"))?;
                if n == 0 {
                    return Err(format!(
                        "connection closed inside the state: {}",
                        String::from_utf8_lossy(&data)
                    ));
                }
                data.extend_from_slice(&chunk[..n]);
            }
            Err(e) => {
                return Err(format!(
                    "state is not JSON ({e}): {}",
                    String::from_utf8_lossy(&data)
                ));
            }
        }
    }
}

/// After the state: EOF (the runtime closed, as the spec asks) is Some(true),
/// nothing yet is None, more data is Some(false).
fn connection_closed(stream: &std::os::unix::net::UnixStream) -> Option<bool> {
    use std::io::Read;
    stream.set_nonblocking(true).ok()?;
    let mut b = [0u8; 1];
    match (&*stream).read(&mut b) {
        Ok(0) => Some(true),
        Ok(_) => Some(false),
        Err(_) => None,
    }
}

/// The NUL-terminated string at `addr` in process `pid`.
fn read_string(pid: u32, addr: u64) -> Option<String> {
    use std::os::unix::fs::FileExt;
    let f = fs::File::open(format!("/proc/{pid}/mem")).ok()?;
    let mut buf = vec![0u8; 4096];
    let n = f.read_at(&mut buf, addr).ok()?;
    let end = buf[..n].iter().position(|b| *b == 0)?;
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

fn answer_one(fd: &std::os::fd::OwnedFd, log: &std::sync::Mutex<AgentLog>) {
    use std::os::fd::AsRawFd;
    // SAFETY: seccomp_notif is plain data, and the kernel wants it zeroed.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: NOTIF_RECV writes one seccomp_notif into `req`.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) } < 0 {
        return; // ENOENT: the caller died meanwhile
    }
    let nr = req.data.nr as i64;
    let path_arg = match nr {
        libc::SYS_mkdir => Some(req.data.args[0]),
        libc::SYS_mkdirat => Some(req.data.args[1]),
        _ => None,
    };
    let path = path_arg.and_then(|a| read_string(req.pid, a));
    let mut resp = libc::seccomp_notif_resp {
        id: req.id,
        val: 0,
        error: 0,
        flags: 0,
    };
    match (&path_arg, &path) {
        (None, _) => resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
        (Some(_), Some(p)) if p.rsplit('/').next().unwrap_or("").starts_with("deny") => {
            resp.error = -libc::EDQUOT
        }
        // mkdir "succeeds", and nothing is created.
        (Some(_), _) => {}
    }
    log.lock().unwrap().notified.push(Notified {
        nr,
        pid: req.pid,
        path,
    });
    // SAFETY: NOTIF_SEND reads one seccomp_notif_resp from `resp`.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) };
}

/// Notify mkdir and mkdirat to `agent`.
fn notify_profile(agent: &Agent, meta: &str) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": agent.path_str(),
        "listenerMetadata": meta,
        "syscalls": [ { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY" } ]
    })
}

/// /dev/shm is a writable tmpfs: a mkdir there that did not happen was
/// answered by the agent, not refused by the filesystem.
const NOTIFY_PROBES: &str = "grep Seccomp: /proc/self/status; \
    mkdir /dev/shm/made 2>&1; echo made=$?; \
    mkdir /dev/shm/deny 2>&1; echo deny=$?; \
    touch /dev/shm/touched; echo touch=$?; \
    echo listing:$(ls /dev/shm | tr '\\n' ' ')";

#[track_caller]
fn assert_notify_probes(out: &str) {
    assert_eq!(status_field(out, "Seccomp"), "2", "{out}");
    assert_eq!(probe(out, "made").1, 0, "the agent's success:\n{out}");
    let (msg, rc) = probe(out, "deny");
    assert!(
        rc != 0 && msg.to_lowercase().contains("quota"),
        "the agent's EDQUOT: {msg:?}\n{out}"
    );
    assert_eq!(probe(out, "touch").1, 0, "{out}");
    let listing = out
        .lines()
        .find_map(|l| l.strip_prefix("listing:"))
        .unwrap_or_else(|| panic!("no listing:\n{out}"));
    let names: Vec<&str> = listing.split_whitespace().collect();
    assert_eq!(
        names,
        ["touched"],
        "mkdir did nothing, touch was not notified:\n{out}"
    );
}

#[track_caller]
fn assert_mkdirs_notified(agent: &Agent, paths: &[&str]) {
    let seen = agent.notified();
    for p in paths {
        assert!(
            seen.iter().any(|n| {
                (n.nr == libc::SYS_mkdir || n.nr == libc::SYS_mkdirat)
                    && n.path.as_deref() == Some(*p)
            }),
            "agent did not see mkdir {p}: {seen:?}"
        );
    }
}

/// Host pids whose cgroup (any hierarchy) is under `cgroups_path`.
fn pids_in_cgroup(cgroups_path: &str) -> Vec<i32> {
    let mut v: Vec<i32> = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|c| {
                c.lines()
                    .filter_map(|l| l.splitn(3, ':').nth(2))
                    .any(|p| p.split('/').any(|part| part == cgroups_path))
            })
        })
        .collect();
    v.sort();
    v
}

#[test]
fn seccomp_notify_agent_answers_for_the_container() {
    for nnp in [true, false] {
        let agent = Agent::start();
        let meta = format!("test-meta-{}", unique_name());
        let mut profile = notify_profile(&agent, &meta);
        // TSYNC, which the kernel refuses with a listener as such, and
        // WAIT_KILLABLE_RECV, which only applies with one (runc 1.1 takes
        // no flags at all).
        if !is_runc() {
            profile["flags"] = if nnp {
                json!(["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"])
            } else {
                json!(["SECCOMP_FILTER_FLAG_TSYNC"])
            };
        }
        let b = Bundle::new()
            .with(|c| {
                c["linux"]["seccomp"] = profile;
                c["process"]["noNewPrivileges"] = json!(nnp);
                c["annotations"] = json!({ "org.rrun.test": "notify" });
            })
            .sh(NOTIFY_PROBES);
        let c = Container::new(b);
        c.create().ok();
        let states = agent.states(1);
        let (st, nfds) = &states[0];
        assert_eq!(*nfds, 1, "one fd per state: {st}");
        assert_eq!(st["fds"], json!(["seccompFd"]), "{st}");
        assert_eq!(st["metadata"], json!(meta), "{st}");
        let state = c.state();
        assert_eq!(st["pid"], state["pid"], "the container process: {st}");
        assert_eq!(st["ociVersion"], state["ociVersion"], "{st}");
        let s = &st["state"];
        assert_eq!(s["id"], json!(c.id), "{st}");
        assert_eq!(s["status"], json!("creating"), "{st}");
        assert_eq!(s["pid"], state["pid"], "{st}");
        assert_eq!(s["bundle"], state["bundle"], "{st}");
        assert_eq!(s["annotations"]["org.rrun.test"], json!("notify"), "{st}");
        c.start().ok();
        c.wait_status("stopped");
        let (out, err) = c.output();
        let all = format!("{out}{err}");
        assert_notify_probes(&all);
        assert_mkdirs_notified(&agent, &["/dev/shm/made", "/dev/shm/deny"]);
        assert_eq!(agent.states(1).len(), 1, "one state per process");
        agent.assert_connections_closed(1);
        c.delete().ok();
        c.assert_clean();
    }
}

#[test]
fn seccomp_notify_applies_to_exec() {
    for nnp in [true, false] {
        let agent = Agent::start();
        let b = Bundle::new()
            .with(|c| {
                c["linux"]["seccomp"] = notify_profile(&agent, "exec");
                c["process"]["noNewPrivileges"] = json!(nnp);
            })
            .args(&["sleep", "60"]);
        let c = running(b);
        let init = c.pid();
        agent.states(1);
        // mkdir itself is the exec'd process: the notification comes from
        // the pid the agent was told about.
        let o = exec(&c, &[], &["mkdir", "/dev/shm/exec-made"]);
        assert!(o.success(), "{o}\nagent: {}", agent.report());
        let states = agent.states(2);
        let (st, nfds) = &states[1];
        assert_eq!(*nfds, 1, "{st}");
        assert_eq!(st["fds"], json!(["seccompFd"]), "{st}");
        assert_eq!(st["metadata"], json!("exec"), "{st}");
        let pid = st["pid"].as_i64().expect("pid") as u32;
        assert_ne!(pid as i32, init, "the exec'd process, not the init: {st}");
        assert_eq!(st["state"]["pid"], json!(init), "{st}");
        assert_eq!(st["state"]["status"], json!("running"), "{st}");
        assert_eq!(st["state"]["id"], json!(c.id), "{st}");
        let made = agent
            .notified()
            .into_iter()
            .find(|n| n.path.as_deref() == Some("/dev/shm/exec-made"))
            .expect("the exec'd mkdir was notified");
        assert_eq!(made.pid, pid, "notification from the announced pid");
        let o = exec(&c, &[], &["mkdir", "/dev/shm/deny-exec"]);
        assert!(
            !o.success() && o.stderr.to_lowercase().contains("quota"),
            "the agent's EDQUOT:\n{o}"
        );
        let o = exec(&c, &[], &["sh", "-c", "ls /dev/shm; echo listed"]);
        o.ok();
        assert_eq!(o.stdout.trim(), "listed", "mkdir created nothing:\n{o}");
        assert_eq!(agent.states(4).len(), 4, "one state per exec");
        // A foreground exec stays while its process runs: the connection to
        // the agent is closed long before (the spec: once the state is sent).
        let mut bg = Background::spawn(c.cmd(&["exec", &c.id, "sleep", "30"]));
        agent.states(5);
        agent.assert_connections_closed(5);
        assert!(
            matches!(bg.child.try_wait(), Ok(None)),
            "the exec is still running"
        );
    }
}

#[test]
fn seccomp_notify_default_action_reaches_the_agent() {
    // Everything but sendmsg goes to the agent, including what rrun's own
    // code still does in the process after loading the filter (execve).
    require!(
        !is_runc(),
        "runc 1.1 refuses SCMP_ACT_NOTIFY as defaultAction"
    );
    for nnp in [true, false] {
        let agent = Agent::start();
        let b = Bundle::new()
            .with(|c| {
                c["linux"]["seccomp"] = json!({
                    "defaultAction": "SCMP_ACT_NOTIFY",
                    "listenerPath": agent.path_str(),
                    "syscalls": [ { "names": ["sendmsg"], "action": "SCMP_ACT_ALLOW" } ]
                });
                if !is_runc() {
                    c["linux"]["seccomp"]["flags"] =
                        json!(["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]);
                }
                c["process"]["noNewPrivileges"] = json!(nnp);
            })
            .sh(NOTIFY_PROBES);
        let c = Container::new(b);
        let o = c.run();
        o.ok();
        assert_notify_probes(&format!("{}{}", o.stdout, o.stderr));
        assert_mkdirs_notified(&agent, &["/dev/shm/made", "/dev/shm/deny"]);
        let seen = agent.notified();
        assert!(
            seen.iter().any(|n| n.nr == libc::SYS_execve),
            "execve went to the agent: {} notifications",
            seen.len()
        );
        assert!(
            !seen.iter().any(|n| n.nr == libc::SYS_sendmsg),
            "sendmsg is allowed"
        );
        c.assert_clean();
    }
}

/// A create that must fail with a short error naming `words`, leaving
/// nothing: no state, cgroup, mount or process.
#[track_caller]
fn assert_create_fails_cleanly(b: Bundle, words: &[&str]) {
    let cg = b.cgroups_path.clone();
    let c = Container::new(b);
    let o = c.create();
    o.failed().stderr_is_short_error().stderr_mentions(words);
    c.assert_clean();
    assert_eq!(pids_in_cgroup(&cg), Vec::<i32>::new(), "processes left");
}

#[test]
fn seccomp_notify_errors_fail_create_and_leave_nothing() {
    let mkdir_notify = json!([ { "names": ["mkdir"], "action": "SCMP_ACT_NOTIFY" } ]);
    // The spec: listenerPath MUST be set with SCMP_ACT_NOTIFY.
    assert_create_fails_cleanly(
        Bundle::new().with(|c| {
            c["linux"]["seccomp"] =
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": mkdir_notify})
        }),
        &["listenerPath"],
    );
    // Nothing listens: a path that does not exist, and a socket file whose
    // listener is gone (connection refused).
    let dir = host_dir("agent-gone");
    let missing = dir.path().join("missing.sock");
    let refused = dir.path().join("refused.sock");
    drop(std::os::unix::net::UnixListener::bind(&refused).unwrap());
    for path in [&missing, &refused] {
        let p = path.to_string_lossy().into_owned();
        assert_create_fails_cleanly(
            Bundle::new().with(|c| {
                c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                    "listenerPath": p, "syscalls": mkdir_notify})
            }),
            &[&p],
        );
    }
    // run (foreground) undoes the same way.
    let c = Container::new(Bundle::new().with(|c| {
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": refused.to_string_lossy(), "syscalls": mkdir_notify})
    }));
    c.run().failed().stderr_is_short_error();
    c.assert_clean();
    if is_runc() {
        skip("the remaining cases are rrun's own refusals");
        return;
    }
    // The spec: listenerMetadata MUST NOT be set without listenerPath.
    assert_create_fails_cleanly(
        Bundle::new().with(|c| {
            c["linux"]["seccomp"] =
                json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "m"})
        }),
        &["listenerMetadata"],
    );
    // sendmsg hands the listener over: notifying it would hang the create.
    let agent = Agent::start();
    assert_create_fails_cleanly(
        Bundle::new().with(|c| {
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": agent.path_str(),
                "syscalls": [ { "names": ["sendmsg"], "action": "SCMP_ACT_NOTIFY" } ]})
        }),
        &["sendmsg"],
    );
    // The built-in init restarts the program where no host socket is.
    assert_create_fails_cleanly(
        Bundle::new().with(|c| {
            c["linux"]["seccomp"] = notify_profile(&agent, "init");
            c["annotations"] = json!({ "rrun.init": "true" });
        }),
        &["built-in init"],
    );
    assert!(
        agent.log.lock().unwrap().states.is_empty(),
        "refused before any listener was made"
    );
}

#[test]
fn seccomp_notify_exec_fails_cleanly_when_the_listener_is_gone() {
    let mut agent = Agent::start();
    let b = Bundle::new()
        .with(|c| c["linux"]["seccomp"] = notify_profile(&agent, "gone"))
        .args(&["sleep", "60"]);
    let cg = b.cgroups_path.clone();
    let c = running(b);
    let init = c.pid();
    agent.states(1);
    agent.stop();
    let path = agent.path_str();
    for flags in [&[][..], &["--detach"][..]] {
        let o = exec(&c, flags, &["sh", "-c", "echo ran; sleep 60"]);
        o.failed().stderr_is_short_error().stderr_mentions(&[&path]);
        assert!(!o.stdout.contains("ran"), "the process ran:\n{o}");
        let left = poll(Duration::from_secs(5), || {
            (pids_in_cgroup(&cg) == [init]).then_some(())
        });
        assert!(
            left.is_some(),
            "{flags:?}: only the init stays: {:?} (init {init})",
            pids_in_cgroup(&cg)
        );
    }
    assert_eq!(c.status(), "running");
    c.delete_force().ok();
    c.assert_clean();
}

// ---------------------------------------------------------------------------
// Classes of the attack round, one module each (tests/security/*.rs)
// ---------------------------------------------------------------------------

/// Host fds, cwds and roots never reach a process the container can see
/// (cgroup dirs held by the created init or exec helpers, --preserve-fds,
/// LISTEN_FDS), and the session keyring name.
#[path = "security/fds.rs"]
mod fds;

/// The built-in init holds no more than the container's process, and what
/// host-side rrun reads from the container is treated as hostile.
#[path = "security/builtin_init.rs"]
mod builtin_init;

/// Paths inside the rootfs: device nodes, mount options (rro and the other
/// recursive attributes), rootless /sys, mount destinations through symlinks.
#[path = "security/rootfs_paths.rs"]
mod rootfs_paths;

/// rrun only signals and removes what it created (cgroups shared with
/// foreign processes), cgroupsPath and config-size validation.
#[path = "security/cgroup_ownership.rs"]
mod cgroup_ownership;

/// Seccomp architectures, x32, unknown syscalls.
#[path = "security/seccomp_arch.rs"]
mod seccomp_arch;

// ---------------------------------------------------------------------------
// Seccomp (issue 17): a notify rule on write, end to end
// ---------------------------------------------------------------------------

/// `write` is notified: every line the program prints goes through the
/// agent (which lets it continue), for run and exec, with and without
/// noNewPrivileges. rrun's own hand-off of the listener (sendmsg) and its
/// messages after the load must never wait for an agent that has not got
/// the listener yet.
#[test]
fn seccomp_notify_on_write_works_end_to_end() {
    require!(
        !is_runc(),
        "runc 1.1 refuses SCMP_ACT_NOTIFY for write (its init writes after the load)"
    );
    for nnp in [true, false] {
        let agent = Agent::start();
        let profile = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": agent.path_str(),
            "syscalls": [ { "names": ["write", "writev"], "action": "SCMP_ACT_NOTIFY" } ]
        });
        let b = Bundle::new()
            .with(|c| {
                c["linux"]["seccomp"] = profile.clone();
                c["process"]["noNewPrivileges"] = json!(nnp);
            })
            .sh("echo through-the-agent");
        let c = Container::new(b);
        let out = c.run_ok();
        assert!(out.contains("through-the-agent"), "nnp={nnp}: {out}");
        let writes = |a: &Agent| {
            a.notified()
                .iter()
                .filter(|n| n.nr == libc::SYS_write)
                .count()
        };
        assert!(
            writes(&agent) >= 1,
            "nnp={nnp}: the write went to the agent"
        );
        c.assert_clean();

        let c = running(
            Bundle::new()
                .with(|c| {
                    c["linux"]["seccomp"] = profile.clone();
                    c["process"]["noNewPrivileges"] = json!(nnp);
                })
                .args(&["sleep", "60"]),
        );
        let before = writes(&agent);
        let o = exec(&c, &[], &["sh", "-c", "echo exec-through-the-agent"]);
        o.ok();
        assert!(
            o.stdout.contains("exec-through-the-agent"),
            "nnp={nnp}: {o}"
        );
        assert!(writes(&agent) > before, "nnp={nnp}: exec's write notified");
    }
}

/// The sync channel: rrun acts only on messages the kernel says come from
/// the process it expects, so a thief of a child's end cannot make it
/// signal or adjust a host process, or keep it waiting.
#[path = "security/channel.rs"]
mod channel;

/// Mount setup raced by a second container (proc/sysfs destinations,
/// read-only binds swapped, masked paths out of /proc and /sys), shared
/// rootfs parents, `remount`, devices in an unpacked image.
#[path = "security/rootfs_races.rs"]
mod rootfs_races;
