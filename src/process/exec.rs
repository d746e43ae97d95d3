//! exec: a new process inside a running container. rrun forks a helper
//! that joins the container's cgroups (itself, first thing: see
//! cgroups::Placement) and, with one setns(pidfd) call, every namespace of the container
//! that differs from ours; the helper forks the process itself, which is
//! then a member of the container's pid namespace, applies the process
//! config (the same code as the init's) and execs. The helper reports the
//! pid and exits; a foreground `exec` is the subreaper that waits.
//!
//! | step | who     | what                                                    |
//! |------|---------|---------------------------------------------------------|
//! | 1    | parent  | fork helper (clone3 into the cgroup2 directory)         |
//! | 2    | helper  | joins the v1 cgroups (`tasks` <- 0), closes all fds but |
//! |      |         | the channel, pidfd, console, passed ones (fds.rs); Go   |
//! | 3    | helper  | non-dumpable; setns(pidfd, all differing namespaces)    |
//! | 4    | helper  | fork the process; send ChildPid + its pidfd; exit       |
//! | 5    | process | tty (if asked), process config, execve                  |
//! | 6    | parent  | EOF on the channel = exec happened; Error(msg) = failed |

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{Capability, LinuxCapabilities, Process, User};

use super::init::{ProcessOptions, apply_process};
use super::sync::{self, Channel, Msg};
use super::tty;
use crate::state::{ContainerState, Status};
use crate::sys::{self, CloneResult};

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("cannot exec in a stopped container")]
    Stopped,
    #[error("cannot exec in a container that is still being created")]
    Creating,
    #[error("cannot exec in a paused container (use --ignore-paused)")]
    Paused,
    #[error("{0}")]
    Invalid(String),
    #[error("{0}: {1}")]
    Sys(&'static str, nix::Error),
    #[error(transparent)]
    Sync(#[from] sync::SyncError),
    #[error("{0}")]
    Process(String),
}

/// What `rrun exec` was asked to change in the container's process config.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub args: Vec<String>,
    pub tty: bool,
    pub cwd: Option<PathBuf>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
}

/// The process to run, as runc builds it. From a --process file: that
/// process, with capabilities, rlimits, noNewPrivileges and the LSM labels
/// taken from the container when unset. From flags: the container's process
/// with args replaced, env appended and the flags applied.
pub fn build_process(
    container: &Process,
    from_file: Option<Process>,
    o: &Overrides,
) -> Result<Process, ExecError> {
    let mut p = match from_file {
        Some(mut p) => {
            if p.capabilities().is_none() {
                p.set_capabilities(container.capabilities().clone());
            }
            if p.rlimits().as_ref().is_none_or(|r| r.is_empty()) {
                p.set_rlimits(container.rlimits().clone());
            }
            if p.no_new_privileges().is_none() {
                p.set_no_new_privileges(container.no_new_privileges());
            }
            if p.apparmor_profile().is_none() {
                p.set_apparmor_profile(container.apparmor_profile().clone());
            }
            if p.selinux_label().is_none() {
                p.set_selinux_label(container.selinux_label().clone());
            }
            p
        }
        None => {
            if o.args.is_empty() {
                return Err(ExecError::Invalid(
                    "exec: no command given (pass COMMAND [ARGS...] or --process)".into(),
                ));
            }
            let mut p = container.clone();
            p.set_args(Some(o.args.clone()));
            // consoleSize stays the container's, as in runc (a foreground
            // relay then takes the caller's own terminal size).
            p.set_terminal(Some(o.tty));
            if let Some(cwd) = &o.cwd {
                p.set_cwd(cwd.clone());
            }
            let mut env = p.env().clone().unwrap_or_default();
            env.extend(o.env.iter().cloned());
            p.set_env(Some(env));
            if let Some(u) = &o.user {
                p.set_user(parse_user(u, p.user())?);
            }
            if !o.additional_gids.is_empty() {
                let mut user = p.user().clone();
                user.set_additional_gids(Some(o.additional_gids.clone()));
                p.set_user(user);
            }
            if !o.caps.is_empty() {
                p.set_capabilities(Some(add_caps(p.capabilities().clone(), &o.caps)?));
            }
            if o.no_new_privs {
                p.set_no_new_privileges(Some(true));
            }
            if o.apparmor.is_some() {
                p.set_apparmor_profile(o.apparmor.clone());
            }
            if o.process_label.is_some() {
                p.set_selinux_label(o.process_label.clone());
            }
            p
        }
    };
    match p.args() {
        Some(a) if !a.is_empty() && !a[0].is_empty() => {}
        _ => return Err(ExecError::Invalid("process.args: must not be empty".into())),
    }
    if !p.cwd().is_absolute() {
        return Err(ExecError::Invalid(format!(
            "process.cwd {:?}: must be an absolute path",
            p.cwd()
        )));
    }
    if p.cwd().as_os_str().is_empty() {
        p.set_cwd("/".into());
    }
    Ok(p)
}

