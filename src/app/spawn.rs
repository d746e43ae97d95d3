//! `rrun app _spawn NAME [--after-exit exit:N|signal:N]`: the monitor's
//! helper. The monitor runs it with the app's log pipes as stdout and
//! stderr, so the container's init inherits them; it sets up what the app
//! needs (overlay root, network, config.json), creates and starts the
//! container, and reports on fd 3. After the init ends, the monitor runs
//! it again: it tells why (the exit reason), and either starts a new
//! container (the init itself was killed and the restart policy says so)
//! or tears down and tells the monitor it is done.
//!
//! Exit codes (the monitor's protocol): 0 started, 3 done (the app was
//! stopped by the user or its program ended with 0), 4 done (the app
//! failed: a non-zero end, gave up, unhealthy), else the helper failed.
//! The monitor exits 0 after a 3 and non-zero otherwise, so a systemd
//! unit whose main process is the monitor sees success or failure.
//! Fds from the monitor: 3 sync (first run), 4 and 5 both ends of the
//! socketpair that keeps the init's status directory alive in flight.

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;

use super::cli::SpawnArgs;
use super::paths::Paths;
use super::settings::AppSpec;
use super::state::{self, App, AppState, ExitInfo, Phase};
use super::{bundle, network, overlay, runtime, store};
use crate::init::plan::{ExitRecord, LastExit, Status as InitStatus};

pub const DONE: i32 = 3;
pub const DONE_FAILED: i32 = 4;

/// Whether an app's end counts as success (for the monitor's exit status):
/// a stop the user asked for, or the program's exit 0.
pub fn clean_end(reason: &str, status: i32) -> bool {
    reason == "stopped by user" || (reason == "exit 0" && status == 0)
}

/// How the monitor saw the init end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitEnd {
    Exit(i32),
    Signal(i32),
}

pub fn parse_after_exit(s: &str) -> Option<InitEnd> {
    let (kind, n) = s.split_once(':')?;
    let n: i32 = n.split_whitespace().next()?.parse().ok()?;
    match kind {
        "exit" => Some(InitEnd::Exit(n)),
        "signal" => Some(InitEnd::Signal(n)),
        _ => None,
    }
}

/// Why the app's last run ended, from what the host saw (how the init
/// ended, the cgroup's OOM kills, whether the user asked) and the init's
/// final status (the container's word, when it could be read).
pub fn exit_reason(
    end: InitEnd,
    init: Option<&InitStatus>,
    oom_kills: u64,
    stop_requested: bool,
) -> (String, i32) {
    let status = match end {
        InitEnd::Exit(c) => c,
        InitEnd::Signal(s) => 128 + s,
    };
    if stop_requested {
        return ("stopped by user".into(), status);
    }
    if let Some(st) = init
        && st.gave_up
    {
        return ("gave-up".into(), status);
    }
    let killed = matches!(end, InitEnd::Signal(9))
        || matches!(
            init.and_then(|s| s.last_exit.as_ref()),
            Some(LastExit::Signal(9))
        )
        || (init.is_none() && status == 137);
    if oom_kills > 0 && killed {
        return ("oom".into(), status);
    }
    if let Some(st) = init
        && st.health == "unhealthy"
    {
        return ("unhealthy".into(), status);
    }
    let reason = match (end, init.and_then(|s| s.last_exit.as_ref())) {
        (InitEnd::Signal(s), _) => format!("signal {s}"),
        (_, Some(LastExit::Code(c))) => format!("exit {c}"),
        (_, Some(LastExit::Signal(s))) => format!("signal {s}"),
        (InitEnd::Exit(c), None) if c > 128 && c < 160 => format!("signal {}", c - 128),
        (InitEnd::Exit(c), None) => format!("exit {c}"),
    };
    (reason, status)
}

