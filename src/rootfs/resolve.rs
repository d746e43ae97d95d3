//! Path resolution confined to the container root. Every path from
//! config.json (mount destinations, devices, masked paths) is opened with
//! openat2(RESOLVE_IN_ROOT), so a symlink in the rootfs (`/proc -> /`,
//! `../../etc`) resolves inside the root and can never reach the host, and
//! the result is used through its fd (/proc/self/fd/N) so a rename between
//! check and use cannot redirect it (runc CVE-2021-30465).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{Mode, mkdirat};

pub struct Root {
    fd: OwnedFd,
}

/// Lexically normalises `p` relative to the root: drops `.`, folds `..`
/// (never above the root), so mkdir works one plain name at a time.
pub fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// "/proc/self/fd/N": the path through which mount(2) reaches an fd's file.
pub fn fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

impl Root {
    pub fn open(path: &Path) -> Result<Root, Errno> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root { fd })
    }

    /// Opens `p` (O_PATH) inside the root, following symlinks only within it.
    pub fn resolve(&self, p: &Path) -> Result<OwnedFd, Errno> {
        self.open_in(p, OFlag::O_PATH)
    }

    pub fn open_in(&self, p: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
        let rel = clean(p);
        let rel = if rel.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            rel
        };
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        openat2(self.fd.as_fd(), &rel, how)
    }

    /// Like `mkdir -p` inside the root; returns an O_PATH fd of the directory.
    pub fn mkdir_all(&self, p: &Path, mode: u32) -> Result<OwnedFd, Errno> {
        let rel = clean(p);
        match self.resolve(&rel) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
            return Err(Errno::ENOENT);
        };
        let parent_fd = self.mkdir_all(parent, mode)?;
        match mkdirat(parent_fd.as_fd(), name, Mode::from_bits_truncate(mode)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
        self.resolve(&rel)
    }

    /// Makes sure `p` exists as a regular file (creating parents), for a
    /// bind mount of a file; returns an O_PATH fd of it.
    pub fn create_file(&self, p: &Path) -> Result<OwnedFd, Errno> {
        let rel = clean(p);
        match self.resolve(&rel) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
            return Err(Errno::ENOENT);
        };
        let parent_fd = self.mkdir_all(parent, 0o755)?;
        // O_NOFOLLOW|O_EXCL: never create through a symlink planted here.
        match openat(
            parent_fd.as_fd(),
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        ) {
            Ok(_) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
        self.resolve(&rel)
    }

    /// The parent directory of `p` (created if needed) and the final name.
    pub fn parent_of(&self, p: &Path) -> Result<(OwnedFd, PathBuf), Errno> {
        let rel = clean(p);
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
            return Err(Errno::EINVAL);
        };
        Ok((self.mkdir_all(parent, 0o755)?, PathBuf::from(name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn clean_paths() {
        assert_eq!(clean(Path::new("/a/./b/../c")), PathBuf::from("a/c"));
        assert_eq!(clean(Path::new("/../../etc")), PathBuf::from("etc"));
        assert_eq!(clean(Path::new("/")), PathBuf::new());
    }

    #[test]
    fn symlinks_stay_inside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root_dir = tmp.path().join("root");
        std::fs::create_dir(&root_dir).unwrap();
        symlink("/", root_dir.join("evil")).unwrap();
        symlink("../../..", root_dir.join("up")).unwrap();
        let root = Root::open(&root_dir).unwrap();
        // Creating through `evil -> /` must land in the root, not on the host.
        let marker = format!("rrun-resolve-test-{}", std::process::id());
        root.mkdir_all(&Path::new("evil").join(&marker), 0o755)
            .unwrap();
        assert!(root_dir.join(&marker).is_dir());
        assert!(!Path::new("/").join(&marker).exists());
        root.create_file(Path::new("up/file")).unwrap();
        assert!(root_dir.join("file").is_file());
    }
}
