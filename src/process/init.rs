//! The child side of create: the intermediate process (when needed) and the
//! container init, which sets up the container from inside its namespaces
//! and blocks before exec until `start`. Both never return: they exec or
//! _exit. Every failure is sent to the parent as one message naming the
//! step, then the process exits.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
use nix::sys::socket::accept4;
use nix::unistd::{Gid, Uid, setgroups, setresgid, setresuid};
use oci_spec::runtime::{LinuxNamespaceType, PosixRlimitType, Process};

use super::InitPlan;
use super::sync::{self, Channel, Msg};
use crate::rootfs::{self, RootfsPlan};
use crate::security::{CapPlan, lsm};
use crate::sys::{self, CloneResult};

type StepResult<T> = Result<T, String>;

fn step<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> String {
    move |e| format!("{what}: {e}")
}

fn fail(chan: &Channel, msg: String) -> ! {
    let _ = chan.send(&Msg::Error(msg));
    sys::exit_now(1)
}

/// `fail` for a process whose parent still has steps to do before it
/// listens (id maps, Go): staying alive until the parent's next message
/// (or its end) keeps those steps from failing on a dead process first,
/// so the error the user sees is this one.
pub(super) fn fail_before_go(chan: &Channel, msg: String) -> ! {
    let _ = chan.send(&Msg::Error(msg));
    let _ = chan.recv();
    sys::exit_now(1)
}

/// The intermediate process: joins namespaces by path, unshares the new
/// ones (a user namespace first, with the parent writing its maps), sets
/// time offsets, forks the init, reports its pid and exits.
pub fn intermediate(
    plan: &InitPlan,
    chan: &Channel,
    listener: &OwnedFd,
    console: Option<&OwnedFd>,
) -> ! {
    let result = (|| -> StepResult<()> {
        plan.ns.join_all().map_err(|e| e.to_string())?;
        // The init, forked next, has no use for them (see fds.rs).
        for fd in plan.ns.join_fds() {
            sys::close_in_child(std::os::fd::AsRawFd::as_raw_fd(&fd));
        }
        if plan.ns.new_user() {
            unshare(CloneFlags::CLONE_NEWUSER).map_err(step("unshare user namespace"))?;
            chan.send(&Msg::MapRequest).map_err(|e| e.to_string())?;
            chan.expect(Msg::MapsWritten)?;
            become_root_in_userns();
        }
        let mut rest = plan.ns.new & !CloneFlags::CLONE_NEWUSER;
        if plan.ns.new_time {
            rest |= CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);
        }
        unshare(rest).map_err(step("unshare namespaces"))?;
        if plan.ns.new_time && !plan.ns.time_offsets.is_empty() {
            std::fs::write(
                "/proc/self/timens_offsets",
                crate::namespaces::timens_text(&plan.ns.time_offsets),
            )
            .map_err(step("writing timens_offsets"))?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        fail(chan, e);
    }
    match sys::fork_process() {
        Ok(CloneResult::Child) => run(plan, chan, listener, console),
        Ok(CloneResult::Parent { child }) => {
            send_child_pid(chan, child);
            sys::exit_now(0)
        }
        Err(e) => fail(chan, format!("fork: {e}")),
    }
}

/// Reports a forked child's pid with a pidfd of it: the child cannot be
/// reaped while we live, so the pidfd is surely it, and the parent signals
/// through it whatever happens to the pid after we exit.
pub(super) fn send_child_pid(chan: &Channel, child: nix::unistd::Pid) {
    let msg = sync::encode(&Msg::ChildPid(child.as_raw()));
    let _ = match sys::pidfd_open(child.as_raw()) {
        Ok(fd) => chan.send_encoded_with_fd(&msg, &fd),
        Err(_) => chan.send(&Msg::ChildPid(child.as_raw())),
    };
}

/// setresuid/gid(0) inside a new user namespace, when 0 is mapped: files
/// created from here on (mount points, device files) belong to the
/// container's root rather than to the unmapped overflow id.
fn become_root_in_userns() {
    let _ = setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0));
    let _ = setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0));
}