/// The reason of one exit the init logged.
pub fn record_reason(r: &ExitRecord, oom_kills: u64) -> String {
    match r.exit {
        _ if r.unhealthy => "unhealthy".into(),
        LastExit::Signal(9) if oom_kills > 0 => "oom".into(),
        LastExit::Signal(s) => format!("signal {s}"),
        LastExit::Code(c) => format!("exit {c}"),
    }
}

/// Unix milliseconds as RFC 3339 (UTC).
pub fn rfc3339_ms(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Whether the app's policy restarts a container whose init was killed
/// (`recreated` restarts so far).
pub fn policy_restarts(restart: &str, recreated: u32) -> bool {
    match restart.split_once(':') {
        Some(("on-failure", n)) => n.parse::<u32>().is_ok_and(|n| recreated < n),
        _ => matches!(restart, "always" | "unless-stopped" | "on-failure"),
    }
}

/// The delay before recreating: 100 ms doubling up to 30 s.
pub fn backoff(recreated: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << recreated.min(9))).min(Duration::from_secs(30))
}

pub fn spawn(paths: &Paths, a: &SpawnArgs) -> Result<i32> {
    let sync = crate::sys::take_inherited_fd(3).map(File::from);
    let status_rx = crate::sys::take_inherited_fd(4);
    let status_tx = crate::sys::take_inherited_fd(5);
    let app = App::at(paths, &a.name);
    let outcome = match &a.after_exit {
        None => first_start(paths, &app, status_tx.as_ref()),
        Some(s) => {
            let end = parse_after_exit(s).with_context(|| format!("bad --after-exit {s:?}"))?;
            after_exit(paths, &app, end, status_rx.as_ref(), status_tx.as_ref())
        }
    };
    match outcome {
        Ok(code) => {
            if let Some(mut s) = sync {
                let _ = s.write_all(b"ok\n");
            }
            Ok(code)
        }
        Err(e) => {
            let line = crate::log::error_line(&e);
            app.event("error", json!({"error": line}));
            if let Some(mut s) = sync {
                let _ = writeln!(s, "error: {line}");
            }
            Ok(1)
        }
    }
}

fn first_start(paths: &Paths, app: &App, status_tx: Option<&OwnedFd>) -> Result<i32> {
    let _lock = state::lock(paths, &app.name)?;
    let spec = app.load_spec()?;
    let mut st = app.load_state()?;
    if let Err(e) = start_container(paths, app, &spec, &mut st, status_tx) {
        let _ = teardown(paths, app, &mut st);
        st.phase = Phase::Exited;
        st.exit = Some(ExitInfo {
            reason: "failed to start".into(),
            status: 1,
            time: crate::state::now_rfc3339(),
        });
        st.finished_at = Some(crate::state::now_rfc3339());
        app.save_state(&st)?;
        return Err(e);
    }
    Ok(0)
}

