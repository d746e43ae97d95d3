//! The per-app monitor: a small host-side process (rrun-monitor, built
//! from init/ without std or libc and embedded in rrun) that holds the
//! app's stdout and stderr pipes, writes them to apps/<name>/logs/ctr.log
//! (timestamped CRI lines, rotated by size and count), records how each
//! run of the container's init ended (apps/<name>/exit), and runs the
//! helper (`rrun app _spawn NAME`) again after each end. Its protocol is
//! described at the top of init/src/bin/rrun-monitor.rs.
//!
//! This module writes the monitor's config, starts it detached (double
//! fork, setsid) and tells whether it still runs. It never reads the
//! logs (logs.rs) nor decides anything about the app's life (the helper
//! does).
//!
//! The binary is written once per content to <run>/bin/ (read-only) and
//! run from there, so every monitor maps the same page-cache pages; where
//! that directory cannot exec (a noexec /run), each monitor runs from a
//! sealed memfd of its own instead.
#![allow(dead_code)] // until the app commands (the lead's) use all of it

use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::paths::Paths;
use crate::sys::detach::{Program, spawn_detached};

/// rrun-monitor, built from init/ by build.rs.
static MONITOR_BINARY: &[u8] = include_bytes!(env!("RRUN_MONITOR_BIN"));

pub const DEFAULT_MAX_SIZE: u64 = 10 * 1000 * 1000;
pub const DEFAULT_MAX_FILES: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("starting the monitor: {0}")]
    Spawn(Errno),
    #[error("the monitor's binary: {0}")]
    Binary(String),
    #[error("monitor config: {0}")]
    Config(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> MonitorError + '_ {
    move |source| MonitorError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// apps/<name>/monitor.json: what the monitor reads at start (its reader
/// is init/src/monitor/mod.rs, `Config`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MonitorConfig {
    /// The helper's argv; argv[0] an absolute path. Later runs get
    /// `--after-exit exit:N|signal:N` appended.
    pub helper: Vec<String>,
    /// The helper's whole environment ("K=V").
    pub env: Vec<String>,
    /// The log file (its directory must exist; spawn makes it).
    pub log: PathBuf,
    /// Rotate when the file would pass this many bytes (0: never).
    pub max_size: u64,
    /// Files kept: ctr.log and ctr.log.1 .. ctr.log.(max_files-1).
    pub max_files: u32,
    /// Where the helper writes the container init's host pid.
    pub init_pid: PathBuf,
    /// Where the monitor writes how the init ended: "exit:N <time>\n" or
    /// "signal:N <time>\n" (RFC 3339 UTC); "exit:255" when the helper named
    /// an init the monitor could not wait for.
    pub exit_file: PathBuf,
}

impl MonitorConfig {
    /// The defaults for app `name`: logs in apps/<name>/logs/ctr.log,
    /// 10 MB x 5, the helper's environment PATH (the caller's or a
    /// standard one) and every RRUN_* variable of the caller.
    pub fn new(paths: &Paths, name: &str, helper: Vec<String>) -> MonitorConfig {
        let dir = paths.app(name);
        let mut env: Vec<String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("RRUN_"))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let path = std::env::var("PATH").unwrap_or_else(|_| {
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
        });
        env.insert(0, format!("PATH={path}"));
        MonitorConfig {
            helper,
            env,
            log: log_dir(paths, name).join("ctr.log"),
            max_size: DEFAULT_MAX_SIZE,
            max_files: DEFAULT_MAX_FILES,
            init_pid: dir.join("init.pid"),
            exit_file: dir.join("exit"),
        }
    }
}

/// apps/<name>/logs: ctr.log and its rotated files (what logs::print reads).
pub fn log_dir(paths: &Paths, name: &str) -> PathBuf {
    paths.app(name).join("logs")
}

/// A running monitor: its pid and start time (so a recycled pid is never
/// taken for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonitorPid {
    pub pid: i32,
    pub start_time: u64,
}

