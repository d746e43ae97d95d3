//! The system calls rrun-monitor makes beyond those it shares with
//! rrun-init (../sys.rs), each behind a small safe wrapper. Kept apart so
//! that rrun-init's source, and so its binary, does not change.

use alloc::ffi::CString;
use alloc::vec::Vec;

use linux_raw_sys::general as k;
use syscalls::{Errno, Sysno, syscall};

fn cstring(s: &str) -> Result<CString, Errno> {
    CString::new(s).map_err(|_| Errno::EINVAL)
}

pub fn getpid() -> i32 {
    // SAFETY: no arguments.
    unsafe { syscall!(Sysno::getpid) }.unwrap_or(0) as i32
}

/// open(2) relative to the cwd; every fd is close-on-exec.
pub fn open(path: &str, flags: u32, mode: u32) -> Result<i32, Errno> {
    let c = cstring(path)?;
    // SAFETY: a NUL-terminated path that outlives the call.
    unsafe {
        syscall!(
            Sysno::openat,
            k::AT_FDCWD,
            c.as_ptr(),
            flags | k::O_CLOEXEC,
            mode
        )
    }
    .map(|fd| fd as i32)
}

/// Reads what is there (one read(2)); Ok(0) at end of file.
pub fn read(fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        // SAFETY: read(2) writes at most `buf.len()` bytes into a live slice.
        match unsafe { syscall!(Sysno::read, fd, buf.as_mut_ptr(), buf.len()) } {
            Err(Errno::EINTR) => {}
            r => return r,
        }
    }
}

/// A pipe, both ends close-on-exec: (read, write).
pub fn pipe() -> Result<(i32, i32), Errno> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two ints into a live local array.
    unsafe { syscall!(Sysno::pipe2, fds.as_mut_ptr(), k::O_CLOEXEC) }?;
    Ok((fds[0], fds[1]))
}

/// A SOCK_SEQPACKET unix socketpair, both ends close-on-exec. The
/// monitor never reads it: the helper leaves the container init's status
/// directory fd in flight on it (SCM_RIGHTS), which keeps that tmpfs
/// readable after the container is gone, for the next helper to receive.
pub fn socketpair() -> Result<(i32, i32), Errno> {
    // <linux/socket.h>, <linux/net.h>: not among the enabled headers.
    const AF_UNIX: u32 = 1;
    const SOCK_SEQPACKET: u32 = 5;
    let mut fds = [0i32; 2];
    // SAFETY: socketpair writes two ints into a live local array.
    unsafe {
        syscall!(
            Sysno::socketpair,
            AF_UNIX,
            SOCK_SEQPACKET | k::O_CLOEXEC,
            0,
            fds.as_mut_ptr()
        )
    }?;
    Ok((fds[0], fds[1]))
}

pub fn set_nonblocking(fd: i32) -> Result<(), Errno> {
    // SAFETY: F_GETFL/F_SETFL only read and set one fd's status flags.
    let fl = unsafe { syscall!(Sysno::fcntl, fd, k::F_GETFL) }?;
    // SAFETY: as above.
    unsafe { syscall!(Sysno::fcntl, fd, k::F_SETFL, fl | k::O_NONBLOCK as usize) }.map(|_| ())
}

/// A close-on-exec copy of `fd` at `min` or above.
pub fn dup_cloexec(fd: i32, min: i32) -> Result<i32, Errno> {
    // SAFETY: F_DUPFD_CLOEXEC creates a new fd; no memory is involved.
    unsafe { syscall!(Sysno::fcntl, fd, k::F_DUPFD_CLOEXEC, min) }.map(|fd| fd as i32)
}

/// Puts `fd` at `target` without close-on-exec (the child's stdio).
pub fn dup_to(fd: i32, target: i32) -> Result<(), Errno> {
    if fd == target {
        // dup3 refuses equal fds: clear the flag instead.
        // SAFETY: F_SETFD only sets one fd's flags.
        return unsafe { syscall!(Sysno::fcntl, fd, k::F_SETFD, 0) }.map(|_| ());
    }
    // SAFETY: dup3 replaces `target` by a copy of `fd`; no memory involved.
    unsafe { syscall!(Sysno::dup3, fd, target, 0) }.map(|_| ())
}

/// PR_SET_CHILD_SUBREAPER: orphans below us (the container's init, once
/// the helper that created it exits) become our children.
pub fn set_child_subreaper() -> Result<(), Errno> {
    // SAFETY: integer arguments only.
    unsafe {
        syscall!(
            Sysno::prctl,
            linux_raw_sys::prctl::PR_SET_CHILD_SUBREAPER,
            1usize,
            0usize,
            0usize,
            0usize
        )
    }
    .map(|_| ())
}