/// Everything the container needs, made idempotently (a start after a
/// reboot remounts and re-attaches), then the container itself.
pub fn start_container(
    paths: &Paths,
    app: &App,
    spec: &AppSpec,
    st: &mut AppState,
    status_tx: Option<&OwnedFd>,
) -> Result<()> {
    let store = store::Store::open(paths)?;
    let image = store.get(&st.image)?;
    if !overlay::is_mounted(&app.rootfs()) {
        std::fs::create_dir_all(app.bundle())?;
        overlay::mount(&image.layers, &app.upper(), &app.work(), &app.rootfs())?;
    }
    check_health_binary(spec, &image, &app.rootfs())?;
    // After a reboot the recorded netns is gone: attach again (attach
    // first undoes whatever record is left).
    if st.network.as_ref().is_none_or(|a| !network::is_live(a)) {
        let mode = network::parse_mode(&spec.network)?;
        let ports = spec
            .ports
            .iter()
            .map(|p| network::parse_port(p))
            .collect::<Result<Vec<_>, _>>()?;
        st.network = Some(network::attach(paths, &app.name, &mode, &ports)?);
        app.save_state(st)?;
    }
    let hostname = spec.hostname.clone().unwrap_or_else(|| spec.name.clone());
    std::fs::write(app.dir.join("hostname"), format!("{hostname}\n"))?;
    let att = st.network.as_ref().expect("attached above");
    let volumes_dir = paths.volumes();
    for v in spec.volumes.iter().filter(|v| v.is_named()) {
        std::fs::create_dir_all(volumes_dir.join(&v.source))?;
    }
    let config = bundle::config(
        &store,
        &bundle::Inputs {
            spec,
            image: &image,
            app_dir: &app.dir,
            netns: att.netns.as_deref(),
            volumes_dir: &volumes_dir,
            cgroups_path: paths.cgroups_path(&app.name),
        },
    )?;
    let path = app.bundle().join("config.json");
    let text = serde_json::to_vec_pretty(&config).expect("config serialises");
    crate::state::write_atomic(&path, &text)
        .with_context(|| format!("writing {}", path.display()))?;
    // A container left by a crash of an earlier run.
    let _ = runtime::delete(paths, &app.name);
    let pid = runtime::create_and_start(paths, &app.name, &app.bundle(), &app.init_pid_file())?;
    // Keep the init's status directory alive in the monitor's socket, for
    // the final status after the container is gone.
    if let Some(tx) = status_tx
        && let Ok(dir) = crate::init::status::open_dir(pid)
    {
        let _ = crate::sys::send_with_fd(tx, b"s", &dir.into_fd());
    }
    let start = crate::state::proc_stat(pid).map(|(_, t)| t).unwrap_or(0);
    st.phase = Phase::Running;
    st.init = Some((pid, start));
    st.started_at = Some(crate::state::now_rfc3339());
    st.stop_requested = false;
    app.save_state(st)?;
    app.event("start", json!({"pid": pid, "image": st.image}));
    Ok(())
}

/// A health check's program must exist in the app's root (on its PATH
/// for a bare name): found at start, not as an "unhealthy" app later.
/// Looked up inside the root (symlinks resolved there, as the container
/// will), never on the host.
fn check_health_binary(
    spec: &AppSpec,
    image: &store::Image,
    rootfs: &std::path::Path,
) -> Result<()> {
    use std::path::Path;
    let Some(h) = &spec.health else { return Ok(()) };
    let root = crate::rootfs::resolve::Root::open(rootfs)
        .with_context(|| format!("opening {}", rootfs.display()))?;
    let exists = |p: &str| {
        root.open_in(Path::new(p), nix::fcntl::OFlag::O_PATH)
            .is_ok()
    };
    // A shell string's program: its first word, when that is a plain
    // word and not something the shell does itself.
    const SHELL_OWN: &[&str] = &[
        ":", ".", "[", "[[", "alias", "break", "cd", "command", "continue", "echo", "eval", "exec",
        "exit", "export", "false", "getopts", "hash", "kill", "let", "local", "printf", "pwd",
        "read", "readonly", "return", "set", "shift", "source", "test", "times", "trap", "true",
        "type", "ulimit", "umask", "unset", "wait", "if", "case", "for", "while", "until", "!",
        "{", "(",
    ];
    let prog = match h.cmd.as_slice() {
        [sh, c, script] if sh == "/bin/sh" && c == "-c" => {
            let word = script.split_whitespace().next().unwrap_or("");
            let plain = !word.is_empty()
                && word
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_./-+".contains(&b));
            if !plain || SHELL_OWN.contains(&word) {
                "/bin/sh"
            } else {
                word
            }
        }
        _ => h.cmd[0].as_str(),
    };
    if prog.contains('/') {
        if !exists(prog) {
            anyhow::bail!("health check program {prog} is not in the image");
        }
        return Ok(());
    }
    let path = spec
        .env
        .iter()
        .rev()
        .chain(image.config.env.iter().rev())
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .to_string();
    if path.split(':').any(|d| exists(&format!("{d}/{prog}"))) {
        return Ok(());
    }
    anyhow::bail!("health check program {prog:?} is not on the image's PATH ({path})")
}