fn pid_file(paths: &Paths, name: &str) -> PathBuf {
    paths.app(name).join("monitor.pid")
}

/// Writes apps/<name>/monitor.json and starts the monitor for app `name`,
/// detached, with `sync` (the sync pipe's write end) as its fd 3, which it
/// passes to the helper's first run. Returns once the monitor has exec'd;
/// its pid and start time are also in apps/<name>/monitor.pid. The
/// caller then reads the sync pipe's other end: "ok\n" or "error: ...\n"
/// from the helper (or the monitor), end of file when the helper is gone.
pub fn spawn(
    paths: &Paths,
    name: &str,
    cfg: &MonitorConfig,
    sync: BorrowedFd,
) -> Result<MonitorPid, MonitorError> {
    if cfg.helper.first().is_none_or(|p| !p.starts_with('/')) {
        return Err(MonitorError::Config(
            "the helper's argv must start with an absolute path".into(),
        ));
    }
    let dir = paths.app(name);
    if let Some(logs) = cfg.log.parent() {
        fs::create_dir_all(logs).map_err(io(logs))?;
    }
    let json = serde_json::to_vec_pretty(cfg).map_err(|e| MonitorError::Config(e.to_string()))?;
    write_atomic(&dir.join("monitor.json"), &json)?;

    let devnull = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(io(Path::new("/dev/null")))?;
    let log_path = dir.join("monitor.log");
    let mlog = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(&log_path)
        .map_err(io(&log_path))?;
    let argv = [
        CString::new("rrun-monitor").expect("no NUL"),
        CString::new(dir.as_os_str().as_bytes())
            .map_err(|_| MonitorError::Config(format!("{}: NUL in path", dir.display())))?,
    ];
    let fds = [devnull.as_fd(), devnull.as_fd(), mlog.as_fd(), sync];
    let bin = shared_binary(paths)?;
    let cbin = CString::new(bin.as_os_str().as_bytes())
        .map_err(|_| MonitorError::Binary(format!("{}: NUL in path", bin.display())))?;
    let mut tries = 0;
    let pid = loop {
        // ETXTBSY: a thread of this process forked while another copy of
        // the file was open for writing; that child closes it at its exec.
        match spawn_detached(Program::Path(&cbin), &argv, &[], fds) {
            Err(Errno::ETXTBSY) if tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            r => break r,
        }
    };
    let pid = match pid {
        // A noexec run directory: a sealed memfd instead.
        Err(Errno::EACCES | Errno::EPERM) => {
            let memfd = sealed_memfd()?;
            spawn_detached(Program::Fd(memfd.as_fd()), &argv, &[], fds)
        }
        r => r,
    }
    .map_err(MonitorError::Spawn)?;
    let start_time = crate::state::proc_stat(pid).map(|s| s.1).unwrap_or(0);
    let m = MonitorPid { pid, start_time };
    write_atomic(
        &pid_file(paths, name),
        format!("{pid} {start_time}\n").as_bytes(),
    )?;
    Ok(m)
}

/// The monitor recorded in apps/<name>/monitor.pid, if any.
pub fn read_pid(paths: &Paths, name: &str) -> Option<MonitorPid> {
    let s = fs::read_to_string(pid_file(paths, name)).ok()?;
    let mut it = s.split_whitespace();
    Some(MonitorPid {
        pid: it.next()?.parse().ok()?,
        start_time: it.next()?.parse().ok()?,
    })
}

/// Whether that monitor still runs (same pid and start time, not a zombie).
pub fn alive(m: &MonitorPid) -> bool {
    m.pid > 0 && crate::state::process_alive(m.pid, m.start_time)
}

