//! rrun's built-in init (`rrun-init` as PID 1, turned on by `rrun.*`
//! annotations): reaping, signal forwarding, exit status, restart policies,
//! backoff, the start limit, health checks, stopping, terminals, the
//! process config, `state`/`list`/`events`, annotation validation, and that
//! nothing of the host is reachable through PID 1.
//!
//! These are rrun-only features: runc ignores the annotations, so every
//! test skips (with a printed reason) when the suite runs against runc.

#[macro_use]
mod common;

use common::*;
use serde_json::{Value, json};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Skip unless root and running against rrun (runc ignores `rrun.*`).
macro_rules! rrun_init_only {
    () => {
        require!(is_root(), "needs root");
        require!(
            !is_runc(),
            "the built-in init (rrun.* annotations) is rrun-only; runc ignores the annotations"
        );
    };
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Add `rrun.*` (or any) annotations to a bundle.
fn annotate(b: Bundle, ann: &[(&str, &str)]) -> Bundle {
    b.with(|c| {
        if c.get("annotations").is_none() {
            c["annotations"] = json!({});
        }
        for (k, v) in ann {
            c["annotations"][*k] = json!(v);
        }
    })
}

/// A host temp dir bind-mounted read-write at /out in the container: the
/// program leaves its traces there (runs, signals, ...).
struct Out {
    dir: tempfile::TempDir,
}

impl Out {
    fn new() -> Out {
        let dir = tempfile::Builder::new()
            .prefix("rrun-test-init-out-")
            .tempdir()
            .expect("out tempdir");
        set_mode(dir.path(), 0o777);
        Out { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    fn lines(&self, name: &str) -> Vec<String> {
        self.read(name).lines().map(str::to_string).collect()
    }

    /// Wait until `name` satisfies `pred`; returns its content.
    #[track_caller]
    fn wait_for(&self, name: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let got = poll(STATUS_TIMEOUT, || {
            let s = self.read(name);
            pred(&s).then_some(s)
        });
        got.unwrap_or_else(|| {
            panic!(
                "timed out waiting for {what} in /out/{name}; it holds {:?}",
                self.read(name)
            )
        })
    }

    /// A bundle running `script` with this dir at /out and `ann`.
    fn bundle(&self, script: &str, ann: &[(&str, &str)]) -> Bundle {
        annotate(
            Bundle::new()
                .sh(script)
                .bind_mount(self.dir.path(), "/out", &["rbind", "rw"]),
            ann,
        )
    }
}

/// The program's trace of runs: appends a line to /out/runs and sets `$n`
/// to the number of this run (1, 2, ...).
const COUNT_RUN: &str = "echo run >> /out/runs; n=$(wc -l < /out/runs); ";

/// `state ID`'s `init` object (remembering the program's host pid for the
/// leak checks of `assert_clean`).
#[track_caller]
fn init_state(c: &Container) -> Value {
    let v = c.state();
    let init = v["init"].clone();
    assert!(init.is_object(), "state has no init object:\n{v:#}");
    if let Some(p) = init["pid"].as_i64() {
        c.remember(p as i32);
    }
    init
}

/// Poll `state` until its `init` object satisfies `pred`; panics (with the
/// last reading) after `timeout` or when the container stops first.
#[track_caller]
fn wait_init(c: &Container, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    let got = poll(timeout, || {
        let o = c.state_output();
        let v: Value = serde_json::from_str(&o.stdout).ok()?;
        if let Some(p) = v["pid"].as_i64().filter(|p| *p > 0) {
            c.remember(p as i32);
        }
        if let Some(p) = v["init"]["pid"].as_i64() {
            c.remember(p as i32);
        }
        last = v.clone();
        if v["status"] == "stopped" {
            return Some(None);
        }
        pred(&v["init"]).then(|| Some(v["init"].clone()))
    });
    match got {
        Some(Some(init)) => init,
        Some(None) => panic!(
            "container {} stopped while waiting for {what}; last state:\n{last:#}",
            c.id
        ),
        None => panic!("timed out after {timeout:?} waiting for {what}; last state:\n{last:#}"),
    }
}

/// `init.starts` as numbers (unix ms).
fn starts(init: &Value) -> Vec<u64> {
    init["starts"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

/// `rrun events ID` in the background (stats only once an hour).
fn events(c: &Container) -> Background {
    Background::spawn(c.cmd(&["events", "--interval", "1h", &c.id]))
}

/// The non-stats events printed by `rrun events`.
#[track_caller]
fn init_events(o: &Output) -> Vec<Value> {
    o.stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .unwrap_or_else(|e| panic!("event line {l:?} is not JSON ({e}):\n{o}"))
        })
        .filter(|v| v["type"] != "stats")
        .collect()
}

/// Stop a detached container with `rrun kill` (TERM) and delete it.
#[track_caller]
fn stop_and_delete(c: &Container) {
    if c.status() != "stopped" {
        c.kill("TERM").ok();
    }
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

/// Host pids whose pid namespace is `pidns` (from `ns_of`).
fn pids_in_pidns(pidns: &str) -> Vec<i32> {
    let mut v = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if fs::read_link(format!("/proc/{pid}/ns/pid"))
            .map(|l| l.to_string_lossy() == pidns)
            .unwrap_or(false)
        {
            v.push(pid);
        }
    }
    v
}

/// argv of a host pid, space-joined.
fn cmdline_of(pid: i32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .trim_end_matches('\0')
                .replace('\0', " ")
        })
        .unwrap_or_default()
}

/// The `Key:` line values of /proc/<pid>/status.
fn status_field(pid: i32, key: &str) -> String {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{key}:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

// ---------------------------------------------------------------------------
// On and off
// ---------------------------------------------------------------------------

#[test]
fn default_off_the_program_is_pid1() {
    rrun_init_only!();
    let script = "echo pid=$$; readlink /proc/1/exe";
    for ann in [&[][..], &[("rrun.init", "false"), ("other.key", "x")][..]] {
        let c = Container::new(annotate(Bundle::new().sh(script), ann));
        let out = c.run_ok();
        assert!(
            out.lines().any(|l| l == "pid=1"),
            "{ann:?}: program is not PID 1:\n{out}"
        );
        assert!(!out.contains("memfd"), "{ann:?}: init is on:\n{out}");
        c.assert_clean();
    }
    // And no init object in state / no extra list columns.
    let c = Container::new(Bundle::new().args(&["sleep", "1000"]));
    c.run_detached().ok();
    let st = c.state();
    assert!(
        st.get("init").is_none(),
        "init object without the init:\n{st:#}"
    );
    let list = c.rrun(&["list"]);
    list.ok();
    assert!(!list.stdout.contains("RESTARTS"), "{list}");
    assert!(!list.stdout.contains("HEALTH"), "{list}");
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn init_on_the_program_is_not_pid1() {
    rrun_init_only!();
    for ann in [
        ("rrun.init", "true"),
        ("rrun.restart", "no"),
        ("rrun.stop-timeout", "1s"),
        ("rrun.health.cmd", "[\"true\"]"),
    ] {
        let c = Container::new(annotate(
            Bundle::new().sh("echo pid=$$; echo ppid=$PPID"),
            &[ann],
        ));
        let out = c.run_ok();
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            !lines.contains(&"pid=1"),
            "{ann:?}: program is PID 1:\n{out}"
        );
        assert!(
            lines.contains(&"ppid=1"),
            "{ann:?}: PID 1 is not the parent:\n{out}"
        );
        c.assert_clean();
    }
}

// ---------------------------------------------------------------------------
// Reaping, signals, exit status
// ---------------------------------------------------------------------------

#[test]
fn orphaned_grandchildren_are_reaped() {
    rrun_init_only!();
    let out = Out::new();
    // Two orphans (their subshell parents exit at once) reparent to PID 1
    // and exit after 100ms; the program looks at them after 600ms.
    let script = "echo me=$$; (sleep 0.1 & echo $! > /out/o1); (sleep 0.1 & echo $! > /out/o2); \
        sleep 0.02; for o in o1 o2; do p=$(cat /out/$o); \
          echo \"$o ppid $(cut -d' ' -f4 /proc/$p/stat)\"; done; \
        sleep 0.6; \
        for o in o1 o2; do p=$(cat /out/$o); \
          if [ -e /proc/$p ]; then echo \"$o left $(cut -d' ' -f3 /proc/$p/stat)\"; \
          else echo \"$o gone\"; fi; done; \
        for f in /proc/[0-9]*/stat; do cut -d' ' -f1-3 $f; done";
    let c = Container::new(out.bundle(script, &[("rrun.init", "true")]));
    let o = c.run();
    o.ok();
    // The orphans' parent is the init, not the program.
    assert!(
        o.stdout
            .lines()
            .any(|l| l.starts_with("me=") && l != "me=1"),
        "the program is PID 1:\n{o}"
    );
    assert!(
        o.stdout.contains("o1 ppid 1\n") && o.stdout.contains("o2 ppid 1\n"),
        "the orphans were not reparented to PID 1:\n{o}"
    );
    assert!(
        o.stdout.contains("o1 gone\n") && o.stdout.contains("o2 gone\n"),
        "exited orphans were not reaped (zombies left):\n{o}"
    );
    let zombies: Vec<&str> = o
        .stdout
        .lines()
        .filter(|l| l.split_whitespace().nth(2) == Some("Z"))
        .collect();
    assert!(
        zombies.is_empty(),
        "zombies in the container: {zombies:?}\n{o}"
    );
    c.assert_clean();
}

#[test]
fn forwarded_signals_arrive() {
    rrun_init_only!();
    let out = Out::new();
    let mut script = String::new();
    for s in ["USR1", "USR2", "HUP", "INT", "WINCH", "QUIT"] {
        script.push_str(&format!("trap 'echo {s} >> /out/sigs' {s}; "));
    }
    script.push_str("echo ready > /out/ready; while :; do sleep 0.05; done");
    let c = Container::new(out.bundle(&script, &[("rrun.init", "true")]));
    let bg = c.run_background();
    out.wait_for("ready", "the program's traps", |s| s.contains("ready"));
    c.wait_status("running");
    let mut want = Vec::new();
    for s in ["USR1", "USR2", "HUP", "INT", "WINCH", "QUIT"] {
        c.kill(s).ok();
        want.push(s.to_string());
        out.wait_for("sigs", &format!("SIG{s} forwarded"), |t| {
            t.lines().collect::<Vec<_>>() == want
        });
    }
    // TERM (rrun kill's default) is forwarded too; the untrapped program
    // dies of it and the container's status is 128+15.
    c.rrun(&["kill", &c.id]).ok();
    let o = bg.wait(TIMEOUT);
    assert_eq!(o.code, Some(143), "{o}");
    c.assert_clean();
}

#[test]
fn signal_group_reaches_the_programs_process_group() {
    rrun_init_only!();
    let script = "trap 'echo parent >> /out/sigs' USR1; \
        sh -c 'trap \"echo child >> /out/sigs\" USR1; echo > /out/ready; \
               while :; do sleep 0.05; done' & \
        while :; do sleep 0.05; done";
    for group in [true, false] {
        let out = Out::new();
        let mut ann = vec![("rrun.init", "true")];
        if group {
            ann.push(("rrun.signal-group", "true"));
        }
        let c = Container::new(out.bundle(script, &ann));
        c.run_detached().ok();
        out.wait_for("ready", "the child's trap", |s| !s.is_empty());
        std::thread::sleep(Duration::from_millis(100));
        c.kill("USR1").ok();
        out.wait_for("sigs", "the program's USR1", |s| s.contains("parent"));
        if group {
            out.wait_for("sigs", "the group member's USR1", |s| s.contains("child"));
        } else {
            std::thread::sleep(Duration::from_millis(400));
            assert!(
                !out.read("sigs").contains("child"),
                "without rrun.signal-group the signal reached the whole group: {:?}",
                out.read("sigs")
            );
        }
        stop_and_delete(&c);
    }
}

#[test]
fn exit_codes_and_signal_deaths_propagate_through_run() {
    rrun_init_only!();
    for (script, want) in [
        ("exit 3", 3),
        ("exit 0", 0),
        ("kill -9 $$", 137),
        ("kill -TERM $$", 143),
        ("exec /nonexistent-rrun-cmd", 127),
    ] {
        let c = Container::new(annotate(Bundle::new().sh(script), &[("rrun.init", "true")]));
        let o = c.run();
        assert_eq!(o.code, Some(want), "{script}: {o}");
        c.assert_clean();
    }
    // A program that cannot be started at all (not found in the rootfs).
    let c = Container::new(annotate(
        Bundle::new().args(&["/no/such/program"]),
        &[("rrun.init", "true")],
    ));
    let o = c.run();
    assert!(matches!(o.code, Some(c) if c != 0), "{o}");
    c.assert_clean();
}

// ---------------------------------------------------------------------------
// Restart policies
// ---------------------------------------------------------------------------

/// The outcomes of a first run (later runs just sleep).
const OUTCOMES: [(&str, &str); 4] = [
    ("exit 0", "exit 0"),
    ("exit 1", "exit 1"),
    ("SIGKILL", "kill -9 $$"),
    ("SIGTERM", "kill -TERM $$"),
];

/// Run a container per outcome under `policy` (concurrently) and check
/// which ones were restarted.
#[track_caller]
fn check_policy(policy: &str, extra: &[(&str, &str)], want: [bool; 4]) {
    let cases: Vec<(Out, Container)> = OUTCOMES
        .iter()
        .map(|(_, outcome)| {
            let out = Out::new();
            let mut ann = vec![("rrun.restart", policy), ("rrun.restart.delay", "50ms")];
            ann.extend_from_slice(extra);
            let script =
                format!("{COUNT_RUN} if [ $n -ge 2 ]; then exec sleep 1000; fi; {outcome}");
            let c = Container::new(out.bundle(&script, &ann));
            c.run_detached().ok();
            (out, c)
        })
        .collect();
    for (((name, _), (out, c)), want) in OUTCOMES.iter().zip(&cases).zip(want) {
        // Either a second start or the end of the container decides.
        let decided = poll(Duration::from_secs(10), || {
            let o = c.state_output();
            let v: Value = serde_json::from_str(&o.stdout).ok()?;
            if v["status"] == "stopped" {
                return Some(false);
            }
            (starts(&v["init"]).len() >= 2).then_some(true)
        });
        let restarted = decided.unwrap_or_else(|| {
            panic!("policy {policy}, {name}: neither restarted nor stopped within 10s")
        });
        assert_eq!(
            restarted,
            want,
            "policy {policy} {extra:?}, first run ended by {name}: restarted={restarted}, want {want}; runs {:?}",
            out.lines("runs")
        );
        if restarted {
            let init = init_state(c);
            assert_eq!(init["restarts"], 1, "{init:#}");
            assert_eq!(out.lines("runs").len(), 2);
        } else {
            assert_eq!(out.lines("runs").len(), 1, "policy {policy}, {name}");
        }
    }
    for (_, c) in &cases {
        stop_and_delete(c);
    }
}

// Columns: exit 0, exit 1, SIGKILL, SIGTERM. SIGHUP/INT/TERM/PIPE deaths
// are clean for on-abnormal and on-abort.
#[test]
fn policy_no() {
    rrun_init_only!();
    check_policy("no", &[], [false, false, false, false]);
}

#[test]
fn policy_always() {
    rrun_init_only!();
    check_policy("always", &[], [true, true, true, true]);
}

#[test]
fn policy_on_success() {
    rrun_init_only!();
    check_policy("on-success", &[], [true, false, false, false]);
}

#[test]
fn policy_on_failure() {
    rrun_init_only!();
    check_policy("on-failure", &[], [false, true, true, true]);
}

#[test]
fn policy_on_abnormal() {
    rrun_init_only!();
    check_policy("on-abnormal", &[], [false, false, true, false]);
}

#[test]
fn policy_on_abort() {
    rrun_init_only!();
    check_policy("on-abort", &[], [false, false, true, false]);
}

#[test]
fn policy_without_restart_key_is_no() {
    rrun_init_only!();
    check_policy("no", &[("rrun.init", "true")], [false, false, false, false]);
}

#[test]
fn on_failure_n_stops_after_n_restarts() {
    rrun_init_only!();
    let out = Out::new();
    let c = Container::new(out.bundle(
        &format!("{COUNT_RUN} exit 5"),
        &[
            ("rrun.restart", "on-failure:2"),
            ("rrun.restart.delay", "50ms"),
        ],
    ));
    let o = c.run();
    assert_eq!(o.code, Some(5), "{o}");
    assert_eq!(out.lines("runs").len(), 3, "1 run + 2 restarts\n{o}");
    c.assert_clean();
}

#[test]
fn success_exit_and_prevent_exit_lists() {
    rrun_init_only!();
    // (policy, success-exit, prevent-exit, exit of run 1, of later runs,
    //  container status, runs)
    let cases = [
        // 4 counts as success: on-failure does not restart.
        ("on-failure", "3,4", "", "4", "4", 4, 1),
        // ... and on-success does; run 2 fails and is not restarted.
        ("on-success", "3", "", "3", "1", 1, 2),
        // prevent-exit stops even "always"; any code of the list.
        ("always", "", "7, 42", "1", "42", 42, 2),
        ("always", "", "7,42", "7", "0", 7, 1),
        // ... and beats on-failure:N's remaining restarts.
        ("on-failure:5", "", "9", "1", "9", 9, 2),
    ];
    for (policy, success, prevent, first, later, want_code, want_runs) in cases {
        let out = Out::new();
        let mut ann = vec![("rrun.restart", policy), ("rrun.restart.delay", "50ms")];
        if !success.is_empty() {
            ann.push(("rrun.restart.success-exit", success));
        }
        if !prevent.is_empty() {
            ann.push(("rrun.restart.prevent-exit", prevent));
        }
        let script = format!("{COUNT_RUN} if [ $n -eq 1 ]; then exit {first}; fi; exit {later}");
        let c = Container::new(out.bundle(&script, &ann));
        let o = c.run();
        assert_eq!(o.code, Some(want_code), "{ann:?}\n{o}");
        assert_eq!(out.lines("runs").len(), want_runs, "{ann:?}: runs\n{o}");
        c.assert_clean();
    }
}

// ---------------------------------------------------------------------------
// Backoff and the start limit
// ---------------------------------------------------------------------------

/// Differences between consecutive starts.
fn gaps(starts: &[u64]) -> Vec<u64> {
    starts
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .collect()
}

#[track_caller]
fn assert_gaps(gaps: &[u64], expected: &[u64]) {
    assert!(
        gaps.len() >= expected.len(),
        "gaps {gaps:?}, want {expected:?}"
    );
    for (i, (g, e)) in gaps.iter().zip(expected).enumerate() {
        assert!(
            *g * 10 >= *e * 8 && *g < *e + 1000,
            "gap {i} between starts is {g}ms, want about {e}ms; all gaps {gaps:?}, expected {expected:?}"
        );
    }
}

#[test]
fn backoff_grows_and_is_capped() {
    rrun_init_only!();
    let c = Container::new(annotate(
        Bundle::new().sh("exit 1"),
        &[
            ("rrun.restart", "always"),
            ("rrun.restart.delay", "100ms"),
            ("rrun.restart.multiplier", "2"),
            ("rrun.restart.max-delay", "400ms"),
        ],
    ));
    c.run_detached().ok();
    let init = wait_init(&c, "6 starts", STATUS_TIMEOUT, |i| starts(i).len() >= 6);
    // Uncapped, the last gaps would be 800ms and 1600ms.
    assert_gaps(&gaps(&starts(&init)), &[100, 200, 400, 400, 400]);
    assert!(init["restarts"].as_u64() >= Some(5), "{init:#}");
    assert_eq!(init["lastExit"], json!({"code": 1}), "{init:#}");
    stop_and_delete(&c);
}

#[test]
fn backoff_multiplier() {
    rrun_init_only!();
    let c = Container::new(annotate(
        Bundle::new().sh("exit 1"),
        &[
            ("rrun.restart", "on-failure"),
            ("rrun.restart.delay", "100ms"),
            ("rrun.restart.multiplier", "3"),
            ("rrun.restart.max-delay", "10s"),
        ],
    ));
    c.run_detached().ok();
    let init = wait_init(&c, "4 starts", STATUS_TIMEOUT, |i| starts(i).len() >= 4);
    assert_gaps(&gaps(&starts(&init)), &[100, 300, 900]);
    stop_and_delete(&c);
}

#[test]
fn backoff_resets_after_a_long_run() {
    rrun_init_only!();
    let out = Out::new();
    // Runs 1-3 fail at once (gaps 200, 400, 800), run 4 lasts 600ms (past
    // reset-after): the next delay is 200ms again, then 400ms.
    let c = Container::new(out.bundle(
        &format!(
            "{COUNT_RUN} if [ $n -eq 4 ]; then sleep 0.6; fi; \
             if [ $n -ge 6 ]; then exec sleep 1000; fi; exit 1"
        ),
        &[
            ("rrun.restart", "on-failure"),
            ("rrun.restart.delay", "200ms"),
            ("rrun.restart.max-delay", "10s"),
            ("rrun.restart.reset-after", "300ms"),
        ],
    ));
    c.run_detached().ok();
    let init = wait_init(&c, "6 starts", STATUS_TIMEOUT, |i| starts(i).len() >= 6);
    // Without the reset, gap 3 would be 600 + 1600ms and gap 4 3200ms.
    assert_gaps(&gaps(&starts(&init)), &[200, 400, 800, 600 + 200, 400]);
    stop_and_delete(&c);
}

#[test]
fn start_limit_gives_up() {
    rrun_init_only!();
    let ann = [
        ("rrun.restart", "always"),
        ("rrun.restart.delay", "50ms"),
        ("rrun.restart.limit", "3/10s"),
    ];
    // Foreground: the container ends with the program's status after
    // exactly BURST starts.
    let out = Out::new();
    let c = Container::new(out.bundle(&format!("{COUNT_RUN} exit 7"), &ann));
    let o = c.run();
    assert_eq!(o.code, Some(7), "{o}");
    assert_eq!(out.lines("runs").len(), 3, "starts within the limit\n{o}");
    c.assert_clean();

    // Starts older than the interval do not count: 400ms apart, a limit
    // of 2 per 300ms is never reached (on-failure:3 ends it).
    let out = Out::new();
    let c = Container::new(out.bundle(
        &format!("{COUNT_RUN} exit 7"),
        &[
            ("rrun.restart", "on-failure:3"),
            ("rrun.restart.delay", "400ms"),
            ("rrun.restart.multiplier", "1"),
            ("rrun.restart.limit", "2/300ms"),
        ],
    ));
    let o = c.run();
    assert_eq!(o.code, Some(7), "{o}");
    assert_eq!(
        out.lines("runs").len(),
        4,
        "the limit counted old starts\n{o}"
    );
    c.assert_clean();
}

#[test]
fn state_of_a_stopped_init_container_keeps_the_init_object() {
    rrun_init_only!();
    let out = Out::new();
    let c = Container::new(out.bundle(
        &format!("{COUNT_RUN} exit 7"),
        &[
            ("rrun.restart", "always"),
            ("rrun.restart.delay", "50ms"),
            ("rrun.restart.limit", "2/10s"),
        ],
    ));
    c.run_detached().ok();
    c.wait_status("stopped");
    assert_eq!(out.lines("runs").len(), 2);
    let st = c.state();
    let init = &st["init"];
    for key in [
        "restarts", "pid", "lastExit", "health", "gaveUp", "exits", "starts",
    ] {
        assert!(
            init.get(key).is_some(),
            "state of the stopped container: init has no {key}:\n{st:#}"
        );
    }
    assert!(init["pid"].is_null(), "{st:#}");
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn events_report_exits_restarts_and_gave_up() {
    rrun_init_only!();
    let ann = [
        ("rrun.restart", "always"),
        ("rrun.restart.delay", "50ms"),
        ("rrun.restart.limit", "3/10s"),
    ];
    // Detached, watched by `rrun events`: two exits with restarts, then
    // the third exit and gave-up.
    let out = Out::new();
    let c = Container::new(out.bundle(&format!("{COUNT_RUN} sleep 0.3; exit 7"), &ann));
    c.create().ok();
    let ev = events(&c);
    c.start().ok();
    c.wait_status("stopped");
    let eo = ev.wait(Duration::from_secs(10));
    eo.ok();
    assert_eq!(out.lines("runs").len(), 3);
    let evs = init_events(&eo);
    let restarts: Vec<&Value> = evs.iter().filter(|e| e["type"] == "restart").collect();
    assert_eq!(restarts.len(), 2, "restart events: {evs:#?}");
    for e in &evs {
        assert_eq!(e["id"], c.id.as_str(), "{e}");
    }
    let last_restart = evs.iter().rposition(|e| e["type"] == "restart").unwrap();
    assert!(
        evs[last_restart..]
            .iter()
            .any(|e| e["type"] == "exit" && e["data"]["lastExit"] == json!({"code": 7})),
        "no exit event for the last run: {evs:#?}"
    );
    assert!(
        evs.iter().any(|e| e["type"] == "gave-up"),
        "no gave-up event after the start limit: {evs:#?}"
    );
    c.delete().ok();
    c.assert_clean();
}

// ---------------------------------------------------------------------------
// Health checks
// ---------------------------------------------------------------------------

#[test]
fn unhealthy_program_is_killed_and_restarted() {
    rrun_init_only!();
    let out = Out::new();
    // Run 1 is healthy, then removes its marker after the start period:
    // unhealthy, killed, restarted. Run 2 becomes healthy after 400ms.
    let script = format!(
        "{COUNT_RUN} if [ $n -eq 1 ]; then touch /out/healthy; sleep 1.2; \
           rm -f /out/healthy; exec sleep 1000; fi; \
         sleep 0.4; touch /out/healthy; exec sleep 1000"
    );
    let c = Container::new(out.bundle(
        &script,
        &[
            ("rrun.restart", "on-failure"),
            // Unhealthy for 500ms: long enough for `events` to see it.
            ("rrun.restart.delay", "500ms"),
            ("rrun.health.cmd", r#"["sh","-c","test -f /out/healthy"]"#),
            ("rrun.health.interval", "100ms"),
            ("rrun.health.timeout", "1s"),
            ("rrun.health.retries", "1"),
            ("rrun.health.start-period", "1s"),
        ],
    ));
    c.create().ok();
    let ev = events(&c);
    c.start().ok();
    let first = wait_init(&c, "healthy", STATUS_TIMEOUT, |i| i["health"] == "healthy");
    assert_eq!(first["restarts"], 0, "{first:#}");
    let pid1 = first["pid"].as_i64().expect("program pid");
    let init = wait_init(&c, "a restart for unhealthiness", STATUS_TIMEOUT, |i| {
        i["restarts"] == 1 && i["health"] == "healthy"
    });
    assert_eq!(init["lastExit"], json!({"signal": 9}), "{init:#}");
    assert_ne!(init["pid"].as_i64(), Some(pid1), "{init:#}");
    assert!(!pid_alive(pid1 as i32), "the unhealthy program still runs");
    // Healthy now: it stays up.
    std::thread::sleep(Duration::from_millis(500));
    let later = init_state(&c);
    assert_eq!(later["restarts"], 1, "{later:#}");
    assert_eq!(later["health"], "healthy", "{later:#}");
    c.kill("TERM").ok();
    c.wait_status("stopped");
    let eo = ev.wait(Duration::from_secs(10));
    eo.ok();
    let evs = init_events(&eo);
    let health: Vec<&str> = evs
        .iter()
        .filter(|e| e["type"] == "health")
        .filter_map(|e| e["data"]["health"].as_str())
        .collect();
    let want = ["healthy", "unhealthy", "starting", "healthy"];
    assert!(
        health.windows(4).any(|w| w == want),
        "health events {health:?}, want {want:?} in order; all events {evs:#?}"
    );
    assert!(
        evs.iter()
            .any(|e| e["type"] == "restart" && e["data"]["restarts"] == 1),
        "no restart event: {evs:#?}"
    );
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn health_retries_count_consecutive_failures_and_timeouts_fail() {
    rrun_init_only!();
    // A check that fails every other time never makes 2 failures in a row.
    let out = Out::new();
    let flip = r#"["sh","-c","if [ -f /out/f ]; then rm /out/f; exit 1; fi; touch /out/f"]"#;
    let c = Container::new(out.bundle(
        "exec sleep 1000",
        &[
            ("rrun.restart", "always"),
            ("rrun.health.cmd", flip),
            ("rrun.health.interval", "50ms"),
            ("rrun.health.retries", "2"),
        ],
    ));
    c.run_detached().ok();
    wait_init(&c, "healthy", STATUS_TIMEOUT, |i| i["health"] == "healthy");
    let deadline = Instant::now() + Duration::from_millis(800);
    while Instant::now() < deadline {
        let init = init_state(&c);
        assert_eq!(init["health"], "healthy", "{init:#}");
        assert_eq!(init["restarts"], 0, "{init:#}");
        std::thread::sleep(Duration::from_millis(30));
    }
    stop_and_delete(&c);

    // A check that outlives its timeout is a failure.
    let c = Container::new(annotate(
        Bundle::new().args(&["sleep", "1000"]),
        &[
            ("rrun.health.cmd", r#"["sleep","10"]"#),
            ("rrun.health.interval", "100ms"),
            ("rrun.health.timeout", "200ms"),
            ("rrun.health.retries", "1"),
        ],
    ));
    c.run_detached().ok();
    wait_init(
        &c,
        "unhealthy (check timed out)",
        Duration::from_secs(5),
        |i| i["health"] == "unhealthy",
    );
    stop_and_delete(&c);
}

#[test]
fn unhealthy_program_is_left_alone_without_a_restart_policy() {
    rrun_init_only!();
    for policy in ["no", "on-success"] {
        let c = Container::new(annotate(
            Bundle::new().args(&["sleep", "1000"]),
            &[
                ("rrun.restart", policy),
                ("rrun.health.cmd", r#"["false"]"#),
                ("rrun.health.interval", "100ms"),
                ("rrun.health.retries", "2"),
            ],
        ));
        c.run_detached().ok();
        let init = wait_init(&c, "unhealthy", STATUS_TIMEOUT, |i| {
            i["health"] == "unhealthy"
        });
        let pid = init["pid"].as_i64().expect("program pid") as i32;
        std::thread::sleep(Duration::from_millis(400));
        let later = init_state(&c);
        assert_eq!(later["restarts"], 0, "{policy}: {later:#}");
        assert_eq!(
            later["pid"].as_i64(),
            Some(pid as i64),
            "{policy}: {later:#}"
        );
        assert!(pid_alive(pid), "{policy}: the unhealthy program was killed");
        stop_and_delete(&c);
    }
}

// ---------------------------------------------------------------------------
// Stopping
// ---------------------------------------------------------------------------

#[test]
fn kill_term_stops_without_restart() {
    rrun_init_only!();
    let out = Out::new();
    let c = Container::new(out.bundle(
        &format!("{COUNT_RUN} exec sleep 1000"),
        &[("rrun.restart", "always"), ("rrun.restart.delay", "50ms")],
    ));
    let bg = c.run_background();
    let init = wait_init(&c, "the program", STATUS_TIMEOUT, |i| i["pid"].is_i64());
    let pid = init["pid"].as_i64().unwrap() as i32;
    c.rrun(&["kill", &c.id]).ok();
    let o = bg.wait(TIMEOUT);
    assert_eq!(o.code, Some(143), "died of the forwarded TERM\n{o}");
    assert_eq!(out.lines("runs").len(), 1, "restarted after rrun kill");
    assert!(!pid_alive(pid));
    c.assert_clean();
}

#[test]
fn program_ignoring_term_is_killed_after_stop_timeout() {
    rrun_init_only!();
    let out = Out::new();
    let c = Container::new(out.bundle(
        &format!("{COUNT_RUN} trap '' TERM; echo > /out/ready; while :; do sleep 0.05; done"),
        &[("rrun.restart", "always"), ("rrun.stop-timeout", "500ms")],
    ));
    let bg = c.run_background();
    out.wait_for("ready", "the program", |s| !s.is_empty());
    c.wait_status("running");
    let t0 = Instant::now();
    c.rrun(&["kill", &c.id, "TERM"]).ok();
    let o = bg.wait(TIMEOUT);
    let took = t0.elapsed();
    assert_eq!(o.code, Some(137), "SIGKILLed after the stop timeout\n{o}");
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(5),
        "stopped after {took:?}, stop timeout 500ms"
    );
    assert_eq!(out.lines("runs").len(), 1, "restarted after rrun kill");
    c.assert_clean();
}

#[test]
fn leftovers_of_a_run_are_gone_before_the_restart() {
    rrun_init_only!();
    let out = Out::new();
    // Run 1 leaves two background sleeps (one ignoring TERM) and fails.
    // Run 2 counts them first thing, then sleeps.
    let script = format!(
        "{COUNT_RUN} if [ $n -eq 1 ]; then sleep 1000 & (trap '' TERM; exec sleep 1000) & \
           sleep 0.1; exit 1; fi; \
         for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done \
           | grep -c '^sleep 1000 ' > /out/seen; \
         exec sleep 999"
    );
    let c = Container::new(out.bundle(
        &script,
        &[
            ("rrun.restart", "on-failure"),
            ("rrun.restart.delay", "50ms"),
            ("rrun.stop-timeout", "300ms"),
        ],
    ));
    c.run_detached().ok();
    let init = wait_init(&c, "the restart", STATUS_TIMEOUT, |i| i["restarts"] == 1);
    out.wait_for("seen", "run 2's count", |s| !s.is_empty());
    assert_eq!(
        out.read("seen").trim(),
        "0",
        "run 1's sleeps survived into run 2"
    );
    assert_eq!(out.lines("runs").len(), 2);
    // From the host too: in the container's pid namespace only the init
    // and run 2's sleep.
    let pidns = ns_of(&c.pid().to_string(), "pid");
    let cmds: Vec<String> = pids_in_pidns(&pidns).into_iter().map(cmdline_of).collect();
    assert!(
        !cmds.iter().any(|c| c == "sleep 1000"),
        "leftovers: {cmds:?}"
    );
    assert!(cmds.iter().any(|c| c == "sleep 999"), "{cmds:?} {init:#}");
    stop_and_delete(&c);
}

// ---------------------------------------------------------------------------
// Terminal
// ---------------------------------------------------------------------------

/// Read the pty master until the (CRLF-normalised) output contains
/// `needle`; returns all output so far.
#[track_caller]
fn pty_read_until(master: &mut File, seen: &mut Vec<u8>, needle: &str) -> String {
    let deadline = Instant::now() + STATUS_TIMEOUT;
    loop {
        let text = String::from_utf8_lossy(seen).replace("\r\n", "\n");
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {needle:?} on the pty; read {text:?}"
        );
        let mut pfd = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, 50) } <= 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        match master.read(&mut buf) {
            Ok(0) => panic!("pty closed before {needle:?}; read {text:?}"),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.raw_os_error() == Some(libc::EIO) => {
                panic!("pty closed before {needle:?}; read {text:?}")
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read from pty master: {e}"),
        }
    }
}

#[test]
fn terminal_with_console_socket_works_with_the_init() {
    rrun_init_only!();
    let mut sock = ConsoleSocket::new();
    // Two runs (on-failure:1), each on the pty as its controlling terminal.
    let script = "n=$(($(cat /dev/shm/n 2>/dev/null || echo 0) + 1)); echo $n > /dev/shm/n; \
        echo run$n tty=$(tty) pid=$$ ctty=$(cut -d' ' -f7 /proc/$$/stat); \
        read x; echo got$n:$x; exit 1";
    let c = Container::new(annotate(
        Bundle::new()
            .sh(script)
            .with(|v| v["process"]["terminal"] = json!(true)),
        &[
            ("rrun.restart", "on-failure:1"),
            ("rrun.restart.delay", "50ms"),
        ],
    ));
    c.create_with(&["--console-socket", &sock.arg()]).ok();
    let mut master = File::from(sock.receive().0);
    let mut seen = Vec::new();
    c.start().ok();
    for n in 1..=2 {
        let text = pty_read_until(&mut master, &mut seen, &format!("run{n} "));
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("run{n} ")))
            .unwrap()
            .to_string();
        let field = |k: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .unwrap_or_else(|| panic!("no {k} in {line:?}"))
                .to_string()
        };
        let tty = field("tty=");
        let pts: u32 = tty
            .strip_prefix("/dev/pts/")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("stdin is not a pty: {line:?}"));
        assert_ne!(field("pid="), "1", "the program is PID 1: {line:?}");
        assert_eq!(
            field("ctty="),
            (136 * 256 + pts).to_string(),
            "the pty is not the controlling terminal: {line:?}"
        );
        master
            .write_all(format!("hello{n}\n").as_bytes())
            .expect("write to master");
        pty_read_until(&mut master, &mut seen, &format!("got{n}:hello{n}"));
    }
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

// ---------------------------------------------------------------------------
// The process config applies to the program
// ---------------------------------------------------------------------------

#[test]
fn program_runs_with_the_configs_user_caps_and_limits() {
    rrun_init_only!();
    let caps = ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"];
    let mk = |init: bool| {
        let b = Bundle::new()
            .args(&["sleep", "1000"])
            .user(1000, 1000, &[1001, 1002])
            .cwd("/bin")
            .env("RRUN_TEST_VAR=init-test")
            .with(|v| {
                v["process"]["capabilities"] = json!({
                    "bounding": caps, "effective": caps, "permitted": caps,
                    "inheritable": caps, "ambient": ["CAP_KILL"]
                });
                v["process"]["rlimits"] = json!([
                    { "type": "RLIMIT_NOFILE", "hard": 777, "soft": 555 }
                ]);
            });
        Container::new(if init {
            annotate(b, &[("rrun.init", "true")])
        } else {
            b
        })
    };
    let plain = mk(false);
    plain.run_detached().ok();
    let with = mk(true);
    with.run_detached().ok();
    let plain_pid = plain.pid();
    let init = wait_init(&with, "the program", STATUS_TIMEOUT, |i| i["pid"].is_i64());
    let prog = init["pid"].as_i64().unwrap() as i32;
    assert_ne!(prog, with.pid(), "init.pid is the init itself");
    assert_eq!(
        cmdline_of(prog),
        "sleep 1000",
        "init.pid is not the program"
    );
    for key in [
        "Uid",
        "Gid",
        "Groups",
        "CapInh",
        "CapPrm",
        "CapEff",
        "CapBnd",
        "CapAmb",
        "NoNewPrivs",
        "Seccomp",
    ] {
        assert_eq!(
            status_field(prog, key),
            status_field(plain_pid, key),
            "{key} of the program under the init differs from the plain container's"
        );
    }
    assert_eq!(status_field(prog, "Uid"), "1000\t1000\t1000\t1000");
    assert_eq!(status_field(prog, "Groups"), "1001 1002");
    let eff = u64::from_str_radix(&status_field(prog, "CapEff"), 16).unwrap();
    assert_eq!(
        eff,
        cap_mask(&["CAP_KILL"]),
        "CapEff (ambient only, non-root)"
    );
    let bnd = u64::from_str_radix(&status_field(prog, "CapBnd"), 16).unwrap();
    assert_eq!(bnd, cap_mask(&caps), "CapBnd");
    let limits = fs::read_to_string(format!("/proc/{prog}/limits")).unwrap();
    let nofile = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .skip(3)
        .take(2)
        .collect::<Vec<_>>();
    assert_eq!(nofile, ["555", "777"], "{limits}");
    let cwd = fs::read_link(format!("/proc/{prog}/cwd")).unwrap();
    assert!(cwd.ends_with("bin"), "cwd {cwd:?}");
    let env = fs::read(format!("/proc/{prog}/environ")).unwrap();
    assert!(
        String::from_utf8_lossy(&env).contains("RRUN_TEST_VAR=init-test"),
        "env {:?}",
        String::from_utf8_lossy(&env)
    );
    for c in [&plain, &with] {
        c.kill("KILL").ok();
        c.wait_status("stopped");
        c.delete().ok();
        c.assert_clean();
    }
}

// ---------------------------------------------------------------------------
// state, list
// ---------------------------------------------------------------------------

#[test]
fn state_and_list_show_the_init() {
    rrun_init_only!();
    let out = Out::new();
    let c = Container::new(out.bundle(
        &format!("{COUNT_RUN} if [ $n -eq 1 ]; then exit 4; fi; exec sleep 1000"),
        &[
            ("rrun.restart", "on-failure"),
            ("rrun.restart.delay", "50ms"),
            ("rrun.health.cmd", r#"["true"]"#),
            ("rrun.health.interval", "100ms"),
        ],
    ));
    c.run_detached().ok();
    let init = wait_init(&c, "restarted and healthy", STATUS_TIMEOUT, |i| {
        i["restarts"] == 1 && i["health"] == "healthy" && i["pid"].is_i64()
    });
    for key in [
        "restarts", "pid", "lastExit", "health", "gaveUp", "exits", "starts",
    ] {
        assert!(init.get(key).is_some(), "init has no {key}: {init:#}");
    }
    assert_eq!(init["lastExit"], json!({"code": 4}), "{init:#}");
    assert_eq!(init["exits"], 1, "{init:#}");
    assert_eq!(init["gaveUp"], false, "{init:#}");
    let st = starts(&init);
    assert_eq!(st.len(), 2, "{init:#}");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        st[0] <= st[1] && st[1] <= now_ms && now_ms - st[0] < 60_000,
        "starts are not recent unix ms: {st:?} (now {now_ms})"
    );
    let prog = init["pid"].as_i64().unwrap() as i32;
    assert_eq!(
        cmdline_of(prog),
        "sleep 1000",
        "init.pid is not the program's host pid"
    );

    // A plain container in the same state root shows "-" in the columns.
    let mut plain = Container::new(Bundle::new().args(&["sleep", "1000"]));
    plain.root = c.root.clone();
    plain.run_detached().ok();

    let list = c.rrun(&["list"]);
    list.ok();
    let mut lines = list.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no {name} column:\n{list}"))
    };
    let (id_col, restarts_col, health_col) = (col("ID"), col("RESTARTS"), col("HEALTH"));
    let row = |id: &str| -> Vec<String> {
        list.stdout
            .lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .find(|r| r.get(id_col).map(String::as_str) == Some(id))
            .unwrap_or_else(|| panic!("no row for {id}:\n{list}"))
    };
    let r = row(&c.id);
    assert_eq!(r[restarts_col], "1", "{list}");
    assert_eq!(r[health_col], "healthy", "{list}");
    let r = row(&plain.id);
    assert_eq!(r[restarts_col], "-", "{list}");
    assert_eq!(r[health_col], "-", "{list}");

    let lj = c.rrun(&["list", "--format", "json"]);
    lj.ok();
    let v: Value = serde_json::from_str(&lj.stdout).unwrap_or_else(|e| panic!("{e}\n{lj}"));
    let entries = v.as_array().expect("list json is an array");
    let mine = entries.iter().find(|e| e["id"] == c.id.as_str()).unwrap();
    assert_eq!(mine["init"]["restarts"], 1, "{lj}");
    assert_eq!(mine["init"]["health"], "healthy", "{lj}");
    let other = entries
        .iter()
        .find(|e| e["id"] == plain.id.as_str())
        .unwrap();
    assert!(
        other.get("init").is_none() || other["init"].is_null(),
        "{lj}"
    );

    plain.kill("KILL").ok();
    plain.wait_status("stopped");
    plain.delete().ok();
    plain.assert_clean();
    stop_and_delete(&c);
}

