//! Control groups: finding the hierarchies rrun itself lives in, placing the
//! container in its own cgroup in each (planned first, so the state records
//! which directories rrun makes before it makes them), the v1 device
//! allowlist, and removing on delete exactly the cgroups rrun made. A
//! cgroup rrun did not make is never removed; which processes in the
//! container's cgroups are its own is `members`' business.
//!
//! Hybrid and legacy hosts use every v1 hierarchy rrun is in (plus the
//! unified one in hybrid mode, as runc does); pure v2 hosts use the single
//! unified hierarchy. Resource limits beyond devices live in the resources
//! work (see ARCHITECTURE.md). Reading /proc and /sys is parameterised by a
//! root so the pure parts are unit-tested on a temp dir.

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

pub mod bpf;
pub mod devices_v1;
pub mod members;
pub mod resources;
pub mod systemd;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroups: reading {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("cgroups: writing {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },
    #[error("cgroups: creating {0}: {1}")]
    Create(PathBuf, std::io::Error),
    #[error("cgroups: opening {0}: {1}")]
    Open(PathBuf, std::io::Error),
    #[error("cgroups: no cgroup hierarchy found for this process")]
    NoHierarchy,
    #[error("linux.cgroupsPath {0:?}: {1}")]
    BadPath(String, &'static str),
    #[error(
        "cgroups: {0} already exists, and linux.cgroupsPath is not set: another container with this id \
         (perhaps under another --root) or a leftover uses it; set linux.cgroupsPath, pick another id, \
         or remove the cgroup"
    )]
    DefaultTaken(PathBuf),
    #[error("cgroups: {0} is frozen: the container's processes would hang in it (thaw it first)")]
    Frozen(PathBuf),
    #[error("cgroups: {0}")]
    Resource(#[from] resources::ResourceError),
    #[error("--cgroup {0:?}: {1}")]
    SubCgroup(String, String),
    #[error("cgroups: linux.resources.devices: {0}")]
    DeviceRule(#[from] devices_v1::RuleError),
    #[error(
        "cgroups: linux.resources needs the {0} controller, which is not available to this container"
    )]
    NoController(String),
    #[error("cgroups: enabling {controller} in {path}: {source}")]
    Enable {
        controller: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cgroups: loading the device filter into {0}: {1}")]
    Bpf(PathBuf, nix::Error),
    #[error("cgroups: {0} did not freeze or thaw in time")]
    Freeze(PathBuf),
    #[error(transparent)]
    Systemd(#[from] systemd::SystemdError),
}

pub type Result<T> = std::result::Result<T, CgroupError>;

/// One mounted hierarchy rrun is a member of.
#[derive(Debug, Clone, PartialEq)]
pub struct Hierarchy {
    /// Where the hierarchy is mounted, e.g. /sys/fs/cgroup/memory.
    pub mount: PathBuf,
    /// rrun's own cgroup, as a directory under `mount`.
    pub own_dir: PathBuf,
    /// v1 controllers (or `name=...`); empty for cgroup2.
    pub controllers: Vec<String>,
    pub unified: bool,
}

/// Finds the hierarchies from `<proc>/self/cgroup` and `<proc>/self/mountinfo`.
pub fn discover(proc_root: &Path) -> Result<Vec<Hierarchy>> {
    let cg_path = proc_root.join("self/cgroup");
    let mi_path = proc_root.join("self/mountinfo");
    let cgroup = fs::read_to_string(&cg_path).map_err(|e| CgroupError::Read(cg_path, e))?;
    let mountinfo = fs::read_to_string(&mi_path).map_err(|e| CgroupError::Read(mi_path, e))?;
    let found = parse_hierarchies(&cgroup, &mountinfo);
    if found.is_empty() {
        return Err(CgroupError::NoHierarchy);
    }
    Ok(found)
}

struct CgroupMount {
    root: String,
    point: String,
    fstype: String,
    opts: Vec<String>,
}

fn parse_mountinfo(mountinfo: &str) -> Vec<CgroupMount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            let fstype = *post.first()?;
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            Some(CgroupMount {
                root: unescape_mountinfo(pre.get(3)?),
                point: unescape_mountinfo(pre.get(4)?),
                fstype: fstype.to_string(),
                opts: post.get(2)?.split(',').map(str::to_string).collect(),
            })
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
pub fn unescape_mountinfo(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let digits = std::str::from_utf8(&b[i + 1..i + 4]).ok();
            if let Some(Ok(v)) = digits.map(|d| u8::from_str_radix(d, 8)) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_hierarchies(cgroup: &str, mountinfo: &str) -> Vec<Hierarchy> {
    let mounts = parse_mountinfo(mountinfo);
    let mut out = Vec::new();
    for line in cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrl), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let controllers: Vec<String> = if ctrl.is_empty() {
            vec![]
        } else {
            ctrl.split(',').map(str::to_string).collect()
        };
        let mount = if controllers.is_empty() {
            mounts.iter().find(|m| m.fstype == "cgroup2")
        } else {
            mounts
                .iter()
                .find(|m| m.fstype == "cgroup" && controllers.iter().all(|c| m.opts.contains(c)))
        };
        let Some(m) = mount else { continue };
        // The mount may expose only part of the hierarchy (a cgroup
        // namespace, or a bind of a subtree): our path is relative to it.
        let rel = Path::new(path)
            .strip_prefix(&m.root)
            .unwrap_or(Path::new(path.trim_start_matches('/')));
        let rel = rel.strip_prefix("/").unwrap_or(rel);
        out.push(Hierarchy {
            mount: PathBuf::from(&m.point),
            own_dir: Path::new(&m.point).join(rel),
            controllers,
            unified: ctrl.is_empty(),
        });
    }
    out
}

/// True when the host has only the unified hierarchy.
pub fn is_pure_v2(h: &[Hierarchy]) -> bool {
    h.iter().all(|h| h.unified)
}

/// The container's cgroup directory in each hierarchy, following runc:
/// an absolute cgroupsPath is under the hierarchy's root, a relative one (and
/// the default `<id>` when it is absent) under rrun's own cgroup.
pub fn container_dirs(
    hierarchies: &[Hierarchy],
    cgroups_path: Option<&Path>,
    id: &str,
    systemd: bool,
) -> Result<Vec<PathBuf>> {
    // The systemd driver's directories are the unit's, known once systemd
    // has placed it (see systemd.rs); none are made here.
    if systemd {
        return Ok(Vec::new());
    }
    // An empty cgroupsPath is no cgroupsPath, as in runc.
    let rel = cgroups_path
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new(id));
    validate_path(rel)?;
    let pure_v2 = is_pure_v2(hierarchies);
    Ok(hierarchies
        .iter()
        .map(|h| {
            if rel.is_absolute() {
                h.mount.join(rel.strip_prefix("/").unwrap_or(rel))
            } else if pure_v2 && h.own_dir != h.mount {
                // cgroup v2 lets a cgroup hand controllers to children only
                // while it has no processes, and rrun's own cgroup has rrun:
                // like runc, nest beside it, under its parent.
                h.own_dir.parent().unwrap_or(&h.mount).join(rel)
            } else {
                h.own_dir.join(rel)
            }
        })
        .collect())
}

