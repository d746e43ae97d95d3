//! Path resolution confined to the container root. Every path from
//! config.json (mount destinations, devices, masked paths) is opened with
//! openat2(RESOLVE_IN_ROOT), so a symlink in the rootfs (`/proc -> /`,
//! `../../etc`) resolves inside the root and can never reach the host, and
//! the result is used through its fd (/proc/self/fd/N) so a rename between
//! check and use cannot redirect it (runc CVE-2021-30465).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, readlinkat};
use nix::sys::stat::{Mode, SFlag, fstat, mkdirat};

use super::RootfsError;

pub struct Root {
    fd: OwnedFd,
    /// (st_dev, st_ino) of the root, taken on first use by `is_root`.
    id: std::cell::OnceCell<(u64, u64)>,
}

/// openat2(2), retried on EAGAIN: with RESOLVE_IN_ROOT or RESOLVE_BENEATH
/// the kernel refuses a lookup of ".." during which any mount or rename
/// happened anywhere on the host (it cannot prove the walk stayed inside),
/// and asks for a retry. A busy host makes that common enough to fail a
/// create now and then; a bounded number of retries makes it vanishing.
pub fn openat2<P: ?Sized + nix::NixPath>(
    dir: std::os::fd::BorrowedFd<'_>,
    path: &P,
    how: OpenHow,
) -> Result<OwnedFd, Errno> {
    let mut tries = 0;
    loop {
        match nix::fcntl::openat2(dir, path, how) {
            Err(Errno::EAGAIN) if tries < 64 => tries += 1,
            other => return other,
        }
    }
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

/// Reads a file the container controls (its /etc/passwd, ...). Open it
/// with O_NONBLOCK: a FIFO planted at the name must not hang rrun (nor a
/// device's open block). Only a regular file is read (ENODATA otherwise,
/// so the caller can say "not a regular file"), and at most `limit` bytes.
pub fn read_regular(fd: OwnedFd, limit: u64) -> Result<String, Errno> {
    use std::io::Read;
    let st = fstat(fd.as_fd())?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err(Errno::ENODATA);
    }
    let mut bytes = Vec::new();
    std::fs::File::from(fd)
        .take(limit)
        .read_to_end(&mut bytes)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

impl Root {
    pub fn open(path: &Path) -> Result<Root, Errno> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root::from_fd(fd))
    }

    /// A root from an already open directory fd.
    pub fn from_fd(fd: OwnedFd) -> Root {
        Root {
            fd,
            id: std::cell::OnceCell::new(),
        }
    }

    /// Opens `p` (O_PATH) inside the root, following symlinks only within it.
    pub fn resolve(&self, p: &Path) -> Result<OwnedFd, Errno> {
        self.open_in(p, OFlag::O_PATH)
    }

    pub fn open_in(&self, p: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
        self.open_with(p, flags, ResolveFlag::RESOLVE_NO_MAGICLINKS)
    }

    /// openat2(RESOLVE_IN_ROOT | `resolve`) of `p`, cleaned, below the root.
    fn open_with(&self, p: &Path, flags: OFlag, resolve: ResolveFlag) -> Result<OwnedFd, Errno> {
        let rel = clean(p);
        let rel = if rel.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            rel
        };
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | resolve);
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

    /// Opens `p` inside the root refusing every symlink on the way (ELOOP):
    /// for the mounts that must land exactly where they are named.
    pub fn open_no_symlinks(&self, p: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
        self.open_with(p, flags, ResolveFlag::RESOLVE_NO_SYMLINKS)
    }

    /// Whether `fd` is the root directory itself (a destination that a
    /// symlink in the rootfs turned into `/`).
    pub fn is_root(&self, fd: &impl AsFd) -> Result<bool, Errno> {
        let me = self.id()?;
        let st = fstat(fd.as_fd())?;
        Ok(me == (st.st_dev, st.st_ino))
    }

    /// The root directory's device and inode (taken once).
    pub fn id(&self) -> Result<(u64, u64), Errno> {
        match self.id.get() {
            Some(id) => Ok(*id),
            None => {
                let st = fstat(self.fd.as_fd())?;
                Ok(*self.id.get_or_init(|| (st.st_dev, st.st_ino)))
            }
        }
    }

    /// Whether `fd` is this root or below it (its path starts with the
    /// root's path, both as the kernel names them).
    pub fn is_beneath(&self, fd: &impl AsRawFd) -> bool {
        match (
            std::fs::read_link(fd_path(&self.fd)),
            std::fs::read_link(fd_path(fd)),
        ) {
            (Ok(root), Ok(p)) => p.starts_with(root),
            _ => false,
        }
    }

    /// The O_PATH fd of a bind mount's `source` (absolute, on the host):
    /// host symlinks followed on the host, but anything from the moment
    /// the walk stands in this root resolved inside it (`locate_source`).
    pub fn bind_source(&self, source: &Path) -> Result<OwnedFd, Errno> {
        let source = Path::new("/").join(clean(source));
        match locate_source(&source, self.id()?)? {
            SourceLoc::Host(fd) => Ok(fd),
            SourceLoc::InRoot(rel) => self.resolve(&rel),
        }
    }

    /// Where `fd` is inside the root, as an absolute container path (for
    /// messages and checks of where a symlink led); None when it is not
    /// below the root at all.
    pub fn path_of(&self, fd: &impl AsRawFd) -> Option<PathBuf> {
        let root = std::fs::read_link(fd_path(&self.fd)).ok()?;
        let p = std::fs::read_link(fd_path(fd)).ok()?;
        p.strip_prefix(&root).ok().map(|r| Path::new("/").join(r))
    }

    /// An error about `path` in the rootfs: when the errno comes from the
    /// rootfs's own contents (a dangling symlink, a file where a directory
    /// must be, a symlink to `/`), say which entry is wrong and how, since
    /// "ENOENT" about a path that exists in the config helps nobody.
    pub fn error(&self, op: &'static str, path: &Path, source: Errno) -> RootfsError {
        let why = match source {
            Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP | Errno::EEXIST | Errno::EXDEV => {
                self.diagnose(path)
            }
            _ => None,
        };
        match why {
            Some(why) => RootfsError::InRootfs {
                op,
                path: path.to_path_buf(),
                why,
            },
            None => RootfsError::Op {
                op,
                path: path.to_path_buf(),
                source,
            },
        }
    }

    /// The first symlink on the way to `p`, and where it points, in words.
    pub fn first_symlink(&self, p: &Path) -> Option<String> {
        let mut prefix = PathBuf::new();
        for c in clean(p).components() {
            prefix.push(c);
            let entry = self
                .open_in(&prefix, OFlag::O_PATH | OFlag::O_NOFOLLOW)
                .ok()?;
            if let Ok(t) = readlinkat(entry.as_fd(), "") {
                return Some(format!(
                    "{} in the rootfs is a symlink to {:?}",
                    Path::new("/").join(&prefix).display(),
                    t.to_string_lossy()
                ));
            }
        }
        None
    }

    /// The first entry on the way to `p` that cannot be walked: a symlink
    /// whose target is missing, loops, is not a directory (when more
    /// components follow) or is the root itself; or a non-directory in
    /// the middle. Only called on the error path.
    pub fn diagnose(&self, p: &Path) -> Option<String> {
        let rel = clean(p);
        let n = rel.components().count();
        let mut prefix = PathBuf::new();
        for (i, c) in rel.components().enumerate() {
            prefix.push(c);
            let shown = Path::new("/").join(&prefix);
            let last = i + 1 == n;
            let entry = self
                .open_in(&prefix, OFlag::O_PATH | OFlag::O_NOFOLLOW)
                .ok()?;
            let st = fstat(entry.as_fd()).ok()?;
            let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
            if kind != SFlag::S_IFLNK {
                if !last && kind != SFlag::S_IFDIR {
                    return Some(format!(
                        "{} in the rootfs is not a directory",
                        shown.display()
                    ));
                }
                continue;
            }
            let target = readlinkat(entry.as_fd(), "")
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            let link = format!(
                "{} in the rootfs is a symlink to {target:?}",
                shown.display()
            );
            match self.resolve(&prefix) {
                Err(Errno::ENOENT) => return Some(format!("{link}, which does not exist")),
                Err(Errno::ELOOP) => return Some(format!("{link}, which loops")),
                Err(Errno::ENOTDIR) => {
                    return Some(format!("{link}, which goes through a non-directory"));
                }
                Err(_) => return None,
                Ok(fd) => {
                    if self.is_root(&fd).unwrap_or(false) {
                        return Some(format!("{link}, which is the rootfs's / itself"));
                    }
                    let dir = fstat(fd.as_fd()).is_ok_and(|s| {
                        SFlag::from_bits_truncate(s.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
                    });
                    if !last && !dir {
                        return Some(format!("{link}, which is not a directory"));
                    }
                }
            }
        }
        None
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

/// Where a bind mount's source is: a host path, or a path inside the
/// rootfs (an image's directory, whose symlinks are the image's).
pub enum SourceLoc {
    /// Resolved on the host (O_PATH fd).
    Host(OwnedFd),
    /// The rest of the path, below the rootfs: to be resolved inside it.
    InRoot(PathBuf),
}

/// Walks `source` on the host one component at a time, following host
/// symlinks itself, and stops as soon as it stands in the rootfs
/// directory (`rootfs_id`: its device and inode). The rest is returned to
/// be resolved inside the root. So a source that reaches the rootfs by any
/// spelling (a relative `rootfs/vol`, an alias path, a host symlink into
/// the bundle) never follows a symlink of the image on the host
/// (`rootfs/vol -> /` would otherwise bind the host's `/`).
pub fn locate_source(source: &Path, rootfs_id: (u64, u64)) -> Result<SourceLoc, Errno> {
    use std::collections::VecDeque;
    use std::ffi::OsString;
    let open = |dir: &OwnedFd, name: &Path| {
        openat(
            dir.as_fd(),
            name,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    };
    let root_dir = || {
        nix::fcntl::open(
            "/",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    };
    let id = |fd: &OwnedFd| fstat(fd.as_fd()).map(|st| (st.st_dev, st.st_ino));
    let mut rest: VecDeque<OsString> = VecDeque::new();
    let push_front = |rest: &mut VecDeque<OsString>, p: &Path| {
        for c in p.components().rev() {
            match c {
                Component::Normal(n) => rest.push_front(n.to_os_string()),
                Component::ParentDir => rest.push_front("..".into()),
                Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            }
        }
    };
    if !source.is_absolute() {
        return Err(Errno::EINVAL);
    }
    push_front(&mut rest, source);
    let mut cur = root_dir()?;
    let mut links = 0;
    while let Some(name) = rest.pop_front() {
        if id(&cur)? == rootfs_id {
            rest.push_front(name);
            return Ok(SourceLoc::InRoot(rest.iter().collect()));
        }
        let next = open(&cur, Path::new(&name))?;
        let st = fstat(next.as_fd())?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK {
            links += 1;
            if links > 40 {
                return Err(Errno::ELOOP);
            }
            let target = readlinkat(cur.as_fd(), Path::new(&name))?;
            let target = Path::new(&target);
            if target.is_absolute() {
                cur = root_dir()?;
            }
            push_front(&mut rest, target);
            continue;
        }
        cur = next;
    }
    if id(&cur)? == rootfs_id {
        return Ok(SourceLoc::InRoot(PathBuf::new()));
    }
    Ok(SourceLoc::Host(cur))
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

    #[test]
    fn reads_regular_files_only_and_bounded() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("passwd");
        std::fs::write(&f, "root:x:0:0::/root:/bin/sh\n").unwrap();
        nix::unistd::mkfifo(&tmp.path().join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        let root = Root::open(tmp.path()).unwrap();
        let open = |p: &str| {
            root.open_in(Path::new(p), OFlag::O_RDONLY | OFlag::O_NONBLOCK)
                .unwrap()
        };
        assert_eq!(read_regular(open("passwd"), 4).unwrap(), "root");
        // Opened without a writer and refused without a read: no hang.
        assert_eq!(read_regular(open("fifo"), 4), Err(Errno::ENODATA));
    }

    #[test]
    fn diagnoses_hostile_links() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        symlink("/missing", r.join("dev")).unwrap();
        symlink("/", r.join("proc")).unwrap();
        std::fs::write(r.join("file"), "").unwrap();
        symlink("file", r.join("tofile")).unwrap();
        symlink("loop", r.join("loop")).unwrap();
        let root = Root::open(r).unwrap();
        let d = |p: &str| root.diagnose(Path::new(p)).unwrap_or_default();
        assert!(
            d("/dev/null")
                .contains("/dev in the rootfs is a symlink to \"/missing\", which does not exist")
        );
        assert!(
            d("/proc").contains("the rootfs's / itself"),
            "{}",
            d("/proc")
        );
        assert!(d("/file/x").contains("/file in the rootfs is not a directory"));
        assert!(d("/tofile/x").contains("which is not a directory"));
        assert!(d("/loop/x").contains("loops"));
        assert_eq!(root.diagnose(Path::new("/nothing/here")), None);
        let e = root.error("resolving", Path::new("/dev/null"), Errno::ENOENT);
        assert!(e.to_string().contains("/missing"), "{e}");
    }
}