/// `UID[:GID]`, numeric as runc takes it; the gid defaults to the
/// container's when absent.
fn parse_user(s: &str, base: &User) -> Result<User, ExecError> {
    let bad = || ExecError::Invalid(format!("--user {s:?}: expected UID[:GID] (numbers)"));
    let (u, g) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    let mut user = base.clone();
    user.set_uid(u.parse().map_err(|_| bad())?);
    user.set_gid(match g {
        Some(g) => g.parse().map_err(|_| bad())?,
        None => base.gid(),
    });
    user.set_additional_gids(None);
    Ok(user)
}

/// --cap: added to bounding, effective and permitted, and to ambient only
/// when the config has an inheritable set (ambient needs it), like runc.
fn add_caps(
    base: Option<LinuxCapabilities>,
    caps: &[String],
) -> Result<LinuxCapabilities, ExecError> {
    let mut c = base.unwrap_or_default();
    for name in caps {
        let full = if name.to_ascii_uppercase().starts_with("CAP_") {
            name.to_ascii_uppercase()
        } else {
            format!("CAP_{}", name.to_ascii_uppercase())
        };
        let cap: Capability = serde_json::from_value(serde_json::Value::String(full.clone()))
            .map_err(|_| ExecError::Invalid(format!("--cap {name:?}: unknown capability")))?;
        let add = |set: &Option<std::collections::HashSet<Capability>>| {
            let mut s = set.clone().unwrap_or_default();
            s.insert(cap);
            Some(s)
        };
        c.set_bounding(add(c.bounding()));
        c.set_effective(add(c.effective()));
        c.set_permitted(add(c.permitted()));
        if c.inheritable().is_some() {
            c.set_ambient(add(c.ambient()));
        }
    }
    Ok(c)
}

pub struct ExecOptions {
    pub process: Process,
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
    /// --cgroup: PATH (every hierarchy) or CONTROLLER:PATH (v1).
    pub sub_cgroups: Vec<String>,
}

/// A started exec'd process.
pub struct Execed {
    pub pid: Pid,
    /// For a foreground terminal without --console-socket: where the
    /// process sent its pty master.
    pub console: Option<OwnedFd>,
}

/// The root an exec'd process takes when the container has no mount
/// namespace of its own.
enum ExecRoot {
    Fd(OwnedFd),
    Path(std::path::PathBuf),
}

/// Whether the container's config gave it a new mount namespace (else it
/// shares one and was only chrooted into its root).
fn has_own_mount_ns(state: &ContainerState) -> bool {
    state
        .spec
        .as_ref()
        .and_then(|s| s.linux().as_ref())
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter().any(|n| {
                n.typ() == oci_spec::runtime::LinuxNamespaceType::Mount && n.path().is_none()
            })
        })
}

/// The namespaces of `pid` that differ from ours, as setns flags.
fn differing_namespaces(pid: i32) -> CloneFlags {
    use std::os::unix::fs::MetadataExt;
    let kinds = [
        ("user", CloneFlags::CLONE_NEWUSER),
        ("mnt", CloneFlags::CLONE_NEWNS),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("net", CloneFlags::CLONE_NEWNET),
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("time", CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)),
    ];
    let mut flags = CloneFlags::empty();
    for (name, flag) in kinds {
        let theirs = std::fs::metadata(format!("/proc/{pid}/ns/{name}"));
        let ours = std::fs::metadata(format!("/proc/self/ns/{name}"));
        if let (Ok(t), Ok(o)) = (theirs, ours)
            && (t.ino(), t.dev()) != (o.ino(), o.dev())
        {
            flags |= flag;
        }
    }
    flags
}

