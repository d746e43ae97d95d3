//! Readiness under systemd (`--sd-notify`): the sd_notify protocol by hand
//! — one datagram on the unix socket named by $NOTIFY_SOCKET (a path, or
//! an abstract name spelled with a leading '@') — and the cgroup placement
//! a `Type=notify`, `Delegate=yes` unit needs before its main process
//! starts containers.
//!
//! Without $NOTIFY_SOCKET every function here does nothing (so
//! `--sd-notify` outside a unit is harmless). `rrun app run -d
//! --sd-notify` and `rrun app start --sd-notify` ([`run`], [`start`]) wait
//! until the app is ready — healthy when it has a health check, else
//! running — and then say READY with MAINPID = the app's monitor; other
//! callers (compose's `up --sd-notify`) call [`prepare`] before they start
//! anything and [`ready`] once they decide the service is ready.
//!
//! The `rrun app` process that starts an app ends right after it says
//! READY, and the app's monitor becomes the unit's main process (MAINPID).
//! systemd could see that exit before it reads the datagram; the message
//! is therefore followed by a barrier (BARRIER=1 with a pipe: systemd
//! closes its copy once it has processed everything before it), as
//! sd_notify_barrier(3) describes.

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cli::RunArgs;
use super::monitor::MonitorPid;
use super::paths::Paths;
use super::state::App;
use super::{lifecycle, runtime, settings};

/// The variable systemd sets for a Type=notify service.
pub const SOCKET_VAR: &str = "NOTIFY_SOCKET";
/// The leaf cgroup a unit's main process moves to (see [`prepare`]).
pub const LEAF: &str = "supervisor";

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("{SOCKET_VAR}={0:?}: expected an absolute path or an abstract name (@...)")]
    Address(String),
    #[error("sd_notify: {0}")]
    Send(String),
    #[error("sd_notify to {0:?}: systemd did not acknowledge the message (barrier)")]
    Barrier(String),
    #[error("moving into the leaf cgroup {path}: {source}")]
    Cgroup {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// $NOTIFY_SOCKET, when set and not empty: we run as a notify unit's
/// (main or control) process.
pub fn socket_var() -> Option<OsString> {
    std::env::var_os(SOCKET_VAR).filter(|s| !s.is_empty())
}

/// Whether this process was started by systemd with a notify socket.
pub fn under_systemd() -> bool {
    socket_var().is_some()
}

/// The socket $NOTIFY_SOCKET names: an absolute path or an abstract name
/// ("@..."); anything else is refused.
fn address(var: &[u8]) -> Result<&Path, NotifyError> {
    match var.first() {
        Some(b'@' | b'/') => Ok(Path::new(std::ffi::OsStr::from_bytes(var))),
        _ => Err(NotifyError::Address(
            String::from_utf8_lossy(var).into_owned(),
        )),
    }
}

/// The datagram of a readiness message.
pub fn ready_message(main_pid: Option<i32>) -> String {
    match main_pid {
        Some(p) => format!("MAINPID={p}\nREADY=1\n"),
        None => "READY=1\n".to_string(),
    }
}

/// Sends `state` (newline-separated VAR=VALUE lines), then waits until
/// systemd has processed it. Ok(false): no $NOTIFY_SOCKET, nothing sent.
pub fn send(state: &str) -> Result<bool, NotifyError> {
    match socket_var() {
        Some(var) => send_to(var.as_bytes(), state).map(|_| true),
        None => Ok(false),
    }
}

/// [`send`] to the socket `var` names (the runtime's sender: one datagram,
/// then the barrier); an unconfirmed barrier is an error here: the caller
/// exits right after, and systemd might never take the message.
fn send_to(var: &[u8], state: &str) -> Result<(), NotifyError> {
    let name = String::from_utf8_lossy(var).into_owned();
    match crate::process::notify::send(address(var)?, state) {
        Ok(true) => Ok(()),
        Ok(false) => Err(NotifyError::Barrier(name)),
        Err(e) => Err(NotifyError::Send(e.to_string())),
    }
}

/// READY=1, with MAINPID when the unit's main process is another process
/// (the app's monitor): systemd then follows that one.
pub fn ready(main_pid: Option<i32>) -> Result<bool, NotifyError> {
    send(&ready_message(main_pid))
}

/// STATUS=text (one line: newlines become spaces), shown by
/// `systemctl status`.
pub fn status(text: &str) -> Result<bool, NotifyError> {
    send(&format!("STATUS={}\n", text.replace('\n', " ")))
}

/// Before a unit's main process starts a container: on a pure cgroup v2
/// host, move this process from the unit's cgroup into its leaf
/// `<unit>/supervisor`, so the unit's cgroup holds no process and can hand
/// controllers down (Delegate=yes). The runtime nests a relative
/// cgroupsPath under the parent of its own cgroup, so the monitor and
/// helper (in the leaf) put the container in `<unit>/rrun-app<tag>/NAME`:
/// inside the unit, which `systemctl stop` and `systemd-cgls` see.
///
/// Only with $NOTIFY_SOCKET (the unit asked for `--sd-notify`); on
/// v1/hybrid hosts, at the root, or already in the leaf: nothing.
pub fn prepare() -> Result<(), NotifyError> {
    if !under_systemd() {
        return Ok(());
    }
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let Some(dir) = leaf_dir(Path::new("/sys/fs/cgroup"), &own) else {
        return Ok(());
    };
    if !Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        return Ok(());
    }
    let at = |e| NotifyError::Cgroup {
        path: dir.clone(),
        source: e,
    };
    match fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(at(e)),
    }
    fs::OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.procs"))
        .and_then(|mut f| f.write_all(std::process::id().to_string().as_bytes()))
        .map_err(at)
}

