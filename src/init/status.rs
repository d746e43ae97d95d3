//! Reading the built-in init's status from the host (`state`, `list`,
//! `events`). The init runs with the program's credentials and publishes
//! in a directory the program's user owns, so anything in the container
//! can rewrite or replace that file, or the directory, at any time: all of
//! it is hostile input, and what comes out is the container's word (shown
//! as `reportedBy: "container"`).
//!
//! This module never opens anything but a regular file on the container's
//! /dev tmpfs: a device node, FIFO or socket planted there is only ever
//! held as an O_PATH handle, which runs no driver code and cannot block;
//! no symlink is followed and no mount is crossed below /dev (a host file
//! bound there, a FUSE mount that never answers); /dev itself must be a
//! tmpfs, checked from the kernel's mount table before anything is looked
//! up in it. At most MAX_SIZE bytes are read, with O_NONBLOCK (a lease
//! cannot stall the open), and parsed strictly: unknown keys, values the
//! init never writes and oversized lists are refused.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

use super::plan::{self, LastExit, Status};

/// The most the init ever writes is about 1.5 kB (64 start times).
pub const MAX_SIZE: u64 = 64 * 1024;

/// /proc/<pid>/mountinfo is read whole to find /dev's filesystem; a
/// container with more mounts than this fits gets no status shown.
const MAX_MOUNTINFO: u64 = 4 << 20;

/// As many start times as the init keeps.
const MAX_STARTS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("{what}: {errno}")]
    Sys { what: &'static str, errno: Errno },
    #[error("/dev in the container is {0}, not the tmpfs rrun mounted")]
    NotTmpfs(String),
    #[error("the status is not a regular file (mode {0:o})")]
    NotRegular(u32),
    #[error("the status is larger than {MAX_SIZE} bytes")]
    TooLarge,
    #[error("the status is not valid: {0}")]
    Invalid(String),
}

fn sys(what: &'static str) -> impl FnOnce(Errno) -> StatusError {
    move |errno| StatusError::Sys { what, errno }
}

/// The init's status directory, held open: while it is, the tmpfs stays
/// readable after the container is gone, so a watcher (`events`, a
/// foreground `run`) still reads the final status.
pub struct StatusDir {
    fd: OwnedFd,
}

impl StatusDir {
    /// The directory's fd, to hand to a process that reads the final
    /// status after the container is gone (the app monitor keeps it).
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// A directory `into_fd` gave, come back (already checked by
    /// `open_dir`; the file it reads is checked again by `read`).
    pub fn from_fd(fd: OwnedFd) -> StatusDir {
        StatusDir { fd }
    }
}

/// One name below `dir`: no symlink, no magic link, no mount crossing.
fn open_below(dir: &impl AsFd, name: &str, flags: OFlag) -> Result<OwnedFd, Errno> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS
                | ResolveFlag::RESOLVE_NO_XDEV,
        );
    crate::rootfs::resolve::openat2(dir.as_fd(), name, how)
}

/// Opens the status directory of the container whose init is `init_pid`.
pub fn open_dir(init_pid: i32) -> Result<StatusDir, StatusError> {
    // The init's root as rrun set it (a mount the container stacks on its
    // own / is not seen from here).
    let root = nix::fcntl::open(
        Path::new(&format!("/proc/{init_pid}/root")),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("opening the container's root"))?;
    // "dev" is looked up in the rootfs; the mount on it is then checked by
    // id, without asking its filesystem anything, before any lookup in it.
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    let dev = crate::rootfs::resolve::openat2(root.as_fd(), "dev", how)
        .map_err(sys("opening the container's /dev"))?;
    let mnt_id = |fd: &OwnedFd| {
        crate::sys::vfs_stat(fd, "")
            .map(|st| st.mnt_id)
            .map_err(sys("statx of the container's /dev"))
    };
    let dev_mnt = mnt_id(&dev)?;
    // A /dev that is a plain directory of the rootfs (no /dev mount in the
    // config) is on the bundle's own filesystem: as trusted as the rootfs.
    if dev_mnt != mnt_id(&root)? {
        check_tmpfs(init_pid, dev_mnt)?;
    }
    let name = Path::new(plan::STATUS_DIR)
        .file_name()
        .and_then(|n| n.to_str())
        .expect("STATUS_DIR has a final name");
    let fd = open_below(&dev, name, OFlag::O_DIRECTORY)
        .map_err(sys("opening the init's status directory"))?;
    Ok(StatusDir { fd })
}

