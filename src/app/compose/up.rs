//! `rrun app compose up`: a project's services as apps, each started once
//! the conditions of its dependencies hold.
//!
//! Before anything starts: the graph is checked (cycles, unknown names),
//! registry images are copied in, the project's networks made. Then one
//! thread per service: it waits until each dependency's thread has its app
//! up, then for the dependency's condition (running, healthy, exited 0),
//! then makes its own app: left alone when it runs with the same
//! config-hash, started when stopped, recreated when its definition
//! changed. Independent services so start in parallel, dependents in
//! waves. The threads only create and start apps (lifecycle), whose
//! monitors are spawned by a double fork that makes only raw system calls
//! between fork and exec (sys::detach): safe from a threaded process.
//!
//! A failure stops nothing that already runs (as compose does): the
//! services that wait for the failed one fail with it, and `up` names the
//! first cause: "service web: dependency db is unhealthy (last check: ...)".

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;

use super::project::{self, ProjectApp};
use super::wait::{Cond, WaitError, wait_for};
use super::{Condition, LABEL_HASH, LABEL_PROJECT, Project, Service, graph};
use crate::app::lifecycle::{self, monitor_alive};
use crate::app::paths::Paths;
use crate::app::settings::AppSpec;
use crate::app::state::App;
use crate::app::{network, notify};

#[derive(Args, Debug, Clone, Default)]
pub struct UpArgs {
    /// Start them and return (else: their output here, Ctrl-C stops them)
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Only the services named, not what they depend on
    #[arg(long = "no-deps")]
    pub no_deps: bool,
    /// Remove the apps of services no longer in the file
    #[arg(long = "remove-orphans")]
    pub remove_orphans: bool,
    /// Return once every service is running or healthy (implies -d)
    #[arg(long)]
    pub wait: bool,
    /// Under systemd: tell it READY=1 once the service is ready (implies
    /// --wait)
    #[arg(long = "sd-notify")]
    pub sd_notify: bool,
    /// Give up when not done after this many seconds
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    pub services: Vec<String>,
}

/// What up did to a service's app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// It ran with the same definition: left alone.
    Running,
    /// It existed, stopped: started.
    Started,
    /// New.
    Created,
    /// Its definition changed: removed and made again.
    Recreated,
    /// A dependency with `restart: true` was recreated.
    Restarted,
}

#[derive(Debug, Clone)]
enum Outcome {
    Pending,
    Done(Action),
    /// `root`: the failure is this service's own (not a dependency's).
    Failed {
        why: String,
        root: bool,
    },
}

/// Where the services' threads meet: each one's outcome.
struct Board {
    m: Mutex<BTreeMap<String, Outcome>>,
    cv: Condvar,
    /// Progress lines said already (several services wait for one).
    said: Mutex<BTreeSet<String>>,
}

impl Board {
    /// A progress line, once.
    fn progress_once(&self, what: &str, state: &str) {
        let line = format!("{what}  {state}");
        if self
            .said
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(line.clone())
        {
            eprintln!("{line}");
        }
    }

    fn set(&self, s: &str, o: Outcome) {
        let mut m = self.m.lock().unwrap_or_else(|e| e.into_inner());
        m.insert(s.to_string(), o);
        self.cv.notify_all();
    }

