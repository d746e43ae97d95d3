//! The one channel between rrun (parent) and the processes it clones: a
//! SOCK_SEQPACKET socketpair, one JSON message per packet. Both ends are
//! O_CLOEXEC, and each side closes the other's end right after clone, so a
//! peer that dies reads as end-of-file, never as a hang.
//!
//! | step | sender       | message             | meaning                                   |
//! |------|--------------|---------------------|-------------------------------------------|
//! | 1    | intermediate | MapRequest          | unshared a user ns: write my id maps      |
//! | 2    | parent       | MapsWritten         | maps written; go on                       |
//! | 3    | intermediate | ChildPid(pid)       | forked the container init; I exit now     |
//! | m    | parent       | MountFd(i) + fd     | the id-mapped mount for mounts[i]         |
//! | 4    | parent       | Go                  | init is in its cgroups (and id-mapped)    |
//! | 5    | init         | CreateRuntimeHooks  | mounts done: run prestart/createRuntime   |
//! | 6    | parent       | HooksDone           | they passed; go on to pivot_root          |
//! | 7    | init         | Ready               | blocked before exec, waiting for `start`  |
//! | s1   | init/process | SeccompFd + fd      | loaded the notify filter: its listener    |
//! | s2   | parent       | SeccompDone         | sent to linux.seccomp.listenerPath; go on |
//! | any  | child        | Error(msg)          | failed; the parent cleans up              |
//!
//! Steps 1-3 exist only when an intermediate process is needed (joined
//! namespaces, time namespace); 5-6 only when those hooks exist; s1-s2 only
//! with SCMP_ACT_NOTIFY in the profile, during step h of create (before 7)
//! or in an exec'd process (exec.rs), where s1 may even come before the
//! helper's ChildPid. s1 is the only message with an fd (SCM_RIGHTS); it
//! is sent with [`Channel::send_encoded_with_fd`] right after the filter is
//! loaded, one sendmsg(2) and no other syscall, since nobody can answer a
//! notification before the agent has the listener.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, send, socketpair};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub enum Msg {
    MapRequest,
    MapsWritten,
    ChildPid(i32),
    MountFd(usize),
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
}

pub fn pair() -> Result<(Channel, Channel), SyncError> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((Channel { fd: a }, Channel { fd: b }))
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
        let mut buf = vec![0u8; 64 * 1024];
        let (n, mut fds) = match crate::sys::recv_with_fds(&self.fd, &mut buf) {
            Err(nix::errno::Errno::ECONNRESET) => return Err(SyncError::Eof),
            other => other?,
        };
        if n == 0 {
            return Err(SyncError::Eof);
        }
        let msg = serde_json::from_slice(&buf[..n]).map_err(|e| SyncError::Bad(e.to_string()))?;
        Ok((msg, fds.pop()))
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
}