/// The container init. Steps a..j of the table in process/mod.rs.
pub fn run(plan: &InitPlan, chan: &Channel, listener: &OwnedFd, console: Option<&OwnedFd>) -> ! {
    // a. A clean signal state: rrun may have blocked or ignored signals
    //    (Rust ignores SIGPIPE); the user's program must start with none.
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    sys::reset_signal_dispositions();
    // Until exec, nothing in the container may ptrace us or open our
    // /proc/<pid>/exe (the rrun binary) or fds (CVE-2019-5736 class).
    let _ = sys::set_non_dumpable();
    // Before Go, the parent may send id-mapped mounts (rootfs::host_mounts).
    let mut idmapped = Vec::new();
    // With the systemd driver, the parent names the unit's cgroups once
    // systemd has placed us there.
    let mut unit_dirs = None;
    loop {
        match chan.recv_with_fd() {
            Ok((Msg::Go, _)) => break,
            Ok((Msg::MountFd(i), Some(fd))) => idmapped.push((i, fd)),
            Ok((Msg::CgroupDirs(d), _)) => unit_dirs = Some(d),
            // The parent died or failed: nobody will clean up a half-made init.
            _ => sys::exit_now(1),
        }
    }
    let cgroup_dirs = unit_dirs.as_deref().unwrap_or(&plan.cgroup_dirs);
    let target = match setup(plan, chan, console, &idmapped, cgroup_dirs) {
        Ok(exe) => exe,
        Err(e) => fail(chan, e),
    };
    // Attached in the rootfs by now: nothing of them is held past setup.
    drop(idmapped);
    // --- seccomp: without no_new_privs the filter is already loaded, and
    // the wait for `start` below is accept4(2): a profile that denies it
    // fails create here with a clear error, not start with a dead init.
    let early_filter = plan.seccomp.is_some()
        && !plan
            .spec
            .process()
            .as_ref()
            .and_then(|p| p.no_new_privileges())
            .unwrap_or(false);
    if early_filter && let Err(e) = accept_allowed(listener) {
        fail(
            chan,
            format!(
                "linux.seccomp: the profile denies accept4, which the init needs to wait for start: {e}"
            ),
        );
    }
    if chan.send(&Msg::Ready).is_err() {
        sys::exit_now(1);
    }
    // The parent is done with us: from `created` on, a process exec'd into
    // the container (pidfd_getfd) finds no channel to rrun to write to.
    sys::close_in_child(std::os::fd::AsRawFd::as_raw_fd(&chan.as_fd()));
    // i. Wait for `start`. The connection fd is CLOEXEC: a successful
    //    execve closes it, which is how `start` learns the exec happened.
    let conn = loop {
        match accept4(listener.as_fd(), nix::sys::socket::SockFlag::SOCK_CLOEXEC) {
            Ok(c) => break c,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => sys::exit_now(1),
        }
    };
    let report = |msg: String| -> ! {
        let _ = nix::unistd::write(&conn, msg.as_bytes());
        sys::exit_now(127)
    };
    // j. startContainer hooks run in the container under the filter (as
    //    with runc: a profile that denies what a hook does fails start),
    //    then the program.
    let late_seccomp = match &target {
        Target::Program(exe) => exe.late_seccomp.as_ref(),
        Target::Init { late_seccomp, .. } => late_seccomp.as_ref(),
    };
    if let Some(f) = late_seccomp
        && let Err(e) = crate::security::seccomp::load(f)
    {
        report(format!("loading the seccomp filter: {e}"));
    }
    if let Some(h) = plan
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().as_deref())
    {
        let json = serde_json::json!({
            "ociVersion": crate::spec::OCI_VERSION, "id": plan.id, "status": "created",
            "pid": nix::unistd::getpid().as_raw(), "bundle": plan.bundle,
        });
        if let Err(e) = crate::hooks::run_all("startContainer", h, json.to_string().as_bytes()) {
            report(e.to_string());
        }
    }
    let exe = match target {
        Target::Program(exe) => exe,
        Target::Init { plan: plan_fd, .. } => {
            let init_bin = plan
                .init_binary
                .as_ref()
                .expect("init target only with the init binary");
            let args = [
                CString::new("rrun-init").expect("no NUL"),
                CString::new(std::os::fd::AsRawFd::as_raw_fd(&plan_fd).to_string())
                    .expect("no NUL"),
            ];
            let env: [CString; 0] = [];
            // fexecve is execveat(AT_EMPTY_PATH): a seccomp profile must
            // allow it for the built-in init.
            let err = nix::unistd::fexecve(init_bin, &args, &env).unwrap_err();
            report(format!(
                "exec of the built-in init (execveat of a memfd; the seccomp profile and LSM must allow it): {err}"
            ))
        }
    };
    let err = nix::unistd::execve(&exe.path, &exe.args, &exe.env).unwrap_err();
    report(format!("exec {}: {}", exe.path.to_string_lossy(), err))
}

