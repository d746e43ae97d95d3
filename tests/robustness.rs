//! Robustness: no leaks under load, no corruption under concurrency, no
//! panic on any input, clean recovery after a crash (docs/robustness.md).
//!
//! Every test here takes one process-wide lock: the soak measures this
//! process's open fds and the host's named network namespaces, which other
//! tests of this binary running in parallel would disturb.
//!
//! Names: every id, state root and cgroupsPath of a test starts with one
//! prefix from `unique_name()`, so the leak scan (`Leaks`) can look for it in
//! every cgroup hierarchy, in /proc/*/cmdline and in the mount table.
//!
//! `RRUN_SOAK_CYCLES=N` runs N soak cycles instead of the default 200
//! (`make soak` runs 10000).

mod common;

use common::*;
use serde_json::{Value, json};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier, Mutex, MutexGuard};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// `rrun --root ROOT ARGS...` with a timeout, stdio to anonymous files (a
/// container started by the command inherits them).
fn rr(root: &Path, args: &[&str]) -> Output {
    rr_env(root, args, &[])
}

fn rr_env(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(rrun_bin());
    c.arg("--root").arg(root).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = run_timeout(c, TIMEOUT);
    assert_no_panic(&o);
    o
}

/// rrun never panics and never dies of a signal it did not ask for.
#[track_caller]
fn assert_no_panic(o: &Output) {
    assert!(
        !o.stderr.contains("panicked") && !o.stdout.contains("panicked"),
        "rrun panicked:\n{o}"
    );
}

/// A state root, ids and cgroup paths sharing one prefix; on drop, scrubs
/// everything with that prefix (so a failing test leaves nothing).
struct Scope {
    prefix: String,
    root: PathBuf,
    bundles: Vec<Bundle>,
    n: usize,
}

impl Scope {
    fn new() -> Scope {
        let prefix = unique_name();
        let root = PathBuf::from(format!("/run/{prefix}"));
        Scope {
            prefix,
            root,
            bundles: Vec::new(),
            n: 0,
        }
    }

    fn id(&mut self) -> String {
        self.n += 1;
        format!("{}-c{}", self.prefix, self.n)
    }

    /// A bundle (sleep 100 by default) whose cgroupsPath carries the prefix.
    fn bundle(&mut self) -> Bundle {
        let cg = format!("{}-cg{}", self.prefix, self.n);
        self.n += 1;
        Bundle::new()
            .args(&["sleep", "100"])
            .with(|c| c["linux"]["cgroupsPath"] = json!(cg))
    }

    fn rr(&self, args: &[&str]) -> Output {
        rr(&self.root, args)
    }

    /// Create (stdio to files), returning the output.
    fn create(&self, b: &Bundle, id: &str) -> Output {
        b.write();
        let bp = b.path().to_string_lossy().into_owned();
        self.rr(&["create", "--bundle", &bp, id])
    }

    fn status(&self, id: &str) -> Option<String> {
        let o = self.rr(&["state", id]);
        if !o.success() {
            return None;
        }
        let v: Value = serde_json::from_str(&o.stdout)
            .unwrap_or_else(|e| panic!("state is not JSON ({e}):\n{o}"));
        Some(v["status"].as_str().expect("status").to_string())
    }

    fn state_pid(&self, id: &str) -> i32 {
        let o = self.rr(&["state", id]);
        o.ok();
        let v: Value = serde_json::from_str(&o.stdout).unwrap();
        v["pid"].as_i64().unwrap_or(0) as i32
    }

    /// Wait until `state` says `want`.
    fn wait_status(&self, id: &str, want: &str) {
        let mut last = None;
        let ok = poll(STATUS_TIMEOUT, || {
            last = self.status(id);
            (last.as_deref() == Some(want)).then_some(())
        });
        assert!(ok.is_some(), "{id}: wanted {want}, last {last:?}");
    }

    /// The pid recorded in the state dir's state.json (0 if none).
    fn recorded_pid(&self, id: &str) -> i32 {
        fs::read_to_string(self.root.join(id).join("state.json"))
            .ok()
            .and_then(|s| serde_json::from_str::<Value>(&s).ok())
            .and_then(|v| v["pid"].as_i64())
            .unwrap_or(0) as i32
    }

    /// Everything still on the host carrying our prefix.
    fn leaks(&self) -> Vec<String> {
        let mut paths: Vec<String> = self
            .bundles
            .iter()
            .map(|b| b.path().to_string_lossy().into_owned())
            .collect();
        paths.push(self.prefix.clone());
        leaks(&self.prefix, &self.root, &paths)
    }

    #[track_caller]
    fn assert_clean(&self) {
        // Processes may take a moment to be reaped by their reaper.
        let mut last = Vec::new();
        let ok = poll(Duration::from_secs(5), || {
            last = self.leaks();
            last.is_empty().then_some(())
        });
        assert!(ok.is_some(), "left behind: {last:#?}");
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        scrub(&self.prefix, &self.root);
    }
}