/// Refuses a cgroupsPath that does not name one cgroup of its own, in
/// one spelling: `.`/`..` components (`.` is rrun's own cgroup, `..`
/// leaves the tree it nests in), empty components (`a//b`, a trailing
/// `/`, and `/` alone, the root of every hierarchy), and the characters
/// a cgroup name cannot hold. The path is stored as given, so `a/./b`
/// and `a/b` would otherwise be two spellings of one cgroup.
pub fn validate_path(p: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = p.as_os_str().as_bytes();
    let bad = |why| Err(CgroupError::BadPath(p.to_string_lossy().into_owned(), why));
    if bytes.contains(&0) || bytes.contains(&b'\n') {
        return bad("must not contain NUL or newline characters");
    }
    let rest = bytes.strip_prefix(b"/").unwrap_or(bytes);
    if rest.is_empty() {
        return bad("names the root of every cgroup hierarchy; name a cgroup below it");
    }
    for part in rest.split(|b| *b == b'/') {
        match part {
            b"" => return bad("empty path component (a doubled or trailing '/')"),
            b"." | b".." => return bad("'.' and '..' components are not allowed"),
            _ => {}
        }
    }
    Ok(())
}

fn write(path: &Path, value: &str) -> Result<()> {
    fs::write(path, value).map_err(|e| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source: e,
    })
}

/// What creating the container's cgroups will do, found before any side
/// effect: which directories are missing (so the state can record, before
/// they exist, which ones rrun makes and so alone may remove), and which
/// container directories already exist (made by somebody else).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Plan {
    /// Directories to make, each parent before its children.
    pub missing: Vec<PathBuf>,
    /// Container directories that exist already.
    pub existing: Vec<PathBuf>,
    /// For each container directory, its deepest existing ancestor (or
    /// itself) that is not an ancestor of rrun's own cgroup: where a
    /// freeze could come from (rrun's own cgroup cannot be frozen: rrun
    /// runs in it).
    frozen_candidates: Vec<PathBuf>,
}

/// Plans the creation of `dirs` (one per hierarchy, as `container_dirs`
/// returns them).
pub fn plan(hierarchies: &[Hierarchy], dirs: &[PathBuf]) -> Plan {
    let mut plan = Plan::default();
    for (h, dir) in hierarchies.iter().zip(dirs) {
        let mut missing = Vec::new();
        let mut p = dir.as_path();
        while !p.exists() {
            missing.push(p.to_path_buf());
            match p.parent() {
                Some(parent) => p = parent,
                None => break,
            }
        }
        if missing.is_empty() {
            plan.existing.push(dir.clone());
        }
        if !h.own_dir.starts_with(p) {
            plan.frozen_candidates.push(p.to_path_buf());
        }
        plan.missing.extend(missing.into_iter().rev());
    }
    plan
}

impl Plan {
    /// Refuses what would make the container hang or share by accident:
    /// a frozen cgroup (or one below a frozen cgroup), and, when the
    /// cgroupsPath was not given (the default `<id>`), a cgroup that
    /// exists already — two --root directories with one id would
    /// otherwise share it. An existing cgroup named by cgroupsPath is the
    /// caller's choice (pods, slices): it is used, with a warning when it
    /// holds processes already.
    pub fn check(&self, default_path: bool, id: &str) -> Result<()> {
        for d in &self.frozen_candidates {
            if freeze_state(d) {
                return Err(CgroupError::Frozen(d.clone()));
            }
        }
        if default_path && let Some(d) = self.existing.first() {
            return Err(CgroupError::DefaultTaken(d.clone()));
        }
        for d in &self.existing {
            let procs = fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
            let pids: Vec<&str> = procs.split_whitespace().take(8).collect();
            if !pids.is_empty() {
                crate::log::warn(&format!(
                    "cgroups: {} already holds processes that are not container {id}'s (pids {}{}); \
                     rrun will not signal them, and will not remove this cgroup",
                    d.display(),
                    pids.join(" "),
                    if procs.split_whitespace().nth(8).is_some() {
                        " ..."
                    } else {
                        ""
                    }
                ));
                break;
            }
        }
        Ok(())
    }
}

/// Whether the cgroup `dir` is frozen or freezing, by itself or through an
/// ancestor: v1's freezer.state reports both; v2's cgroup.events `frozen`
/// reports the effective state, cgroup.freeze a freeze still under way.
fn freeze_state(dir: &Path) -> bool {
    if let Ok(s) = fs::read_to_string(dir.join("freezer.state")) {
        return s.trim() != "THAWED";
    }
    let events = fs::read_to_string(dir.join("cgroup.events")).unwrap_or_default();
    events.lines().any(|l| l.trim() == "frozen 1")
        || fs::read_to_string(dir.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
}

/// Makes the planned directories, recording in `made` the ones rrun made: one that
/// appeared meanwhile (a concurrent create) is somebody else's and left
/// out; a parent that vanished meanwhile (a concurrent delete removing
/// what it had made) is made again, and counted.
/// `made` is filled as it goes, so a failure half-way still tells the
/// caller what to remove.
pub fn create(missing: &[PathBuf], made: &mut Vec<PathBuf>) -> Result<()> {
    for d in missing {
        mkdir_recorded(d, made, 0)?;
    }
    Ok(())
}

fn mkdir_recorded(d: &Path, made: &mut Vec<PathBuf>, depth: usize) -> Result<()> {
    match fs::create_dir(d) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound && depth < 64 => {
            let parent = d.parent().ok_or_else(|| CgroupError::Create(d.into(), e))?;
            mkdir_recorded(parent, made, depth + 1)?;
            return mkdir_recorded(d, made, depth + 1);
        }
        Err(e) => return Err(CgroupError::Create(d.to_path_buf(), e)),
    }
    made.push(d.to_path_buf());
    Ok(())
}

/// Fills the v1 cpuset levels of the container's directories (see
/// `fill_cpusets`), once they all exist.
pub fn fill_cpusets_of(hierarchies: &[Hierarchy], dirs: &[PathBuf]) -> Result<()> {
    for (h, dir) in hierarchies.iter().zip(dirs) {
        if h.controllers.iter().any(|c| c == "cpuset") {
            fill_cpusets(&h.mount, dir)?;
        }
    }
    Ok(())
}

