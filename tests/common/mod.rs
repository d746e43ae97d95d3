//! Shared helpers for the rrun integration tests.
//!
//! The binary under test is `$RRUN_BIN` when set (so the very same suite can
//! be pointed at runc: `RRUN_BIN=/usr/sbin/runc cargo test`), otherwise the
//! rrun binary cargo built for this package.
//!
//! Every command is run with a timeout, every container is owned by a
//! [`Container`] guard that force-deletes it (and scrubs its state root,
//! cgroups and stray processes) when dropped, so a failing test never leaves
//! anything behind and never hangs.
#![allow(dead_code)]

pub mod app;

pub mod vm;

use serde_json::{Value, json};
use std::cell::RefCell;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Default upper bound for one runtime invocation.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Default upper bound when waiting for a container status change.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------
// The binary under test
// ---------------------------------------------------------------------------

/// Path of the runtime binary under test.
pub fn rrun_bin() -> PathBuf {
    match std::env::var_os("RRUN_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_rrun")),
    }
}

/// True when the suite runs against runc (the reference implementation).
pub fn is_runc() -> bool {
    rrun_bin()
        .file_name()
        .map(|n| n.to_string_lossy().contains("runc"))
        .unwrap_or(false)
}

/// Name of the current test (libtest names each test thread after its test).
pub fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unknown test>")
        .to_string()
}

/// Print a skip notice that is visible even when libtest captures output
/// (we write to the real stderr, not through `eprintln!`).
pub fn skip(reason: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {}: {} [runtime: {}]",
        test_name(),
        reason,
        rrun_bin().display()
    );
}

/// `require!(cond, "reason {}", x)` — if `cond` is false, print a visible
/// SKIPPED line with the reason and return from the test.
#[macro_export]
macro_rules! require {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            $crate::common::skip(&format!($($msg)+));
            return;
        }
    };
}

/// RRUN_TEST_SYSTEMD_CGROUP=1: every runtime command gets
/// `--systemd-cgroup`, and bundles a `system.slice:rrun-test:<unique>`
/// cgroupsPath (the unit `rrun-test-<unique>.scope`), so the suites run
/// with the systemd cgroup driver (on a host with systemd as PID 1).
pub fn systemd_mode() -> bool {
    std::env::var("RRUN_TEST_SYSTEMD_CGROUP").is_ok_and(|v| v == "1")
}

/// Whether systemd runs this host (sd_booted(3)'s test).
pub fn systemd_booted() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// The cgroup (relative to a hierarchy's root) of a systemd cgroupsPath
/// `slice:prefix:name`, as systemd places the unit (system manager).
pub fn systemd_cgroup(cgroups_path: &str) -> Option<String> {
    let mut it = cgroups_path.split(':');
    let (slice, prefix, name) = (it.next()?, it.next()?, it.next()?);
    let expand = |s: &str| -> String {
        let base = s.trim_end_matches(".slice");
        if base == "-" {
            return String::new();
        }
        let mut path = String::new();
        let mut pre = String::new();
        for part in base.split('-') {
            path.push_str(&format!("/{pre}{part}.slice"));
            pre.push_str(part);
            pre.push('-');
        }
        path
    };
    if name.ends_with(".slice") {
        return Some(expand(name));
    }
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    Some(format!("{}/{prefix}-{name}.scope", expand(slice)))
}

/// The unit a systemd cgroupsPath names (only a test's own: `rrun-test`
/// in its name), for cleanup.
pub fn systemd_unit_of(cgroups_path: &str) -> Option<String> {
    let mut it = cgroups_path.split(':');
    let (_, prefix, name) = (it.next()?, it.next()?, it.next()?);
    let unit = if name.ends_with(".slice") {
        name.to_string()
    } else {
        format!("{prefix}-{name}.scope")
    };
    unit.contains("rrun-test").then_some(unit)
}

pub fn is_root() -> bool {
    // SAFETY-free way to read our euid: /proc/self/status "Uid:" line.
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Whether a host command is available on PATH.
pub fn have_cmd(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------
// Running commands with a timeout
// ---------------------------------------------------------------------------

/// Result of one command.
#[derive(Debug, Clone)]
pub struct Output {
    pub cmdline: String,
    /// Exit code, None when killed by a signal.
    pub code: Option<i32>,
    /// Terminating signal, if any.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Panic with the full output unless the command exited 0.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert!(self.success(), "command failed unexpectedly:\n{self}");
        self
    }

    /// Panic unless the command failed with a non-zero exit code (not a crash).
    #[track_caller]
    pub fn failed(&self) -> &Self {
        assert!(
            matches!(self.code, Some(c) if c != 0),
            "command should have failed with a non-zero exit code:\n{self}"
        );
        self
    }

    /// Panic unless stderr mentions at least one of `words` (case-insensitive).
    #[track_caller]
    pub fn stderr_mentions(&self, words: &[&str]) -> &Self {
        let err = self.stderr.to_lowercase();
        assert!(
            words.iter().any(|w| err.contains(&w.to_lowercase())),
            "stderr should mention one of {words:?}:\n{self}"
        );
        self
    }

    /// Panic unless stderr has at least one non-empty line and no more than a
    /// handful: errors are meant to be short.
    #[track_caller]
    pub fn stderr_is_short_error(&self) -> &Self {
        let lines: Vec<_> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert!(
            !lines.is_empty(),
            "expected an error line on stderr:\n{self}"
        );
        assert!(
            lines.len() <= 5,
            "error output should be a short message, got {} lines:\n{self}",
            lines.len()
        );
        self
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "  command: {}", self.cmdline)?;
        writeln!(f, "  exit code: {:?}  signal: {:?}", self.code, self.signal)?;
        writeln!(f, "  stdout: {:?}", self.stdout)?;
        write!(f, "  stderr: {:?}", self.stderr)
    }
}

