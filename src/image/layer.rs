//! Applying one layer (a tar stream) to the rootfs, with OCI whiteouts.
//!
//! Every entry is written through a directory fd that was resolved inside
//! the rootfs with openat2(RESOLVE_IN_ROOT), and the final name is created
//! with the *at syscalls and O_NOFOLLOW/O_EXCL: a hostile layer (`../x`,
//! absolute paths, `link -> /` followed by `link/etc/x`, a hard link to
//! `/etc/passwd`) can only ever reach files inside the rootfs. Entries are
//! streamed: memory does not grow with the size of an entry or a layer
//! (only with the number of entries, for the whiteout bookkeeping).
//!
//! This module never decides where a layer comes from or whether its digest
//! is right; the caller streams verified bytes in.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{
    FchmodatFlags, Mode, SFlag, UtimensatFlags, fchmod, fchmodat, fstatat, futimens, makedev,
    mknodat, utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{
    Gid, Uid, UnlinkatFlags, fchown, fchownat, linkat, mkfifoat, symlinkat, unlinkat,
};
use thiserror::Error;

use crate::rootfs::resolve::Root;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";
/// Large enough that a big file costs few syscalls, small enough to keep
/// memory flat.
const COPY_BUFFER: usize = 256 * 1024;

#[derive(Debug, Error)]
pub enum LayerError {
    #[error("reading the layer: {0}")]
    Read(#[source] io::Error),
    #[error("entry {0:?}: path escapes the rootfs")]
    Escapes(PathBuf),
    #[error("entry {0:?}: malformed whiteout")]
    BadWhiteout(PathBuf),
    #[error("entry {path:?}: unsupported tar entry type {kind}")]
    Unsupported { path: PathBuf, kind: String },
    #[error("entry {path:?}: hard link to {target:?}: {why}")]
    Hardlink {
        path: PathBuf,
        target: PathBuf,
        why: String,
    },
    #[error("entry {path:?}: {what}: {errno}")]
    Sys {
        path: PathBuf,
        what: &'static str,
        errno: Errno,
    },
    #[error("entry {path:?}: writing: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// One contiguous range of an id map (as in config.json's uidMappings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

/// The owners given to unpacked files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// The ids in the layer, as they are (rrun runs as root).
    Preserve,
    /// Container ids mapped to host ids through the bundle's user namespace
    /// maps (rrun runs as root, bundle is rootless).
    Map {
        uids: Vec<IdRange>,
        gids: Vec<IdRange>,
    },
    /// Unprivileged rrun cannot chown: every file stays ours, which is what
    /// a rootless bundle maps to root anyway.
    Unchanged,
}

/// The host id of container id `id`. Ids outside the maps go to the owner
/// of container root: with the usual one-id rootless map, the alternative
/// (the overflow id) would leave files like /var/spool/mail unwritable by
/// anyone in the container (umoci --rootless does the same).
pub fn map_id(ranges: &[IdRange], id: u32) -> u32 {
    let lookup = |id: u32| {
        ranges.iter().find_map(|r| {
            let off = id.checked_sub(r.container)?;
            (off < r.size).then(|| r.host + off)
        })
    };
    lookup(id).or_else(|| lookup(0)).unwrap_or(id)
}

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub ownership: Ownership,
    /// Device nodes are created only by a root rrun for a bundle that is
    /// not rootless: a device node owned by an unprivileged user is a way
    /// around the device cgroup, which rootless containers do not have.
    pub allow_devices: bool,
    /// Not root: directories stay owner-writable (u+rwx) so later entries
    /// and layers can be written into them and a failed unpack removed.
    pub unprivileged: bool,
    /// What a whiteout does.
    pub whiteouts: Whiteouts,
}

/// How a layer's whiteouts are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Whiteouts {
    /// Applied: the layer goes onto the lower layers' files, and a
    /// whiteout removes what they put there (a flat rootfs, `rrun unpack`).
    #[default]
    Apply,
    /// Kept, in overlayfs's format: the layer goes into a directory of its
    /// own (an overlay lower layer), `.wh.NAME` becomes a 0/0 character
    /// device NAME and `.wh..wh..opq` the xattr trusted.overlay.opaque=y
    /// on its directory. The layer's own `trusted.overlay.*` and
    /// `user.overlay.*` xattrs are dropped: only these two markers may
    /// steer overlayfs (a planted redirect or metacopy xattr could send a
    /// lookup elsewhere in the layers).
    Overlay,
}

const OVERLAY_OPAQUE: &str = "trusted.overlay.opaque";

#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub entries: u64,
    pub bytes: u64,
    pub skipped_devices: u64,
    pub skipped_xattrs: u64,
}

