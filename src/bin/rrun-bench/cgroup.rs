//! The bench's cgroups: every container gets the relative cgroupsPath
//! `<parent>/<id>`, so it nests under the cgroup of the runtime that created
//! it (runc, rrun) or under a hierarchy root (a runtime that reads relative
//! paths from the root). This module finds `<parent>` in both places in every
//! mounted hierarchy, and empties and removes it.

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A mounted cgroup hierarchy and this process's cgroup in it.
struct Hierarchy {
    mount: PathBuf,
    own: String,
}

fn hierarchies() -> Vec<Hierarchy> {
    let selfcg = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        let (Some(mount), Some(fstype), Some(superopts)) = (pre.get(4), post.first(), post.get(2))
        else {
            continue;
        };
        let own = match *fstype {
            "cgroup2" => selfcg
                .lines()
                .find_map(|l| l.strip_prefix("0::"))
                .map(str::to_owned),
            "cgroup" => selfcg.lines().find_map(|l| {
                let mut f = l.splitn(3, ':');
                let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
                let opts: Vec<&str> = superopts.split(',').collect();
                ctrls
                    .split(',')
                    .any(|c| !c.is_empty() && opts.contains(&c))
                    .then(|| path.to_owned())
            }),
            _ => None,
        };
        if let Some(own) = own {
            out.push(Hierarchy {
                mount: PathBuf::from(mount),
                own,
            });
        }
    }
    out
}

/// Every existing `<parent>` directory: under our own cgroup and at the
/// root of each hierarchy.
pub fn parent_dirs(parent: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for h in hierarchies() {
        for base in [h.mount.join(h.own.trim_start_matches('/')), h.mount.clone()] {
            let d = base.join(parent);
            if d.is_dir() && !dirs.contains(&d) {
                dirs.push(d);
            }
        }
    }
    dirs
}

/// Cgroup directories left for container `id` (any hierarchy).
pub fn leftovers(parent: &str, id: &str) -> Vec<PathBuf> {
    parent_dirs(parent)
        .into_iter()
        .map(|d| d.join(id))
        .filter(|d| d.is_dir())
        .collect()
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Pids in `dir` and below.
pub fn procs(dir: &Path) -> Vec<i32> {
    let mut pids: Vec<i32> = fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    for d in subdirs(dir) {
        pids.extend(procs(&d));
    }
    pids
}

/// SIGKILL everything in `dir`, then rmdir it bottom-up (cgroupfs holds no
/// real files). Retries while the killed processes die.
pub fn remove_tree(dir: &Path) {
    for _ in 0..50 {
        for pid in procs(dir) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        rmdir_bottom_up(dir);
        if !dir.exists() {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn rmdir_bottom_up(dir: &Path) {
    for d in subdirs(dir) {
        rmdir_bottom_up(&d);
    }
    let _ = fs::remove_dir(dir);
}
