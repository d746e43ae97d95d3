//! The built-in init: the policy (pure, shared with the rrun-init binary),
//! the launch plan handed to it, finding and sealing its binary, and
//! reading its published status from the host.

// Shared with the rrun-init binary, which uses the parts rrun does not.
#[allow(dead_code)]
pub mod plan;
#[allow(dead_code)]
pub mod policy;

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::fcntl::OFlag;

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
    crate::sys::seal(&fd).map_err(|e| format!("sealing the built-in init: {e}"))?;
    Ok(fd)
}

/// The directory (the container's /dev tmpfs) where the init publishes its
/// status, opened from the host through /proc/<pid>/root with
/// RESOLVE_IN_ROOT. Holding this fd keeps the tmpfs readable after the
/// container is gone, so a watcher (`events`, a foreground `run`) still
/// reads the final status. The container never gets a host fd or path.
pub fn status_dir(init_pid: i32) -> Option<crate::rootfs::resolve::Root> {
    let root =
        crate::rootfs::resolve::Root::open(Path::new(&format!("/proc/{init_pid}/root"))).ok()?;
    let dev = Path::new(plan::STATUS_PATH).parent()?;
    let fd = root.open_in(dev, OFlag::O_PATH | OFlag::O_DIRECTORY).ok()?;
    Some(crate::rootfs::resolve::Root::from_fd(fd))
}

/// The init's status as `rrun state` shows it. The container controls the
/// file, so it is size-limited and parsed defensively; the program's pid
/// is translated to the host's pid namespace while the init lives.
pub fn status_in(dir: &crate::rootfs::resolve::Root, init_pid: i32) -> Option<serde_json::Value> {
    use std::io::Read;
    let name = Path::new(plan::STATUS_PATH).file_name()?;
    let fd = dir
        .open_in(
            Path::new(name),
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK,
        )
        .ok()?;
    let mut data = Vec::new();
    std::fs::File::from(fd)
        .take(64 * 1024)
        .read_to_end(&mut data)
        .ok()?;
    let s: plan::Status = serde_json::from_slice(&data).ok()?;
    let host_pid = s.pid.and_then(|p| host_pid_of_child(init_pid, p));
    Some(serde_json::json!({
        "restarts": s.restarts,
        "pid": host_pid,
        "lastExit": s.last_exit,
        "health": s.health,
        "gaveUp": s.gave_up,
        "exits": s.exits,
        "starts": s.starts,
    }))
}

/// The status of a running container's init.
pub fn status(init_pid: i32) -> Option<serde_json::Value> {
    status_in(&status_dir(init_pid)?, init_pid)
}

/// What `state` shows for an init container that has not run (or whose
/// last status nobody saw): every key, nothing known.
pub fn empty_status() -> serde_json::Value {
    serde_json::json!({
        "restarts": 0, "pid": null, "lastExit": null, "health": "none",
        "gaveUp": false, "exits": 0, "starts": []
    })
}

/// The host pid of the init's child whose pid in the container is `ns_pid`.
fn host_pid_of_child(init_pid: i32, ns_pid: i32) -> Option<i32> {
    let children =
        std::fs::read_to_string(format!("/proc/{init_pid}/task/{init_pid}/children")).ok()?;
    children
        .split_whitespace()
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
