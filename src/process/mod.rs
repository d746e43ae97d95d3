//! The create sequence: how rrun turns a validated bundle into a container
//! init blocked before the user's program, and how `start` releases it.
//!
//! Processes: rrun clones ONE process (the container init) with every new
//! namespace in the clone flags. Only when namespaces are joined by path, or
//! a time namespace is new, does rrun fork an intermediate process first,
//! which joins/unshares and then forks the init (the kernel applies a joined
//! pid namespace and a new time namespace to children only). rrun never
//! re-executes itself: the init runs rrun's code, already in memory, until
//! it execs the user's program.
//!
//! Parent (rrun create)                       Child (container init)
//! 1. validate config, cgroup paths, id       -
//! 2. claim state dir, exec socket, channel   -
//! 3. clone(new namespaces)                   a. join cgroups, close all fds but
//! -                                             what it needs (fds.rs); reset
//! -                                             signals, non-dumpable
//! 4. write id maps, cgroups, oom_score_adj   b. wait for Go
//! -  --systemd-cgroup: start the unit with  -
//! -  the init in it, send its dirs       ->  (the init mounts those)
//! 5. send Go                                 c. uid 0 in userns, cgroup ns, setsid
//! -                                          d. hostname, mounts, devices
//! 6. run prestart + createRuntime hooks  <-  e. ask for hooks (if any)
//! -                                          f. createContainer hooks, pivot_root
//! -                                          g. sysctl, ro/masked paths, ro root
//! -                                          h. rlimits, keyring, user, caps, cwd,
//! -                                             umask, no_new_privs, fds
//! 6b. listener to listenerPath, answer    <-  (seccomp notify: filter loaded in h,
//!                                              its listener fd sent with it)
//! 7. on Ready: write state.json, pid file <- i. Ready; accept() on exec socket
//! 8. (rrun start) connect to exec socket  -> j. startContainer hooks, execve
//! 9. (rrun start) EOF = exec happened: save `running`, poststart hooks.
//!
//! See sync.rs for the message table.

pub mod exec;
pub mod fds;
pub mod init;
pub mod notify;
pub mod sync;
pub mod tty;

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, UnixAddr, bind, listen, socket,
};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::Spec;

