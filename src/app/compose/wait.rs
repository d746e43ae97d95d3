//! Waiting for an app to reach a condition: running, healthy (its init's
//! health check passed), exited (with status 0, for a one-shot). Used by
//! `compose up` to gate dependent services, by `rrun app wait` in scripts,
//! and by readiness under systemd. Reads only: the app's state, its
//! monitor's liveness and the status its init reports; never changes an
//! app.

use std::time::{Duration, Instant};

use clap::Args;

use crate::app::lifecycle::monitor_alive;
use crate::app::paths::Paths;
use crate::app::runtime;
use crate::app::state::{App, Phase, StateError};
use crate::init::plan::{LastExit, Status};

/// How often the app's state is looked at.
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    /// The container runs.
    Running,
    /// The init reports the health check passed.
    Healthy,
    /// The app ended (any status).
    Exited,
    /// Healthy if the app has a health check, else running.
    Ready,
    /// The app ended with status 0.
    Completed,
}

impl Cond {
    pub fn as_str(self) -> &'static str {
        match self {
            Cond::Running => "running",
            Cond::Healthy => "healthy",
            Cond::Exited => "exited",
            Cond::Ready => "ready",
            Cond::Completed => "completed successfully",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reached {
    Running,
    Healthy,
    /// Its exit status.
    Exited(i32),
}

#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("{name}: not {} after {:.1?}", cond.as_str(), waited)]
    Timeout {
        name: String,
        cond: Cond,
        waited: Duration,
    },
    /// The condition can never be met (the app is gone, ended, unhealthy).
    #[error("{name} {why}")]
    Never { name: String, why: String },
    #[error(transparent)]
    State(#[from] StateError),
}

/// What the app's container's init reports, while it runs.
pub fn init_status(paths: &Paths, name: &str) -> Option<Status> {
    let st = runtime::state(paths, name).ok()??;
    if st.pid <= 0 {
        return None;
    }
    let dir = crate::init::status::open_dir(st.pid).ok()?;
    crate::init::status::read(&dir).ok()
}

/// The last health check's result as one short line: "exit 1: <first
/// line of its output>".
fn last_check(s: &Status) -> Option<String> {
    let h = s.health_log.last()?;
    let exit = match h.exit {
        LastExit::Code(c) => format!("exit {c}"),
        LastExit::Signal(n) => format!("signal {n}"),
    };
    let first = h.output.lines().map(str::trim).find(|l| !l.is_empty());
    Some(match first {
        Some(l) => format!("{exit}: {}", l.chars().take(200).collect::<String>()),
        None => exit,
    })
}

/// Waits until app `name` reaches `cond`, or it never can, or `deadline`.
pub fn wait_for(
    paths: &Paths,
    name: &str,
    cond: Cond,
    deadline: Option<Instant>,
) -> Result<Reached, WaitError> {
    let start = Instant::now();
    let app = App::at(paths, name);
    let never = |why: String| WaitError::Never {
        name: name.to_string(),
        why,
    };
    let spec = app.load_spec()?;
    let cond = match cond {
        Cond::Ready if spec.health.is_some() => Cond::Healthy,
        Cond::Ready => Cond::Running,
        c => c,
    };
    if cond == Cond::Healthy && spec.health.is_none() {
        return Err(never("has no health check".into()));
    }
    // The newest health check seen: the init's status goes with its
    // container, so an app killed for being unhealthy is explained by what
    // was read before.
    let mut check: Option<String> = None;
    loop {
        let alive = monitor_alive(paths, name).is_some();
        let st = app.load_state()?;
        let status = if alive {
            init_status(paths, name)
        } else {
            None
        };
        if let Some(c) = status.as_ref().and_then(last_check) {
            check = Some(c);
        }
        let running = alive && st.phase == Phase::Running;
        let health = status.as_ref().map(|s| s.health.as_str());
        let why_check = || {
            check
                .as_ref()
                .map(|c| format!(" (last check: {c})"))
                .unwrap_or_default()
        };
        if !alive {
            let (status, reason) = st
                .exit
                .as_ref()
                .map(|e| (e.status, e.reason.clone()))
                .unwrap_or((0, "never started".into()));
            match cond {
                Cond::Exited => return Ok(Reached::Exited(status)),
                Cond::Completed if status == 0 && st.exit.is_some() => {
                    return Ok(Reached::Exited(0));
                }
                Cond::Completed => {
                    return Err(never(format!(
                        "did not complete successfully: {reason} (status {status})"
                    )));
                }
                Cond::Healthy if reason == "unhealthy" => {
                    return Err(never(format!("is unhealthy{}", why_check())));
                }
                _ => {
                    return Err(never(format!(
                        "is not running ({reason}){}",
                        if cond == Cond::Healthy {
                            why_check()
                        } else {
                            String::new()
                        }
                    )));
                }
            }
        }
        match cond {
            Cond::Running if running => return Ok(Reached::Running),
            Cond::Healthy if running && health == Some("healthy") => return Ok(Reached::Healthy),
            Cond::Healthy if health == Some("unhealthy") => {
                return Err(never(format!("is unhealthy{}", why_check())));
            }
            _ => {}
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(WaitError::Timeout {
                name: name.to_string(),
                cond,
                waited: start.elapsed(),
            });
        }
        std::thread::sleep(POLL);
    }
}

/// `rrun app wait`.
#[derive(Args, Debug)]
pub struct WaitArgs {
    /// healthy, running or exited [default: healthy if the app has a
    /// health check, else running]
    #[arg(long = "for", value_name = "CONDITION")]
    pub cond: Option<String>,
    /// Give up after this long (e.g. 30s, 2m): exit status 124
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// Exit 0 when every app reached the condition; 1 (an error) when one
/// never can; 124 on timeout, as timeout(1) does.
pub fn wait_cmd(paths: &Paths, a: &WaitArgs) -> anyhow::Result<i32> {
    let cond = match a.cond.as_deref() {
        None => Cond::Ready,
        Some("healthy") => Cond::Healthy,
        Some("running") => Cond::Running,
        Some("exited") => Cond::Exited,
        Some(c) => anyhow::bail!("--for {c:?}: use healthy, running or exited"),
    };
    let deadline = match &a.timeout {
        None => None,
        Some(t) => Some(
            Instant::now()
                + crate::init::policy::parse_duration(t)
                    .map_err(|e| anyhow::anyhow!("--timeout: {e}"))?,
        ),
    };
    for n in &a.names {
        crate::app::settings::check_name(n)?;
        match wait_for(paths, n, cond, deadline) {
            Ok(_) => {}
            Err(e @ WaitError::Timeout { .. }) => {
                eprintln!("rrun: {e}");
                return Ok(124);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(0)
}
