//! Writes into procfs that can only land in the procfs file meant: a
//! sysctl, or the calling task's LSM attributes (/proc/thread-self/attr).
//! A container can plant symlinks in its rootfs or mount things over /proc
//! files (a shared volume, a racing second container); if rrun then wrote
//! "through" /proc it could write the host's core_pattern or sysrq-trigger
//! instead (runc CVE-2025-52881 class). So /proc is opened as an fd and
//! checked to be the root of a procfs mount, and every file below it is
//! opened from that fd with openat2 refusing symlinks, magic links and
//! mount crossings, then checked to be on procfs again.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, readlinkat};
use nix::sys::stat::fstat;
use nix::sys::statfs::{PROC_SUPER_MAGIC, fstatfs};

use super::resolve::Root;
use super::{RootfsError, op as err};

/// The inode number of every procfs root directory (PROC_ROOT_INO).
const PROC_ROOT_INO: u64 = 1;

/// An fd of a procfs root, checked to be one.
pub struct ProcFs {
    root: OwnedFd,
}

fn is_procfs(fd: &impl AsFd) -> Result<bool, Errno> {
    Ok(fstatfs(fd.as_fd())?.filesystem_type() == PROC_SUPER_MAGIC)
}

impl ProcFs {
    /// /proc of the calling process's root: the mount on it must be the
    /// root of a procfs (not a symlink, not a bind of some procfs
    /// subdirectory, not another filesystem).
    pub fn open() -> Result<ProcFs, RootfsError> {
        let proc = Path::new("/proc");
        let root = Root::open(Path::new("/")).map_err(err("opening", Path::new("/")))?;
        let fd = root
            .open_in(proc, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW)
            .map_err(err("opening", proc))?;
        let st = fstat(fd.as_fd()).map_err(err("stat", proc))?;
        if !is_procfs(&fd).map_err(err("statfs", proc))? || st.st_ino != PROC_ROOT_INO {
            return Err(RootfsError::Invalid(
                "/proc is not the root of a procfs mount".into(),
            ));
        }
        Ok(ProcFs { root: fd })
    }

    /// The procfs root directory itself.
    pub fn root(&self) -> std::os::fd::BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// Opens `rel` (relative to /proc) without following any symlink and
    /// without leaving the procfs mount, and checks the file is on procfs.
    pub fn open_file(&self, rel: &Path, flags: OFlag) -> Result<OwnedFd, RootfsError> {
        let shown = Path::new("/proc").join(rel);
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS
                    | ResolveFlag::RESOLVE_NO_XDEV,
            );
        let fd =
            super::resolve::openat2(self.root.as_fd(), rel, how).map_err(err("opening", &shown))?;
        if !is_procfs(&fd).map_err(err("statfs", &shown))? {
            return Err(RootfsError::Invalid(format!(
                "{} is not on procfs",
                shown.display()
            )));
        }
        Ok(fd)
    }

    /// The calling thread's directory, as this procfs names it
    /// ("<pid>/task/<tid>", from thread-self; "<pid>" from self on kernels
    /// before 3.17). Read as a link rather than followed, so the path
    /// opened below contains no symlink at all; a procfs of a pid namespace
    /// we are not in has no such link (ENOENT).
    fn thread_self(&self) -> Result<PathBuf, RootfsError> {
        let shown = Path::new("/proc/thread-self");
        match readlinkat(self.root.as_fd(), "thread-self") {
            Ok(p) => Ok(PathBuf::from(p)),
            Err(Errno::ENOENT) => readlinkat(self.root.as_fd(), "self")
                .map(PathBuf::from)
                .map_err(err("reading", Path::new("/proc/self"))),
            Err(e) => Err(err("reading", shown)(e)),
        }
    }

    /// Opens `rel` below the calling thread's directory (`mountinfo`,
    /// `fdinfo/N`), as [`Self::open_file`] does, for reading.
    pub fn open_thread_file(&self, rel: &Path) -> Result<OwnedFd, RootfsError> {
        let base = self.thread_self()?;
        self.open_file(&base.join(rel), OFlag::O_RDONLY)
    }

    /// Opens the first of `names` (paths under the thread's `attr/`) that
    /// exists, for writing; returns it with its name. AppArmor has its own
    /// `attr/apparmor/` since Linux 5.8; older kernels only have the shared
    /// `attr/` files.
    pub fn open_self_attr<'n>(&self, names: &[&'n str]) -> Result<(OwnedFd, &'n str), RootfsError> {
        let base = self.thread_self()?.join("attr");
        let mut last = None;
        for name in names {
            match self.open_file(&base.join(name), OFlag::O_WRONLY) {
                Err(RootfsError::Op {
                    source: Errno::ENOENT,
                    ..
                }) => last = Some(base.join(name)),
                other => return other.map(|fd| (fd, *name)),
            }
        }
        let path = Path::new("/proc").join(last.unwrap_or(base));
        Err(RootfsError::Op {
            op: "opening",
            path,
            source: Errno::ENOENT,
        })
    }

    /// Writes a sysctl (`net.ipv4.ip_forward` is /proc/sys/net/ipv4/ip_forward).
    pub fn write_sysctl(&self, key: &str, value: &str) -> Result<(), RootfsError> {
        let rel = Path::new("sys").join(key.replace('.', "/"));
        let fd = self.open_file(&rel, OFlag::O_WRONLY)?;
        nix::unistd::write(&fd, value.as_bytes())
            .map_err(err("writing sysctl", &Path::new("/proc").join(&rel)))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_the_real_procfs_only() {
        // The test process's /proc is the host's: a procfs root.
        let proc = ProcFs::open().unwrap();
        proc.open_file(Path::new("sys/kernel/ostype"), OFlag::O_RDONLY)
            .unwrap();
        // self is a symlink: refused, whatever it points to.
        assert!(
            proc.open_file(Path::new("self/status"), OFlag::O_RDONLY)
                .is_err()
        );
        // No way out of the procfs root.
        assert!(
            proc.open_file(Path::new("../etc/passwd"), OFlag::O_RDONLY)
                .is_err()
        );
        let me = proc.thread_self().unwrap();
        let pid = std::process::id().to_string();
        assert!(me.starts_with(&pid), "{me:?} is not under {pid}");
    }

    #[test]
    fn opens_the_first_attr_file_that_exists() {
        if !Path::new("/proc/self/attr/exec").exists() {
            return; // a kernel without CONFIG_SECURITY has no attr files
        }
        let proc = ProcFs::open().unwrap();
        let want = if Path::new("/proc/self/attr/apparmor/exec").exists() {
            "apparmor/exec"
        } else {
            "exec"
        };
        let (_, name) = proc
            .open_self_attr(&["no-such-attr", "apparmor/exec", "exec"])
            .unwrap();
        assert_eq!(name, want);
        let e = proc.open_self_attr(&["no-such-attr"]).unwrap_err();
        assert!(e.to_string().contains("no-such-attr"), "{e}");
    }
}
