//! The built-in init: the policy (pure, shared with the rrun-init binary),
//! the launch plan handed to it, sealing its binary, preparing its status
//! directory, and reading its published status from the host (status.rs:
//! hostile input).

// Shared with the rrun-init binary, which uses the parts rrun does not.
#[allow(dead_code)]
pub mod plan;
#[allow(dead_code)]
pub mod policy;
pub mod status;

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};

/// The rrun-init binary, built from init/ by build.rs and embedded: the
/// init is part of rrun, not a file that could go missing or be swapped.
static INIT_BINARY: &[u8] = include_bytes!(env!("RRUN_INIT_BIN"));

/// A sealed memfd holding rrun-init. The container's PID 1 runs from this
/// copy: nothing in the container can reach, let alone rewrite, a host
/// binary through /proc/1/exe (runc CVE-2019-5736 class).
pub fn init_binary() -> Result<OwnedFd, String> {
    use nix::sys::memfd::{MFdFlags, memfd_create};
    use std::io::Write;
    let fd = memfd_create(
        "rrun-init",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .map_err(|e| format!("memfd_create: {e}"))?;
    // write(2) from our own memory: no pages are pinned by a splice, which
    // would make F_SEAL_WRITE fail with EBUSY.
    let mut dst = std::fs::File::from(fd);
    dst.write_all(INIT_BINARY)
        .map_err(|e| format!("copying the built-in init: {e}"))?;
    let fd = OwnedFd::from(dst);
    // Execute-only: exec'ing a file its user cannot read leaves the
    // process non-dumpable from the execve on, so an init without
    // CAP_DAC_READ_SEARCH is never ptraceable by the program's user, not
    // even before rrun-init's first prctl.
    nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(0o111))
        .map_err(|e| format!("making the built-in init execute-only: {e}"))?;
    crate::sys::seal(&fd).map_err(|e| format!("sealing the built-in init: {e}"))?;
    Ok(fd)
}

/// Makes the status directory, inside the container (after pivot_root,
/// before the init drops to the program's user), owned by that user: the
/// init then publishes with no privilege over /dev. A read-only or missing
/// /dev only means no status, as before.
pub fn prepare_status_dir(uid: u32, gid: u32) -> Result<(), Errno> {
    let root = crate::rootfs::resolve::Root::open(Path::new("/"))?;
    let dir = Path::new(plan::STATUS_DIR);
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        unreachable!("STATUS_DIR is an absolute path with a final name");
    };
    let parent = match root.open_in(parent, OFlag::O_PATH | OFlag::O_DIRECTORY) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    match nix::sys::stat::mkdirat(parent.as_fd(), name, Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(Errno::EROFS) => return Ok(()),
        Err(e) => return Err(e),
    }
    // Never through a symlink the rootfs may have put there.
    let fd = nix::fcntl::openat(
        parent.as_fd(),
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    nix::unistd::fchown(&fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
    nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(0o755))
}

/// The init's status directory in the container of `init_pid`, held open
/// by a watcher (see status::StatusDir).
pub fn status_dir(init_pid: i32) -> Option<status::StatusDir> {
    status::open_dir(init_pid).ok()
}

/// The init's status as `rrun state` shows it: the container's word
/// (`reportedBy`), checked and bounded (status.rs); the program's pid is
/// translated to the host's pid namespace while the init lives, by the
/// host's /proc (a pid that is not the init's child shows as null).
pub fn status_in(dir: &status::StatusDir, init_pid: i32) -> Option<serde_json::Value> {
    let s = status::read(dir).ok()?;
    let host_pid = s.pid.and_then(|p| host_pid_of_child(init_pid, p));
    Some(serde_json::json!({
        "reportedBy": REPORTED_BY,
        "restarts": s.restarts,
        "pid": host_pid,
        "lastExit": s.last_exit,
        "health": s.health,
        "gaveUp": s.gave_up,
        "exits": s.exits,
        "starts": s.starts,
    }))
}

/// Who vouches for the init's numbers: the container, not rrun.
pub const REPORTED_BY: &str = "container";

/// The status of a running container's init.
pub fn status(init_pid: i32) -> Option<serde_json::Value> {
    status_in(&status_dir(init_pid)?, init_pid)
}

/// What `state` shows for an init container that has not run (or whose
/// last status nobody saw): every key, nothing known.
pub fn empty_status() -> serde_json::Value {
    serde_json::json!({
        "reportedBy": REPORTED_BY,
        "restarts": 0, "pid": null, "lastExit": null, "health": "none",
        "gaveUp": false, "exits": 0, "starts": []
    })
}

/// How many of the init's children `host_pid_of_child` looks at; the
/// program is among the first (children are listed oldest first, and the
/// program is restarted only after the last run's leftovers are killed).
const MAX_CHILDREN_SCANNED: usize = 1024;

/// The host pid of the init's child whose pid in the container is `ns_pid`.
fn host_pid_of_child(init_pid: i32, ns_pid: i32) -> Option<i32> {
    let children =
        std::fs::read_to_string(format!("/proc/{init_pid}/task/{init_pid}/children")).ok()?;
    // The container decides how many children its PID 1 has (orphans are
    // reparented to it): look at a bounded number, so `state` costs the
    // host a bounded number of /proc reads.
    children
        .split_whitespace()
        .take(MAX_CHILDREN_SCANNED)
        .filter_map(|c| c.parse::<i32>().ok())
        .find(|c| {
            std::fs::read_to_string(format!("/proc/{c}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("NSpid:"))
                        .map(str::to_string)
                })
                .and_then(|l| {
                    l.split_whitespace()
                        .last()
                        .and_then(|x| x.parse::<i32>().ok())
                })
                == Some(ns_pid)
        })
}
