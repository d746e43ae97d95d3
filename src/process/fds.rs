//! What a process that enters a container may hold, decided in one place.
//!
//! A process is reachable from the container as soon as it is in the
//! container's pid namespace (or shares one the container can see): a
//! container process with CAP_SYS_PTRACE opens its /proc/<pid>/{fd,cwd,root}
//! or takes its fds with pidfd_getfd, non-dumpable or not. So before rrun's
//! child gets there (the init at once: it is born into the pid namespace,
//! or forked into a joined one by the intermediate, which calls this first;
//! exec's helper before setns) it calls [`enter`], which closes every fd
//! but:
//!
//! - 0, 1, 2 (the caller's stdio, passed on as runc does);
//! - the fds among 3..3+N (--preserve-fds plus LISTEN_FDS) that the caller
//!   really passed: those open and not close-on-exec. Every fd rrun opens
//!   is close-on-exec, so one that is not came through the execve of rrun;
//!   a number the caller left closed stays closed (or is filled later by a
//!   close-on-exec fd that the execve closes), never one of rrun's;
//! - the few rrun still needs (`keep`): the sync channel, the exec socket's
//!   listener, the console socket, the built-in init's memfd, exec's pidfd,
//!   the namespace files the intermediate joins. None is a path: sockets,
//!   memfds and namespace files lead nowhere on the host's disk; each is
//!   closed as soon as it has served (the channel at Ready, the console
//!   socket once the pty master went through it, the namespace files once
//!   joined, the pidfd after setns).
//!
//! The --log file is closed too (later lines of the child go to stderr).
//! Nothing here ever clears close-on-exec: whatever the caller passed is
//! already inheritable, and whatever rrun keeps dies at the execve.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use crate::sys;

/// Closes everything but stdio, the caller's fds among 3..3+`preserve`,
/// and `keep`. Only in a child of rrun that never returns into the code
/// owning the closed fds (see `sys::close_in_child`).
pub fn enter(preserve: u32, keep: &[BorrowedFd]) -> Result<(), nix::errno::Errno> {
    crate::log::close_file();
    let keep: Vec<RawFd> = keep.iter().map(|f| f.as_raw_fd()).collect();
    let end = 3u32.saturating_add(preserve).min(fd_limit());
    for fd in 3..end as RawFd {
        if sys::fd_cloexec(fd) == Some(true) && !keep.contains(&fd) {
            sys::close_in_child(fd);
        }
    }
    sys::close_from_except(end, &keep)
}

/// Checks a count of fds to pass on (3..3+`n`) before any side effect:
/// no fd can exist at or above the hard RLIMIT_NOFILE, so a larger count
/// is a mistake, and one that would overflow the fd numbers.
pub fn check_count(what: &str, n: u32) -> Result<(), String> {
    let limit = fd_limit();
    if n > limit.saturating_sub(3) {
        return Err(format!(
            "{what} {n}: more fds than a process may have (the open-file limit is {limit})"
        ));
    }
    Ok(())
}

/// No fd number reaches the hard RLIMIT_NOFILE (itself at most
/// fs.nr_open): a huge --preserve-fds costs no more checks than the
/// process can have fds.
fn fd_limit() -> u32 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(_, hard)| hard.min(u32::MAX as u64) as u32)
        .unwrap_or(u32::MAX)
}