    /// Waits until `s` is done or failed.
    fn wait(&self, s: &str) -> Outcome {
        let mut m = self.m.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match m.get(s) {
                Some(Outcome::Pending) => {}
                Some(o) => return o.clone(),
                None => return Outcome::Done(Action::Running),
            }
            m = self.cv.wait(m).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// A progress line, as compose prints them ("proj-db  Healthy"), on
/// stderr: stdout is the services' output.
fn progress(what: &str, state: &str) {
    eprintln!("{what}  {state}");
}

pub fn up(paths: &Paths, p: &Project, a: &UpArgs) -> Result<i32> {
    let deps = project::deps_of(p);
    graph::check(&deps)?;
    let selected = graph::select(&deps, &a.services, a.no_deps)?;
    let order = graph::order(&deps, &selected);
    let foreground = !(a.detach || a.wait || a.sd_notify);
    // Blocked before any thread exists (threads inherit the mask): a
    // Ctrl-C while the services start stops them once they run.
    let signals = foreground.then(lifecycle::stop_signals);
    if a.sd_notify {
        notify::prepare()?;
    }
    let deadline = a.timeout.map(|t| Instant::now() + Duration::from_secs(t));
    let existing = project::apps_of(paths, &p.name)?;
    orphans(paths, p, &existing, a.remove_orphans)?;
    let mut specs = BTreeMap::new();
    for s in &order {
        let svc = &p.services[s];
        let mut spec = svc.app.clone();
        if let Some(r) = &svc.registry_ref {
            spec.source = pull(paths, r)?;
        }
        specs.insert(s.clone(), spec);
    }
    networks(paths, p, specs.values())?;
    for v in p.volumes.values().filter(|v| !v.external) {
        let existed = paths.volumes().join(&v.name).exists();
        project::make_volume(paths, &p.name, &v.name)
            .with_context(|| format!("volume {}", v.name))?;
        if existed && !project::owns_volume(paths, &p.name, &v.name) {
            // Another app's or project's data: used, as compose does, but
            // said (a file may name any volume).
            eprintln!(
                "rrun: warning: volume {} exists and was not made by project {}: used as it is (mark it external: true)",
                v.name, p.name
            );
        }
    }
    start_all(paths, p, &order, &selected, &specs, deadline)?;
    if a.wait || a.sd_notify {
        for s in &order {
            let cond = if p.services[s].one_shot {
                Cond::Completed
            } else {
                Cond::Ready
            };
            let name = &specs[s].name;
            match wait_for(paths, name, cond, deadline) {
                Ok(_) => {}
                // A job nobody waits for that did its work and ended (its
                // restart policy is "no"): done, not failed.
                Err(WaitError::Never { .. }) if ended_well(paths, name) => {}
                Err(e) => return Err(service_error(s, e)),
            }
        }
        if a.sd_notify {
            // One long-running service (a unit's): its monitor is the
            // unit's main process. Several, or a one-shot: READY alone.
            let main = match a.services.as_slice() {
                [one] if !p.services[one].one_shot => {
                    monitor_alive(paths, &specs[one].name).map(|m| m.pid)
                }
                _ => None,
            };
            notify::ready(main)?;
        }
        return Ok(0);
    }
    match signals {
        Some(mask) => foreground_logs(paths, &order, &specs, mask),
        None => Ok(0),
    }
}

/// The app ended with status 0 and is not to be restarted.
fn ended_well(paths: &Paths, name: &str) -> bool {
    let app = App::at(paths, name);
    let no_restart = app.load_spec().is_ok_and(|s| s.restart == "no");
    no_restart
        && monitor_alive(paths, name).is_none()
        && app
            .load_state()
            .is_ok_and(|st| st.exit.is_some_and(|e| e.status == 0))
}

fn service_error(s: &str, e: WaitError) -> anyhow::Error {
    match e {
        WaitError::Never { why, .. } => anyhow!("service {s} {why}"),
        e => anyhow!("service {s}: {e}"),
    }
}

/// Apps of the project whose service is no longer in the file.
fn orphans(paths: &Paths, p: &Project, existing: &[ProjectApp], remove: bool) -> Result<()> {
    let orphans: Vec<&ProjectApp> = existing
        .iter()
        .filter(|a| !p.services.contains_key(&a.service))
        .collect();
    if orphans.is_empty() {
        return Ok(());
    }
    if !remove {
        let names: Vec<&str> = orphans.iter().map(|o| o.spec.name.as_str()).collect();
        eprintln!(
            "rrun: warning: apps of services not in the file: {} (remove them with --remove-orphans)",
            names.join(", ")
        );
        return Ok(());
    }
    for o in orphans {
        lifecycle::rm(paths, std::slice::from_ref(&o.spec.name), true)?;
        progress(&o.spec.name, "Removed");
    }
    Ok(())
}

/// A registry image copied into a local OCI layout (once per reference)
/// with skopeo, when it is installed; the app's source then.
/// The cache directory's name of a registry reference: readable, and one
/// per reference (a digest of it): with the readable part alone,
/// `quay.io/org/app:1` and `quay.io/org_app:1` (another owner's) shared
/// one directory, and a file pulling one made every project using the
/// other run its image.
fn cache_name(r: &str) -> String {
    use sha2::{Digest, Sha256};
    let safe: String = r
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let digest: String = Sha256::digest(r.as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{safe}-{digest}")
}

fn pull(paths: &Paths, r: &str) -> Result<String> {
    let dir = paths.root.join("compose-images").join(cache_name(r));
    let source = format!("oci:{}:latest", dir.display());
    if dir.join("index.json").is_file() {
        return Ok(source);
    }
    let how = format!(
        "rrun cannot pull from registries; copy it with `skopeo copy docker://{r} oci:DIR:TAG` and use image: oci:DIR:TAG"
    );
    let skopeo = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("skopeo"))
        .find(|p| p.is_file());
    let Some(skopeo) = skopeo else {
        bail!("image {r}: {how}");
    };
    std::fs::create_dir_all(dir.parent().expect("a path under the root"))?;
    progress(r, "Pulling");
    // Into a directory of this process's, renamed into place once whole:
    // the units of two services with one image pull it at once at boot,
    // and neither may see (or remove) the other's half-written copy.
    let tmp = dir.with_file_name(format!("{}.pulling-{}", cache_name(r), std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let out = std::process::Command::new(skopeo)
        .arg("copy")
        .arg(format!("docker://{r}"))
        .arg(format!("oci:{}:latest", tmp.display()))
        .output()
        .with_context(|| format!("image {r}: running skopeo"))?;
    if out.status.success() {
        if std::fs::rename(&tmp, &dir).is_err() {
            // Another pull finished first: its copy is used.
            let _ = std::fs::remove_dir_all(&tmp);
        }
        if dir.join("index.json").is_file() {
            return Ok(source);
        }
        bail!(
            "image {r}: the copy skopeo made is not at {}",
            dir.display()
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    bail!("image {r}: skopeo copy failed: {line}")
}

/// The project's networks the apps use, made when missing; an external
/// one must exist.
fn networks<'a>(
    paths: &Paths,
    p: &Project,
    specs: impl Iterator<Item = &'a AppSpec>,
) -> Result<()> {
    let used: BTreeSet<&str> = specs.map(|s| s.network.as_str()).collect();
    for def in p
        .networks
        .values()
        .filter(|d| used.contains(d.name.as_str()))
    {
        if network::get(paths, &def.name).is_ok() {
            continue;
        }
        if def.external {
            bail!(
                "network {} is external but does not exist (rrun app network create {})",
                def.name,
                def.name
            );
        }
        match network::create(paths, &def.name, def.subnet.as_deref()) {
            Ok(_) => {}
            // Another `up` of the project made it meanwhile: the units of
            // independent services start at once at boot, each an `up`.
            Err(network::NetError::Exists(_)) => continue,
            Err(e) => return Err(e.into()),
        }
        project::mark_network(paths, &p.name, &def.name)
            .with_context(|| format!("network {}", def.name))?;
        progress(&format!("Network {}", def.name), "Created");
    }
    Ok(())
}

/// Starts the selected services, each in a thread of its own once its
/// dependencies' conditions hold; returns the first failure's cause.
fn start_all(
    paths: &Paths,
    p: &Project,
    order: &[String],
    selected: &BTreeSet<String>,
    specs: &BTreeMap<String, AppSpec>,
    deadline: Option<Instant>,
) -> Result<()> {
    let board = Arc::new(Board {
        m: Mutex::new(
            order
                .iter()
                .map(|s| (s.clone(), Outcome::Pending))
                .collect(),
        ),
        cv: Condvar::new(),
        said: Mutex::new(BTreeSet::new()),
    });
    std::thread::scope(|scope| {
        for s in order {
            let board = board.clone();
            scope.spawn(move || {
                let o = start_one(paths, p, &p.services[s], selected, specs, &board, deadline);
                board.set(s, o);
            });
        }
    });
    let m = board.m.lock().unwrap_or_else(|e| e.into_inner());
    let mut first_root = None;
    let mut first = None;
    for s in order {
        if let Some(Outcome::Failed { why, root }) = m.get(s) {
            if *root && first_root.is_none() {
                first_root = Some(why.clone());
            } else if first.is_none() {
                first = Some(why.clone());
            }
        }
    }
    match first_root.or(first) {
        Some(why) => Err(anyhow!("{why}")),
        None => Ok(()),
    }
}

/// One service: its dependencies' conditions, then its app.
fn start_one(
    paths: &Paths,
    p: &Project,
    svc: &Service,
    selected: &BTreeSet<String>,
    specs: &BTreeMap<String, AppSpec>,
    board: &Board,
    deadline: Option<Instant>,
) -> Outcome {
    let s = &svc.name;
    let mut restart_for = None;
    for d in svc
        .depends_on
        .iter()
        .filter(|d| selected.contains(&d.service))
    {
        let dep_app = &specs[&d.service].name;
        let action = match board.wait(&d.service) {
            Outcome::Failed { .. } if !d.required => {
                eprintln!(
                    "rrun: warning: service {s}: optional dependency {} failed",
                    d.service
                );
                continue;
            }
            Outcome::Failed { .. } => {
                return Outcome::Failed {
                    why: format!("service {s}: dependency {} did not start", d.service),
                    root: false,
                };
            }
            Outcome::Done(a) => a,
            Outcome::Pending => unreachable!("Board::wait returns no pending outcome"),
        };
        let cond = match d.condition {
            Condition::Started => None,
            Condition::Healthy => Some(Cond::Healthy),
            Condition::CompletedSuccessfully => Some(Cond::Completed),
        };
        if let Some(cond) = cond {
            match wait_for(paths, dep_app, cond, deadline) {
                Ok(_) => board.progress_once(
                    dep_app,
                    if cond == Cond::Healthy {
                        "Healthy"
                    } else {
                        "Exited"
                    },
                ),
                Err(_) if !d.required => {
                    eprintln!(
                        "rrun: warning: service {s}: optional dependency {} is not {}",
                        d.service,
                        cond.as_str()
                    );
                }
                Err(WaitError::Never { why, .. }) => {
                    return Outcome::Failed {
                        why: format!("service {s}: dependency {} {why}", d.service),
                        root: true,
                    };
                }
                Err(WaitError::Timeout { cond, waited, .. }) => {
                    return Outcome::Failed {
                        why: format!(
                            "service {s}: dependency {} not {} after {waited:.1?} (--timeout)",
                            d.service,
                            cond.as_str()
                        ),
                        root: true,
                    };
                }
                Err(e) => {
                    return Outcome::Failed {
                        why: format!("service {s}: dependency {}: {e}", d.service),
                        root: true,
                    };
                }
            }
        }
        if d.restart && matches!(action, Action::Recreated | Action::Restarted) {
            restart_for = Some(d.service.clone());
        }
    }
    match ensure(paths, p, svc, &specs[s], restart_for.is_some()) {
        Ok(a) => Outcome::Done(a),
        Err(e) => Outcome::Failed {
            why: format!("service {s}: {}", crate::log::error_line(&e)),
            root: true,
        },
    }
}

/// The service's app as the file says: see the module comment.
fn ensure(
    paths: &Paths,
    p: &Project,
    svc: &Service,
    spec: &AppSpec,
    restart: bool,
) -> Result<Action> {
    let name = &spec.name;
    let app = App::at(paths, name);
    if app.exists() {
        let old = app.load_spec()?;
        if old.labels.get(LABEL_PROJECT) != Some(&p.name) {
            bail!(
                "an app named {name} exists and is no app of project {}: remove it, or name the project otherwise (-p)",
                p.name
            );
        }
        if old.labels.get(LABEL_HASH) == Some(&svc.hash) {
            let running = monitor_alive(paths, name).is_some();
            if running && !restart {
                progress(name, "Running");
                return Ok(Action::Running);
            }
            if running {
                lifecycle::restart_one(paths, name, None, "restarted by compose")?;
            } else {
                lifecycle::start(paths, name)?;
            }
            let a = if running {
                Action::Restarted
            } else {
                Action::Started
            };
            progress(name, if running { "Restarted" } else { "Started" });
            return Ok(a);
        }
        progress(name, "Recreate");
        lifecycle::rm(paths, std::slice::from_ref(name), true)?;
        lifecycle::create(paths, spec)?;
        lifecycle::start(paths, name)?;
        progress(name, "Recreated");
        return Ok(Action::Recreated);
    }
    lifecycle::create(paths, spec)?;
    progress(name, "Created");
    lifecycle::start(paths, name)?;
    progress(name, "Started");
    Ok(Action::Created)
}

/// Lines of one service, prefixed "S | ", to stdout or stderr; whole
/// lines only, so services' lines never mix within one.
pub struct Prefixed {
    prefix: String,
    buf: Vec<u8>,
    stderr: bool,
}

impl Prefixed {
    pub fn new(prefix: String, stderr: bool) -> Prefixed {
        Prefixed {
            prefix,
            buf: Vec::new(),
            stderr,
        }
    }
}

impl Write for Prefixed {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        while let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=i).collect();
            let mut whole = self.prefix.as_bytes().to_vec();
            whole.extend_from_slice(&line);
            // One write of a whole line under the stream's lock.
            if self.stderr {
                std::io::stderr().lock().write_all(&whole)?;
            } else {
                std::io::stdout().lock().write_all(&whole)?;
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}

/// The prefixes of some services: "S | ", names padded to one width.
pub fn prefixes(services: &[String]) -> BTreeMap<String, String> {
    let w = services.iter().map(|s| s.len()).max().unwrap_or(0);
    services
        .iter()
        .map(|s| (s.clone(), format!("{s:<w$} | ")))
        .collect()
}

/// Follows the services' logs as `logs -f` does (`prefixes`), one thread
/// each, until every app has ended by itself.
pub fn follow(
    paths: &Paths,
    apps: &[(String, String)],
    opts: &crate::app::logs::LogOptions,
) -> std::thread::JoinHandle<()> {
    let names: Vec<String> = apps.iter().map(|(s, _)| s.clone()).collect();
    let pre = prefixes(&names);
    let apps = apps.to_vec();
    let paths = paths.clone();
    let opts = opts.clone();
    std::thread::spawn(move || {
        std::thread::scope(|scope| {
            for (s, name) in &apps {
                let prefix = pre[s].clone();
                let (paths, opts) = (&paths, &opts);
                scope.spawn(move || {
                    let dir = App::at(paths, name).logs();
                    let until = || monitor_alive(paths, name).is_none();
                    let mut out = Prefixed::new(prefix.clone(), false);
                    let mut err = Prefixed::new(prefix, true);
                    if let Err(e) = crate::app::logs::print(&dir, opts, &until, &mut out, &mut err)
                    {
                        eprintln!("rrun: logs of {name}: {e}");
                    }
                });
            }
        });
    })
}

/// A foreground `up`: the services' output here until they all end;
/// SIGINT or SIGTERM stops them (in reverse order) and exits 0, as
/// compose does; SIGHUP (the terminal gone) leaves them running.
fn foreground_logs(
    paths: &Paths,
    order: &[String],
    specs: &BTreeMap<String, AppSpec>,
    mask: nix::sys::signal::SigSet,
) -> Result<i32> {
    let apps: Vec<(String, String)> = order
        .iter()
        .map(|s| (s.clone(), specs[s].name.clone()))
        .collect();
    let opts = crate::app::logs::LogOptions {
        follow: true,
        since: None,
        tail: None,
        timestamps: false,
    };
    let logs = follow(paths, &apps, &opts);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Ok(sig) = mask.wait() {
            let _ = tx.send(sig);
        }
    });
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(nix::sys::signal::Signal::SIGHUP) => return Ok(0),
            Ok(_) => {
                eprintln!("Stopping");
                for (_, name) in apps.iter().rev() {
                    if monitor_alive(paths, name).is_some() {
                        lifecycle::stop(paths, name, None)?;
                        progress(name, "Stopped");
                    }
                }
                let _ = logs.join();
                return Ok(0);
            }
            Err(_) if logs.is_finished() => return Ok(0),
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_pad_service_names_to_one_width() {
        let p = prefixes(&["db".into(), "migrate".into()]);
        assert_eq!(p["db"], "db      | ");
        assert_eq!(p["migrate"], "migrate | ");
    }

    /// One cache directory per registry reference: references that differ
    /// only where the readable name replaces characters never share one
    /// (another owner's image would run in their place).
    #[test]
    fn registry_cache_is_one_per_reference() {
        let refs = [
            "quay.io/org/app:1",
            "quay.io/org_app:1",
            "quay.io/org/app_1",
            "registry.example:5000/app",
            "registry.example/5000/app",
        ];
        let names: std::collections::BTreeSet<String> =
            refs.iter().map(|r| cache_name(r)).collect();
        assert_eq!(names.len(), refs.len(), "{names:?}");
        for n in &names {
            assert!(!n.contains('/') && !n.starts_with('.'), "{n}");
        }
        assert_eq!(cache_name("redis:7"), cache_name("redis:7"));
    }
}