/// Recursively collect directories under `dir` whose name starts with
/// `prefix` (bounded depth: cgroup trees are shallow here).
fn find_named(dir: &Path, prefix: &str, depth: usize, out: &mut Vec<PathBuf>) {
    if depth == 0 {
        return;
    }
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let p = e.path();
        if e.file_name().to_string_lossy().starts_with(prefix) {
            out.push(p);
        } else {
            find_named(&p, prefix, depth - 1, out);
        }
    }
}

/// Every cgroup directory, in any hierarchy, named with `prefix`.
fn cgroups_named(prefix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for h in cgroup_hierarchies() {
        find_named(&h.mountpoint, prefix, 8, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

/// Host pids whose cmdline mentions `needle` (zombies included: their
/// cmdline is empty, so zombie children of this process are found apart).
fn procs_mentioning(needle: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) || name == me {
            continue;
        }
        let cmd = fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let stat = fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let after = stat.rfind(')').map(|i| &stat[i + 2..]).unwrap_or("");
        let f: Vec<&str> = after.split_whitespace().collect();
        let zombie_child = f.first() == Some(&"Z") && f.get(1) == Some(&me.as_str());
        if cmd.contains(needle) || zombie_child {
            out.push(format!("pid {name} state {:?}: {cmd}", f.first()));
        }
    }
    out
}

fn netns_list() -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir("/run/netns")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    if have_cmd("ip") {
        let o = sh("ip netns list");
        v.extend(o.stdout.lines().map(str::to_string));
    }
    v.sort();
    v
}

fn leaks(prefix: &str, root: &Path, mount_needles: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(root) {
        for e in rd.flatten() {
            out.push(format!("state entry {}", e.path().display()));
        }
    }
    for c in cgroups_named(prefix) {
        out.push(format!("cgroup {}", c.display()));
    }
    for n in mount_needles {
        for m in mounts_mentioning(n) {
            out.push(format!("mount {m}"));
        }
    }
    for p in procs_mentioning(prefix) {
        out.push(format!("process {p}"));
    }
    out
}

