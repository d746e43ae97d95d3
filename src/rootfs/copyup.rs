//! `tmpcopyup` (runc's mount extension, which podman adds to its tmpfs
//! mounts): a tmpfs mounted over a directory of the image starts with that
//! directory's contents. The copy works only through fds: the directory
//! below is held open before the tmpfs covers it, every entry is opened
//! relative to its parent with O_NOFOLLOW, and symlinks are copied as
//! links, never followed, so nothing outside the two trees is read or
//! written whatever the image holds.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstatat, mkdirat, mknodat};
use nix::unistd::{Gid, Uid, fchown, fchownat, symlinkat};

/// Deeper trees are refused rather than risk the stack: no image needs
/// this many levels under a tmpfs mount point.
const MAX_DEPTH: usize = 128;

/// Copies the contents of the directory `below` into the directory
/// `above` (owners, modes, symlinks, device nodes where allowed).
pub fn copy_tree(below: &OwnedFd, above: &OwnedFd) -> Result<(), (String, Errno)> {
    copy_dir(below, above, Path::new(""), 0)
}

fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
}

fn owner(st: &FileStat) -> (Option<Uid>, Option<Gid>) {
    (
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )
}

fn copy_dir(
    below: &OwnedFd,
    above: &OwnedFd,
    at: &Path,
    depth: usize,
) -> Result<(), (String, Errno)> {
    let shown = |name: &Path| at.join(name).display().to_string();
    if depth > MAX_DEPTH {
        return Err((shown(Path::new("")), Errno::ELOOP));
    }
    let listing = openat(
        below.as_fd(),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .and_then(Dir::from_fd)
    .map_err(|e| (shown(Path::new("")), e))?;
    let mut dir = listing;
    let names: Vec<std::ffi::CString> = dir
        .iter()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_owned())
        .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
        .collect();
    for name in names {
        let rel = Path::new(std::ffi::OsStr::from_bytes(name.as_bytes()));
        let err = |e| (shown(rel), e);
        let st =
            fstatat(below.as_fd(), name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW).map_err(err)?;
        let mode = Mode::from_bits_truncate(st.st_mode & 0o7777);
        let (uid, gid) = owner(&st);
        match kind(&st) {
            SFlag::S_IFDIR => {
                mkdirat(
                    above.as_fd(),
                    name.as_c_str(),
                    Mode::from_bits_truncate(0o700),
                )
                .map_err(err)?;
                let flags =
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
                let src =
                    openat(below.as_fd(), name.as_c_str(), flags, Mode::empty()).map_err(err)?;
                let dst =
                    openat(above.as_fd(), name.as_c_str(), flags, Mode::empty()).map_err(err)?;
                copy_dir(&src, &dst, &at.join(rel), depth + 1)?;
                fchown(dst.as_fd(), uid, gid).map_err(err)?;
                fchmod(dst.as_fd(), mode).map_err(err)?;
            }
            SFlag::S_IFREG => {
                // O_NONBLOCK: the entry may have turned into a FIFO since
                // the stat; the fstat below catches that.
                let src = openat(
                    below.as_fd(),
                    name.as_c_str(),
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(err)?;
                if kind(&nix::sys::stat::fstat(src.as_fd()).map_err(err)?) != SFlag::S_IFREG {
                    return Err(err(Errno::EINVAL));
                }
                let dst = openat(
                    above.as_fd(),
                    name.as_c_str(),
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(err)?;
                let (mut r, mut w) = (std::fs::File::from(src), std::fs::File::from(dst));
                std::io::copy(&mut r, &mut w)
                    .map_err(|e| err(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))))?;
                // chown first: it clears set-id bits the mode may carry.
                fchown(w.as_fd(), uid, gid).map_err(err)?;
                fchmod(w.as_fd(), mode).map_err(err)?;
            }
            SFlag::S_IFLNK => {
                let target = readlinkat(below.as_fd(), name.as_c_str()).map_err(err)?;
                symlinkat(target.as_os_str(), above.as_fd(), name.as_c_str()).map_err(err)?;
                fchownat(
                    above.as_fd(),
                    name.as_c_str(),
                    uid,
                    gid,
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(err)?;
            }
            k @ (SFlag::S_IFCHR | SFlag::S_IFBLK | SFlag::S_IFIFO) => {
                match mknodat(above.as_fd(), name.as_c_str(), k, mode, st.st_rdev) {
                    Ok(()) => fchownat(
                        above.as_fd(),
                        name.as_c_str(),
                        uid,
                        gid,
                        AtFlags::AT_SYMLINK_NOFOLLOW,
                    )
                    .map_err(err)?,
                    // A user namespace cannot mknod devices: left out.
                    Err(Errno::EPERM) => {}
                    Err(e) => return Err(err(e)),
                }
            }
            // Sockets mean nothing without their listener.
            _ => {}
        }
    }
    Ok(())
}
