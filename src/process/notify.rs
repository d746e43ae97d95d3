//! systemd's readiness protocol through the container, as runc does it: when
//! rrun runs with $NOTIFY_SOCKET (a unit of Type=notify started it, or an
//! engine passes its own socket), the container's program gets a socket of
//! its own at /run/notify/notify.sock (a read-only bind of the state
//! directory's `notify/`) and NOTIFY_SOCKET pointing at it; `start` (and
//! `run`) listen there and, once the program says READY=, tell the host's
//! socket READY=1 with MAINPID = the container's init (the caller's own pid
//! for a foreground `run`, which stays the unit's main process), then wait
//! for systemd to have read it (BARRIER=1) before returning.
//!
//! Trust: everything arriving on the socket comes from the container. It is
//! only read (bounded datagrams) to see whether a READY= line is there;
//! nothing of it is ever forwarded — the host gets fixed text that rrun
//! writes. A container that never says READY keeps `start` waiting until
//! its init ends (the unit's start timeout is systemd's to enforce), as
//! with runc.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use oci_spec::runtime::{MountBuilder, Spec};

use crate::state::ContainerDir;

/// Where the container sees its socket's directory (runc's place).
pub const CONTAINER_DIR: &str = "/run/notify";
const SOCKET: &str = "notify.sock";
/// The state directory's subdirectory bind-mounted at CONTAINER_DIR.
const STATE_SUBDIR: &str = "notify";
/// How long to wait for systemd to confirm it has read READY=1.
const BARRIER_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("NOTIFY_SOCKET {0:?}: {1}")]
    Host(String, io::Error),
    #[error("the container's notify socket {0}: {1}")]
    Listen(PathBuf, io::Error),
    #[error("process.env: {0}")]
    Spec(String),
}

/// The host socket rrun was given, None when there is none (unset or empty).
pub fn host_socket(flag: Option<&Path>) -> Option<PathBuf> {
    flag.filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
}

/// The state-directory path of the container's notify directory.
pub fn state_dir(container_dir: &Path) -> PathBuf {
    container_dir.join(STATE_SUBDIR)
}

/// Adds the socket's mount and NOTIFY_SOCKET to the container's spec (the
/// mount last, so it lands on top of a /run the spec mounts).
pub fn add_to_spec(spec: &mut Spec, notify_dir: &Path) -> Result<(), NotifyError> {
    let mount = MountBuilder::default()
        .destination(CONTAINER_DIR)
        .typ("bind")
        .source(notify_dir)
        .options(
            ["bind", "nosuid", "noexec", "nodev", "ro"]
                .map(String::from)
                .to_vec(),
        )
        .build()
        .map_err(|e| NotifyError::Spec(e.to_string()))?;
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.push(mount);
    spec.set_mounts(Some(mounts));
    if let Some(p) = spec.process_mut() {
        // Replaced rather than appended: with two entries which one the
        // program sees depends on its libc.
        let mut env: Vec<String> = p
            .env()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| !e.starts_with("NOTIFY_SOCKET="))
            .collect();
        env.push(format!("NOTIFY_SOCKET={CONTAINER_DIR}/{SOCKET}"));
        p.set_env(Some(env));
    }
    Ok(())
}

/// Makes the (empty) directory the mount binds; the socket appears in it
/// at `start`.
pub fn make_state_dir(container_dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(state_dir(container_dir))
}

/// The container's end of the protocol, bound before the program runs.
pub struct Listener {
    sock: UnixDatagram,
    host: PathBuf,
}

impl Listener {
    /// Binds the container's socket when `create` prepared it (None when
    /// the container was created without NOTIFY_SOCKET, or none is given).
    pub fn bind(dir: &ContainerDir, host: Option<&Path>) -> Result<Option<Listener>, NotifyError> {
        let Some(host) = host_socket(host) else {
            return Ok(None);
        };
        let notify = state_dir(&dir.path);
        if !notify.is_dir() {
            return Ok(None);
        }
        let path = notify.join(SOCKET);
        // A socket left by an earlier `start` attempt is ours to replace.
        let _ = std::fs::remove_file(&path);
        // Through the open state directory: --root may be longer than
        // sun_path allows.
        let short = dir.short_path(&Path::new(STATE_SUBDIR).join(SOCKET));
        let sock = UnixDatagram::bind(&short).map_err(|e| NotifyError::Listen(path.clone(), e))?;
        // The program may run as any user.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777))
            .map_err(|e| NotifyError::Listen(path.clone(), e))?;
        Ok(Some(Listener { sock, host }))
    }

