//! The only home of `unsafe` in rrun: small, safe wrappers around the syscalls
//! that nix does not offer (raw clone with namespace flags, pidfds, keyrings,
//! close_range, prctl bits). Each wrapper documents why it is sound; callers
//! never see a raw pointer.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::Pid;

pub mod detach;
pub mod mount_api;

/// Outcome of [`clone_process`], mirroring `fork`.
pub enum CloneResult {
    Parent { child: Pid },
    Child,
}

/// `clone(2)` with fork semantics (no new stack, SIGCHLD on exit) plus
/// namespace flags, so one syscall both forks and creates the new namespaces.
///
/// # Safety contract for callers
/// Like `fork`, this must only be called while the process is single-threaded:
/// rrun never starts threads before it creates a container.
pub fn clone_process(flags: CloneFlags) -> Result<CloneResult, Errno> {
    // SAFETY: with a NULL stack the kernel gives the child a copy-on-write
    // copy of the parent's stack, exactly as fork(2) does; no Rust object is
    // shared between the two processes afterwards. rrun is single-threaded
    // here, so no lock can be held by a thread that does not exist in the
    // child. The remaining arguments (ptid, ctid, tls) are unused without the
    // matching CLONE_* flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags.bits() | libc::SIGCHLD) as libc::c_ulong,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(CloneResult::Child),
        pid => Ok(CloneResult::Parent {
            child: Pid::from_raw(pid as i32),
        }),
    }
}

/// `clone3(2)` with CLONE_INTO_CGROUP: like [`clone_process`], but the
/// child is born in the cgroup2 directory `cgroup` (an fd on it). Joining a
/// cgroup at birth takes no global lock, where a cgroup.procs write waits
/// for an RCU grace period (~10 ms) on every create. ENOSYS/E2BIG on kernels
/// before 5.7; same single-threaded contract as [`clone_process`].
pub fn clone_into_cgroup(flags: CloneFlags, cgroup: &impl AsFd) -> Result<CloneResult, Errno> {
    /// struct clone_args up to `cgroup` (CLONE_ARGS_SIZE_VER2).
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let args = CloneArgs {
        flags: flags.bits() as u32 as u64 | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_fd().as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: as clone_process: no stack (stack 0, size 0) means the child
    // gets a copy-on-write copy of ours, exactly as fork; no pidfd, tid or
    // tls pointers are passed. The kernel reads `args` (size given) and the
    // fd, which outlives the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(CloneResult::Child),
        pid => Ok(CloneResult::Parent {
            child: Pid::from_raw(pid as i32),
        }),
    }
}

/// `fork(2)` without glibc's atfork handlers (same contract as [`clone_process`]).
pub fn fork_process() -> Result<CloneResult, Errno> {
    clone_process(CloneFlags::empty())
}

/// A pidfd for `pid`, so later signals cannot hit a recycled pid.
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes two integers and returns a new fd or -1;
    // the fd is owned by nobody else, so wrapping it in OwnedFd is sound.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) };
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: ret is a freshly created, valid file descriptor (see above).
    Ok(unsafe { OwnedFd::from_raw_fd(ret as i32) })
}

/// Sends `sig` to the process behind a pidfd.
pub fn pidfd_send_signal(pidfd: &impl AsFd, sig: i32) -> Result<(), Errno> {
    // SAFETY: a NULL siginfo is explicitly allowed (the kernel fills one in as
    // kill(2) would); the fd is borrowed and stays open for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_fd().as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0 as libc::c_uint,
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// The parent of a pid namespace (`ns`: an open /proc/<pid>/ns/pid), with
/// the NS_GET_PARENT ioctl. EPERM once the parent is outside the caller's
/// view (the top of the chain).
pub fn pid_ns_parent(ns: &impl AsFd) -> Result<OwnedFd, Errno> {
    // _IO(0xb7, 0x2) of linux/nsfs.h; libc does not export it.
    const NS_GET_PARENT: u32 = 0xb702;
    // SAFETY: NS_GET_PARENT takes no argument and returns a new fd or -1;
    // the borrowed fd stays open for the call.
    let ret = unsafe { libc::ioctl(ns.as_fd().as_raw_fd(), NS_GET_PARENT as _) };
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: ret is a freshly created fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret) })
}