/// Whether accept4 on `listener` passes the loaded filter: tried once
/// without blocking (EAGAIN: allowed, nobody is connecting yet).
fn accept_allowed(listener: &OwnedFd) -> Result<(), nix::Error> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = OFlag::from_bits_truncate(fcntl(listener, FcntlArg::F_GETFL)?);
    fcntl(listener, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    let tried = accept4(listener.as_fd(), nix::sys::socket::SockFlag::SOCK_CLOEXEC);
    fcntl(listener, FcntlArg::F_SETFL(flags))?;
    match tried {
        Err(nix::errno::Errno::EAGAIN) => Ok(()),
        // A connection already there is a stray one: `start` only
        // connects once Ready is in state.json. It is dropped.
        Ok(stray) => {
            drop(stray);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

pub(super) struct Exec {
    /// The filter to load last (no_new_privs case): the init loads it
    /// before the startContainer hooks, exec right before execve.
    pub late_seccomp: Option<crate::security::seccomp::Compiled>,
    pub path: CString,
    pub args: Vec<CString>,
    pub env: Vec<CString>,
}

fn cstring(s: &str, what: &'static str) -> StepResult<CString> {
    CString::new(s).map_err(|_| format!("{what} {s:?}: contains a NUL byte"))
}

/// Steps c..h. Returns what to exec.
/// What the init execs once started: the program, or the built-in init.
enum Target {
    Program(Exec),
    /// The launch plan's fd, and the filter to load right before the exec
    /// (no_new_privs case), as for the program.
    Init {
        plan: OwnedFd,
        late_seccomp: Option<crate::security::seccomp::Compiled>,
    },
}

fn setup(
    plan: &InitPlan,
    chan: &Channel,
    console: Option<&OwnedFd>,
    idmapped: &[(usize, OwnedFd)],
    cgroup_dirs: &[std::path::PathBuf],
) -> StepResult<Target> {
    let spec = &plan.spec;
    let process: &Process = spec.process().as_ref().expect("validated: process present");

    // c.
    if plan.ns.new_user() && !plan.ns.needs_intermediate() {
        become_root_in_userns();
    }
    if plan.ns.new_cgroup {
        unshare(CloneFlags::CLONE_NEWCGROUP).map_err(step("unshare cgroup namespace"))?;
    }
    nix::unistd::setsid().map_err(step("setsid"))?;
    if plan.ns.new.contains(CloneFlags::CLONE_NEWNET) {
        sys::loopback_up().map_err(step("bringing up lo"))?;
    }

    // d.
    let new_uts = plan.ns.new.contains(CloneFlags::CLONE_NEWUTS);
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty())
        && (new_uts || plan.ns.joins_type(LinuxNamespaceType::Uts))
    {
        nix::unistd::sethostname(h).map_err(step("sethostname"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        set_domainname(d)?;
    }
    let rplan = RootfsPlan {
        spec,
        rootfs: &plan.rootfs,
        bundle: &plan.bundle,
        userns: plan.ns.in_userns(),
        cgroupns: plan.ns.new_cgroup,
        host_pidns: !spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Pid)),
        no_pivot: plan.no_pivot,
        hierarchies: &plan.hierarchies,
        cgroup_dirs,
        mount_label: plan.lsm.mount.as_deref(),
        idmapped,
    };
    let own_mounts = plan.ns.new.contains(CloneFlags::CLONE_NEWNS);
    if own_mounts {
        rootfs::prepare(&rplan).map_err(|e| e.to_string())?;
    }
    // e. f.
    if plan.has_runtime_hooks {
        chan.send(&Msg::CreateRuntimeHooks)
            .map_err(|e| e.to_string())?;
        chan.expect(Msg::HooksDone)?;
    }
    if let Some(h) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.create_container().as_deref())
    {
        let json = serde_json::json!({
            "ociVersion": crate::spec::OCI_VERSION, "id": plan.id, "status": "creating",
            "pid": nix::unistd::getpid().as_raw(), "bundle": plan.bundle,
        });
        crate::hooks::run_all_in(
            "createContainer",
            h,
            json.to_string().as_bytes(),
            Some(&plan.rootfs),
        )
        .map_err(|e| e.to_string())?;
    }
    if own_mounts {
        rootfs::enter(&rplan).map_err(|e| e.to_string())?;
        // g.
        rootfs::finalize(&rplan).map_err(|e| e.to_string())?;
    } else {
        // Shared mounts (spec::validate refused everything that would
        // change them): only the root moves.
        rootfs::chroot_only(&plan.rootfs).map_err(|e| e.to_string())?;
    }
    if let Some(console) = console {
        // With the built-in init, each run of the program takes the
        // terminal as its controlling tty; the init must not hold it.
        let host_peers = own_mounts && rootfs::host_peers_possible(&rplan);
        setup_terminal(process, console, plan.init_binary.is_none(), host_peers)?;
        // The engine's console socket took the pty master: nobody in the
        // container may send it anything else.
        sys::close_in_child(std::os::fd::AsRawFd::as_raw_fd(console));
    }
    // Personality (and, for the built-in init, scheduling and I/O
    // priority) are inherited across fork and exec: set here, they hold for
    // the program and the init's children alike.
    if let Some(p) = spec.linux().as_ref().and_then(|l| l.personality().as_ref()) {
        use oci_spec::runtime::LinuxPersonalityDomain as D;
        const PER_LINUX32: libc::c_ulong = 0x0008;
        let persona = match p.domain() {
            D::PerLinux => 0,
            D::PerLinux32 => PER_LINUX32,
        };
        sys::set_personality(persona).map_err(step("linux.personality"))?;
    }
    // h.
    let options = ProcessOptions {
        keyring: (!plan.no_new_keyring)
            .then(|| session_keyring_name(&plan.id, &plan.keyring_nonce)),
        preserve_fds: plan.preserve_fds,
        listen_fds: plan.listen_fds,
        seccomp: plan.seccomp.as_ref(),
        lsm: &plan.lsm,
        chan,
    };
    if plan.init_binary.is_some() {
        return setup_builtin_init(plan, process, &options);
    }
    // h.
    apply_process(process, &options).map(Target::Program)
}

/// Step h with the built-in init (issue: PID 1 must never hold more than
/// the program). The init gets the program's whole process config, exactly
/// as the program would (user, groups, capabilities in every set, rlimits,
/// keyring, LSM labels, no_new_privs, seccomp): the program and health
/// checks it forks inherit that, and nothing in the container can borrow
/// a privilege from PID 1. What the init needs beyond it is made first,
/// while privileged: the launch plan's memfd (a filter may deny
/// memfd_create) and the status directory, owned by the program's user.
fn setup_builtin_init(
    plan: &InitPlan,
    process: &Process,
    options: &ProcessOptions,
) -> StepResult<Target> {
    let launch = build_launch(plan, process)?;
    let plan_fd = plan_fd(&launch, 3 + plan.preserve_fds)?;
    let user = process.user();
    crate::init::prepare_status_dir(user.uid(), user.gid())
        .map_err(step("making the built-in init's status directory"))?;
    let exe = apply_process(process, options)?;
    // apply_process marked every fd above the passed ones close-on-exec;
    // the plan alone must reach the init (which reads and closes it).
    nix::fcntl::fcntl(
        &plan_fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )
    .map_err(step("passing the launch plan"))?;
    Ok(Target::Init {
        plan: plan_fd,
        late_seccomp: exe.late_seccomp,
    })
}

/// Reads back what the credential steps set. A seccomp profile may answer
/// setresuid, setgroups or capset with "success" without running them
/// (SCMP_ACT_ERRNO with errnoRet 0): the process would then keep rrun's
/// root and capabilities while the config asked for less. The kernel's
/// answer must be exactly the config's, or nothing runs (runc does not
/// check). A getter the profile fakes reads as zeros, which differs from
/// the config wherever the config is not all-zero; one it refuses with an
/// error is skipped.
fn verify_credentials(
    uid: Uid,
    gid: Gid,
    gids: Option<&[Gid]>,
    caps: &crate::security::CapPlan,
) -> StepResult<()> {
    use caps::CapSet;
    let refuse = |what: &str| {
        Err(format!(
            "{what} is not what the config asks after setting it (does the seccomp profile \
             fake success for a credential syscall, e.g. errnoRet 0?)"
        ))
    };
    // A getter the profile refuses with an error is replaced by the
    // kernel's /proc/self/status; only where neither answers is a check
    // skipped.
    let status = std::cell::OnceCell::new();
    let from_status = |key: &str| -> Option<Vec<u32>> {
        let text = status
            .get_or_init(|| read_in_container("/proc/self/status", 64 << 10))
            .as_ref()?;
        let line = text.lines().find_map(|l| l.strip_prefix(key))?;
        line.split_whitespace().map(|n| n.parse().ok()).collect()
    };
    let uids = nix::unistd::getresuid()
        .map(|r| vec![r.real.as_raw(), r.effective.as_raw(), r.saved.as_raw()])
        .ok()
        .or_else(|| from_status("Uid:").map(|v| v.into_iter().take(3).collect()));
    if uids.is_some_and(|v| v != [uid.as_raw(); 3]) {
        return refuse("the user id");
    }
    let gids_now = nix::unistd::getresgid()
        .map(|r| vec![r.real.as_raw(), r.effective.as_raw(), r.saved.as_raw()])
        .ok()
        .or_else(|| from_status("Gid:").map(|v| v.into_iter().take(3).collect()));
    if gids_now.is_some_and(|v| v != [gid.as_raw(); 3]) {
        return refuse("the group id");
    }
    // Where setgroups is denied (a user namespace written that way) the
    // list is what it was, and not checked.
    if let Some(gids) = gids {
        let mut want = gids.to_vec();
        want.sort_by_key(|g| g.as_raw());
        want.dedup();
        let now = nix::unistd::getgroups()
            .map(|g| g.into_iter().map(|g| g.as_raw()).collect::<Vec<u32>>())
            .ok()
            .or_else(|| from_status("Groups:"));
        if let Some(mut now) = now {
            now.sort_unstable();
            now.dedup();
            if now != want.iter().map(|g| g.as_raw()).collect::<Vec<u32>>() {
                return refuse("the supplementary group list");
            }
        }
    }
    for (set, want) in [
        (CapSet::Permitted, &caps.permitted),
        (CapSet::Effective, &caps.effective),
    ] {
        if let Ok(now) = caps::read(None, set)
            && &now != want
        {
            return refuse("the capability sets");
        }
    }
    Ok(())
}

/// The session keyring of the container's processes (init and exec
/// alike). KEYCTL_JOIN_SESSION_KEYRING joins an existing keyring of that
/// name when the caller may search it, so the name must never be one a
/// host keyring has (the kernel's own are `_uid.N`, `_uid_ses.N`, `_ses`,
/// `_pid`, `_tid`; nothing else names one `_ses.` plus a suffix), nor one
/// another container could make ahead of time: a container running as
/// host root can link a keyring named `_ses.<id>` into root's user
/// keyring, where a later container with that id would join it (runc's
/// name). The random nonce chosen at create (kept in the state for exec)
/// makes the name unguessable; states without one keep `_ses.<id>`.
pub fn session_keyring_name(id: &str, nonce: &str) -> String {
    if nonce.is_empty() {
        format!("_ses.{id}")
    } else {
        format!("_ses.{id}.{nonce}")
    }
}

/// 64 random bits as hex, for [`session_keyring_name`].
pub fn keyring_nonce() -> std::io::Result<String> {
    use std::io::Read;
    let mut b = [0u8; 8];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// What differs between the container's init and an exec'd process when
/// the process config is applied.
pub struct ProcessOptions<'a> {
    /// Name of a new session keyring to join, if any.
    pub keyring: Option<String>,
    pub preserve_fds: u32,
    pub listen_fds: u32,
    pub seccomp: Option<&'a crate::security::seccomp::Compiled>,
    /// The AppArmor profile and SELinux label to exec into.
    pub lsm: &'a lsm::Labels,
    /// Where a seccomp listener goes (sync steps s1-s2).
    pub chan: &'a Channel,
}

/// Step h, shared with exec: everything of `process` that is applied to the
/// calling process itself, in the order the kernel needs: rlimits and the
/// bounding set while still privileged, then the uid change with keepcaps,
/// cwd as the user, the other capability sets, umask, no_new_privs, and
/// finally every fd not passed on marked close-on-exec. Returns what to exec.
pub(super) fn apply_process(process: &Process, opts: &ProcessOptions) -> StepResult<Exec> {
    for r in process.rlimits().as_deref().unwrap_or_default() {
        set_rlimit(r.typ(), r.soft(), r.hard())?;
    }
    apply_scheduling(process)?;
    if let Some(name) = &opts.keyring {
        let joined = lsm::with_keyring_label(opts.lsm, || sys::join_session_keyring(name));
        match joined.map_err(|e| e.to_string())? {
            Ok(()) | Err(nix::errno::Errno::ENOSYS) => {}
            Err(e) => return Err(format!("joining a new session keyring: {e}")),
        }
    }
    // Before any filter is loaded (the writes need openat2 and write) and
    // while still privileged; they take effect at the execve.
    lsm::set_exec_labels(opts.lsm).map_err(|e| e.to_string())?;
    let env = build_env(process, opts.listen_fds);
    let args = process.args().as_deref().unwrap_or_default();
    let Some(arg0) = args.first() else {
        return Err("process.args: must not be empty".into());
    };
    let path = find_executable(arg0, &env, process.cwd())?;
    let caps = CapPlan::from_spec(process.capabilities().as_ref());
    caps.drop_bounding().map_err(|e| e.to_string())?;
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it
    // now, while we have it. With no_new_privs it is loaded by the caller
    // at the end (`Exec::late_seccomp`), so the filter sees as few of rrun's own
    // syscalls as possible (as runc does); all but a notify filter, which
    // is loaded at the end of this function, while the parent that hands
    // its listener on is still there (`start` has no sync channel).
    let nnp = process.no_new_privileges().unwrap_or(false);
    // --- seccomp: nothing after an early load may need a syscall that an
    // ordinary allowlist lacks (openat2 here; close_range falls back).
    let cwd = resolve_cwd(process.cwd())?;
    if let Some(f) = opts.seccomp.filter(|_| !nnp) {
        load_notify_filter(f, opts.chan)?;
        crate::security::seccomp::load(f).map_err(step("loading the seccomp filter"))?;
    }
    sys::set_keep_caps(true).map_err(step("PR_SET_KEEPCAPS"))?;
    let user = process.user();
    let gids: Vec<Gid> = user
        .additional_gids()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    // Always tried: the kernel decides. /proc/self/setgroups is only asked
    // why it failed (a user namespace that denies it, as rootless maps
    // are written): an exec'd process reads it from a /proc the container
    // may have replaced, and a planted "deny" must never leave it with
    // rrun's own supplementary groups.
    let groups_set = match setgroups(&gids) {
        Ok(()) => true,
        Err(nix::errno::Errno::EPERM)
            if read_in_container("/proc/self/setgroups", 64)
                .is_some_and(|s| s.trim() == "deny") =>
        {
            false
        }
        Err(e) => return Err(format!("setgroups: {e}")),
    };
    let gid = Gid::from_raw(user.gid());
    let uid = Uid::from_raw(user.uid());
    setresgid(gid, gid, gid).map_err(|e| format!("setting gid {}: {e}", user.gid()))?;
    setresuid(uid, uid, uid).map_err(|e| format!("setting uid {}: {e}", user.uid()))?;
    sys::set_keep_caps(false).map_err(step("PR_SET_KEEPCAPS"))?;
    enter_cwd(process.cwd(), cwd)?;
    caps.apply().map_err(|e| e.to_string())?;
    verify_credentials(uid, gid, groups_set.then_some(gids.as_slice()), &caps)?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        user.umask().unwrap_or(0o022) as libc::mode_t,
    ));
    if process.no_new_privileges().unwrap_or(false) {
        sys::set_no_new_privs().map_err(step("PR_SET_NO_NEW_PRIVS"))?;
    }
    // Nothing rrun opened (or was handed) reaches the program, except the
    // fds the caller passed among 3..3+N (runc CVE-2024-21626 class): those
    // are inheritable already, rrun's own are close-on-exec (fds.rs).
    sys::cloexec_from(3 + opts.preserve_fds).map_err(step("close_range"))?;
    if let Some(f) = opts.seccomp.filter(|_| nnp) {
        load_notify_filter(f, opts.chan)?;
    }
    Ok(Exec {
        late_seccomp: opts.seccomp.filter(|_| nnp).cloned(),
        path,
        args: args
            .iter()
            .map(|a| cstring(a, "process.args"))
            .collect::<StepResult<_>>()?,
        env: env
            .iter()
            .map(|e| cstring(e, "process.env"))
            .collect::<StepResult<_>>()?,
    })
}

