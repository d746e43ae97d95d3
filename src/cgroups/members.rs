//! Which processes in a container's cgroups are the container's own.
//!
//! Being in the container's cgroup proves nothing: a cgroupsPath may name
//! a cgroup that already holds other processes (a pod's, a slice, another
//! container's), and somebody may move a process into it. `kill --all`,
//! `ps`, `pause` and `delete` act only on members:
//!
//! - a container with a pid namespace of its own: the processes in that
//!   namespace or in one nested below it (compared by the namespace's
//!   device and inode, read from the living init);
//! - otherwise (the host's or a joined pid namespace): the processes in a
//!   cgroup rrun created for the container (its directory, or below it, in
//!   a hierarchy where rrun made that directory), plus the init itself.
//!
//! Every candidate is pinned by a pidfd before it is checked and signalled
//! only through that pidfd, so a pid recycled meanwhile is never hit. This
//! module never removes a cgroup and never writes to one.

use std::collections::BTreeSet;
use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::sys;

/// How membership is decided for one container.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// Its own pid namespace, by (device, inode): members are in it or
    /// in a namespace nested inside it.
    PidNs(u64, u64),
    /// No pid namespace of its own: members are in these directories
    /// (the container's cgroups that rrun created) or below them.
    Owned(Vec<PathBuf>),
    /// Its own pid namespace, whose init is gone: the kernel killed every
    /// process in it, so nothing alive is the container's.
    Nobody,
}

/// The members of a container and the other processes seen in its cgroups.
#[derive(Debug, Default)]
pub struct Found {
    /// Members' pids, sorted.
    pub members: Vec<i32>,
    /// Pids in the container's cgroups (or below) that are not members.
    pub foreign: Vec<i32>,
    /// The first error signalling a member, other than ESRCH (it exited).
    pub error: Option<nix::Error>,
}

impl Found {
    fn signalled(&mut self, pid: i32, fd: &OwnedFd, sig: Option<i32>) {
        self.members.push(pid);
        if let Some(sig) = sig {
            match sys::pidfd_send_signal(fd, sig) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => {
                    self.error.get_or_insert(e);
                }
            }
        }
    }
}

/// Candidates are pinned this many at a time, so a container with many
/// processes never runs rrun out of file descriptors.
const BATCH: usize = 256;

/// The (device, inode) of `pid`'s pid namespace.
pub fn pid_ns_of(pid: i32) -> Option<(u64, u64)> {
    let m = fs::metadata(format!("/proc/{pid}/ns/pid")).ok()?;
    Some((m.dev(), m.ino()))
}

/// Whether `pid`'s pid namespace is `target` or nested inside it
/// (walking up with NS_GET_PARENT, bounded by the kernel's 32 levels).
fn in_pid_ns(pid: i32, target: (u64, u64)) -> bool {
    let Ok(f) = fs::File::open(format!("/proc/{pid}/ns/pid")) else {
        return false;
    };
    let mut ns: OwnedFd = f.into();
    for _ in 0..33 {
        match fstat_id(&ns) {
            Some(id) if id == target => return true,
            Some(_) => {}
            None => return false,
        }
        match sys::pid_ns_parent(&ns) {
            Ok(parent) => ns = parent,
            Err(_) => return false,
        }
    }
    false
}

fn fstat_id(fd: &impl AsFd) -> Option<(u64, u64)> {
    let st = nix::sys::stat::fstat(fd.as_fd()).ok()?;
    Some((st.st_dev as u64, st.st_ino as u64))
}

/// Whether the process `pid`, seen in one of the container's cgroups, is
/// known not to be the container's (a process that is gone is not).
pub fn is_foreign(rule: &Rule, pid: i32) -> bool {
    let Ok(_pinned) = sys::pidfd_open(pid) else {
        return false;
    };
    if is_zombie(pid) {
        return false;
    }
    match rule {
        Rule::PidNs(dev, ino) => !in_pid_ns(pid, (*dev, *ino)),
        // Listed in a cgroup rrun made: the container's by definition.
        Rule::Owned(_) => false,
        Rule::Nobody => true,
    }
}

/// Whether `pid` has exited and waits to be reaped.
fn is_zombie(pid: i32) -> bool {
    matches!(crate::state::proc_stat(pid), Some(('Z', _)))
}