/// Joins a fresh session keyring named `name` (what runc does unless
/// --no-new-keyring), so the container does not share the host's keys.
pub fn join_session_keyring(name: &str) -> Result<(), Errno> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_int = 1;
    let cname = CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: cname is a valid NUL-terminated string that outlives the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            cname.as_ptr(),
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Marks every fd >= `first` close-on-exec, so nothing the caller leaked to
/// rrun reaches the container (runc CVE-2024-21626 class).
pub fn cloexec_from(first: u32) -> Result<(), Errno> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes fd flags in this process's table;
    // with CLOSE_RANGE_CLOEXEC it closes nothing, so no OwnedFd is invalidated.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if ret < 0 {
        return match Errno::last() {
            // Older kernels (before 5.11), and seccomp profiles that predate
            // close_range (the filter may already be loaded): the same, one
            // fcntl per open fd.
            Errno::ENOSYS | Errno::EPERM | Errno::EACCES => cloexec_each_from(first),
            e => Err(e),
        };
    }
    Ok(())
}

/// [`cloexec_from`] with fcntl only: the open fds from /proc/self/fd,
/// or every number below RLIMIT_NOFILE when procfs is not there.
fn cloexec_each_from(first: u32) -> Result<(), Errno> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    let set = |fd: i32| {
        // SAFETY: only the fd's flags change; F_GETFD on a closed number
        // fails with EBADF and touches nothing.
        let b = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        match fcntl(b, FcntlArg::F_GETFD) {
            Ok(f) => {
                let flags = FdFlag::from_bits_truncate(f) | FdFlag::FD_CLOEXEC;
                fcntl(b, FcntlArg::F_SETFD(flags)).map(|_| ())
            }
            Err(Errno::EBADF) => Ok(()),
            Err(e) => Err(e),
        }
    };
    // The directory's own fd is listed too: it is CLOEXEC already.
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        let fds: Vec<i32> = dir
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .filter(|fd| *fd >= first as i32)
            .collect();
        return fds.into_iter().try_for_each(set);
    }
    let (soft, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)?;
    let last = i32::try_from(soft).unwrap_or(i32::MAX);
    (first as i32..last).try_for_each(set)
}

/// Whether `fd` is open and, if so, whether it is close-on-exec.
pub fn fd_cloexec(fd: RawFd) -> Option<bool> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    // SAFETY: F_GETFD only reads the flags of the fd number; on a closed
    // number it fails with EBADF. The borrow ends with the call.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    fcntl(borrowed, FcntlArg::F_GETFD)
        .ok()
        .map(|f| FdFlag::from_bits_truncate(f).contains(FdFlag::FD_CLOEXEC))
}

/// Closes fds by number: `fd` itself, or every fd >= `first` except those
/// in `keep`. Only for a process about to enter a container (a fresh
/// child of rrun that never returns into the code owning these fds: it
/// execs or exits), where what it may hold is decided by
/// `process::fds`; an OwnedFd elsewhere in such a process must not be
/// used after this.
pub fn close_in_child(fd: RawFd) {
    // SAFETY: see above: no owner of `fd` uses it after this call.
    let _ = unsafe { libc::close(fd) };
}

/// See [`close_in_child`].
pub fn close_from_except(first: u32, keep: &[RawFd]) -> Result<(), Errno> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter_map(|&k| u32::try_from(k).ok())
        .filter(|&k| k >= first)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut lo = first;
    for k in keep.into_iter().chain(std::iter::once(u32::MAX)) {
        if k > lo {
            // SAFETY: close_range on [lo, k-1]; see close_in_child for why
            // no owner of these fds uses them afterwards.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_close_range,
                    lo as libc::c_uint,
                    k - 1,
                    0 as libc::c_uint,
                )
            };
            if ret < 0 {
                return Err(Errno::last());
            }
        }
        lo = k.saturating_add(1);
    }
    Ok(())
}

/// PR_SET_KEEPCAPS: keep the permitted set across the uid change.
pub fn set_keep_caps(on: bool) -> Result<(), Errno> {
    // SAFETY: prctl with integer arguments only.
    let ret = unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, on as libc::c_ulong, 0, 0, 0) };
    Errno::result(ret).map(|_| ())
}

/// PR_SET_DUMPABLE 0: other processes of the container (even root in it)
/// cannot ptrace us or open our /proc/<pid>/{exe,fd,cwd,root} while rrun's
/// own code still runs inside the container (CVE-2019-5736 class).
pub fn set_non_dumpable() -> Result<(), Errno> {
    // SAFETY: prctl with integer arguments only.
    let ret = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong, 0, 0, 0) };
    Errno::result(ret).map(|_| ())
}