use crate::cgroups::members::{self, Rule};
use crate::cgroups::systemd::{self as sd, bus::Bus, bus::Which};
use crate::cgroups::{self, Hierarchy};
use crate::hooks;
use crate::namespaces::{self, NsPlan};
use crate::spec::Bundle;
use crate::state::{ContainerDir, ContainerState, Status, Store, SystemdUnit};
use crate::sys::{self, CloneResult};
use sync::Msg;

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error(transparent)]
    Cgroup(#[from] cgroups::CgroupError),
    #[error(transparent)]
    Ns(#[from] namespaces::NsError),
    #[error(transparent)]
    Hook(#[from] hooks::HookError),
    #[error(transparent)]
    Seccomp(#[from] crate::security::seccomp::SeccompError),
    #[error(transparent)]
    Lsm(#[from] crate::security::lsm::LsmError),
    #[error(transparent)]
    Sync(#[from] sync::SyncError),
    #[error(transparent)]
    Idmap(#[from] crate::rootfs::host_mounts::IdmapError),
    #[error("{0}: {1}")]
    Sys(&'static str, nix::Error),
    #[error("container init: {0}")]
    Init(String),
    #[error("{0}")]
    Unsupported(String),
}

pub type Result<T> = std::result::Result<T, CreateError>;

/// Options of `create` and `run` that shape the container process.
#[derive(Debug, Default, Clone)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    pub systemd_cgroup: bool,
    /// `run` in the foreground: rrun stays the parent and waits.
    pub foreground: bool,
    /// `run`: `start` follows in this process, so `created` is not saved.
    pub start_now: bool,
    /// $NOTIFY_SOCKET: give the container a notify socket (notify.rs).
    pub notify_socket: bool,
}

/// Everything the init needs, computed before clone so the child only acts.
pub struct InitPlan {
    pub id: String,
    /// See init::session_keyring_name.
    pub keyring_nonce: String,
    pub spec: Spec,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub ns: NsPlan,
    pub hierarchies: Vec<Hierarchy>,
    pub cgroup_dirs: Vec<PathBuf>,
    /// How the first process joins its cgroups itself (see
    /// `cgroups::Placement`); None without cgroups.
    pub placement: Option<cgroups::Placement>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// fds 3.. that pass to the program: --preserve-fds plus LISTEN_FDS.
    pub preserve_fds: u32,
    pub listen_fds: u32,
    pub has_runtime_hooks: bool,
    pub seccomp: Option<crate::security::seccomp::Compiled>,
    /// AppArmor profile, SELinux process and mount labels (of enabled LSMs).
    pub lsm: crate::security::lsm::Labels,
    /// The built-in init (a sealed memfd copy of rrun-init), when asked for.
    pub init_binary: Option<OwnedFd>,
}

/// Clones (fork semantics, plus namespace `flags`) a process meant for the
/// container's cgroups: born in their cgroup2 directory when clone3 allows
/// (Linux 5.7+). Returns whether it was; the child must then call
/// [`join_cgroups`] before anything else.
pub(super) fn clone_in_cgroups(
    flags: nix::sched::CloneFlags,
    placement: Option<&cgroups::Placement>,
) -> std::result::Result<(CloneResult, bool), nix::errno::Errno> {
    let unified = placement.and_then(|p| p.unified.as_ref());
    match unified.map(|u| sys::clone_into_cgroup(flags, u)) {
        Some(Err(nix::errno::Errno::ENOSYS | nix::errno::Errno::E2BIG)) | None => {
            Ok((sys::clone_process(flags)?, unified.is_none()))
        }
        Some(r) => Ok((r?, true)),
    }
}

/// In a child of [`clone_in_cgroups`], while it has a single thread (and
/// has closed its copy of the parent's channel end): joins the v1
/// hierarchies, and cgroup2 unless born there. On failure it reports on
/// `chan` and exits.
pub(super) fn join_cgroups(
    placement: Option<&cgroups::Placement>,
    born_in_unified: bool,
    chan: &sync::Channel,
) {
    let Some(p) = placement else {
        return;
    };
    let joined = p.join_self().and_then(|()| {
        if born_in_unified {
            Ok(())
        } else {
            p.join_unified_self()
        }
    });
    if let Err(e) = joined {
        init::fail_before_go(chan, e);
    }
}

/// A step boundary of create/start/delete: timed in the --debug log, and
/// a crash point for the robustness tests (see `sys::failpoint`).
fn checkpoint(name: &str) {
    crate::log::step(name);
    sys::failpoint(name);
}

/// A container that reached `created`, still locked by this process.
pub struct Created {
    pub dir: ContainerDir,
    pub state: ContainerState,
    /// For a foreground terminal: where the init sent the pty master.
    pub console: Option<OwnedFd>,
}

/// The pidfd of a process forked by rrun's helper or intermediate: the one
/// it sent with ChildPid (opened while the process was its unreaped child,
/// so surely that process), or else one opened now.
pub(super) fn child_pidfd(
    pid: Pid,
    sent: Option<OwnedFd>,
) -> std::result::Result<OwnedFd, nix::Error> {
    match sent {
        Some(fd) => Ok(fd),
        None => sys::pidfd_open(pid.as_raw()),
    }
}

/// Undoes a half-made container on drop unless committed: kills the init,
/// removes the cgroups it made and the state dir (runc's destroy path, in one
/// place for every failure).
struct CleanupGuard<'a> {
    dir: Option<ContainerDir>,
    /// rrun's own child (the init, or the intermediate before it): no
    /// other process can have its pid until it is reaped here.
    pid: Option<Pid>,
    /// A pidfd of `pid` once it is the init: it pins an intermediate's
    /// child (whose pid is not pinned by being unreaped here), and it
    /// tells the wait for the init's messages when the init has exited.
    pidfd: Option<OwnedFd>,
    /// The cgroups rrun made, parents first.
    cgroups_made: Vec<PathBuf>,
    /// The container's cgroup directories (made or not).
    cgroup_dirs: Vec<PathBuf>,
    /// The systemd unit rrun started for the container (and the
    /// container's id), to stop.
    unit: Option<(Bus, SystemdUnit, String)>,
    poststop: Option<(&'a Spec, ContainerState)>,
}

impl CleanupGuard<'_> {
    fn commit(mut self) -> ContainerDir {
        self.dir.take().expect("guard holds the dir until commit")
    }
}

impl Drop for CleanupGuard<'_> {
    fn drop(&mut self) {
        let Some(dir) = self.dir.take() else { return };
        if let Some(pid) = self.pid {
            match &self.pidfd {
                Some(fd) => {
                    let _ = sys::pidfd_send_signal(fd, libc::SIGKILL);
                }
                None => {
                    let _ = kill(pid, Signal::SIGKILL);
                }
            }
            // Reaps our own child; ECHILD at once for an intermediate's.
            let _ = waitpid(pid, None);
        }
        // What else of this create runs (the init forked by an
        // intermediate, createContainer hooks without a pid namespace of
        // their own) is in the cgroups rrun made; a cgroup that existed
        // before is left alone, with whatever else is in it.
        // The unit's cgroups are the container's only while the unit is
        // still the one rrun started (not one that took its name since).
        let unit_ours = self
            .unit
            .as_ref()
            .is_some_and(|(bus, u, id)| bus.holds(&u.own(id)).unwrap_or(false));
        let owned = if unit_ours {
            self.cgroup_dirs.clone()
        } else {
            owned_leaves(&self.cgroup_dirs, &self.cgroups_made)
        };
        kill_owned(&owned);
        let mut made = self.cgroups_made.clone();
        if let Some((bus, unit, id)) = &self.unit
            && unit_ours
        {
            match bus.stop_unit(&unit.own(id)) {
                Ok(true) => add_unit_dirs(&mut made, &self.cgroup_dirs),
                Ok(false) => {}
                Err(e) => crate::log::warn(&format!("cleanup after failed create: {e}")),
            }
        }
        let left = cgroups::remove_created(&made, &self.cgroup_dirs, &|_| false);
        warn_left("cleanup after failed create", &left);
        if let Some((spec, state)) = &self.poststop
            && let Some(h) = spec.hooks().as_ref().and_then(|h| h.poststop().as_deref())
        {
            let json = oci_state_json(state, Status::Stopped);
            if let Err(e) = hooks::run_all("poststop", h, &json) {
                crate::log::warn(&e.to_string());
            }
        }
        if let Err(e) = dir.destroy() {
            crate::log::warn(&format!("cleanup after failed create: {e}"));
        }
    }
}

/// Once the unit rrun made is stopped, its directories are removed like
/// the ones rrun made (systemd before v240 left sub-cgroups behind).
fn add_unit_dirs(made: &mut Vec<PathBuf>, unit_dirs: &[PathBuf]) {
    for d in unit_dirs {
        if !made.contains(d) {
            made.push(d.clone());
        }
    }
}

/// The container's cgroup directories that rrun made.
fn owned_leaves(dirs: &[PathBuf], made: &[PathBuf]) -> Vec<PathBuf> {
    dirs.iter().filter(|d| made.contains(d)).cloned().collect()
}

/// Whether the container has a pid namespace of its own (a new one, not
/// one joined by path).
fn own_pid_ns(spec: Option<&Spec>) -> bool {
    spec.and_then(|s| s.linux().as_ref())
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter().any(|n| {
                n.typ() == oci_spec::runtime::LinuxNamespaceType::Pid && n.path().is_none()
            })
        })
}

/// A pidfd of the container's init, if the recorded process is alive:
/// opened first, then checked by start time, so it cannot be a recycled
/// pid.
fn init_pidfd(state: &ContainerState) -> Option<OwnedFd> {
    if state.pid <= 0 {
        return None;
    }
    let fd = sys::pidfd_open(state.pid).ok()?;
    crate::state::process_alive(state.pid, state.pid_start).then_some(fd)
}

/// Who is the container's (see cgroups::members), given its init's pidfd
/// if it is alive.
fn membership(state: &ContainerState, init: Option<&OwnedFd>) -> Rule {
    let owned = || Rule::Owned(state.owned_cgroups(unit_is_ours(state, init)));
    // A create killed before it saved the init's pid: what it started is
    // in the cgroups it made.
    if !own_pid_ns(state.spec.as_ref()) || state.pid <= 0 {
        return owned();
    }
    if init.is_none() {
        return Rule::Nobody;
    }
    // Read, then check the init is still the recorded process: the
    // namespace read is then surely its own.
    match members::pid_ns_of(state.pid) {
        Some((dev, ino)) if crate::state::process_alive(state.pid, state.pid_start) => {
            Rule::PidNs(dev, ino)
        }
        _ => Rule::Nobody,
    }
}

/// Whether the container's systemd unit is still the one rrun started
/// for it: surely while its init lives (the init is in it, so systemd
/// keeps it); else systemd is asked (`Bus::holds`). A unit that cannot
/// be checked is not taken as the container's.
fn unit_is_ours(state: &ContainerState, init: Option<&OwnedFd>) -> bool {
    let Some(u) = &state.systemd_unit else {
        return false;
    };
    if init.is_some() && crate::state::process_alive(state.pid, state.pid_start) {
        return true;
    }
    Bus::connect(u.manager)
        .and_then(|b| b.holds(&u.own(&state.id)))
        .unwrap_or(false)
}

/// The container's processes (its init, if alive, among them) and the
/// others in its cgroups; `signal` goes to each member as it is found.
pub fn members_of(state: &ContainerState, signal: Option<i32>) -> members::Found {
    let init = init_pidfd(state);
    let rule = membership(state, init.as_ref());
    members::find(
        &rule,
        &state.cgroup_paths,
        init.as_ref().map(|fd| (state.pid, fd)),
        signal,
    )
}

/// For a container without a pid namespace of its own: SIGKILLs the
/// processes in the cgroups rrun made for it (`owned`, and below) until
/// none is left (about a second at most: a process may fork while we
/// look). Only those cgroups are read, and thawed if frozen.
fn kill_owned(owned: &[PathBuf]) {
    if owned.is_empty() {
        return;
    }
    let rule = Rule::Owned(owned.to_vec());
    for _ in 0..100 {
        // A frozen process dies only once thawed.
        if cgroups::is_frozen(owned) {
            let _ = cgroups::set_frozen(owned, false);
        }
        let found = members::find(&rule, owned, None, Some(libc::SIGKILL));
        if found.members.is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn warn_left(what: &str, left: &[cgroups::Left]) {
    for l in left {
        crate::log::warn(&format!(
            "{what}: cgroup {} not removed: {}",
            l.dir.display(),
            l.why
        ));
    }
}

pub fn oci_state_json(state: &ContainerState, status: Status) -> Vec<u8> {
    serde_json::to_vec(&state.oci_state(status)).expect("state serialises: plain data")
}

/// The host id of id 0 in a user namespace's mapping, if it is mapped.
fn map_root(maps: &[oci_spec::runtime::LinuxIdMapping]) -> Option<u32> {
    maps.iter()
        .find(|m| m.container_id() == 0 && m.size() > 0)
        .map(|m| m.host_id())
}

/// LISTEN_FDS from socket activation, honoured as runc (go-systemd's
/// activation.Files) does: only when LISTEN_PID is our own pid, so a
/// variable meant for another process (an ancestor) is ignored. The
/// program gets LISTEN_FDS=n and LISTEN_PID=1; LISTEN_FDNAMES is not
/// passed on (neither by runc): the config's env says what it gets. The
/// fds themselves pass only where the caller really opened them (fds.rs).
fn listen_fds() -> u32 {
    listen_fds_from(
        std::env::var("LISTEN_PID").ok().as_deref(),
        std::env::var("LISTEN_FDS").ok().as_deref(),
        std::process::id(),
    )
}

fn listen_fds_from(pid: Option<&str>, fds: Option<&str>, me: u32) -> u32 {
    if pid.and_then(|p| p.parse::<u32>().ok()) != Some(me) {
        return 0;
    }
    fds.and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// Validates everything, then builds the container up to `created`.
pub fn create(store: &Store, opts: &CreateOptions) -> Result<Created> {
    // Everything that can fail without side effects, first.
    crate::state::validate_id(&opts.id)?;
    let Bundle {
        path: bundle,
        mut spec,
        rootfs,
    } = crate::spec::load_bundle(&opts.bundle)?;
    // The container's notify socket is a mount like any other: added
    // before anything reads the mounts.
    // (Absolute: a relative --root would name a source in the bundle.)
    let notify_dir = std::path::absolute(notify::state_dir(&store.root.join(&opts.id)))
        .map_err(|e| CreateError::Unsupported(format!("--root: {e}")))?;
    if opts.notify_socket {
        notify::add_to_spec(&mut spec, &notify_dir)
            .map_err(|e| CreateError::Unsupported(e.to_string()))?;
    }
    let process = spec.process().as_ref().expect("validated: process present");
    let terminal = process.terminal().unwrap_or(false);
    match (terminal, &opts.console_socket) {
        (true, None) if !opts.foreground => {
            return Err(CreateError::Unsupported(
                "process.terminal is true: a detached container needs --console-socket to hand the terminal to".into(),
            ));
        }
        (false, Some(_)) => {
            return Err(CreateError::Unsupported(
                "--console-socket given but process.terminal is false".into(),
            ));
        }
        _ => {}
    }
    // Labels of LSMs the host has off are ignored, with a warning.
    let mount_label = spec
        .linux()
        .as_ref()
        .and_then(|l| l.mount_label().as_deref());
    let lsm = crate::security::lsm::plan(process, mount_label)?;
    let ns = NsPlan::from_spec(&spec)?;
    let hierarchies = cgroups::discover(Path::new("/proc"))?;
    let cgroups_path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_deref());
    let default_cgroup = cgroups_path.is_none_or(|p| p.as_os_str().is_empty());
    let mut cgroup_dirs =
        cgroups::container_dirs(&hierarchies, cgroups_path, &opts.id, opts.systemd_cgroup)?;
    // --systemd-cgroup: the unit to start, and a first try of the bus,
    // before any side effect (the D-Bus connection itself waits until the
    // init exists: it starts threads, and rrun clones single-threaded).
    let unit_plan = if opts.systemd_cgroup {
        let which = Which::for_caller();
        let user_slice = which == Which::User && cgroups::is_pure_v2(&hierarchies);
        let path = cgroups_path.map(|p| p.to_string_lossy().into_owned());
        let plan = sd::plan_unit(path.as_deref(), &opts.id, user_slice)
            .map_err(cgroups::CgroupError::from)?;
        sd::bus::precheck(which).map_err(cgroups::CgroupError::from)?;
        Some((plan, which))
    } else {
        None
    };
    // Rootless: cgroups only where they were delegated to us (writable);
    // otherwise the container runs without its own cgroups, as runc's
    // rootless mode does, and resource limits cannot be honoured.
    if unit_plan.is_none() && !nix::unistd::geteuid().is_root() && !cgroups::writable(&cgroup_dirs)
    {
        let wants_limits = spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().as_ref())
            .is_some_and(|r| {
                r.memory().is_some()
                    || r.cpu().is_some()
                    || r.pids().is_some()
                    || r.block_io().is_some()
            });
        if wants_limits {
            return Err(CreateError::Unsupported(
                "linux.resources: cgroups are not delegated to this user; drop the limits or delegate a cgroup".into(),
            ));
        }
        cgroup_dirs.clear();
    }
    let has_runtime_hooks = spec.hooks().as_ref().is_some_and(|h| {
        h.prestart().as_ref().is_some_and(|v| !v.is_empty())
            || h.create_runtime().as_ref().is_some_and(|v| !v.is_empty())
    });
    let listen = listen_fds();
    // A privileged rrun clones the bind sources of a container with a new
    // user namespace that its root may not reach (host_mounts).
    let userns_root = (ns.new_user() && nix::unistd::geteuid().is_root())
        .then(|| (map_root(&ns.uid_mappings), map_root(&ns.gid_mappings)))
        .and_then(|(u, g)| Some((u?, g?)));
    let runtime_sources: Vec<PathBuf> = if opts.notify_socket {
        vec![notify_dir]
    } else {
        Vec::new()
    };
    let host_binds = crate::rootfs::host_mounts::requests(
        &spec,
        &bundle,
        &rootfs,
        ns.in_userns(),
        userns_root,
        &runtime_sources,
    )?;
    let host_bind_propagation = {
        use crate::rootfs::propagation;
        let asked = spec
            .linux()
            .as_ref()
            .and_then(|l| l.rootfs_propagation().as_deref())
            .and_then(crate::rootfs::propagation_flag);
        propagation::host_clone(&propagation::steps(asked, opts.no_pivot), ns.in_userns())
    };
    let preserve_fds = opts.preserve_fds.saturating_add(listen);
    let what = if listen > 0 {
        "--preserve-fds plus LISTEN_FDS"
    } else {
        "--preserve-fds"
    };
    fds::check_count(what, preserve_fds).map_err(CreateError::Unsupported)?;
    let seccomp = seccomp_profile(&spec)
        .map(crate::security::seccomp::compile_with_cache)
        .transpose()?;
    let ann_map: BTreeMap<String, String> = spec
        .annotations()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let init_binary = if crate::init::policy::enabled(&ann_map) {
        crate::init::policy::parse(&ann_map).map_err(CreateError::Unsupported)?;
        // PID 1 reaps and stops what is left with kill(-1): only in a pid
        // namespace of its own is that the container and nothing else.
        if !own_pid_ns(Some(&spec)) {
            return Err(CreateError::Unsupported(
                "annotations rrun.*: the built-in init needs a new pid namespace of its own \
                 (linux.namespaces has none, or joins one by path): as PID 1 it signals every \
                 process of its namespace"
                    .into(),
            ));
        }
        // The init loads the filters anew in every child it starts, inside
        // the container, where listenerPath (a host socket) is out of reach
        // and no rrun parent is left to hand a listener to.
        if seccomp_profile(&spec).is_some_and(crate::security::seccomp::uses_notify) {
            return Err(CreateError::Unsupported(
                "linux.seccomp: SCMP_ACT_NOTIFY cannot be used with the built-in init (rrun.* annotations): \
                 it restarts the program inside the container, where listenerPath is out of reach"
                    .into(),
            ));
        }
        Some(crate::init::init_binary().map_err(CreateError::Unsupported)?)
    } else {
        // Misspelt or invalid rrun.* keys must not pass silently either.
        crate::init::policy::parse(&ann_map).map_err(CreateError::Unsupported)?;
        None
    };

    let cgroup_plan = cgroups::plan(&hierarchies, &cgroup_dirs);

    crate::log::step("create-validated");
    let dir = store.create(&opts.id)?;
    if opts.notify_socket {
        // Before the guard exists, so undo by hand on failure.
        if let Err(e) = notify::make_state_dir(&dir.path) {
            let _ = dir.destroy();
            return Err(CreateError::Unsupported(format!(
                "making the container's notify directory: {e}"
            )));
        }
    }
    let annotations: BTreeMap<String, String> = spec
        .annotations()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut state = ContainerState {
        id: opts.id.clone(),
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        pid: 0,
        pid_start: 0,
        created: crate::state::now_rfc3339(),
        owner: String::new(),
        started: false,
        creating: true,
        annotations,
        cgroup_paths: cgroup_dirs.clone(),
        cgroups_created: cgroup_plan.missing.clone(),
        spec: Some(spec.clone()),
        init_status: None,
        keyring_nonce: init::keyring_nonce()
            .map_err(|e| CreateError::Init(format!("reading /dev/urandom: {e}")))?,
        systemd_unit: None,
    };
    let mut guard = CleanupGuard {
        dir: Some(dir),
        pid: None,
        pidfd: None,
        cgroups_made: Vec::new(),
        cgroup_dirs: cgroup_dirs.clone(),
        unit: None,
        poststop: None,
    };
    // After the claim, so a second create of one id under one --root
    // hears that the id is taken, not that its cgroup is.
    cgroup_plan.check(default_cgroup, &opts.id)?;
    let dir_ref = guard.dir.as_ref().expect("guard holds the dir");
    // Recorded before anything exists (with the cgroups about to be made),
    // and again once the init has a pid: if rrun is killed mid-create,
    // `delete --force` finds what to clean.
    dir_ref.save(&state)?;
    checkpoint("create-claimed");

    // The cgroups exist, with their limits, before the container's first
    // process: it joins them itself as its first act (see
    // cgroups::Placement), so nothing of it ever runs outside them.
    cgroups::create(&cgroup_plan.missing, &mut guard.cgroups_made)?;
    cgroups::fill_cpusets_of(&hierarchies, &cgroup_dirs)?;
    if guard.cgroups_made != state.cgroups_created {
        // A concurrent create or delete moved the tree under us (rare):
        // record what was really made.
        state.cgroups_created = guard.cgroups_made.clone();
        dir_ref.save(&state)?;
    }
    checkpoint("create-cgroups");
    let resources = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    cgroups::apply_resources(&cgroup_dirs, &resources, true)?;
    let placement = if cgroup_dirs.is_empty() {
        None
    } else {
        Some(cgroups::Placement::open(&cgroup_dirs)?)
    };

    let listener = exec_listener(dir_ref)?;
    let (console_child, console_parent) =
        tty::console_endpoints(opts.console_socket.as_deref(), terminal)
            .map_err(CreateError::Unsupported)?;
    let (parent_end, child_end) = sync::pair()?;
    let mut plan = InitPlan {
        id: opts.id.clone(),
        spec: spec.clone(),
        bundle,
        rootfs,
        ns,
        hierarchies,
        cgroup_dirs: cgroup_dirs.clone(),
        placement,
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        keyring_nonce: state.keyring_nonce.clone(),
        preserve_fds,
        listen_fds: listen,
        has_runtime_hooks,
        seccomp,
        lsm,
        init_binary,
    };

    let intermediate = plan.ns.needs_intermediate();
    let clone_flags = if intermediate {
        nix::sched::CloneFlags::empty()
    } else {
        plan.ns.new
    };
    let (cloned, born_in_unified) = clone_in_cgroups(clone_flags, plan.placement.as_ref())
        .map_err(|e| CreateError::Sys("clone", e))?;
    let first = match cloned {
        CloneResult::Child => {
            drop(parent_end);
            drop(console_parent);
            let placement = plan.placement.take();
            join_cgroups(placement.as_ref(), born_in_unified, &child_end);
            drop(placement);
            // From here on the process may be seen from the container
            // (see fds.rs): nothing of rrun's but what it needs.
            let mut keep = vec![child_end.as_fd(), listener.as_fd()];
            keep.extend(console_child.as_ref().map(|c| c.as_fd()));
            keep.extend(plan.init_binary.as_ref().map(|b| b.as_fd()));
            keep.extend(plan.ns.join_fds());
            if let Err(e) = fds::enter(plan.preserve_fds, &keep) {
                init::fail_before_go(&child_end, format!("closing rrun's fds: {e}"));
            }
            if intermediate {
                init::intermediate(&plan, &child_end, &listener, console_child.as_ref())
            } else {
                init::run(&plan, &child_end, &listener, console_child.as_ref())
            }
        }
        CloneResult::Parent { child } => child,
    };
    drop(plan.placement.take());
    drop(child_end);
    drop(listener);
    drop(console_child);
    guard.pid = Some(first);
    checkpoint("create-cloned");

    // Every message below is taken only from the process meant to send
    // it (sync.rs): the intermediate, then the init it names. The init may
    // be visible in a joined pid namespace, its end of the channel in reach
    // of anything there that can ptrace.
    let pid = if intermediate {
        if plan.ns.new_user() {
            parent_end
                .expect_from(first, Msg::MapRequest)
                .map_err(CreateError::Init)?;
            namespaces::write_id_maps(first.as_raw(), &plan.ns)?;
            parent_end.send(&Msg::MapsWritten)?;
        }
        let (pid, pidfd) = match parent_end.recv_from(first, None)? {
            (Msg::ChildPid(p), fd) => (Pid::from_raw(p), fd),
            (Msg::Error(e), _) => return Err(CreateError::Init(e)),
            (other, _) => return Err(CreateError::Init(format!("unexpected {other:?}"))),
        };
        let _ = waitpid(first, None);
        guard.pid = None;
        guard.pidfd = Some(child_pidfd(pid, pidfd).map_err(|e| CreateError::Sys("pidfd_open", e))?);
        guard.pid = Some(pid);
        pid
    } else {
        if plan.ns.new_user() {
            namespaces::write_id_maps(first.as_raw(), &plan.ns)?;
        }
        // For the wait below to end if the init exits while something else
        // holds its end (a process of another container sharing the
        // host's pid namespace could take it, as in a joined one).
        guard.pidfd = sys::pidfd_open(first.as_raw()).ok();
        first
    };

    // Before Go: whatever the init spawns (createContainer hooks) inherits it.
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string())
            .map_err(|e| CreateError::Init(format!("writing oom_score_adj: {e}")))?;
    }
    // Host-side binds (id-mapped ones, and a new user namespace's) are made
    // here, now that the init's user namespace (whose mapping an id-mapped
    // mount may use) has its maps.
    for (i, tree) in crate::rootfs::host_mounts::make(
        &host_binds,
        &plan.rootfs,
        pid.as_raw(),
        &host_bind_propagation,
    )? {
        parent_end.send_encoded_with_fd(&sync::encode(&Msg::MountFd(i)), &tree)?;
    }
    // --systemd-cgroup: the unit, with the init in it, before the init
    // runs anything of the container (it waits for Go).
    if let Some((unit, which)) = &unit_plan {
        let dirs = join_unit(
            unit,
            *which,
            pid,
            &plan.hierarchies,
            &resources,
            &mut guard,
            &mut state,
        )?;
        parent_end.send(&Msg::CgroupDirs(dirs))?;
        checkpoint("create-unit");
    }
    // Go, then the pid save: the init's mounts and the state write run side
    // by side. Should the save fail, the guard kills the init, whatever it
    // has reached.
    parent_end.send(&Msg::Go)?;
    // The init cannot be reaped before we wait for it, so its stat (its
    // start time, which tells it from a later process with its pid) is
    // there even if it has already failed.
    state.pid = pid.as_raw();
    state.pid_start = crate::state::proc_stat(pid.as_raw())
        .map(|(_, s)| s)
        .ok_or_else(|| CreateError::Init("container init exited during create".into()))?;
    guard
        .dir
        .as_ref()
        .expect("guard holds the dir")
        .save(&state)?;
    checkpoint("create-pid-saved");
    guard.poststop = Some((&spec, state.clone()));
    crate::log::debug(&format!(
        "container {}: init pid {pid} in its cgroups",
        opts.id
    ));

    loop {
        match parent_end.recv_from(pid, guard.pidfd.as_ref()) {
            Ok((Msg::SeccompFd, Some(fd))) => {
                // Steps s1-s2: the init loaded its notify filter.
                let s = seccomp_profile(&spec).ok_or_else(|| {
                    CreateError::Init("a seccomp listener without linux.seccomp".into())
                })?;
                let st = serde_json::to_value(state.oci_state(Status::Creating))
                    .expect("state serialises: plain data");
                crate::security::seccomp::send_to_listener(s, pid.as_raw(), st, &fd)?;
                drop(fd);
                parent_end.send(&Msg::SeccompDone)?;
            }
            Ok((Msg::CreateRuntimeHooks, _)) => {
                let json = oci_state_json(&state, Status::Creating);
                let h = spec
                    .hooks()
                    .as_ref()
                    .expect("hooks requested only when present");
                hooks::run_all(
                    "prestart",
                    h.prestart().as_deref().unwrap_or_default(),
                    &json,
                )?;
                hooks::run_all(
                    "createRuntime",
                    h.create_runtime().as_deref().unwrap_or_default(),
                    &json,
                )?;
                parent_end.send(&Msg::HooksDone)?;
            }
            Ok((Msg::Ready, _)) => break,
            Ok((Msg::Error(e), _)) => return Err(CreateError::Init(e)),
            Ok((other, _)) => return Err(CreateError::Init(format!("unexpected {other:?}"))),
            Err(sync::SyncError::Eof) => {
                return Err(CreateError::Init(
                    "container init exited during create".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }

    let dir = guard.dir.as_ref().expect("guard holds the dir");
    checkpoint("create-ready");
    state.creating = false;
    // `run` starts the container next and saves it `running`: a `created`
    // on disk in between would only cost a rewrite (readers see
    // `creating` for that instant instead).
    if !opts.start_now {
        dir.save(&state)?;
    }
    checkpoint("create-saved");
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, pid.as_raw())
            .map_err(|e| CreateError::Init(format!("pid file {}: {e}", p.display())))?;
    }
    let dir = guard.commit();
    Ok(Created {
        dir,
        state,
        console: console_parent,
    })
}

/// `--systemd-cgroup`: starts the container's unit with the init `pid` in
/// it (systemd moves it) and the resources systemd has properties for,
/// then does in the unit's cgroups what rrun does in its own: makes the
/// directories systemd did not (v1 hierarchies it does not manage), moves
/// the init where systemd did not, and writes every limit to the files.
/// Returns the unit's directories, one per hierarchy.
fn join_unit(
    unit: &sd::UnitPlan,
    which: Which,
    pid: Pid,
    hierarchies: &[Hierarchy],
    resources: &oci_spec::runtime::LinuxResources,
    guard: &mut CleanupGuard<'_>,
    state: &mut ContainerState,
) -> Result<Vec<PathBuf>> {
    let bus = Bus::connect(which).map_err(cgroups::CgroupError::from)?;
    let v2 = cgroups::is_pure_v2(hierarchies);
    let mut resources = resources.clone();
    sd::round_quota(&mut resources);
    let version = bus.version();
    let mut props = sd::base_properties(unit, &state.id, Some(pid.as_raw() as u32), v2);
    props.extend(sd::properties_for(&resources, v2, version)?);
    // The device rules as rrun applies them (deny all, the config's, the
    // defaults); a user's systemd has no device control to give.
    if which == Which::System {
        let mut rules = vec![(false, "a".to_string())];
        rules.extend(cgroups::device_rules(
            resources.devices().as_deref().unwrap_or_default(),
        ));
        props.extend(sd::device_properties(&rules, version));
    }
    let description = sd::description(&state.id);
    bus.start_unit(&unit.unit, &description, &props)
        .map_err(cgroups::CgroupError::from)?;
    // The unit's InvocationID, new at each start, tells it from a unit
    // that takes its name once systemd has forgotten it (delete, update).
    // It holds the init, which waits for rrun, so it is still this one.
    let info = bus.unit_info(&unit.unit);
    let invocation = match &info {
        Ok(Some(i)) if i.description == description && !i.invocation.is_empty() => {
            Some(i.invocation.clone())
        }
        _ => None,
    };
    let own = SystemdUnit {
        name: unit.unit.clone(),
        manager: which,
        invocation,
    };
    let cg = bus.control_group(&unit.unit);
    guard.unit = Some((bus, own.clone(), state.id.clone()));
    info.map_err(cgroups::CgroupError::from)?;
    let cg = cg.map_err(cgroups::CgroupError::from)?;
    let dirs = sd::unit_dirs(hierarchies, &cg);
    guard.cgroup_dirs = dirs.clone();
    let cg_plan = cgroups::plan(hierarchies, &dirs);
    state.systemd_unit = Some(own);
    state.cgroup_paths = dirs.clone();
    state.cgroups_created = cg_plan.missing.clone();
    let dir = guard.dir.as_ref().expect("guard holds the dir");
    dir.save(state)?;
    cgroups::create(&cg_plan.missing, &mut guard.cgroups_made)?;
    if guard.cgroups_made != state.cgroups_created {
        state.cgroups_created = guard.cgroups_made.clone();
        dir.save(state)?;
    }
    cgroups::fill_cpusets_of(hierarchies, &dirs)?;
    let procs = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map_err(|e| CreateError::Init(format!("reading the init's cgroups: {e}")))?;
    for i in sd::misplaced(&procs, hierarchies, &cg) {
        cgroups::add_pid(&dirs[i..=i], pid.as_raw())?;
    }
    cgroups::apply_resources(&dirs, &resources, true)?;
    Ok(dirs)
}

fn seccomp_profile(spec: &Spec) -> Option<&oci_spec::runtime::LinuxSeccomp> {
    spec.linux().as_ref().and_then(|l| l.seccomp().as_ref())
}

/// The pid file is written atomically: engines poll for it and must never
/// read a partial number.
pub fn write_pid_file(path: &Path, pid: i32) -> std::io::Result<()> {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    crate::state::write_atomic(&path, pid.to_string().as_bytes())
}

/// The socket the init blocks on until `start` connects. Listening before
/// clone lets the init inherit it; bound through /proc/self/fd/<dir> so a
/// long --root still fits sun_path.
fn exec_listener(dir: &ContainerDir) -> Result<OwnedFd> {
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| CreateError::Sys("socket", e))?;
    let addr = UnixAddr::new(&dir.exec_socket_short())
        .map_err(|e| CreateError::Sys("exec socket address", e))?;
    bind(fd.as_raw_fd(), &addr).map_err(|e| CreateError::Sys("binding exec socket", e))?;
    listen(&fd, Backlog::new(1).expect("1 is a valid backlog"))
        .map_err(|e| CreateError::Sys("listen", e))?;
    Ok(fd)
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot start a container that has stopped")]
    Stopped,
    #[error("cannot start an already running container")]
    Running,
    #[error("cannot start a container in the {0} state")]
    Other(Status),
    #[error("container init is gone: {0}")]
    Gone(std::io::Error),
    #[error("{0}")]
    Exec(String),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
}

/// Releases a created container's init to exec the user program. Returns
/// once the exec happened (the init's end of the connection closes on exec).
pub fn start(
    dir: &ContainerDir,
    state: &mut ContainerState,
) -> std::result::Result<(), StartError> {
    match state.status() {
        Status::Created => {}
        Status::Stopped => return Err(StartError::Stopped),
        Status::Running => return Err(StartError::Running),
        s => return Err(StartError::Other(s)),
    }
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    let mut conn = UnixStream::connect(dir.exec_socket_short()).map_err(StartError::Gone)?;
    let mut reply = String::new();
    let _ = conn.read_to_string(&mut reply);
    let _ = std::fs::remove_file(dir.exec_socket());
    if !reply.is_empty() {
        return Err(StartError::Exec(reply));
    }
    checkpoint("start-exec-done");
    state.started = true;
    dir.save(state)?;
    crate::log::step("start-saved");
    if let Some(h) = state.hooks().and_then(|h| h.poststart().as_deref()) {
        // A failing poststart hook is only a warning (config.md).
        if let Err(e) = hooks::run_all("poststart", h, &oci_state_json(state, Status::Running)) {
            crate::log::warn(&e.to_string());
        }
    }
    Ok(())
}

/// Sends `sig` to the container's init, or with `all` to every process
/// of the container (see cgroups::members: never one that merely shares
/// its cgroup). Every signal goes through a pidfd, so a recycled pid is
/// never hit.
pub fn signal(state: &ContainerState, sig: i32, all: bool) -> std::result::Result<(), nix::Error> {
    if all {
        // With --all the init may already be gone: not an error.
        return match members_of(state, Some(sig)).error {
            Some(e) => Err(e),
            None => Ok(()),
        };
    }
    let pidfd = init_pidfd(state).ok_or(nix::errno::Errno::ESRCH)?;
    sys::pidfd_send_signal(&pidfd, sig)
}

/// Waits until the pidfd's process has exited (or the timeout passes).
fn wait_exit(pidfd: &OwnedFd, timeout_ms: i32) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    let t = PollTimeout::try_from(timeout_ms).unwrap_or(PollTimeout::MAX);
    loop {
        match poll(&mut fds, t) {
            Err(nix::errno::Errno::EINTR) => continue,
            Ok(n) => return n > 0,
            Err(_) => return false,
        }
    }
}

/// Kills whatever is left of the container (its init, then, without a pid
/// namespace of its own, the processes in the cgroups rrun made for it),
/// removes the cgroups rrun made, runs poststop hooks and removes the
/// state dir. Processes that only share the container's cgroups, and
/// cgroups rrun did not make, are left alone (a warning names a cgroup
/// rrun made that they keep busy). Used by `delete` and by a foreground
/// `run` that ends.
pub fn destroy(
    dir: ContainerDir,
    state: &ContainerState,
) -> std::result::Result<(), cgroups::CgroupError> {
    crate::log::step("delete-begin");
    let init = init_pidfd(state);
    // Decided while the init lives: its pid namespace names the container.
    let rule = membership(state, init.as_ref());
    if let Some(pidfd) = &init {
        let _ = sys::pidfd_send_signal(pidfd, libc::SIGKILL);
        // A frozen (paused) process dies only once thawed.
        if cgroups::is_frozen(&state.cgroup_paths) {
            let _ = cgroups::set_frozen(&state.cgroup_paths, false);
        }
        wait_exit(pidfd, 5000);
    }
    // With a pid namespace of its own nothing of the container is left
    // once its init is seen dead (the kernel kills the rest first).
    // Without one, its processes are those in the cgroups rrun made for it;
    // in a cgroup that existed before, only the init is known to be its.
    if let Rule::Owned(owned) = &rule {
        kill_owned(owned);
    }
    checkpoint("delete-killed");
    let mut made = state.cgroups_created.clone();
    // A unit that is no longer the container's (another took its name)
    // is left alone, and so are its cgroups (`rule` excluded them too).
    if let Some(u) = &state.systemd_unit {
        match Bus::connect(u.manager).and_then(|b| b.stop_unit(&u.own(&state.id))) {
            Ok(true) => add_unit_dirs(&mut made, &state.cgroup_paths),
            Ok(false) => {}
            Err(e) => crate::log::warn(&format!("delete {}: {e}", state.id)),
        }
    }
    let left = cgroups::remove_created(&made, &state.cgroup_paths, &|pid| {
        members::is_foreign(&rule, pid)
    });
    warn_left(&format!("delete {}", state.id), &left);
    checkpoint("delete-cgroups-removed");
    if let Some(h) = state.hooks().and_then(|h| h.poststop().as_deref()) {
        // A failing poststop hook is only a warning (config.md).
        if let Err(e) = hooks::run_all("poststop", h, &oci_state_json(state, Status::Stopped)) {
            crate::log::warn(&e.to_string());
        }
    }
    checkpoint("delete-hooks-run");
    if let Err(e) = dir.destroy() {
        crate::log::warn(&e.to_string());
    }
    crate::log::step("delete-done");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn listen_fds_need_our_pid() {
        use super::listen_fds_from as f;
        assert_eq!(f(None, Some("3"), 42), 0);
        assert_eq!(f(Some("41"), Some("3"), 42), 0);
        assert_eq!(f(Some(""), Some("3"), 42), 0);
        assert_eq!(f(Some("42"), Some("3"), 42), 3);
        assert_eq!(f(Some("42"), Some("x"), 42), 0);
        assert_eq!(f(Some("42"), None, 42), 0);
    }
}