/// Best-effort removal of everything named with `prefix`.
fn scrub(prefix: &str, root: &Path) {
    if let Ok(rd) = fs::read_dir(root) {
        for e in rd.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            let mut c = Command::new(rrun_bin());
            c.arg("--root").arg(root).args(["delete", "--force", &id]);
            c.stdout(Stdio::null()).stderr(Stdio::null());
            if let Ok(mut ch) = c.spawn() {
                let deadline = Instant::now() + TIMEOUT;
                while let Ok(None) = ch.try_wait() {
                    if Instant::now() > deadline {
                        let _ = ch.kill();
                        let _ = ch.wait();
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
    for p in procs_mentioning(prefix) {
        if let Some(pid) = p.split_whitespace().nth(1) {
            let _ = Command::new("kill")
                .args(["-9", pid])
                .stderr(Stdio::null())
                .status();
        }
    }
    std::thread::sleep(Duration::from_millis(50));
    let mut cgs = cgroups_named(prefix);
    cgs.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    for c in cgs {
        rmdir_tree(&c);
    }
    let mut mps: Vec<String> = mounts_mentioning(prefix)
        .iter()
        .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
        .collect();
    mps.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for mp in mps {
        let _ = Command::new("umount")
            .args(["-l", &mp])
            .stderr(Stdio::null())
            .status();
    }
    let _ = fs::remove_dir_all(root);
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

fn open_fds() -> usize {
    fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn kill_pid(pid: i32, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

fn sleeper() -> std::process::Child {
    Command::new("sleep")
        .arg("1000")
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn sleep")
}

// ---------------------------------------------------------------------------
// Soak
// ---------------------------------------------------------------------------

fn soak_cycles() -> usize {
    std::env::var("RRUN_SOAK_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

/// The config variants of the soak; each is a (name, bundle, expected
/// outcome of create).
#[derive(Clone, Copy, PartialEq, Debug)]
enum Expect {
    /// create/start/kill/delete
    Lifecycle,
    /// foreground `run` exiting 0
    Run,
    /// `run --detach`, then `delete --force`
    Detach,
    /// create then `delete --force` (never started)
    CreatedDelete,
    /// create (or start) fails on purpose
    Fails,
}

struct Variant {
    name: &'static str,
    bundle: Bundle,
    expect: Expect,
}

fn soak_variants(s: &mut Scope, hostdir: &Path) -> Vec<Variant> {
    let userns = is_root();
    let mut v = Vec::new();
    let mut add = |name, bundle: Bundle, expect| {
        v.push(Variant {
            name,
            bundle,
            expect,
        })
    };
    add("plain", s.bundle(), Expect::Lifecycle);
    add("run", s.bundle().sh("echo hi > /dev/null"), Expect::Run);
    if userns {
        add(
            "userns",
            s.bundle().namespace("user", None).with(|c| {
                c["linux"]["uidMappings"] =
                    json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
                c["linux"]["gidMappings"] =
                    json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
            }),
            Expect::Lifecycle,
        );
    }
    add(
        "mounts",
        s.bundle()
            .bind_mount(hostdir, "/mnt", &["rbind", "ro"])
            .mount(
                json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                          "options": ["size=1m"]}),
            )
            .sh("test -d /mnt && touch /tmp/x"),
        Expect::Run,
    );
    add(
        "limits",
        s.bundle().with(|c| {
            c["linux"]["resources"]["memory"] = json!({ "limit": 64 * 1024 * 1024 });
            c["linux"]["resources"]["pids"] = json!({ "limit": 32 });
        }),
        Expect::Detach,
    );
    add(
        "hooks",
        s.bundle()
            .hook("prestart", json!({"path": "/bin/true"}))
            .hook("createRuntime", json!({"path": "/bin/true"}))
            .hook("poststart", json!({"path": "/bin/true"}))
            .hook("poststop", json!({"path": "/bin/true"})),
        Expect::Lifecycle,
    );
    add(
        "init",
        s.bundle()
            .with(|c| c["annotations"] = json!({ "rrun.init": "true" }))
            .sh("sleep 100 & wait"),
        Expect::Lifecycle,
    );
    add(
        "init-run",
        s.bundle()
            .with(|c| c["annotations"] = json!({ "rrun.init": "true" }))
            .sh("true"),
        Expect::Run,
    );
    add("created-delete", s.bundle(), Expect::CreatedDelete);
    add(
        "missing-exe",
        s.bundle().args(&["/no/such/executable"]),
        Expect::Fails,
    );
    add(
        "failing-hook",
        s.bundle()
            .hook("createRuntime", json!({"path": "/bin/false"})),
        Expect::Fails,
    );
    add(
        "bad-sysctl",
        s.bundle()
            .with(|c| c["linux"]["sysctl"] = json!({ "net.ipv4.ip_forward": "not-a-number" })),
        Expect::Fails,
    );
    v
}

/// One soak cycle of variant `v` under `id`; returns an error text on an
/// unexpected outcome (leaks are checked at the end).
fn soak_cycle(s: &Scope, v: &Variant, id: &str) -> Result<(), String> {
    let bp = v.bundle.path().to_string_lossy().into_owned();
    let chk = |o: &Output, what: &str| -> Result<(), String> {
        if o.success() {
            Ok(())
        } else {
            Err(format!("{} ({what}):\n{o}", v.name))
        }
    };
    match v.expect {
        Expect::Lifecycle => {
            chk(&s.rr(&["create", "--bundle", &bp, id]), "create")?;
            chk(&s.rr(&["start", id]), "start")?;
            chk(&s.rr(&["kill", id, "KILL"]), "kill")?;
            let stopped = poll(STATUS_TIMEOUT, || {
                (s.status(id).as_deref() == Some("stopped")).then_some(())
            });
            if stopped.is_none() {
                return Err(format!("{}: not stopped after kill", v.name));
            }
            chk(&s.rr(&["delete", id]), "delete")?;
        }
        Expect::Run => {
            chk(&s.rr(&["run", "--bundle", &bp, id]), "run")?;
        }
        Expect::Detach => {
            chk(&s.rr(&["run", "--detach", "--bundle", &bp, id]), "run -d")?;
            chk(&s.rr(&["delete", "--force", id]), "delete -f")?;
        }
        Expect::CreatedDelete => {
            chk(&s.rr(&["create", "--bundle", &bp, id]), "create")?;
            chk(&s.rr(&["delete", "--force", id]), "delete -f")?;
        }
        Expect::Fails => {
            let c = s.rr(&["create", "--bundle", &bp, id]);
            let failed = if c.success() {
                // runc resolves a missing executable only at start.
                let st = s.rr(&["start", id]);
                let _ = s.rr(&["delete", "--force", id]);
                !st.success()
            } else {
                if c.stderr.trim().is_empty() || c.code != Some(1) {
                    return Err(format!("{}: unclear failure:\n{c}", v.name));
                }
                true
            };
            if !failed {
                return Err(format!("{}: should have failed", v.name));
            }
            if s.root.join(id).exists() {
                return Err(format!("{}: failed create left its state dir", v.name));
            }
        }
    }
    Ok(())
}

#[test]
fn soak_lifecycle_mix_leaves_nothing() {
    require!(is_root(), "needs root");
    let _g = serial();
    let mut s = Scope::new();
    let hostdir = tempfile::tempdir().unwrap();
    let variants = soak_variants(&mut s, hostdir.path());
    for v in &variants {
        v.bundle.write();
    }
    let cycles = soak_cycles();
    let netns_before = netns_list();

    // Warm up once per variant (lazy statics, tempfile machinery), then
    // take the fd baseline.
    for v in &variants {
        let id = s.id();
        soak_cycle(&s, v, &id).unwrap_or_else(|e| panic!("warm-up: {e}"));
    }
    let fds_before = open_fds();
    let t0 = Instant::now();
    let mut errors = Vec::new();
    for i in 0..cycles {
        let v = &variants[i % variants.len()];
        let id = s.id();
        if let Err(e) = soak_cycle(&s, v, &id) {
            errors.push(e);
            let _ = s.rr(&["delete", "--force", &id]);
            if errors.len() > 5 {
                break;
            }
        }
    }
    let took = t0.elapsed();
    let fds_after = open_fds();
    s.bundles = variants.into_iter().map(|v| v.bundle).collect();
    let left = {
        let mut last = Vec::new();
        poll(Duration::from_secs(5), || {
            last = s.leaks();
            last.is_empty().then_some(())
        });
        last
    };
    let netns_after = netns_list();
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!(
            "SOAK: {cycles} cycles in {:.1}s ({:.1} ms/cycle), errors {}, leaks {}, fds {fds_before}->{fds_after}\n",
            took.as_secs_f64(),
            took.as_secs_f64() * 1000.0 / cycles.max(1) as f64,
            errors.len(),
            left.len()
        )
        .as_bytes(),
    );
    assert!(errors.is_empty(), "unexpected outcomes: {errors:#?}");
    assert!(left.is_empty(), "left behind: {left:#?}");
    assert_eq!(
        netns_before, netns_after,
        "named network namespaces changed"
    );
    assert!(
        fds_after <= fds_before,
        "open fds grew in the test process: {fds_before} -> {fds_after}"
    );
}

// ---------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------

/// Run `args` from `n` threads released together by a barrier.
fn race(root: &Path, n: usize, args: Vec<Vec<String>>) -> Vec<Output> {
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let b = barrier.clone();
            let root = root.to_path_buf();
            let a = args[i % args.len()].clone();
            std::thread::spawn(move || {
                let refs: Vec<&str> = a.iter().map(String::as_str).collect();
                b.wait();
                rr(&root, &refs)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn sv(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn concurrent_create_of_one_id_has_one_winner() {
    require!(is_root(), "needs root");
    require!(
        !is_runc(),
        "runc 1.1.5 fails this: a losing create can remove the winner's state dir and leave its init running"
    );
    let _g = serial();
    let mut s = Scope::new();
    let b = s.bundle();
    b.write();
    let bp = b.path().to_string_lossy().into_owned();
    for trial in 0..10 {
        let id = s.id();
        let outs = race(&s.root, 12, vec![sv(&["create", "--bundle", &bp, &id])]);
        let winners: Vec<&Output> = outs.iter().filter(|o| o.success()).collect();
        assert_eq!(
            winners.len(),
            1,
            "trial {trial}: exactly one create must win: {outs:#?}"
        );
        for o in outs.iter().filter(|o| !o.success()) {
            assert_eq!(o.code, Some(1), "trial {trial}: loser:\n{o}");
            o.stderr_mentions(&["already exists"]);
        }
        assert_eq!(s.status(&id).as_deref(), Some("created"), "trial {trial}");
        let pid = s.state_pid(&id);
        assert!(pid_alive(pid), "trial {trial}: winner's init {pid} is gone");
        s.rr(&["start", &id]).ok();
        assert_eq!(s.status(&id).as_deref(), Some("running"));
        s.rr(&["delete", "--force", &id]).ok();
        assert!(
            poll(Duration::from_secs(5), || (!pid_alive(pid)).then_some(())).is_some(),
            "init {pid} survived delete"
        );
    }
    s.bundles.push(b);
    s.assert_clean();
}

/// `state` output is either a clean failure or a well-formed state.
#[track_caller]
fn check_state_output(o: &Output) {
    assert_no_panic(o);
    if o.success() {
        let v: Value = serde_json::from_str(&o.stdout)
            .unwrap_or_else(|e| panic!("corrupt state output ({e}):\n{o}"));
        let st = v["status"].as_str().unwrap_or("");
        assert!(
            ["creating", "created", "running", "stopped", "paused"].contains(&st),
            "bad status:\n{o}"
        );
    } else {
        assert_eq!(o.code, Some(1), "state failed oddly:\n{o}");
        assert!(!o.stderr.trim().is_empty(), "state failed silently:\n{o}");
    }
}

#[test]
fn delete_racing_start_and_kill_racing_delete() {
    require!(is_root(), "needs root");
    let _g = serial();
    let mut s = Scope::new();
    let b = s.bundle();
    b.write();
    let bp = b.path().to_string_lossy().into_owned();
    for trial in 0..8 {
        // delete --force racing start.
        let id = s.id();
        s.rr(&["create", "--bundle", &bp, &id]).ok();
        let pid = s.state_pid(&id);
        let outs = race(
            &s.root,
            2,
            vec![sv(&["start", &id]), sv(&["delete", "--force", &id])],
        );
        for o in &outs {
            assert!(
                o.success() || (o.code == Some(1) && !o.stderr.trim().is_empty()),
                "trial {trial}:\n{o}"
            );
        }
        check_state_output(&s.rr(&["state", &id]));
        let _ = s.rr(&["delete", "--force", &id]);
        assert!(
            poll(Duration::from_secs(5), || (!pid_alive(pid)).then_some(())).is_some(),
            "trial {trial}: init {pid} survived"
        );

        // kill racing delete (plain and forced).
        let id = s.id();
        s.rr(&["run", "--detach", "--bundle", &bp, &id]).ok();
        let pid = s.state_pid(&id);
        let outs = race(
            &s.root,
            3,
            vec![
                sv(&["kill", &id, "KILL"]),
                sv(&["delete", &id]),
                sv(&["delete", "--force", &id]),
            ],
        );
        for o in &outs {
            assert!(
                o.success() || (o.code == Some(1) && !o.stderr.trim().is_empty()),
                "trial {trial}:\n{o}"
            );
        }
        let _ = s.rr(&["delete", "--force", &id]);
        assert!(
            poll(Duration::from_secs(5), || (!pid_alive(pid)).then_some(())).is_some(),
            "trial {trial}: init {pid} survived"
        );
    }
    s.bundles.push(b);
    s.assert_clean();
}

#[test]
fn state_and_list_during_create_and_delete() {
    require!(
        !is_runc(),
        "runc 1.1 `list` fails when a container's state dir goes away while it lists"
    );
    require!(is_root(), "needs root");
    let _g = serial();
    let mut s = Scope::new();
    let b = s.bundle();
    b.write();
    let bp = b.path().to_string_lossy().into_owned();
    let ids: Vec<String> = (0..15).map(|_| s.id()).collect();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|k| {
            let root = s.root.clone();
            let ids = ids.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                let mut n = 0;
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    let id = &ids[(n + k) % ids.len()];
                    check_state_output(&rr(&root, &["state", id]));
                    let l = rr(&root, &["list", "--format", "json"]);
                    l.ok();
                    let v: Value = serde_json::from_str(&l.stdout)
                        .unwrap_or_else(|e| panic!("corrupt list output ({e}):\n{l}"));
                    assert!(v.is_array() || v.is_null(), "list json:\n{l}");
                    let q = rr(&root, &["list", "-q"]);
                    q.ok();
                    n += 1;
                }
                n
            })
        })
        .collect();
    for id in &ids {
        s.rr(&["create", "--bundle", &bp, id]).ok();
        s.rr(&["start", id]).ok();
        s.rr(&["delete", "--force", id]).ok();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let reads: usize = readers.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(reads > 0);
    s.bundles.push(b);
    s.assert_clean();
}

// ---------------------------------------------------------------------------
// Crash consistency
// ---------------------------------------------------------------------------

const FAILPOINTS: &[&str] = &[
    "create-claimed",
    "create-cloned",
    "create-cgroups",
    "create-pid-saved",
    "create-ready",
    "create-saved",
    "start-exec-done",
    "delete-killed",
    "delete-cgroups-removed",
    "delete-hooks-run",
];

/// Reached only with `--systemd-cgroup` (the unit started, the init told
/// its cgroup): crashed at in systemd mode (RRUN_TEST_SYSTEMD_CGROUP=1, the
/// systemd VM), where `crash_` covers it with the others.
const SYSTEMD_FAILPOINTS: &[&str] = &["create-unit"];

/// The failpoints compiled into src/ (debug builds) are the ones we test.
#[test]
fn failpoint_list_matches_source() {
    let mut found = Vec::new();
    let mut stack = vec![repo_dir().join("src")];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = fs::read_to_string(&p).unwrap();
                // process/ marks its steps with checkpoint(), which is a
                // failpoint plus a --debug timing line.
                for marker in ["failpoint(\"", "checkpoint(\""] {
                    for part in text.split(marker).skip(1) {
                        if let Some(end) = part.find('"') {
                            found.push(part[..end].to_string());
                        }
                    }
                }
            }
        }
    }
    found.sort();
    let mut want: Vec<String> = FAILPOINTS
        .iter()
        .chain(SYSTEMD_FAILPOINTS)
        .map(|s| s.to_string())
        .collect();
    want.sort();
    assert_eq!(found, want, "failpoints in src/ vs this test's list");
}

/// `rrun --root ROOT ARGS...` with a short timeout; None when it hangs
/// (the child is killed).
fn rr_try(root: &Path, args: &[&str], timeout: Duration) -> Option<Output> {
    let mut c = Command::new(rrun_bin());
    c.arg("--root").arg(root).args(args);
    let mut bg = Background::spawn(c);
    let deadline = Instant::now() + timeout;
    while let Ok(None) = bg.child.try_wait() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let o = bg.wait(TIMEOUT);
    assert_no_panic(&o);
    Some(o)
}

/// After a crash at `fp` of container `id`: list/state sane, then
/// `delete --force` removes everything. Err describes what went wrong.
fn recover_after_crash(
    s: &Scope,
    b: &Bundle,
    fp: &str,
    id: &str,
    pids: &[i32],
) -> Result<String, String> {
    let t = Duration::from_secs(10);
    let l = rr_try(&s.root, &["list", "--format", "json"], t)
        .ok_or_else(|| format!("{fp}: `list` hangs"))?;
    if !l.success() {
        return Err(format!("{fp}: list failed:\n{l}"));
    }
    let v: Value = serde_json::from_str(&l.stdout)
        .map_err(|e| format!("{fp}: list is not JSON ({e}):\n{l}"))?;
    let listed: Vec<&Value> = v
        .as_array()
        .map(|a| a.iter().filter(|c| c["id"] == json!(id)).collect())
        .unwrap_or_default();
    for c in &listed {
        let st = c["status"].as_str().unwrap_or("");
        if !["creating", "created", "running", "stopped"].contains(&st) {
            return Err(format!("{fp}: list shows status {st:?}:\n{l}"));
        }
    }
    let listed_as = listed.first().map(|c| c["status"].clone());
    let st = rr_try(&s.root, &["state", id], t)
        .ok_or_else(|| format!("{fp}: `state {id}` hangs (listed as {listed_as:?})"))?;
    check_state_output(&st);

    let d = rr_try(&s.root, &["delete", "--force", id], t)
        .ok_or_else(|| format!("{fp}: `delete --force {id}` hangs"))?;
    if s.root.join(id).exists() {
        return Err(format!("{fp}: state dir left after delete --force:\n{d}"));
    }
    for pid in pids {
        if poll(Duration::from_secs(5), || (!pid_alive(*pid)).then_some(())).is_none() {
            return Err(format!("{fp}: recorded init pid {pid} still alive"));
        }
    }
    let mut last = Vec::new();
    let clean = poll(Duration::from_secs(5), || {
        last = leaks(
            &s.prefix,
            &s.root,
            &[b.path().to_string_lossy().into_owned()],
        );
        last.is_empty().then_some(())
    });
    if clean.is_none() {
        return Err(format!("{fp}: left behind: {last:#?}"));
    }
    Ok(format!(
        "{fp}: listed as {listed_as:?}, state {:?}",
        st.stdout.contains("\"status\"")
    ))
}

#[test]
fn crash_at_every_failpoint_recovers() {
    require!(is_root(), "needs root");
    require!(!is_runc(), "failpoints are rrun's (RRUN_FAILPOINT)");
    let _g = serial();
    let mut s = Scope::new();
    let b = s.bundle().hook("poststop", json!({"path": "/bin/true"}));
    b.write();
    let bp = b.path().to_string_lossy().into_owned();
    let mut report = Vec::new();
    let mut failures = Vec::new();
    let systemd = if systemd_mode() {
        SYSTEMD_FAILPOINTS
    } else {
        &[]
    };
    for fp in FAILPOINTS.iter().chain(systemd) {
        let id = s.id();
        let env = [("RRUN_FAILPOINT", *fp)];
        let pidfile = s.root.with_extension(format!("{id}.pid"));
        let pf = pidfile.to_string_lossy().into_owned();
        let crashed = if fp.starts_with("create-") {
            rr_env(
                &s.root,
                &["create", "--bundle", &bp, "--pid-file", &pf, &id],
                &env,
            )
        } else {
            s.rr(&["create", "--bundle", &bp, "--pid-file", &pf, &id])
                .ok();
            if fp.starts_with("start-") {
                rr_env(&s.root, &["start", &id], &env)
            } else {
                s.rr(&["start", &id]).ok();
                rr_env(&s.root, &["delete", "--force", &id], &env)
            }
        };
        assert_eq!(
            crashed.signal,
            Some(9),
            "{fp}: rrun should have killed itself:\n{crashed}"
        );
        let mut pids = vec![s.recorded_pid(&id)];
        if let Ok(p) = fs::read_to_string(&pidfile) {
            pids.push(p.trim().parse().unwrap_or(0));
        }
        pids.retain(|p| *p > 0);
        match recover_after_crash(&s, &b, fp, &id, &pids) {
            Ok(r) => report.push(r),
            Err(e) => {
                failures.push(e);
                // Unblock and clean up for the next failpoint.
                for p in &pids {
                    kill_pid(*p, "KILL");
                }
                std::thread::sleep(Duration::from_millis(100));
                let _ = rr_try(
                    &s.root,
                    &["delete", "--force", &id],
                    Duration::from_secs(10),
                );
                scrub(&id, &s.root.join("none"));
            }
        }
        let _ = fs::remove_file(&pidfile);
    }
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("CRASH: ok {report:#?}\nCRASH: failed {failures:#?}\n").as_bytes(),
    );
    s.bundles.push(b);
    s.assert_clean();
    assert!(
        failures.is_empty(),
        "recovery after a crash failed: {failures:#?}"
    );
}

#[test]
fn init_dying_before_start() {
    require!(is_root(), "needs root");
    let _g = serial();
    let mut s = Scope::new();
    let b = s.bundle();
    let id = s.id();
    s.create(&b, &id).ok();
    let pid = s.state_pid(&id);
    kill_pid(pid, "KILL");
    s.wait_status(&id, "stopped");
    let st = s.rr(&["start", &id]);
    st.failed().stderr_is_short_error();
    s.rr(&["delete", &id]).ok();
    s.bundles.push(b);
    s.assert_clean();
}

#[test]
fn reused_pid_is_never_signalled() {
    require!(is_root(), "needs root");
    let _g = serial();
    let mut s = Scope::new();
    let b = s.bundle();
    for how in ["kill", "delete", "delete-force"] {
        let id = s.id();
        s.create(&b, &id).ok();
        if how != "kill" {
            s.rr(&["start", &id]).ok();
        }
        let pid = s.state_pid(&id);
        kill_pid(pid, "KILL");
        s.wait_status(&id, "stopped");
        // Simulate pid reuse: point state.json at a live unrelated process.
        let mut other = sleeper();
        let opid = other.id() as i32;
        let sf = s.root.join(&id).join("state.json");
        let mut v: Value = serde_json::from_str(&fs::read_to_string(&sf).unwrap()).unwrap();
        v["pid"] = json!(opid);
        fs::write(&sf, serde_json::to_vec(&v).unwrap()).unwrap();

        assert_eq!(
            s.status(&id).as_deref(),
            Some("stopped"),
            "{how}: a reused pid must read as stopped"
        );
        match how {
            "kill" => {
                let k = s.rr(&["kill", &id, "KILL"]);
                assert!(!k.success(), "kill of a stopped container succeeded:\n{k}");
                let _ = s.rr(&["kill", "--all", &id, "KILL"]);
                s.rr(&["delete", &id]).ok();
            }
            "delete" => {
                s.rr(&["delete", &id]).ok();
            }
            _ => {
                s.rr(&["delete", "--force", &id]).ok();
            }
        }
        std::thread::sleep(Duration::from_millis(100));
        let alive = matches!(other.try_wait(), Ok(None));
        let _ = other.kill();
        let _ = other.wait();
        assert!(alive, "{how}: rrun signalled the unrelated process {opid}");
    }
    s.bundles.push(b);
    s.assert_clean();
}

/// A tmpfs mounted for a test; unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn new(path: PathBuf, opts: &str) -> Tmpfs {
        fs::create_dir_all(&path).unwrap();
        let o = sh(&format!(
            "mount -t tmpfs -o {opts} tmpfs '{}'",
            path.display()
        ));
        o.ok();
        Tmpfs(path)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .stderr(Stdio::null())
            .status();
        let _ = fs::remove_dir(&self.0);
    }
}

#[test]
fn full_state_root_fails_cleanly_then_works() {
    require!(is_root(), "needs root");
    let _g = serial();
    let mut s = Scope::new();
    let b = s.bundle();
    let tmp = Tmpfs::new(s.root.clone(), "size=64k,mode=0700");
    // Fill it up (a write error ends the loop: ENOSPC).
    let fill = s.root.join("filler");
    {
        use std::io::Write;
        let mut f = fs::File::create(&fill).unwrap();
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
    let id = s.id();
    let o = s.create(&b, &id);
    o.failed().stderr_is_short_error();
    assert_eq!(o.code, Some(1), "{o}");
    assert!(
        !s.root.join(&id).exists(),
        "failed create left its state dir"
    );
    assert!(
        procs_mentioning(&id).is_empty(),
        "processes left: {:?}",
        procs_mentioning(&id)
    );
    assert!(cgroups_named(&s.prefix).is_empty(), "cgroups left");
    s.rr(&["list"]).ok();

    fs::remove_file(&fill).unwrap();
    s.create(&b, &id).ok();
    s.rr(&["start", &id]).ok();
    s.rr(&["delete", "--force", &id]).ok();
    s.bundles.push(b);
    drop(tmp);
    s.assert_clean();
}

#[test]
fn read_only_state_root_fails_cleanly() {
    require!(is_root(), "needs root");
    let _g = serial();
    let mut s = Scope::new();
    let b = s.bundle();
    let tmp = Tmpfs::new(s.root.clone(), "size=1m,mode=0700");
    // One container made while writable, then the root goes read-only.
    let id1 = s.id();
    s.create(&b, &id1).ok();
    sh(&format!("mount -o remount,ro '{}'", s.root.display())).ok();
    let id2 = s.id();
    let o = s.create(&b, &id2);
    o.failed().stderr_is_short_error();
    assert_eq!(o.code, Some(1), "{o}");
    assert!(!s.root.join(&id2).exists());
    check_state_output(&s.rr(&["state", &id1]));
    s.rr(&["list"]).ok();
    assert!(
        procs_mentioning(&id2).is_empty(),
        "processes left: {:?}",
        procs_mentioning(&id2)
    );
    sh(&format!("mount -o remount,rw '{}'", s.root.display())).ok();
    s.rr(&["delete", "--force", &id1]).ok();
    s.bundles.push(b);
    drop(tmp);
    s.assert_clean();
}

// ---------------------------------------------------------------------------
// Signals to rrun
// ---------------------------------------------------------------------------

/// A foreground `run` forwards the signals it receives to the container.
#[test]
fn foreground_run_forwards_signals() {
    require!(is_root(), "needs root");
    let _g = serial();
    let mut s = Scope::new();
    let out = tempfile::tempdir().unwrap();
    set_mode(out.path(), 0o777);
    let mut sigs = vec!["INT", "TERM", "HUP", "QUIT", "USR1", "USR2"];
    if is_runc() {
        skip("runc 1.1 does not forward SIGWINCH without a terminal (it only resizes)");
    } else {
        sigs.push("WINCH");
    }
    let traps: String = sigs
        .iter()
        .map(|s| format!("trap 'echo {s} >> /out/log' {s}; "))
        .collect();
    let script = format!(
        "{traps} echo ready > /out/ready; while [ ! -e /out/stop ]; do sleep 0.05; done; exit 7"
    );
    let b = s
        .bundle()
        .bind_mount(out.path(), "/out", &["rbind", "rw"])
        .sh(&script);
    b.write();
    let id = s.id();
    let bp = b.path().to_string_lossy().into_owned();
    let mut c = Command::new(rrun_bin());
    c.arg("--root")
        .arg(&s.root)
        .args(["run", "--bundle", &bp, &id]);
    let bg = Background::spawn(c);
    let rpid = bg.child.id() as i32;
    assert!(
        poll(STATUS_TIMEOUT, || out
            .path()
            .join("ready")
            .exists()
            .then_some(()))
        .is_some(),
        "container never got ready"
    );
    let log = out.path().join("log");
    for (i, sig) in sigs.iter().enumerate() {
        kill_pid(rpid, sig);
        let got = poll(Duration::from_secs(5), || {
            let t = fs::read_to_string(&log).unwrap_or_default();
            (t.lines().count() > i).then_some(t)
        });
        assert!(
            got.is_some(),
            "SIG{sig} was not forwarded; log: {:?}",
            fs::read_to_string(&log).unwrap_or_default()
        );
    }
    let t = fs::read_to_string(&log).unwrap();
    let got: Vec<&str> = t.lines().collect();
    assert_eq!(got, sigs, "signals recorded in order");
    fs::write(out.path().join("stop"), "").unwrap();
    let o = bg.wait(TIMEOUT);
    assert_no_panic(&o);
    assert_eq!(o.code, Some(7), "run exits with the program's status:\n{o}");
    s.bundles.push(b);
    s.assert_clean();
}

/// What happens when rrun itself is SIGKILLed during a foreground `run`
/// (documented in docs/robustness.md): the container is neither killed nor
/// cleaned up — rrun has no chance to run — exactly as with runc (whose
/// container also survives its `runc run` being SIGKILLed). It keeps running,
/// is reparented to the nearest subreaper or PID 1, `state` says `running`,
/// and `delete --force` removes everything.
#[test]
fn sigkill_of_foreground_run_leaves_a_deletable_container() {
    require!(is_root(), "needs root");
    let _g = serial();
    let mut s = Scope::new();
    let b = s.bundle().args(&["sleep", "100"]);
    b.write();
    let id = s.id();
    let bp = b.path().to_string_lossy().into_owned();
    let mut c = Command::new(rrun_bin());
    c.arg("--root")
        .arg(&s.root)
        .args(["run", "--bundle", &bp, &id]);
    let bg = Background::spawn(c);
    s.wait_status(&id, "running");
    let pid = s.state_pid(&id);
    kill_pid(bg.child.id() as i32, "KILL");
    let o = bg.wait(TIMEOUT);
    assert_eq!(o.signal, Some(9));
    std::thread::sleep(Duration::from_millis(200));
    let after = s.status(&id);
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!(
            "SIGKILL of foreground run: container status afterwards {after:?}, init alive {}\n",
            pid_alive(pid)
        )
        .as_bytes(),
    );
    assert!(
        matches!(after.as_deref(), Some("running") | Some("stopped")),
        "state after SIGKILL of run: {after:?}"
    );
    s.rr(&["delete", "--force", &id]).ok();
    assert!(
        poll(Duration::from_secs(5), || (!pid_alive(pid)).then_some(())).is_some(),
        "init {pid} survived delete --force"
    );
    s.bundles.push(b);
    s.assert_clean();
}