/// PR_SET_NO_NEW_PRIVS.
pub fn set_no_new_privs() -> Result<(), Errno> {
    // SAFETY: prctl with integer arguments only.
    let ret = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) };
    Errno::result(ret).map(|_| ())
}

/// PR_SET_CHILD_SUBREAPER, so a foreground `run` inherits the container
/// process when an intermediate process exits.
pub fn set_child_subreaper() -> Result<(), Errno> {
    // SAFETY: prctl with integer arguments only.
    let ret = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
    Errno::result(ret).map(|_| ())
}

/// Exits immediately without running atexit handlers or flushing stdio
/// buffers shared with the parent (the correct exit for a forked child).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// Resets every signal to its default action, as a freshly exec'd program
/// expects (rrun itself ignores SIGPIPE, and ignored signals survive exec).
pub fn reset_signal_dispositions() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    for sig in Signal::iterator() {
        if sig == Signal::SIGKILL || sig == Signal::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_DFL runs no code in signal context, which is
        // the only reason signal() is unsafe.
        let _ = unsafe { signal(sig, SigHandler::SigDfl) };
    }
}

/// Terminal window size (TIOCGWINSZ/TIOCSWINSZ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WinSize {
    pub rows: u16,
    pub cols: u16,
}

pub fn get_winsize(fd: &impl AsFd) -> Result<WinSize, Errno> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one struct winsize into the valid, properly
    // aligned local `ws`; the fd is borrowed for the call.
    let ret = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    Errno::result(ret)?;
    Ok(WinSize {
        rows: ws.ws_row,
        cols: ws.ws_col,
    })
}

pub fn set_winsize(fd: &impl AsFd, size: WinSize) -> Result<(), Errno> {
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ only reads the struct winsize we pass by pointer.
    let ret = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    Errno::result(ret).map(|_| ())
}

/// TIOCSCTTY: make the terminal on `fd` our controlling terminal (we must
/// be a session leader without one).
pub fn set_controlling_tty(fd: &impl AsFd) -> Result<(), Errno> {
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal).
    let ret = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCSCTTY, 0) };
    Errno::result(ret).map(|_| ())
}

/// Brings the loopback interface up in the current network namespace, as
/// runc does for a new one (a fresh namespace has `lo` down).
pub fn loopback_up() -> Result<(), Errno> {
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain data; zeroed is a valid value for it.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we own; the
    // flags member of the union is the one these requests use.
    unsafe {
        Errno::result(libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req))?;
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        Errno::result(libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req))?;
    }
    Ok(())
}

/// dup2 without CLOEXEC on the new fd (stdio of the program to exec).
pub fn dup_onto(fd: &impl AsFd, target: i32) -> Result<(), Errno> {
    // SAFETY: dup2 only manipulates this process's fd table. `target` is
    // 0, 1 or 2, which no OwnedFd in rrun owns (rrun never wraps stdio).
    let ret = unsafe { libc::dup2(fd.as_fd().as_raw_fd(), target) };
    Errno::result(ret).map(|_| ())
}

/// Loads a BPF_PROG_TYPE_CGROUP_DEVICE program and attaches it to the
/// cgroup directory `cgroup` (BPF_F_ALLOW_MULTI, as systemd and runc do so
/// that other programs keep working). Returns the program fd: the program
/// stays attached after it is closed.
///
/// `T` is the 8-byte `struct bpf_insn` (cgroups::bpf::Insn); it is generic
/// only so that this module does not depend on the rest of the crate.
pub fn attach_device_filter<T>(cgroup: &impl AsFd, insns: &[T]) -> Result<OwnedFd, Errno> {
    assert_eq!(std::mem::size_of::<T>(), 8, "bpf instructions are 8 bytes");
    const BPF_PROG_LOAD: libc::c_int = 5;
    const BPF_PROG_ATTACH: libc::c_int = 8;
    const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
    const BPF_CGROUP_DEVICE: u32 = 6;
    const BPF_F_ALLOW_MULTI: u32 = 2;
    #[repr(C)]
    #[derive(Default)]
    struct ProgLoad {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
    }
    #[repr(C)]
    #[derive(Default)]
    struct ProgAttach {
        target_fd: u32,
        attach_bpf_fd: u32,
        attach_type: u32,
        attach_flags: u32,
    }
    let license = b"GPL\0";
    let load = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    // SAFETY: `load` is a fully initialised bpf_attr prefix; the pointers
    // in it (instructions, license) stay valid for the call; the kernel
    // accepts a shorter attr than its own and zero-fills the rest.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &load as *const ProgLoad,
            std::mem::size_of::<ProgLoad>() as u32,
        )
    };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: fd is a new program fd owned by nobody else.
    let prog = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let attach = ProgAttach {
        target_fd: cgroup.as_fd().as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    // SAFETY: as above; both fds are open for the duration of the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &attach as *const ProgAttach,
            std::mem::size_of::<ProgAttach>() as u32,
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(prog)
}