/// Loads the profile's notify filter (if it has one) and hands its
/// listener to the parent (sync steps s1-s2), which sends it on to
/// linux.seccomp.listenerPath. Loaded before any other filter, so that
/// nothing but this filter can deny the hand-off; the message is encoded
/// beforehand, so between the load and the hand-off there is one
/// sendmsg(2) and nothing else: nobody could answer a notification yet,
/// and spec::validate refuses profiles that would notify sendmsg. The
/// parent's answer is awaited, so an unreachable listener fails here.
fn load_notify_filter(f: &crate::security::seccomp::Compiled, chan: &Channel) -> StepResult<()> {
    if f.listener.is_none() {
        return Ok(());
    }
    let msg = super::sync::encode(&Msg::SeccompFd);
    let fd = match crate::security::seccomp::load_listener(f) {
        Ok(Some(fd)) => fd,
        Ok(None) => return Ok(()),
        Err(e) => return Err(format!("loading the seccomp notify filter: {e}")),
    };
    chan.send_encoded_with_fd(&msg, &fd)
        .map_err(step("handing the seccomp listener to rrun"))?;
    drop(fd);
    chan.expect(Msg::SeccompDone)
}

/// A pty from the container's devpts: the master goes to the console
/// socket, the slave becomes /dev/console, stdio and the controlling tty.
/// `host_peers`: mounts here may be peers of the host's
/// (rootfs::host_peers_possible).
fn setup_terminal(
    process: &Process,
    console: &OwnedFd,
    ctty: bool,
    host_peers: bool,
) -> StepResult<()> {
    let pty = super::tty::open_pty()?;
    if let Some(size) = super::tty::console_size(process) {
        sys::set_winsize(&pty.master, size).map_err(step("setting the console size"))?;
    }
    // The program's user must own its terminal (for `tty`, mesg, ...); this
    // is the pty just made in the container's devpts, never a host file.
    let user = process.user();
    // The group stays devpts' (gid=5, tty), as with runc.
    nix::unistd::fchown(&pty.slave, Some(Uid::from_raw(user.uid())), None)
        .map_err(step("chown of the pty"))?;
    rootfs::bind_console(&pty.slave_path, host_peers).map_err(|e| e.to_string())?;
    super::tty::send_fd(console, &pty.master, "/dev/ptmx")
        .map_err(step("sending the pty master to the console socket"))?;
    drop(pty.master);
    if ctty {
        super::tty::attach_slave(&pty.slave)
    } else {
        for target in 0..3 {
            sys::dup_onto(&pty.slave, target).map_err(step("dup2 pty slave"))?;
        }
        Ok(())
    }
}

