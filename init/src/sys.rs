//! Every system call the init makes, each behind a small safe wrapper
//! (raw syscalls through the `syscalls` crate, kernel ABI types and
//! constants from `linux-raw-sys`). All `unsafe` of the init outside rt.rs
//! lives here, with the reason it is sound.

use alloc::ffi::CString;
use alloc::vec::Vec;
use core::time::Duration;

use linux_raw_sys::general as k;
use linux_raw_sys::prctl as pr;
pub use syscalls::Errno;
use syscalls::{Sysno, syscall};

pub type Pid = i32;

pub fn write_all(fd: i32, mut buf: &[u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        // SAFETY: write(2) reads `buf.len()` bytes from a live slice.
        match unsafe { syscall!(Sysno::write, fd, buf.as_ptr(), buf.len()) } {
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads an fd to its end.
pub fn read_to_end(fd: i32) -> Result<Vec<u8>, Errno> {
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // SAFETY: read(2) writes at most `chunk.len()` bytes into the
        // local buffer.
        match unsafe { syscall!(Sysno::read, fd, chunk.as_mut_ptr(), chunk.len()) } {
            Ok(0) => return Ok(data),
            Ok(n) => data.extend_from_slice(&chunk[..n]),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
}

pub fn close(fd: i32) {
    // SAFETY: closing an fd this process owns and no longer uses.
    let _ = unsafe { syscall!(Sysno::close, fd) };
}

/// exit_group: the whole process ends here.
pub fn exit(code: i32) -> ! {
    // SAFETY: exit_group has no preconditions and does not return.
    let _ = unsafe { syscall!(Sysno::exit_group, code) };
    unreachable!("exit_group returned")
}

/// fork(2). Sound without libc's care: this process has one thread, no
/// locks held across the call and no buffered stdio, so the child's copy
/// of memory is consistent.
pub fn fork() -> Result<Option<Pid>, Errno> {
    // SAFETY: see above; the child returns Ok(None) and only execs or exits.
    match unsafe { syscall!(Sysno::fork) }? {
        0 => Ok(None),
        pid => Ok(Some(pid as Pid)),
    }
}

/// kill(2) with the raw pid semantics: -1 is every process we may signal
/// (in the container's pid namespace, everything but us), -pgid a group.
pub fn kill(pid: Pid, sig: i32) -> Result<(), Errno> {
    // SAFETY: integer arguments only.
    unsafe { syscall!(Sysno::kill, pid, sig) }.map(|_| ())
}

/// kill(-1, sig): every process of the pid namespace but ourselves, and
/// only as its PID 1. Anywhere else -1 reaches every process our
/// credentials may signal, outside the container too (rrun refuses the
/// built-in init without a pid namespace of its own; this holds even if
/// that check is ever bypassed), so nothing is sent: ESRCH.
pub fn kill_namespace(sig: i32) -> Result<(), Errno> {
    // SAFETY: no arguments.
    let me = unsafe { syscall!(Sysno::getpid) }?;
    if me != 1 {
        return Err(Errno::ESRCH);
    }
    kill(-1, sig)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    Exited(Pid, i32),
    Signaled(Pid, i32),
    /// A child changed state in another way (stopped, continued).
    Other,
    /// Children exist, none has exited (WNOHANG).
    None,
}

/// waitpid(-1, WNOHANG or blocking). ECHILD when there are no children.
pub fn wait_any(block: bool) -> Result<Wait, Errno> {
    let mut status: i32 = 0;
    let flags = if block { 0 } else { k::WNOHANG };
    // SAFETY: wait4 writes one int to `status`, a live local; no rusage.
    let pid =
        unsafe { syscall!(Sysno::wait4, -1i32, &mut status as *mut i32, flags, 0usize) }? as Pid;
    if pid == 0 {
        return Ok(Wait::None);
    }
    // The wait status encoding of <sys/wait.h>.
    Ok(if status & 0x7f == 0 {
        Wait::Exited(pid, (status >> 8) & 0xff)
    } else if ((status & 0x7f) + 1) as i8 >> 1 > 0 {
        Wait::Signaled(pid, status & 0x7f)
    } else {
        Wait::Other
    })
}

/// A set of signals 1..=64 as the kernel's 64-bit mask.
#[derive(Clone, Copy)]
pub struct SigSet(u64);

impl SigSet {
    /// Every signal that can be blocked (not SIGKILL, SIGSTOP).
    pub fn all_catchable() -> Self {
        SigSet(!(1 << (k::SIGKILL - 1) | 1 << (k::SIGSTOP - 1)))
    }
    pub fn empty() -> Self {
        SigSet(0)
    }
}

/// Replaces the signal mask.
pub fn set_sigmask(set: SigSet) -> Result<(), Errno> {
    // SAFETY: rt_sigprocmask reads one 8-byte mask from a live local.
    unsafe {
        syscall!(
            Sysno::rt_sigprocmask,
            k::SIG_SETMASK,
            &set.0 as *const u64,
            0usize,
            8usize
        )
    }
    .map(|_| ())
}

/// Waits for one of `set` (which must be blocked) for at most `timeout`
/// (None: forever). Ok(None) when the time ran out.
pub fn wait_signal(set: SigSet, timeout: Option<Duration>) -> Result<Option<i32>, Errno> {
    let ts = timeout.map(|t| k::__kernel_timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: t.subsec_nanos() as i64,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(core::ptr::null(), |t| t as *const k::__kernel_timespec);
    // siginfo_t is 128 bytes; only the return value (the signal) is used.
    let mut info = [0u64; 16];
    // SAFETY: the kernel reads the mask and the optional timespec from
    // live locals and writes at most 128 bytes into `info`.
    match unsafe {
        syscall!(
            Sysno::rt_sigtimedwait,
            &set.0 as *const u64,
            info.as_mut_ptr(),
            ts_ptr,
            8usize
        )
    } {
        Ok(sig) => Ok(Some(sig as i32)),
        Err(Errno::EAGAIN) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every signal back to its default action, as a freshly exec'd program
/// expects (ignored signals would survive exec).
pub fn reset_signal_dispositions() {
    let dfl = k::kernel_sigaction {
        sa_handler_kernel: None,
        sa_flags: 0,
        sa_restorer: None,
        sa_mask: k::kernel_sigset_t { sig: [0] },
    };
    for sig in 1..=64u32 {
        if sig == k::SIGKILL || sig == k::SIGSTOP {
            continue;
        }
        // SAFETY: installs SIG_DFL (no handler code); the kernel reads the
        // struct from a live local and writes no old action.
        let _ = unsafe {
            syscall!(
                Sysno::rt_sigaction,
                sig,
                &dfl as *const k::kernel_sigaction,
                0usize,
                8usize
            )
        };
    }
}

fn clock(id: u32) -> Duration {
    let mut ts = k::__kernel_timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into a live local.
    let _ = unsafe {
        syscall!(
            Sysno::clock_gettime,
            id,
            &mut ts as *mut k::__kernel_timespec
        )
    };
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// A monotonic clock (does not jump with the wall clock).
pub fn monotonic() -> Duration {
    clock(k::CLOCK_MONOTONIC)
}

/// Wall-clock time since the Unix epoch, in milliseconds.
pub fn now_ms() -> u64 {
    clock(k::CLOCK_REALTIME).as_millis() as u64
}

pub fn sleep(d: Duration) {
    let ts = k::__kernel_timespec {
        tv_sec: d.as_secs() as i64,
        tv_nsec: d.subsec_nanos() as i64,
    };
    // SAFETY: nanosleep reads one timespec from a live local.
    let _ = unsafe { syscall!(Sysno::nanosleep, &ts as *const k::__kernel_timespec, 0usize) };
}

fn prctl(op: u32, a: usize, b: usize) -> Result<usize, Errno> {
    // SAFETY: every prctl used here takes integer arguments only.
    unsafe { syscall!(Sysno::prctl, op, a, b, 0usize, 0usize) }
}

/// PR_SET_DUMPABLE 0: nothing in the container without CAP_SYS_PTRACE may
/// ptrace PID 1 or open its /proc/1/{fd,cwd,root,environ,mem}.
pub fn set_non_dumpable() -> Result<(), Errno> {
    prctl(pr::PR_SET_DUMPABLE, 0, 0).map(|_| ())
}

pub fn setsid() -> Result<(), Errno> {
    // SAFETY: no arguments.
    unsafe { syscall!(Sysno::setsid) }.map(|_| ())
}

/// TIOCSCTTY on stdin: the terminal becomes our controlling terminal.
pub fn set_controlling_tty() -> Result<(), Errno> {
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal).
    unsafe { syscall!(Sysno::ioctl, 0, linux_raw_sys::ioctl::TIOCSCTTY, 0) }.map(|_| ())
}

pub fn chdir(path: &str) -> Result<(), Errno> {
    let c = cstring(path)?;
    // SAFETY: a NUL-terminated path that outlives the call.
    unsafe { syscall!(Sysno::chdir, c.as_ptr()) }.map(|_| ())
}

/// Marks every fd >= `first` close-on-exec (nothing of ours reaches the
/// program).
pub fn cloexec_from(first: u32) -> Result<(), Errno> {
    // <linux/close_range.h>, not among linux-raw-sys's headers.
    const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;
    // SAFETY: with CLOSE_RANGE_CLOEXEC only fd flags change; nothing is
    // closed under anyone's feet.
    match unsafe { syscall!(Sysno::close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) } {
        Ok(_) => Ok(()),
        // The init runs under the program's seccomp profile, and
        // close_range is newer than many: mark each fd with fcntl, up to
        // the soft RLIMIT_NOFILE (fds at or above it cannot exist).
        Err(_) => {
            let limit = nofile_limit().unwrap_or(1 << 20);
            for fd in first..limit.min(1 << 20) as u32 {
                // SAFETY: F_GETFD/F_SETFD only read and set one fd's flags;
                // a closed number answers EBADF.
                if let Ok(flags) = unsafe { syscall!(Sysno::fcntl, fd, k::F_GETFD) } {
                    let _ = unsafe {
                        syscall!(Sysno::fcntl, fd, k::F_SETFD, flags | k::FD_CLOEXEC as usize)
                    };
                }
            }
            Ok(())
        }
    }
}

/// The soft RLIMIT_NOFILE, if the profile lets us ask.
fn nofile_limit() -> Option<u64> {
    // SAFETY: prlimit64 on ourselves (pid 0) writes one rlimit64 into a
    // live, zeroed local and sets nothing (new limit NULL).
    let mut old: k::rlimit64 = unsafe { core::mem::zeroed() };
    unsafe {
        syscall!(
            Sysno::prlimit64,
            0,
            k::RLIMIT_NOFILE,
            core::ptr::null::<k::rlimit64>(),
            &mut old as *mut k::rlimit64
        )
    }
    .ok()
    .map(|_| old.rlim_cur)
}

/// Whether `path` is a regular file (following symlinks).
pub fn is_file(path: &str) -> bool {
    let Ok(c) = cstring(path) else {
        return false;
    };
    // SAFETY: statx writes one struct statx into a live, zeroed local.
    let mut st: k::statx = unsafe { core::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a live out-struct.
    let r = unsafe {
        syscall!(
            Sysno::statx,
            k::AT_FDCWD,
            c.as_ptr(),
            0,
            k::STATX_TYPE,
            &mut st as *mut k::statx
        )
    };
    r.is_ok() && (st.stx_mode as u32 & k::S_IFMT) == k::S_IFREG
}

fn cstring(s: &str) -> Result<CString, Errno> {
    CString::new(s).map_err(|_| Errno::EINVAL)
}

/// open(2) of `path` (never through a final symlink); `cloexec` false
/// only for an fd a child keeps across its exec (a health check's
/// output file as its stdout/stderr).
pub fn open(path: &str, flags: u32, mode: u32, cloexec: bool) -> Result<i32, Errno> {
    let c = cstring(path)?;
    let flags = flags | k::O_NOFOLLOW | if cloexec { k::O_CLOEXEC } else { 0 };
    // SAFETY: a NUL-terminated path; the fd returned is the caller's.
    unsafe { syscall!(Sysno::openat, k::AT_FDCWD, c.as_ptr(), flags, mode) }.map(|fd| fd as i32)
}

/// At most `max` bytes from the start of `fd` (one read, non-blocking
/// opens make it return at once on anything but a regular file).
pub fn read_some(fd: i32, max: usize) -> Vec<u8> {
    let mut buf = alloc::vec![0u8; max];
    // SAFETY: read(2) writes at most `max` bytes into a live buffer.
    let n = unsafe { syscall!(Sysno::read, fd, buf.as_mut_ptr(), max) }.unwrap_or(0);
    buf.truncate(n);
    buf
}

/// Writes `data` to `path` atomically (a temporary file renamed over it),
/// so a reader never sees half a status.
pub fn write_file_atomic(path: &str, tmp: &str, data: &[u8]) -> Result<(), Errno> {
    let ctmp = cstring(tmp)?;
    let cpath = cstring(path)?;
    let flags = k::O_WRONLY | k::O_CREAT | k::O_TRUNC | k::O_CLOEXEC | k::O_NOFOLLOW;
    // SAFETY: a NUL-terminated path; the fd returned is ours to close.
    let fd = unsafe { syscall!(Sysno::openat, k::AT_FDCWD, ctmp.as_ptr(), flags, 0o644) }? as i32;
    let written = write_all(fd, data);
    close(fd);
    // SAFETY: two NUL-terminated paths that outlive the call.
    let r = written.and_then(|_| {
        unsafe { syscall!(Sysno::rename, ctmp.as_ptr(), cpath.as_ptr()) }.map(|_| ())
    });
    if r.is_err() {
        // SAFETY: a NUL-terminated path.
        let _ = unsafe { syscall!(Sysno::unlink, ctmp.as_ptr()) };
    }
    r
}

/// execve(2); returns only on failure.
pub fn execve(path: &str, args: &[alloc::string::String], env: &[alloc::string::String]) -> Errno {
    let Ok(cpath) = cstring(path) else {
        return Errno::EINVAL;
    };
    let to_c = |v: &[alloc::string::String]| -> Vec<CString> {
        v.iter()
            .filter_map(|a| CString::new(a.as_str()).ok())
            .collect()
    };
    let cargs = to_c(args);
    let cenv = to_c(env);
    let ptrs = |v: &[CString]| -> Vec<*const core::ffi::c_char> {
        v.iter()
            .map(|c| c.as_ptr())
            .chain(core::iter::once(core::ptr::null()))
            .collect()
    };
    let argv = ptrs(&cargs);
    let envp = ptrs(&cenv);
    // SAFETY: NULL-terminated arrays of pointers to NUL-terminated strings,
    // all alive (cargs/cenv) for the duration of the call.
    match unsafe { syscall!(Sysno::execve, cpath.as_ptr(), argv.as_ptr(), envp.as_ptr()) } {
        Ok(_) => Errno::EINVAL,
        Err(e) => e,
    }
}
