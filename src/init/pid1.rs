//! The rrun-init main loop: PID 1 of a container that asked for it. It
//! starts the program (applying the launch plan in the child), reaps every
//! zombie, forwards signals, restarts per policy with backoff and a start
//! limit, runs health checks, and publishes its status. It never busy-polls:
//! it sleeps in poll(2) on a signalfd with the next timer as the timeout.
//! Every error is logged to stderr and survived; PID 1 exits only when the
//! program's life is over.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::fd::AsFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Gid, Pid, Uid};

use crate::plan::{LastExit, Launch, STATUS_PATH, Status};
use crate::policy::{self, Backoff, Config, Exit};
use crate::sys;

fn log(msg: &str) {
    eprintln!("rrun-init: {msg}");
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Applies the plan to the calling (forked) process and execs `args`.
/// Mirrors rrun's own order: rlimits and the bounding set while
/// privileged, uid change with keepcaps, cwd, the other capability sets,
/// umask, no_new_privs, seccomp, execve.
fn exec_with(plan: &Launch, args: &[String], path: &str) -> Result<(), String> {
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    sys::reset_signal_dispositions();
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    if plan.terminal {
        // The pty is stdio; each run of the program makes it its own
        // controlling terminal (the init never holds it).
        sys::set_controlling_tty(&std::io::stdin()).map_err(|e| format!("TIOCSCTTY: {e}"))?;
    }
    for (res, soft, hard) in &plan.rlimits {
        let r = sys::setrlimit(*res, *soft, *hard);
        r.map_err(|e| format!("setrlimit {res}: {e}"))?;
    }
    let all = caps::all();
    let set_of = |mask: u64| -> caps::CapsHashSet {
        all.iter()
            .copied()
            .filter(|c| mask & c.bitmask() != 0)
            .collect()
    };
    for c in caps::read(None, caps::CapSet::Bounding).unwrap_or_default() {
        if plan.caps.bounding & c.bitmask() == 0 {
            caps::drop(None, caps::CapSet::Bounding, c)
                .map_err(|e| format!("bounding set: {e}"))?;
        }
    }
    let mut early_seccomp = false;
    if !plan.no_new_privs && !plan.seccomp.is_empty() {
        load_seccomp(plan)?;
        early_seccomp = true;
    }
    sys::set_keep_caps(true).map_err(|e| format!("keepcaps: {e}"))?;
    if let Some(groups) = &plan.groups {
        let g: Vec<Gid> = groups.iter().map(|g| Gid::from_raw(*g)).collect();
        nix::unistd::setgroups(&g).map_err(|e| format!("setgroups: {e}"))?;
    }
    let gid = Gid::from_raw(plan.gid);
    let uid = Uid::from_raw(plan.uid);
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| format!("setresgid: {e}"))?;
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| format!("setresuid: {e}"))?;
    sys::set_keep_caps(false).map_err(|e| format!("keepcaps: {e}"))?;
    nix::unistd::chdir(plan.cwd.as_str()).map_err(|e| format!("chdir {}: {e}", plan.cwd))?;
    let set = |which, mask| {
        caps::set(None, which, &set_of(mask)).map_err(|e| format!("capabilities: {e}"))
    };
    set(caps::CapSet::Inheritable, plan.caps.inheritable)?;
    set(caps::CapSet::Effective, plan.caps.effective)?;
    set(caps::CapSet::Permitted, plan.caps.permitted)?;
    let _ = caps::clear(None, caps::CapSet::Ambient);
    for c in set_of(plan.caps.ambient & plan.caps.inheritable & plan.caps.permitted) {
        caps::raise(None, caps::CapSet::Ambient, c).map_err(|e| format!("ambient {c}: {e}"))?;
    }
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        plan.umask as libc::mode_t,
    ));
    if plan.no_new_privs {
        sys::set_no_new_privs().map_err(|e| format!("no_new_privs: {e}"))?;
    }
    sys::cloexec_from(3 + plan.preserve_fds).map_err(|e| format!("close_range: {e}"))?;
    if !early_seccomp && !plan.seccomp.is_empty() {
        load_seccomp(plan)?;
    }
    let cpath = CString::new(path).map_err(|_| "NUL in path".to_string())?;
    let cargs: Vec<CString> = args
        .iter()
        .filter_map(|a| CString::new(a.as_str()).ok())
        .collect();
    let cenv: Vec<CString> = plan
        .env
        .iter()
        .filter_map(|a| CString::new(a.as_str()).ok())
        .collect();
    let e = nix::unistd::execve(&cpath, &cargs, &cenv).unwrap_err();
    Err(format!("exec {path}: {e}"))
}