fn set_domainname(d: &str) -> StepResult<()> {
    let c = cstring(d, "domainname")?;
    // setdomainname is missing from nix; write through procfs instead, which
    // is the UTS namespace's own value.
    std::fs::write("/proc/sys/kernel/domainname", c.as_bytes()).map_err(step("setting domainname"))
}

/// process.scheduler and process.ioPriority: set while still privileged
/// (raising priority needs CAP_SYS_NICE); both survive execve.
fn apply_scheduling(process: &Process) -> StepResult<()> {
    use oci_spec::runtime::{IOPriorityClass, LinuxSchedulerFlag as F, LinuxSchedulerPolicy as P};
    if let Some(s) = process.scheduler() {
        let policy = match s.policy() {
            P::SchedOther => libc::SCHED_OTHER,
            P::SchedFifo => libc::SCHED_FIFO,
            P::SchedRr => libc::SCHED_RR,
            P::SchedBatch => libc::SCHED_BATCH,
            P::SchedIso => 4,
            P::SchedIdle => libc::SCHED_IDLE,
            P::SchedDeadline => 6,
        } as u32;
        let flags = s.flags().iter().flatten().fold(0u64, |acc, f| {
            acc | match f {
                F::SchedResetOnFork => 0x01,
                F::SchedFlagReclaim => 0x02,
                F::SchedFlagDLOverrun => 0x04,
                F::SchedFlagKeepPolicy => 0x08,
                F::SchedFlagKeepParams => 0x10,
                F::SchedFlagUtilClampMin => 0x20,
                F::SchedFlagUtilClampMax => 0x40,
            }
        });
        sys::sched_setattr(
            policy,
            flags,
            s.nice().unwrap_or(0),
            s.priority().unwrap_or(0).max(0) as u32,
            s.runtime().unwrap_or(0),
            s.deadline().unwrap_or(0),
            s.period().unwrap_or(0),
        )
        .map_err(step("process.scheduler: sched_setattr"))?;
    }
    if let Some(io) = process.io_priority() {
        let class = match io.class() {
            IOPriorityClass::IoprioClassRt => 1,
            IOPriorityClass::IoprioClassBe => 2,
            IOPriorityClass::IoprioClassIdle => 3,
        };
        sys::ioprio_set(class, io.priority() as u32)
            .map_err(step("process.ioPriority: ioprio_set"))?;
    }
    Ok(())
}

