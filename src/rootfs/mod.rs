//! The container's filesystem view, set up by the container init inside its
//! new mount namespace: propagation, the rootfs bind, every `mounts[]` entry
//! in order, /dev, pivot_root, then sysctls, readonly and masked paths and a
//! readonly root. rootfs never touches a path that has not been resolved
//! inside the container root (see resolve.rs).

pub mod copyup;
pub mod devices;
pub mod host_mounts;
pub mod options;
pub mod procfs;
pub mod propagation;
pub mod resolve;

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{SFlag, fstat};
use nix::sys::statvfs::{FsFlags, statvfs};
use oci_spec::runtime::{Mount, Spec};

pub use options::propagation_flag;
use resolve::{Root, fd_path};

use crate::cgroups::Hierarchy;
use crate::security::lsm::{self, MountLabeling};
use crate::sys::mount_attr as attr;

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("{op} {path}: {source}")]
    Op {
        op: &'static str,
        path: PathBuf,
        source: Errno,
    },
    /// The rootfs itself is wrong (a dangling or hostile symlink, a file
    /// where a directory must be): `why` names the entry.
    #[error("{op} {path}: {why}")]
    InRootfs {
        op: &'static str,
        path: PathBuf,
        why: String,
    },
    #[error("{0}")]
    Invalid(String),
}

type Result<T> = std::result::Result<T, RootfsError>;

fn op<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(Errno) -> RootfsError + 'a {
    move |source| RootfsError::Op {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Everything rootfs setup needs, computed by the parent before clone.
pub struct RootfsPlan<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    /// Inside a new user namespace: no mknod, locked mount flags.
    pub userns: bool,
    pub cgroupns: bool,
    /// No pid namespace of its own: the container sees the runtime's pids
    /// (a host /proc may then be bound at /proc).
    pub host_pidns: bool,
    pub no_pivot: bool,
    pub hierarchies: &'a [Hierarchy],
    pub cgroup_dirs: &'a [PathBuf],
    /// linux.mountLabel, when SELinux is on (security::lsm).
    pub mount_label: Option<&'a str>,
    /// Detached binds made by the host side, by mounts[] index
    /// (rootfs::host_mounts).
    pub idmapped: &'a [(usize, std::os::fd::OwnedFd)],
}

/// /proc files a mount may cover (lxcfs and friends); anything else under
/// /proc is refused, because a bind over e.g. /proc/self/attr or
/// /proc/sys/kernel/core_pattern would let the container reach the host.
const PROC_MOUNT_ALLOWED: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

fn check_destination(dest: &Path, typ: Option<&str>) -> Result<()> {
    let clean = Path::new("/").join(resolve::clean(dest));
    if clean.starts_with("/proc") && clean != Path::new("/proc") {
        let ok = PROC_MOUNT_ALLOWED.iter().any(|a| Path::new(a) == clean);
        if !ok {
            return Err(RootfsError::Invalid(format!(
                "mount destination {}: mounts over /proc are not allowed",
                dest.display()
            )));
        }
    }
    if clean == Path::new("/proc") && typ.is_some_and(|t| t != "proc") {
        return Err(RootfsError::Invalid(format!(
            "mount destination /proc: must be of type proc, not {}",
            typ.unwrap_or_default()
        )));
    }
    Ok(())
}

/// A bind of the runtime's own procfs onto /proc, allowed where the
/// container shares the runtime's pid namespace: there it shows the same
/// pids a fresh procfs would (rootless containers in the host's pid
/// namespace, which may not mount a procfs of their own, do this). The
/// source must be the root of a procfs; everywhere else /proc takes only
/// type proc (CVE-2025-52881 class checks stay).
fn host_proc_bind(plan: &RootfsPlan, m: &Mount, opts: &options::MountOptions) -> Result<bool> {
    if resolve::clean(m.destination()) != Path::new("proc") || !opts.bind {
        return Ok(false);
    }
    let refuse = |why: &str| {
        Err(RootfsError::Invalid(format!(
            "mount destination /proc: a bind of {} {why}",
            m.source()
                .as_deref()
                .unwrap_or(Path::new("(no source)"))
                .display()
        )))
    };
    if !plan.host_pidns {
        return refuse("is only allowed when the container shares the runtime's pid namespace");
    }
    let Some(src) = m.source().as_deref() else {
        return refuse("needs a source");
    };
    let fd = nix::fcntl::open(
        src,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(op("opening bind source", src))?;
    let is_proc = nix::sys::statfs::fstatfs(&fd)
        .map_err(op("statfs", src))?
        .filesystem_type()
        == nix::sys::statfs::PROC_SUPER_MAGIC;
    // procfs's root directory is inode 1 (PROC_ROOT_INO).
    let is_root = nix::sys::stat::fstat(&fd).map_err(op("stat", src))?.st_ino == 1;
    if !(is_proc && is_root) {
        return refuse("is not the root of a procfs");
    }
    Ok(true)
}

/// The propagation steps for this container's rootfsPropagation
/// (rootfs::propagation).
pub fn root_steps(plan: &RootfsPlan) -> propagation::Steps {
    let asked = plan
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(propagation_flag);
    propagation::steps(asked, plan.no_pivot)
}

/// Whether a mount in the container's namespace may be a peer of one of
/// the host's: not after a recursive rslave or rprivate `/` (the default),
/// which turned every copy of the host's mounts into a slave or a private
/// mount before anything was bound; binds cloned on the host side take
/// the same mode (propagation::host_clone), and a bind's own `shared`
/// option makes a peer group of the container's own.
pub fn host_peers_possible(plan: &RootfsPlan) -> bool {
    let before = root_steps(plan).root_before;
    !before.contains(MsFlags::MS_REC) || before.contains(MsFlags::MS_SHARED)
}

/// Steps before the hooks: propagation, rootfs bind, mounts, devices.
pub fn prepare(plan: &RootfsPlan) -> Result<()> {
    let linux = plan.spec.linux().as_ref();
    let steps = root_steps(plan);
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        steps.root_before,
        None::<&str>,
    )
    .map_err(op("setting the propagation of /", Path::new("/")))?;
    if let Some(mode) = steps.parent {
        parent_mount_not_shared(plan.rootfs, mode)?;
    }
    mount(
        Some(plan.rootfs),
        plan.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(op("bind-mounting rootfs", plan.rootfs))?;
    if let Some(tree) = steps.rootfs_tree {
        // A rootfs that is a shared mount of its own, or has shared mounts
        // below it (a host tmpfs at rootfs/mnt): their copies in the bind
        // would be peers of the host's, and every mount the container makes
        // there would show on the host. The whole rootfs tree takes the
        // asked mode (rslave for `shared`, which asks it of `/` only); `/`
        // itself keeps it non-recursive outside the rootfs.
        mount(None::<&str>, plan.rootfs, None::<&str>, tree, None::<&str>)
            .map_err(op("setting propagation of", plan.rootfs))?;
    }

    let root = Root::open(plan.rootfs).map_err(op("opening rootfs", plan.rootfs))?;
    let mounts = plan.spec.mounts().as_deref().unwrap_or_default();
    for (i, m) in mounts.iter().enumerate() {
        match plan.idmapped.iter().find(|(j, _)| *j == i) {
            Some((_, tree)) => attach_idmapped(&root, plan, m, tree)?,
            None => mount_entry(&root, plan, m)?,
        }
    }

    let dev_opts = mounts
        .iter()
        .rev()
        .find(|m| resolve::clean(m.destination()) == Path::new("dev"))
        .and_then(|m| parse_options(m).ok());
    let dev_is_bind = dev_opts.as_ref().is_some_and(|o| o.bind);
    let old_umask = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let result = (|| {
        if !dev_is_bind {
            for d in devices::default_devices() {
                devices::create(&root, &d, plan.userns)?;
            }
        }
        for d in linux
            .and_then(|l| l.devices().as_deref())
            .unwrap_or_default()
        {
            devices::create(&root, &devices::from_config(d), plan.userns)?;
        }
        if !dev_is_bind {
            let pts = mounts
                .iter()
                .any(|m| resolve::clean(m.destination()) == Path::new("dev/pts"));
            devices::create_symlinks(&root, pts)?;
        }
        if let Some(o) = dev_opts
            .as_ref()
            .filter(|o| defers_readonly(Path::new("dev"), o))
        {
            // /dev/console is bound after pivot_root: its mount point must
            // exist before /dev turns read-only.
            if plan.spec.process().as_ref().and_then(|p| p.terminal()) == Some(true) {
                let console = Path::new("/dev/console");
                root.create_file(console)
                    .map_err(|e| root.error("creating", console, e))?;
            }
            remount_bind(&root, Path::new("/dev"), o.flags, true)?;
        }
        Ok(())
    })();
    nix::sys::stat::umask(old_umask);
    result
}

/// With a non-recursive or a shared rootfsPropagation the mount the
/// rootfs lies on (a tmpfs, /run, /var/lib on their own mounts, the
/// rootfs's own, or `/`) may still be shared with the host, and then the
/// rootfs bind and every mount made below it would appear in the host's
/// mount namespace too (and pivot_root refuses a shared parent, leaving
/// them all behind). That mount gets `mode` (slave or private, as runc).
/// Read from this process's own mountinfo, before pivot_root.
fn parent_mount_not_shared(rootfs: &Path, mode: MsFlags) -> Result<()> {
    // The mount the rootfs directory is on (the rootfs's own when it is a
    // mount point): the one the rootfs bind will sit on.
    let parent = std::fs::canonicalize(rootfs)
        .map_err(|e| RootfsError::Invalid(format!("rootfs {}: {e}", rootfs.display())))?;
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| RootfsError::Invalid(format!("reading /proc/self/mountinfo: {e}")))?;
    let point = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(crate::cgroups::unescape_mountinfo(m)))
        .filter(|m| parent.starts_with(m))
        .max_by_key(|m| m.components().count());
    // `/` too: after an rshared `/` a rootfs directly on it needs it.
    let p = point.unwrap_or_else(|| PathBuf::from("/"));
    mount(None::<&str>, &p, None::<&str>, mode, None::<&str>)
        .map_err(op("making the rootfs's parent mount non-shared", &p))
}