/// Stops using the host's resources: container, network, overlay.
pub fn teardown(paths: &Paths, app: &App, st: &mut AppState) -> Result<()> {
    let mut first_err = None;
    let cgroups = runtime::state(paths, &app.name)
        .ok()
        .flatten()
        .map(|c| c.cgroup_paths)
        .unwrap_or_default();
    if let Err(e) = runtime::delete(paths, &app.name) {
        first_err.get_or_insert(e);
    }
    // The apps' common parent (`rrun-app<tag>`), once no app is left in
    // it: only an empty directory goes (rmdir), never another app's.
    let group = format!("rrun-app{}", paths.tag);
    for dir in cgroups {
        if let Some(parent) = dir.parent()
            && parent.file_name().is_some_and(|n| n == group.as_str())
        {
            let _ = std::fs::remove_dir(parent);
        }
    }
    if st.network.is_some() || paths.netns_dir().join(&app.name).exists() {
        match network::detach(paths, &app.name) {
            Ok(()) => st.network = None,
            Err(e) => {
                first_err.get_or_insert(e.into());
            }
        }
    }
    if let Err(e) = overlay::unmount(&app.rootfs()) {
        first_err.get_or_insert(e.into());
    }
    st.init = None;
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The newest status directory the monitor holds for us, if any.
fn final_status(rx: Option<&OwnedFd>) -> Option<InitStatus> {
    let rx = rx?;
    let _ = nix::fcntl::fcntl(
        rx,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    let mut newest = None;
    let mut buf = [0u8; 8];
    while let Ok((n, mut fds, _)) = crate::sys::recv_with_fds(rx, &mut buf) {
        if n == 0 && fds.is_empty() {
            break;
        }
        if let Some(fd) = fds.pop() {
            newest = Some(fd);
        }
    }
    let dir = crate::init::status::StatusDir::from_fd(newest?);
    crate::init::status::read(&dir).ok()
}

fn after_exit(
    paths: &Paths,
    app: &App,
    end: InitEnd,
    status_rx: Option<&OwnedFd>,
    status_tx: Option<&OwnedFd>,
) -> Result<i32> {
    let lock = state::lock(paths, &app.name)?;
    let spec = app.load_spec()?;
    let mut st = app.load_state()?;
    let init = final_status(status_rx);
    let oom = runtime::state(paths, &app.name)
        .ok()
        .flatten()
        .map(|c| crate::cgroups::oom_kills(&c.cgroup_paths))
        .unwrap_or(0);
    let (reason, status) = exit_reason(end, init.as_ref(), oom, st.stop_requested);
    // The container's word (any u32): saturating, never an overflow panic.
    st.earlier_restarts = st
        .earlier_restarts
        .saturating_add(init.as_ref().map(|s| s.restarts).unwrap_or(0));
    // The program's exits inside this container, as the init logged them
    // (the container's word), then the container's own end.
    if let Some(init) = &init {
        for r in &init.exit_log {
            app.event_at(
                &rfc3339_ms(r.time),
                "exit",
                json!({"reason": record_reason(r, oom), "reportedBy": "container"}),
            );
        }
    }
    if matches!(end, InitEnd::Signal(_)) {
        app.event(
            "exit",
            json!({"reason": reason, "status": status, "init": true}),
        );
    }
    let init_killed = matches!(end, InitEnd::Signal(_));
    if !st.stop_requested && init_killed && policy_restarts(&spec.restart, st.recreated) {
        let _ = runtime::delete(paths, &app.name);
        let delay = backoff(st.recreated);
        st.recreated += 1;
        st.exit = Some(ExitInfo {
            reason: reason.clone(),
            status,
            time: crate::state::now_rfc3339(),
        });
        app.save_state(&st)?;
        app.event(
            "restart",
            json!({"reason": reason, "delay_ms": delay.as_millis() as u64}),
        );
        // Not under the lock: `stop` may come in while we wait.
        drop(lock);
        std::thread::sleep(delay);
        let _lock = state::lock(paths, &app.name)?;
        let mut st = app.load_state()?;
        if st.stop_requested {
            return finish(paths, app, &mut st, "stopped by user".into(), status);
        }
        start_container(paths, app, &spec, &mut st, status_tx)?;
        return Ok(0);
    }
    let reason = if init_killed && !st.stop_requested && spec.restart != "no" {
        // The policy would restart, but its count is spent.
        "gave-up".to_string()
    } else {
        reason
    };
    finish(paths, app, &mut st, reason, status)
}

fn finish(paths: &Paths, app: &App, st: &mut AppState, reason: String, status: i32) -> Result<i32> {
    st.phase = Phase::Exited;
    st.finished_at = Some(crate::state::now_rfc3339());
    st.exit = Some(ExitInfo {
        reason: reason.clone(),
        status,
        time: crate::state::now_rfc3339(),
    });
    let torn = teardown(paths, app, st);
    st.stop_requested = false;
    app.save_state(st)?;
    app.event("stopped", json!({"reason": reason, "status": status}));
    torn?;
    Ok(if clean_end(&reason, status) {
        DONE
    } else {
        DONE_FAILED
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init(last: Option<LastExit>, health: &str, gave_up: bool) -> InitStatus {
        InitStatus {
            restarts: 0,
            pid: None,
            last_exit: last,
            health: health.into(),
            gave_up,
            exits: 1,
            starts: vec![],
            exit_log: vec![],
            health_log: vec![],
        }
    }

    #[test]
    fn reasons() {
        let r = |end, st: Option<InitStatus>, oom, stop| exit_reason(end, st.as_ref(), oom, stop).0;
        assert_eq!(r(InitEnd::Exit(0), None, 0, true), "stopped by user");
        assert_eq!(
            r(
                InitEnd::Exit(3),
                Some(init(Some(LastExit::Code(3)), "none", false)),
                0,
                false
            ),
            "exit 3"
        );
        assert_eq!(
            r(
                InitEnd::Exit(3),
                Some(init(Some(LastExit::Code(3)), "none", true)),
                0,
                false
            ),
            "gave-up"
        );
        assert_eq!(
            r(
                InitEnd::Exit(137),
                Some(init(Some(LastExit::Signal(9)), "none", false)),
                1,
                false
            ),
            "oom"
        );
        assert_eq!(r(InitEnd::Exit(137), None, 1, false), "oom");
        assert_eq!(r(InitEnd::Exit(137), None, 0, false), "signal 9");
        assert_eq!(r(InitEnd::Signal(9), None, 0, false), "signal 9");
        assert_eq!(
            r(
                InitEnd::Exit(137),
                Some(init(Some(LastExit::Signal(9)), "unhealthy", false)),
                0,
                false
            ),
            "unhealthy"
        );
        assert_eq!(
            parse_after_exit("signal:9 2026-12-05T00:00:00Z"),
            Some(InitEnd::Signal(9))
        );
        assert_eq!(parse_after_exit("exit:3"), Some(InitEnd::Exit(3)));
        assert_eq!(parse_after_exit("x:3"), None);
    }

    #[test]
    fn clean_ends() {
        assert!(clean_end("stopped by user", 143));
        assert!(clean_end("exit 0", 0));
        for (r, s) in [
            ("exit 1", 1),
            ("gave-up", 1),
            ("unhealthy", 137),
            ("signal 9", 137),
        ] {
            assert!(!clean_end(r, s), "{r}");
        }
    }

    #[test]
    fn policy_and_backoff() {
        assert!(policy_restarts("always", 100));
        assert!(policy_restarts("unless-stopped", 0));
        assert!(!policy_restarts("no", 0));
        assert!(policy_restarts("on-failure:2", 1));
        assert!(!policy_restarts("on-failure:2", 2));
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(3), Duration::from_millis(800));
        assert_eq!(backoff(40), Duration::from_secs(30));
    }
}