fn cmdline(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// The whole file, read with pread: a running container may share this
/// file's offset (it was handed the same open file), and moving the offset
/// under it (seek to 0, read to the end) would let its next write land
/// over what is already there.
fn read_all(f: &mut File) -> String {
    use std::os::unix::fs::FileExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match f.read_at(&mut chunk, buf.len() as u64) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Wait for `child` at most `timeout`; on timeout kill it and panic.
#[track_caller]
pub fn wait_child(child: &mut Child, timeout: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    let mut nap = Duration::from_millis(2);
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return st,
            Ok(None) => {}
            Err(e) => panic!("waiting for {what}: {e}"),
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("timed out after {timeout:?}: {what}");
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(50));
    }
}

fn status_output(
    cmdline: String,
    st: std::process::ExitStatus,
    out: &mut File,
    err: &mut File,
) -> Output {
    use std::os::unix::process::ExitStatusExt;
    Output {
        cmdline,
        code: st.code(),
        signal: st.signal(),
        stdout: read_all(out),
        stderr: read_all(err),
    }
}

/// Run `cmd` to completion with a timeout, capturing stdout/stderr.
///
/// Output goes to anonymous files rather than pipes: a container started by
/// the command inherits them, and we must not wait for *its* end of a pipe.
#[track_caller]
pub fn run_timeout(mut cmd: Command, timeout: Duration) -> Output {
    let mut out = tempfile::tempfile().expect("tempfile");
    let mut err = tempfile::tempfile().expect("tempfile");
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap());
    let line = cmdline(&cmd);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {line}: {e}"));
    let st = wait_child(&mut child, timeout, &line);
    status_output(line, st, &mut out, &mut err)
}

/// Run a host shell snippet (with timeout); returns its output.
#[track_caller]
pub fn sh(script: &str) -> Output {
    let mut c = Command::new("sh");
    c.arg("-c").arg(script);
    run_timeout(c, TIMEOUT)
}

/// A command started in the background whose output is captured to files.
pub struct Background {
    pub child: Child,
    line: String,
    out: File,
    err: File,
}

impl Background {
    pub fn spawn(mut cmd: Command) -> Background {
        let out = tempfile::tempfile().expect("tempfile");
        let err = tempfile::tempfile().expect("tempfile");
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(err.try_clone().unwrap());
        let line = cmdline(&cmd);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {line}: {e}"));
        Background {
            child,
            line,
            out,
            err,
        }
    }