/// Starts `opts.process` in the container. Returns once it exec'd (or
/// failed to, with the reason).
pub fn exec(state: &ContainerState, opts: &ExecOptions) -> Result<Execed, ExecError> {
    let status = state.status();
    match status {
        Status::Stopped => return Err(ExecError::Stopped),
        // Until the init reports Ready it may still hold the host's root
        // and cwd (before pivot_root): nothing may join it then. (The
        // state lock keeps exec out while `create` runs; this covers a
        // state left `creating` with its init somehow alive.)
        Status::Creating => return Err(ExecError::Creating),
        Status::Paused if !opts.ignore_paused => return Err(ExecError::Paused),
        _ => {}
    }
    // A process that joins a frozen cgroup freezes before it can exec. In a
    // paused container it joins right after its exec instead (and then
    // stays frozen until resume, as the user asked with --ignore-paused).
    let join_late = status == Status::Paused;
    let process = &opts.process;
    let terminal = process.terminal().unwrap_or(false);
    let console_socket = opts.console_socket.as_ref().filter(|_| terminal);
    if terminal && console_socket.is_none() && opts.detach {
        return Err(ExecError::Invalid(
            "cannot allocate a terminal for a detached process without --console-socket".into(),
        ));
    }
    super::fds::check_count("--preserve-fds", opts.preserve_fds).map_err(ExecError::Invalid)?;
    // --apparmor/--process-label, or the container's labels.
    let lsm =
        crate::security::lsm::plan(process, None).map_err(|e| ExecError::Invalid(e.to_string()))?;
    let dirs = crate::cgroups::sub_cgroups(&state.cgroup_paths, &opts.sub_cgroups)
        .map_err(|e| ExecError::Invalid(e.to_string()))?;
    // The exec'd process gets the container's filter, as runc does.
    let seccomp = state
        .spec
        .as_ref()
        .and_then(|s| s.linux().as_ref())
        .and_then(|l| l.seccomp().as_ref())
        .map(crate::security::seccomp::compile_with_cache)
        .transpose()
        .map_err(|e| ExecError::Invalid(e.to_string()))?;
    let pidfd = sys::pidfd_open(state.pid).map_err(|e| ExecError::Sys("pidfd_open", e))?;
    if !crate::state::process_alive(state.pid, state.pid_start) {
        return Err(ExecError::Stopped);
    }
    let ns = differing_namespaces(state.pid);
    // A container without a mount namespace of its own was only chrooted
    // (rootfs::chroot_only): setns gives the exec'd process no root, so it
    // takes the container's before it can be seen in the container. In
    // rrun's own mount namespace: the root.path from the state (never from
    // the container), opened here; in a joined one, that path as it is
    // there, after setns.
    let chroot = if has_own_mount_ns(state) {
        None
    } else if ns.contains(CloneFlags::CLONE_NEWNS) {
        Some(ExecRoot::Path(state.rootfs.clone()))
    } else {
        Some(ExecRoot::Fd(
            nix::fcntl::open(
                state.rootfs.as_path(),
                nix::fcntl::OFlag::O_PATH
                    | nix::fcntl::OFlag::O_DIRECTORY
                    | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| ExecError::Sys("opening the container's root", e))?,
        ))
    };
    let (console_child, console_parent) =
        tty::console_endpoints(console_socket.map(|p| p.as_path()), terminal)
            .map_err(ExecError::Invalid)?;
    let (parent_end, child_end) = sync::pair()?;
    let keyring = super::init::session_keyring_name(&state.id, &state.keyring_nonce);

    // The helper joins the container's cgroups itself, before anything
    // else (see cgroups::Placement): born in the cgroup2 directory, then
    // its own thread into each v1 hierarchy. A paused container is joined
    // after the exec instead (see join_late).
    let placement = if join_late || dirs.is_empty() {
        None
    } else {
        Some(
            crate::cgroups::Placement::open(&dirs)
                .map_err(|e| ExecError::Process(e.to_string()))?,
        )
    };
    let (forked, born_in_unified) =
        super::clone_in_cgroups(CloneFlags::empty(), placement.as_ref())
            .map_err(|e| ExecError::Sys("fork", e))?;
    let helper = match forked {
        CloneResult::Child => {
            drop(parent_end);
            drop(console_parent);
            super::join_cgroups(placement.as_ref(), born_in_unified, &child_end);
            drop(placement);
            // Before setns: the process it forks is in the container's pid
            // namespace at once, and holds what the helper holds (fds.rs).
            let mut keep = vec![child_end.as_fd(), pidfd.as_fd()];
            keep.extend(console_child.as_ref().map(|c| c.as_fd()));
            if let Some(ExecRoot::Fd(fd)) = &chroot {
                keep.push(fd.as_fd());
            }
            if let Err(e) = super::fds::enter(opts.preserve_fds, &keep) {
                super::init::fail_before_go(&child_end, format!("closing rrun's fds: {e}"));
            }
            helper(
                &pidfd,
                ns,
                chroot.as_ref(),
                &child_end,
                process,
                console_child.as_ref(),
                (&keyring, opts.preserve_fds, seccomp.as_ref(), &lsm),
            )
        }
        CloneResult::Parent { child } => child,
    };
    drop(placement);
    drop(child_end);
    drop(console_child);
    let fail = |e: ExecError| -> ExecError {
        let _ = kill(helper, Signal::SIGKILL);
        let _ = waitpid(helper, None);
        e
    };
    crate::log::step("exec-forked");
    parent_end.send(&Msg::Go).map_err(|e| fail(e.into()))?;
    // The helper reports the process's pid; the process may hand over a
    // seccomp listener (sync s1, possibly before that report: they run
    // concurrently), then execs, which closes its end: EOF.
    //
    // Until that exec the process's end is in reach of anything in the
    // container that can ptrace (pidfd_getfd), so each packet counts only
    // from the process the kernel names as its sender (sync.rs): the
    // helper until it names the process, then that process. What comes
    // before the helper's report from others is held, and judged by it.
    let mut child: Option<(Pid, OwnedFd)> = None;
    let mut listener: Option<OwnedFd> = None;
    let mut held: Vec<sync::Packet> = Vec::new();
    let abort = |child: &Option<(Pid, OwnedFd)>, e: ExecError| match child {
        None => fail(e),
        Some((p, fd)) => {
            kill_process(*p, fd);
            e
        }
    };
    loop {
        let packet = match parent_end.recv_packet_while(child.as_ref().map(|c| &c.1)) {
            Ok(packet) => packet,
            Err(sync::SyncError::Eof) if let Some((p, fd)) = &child => {
                crate::log::step("exec-done");
                if join_late && let Err(e) = crate::cgroups::add_pid(&dirs, p.as_raw()) {
                    kill_process(*p, fd);
                    return Err(ExecError::Process(e.to_string()));
                }
                return Ok(Execed {
                    pid: *p,
                    console: console_parent,
                });
            }
            Err(e) => return Err(abort(&child, e.into())),
        };
        let expected = match &child {
            None => helper,
            Some((p, _)) => *p,
        };
        if packet.sender != Some(expected) {
            let may_be_the_process = matches!(packet.msg, Ok(Msg::SeccompFd | Msg::Error(_)));
            if child.is_none() && may_be_the_process && held.len() < HELD_MAX {
                held.push(packet);
            } else {
                sync::refuse(&packet);
            }
        } else if let Some((p, fd)) = &child {
            match from_process(packet) {
                Ok(l) => listener = Some(l),
                Err(e) => return Err(abort(&child, e)),
            }
            hand_over(state, (*p, fd), &mut listener, &parent_end)?;
        } else {
            let (p, sent) = match (packet.msg, packet.fd) {
                (Ok(Msg::ChildPid(p)), fd) => (Pid::from_raw(p), fd),
                (Ok(Msg::Error(e)), _) => return Err(fail(ExecError::Process(e))),
                (Ok(other), _) => {
                    return Err(fail(ExecError::Process(format!("unexpected {other:?}"))));
                }
                (Err(e), _) => return Err(fail(e.into())),
            };
            let pidfd =
                super::child_pidfd(p, sent).map_err(|e| fail(ExecError::Sys("pidfd_open", e)))?;
            let _ = waitpid(helper, None);
            crate::log::step("exec-joined");
            crate::log::debug(&format!(
                "container {}: exec'd process pid {p} in its namespaces",
                state.id
            ));
            child = Some((p, pidfd));
            for h in held.drain(..) {
                if h.sender != Some(p) {
                    sync::refuse(&h);
                    continue;
                }
                match from_process(h) {
                    Ok(l) => listener = Some(l),
                    Err(e) => return Err(abort(&child, e)),
                }
            }
            if let Some((p, fd)) = &child {
                hand_over(state, (*p, fd), &mut listener, &parent_end)?;
            }
        }
    }
}