/// The leaf directory for a process whose /proc/self/cgroup is `own`:
/// None unless it is a pure v2 line ("0::/path") below the root and not
/// the leaf already.
pub fn leaf_dir(mount: &Path, own: &str) -> Option<PathBuf> {
    let mut lines = own.lines().filter(|l| !l.is_empty());
    let path = lines.next()?.strip_prefix("0::")?;
    if lines.next().is_some() {
        return None; // v1 or hybrid: other hierarchies too
    }
    let rel = path.trim_start_matches('/');
    if rel.is_empty() || rel.rsplit('/').next() == Some(LEAF) {
        return None;
    }
    Some(mount.join(rel).join(LEAF))
}

/// `rrun app run -d --sd-notify ...`: [`prepare`], run, wait until ready,
/// notify.
pub fn run(paths: &Paths, a: &RunArgs) -> anyhow::Result<i32> {
    prepare()?;
    let code = lifecycle::run(paths, a)?;
    let name = a
        .name
        .clone()
        .unwrap_or_else(|| settings::name_from_source(&a.source));
    if code == 0 {
        wait_and_notify(paths, &name)?;
    }
    Ok(code)
}

/// `rrun app start --sd-notify NAME`.
pub fn start(paths: &Paths, names: &[String]) -> anyhow::Result<()> {
    let [name] = names else {
        anyhow::bail!("--sd-notify starts one app (a unit has one main process)");
    };
    prepare()?;
    lifecycle::start(paths, name)?;
    wait_and_notify(paths, name)
}

fn wait_and_notify(paths: &Paths, name: &str) -> anyhow::Result<()> {
    status(&format!("waiting for app {name} to be ready"))?;
    let m = wait_ready(paths, name)?;
    ready(Some(m.pid))?;
    Ok(())
}

/// Waits until the app is ready: healthy when it has a health check, else
/// running. No deadline of its own: the unit's TimeoutStartSec bounds it.
/// An app that ends or reports unhealthy first is an error.
pub fn wait_ready(paths: &Paths, name: &str) -> anyhow::Result<MonitorPid> {
    let app = App::at(paths, name);
    let spec = app.load_spec()?;
    loop {
        let Some(m) = lifecycle::monitor_alive(paths, name) else {
            let why = app
                .load_state()
                .ok()
                .and_then(|st| st.exit)
                .map(|e| e.reason)
                .unwrap_or_else(|| "ended".into());
            anyhow::bail!("app {name} ended before it was ready ({why})");
        };
        match (&spec.health, lifecycle::live_health(paths, name).as_deref()) {
            (Some(_), Some("healthy")) => return Ok(m),
            (Some(_), Some("unhealthy")) => anyhow::bail!("app {name} is unhealthy"),
            (None, _) if runtime::running(paths, name) => return Ok(m),
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn messages_and_addresses() {
        assert_eq!(ready_message(Some(42)), "MAINPID=42\nREADY=1\n");
        assert_eq!(ready_message(None), "READY=1\n");
        assert!(address(b"@/org/x").is_ok());
        assert!(address(b"/run/systemd/notify").is_ok());
        assert!(address(b"run/notify").is_err());
        assert!(address(b"").is_err());
    }

    #[test]
    fn leaf_only_on_pure_v2_below_the_root() {
        let m = Path::new("/sys/fs/cgroup");
        assert_eq!(
            leaf_dir(m, "0::/system.slice/rrun-p-web.service\n"),
            Some(PathBuf::from(
                "/sys/fs/cgroup/system.slice/rrun-p-web.service/supervisor"
            ))
        );
        assert_eq!(leaf_dir(m, "0::/\n"), None);
        assert_eq!(leaf_dir(m, "0::/a.service/supervisor\n"), None);
        assert_eq!(leaf_dir(m, "12:pids:/x\n0::/x\n"), None);
        assert_eq!(leaf_dir(m, ""), None);
    }

    /// A fake systemd: receives the message, then acknowledges the barrier
    /// by closing the fd it got (dropping the message's fds does that).
    #[test]
    fn ready_reaches_the_socket_and_waits_for_the_barrier() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        let got = std::thread::spawn(move || {
            let mut out = Vec::new();
            for _ in 0..2 {
                let mut buf = [0u8; 256];
                let mut fds = Vec::new();
                let (n, received, _) = crate::sys::recv_with_fds(&server, &mut buf).unwrap();
                fds.extend(received);
                out.push((String::from_utf8_lossy(&buf[..n]).into_owned(), fds.len()));
                drop(fds);
            }
            out
        });
        send_to(path.as_os_str().as_bytes(), &ready_message(Some(7))).unwrap();
        let got = got.join().unwrap();
        assert_eq!(got[0], ("MAINPID=7\nREADY=1\n".to_string(), 0));
        assert_eq!(got[1], ("BARRIER=1\n".to_string(), 1));
        drop(dir);
        assert!(send_to(b"/nonexistent/notify", "READY=1\n").is_err());
    }
}
