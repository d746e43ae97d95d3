//! Container engines driving the runtime under test: podman (`--runtime`
//! and a named runtime in containers.conf), containerd (`ctr` with the runc
//! v2 shim and `--runc-binary`) and Docker (`dockerd --add-runtime`), each
//! running its everyday commands.
//!
//! The very same scenarios run against runc (`RRUN_BIN=runc cargo test
//! --test engines`): they test what the engines observe, not rrun's quirks.
//!
//! Each engine gets its own daemons, roots, state dirs and sockets in a
//! scratch directory (no system service is used or assumed) and the busybox
//! image made by `scripts/engines/mkimage.sh` (a docker-archive, loaded into
//! every engine: no registry is reachable). The runtime is plugged in
//! through a wrapper script that logs every argv, so the test also proves
//! the engine really called it. Everything is stopped by pid and removed on
//! drop, also when a check fails.
//!
//! Host adjustment: podman's default rlimits (nofile and nproc 1048576)
//! exceed the hard limits of small CI machines, so the podman configuration
//! sets `default_ulimits` to modest values, for runc and rrun alike.
//!
//! An engine that is not installed, or whose daemon cannot start here, is
//! skipped with a printed reason; a failed check is collected and the test
//! fails at the end listing all of them.
//!
//! `RRUN_ENGINES_SYSTEMD=1` puts every engine on its defaults for a host
//! with systemd as PID 1 and cgroup v2 (run so in `make vm-systemd-test`):
//! podman with cgroup_manager = "systemd", the runc v2 shim with
//! SystemdCgroup (ctr --runc-systemd-cgroup), dockerd with
//! native.cgroupdriver=systemd; each then passes `--systemd-cgroup` and a
//! `slice:prefix:name` cgroupsPath to the runtime. Unset, the engines use
//! cgroupfs, as on a host without systemd.

mod common;

use common::*;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const IMAGE: &str = "localhost/busybox:rrun-test";
/// Upper bound for one engine command (image loads, container runs), in
/// seconds before scaling.
const ENGINE_TIMEOUT_SECS: u64 = 90;
/// A container that traps SIGTERM, prints "started" and loops.
const TRAP_LOOP: &str =
    "trap 'echo got-term; exit 0' TERM; echo started; while :; do sleep 0.1; done";
/// A container that ignores SIGTERM.
const DEAF_LOOP: &str = "trap '' TERM; echo started; while :; do sleep 0.1; done";

// ---------------------------------------------------------------------------
// The runtime under test and the shared image
// ---------------------------------------------------------------------------

/// Absolute path of the runtime under test (`RRUN_BIN`, else `RRUN`, else
/// the rrun cargo built); a bare name is looked up in PATH.
fn runtime_real() -> PathBuf {
    let p = match std::env::var_os("RRUN_BIN").or_else(|| std::env::var_os("RRUN")) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => rrun_bin(),
    };
    let found = if p.components().count() > 1 {
        Some(p.clone())
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(&p))
                .find(|c| c.is_file())
        })
    };
    let found = found.unwrap_or_else(|| panic!("runtime {} not found", p.display()));
    std::path::absolute(&found).unwrap_or(found)
}

/// `secs` seconds, times `RRUN_ENGINES_TIME_SCALE` (default 1): waits and
/// "fast enough" bounds stretch on a slow machine (the systemd VM under
/// qemu TCG sets 4); lower bounds ("waited the timeout") are never scaled.
fn scaled(secs: u64) -> Duration {
    let k = std::env::var("RRUN_ENGINES_TIME_SCALE")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|k| *k >= 1)
        .unwrap_or(1);
    Duration::from_secs(secs * k)
}

fn engine_timeout() -> Duration {
    scaled(ENGINE_TIMEOUT_SECS)
}

/// The engines use the systemd cgroup driver (see the module comment).
fn systemd_mode() -> bool {
    std::env::var_os("RRUN_ENGINES_SYSTEMD").is_some_and(|v| v == "1")
}

/// podman's cgroup_manager for this run.
fn podman_cgroup_manager() -> &'static str {
    if systemd_mode() {
        "systemd"
    } else {
        "cgroupfs"
    }
}

fn runtime_name() -> String {
    runtime_real()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "rrun".into())
}

/// The busybox image as a docker-archive, built once per test binary, or
/// `RRUN_ENGINES_IMAGE` (an archive made beforehand by
/// scripts/engines/mkimage.sh: the systemd VM, where building it under TCG
/// takes minutes).
fn image_archive() -> PathBuf {
    static IMG: OnceLock<PathBuf> = OnceLock::new();
    IMG.get_or_init(|| {
        if let Some(p) = std::env::var_os("RRUN_ENGINES_IMAGE").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        let out = target_dir().join("engines").join("busybox.tar");
        let mut c = Command::new(repo_dir().join("scripts/engines/mkimage.sh"));
        c.arg(&out).arg(IMAGE);
        run_timeout(c, engine_timeout()).ok();
        out
    })
    .clone()
}

// ---------------------------------------------------------------------------
// Collected checks
// ---------------------------------------------------------------------------

/// Failed checks of one engine, reported together at the end.
#[derive(Default)]
struct Checks {
    failed: Vec<String>,
    passed: usize,
}

impl Checks {
    fn check(&mut self, ok: bool, what: &str, detail: impl std::fmt::Display) -> bool {
        if ok {
            self.passed += 1;
        } else {
            self.failed.push(format!("{what}\n{detail}"));
        }
        ok
    }

    /// `out` exited with `code` and its stdout contains `needle`.
    fn out(&mut self, what: &str, out: &Output, code: i32, needle: &str) -> bool {
        self.check(
            out.code == Some(code) && out.stdout.contains(needle),
            what,
            format!("  want exit {code} and stdout containing {needle:?}\n{out}"),
        )
    }

    #[track_caller]
    fn finish(&self, engine: &str) {
        note(&format!(
            "{engine}: {} checks passed, {} failed [runtime: {}]",
            self.passed,
            self.failed.len(),
            runtime_real().display()
        ));
        assert!(
            self.failed.is_empty(),
            "{engine} with {}: {} failed check(s):\n\n{}",
            runtime_real().display(),
            self.failed.len(),
            self.failed.join("\n\n")
        );
    }
}