// ---------------------------------------------------------------------------
// Bad annotations
// ---------------------------------------------------------------------------

#[test]
fn bad_annotations_fail_create_and_leave_nothing() {
    rrun_init_only!();
    let cases: &[(&str, &str)] = &[
        ("rrun.restart", "sometimes"),
        ("rrun.restart", "always:3"),
        ("rrun.restart", "on-failure:x"),
        ("rrun.restart.delay", "-1s"),
        ("rrun.restart.delay", "soon"),
        ("rrun.restart.max-delay", "10"),
        ("rrun.restart.reset-after", "1y"),
        ("rrun.restart.multiplier", "0.5"),
        ("rrun.restart.multiplier", "two"),
        ("rrun.restart.limit", "5"),
        ("rrun.restart.limit", "0/10s"),
        ("rrun.restart.success-exit", "1,x"),
        ("rrun.restart.prevent-exit", "300"),
        ("rrun.stop-timeout", "-5s"),
        ("rrun.signal-group", "maybe"),
        ("rrun.init", "yes"),
        ("rrun.health.cmd", "true"),
        ("rrun.health.cmd", "[]"),
        ("rrun.health.retries", "0"),
        ("rrun.health.interval", "fast"),
        ("rrun.restrat", "always"),
        ("rrun.bogus", "1"),
    ];
    for (k, v) in cases {
        let mut ann = vec![(*k, *v)];
        if k.starts_with("rrun.health.") && *k != "rrun.health.cmd" {
            ann.push(("rrun.health.cmd", r#"["true"]"#));
        }
        let c = Container::new(annotate(Bundle::new().args(&["sleep", "1000"]), &ann));
        let o = c.create();
        o.failed().stderr_is_short_error().stderr_mentions(&[k]);
        c.assert_clean();
        // `run` refuses it the same way.
        let o = c.run();
        o.failed().stderr_mentions(&[k]);
        c.assert_clean();
    }
    // Health settings without a health command.
    let c = Container::new(annotate(
        Bundle::new().args(&["sleep", "1000"]),
        &[("rrun.health.interval", "1s")],
    ));
    c.create()
        .failed()
        .stderr_is_short_error()
        .stderr_mentions(&["rrun.health"]);
    c.assert_clean();
    // max-delay below delay.
    let c = Container::new(annotate(
        Bundle::new().args(&["sleep", "1000"]),
        &[
            ("rrun.restart.delay", "2s"),
            ("rrun.restart.max-delay", "1s"),
        ],
    ));
    c.create()
        .failed()
        .stderr_is_short_error()
        .stderr_mentions(&["rrun.restart.max-delay"]);
    c.assert_clean();
}

// ---------------------------------------------------------------------------
// Nothing of the host through PID 1
// ---------------------------------------------------------------------------

#[test]
fn nothing_of_the_host_is_reachable_through_pid1() {
    rrun_init_only!();
    let out = Out::new();
    let script = "exe=$(readlink -v /proc/1/exe 2>&1); echo \"exe=$exe\"; \
        if echo x >> /proc/1/exe 2>/dev/null; then echo write=ok; else echo write=failed; fi; \
        if (exec 3<>/proc/1/exe) 2>/dev/null; then echo open-rw=ok; else echo open-rw=failed; fi; \
        if fds=$(ls /proc/1/fd 2>/dev/null); then echo fds=$(echo $fds); \
        else echo fds=unreadable; fi; \
        echo root=$(readlink -v /proc/1/root 2>&1); echo cwd=$(readlink -v /proc/1/cwd 2>&1); \
        echo > /out/ready; exec sleep 1000";
    let c = Container::new(out.bundle(script, &[("rrun.init", "true")]));
    c.run_detached().ok();
    out.wait_for("ready", "the program's report", |s| !s.is_empty());
    let (report, _) = c.output();
    let field = |k: &str| {
        report
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("no {k}= in {report:?}"))
            .to_string()
    };
    let init_pid = c.pid();

    // /proc/1/exe: the sealed memfd (seen from the host), unreadable or the
    // memfd from inside; never writable.
    let host_exe = fs::read_link(format!("/proc/{init_pid}/exe")).unwrap();
    assert!(
        host_exe.to_string_lossy().starts_with("/memfd:rrun-init"),
        "PID 1 does not run from the sealed memfd: {host_exe:?}"
    );
    let exe = field("exe");
    assert!(
        exe.contains("memfd:rrun-init") || exe.to_lowercase().contains("permission denied"),
        "readlink /proc/1/exe in the container: {exe:?}"
    );
    assert_eq!(
        field("write"),
        "failed",
        "appending to /proc/1/exe worked\n{report}"
    );
    assert_eq!(
        field("open-rw"),
        "failed",
        "opening /proc/1/exe rw worked\n{report}"
    );
    // From the host as root the memfd is still sealed against writes.
    let w = fs::OpenOptions::new()
        .append(true)
        .open(format!("/proc/{init_pid}/exe"))
        .and_then(|mut f| f.write_all(b"x"));
    assert!(w.is_err(), "the init's memfd is writable from the host");
    let host_bin = rrun_bin().with_file_name("rrun-init");
    if let (Ok(a), Ok(b)) = (
        fs::metadata(format!("/proc/{init_pid}/exe")),
        fs::metadata(&host_bin),
    ) {
        assert!(
            (a.dev(), a.ino()) != (b.dev(), b.ino()),
            "PID 1's exe is the host's rrun-init binary"
        );
    }

    // fds: from the host, 0-2 are what `run -d` was given and every other
    // fd is the init's own signalfd (no host file, dir or socket).
    for e in fs::read_dir(format!("/proc/{init_pid}/fd"))
        .unwrap()
        .flatten()
    {
        let n: i32 = e.file_name().to_string_lossy().parse().unwrap();
        let target = fs::read_link(e.path()).unwrap_or_default();
        if n > 2 {
            assert!(
                target
                    .to_string_lossy()
                    .starts_with("anon_inode:[signalfd]"),
                "PID 1 holds fd {n} -> {target:?}"
            );
        }
    }
    let fds = field("fds");
    if fds != "unreadable" {
        let mut listed: Vec<i32> = fds
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(-1))
            .collect();
        listed.sort();
        assert!(
            listed.starts_with(&[0, 1, 2]) && listed.len() <= 4,
            "/proc/1/fd in the container: {fds:?}"
        );
    }

    // root and cwd are the container's: the rootfs, seen from the host.
    let rootfs = fs::metadata(&c.bundle.rootfs).unwrap();
    for what in ["root", "cwd"] {
        let m = fs::metadata(format!("/proc/{init_pid}/{what}")).unwrap();
        assert_eq!(
            (m.dev(), m.ino()),
            (rootfs.dev(), rootfs.ino()),
            "PID 1's {what} is not the container's root"
        );
        let inside = field(what);
        assert!(
            inside == "/" || inside.to_lowercase().contains("permission denied"),
            "readlink /proc/1/{what} in the container: {inside:?}"
        );
    }
    // Not a host binary, not a host cwd: nothing of the bundle shows.
    let bundle = c.bundle.path().to_string_lossy().into_owned();
    for what in ["exe", "cwd", "root"] {
        let l = fs::read_link(format!("/proc/{init_pid}/{what}")).unwrap_or_default();
        assert!(
            !l.to_string_lossy().contains(&bundle),
            "PID 1's {what} is {l:?}"
        );
    }
    stop_and_delete(&c);
}