    #[track_caller]
    pub fn wait(mut self, timeout: Duration) -> Output {
        let st = wait_child(&mut self.child, timeout, &self.line);
        status_output(self.line.clone(), st, &mut self.out, &mut self.err)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Poll `f` until it returns Some or `timeout` passes.
pub fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// The shared rootfs
// ---------------------------------------------------------------------------

pub fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .to_path_buf()
}

/// The shared read-only busybox rootfs, built once into target/test-rootfs.
///
/// Parallel test binaries serialise on a lock file; a `.done` marker holding
/// the script's content makes a changed script rebuild the rootfs.
pub fn rootfs() -> PathBuf {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS
        .get_or_init(|| {
            let script = repo_dir().join("scripts/mkrootfs.sh");
            let script_text = fs::read_to_string(&script).expect("read scripts/mkrootfs.sh");
            let target = target_dir();
            fs::create_dir_all(&target).unwrap();
            let dest = target.join("test-rootfs");
            let done = dest.join(".done");
            let is_done = || fs::read_to_string(&done).ok().as_deref() == Some(&script_text);
            if !is_done() {
                let lock = File::create(target.join("test-rootfs.lock")).unwrap();
                lock.lock().expect("lock test-rootfs.lock");
                if !is_done() {
                    let mut c = Command::new("bash");
                    c.arg(&script).arg(&dest);
                    run_timeout(c, Duration::from_secs(120)).ok();
                    fs::write(&done, &script_text).unwrap();
                }
                lock.unlock().ok();
            }
            dest
        })
        .clone()
}

/// Copy the shared rootfs to `dest` (a private, writable rootfs).
pub fn copy_rootfs(dest: &Path) {
    let src = rootfs();
    let mut c = Command::new("cp");
    c.arg("-a").arg(format!("{}/.", src.display())).arg(dest);
    fs::create_dir_all(dest).unwrap();
    run_timeout(c, Duration::from_secs(60)).ok();
}

// ---------------------------------------------------------------------------
// Unique names
// ---------------------------------------------------------------------------

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name unique to this process and call: `rrun-test-<pid>-<n>`.
pub fn unique_name() -> String {
    format!(
        "rrun-test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

// ---------------------------------------------------------------------------
// Bundles
// ---------------------------------------------------------------------------

/// Capability set of `runc spec` (and of Docker's old default minus a few).
pub const DEFAULT_CAPS: &[&str] = &["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/// The capability number of a `CAP_*` name (linux/capability.h).
pub fn cap_number(name: &str) -> u32 {
    const CAPS: &[&str] = &[
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_MKNOD",
        "CAP_LEASE",
        "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ",
        "CAP_PERFMON",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ];
    CAPS.iter()
        .position(|c| *c == name)
        .unwrap_or_else(|| panic!("unknown capability {name}")) as u32
}

/// The /proc/<pid>/status mask for a list of capability names.
pub fn cap_mask(names: &[&str]) -> u64 {
    names.iter().fold(0u64, |m, n| m | (1u64 << cap_number(n)))
}

/// The default config, modelled on `runc spec` (with terminal off, an
/// absolute read-only root and a relative per-test cgroupsPath).
pub fn base_config(rootfs: &Path, hostname: &str, cgroups_path: &str) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh", "-c", "true"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": DEFAULT_CAPS,
                "effective": DEFAULT_CAPS,
                "permitted": DEFAULT_CAPS,
                "ambient": DEFAULT_CAPS
            },
            "rlimits": [
                { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }
            ],
            "noNewPrivileges": true
        },
        "root": { "path": rootfs.to_string_lossy(), "readonly": true },
        "hostname": hostname,
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] }
        ],
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": { "devices": [ { "allow": false, "access": "rwm" } ] },
            "namespaces": [
                { "type": "pid" },
                { "type": "network" },
                { "type": "ipc" },
                { "type": "uts" },
                { "type": "mount" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// A bundle directory (temp dir, removed on drop) with a generated config.
pub struct Bundle {
    dir: tempfile::TempDir,
    pub config: Value,
    pub cgroups_path: String,
    /// The rootfs directory the config points at.
    pub rootfs: PathBuf,
    /// True when `rootfs` is a private copy inside the bundle.
    pub private_rootfs: bool,
}

impl Default for Bundle {
    fn default() -> Self {
        Self::new()
    }
}

impl Bundle {
    pub fn new() -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("rrun-test-bundle-")
            .tempdir()
            .expect("bundle tempdir");
        // Readable by uids mapped in user-namespace tests.
        set_mode(dir.path(), 0o755);
        let rootfs = rootfs();
        let cg = if systemd_mode() {
            format!(
                "system.slice:rrun-test:{}",
                unique_name().trim_start_matches("rrun-test-")
            )
        } else {
            unique_name()
        };
        let config = base_config(&rootfs, "rrun-test", &cg);
        Bundle {
            dir,
            config,
            cgroups_path: cg,
            rootfs,
            private_rootfs: false,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A file path inside the bundle directory (not created).
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Write config.json (the Container does this before create/run).
    pub fn write(&self) {
        let text = serde_json::to_string_pretty(&self.config).unwrap();
        fs::write(self.file("config.json"), text).expect("write config.json");
        // Readable by a rootless runtime whatever the test's umask.
        set_mode(&self.file("config.json"), 0o644);
    }

    /// Arbitrary edit of the config.
    pub fn with(mut self, f: impl FnOnce(&mut Value)) -> Self {
        f(&mut self.config);
        self
    }

    pub fn args(self, args: &[&str]) -> Self {
        self.with(|c| c["process"]["args"] = json!(args))
    }

    /// `sh -c SCRIPT` as the container process.
    pub fn sh(self, script: &str) -> Self {
        self.args(&["sh", "-c", script])
    }

    pub fn env(self, kv: &str) -> Self {
        self.with(|c| c["process"]["env"].as_array_mut().unwrap().push(json!(kv)))
    }

    pub fn cwd(self, cwd: &str) -> Self {
        self.with(|c| c["process"]["cwd"] = json!(cwd))
    }

    pub fn user(self, uid: u32, gid: u32, additional: &[u32]) -> Self {
        self.with(|c| {
            c["process"]["user"] = json!({ "uid": uid, "gid": gid, "additionalGids": additional })
        })
    }

    pub fn hostname(self, h: &str) -> Self {
        self.with(|c| c["hostname"] = json!(h))
    }

    pub fn mount(self, m: Value) -> Self {
        self.with(|c| c["mounts"].as_array_mut().unwrap().push(m))
    }

    pub fn bind_mount(self, src: &Path, dest: &str, options: &[&str]) -> Self {
        self.mount(json!({
            "destination": dest, "type": "bind", "source": src.to_string_lossy(),
            "options": options
        }))
    }

    /// Add a hook of `kind` (prestart, createRuntime, ...).
    pub fn hook(self, kind: &str, hook: Value) -> Self {
        self.with(|c| {
            if c.get("hooks").is_none() {
                c["hooks"] = json!({});
            }
            if c["hooks"].get(kind).is_none() {
                c["hooks"][kind] = json!([]);
            }
            c["hooks"][kind].as_array_mut().unwrap().push(hook)
        })
    }

    pub fn has_namespace(&self, ty: &str) -> bool {
        self.config["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == ty)
    }

    /// Add (or replace) a namespace entry; `path` joins an existing one.
    pub fn namespace(self, ty: &str, path: Option<&str>) -> Self {
        self.without_namespace(ty).with(|c| {
            let mut ns = json!({ "type": ty });
            if let Some(p) = path {
                ns["path"] = json!(p);
            }
            c["linux"]["namespaces"].as_array_mut().unwrap().push(ns)
        })
    }

    pub fn without_namespace(self, ty: &str) -> Self {
        self.with(|c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .retain(|n| n["type"] != ty)
        })
    }

    /// A new user namespace whose root is host uid/gid 100000.
    pub fn in_userns(self) -> Self {
        self.with(|c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            c["linux"]["uidMappings"] = map.clone();
            c["linux"]["gidMappings"] = map;
        })
    }

    /// Switch to a private writable copy of the rootfs inside the bundle.
    pub fn private_rootfs(mut self) -> Self {
        let dest = self.file("rootfs");
        copy_rootfs(&dest);
        self.rootfs = dest.clone();
        self.private_rootfs = true;
        self.with(|c| c["root"] = json!({ "path": dest.to_string_lossy(), "readonly": false }))
    }
}

pub fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

// ---------------------------------------------------------------------------
// Host inspection
// ---------------------------------------------------------------------------

/// (starttime) of a live, non-zombie process, from /proc/<pid>/stat.
pub fn proc_starttime(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is state (field 3), starttime is field 22 -> index 19.
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

pub fn pid_alive(pid: i32) -> bool {
    pid > 0 && proc_starttime(pid).is_some()
}

/// readlink /proc/<pid>/ns/<ns>, e.g. "net:[4026531840]".
pub fn ns_of(pid: &str, ns: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/ns/{ns}: {e}"))
        .to_string_lossy()
        .into_owned()
}

/// One cgroup hierarchy of this process: where it is mounted and where we are
/// in it.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    pub mountpoint: PathBuf,
    /// Our own cgroup path in it (relative to the mount's root).
    pub own: String,
}

/// All cgroup hierarchies (v1 and v2) of this process that are mounted.
pub fn cgroup_hierarchies() -> Vec<Hierarchy> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let selfcg = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split_whitespace().collect();
        let post: Vec<&str> = post.split_whitespace().collect();
        if pre.len() < 5 || post.len() < 3 {
            continue;
        }
        let (root, mnt, fstype, superopts) = (pre[3], pre[4], post[0], post[2]);
        let own_in_tree = match fstype {
            "cgroup2" => selfcg
                .lines()
                .find(|l| l.starts_with("0::"))
                .map(|l| l[3..].to_string()),
            "cgroup" => {
                let mut want: Vec<&str> = superopts
                    .split(',')
                    .filter(|o| {
                        !matches!(
                            *o,
                            "rw" | "ro"
                                | "relatime"
                                | "noatime"
                                | "nosuid"
                                | "nodev"
                                | "noexec"
                                | "xattr"
                                | "clone_children"
                                | "nsdelegate"
                        ) && !o.starts_with("release_agent")
                            && !o.starts_with("cpuset_v2_mode")
                    })
                    .collect();
                want.sort();
                selfcg.lines().find_map(|l| {
                    let mut parts = l.splitn(3, ':');
                    let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
                    let mut have: Vec<&str> = ctrls.split(',').collect();
                    have.sort();
                    (have == want && !ctrls.is_empty()).then(|| path.to_string())
                })
            }
            _ => None,
        };
        if let Some(own) = own_in_tree {
            // Express our path relative to what is visible at the mount point.
            let own = if root == "/" {
                own
            } else {
                own.strip_prefix(root).unwrap_or(&own).to_string()
            };
            out.push(Hierarchy {
                mountpoint: PathBuf::from(mnt),
                own,
            });
        }
    }
    out
}