/// What an entry's (cleaned) path means.
#[derive(Debug, PartialEq, Eq)]
pub enum Kind {
    /// Write the entry at this path.
    Normal,
    /// `.wh.NAME`: remove NAME (from lower layers).
    Whiteout(PathBuf),
    /// `.wh..wh..opq`: hide everything lower layers put in this directory.
    Opaque(PathBuf),
    /// Other `.wh..wh.` names are aufs bookkeeping: not content.
    Ignore,
}

/// Cleans an entry's path to a relative path inside the rootfs: leading
/// `/` and `./` dropped (tar -P and `tar -C dir .` archives), `..` folded
/// lexically; a `..` that would climb above the rootfs is an error rather
/// than silently clamped, since only a hostile archive has one.
pub fn clean_entry_path(p: &Path) -> Result<PathBuf, LayerError> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                if !out.pop() {
                    return Err(LayerError::Escapes(p.to_path_buf()));
                }
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Ok(out)
}

/// Classifies a cleaned entry path (OCI image-spec layer.md whiteouts).
pub fn classify(rel: &Path) -> Result<Kind, LayerError> {
    let Some(name) = rel.file_name().and_then(OsStr::to_str) else {
        return Ok(Kind::Normal);
    };
    let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) else {
        return Ok(Kind::Normal);
    };
    let dir = rel.parent().unwrap_or(Path::new("")).to_path_buf();
    if name == OPAQUE_WHITEOUT {
        return Ok(Kind::Opaque(dir));
    }
    if hidden.starts_with(WHITEOUT_PREFIX) {
        return Ok(Kind::Ignore);
    }
    if hidden.is_empty() || hidden == "." || hidden == ".." {
        return Err(LayerError::BadWhiteout(rel.to_path_buf()));
    }
    Ok(Kind::Whiteout(dir.join(hidden)))
}

/// A pax time ("1700000000.5") as seconds and nanoseconds.
pub fn parse_pax_time(s: &str) -> Option<(i64, i64)> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut digits: String = frac.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    let nanos: i64 = digits.parse().ok()?;
    // A negative time with a fraction counts down from secs.
    Some(if secs < 0 && nanos > 0 {
        (secs - 1, 1_000_000_000 - nanos)
    } else {
        (secs, nanos)
    })
}

/// The metadata of one entry, gathered from its header and pax records.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: TimeSpec,
    atime: TimeSpec,
    xattrs: Vec<(String, Vec<u8>)>,
}

/// A directory whose mode and times are set when the layer is done:
/// writing its children would change its mtime, and a read-only mode
/// would stop an unprivileged unpack from writing them.
struct DeferredDir {
    rel: PathBuf,
    mode: u32,
    atime: TimeSpec,
    mtime: TimeSpec,
}

struct Applier<'a> {
    root: &'a Root,
    opts: &'a ApplyOptions,
    /// Paths written by this layer and all their ancestors: whiteouts only
    /// hide what lower layers wrote, whatever the order of the entries.
    touched: HashSet<PathBuf>,
    dirs: Vec<DeferredDir>,
    /// The last parent directory resolved: entries of a directory usually
    /// come together, so most entries skip the openat2 walk.
    parent: Option<(PathBuf, OwnedFd)>,
    buf: Vec<u8>,
    stats: &'a mut Stats,
    /// Overlay format: whiteouts and opaque directories, written when the
    /// layer's entries are done (an entry of the same layer wins whatever
    /// the order, as in Apply mode).
    pending_whiteouts: Vec<PathBuf>,
    pending_opaque: Vec<PathBuf>,
}

fn sys<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(Errno) -> LayerError + 'a {
    move |errno| LayerError::Sys {
        path: path.to_path_buf(),
        what,
        errno,
    }
}

fn is_dir(st: &nix::sys::stat::FileStat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

/// `rm -rf` of `name` in `dir`, never following a symlink.
pub fn remove_all_at(dir: BorrowedFd<'_>, name: &Path) -> Result<(), Errno> {
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => return Ok(()),
        Err(Errno::EISDIR) => {}
        Err(e) => return Err(e),
    }
    let fd = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // An unprivileged owner cannot empty a directory it made read-only.
    let _ = fchmod(&fd, Mode::from_bits_truncate(0o700));
    for child in list_dir(&fd)? {
        remove_all_at(fd.as_fd(), Path::new(&child))?;
    }
    unlinkat(dir, name, UnlinkatFlags::RemoveDir)
}

/// The names in a directory (without `.` and `..`).
fn list_dir(fd: &OwnedFd) -> Result<Vec<std::ffi::OsString>, Errno> {
    let mut d = nix::dir::Dir::from_fd(fd.try_clone().map_err(|_| Errno::EMFILE)?)?;
    let mut names = Vec::new();
    for e in d.iter() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    Ok(names)
}

