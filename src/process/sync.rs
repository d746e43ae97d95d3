//! The one channel between rrun (parent) and the processes it clones: a
//! SOCK_SEQPACKET socketpair, one JSON message per packet. Both ends are
//! O_CLOEXEC, and each side closes the other's end right after clone, so a
//! peer that dies reads as end-of-file, never as a hang.
//!
//! | step | sender       | message             | meaning                                   |
//! |------|--------------|---------------------|-------------------------------------------|
//! | 1    | intermediate | MapRequest          | unshared a user ns: write my id maps      |
//! | 2    | parent       | MapsWritten         | maps written; go on                       |
//! | 3    | intermediate | ChildPid(pid) + fd  | forked the init (fd: its pidfd); I exit   |
//! | m    | parent       | MountFd(i) + fd     | the id-mapped mount for mounts[i]         |
//! | u    | parent       | CgroupDirs(dirs)    | systemd placed you in its unit: these     |
//! | 4    | parent       | Go                  | init is in its cgroups (and id-mapped)    |
//! | 5    | init         | CreateRuntimeHooks  | mounts done: run prestart/createRuntime   |
//! | 6    | parent       | HooksDone           | they passed; go on to pivot_root          |
//! | 7    | init         | Ready               | blocked before exec, waiting for `start`  |
//! | s1   | init/process | SeccompFd + fd      | loaded the notify filter: its listener    |
//! | s2   | parent       | SeccompDone         | sent to linux.seccomp.listenerPath; go on |
//! | any  | child        | Error(msg)          | failed; the parent cleans up              |
//!
//! Steps 1-3 exist only when an intermediate process is needed (joined
//! namespaces, time namespace); u only with --systemd-cgroup; 5-6 only
//! when those hooks exist; s1-s2 only with SCMP_ACT_NOTIFY in the profile,
//! during step h of create (before 7) or in an exec'd process (exec.rs), where s1 may even come before the
//! helper's ChildPid. ChildPid (also the exec helper's) and s1 carry an fd
//! (SCM_RIGHTS); s1 is sent with [`Channel::send_encoded_with_fd`] right
//! after the filter is loaded, one sendmsg(2) and no other syscall, since
//! nobody can answer a notification before the agent has the listener.
//!
//! Who sent a message is the kernel's word, not the message's: the
//! parent's end has SO_PASSCRED, so every packet it receives carries the
//! sending process's pid (SCM_CREDENTIALS, as seen from the parent's pid
//! namespace). Until its exec, a child's end may be taken by anything in
//! the container that can pidfd_getfd it (CAP_SYS_PTRACE); such a thief
//! can write packets but not a pid that is not its own (short of
//! CAP_SYS_ADMIN over its pid namespace, and then only pids that namespace
//! sees). So the parent acts only on messages from the process it expects
//! at each step ([`Channel::recv_from`]; exec.rs sorts its two senders
//! itself): ChildPid only from the helper or intermediate it forked, the
//! rest only from the pid that message named, or from its own child.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockType, send, setsockopt, socketpair, sockopt,
};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub enum Msg {
    MapRequest,
    MapsWritten,
    ChildPid(i32),
    MountFd(usize),
    CgroupDirs(Vec<std::path::PathBuf>),
    Go,
    CreateRuntimeHooks,
    HooksDone,
    Ready,
    SeccompFd,
    SeccompDone,
    Error(String),
}

/// A message serialised ahead of the moment it is sent.
pub fn encode(msg: &Msg) -> Vec<u8> {
    serde_json::to_vec(msg).expect("sync messages serialise: plain enum")
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("sync channel: {0}")]
    Sys(#[from] nix::Error),
    #[error("sync channel: peer exited")]
    Eof,
    #[error("sync channel: bad message: {0}")]
    Bad(String),
}

pub struct Channel {
    fd: OwnedFd,
    /// Packets read since the watched process exited (recv_packet_while).
    read_after_exit: std::cell::Cell<u32>,
}

/// See [`Channel::recv_packet_while`]: more than the process's own last
/// messages (at most two), fewer than a flood.
pub const WHILE_EXITED: u32 = 16;

/// A message as the parent receives it, with the pid of the process that
/// sent it (None: the kernel named none, so it is nobody's). `msg` is Err
/// for a packet that does not parse: an error only from a known sender.
pub struct Packet {
    pub msg: Result<Msg, SyncError>,
    pub fd: Option<OwnedFd>,
    pub sender: Option<Pid>,
}