/// Every place where a relative cgroupsPath could show up on the host:
/// nested under our own cgroup (what runc does on v1), beside it (runc on
/// v2) and at each hierarchy root.
pub fn cgroup_dirs(cgroups_path: &str) -> Vec<PathBuf> {
    // A systemd unit's cgroup is where systemd puts it, in every hierarchy.
    if cgroups_path.contains(':')
        && let Some(cg) = systemd_cgroup(cgroups_path)
    {
        let mut v: Vec<PathBuf> = cgroup_hierarchies()
            .iter()
            .map(|h| h.mountpoint.join(cg.trim_start_matches('/')))
            .collect();
        v.sort();
        v.dedup();
        return v;
    }
    let rel = cgroups_path.trim_start_matches('/');
    let mut v = Vec::new();
    for h in cgroup_hierarchies() {
        let own = h.own.trim_start_matches('/');
        v.push(h.mountpoint.join(own).join(rel));
        v.push(h.mountpoint.join(rel));
        // On cgroup v2 runc resolves it against the parent of its own
        // cgroup (a process-holding cgroup cannot give children domain
        // controllers), e.g. beside the test's leaf in a delegated unit.
        if let Some(parent) = Path::new(own).parent() {
            v.push(h.mountpoint.join(parent).join(rel));
        }
    }
    v.sort();
    v.dedup();
    v
}

/// Remove a cgroup directory tree (rmdir only; cgroupfs has no real files).
pub fn rmdir_cgroup_tree(p: &Path) {
    if let Ok(rd) = fs::read_dir(p) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                rmdir_cgroup_tree(&e.path());
            }
        }
    }
    let _ = fs::remove_dir(p);
}

/// Mount points (field 5 of mountinfo) containing `needle`.
pub fn mounts_mentioning(needle: &str) -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .map(|l| l.to_string())
        .collect()
}

// ---------------------------------------------------------------------------
// Containers
// ---------------------------------------------------------------------------

/// One container: a unique id, its own state root and bundle. Dropping it
/// force-deletes the container and scrubs whatever is left.
pub struct Container {
    pub id: String,
    pub root: PathBuf,
    pub bundle: Bundle,
    /// Set for a rootless container: every runtime command runs as this
    /// unprivileged user (see [`RunAs`]).
    pub run_as: Option<RunAs>,
    /// stdout/stderr handed to create/run: the container inherits them.
    io: RefCell<Option<(File, File)>>,
    /// Host pids (with start time) seen for this container.
    pids: RefCell<Vec<(i32, u64)>>,
}

impl Container {
    pub fn new(bundle: Bundle) -> Container {
        let name = unique_name();
        Self::with_id(bundle, &name)
    }

    /// A container with a chosen id (still with a unique state root).
    pub fn with_id(bundle: Bundle, id: &str) -> Container {
        let root = PathBuf::from(format!("/run/{}", unique_name()));
        Container {
            id: id.to_string(),
            root,
            bundle,
            run_as: None,
            io: RefCell::new(None),
            pids: RefCell::new(Vec::new()),
        }
    }

    pub fn root_arg(&self) -> String {
        self.root.to_string_lossy().into_owned()
    }

    /// A rootless container: the runtime runs as `user` with a private
    /// directory (under /run, owned by the user) as its HOME and
    /// XDG_RUNTIME_DIR, and `--root DIR/state`. With `default_root` no
    /// `--root` is passed and the state lands in the runtime's default for
    /// an unprivileged user, `$XDG_RUNTIME_DIR/<runtime name>`.
    pub fn rootless(bundle: Bundle, user: &User, default_root: bool) -> Container {
        let id = unique_name();
        Self::rootless_with_id(bundle, user, default_root, &id)
    }