/// A v1 cpuset cgroup with an empty cpuset.cpus or cpuset.mems refuses
/// tasks (ENOSPC). A new one starts empty, and so may an existing level
/// that another tool made without filling it: every level from the
/// hierarchy's root down to `dir` that is empty gets its parent's value.
fn fill_cpusets(mountpoint: &Path, dir: &Path) -> Result<()> {
    let Ok(rel) = dir.strip_prefix(mountpoint) else {
        return Ok(());
    };
    let mut parent = mountpoint.to_path_buf();
    for part in rel.components() {
        let d = parent.join(part);
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let mine =
                fs::read_to_string(d.join(f)).map_err(|e| CgroupError::Read(d.join(f), e))?;
            if mine.trim().is_empty() {
                let theirs = fs::read_to_string(parent.join(f))
                    .map_err(|e| CgroupError::Read(parent.join(f), e))?;
                write(&d.join(f), theirs.trim())?;
            }
        }
        parent = d;
    }
    Ok(())
}

/// Whether we may create every one of `dirs` (for rootless use: only a
/// delegated subtree is writable).
pub fn writable(dirs: &[PathBuf]) -> bool {
    dirs.iter().all(|d| {
        let existing = d.ancestors().find(|a| a.exists()).unwrap_or(Path::new("/"));
        nix::unistd::access(existing, nix::unistd::AccessFlags::W_OK).is_ok()
    })
}

/// What a new container process needs to join its cgroups by itself,
/// opened by the parent before the clone.
///
/// Why not the parent writing the pid into cgroup.procs: every such write
/// takes the kernel's global threadgroup lock for writing, which waits for
/// an RCU grace period — about 10 ms, the largest single cost of a create
/// on a v1 host. Two ways avoid it: on cgroup2, clone3(CLONE_INTO_CGROUP)
/// places the child at birth; on v1, a single-threaded process writing "0"
/// (itself) into a hierarchy's `tasks` file moves only its own thread,
/// which the kernel does without that lock.
pub struct Placement {
    /// The cgroup2 directory, for clone3(CLONE_INTO_CGROUP).
    pub unified: Option<std::os::fd::OwnedFd>,
    /// Each v1 hierarchy's `tasks` file, open for writing.
    pub v1_tasks: Vec<(PathBuf, std::os::fd::OwnedFd)>,
}

impl Placement {
    /// Opens what `join_self` and the clone need, for existing `dirs`
    /// (one per hierarchy; a v1 directory is the one with a `tasks` file).
    pub fn open(dirs: &[PathBuf]) -> Result<Self> {
        use nix::fcntl::{OFlag, open};
        use nix::sys::stat::Mode;
        let mut p = Placement {
            unified: None,
            v1_tasks: Vec::new(),
        };
        for dir in dirs {
            let tasks = dir.join("tasks");
            match open(
                tasks.as_path(),
                OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => p.v1_tasks.push((tasks, fd)),
                Err(nix::errno::Errno::ENOENT) if p.unified.is_none() => {
                    let fd = open(
                        dir.as_path(),
                        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| CgroupError::Open(dir.clone(), e.into()))?;
                    p.unified = Some(fd);
                }
                Err(e) => return Err(CgroupError::Open(tasks, e.into())),
            }
        }
        Ok(p)
    }

    /// In the new process, before it runs anything else: joins every v1
    /// hierarchy (the cgroup2 one was joined at clone). Must be called
    /// while the process has a single thread.
    pub fn join_self(&self) -> std::result::Result<(), String> {
        for (path, fd) in &self.v1_tasks {
            nix::unistd::write(fd, b"0")
                .map_err(|e| format!("joining cgroup {}: {e}", path.display()))?;
        }
        Ok(())
    }

    /// For a process that was not born in the cgroup2 directory (clone3
    /// unavailable): join it through cgroup.procs, the slow way.
    pub fn join_unified_self(&self) -> std::result::Result<(), String> {
        let Some(dir) = &self.unified else {
            return Ok(());
        };
        let procs = nix::fcntl::openat(
            dir,
            "cgroup.procs",
            nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| format!("opening cgroup.procs: {e}"))?;
        nix::unistd::write(&procs, b"0")
            .map(|_| ())
            .map_err(|e| format!("joining the cgroup2 hierarchy: {e}"))
    }
}

/// Moves `pid` into the container's cgroup in every hierarchy.
pub fn add_pid(dirs: &[PathBuf], pid: i32) -> Result<()> {
    for dir in dirs {
        write(&dir.join("cgroup.procs"), &pid.to_string())?;
    }
    Ok(())
}

/// One container cgroup directory and what its hierarchy offers, found
/// from the cgroup mounts (so it is right whichever process asks).
#[derive(Debug, Clone, PartialEq)]
pub struct Dir {
    pub path: PathBuf,
    pub controllers: Vec<String>,
    pub unified: bool,
}

/// The directories an `exec --cgroup` process joins: each argument is
/// `PATH` (every hierarchy) or `CONTROLLER[,CONTROLLER...]:PATH` (those v1
/// hierarchies), PATH relative to the container's cgroup, as runc takes
/// them. A controller the container has no hierarchy for, a controller
/// named twice, a PATH that leaves the container's cgroup, a controller on
/// a cgroup2-only host and a sub-cgroup that does not exist are errors.
pub fn sub_cgroups(dirs: &[PathBuf], subs: &[String]) -> Result<Vec<PathBuf>> {
    if subs.is_empty() {
        return Ok(dirs.to_vec());
    }
    let out = sub_cgroups_of(classify(dirs), subs)?;
    if let Some(d) = out.iter().find(|d| !d.is_dir()) {
        return Err(CgroupError::SubCgroup(
            subs.join(" "),
            format!("{} does not exist", d.display()),
        ));
    }
    Ok(out)
}

fn sub_cgroups_of(dirs: Vec<Dir>, subs: &[String]) -> Result<Vec<PathBuf>> {
    let mut all: Option<PathBuf> = None;
    let mut by_ctrl: Vec<(String, PathBuf)> = Vec::new();
    for sub in subs {
        let bad = |why: String| CgroupError::SubCgroup(sub.clone(), why);
        let (ctrls, path) = match sub.split_once(':') {
            Some((c, p)) => (Some(c), p),
            None => (None, sub.as_str()),
        };
        let mut rel = PathBuf::new();
        for c in Path::new(path).components() {
            match c {
                std::path::Component::Normal(n) => rel.push(n),
                std::path::Component::RootDir | std::path::Component::CurDir => {}
                _ => return Err(bad(format!("{path} is not a sub-cgroup path"))),
            }
        }
        if rel.as_os_str().is_empty() {
            return Err(bad("the path is empty".into()));
        }
        match ctrls {
            None if all.is_some() => return Err(bad("a second path for every controller".into())),
            None => all = Some(rel),
            Some(list) => {
                for c in list.split(',') {
                    if !dirs
                        .iter()
                        .any(|d| !d.unified && d.controllers.iter().any(|x| x == c))
                    {
                        return Err(bad(if dirs.iter().all(|d| d.unified) {
                            "a controller cannot be named on a cgroup2-only host".into()
                        } else {
                            format!("unknown controller {c:?}")
                        }));
                    }
                    if by_ctrl.iter().any(|(x, _)| x == c) {
                        return Err(bad(format!("controller {c} named twice")));
                    }
                    by_ctrl.push((c.to_string(), rel.clone()));
                }
            }
        }
    }
    let mut out = Vec::new();
    for d in dirs {
        let named: Vec<&PathBuf> = by_ctrl
            .iter()
            .filter(|(c, _)| !d.unified && d.controllers.contains(c))
            .map(|(_, p)| p)
            .collect();
        // Co-mounted controllers (cpu,cpuacct) share one directory: naming
        // both with different paths cannot be honoured.
        if named.windows(2).any(|w| w[0] != w[1]) {
            return Err(CgroupError::SubCgroup(
                subs.join(" "),
                format!(
                    "different paths for controllers of one hierarchy ({})",
                    d.controllers.join(",")
                ),
            ));
        }
        match named.first().copied().or(all.as_ref()) {
            Some(rel) => out.push(d.path.join(rel)),
            None => out.push(d.path),
        }
    }
    Ok(out)
}