fn load_seccomp(plan: &Launch) -> Result<(), String> {
    for prog in &plan.seccomp {
        let p: Vec<seccompiler::sock_filter> = prog
            .iter()
            .map(|(code, jt, jf, k)| seccompiler::sock_filter {
                code: *code,
                jt: *jt,
                jf: *jf,
                k: *k,
            })
            .collect();
        sys::seccomp_load(&p, plan.seccomp_flags).map_err(|e| format!("seccomp: {e}"))?;
    }
    Ok(())
}

/// Forks a child that runs `args` under the plan. Exec failures exit 127
/// (126 when found but not runnable), as a shell would report them.
fn spawn(plan: &Launch, args: &[String], path: &str) -> Option<Pid> {
    match sys::fork_process() {
        Ok(sys::CloneResult::Child) => {
            let e = exec_with(plan, args, path).unwrap_err();
            log(&e);
            sys::exit_now(if e.contains("EACCES") { 126 } else { 127 })
        }
        Ok(sys::CloneResult::Parent { child }) => Some(child),
        Err(e) => {
            log(&format!("fork: {e}"));
            None
        }
    }
}

/// Resolves a health-check command's argv[0] with the program's PATH.
fn resolve(plan: &Launch, arg0: &str) -> String {
    if arg0.contains('/') {
        return arg0.to_string();
    }
    let path = plan
        .env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':')
        .map(|d| format!("{d}/{arg0}"))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file()))
        .unwrap_or_else(|| arg0.to_string())
}

struct Init {
    plan: Launch,
    cfg: Config,
    status: Status,
    backoff: Backoff,
    child: Option<Pid>,
    started: Instant,
    started_ms: u64,
    restart_at: Option<Instant>,
    stopping: Option<Instant>,
    unhealthy_kill: bool,
    health_at: Option<Instant>,
    health_check: Option<(Pid, Instant)>,
    health_failures: u32,
}

impl Init {
    fn publish(&self) {
        let Ok(json) = serde_json::to_vec(&self.status) else {
            return;
        };
        let tmp = format!("{STATUS_PATH}.tmp");
        if std::fs::write(&tmp, json)
            .and_then(|_| std::fs::rename(&tmp, STATUS_PATH))
            .is_err()
        {
            let _ = std::fs::remove_file(&tmp);
        }
    }

    fn start(&mut self) {
        self.child = spawn(&self.plan, &self.plan.args, &self.plan.path);
        self.started = Instant::now();
        self.started_ms = now_ms();
        self.backoff.started(self.started_ms);
        self.status.pid = self.child.map(|p| p.as_raw());
        self.status.starts.push(self.started_ms);
        if self.status.starts.len() > 64 {
            self.status.starts.remove(0);
        }
        self.unhealthy_kill = false;
        self.health_failures = 0;
        if let Some(h) = &self.cfg.health {
            self.status.health = "starting".into();
            self.health_at = Some(Instant::now() + h.interval);
        }
        self.publish();
    }