/// How many packets from others than the helper are kept until it names
/// the process (the process itself sends at most two: SeccompFd, Error).
/// Beyond that they are refused, so a flood cannot grow rrun's memory or
/// fd table (it can crowd out the process's own listener, leaving it
/// waiting: a thief that can ptrace it could stop it anyway).
const HELD_MAX: usize = 16;

/// A message from the exec'd process itself (the kernel says so): its
/// seccomp listener, or why it failed.
fn from_process(p: sync::Packet) -> Result<OwnedFd, ExecError> {
    match (p.msg?, p.fd) {
        (Msg::SeccompFd, Some(fd)) => Ok(fd),
        (Msg::Error(e), _) => Err(ExecError::Process(e)),
        (other, _) => Err(ExecError::Process(format!("unexpected {other:?}"))),
    }
}

/// Step s2, once the process's pid is known and its listener came.
fn hand_over(
    state: &ContainerState,
    child: (Pid, &OwnedFd),
    listener: &mut Option<OwnedFd>,
    chan: &Channel,
) -> Result<(), ExecError> {
    match listener.take() {
        Some(l) => hand_to_listener(state, child, &l, chan),
        None => Ok(()),
    }
}

/// Kills a process that failed before or at its exec (through its pidfd:
/// never a recycled pid) and reaps it when it is ours (a foreground exec
/// is the subreaper; otherwise ECHILD at once).
fn kill_process(pid: Pid, pidfd: &OwnedFd) {
    let _ = sys::pidfd_send_signal(pidfd, libc::SIGKILL);
    let _ = waitpid(pid, None);
}