fn open_dir_nofollow(dir: BorrowedFd<'_>, name: &Path) -> Result<OwnedFd, Errno> {
    openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

fn file_name(rel: &Path) -> &Path {
    rel.file_name().map(Path::new).unwrap_or(Path::new("."))
}

impl Applier<'_> {
    /// The parent directory of `rel` (created if missing), resolved inside
    /// the root.
    /// An owned copy of `parent_fd`, for entries that also need `&mut self`
    /// (make_room) while they use their parent directory.
    fn parent_dir(&mut self, rel: &Path) -> Result<OwnedFd, LayerError> {
        self.parent_fd(rel)?
            .try_clone_to_owned()
            .map_err(|e| LayerError::Write {
                path: rel.to_path_buf(),
                source: e,
            })
    }

    fn parent_fd(&mut self, rel: &Path) -> Result<BorrowedFd<'_>, LayerError> {
        let parent = rel.parent().unwrap_or(Path::new(""));
        if self.parent.as_ref().is_none_or(|(p, _)| p != parent) {
            let fd = self
                .root
                .mkdir_all(parent, 0o755)
                .map_err(sys(rel, "resolving its parent directory"))?;
            self.parent = Some((parent.to_path_buf(), fd));
        }
        let (_, fd) = self.parent.as_ref().expect("parent cache was just filled");
        Ok(fd.as_fd())
    }

    fn touch(&mut self, rel: &Path) {
        let mut p = rel;
        while self.touched.insert(p.to_path_buf()) {
            match p.parent() {
                Some(parent) => p = parent,
                None => break,
            }
        }
    }

    /// Removes `rel` as a lower layer left it.
    fn whiteout(&mut self, rel: &Path) -> Result<(), LayerError> {
        if self.opts.whiteouts == Whiteouts::Overlay {
            self.pending_whiteouts.push(rel.to_path_buf());
            return Ok(());
        }
        if self.touched.contains(rel) {
            return Ok(());
        }
        self.parent = None;
        let parent = rel.parent().unwrap_or(Path::new(""));
        let dir = match self.root.resolve(parent) {
            Ok(fd) => fd,
            Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(()),
            Err(e) => return Err(sys(rel, "resolving a whiteout's directory")(e)),
        };
        remove_all_at(dir.as_fd(), file_name(rel)).map_err(sys(rel, "removing a whited-out path"))
    }

    /// Empties directory `rel` of what lower layers put there.
    fn opaque(&mut self, rel: &Path) -> Result<(), LayerError> {
        if self.opts.whiteouts == Whiteouts::Overlay {
            self.pending_opaque.push(rel.to_path_buf());
            return Ok(());
        }
        self.parent = None;
        let dir = if rel.as_os_str().is_empty() {
            self.root
                .open_in(Path::new("."), OFlag::O_RDONLY | OFlag::O_DIRECTORY)
        } else {
            let parent = rel.parent().unwrap_or(Path::new(""));
            self.root
                .resolve(parent)
                .and_then(|p| open_dir_nofollow(p.as_fd(), file_name(rel)))
        };
        let dir = match dir {
            Ok(fd) => fd,
            Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => return Ok(()),
            Err(e) => return Err(sys(rel, "opening an opaque directory")(e)),
        };
        self.clear_lower(&dir, rel)
    }

    fn clear_lower(&self, dir: &OwnedFd, rel: &Path) -> Result<(), LayerError> {
        for name in list_dir(dir).map_err(sys(rel, "listing an opaque directory"))? {
            let child = rel.join(&name);
            let name = Path::new(&name);
            if !self.touched.contains(&child) {
                remove_all_at(dir.as_fd(), name).map_err(sys(&child, "removing a lower entry"))?;
                continue;
            }
            // Written by this layer: keep it, but a directory may still
            // hold lower entries underneath.
            let st = fstatat(dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(sys(&child, "stat"))?;
            if is_dir(&st) {
                let sub = open_dir_nofollow(dir.as_fd(), name).map_err(sys(&child, "open"))?;
                self.clear_lower(&sub, &child)?;
            }
        }
        Ok(())
    }

    fn owner(&self, meta: &Meta) -> Option<(Uid, Gid)> {
        match &self.opts.ownership {
            Ownership::Preserve => Some((meta.uid, meta.gid)),
            Ownership::Map { uids, gids } => Some((map_id(uids, meta.uid), map_id(gids, meta.gid))),
            Ownership::Unchanged => None,
        }
        .map(|(u, g)| (Uid::from_raw(u), Gid::from_raw(g)))
    }

    /// Applies xattrs; those the kernel or filesystem refuses for lack of
    /// privilege or support (trusted.* unprivileged, user.* on tmpfs of old
    /// kernels) are counted and skipped, anything else is an error.
    fn set_xattrs(
        &mut self,
        rel: &Path,
        meta: &Meta,
        set: impl Fn(&str, &[u8]) -> io::Result<()>,
    ) -> Result<(), LayerError> {
        for (k, v) in &meta.xattrs {
            if self.opts.whiteouts == Whiteouts::Overlay
                && (k.starts_with("trusted.overlay.") || k.starts_with("user.overlay."))
            {
                self.stats.skipped_xattrs += 1;
                continue;
            }
            match set(k, v) {
                Ok(()) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EPERM | libc::EOPNOTSUPP | libc::EACCES)
                    ) =>
                {
                    self.stats.skipped_xattrs += 1
                }
                Err(e) => {
                    return Err(sys(rel, "setting an xattr")(Errno::from_raw(
                        e.raw_os_error().unwrap_or(libc::EIO),
                    )));
                }
            }
        }
        Ok(())
    }

    /// Removes whatever is at `name` unless it is a directory and the entry
    /// is one too (directories merge across layers).
    fn make_room(
        &self,
        dir: BorrowedFd<'_>,
        rel: &Path,
        keep_dir: bool,
    ) -> Result<bool, LayerError> {
        let name = file_name(rel);
        match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if keep_dir && is_dir(&st) => Ok(true),
            Ok(_) => {
                remove_all_at(dir, name).map_err(sys(rel, "replacing an existing entry"))?;
                Ok(false)
            }
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(sys(rel, "stat")(e)),
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), LayerError> {
        let etype = entry.header().entry_type();
        if matches!(
            etype,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            return Ok(());
        }
        let meta = read_meta(entry)?;
        let raw = entry.path().map_err(LayerError::Read)?.into_owned();
        let rel = clean_entry_path(&raw)?;
        match classify(&rel)? {
            Kind::Ignore => return Ok(()),
            Kind::Whiteout(target) => return self.whiteout(&target),
            Kind::Opaque(dir) => return self.opaque(&dir),
            Kind::Normal => {}
        }
        self.stats.entries += 1;
        if rel.as_os_str().is_empty() {
            // "./": the rootfs directory itself.
            if etype.is_dir() {
                let fd = self
                    .root
                    .open_in(Path::new("."), OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                    .map_err(sys(&rel, "open"))?;
                self.dir_meta(&rel, fd, &meta)?;
            }
            return Ok(());
        }
        // A cached parent under this path may be replaced by this entry.
        if self
            .parent
            .as_ref()
            .is_some_and(|(p, _)| p.starts_with(&rel))
        {
            self.parent = None;
        }
        match etype {
            tar::EntryType::Directory => self.directory(&rel, &meta)?,
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                self.regular(&rel, &meta, entry)?
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(LayerError::Read)?
                    .ok_or_else(|| LayerError::Unsupported {
                        path: rel.clone(),
                        kind: "symlink without a target".into(),
                    })?
                    .into_owned();
                self.symlink(&rel, &target, &meta)?
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(LayerError::Read)?
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                self.hardlink(&rel, &target)?
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let major = entry.header().device_major().ok().flatten().unwrap_or(0);
                let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
                self.special(&rel, etype, makedev(major.into(), minor.into()), &meta)?
            }
            other => {
                return Err(LayerError::Unsupported {
                    path: rel,
                    kind: format!("{other:?}"),
                });
            }
        }
        self.touch(&rel);
        Ok(())
    }

    fn dir_meta(&mut self, rel: &Path, fd: OwnedFd, meta: &Meta) -> Result<(), LayerError> {
        if let Some((u, g)) = self.owner(meta) {
            fchown(&fd, Some(u), Some(g)).map_err(sys(rel, "chown"))?;
        }
        let file = File::from(fd);
        self.set_xattrs(rel, meta, |k, v| xattr::FileExt::set_xattr(&file, k, v))?;
        self.dirs.push(DeferredDir {
            rel: rel.to_path_buf(),
            mode: meta.mode,
            atime: meta.atime,
            mtime: meta.mtime,
        });
        Ok(())
    }

    fn directory(&mut self, rel: &Path, meta: &Meta) -> Result<(), LayerError> {
        let dir = self.parent_dir(rel)?;
        let name = file_name(rel);
        if !self.make_room(dir.as_fd(), rel, true)? {
            nix::sys::stat::mkdirat(dir.as_fd(), name, Mode::from_bits_truncate(0o700))
                .map_err(sys(rel, "mkdir"))?;
        }
        let fd = open_dir_nofollow(dir.as_fd(), name).map_err(sys(rel, "open"))?;
        self.dir_meta(rel, fd, meta)
    }

    fn regular<R: Read>(
        &mut self,
        rel: &Path,
        meta: &Meta,
        data: &mut tar::Entry<'_, R>,
    ) -> Result<(), LayerError> {
        let dir = self.parent_dir(rel)?;
        self.make_room(dir.as_fd(), rel, false)?;
        // O_EXCL|O_NOFOLLOW: never write through anything already there.
        let fd = openat(
            dir.as_fd(),
            file_name(rel),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(sys(rel, "create"))?;
        let mut file = File::from(fd);
        loop {
            let n = match data.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(LayerError::Read(e)),
            };
            file.write_all(&self.buf[..n])
                .map_err(|e| LayerError::Write {
                    path: rel.to_path_buf(),
                    source: e,
                })?;
            self.stats.bytes += n as u64;
        }
        // chown before chmod: chown clears the set-id bits.
        if let Some((u, g)) = self.owner(meta) {
            fchown(&file, Some(u), Some(g)).map_err(sys(rel, "chown"))?;
        }
        fchmod(&file, Mode::from_bits_truncate(meta.mode)).map_err(sys(rel, "chmod"))?;
        self.set_xattrs(rel, meta, |k, v| xattr::FileExt::set_xattr(&file, k, v))?;
        futimens(&file, &meta.atime, &meta.mtime).map_err(sys(rel, "setting times"))
    }

    /// xattrs and times of a non-regular, non-directory entry, by name in
    /// its parent, never following it.
    fn at_meta(
        &mut self,
        dir: &OwnedFd,
        rel: &Path,
        meta: &Meta,
        chmod: bool,
    ) -> Result<(), LayerError> {
        let name = file_name(rel);
        if let Some((u, g)) = self.owner(meta) {
            fchownat(dir, name, Some(u), Some(g), AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(sys(rel, "chown"))?;
        }
        if chmod {
            fchmodat(
                dir,
                name,
                Mode::from_bits_truncate(meta.mode),
                FchmodatFlags::NoFollowSymlink,
            )
            .map_err(sys(rel, "chmod"))?;
        }
        if !meta.xattrs.is_empty() {
            // lsetxattr on "/proc/self/fd/DIR/NAME": the directory is the
            // one resolved in the root, the final name is not followed.
            let path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name);
            self.set_xattrs(rel, meta, |k, v| xattr::set(&path, k, v))?;
        }
        utimensat(
            dir,
            name,
            &meta.atime,
            &meta.mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(sys(rel, "setting times"))
    }

    fn symlink(&mut self, rel: &Path, target: &Path, meta: &Meta) -> Result<(), LayerError> {
        let dir = self.parent_dir(rel)?;
        self.make_room(dir.as_fd(), rel, false)?;
        // The target is stored verbatim: it is only ever resolved later
        // inside the container root (or by RESOLVE_IN_ROOT here).
        symlinkat(target, dir.as_fd(), file_name(rel)).map_err(sys(rel, "symlink"))?;
        self.at_meta(&dir, rel, meta, false)
    }

    fn hardlink(&mut self, rel: &Path, target: &Path) -> Result<(), LayerError> {
        let bad = |why: String| LayerError::Hardlink {
            path: rel.to_path_buf(),
            target: target.to_path_buf(),
            why,
        };
        let trel = clean_entry_path(target).map_err(|_| bad("escapes the rootfs".into()))?;
        if trel.as_os_str().is_empty() || trel == rel {
            return Err(bad("not a file of the layer".into()));
        }
        let tdir = self
            .root
            .resolve(trel.parent().unwrap_or(Path::new("")))
            .map_err(|e| bad(format!("resolving its directory: {e}")))?;
        let dir = self.parent_dir(rel)?;
        self.make_room(dir.as_fd(), rel, false)?;
        // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink, as
        // tar does; the target's directory was resolved inside the root.
        linkat(
            &tdir,
            file_name(&trel),
            &dir,
            file_name(rel),
            AtFlags::empty(),
        )
        .map_err(|e| bad(e.to_string()))
    }

    fn special(
        &mut self,
        rel: &Path,
        etype: tar::EntryType,
        dev: u64,
        meta: &Meta,
    ) -> Result<(), LayerError> {
        let is_fifo = etype == tar::EntryType::Fifo;
        if !is_fifo && !self.opts.allow_devices {
            self.stats.skipped_devices += 1;
            return Ok(());
        }
        let dir = self.parent_dir(rel)?;
        self.make_room(dir.as_fd(), rel, false)?;
        let name = file_name(rel);
        let perm = Mode::from_bits_truncate(0o600);
        if is_fifo {
            mkfifoat(&dir, name, perm).map_err(sys(rel, "mkfifo"))?;
        } else {
            let kind = if etype == tar::EntryType::Char {
                SFlag::S_IFCHR
            } else {
                SFlag::S_IFBLK
            };
            mknodat(&dir, name, kind, perm, dev).map_err(sys(rel, "mknod"))?;
        }
        self.at_meta(&dir, rel, meta, true)
    }

    /// Overlay format: writes the whiteouts (0/0 character devices) and
    /// opaque markers collected from the layer. A whiteout of a path the
    /// layer itself wrote, or below another whiteout, is dropped.
    fn finish_overlay_markers(&mut self) -> Result<(), LayerError> {
        self.parent = None;
        let whiteouts = std::mem::take(&mut self.pending_whiteouts);
        let hidden: HashSet<&Path> = whiteouts.iter().map(PathBuf::as_path).collect();
        for rel in &whiteouts {
            let under_another = rel.ancestors().skip(1).any(|a| hidden.contains(a));
            if self.touched.contains(rel) || under_another {
                continue;
            }
            let dir = self.parent_dir(rel)?;
            self.make_room(dir.as_fd(), rel, false)?;
            mknodat(
                &dir,
                file_name(rel),
                SFlag::S_IFCHR,
                Mode::empty(),
                makedev(0, 0),
            )
            .map_err(sys(rel, "creating a whiteout (mknod 0/0)"))?;
        }
        self.parent = None;
        for rel in std::mem::take(&mut self.pending_opaque) {
            if rel.as_os_str().is_empty() {
                // The layer's root: overlayfs reads no opaque marker there
                // (its lower roots always merge).
                continue;
            }
            let fd = self
                .root
                .mkdir_all(&rel, 0o755)
                .map_err(sys(&rel, "resolving an opaque directory"))?;
            let parent = self
                .root
                .resolve(rel.parent().unwrap_or(Path::new("")))
                .map_err(sys(&rel, "resolving an opaque directory"))?;
            // O_PATH fd was resolved in the root: reopen it as a directory,
            // never following a symlink swapped in at the last name.
            drop(fd);
            let dir = open_dir_nofollow(parent.as_fd(), file_name(&rel))
                .map_err(sys(&rel, "opening an opaque directory"))?;
            let file = File::from(dir);
            xattr::FileExt::set_xattr(&file, OVERLAY_OPAQUE, b"y").map_err(|e| {
                sys(&rel, "setting trusted.overlay.opaque")(Errno::from_raw(
                    e.raw_os_error().unwrap_or(libc::EIO),
                ))
            })?;
        }
        Ok(())
    }

    /// Sets the deferred directory modes and times, deepest first.
    fn finish_dirs(&mut self) -> Result<(), LayerError> {
        self.parent = None;
        let dirs = std::mem::take(&mut self.dirs);
        for d in dirs.iter().rev() {
            let fd = if d.rel.as_os_str().is_empty() {
                self.root
                    .open_in(Path::new("."), OFlag::O_RDONLY | OFlag::O_DIRECTORY)
            } else {
                self.root
                    .resolve(d.rel.parent().unwrap_or(Path::new("")))
                    .and_then(|p| open_dir_nofollow(p.as_fd(), file_name(&d.rel)))
            };
            let fd = match fd {
                Ok(fd) => fd,
                // Replaced or removed by a later entry of the layer.
                Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => continue,
                Err(e) => return Err(sys(&d.rel, "open")(e)),
            };
            let mode = if self.opts.unprivileged {
                d.mode | 0o700
            } else {
                d.mode
            };
            fchmod(&fd, Mode::from_bits_truncate(mode)).map_err(sys(&d.rel, "chmod"))?;
            futimens(&fd, &d.atime, &d.mtime).map_err(sys(&d.rel, "setting times"))?;
        }
        Ok(())
    }
}

fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Meta, LayerError> {
    let h = entry.header();
    let mode = h.mode().map_err(LayerError::Read)? & 0o7777;
    let mut uid = h.uid().map_err(LayerError::Read)?;
    let mut gid = h.gid().map_err(LayerError::Read)?;
    let mtime = h.mtime().map_err(LayerError::Read)?;
    let mut mtime = (i64::try_from(mtime).unwrap_or(i64::MAX), 0);
    let mut atime = None;
    let mut xattrs = Vec::new();
    if let Some(pax) = entry.pax_extensions().map_err(LayerError::Read)? {
        for ext in pax {
            let ext = ext.map_err(LayerError::Read)?;
            let Ok(key) = ext.key() else { continue };
            let value = ext.value_bytes();
            let text = std::str::from_utf8(value).ok();
            match key {
                "uid" => uid = text.and_then(|t| t.parse().ok()).unwrap_or(uid),
                "gid" => gid = text.and_then(|t| t.parse().ok()).unwrap_or(gid),
                "mtime" => mtime = text.and_then(parse_pax_time).unwrap_or(mtime),
                "atime" => atime = text.and_then(parse_pax_time),
                _ => {
                    if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                        xattrs.push((name.to_string(), value.to_vec()));
                    }
                }
            }
        }
    }
    let id = |v: u64| {
        u32::try_from(v).map_err(|_| {
            LayerError::Read(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("id {v} out of range"),
            ))
        })
    };
    let mtime = TimeSpec::new(mtime.0, mtime.1);
    Ok(Meta {
        mode,
        uid: id(uid)?,
        gid: id(gid)?,
        mtime,
        atime: atime.map_or(mtime, |(s, n)| TimeSpec::new(s, n)),
        xattrs,
    })
}