    /// Every process but us: TERM, a grace period, then KILL; all reaped.
    fn kill_leftovers(&mut self, grace: Duration) {
        if kill(Pid::from_raw(-1), Signal::SIGTERM).is_err() {
            return; // nothing left
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Err(Errno::ECHILD) => return,
                Ok(WaitStatus::StillAlive) => std::thread::sleep(Duration::from_millis(10)),
                _ => {}
            }
        }
        let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
        while waitpid(None, None).is_ok() {}
    }

    fn finish(&mut self, e: Exit) -> ! {
        self.status.pid = None;
        self.publish();
        self.kill_leftovers(Duration::from_millis(500).min(self.cfg.stop_timeout));
        std::process::exit(e.status())
    }

    fn program_exited(&mut self, e: Exit) {
        self.child = None;
        self.status.pid = None;
        self.status.exits += 1;
        self.status.last_exit = Some(match e {
            Exit::Code(c) => LastExit::Code(c),
            Exit::Signal(s) => LastExit::Signal(s),
        });
        self.health_at = None;
        if let Some((p, _)) = self.health_check.take() {
            let _ = kill(p, Signal::SIGKILL);
        }
        if self.stopping.is_some()
            || !self
                .cfg
                .should_restart(e, self.unhealthy_kill, self.status.restarts)
        {
            self.finish(e);
        }
        match self.backoff.next(&self.cfg, self.started_ms, now_ms()) {
            None => {
                log("start limit reached: giving up");
                self.status.gave_up = true;
                self.finish(e);
            }
            Some(delay) => {
                // systemd's KillMode=control-group: nothing of the old run
                // survives into the new one.
                self.kill_leftovers(self.cfg.stop_timeout.min(Duration::from_secs(2)));
                self.restart_at = Some(Instant::now() + delay);
                self.publish();
            }
        }
    }

    fn health_result(&mut self, ok: bool) {
        let Some(h) = self.cfg.health.clone() else {
            return;
        };
        let before = self.status.health.clone();
        if ok {
            self.health_failures = 0;
            self.status.health = "healthy".into();
        } else if self.started.elapsed() >= h.start_period {
            self.health_failures += 1;
            if self.health_failures >= h.retries {
                self.status.health = "unhealthy".into();
                if let Some(c) = self.child
                    && self
                        .cfg
                        .should_restart(Exit::Signal(9), true, self.status.restarts)
                {
                    self.unhealthy_kill = true;
                    let _ = kill(c, Signal::SIGKILL);
                }
            }
        }
        if before != self.status.health {
            self.publish();
        }
        if self.child.is_some() {
            self.health_at = Some(Instant::now() + h.interval);
        }
    }

    fn forward(&mut self, sig: Signal) {
        let Some(c) = self.child else {
            if sig == Signal::SIGTERM || sig == Signal::SIGINT {
                let e = match &self.status.last_exit {
                    Some(LastExit::Code(c)) => Exit::Code(*c),
                    Some(LastExit::Signal(s)) => Exit::Signal(*s),
                    None => Exit::Code(0),
                };
                self.finish(e);
            }
            return;
        };
        let target = if self.cfg.signal_group {
            Pid::from_raw(-c.as_raw())
        } else {
            c
        };
        let _ = kill(target, sig);
        if sig == Signal::SIGTERM && self.stopping.is_none() {
            self.stopping = Some(Instant::now() + self.cfg.stop_timeout);
        }
    }

    fn reap(&mut self) {
        loop {
            let (pid, exit) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, c)) => (p, Exit::Code(c)),
                Ok(WaitStatus::Signaled(p, s, _)) => (p, Exit::Signal(s as i32)),
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => continue,
            };
            if Some(pid) == self.child {
                self.program_exited(exit);
            } else if let Some((hp, _)) = self.health_check
                && hp == pid
            {
                self.health_check = None;
                self.health_result(exit == Exit::Code(0));
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.restart_at,
            self.stopping,
            self.health_at,
            self.health_check.map(|(_, d)| d),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn on_timers(&mut self) {
        let now = Instant::now();
        if self.restart_at.is_some_and(|t| t <= now) {
            self.restart_at = None;
            self.status.restarts += 1;
            self.start();
        }
        if self.stopping.is_some_and(|t| t <= now) {
            let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
            self.stopping = Some(now + Duration::from_secs(3600));
        }
        if let Some((p, deadline)) = self.health_check
            && deadline <= now
        {
            let _ = kill(p, Signal::SIGKILL);
        }
        if self.health_at.is_some_and(|t| t <= now) && self.health_check.is_none() {
            self.health_at = None;
            if let Some(h) = self.cfg.health.clone() {
                let path = resolve(&self.plan, &h.cmd[0]);
                match spawn(&self.plan, &h.cmd, &path) {
                    Some(p) => self.health_check = Some((p, now + h.timeout)),
                    None => self.health_result(false),
                }
            }
        }
    }
}