fn parse_options(m: &Mount) -> Result<options::MountOptions> {
    let typ = m.typ().as_deref().filter(|t| !t.is_empty());
    options::parse(m.options().as_deref().unwrap_or_default(), typ)
        .map_err(|e| RootfsError::Invalid(format!("mount {}: {e}", m.destination().display())))
}

/// tmpcopyup: fills the tmpfs now at `dest` from the directory it covers,
/// then applies a read-only flag the mount was asked for.
fn copy_up(
    root: &Root,
    dest: &Path,
    below: &std::os::fd::OwnedFd,
    o: &options::MountOptions,
) -> Result<()> {
    let above = root
        .open_in(dest, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
        .map_err(|e| root.error("opening the tmpfs at", dest, e))?;
    let (b, a) = (
        fstat(below.as_fd()).map_err(op("stat", dest))?,
        fstat(above.as_fd()).map_err(op("stat", dest))?,
    );
    if b.st_dev == a.st_dev {
        return Err(RootfsError::Invalid(format!(
            "tmpcopyup {}: the tmpfs is not where it was mounted",
            dest.display()
        )));
    }
    copy_tree_into(below, &above, dest)?;
    if o.flags.contains(MsFlags::MS_RDONLY) && !defers_readonly(dest, o) {
        remount_bind(root, dest, o.flags, true)?;
    }
    Ok(())
}

/// What [`mount_tmpfs_detached`] makes.
struct NewTmpfs<'a> {
    source: &'a Path,
    /// The data string (size=, mode=, context=...).
    data: &'a str,
    /// mount(2) flags for it (without a read-only flag that waits).
    flags: MsFlags,
    /// The directory it covers, for tmpcopyup.
    below: Option<OwnedFd>,
    /// data carries linux.mountLabel as context= (named in errors).
    context: bool,
}

