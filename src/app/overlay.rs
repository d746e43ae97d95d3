//! Each app's root filesystem: an overlayfs of the image's layers (the
//! store's read-only directories, shared by every app of that image) under
//! the app's own upper and work directories. Starting an app copies
//! nothing; what it writes lands in its upper directory only.
//!
//! Any number of layers (up to overlayfs's own limit of 500): the layers
//! are handed to the kernel one by one (fsconfig "lowerdir+", Linux 6.8+),
//! so no option string has to hold them all. An older kernel gets one
//! mount(2) option string, which must fit in a page (about 200 layers).
//! Every directory is named by /proc/self/fd/N of a directory fd opened
//! here, never by its path: overlayfs shows what it was given in the
//! mountinfo the container reads, and host paths stay out of it.
//!
//! This module never creates or removes a layer; it only mounts them.

// Used by the app commands, which land separately.
#![allow(dead_code)]

use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::Mode;
use thiserror::Error;

use crate::sys::mount_api;

/// overlayfs's most lower layers (OVL_MAX_STACK).
pub const MAX_LAYERS: usize = 500;
/// mount(2) copies its data argument into one page.
const OPTIONS_MAX: usize = 4095;

#[derive(Debug, Error)]
pub enum OverlayError {
    #[error("overlay: no image layers to mount")]
    NoLayers,
    #[error("overlay: {0} layers, more than overlayfs stacks ({MAX_LAYERS})")]
    TooManyLayers(usize),
    #[error(
        "overlay: {0} layers do not fit in mount(2)'s options (Linux 6.8+ mounts up to {MAX_LAYERS})"
    )]
    OptionsTooLong(usize),
    #[error("{0}: already mounted")]
    AlreadyMounted(PathBuf),
    #[error("{path}: {what}: {source}")]
    Io {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{path}: mounting the overlay: {errno}")]
    Mount { path: PathBuf, errno: Errno },
    #[error("{path}: unmounting the overlay: {errno}")]
    Unmount { path: PathBuf, errno: Errno },
}

fn io_err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> OverlayError + 'a {
    move |source| OverlayError::Io {
        path: path.to_path_buf(),
        what,
        source,
    }
}

fn ensure_dir(p: &Path) -> Result<(), OverlayError> {
    match fs::create_dir(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && p.is_dir() => Ok(()),
        Err(e) => Err(io_err(p, "creating the directory")(e)),
    }
}

fn open_dir(p: &Path) -> Result<OwnedFd, OverlayError> {
    nix::fcntl::open(
        p,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err(p, "opening the directory")(e.into()))
}