    pub fn rootless_with_id(
        bundle: Bundle,
        user: &User,
        default_root: bool,
        id: &str,
    ) -> Container {
        let dir = PathBuf::from(format!("/run/{}", unique_name()));
        fs::create_dir(&dir).expect("create the rootless test dir");
        set_mode(&dir, 0o700);
        user.chown(&dir);
        let root = if default_root {
            let runtime = if is_runc() { "runc" } else { "rrun" };
            dir.join(runtime)
        } else {
            dir.join("state")
        };
        let mut c = Self::with_id(bundle, id);
        c.root = root;
        c.run_as = Some(RunAs {
            user: user.clone(),
            dir,
            pass_root: !default_root,
            marker: format!("RRUN_TEST_MARKER={}", unique_name()),
            enter_cgroups: Vec::new(),
        });
        c
    }

    /// `rrun --root ROOT ARGS...` (not run yet); for a rootless container
    /// run as its user.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = match &self.run_as {
            None => Command::new(rrun_bin()),
            Some(r) => r.command(&rrun_bin()),
        };
        if systemd_mode() {
            c.arg("--systemd-cgroup");
        }
        if self.run_as.as_ref().is_none_or(|r| r.pass_root) {
            c.arg("--root").arg(&self.root);
        }
        c.args(args);
        c
    }

    /// Run `rrun --root ROOT ARGS...` with the default timeout.
    #[track_caller]
    pub fn rrun(&self, args: &[&str]) -> Output {
        run_timeout(self.cmd(args), TIMEOUT)
    }

    fn new_io(&self) -> (File, File) {
        let out = tempfile::tempfile().unwrap();
        let err = tempfile::tempfile().unwrap();
        *self.io.borrow_mut() = Some((out.try_clone().unwrap(), err.try_clone().unwrap()));
        (out, err)
    }

    /// Run a command whose stdio the container inherits (create, run).
    #[track_caller]
    fn rrun_keep_io(&self, args: &[&str], timeout: Duration) -> Output {
        self.bundle.write();
        let (out, err) = self.new_io();
        let mut c = self.cmd(args);
        c.stdin(Stdio::null()).stdout(out).stderr(err);
        let line = cmdline(&c);
        let mut child = c
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {line}: {e}"));
        let st = wait_child(&mut child, timeout, &line);
        let mut io = self.io.borrow_mut();
        let (o, e) = io.as_mut().unwrap();
        status_output(line, st, o, e)
    }

    /// What the container (and the runtime invocation that created it)
    /// wrote to stdout and stderr so far.
    pub fn output(&self) -> (String, String) {
        let mut io = self.io.borrow_mut();
        match io.as_mut() {
            Some((o, e)) => (read_all(o), read_all(e)),
            None => (String::new(), String::new()),
        }
    }

    pub fn bundle_arg(&self) -> String {
        self.bundle.path().to_string_lossy().into_owned()
    }

    /// `create --bundle B ID` plus `extra` flags (before the id).
    #[track_caller]
    pub fn create_with(&self, extra: &[&str]) -> Output {
        let b = self.bundle_arg();
        let mut args = vec!["create", "--bundle", &b];
        args.extend_from_slice(extra);
        args.push(&self.id);
        let o = self.rrun_keep_io(&args, TIMEOUT);
        if o.success() {
            self.remember_pid();
        }
        o
    }

    #[track_caller]
    pub fn create(&self) -> Output {
        self.create_with(&[])
    }

    /// Create and assert success.
    #[track_caller]
    pub fn created(self) -> Self {
        self.create().ok();
        self
    }

    #[track_caller]
    pub fn start(&self) -> Output {
        let o = self.rrun(&["start", &self.id]);
        if o.success() {
            self.remember_pid();
        }
        o
    }

    /// Foreground `run` (waits for the container); stdout/stderr of the
    /// result include the container's output.
    #[track_caller]
    pub fn run(&self) -> Output {
        self.run_with(&[])
    }

    #[track_caller]
    pub fn run_with(&self, extra: &[&str]) -> Output {
        let b = self.bundle_arg();
        let mut args = vec!["run", "--bundle", &b];
        args.extend_from_slice(extra);
        args.push(&self.id);
        self.rrun_keep_io(&args, TIMEOUT)
    }

    /// Foreground `run` started in the background (for signal tests).
    pub fn run_background(&self) -> Background {
        self.bundle.write();
        let b = self.bundle_arg();
        Background::spawn(self.cmd(&["run", "--bundle", &b, &self.id]))
    }

    /// Run and assert exit 0; returns the container's stdout.
    #[track_caller]
    pub fn run_ok(&self) -> String {
        let o = self.run();
        o.ok();
        o.stdout
    }

    #[track_caller]
    pub fn run_detached(&self) -> Output {
        let o = self.run_with(&["--detach"]);
        if o.success() {
            self.remember_pid();
        }
        o
    }

    #[track_caller]
    pub fn kill(&self, sig: &str) -> Output {
        self.rrun(&["kill", &self.id, sig])
    }

    #[track_caller]
    pub fn delete(&self) -> Output {
        self.rrun(&["delete", &self.id])
    }

    #[track_caller]
    pub fn delete_force(&self) -> Output {
        self.rrun(&["delete", "--force", &self.id])
    }

    #[track_caller]
    pub fn state_output(&self) -> Output {
        self.rrun(&["state", &self.id])
    }

    /// Parsed `state ID` (asserts success and valid JSON).
    #[track_caller]
    pub fn state(&self) -> Value {
        let o = self.state_output();
        o.ok();
        let v: Value = serde_json::from_str(&o.stdout)
            .unwrap_or_else(|e| panic!("state is not JSON ({e}):\n{o}"));
        if let Some(pid) = v["pid"].as_i64().filter(|p| *p > 0) {
            self.remember(pid as i32);
        }
        v
    }

    #[track_caller]
    pub fn status(&self) -> String {
        self.state()["status"]
            .as_str()
            .expect("state has a status string")
            .to_string()
    }

    #[track_caller]
    pub fn pid(&self) -> i32 {
        self.state()["pid"].as_i64().expect("state has a pid") as i32
    }

    /// Wait until `state` reports `want`.
    #[track_caller]
    pub fn wait_status(&self, want: &str) {
        let mut last = String::new();
        let got = poll(STATUS_TIMEOUT, || {
            // The container may not exist yet (run in the background).
            let o = self.state_output();
            last = match serde_json::from_str::<Value>(&o.stdout) {
                Ok(v) => {
                    if let Some(pid) = v["pid"].as_i64().filter(|p| *p > 0) {
                        self.remember(pid as i32);
                    }
                    v["status"].as_str().unwrap_or("").to_string()
                }
                Err(_) => format!("<state failed: {}>", o.stderr.trim()),
            };
            (last == want).then_some(())
        });
        assert!(
            got.is_some(),
            "container {} did not reach status {want:?} within {STATUS_TIMEOUT:?} (last {last:?})",
            self.id
        );
    }

    fn remember_pid(&self) {
        let o = self.state_output();
        if let Ok(v) = serde_json::from_str::<Value>(&o.stdout)
            && let Some(pid) = v["pid"].as_i64().filter(|p| *p > 0)
        {
            self.remember(pid as i32);
        }
    }

    /// `exec --detach --pid-file F ID COMMAND...`: the exec'd process's
    /// host pid, remembered for the leak check.
    #[track_caller]
    pub fn exec_detached(&self, command: &[&str]) -> i32 {
        let pid_file = self.bundle.file(&format!("exec-{}.pid", unique_name()));
        let pf = pid_file.to_string_lossy().into_owned();
        let mut v = vec!["exec", "--detach", "--pid-file", &pf, self.id.as_str()];
        v.extend_from_slice(command);
        self.rrun(&v).ok();
        let s = poll(STATUS_TIMEOUT, || {
            fs::read_to_string(&pid_file)
                .ok()
                .filter(|s| !s.trim().is_empty())
        })
        .unwrap_or_else(|| panic!("pid file {} not written", pid_file.display()));
        let pid: i32 = s
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("pid file {}: {s:?}: {e}", pid_file.display()));
        self.remember(pid);
        pid
    }

    /// Record a host pid belonging to the container (for leak checks).
    pub fn remember(&self, pid: i32) {
        if let Some(st) = proc_starttime(pid) {
            let mut pids = self.pids.borrow_mut();
            if !pids.iter().any(|(p, _)| *p == pid) {
                pids.push((pid, st));
            }
        }
    }

    fn live_pids(&self) -> Vec<i32> {
        self.pids
            .borrow()
            .iter()
            .filter(|(p, st)| proc_starttime(*p) == Some(*st))
            .map(|(p, _)| *p)
            .collect()
    }

    /// Assert the container left nothing behind: no state dir, no cgroup,
    /// no mount mentioning the bundle, no live process, unknown to `state`.
    #[track_caller]
    pub fn assert_clean(&self) {
        let state_dir = self.root.join(&self.id);
        assert!(
            !state_dir.exists(),
            "state dir {} still exists",
            state_dir.display()
        );
        let left = poll(Duration::from_secs(5), || {
            let live = self.live_pids();
            live.is_empty().then_some(())
        });
        assert!(
            left.is_some(),
            "container processes still alive: {:?}",
            self.live_pids()
        );
        if let Some(r) = &self.run_as {
            let left = poll(Duration::from_secs(5), || {
                r.marked_pids().is_empty().then_some(())
            });
            assert!(
                left.is_some(),
                "processes started by the rootless runtime still alive: {:?}",
                r.marked_pids()
            );
        }
        for d in cgroup_dirs(&self.bundle.cgroups_path) {
            assert!(!d.exists(), "cgroup {} still exists", d.display());
        }
        let bundle = self.bundle.path().to_string_lossy().into_owned();
        let m = mounts_mentioning(&bundle);
        assert!(m.is_empty(), "mounts left mentioning the bundle: {m:#?}");
        if !self.id.is_empty() && !self.id.contains('/') {
            let o = self.state_output();
            assert!(
                !o.success(),
                "state still knows container {}:\n{o}",
                self.id
            );
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // Best effort, never panic in drop.
        if !self.id.is_empty() && !self.id.contains("..") {
            let mut c = self.cmd(&["delete", "--force", &self.id]);
            c.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Ok(mut child) = c.spawn() {
                let deadline = Instant::now() + TIMEOUT;
                while let Ok(None) = child.try_wait() {
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
        // Kill anything of ours still running (a buggy runtime).
        let mut ours = self.live_pids();
        if let Some(r) = &self.run_as {
            ours.extend(r.marked_pids());
        }
        for pid in ours {
            let _ = Command::new("kill")
                .arg("-9")
                .arg(pid.to_string())
                .stderr(Stdio::null())
                .status();
        }
        if !self.live_pids().is_empty() {
            std::thread::sleep(Duration::from_millis(200));
        }
        // Leftover mounts under the bundle (deepest first).
        let bundle = self.bundle.path().to_string_lossy().into_owned();
        let mut mps: Vec<String> = mounts_mentioning(&bundle)
            .iter()
            .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
            .filter(|mp| mp.starts_with(&bundle))
            .collect();
        mps.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for mp in mps {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&mp)
                .stderr(Stdio::null())
                .status();
        }
        // A systemd unit of the test's that the runtime left running.
        if let Some(unit) = systemd_unit_of(&self.bundle.cgroups_path)
            && systemd_booted()
            && have_cmd("systemctl")
        {
            // SIGKILL first: a container's PID 1 ignores the SIGTERM of
            // a stop. `timeout`: a drop must neither hang nor panic.
            for args in [
                &["kill", "--signal=KILL", unit.as_str()][..],
                &["stop", unit.as_str()],
                &["reset-failed", unit.as_str()],
            ] {
                let _ = Command::new("timeout")
                    .arg("30")
                    .arg("systemctl")
                    .args(args)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        // Only a cgroupsPath naming one cgroup of its own: "." or "/"
        // would sweep every empty cgroup on the host.
        let rel = self.bundle.cgroups_path.trim_start_matches('/');
        if !rel.is_empty() && rel.split('/').all(|p| !matches!(p, "" | "." | "..")) {
            for d in cgroup_dirs(&self.bundle.cgroups_path) {
                if d.exists() {
                    rmdir_cgroup_tree(&d);
                }
            }
        }
        let _ = fs::remove_dir_all(&self.root);
        if let Some(r) = &self.run_as {
            let _ = fs::remove_dir_all(&r.dir);
        }
    }
}

/// A console socket the runtime connects to (`--console-socket`): one
/// message whose SCM_RIGHTS carry the pty master, accepted in a thread that
/// gives up after `STATUS_TIMEOUT`.
pub struct ConsoleSocket {
    _dir: tempfile::TempDir,
    path: PathBuf,
    thread: Option<std::thread::JoinHandle<Result<(std::os::fd::OwnedFd, String), String>>>,
}

impl ConsoleSocket {
    pub fn new() -> ConsoleSocket {
        let dir = tempfile::Builder::new()
            .prefix("rrun-test-console-")
            .tempdir()
            .unwrap();
        let path = dir.path().join("console.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind console socket");
        listener.set_nonblocking(true).unwrap();
        let thread = std::thread::spawn(move || receive_console_master(listener));
        ConsoleSocket {
            _dir: dir,
            path,
            thread: Some(thread),
        }
    }

    /// The socket's path, for `--console-socket`.
    pub fn arg(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    /// The pty master and the message's name string (once).
    #[track_caller]
    pub fn receive(&mut self) -> (std::os::fd::OwnedFd, String) {
        let r = self
            .thread
            .take()
            .expect("receive called once")
            .join()
            .expect("console socket thread panicked");
        r.unwrap_or_else(|e| panic!("console socket: {e}"))
    }
}

/// Accepts one connection on a console socket and receives the pty master
/// sent with SCM_RIGHTS (runc's console-socket protocol), with its payload.
pub fn receive_console_master(
    listener: std::os::unix::net::UnixListener,
) -> Result<(std::os::fd::OwnedFd, String), String> {
    use std::time::Instant;
    let deadline = Instant::now() + STATUS_TIMEOUT;
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    return Err("nobody connected".into());
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(format!("accept: {e}")),
        }
    };
    stream.set_nonblocking(false).unwrap();
    let (data, mut owned) = recv_with_fds(&stream, 4096, STATUS_TIMEOUT)?;
    let name = String::from_utf8_lossy(&data).into_owned();
    if owned.len() != 1 {
        return Err(format!(
            "expected exactly one fd in SCM_RIGHTS, got {} (payload {name:?})",
            owned.len()
        ));
    }
    Ok((owned.pop().unwrap(), name))
}

/// Run `cmd` with `input` written to its stdin (from a thread), stdout and
/// stderr captured to files, with a timeout.
#[track_caller]
pub fn run_with_stdin(mut cmd: Command, input: impl Into<Vec<u8>>) -> Output {
    use std::io::{Read, Seek, SeekFrom};
    use std::os::unix::process::ExitStatusExt;
    let input: Vec<u8> = input.into();
    let mut out = tempfile::tempfile().unwrap();
    let mut err = tempfile::tempfile().unwrap();
    cmd.stdin(Stdio::piped())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap());
    let line = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {line}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    // The writer ends (EPIPE) at the latest when the child is gone.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let st = wait_child(&mut child, TIMEOUT, &line);
    let _ = writer.join();
    let read = |f: &mut fs::File| {
        let mut b = Vec::new();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.read_to_end(&mut b).unwrap();
        String::from_utf8_lossy(&b).into_owned()
    };
    Output {
        cmdline: line,
        code: st.code(),
        signal: st.signal(),
        stdout: read(&mut out),
        stderr: read(&mut err),
    }
}

/// One recvmsg(2) on `stream` (up to `max` bytes, `timeout` to wait): the
/// bytes and the fds that came with them in SCM_RIGHTS, close-on-exec.
pub fn recv_with_fds(
    stream: &std::os::unix::net::UnixStream,
    max: usize,
    timeout: Duration,
) -> Result<(Vec<u8>, Vec<std::os::fd::OwnedFd>), String> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    use std::io::IoSliceMut;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; max];
    let mut cmsg = nix::cmsg_space!([RawFd; 4]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| format!("recvmsg: {e}"))?;
    let mut fds = Vec::new();
    for c in msg.cmsgs().map_err(|e| format!("cmsgs: {e}"))? {
        if let ControlMessageOwned::ScmRights(v) = c {
            // SAFETY: just received, owned by nobody else.
            fds.extend(v.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
        }
    }
    let n = msg.bytes;
    buf.truncate(n);
    Ok((buf, fds))
}

// ---------------------------------------------------------------------------
// Rootless: an unprivileged user running the runtime
// ---------------------------------------------------------------------------

/// The unprivileged user the rootless tests run the runtime as; created by
/// [`rootless_user`] when missing (a system user: no home, no login, no
/// subordinate ids).
pub const ROOTLESS_USER: &str = "rrun-rootless";

/// A host user account.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl User {
    /// Looks a user up with getent (so NSS users count too).
    pub fn lookup(name: &str) -> Option<User> {
        let mut c = Command::new("getent");
        c.arg("passwd").arg(name);
        let o = run_timeout(c, TIMEOUT);
        let line = o.stdout.lines().next()?.to_string();
        let f: Vec<&str> = line.split(':').collect();
        Some(User {
            name: f.first()?.to_string(),
            uid: f.get(2)?.parse().ok()?,
            gid: f.get(3)?.parse().ok()?,
        })
    }

    pub fn chown(&self, p: &Path) {
        std::os::unix::fs::chown(p, Some(self.uid), Some(self.gid))
            .unwrap_or_else(|e| panic!("chown {} to {}: {e}", p.display(), self.name));
    }

    /// chown -R (a private rootfs copy handed to the user).
    pub fn chown_tree(&self, p: &Path) {
        let mut c = Command::new("chown");
        c.arg("-R")
            .arg("--no-dereference")
            .arg(format!("{}:{}", self.uid, self.gid))
            .arg(p);
        run_timeout(c, Duration::from_secs(60)).ok();
    }

    /// `program` run as this user: real and effective ids switched by
    /// setpriv (which leaves no capability behind: a uid change from 0
    /// clears them), its own supplementary groups, a clean environment.
    pub fn command(&self, program: &Path, home: &Path) -> Command {
        let mut c = Command::new("setpriv");
        c.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .arg("--init-groups")
            .arg("--")
            .arg(program);
        c.env_clear()
            .env(
                "PATH",
                "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
            )
            .env("HOME", home)
            .env("XDG_RUNTIME_DIR", home)
            .env("USER", &self.name)
            .env("LOGNAME", &self.name);
        c
    }
}