/// A tmpfs made detached (fsopen, fsmount), filled (tmpcopyup) and given
/// its attributes through its own fd, then attached on `target` and its
/// propagation set through the same fd: nothing of it is looked up by
/// name, so a destination renamed or swapped meanwhile by another
/// container sharing the directory can neither receive the copy (the
/// covered directory's contents written into, say, the container's /etc)
/// nor make the attributes miss this mount.
fn mount_tmpfs_detached(
    target: &OwnedFd,
    dest: &Path,
    new: NewTmpfs,
    o: &options::MountOptions,
) -> Result<()> {
    let mut params = vec![(
        "source".to_string(),
        Some(new.source.to_string_lossy().into_owned()),
    )];
    params.extend(options::fs_params(new.data, new.flags));
    let attrs = options::bind_flags_attr(new.flags).set;
    let tree = crate::sys::mount_api::new_fs("tmpfs", &params, attrs).map_err(|e| {
        if new.context {
            op("mounting (with linux.mountLabel as context=)", dest)(e)
        } else {
            op("mounting", dest)(e)
        }
    })?;
    if let Some(below) = new.below {
        let above = nix::fcntl::openat(
            tree.as_fd(),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(op("opening the new tmpfs for", dest))?;
        copy_tree_into(&below, &above, dest)?;
        if o.flags.contains(MsFlags::MS_RDONLY) && !defers_readonly(dest, o) {
            crate::sys::mount_setattr(&tree, false, attr::RDONLY, 0)
                .map_err(op("making read-only", dest))?;
        }
    }
    apply_attributes_fd(&tree, dest, o)?;
    crate::sys::mount_api::move_mount_onto(&tree, target)
        .map_err(op("attaching the tmpfs at", dest))?;
    for p in &o.propagation {
        let kind = *p & !MsFlags::MS_REC;
        crate::sys::mount_api::set_propagation(&tree, p.contains(MsFlags::MS_REC), kind.bits())
            .map_err(op("setting propagation of", dest))?;
    }
    Ok(())
}

/// A read-only /dev (not a bind) is mounted writable and made read-only
/// once the mount points and device nodes below it exist.
fn defers_readonly(dest: &Path, o: &options::MountOptions) -> bool {
    resolve::clean(dest) == Path::new("dev") && !o.bind && o.flags.contains(MsFlags::MS_RDONLY)
}

/// A destination the image's symlinks lead elsewhere than its own name
/// (`/etc/hostname -> /vol/hn`) may land in a shared volume, a peer of the
/// host's mount with a shared rootfsPropagation: the engine's mount (a
/// file bind, a tmpfs) would then appear on the host, in the volume's
/// directory, and stay there after the container is gone (one more host
/// mount per run, pinning the volume). The image chose that place, not the
/// engine: the mount it lands on is made a slave first, as for rrun's own
/// mounts (`not_toward_host`). A destination written under the volume in
/// the config keeps propagating (Bidirectional).
fn not_toward_host_through_symlink(
    root: &Root,
    plan: &RootfsPlan,
    target: &OwnedFd,
    dest: &Path,
) -> Result<()> {
    if !host_peers_possible(plan) {
        return Ok(());
    }
    // Before pivot_root /proc is the host's: the fd's path is what the
    // walk reached.
    let lexical = Path::new("/").join(resolve::clean(dest));
    if root.path_of(target).is_some_and(|p| p == lexical) {
        return Ok(());
    }
    not_toward_host(target, dest)
}

/// Whether a mount at `dest` of type `typ` must land on a real directory
/// reached without any symlink: proc and sysfs anywhere, and anything at
/// /proc or /sys (the masked and read-only paths are applied there by
/// name afterwards, so what is mounted there must be what they cover).
fn needs_real_dir(dest: &Path, typ: Option<&str>) -> bool {
    let clean = resolve::clean(dest);
    matches!(typ, Some("proc" | "sysfs")) || clean == Path::new("proc") || clean == Path::new("sys")
}

/// The mount point for a mount at `dest`, checked after resolution, since
/// a destination is a path in the rootfs and any component of it may be
/// a symlink: proc and sysfs (and whatever goes to /proc or /sys) only on
/// a real directory of their own name, no symlink anywhere on the way,
/// the last component included (runc CVE-2019-19921); nothing on the
/// rootfs's / itself, and nothing on procfs but the files lxcfs-like tools
/// cover (the resolved file is on procfs when a symlink led into /proc:
/// CVE-2025-52881 class). Returns the fd to mount on.
fn check_mount_point(
    root: &Root,
    target: std::os::fd::OwnedFd,
    dest: &Path,
    typ: Option<&str>,
) -> Result<std::os::fd::OwnedFd> {
    let hostile = |why: String| RootfsError::InRootfs {
        op: "mount destination",
        path: dest.to_path_buf(),
        why,
    };
    let target = if needs_real_dir(dest, typ) {
        // Without O_NOFOLLOW a symlink as the last component is ELOOP too,
        // and O_DIRECTORY refuses anything but a directory. This fd, not
        // the one resolved before, is what the mount goes on.
        match root.open_no_symlinks(dest, OFlag::O_PATH | OFlag::O_DIRECTORY) {
            Ok(fd) => fd,
            Err(e) => {
                let why = root
                    .diagnose(dest)
                    .or_else(|| root.first_symlink(dest))
                    .unwrap_or_else(|| {
                        format!("cannot be reached without a symlink as a directory ({e})")
                    });
                return Err(hostile(format!(
                    "{why}; {} is only mounted on a real directory",
                    typ.unwrap_or("a mount at /proc or /sys")
                )));
            }
        }
    } else {
        target
    };
    if root.is_root(&target).map_err(op("stat", dest))? {
        let why = root
            .diagnose(dest)
            .unwrap_or_else(|| "is the rootfs's / itself".into());
        return Err(hostile(why));
    }
    let on_proc = nix::sys::statfs::fstatfs(&target)
        .map_err(op("statfs", dest))?
        .filesystem_type()
        == nix::sys::statfs::PROC_SUPER_MAGIC;
    if on_proc {
        let resolved = root.path_of(&target).unwrap_or_else(|| dest.to_path_buf());
        let allowed = resolve::clean(&resolved) == Path::new("proc") && typ == Some("proc")
            || check_destination(&resolved, typ).is_ok();
        if !allowed {
            return Err(hostile(format!(
                "resolves to {} on procfs; mounts over /proc are not allowed",
                resolved.display()
            )));
        }
    }
    Ok(target)
}

/// After a mount that `needs_real_dir`: the destination's name must now
/// lead, without symlinks, to what was mounted (`landed` says whether the
/// stat and filesystem type found there are it). A rename of the mount
/// point in between, by another container sharing the directory, would
/// otherwise leave the mount somewhere the masked and read-only paths
/// never reach.
fn check_landed(
    root: &Root,
    dest: &Path,
    typ: Option<&str>,
    landed: impl Fn(&nix::sys::stat::FileStat, nix::sys::statfs::FsType) -> bool,
) -> Result<()> {
    if !needs_real_dir(dest, typ) {
        return Ok(());
    }
    let moved = || RootfsError::InRootfs {
        op: "mount destination",
        path: dest.to_path_buf(),
        why: "was moved while it was being mounted on".into(),
    };
    let fd = root
        .open_no_symlinks(dest, OFlag::O_PATH | OFlag::O_DIRECTORY)
        .map_err(|_| moved())?;
    let st = fstat(&fd).map_err(op("stat", dest))?;
    let fs = nix::sys::statfs::fstatfs(&fd)
        .map_err(op("statfs", dest))?
        .filesystem_type();
    if landed(&st, fs) {
        Ok(())
    } else {
        Err(moved())
    }
}

/// A fresh procfs or sysfs: its root directory (inode 1 on both) on a
/// filesystem of that type.
fn is_fs_root(
    typ: Option<&str>,
) -> impl Fn(&nix::sys::stat::FileStat, nix::sys::statfs::FsType) -> bool {
    let magic = match typ {
        Some("proc") => Some(nix::sys::statfs::PROC_SUPER_MAGIC),
        Some("sysfs") => Some(nix::sys::statfs::SYSFS_MAGIC),
        _ => None,
    };
    move |st, fs| magic.is_none_or(|m| m == fs && st.st_ino == 1)
}

/// The same inode as `fd` (the root of a bind just attached).
fn same_as(
    fd: &impl AsFd,
) -> Result<impl Fn(&nix::sys::stat::FileStat, nix::sys::statfs::FsType) -> bool> {
    let want = fstat(fd.as_fd()).map_err(op("stat", Path::new("(bind)")))?;
    Ok(
        move |st: &nix::sys::stat::FileStat, _| {
            (st.st_dev, st.st_ino) == (want.st_dev, want.st_ino)
        },
    )
}

/// Gives the detached bind `tree` (open_tree) everything `o` asks for,
/// then attaches it on `target`: flags and recursive attributes are set
/// while the mount is detached and only this process holds it, and the
/// propagation through the same fd once attached, so nothing is looked
/// up by name after the mount point was checked (a second container
/// renaming the destination cannot make another mount receive, or this
/// one miss, a read-only flag).
fn attach_bind(
    tree: &impl AsFd,
    target: &impl AsFd,
    dest: &Path,
    o: &options::MountOptions,
) -> Result<()> {
    let extra = o.flags & !MsFlags::MS_REMOUNT;
    if !extra.is_empty() {
        set_bind_flags(tree, dest, extra)?;
    }
    apply_attributes_fd(tree, dest, o)?;
    crate::sys::mount_api::move_mount_onto(tree, target)
        .map_err(op("attaching the bind mount at", dest))?;
    for p in &o.propagation {
        let kind = *p & !MsFlags::MS_REC;
        crate::sys::mount_api::set_propagation(tree, p.contains(MsFlags::MS_REC), kind.bits())
            .map_err(op("setting propagation of", dest))?;
    }
    Ok(())
}

/// A bind with mount(2) and a remount by name, for kernels before 5.12
/// (no mount_setattr): the flags then reach whatever the name leads to
/// when they are set, so a destination swapped in between (a directory
/// shared with another container) can miss them; newer kernels take
/// [`attach_bind`].
fn legacy_bind(
    root: &Root,
    source: &Path,
    target: &OwnedFd,
    dest: &Path,
    o: &options::MountOptions,
) -> Result<()> {
    let mut flags = MsFlags::MS_BIND;
    if o.recursive {
        flags |= MsFlags::MS_REC;
    }
    mount(
        Some(source),
        &fd_path(target),
        None::<&str>,
        flags,
        None::<&str>,
    )
    .map_err(op("bind-mounting", dest))?;
    let extra = o.flags & !MsFlags::MS_REMOUNT;
    if !extra.is_empty() {
        remount_bind(root, dest, extra, false)?;
    }
    apply_attributes(root, dest, o)?;
    set_propagation_by_name(root, dest, &o.propagation)
}

/// The per-mount flags of a bind (ro, nosuid, ...) as a bind remount sets
/// them, on the mount `fd` is the root of. In a user namespace the kernel
/// refuses to clear flags the mount inherited locked (nosuid, nodev,
/// noexec, atime): those are then kept, as with a remount.
fn set_bind_flags(fd: &impl AsFd, dest: &Path, flags: MsFlags) -> Result<()> {
    let c = options::bind_flags_attr(flags);
    match crate::sys::mount_setattr(fd, false, c.set, c.clear) {
        Ok(()) => Ok(()),
        Err(Errno::EPERM) => {
            let keep = attr::RDONLY | attr::ATIME_MASK;
            crate::sys::mount_setattr(fd, false, c.set, c.clear & keep)
                .map_err(op("setting the flags of", dest))
        }
        Err(e) => Err(op("setting the flags of", dest)(e)),
    }
}

/// rro, rnosuid, ... on the whole tree now at `dest`, and nosymfollow on
/// its top, with mount_setattr. A plain `ro` (also on an rbind) stays on
/// the top mount, as with runc: Kubernetes asks `rro` when a read-only
/// volume's submounts must be read-only too, `ro` when they must not.
fn apply_attributes(root: &Root, dest: &Path, o: &options::MountOptions) -> Result<()> {
    if o.recursive_attr.is_empty() && o.attr.is_empty() {
        return Ok(());
    }
    let fd = root
        .resolve(dest)
        .map_err(|e| root.error("resolving mount point", dest, e))?;
    apply_attributes_fd(&fd, dest, o)
}

/// [`apply_attributes`] on the mount `fd` is the root of.
fn apply_attributes_fd(fd: &impl AsFd, dest: &Path, o: &options::MountOptions) -> Result<()> {
    for (recursive, change) in [(false, o.attr), (true, o.recursive_attr)] {
        if change.is_empty() {
            continue;
        }
        match crate::sys::mount_setattr(fd, recursive, change.set, change.clear) {
            Ok(()) => {}
            Err(Errno::ENOSYS) => {
                return Err(RootfsError::Invalid(format!(
                    "mount {}: recursive and symlink mount options need \
                     mount_setattr (Linux 5.12 or later)",
                    dest.display()
                )));
            }
            Err(e) => return Err(op("setting mount attributes of", dest)(e)),
        }
    }
    Ok(())
}

/// A /sys bound from the host carries the host's cgroup hierarchies
/// below it; unless the config mounts /sys/fs/cgroup itself, hide them
/// under an empty read-only tmpfs (CVE-2023-25809 class: a delegated host
/// cgroup would otherwise be one write away).
fn mask_host_cgroupfs(root: &Root, plan: &RootfsPlan) -> Result<()> {
    let cg = Path::new("/sys/fs/cgroup");
    let asked = plan
        .spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|m| resolve::clean(m.destination()) == Path::new("sys/fs/cgroup"));
    if asked {
        return Ok(());
    }
    let fd = match root.resolve(cg) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(root.error("resolving", cg, e)),
    };
    if host_peers_possible(plan) {
        not_toward_host(&fd, cg)?;
    }
    mount(
        Some("tmpfs"),
        &fd_path(&fd),
        Some("tmpfs"),
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(lsm::with_context("size=0,mode=755", plan.mount_label).as_str()),
    )
    .map_err(op("masking the host's cgroups at", cg))
}