/// Classifies the container's directories by the mount they live under.
pub fn classify(dirs: &[PathBuf]) -> Vec<Dir> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    classify_with(dirs, &mountinfo)
}

fn classify_with(dirs: &[PathBuf], mountinfo: &str) -> Vec<Dir> {
    let mounts = parse_mountinfo(mountinfo);
    dirs.iter()
        .filter_map(|d| {
            let m = mounts
                .iter()
                .filter(|m| d.starts_with(&m.point))
                .max_by_key(|m| m.point.len())?;
            let unified = m.fstype == "cgroup2";
            let controllers = if unified {
                fs::read_to_string(d.join("cgroup.controllers"))
                    .map(|s| s.split_whitespace().map(str::to_string).collect())
                    .unwrap_or_default()
            } else {
                m.opts
                    .iter()
                    .filter(|o| {
                        !matches!(
                            o.as_str(),
                            "rw" | "ro" | "xattr" | "noprefix" | "clone_children"
                        )
                    })
                    .filter(|o| !o.starts_with("release_agent"))
                    .cloned()
                    .collect()
            };
            Some(Dir {
                path: d.clone(),
                controllers,
                unified,
            })
        })
        .collect()
}

/// v1 (legacy or hybrid: any v1 hierarchy) or pure v2 rules apply.
fn is_v1(dirs: &[Dir]) -> bool {
    dirs.iter().any(|d| !d.unified)
}

/// cgroup v2 only delegates a controller to a child when every ancestor
/// enables it in cgroup.subtree_control: enable what the plan needs, from
/// the hierarchy root down to the container's parent.
fn enable_controllers(mount: &Path, dir: &Path, needed: &[&str]) -> Result<()> {
    let Ok(rel) = dir.strip_prefix(mount) else {
        return Ok(());
    };
    let mut cur = mount.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for comp in &parts {
        let enabled = fs::read_to_string(cur.join("cgroup.subtree_control")).unwrap_or_default();
        for c in needed {
            if enabled.split_whitespace().any(|e| e == *c) {
                continue;
            }
            fs::write(cur.join("cgroup.subtree_control"), format!("+{c}")).map_err(|e| {
                CgroupError::Enable {
                    controller: c.to_string(),
                    path: cur.clone(),
                    source: e,
                }
            })?;
        }
        cur.push(comp);
    }
    Ok(())
}