/// The kernel's struct sigaction on x86_64, with the handler as an integer
/// (SIG_IGN is 1, not a function).
#[repr(C)]
struct RawSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// SIG_IGN for `sig`.
pub fn ignore_signal(sig: u32) -> Result<(), Errno> {
    let act = RawSigaction {
        handler: 1,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: installs SIG_IGN (no handler code); the kernel reads the
    // struct from a live local and writes no old action.
    unsafe {
        syscall!(
            Sysno::rt_sigaction,
            sig,
            &act as *const RawSigaction,
            0usize,
            8usize
        )
    }
    .map(|_| ())
}

/// Blocks `sig` and returns a non-blocking signalfd that reads it.
pub fn signalfd(sig: u32) -> Result<i32, Errno> {
    let mask: u64 = 1 << (sig - 1);
    // SAFETY: rt_sigprocmask reads one 8-byte mask from a live local.
    unsafe {
        syscall!(
            Sysno::rt_sigprocmask,
            k::SIG_BLOCK,
            &mask as *const u64,
            0usize,
            8usize
        )
    }?;
    // SAFETY: signalfd4 reads one 8-byte mask from a live local.
    unsafe {
        syscall!(
            Sysno::signalfd4,
            -1i32,
            &mask as *const u64,
            8usize,
            k::O_NONBLOCK | k::O_CLOEXEC
        )
    }
    .map(|fd| fd as i32)
}

/// poll(2) on `fds` (fd, events, revents) forever.
pub fn poll(fds: &mut [k::pollfd]) -> Result<usize, Errno> {
    // SAFETY: the kernel reads and writes `fds.len()` pollfd structs in a
    // live slice.
    match unsafe { syscall!(Sysno::poll, fds.as_mut_ptr(), fds.len(), -1i32) } {
        Err(Errno::EINTR) => Ok(0),
        r => r,
    }
}

pub fn rename(from: &str, to: &str) -> Result<(), Errno> {
    let (a, b) = (cstring(from)?, cstring(to)?);
    // SAFETY: two NUL-terminated paths that outlive the call.
    unsafe { syscall!(Sysno::rename, a.as_ptr(), b.as_ptr()) }.map(|_| ())
}

pub fn ftruncate(fd: i32) -> Result<(), Errno> {
    // SAFETY: integer arguments only.
    unsafe { syscall!(Sysno::ftruncate, fd, 0usize) }.map(|_| ())
}

/// The size of an open file.
pub fn file_size(fd: i32) -> Result<u64, Errno> {
    // SAFETY: statx writes one struct statx into a live, zeroed local.
    let mut st: k::statx = unsafe { core::mem::zeroed() };
    // SAFETY: an empty NUL-terminated path with AT_EMPTY_PATH names `fd`.
    unsafe {
        syscall!(
            Sysno::statx,
            fd,
            c"".as_ptr(),
            k::AT_EMPTY_PATH,
            k::STATX_SIZE,
            &mut st as *mut k::statx
        )
    }?;
    Ok(st.stx_size)
}

/// Wall-clock time since the epoch: (seconds, nanoseconds).
pub fn realtime() -> (u64, u32) {
    let mut ts = k::__kernel_timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into a live local.
    let _ = unsafe {
        syscall!(
            Sysno::clock_gettime,
            k::CLOCK_REALTIME,
            &mut ts as *mut k::__kernel_timespec
        )
    };
    (
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// Reads a whole (small) file.
pub fn read_file(path: &str) -> Result<Vec<u8>, Errno> {
    let fd = open(path, k::O_RDONLY, 0)?;
    let r = crate::sys::read_to_end(fd);
    crate::sys::close(fd);
    r
}

/// Closes every fd from `first` up (what a careless starter leaked to us:
/// a caller's pipe held here would never see its end of file).
pub fn close_from(first: u32) {
    // SAFETY: closes fds this process owns and has not opened yet itself
    // (called first thing in main); no memory involved.
    let _ = unsafe { syscall!(Sysno::close_range, first, u32::MAX, 0u32) };
}

/// An errno as people read it: "No such file or directory (ENOENT)".
pub fn why(e: Errno) -> alloc::string::String {
    match (e.description(), e.name()) {
        (Some(d), Some(n)) => alloc::format!("{d} ({n})"),
        _ => alloc::format!("errno {}", e.into_raw()),
    }
}