/// A bind made and sent by the host side (id-mapped, or of a new user
/// namespace): attached where the bind would have gone, with the same
/// checks and flags.
fn attach_idmapped(
    root: &Root,
    plan: &RootfsPlan,
    m: &Mount,
    tree: &std::os::fd::OwnedFd,
) -> Result<()> {
    let dest = m.destination();
    let typ = m.typ().as_deref().filter(|t| !t.is_empty());
    let opts = parse_options(m)?;
    check_destination(dest, typ)?;
    let is_dir = nix::sys::stat::fstat(tree)
        .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
        .map_err(op("stat of the host-side bind for", dest))?;
    let target = if is_dir {
        root.mkdir_all(dest, 0o755)
    } else {
        root.create_file(dest)
    }
    .map_err(|e| root.error("creating mount point", dest, e))?;
    let target = check_mount_point(root, target, dest, typ)?;
    not_toward_host_through_symlink(root, plan, &target, dest)?;
    attach_bind(tree, &target, dest, &opts)?;
    check_landed(root, dest, typ, same_as(tree)?)
}

/// tmpcopyup: the covered directory `below` copied into the new tmpfs
/// `above` (both fds), errors naming the file in the container.
fn copy_tree_into(below: &OwnedFd, above: &OwnedFd, dest: &Path) -> Result<()> {
    copyup::copy_tree(below, above).map_err(|(p, e)| {
        RootfsError::Invalid(format!(
            "tmpcopyup {}: copying {}: {e}",
            dest.display(),
            dest.join(p).display()
        ))
    })
}