/// Applies `linux.resources` (devices included) to the container's cgroups.
/// Used by create (before the init is in them) and by update.
pub fn apply_resources(dirs: &[PathBuf], r: &LinuxResources, with_devices: bool) -> Result<()> {
    // Rootless, even in a delegated cgroup: the device controller is the
    // host's (v1 devices.* need CAP_SYS_ADMIN there, a v2 filter CAP_BPF),
    // and it has nothing to guard: in its user namespace the container
    // cannot mknod, it only binds host nodes its user may open anyway.
    let with_devices = with_devices && nix::unistd::geteuid().is_root();
    let dirs = classify(dirs);
    if is_v1(&dirs) {
        let mut plan = resources::plan_v1(r)?;
        let memsw_now = dirs
            .iter()
            .find(|d| !d.unified && d.controllers.iter().any(|c| c == "memory"))
            .and_then(|d| fs::read_to_string(d.path.join("memory.memsw.limit_in_bytes")).ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            // The kernel shows "unlimited" as a page-rounded i64::MAX.
            .filter(|&v| v < (i64::MAX as u64) & !0xfff);
        resources::order_memsw_v1(&mut plan, memsw_now);
        for wr in plan {
            let Some(d) = dirs
                .iter()
                .find(|d| !d.unified && d.controllers.iter().any(|c| c == wr.controller))
            else {
                if wr.optional {
                    crate::log::warn(&format!(
                        "cgroups: no {} controller for {}; ignored",
                        wr.controller, wr.file
                    ));
                    continue;
                }
                return Err(CgroupError::NoController(wr.controller.to_string()));
            };
            write_knob(&d.path.join(&wr.file), &wr.value, wr.optional)?;
        }
        if with_devices {
            // The config's rules start from "deny all" (runc's default), and
            // only the difference from what the cgroup has is written.
            let mut rules = vec![(false, "a".to_string())];
            rules.extend(device_rules(r.devices().as_deref().unwrap_or_default()));
            let target = devices_v1::Devices::from_rules(&rules)?;
            for d in dirs
                .iter()
                .filter(|d| d.controllers.iter().any(|c| c == "devices"))
            {
                let list_file = d.path.join("devices.list");
                let list = fs::read_to_string(&list_file)
                    .map_err(|e| CgroupError::Read(list_file.clone(), e))?;
                let current = devices_v1::Devices::from_list(&list)?;
                for (allow, rule) in current.transition(&target) {
                    let file = if allow {
                        "devices.allow"
                    } else {
                        "devices.deny"
                    };
                    write(&d.path.join(file), &rule)?;
                }
            }
        }
        return Ok(());
    }
    let plan = resources::plan_v2(r)?;
    for d in &dirs {
        let mount = mount_of(&d.path);
        enable_controllers(&mount, &d.path, &resources::controllers_needed(&plan))?;
        for wr in &plan {
            write_knob(&d.path.join(&wr.file), &wr.value, wr.optional)?;
        }
        if with_devices {
            let prog = bpf::program(&bpf::rules(r.devices().as_deref().unwrap_or_default()));
            let dirfd =
                fs::File::open(&d.path).map_err(|e| CgroupError::Read(d.path.clone(), e))?;
            crate::sys::attach_device_filter(&dirfd, &prog)
                .map_err(|e| CgroupError::Bpf(d.path.clone(), e))?;
        }
    }
    Ok(())
}

fn mount_of(dir: &Path) -> PathBuf {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    parse_mountinfo(&mountinfo)
        .into_iter()
        .filter(|m| dir.starts_with(&m.point))
        .max_by_key(|m| m.point.len())
        .map(|m| PathBuf::from(m.point))
        .unwrap_or_else(|| PathBuf::from("/sys/fs/cgroup"))
}

fn write_knob(path: &Path, value: &str, optional: bool) -> Result<()> {
    match fs::write(path, value) {
        Err(e) if optional && e.kind() == ErrorKind::NotFound => {
            crate::log::warn(&format!(
                "cgroups: {} is not available on this kernel; ignored",
                path.display()
            ));
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Err(CgroupError::NoController(format!(
            "{} file ({})",
            path.file_name().unwrap_or_default().to_string_lossy(),
            path.display()
        ))),
        other => other.map_err(|e| CgroupError::Write {
            path: path.to_path_buf(),
            value: value.to_string(),
            source: e,
        }),
    }
}

/// Freezes (pause) or thaws (resume) the container and waits until the
/// kernel reports it done.
pub fn set_frozen(dirs: &[PathBuf], frozen: bool) -> Result<()> {
    let dirs = classify(dirs);
    // On hybrid hosts the v1 freezer is the one in charge: freezing the
    // unified hierarchy as well would wait forever on tasks v1 already froze.
    let v1 = is_v1(&dirs);
    for d in dirs.iter().filter(|d| d.unified != v1) {
        let (file, value, check, want) = if d.unified {
            (
                "cgroup.freeze",
                if frozen { "1" } else { "0" },
                "cgroup.events",
                if frozen { "frozen 1" } else { "frozen 0" },
            )
        } else if d.controllers.iter().any(|c| c == "freezer") {
            (
                "freezer.state",
                if frozen { "FROZEN" } else { "THAWED" },
                "freezer.state",
                if frozen { "FROZEN" } else { "THAWED" },
            )
        } else {
            continue;
        };
        if d.unified && !d.path.join(file).exists() {
            continue;
        }
        write(&d.path.join(file), value)?;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let s = fs::read_to_string(d.path.join(check)).unwrap_or_default();
            if s.lines().any(|l| l.trim() == want) {
                break;
            }
            if Instant::now() > deadline {
                return Err(CgroupError::Freeze(d.path.clone()));
            }
            // v1 can stay FREZING while a task is in uninterruptible sleep:
            // writing again retries the freeze.
            if !d.unified && frozen {
                let _ = fs::write(d.path.join(file), value);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    Ok(())
}

fn read_u64(path: &Path) -> Option<u64> {
    let s = fs::read_to_string(path).ok()?;
    let t = s.trim();
    if t == "max" {
        Some(u64::MAX)
    } else {
        t.parse().ok()
    }
}

fn read_kv(path: &Path) -> BTreeMap<String, u64> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// How many times the kernel's OOM killer acted in the container.
pub fn oom_kills(dirs: &[PathBuf]) -> u64 {
    classify(dirs)
        .iter()
        .filter_map(|d| {
            let file = if d.unified {
                "memory.events"
            } else {
                "memory.oom_control"
            };
            if !d.unified && !d.controllers.iter().any(|c| c == "memory") {
                return None;
            }
            read_kv(&d.path.join(file)).get("oom_kill").copied()
        })
        .max()
        .unwrap_or(0)
}

/// Drops zero and empty members, as Go's `omitempty` does in runc's
/// event types (so consumers see exactly runc's shape).
fn omit_empty(v: serde_json::Value, keep: &[&str]) -> serde_json::Value {
    let serde_json::Value::Object(m) = v else {
        return v;
    };
    serde_json::Value::Object(
        m.into_iter()
            .filter(|(k, v)| {
                keep.contains(&k.as_str())
                    || !(v == &serde_json::json!(0) || v.is_null() || v == &serde_json::json!([]))
            })
            .collect(),
    )
}

/// "0-2,4" -> [0, 1, 2, 4]
fn cpu_list(s: &str) -> Vec<u64> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u64>(), b.parse::<u64>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<u64>().ok()),
        }
    }
    out
}

/// runc's blkio entries from a v1 `<maj>:<min> <Op> <value>` file.
fn blkio_entries(path: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let v: Vec<&str> = l.split_whitespace().collect();
            if v.len() != 3 {
                return None;
            }
            let (maj, min) = v[0].split_once(':')?;
            Some(omit_empty(
                serde_json::json!({"major": maj.parse::<u64>().ok()?, "minor": min.parse::<u64>().ok()?,
                                   "op": v[1], "value": v[2].parse::<u64>().ok()?}),
                &["op"],
            ))
        })
        .collect()
}