/// Every pid in `dirs` and the cgroups below them, sorted, deduplicated.
pub fn pids_below(dirs: &[PathBuf]) -> Vec<i32> {
    fn walk(dir: &Path, out: &mut BTreeSet<i32>) {
        if let Ok(s) = fs::read_to_string(dir.join("cgroup.procs")) {
            out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
        if let Ok(rd) = fs::read_dir(dir) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&e.path(), out);
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    for dir in dirs {
        walk(dir, &mut out);
    }
    out.into_iter().collect()
}

/// Every pid on the host (for a container without cgroups).
fn all_pids() -> Vec<i32> {
    fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Sorts the processes in `dirs` (and below) into members and foreign
/// ones under `rule`, and sends `signal` (if any; 0 only checks) to each
/// member through its pidfd as it is found. `init` (already verified by
/// its start time) is always a member.
pub fn find(
    rule: &Rule,
    dirs: &[PathBuf],
    init: Option<(i32, &OwnedFd)>,
    signal: Option<i32>,
) -> Found {
    let mut candidates = pids_below(dirs);
    if dirs.is_empty() && matches!(rule, Rule::PidNs(..)) {
        // No cgroups (rootless without delegation): the namespace alone
        // tells who is the container's.
        candidates = all_pids();
    }
    let init_pid = init.map(|(p, _)| p);
    let mut found = Found::default();
    if let Some((pid, fd)) = init {
        found.signalled(pid, fd, signal);
    }
    candidates.retain(|p| Some(*p) != init_pid);
    for batch in candidates.chunks(BATCH) {
        // Pin each candidate first: what is checked below is then either
        // the process the pidfd holds, or (if it died and the pid was
        // reused) a check whose signal would go to the dead one.
        let pinned: Vec<(i32, OwnedFd)> = batch
            .iter()
            .filter_map(|p| sys::pidfd_open(*p).ok().map(|fd| (*p, fd)))
            .collect();
        let owned_now: BTreeSet<i32> = match rule {
            // Read after pinning: a pid listed now in a cgroup rrun made
            // belongs to the live process its pidfd holds, or that process
            // is dead (pids are unique among live processes).
            Rule::Owned(owned) => pids_below(owned).into_iter().collect(),
            _ => BTreeSet::new(),
        };
        for (pid, pidfd) in pinned {
            let member = match rule {
                Rule::PidNs(dev, ino) => in_pid_ns(pid, (*dev, *ino)),
                Rule::Owned(_) => owned_now.contains(&pid),
                Rule::Nobody => false,
            };
            if member {
                found.signalled(pid, &pidfd, signal);
            } else if !dirs.is_empty() && !is_zombie(pid) {
                // A zombie (an exec'd process or helper its parent has not
                // reaped yet) has left every namespace: it reads as not the
                // container's, yet nothing can freeze or signal it.
                found.foreign.push(pid);
            }
        }
    }
    found.members.sort_unstable();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_namespace_contains_self() {
        let me = std::process::id() as i32;
        let ns = pid_ns_of(me).expect("our pid namespace");
        assert!(in_pid_ns(me, ns));
        assert!(!in_pid_ns(me, (ns.0, ns.1.wrapping_add(1))));
    }

    #[test]
    fn nobody_and_foreign() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c");
        let sub = dir.join("sub");
        fs::create_dir_all(&sub).unwrap();
        let me = std::process::id();
        fs::write(sub.join("cgroup.procs"), format!("{me}\n")).unwrap();
        let dirs = vec![dir.clone()];
        assert_eq!(pids_below(&dirs), vec![me as i32]);
        let f = find(&Rule::Nobody, &dirs, None, None);
        assert!(f.members.is_empty());
        assert_eq!(f.foreign, vec![me as i32]);
        // Listed below a directory rrun made: a member (signal 0 checks).
        let f = find(&Rule::Owned(vec![dir.clone()]), &dirs, None, Some(0));
        assert_eq!(f.members, vec![me as i32]);
        assert!(f.error.is_none());
        // Made by somebody else: not one.
        let f = find(&Rule::Owned(vec![]), &dirs, None, None);
        assert_eq!(f.foreign, vec![me as i32]);
    }

    #[test]
    fn a_zombie_is_nobody_to_freeze() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c");
        fs::create_dir_all(&dir).unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        // Exited, not reaped yet.
        let zombie = (0..500).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            is_zombie(pid)
        });
        assert!(zombie, "the child never showed as a zombie");
        fs::write(dir.join("cgroup.procs"), format!("{pid}\n")).unwrap();
        let f = find(&Rule::Nobody, &[dir], None, None);
        assert!(
            f.foreign.is_empty() && f.members.is_empty(),
            "{:?}",
            f.foreign
        );
        child.wait().unwrap();
    }
}
