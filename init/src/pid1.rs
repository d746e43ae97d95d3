//! The rrun-init main loop: PID 1 of a container that asked for it. It
//! runs with the program's credentials, user, capabilities, seccomp
//! filter and labels (rrun applied them before exec'ing it), never more.
//! It starts the program (a fork that inherits them), reaps every
//! zombie, forwards signals, restarts per policy with backoff and a start
//! limit, runs health checks, and publishes its status. It never busy-polls:
//! it sleeps in sigtimedwait(2) with the next timer as the timeout.
//! Every error is logged to stderr and survived; PID 1 exits only when the
//! program's life is over.

use alloc::format;
use alloc::string::{String, ToString};

use core::time::Duration;

use crate::log;
use crate::plan::{LastExit, Launch, STATUS_DIR, STATUS_FILE, Status};
use crate::policy::{self, Backoff, Config, Exit};
use crate::sys::{self, Errno, Pid, SigSet, Wait};

const SIGTERM: i32 = 15;
const SIGINT: i32 = 2;
const SIGKILL: i32 = 9;
const SIGCHLD: i32 = 17;

/// A point on the monotonic clock.
type Instant = Duration;

fn now() -> Instant {
    sys::monotonic()
}

/// Makes the calling (forked) process the program's and execs `args`.
/// Credentials, limits, no_new_privs, seccomp and LSM labels are not
/// touched: the init already has exactly the program's (rrun applied them
/// before exec'ing it), and a fork inherits them. Only what the init must
/// not share with the program is reset. Returns the failing step and its
/// errno.
fn exec_with(plan: &Launch, args: &[String], path: &str) -> (String, Errno) {
    if let Err(e) = prepare(plan) {
        return e;
    }
    (format!("exec {path}"), sys::execve(path, args, &plan.env))
}

/// Everything exec_with does before execve.
fn prepare(plan: &Launch) -> Result<(), (String, Errno)> {
    fn at(what: &'static str) -> impl Fn(Errno) -> (String, Errno) {
        move |e| (what.to_string(), e)
    }
    sys::set_sigmask(SigSet::empty()).map_err(at("sigprocmask"))?;
    sys::reset_signal_dispositions();
    sys::setsid().map_err(at("setsid"))?;
    if plan.terminal {
        // The pty is stdio; each run of the program makes it its own
        // controlling terminal (the init never holds it).
        sys::set_controlling_tty().map_err(at("TIOCSCTTY"))?;
    }
    // By path, as the program's user: a restart starts in the cwd as it is
    // now, not in a directory the last run may have removed.
    sys::chdir(&plan.cwd).map_err(|e| (format!("chdir {}", plan.cwd), e))?;
    sys::cloexec_from(3 + plan.preserve_fds).map_err(at("close_range"))?;
    Ok(())
}

/// Forks a child that runs `args` under the plan. Exec failures exit 127
/// (126 when found but not runnable), as a shell would report them.
fn spawn(plan: &Launch, args: &[String], path: &str, output: Option<&str>) -> Option<Pid> {
    match sys::fork() {
        Ok(None) => {
            if let Some(out) = output {
                // stdout and stderr to `out` (two opens: no dup needed, so
                // a seccomp profile need not allow it); a failed open
                // leaves the fd closed rather than on the program's log.
                const APPEND: u32 =
                    linux_raw_sys::general::O_WRONLY | linux_raw_sys::general::O_APPEND;
                sys::close(1);
                let _ = sys::open(
                    out,
                    APPEND | linux_raw_sys::general::O_CREAT | linux_raw_sys::general::O_TRUNC,
                    0o600,
                    false,
                );
                sys::close(2);
                let _ = sys::open(out, APPEND, 0, false);
            }
            let (what, e) = exec_with(plan, args, path);
            log!("{what}: {e}");
            sys::exit(if e == Errno::EACCES { 126 } else { 127 })
        }
        Ok(Some(child)) => Some(child),
        Err(e) => {
            log!("fork: {e}");
            None
        }
    }
}