/// The channel: (the parent's end, the child's end). The parent's end
/// learns every sender's pid (see the module comment); that is set before
/// any child exists, so no packet comes without one.
pub fn pair() -> Result<(Channel, Channel), SyncError> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    setsockopt(&a, sockopt::PassCred, &true)?;
    let chan = |fd| Channel {
        fd,
        read_after_exit: Default::default(),
    };
    Ok((chan(a), chan(b)))
}

/// Logs a packet from a process the parent does not expect. It is dropped
/// (with its fd) and its sender left alone: the sender's pid is the only
/// true thing about it, and all the log names.
pub fn refuse(p: &Packet) {
    let who = p
        .sender
        .map_or("an unknown process".to_string(), |s| format!("pid {s}"));
    let kind = match &p.msg {
        Ok(Msg::ChildPid(_)) => "ChildPid",
        Ok(Msg::Error(_)) => "Error",
        Ok(Msg::SeccompFd) => "SeccompFd",
        Ok(_) => "a message",
        Err(_) => "a garbled message",
    };
    crate::log::warn(&format!(
        "sync channel: ignored {kind} from {who}, not the process expected"
    ));
}

impl std::os::fd::AsFd for Channel {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Channel {
    pub fn send(&self, msg: &Msg) -> Result<(), SyncError> {
        let data = encode(msg);
        loop {
            match send(self.fd.as_raw_fd(), &data, MsgFlags::MSG_NOSIGNAL) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EPIPE) | Err(nix::errno::Errno::ECONNRESET) => {
                    return Err(SyncError::Eof);
                }
                other => return other.map(|_| ()).map_err(SyncError::Sys),
            }
        }
    }

    /// Sends an [`encode`]d message with `fd` attached: one sendmsg(2),
    /// no allocation (see the module comment).
    pub fn send_encoded_with_fd(&self, data: &[u8], fd: &impl AsFd) -> Result<(), SyncError> {
        match crate::sys::send_with_fd(&self.fd, data, fd) {
            Err(nix::errno::Errno::EPIPE) | Err(nix::errno::Errno::ECONNRESET) => {
                Err(SyncError::Eof)
            }
            other => other.map(|_| ()).map_err(SyncError::Sys),
        }
    }

    /// The next message; an fd that came with it is closed.
    pub fn recv(&self) -> Result<Msg, SyncError> {
        self.recv_with_fd().map(|(m, _)| m)
    }

    /// The next message and the fd sent with it, if any.
    pub fn recv_with_fd(&self) -> Result<(Msg, Option<OwnedFd>), SyncError> {
        let p = self.recv_packet()?;
        Ok((p.msg?, p.fd))
    }

    /// The next packet with its sender (the parent's end: see [`pair`]).
    pub fn recv_packet(&self) -> Result<Packet, SyncError> {
        let mut buf = vec![0u8; 64 * 1024];
        let (n, mut fds, sender) = match crate::sys::recv_with_fds(&self.fd, &mut buf) {
            Err(nix::errno::Errno::ECONNRESET) => return Err(SyncError::Eof),
            other => other?,
        };
        if n == 0 {
            return Err(SyncError::Eof);
        }
        Ok(Packet {
            msg: serde_json::from_slice(&buf[..n]).map_err(|e| SyncError::Bad(e.to_string())),
            fd: fds.pop(),
            sender: sender.filter(|&p| p > 0).map(Pid::from_raw),
        })
    }

    /// The next packet, or end-of-file once the process behind `pidfd`
    /// has exited, as if its end had closed: whoever else holds that end
    /// cannot keep the parent waiting past the process. What the process
    /// sent before it exited is queued already, so it is read first; but
    /// only [`WHILE_EXITED`] more packets, so a thief's flood cannot either.
    pub fn recv_packet_while(&self, pidfd: Option<&OwnedFd>) -> Result<Packet, SyncError> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let Some(pidfd) = pidfd else {
            return self.recv_packet();
        };
        let mut fds = [
            PollFd::new(self.fd.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        loop {
            match poll(&mut fds, PollTimeout::NONE) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
                Ok(_) => break,
            }
        }
        let exited = fds[1].any().unwrap_or(true);
        if exited {
            let n = self.read_after_exit.get();
            if n >= WHILE_EXITED {
                return Err(SyncError::Eof);
            }
            self.read_after_exit.set(n + 1);
        }
        if fds[0].any().unwrap_or(true) {
            return self.recv_packet();
        }
        Err(SyncError::Eof)
    }

    /// The parent's receive: the next message sent by `from`. Any other
    /// sender's is refused ([`refuse`]) and the wait goes on, until `from`
    /// exits (see [`Channel::recv_packet_while`]) when `pidfd` is its.
    pub fn recv_from(
        &self,
        from: Pid,
        pidfd: Option<&OwnedFd>,
    ) -> Result<(Msg, Option<OwnedFd>), SyncError> {
        loop {
            let p = self.recv_packet_while(pidfd)?;
            if p.sender == Some(from) {
                return Ok((p.msg?, p.fd));
            }
            refuse(&p);
        }
    }

    /// [`Channel::expect`] for the parent: only `from` counts.
    pub fn expect_from(&self, from: Pid, want: Msg) -> Result<(), String> {
        match self.recv_from(from, None) {
            Ok((m, _)) if m == want => Ok(()),
            Ok((Msg::Error(e), _)) => Err(e),
            Ok((other, _)) => Err(format!("expected {want:?}, got {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Waits for `want`; a child's Error becomes Err with its text.
    pub fn expect(&self, want: Msg) -> Result<(), String> {
        match self.recv() {
            Ok(m) if m == want => Ok(()),
            Ok(Msg::Error(e)) => Err(e),
            Ok(other) => Err(format!("expected {want:?}, got {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_fd_travels_with_its_message() {
        let (a, b) = pair().unwrap();
        let file = std::fs::File::open("/proc/self/exe").unwrap();
        a.send_encoded_with_fd(&encode(&Msg::SeccompFd), &file)
            .unwrap();
        a.send(&Msg::SeccompDone).unwrap();
        let (m, fd) = b.recv_with_fd().unwrap();
        assert_eq!(m, Msg::SeccompFd);
        let fd = fd.expect("the fd came along");
        let got = std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        let want = file.metadata().unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!((got.dev(), got.ino()), (want.dev(), want.ino()));
        let flags = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_ne!(
            flags & libc::FD_CLOEXEC,
            0,
            "received fds are close-on-exec"
        );
        let (m, fd) = b.recv_with_fd().unwrap();
        assert_eq!((m, fd.is_none()), (Msg::SeccompDone, true));
        drop(a);
        assert!(matches!(b.recv(), Err(SyncError::Eof)));
    }

    /// Sends `data` on `chan` from a forked process (only async-signal-safe
    /// calls after the fork: the test harness has threads) and returns its
    /// pid once it has exited.
    fn send_from_another_process(chan: &Channel, data: &[u8]) -> Pid {
        // SAFETY: the child only calls send(2) and _exit(2).
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                // SAFETY: the buffer and the fd outlive the call.
                unsafe {
                    libc::send(chan.fd.as_raw_fd(), data.as_ptr().cast(), data.len(), 0);
                    libc::_exit(0)
                }
            }
            nix::unistd::ForkResult::Parent { child } => {
                nix::sys::wait::waitpid(child, None).unwrap();
                child
            }
        }
    }

    #[test]
    fn a_message_from_an_unexpected_sender_is_refused() {
        let (parent, child) = pair().unwrap();
        let me = nix::unistd::getpid();
        // A forger holding the child's end names some pid...
        let forger = send_from_another_process(&child, &encode(&Msg::ChildPid(1)));
        // ... but the kernel names the forger as the sender,
        let p = parent.recv_packet().unwrap();
        assert_eq!((p.msg.unwrap(), p.sender), (Msg::ChildPid(1), Some(forger)));
        // so a parent that waits for `me` never sees the forgery.
        let forger = send_from_another_process(&child, &encode(&Msg::Error("forged".into())));
        let garbled = send_from_another_process(&child, b"not json");
        assert_ne!(forger, me);
        assert_ne!(garbled, me);
        child.send(&Msg::Ready).unwrap();
        assert_eq!(parent.expect_from(me, Msg::Ready), Ok(()));
        // Its end closed, nothing else waits: end-of-file, not a hang.
        drop(child);
        assert!(matches!(parent.recv_from(me, None), Err(SyncError::Eof)));
    }
}