/// seccomp(SECCOMP_SET_MODE_FILTER, flags, prog): the syscall's return.
fn seccomp_set_filter(prog: &[seccompiler::sock_filter], flags: u32) -> Result<i32, Errno> {
    #[repr(C)]
    struct SockFprog {
        len: libc::c_ushort,
        filter: *const seccompiler::sock_filter,
    }
    const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
    let fprog = SockFprog {
        len: prog.len() as libc::c_ushort,
        filter: prog.as_ptr(),
    };
    // SAFETY: fprog points to `prog`, a valid array of sock_filter (repr C,
    // from seccompiler) that outlives the call; the kernel copies it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags as libc::c_uint,
            &fprog as *const SockFprog,
        )
    };
    Errno::result(ret).map(|r| r as i32)
}

/// seccomp(SECCOMP_SET_MODE_FILTER, flags, prog).
pub fn seccomp_load(prog: &[seccompiler::sock_filter], flags: u32) -> Result<(), Errno> {
    seccomp_set_filter(prog, flags).map(|_| ())
}

/// setrlimit by raw resource number (the launch plan carries numbers).
pub fn setrlimit(resource: u32, soft: u64, hard: u64) -> Result<(), Errno> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads the struct we pass; an unknown resource
    // number fails with EINVAL.
    let ret = unsafe { libc::setrlimit(resource as libc::__rlimit_resource_t, &lim) };
    Errno::result(ret).map(|_| ())
}

/// Seals a memfd against every change (write, grow, shrink, more seals).
pub fn seal(fd: &impl AsFd) -> Result<(), Errno> {
    use nix::fcntl::{FcntlArg, SealFlag, fcntl};
    let all = SealFlag::F_SEAL_SEAL
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE;
    fcntl(fd.as_fd(), FcntlArg::F_ADD_SEALS(all)).map(|_| ())
}

/// What the VFS alone knows of `name` in the directory `fd` (or of `fd`'s
/// own file when `name` is empty): its mode (type and permissions), size
/// and mount id. A final symlink is not followed. AT_STATX_DONT_SYNC: the
/// filesystem is not asked to refresh anything, so a FUSE server in a
/// container never sees the request and cannot make host-side rrun wait.
pub struct VfsStat {
    pub mode: u32,
    pub size: u64,
    pub mnt_id: u64,
}

pub fn vfs_stat(fd: &impl AsFd, name: &str) -> Result<VfsStat, Errno> {
    let cname = CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: statx fills a struct statx we own; a zeroed one is a valid
    // initial value (plain integers).
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: an fd we own, a NUL-terminated name (empty: the fd itself,
    // AT_EMPTY_PATH), and a live out-struct of the right type.
    let ret = unsafe {
        libc::statx(
            fd.as_fd().as_raw_fd(),
            cname.as_ptr(),
            if name.is_empty() {
                libc::AT_EMPTY_PATH
            } else {
                0
            } | libc::AT_SYMLINK_NOFOLLOW
                | libc::AT_STATX_DONT_SYNC,
            libc::STATX_TYPE | libc::STATX_MODE | libc::STATX_SIZE | libc::STATX_MNT_ID,
            &mut st,
        )
    };
    Errno::result(ret)?;
    if st.stx_mask & libc::STATX_MNT_ID == 0 {
        // Before Linux 5.8: no mount id, so nothing can be verified.
        return Err(Errno::ENOSYS);
    }
    Ok(VfsStat {
        mode: u32::from(st.stx_mode),
        size: st.stx_size,
        mnt_id: st.stx_mnt_id,
    })
}

/// A duplicate of `fd` at a number >= `min`, without CLOEXEC.
pub fn dup_above(fd: &impl AsFd, min: i32) -> Result<OwnedFd, Errno> {
    use nix::fcntl::{FcntlArg, fcntl};
    let n = fcntl(fd.as_fd(), FcntlArg::F_DUPFD(min))?;
    // SAFETY: F_DUPFD returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// SIGPIPE back to its default action (Rust starts with it ignored).
pub fn default_sigpipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: SIG_DFL runs no code in signal context.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

/// Sets SIGPIPE to ignored (a write to a closed pipe then fails with
/// EPIPE instead of killing us) and returns whether it was ignored before,
/// for [`restore_sigpipe`].
pub fn ignore_sigpipe() -> bool {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: SIG_IGN runs no code in signal context.
    matches!(
        unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) },
        Ok(SigHandler::SigIgn)
    )
}

