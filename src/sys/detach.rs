//! Starting a long-lived process detached from its caller (the per-app
//! monitor of `rrun app`): double fork, so it is never the caller's child
//! and outlives it; setsid, so no terminal or process group of the caller
//! reaches it.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use nix::errno::Errno;

/// What to exec: a path, or an open file (a sealed memfd) by fd.
pub enum Program<'a> {
    Path(&'a CStr),
    Fd(BorrowedFd<'a>),
}

/// Runs `prog` with `argv` and `env` as a detached process (see the module
/// comment) whose fds 0..3 are copies of `fds` and nothing else (every
/// other fd is closed at exec), in `/`, with default signal dispositions
/// and an empty signal mask. Returns its pid once it has exec'd; an exec
/// failure is returned as its errno.
///
/// The children only make raw system calls between fork and exec (no
/// allocation, no lock), so this is safe to call from a process with
/// threads.
pub fn spawn_detached(
    prog: Program,
    argv: &[CString],
    env: &[CString],
    fds: [BorrowedFd; 4],
) -> Result<i32, Errno> {
    // Everything the children need, made before the fork.
    let ptrs = |v: &[CString]| -> Vec<*const libc::c_char> {
        v.iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    };
    let (argv_p, env_p) = (ptrs(argv), ptrs(env));
    let fds: [RawFd; 4] = fds.map(|f| f.as_raw_fd());
    let (report_r, report_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let w = report_w.as_raw_fd();
    // SAFETY: the child (intermediate) only makes async-signal-safe calls
    // (setsid, fork, write, _exit), see `grandchild` for the other one.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Errno::last());
    }
    if pid == 0 {
        // SAFETY: as above; the values written are plain integers.
        unsafe {
            libc::setsid();
            let gc = libc::fork();
            if gc == 0 {
                grandchild(&prog, &argv_p, &env_p, fds, w);
            }
            // The grandchild reports its own pid: one writer, in order.
            if gc < 0 {
                let report = -Errno::last_raw();
                libc::write(w, (&report as *const i32).cast(), 4);
            }
            libc::_exit(0);
        }
    }
    drop(report_w);
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    let mut file = std::fs::File::from(report_r);
    let mut buf = [0u8; 8];
    let mut got = 0;
    // Up to 8 bytes: the pid, then an errno if exec failed (end of file
    // on the close-on-exec pipe means it exec'd).
    while got < 8 {
        match std::io::Read::read(&mut file, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if got < 4 {
        return Err(Errno::ECHILD);
    }
    let child = i32::from_ne_bytes(buf[..4].try_into().expect("4 bytes"));
    if child < 0 {
        return Err(Errno::from_raw(-child));
    }
    if got == 8 {
        return Err(Errno::from_raw(i32::from_ne_bytes(
            buf[4..].try_into().expect("4 bytes"),
        )));
    }
    Ok(child)
}

/// The detached process between fork and exec: only raw system calls.
fn grandchild(
    prog: &Program,
    argv: &[*const libc::c_char],
    env: &[*const libc::c_char],
    fds: [RawFd; 4],
    report: RawFd,
) -> ! {
    // SAFETY: raw calls on integers and on pointer arrays that were built
    // before the fork and stay alive (this process only execs or exits).
    unsafe {
        let me = libc::getpid();
        libc::write(report, (&me as *const i32).cast(), 4);
        // Every source (and the program's fd) moves above 0..3 first, so
        // placing one never clobbers another still needed.
        let prog_fd = match prog {
            Program::Fd(fd) => libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10),
            Program::Path(_) => -1,
        };
        if matches!(prog, Program::Fd(_)) && prog_fd < 0 {
            fail(report);
        }
        let mut high = [0; 4];
        for (i, fd) in fds.iter().enumerate() {
            high[i] = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 10);
            if high[i] < 0 {
                fail(report);
            }
        }
        for (i, fd) in high.iter().enumerate() {
            if libc::dup2(*fd, i as i32) < 0 {
                fail(report);
            }
        }
        // Everything else goes at exec (the report pipe too: its end of
        // file tells the caller the exec happened).
        if libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 4u32) < 0 {
            fail(report);
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        for sig in 1..libc::SIGRTMAX() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        if libc::chdir(c"/".as_ptr()) < 0 {
            fail(report);
        }
        match prog {
            Program::Path(p) => {
                libc::execve(p.as_ptr(), argv.as_ptr(), env.as_ptr());
            }
            Program::Fd(_) => {
                libc::syscall(
                    libc::SYS_execveat,
                    prog_fd,
                    c"".as_ptr(),
                    argv.as_ptr(),
                    env.as_ptr(),
                    libc::AT_EMPTY_PATH,
                );
            }
        }
        fail(report)
    }
}

/// Reports errno to the caller and ends the process.
fn fail(report: RawFd) -> ! {
    let e = Errno::last_raw();
    // SAFETY: writes 4 bytes from a live local; _exit does not return.
    unsafe {
        libc::write(report, (&e as *const i32).cast(), 4);
        libc::_exit(127)
    }
}
