//! Terminals: a pty made inside the container (from its own devpts), its
//! master sent over a unix socket with SCM_RIGHTS (runc's console-socket
//! protocol: the payload names the master, the fd rides along), the slave
//! made the program's controlling terminal and stdio, and the relay a
//! foreground `run`/`exec` runs between its own stdio and the master.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};

use crate::sys::{self, WinSize};

pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
    pub slave_path: String,
}

/// Opens a new pty through /dev/ptmx as the caller sees it: inside the
/// container, that is the container's own devpts instance.
pub fn open_pty() -> Result<Pty, String> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|e| format!("opening /dev/ptmx: {e}"))?;
    grantpt(&master).map_err(|e| format!("grantpt: {e}"))?;
    unlockpt(&master).map_err(|e| format!("unlockpt: {e}"))?;
    let slave_path = ptsname_r(&master).map_err(|e| format!("ptsname: {e}"))?;
    let slave = nix::fcntl::open(
        slave_path.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("opening {slave_path}: {e}"))?;
    Ok(Pty {
        master: master.into(),
        slave,
        slave_path,
    })
}

/// Where a terminal process sends its pty master: (the child's end, our
/// end). With `console_socket`, a connection to the caller's socket (ours
/// is None: the caller receives it); without one, our own socketpair, for a
/// foreground run/exec that relays the terminal itself. (None, None)
/// without a terminal.
pub fn console_endpoints(
    console_socket: Option<&std::path::Path>,
    terminal: bool,
) -> Result<(Option<OwnedFd>, Option<OwnedFd>), String> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    match (console_socket, terminal) {
        (Some(path), true) => {
            let s = std::os::unix::net::UnixStream::connect(path)
                .map_err(|e| format!("--console-socket {}: {e}", path.display()))?;
            Ok((Some(OwnedFd::from(s)), None))
        }
        (None, true) => {
            let (a, b) = socketpair(
                AddressFamily::Unix,
                SockType::Stream,
                None,
                SockFlag::SOCK_CLOEXEC,
            )
            .map_err(|e| format!("socketpair: {e}"))?;
            Ok((Some(a), Some(b)))
        }
        _ => Ok((None, None)),
    }
}

/// Sends `fd` over the unix socket `sock`, with `name` as the payload.
pub fn send_fd(sock: &impl AsFd, fd: &impl AsFd, name: &str) -> Result<(), Errno> {
    let fds = [fd.as_fd().as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(name.as_bytes())];
    sendmsg::<()>(
        sock.as_fd().as_raw_fd(),
        &iov,
        &cmsg,
        MsgFlags::empty(),
        None,
    )?;
    Ok(())
}

/// Receives one fd sent with [`send_fd`]; returns it with the payload.
pub fn recv_fd(sock: &impl AsFd) -> Result<(OwnedFd, String), Errno> {
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_fd().as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut got = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for fd in fds {
                // SAFETY: the kernel just installed this fd in our table
                // for us; nothing else owns it.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                if got.is_none() {
                    got = Some(owned);
                }
            }
        }
    }
    let n = msg.bytes;
    let name = String::from_utf8_lossy(&buf[..n]).into_owned();
    got.map(|fd| (fd, name)).ok_or(Errno::EBADMSG)
}

/// In the container: the slave becomes stdio and the controlling terminal
/// of the (session-leading) caller.
pub fn attach_slave(slave: &OwnedFd) -> Result<(), String> {
    for target in 0..3 {
        sys::dup_onto(slave, target).map_err(|e| format!("dup2 pty slave: {e}"))?;
    }
    sys::set_controlling_tty(slave).map_err(|e| format!("TIOCSCTTY: {e}"))
}

/// Puts the caller's terminal in raw mode until dropped, so keys reach the
/// container unprocessed; restores it even when the relay fails.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enter() -> Option<RawMode> {
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// What the relay loop asks its caller to do with a signal.
pub enum SignalAction {
    Continue,
    /// The watched process exited with this status.
    Exited(i32),
}

/// Relays stdin -> master and master -> stdout until `on_signal` reports
/// that the process exited (SIGCHLD is delivered through `sfd` like every
/// other signal; SIGWINCH is handled here).
pub fn relay(
    master: &OwnedFd,
    sfd: &SignalFd,
    mut on_signal: impl FnMut(Signal) -> SignalAction,
) -> Result<i32, Errno> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let _raw = RawMode::enter();
    if let Ok(size) = sys::get_winsize(&stdin) {
        let _ = sys::set_winsize(master, size);
    }
    let mut stdin_open = true;
    let mut master_open = true;
    let mut buf = [0u8; 8192];
    let mut exited: Option<i32> = None;
    loop {
        if let Some(code) = exited
            && !master_open
        {
            return Ok(code);
        }
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if master_open {
            fds.push(PollFd::new(master.as_fd(), PollFlags::POLLIN));
        }
        if stdin_open && exited.is_none() {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        // After the process exited, drain what is left on the master
        // without waiting for input that will never come.
        let timeout = if exited.is_some() {
            PollTimeout::from(100u8)
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(0) => {
                master_open = false;
                continue;
            }
            Ok(_) => {}
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        if ready[0]
            && let Ok(Some(info)) = sfd.read_signal()
            && let Ok(sig) = Signal::try_from(info.ssi_signo as i32)
        {
            if sig == Signal::SIGWINCH {
                if let Ok(size) = sys::get_winsize(&stdin) {
                    let _ = sys::set_winsize(master, size);
                }
            } else if let SignalAction::Exited(code) = on_signal(sig) {
                exited = Some(code);
            }
        }
        let mut i = 1;
        if master_open {
            if ready[i] {
                match nix::unistd::read(master, &mut buf) {
                    Ok(0) | Err(Errno::EIO) => master_open = false,
                    Ok(n) => write_all(&stdout, &buf[..n]),
                    Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
                    Err(_) => master_open = false,
                }
            }
            i += 1;
        }
        if stdin_open && exited.is_none() && ready.get(i).copied().unwrap_or(false) {
            match nix::unistd::read(&stdin, &mut buf) {
                Ok(0) => stdin_open = false,
                Ok(n) => write_all(master, &buf[..n]),
                Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
                Err(_) => stdin_open = false,
            }
        }
    }
}

fn write_all(fd: &impl AsFd, mut data: &[u8]) {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) | Err(Errno::EAGAIN) => continue,
            Err(_) => return,
        }
    }
}

/// The window size of config's process.consoleSize.
pub fn console_size(p: &oci_spec::runtime::Process) -> Option<WinSize> {
    p.console_size().as_ref().map(|b| WinSize {
        rows: b.height().min(u16::MAX as u64) as u16,
        cols: b.width().min(u16::MAX as u64) as u16,
    })
}