/// process.cwd, resolved inside the container's root without magic links:
/// `/proc/self/fd/N` naming one of rrun's (or the caller's) fds can never
/// make the program start in a host directory (runc CVE-2024-21626).
/// Resolved before the seccomp filter is loaded (openat2 is newer than
/// many profiles), entered by [`enter_cwd`] after it.
fn resolve_cwd(cwd: &Path) -> StepResult<OwnedFd> {
    let root = crate::rootfs::resolve::Root::open(Path::new("/")).map_err(step("opening /"))?;
    root.open_in(
        cwd,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY,
    )
    .map_err(|e| format!("chdir to cwd {cwd:?}: {e}"))
}

/// fchdir into the resolved cwd as the target user, so that the
/// directory's own permissions apply (fchdir checks search permission),
/// then closes the fd: only plain fchdir and close after the filter.
fn enter_cwd(cwd: &Path, fd: OwnedFd) -> StepResult<()> {
    nix::unistd::fchdir(&fd).map_err(|e| format!("chdir to cwd {cwd:?}: {e}"))
}

/// The RLIMIT_* number of an OCI rlimit type.
fn rlimit_number(typ: PosixRlimitType) -> u32 {
    use PosixRlimitType as T;
    match typ {
        T::RlimitCpu => libc::RLIMIT_CPU,
        T::RlimitFsize => libc::RLIMIT_FSIZE,
        T::RlimitData => libc::RLIMIT_DATA,
        T::RlimitStack => libc::RLIMIT_STACK,
        T::RlimitCore => libc::RLIMIT_CORE,
        T::RlimitRss => libc::RLIMIT_RSS,
        T::RlimitNproc => libc::RLIMIT_NPROC,
        T::RlimitNofile => libc::RLIMIT_NOFILE,
        T::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        T::RlimitAs => libc::RLIMIT_AS,
        T::RlimitLocks => libc::RLIMIT_LOCKS,
        T::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        T::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        T::RlimitNice => libc::RLIMIT_NICE,
        T::RlimitRtprio => libc::RLIMIT_RTPRIO,
        T::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

fn set_rlimit(typ: PosixRlimitType, soft: u64, hard: u64) -> StepResult<()> {
    sys::setrlimit(rlimit_number(typ), soft, hard)
        .map_err(|e| format!("setrlimit {typ:?} soft={soft} hard={hard}: {e}"))
}

/// The launch plan for the built-in init: what to exec, with which argv,
/// env and cwd (the credentials are the init's own, see setup_builtin_init).
fn build_launch(plan: &InitPlan, process: &Process) -> StepResult<crate::init::plan::Launch> {
    use crate::init::plan::Launch;
    let env = build_env(process, plan.listen_fds);
    let args = process.args().clone().unwrap_or_default();
    let path = find_executable(&args[0], &env, process.cwd())?;
    Ok(Launch {
        path: path.to_string_lossy().into_owned(),
        args,
        env,
        cwd: process.cwd().to_string_lossy().into_owned(),
        terminal: process.terminal().unwrap_or(false),
        preserve_fds: plan.preserve_fds,
        annotations: plan
            .spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
    })
}

/// The plan in a sealed memfd the init can read but nobody can change,
/// at an fd number above the ones passed on to the program.
fn plan_fd(launch: &crate::init::plan::Launch, min_fd: u32) -> StepResult<OwnedFd> {
    use nix::sys::memfd::{MFdFlags, memfd_create};
    let json = serde_json::to_vec(launch).map_err(step("serialising the launch plan"))?;
    let fd = memfd_create(
        "rrun-init-plan",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .map_err(step("memfd_create"))?;
    let mut f = std::fs::File::from(fd);
    std::io::Write::write_all(&mut f, &json).map_err(step("writing the launch plan"))?;
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0)).map_err(step("seek"))?;
    let fd = OwnedFd::from(f);
    sys::seal(&fd).map_err(step("sealing the launch plan"))?;
    // Not CLOEXEC: it must survive the exec of the init.
    sys::dup_above(&fd, min_fd as i32).map_err(step("placing the launch plan fd"))
}

/// process.env, plus LISTEN_FDS/LISTEN_PID for socket activation, and a
/// default PATH when the config has none (as runc does).
fn build_env(process: &Process, listen_fds: u32) -> Vec<String> {
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    if listen_fds > 0 {
        env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
        env.push(format!("LISTEN_FDS={listen_fds}"));
        env.push("LISTEN_PID=1".into());
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_dir(process.user().uid())));
    }
    env
}