/// The file a health check writes its output to.
fn health_output() -> String {
    format!("{STATUS_DIR}/{}", crate::plan::HEALTH_OUTPUT)
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
        .find(|p| sys::is_file(p))
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
        let path = format!("{STATUS_DIR}/{STATUS_FILE}");
        let tmp = format!("{path}.tmp");
        if let Err(e) = sys::write_file_atomic(&path, &tmp, &json) {
            log!("publishing the status: {e}");
        }
    }

    fn start(&mut self) {
        self.child = spawn(&self.plan, &self.plan.args, &self.plan.path, None);
        self.started = now();
        self.started_ms = sys::now_ms();
        self.backoff.started(self.started_ms);
        self.status.pid = self.child;
        self.status.starts.push(self.started_ms);
        if self.status.starts.len() > 64 {
            self.status.starts.remove(0);
        }
        self.unhealthy_kill = false;
        self.health_failures = 0;
        if let Some(h) = &self.cfg.health {
            self.status.health = "starting".into();
            self.health_at = Some(now() + h.interval);
        }
        self.publish();
    }

    /// Every process but us: TERM, a grace period, then KILL; all reaped.
    fn kill_leftovers(&mut self, grace: Duration) {
        if sys::kill_namespace(SIGTERM).is_err() {
            return; // nothing left
        }
        let deadline = now() + grace;
        while now() < deadline {
            match sys::wait_any(false) {
                Err(Errno::ECHILD) => return,
                Ok(Wait::None) => sys::sleep(Duration::from_millis(10)),
                _ => {}
            }
        }
        let _ = sys::kill_namespace(SIGKILL);
        while sys::wait_any(true).is_ok() {}
    }

    fn finish(&mut self, e: Exit) -> ! {
        self.status.pid = None;
        self.publish();
        self.kill_leftovers(Duration::from_millis(500).min(self.cfg.stop_timeout));
        sys::exit(e.status())
    }

    fn program_exited(&mut self, e: Exit) {
        self.child = None;
        self.status.pid = None;
        self.status.exits += 1;
        let last = match e {
            Exit::Code(c) => LastExit::Code(c),
            Exit::Signal(s) => LastExit::Signal(s),
        };
        self.status.exit_log.push(crate::plan::ExitRecord {
            time: sys::now_ms(),
            exit: last.clone(),
            unhealthy: self.unhealthy_kill,
        });
        if self.status.exit_log.len() > 64 {
            self.status.exit_log.remove(0);
        }
        self.status.last_exit = Some(last);
        self.health_at = None;
        if let Some((p, _)) = self.health_check.take() {
            let _ = sys::kill(p, SIGKILL);
        }
        if self.stopping.is_some()
            || !self
                .cfg
                .should_restart(e, self.unhealthy_kill, self.status.restarts)
        {
            self.finish(e);
        }
        match self.backoff.next(&self.cfg, self.started_ms, sys::now_ms()) {
            None => {
                log!("start limit reached: giving up");
                self.status.gave_up = true;
                self.finish(e);
            }
            Some(delay) => {
                // systemd's KillMode=control-group: nothing of the old run
                // survives into the new one.
                self.kill_leftovers(self.cfg.stop_timeout.min(Duration::from_secs(2)));
                self.restart_at = Some(now() + delay);
                self.publish();
            }
        }
    }

    /// Keeps the check's result and the start of its output in the status.
    fn health_record(&mut self, exit: Exit) {
        let path = health_output();
        let flags = linux_raw_sys::general::O_RDONLY | linux_raw_sys::general::O_NONBLOCK;
        let output = match sys::open(&path, flags, 0, true) {
            Ok(fd) => {
                let data = sys::read_some(fd, crate::plan::HEALTH_OUTPUT_MAX);
                sys::close(fd);
                String::from_utf8_lossy(&data).into_owned()
            }
            Err(_) => String::new(),
        };
        self.status.health_log.push(crate::plan::HealthRecord {
            time: sys::now_ms(),
            exit: match exit {
                Exit::Code(c) => LastExit::Code(c),
                Exit::Signal(s) => LastExit::Signal(s),
            },
            output,
        });
        if self.status.health_log.len() > crate::plan::HEALTH_LOG_MAX {
            self.status.health_log.remove(0);
        }
        self.publish();
    }

    fn health_result(&mut self, ok: bool) {
        let Some(h) = self.cfg.health.clone() else {
            return;
        };
        let before = self.status.health.clone();
        if ok {
            self.health_failures = 0;
            self.status.health = "healthy".into();
        } else if now().saturating_sub(self.started) >= h.start_period {
            self.health_failures += 1;
            if self.health_failures >= h.retries {
                self.status.health = "unhealthy".into();
                if let Some(c) = self.child
                    && self
                        .cfg
                        .should_restart(Exit::Signal(SIGKILL), true, self.status.restarts)
                {
                    self.unhealthy_kill = true;
                    let _ = sys::kill(c, SIGKILL);
                }
            }
        }
        if before != self.status.health {
            self.publish();
        }
        if self.child.is_some() {
            self.health_at = Some(now() + h.interval);
        }
    }

    fn forward(&mut self, sig: i32) {
        let Some(c) = self.child else {
            if sig == SIGTERM || sig == SIGINT {
                let e = match &self.status.last_exit {
                    Some(LastExit::Code(c)) => Exit::Code(*c),
                    Some(LastExit::Signal(s)) => Exit::Signal(*s),
                    None => Exit::Code(0),
                };
                self.finish(e);
            }
            return;
        };
        let target = if self.cfg.signal_group { -c } else { c };
        let _ = sys::kill(target, sig);
        if sig == SIGTERM && self.stopping.is_none() {
            self.stopping = Some(now() + self.cfg.stop_timeout);
        }
    }

    fn reap(&mut self) {
        loop {
            let (pid, exit) = match sys::wait_any(false) {
                Ok(Wait::Exited(p, c)) => (p, Exit::Code(c)),
                Ok(Wait::Signaled(p, s)) => (p, Exit::Signal(s)),
                Ok(Wait::None) | Err(_) => return,
                Ok(Wait::Other) => continue,
            };
            if Some(pid) == self.child {
                self.program_exited(exit);
            } else if let Some((hp, _)) = self.health_check
                && hp == pid
            {
                self.health_check = None;
                self.health_record(exit);
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
        let now = now();
        if self.restart_at.is_some_and(|t| t <= now) {
            self.restart_at = None;
            self.status.restarts += 1;
            self.start();
        }
        if self.stopping.is_some_and(|t| t <= now) {
            let _ = sys::kill_namespace(SIGKILL);
            self.stopping = Some(now + Duration::from_secs(3600));
        }
        if let Some((p, deadline)) = self.health_check
            && deadline <= now
        {
            let _ = sys::kill(p, SIGKILL);
        }
        if self.health_at.is_some_and(|t| t <= now) && self.health_check.is_none() {
            self.health_at = None;
            if let Some(h) = self.cfg.health.clone() {
                let path = resolve(&self.plan, &h.cmd[0]);
                match spawn(&self.plan, &h.cmd, &path, Some(&health_output())) {
                    Some(p) => self.health_check = Some((p, now + h.timeout)),
                    None => self.health_result(false),
                }
            }
        }
    }
}

pub fn main(plan: Launch) -> ! {
    // PID 1 holds nothing the program lacks (rrun exec'd it with the
    // program's credentials); non-dumpable all the same, so that without
    // CAP_SYS_PTRACE nothing in the container attaches to it.
    if let Err(e) = sys::set_non_dumpable() {
        log!("PR_SET_DUMPABLE: {e}");
    }
    let cfg = match policy::parse(&plan.annotations) {
        Ok(c) => c,
        Err(e) => {
            // rrun validated these at create; a failure here is a bug.
            log!("{e}");
            Config::default()
        }
    };
    // Every signal is taken synchronously, in the loop below: no handler
    // ever runs, so there is no async-signal-safety to get wrong.
    let mask = SigSet::all_catchable();
    if let Err(e) = sys::set_sigmask(mask) {
        log!("blocking signals: {e}");
        sys::exit(1)
    }
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
        started: now(),
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
        // Sleeps until a signal arrives or the next timer is due: idle,
        // with no timer, it costs no CPU at all.
        let timeout = init.next_deadline().map(|t| t.saturating_sub(now()));
        match sys::wait_signal(mask, timeout) {
            Ok(Some(SIGCHLD)) => init.reap(),
            Ok(Some(sig)) => init.forward(sig),
            Ok(None) | Err(Errno::EINTR) => {}
            Err(e) => log!("sigtimedwait: {e}"),
        }
        init.on_timers();
    }
}