/// A line on the real stderr, visible even when libtest captures output.
fn note(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

// ---------------------------------------------------------------------------
// Scratch directory, daemons, the logging wrapper, cleanup
// ---------------------------------------------------------------------------

/// Run without panicking on timeout (for cleanup paths).
fn quiet(mut cmd: Command, timeout: Duration) -> Option<i32> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().ok()?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return st.code();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(pid: u32, sig: &str) {
    let mut c = Command::new("kill");
    c.arg(format!("-{sig}")).arg(pid.to_string());
    quiet(c, scaled(5));
}

struct Daemon {
    name: String,
    child: std::process::Child,
}

/// One engine's world: a scratch dir holding roots, sockets and the runtime
/// wrapper; daemons started by the test; teardown commands.
struct Engine {
    name: &'static str,
    dir: PathBuf,
    /// The wrapper around the runtime under test (same file name).
    runtime: PathBuf,
    argv_log: PathBuf,
    daemons: Vec<Daemon>,
    teardown: Vec<Command>,
    /// cgroup paths (relative to each hierarchy root) to remove at the end.
    cgroups: Vec<String>,
}

impl Engine {
    fn new(name: &'static str) -> Engine {
        let dir = std::env::temp_dir().join(format!("rrun-eng-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("bin")).unwrap();
        let argv_log = dir.join("runtime-argv.log");
        let runtime = dir.join("bin").join(runtime_name());
        fs::write(
            &runtime,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
                argv_log.display(),
                runtime_real().display()
            ),
        )
        .unwrap();
        set_mode(&runtime, 0o755);
        Engine {
            name,
            dir,
            runtime,
            argv_log,
            daemons: Vec::new(),
            teardown: Vec::new(),
            cgroups: Vec::new(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Start a daemon and wait until `socket` exists; None (after logging
    /// the daemon's output) when it does not come up.
    fn start_daemon(&mut self, name: &str, mut cmd: Command, socket: &Path) -> Option<()> {
        let log = self.path(&format!("{name}.log"));
        let f = fs::File::create(&log).unwrap();
        cmd.stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        self.daemons.push(Daemon {
            name: name.into(),
            child,
        });
        let up = poll(scaled(30), || {
            let d = self.daemons.last_mut().unwrap();
            if let Ok(Some(_)) = d.child.try_wait() {
                return Some(false);
            }
            socket.exists().then_some(true)
        });
        if up == Some(true) {
            Some(())
        } else {
            let text = fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            note(&format!(
                "{name} did not come up; last lines of its log:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
            None
        }
    }

    /// The runtime's argv lines logged by the wrapper.
    fn runtime_calls(&self) -> Vec<String> {
        fs::read_to_string(&self.argv_log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Check that the engine called the runtime for each of `verbs`, and
    /// print the distinct command shapes it used (ids and paths elided).
    fn check_calls(&self, checks: &mut Checks, verbs: &[&str]) {
        let calls = self.runtime_calls();
        let mut shapes: Vec<String> = calls.iter().map(|l| shape(l)).collect();
        shapes.sort();
        shapes.dedup();
        let mut msg = format!("{}: the engine called the runtime as:", self.name);
        for s in &shapes {
            let _ = write!(msg, "\n    {s}");
        }
        note(&msg);
        for v in verbs {
            let used = calls.iter().any(|l| l.split_whitespace().any(|w| w == *v));
            checks.check(
                used,
                &format!("engine called `{v}` on the runtime"),
                format!("  runtime calls:\n    {}", shapes.join("\n    ")),
            );
        }
    }

    /// Host-side value of a cgroup file of `pid` (v1 controller file, or the
    /// v2 file when the controller is not mounted as v1).
    fn cgroup_value(pid: &str, ctrl: &str, v1: &str, v2: &str) -> Option<String> {
        let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        let mi = fs::read_to_string("/proc/self/mountinfo").ok()?;
        let mount_of = |v2mount: bool| {
            mi.lines().find_map(|l| {
                let (pre, post) = l.split_once(" - ")?;
                let pre: Vec<&str> = pre.split_whitespace().collect();
                let post: Vec<&str> = post.split_whitespace().collect();
                let ok = if v2mount {
                    post.first() == Some(&"cgroup2")
                } else {
                    post.first() == Some(&"cgroup") && post.get(2)?.split(',').any(|o| o == ctrl)
                };
                if ok {
                    pre.get(4).map(PathBuf::from)
                } else {
                    None
                }
            })
        };
        if let Some(m) = mount_of(false) {
            let path = cg.lines().find_map(|l| {
                let mut it = l.splitn(3, ':');
                let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
                ctrls.split(',').any(|c| c == ctrl).then_some(path)
            })?;
            let f = m.join(path.trim_start_matches('/')).join(v1);
            return fs::read_to_string(f).ok().map(|s| s.trim().to_string());
        }
        let m = mount_of(true)?;
        let path = cg.lines().find_map(|l| l.strip_prefix("0::"))?;
        let f = m.join(path.trim_start_matches('/')).join(v2);
        fs::read_to_string(f).ok().map(|s| s.trim().to_string())
    }
}

/// A runtime argv with ids, paths and numbers elided, for the summary.
fn shape(line: &str) -> String {
    line.split_whitespace()
        .map(|w| {
            if w.starts_with('/') {
                "PATH".to_string()
            } else if let Some((flag, _)) = w.split_once("=/") {
                format!("{flag}=PATH")
            } else if w.starts_with("e2e-")
                || (w.len() >= 12
                    && !w.starts_with('-')
                    && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            {
                "ID".to_string()
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Drop for Engine {
    fn drop(&mut self) {
        for cmd in self.teardown.drain(..) {
            quiet(cmd, scaled(60));
        }
        // Daemons last-started first (dockerd before its containerd).
        while let Some(mut d) = self.daemons.pop() {
            if let Ok(None) = d.child.try_wait() {
                signal(d.child.id(), "TERM");
                let gone = poll(scaled(20), || {
                    matches!(d.child.try_wait(), Ok(Some(_))).then_some(())
                });
                if gone.is_none() {
                    note(&format!("{} ignored SIGTERM; killing it", d.name));
                    let _ = d.child.kill();
                    let _ = d.child.wait();
                }
            }
        }
        // Stray processes that still name our scratch dir (shims, conmon).
        let needle = self.dir.to_string_lossy().into_owned();
        if let Ok(rd) = fs::read_dir("/proc") {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Ok(pid) = name.parse::<u32>() else {
                    continue;
                };
                if pid == std::process::id() {
                    continue;
                }
                let cmdline = fs::read(e.path().join("cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmdline).contains(&needle) {
                    signal(pid, "KILL");
                }
            }
        }
        // Mounts under the scratch dir, deepest first.
        let mut mounts: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&needle))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let mut c = Command::new("umount");
            c.arg("-l").arg(&m);
            quiet(c, scaled(10));
        }
        // cgroups the engine made for its containers (empty dirs only).
        for rel in &self.cgroups {
            for h in cgroup_hierarchies() {
                rmdir_tree(&h.mountpoint.join(rel.trim_start_matches('/')));
            }
        }
        if std::env::var_os("RRUN_ENGINES_KEEP").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn rmdir_tree(p: &Path) {
    if let Ok(rd) = fs::read_dir(p) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                rmdir_tree(&e.path());
            }
        }
    }
    let _ = fs::remove_dir(p);
}

/// Run `cmdline` (a shell command line) under a pseudo-terminal with
/// `script`, which exits with the command's status.
fn with_tty(cmdline: &str) -> Output {
    let mut c = Command::new("script");
    c.args(["-qec", cmdline, "/dev/null"]);
    run_timeout(c, engine_timeout())
}

fn shell_join(prog: &Path, args: &[String]) -> String {
    let mut s = format!("'{}'", prog.display());
    for a in args {
        let _ = write!(s, " '{}'", a.replace('\'', r"'\''"));
    }
    s
}

fn timed(f: impl FnOnce() -> Output) -> (Output, Duration) {
    let t = Instant::now();
    let o = f();
    (o, t.elapsed())
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Skip unless we are root and every program in `cmds` is installed.
fn preflight(engine: &str, cmds: &[&str], pkg: &str) -> bool {
    if !is_root() {
        skip(&format!("{engine}: needs root"));
        return false;
    }
    for c in cmds {
        if !have_cmd(c) {
            skip(&format!(
                "{engine}: `{c}` not installed (apt-get install {pkg})"
            ));
            return false;
        }
    }
    true
}

// ---------------------------------------------------------------------------
// podman
// ---------------------------------------------------------------------------

struct Podman<'a> {
    e: &'a Engine,
    conf: PathBuf,
}

impl Podman<'_> {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", &self.conf).args(self.global());
        c.args(args);
        c
    }

    fn global(&self) -> Vec<String> {
        let e = self.e;
        vec![
            "--root".into(),
            e.path("root").display().to_string(),
            "--runroot".into(),
            e.path("runroot").display().to_string(),
            "--tmpdir".into(),
            e.path("tmp").display().to_string(),
            "--cgroup-manager".into(),
            podman_cgroup_manager().into(),
            "--events-backend".into(),
            "file".into(),
        ]
    }

    fn run(&self, args: &[&str]) -> Output {
        run_timeout(self.cmd(args), engine_timeout())
    }

    /// A command line for `script` (the env var is set in the line).
    fn line(&self, args: &[&str]) -> String {
        let mut all = self.global();
        all.extend(strs(args));
        format!(
            "CONTAINERS_CONF='{}' {}",
            self.conf.display(),
            shell_join(Path::new("podman"), &all)
        )
    }

    fn inspect(&self, name: &str, fmt: &str) -> String {
        self.run(&["inspect", "--format", fmt, name])
            .stdout
            .trim()
            .to_string()
    }
}

#[test]
fn podman() {
    if !preflight("podman", &["podman", "conmon", "script"], "podman") {
        return;
    }
    let image = image_archive();
    let mut e = Engine::new("podman");
    let conf = e.path("containers.conf");
    fs::write(
        &conf,
        format!(
            r#"# Written by tests/engines.rs.
[containers]
# podman's default nofile/nproc (1048576) exceed this host's hard limits.
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
cgroup_manager = "{cgm}"
events_logger = "file"
# The named runtime, also the default.
runtime = "rrun"
# Without this podman does not pass --log-format=json --log to a runtime
# it does not know and reads its stderr instead.
runtime_supports_json = ["crun", "runc", "rrun"]

[engine.runtimes]
rrun = ["{rt}"]
"#,
            cgm = podman_cgroup_manager(),
            rt = e.runtime.display()
        ),
    )
    .unwrap();
    for d in ["root", "runroot", "tmp"] {
        fs::create_dir_all(e.path(d)).unwrap();
    }
    let pm = Podman {
        e: &e,
        conf: conf.clone(),
    };
    let rm_all = pm.cmd(&["rm", "--all", "--force", "--time", "0"]);
    drop(pm);
    e.teardown.push(rm_all);
    // The rshared volume's host tmpfs (below), after the containers.
    let vol = e.path("prop-vol");
    let mut umount = Command::new("umount");
    umount.arg("-l").arg(&vol);
    e.teardown.push(umount);
    e.cgroups.push("libpod_parent".into());
    let pm = Podman { e: &e, conf };
    let rt = e.runtime.display().to_string();
    let mut ck = Checks::default();

    let load = pm.run(&["load", "--input", &image.display().to_string()]);
    if !load.success() {
        skip(&format!("podman cannot load an image here:\n{load}"));
        return;
    }
    let base = |extra: &[&str]| -> Vec<String> {
        let mut v = strs(&["run", "--runtime", &rt, "--network", "none"]);
        v.extend(strs(extra));
        v
    };
    let run = |extra: &[&str]| {
        let v = base(extra);
        pm.run(&v.iter().map(String::as_str).collect::<Vec<_>>())
    };

    // run --rm with output, via the path and via the named default runtime.
    let o = run(&["--rm", IMAGE, "echo", "hello from podman"]);
    ck.out(
        "podman run --rm (--runtime PATH)",
        &o,
        0,
        "hello from podman",
    );
    let o = pm.run(&["run", "--rm", "--network", "none", IMAGE, "echo", "named"]);
    ck.out(
        "podman run (named runtime in containers.conf)",
        &o,
        0,
        "named",
    );
    let o = pm.run(&[
        "run",
        "--rm",
        "--runtime",
        "rrun",
        "--network",
        "none",
        IMAGE,
        "true",
    ]);
    ck.out("podman run --runtime NAME", &o, 0, "");

    // Exit codes, including the program not found / not executable.
    let o = run(&["--rm", IMAGE, "sh", "-c", "exit 42"]);
    ck.out("podman run: exit code propagated", &o, 42, "");
    let o = run(&["--rm", IMAGE, "/nonexistent"]);
    ck.out("podman run /nonexistent: exit 127", &o, 127, "");
    let o = run(&["--rm", IMAGE, "nosuchcmd"]);
    ck.out("podman run nosuchcmd: exit 127", &o, 127, "");
    let o = run(&["--rm", IMAGE, "/etc/passwd"]);
    ck.out(
        "podman run /etc/passwd (not executable): exit 126",
        &o,
        126,
        "",
    );

    // A detached container: logs, exec, ps, top, pause/unpause, stop.
    let o = run(&["-d", "--name", "e2e-loop", IMAGE, "sh", "-c", TRAP_LOOP]);
    if ck.out("podman run -d", &o, 0, "") {
        let started = poll(scaled(15), || {
            pm.run(&["logs", "e2e-loop"])
                .stdout
                .contains("started")
                .then_some(())
        });
        ck.check(started.is_some(), "podman logs of a detached container", "");
        let o = pm.run(&["exec", "e2e-loop", "sh", "-c", "echo in-exec; exit 3"]);
        ck.out("podman exec: output and exit code", &o, 3, "in-exec");
        let o = pm.run(&["exec", "e2e-loop", "/nonexistent"]);
        ck.out("podman exec /nonexistent: exit 127", &o, 127, "");
        let o = pm.run(&["exec", "e2e-loop", "/etc/passwd"]);
        ck.out(
            "podman exec /etc/passwd (not executable): exit 126",
            &o,
            126,
            "",
        );
        let o = with_tty(&pm.line(&["exec", "-t", "e2e-loop", "tty"]));
        ck.out("podman exec -t (a real terminal)", &o, 0, "/dev/pts/");
        let o = pm.run(&["ps", "--format", "{{.Names}} {{.Status}}"]);
        ck.out("podman ps", &o, 0, "e2e-loop Up");
        // podman top lists the pids, then reads each /proc/PID/stat: a
        // `sleep 0.1` of the loop may end in between (often so on a slow
        // machine), so one retry-worthy failure is not the runtime's.
        let mut o = pm.run(&["top", "e2e-loop"]);
        for _ in 0..4 {
            if o.success() || !o.stderr.contains("no such process") {
                break;
            }
            o = pm.run(&["top", "e2e-loop"]);
        }
        ck.out("podman top", &o, 0, "sleep");
        let o = pm.run(&["pause", "e2e-loop"]);
        ck.out("podman pause", &o, 0, "");
        let st = pm.inspect("e2e-loop", "{{.State.Status}}");
        ck.check(st == "paused", "podman pause: status paused", &st);
        let o = pm.run(&["unpause", "e2e-loop"]);
        ck.out("podman unpause", &o, 0, "");
        let st = pm.inspect("e2e-loop", "{{.State.Status}}");
        ck.check(st == "running", "podman unpause: status running", &st);
        let (o, took) = timed(|| pm.run(&["stop", "--time", "10", "e2e-loop"]));
        ck.out("podman stop", &o, 0, "");
        ck.check(
            took < scaled(8),
            "podman stop: SIGTERM honoured (no KILL)",
            format!("{took:?}"),
        );
        let o = pm.run(&["logs", "e2e-loop"]);
        ck.out("podman stop: the program saw SIGTERM", &o, 0, "got-term");
        let st = pm.inspect("e2e-loop", "{{.State.Status}} {{.State.ExitCode}}");
        ck.check(st == "exited 0", "podman stop: exited 0", &st);
        pm.run(&["rm", "e2e-loop"]);
    }

    // stop: SIGKILL after the timeout when TERM is ignored.
    let o = run(&["-d", "--name", "e2e-deaf", IMAGE, "sh", "-c", DEAF_LOOP]);
    if ck.out("podman run -d (ignores TERM)", &o, 0, "") {
        poll(scaled(15), || {
            pm.run(&["logs", "e2e-deaf"])
                .stdout
                .contains("started")
                .then_some(())
        });
        let (o, took) = timed(|| pm.run(&["stop", "--time", "2", "e2e-deaf"]));
        ck.out("podman stop -t 2 (TERM ignored)", &o, 0, "");
        ck.check(
            took >= Duration::from_secs(2),
            "podman stop: waited the timeout before KILL",
            format!("{took:?}"),
        );
        let st = pm.inspect("e2e-deaf", "{{.State.Status}} {{.State.ExitCode}}");
        ck.check(st == "exited 137", "podman stop: killed (137)", &st);
        pm.run(&["rm", "e2e-deaf"]);
    }

    // kill
    let o = run(&["-d", "--name", "e2e-kill", IMAGE, "sleep", "1000"]);
    if ck.out("podman run -d sleep", &o, 0, "") {
        let o = pm.run(&["kill", "e2e-kill"]);
        ck.out("podman kill", &o, 0, "");
        let o = pm.run(&["wait", "e2e-kill"]);
        ck.out("podman wait after kill: 137", &o, 0, "137");
        pm.run(&["rm", "e2e-kill"]);
    }

    // create only (`podman init`: the pid file is read when create
    // returns), then the container's process dies before start.
    let o = pm.run(&[
        "create",
        "--name",
        "e2e-dies",
        "--runtime",
        &rt,
        "--network",
        "none",
        IMAGE,
        "echo",
        "ran",
    ]);
    if ck.out("podman create", &o, 0, "") {
        let o = pm.run(&["init", "e2e-dies"]);
        ck.out("podman init (runtime create only)", &o, 0, "");
        let st = pm.inspect("e2e-dies", "{{.State.Status}}");
        ck.check(st == "initialized", "podman init: initialized", &st);
        let pid = pm.inspect("e2e-dies", "{{.State.Pid}}");
        let alive = pid.parse::<i32>().map(pid_alive).unwrap_or(false);
        ck.check(
            alive,
            "podman init: the pid file names a live process",
            &pid,
        );
        if alive {
            signal(pid.parse().unwrap(), "KILL");
            poll(scaled(5), || {
                (!pid_alive(pid.parse().unwrap())).then_some(())
            });
        }
        // podman notices the dead process (conmon reports the exit: the
        // state goes back to "created"), then `start` creates the container
        // anew: it succeeds and the program runs.
        let noticed = poll(scaled(15), || {
            (pm.inspect("e2e-dies", "{{.State.Status}}") == "created").then_some(())
        });
        ck.check(
            noticed.is_some(),
            "podman notices the process died before start (status created)",
            pm.inspect("e2e-dies", "{{.State.Status}}"),
        );
        let o = pm.run(&["start", "e2e-dies"]);
        ck.out("podman start after the process died", &o, 0, "");
        let st = poll(scaled(15), || {
            let st = pm.inspect("e2e-dies", "{{.State.Status}} {{.State.ExitCode}}");
            matches!(st.as_str(), "stopped 0" | "exited 0").then_some(st)
        });
        ck.check(
            st.is_some(),
            "podman start after the process died: ran to exit 0",
            pm.inspect("e2e-dies", "{{.State.Status}} {{.State.ExitCode}}"),
        );
        let o = pm.run(&["logs", "e2e-dies"]);
        ck.out("podman start after the process died: output", &o, 0, "ran");
        pm.run(&["rm", "--force", "e2e-dies"]);
    }

    // run -t with a real terminal.
    let a = base(&["--rm", "-t", IMAGE, "sh", "-c", "tty; exit 5"]);
    let line = pm.line(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let o = with_tty(&line);
    ck.out("podman run -t: a terminal, exit code", &o, 5, "/dev/pts/");

    // Resources, seen from the host in the container's cgroup.
    let o = run(&[
        "-d",
        "--name",
        "e2e-res",
        "--memory",
        "64m",
        "--pids-limit",
        "33",
        "--cpus",
        "0.5",
        IMAGE,
        "sleep",
        "1000",
    ]);
    if ck.out("podman run --memory --pids-limit --cpus", &o, 0, "") {
        let pid = pm.inspect("e2e-res", "{{.State.Pid}}");
        let mem = Engine::cgroup_value(&pid, "memory", "memory.limit_in_bytes", "memory.max");
        ck.check(
            mem.as_deref() == Some("67108864"),
            "podman --memory 64m in the cgroup",
            format!("{mem:?}"),
        );
        let pids = Engine::cgroup_value(&pid, "pids", "pids.max", "pids.max");
        ck.check(
            pids.as_deref() == Some("33"),
            "podman --pids-limit 33 in the cgroup",
            format!("{pids:?}"),
        );
        let quota = Engine::cgroup_value(&pid, "cpu", "cpu.cfs_quota_us", "cpu.max");
        ck.check(
            matches!(quota.as_deref(), Some("50000") | Some("50000 100000")),
            "podman --cpus 0.5 in the cgroup",
            format!("{quota:?}"),
        );
        // podman update: the runtime's `update --resources=FILE`.
        let o = pm.run(&["update", "--memory", "128m", "e2e-res"]);
        ck.out("podman update --memory", &o, 0, "");
        let mem = Engine::cgroup_value(&pid, "memory", "memory.limit_in_bytes", "memory.max");
        ck.check(
            mem.as_deref() == Some("134217728"),
            "podman update --memory 128m in the cgroup",
            format!("{mem:?}"),
        );
        pm.run(&["rm", "--force", "--time", "0", "e2e-res"]);
    }

    rshared_volume(
        &mut ck,
        "podman",
        &vol,
        &run,
        &|a: &[&str]| pm.run(a),
        &["--privileged"],
    );

    e.check_calls(
        &mut ck,
        &[
            "create", "start", "exec", "kill", "pause", "resume", "update", "delete",
        ],
    );
    drop(pm);
    drop(e);
    ck.finish("podman");
}

/// `--volume SRC:DST:rshared` (the engine then asks for a shared root): a
/// mount made on the host under the source after start shows inside, and
/// one made inside under the destination shows on the host. The source
/// `vol` is a tmpfs of the test's own, made shared (the caller's teardown
/// detaches it after the containers are gone). `run` is the engine's
/// `run` with the runtime under test, `cli` any other command, `may_mount`
/// the `run` flags that let the container mount.
fn rshared_volume(
    ck: &mut Checks,
    engine: &str,
    vol: &Path,
    run: &dyn Fn(&[&str]) -> Output,
    cli: &dyn Fn(&[&str]) -> Output,
    may_mount: &[&str],
) {
    fs::create_dir_all(vol).unwrap();
    let mounted = sh(&format!(
        "mount -t tmpfs -o size=1m rrun-test-prop '{0}' && mount --make-shared '{0}' && \
         mkdir '{0}/h' '{0}/c'",
        vol.display()
    ));
    if !ck.out(
        &format!("{engine}: shared host tmpfs for the rshared volume"),
        &mounted,
        0,
        "",
    ) {
        return;
    }
    let v = format!("{}:/data:rshared", vol.display());
    let mut args = vec!["-d", "--name", "e2e-prop"];
    args.extend_from_slice(may_mount);
    args.extend(["-v", &v, IMAGE, "sleep", "1000"]);
    let o = run(&args);
    if !ck.out(&format!("{engine} run -v SRC:DST:rshared"), &o, 0, "") {
        return;
    }
    let host = sh(&format!(
        "mount -t tmpfs -o size=1m rrun-test-prop-h '{0}/h' && touch '{0}/h/from-host'",
        vol.display()
    ));
    ck.out(
        &format!("{engine}: a host mount under the source"),
        &host,
        0,
        "",
    );
    let o = cli(&[
        "exec",
        "e2e-prop",
        "sh",
        "-c",
        "test -e /data/h/from-host && echo host-mount-seen; \
         mount -t tmpfs -o size=1m rrun-test-prop-c /data/c && \
         touch /data/c/from-container",
    ]);
    ck.out(
        &format!("{engine} rshared volume: the host's mount shows inside"),
        &o,
        0,
        "host-mount-seen",
    );
    ck.check(
        vol.join("c/from-container").exists(),
        &format!("{engine} rshared volume: the container's mount shows on the host"),
        "",
    );
    // SIGKILL first: podman's rm would wait 10 s on a PID 1 that ignores TERM.
    cli(&["kill", "e2e-prop"]);
    cli(&["rm", "--force", "e2e-prop"]);
}

// ---------------------------------------------------------------------------
// containerd
// ---------------------------------------------------------------------------

/// Start a private containerd in `e` (root, state, sockets in its dir).
/// Returns its socket, or None when it cannot run here.
fn start_containerd(e: &mut Engine) -> Option<PathBuf> {
    let sock = e.path("containerd.sock");
    let config = e.path("containerd.toml");
    fs::write(
        &config,
        format!(
            r#"version = 2
root = "{root}"
state = "{state}"
# The CRI plugin is for kubelet; ctr and dockerd do not need it.
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
"#,
            opt = e.path("containerd-opt").display(),
            root = e.path("containerd-root").display(),
            state = e.path("containerd-state").display(),
            sock = sock.display()
        ),
    )
    .unwrap();
    let mut c = Command::new("containerd");
    c.arg("--config").arg(&config);
    e.start_daemon("containerd", c, &sock)?;
    Some(sock)
}

/// `ctr run` options for the runc v2 shim besides the binary: in systemd
/// mode its SystemdCgroup option (what kubeadm and most distributions set)
/// and the `slice:prefix:name` cgroup ctr then insists on (the CRI plugin
/// makes it from the pod's slice; here the namespace is the prefix).
fn runc_shim_opts(ns: &str, id: &str) -> Vec<String> {
    if systemd_mode() {
        vec![
            "--runc-systemd-cgroup".into(),
            "--cgroup".into(),
            format!("system.slice:{ns}:{id}"),
        ]
    } else {
        Vec::new()
    }
}

struct Ctr {
    sock: PathBuf,
    ns: String,
    runtime: PathBuf,
    runc_root: PathBuf,
}

impl Ctr {
    fn global(&self) -> Vec<String> {
        strs(&[
            "--address",
            &self.sock.display().to_string(),
            "--namespace",
            &self.ns,
        ])
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.args(self.global()).args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        run_timeout(self.cmd(args), engine_timeout())
    }

    /// `ctr run` with the runtime plugged into the runc v2 shim.
    fn run_ctr(&self, opts: &[&str], id: &str, argv: &[&str]) -> Output {
        let mut a = strs(&["run"]);
        a.extend(runc_shim_opts(&self.ns, id));
        a.push("--runc-binary".into());
        a.push(self.runtime.display().to_string());
        a.push("--runc-root".into());
        a.push(self.runc_root.display().to_string());
        a.extend(strs(opts));
        a.push(IMAGE.into());
        a.push(id.into());
        a.extend(strs(argv));
        self.run(&a.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// (pid, status) of task `id` from `ctr task ls`.
    fn task(&self, id: &str) -> Option<(String, String)> {
        let o = self.run(&["task", "ls"]);
        o.stdout.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&id) && f.len() >= 3).then(|| (f[1].to_string(), f[2].to_string()))
        })
    }

    fn wait_task(&self, id: &str, want: &str) -> String {
        poll(scaled(15), || {
            self.task(id).filter(|(_, s)| s == want).map(|(_, s)| s)
        })
        .unwrap_or_else(|| format!("{:?}", self.task(id)))
    }
}

#[test]
fn containerd() {
    if !preflight(
        "containerd",
        &["containerd", "ctr", "containerd-shim-runc-v2", "script"],
        "containerd",
    ) {
        return;
    }
    let image = image_archive();
    let mut e = Engine::new("containerd");
    let Some(sock) = start_containerd(&mut e) else {
        skip("containerd: the daemon does not start on this machine (log above)");
        return;
    };
    let ns = format!("rrun-eng-{}", std::process::id());
    let ctr = Ctr {
        sock,
        ns: ns.clone(),
        runtime: e.runtime.clone(),
        runc_root: e.path("runc-root"),
    };
    // Teardown: kill and delete every task and container in our namespace.
    let script = format!(
        "C='ctr --address {} --namespace {ns}'; \
         for t in $($C task ls -q); do $C task kill -s KILL $t; done; sleep 1; \
         for t in $($C task ls -q); do $C task delete -f $t; done; \
         for c in $($C container ls -q); do $C container delete $c; done",
        ctr.sock.display()
    );
    let mut td = Command::new("sh");
    td.arg("-c").arg(script);
    e.teardown.push(td);
    e.cgroups.push(ns.clone());
    let mut ck = Checks::default();

    let o = ctr.run(&["images", "import", &image.display().to_string()]);
    if !o.success() {
        skip(&format!("containerd cannot import an image here:\n{o}"));
        return;
    }

    let o = ctr.run_ctr(&["--rm"], "e2e-hello", &["echo", "hello from ctr"]);
    ck.out(
        "ctr run --rm --runc-binary: output",
        &o,
        0,
        "hello from ctr",
    );
    let o = ctr.run_ctr(&["--rm"], "e2e-exit", &["sh", "-c", "exit 7"]);
    ck.out("ctr run: exit code propagated", &o, 7, "");
    let o = with_tty(&shell_join(
        Path::new("ctr"),
        &[
            ctr.global(),
            strs(&["run", "--rm", "-t"]),
            runc_shim_opts(&ctr.ns, "e2e-tty"),
            strs(&["--runc-binary"]),
            vec![ctr.runtime.display().to_string(), "--runc-root".into()],
            vec![ctr.runc_root.display().to_string()],
            strs(&[IMAGE, "e2e-tty", "sh", "-c", "tty; exit 6"]),
        ]
        .concat(),
    ));
    ck.out("ctr run -t: a terminal, exit code", &o, 6, "/dev/pts/");

    // A detached task: exec, ps, pause/resume, metrics, kill, delete.
    let o = ctr.run_ctr(&["-d"], "e2e-loop", &["sh", "-c", TRAP_LOOP]);
    if ck.out("ctr run -d", &o, 0, "") {
        let st = ctr.wait_task("e2e-loop", "RUNNING");
        ck.check(st == "RUNNING", "ctr task ls: RUNNING", &st);
        let o = ctr.run(&[
            "task",
            "exec",
            "--exec-id",
            "x1",
            "e2e-loop",
            "sh",
            "-c",
            "echo in-exec; exit 5",
        ]);
        ck.out("ctr task exec: output and exit code", &o, 5, "in-exec");
        let line = shell_join(
            Path::new("ctr"),
            &[
                ctr.global(),
                strs(&["task", "exec", "-t", "--exec-id", "x2", "e2e-loop", "tty"]),
            ]
            .concat(),
        );
        let o = with_tty(&line);
        ck.out("ctr task exec -t", &o, 0, "/dev/pts/");
        let o = ctr.run(&["task", "ps", "e2e-loop"]);
        let init = ctr.task("e2e-loop").map(|t| t.0).unwrap_or_default();
        ck.check(
            o.success() && !init.is_empty() && o.stdout.contains(&init),
            "ctr task ps lists the init pid",
            format!("  init pid {init:?}\n{o}"),
        );
        let o = ctr.run(&["task", "pause", "e2e-loop"]);
        ck.out("ctr task pause", &o, 0, "");
        let st = ctr.wait_task("e2e-loop", "PAUSED");
        ck.check(st == "PAUSED", "ctr task pause: PAUSED", &st);
        let o = ctr.run(&["task", "resume", "e2e-loop"]);
        ck.out("ctr task resume", &o, 0, "");
        let st = ctr.wait_task("e2e-loop", "RUNNING");
        ck.check(st == "RUNNING", "ctr task resume: RUNNING", &st);
        let o = ctr.run(&["task", "metrics", "--format", "json", "e2e-loop"]);
        ck.out("ctr task metrics", &o, 0, "\"pids\"");
        // SIGTERM to the task: the trap runs, exit 0.
        let o = ctr.run(&["task", "kill", "e2e-loop"]);
        ck.out("ctr task kill (TERM)", &o, 0, "");
        let st = ctr.wait_task("e2e-loop", "STOPPED");
        ck.check(st == "STOPPED", "ctr task kill: STOPPED", &st);
        let o = ctr.run(&["task", "delete", "e2e-loop"]);
        ck.out("ctr task delete", &o, 0, "");
        let o = ctr.run(&["container", "delete", "e2e-loop"]);
        ck.out("ctr container delete", &o, 0, "");
    }

    // kill --all, and a memory limit seen in the task's cgroup.
    let o = ctr.run_ctr(
        &["-d", "--memory-limit", "67108864"],
        "e2e-mem",
        &["sh", "-c", "sleep 1000 & sleep 1000"],
    );
    if ck.out("ctr run -d --memory-limit", &o, 0, "") {
        ctr.wait_task("e2e-mem", "RUNNING");
        let pid = ctr.task("e2e-mem").map(|t| t.0).unwrap_or_default();
        let mem = Engine::cgroup_value(&pid, "memory", "memory.limit_in_bytes", "memory.max");
        ck.check(
            mem.as_deref() == Some("67108864"),
            "ctr --memory-limit in the cgroup",
            format!("{mem:?}"),
        );
        let o = ctr.run(&["task", "kill", "--all", "--signal", "KILL", "e2e-mem"]);
        ck.out("ctr task kill --all", &o, 0, "");
        let st = ctr.wait_task("e2e-mem", "STOPPED");
        ck.check(st == "STOPPED", "ctr task kill --all: STOPPED", &st);
        ctr.run(&["task", "delete", "e2e-mem"]);
        ctr.run(&["container", "delete", "e2e-mem"]);
    }

    // The program is missing: the error reaches ctr, nothing is left.
    let o = ctr.run_ctr(&["--rm"], "e2e-missing", &["/nonexistent"]);
    ck.check(
        o.code == Some(1) && o.stderr.contains("/nonexistent"),
        "ctr run /nonexistent: the runtime's error reaches ctr",
        &o,
    );
    ctr.run(&["container", "delete", "e2e-missing"]);

    e.check_calls(
        &mut ck,
        &[
            "create", "start", "exec", "ps", "pause", "resume", "kill", "delete",
        ],
    );
    drop(e);
    ck.finish("containerd");
}

// ---------------------------------------------------------------------------
// Docker
// ---------------------------------------------------------------------------

struct Docker {
    host: String,
}

impl Docker {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.args(["-H", &self.host]).args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        run_timeout(self.cmd(args), engine_timeout())
    }

    fn line(&self, args: &[&str]) -> String {
        let mut a = strs(&["-H", &self.host]);
        a.extend(strs(args));
        shell_join(Path::new("docker"), &a)
    }

    fn inspect(&self, name: &str, fmt: &str) -> String {
        self.run(&["inspect", "--format", fmt, name])
            .stdout
            .trim()
            .to_string()
    }

    fn wait_log(&self, name: &str, needle: &str) -> bool {
        poll(scaled(15), || {
            self.run(&["logs", name])
                .stdout
                .contains(needle)
                .then_some(())
        })
        .is_some()
    }
}

#[test]
fn docker() {
    if !preflight(
        "docker",
        &[
            "dockerd",
            "docker",
            "containerd",
            "containerd-shim-runc-v2",
            "script",
        ],
        "docker.io",
    ) {
        return;
    }
    let image = image_archive();
    let mut e = Engine::new("docker");
    let Some(ctd_sock) = start_containerd(&mut e) else {
        skip("docker: containerd does not start on this machine (log above)");
        return;
    };
    let sock = e.path("docker.sock");
    let cgroup_parent = format!("rrun-eng-{}-docker", std::process::id());
    // The same runtime once more under another name, from daemon.json.
    let daemon_json = e.path("daemon.json");
    fs::write(
        &daemon_json,
        format!(
            "{{\"runtimes\": {{\"rrun-json\": {{\"path\": \"{}\"}}}}}}\n",
            e.runtime.display()
        ),
    )
    .unwrap();
    let mut c = Command::new("dockerd");
    c.arg(format!("--containerd={}", ctd_sock.display()))
        .arg("--data-root")
        .arg(e.path("docker-root"))
        .arg("--exec-root")
        .arg(e.path("docker-exec"))
        .arg("--pidfile")
        .arg(e.path("docker.pid"))
        .arg("-H")
        .arg(format!("unix://{}", sock.display()))
        .args([
            "--iptables=false",
            "--ip-forward=false",
            "--ip-masq=false",
            "--bridge=none",
        ])
        .args(if systemd_mode() {
            // Docker's default parent under systemd: system.slice.
            vec![
                "--exec-opt".to_string(),
                "native.cgroupdriver=systemd".into(),
            ]
        } else {
            vec![format!("--cgroup-parent=/{cgroup_parent}")]
        })
        .arg("--add-runtime")
        .arg(format!("rrun={}", e.runtime.display()))
        .arg("--config-file")
        .arg(&daemon_json);
    if e.start_daemon("dockerd", c, &sock).is_none() {
        skip("docker: dockerd does not start on this machine (log above)");
        return;
    }
    let dk = Docker {
        host: format!("unix://{}", sock.display()),
    };
    let mut td = Command::new("sh");
    td.arg("-c").arg(format!(
        "D='docker -H {}'; $D ps -aq | xargs -r $D rm -f",
        dk.host
    ));
    e.teardown.push(td);
    // The rshared volume's host tmpfs, after the containers.
    let vol = e.path("prop-vol");
    let mut umount = Command::new("umount");
    umount.arg("-l").arg(&vol);
    e.teardown.push(umount);
    e.cgroups.push(cgroup_parent);
    let mut ck = Checks::default();

    let ready = poll(scaled(30), || {
        dk.run(&["info", "--format", "{{.ServerVersion}}"])
            .success()
            .then_some(())
    });
    if ready.is_none() {
        skip("docker: dockerd does not answer on its socket");
        return;
    }
    let o = dk.run(&["load", "--input", &image.display().to_string()]);
    if !o.success() {
        skip(&format!("docker cannot load an image here:\n{o}"));
        return;
    }
    let run = |extra: &[&str]| {
        let mut a = vec!["run", "--runtime", "rrun", "--network", "none"];
        a.extend_from_slice(extra);
        dk.run(&a)
    };

    let o = run(&["--rm", IMAGE, "echo", "hello from docker"]);
    ck.out(
        "docker run --runtime rrun --rm: output",
        &o,
        0,
        "hello from docker",
    );
    let o = dk.run(&[
        "run",
        "--runtime",
        "rrun-json",
        "--network",
        "none",
        "--rm",
        IMAGE,
        "echo",
        "daemon.json",
    ]);
    ck.out(
        "docker run --runtime NAME-from-daemon.json",
        &o,
        0,
        "daemon.json",
    );
    let o = run(&["--rm", IMAGE, "sh", "-c", "exit 9"]);
    ck.out("docker run: exit code propagated", &o, 9, "");
    let o = run(&["--rm", IMAGE, "/nonexistent"]);
    ck.out("docker run /nonexistent: exit 127", &o, 127, "");
    let o = with_tty(&dk.line(&[
        "run",
        "--runtime",
        "rrun",
        "--network",
        "none",
        "--rm",
        "-t",
        IMAGE,
        "sh",
        "-c",
        "tty; exit 4",
    ]));
    ck.out("docker run -t: a terminal, exit code", &o, 4, "/dev/pts/");

    let o = run(&["-d", "--name", "e2e-loop", IMAGE, "sh", "-c", TRAP_LOOP]);
    if ck.out("docker run -d", &o, 0, "") {
        ck.check(dk.wait_log("e2e-loop", "started"), "docker logs", "");
        let o = dk.run(&["exec", "e2e-loop", "sh", "-c", "echo in-exec; exit 4"]);
        ck.out("docker exec: output and exit code", &o, 4, "in-exec");
        let o = with_tty(&dk.line(&["exec", "-t", "e2e-loop", "tty"]));
        ck.out("docker exec -t", &o, 0, "/dev/pts/");
        let o = dk.run(&["top", "e2e-loop"]);
        ck.out("docker top", &o, 0, "sleep");
        let o = dk.run(&["pause", "e2e-loop"]);
        ck.out("docker pause", &o, 0, "");
        let st = dk.inspect("e2e-loop", "{{.State.Status}}");
        ck.check(st == "paused", "docker pause: paused", &st);
        let o = dk.run(&["unpause", "e2e-loop"]);
        ck.out("docker unpause", &o, 0, "");
        let st = dk.inspect("e2e-loop", "{{.State.Status}}");
        ck.check(st == "running", "docker unpause: running", &st);
        let (o, took) = timed(|| dk.run(&["stop", "--time", "10", "e2e-loop"]));
        ck.out("docker stop", &o, 0, "");
        ck.check(
            took < scaled(8),
            "docker stop: SIGTERM honoured",
            format!("{took:?}"),
        );
        ck.check(
            dk.wait_log("e2e-loop", "got-term"),
            "docker stop: the program saw SIGTERM",
            "",
        );
        let st = dk.inspect("e2e-loop", "{{.State.Status}} {{.State.ExitCode}}");
        ck.check(st == "exited 0", "docker stop: exited 0", &st);
        dk.run(&["rm", "e2e-loop"]);
    }

    let o = run(&["-d", "--name", "e2e-deaf", IMAGE, "sh", "-c", DEAF_LOOP]);
    if ck.out("docker run -d (ignores TERM)", &o, 0, "") {
        dk.wait_log("e2e-deaf", "started");
        let (o, took) = timed(|| dk.run(&["stop", "--time", "2", "e2e-deaf"]));
        ck.out("docker stop -t 2 (TERM ignored)", &o, 0, "");
        ck.check(
            took >= Duration::from_secs(2),
            "docker stop: waited before KILL",
            format!("{took:?}"),
        );
        let st = dk.inspect("e2e-deaf", "{{.State.Status}} {{.State.ExitCode}}");
        ck.check(st == "exited 137", "docker stop: killed (137)", &st);
        dk.run(&["rm", "e2e-deaf"]);
    }

    // --restart on-failure:2 is Docker's: the runtime sees three containers.
    let o = run(&[
        "-d",
        "--name",
        "e2e-restart",
        "--restart",
        "on-failure:2",
        IMAGE,
        "sh",
        "-c",
        "echo run; exit 3",
    ]);
    if ck.out("docker run --restart on-failure:2", &o, 0, "") {
        let st = poll(scaled(30), || {
            let s = dk.inspect(
                "e2e-restart",
                "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}",
            );
            (s == "exited 3 2").then_some(s)
        });
        ck.check(
            st.is_some(),
            "docker --restart on-failure:2: restarted twice, exited 3",
            dk.inspect(
                "e2e-restart",
                "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}",
            ),
        );
        let runs = dk
            .run(&["logs", "e2e-restart"])
            .stdout
            .matches("run")
            .count();
        ck.check(runs == 3, "docker --restart: three runs logged", runs);
        dk.run(&["rm", "--force", "e2e-restart"]);
    }

    let o = run(&[
        "-d", "--name", "e2e-mem", "--memory", "64m", IMAGE, "sleep", "1000",
    ]);
    if ck.out("docker run --memory 64m", &o, 0, "") {
        let pid = dk.inspect("e2e-mem", "{{.State.Pid}}");
        let mem = Engine::cgroup_value(&pid, "memory", "memory.limit_in_bytes", "memory.max");
        ck.check(
            mem.as_deref() == Some("67108864"),
            "docker --memory 64m in the cgroup",
            format!("{mem:?}"),
        );
        // No --cpu-shares: Docker passes shares 0, which means "unset".
        let shares = Engine::cgroup_value(&pid, "cpu", "cpu.shares", "cpu.weight");
        ck.check(
            matches!(shares.as_deref(), Some("1024") | Some("100")),
            "docker without --cpu-shares: default cpu weight",
            format!("{shares:?}"),
        );
        // docker update: the runtime's `update --resources -`, where Docker
        // sends 0 for every field not given (runc's "unset").
        let o = dk.run(&[
            "update",
            "--memory",
            "128m",
            "--memory-swap",
            "256m",
            "e2e-mem",
        ]);
        ck.out("docker update --memory", &o, 0, "");
        let mem = Engine::cgroup_value(&pid, "memory", "memory.limit_in_bytes", "memory.max");
        ck.check(
            mem.as_deref() == Some("134217728"),
            "docker update --memory 128m in the cgroup",
            format!("{mem:?}"),
        );
        let shares = Engine::cgroup_value(&pid, "cpu", "cpu.shares", "cpu.weight");
        ck.check(
            matches!(shares.as_deref(), Some("1024") | Some("100")),
            "docker update without --cpu-shares: cpu weight unchanged",
            format!("{shares:?}"),
        );
        dk.run(&["rm", "--force", "e2e-mem"]);
    }

    // Without its own pid namespace, the shim runs `kill --all ID 9` after
    // the init exits, on a stopped container, and logs when that fails.
    let o = run(&[
        "--rm",
        "--pid",
        "host",
        IMAGE,
        "sh",
        "-c",
        "sleep 1000 & echo host-pid",
    ]);
    ck.out("docker run --pid host", &o, 0, "host-pid");
    // Not --privileged: that asks for every capability, and a sandbox
    // without CAP_SYS_RESOURCE refuses it (runc alike).
    rshared_volume(
        &mut ck,
        "docker",
        &vol,
        &run,
        &|a: &[&str]| dk.run(a),
        &[
            "--cap-add",
            "SYS_ADMIN",
            "--security-opt",
            "seccomp=unconfined",
            "--security-opt",
            "apparmor=unconfined",
        ],
    );
    let log = fs::read_to_string(e.path("containerd.log")).unwrap_or_default();
    let bad: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("failed to kill init's children"))
        .collect();
    ck.check(
        bad.is_empty(),
        "containerd: `kill --all` after the init exited succeeds (no \"failed to kill init's children\")",
        bad.join("\n"),
    );

    e.check_calls(
        &mut ck,
        &[
            "create", "start", "exec", "ps", "pause", "resume", "kill", "update", "delete",
        ],
    );
    drop(e);
    ck.finish("docker");
}
