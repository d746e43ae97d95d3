//! Device nodes in the container's /dev: the defaults every container gets
//! (null, zero, full, random, urandom, tty) and `linux.devices`. Without a
//! user namespace they are made with mknod; inside one, mknod is not
//! allowed, so the host's node is bind-mounted onto an empty file.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::mount::{MsFlags, mount};
use nix::sys::stat::{Mode, SFlag, fstat, makedev, mknodat};
use nix::unistd::{Gid, Uid, fchownat, symlinkat};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::RootfsError;
use super::resolve::{Root, fd_path};

/// The directory a node goes into must be reached without a symlink: an
/// image's `/dev -> /data`, with a volume bound at /data, would otherwise
/// have rrun unlink and mknod in the host's directory (and runc does).
fn real_parent(root: &Root, dev: &DeviceNode, dir: &impl AsFd) -> Result<(), RootfsError> {
    let parent = dev.path.parent().unwrap_or(Path::new("/"));
    let same = root
        .open_no_symlinks(parent, OFlag::O_PATH | OFlag::O_DIRECTORY)
        .and_then(|fd| Ok((fstat(fd.as_fd())?, fstat(dir.as_fd())?)))
        .is_ok_and(|(a, b)| (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino));
    if same {
        return Ok(());
    }
    let why = root
        .first_symlink(parent)
        .unwrap_or_else(|| format!("{} moved while it was resolved", parent.display()));
    Err(RootfsError::InRootfs {
        op: "creating device",
        path: dev.path.clone(),
        why: format!("{why}; device nodes are only made in real directories of the rootfs"),
    })
}

/// A device to create: path inside the container, kind, numbers, mode, owner.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceNode {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

pub fn default_devices() -> Vec<DeviceNode> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .iter()
    .map(|(name, major, minor)| DeviceNode {
        path: Path::new("/dev").join(name),
        kind: SFlag::S_IFCHR,
        major: *major,
        minor: *minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

pub fn from_config(d: &LinuxDevice) -> DeviceNode {
    let kind = match d.typ() {
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        _ => SFlag::S_IFCHR,
    };
    DeviceNode {
        path: d.path().clone(),
        kind,
        major: d.major().max(0) as u64,
        minor: d.minor().max(0) as u64,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    }
}

/// Creates one node. `bind_from_host` is for user namespaces.
///
/// This runs before pivot_root, so a path followed by name could lead to
/// the host: another container sharing this /dev (a volume, a shared
/// rootfs) may swap the new node for a symlink at any moment
/// (runc CVE-2024-45310 class). So the node is opened once, without
/// following links, checked to be the node just made, and owner and mode
/// are set on that fd.
pub fn create(root: &Root, dev: &DeviceNode, bind_from_host: bool) -> Result<(), RootfsError> {
    let err = |op, e| root.error(op, &dev.path, e);
    let (dir, name) = root
        .parent_of(&dev.path)
        .map_err(|e| err("resolving device parent", e))?;
    real_parent(root, dev, &dir)?;
    if bind_from_host {
        let target = root
            .create_file(&dev.path)
            .map_err(|e| err("creating device file", e))?;
        mount(
            Some(&dev.path),
            &fd_path(&target),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| err("bind-mounting host device", e))?;
        return Ok(());
    }
    // An existing entry (the image shipped one) is replaced: its numbers
    // and mode must be the config's.
    let _ = nix::unistd::unlinkat(dir.as_fd(), &name, nix::unistd::UnlinkatFlags::NoRemoveDir);
    let rdev = makedev(dev.major, dev.minor);
    mknodat(
        dir.as_fd(),
        &name,
        dev.kind,
        Mode::from_bits_truncate(dev.mode),
        rdev,
    )
    .map_err(|e| err("mknod", e))?;
    let node = openat(
        dir.as_fd(),
        &name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| err("opening the new node", e))?;
    let st = fstat(node.as_fd()).map_err(|e| err("stat", e))?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    let want_rdev = if dev.kind == SFlag::S_IFIFO { 0 } else { rdev };
    if kind != dev.kind || st.st_rdev != want_rdev {
        return Err(RootfsError::Invalid(format!(
            "device {}: replaced by something else while it was being created \
             (is this /dev shared with another container?)",
            dev.path.display()
        )));
    }
    // chown first: it clears set-id bits, which the mode may ask for.
    fchownat(
        node.as_fd(),
        "",
        Some(Uid::from_raw(dev.uid)),
        Some(Gid::from_raw(dev.gid)),
        AtFlags::AT_EMPTY_PATH,
    )
    .map_err(|e| err("chown", e))?;
    // fchmod does not take an O_PATH fd; its /proc/self/fd link names the
    // very inode, whatever happens to the name meanwhile.
    nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        &fd_path(&node),
        Mode::from_bits_truncate(dev.mode),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .map_err(|e| err("chmod", e))?;
    Ok(())
}

/// The /dev symlinks every Linux program expects.
pub fn create_symlinks(root: &Root, with_ptmx: bool) -> Result<(), RootfsError> {
    let mut links = vec![
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "/dev/core"));
    }
    if with_ptmx {
        links.push(("pts/ptmx", "/dev/ptmx"));
    }
    for (target, link) in links {
        let (dir, name) = root
            .parent_of(Path::new(link))
            .map_err(|e| root.error("resolving /dev", Path::new(link), e))?;
        if link == "/dev/ptmx" {
            let _ =
                nix::unistd::unlinkat(dir.as_fd(), &name, nix::unistd::UnlinkatFlags::NoRemoveDir);
        }
        match symlinkat(target, dir.as_fd(), &name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => {
                return Err(RootfsError::Op {
                    op: "symlink",
                    path: link.into(),
                    source: e,
                });
            }
        }
    }
    Ok(())
}