/// PID 1 keeps only what the program is allowed plus what starting it
/// needs (changing ids and capabilities, rlimits, signalling, loading
/// seccomp without no_new_privs, reaching the program's cwd and files).
fn drop_init_capabilities(plan: &Launch) {
    use caps::Capability as C;
    let needed = [
        C::CAP_SETUID,
        C::CAP_SETGID,
        C::CAP_SETPCAP,
        C::CAP_KILL,
        C::CAP_SYS_RESOURCE,
        C::CAP_SYS_ADMIN,
        C::CAP_DAC_OVERRIDE,
        C::CAP_DAC_READ_SEARCH,
    ];
    let keep: caps::CapsHashSet = caps::all()
        .into_iter()
        .filter(|c| plan.caps.bounding & c.bitmask() != 0 || needed.contains(c))
        .collect();
    for c in caps::read(None, caps::CapSet::Bounding).unwrap_or_default() {
        if !keep.contains(&c) {
            let _ = caps::drop(None, caps::CapSet::Bounding, c);
        }
    }
    let _ = caps::set(None, caps::CapSet::Inheritable, &caps::CapsHashSet::new());
    let current = caps::read(None, caps::CapSet::Permitted).unwrap_or_default();
    let keep: caps::CapsHashSet = current.intersection(&keep).copied().collect();
    let _ = caps::set(None, caps::CapSet::Effective, &keep);
    let _ = caps::set(None, caps::CapSet::Permitted, &keep);
}

pub fn main(plan: Launch) -> ! {
    // Nothing in the container (even its root, without CAP_SYS_PTRACE) may
    // ptrace PID 1 or open its /proc/1/{fd,cwd,root,environ,mem}.
    if let Err(e) = sys::set_non_dumpable() {
        log(&format!("PR_SET_DUMPABLE: {e}"));
    }
    drop_init_capabilities(&plan);
    let ann: BTreeMap<String, String> = plan.annotations.clone();
    let cfg = match policy::parse(&ann) {
        Ok(c) => c,
        Err(e) => {
            // rrun validated these at create; a failure here is a bug.
            log(&e);
            Config::default()
        }
    };
    let mut mask = SigSet::all();
    mask.remove(Signal::SIGKILL);
    mask.remove(Signal::SIGSTOP);
    if let Err(e) = mask.thread_block() {
        log(&format!("blocking signals: {e}"));
    }
    let sfd = match SignalFd::new(&mask) {
        Ok(s) => s,
        Err(e) => {
            log(&format!("signalfd: {e}"));
            std::process::exit(1)
        }
    };
    let mut init = Init {
        backoff: Backoff::new(&cfg),
        status: Status {
            health: if cfg.health.is_some() {
                "starting".into()
            } else {
                "none".into()
            },
            ..Status::default()
        },
        cfg,
        plan,
        child: None,
        started: Instant::now(),
        started_ms: 0,
        restart_at: None,
        stopping: None,
        unhealthy_kill: false,
        health_at: None,
        health_check: None,
        health_failures: 0,
    };
    init.start();
    loop {
        let timeout = match init.next_deadline() {
            None => PollTimeout::NONE,
            Some(t) => {
                let ms = t
                    .saturating_duration_since(Instant::now())
                    .as_millis()
                    .min(i32::MAX as u128) as i32;
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = [PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(n) if n > 0 => {
                while let Ok(Some(info)) = sfd.read_signal() {
                    match Signal::try_from(info.ssi_signo as i32) {
                        Ok(Signal::SIGCHLD) => init.reap(),
                        Ok(sig) => init.forward(sig),
                        Err(_) => {}
                    }
                    if fds[0].revents().is_none() {
                        break;
                    }
                    let mut again = [PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
                    if !matches!(poll(&mut again, PollTimeout::ZERO), Ok(n) if n > 0) {
                        break;
                    }
                }
            }
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => log(&format!("poll: {e}")),
        }
        init.on_timers();
    }
}