/// The rootless test user, created if missing. Test binaries running at the
/// same time serialise on a lock file; a concurrent `useradd` from outside
/// (or a user created meanwhile) is tolerated. Err says why there is none.
pub fn rootless_user() -> Result<User, String> {
    static USER: OnceLock<Result<User, String>> = OnceLock::new();
    USER.get_or_init(|| {
        if let Some(u) = User::lookup(ROOTLESS_USER) {
            return Ok(u);
        }
        if !is_root() {
            return Err("creating the rootless test user needs root".into());
        }
        if !have_cmd("useradd") {
            return Err("useradd not found".into());
        }
        let target = target_dir();
        fs::create_dir_all(&target).map_err(|e| e.to_string())?;
        let lock = File::create(target.join("rootless-user.lock")).map_err(|e| e.to_string())?;
        lock.lock().map_err(|e| e.to_string())?;
        let mut last = String::new();
        for _ in 0..20 {
            if let Some(u) = User::lookup(ROOTLESS_USER) {
                return Ok(u);
            }
            let mut c = Command::new("useradd");
            c.args([
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                "--comment",
                "rrun rootless tests",
                ROOTLESS_USER,
            ]);
            let o = run_timeout(c, TIMEOUT);
            // 9: the name is taken (someone else was faster); others, e.g.
            // a locked /etc/passwd, are worth another try.
            if o.success() || o.code == Some(9) {
                continue;
            }
            last = o.to_string();
            std::thread::sleep(Duration::from_millis(250));
        }
        User::lookup(ROOTLESS_USER).ok_or_else(|| format!("useradd failed:\n{last}"))
    })
    .clone()
}

