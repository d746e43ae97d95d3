//! The app commands that change apps: run (and upgrade), start, stop,
//! restart, rm, update; and the foreground run. The CLI edge of the app
//! manager (anyhow here, typed errors below).
//!
//! Every change of an app happens under its lock; waiting for a monitor
//! to end happens outside it (the monitor's helper takes the lock too).

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;

use super::cli::{RunArgs, StopArgs, UpdateArgs};
use super::monitor::{self, MonitorConfig, MonitorPid};
use super::paths::Paths;
use super::settings::{self, AppSpec};
use super::state::{self, App, AppState, Phase};
use super::store::Store;
use super::{network, runtime, spawn};

/// Whether the app's monitor runs.
pub fn monitor_alive(paths: &Paths, name: &str) -> Option<MonitorPid> {
    monitor::read_pid(paths, name).filter(monitor::alive)
}

/// Host-side checks of a new app's settings, before anything is made.
fn check_host(paths: &Paths, spec: &AppSpec) -> Result<Vec<network::PortMap>> {
    check_volumes(spec)?;
    let ports = spec
        .ports
        .iter()
        .map(|p| network::parse_port(p))
        .collect::<Result<Vec<_>, _>>()?;
    network::check_ports(paths, &ports)?;
    network::check_plugins(&network::parse_mode(&spec.network)?)?;
    if let network::Mode::Bridge(net) = network::parse_mode(&spec.network)?
        && net != "rrun0"
        && !network::list(paths)?.iter().any(|n| n.name == net)
    {
        bail!("no network named {net:?} (rrun app network create {net})");
    }
    if !ports.is_empty()
        && matches!(
            network::parse_mode(&spec.network)?,
            network::Mode::Host | network::Mode::None
        )
    {
        bail!(
            "--publish needs a bridge network (not --network {})",
            spec.network
        );
    }
    Ok(ports)
}

/// The argv of the monitor's helper: this rrun, this app root.
fn helper_argv(paths: &Paths, name: &str) -> Result<Vec<String>> {
    let exe = rrun_path()?;
    let app = paths.app(name);
    Ok(vec![
        exe.display().to_string(),
        "--log".into(),
        app.join("runtime.log").display().to_string(),
        "app".into(),
        "--app-root".into(),
        paths.root.display().to_string(),
        "_spawn".into(),
        name.into(),
    ])
}

/// The rrun binary on the host (not the read-only clone a `run` may be
/// re-executed from, which is gone when this process ends).
pub fn rrun_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("RRUN_SELF") {
        return Ok(p.into());
    }
    let exe = fs::read_link("/proc/self/exe").context("finding the rrun binary")?;
    let s = exe.to_string_lossy();
    if s.contains("(deleted)") || !exe.is_absolute() || !exe.exists() {
        bail!("cannot find the rrun binary (/proc/self/exe is {s}); set RRUN_SELF");
    }
    Ok(exe)
}

/// Starts the app's monitor, which runs the helper; waits for the helper's
/// word on the sync pipe.
fn start_monitor(paths: &Paths, spec: &AppSpec) -> Result<MonitorPid> {
    let app = App::at(paths, &spec.name);
    fs::create_dir_all(app.logs())?;
    let mut cfg = MonitorConfig::new(paths, &spec.name, helper_argv(paths, &spec.name)?);
    cfg.max_size = spec.log_max_size;
    cfg.max_files = spec.log_max_files;
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let m = monitor::spawn(paths, &spec.name, &cfg, w.as_fd())?;
    drop(w);
    let mut line = String::new();
    BufReader::new(fs::File::from(r)).read_line(&mut line)?;
    let line = line.trim_end();
    if line == "ok" {
        return Ok(m);
    }
    if let Some(e) = line.strip_prefix("error: ") {
        bail!("{e}");
    }
    bail!(
        "the app's monitor ended before starting it (see rrun app logs {} and {})",
        spec.name,
        app.dir.join("monitor.log").display()
    )
}