fn mount_entry(root: &Root, plan: &RootfsPlan, m: &Mount) -> Result<()> {
    let dest = m.destination();
    let typ = m.typ().as_deref().filter(|t| !t.is_empty());
    let opts = parse_options(m)?;
    if !host_proc_bind(plan, m, &opts)? {
        check_destination(dest, typ)?;
    }
    if typ == Some("cgroup") || typ == Some("cgroup2") {
        mount_cgroup(root, plan, dest, &opts)?;
        return apply_attributes(root, dest, &opts);
    }
    let is_sys = resolve::clean(dest) == Path::new("sys");
    let source = m
        .source()
        .clone()
        .unwrap_or_else(|| PathBuf::from(typ.unwrap_or("none")));
    if opts.bind {
        let source = if source.is_absolute() {
            source
        } else {
            plan.bundle.join(source)
        };
        let bad_source = |e: Errno| {
            RootfsError::Invalid(format!(
                "mount source {} for {}: {}",
                source.display(),
                dest.display(),
                e.desc()
            ))
        };
        // A source that reaches the rootfs (by any spelling) is a path of
        // the image from there on: resolved inside the rootfs as the
        // container would, so a symlink there (`rootfs/vol -> /etc`) cannot
        // make it a host path (resolve::locate_source).
        let src = root.bind_source(&source).map_err(bad_source)?;
        let is_dir = SFlag::from_bits_truncate(fstat(&src).map_err(bad_source)?.st_mode)
            & SFlag::S_IFMT
            == SFlag::S_IFDIR;
        let target = if is_dir {
            root.mkdir_all(dest, 0o755)
        } else {
            root.create_file(dest)
        }
        .map_err(|e| root.error("creating mount point", dest, e))?;
        let target = check_mount_point(root, target, dest, typ)?;
        not_toward_host_through_symlink(root, plan, &target, dest)?;
        if crate::sys::mount_api::available() {
            let tree = crate::sys::mount_api::clone_fd(&src, opts.recursive)
                .map_err(op("bind-mounting", dest))?;
            attach_bind(&tree, &target, dest, &opts)?;
            check_landed(root, dest, typ, same_as(&tree)?)?;
        } else {
            // Before pivot_root /proc is the host's: fd paths are safe.
            legacy_bind(root, &fd_path(&src), &target, dest, &opts)?;
            check_landed(root, dest, typ, same_as(&src)?)?;
        }
        if is_sys {
            mask_host_cgroupfs(root, plan)?;
        }
    } else {
        let target = root
            .mkdir_all(dest, 0o755)
            .map_err(|e| root.error("creating mount point", dest, e))?;
        let target = check_mount_point(root, target, dest, typ)?;
        not_toward_host_through_symlink(root, plan, &target, dest)?;
        let labeling = lsm::mount_labeling(typ, false);
        let data = match labeling {
            MountLabeling::Context => lsm::with_context(&opts.data, plan.mount_label),
            _ => opts.data.clone(),
        };
        let data = (!data.is_empty()).then_some(data.as_str());
        let mut flags = opts.flags;
        if defers_readonly(dest, &opts) || opts.copy_up {
            flags.remove(MsFlags::MS_RDONLY);
        }
        // The directory the tmpfs is about to cover, held for the copy.
        let below = if opts.copy_up {
            let fd = nix::fcntl::openat(
                target.as_fd(),
                ".",
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(op("opening for tmpcopyup", dest))?;
            Some(fd)
        } else {
            None
        };
        if typ == Some("tmpfs") && crate::sys::mount_api::available() {
            let context = labeling == MountLabeling::Context && plan.mount_label.is_some();
            let new = NewTmpfs {
                source: &source,
                data: data.unwrap_or_default(),
                flags,
                below,
                context,
            };
            return mount_tmpfs_detached(&target, dest, new, &opts);
        }
        let res = mount(Some(&source), &fd_path(&target), typ, flags, data);
        match res {
            Err(e) if labeling == MountLabeling::Context && plan.mount_label.is_some() => {
                return Err(op("mounting (with linux.mountLabel as context=)", dest)(e));
            }
            // sysfs cannot be mounted by a user namespace that does not own
            // the network namespace: show the host's, read-only all the way
            // down, as runc does.
            Err(Errno::EPERM) if typ == Some("sysfs") && !crate::sys::mount_api::available() => {
                // Before Linux 5.12: mount(2), then read-only by name.
                mount(
                    Some("/sys"),
                    &fd_path(&target),
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .map_err(op("bind-mounting /sys", dest))?;
                remount_bind(root, dest, opts.flags | MsFlags::MS_RDONLY, true)?;
                if is_sys {
                    mask_host_cgroupfs(root, plan)?;
                }
            }
            Err(Errno::EPERM) if typ == Some("sysfs") => {
                let tree = crate::sys::mount_api::open_tree_clone(Path::new("/sys"), true)
                    .map_err(op("bind-mounting /sys", dest))?;
                let c = options::bind_flags_attr(opts.flags | MsFlags::MS_RDONLY);
                // Inherited (locked) flags are kept: only set, never clear.
                crate::sys::mount_setattr(&tree, false, c.set, 0)
                    .map_err(op("setting the flags of", dest))?;
                crate::sys::mount_setattr(&tree, true, attr::RDONLY, 0)
                    .map_err(op("making read-only", dest))?;
                crate::sys::mount_api::move_mount_onto(&tree, &target)
                    .map_err(op("attaching the bind of /sys at", dest))?;
                check_landed(root, dest, typ, same_as(&tree)?)?;
                if is_sys {
                    mask_host_cgroupfs(root, plan)?;
                }
            }
            Err(e) => return Err(op("mounting", dest)(e)),
            Ok(()) => check_landed(root, dest, typ, is_fs_root(typ))?,
        }
        if let Some(below) = below {
            copy_up(root, dest, &below, &opts)?;
        }
        if let (MountLabeling::RootLabel, Some(label)) = (labeling, plan.mount_label) {
            let fd = root
                .open_in(dest, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                .map_err(op("opening mount point", dest))?;
            lsm::set_file_label(fd, label).map_err(|e| {
                RootfsError::Invalid(format!(
                    "labelling {} with linux.mountLabel: {e}",
                    dest.display()
                ))
            })?;
        }
    }
    apply_attributes(root, dest, &opts)?;
    set_propagation_by_name(root, dest, &opts.propagation)
}

/// The propagation changes a mount's options ask for, on the mount now at
/// `dest` (for the paths that still go by name: kernels before 5.12 and
/// the mounts not built detached).
fn set_propagation_by_name(root: &Root, dest: &Path, props: &[MsFlags]) -> Result<()> {
    for p in props {
        let fd = root
            .resolve(dest)
            .map_err(|e| root.error("resolving mount point", dest, e))?;
        mount(None::<&str>, &fd_path(&fd), None::<&str>, *p, None::<&str>)
            .map_err(op("setting propagation of", dest))?;
    }
    Ok(())
}

/// Changes the flags of the bind mount now at `dest`. In a user namespace
/// the kernel refuses to drop flags the mount inherited (nosuid, nodev,
/// noexec, atime): keep them (always when `keep_locked`, else on EPERM).
fn remount_bind(root: &Root, dest: &Path, flags: MsFlags, keep_locked: bool) -> Result<()> {
    let fd = root
        .resolve(dest)
        .map_err(|e| root.error("resolving mount point", dest, e))?;
    remount_path(&fd_path(&fd), dest, flags, keep_locked)
}

/// [`remount_bind`] of the mount at `target` (a path mount(2) may trust).
fn remount_path(target: &Path, dest: &Path, flags: MsFlags, keep_locked: bool) -> Result<()> {
    let locked = || -> MsFlags {
        let mut f = MsFlags::empty();
        if let Ok(st) = statvfs(target) {
            let s = st.flags();
            for (fs, ms) in [
                (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
                (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
                (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
                (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
                (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
                (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
            ] {
                if s.contains(fs) {
                    f |= ms;
                }
            }
        }
        f
    };
    let base = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags;
    let first = if keep_locked { base | locked() } else { base };
    match mount(None::<&str>, target, None::<&str>, first, None::<&str>) {
        Ok(()) => Ok(()),
        Err(Errno::EPERM) if !keep_locked => mount(
            None::<&str>,
            target,
            None::<&str>,
            base | locked(),
            None::<&str>,
        )
        .map_err(op("remounting", dest)),
        Err(e) => Err(op("remounting", dest)(e)),
    }
}

/// /sys/fs/cgroup in the container shows only the container's own cgroups:
/// on v1, a tmpfs with the container's directory of each hierarchy bound in;
/// on pure v2, a cgroup2 mount inside the cgroup namespace, else a bind.
fn mount_cgroup(
    root: &Root,
    plan: &RootfsPlan,
    dest: &Path,
    opts: &options::MountOptions,
) -> Result<()> {
    let target = root
        .mkdir_all(dest, 0o755)
        .map_err(|e| root.error("creating mount point", dest, e))?;
    let flags = opts.flags & !MsFlags::MS_RDONLY;
    let ro = opts.flags.contains(MsFlags::MS_RDONLY);
    if crate::cgroups::is_pure_v2(plan.hierarchies) {
        if plan.cgroupns {
            mount(
                Some("cgroup2"),
                &fd_path(&target),
                Some("cgroup2"),
                opts.flags,
                None::<&str>,
            )
            .map_err(op("mounting cgroup2", dest))?;
        } else if let Some(dir) = plan.cgroup_dirs.first() {
            bind_with_flags(root, dir, &target, dest, opts.flags)?;
        }
        return Ok(());
    }
    mount(
        Some("tmpfs"),
        &fd_path(&target),
        Some("tmpfs"),
        flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(lsm::with_context("mode=755", plan.mount_label).as_str()),
    )
    .map_err(op("mounting tmpfs for", dest))?;
    for (h, dir) in plan.hierarchies.iter().zip(plan.cgroup_dirs) {
        let Some(name) = h.mount.file_name() else {
            continue;
        };
        let sub = dest.join(name);
        let fd = root
            .mkdir_all(&sub, 0o755)
            .map_err(|e| root.error("creating mount point", &sub, e))?;
        let mut f = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        if ro {
            f |= MsFlags::MS_RDONLY;
        }
        bind_with_flags(root, dir, &fd, &sub, f)?;
        // Co-mounted controllers (cpu,cpuacct) are also reachable by each name.
        if h.controllers.len() > 1 {
            let dir_fd = root
                .resolve(dest)
                .map_err(|e| root.error("resolving", dest, e))?;
            for c in &h.controllers {
                let _ = nix::unistd::symlinkat(name, dir_fd.as_fd(), c.as_str());
            }
        }
    }
    if ro {
        let fd = root
            .resolve(dest)
            .map_err(|e| root.error("resolving", dest, e))?;
        mount(
            None::<&str>,
            &fd_path(&fd),
            None::<&str>,
            MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | flags
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC,
            Some("mode=755"),
        )
        .map_err(op("remounting read-only", dest))?;
    }
    Ok(())
}

/// A bind of the host's `source` (a cgroup directory) on `target` with
/// `flags`, set before it is attached (see [`attach_bind`]); with mount(2)
/// and a remount by name before Linux 5.12.
fn bind_with_flags(
    root: &Root,
    source: &Path,
    target: &OwnedFd,
    dest: &Path,
    flags: MsFlags,
) -> Result<()> {
    if crate::sys::mount_api::available() {
        let tree = crate::sys::mount_api::open_tree_clone(source, false)
            .map_err(op("bind-mounting cgroup", dest))?;
        set_bind_flags(&tree, dest, flags & !MsFlags::MS_REMOUNT)?;
        return crate::sys::mount_api::move_mount_onto(&tree, target)
            .map_err(op("bind-mounting cgroup", dest));
    }
    mount(
        Some(source),
        &fd_path(target),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(op("bind-mounting cgroup", dest))?;
    remount_bind(root, dest, flags, true)
}

/// Makes the rootfs the container's `/`. pivot_root(".", ".") stacks the old
/// root under the new one, which is then detached; --no-pivot moves the
/// rootfs over / and chroots (for ramfs roots, where pivot_root fails).
pub fn enter(plan: &RootfsPlan) -> Result<()> {
    let rootfs = plan.rootfs;
    if plan.no_pivot {
        detach_proc_sys_outside(rootfs)?;
        nix::unistd::chdir(rootfs).map_err(op("chdir", rootfs))?;
        mount(
            Some(rootfs),
            "/",
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .map_err(op("moving rootfs to /", rootfs))?;
        nix::unistd::chroot(".").map_err(op("chroot", rootfs))?;
        nix::unistd::chdir("/").map_err(op("chdir", Path::new("/")))?;
        return Ok(());
    }
    let old = nix::fcntl::open(
        "/",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(op("opening old root", Path::new("/")))?;
    let new = nix::fcntl::open(
        rootfs,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(op("opening rootfs", rootfs))?;
    nix::unistd::fchdir(new.as_fd()).map_err(op("fchdir", rootfs))?;
    nix::unistd::pivot_root(".", ".").map_err(op("pivot_root", rootfs))?;
    nix::unistd::fchdir(old.as_fd()).map_err(op("fchdir to old root", Path::new("/")))?;
    // Make sure the detach below cannot propagate to the host's mounts.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(op("making old root a slave", Path::new("/")))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(op("detaching old root", Path::new("/")))?;
    nix::unistd::chdir("/").map_err(op("chdir", Path::new("/")))?;
    drop(new);
    drop(old);
    Ok(())
}

/// Without pivot_root the old root stays in the container's mount
/// namespace, below the chroot. The kernel lets a process mount a fresh
/// procfs or sysfs in a user namespace it makes when an unmasked one is
/// fully visible anywhere in its mount namespace (mount_too_revealing), and
/// the host's /proc and /sys are: an unprivileged process in the container
/// could `unshare -Urmpf` and mount a procfs without the masked paths.
/// Every proc and sysfs mount outside the rootfs is detached first (the
/// mount namespace is a slave: the host keeps its own). In a new user
/// namespace those mounts are locked and cannot be detached: that is
/// refused rather than run exposed.
fn detach_proc_sys_outside(rootfs: &Path) -> Result<()> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| {
        RootfsError::Invalid(format!("--no-pivot: reading /proc/self/mountinfo: {e}"))
    })?;
    // (id, parent id, mount point, fstype) of every mount.
    let mounts: Vec<(&str, &str, PathBuf, &str)> = info
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let f: Vec<&str> = pre.split(' ').collect();
            let point = PathBuf::from(crate::cgroups::unescape_mountinfo(f.get(4)?));
            Some((*f.first()?, *f.get(1)?, point, post.split(' ').next()?))
        })
        .collect();
    let targets: Vec<&(&str, &str, PathBuf, &str)> = mounts
        .iter()
        .filter(|m| matches!(m.3, "proc" | "sysfs") && !m.2.starts_with(rootfs))
        .collect();
    // An unmount propagates through the parent mount's peers: with a
    // non-recursive rootfsPropagation a parent outside the rootfs may still
    // be shared with the host's, so each parent is made private here (in
    // this namespace only; these mounts end up below the chroot anyway).
    for t in &targets {
        if let Some(parent) = mounts.iter().find(|m| m.0 == t.1)
            && !parent.2.starts_with(rootfs)
        {
            let _ = mount(
                None::<&str>,
                &parent.2,
                None::<&str>,
                MsFlags::MS_PRIVATE,
                None::<&str>,
            );
        }
    }
    let mut points: Vec<PathBuf> = targets.iter().map(|t| t.2.clone()).collect();
    // Deepest first; a stacked mount point appears once per mount.
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        match umount2(&p, MntFlags::MNT_DETACH) {
            // Gone already with a parent detached before it.
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(Errno::EINVAL) if !is_mount_point(&p) => {}
            Err(Errno::EINVAL) => {
                return Err(RootfsError::Invalid(format!(
                    "--no-pivot: the host's {} cannot be detached from the container's mount \
                     namespace (locked in a new user namespace), and left there it lets the \
                     container mount an unmasked procfs/sysfs; run without --no-pivot",
                    p.display()
                )));
            }
            Err(e) => return Err(op("detaching (--no-pivot)", &p)(e)),
        }
    }
    Ok(())
}

/// Whether `p` is still a mount point in this mount namespace.
fn is_mount_point(p: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return true;
    };
    info.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .is_some_and(|m| Path::new(&crate::cgroups::unescape_mountinfo(m)) == p)
    })
}

/// A container without a mount namespace of its own: chroot into the
/// rootfs, nothing mounted or unmounted (the mounts are the host's or
/// another container's).
pub fn chroot_only(rootfs: &Path) -> Result<()> {
    let fd = nix::fcntl::open(
        rootfs,
        OFlag::O_DIRECTORY | OFlag::O_PATH | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(op("opening rootfs", rootfs))?;
    nix::unistd::fchdir(&fd).map_err(op("fchdir", rootfs))?;
    nix::unistd::chroot(".").map_err(op("chroot", rootfs))?;
    nix::unistd::chdir("/").map_err(op("chdir", Path::new("/")))
}

/// After pivot_root: sysctls, readonly paths, masked paths, propagation of
/// a shared root, and the readonly root.
pub fn finalize(plan: &RootfsPlan) -> Result<()> {
    let root = Root::open(Path::new("/")).map_err(op("opening /", Path::new("/")))?;
    let linux = plan.spec.linux().as_ref();
    if let Some(sysctl) = linux.and_then(|l| l.sysctl().as_ref()) {
        let mut keys: Vec<_> = sysctl.iter().collect();
        keys.sort();
        let proc = procfs::ProcFs::open()?;
        for (k, v) in keys {
            proc.write_sysctl(k, v)?;
        }
    }
    let held = check_still_mounted(&root, plan)?;
    // Whether any mount here may be a peer of the host's (only with some
    // rootfsPropagation values) and is shared at all, or the per-path
    // check of not_toward_host can be skipped.
    let any_shared = host_peers_possible(plan) && {
        let proc = procfs::ProcFs::open()?;
        let rel = Path::new("mountinfo");
        let info = proc.open_thread_file(rel)?;
        resolve::read_regular(info, 16 << 20)
            .map_err(op("reading /proc", rel))?
            .contains(" shared:")
    };
    for p in linux
        .and_then(|l| l.readonly_paths().as_deref())
        .unwrap_or_default()
    {
        readonly_path(&root, &held, Path::new(p), any_shared)?;
    }
    for p in linux
        .and_then(|l| l.masked_paths().as_deref())
        .unwrap_or_default()
    {
        mask_path(&root, &held, Path::new(p), plan.mount_label, any_shared)?;
    }
    if let Some(prop) = root_steps(plan).root_after {
        mount(None::<&str>, "/", None::<&str>, prop, None::<&str>)
            .map_err(op("setting propagation of", Path::new("/")))?;
    }
    if plan
        .spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        // By the name "/", which no rename can move (not through
        // /proc/self/fd: /proc is the container's now).
        remount_path(Path::new("/"), Path::new("/"), MsFlags::MS_RDONLY, true)?;
    }
    Ok(())
}

/// Binds the container's terminal over /dev/console (after pivot_root).
/// The target is resolved inside the root, so a /dev/console symlink
/// planted in a rootfs-provided /dev cannot redirect the bind
/// (runc CVE-2025-52565 class).
/// `host_peers`: see [`host_peers_possible`].
pub fn bind_console(slave: &str, host_peers: bool) -> Result<()> {
    let root = Root::open(Path::new("/")).map_err(op("opening /", Path::new("/")))?;
    let console = Path::new("/dev/console");
    let target = match root.open_in(console, OFlag::O_PATH | OFlag::O_NOFOLLOW) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => root.create_file(console).map_err(op("creating", console))?,
        Err(e) => return Err(op("resolving", console)(e)),
    };
    let st = fstat(target.as_fd()).map_err(op("stat", console))?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK {
        return Err(RootfsError::Invalid(
            "/dev/console is a symlink; refusing to bind the terminal over it".into(),
        ));
    }
    if host_peers {
        not_toward_host(&target, console)?;
    }
    // Onto the fd of /dev/console: after pivot_root /proc is the
    // container's, so no /proc/self/fd path is used.
    if !crate::sys::mount_api::available() {
        let proc = procfs::ProcFs::open()?;
        let to = self_fd(&target);
        return via_procfs(&proc, || {
            mount(
                Some(slave),
                &to,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        })?
        .map_err(op("bind-mounting the terminal on", console));
    }
    let tree = crate::sys::mount_api::open_tree_clone(Path::new(slave), false)
        .map_err(op("bind-mounting the terminal on", console))?;
    crate::sys::mount_api::move_mount_onto(&tree, &target)
        .map_err(op("bind-mounting the terminal on", console))
}

/// Before the masked and read-only paths go onto /proc and /sys (by
/// name): the procfs and sysfs the config mounted there must still be
/// there. The mount points were checked when mounted, but a directory of
/// the rootfs can be renamed from outside the mount namespace (another
/// container sharing it) with the mount on it; the paths would then land
/// on whatever took the name, and the real procfs stay unmasked. The
/// checked directories are held, and every masked and read-only path
/// below them is opened from these fds, never by the name again.
fn check_still_mounted(root: &Root, plan: &RootfsPlan) -> Result<Held> {
    let mut held = Held {
        proc: None,
        sys: None,
    };
    let mounts = plan.spec.mounts().as_deref().unwrap_or_default();
    for (top, magic) in [
        ("proc", nix::sys::statfs::PROC_SUPER_MAGIC),
        ("sys", nix::sys::statfs::SYSFS_MAGIC),
    ] {
        let Some(m) = mounts
            .iter()
            .rev()
            .find(|m| resolve::clean(m.destination()) == Path::new(top))
        else {
            continue;
        };
        let typ = m.typ().as_deref();
        let host_proc = top == "proc" && typ != Some("proc");
        if !(typ == Some(if top == "proc" { "proc" } else { "sysfs" }) || host_proc) {
            continue;
        }
        let shown = Path::new("/").join(top);
        let fd = root
            .open_no_symlinks(Path::new(top), OFlag::O_PATH | OFlag::O_DIRECTORY)
            .ok()
            .filter(|fd| {
                let st = fstat(fd).map(|st| st.st_ino);
                let fs = nix::sys::statfs::fstatfs(fd).map(|s| s.filesystem_type());
                matches!((st, fs), (Ok(1), Ok(f)) if f == magic)
            });
        let Some(fd) = fd else {
            return Err(RootfsError::InRootfs {
                op: "mount destination",
                path: shown,
                why: "no longer holds the filesystem mounted there (moved from outside?)".into(),
            });
        };
        if top == "proc" {
            held.proc = Some(fd);
        } else {
            held.sys = Some(fd);
        }
    }
    Ok(held)
}

/// /proc and /sys as checked by [`check_still_mounted`] (None where the
/// config mounts nothing of that type there).
struct Held {
    proc: Option<OwnedFd>,
    sys: Option<OwnedFd>,
}

/// Opens a readonly or masked path (after pivot_root). Paths under /proc
/// and /sys are walked from that directory, opened as a real directory
/// (no symlink, and for /proc the root of a procfs when one is mounted),
/// never leaving it: a symlink there that leads out (planted by another
/// container in a shared directory, say) is an error, not a path to skip
/// or to follow elsewhere. A path that is genuinely absent (ENOENT with
/// nothing hostile on the way) is skipped, as runc does; other paths are
/// resolved inside the root as every config path is.
fn open_protected(
    root: &Root,
    held: &Held,
    p: &Path,
    what: &'static str,
) -> Result<Option<OwnedFd>> {
    let rel = resolve::clean(p);
    let mut parts = rel.components();
    let top = parts.next().map(|c| Path::new(c.as_os_str()));
    let rest = parts.as_path();
    let hostile = |why: String| RootfsError::InRootfs {
        op: what,
        path: p.to_path_buf(),
        why,
    };
    let Some(top) = top.filter(|t| *t == Path::new("proc") || *t == Path::new("sys")) else {
        return match root.resolve(p) {
            Ok(fd) => Ok(Some(fd)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(root.error(what, p, e)),
        };
    };
    let shown = Path::new("/").join(top);
    let kept = if top == Path::new("proc") {
        held.proc.as_ref()
    } else {
        held.sys.as_ref()
    };
    let opened = match kept {
        // dup(2): only fails when out of fds.
        Some(fd) => Ok(fd.try_clone().map_err(|e| {
            op("duplicating", &shown)(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EBADF)))
        })?),
        None => root.open_no_symlinks(top, OFlag::O_PATH | OFlag::O_DIRECTORY),
    };
    let base = match opened {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => {
            let why = root
                .first_symlink(top)
                .unwrap_or_else(|| format!("{} is not a real directory ({e})", shown.display()));
            return Err(hostile(why));
        }
    };
    let fs = nix::sys::statfs::fstatfs(&base)
        .map_err(op("statfs", &shown))?
        .filesystem_type();
    if fs == nix::sys::statfs::PROC_SUPER_MAGIC
        && fstat(&base).map_err(op("stat", &shown))?.st_ino != 1
    {
        return Err(hostile("/proc is not the root of a procfs".into()));
    }
    if rest.as_os_str().is_empty() {
        return Ok(Some(base));
    }
    let how = nix::fcntl::OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(
            nix::fcntl::ResolveFlag::RESOLVE_BENEATH
                | nix::fcntl::ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    match resolve::openat2(base.as_fd(), rest, how) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e @ (Errno::EXDEV | Errno::ELOOP)) => Err(hostile(format!(
            "leads out of {} through a symlink ({e})",
            shown.display()
        ))),
        Err(e) => Err(op(what, p)(e)),
    }
}

/// The mount id of the file `fd` is open on, from its fdinfo (any kernel
/// since 3.15; statx's STATX_MNT_ID needs 5.8).
fn mount_id(proc: &procfs::ProcFs, fd: &impl std::os::fd::AsRawFd) -> Result<u64> {
    let rel = PathBuf::from(format!("fdinfo/{}", fd.as_raw_fd()));
    let info = proc.open_thread_file(&rel)?;
    let text = resolve::read_regular(info, 64 * 1024).map_err(op("reading", &rel))?;
    text.lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            RootfsError::Invalid(format!("/proc/thread-self/{}: no mnt_id", rel.display()))
        })
}

/// Before rrun puts a mount of its own (a masked or read-only path, the
/// host cgroupfs mask, the console) on `at`: the mount `at` lies on must
/// not be shared, or the new mount would appear at all its peers, and with
/// a shared rootfsPropagation those include the host's (a bind of the
/// host's /proc, /sys or /dev, or of a shared volume): a read-only
/// /proc/sys or an empty tmpfs on the host. A shared one is made a slave
/// (it keeps receiving the host's mounts; the container's own mounts in
/// it stop reaching the host). Found in mountinfo by the id of `at`,
/// opened by its mount point and checked to be that very mount before
/// its propagation is changed through the fd.
fn not_toward_host(at: &impl std::os::fd::AsRawFd, what: &Path) -> Result<()> {
    let proc = procfs::ProcFs::open()?;
    let id = mount_id(&proc, at)?;
    let rel = Path::new("mountinfo");
    let info = proc.open_thread_file(rel)?;
    let text = resolve::read_regular(info, 16 << 20).map_err(op("reading /proc", rel))?;
    let Some((point, shared)) = text.lines().find_map(|l| {
        let (pre, _) = l.split_once(" - ")?;
        let f: Vec<&str> = pre.split(' ').collect();
        (f.first()?.parse::<u64>().ok()? == id).then(|| {
            let shared = f.iter().skip(6).any(|x| x.starts_with("shared:"));
            (
                crate::cgroups::unescape_mountinfo(f.get(4).copied().unwrap_or("")),
                shared,
            )
        })
    }) else {
        return Err(RootfsError::Invalid(format!(
            "{}: its mount ({id}) is not in /proc/self/mountinfo",
            what.display()
        )));
    };
    if !shared {
        return Ok(());
    }
    let point = PathBuf::from(point);
    let root = nix::fcntl::open(
        &point,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(op("opening the mount point of", what))?;
    if mount_id(&proc, &root)? != id {
        return Err(RootfsError::InRootfs {
            op: "making non-shared the mount below",
            path: what.to_path_buf(),
            why: format!("its mount point {} changed meanwhile", point.display()),
        });
    }
    let done = if crate::sys::mount_api::available() {
        crate::sys::mount_api::set_propagation(&root, false, MsFlags::MS_SLAVE.bits())
    } else {
        via_procfs(&proc, || {
            mount(
                None::<&str>,
                &self_fd(&root),
                None::<&str>,
                MsFlags::MS_SLAVE,
                None::<&str>,
            )
        })?
    };
    done.map_err(op("making non-shared the mount below", what))
}

/// Runs `f` with the working directory on the directory `fd`, so that a
/// mount(2) on "." lands exactly there: no path through /proc, which
/// after pivot_root is the container's and may not be what it seems.
fn in_dir<T>(fd: &impl AsFd, f: impl FnOnce() -> T) -> nix::Result<T> {
    nix::unistd::fchdir(fd.as_fd())?;
    let r = f();
    nix::unistd::chdir("/")?;
    Ok(r)
}

/// For kernels without the new mount API (before 5.12), after
/// pivot_root: `f` gets "self/fd/N" for `fd`, to be used with the working
/// directory on a procfs root checked to be one (not the name /proc,
/// which another container may have replaced with a directory of
/// symlinks), so mount(2) still reaches the fd's file.
fn via_procfs<T>(proc: &procfs::ProcFs, f: impl FnOnce() -> T) -> Result<T> {
    in_dir(&proc.root(), f).map_err(op("entering", Path::new("/proc")))
}

fn self_fd(fd: &impl std::os::fd::AsRawFd) -> PathBuf {
    PathBuf::from(format!("self/fd/{}", fd.as_raw_fd()))
}

/// A read-only path: a recursive bind of the path over itself, made
/// detached and made read-only (nosuid, nodev, noexec) all the way down
/// before it is attached, so a submount below it is read-only too and no
/// lookup by name follows the bind.
fn readonly_path(root: &Root, held: &Held, p: &Path, any_shared: bool) -> Result<()> {
    let Some(fd) = open_protected(root, held, p, "resolving readonly path")? else {
        return Ok(());
    };
    if any_shared {
        not_toward_host(&fd, p)?;
    }
    if !crate::sys::mount_api::available() {
        let proc = procfs::ProcFs::open()?;
        let path = self_fd(&fd);
        via_procfs(&proc, || {
            mount(
                Some(&path),
                &path,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
        })?
        .map_err(op("bind-mounting readonly path", p))?;
        // The bind is now on top of the name, reached by the same walk.
        let top = open_protected(root, held, p, "resolving readonly path")?
            .ok_or_else(|| op("resolving readonly path", p)(Errno::ENOENT))?;
        let flags =
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        return via_procfs(&proc, || remount_path(&self_fd(&top), p, flags, true))?;
    }
    let tree =
        crate::sys::mount_api::clone_fd(&fd, true).map_err(op("bind-mounting readonly path", p))?;
    let set = attr::RDONLY | attr::NOSUID | attr::NODEV | attr::NOEXEC;
    crate::sys::mount_setattr(&tree, true, set, 0).map_err(op("making read-only", p))?;
    crate::sys::mount_api::move_mount_onto(&tree, &fd).map_err(op("bind-mounting readonly path", p))
}

/// Hides a path: an empty read-only tmpfs over a directory, /dev/null over
/// anything else. The /dev/null used is checked to be the real null device,
/// so a symlink or file planted at /dev/null cannot be bound over procfs
/// files instead (runc CVE-2025-31133 class). Both go onto the fd of the
/// path, never through the container's /proc.
fn mask_path(
    root: &Root,
    held: &Held,
    p: &Path,
    mount_label: Option<&str>,
    any_shared: bool,
) -> Result<()> {
    let Some(fd) = open_protected(root, held, p, "resolving masked path")? else {
        return Ok(());
    };
    if any_shared {
        not_toward_host(&fd, p)?;
    }
    let st = fstat(fd.as_fd()).map_err(op("stat", p))?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
        let data = lsm::with_context("size=0", mount_label);
        in_dir(&fd, || {
            mount(
                Some("tmpfs"),
                ".",
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                Some(data.as_str()),
            )
        })
        .and_then(|r| r)
        .map_err(op("masking", p))?;
        return Ok(());
    }
    let null = root
        .open_in(Path::new("/dev/null"), OFlag::O_PATH | OFlag::O_NOFOLLOW)
        .map_err(op("opening", Path::new("/dev/null")))?;
    let nst = fstat(null.as_fd()).map_err(op("stat", Path::new("/dev/null")))?;
    let is_chr = SFlag::from_bits_truncate(nst.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    if !is_chr || nst.st_rdev != nix::sys::stat::makedev(1, 3) {
        return Err(RootfsError::Invalid(
            "/dev/null in the container is not the null device; refusing to mask with it".into(),
        ));
    }
    if !crate::sys::mount_api::available() {
        let proc = procfs::ProcFs::open()?;
        let (from, to) = (self_fd(&null), self_fd(&fd));
        return via_procfs(&proc, || {
            mount(
                Some(&from),
                &to,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        })?
        .map_err(op("masking", p));
    }
    let tree = crate::sys::mount_api::clone_fd(&null, false).map_err(op("masking", p))?;
    crate::sys::mount_api::move_mount_onto(&tree, &fd).map_err(op("masking", p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_destinations() {
        assert!(check_destination(Path::new("/proc"), Some("proc")).is_ok());
        assert!(check_destination(Path::new("/proc/cpuinfo"), Some("bind")).is_ok());
        assert!(check_destination(Path::new("/proc/self/attr"), Some("bind")).is_err());
        assert!(check_destination(Path::new("/x/../proc/sys/kernel/core_pattern"), None).is_err());
        assert!(check_destination(Path::new("/proc"), Some("tmpfs")).is_err());
        assert!(check_destination(Path::new("/data"), Some("bind")).is_ok());
    }
}