/// The `data` object of runc's stats event (events --stats), in runc's
/// field names and shape.
pub fn stats(dirs: &[PathBuf]) -> serde_json::Value {
    use serde_json::json;
    let dirs = classify(dirs);
    let find = |c: &str| {
        dirs.iter()
            .find(|d| d.controllers.iter().any(|x| x == c))
            .map(|d| d.path.clone())
    };
    let num = |p: &Path| read_u64(p).unwrap_or(0);
    let mut data = serde_json::Map::new();
    if is_v1(&dirs) {
        let percpu = |p: &Path| -> Vec<u64> {
            fs::read_to_string(p)
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect()
        };
        let thr = find("cpu")
            .map(|c| read_kv(&c.join("cpu.stat")))
            .unwrap_or_default();
        let throttling = omit_empty(
            json!({"periods": thr.get("nr_periods").copied().unwrap_or(0),
                   "throttledPeriods": thr.get("nr_throttled").copied().unwrap_or(0),
                   "throttledTime": thr.get("throttled_time").copied().unwrap_or(0)}),
            &[],
        );
        if let Some(p) = find("cpuacct") {
            // cpuacct.stat is in USER_HZ ticks; runc reports nanoseconds.
            let st = read_kv(&p.join("cpuacct.stat"));
            let tick = 10_000_000u64;
            data.insert(
                "cpu".into(),
                json!({
                    "usage": {"total": num(&p.join("cpuacct.usage")),
                              "percpu": percpu(&p.join("cpuacct.usage_percpu")),
                              "percpu_kernel": percpu(&p.join("cpuacct.usage_percpu_sys")),
                              "percpu_user": percpu(&p.join("cpuacct.usage_percpu_user")),
                              "kernel": st.get("system").copied().unwrap_or(0) * tick,
                              "user": st.get("user").copied().unwrap_or(0) * tick},
                    "throttling": throttling,
                }),
            );
        }
        if let Some(p) = find("cpuset") {
            let f = |n: &str| fs::read_to_string(p.join(n)).unwrap_or_default();
            let n = |n: &str| f(n).trim().parse::<i64>().unwrap_or(0);
            data.insert("cpuset".into(), json!({
                "cpus": cpu_list(&f("cpuset.cpus")), "cpu_exclusive": n("cpuset.cpu_exclusive"),
                "mems": cpu_list(&f("cpuset.mems")), "mem_hardwall": n("cpuset.mem_hardwall"),
                "mem_exclusive": n("cpuset.mem_exclusive"), "memory_migrate": n("cpuset.memory_migrate"),
                "memory_spread_page": n("cpuset.memory_spread_page"), "memory_spread_slab": n("cpuset.memory_spread_slab"),
                "memory_pressure": n("cpuset.memory_pressure"), "sched_load_balance": n("cpuset.sched_load_balance"),
                "sched_relax_domain_level": n("cpuset.sched_relax_domain_level"),
            }));
        }
        if let Some(p) = find("memory") {
            let entry = |pre: &str| {
                omit_empty(
                    json!({"limit": num(&p.join(format!("{pre}limit_in_bytes"))),
                           "usage": num(&p.join(format!("{pre}usage_in_bytes"))),
                           "max": num(&p.join(format!("{pre}max_usage_in_bytes"))),
                           "failcnt": num(&p.join(format!("{pre}failcnt")))}),
                    &["limit", "failcnt"],
                )
            };
            let raw = read_kv(&p.join("memory.stat"));
            let mut m = json!({
                "cache": raw.get("cache").copied().unwrap_or(0),
                "usage": entry("memory."), "swap": entry("memory.memsw."),
                "kernel": entry("memory.kmem."), "kernelTCP": entry("memory.kmem.tcp."),
                "raw": raw,
            });
            m = omit_empty(m, &["usage", "swap", "kernel", "kernelTCP", "raw"]);
            data.insert("memory".into(), m);
        }
        if let Some(p) = find("pids") {
            let limit = read_u64(&p.join("pids.max"))
                .filter(|m| *m != u64::MAX)
                .unwrap_or(0);
            data.insert(
                "pids".into(),
                omit_empty(
                    json!({"current": num(&p.join("pids.current")), "limit": limit}),
                    &["current"],
                ),
            );
        }
        if let Some(p) = find("blkio") {
            data.insert("blkio".into(), omit_empty(json!({
                "ioServiceBytesRecursive": blkio_entries(&p.join("blkio.throttle.io_service_bytes_recursive")),
                "ioServicedRecursive": blkio_entries(&p.join("blkio.throttle.io_serviced_recursive")),
            }), &[]));
        }
        data.insert(
            "hugetlb".into(),
            find("hugetlb").map_or(json!({}), |p| {
                hugetlb_stats(&p, "limit_in_bytes", "usage_in_bytes", "max_usage_in_bytes")
            }),
        );
    } else if let Some(d) = dirs.first() {
        let p = &d.path;
        let cpu = read_kv(&p.join("cpu.stat"));
        let g = |k: &str| cpu.get(k).copied().unwrap_or(0);
        data.insert("cpu".into(), json!({
            "usage": {"total": g("usage_usec") * 1000, "kernel": g("system_usec") * 1000, "user": g("user_usec") * 1000},
            "throttling": omit_empty(json!({"periods": g("nr_periods"), "throttledPeriods": g("nr_throttled"),
                                            "throttledTime": g("throttled_usec") * 1000}), &[]),
        }));
        let raw = read_kv(&p.join("memory.stat"));
        let lim = |f: &str| read_u64(&p.join(f)).unwrap_or(0);
        data.insert("memory".into(), omit_empty(json!({
            "cache": raw.get("file").copied().unwrap_or(0),
            "usage": omit_empty(json!({"limit": lim("memory.max"), "usage": lim("memory.current"), "max": lim("memory.peak"),
                      "failcnt": read_kv(&p.join("memory.events")).get("max").copied().unwrap_or(0)}), &["limit", "failcnt"]),
            "swap": omit_empty(json!({"limit": lim("memory.swap.max"), "usage": lim("memory.swap.current"), "failcnt": 0}), &["limit", "failcnt"]),
            "raw": raw,
        }), &["usage", "swap", "raw"]));
        let limit = read_u64(&p.join("pids.max"))
            .filter(|m| *m != u64::MAX)
            .unwrap_or(0);
        data.insert(
            "pids".into(),
            omit_empty(
                json!({"current": lim("pids.current"), "limit": limit}),
                &["current"],
            ),
        );
        // io.stat: "<maj>:<min> rbytes=.. wbytes=.. rios=.. wios=.."
        let mut bytes = Vec::new();
        let mut ios = Vec::new();
        for l in fs::read_to_string(p.join("io.stat"))
            .unwrap_or_default()
            .lines()
        {
            let mut it = l.split_whitespace();
            let Some((maj, min)) = it.next().and_then(|d| d.split_once(':')) else {
                continue;
            };
            let (Ok(maj), Ok(min)) = (maj.parse::<u64>(), min.parse::<u64>()) else {
                continue;
            };
            for kv in it {
                let Some((k, v)) = kv.split_once('=') else {
                    continue;
                };
                let v: u64 = v.parse().unwrap_or(0);
                let e = |op: &str| {
                    omit_empty(
                        json!({"major": maj, "minor": min, "op": op, "value": v}),
                        &["op"],
                    )
                };
                match k {
                    "rbytes" => bytes.push(e("Read")),
                    "wbytes" => bytes.push(e("Write")),
                    "rios" => ios.push(e("Read")),
                    "wios" => ios.push(e("Write")),
                    _ => {}
                }
            }
        }
        data.insert(
            "blkio".into(),
            omit_empty(
                json!({"ioServiceBytesRecursive": bytes, "ioServicedRecursive": ios}),
                &[],
            ),
        );
        data.insert("hugetlb".into(), hugetlb_stats(p, "max", "current", "max"));
    }
    data.insert("intel_rdt".into(), json!({}));
    data.insert("network_interfaces".into(), serde_json::Value::Null);
    serde_json::Value::Object(data)
}

fn hugetlb_stats(p: &Path, limit: &str, usage: &str, max: &str) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for e in fs::read_dir(p).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(size) = name
            .strip_prefix("hugetlb.")
            .and_then(|s| s.strip_suffix(&format!(".{limit}")))
        else {
            continue;
        };
        if size.contains('.') {
            continue;
        }
        out.insert(size.to_string(), omit_empty(serde_json::json!({
            "usage": read_u64(&p.join(format!("hugetlb.{size}.{usage}"))).unwrap_or(0),
            "max": read_u64(&p.join(format!("hugetlb.{size}.{max}"))).unwrap_or(0),
            "failcnt": read_kv(&p.join(format!("hugetlb.{size}.events"))).get("max").copied()
                .or_else(|| read_u64(&p.join(format!("hugetlb.{size}.failcnt")))).unwrap_or(0),
        }), &["failcnt"]));
    }
    serde_json::Value::Object(out)
}