/// SIGKILL to the monitor (rm -f of an app whose helper cannot end it),
/// through a pidfd checked against the start time: never another process.
pub fn kill(m: &MonitorPid) -> Result<(), Errno> {
    let fd = crate::sys::pidfd_open(m.pid)?;
    if !alive(m) {
        return Ok(());
    }
    match crate::sys::pidfd_send_signal(&fd, libc::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(e),
    }
}

/// <run>/bin/rrun-monitor-<digest>: the embedded binary, written once per
/// content (read-only, renamed into place) and shared by every monitor.
pub fn shared_binary(paths: &Paths) -> Result<PathBuf, MonitorError> {
    let d = Sha256::digest(MONITOR_BINARY);
    let hex: String = d[..8].iter().map(|b| format!("{b:02x}")).collect();
    let dir = paths.run.join("bin");
    let path = dir.join(format!("rrun-monitor-{hex}"));
    if fs::metadata(&path).is_ok_and(|m| m.len() == MONITOR_BINARY.len() as u64) {
        return Ok(path);
    }
    fs::create_dir_all(&dir).map_err(io(&dir))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(io(&dir))?;
    // Unique per process and call: parallel spawns each write their own
    // copy and the last rename wins (the contents are the same).
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".rrun-monitor-{hex}.{}.{n}", std::process::id()));
    let f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o500)
        .open(&tmp)
        .map_err(io(&tmp))?;
    // Closed before the rename: a file open for writing cannot be exec'd
    // (ETXTBSY).
    let r = (|| {
        let mut f = f;
        f.write_all(MONITOR_BINARY)?;
        f.sync_all()
    })()
    .and_then(|_| fs::rename(&tmp, &path));
    if let Err(e) = r {
        let _ = fs::remove_file(&tmp);
        return Err(io(&path)(e));
    }
    Ok(path)
}