/// Makes a new app from its settings: the host-side checks, its directory
/// and settings, its image imported into the store. Nothing is started;
/// on error nothing is left. `run` and `compose up` call it.
pub fn create(paths: &Paths, spec: &AppSpec) -> Result<()> {
    let name = &spec.name;
    settings::check_name(name)?;
    check_host(paths, spec)?;
    fs::create_dir_all(paths.apps())?;
    // Apps' settings, logs and upper directories are nobody else's.
    fs::set_permissions(
        paths.apps(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )?;
    let app = App::at(paths, name);
    let _lock = state::lock(paths, name)?;
    match fs::create_dir(&app.dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("an app named {name:?} exists already")
        }
        Err(e) => return Err(e).with_context(|| format!("creating {}", app.dir.display())),
    }
    // From here on, `rm -f` finds and removes whatever exists.
    let made = (|| -> Result<()> {
        app.save_spec(spec)?;
        let store = Store::open(paths)?;
        let image = store.import(&spec.source)?;
        let st = AppState {
            image: image.id.clone(),
            created_at: crate::state::now_rfc3339(),
            ..Default::default()
        };
        app.save_state(&st)?;
        app.event("create", json!({"image": image.id, "source": spec.source}));
        Ok(())
    })();
    if let Err(e) = made {
        drop(_lock);
        let _ = remove_all(paths, name);
        return Err(e);
    }
    Ok(())
}

/// Creates the app and starts it (its monitor, which starts the
/// container); on error nothing of it is left.
pub fn launch(paths: &Paths, spec: &AppSpec) -> Result<()> {
    create(paths, spec)?;
    if let Err(e) = start_monitor(paths, spec) {
        let _ = remove_all(paths, &spec.name);
        return Err(e);
    }
    Ok(())
}

pub fn run(paths: &Paths, a: &RunArgs) -> Result<i32> {
    if !a.detach {
        // Blocked from the start (foreground() waits for them): a Ctrl-C
        // while the app starts stops it once it runs, instead of killing
        // this process and leaving the app running unattended.
        stop_signals();
    }
    let name = a
        .name
        .clone()
        .unwrap_or_else(|| settings::name_from_source(&a.source));
    settings::check_name(&name)?;
    if App::at(paths, &name).exists() {
        return upgrade(paths, &name, a);
    }
    let spec = AppSpec::from_args(&name, &a.source, &a.command, &a.settings)?;
    launch(paths, &spec)?;
    if a.detach {
        println!("{name}");
        return Ok(0);
    }
    foreground(paths, &name)
}

pub fn start(paths: &Paths, name: &str) -> Result<()> {
    let app = App::at(paths, name);
    let spec = app.load_spec()?;
    {
        let _lock = state::lock(paths, name)?;
        if monitor_alive(paths, name).is_some() {
            bail!("app {name} is running");
        }
        let mut st = app.load_state()?;
        // A monitor that died (or a reboot) leaves the host side to redo.
        let _ = spawn::teardown(paths, &app, &mut st);
        st.phase = Phase::Created;
        st.recreated = 0;
        st.earlier_restarts = 0;
        st.stop_requested = false;
        app.save_state(&st)?;
    }
    start_monitor(paths, &spec)?;
    Ok(())
}