/// How a rootless container's runtime commands are run.
#[derive(Debug, Clone)]
pub struct RunAs {
    pub user: User,
    /// Private, user-owned HOME and XDG_RUNTIME_DIR; removed on drop.
    pub dir: PathBuf,
    /// Pass `--root` (else the runtime picks its default state root).
    pub pass_root: bool,
    /// `NAME=VALUE` put in the runtime's environment: a process still
    /// running runtime code (an init that never exec'd) carries it, so a
    /// leak is found even when its pid was never reported.
    pub marker: String,
    /// Cgroup directories (one per hierarchy) each command is moved into
    /// before it switches to the user: a cgroup delegated to the user, as
    /// systemd puts a user's session in one.
    pub enter_cgroups: Vec<PathBuf>,
}

impl RunAs {
    pub fn command(&self, program: &Path) -> Command {
        let mut c = self.user.command(program, &self.dir);
        let (k, v) = self.marker.split_once('=').expect("marker is NAME=VALUE");
        c.env(k, v);
        if self.enter_cgroups.is_empty() {
            return c;
        }
        // sh (still root) joins the cgroups, then execs the same command.
        let mut w = Command::new("sh");
        w.arg("-c")
            .arg(
                "while [ \"$1\" != -- ]; do echo $$ > \"$1/cgroup.procs\" || exit 125; shift; done; \
                 shift; exec \"$@\"",
            )
            .arg("sh")
            .args(&self.enter_cgroups)
            .arg("--")
            .arg(c.get_program())
            .args(c.get_args());
        w.env_clear();
        for (k, v) in c.get_envs() {
            if let Some(v) = v {
                w.env(k, v);
            }
        }
        w
    }

    /// Live processes whose environment carries the marker.
    pub fn marked_pids(&self) -> Vec<i32> {
        let needle = self.marker.as_bytes();
        let Ok(rd) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| *pid as u32 != std::process::id())
            .filter(|pid| {
                fs::read(format!("/proc/{pid}/environ"))
                    .map(|env| env.split(|b| *b == 0).any(|kv| kv == needle))
                    .unwrap_or(false)
            })
            .filter(|pid| pid_alive(*pid))
            .collect()
    }
}