/// Devices every container may use (runc's default allowlist), added after
/// the config's own rules.
pub(crate) const DEFAULT_ALLOWED: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:8 rwm",
    "c 1:7 rwm",
    "c 5:0 rwm",
    "c 1:5 rwm",
    "c 1:9 rwm",
    "c 5:1 rwm",
    "c 136:* rwm",
    "c 5:2 rwm",
    "c 10:200 rwm",
];

/// The v1 `devices.allow` / `devices.deny` writes for a config, in order.
pub fn device_rules(rules: &[LinuxDeviceCgroup]) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    for r in rules {
        let typ = match r.typ() {
            None | Some(LinuxDeviceType::A) => "a",
            Some(LinuxDeviceType::B) => "b",
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => "c",
            Some(LinuxDeviceType::P) => continue,
        };
        let num = |n: Option<i64>| {
            n.filter(|n| *n >= 0)
                .map_or("*".to_string(), |n| n.to_string())
        };
        let access = r.access().clone().unwrap_or_else(|| "rwm".into());
        let rule = if typ == "a" {
            "a".to_string()
        } else {
            format!("{} {}:{} {}", typ, num(r.major()), num(r.minor()), access)
        };
        out.push((r.allow(), rule));
    }
    for d in DEFAULT_ALLOWED {
        out.push((true, d.to_string()));
    }
    out
}

/// Paused means frozen in the freezer (v1) or cgroup.freeze (v2).
pub fn is_frozen(dirs: &[PathBuf]) -> bool {
    dirs.iter().any(|d| {
        fs::read_to_string(d.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
            || fs::read_to_string(d.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
    })
}

/// A cgroup rrun made that it could not remove, and why.
#[derive(Debug)]
pub struct Left {
    pub dir: PathBuf,
    pub why: String,
}

/// Removes the cgroups rrun made for a container (`created`, in creation
/// order, as recorded in the state), deepest first, and nothing else: a
/// cgroup that existed before is never removed, whoever uses it. Below a
/// container directory rrun made (one of `leaves`), the cgroups made
/// inside the container go first. Processes are never killed here: the
/// caller has signalled the container's own; a cgroup still holding a
/// process that is `foreign` (not the container's) is left at once, one
/// holding an exiting process is retried for a few seconds. A parent rrun
/// made is removed only if nothing else uses it (another container may
/// have made a cgroup beside this one).
pub fn remove_created(
    created: &[PathBuf],
    leaves: &[PathBuf],
    foreign: &dyn Fn(i32) -> bool,
) -> Vec<Left> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut left = Vec::new();
    for dir in created.iter().rev() {
        if leaves.contains(dir) {
            remove_tree(dir, foreign, deadline, &mut left);
        } else if let Err(e) = fs::remove_dir(dir)
            && e.kind() != ErrorKind::NotFound
            && !matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY))
        {
            left.push(Left {
                dir: dir.clone(),
                why: e.to_string(),
            });
        }
    }
    left
}