fn wait_monitor_gone(m: &MonitorPid, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    while monitor::alive(m) {
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Stops the app: the stop signal to the program (through the init), the
/// init's SIGKILL after the grace period, and rrun's own after that.
pub fn stop(paths: &Paths, name: &str, time: Option<u64>) -> Result<()> {
    let app = App::at(paths, name);
    let spec = app.load_spec()?;
    let m = {
        let _lock = state::lock(paths, name)?;
        let mut st = app.load_state()?;
        match monitor_alive(paths, name) {
            Some(m) => {
                st.stop_requested = true;
                app.save_state(&st)?;
                m
            }
            None => {
                // No monitor: whatever is left (a crash) is taken down here.
                if st.phase == Phase::Running || runtime::running(paths, name) {
                    let _ = runtime::kill(paths, name, "KILL", true);
                    spawn::teardown(paths, &app, &mut st)?;
                    st.phase = Phase::Exited;
                    st.exit = Some(state::ExitInfo {
                        reason: "stopped by user".into(),
                        status: 137,
                        time: crate::state::now_rfc3339(),
                    });
                    st.finished_at = Some(crate::state::now_rfc3339());
                    app.save_state(&st)?;
                }
                return Ok(());
            }
        }
    };
    let grace = Duration::from_secs(time.unwrap_or(spec.stop_timeout));
    let signal = stop_signal(paths, &spec, &app);
    if runtime::running(paths, name) {
        let _ = runtime::kill(paths, name, &signal, false);
    }
    if !wait_monitor_gone(&m, grace + Duration::from_secs(2)) {
        let _ = runtime::kill(paths, name, "KILL", true);
        if !wait_monitor_gone(&m, Duration::from_secs(10)) {
            bail!(
                "app {name} did not stop: its monitor (pid {}) still runs",
                m.pid
            );
        }
    }
    app.event("stop", json!({}));
    Ok(())
}

fn stop_signal(paths: &Paths, spec: &AppSpec, app: &App) -> String {
    if let Some(s) = &spec.stop_signal {
        return s.clone();
    }
    let image_signal = app
        .load_state()
        .ok()
        .and_then(|st| Store::open(paths).ok()?.get(&st.image).ok())
        .and_then(|i| i.config.stop_signal.clone());
    image_signal.unwrap_or_else(|| "TERM".into())
}

pub fn stop_cmd(paths: &Paths, a: &StopArgs) -> Result<()> {
    each(&a.names, |n| stop(paths, n, a.time))
}

pub fn restart(paths: &Paths, a: &StopArgs) -> Result<()> {
    each(&a.names, |n| {
        restart_one(paths, n, a.time, "restarted by user")
    })
}

/// Stop and start, counted as one more restart (as PM2 and supervisord
/// count them): the count `ls` shows goes on from where it was, where a
/// plain `start` of a stopped app begins again at 0. The one restart of
/// the command line, the status page and compose.
pub fn restart_one(paths: &Paths, name: &str, time: Option<u64>, reason: &str) -> Result<()> {
    let app = App::at(paths, name);
    let before = {
        let st = app.load_state()?;
        // What the init counted in the container that is about to go.
        let live = runtime::state(paths, name)
            .ok()
            .flatten()
            .filter(|c| c.pid > 0)
            .and_then(|c| crate::init::status::open_dir(c.pid).ok())
            .and_then(|d| crate::init::status::read(&d).ok())
            .map(|s| s.restarts)
            .unwrap_or(0);
        st.recreated
            .saturating_add(st.earlier_restarts)
            .saturating_add(live)
    };
    stop(paths, name, time)?;
    start(paths, name)?;
    let _lock = state::lock(paths, name)?;
    let mut st = app.load_state()?;
    st.earlier_restarts = st.earlier_restarts.saturating_add(before.saturating_add(1));
    app.save_state(&st).context("counting the restart")?;
    app.event("restart", json!({ "reason": reason }));
    Ok(())
}

/// Runs `f` for every name; every name is tried, the first error returned.
pub fn each(names: &[String], mut f: impl FnMut(&str) -> Result<()>) -> Result<()> {
    let mut first = None;
    for n in names {
        if let Err(e) = f(n) {
            if first.is_some() {
                eprintln!("rrun: {n}: {e:#}");
            } else {
                first = Some(e.context(n.clone()));
            }
        }
    }
    match first {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Removes everything of an app that exists, whatever state it is in.
pub fn remove_all(paths: &Paths, name: &str) -> Result<()> {
    let app = App::at(paths, name);
    if let Some(m) = monitor::read_pid(paths, name).filter(monitor::alive) {
        // A monitor without its app: its helper ends it once the container
        // is gone (exit 3); SIGKILL if not.
        let _ = runtime::kill(paths, name, "KILL", true);
        if !wait_monitor_gone(&m, Duration::from_secs(5)) {
            let _ = monitor::kill(&m);
        }
    }
    let _lock = state::lock(paths, name)?;
    let mut st = app.load_state().unwrap_or_default();
    spawn::teardown(paths, &app, &mut st)?;
    if app.dir.exists() {
        super::rmtree::remove_tree(&app.dir)
            .with_context(|| format!("removing {}", app.dir.display()))?;
    }
    Ok(())
}

/// The names that are apps of compose project `project` (or no app at
/// all: rm says so); an app of the same name that is not the project's
/// (another project's `a-b` + `c` is project `a`'s `b-c` too, or a
/// hand-made app) is left out, with a warning.
pub fn of_project(paths: &Paths, names: &[String], project: &str) -> Vec<String> {
    names
        .iter()
        .filter(|name| {
            let app = App::at(paths, name);
            let Ok(spec) = app.load_spec() else {
                return true;
            };
            let ours = spec
                .labels
                .get(super::compose::LABEL_PROJECT)
                .is_some_and(|p| p == project);
            if !ours {
                eprintln!("rrun: warning: {name} is no app of project {project}: left as it is");
            }
            ours
        })
        .cloned()
        .collect()
}

pub fn rm(paths: &Paths, names: &[String], force: bool) -> Result<()> {
    each(names, |name| {
        let app = App::at(paths, name);
        if !app.dir.exists() {
            bail!("no app named {name:?}");
        }
        if monitor_alive(paths, name).is_some() || runtime::running(paths, name) {
            if !force {
                bail!("app {name} is running: stop it first, or use rm -f");
            }
            stop(paths, name, Some(0)).ok();
        }
        remove_all(paths, name)?;
        let _ = fs::remove_file(paths.locks().join(format!("app-{name}.lock")));
        Ok(())
    })
}

pub fn update(paths: &Paths, a: &UpdateArgs) -> Result<()> {
    let name = &a.name;
    let app = App::at(paths, name);
    let (recreate, spec) = {
        let _lock = state::lock(paths, name)?;
        let mut spec = app.load_spec()?;
        let recreate = spec.apply(&a.settings, &a.env_rm)?;
        if recreate {
            check_volumes(&spec)?;
        }
        app.save_spec(&spec)?;
        (recreate, spec)
    };
    if monitor_alive(paths, name).is_none() {
        return Ok(());
    }
    if recreate {
        stop(paths, name, None)?;
        return start(paths, name);
    }
    let mut args = Vec::new();
    if let Some(m) = spec.memory {
        args.extend(["--memory".to_string(), m.to_string()]);
    }
    if let Some(c) = spec.cpus {
        args.extend([
            "--cpu-quota".to_string(),
            settings::cpu_quota(c).to_string(),
            "--cpu-period".to_string(),
            settings::CPU_PERIOD.to_string(),
        ]);
    }
    if let Some(p) = spec.pids_limit {
        args.extend(["--pids-limit".to_string(), p.to_string()]);
    }
    runtime::update(paths, name, &args)?;
    app.event(
        "update",
        json!({"memory": spec.memory, "cpus": spec.cpus, "pids_limit": spec.pids_limit}),
    );
    Ok(())
}

/// Host paths given as volume sources exist.
fn check_volumes(spec: &AppSpec) -> Result<()> {
    for v in spec.volumes.iter().filter(|v| !v.is_named()) {
        if let Err(e) = fs::metadata(&v.source) {
            bail!("volume source {}: {e}", v.source);
        }
    }
    Ok(())
}

/// How long to wait for a new image to get healthy: the start period and
/// every retry's interval and timeout, as the init counts them.
pub fn health_deadline(spec: &AppSpec) -> Duration {
    let d = |s: &Option<String>, def: &str| {
        crate::init::policy::parse_duration(s.as_deref().unwrap_or(def))
            .unwrap_or(Duration::from_secs(30))
    };
    let Some(h) = &spec.health else {
        return Duration::from_secs(5);
    };
    let retries: u32 = h
        .retries
        .as_deref()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    d(&h.start_period, "0s")
        + (d(&h.interval, "30s") + d(&h.timeout, "30s")) * (retries + 1)
        + Duration::from_secs(2)
}

/// The app's health as its init reports it, with whether it still runs.
pub fn live_health(paths: &Paths, name: &str) -> Option<String> {
    let st = runtime::state(paths, name).ok()??;
    if st.pid <= 0 {
        return None;
    }
    let dir = crate::init::status::open_dir(st.pid).ok()?;
    crate::init::status::read(&dir).ok().map(|s| s.health)
}

/// `run` on an existing app: the same settings (plus the flags given) on
/// a new image; with a health check, rolled back when it never gets
/// healthy.
fn upgrade(paths: &Paths, name: &str, a: &RunArgs) -> Result<i32> {
    let app = App::at(paths, name);
    let old_spec = app.load_spec()?;
    let mut spec = old_spec.clone();
    spec.source = a.source.clone();
    if !a.command.is_empty() {
        spec.command = a.command.clone();
    }
    spec.apply(&a.settings, &[])?;
    let store = Store::open(paths)?;
    let image = store.import(&a.source)?;
    let old_image = app.load_state()?.image;
    let was_running = monitor_alive(paths, name).is_some();
    if was_running {
        stop(paths, name, None)?;
    }
    let prev_upper = app.dir.join("upper.prev");
    {
        let _lock = state::lock(paths, name)?;
        let mut st = app.load_state()?;
        let _ = fs::remove_dir_all(&prev_upper);
        if app.upper().exists() {
            fs::rename(app.upper(), &prev_upper)?;
        }
        let _ = fs::remove_dir_all(app.work());
        st.previous_image = Some(old_image.clone());
        st.image = image.id.clone();
        app.save_spec(&spec)?;
        app.save_state(&st)?;
        app.event("upgrade", json!({"from": old_image, "to": image.id}));
    }
    let started = start(paths, name);
    let good = match &started {
        Ok(()) => wait_good(paths, name, &spec),
        Err(e) => Err(anyhow!("{e:#}")),
    };
    match good {
        Ok(()) => {
            let _lock = state::lock(paths, name)?;
            let mut st = app.load_state()?;
            st.previous_image = None;
            app.save_state(&st)?;
            let _ = fs::remove_dir_all(&prev_upper);
            if !a.detach {
                drop(_lock);
                return foreground(paths, name);
            }
            println!("{name}");
            Ok(0)
        }
        Err(why) if a.no_rollback => {
            Err(why.context(format!("upgrade of {name} (kept: --no-rollback)")))
        }
        Err(why) => {
            if monitor_alive(paths, name).is_some() {
                stop(paths, name, Some(1))?;
            }
            {
                let _lock = state::lock(paths, name)?;
                let mut st = app.load_state()?;
                let _ = fs::remove_dir_all(app.upper());
                let _ = fs::remove_dir_all(app.work());
                if prev_upper.exists() {
                    fs::rename(&prev_upper, app.upper())?;
                }
                st.image = old_image.clone();
                st.previous_image = None;
                app.save_spec(&old_spec)?;
                app.save_state(&st)?;
                app.event(
                    "rollback",
                    json!({"to": old_image, "reason": format!("{why:#}")}),
                );
            }
            if was_running {
                start(paths, name)?;
            }
            bail!(
                "upgrade of {name} to {} failed ({why:#}); rolled back to the previous image",
                a.source
            )
        }
    }
}

/// The new container is good: healthy (with a health check), or still
/// running a moment after start.
fn wait_good(paths: &Paths, name: &str, spec: &AppSpec) -> Result<()> {
    let deadline = Instant::now() + health_deadline(spec);
    loop {
        if monitor_alive(paths, name).is_none() {
            let st = App::at(paths, name).load_state()?;
            let why = st.exit.map(|e| e.reason).unwrap_or_else(|| "ended".into());
            bail!("the new image's app stopped ({why})");
        }
        match (&spec.health, live_health(paths, name).as_deref()) {
            (Some(_), Some("healthy")) => return Ok(()),
            (Some(_), Some("unhealthy")) => bail!("the new image's app is unhealthy"),
            (None, _) if Instant::now() >= deadline => return Ok(()),
            _ => {}
        }
        if Instant::now() >= deadline {
            bail!("the new image's app never got healthy");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The signals that stop a foreground app (or `compose up`), blocked in
/// the calling thread and so in every thread it starts after (from the
/// start: one that comes while the apps start is not lost).
pub fn stop_signals() -> nix::sys::signal::SigSet {
    use nix::sys::signal::{SigSet, Signal};
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGINT);
    mask.add(Signal::SIGTERM);
    mask.add(Signal::SIGHUP);
    let _ = mask.thread_block();
    mask
}

/// A foreground run: the app's output here until it ends; SIGINT or
/// SIGTERM stops it; SIGHUP (the terminal closed) only ends this
/// command. Exits with the app's status.
pub fn foreground(paths: &Paths, name: &str) -> Result<i32> {
    let mask = stop_signals();
    {
        let paths = paths.clone();
        let name = name.to_string();
        std::thread::spawn(move || {
            match mask.wait() {
                // The terminal went away: that is no request to stop. The
                // app keeps running on its monitor (`rrun app logs -f`).
                Ok(nix::sys::signal::Signal::SIGHUP) => std::process::exit(0),
                Ok(_) => {
                    let _ = stop(&paths, &name, None);
                }
                Err(_) => {}
            }
        });
    }
    let dir = App::at(paths, name).logs();
    let opts = super::logs::LogOptions {
        follow: true,
        since: None,
        tail: None,
        timestamps: false,
    };
    let until = || monitor_alive(paths, name).is_none();
    super::logs::print(
        &dir,
        &opts,
        &until,
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    )?;
    let st = App::at(paths, name).load_state()?;
    Ok(st.exit.map(|e| e.status).unwrap_or(0))
}

pub fn logs_dir(paths: &Paths, name: &str) -> Result<PathBuf> {
    let app = App::at(paths, name);
    if !app.exists() {
        bail!("no app named {name:?}");
    }
    Ok(app.logs())
}
