//! The new mount API pieces id-mapped mounts and fd-only mounting need
//! (open_tree, mount_setattr, move_mount: a mount made detached, given its
//! attributes, then attached on an fd, never looked up by name) and a user
//! namespace that exists only to carry a mapping. Linux 5.12+; older
//! kernels answer ENOSYS.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sched::CloneFlags;

use super::CloneResult;

const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;

/// open_tree(path, OPEN_TREE_CLONE [| AT_RECURSIVE]): a detached copy of
/// the mount tree at `path` (its top only, unless `recursive`), owned by
/// the returned fd until it is attached with [`move_mount_onto`].
pub fn open_tree_clone(path: &Path, recursive: bool) -> Result<OwnedFd, Errno> {
    let cpath = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: cpath is a valid C string for the duration of the call; the
    // returned fd is new and owned by nobody else.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, cpath.as_ptr(), flags) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: a fresh fd from the kernel, owned here only.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Whether open_tree, move_mount and mount_setattr exist (Linux 5.12+):
/// probed once with an fd that cannot be valid, which such a kernel
/// answers EBADF and an older one ENOSYS.
pub fn available() -> bool {
    static HAVE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAVE.get_or_init(|| {
        // Debug builds can be told to take the pre-5.12 paths, so that
        // they are tested on a newer kernel too.
        if cfg!(debug_assertions) && std::env::var_os("RRUN_DEBUG_NO_MOUNT_API").is_some() {
            return false;
        }
        // SAFETY: fd -1 and a null attr pointer with size 0: the kernel
        // rejects the call before it reads anything.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                -1,
                c"".as_ptr(),
                libc::AT_EMPTY_PATH,
                std::ptr::null::<u8>(),
                0usize,
            )
        };
        !(ret < 0 && Errno::last() == Errno::ENOSYS)
    })
}

/// A new, detached mount of a fresh `fstype` filesystem (fsopen, fsconfig,
/// fsmount): `params` are its options as (key, value) pairs (None for a
/// flag such as "ro"), `attrs` the mount attributes (MOUNT_ATTR_*). Nothing
/// is attached anywhere: the caller finishes the mount through the fd
/// (attributes, contents) and attaches it with [`move_mount_onto`].
pub fn new_fs(
    fstype: &str,
    params: &[(String, Option<String>)],
    attrs: u64,
) -> Result<OwnedFd, Errno> {
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSCONFIG_SET_FLAG: libc::c_uint = 0;
    const FSCONFIG_SET_STRING: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    let c = |s: &str| CString::new(s).map_err(|_| Errno::EINVAL);
    let name = c(fstype)?;
    // SAFETY: name is a valid C string for the call; the fd returned is new.
    let ret = unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), FSOPEN_CLOEXEC) };
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: a fresh fd from the kernel, owned here only.
    let fsfd = unsafe { OwnedFd::from_raw_fd(ret as i32) };
    let config = |cmd: libc::c_uint, key: Option<&CString>, value: Option<&CString>| {
        // SAFETY: fsfd is open; key and value are valid C strings or null,
        // as fsconfig(2) expects for each command.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fsfd.as_raw_fd(),
                cmd,
                key.map_or(std::ptr::null(), |k| k.as_ptr()),
                value.map_or(std::ptr::null(), |v| v.as_ptr()),
                0,
            )
        };
        Errno::result(ret).map(|_| ())
    };
    for (k, v) in params {
        let key = c(k)?;
        match v {
            Some(v) => config(FSCONFIG_SET_STRING, Some(&key), Some(&c(v)?))?,
            None => config(FSCONFIG_SET_FLAG, Some(&key), None)?,
        }
    }
    config(FSCONFIG_CMD_CREATE, None, None)?;
    // SAFETY: fsfd is open and configured; the fd returned is new.
    let ret = unsafe { libc::syscall(libc::SYS_fsmount, fsfd.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) };
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: a fresh fd from the kernel, owned here only.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as i32) })
}