/// HOME for a uid from the container's /etc/passwd, "/" when absent, as
/// runc sets it when the config does not.
fn home_dir(uid: u32) -> String {
    read_in_container("/etc/passwd", 4 << 20)
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 6 && f[2].parse() == Ok(uid) && !f[5].is_empty())
                    .then(|| f[5].to_string())
            })
        })
        .unwrap_or_else(|| "/".into())
}

/// A small regular file of the container's, read by rrun's own process in
/// it (create's init, exec's child) while the host command waits on it:
/// the rootfs image or the running container chose what is there. Only a
/// regular file, opened O_NONBLOCK inside the root without magic links (a
/// FIFO, device or `/proc/self/fd/N` link never blocks rrun or reaches
/// one of its fds), at most `max` bytes; anything else reads as absent.
fn read_in_container(path: &str, max: u64) -> Option<String> {
    use nix::fcntl::OFlag;
    use nix::sys::stat::{SFlag, fstat};
    use std::io::Read;
    let root = crate::rootfs::resolve::Root::open(Path::new("/")).ok()?;
    // O_PATH first: a FIFO or device is never opened for reading.
    let handle = root.open_in(Path::new(path), OFlag::O_PATH).ok()?;
    let st = fstat(&handle).ok()?;
    let regular = |st: &nix::sys::stat::FileStat| {
        SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG
            && st.st_size >= 0
            && st.st_size as u64 <= max
    };
    if !regular(&st) {
        return None;
    }
    // Reopened through /proc/self/fd, which in a running container is the
    // container's /proc: the result must be the very inode checked above.
    let fd = nix::fcntl::open(
        &crate::rootfs::resolve::fd_path(&std::os::fd::AsRawFd::as_raw_fd(&handle)),
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ok()?;
    let again = fstat(&fd).ok()?;
    if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino) || !regular(&again) {
        return None;
    }
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(max)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Resolves args[0] inside the container as execvp would, so a missing
/// program fails `create` with a clear message instead of a dead `start`.
fn find_executable(arg0: &str, env: &[String], cwd: &Path) -> StepResult<CString> {
    use std::os::unix::fs::PermissionsExt;
    let is_exec = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if arg0.contains('/') {
        let p = if Path::new(arg0).is_absolute() {
            PathBuf::from(arg0)
        } else {
            cwd.join(arg0)
        };
        // runc's (Go's) wording: engines map "no such file or directory"
        // to exit 127 and "permission denied" to 126.
        match std::fs::metadata(&p) {
            Err(e) => {
                let e = e.raw_os_error().map_or(e.to_string(), |n| {
                    nix::errno::Errno::from_raw(n).desc().to_lowercase()
                });
                return Err(format!("exec: {arg0:?}: stat {arg0}: {e}"));
            }
            Ok(_) if !is_exec(&p) => return Err(format!("exec: {arg0:?}: permission denied")),
            Ok(_) => {}
        }
        return cstring(arg0, "process.args[0]");
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let p = Path::new(dir).join(arg0);
        let p = if p.is_absolute() { p } else { cwd.join(p) };
        if is_exec(&p) {
            return cstring(&p.to_string_lossy(), "process.args[0]");
        }
    }
    Err(format!(
        "exec: {arg0:?}: executable file not found in $PATH"
    ))
}