    /// Waits until the program says READY= (then tells the host, naming
    /// `main_pid`) or the container's init (`pid1`) ends. Returns whether
    /// READY was relayed.
    pub fn relay(&self, pid1: i32, main_pid: i32) -> Result<bool, NotifyError> {
        let pidfd = crate::sys::pidfd_open(pid1).ok();
        let mut buf = vec![0u8; 4096];
        loop {
            if pidfd.is_none() && !alive(pid1) {
                return Ok(false);
            }
            let mut fds = vec![PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
            if let Some(p) = &pidfd {
                fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::from(100u16)) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(NotifyError::Listen(PathBuf::from(SOCKET), e.into())),
            }
            let readable = |i: usize| {
                fds.get(i)
                    .and_then(|f| f.revents())
                    .is_some_and(|r| !r.is_empty())
            };
            if readable(0) {
                let n = match self.sock.recv(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(NotifyError::Listen(PathBuf::from(SOCKET), e)),
                };
                if says_ready(&buf[..n]) {
                    tell_host(&self.host, main_pid)?;
                    return Ok(true);
                }
                continue;
            }
            if readable(1) {
                return Ok(false);
            }
        }
    }
}

/// Whether a datagram has a READY= line (systemd's own test: any value).
pub fn says_ready(msg: &[u8]) -> bool {
    msg.split(|b| *b == b'\n').any(|l| l.starts_with(b"READY="))
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Sends READY=1 and MAINPID to the host's socket and waits (bounded) for
/// systemd to have processed it: a message whose sender has exited may
/// otherwise be read after the unit has stopped trusting it. A listener
/// that does not confirm (an older systemd, a test's socket) gets a
/// warning: READY was sent, which is what matters.
pub fn tell_host(host: &Path, main_pid: i32) -> Result<(), NotifyError> {
    if !send(host, &format!("READY=1\nMAINPID={main_pid}"))? {
        crate::log::warn("NOTIFY_SOCKET: no confirmation (BARRIER) within 30s; going on");
    }
    Ok(())
}

/// Sends `state` (VAR=VALUE lines) as one datagram to the socket `host`
/// names (a path, or "@name" in the abstract namespace), then BARRIER=1
/// with a pipe's write end: systemd closes its copy once it has handled
/// everything sent before, and EOF on the read end confirms. Returns
/// whether that confirmation came within 30 s.
pub fn send(host: &Path, state: &str) -> Result<bool, NotifyError> {
    let err = |e: io::Error| NotifyError::Host(host.display().to_string(), e);
    let sock = UnixDatagram::unbound().map_err(err)?;
    let addr = host_addr(host).map_err(err)?;
    sock.send_to_addr(state.as_bytes(), &addr).map_err(err)?;
    barrier(&sock, &addr).map_err(err)
}

/// systemd's abstract-namespace form ("@name") or a path.
fn host_addr(host: &Path) -> io::Result<SocketAddr> {
    use std::os::unix::ffi::OsStrExt;
    match host.as_os_str().as_bytes().strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name),
        None => SocketAddr::from_pathname(host),
    }
}

/// The barrier of [`send`]; Ok(false) when it is not confirmed in time.
fn barrier(sock: &UnixDatagram, addr: &SocketAddr) -> io::Result<bool> {
    use nix::sys::socket::{ControlMessage, MsgFlags, UnixAddr, sendmsg};
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let target = match addr.as_pathname() {
        Some(p) => UnixAddr::new(p)?,
        None => UnixAddr::new_abstract(addr.as_abstract_name().unwrap_or_default())?,
    };
    let fds = [w.as_raw_fd()];
    sendmsg(
        sock.as_raw_fd(),
        &[io::IoSlice::new(b"BARRIER=1\n")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        Some(&target),
    )?;
    drop(w);
    let deadline = Instant::now() + BARRIER_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(r.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {
                let mut b = [0u8; 1];
                return match nix::unistd::read(&r, &mut b) {
                    Ok(0) => Ok(true),
                    Ok(_) => Err(io::Error::other("unexpected data on the barrier pipe")),
                    Err(e) => Err(e.into()),
                };
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_lines() {
        assert!(says_ready(b"READY=1"));
        assert!(says_ready(b"STATUS=up\nREADY=1\n"));
        assert!(!says_ready(b"STATUS=READY=1"));
        assert!(!says_ready(b"WATCHDOG=1"));
        assert!(!says_ready(b""));
    }

    #[test]
    fn empty_socket_is_none() {
        assert_eq!(host_socket(Some(Path::new(""))), None);
        assert_eq!(host_socket(None), None);
        assert_eq!(
            host_socket(Some(Path::new("@x"))),
            Some(PathBuf::from("@x"))
        );
    }
}