/// open_tree(fd, "", OPEN_TREE_CLONE | AT_EMPTY_PATH [| AT_RECURSIVE]): a
/// detached copy of the mount tree at the file `fd` is open on (an O_PATH
/// fd resolved inside the rootfs, or another detached mount): like
/// [`open_tree_clone`] with nothing looked up by name, so no /proc and no
/// rename can redirect it.
pub fn clone_fd(fd: &impl AsFd, recursive: bool) -> Result<OwnedFd, Errno> {
    let mut flags =
        OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: the fd is borrowed and open; the path is an empty C string
    // naming it (AT_EMPTY_PATH); the returned fd is new and owned here only.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            fd.as_fd().as_raw_fd(),
            c"".as_ptr(),
            flags,
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: a fresh fd from the kernel, owned here only.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as i32) })
}

/// mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE]) with only a
/// propagation type (MS_SHARED, MS_SLAVE, MS_PRIVATE or MS_UNBINDABLE):
/// changes the propagation of the mount `fd` is the root of, found
/// through the fd rather than by a path.
pub fn set_propagation(fd: &impl AsFd, recursive: bool, propagation: u64) -> Result<(), Errno> {
    setattr(fd, recursive, 0, 0, propagation, None)
}

/// mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE], MOUNT_ATTR_IDMAP
/// with `userns`): ids on the detached mount `fd` are seen through the
/// mapping of `userns`. Only a mount that was never attached can be
/// id-mapped.
pub fn idmap_mount(fd: &impl AsFd, recursive: bool, userns: &impl AsFd) -> Result<(), Errno> {
    setattr(fd, recursive, MOUNT_ATTR_IDMAP, 0, 0, Some(userns.as_fd()))
}

/// mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE], attr): the one
/// call behind [`super::mount_setattr`], [`set_propagation`] and
/// [`idmap_mount`].
pub(super) fn setattr(
    fd: &impl AsFd,
    recursive: bool,
    set: u64,
    clear: u64,
    propagation: u64,
    userns: Option<std::os::fd::BorrowedFd<'_>>,
) -> Result<(), Errno> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation,
        userns_fd: userns.map_or(0, |u| u.as_raw_fd() as u64),
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: attr is fully initialised and its size passed; the empty path
    // with AT_EMPTY_PATH names the borrowed, open fd itself; the user
    // namespace fd, if any, is borrowed and open for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_fd().as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(ret).map(|_| ())
}

/// move_mount(from, "", to, "", F_EMPTY_PATH | T_EMPTY_PATH): attaches the
/// detached mount `from` on the directory or file `to` is open on (an
/// O_PATH fd resolved inside the rootfs: no path is looked up again).
pub fn move_mount_onto(from: &impl AsFd, to: &impl AsFd) -> Result<(), Errno> {
    // SAFETY: both fds are borrowed and open; the paths are empty C strings.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_fd().as_raw_fd(),
            c"".as_ptr(),
            to.as_fd().as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(ret).map(|_| ())
}

/// A user namespace with the given uid_map/gid_map text, held by the
/// returned fd (`/proc/<pid>/ns/user` of a child that lived only long
/// enough to own it). The caller needs CAP_SETUID/CAP_SETGID for maps
/// other than its own ids.
///
/// Single-threaded callers only, like [`super::clone_process`].
pub fn userns_with_maps(uid_map: &str, gid_map: &str) -> Result<OwnedFd, Errno> {
    let (hold_r, hold_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let child = match super::clone_process(CloneFlags::CLONE_NEWUSER)? {
        CloneResult::Child => {
            // Wait until the parent has what it needs (EOF), then go.
            drop(hold_w);
            let mut b = [0u8; 1];
            let _ = nix::unistd::read(&hold_r, &mut b);
            super::exit_now(0);
        }
        CloneResult::Parent { child } => child,
    };
    drop(hold_r);
    let result = (|| {
        let proc = format!("/proc/{child}");
        std::fs::write(format!("{proc}/uid_map"), uid_map).map_err(io_errno)?;
        std::fs::write(format!("{proc}/gid_map"), gid_map).map_err(io_errno)?;
        nix::fcntl::open(
            format!("{proc}/ns/user").as_str(),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
    })();
    drop(hold_w);
    let _ = nix::sys::wait::waitpid(child, None);
    result
}

fn io_errno(e: std::io::Error) -> Errno {
    e.raw_os_error().map(Errno::from_raw).unwrap_or(Errno::EIO)
}