/// Removes `dir` and the cgroups below it, deepest first.
fn remove_tree(dir: &Path, foreign: &dyn Fn(i32) -> bool, deadline: Instant, left: &mut Vec<Left>) {
    // rmdir first: a container's cgroup normally has neither children nor
    // processes left, and listing a cgroup directory (dozens of control
    // files) costs more than the rmdir.
    match fs::remove_dir(dir) {
        Ok(()) => return,
        Err(e) if e.kind() == ErrorKind::NotFound => return,
        // Busy (ENOTEMPTY from a plain directory, in the unit tests):
        // children or processes are in the way.
        Err(e) if !matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY)) => {
            left.push(Left {
                dir: dir.to_path_buf(),
                why: e.to_string(),
            });
            return;
        }
        Err(_) => {}
    }
    let grace = Instant::now() + Duration::from_millis(300);
    let before = left.len();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path(), foreign, deadline, left);
            }
        }
    }
    if left.len() > before {
        left.push(Left {
            dir: dir.to_path_buf(),
            why: "a cgroup below it could not be removed".into(),
        });
        return;
    }
    loop {
        let e = match fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == ErrorKind::NotFound => return,
            Err(e) => e,
        };
        let procs: Vec<i32> = fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        let strangers: Vec<String> = procs
            .iter()
            .filter(|p| foreign(**p))
            .map(i32::to_string)
            .collect();
        // A stranger may be passing through (an exec helper of rrun's
        // joins the cgroups before it enters the container): a short
        // grace before giving up on the cgroup.
        let why = if !strangers.is_empty() && Instant::now() >= grace {
            Some(format!(
                "it holds processes that are not the container's (pids {}), left alone",
                strangers.join(" ")
            ))
        } else if !matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY)) {
            Some(e.to_string())
        } else if Instant::now() >= deadline {
            Some(format!("still busy ({e})"))
        } else {
            None
        };
        if let Some(why) = why {
            left.push(Left {
                dir: dir.to_path_buf(),
                why,
            });
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {

    fn dir(path: &str, ctrls: &[&str], unified: bool) -> Dir {
        Dir {
            path: PathBuf::from(path),
            controllers: ctrls.iter().map(|c| c.to_string()).collect(),
            unified,
        }
    }

    #[test]
    fn exec_sub_cgroups_follow_runcs_rules() {
        let hybrid = || {
            vec![
                dir("/cg/memory/c", &["memory"], false),
                dir("/cg/cpu,cpuacct/c", &["cpu", "cpuacct"], false),
                dir("/cg/unified/c", &[], true),
            ]
        };
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let p = |v: &[&str]| v.iter().map(PathBuf::from).collect::<Vec<_>>();
        assert_eq!(
            sub_cgroups_of(hybrid(), &s(&["memory:a/b"])).unwrap(),
            p(&["/cg/memory/c/a/b", "/cg/cpu,cpuacct/c", "/cg/unified/c"])
        );
        assert_eq!(
            sub_cgroups_of(hybrid(), &s(&["memory,cpu:x", "y"])).unwrap(),
            p(&["/cg/memory/c/x", "/cg/cpu,cpuacct/c/x", "/cg/unified/c/y"])
        );
        assert_eq!(
            sub_cgroups_of(hybrid(), &s(&["/x"])).unwrap(),
            p(&["/cg/memory/c/x", "/cg/cpu,cpuacct/c/x", "/cg/unified/c/x"])
        );
        for bad in [
            &["memory:../x"][..],
            &["a/../../b"],
            &["xx:sub"],
            &["memory:a", "memory:b"],
            &["a", "b"],
            &["cpu:a", "cpuacct:b"],
            &["memory:"],
            &["."],
        ] {
            assert!(sub_cgroups_of(hybrid(), &s(bad)).is_err(), "{bad:?}");
        }
        let v2 = vec![dir("/cg/c", &["memory", "pids"], true)];
        assert_eq!(
            sub_cgroups_of(v2.clone(), &s(&["a"])).unwrap(),
            p(&["/cg/c/a"])
        );
        assert!(sub_cgroups_of(v2, &s(&["memory:a"])).is_err());
    }
    use super::*;

    const HYBRID_CG: &str =
        "9:name=systemd:/\n8:pids:/\n4:memory:/outer/inner\n2:cpu,cpuacct:/\n0::/\n";
    const HYBRID_MI: &str = "\
30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
31 25 0:27 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
32 25 0:28 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
33 25 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
34 25 0:30 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
";

    #[test]
    fn hybrid_layout() {
        let h = parse_hierarchies(HYBRID_CG, HYBRID_MI);
        assert_eq!(h.len(), 5);
        let mem = h.iter().find(|h| h.controllers == ["memory"]).unwrap();
        assert_eq!(mem.own_dir, Path::new("/sys/fs/cgroup/memory/outer/inner"));
        let uni = h.iter().find(|h| h.unified).unwrap();
        assert_eq!(uni.own_dir, Path::new("/sys/fs/cgroup/unified"));
        assert!(!is_pure_v2(&h));
        let dirs = container_dirs(&h, None, "c1", false).unwrap();
        assert!(dirs.contains(&PathBuf::from("/sys/fs/cgroup/memory/outer/inner/c1")));
        let dirs = container_dirs(&h, Some(Path::new("/abs/x")), "c1", false).unwrap();
        assert!(dirs.contains(&PathBuf::from("/sys/fs/cgroup/memory/abs/x")));
        for bad in [
            "a/../../x",
            ".",
            "./x",
            "a/./b",
            "a/..",
            "/",
            "a//b",
            "a/",
            "a\nb",
        ] {
            let e = container_dirs(&h, Some(Path::new(bad)), "c1", false).unwrap_err();
            assert!(e.to_string().contains("linux.cgroupsPath"), "{bad:?}: {e}");
        }
        for good in ["a", "/a/b", "a.b/.c/..d", "system.slice:rrun:x"] {
            assert!(
                container_dirs(&h, Some(Path::new(good)), "c1", false).is_ok(),
                "{good:?}"
            );
        }
        // Empty is absent (runc): the default <id>.
        let dirs = container_dirs(&h, Some(Path::new("")), "c1", false).unwrap();
        assert!(dirs.contains(&PathBuf::from("/sys/fs/cgroup/pids/c1")));
        assert!(container_dirs(&h, None, "c1", true).unwrap().is_empty());
    }

    fn tmp_hierarchy(tmp: &Path) -> Vec<Hierarchy> {
        vec![Hierarchy {
            mount: tmp.to_path_buf(),
            own_dir: tmp.join("own"),
            controllers: vec!["pids".into()],
            unified: false,
        }]
    }

    #[test]
    fn plan_records_what_is_missing_and_checks_what_exists() {
        let tmp = tempfile::tempdir().unwrap();
        let h = tmp_hierarchy(tmp.path());
        fs::create_dir_all(tmp.path().join("own/pod")).unwrap();
        let dirs = vec![tmp.path().join("own/pod/a/b")];
        let p = plan(&h, &dirs);
        assert_eq!(
            p.missing,
            vec![tmp.path().join("own/pod/a"), tmp.path().join("own/pod/a/b")]
        );
        assert!(p.existing.is_empty());
        p.check(true, "c").unwrap();
        // A frozen cgroup above the one asked for.
        fs::write(tmp.path().join("own/pod/freezer.state"), "FROZEN\n").unwrap();
        let e = plan(&h, &dirs).check(false, "c").unwrap_err();
        assert!(
            matches!(e, CgroupError::Frozen(ref d) if d.ends_with("own/pod")),
            "{e}"
        );
        fs::write(tmp.path().join("own/pod/freezer.state"), "THAWED\n").unwrap();
        // Existing: fine when named by cgroupsPath, refused as the default.
        fs::create_dir_all(&dirs[0]).unwrap();
        let p = plan(&h, &dirs);
        assert!(p.missing.is_empty());
        assert_eq!(p.existing, dirs);
        p.check(false, "c").unwrap();
        let e = p.check(true, "c").unwrap_err().to_string();
        assert!(e.contains("--root") && e.contains("cgroupsPath"), "{e}");
        // rrun's own cgroup cannot be frozen (rrun runs in it): not read.
        fs::write(tmp.path().join("own/freezer.state"), "FROZEN\n").unwrap();
        plan(&h, &[tmp.path().join("own/x")])
            .check(false, "c")
            .unwrap();
    }

    #[test]
    fn remove_created_removes_only_what_rrun_made() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        for d in ["own/a/b/inside/deeper", "own/a/other", "own/pre/c"] {
            fs::create_dir_all(t.join(d)).unwrap();
        }
        // rrun made a and a/b (the container's), and pre/c under an
        // existing pre; a/other is another container's, inside/deeper was
        // made inside the container.
        let created = vec![t.join("own/a"), t.join("own/a/b"), t.join("own/pre/c")];
        let leaves = vec![t.join("own/a/b"), t.join("own/pre/c")];
        let left = remove_created(&created, &leaves, &|_| false);
        assert!(left.is_empty(), "{left:?}");
        assert!(!t.join("own/a/b").exists() && !t.join("own/pre/c").exists());
        assert!(t.join("own/a/other").is_dir(), "a sibling is not ours");
        assert!(t.join("own/a").is_dir(), "a parent in use stays");
        assert!(t.join("own/pre").is_dir(), "never made by rrun");
    }

    #[test]
    fn pure_v2_and_namespaced_root() {
        let cg = "0::/user.slice/x\n";
        let mi = "40 1 0:26 /user.slice /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let h = parse_hierarchies(cg, mi);
        assert!(is_pure_v2(&h));
        assert_eq!(h[0].own_dir, Path::new("/sys/fs/cgroup/x"));
        let dirs = container_dirs(&h, Some(Path::new("c1")), "c1", false).unwrap();
        assert_eq!(
            dirs,
            vec![PathBuf::from("/sys/fs/cgroup/c1")],
            "v2 nests beside rrun's cgroup"
        );
    }

    #[test]
    fn device_rule_strings() {
        let deny_all: LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow": false, "access": "rwm"}"#).unwrap();
        let allow_null: LinuxDeviceCgroup = serde_json::from_str(
            r#"{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "r"}"#,
        )
        .unwrap();
        let rules = device_rules(&[deny_all, allow_null]);
        assert_eq!(rules[0], (false, "a".to_string()));
        assert_eq!(rules[1], (true, "c 1:3 r".to_string()));
        assert_eq!(rules.len(), 2 + DEFAULT_ALLOWED.len());
    }

    #[test]
    fn unescape() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }
}
