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
//! | 4    | parent       | Go                  | init is in its cgroups (and id-mapped)    |
//! | 5    | init         | CreateRuntimeHooks  | mounts done: run prestart/createRuntime   |
//! | 6    | parent       | HooksDone           | they passed; go on to pivot_root          |
//! | 7    | init         | Ready               | blocked before exec, waiting for `start`  |
//! | any  | child        | Error(msg)          | failed; the parent cleans up              |
//!
//! Steps 1-3 exist only when an intermediate process is needed (joined
//! namespaces, time namespace); 5-6 only when those hooks exist.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, recv, send, socketpair};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub enum Msg {
    MapRequest,
    MapsWritten,
    ChildPid(i32),
    Go,
    CreateRuntimeHooks,
    HooksDone,
    Ready,
    Error(String),
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

impl Channel {
    pub fn send(&self, msg: &Msg) -> Result<(), SyncError> {
        let data = serde_json::to_vec(msg).expect("sync messages serialise: plain enum");
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

    pub fn recv(&self) -> Result<Msg, SyncError> {
        let mut buf = vec![0u8; 64 * 1024];
        let n = loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::ECONNRESET) => return Err(SyncError::Eof),
                other => break other?,
            }
        };
        if n == 0 {
            return Err(SyncError::Eof);
        }
        serde_json::from_slice(&buf[..n]).map_err(|e| SyncError::Bad(e.to_string()))
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