/// A sealed memfd holding the binary (for a run directory that cannot
/// exec).
fn sealed_memfd() -> Result<std::os::fd::OwnedFd, MonitorError> {
    use nix::sys::memfd::{MFdFlags, memfd_create};
    let err = |e: String| MonitorError::Binary(format!("memfd: {e}"));
    let fd = memfd_create(
        "rrun-monitor",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .map_err(|e| err(e.to_string()))?;
    let mut f = fs::File::from(fd);
    f.write_all(MONITOR_BINARY)
        .map_err(|e| err(e.to_string()))?;
    let fd = std::os::fd::OwnedFd::from(f);
    crate::sys::seal(&fd).map_err(|e| err(e.to_string()))?;
    Ok(fd)
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<(), MonitorError> {
    let tmp = path.with_extension("tmp");
    let r = fs::write(&tmp, data).and_then(|_| fs::rename(&tmp, path));
    if let Err(e) = r {
        let _ = fs::remove_file(&tmp);
        return Err(io(path)(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_camel_case_with_the_defaults() {
        let p = Paths::new(Path::new("/tmp/approot"));
        let c = MonitorConfig::new(&p, "web", vec!["/usr/bin/rrun".into()]);
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["maxSize"], 10_000_000);
        assert_eq!(v["maxFiles"], 5);
        assert_eq!(v["log"], "/tmp/approot/apps/web/logs/ctr.log");
        assert_eq!(v["initPid"], "/tmp/approot/apps/web/init.pid");
        assert_eq!(v["exitFile"], "/tmp/approot/apps/web/exit");
        assert!(c.env[0].starts_with("PATH="));
    }

    /// Removes a test's run directory (under /run) whatever happens.
    struct RunDir(PathBuf);
    impl Drop for RunDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn spawn_detaches_the_monitor_and_hands_the_sync_pipe_to_the_helper() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let root = tempfile::tempdir().unwrap();
        let paths = Paths::new(root.path());
        let _run = RunDir(paths.run.clone());
        let script = "echo out; echo err >&2; echo ok >&3; sleep 0.5; exit 3";
        let helper = ["/bin/sh", "-c", script].map(String::from).to_vec();
        let cfg = MonitorConfig::new(&paths, "web", helper);
        let (r, w) = nix::unistd::pipe().unwrap();
        let m = spawn(&paths, "web", &cfg, w.as_fd()).unwrap();
        drop(w);
        assert_eq!(read_pid(&paths, "web"), Some(m));
        assert!(alive(&m));
        // Detached: not our child, in a session of its own (whose leader,
        // the first fork, is gone: it can never get a terminal).
        let stat = fs::read_to_string(format!("/proc/{}/stat", m.pid)).unwrap();
        let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
            .split_whitespace()
            .collect();
        assert_ne!(f[1], std::process::id().to_string(), "parent");
        let ours = nix::unistd::getsid(None).unwrap().to_string();
        assert_ne!(f[3], ours, "session id");
        // "ok" from the helper, then end of file once it is gone: neither
        // we nor the monitor hold the pipe.
        let mut said = String::new();
        std::io::Read::read_to_string(&mut fs::File::from(r), &mut said).unwrap();
        assert_eq!(said, "ok\n");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while alive(&m) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(
            !alive(&m),
            "the monitor did not end after the helper's exit 3"
        );
        let log = fs::read_to_string(&cfg.log).unwrap();
        assert!(
            log.contains(" stdout F out\n") && log.contains(" stderr F err\n"),
            "{log}"
        );
        let bin = shared_binary(&paths).unwrap();
        let mode = fs::metadata(&bin).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o500);
    }

    #[test]
    fn parallel_spawns_share_one_binary_and_all_start() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let root = tempfile::tempdir().unwrap();
        let paths = Paths::new(root.path());
        let _run = RunDir(paths.run.clone());
        let threads: Vec<_> = (0..16)
            .map(|i| {
                let paths = paths.clone();
                std::thread::spawn(move || {
                    let name = format!("app{i}");
                    let helper = ["/bin/sh", "-c", "echo ok >&3; exit 3"];
                    let cfg = MonitorConfig::new(&paths, &name, helper.map(String::from).to_vec());
                    let (r, w) = nix::unistd::pipe().unwrap();
                    spawn(&paths, &name, &cfg, w.as_fd()).unwrap();
                    drop(w);
                    let mut said = String::new();
                    std::io::Read::read_to_string(&mut fs::File::from(r), &mut said).unwrap();
                    said
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), "ok\n");
        }
        let bins: Vec<_> = fs::read_dir(paths.run.join("bin"))
            .unwrap()
            .flatten()
            .collect();
        assert_eq!(bins.len(), 1, "one shared binary, no temporary left");
    }

    #[test]
    fn the_memfd_fallback_runs_the_monitor_too() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let root = tempfile::tempdir().unwrap();
        let paths = Paths::new(root.path());
        let dir = paths.app("web");
        let helper = ["/bin/sh", "-c", "echo ok >&3; exit 3"];
        let cfg = MonitorConfig::new(&paths, "web", helper.map(String::from).to_vec());
        fs::create_dir_all(dir.join("logs")).unwrap();
        fs::write(dir.join("monitor.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
        let memfd = sealed_memfd().unwrap();
        let devnull = fs::File::open("/dev/null").unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        let argv = [
            CString::new("rrun-monitor").unwrap(),
            CString::new(dir.as_os_str().as_bytes()).unwrap(),
        ];
        let fds = [devnull.as_fd(), devnull.as_fd(), devnull.as_fd(), w.as_fd()];
        let pid = spawn_detached(Program::Fd(memfd.as_fd()), &argv, &[], fds).unwrap();
        drop(w);
        let mut said = String::new();
        std::io::Read::read_to_string(&mut fs::File::from(r), &mut said).unwrap();
        assert_eq!(said, "ok\n");
        let exe = fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
        assert!(
            exe.as_os_str().is_empty() || exe.to_string_lossy().contains("memfd:rrun-monitor"),
            "{exe:?}"
        );
    }
}