/// SIGPIPE back to what [`ignore_sigpipe`] found.
pub fn restore_sigpipe(was_ignored: bool) {
    if !was_ignored {
        default_sigpipe();
    }
}

/// Crash-consistency testing: in debug builds (the ones tests run), when
/// RRUN_FAILPOINT names this point, rrun kills itself with SIGKILL right
/// here, as a crash or an OOM kill would. Release builds compile it out.
pub fn failpoint(name: &str) {
    if cfg!(debug_assertions) && std::env::var("RRUN_FAILPOINT").is_ok_and(|f| f == name) {
        let _ = nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGKILL);
    }
}

/// personality(2).
pub fn set_personality(persona: libc::c_ulong) -> Result<(), Errno> {
    // SAFETY: personality takes an integer and changes only this process.
    let ret = unsafe { libc::personality(persona) };
    Errno::result(ret).map(|_| ())
}

/// sched_setattr(2) for the calling thread (struct sched_attr, version 1).
#[allow(clippy::too_many_arguments)]
pub fn sched_setattr(
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
) -> Result<(), Errno> {
    #[repr(C)]
    struct SchedAttr {
        size: u32,
        policy: u32,
        flags: u64,
        nice: i32,
        priority: u32,
        runtime: u64,
        deadline: u64,
        period: u64,
    }
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags,
        nice,
        priority,
        runtime,
        deadline,
        period,
    };
    // SAFETY: the kernel reads `size` bytes of the fully initialised struct.
    let ret = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0u32) };
    Errno::result(ret).map(|_| ())
}

/// ioprio_set(IOPRIO_WHO_PROCESS, self, class << 13 | level).
pub fn ioprio_set(class: u32, level: u32) -> Result<(), Errno> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    let prio = (class << 13) | (level & 0x1fff);
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) };
    Errno::result(ret).map(|_| ())
}

/// mount_setattr(2)'s mount attributes (include/uapi/linux/mount.h).
pub mod mount_attr {
    pub const RDONLY: u64 = 0x1;
    pub const NOSUID: u64 = 0x2;
    pub const NODEV: u64 = 0x4;
    pub const NOEXEC: u64 = 0x8;
    /// The atime mode field: setting any mode needs the whole field cleared.
    pub const ATIME_MASK: u64 = 0x70;
    pub const RELATIME: u64 = 0x0;
    pub const NOATIME: u64 = 0x10;
    pub const STRICTATIME: u64 = 0x20;
    pub const NODIRATIME: u64 = 0x80;
    pub const NOSYMFOLLOW: u64 = 0x20_0000;
}

/// mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE]): changes the
/// attributes of the mount `fd` is on (and, with `recursive`, of every
/// mount below it). Linux 5.12+; older kernels give ENOSYS.
pub fn mount_setattr(fd: &impl AsFd, recursive: bool, set: u64, clear: u64) -> Result<(), Errno> {
    mount_api::setattr(fd, recursive, set, clear, 0, None)
}

/// A read-only, detached bind mount of the file at `path` (open_tree with
/// OPEN_TREE_CLONE, then mount_setattr MOUNT_ATTR_RDONLY): an fd through
/// which the file can be exec'd but never opened for writing.
pub fn readonly_clone(path: &std::path::Path) -> Result<OwnedFd, Errno> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
    let cpath = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: cpath is a valid C string for the duration of the call; the
    // returned fd is new and owned by nobody else.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            cpath.as_ptr(),
            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: see above.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    mount_setattr(&fd, false, mount_attr::RDONLY, 0)?;
    Ok(fd)
}

/// execveat(fd, "", argv, envp, AT_EMPTY_PATH): runs the file behind `fd`.
pub fn exec_fd(fd: &impl AsFd, args: &[CString], env: &[CString]) -> Errno {
    nix::unistd::execveat(
        fd.as_fd(),
        c"",
        args,
        env,
        nix::fcntl::AtFlags::AT_EMPTY_PATH,
    )
    .unwrap_err()
}

/// Removes an environment variable. Called only at the start of main, while
/// rrun is single-threaded.
pub fn remove_env(key: &str) {
    // SAFETY: no other thread exists yet that could read the environment.
    unsafe { std::env::remove_var(key) };
}