/// Applies the tar stream `reader` to the rootfs `root`.
pub fn apply_layer<R: Read>(
    root: &Root,
    reader: R,
    opts: &ApplyOptions,
    stats: &mut Stats,
) -> Result<(), LayerError> {
    let mut archive = tar::Archive::new(reader);
    let mut a = Applier {
        root,
        opts,
        touched: HashSet::new(),
        dirs: Vec::new(),
        parent: None,
        buf: vec![0; COPY_BUFFER],
        stats,
        pending_whiteouts: Vec::new(),
        pending_opaque: Vec::new(),
    };
    for entry in archive.entries().map_err(LayerError::Read)? {
        let mut entry = entry.map_err(LayerError::Read)?;
        a.entry(&mut entry)?;
    }
    a.finish_overlay_markers()?;
    a.finish_dirs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths_stay_inside() {
        let ok = |p: &str| clean_entry_path(Path::new(p)).unwrap();
        assert_eq!(ok("./etc/passwd"), PathBuf::from("etc/passwd"));
        assert_eq!(ok("/etc/passwd"), PathBuf::from("etc/passwd"));
        assert_eq!(ok("a/../b"), PathBuf::from("b"));
        assert_eq!(ok("./"), PathBuf::new());
        assert_eq!(ok("a//b/./c/"), PathBuf::from("a/b/c"));
        for bad in ["../x", "a/../../x", "/../etc", "./.."] {
            assert!(
                matches!(
                    clean_entry_path(Path::new(bad)),
                    Err(LayerError::Escapes(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn whiteouts() {
        let c = |p: &str| classify(Path::new(p)).unwrap();
        assert_eq!(c("etc/passwd"), Kind::Normal);
        assert_eq!(
            c("etc/.wh.passwd"),
            Kind::Whiteout(PathBuf::from("etc/passwd"))
        );
        assert_eq!(c(".wh.etc"), Kind::Whiteout(PathBuf::from("etc")));
        assert_eq!(c("var/.wh..wh..opq"), Kind::Opaque(PathBuf::from("var")));
        assert_eq!(c(".wh..wh..opq"), Kind::Opaque(PathBuf::new()));
        assert_eq!(c(".wh..wh.plnk"), Kind::Ignore);
        assert_eq!(c("a.wh.b"), Kind::Normal);
        assert_eq!(c(""), Kind::Normal);
        for bad in ["x/.wh.", "x/.wh..", "x/.wh..."] {
            let r = classify(Path::new(bad));
            assert!(
                r.is_err() || r.as_ref().is_ok_and(|k| *k != Kind::Normal),
                "{bad}"
            );
        }
        assert!(matches!(
            classify(Path::new("x/.wh.")),
            Err(LayerError::BadWhiteout(_))
        ));
        assert!(matches!(
            classify(Path::new("x/.wh..")),
            Err(LayerError::BadWhiteout(_))
        ));
    }

    #[test]
    fn pax_times() {
        assert_eq!(parse_pax_time("1700000000"), Some((1_700_000_000, 0)));
        assert_eq!(
            parse_pax_time("1700000000.5"),
            Some((1_700_000_000, 500_000_000))
        );
        assert_eq!(parse_pax_time("1.1234567891"), Some((1, 123_456_789)));
        assert_eq!(parse_pax_time("-1.5"), Some((-2, 500_000_000)));
        assert_eq!(parse_pax_time("x"), None);
        assert_eq!(parse_pax_time("1.x"), None);
    }

    #[test]
    fn id_maps() {
        let one = [IdRange {
            container: 0,
            host: 1000,
            size: 1,
        }];
        assert_eq!(map_id(&one, 0), 1000);
        // Unmapped ids fall back to the owner of container root.
        assert_eq!(map_id(&one, 33), 1000);
        let many = [
            IdRange {
                container: 0,
                host: 1000,
                size: 1,
            },
            IdRange {
                container: 1,
                host: 100000,
                size: 65536,
            },
        ];
        assert_eq!(map_id(&many, 1), 100000);
        assert_eq!(map_id(&many, 65536), 165535);
        assert_eq!(map_id(&many, 65537), 1000);
        assert_eq!(map_id(&[], 7), 7);
    }

    fn header(path: &str, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_path(path).unwrap();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        h
    }

    fn layer(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
        let h = header(path, tar::EntryType::Regular, 0o644, data.len() as u64);
        b.append(&h, data).unwrap();
    }

    fn dir(b: &mut tar::Builder<Vec<u8>>, path: &str) {
        let h = header(path, tar::EntryType::Directory, 0o755, 0);
        b.append(&h, io::empty()).unwrap();
    }

    fn link(b: &mut tar::Builder<Vec<u8>>, path: &str, kind: tar::EntryType, target: &str) {
        let mut h = header(path, kind, 0o777, 0);
        h.set_link_name(target).unwrap();
        h.set_cksum();
        b.append(&h, io::empty()).unwrap();
    }

    fn apply(root: &Path, bytes: &[u8]) -> Result<Stats, LayerError> {
        let r = Root::open(root).unwrap();
        let opts = ApplyOptions {
            ownership: Ownership::Unchanged,
            allow_devices: false,
            unprivileged: true,
            whiteouts: Whiteouts::Apply,
        };
        let mut stats = Stats::default();
        apply_layer(&r, bytes, &opts, &mut stats).map(|_| stats)
    }

    #[test]
    fn whiteouts_hide_lower_entries_only() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        apply(
            root,
            &layer(|b| {
                dir(b, "a");
                file(b, "a/lower", b"1");
                dir(b, "o");
                file(b, "o/lower", b"1");
                dir(b, "o/sub");
                file(b, "o/sub/lower", b"1");
                file(b, "gone", b"1");
            }),
        )
        .unwrap();
        apply(
            root,
            &layer(|b| {
                // Out of order on purpose: the opaque marker after this
                // layer's own entries must not remove them.
                file(b, "o/sub/upper", b"2");
                file(b, "o/.wh..wh..opq", b"");
                file(b, ".wh.gone", b"");
                file(b, "a/upper", b"2");
                file(b, "a/.wh.upper", b"");
                file(b, ".wh.missing", b"");
            }),
        )
        .unwrap();
        assert!(root.join("a/lower").exists());
        assert!(
            root.join("a/upper").exists(),
            "same-layer whiteout must not apply"
        );
        assert!(!root.join("gone").exists());
        assert!(!root.join("o/lower").exists());
        assert!(!root.join("o/sub/lower").exists());
        assert!(root.join("o/sub/upper").exists());
    }

    #[test]
    fn hostile_entries_are_contained_or_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let outside = tmp.path().join("outside");
        std::fs::write(&outside, b"host").unwrap();

        // link -> / then link/x: lands in the rootfs.
        apply(
            &root,
            &layer(|b| {
                link(b, "escape", tar::EntryType::Symlink, "/");
                link(b, "up", tar::EntryType::Symlink, "../../..");
                file(b, "escape/x", b"in");
                file(b, "up/y", b"in");
            }),
        )
        .unwrap();
        assert_eq!(std::fs::read(root.join("x")).unwrap(), b"in");
        assert_eq!(std::fs::read(root.join("y")).unwrap(), b"in");

        // A symlink then a file of the same name: the file replaces the
        // link, it is never written through it.
        apply(
            &root,
            &layer(|b| {
                link(
                    b,
                    "victim",
                    tar::EntryType::Symlink,
                    outside.to_str().unwrap(),
                );
                file(b, "victim", b"evil");
            }),
        )
        .unwrap();
        assert_eq!(std::fs::read(&outside).unwrap(), b"host");

        let dotdot = layer(|b| {
            let mut h = header("x", tar::EntryType::Regular, 0o644, 1);
            h.as_old_mut().name[..5].copy_from_slice(b"../zz");
            h.set_cksum();
            b.append(&h, &b"e"[..]).unwrap();
        });
        assert!(matches!(apply(&root, &dotdot), Err(LayerError::Escapes(_))));
        assert!(!tmp.path().join("zz").exists());

        // A hard link to a host file through an absolute path resolves in
        // the rootfs, where there is no such file.
        let hl = layer(|b| link(b, "pw", tar::EntryType::Link, outside.to_str().unwrap()));
        assert!(matches!(
            apply(&root, &hl),
            Err(LayerError::Hardlink { .. })
        ));
        let hl = layer(|b| link(b, "pw", tar::EntryType::Link, "../../outside"));
        assert!(matches!(
            apply(&root, &hl),
            Err(LayerError::Hardlink { .. })
        ));
        assert_eq!(std::fs::read(&outside).unwrap(), b"host");
    }

    #[test]
    fn devices_are_skipped_when_not_allowed() {
        let tmp = tempfile::tempdir().unwrap();
        let l = layer(|b| {
            let mut h = header("null", tar::EntryType::Char, 0o666, 0);
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
            h.set_cksum();
            b.append(&h, io::empty()).unwrap();
        });
        let stats = apply(tmp.path(), &l).unwrap();
        assert_eq!(stats.skipped_devices, 1);
        assert!(!tmp.path().join("null").exists());
    }
}