/// Mounts an overlay of `lower` (BOTTOM layer first, as the store lists an
/// image's layers) with `upper` and `work` at `target`. `upper`, `work`
/// and `target` are created when missing (`upper` and `work` must be on
/// one filesystem). Read-write; an app's read-only root is the runtime's
/// `root.readonly`.
pub fn mount(
    lower: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<(), OverlayError> {
    mount_with(lower, upper, work, target, mount_api::available())
}

/// `mount`, through the new mount API or (`new_api` false, as on kernels
/// before 6.8) mount(2) alone.
pub(crate) fn mount_with(
    lower: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    new_api: bool,
) -> Result<(), OverlayError> {
    if lower.is_empty() {
        return Err(OverlayError::NoLayers);
    }
    if lower.len() > MAX_LAYERS {
        return Err(OverlayError::TooManyLayers(lower.len()));
    }
    // Every layer must be a directory now: overlayfs's own message for a
    // missing one is a bare ENOENT.
    let layer_fds = lower
        .iter()
        .map(|l| open_dir(l))
        .collect::<Result<Vec<_>, _>>()?;
    for d in [upper, work, target] {
        ensure_dir(d)?;
    }
    if is_mounted(target) {
        return Err(OverlayError::AlreadyMounted(target.to_path_buf()));
    }
    let upper_fd = open_dir(upper)?;
    let work_fd = open_dir(work)?;
    // Every directory is named to the kernel by /proc/self/fd/N of an fd
    // opened here: overlayfs shows the names it was given in mountinfo,
    // which the container reads, so the host's paths (the app root, the
    // app's name) never appear inside it; and ~20 bytes a layer keep
    // mount(2)'s option string short.
    let fd_name = |fd: &OwnedFd| crate::rootfs::resolve::fd_path(fd);
    let top_first: Vec<PathBuf> = layer_fds.iter().rev().map(fd_name).collect();
    let (upper_name, work_name) = (fd_name(&upper_fd), fd_name(&work_fd));
    let mount_err = |errno| OverlayError::Mount {
        path: target.to_path_buf(),
        errno,
    };
    if new_api {
        match mount_new_api(&top_first, &upper_name, &work_name, target) {
            Ok(()) => return Ok(()),
            // "lowerdir+" is Linux 6.8+: older kernels refuse the key.
            Err(Errno::EINVAL) => {}
            Err(e) => return Err(mount_err(e)),
        }
    }
    let data = options(
        top_first.iter().map(|p| p.as_path()),
        &upper_name,
        &work_name,
    );
    if data.len() > OPTIONS_MAX {
        return Err(OverlayError::OptionsTooLong(lower.len()));
    }
    nix::mount::mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(mount_err)
}

/// fsopen("overlay") with one "lowerdir+" per layer (top first, as
/// overlayfs stacks them), then attached at `target` by fd.
fn mount_new_api(
    top_first: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<(), Errno> {
    let s = |p: &Path| p.to_string_lossy().into_owned();
    // "source" first: what mountinfo shows as the device, as with mount(2).
    let mut params: Vec<(String, Option<String>)> = vec![("source".into(), Some("overlay".into()))];
    params.extend(
        top_first
            .iter()
            .map(|l| ("lowerdir+".to_string(), Some(s(l)))),
    );
    params.push(("upperdir".into(), Some(s(upper))));
    params.push(("workdir".into(), Some(s(work))));
    let mnt = mount_api::new_fs("overlay", &params, 0)?;
    let to = nix::fcntl::open(
        target,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    mount_api::move_mount_onto(&mnt, &to)
}

/// overlayfs's option string: `lowerdir=TOP:...:BOTTOM,upperdir=,workdir=`,
/// with `\`, `:` and `,` in paths escaped as overlayfs reads them.
fn options<'a>(top_first: impl Iterator<Item = &'a Path>, upper: &Path, work: &Path) -> String {
    let esc = |p: &Path| {
        let mut out = String::new();
        for c in p.to_string_lossy().chars() {
            if matches!(c, '\\' | ':' | ',') {
                out.push('\\');
            }
            out.push(c);
        }
        out
    };
    let lowers: Vec<String> = top_first.map(esc).collect();
    format!(
        "lowerdir={},upperdir={},workdir={}",
        lowers.join(":"),
        esc(upper),
        esc(work)
    )
}

/// Unmounts `target` (every mount stacked there). Not mounted (or not
/// there) is success, so a cleanup can always call it. A busy mount (a
/// process of the host still inside it) is detached: it goes when the last
/// user does.
pub fn unmount(target: &Path) -> Result<(), OverlayError> {
    for _ in 0..16 {
        if !is_mounted(target) {
            return Ok(());
        }
        match nix::mount::umount2(target, MntFlags::UMOUNT_NOFOLLOW) {
            Ok(()) => {}
            Err(Errno::EBUSY) => {
                nix::mount::umount2(target, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW)
                    .map_err(|errno| OverlayError::Unmount {
                        path: target.to_path_buf(),
                        errno,
                    })?
            }
            Err(Errno::EINVAL | Errno::ENOENT) => return Ok(()),
            Err(errno) => {
                return Err(OverlayError::Unmount {
                    path: target.to_path_buf(),
                    errno,
                });
            }
        }
    }
    Ok(())
}

/// Whether something is mounted at `target` (this mount namespace's
/// mountinfo names it as a mount point).
pub fn is_mounted(target: &Path) -> bool {
    let Ok(path) = fs::canonicalize(target) else {
        return false;
    };
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    mountinfo_has(&info, &path)
}

/// Whether a mountinfo text lists `path` as a mount point (field 5, with
/// the kernel's octal escapes of space, tab, newline and backslash).
fn mountinfo_has(info: &str, path: &Path) -> bool {
    let want = path.as_os_str().as_encoded_bytes();
    info.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .is_some_and(|mp| unescape(mp).as_slice() == want)
    })
}

fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// For the store's tests (which build images to mount).
#[cfg(test)]
pub(crate) mod tests_support {
    use std::path::{Path, PathBuf};

    pub(crate) use super::mount_with;

    /// The length of mount(2)'s option string for these layers by path.
    pub fn options_len(lower: &[PathBuf]) -> usize {
        super::options(
            lower.iter().rev().map(|p| p.as_path()),
            Path::new("/u"),
            Path::new("/w"),
        )
        .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_strings_escape_and_order() {
        let lowers = [PathBuf::from("/s/bottom"), PathBuf::from("/s/a:b,c")];
        let o = options(
            lowers.iter().rev().map(|p| p.as_path()),
            Path::new("/u"),
            Path::new("/w"),
        );
        assert_eq!(o, "lowerdir=/s/a\\:b\\,c:/s/bottom,upperdir=/u,workdir=/w");
    }

    #[test]
    fn mountinfo_parsing() {
        let info = "36 35 98:0 / /mnt/a\\040b rw - ext3 /dev/root rw\n\
                    37 35 0:5 / /run rw - tmpfs tmpfs rw\n";
        assert!(mountinfo_has(info, Path::new("/mnt/a b")));
        assert!(mountinfo_has(info, Path::new("/run")));
        assert!(!mountinfo_has(info, Path::new("/mnt/a")));
        assert_eq!(unescape("a\\134b\\011"), b"a\\b\t");
    }
}