/// seccomp(SECCOMP_SET_MODE_FILTER, flags | SECCOMP_FILTER_FLAG_NEW_LISTENER,
/// prog): loads a filter whose SECCOMP_RET_USER_NOTIF answers go to a
/// supervisor, and returns the listener fd (close-on-exec) it reads them
/// from. A process's filter stack may hold one such filter (EBUSY after).
pub fn seccomp_load_listener(
    prog: &[seccompiler::sock_filter],
    flags: u32,
) -> Result<OwnedFd, Errno> {
    const SECCOMP_FILTER_FLAG_NEW_LISTENER: u32 = 1 << 3;
    let fd = seccomp_set_filter(prog, flags | SECCOMP_FILTER_FLAG_NEW_LISTENER)?;
    // SAFETY: with NEW_LISTENER a successful call returns a new fd that
    // nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether this kernel knows every seccomp(2) filter flag in `flags`: a
/// filter call without a program fails with EFAULT once the flags passed
/// the kernel's check, with EINVAL when one is unknown. Nothing is loaded.
pub fn seccomp_flags_supported(flags: u32) -> bool {
    const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
    // SAFETY: a NULL program pointer is never dereferenced in user space;
    // the kernel checks the flags first and then fails to copy from NULL.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags as libc::c_uint,
            std::ptr::null::<libc::c_void>(),
        )
    };
    ret < 0 && Errno::last() == Errno::EFAULT
}

/// One sendmsg(2) of `data` with `fd` attached (SCM_RIGHTS), MSG_NOSIGNAL.
/// Unlike nix's sendmsg it allocates nothing, so right after a notify
/// filter is loaded the hand-off is this one syscall and no other (a
/// malloc could mmap or brk). Returns the bytes sent (a stream socket may
/// take fewer than `data.len()`); EINTR is retried.
pub fn send_with_fd(sock: &impl AsFd, data: &[u8], fd: &impl AsFd) -> Result<usize, Errno> {
    // CMSG_SPACE(sizeof(int)) on 64-bit Linux: a 16-byte cmsghdr plus the
    // fd padded to 8. u64 elements keep the buffer aligned for cmsghdr.
    let mut space = [0u64; 3];
    let raw = fd.as_fd().as_raw_fd();
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: msghdr is plain data; zeroed is valid (no name, no flags).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = space.as_mut_ptr() as *mut libc::c_void;
    // SAFETY: CMSG_SPACE only computes a size.
    msg.msg_controllen =
        unsafe { libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) } as usize;
    assert!(
        msg.msg_controllen <= std::mem::size_of_val(&space),
        "one SCM_RIGHTS fd fits the control buffer"
    );
    // SAFETY: msg_control points to our zeroed, aligned buffer of at least
    // msg_controllen bytes, so CMSG_FIRSTHDR returns a pointer into it with
    // room for one header and one int; we write exactly those.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut libc::c_int, raw);
    }
    loop {
        // SAFETY: msg and everything it points to (iov, data, space) are
        // valid for the call; the kernel only reads them. `fd` stays open.
        let ret = unsafe { libc::sendmsg(sock.as_fd().as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        match Errno::result(ret) {
            Err(Errno::EINTR) => continue,
            other => return other.map(|n| n as usize),
        }
    }
}

/// One recvmsg(2) into `buf`: the byte count, the fds that came with the
/// message (SCM_RIGHTS), owned and close-on-exec, and the sender's pid
/// (SCM_CREDENTIALS, when `sock` has SO_PASSCRED). EINTR is retried.
pub fn recv_with_fds(
    sock: &impl AsFd,
    buf: &mut [u8],
) -> Result<(usize, Vec<OwnedFd>, Option<i32>), Errno> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut space = nix::cmsg_space!([libc::c_int; 4], libc::ucred);
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let msg = loop {
        match recvmsg::<()>(
            sock.as_fd().as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            other => break other?,
        }
    };
    let mut fds = Vec::new();
    let mut sender = None;
    for c in msg.cmsgs()? {
        match c {
            ControlMessageOwned::ScmRights(raw) => {
                for fd in raw {
                    // SAFETY: the kernel installed this fd in our table for
                    // this message; nothing else knows or owns it.
                    fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
            // Only with SO_PASSCRED on `sock`: the kernel's record of the
            // sending process, its pid as seen from our pid namespace.
            ControlMessageOwned::ScmCredentials(c) => sender = Some(c.pid()),
            _ => {}
        }
    }
    Ok((msg.bytes, fds, sender))
}