/// Sync step s2 for an exec'd process: its listener goes to
/// linux.seccomp.listenerPath with the container's state (runc reports
/// the exec'd process's pid and the container's status). A failure kills
/// the process.
fn hand_to_listener(
    state: &ContainerState,
    (pid, pidfd): (Pid, &OwnedFd),
    fd: &OwnedFd,
    chan: &Channel,
) -> Result<(), ExecError> {
    let sent = match state
        .spec
        .as_ref()
        .and_then(|s| s.linux().as_ref())
        .and_then(|l| l.seccomp().as_ref())
    {
        Some(s) => {
            let st = serde_json::to_value(state.oci_state(state.status()))
                .expect("state serialises: plain data");
            crate::security::seccomp::send_to_listener(s, pid.as_raw(), st, fd)
                .map_err(|e| ExecError::Process(e.to_string()))
        }
        None => Err(ExecError::Process(
            "a seccomp listener, but no linux.seccomp recorded".into(),
        )),
    };
    if let Err(e) = sent.and_then(|()| chan.send(&Msg::SeccompDone).map_err(ExecError::from)) {
        kill_process(pid, pidfd);
        return Err(e);
    }
    Ok(())
}

/// Steps 3-4 (helper) and 5 (process). Never returns.
fn helper(
    pidfd: &OwnedFd,
    ns: CloneFlags,
    chroot: Option<&ExecRoot>,
    chan: &Channel,
    process: &Process,
    console: Option<&OwnedFd>,
    (keyring, preserve_fds, seccomp, lsm): (
        &str,
        u32,
        Option<&crate::security::seccomp::Compiled>,
        &crate::security::lsm::Labels,
    ),
) -> ! {
    // Until exec, nothing in the container may ptrace us or open our
    // /proc/<pid>/exe, cwd or fds (CVE-2019-5736 class).
    let _ = sys::set_non_dumpable();
    if chan.expect(Msg::Go).is_err() {
        sys::exit_now(1);
    }
    if let Err(e) = nix::sched::setns(pidfd.as_fd(), ns) {
        let _ = chan.send(&Msg::Error(format!(
            "joining the container's namespaces: {e}"
        )));
        sys::exit_now(1);
    }
    if let Some(root) = chroot {
        let entered = match root {
            ExecRoot::Fd(fd) => nix::unistd::fchdir(fd).and_then(|()| nix::unistd::chroot(".")),
            ExecRoot::Path(p) => nix::unistd::chroot(p.as_path()),
        }
        .and_then(|()| nix::unistd::chdir("/"));
        if let Err(e) = entered {
            let _ = chan.send(&Msg::Error(format!("entering the container's root: {e}")));
            sys::exit_now(1);
        }
        if let ExecRoot::Fd(fd) = root {
            sys::close_in_child(std::os::fd::AsRawFd::as_raw_fd(fd));
        }
    }
    match sys::fork_process() {
        Ok(CloneResult::Child) => {
            // The process needs the init's pidfd no more.
            sys::close_in_child(std::os::fd::AsRawFd::as_raw_fd(pidfd));
        }
        Ok(CloneResult::Parent { child }) => {
            super::init::send_child_pid(chan, child);
            sys::exit_now(0);
        }
        Err(e) => {
            let _ = chan.send(&Msg::Error(format!("fork: {e}")));
            sys::exit_now(1);
        }
    }
    let result = (|| -> Result<super::init::Exec, String> {
        let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
        sys::reset_signal_dispositions();
        if let Some(console) = console {
            nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
            let pty = tty::open_pty()?;
            if let Some(size) = tty::console_size(process) {
                let _ = sys::set_winsize(&pty.master, size);
            }
            let uid = nix::unistd::Uid::from_raw(process.user().uid());
            nix::unistd::fchown(&pty.slave, Some(uid), None)
                .map_err(|e| format!("chown of the pty: {e}"))?;
            tty::send_fd(console, &pty.master, "/dev/ptmx")
                .map_err(|e| format!("sending the pty master: {e}"))?;
            drop(pty.master);
            // See init::setup: the console socket is done with.
            sys::close_in_child(std::os::fd::AsRawFd::as_raw_fd(console));
            tty::attach_slave(&pty.slave)?;
        }
        apply_process(
            process,
            &ProcessOptions {
                keyring: Some(keyring.to_string()),
                preserve_fds,
                listen_fds: 0,
                seccomp,
                lsm,
                chan,
            },
        )
    })();
    let exe = match result {
        Ok(exe) => exe,
        Err(e) => {
            let _ = chan.send(&Msg::Error(e));
            sys::exit_now(1);
        }
    };
    if let Some(f) = &exe.late_seccomp
        && let Err(e) = crate::security::seccomp::load(f)
    {
        let _ = chan.send(&Msg::Error(format!("loading the seccomp filter: {e}")));
        sys::exit_now(1);
    }
    let err = nix::unistd::execve(&exe.path, &exe.args, &exe.env).unwrap_err();
    let _ = chan.send(&Msg::Error(format!(
        "exec {}: {err}",
        exe.path.to_string_lossy()
    )));
    sys::exit_now(127)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container() -> Process {
        let spec: oci_spec::runtime::Spec =
            serde_json::from_value(crate::spec::default_spec(false)).unwrap();
        spec.process().clone().unwrap()
    }

    #[test]
    fn flags_override_the_container_process() {
        let o = Overrides {
            args: vec!["id".into()],
            cwd: Some("/tmp".into()),
            env: vec!["A=1".into()],
            user: Some("1000:1000".into()),
            additional_gids: vec![2000],
            caps: vec!["net_admin".into()],
            no_new_privs: true,
            ..Default::default()
        };
        let p = build_process(&container(), None, &o).unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &vec!["id".to_string()]);
        assert_eq!(p.cwd(), std::path::Path::new("/tmp"));
        assert!(p.env().as_ref().unwrap().contains(&"A=1".to_string()));
        assert!(
            p.env()
                .as_ref()
                .unwrap()
                .iter()
                .any(|e| e.starts_with("PATH="))
        );
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 1000));
        assert_eq!(p.user().additional_gids().as_ref().unwrap(), &vec![2000]);
        assert!(
            p.capabilities()
                .as_ref()
                .unwrap()
                .bounding()
                .as_ref()
                .unwrap()
                .contains(&Capability::NetAdmin)
        );
        assert!(p.capabilities().as_ref().unwrap().ambient().is_none());
        assert_eq!(p.no_new_privileges(), Some(true));
    }

    #[test]
    fn process_file_inherits_unset_fields() {
        let file: Process =
            serde_json::from_str(r#"{"user":{"uid":5,"gid":5},"args":["true"],"cwd":"/"}"#)
                .unwrap();
        let p = build_process(&container(), Some(file), &Overrides::default()).unwrap();
        assert_eq!(p.user().uid(), 5);
        assert_eq!(p.capabilities(), container().capabilities());
        assert_eq!(p.rlimits(), container().rlimits());
        assert_eq!(p.no_new_privileges(), Some(true));
    }

    #[test]
    fn bad_inputs() {
        assert!(build_process(&container(), None, &Overrides::default()).is_err());
        let o = Overrides {
            args: vec!["x".into()],
            user: Some("root".into()),
            ..Default::default()
        };
        assert!(build_process(&container(), None, &o).is_err());
        let o = Overrides {
            args: vec!["x".into()],
            caps: vec!["CAP_NOPE".into()],
            ..Default::default()
        };
        assert!(build_process(&container(), None, &o).is_err());
        let o = Overrides {
            args: vec!["x".into()],
            cwd: Some("rel".into()),
            ..Default::default()
        };
        assert!(build_process(&container(), None, &o).is_err());
    }
}