/// Mount `mnt_id` of the init's mount namespace is a tmpfs, by the kernel's
/// mount table (which asks no filesystem anything).
fn check_tmpfs(init_pid: i32, mnt_id: u64) -> Result<(), StatusError> {
    let mut mountinfo = String::new();
    std::fs::File::open(format!("/proc/{init_pid}/mountinfo"))
        .and_then(|f| f.take(MAX_MOUNTINFO).read_to_string(&mut mountinfo))
        .map_err(|e| StatusError::Sys {
            what: "reading the container's mountinfo",
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?;
    match fstype_of(&mountinfo, mnt_id) {
        Some("tmpfs") => Ok(()),
        other => Err(StatusError::NotTmpfs(other.unwrap_or("unknown").into())),
    }
}

/// Reads and checks the status in `dir`.
pub fn read(dir: &StatusDir) -> Result<Status, StatusError> {
    let check = |st: crate::sys::VfsStat| {
        if st.mode & libc::S_IFMT != libc::S_IFREG {
            return Err(StatusError::NotRegular(st.mode));
        }
        if st.size > MAX_SIZE {
            return Err(StatusError::TooLarge);
        }
        Ok(())
    };
    // By name first, so that what is plainly not a regular file is not
    // even held; then on the handle itself, which a swap cannot change.
    check(
        crate::sys::vfs_stat(&dir.fd, plan::STATUS_FILE)
            .map_err(sys("statx of the init's status"))?,
    )?;
    let path = open_below(&dir.fd, plan::STATUS_FILE, OFlag::empty())
        .map_err(sys("opening the init's status"))?;
    check(crate::sys::vfs_stat(&path, "").map_err(sys("statx of the init's status"))?)?;
    // Reopened through our own fd table: the same inode, now known to be a
    // regular file (a rename in between cannot swap in another).
    let file = nix::fcntl::open(
        &crate::rootfs::resolve::fd_path(&std::os::fd::AsRawFd::as_raw_fd(&path)),
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("reading the init's status"))?;
    let mut data = Vec::new();
    std::fs::File::from(file)
        .take(MAX_SIZE + 1)
        .read_to_end(&mut data)
        .map_err(|e| StatusError::Sys {
            what: "reading the init's status",
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?;
    if data.len() as u64 > MAX_SIZE {
        return Err(StatusError::TooLarge);
    }
    parse(&data)
}

/// The status the init would have written, or why not.
pub fn parse(data: &[u8]) -> Result<Status, StatusError> {
    let s: Status =
        serde_json::from_slice(data).map_err(|e| StatusError::Invalid(e.to_string()))?;
    let bad = |what: String| Err(StatusError::Invalid(what));
    if !matches!(
        s.health.as_str(),
        "none" | "starting" | "healthy" | "unhealthy"
    ) {
        return bad(format!("health {:?}", s.health.escape_debug().to_string()));
    }
    if let Some(p) = s.pid
        && p <= 0
    {
        return bad(format!("pid {p}"));
    }
    match s.last_exit {
        Some(LastExit::Code(c)) if !(0..=255).contains(&c) => return bad(format!("exit code {c}")),
        Some(LastExit::Signal(n)) if !(1..=64).contains(&n) => return bad(format!("signal {n}")),
        _ => {}
    }
    if s.starts.len() > MAX_STARTS {
        return bad(format!("{} start times", s.starts.len()));
    }
    if s.exit_log.len() > MAX_STARTS {
        return bad(format!("{} exit records", s.exit_log.len()));
    }
    if s.health_log.len() > plan::HEALTH_LOG_MAX
        || s.health_log
            .iter()
            .any(|h| h.output.len() > 4 * plan::HEALTH_OUTPUT_MAX)
    {
        return bad("oversized health log".into());
    }
    Ok(s)
}

/// The filesystem type of mount `mnt_id` in a mountinfo text: the field
/// after " - " on the line whose first field is the id. Every field a
/// container chooses (paths, sources, types) is escaped by the kernel, so
/// a line cannot be forged.
fn fstype_of(mountinfo: &str, mnt_id: u64) -> Option<&str> {
    let id = mnt_id.to_string();
    let line = mountinfo
        .lines()
        .find(|l| l.split(' ').next() == Some(id.as_str()))?;
    let (_, after) = line.split_once(" - ")?;
    after.split(' ').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"restarts":2,"pid":7,"lastExit":{"code":3},"health":"healthy","gaveUp":false,"exits":2,"starts":[1,2,3]}"#;

    #[test]
    fn parses_what_the_init_writes() {
        let s = parse(GOOD.as_bytes()).unwrap();
        assert_eq!(s.restarts, 2);
        assert_eq!(s.pid, Some(7));
        let again = serde_json::to_vec(&s).unwrap();
        assert_eq!(parse(&again).unwrap(), s);
    }

    #[test]
    fn refuses_what_the_init_never_writes() {
        for bad in [
            r#"{"restarts":99999999999999999999,"pid":null,"lastExit":null,"health":"none","gaveUp":false,"exits":0,"starts":[]}"#,
            r#"{"restarts":1e400,"pid":null,"lastExit":null,"health":"none","gaveUp":false,"exits":0,"starts":[]}"#,
            r#"{"restarts":-1,"pid":null,"lastExit":null,"health":"none","gaveUp":false,"exits":0,"starts":[]}"#,
            r#"{"restarts":0,"pid":-5,"lastExit":null,"health":"none","gaveUp":false,"exits":0,"starts":[]}"#,
            r#"{"restarts":0,"pid":null,"lastExit":{"code":4096},"health":"none","gaveUp":false,"exits":0,"starts":[]}"#,
            r#"{"restarts":0,"pid":null,"lastExit":{"signal":0},"health":"none","gaveUp":false,"exits":0,"starts":[]}"#,
            r#"{"restarts":0,"pid":null,"lastExit":null,"health":"ok\u001b[2J","gaveUp":false,"exits":0,"starts":[]}"#,
            r#"{"restarts":0,"pid":null,"lastExit":null,"health":"none","gaveUp":false,"exits":0,"starts":[],"extra":1}"#,
            r#"{"restarts":0,"restarts":5,"pid":null,"lastExit":null,"health":"none","gaveUp":false,"exits":0,"starts":[]}"#,
            r#"{"restarts":0}"#,
            "",
            "[]",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "accepted {bad}");
        }
        let many = format!(
            r#"{{"restarts":0,"pid":null,"lastExit":null,"health":"none","gaveUp":false,"exits":0,"starts":[{}]}}"#,
            vec!["1"; MAX_STARTS + 1].join(",")
        );
        assert!(parse(many.as_bytes()).is_err());
    }

    #[test]
    fn fstype_by_mount_id() {
        let mi = "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n\
                  31 22 0:50 / /dev rw,nosuid - tmpfs tmpfs rw,mode=755\n\
                  32 31 0:51 / /dev/x\\040-\\0403\\040-\\040tmpfs rw - fuse.x\\040-\\040tmpfs x rw\n";
        assert_eq!(fstype_of(mi, 31), Some("tmpfs"));
        assert_eq!(fstype_of(mi, 22), Some("ext4"));
        assert_eq!(fstype_of(mi, 32), Some("fuse.x\\040-\\040tmpfs"));
        assert_eq!(fstype_of(mi, 3), None);
    }
}
