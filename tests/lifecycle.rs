//! Container lifecycle: create / start / state / kill / delete / run / list.

#[macro_use]
mod common;

use common::*;
use serde_json::Value;
use std::fs;
use std::time::Duration;

/// A container process that waits until signalled (sleep loop, so that
/// SIGTERM handled by a trap is seen quickly).
const WAIT_FOREVER: &str = "trap 'echo got TERM; exit 0' TERM; trap 'echo got USR1' USR1; \
                            echo ready; while true; do sleep 0.05; done";

fn sleeper() -> Bundle {
    Bundle::new().sh(WAIT_FOREVER)
}

#[test]
fn full_lifecycle_create_start_kill_delete() {
    let c = Container::new(Bundle::new().sh("echo started; exec sleep 30"));
    c.create().ok();

    // created: live host pid in its own namespaces.
    let st = c.state();
    assert_eq!(st["status"], "created", "state: {st}");
    assert_eq!(st["id"], c.id.as_str());
    let pid = st["pid"].as_i64().expect("pid") as i32;
    assert!(pid > 0, "created container must have a pid: {st}");
    assert!(pid_alive(pid), "created pid {pid} is not alive");
    for ns in ["pid", "mnt", "net", "ipc", "uts"] {
        assert_ne!(
            ns_of(&pid.to_string(), ns),
            ns_of("self", ns),
            "{ns} namespace of the container equals the test's"
        );
    }
    // The user program has not run yet.
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !c.output().0.contains("started"),
        "user program ran before start: {:?}",
        c.output()
    );

    c.start().ok();
    c.wait_status("running");
    assert_eq!(c.pid(), pid, "pid changed across start");
    let out = poll(Duration::from_secs(5), || {
        let (o, _) = c.output();
        o.contains("started").then_some(o)
    });
    assert!(
        out.is_some(),
        "user program output missing: {:?}",
        c.output()
    );

    c.kill("KILL").ok();
    c.wait_status("stopped");
    let st = c.state();
    assert_eq!(st["pid"], 0, "stopped container must report pid 0: {st}");
    assert!(poll(Duration::from_secs(5), || (!pid_alive(pid)).then_some(())).is_some());

    c.delete().ok();
    c.assert_clean();
}

#[test]
fn state_json_fields() {
    let c = Container::new(sleeper()).created();
    let st = c.state();
    for key in [
        "ociVersion",
        "id",
        "status",
        "pid",
        "bundle",
        "rootfs",
        "created",
        "owner",
    ] {
        assert!(st.get(key).is_some(), "state lacks {key:?}: {st}");
    }
    assert!(st["ociVersion"].as_str().unwrap().starts_with("1."));
    let bundle = fs::canonicalize(c.bundle.path()).unwrap();
    assert_eq!(
        st["bundle"].as_str().unwrap(),
        bundle.to_str().unwrap(),
        "bundle must be the absolute bundle path"
    );
    assert_eq!(
        st["rootfs"].as_str().unwrap(),
        c.bundle.rootfs.to_str().unwrap()
    );
    // RFC 3339: 2024-01-02T03:04:05.123456789Z or with offset.
    let created = st["created"].as_str().unwrap();
    assert!(
        created.len() >= 20
            && created.as_bytes()[4] == b'-'
            && created.as_bytes()[10] == b'T'
            && (created.ends_with('Z') || created.contains('+') || created[19..].contains('-')),
        "created is not RFC 3339: {created:?}"
    );
    assert!(
        created.starts_with("20"),
        "created year looks wrong: {created}"
    );
    // Annotations, when present, must be an object.
    if let Some(a) = st.get("annotations") {
        assert!(a.is_object() || a.is_null(), "annotations: {a}");
    }
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn annotations_in_state() {
    let b = sleeper().with(|c| c["annotations"] = serde_json::json!({"org.rrun.test": "yes"}));
    let c = Container::new(b).created();
    let st = c.state();
    assert_eq!(st["annotations"]["org.rrun.test"], "yes", "state: {st}");
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn pid_file_has_host_pid() {
    let c = Container::new(sleeper());
    let pidfile = c.bundle.file("container.pid");
    c.create_with(&["--pid-file", pidfile.to_str().unwrap()])
        .ok();
    let text = fs::read_to_string(&pidfile).expect("pid file written");
    let pid: i32 = text.trim().parse().expect("pid file holds a number");
    assert_eq!(pid, c.pid(), "pid file vs state");
    assert!(pid_alive(pid));
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn pid_file_relative_path_is_relative_to_cwd() {
    let c = Container::new(sleeper());
    let mut cmd = c.cmd(&[
        "create",
        "--bundle",
        &c.bundle_arg(),
        "--pid-file",
        "rel.pid",
        &c.id,
    ]);
    c.bundle.write();
    cmd.current_dir(c.bundle.path());
    run_timeout(cmd, TIMEOUT).ok();
    let text = fs::read_to_string(c.bundle.file("rel.pid")).expect("relative pid file");
    assert_eq!(text.trim().parse::<i32>().unwrap(), c.pid());
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn run_foreground_exit_code() {
    let c = Container::new(Bundle::new().sh("echo out; echo err >&2; exit 3"));
    let o = c.run();
    assert_eq!(
        o.code,
        Some(3),
        "run must exit with the container's code:\n{o}"
    );
    assert!(o.stdout.contains("out"), "{o}");
    assert!(o.stderr.contains("err"), "{o}");
    // Foreground run deletes the container when it exits.
    c.assert_clean();
}

#[test]
fn run_foreground_exit_zero() {
    let c = Container::new(Bundle::new().args(&["true"]));
    let o = c.run();
    assert_eq!(o.code, Some(0), "{o}");
    c.assert_clean();
}

#[test]
fn run_foreground_killed_by_signal_is_128_plus_n() {
    let c = Container::new(Bundle::new().sh("exec sleep 30"));
    let bg = c.run_background();
    c.wait_status("running");
    c.kill("KILL").ok();
    let o = bg.wait(TIMEOUT);
    assert_eq!(o.code, Some(137), "killed by SIGKILL must exit 128+9:\n{o}");
    c.assert_clean();
}

#[test]
fn run_foreground_child_signal_exit_status() {
    // A non-init process killed by a signal; sh reports 128+9 as exit code.
    let c = Container::new(Bundle::new().sh("sh -c 'kill -9 $$'; exit $?"));
    let o = c.run();
    assert_eq!(o.code, Some(137), "{o}");
    c.assert_clean();
}

#[test]
fn run_detach() {
    let c = Container::new(sleeper());
    let o = c.run_detached();
    o.ok();
    let st = c.state();
    assert_eq!(st["status"], "running", "{st}");
    let pid = st["pid"].as_i64().unwrap() as i32;
    assert!(pid_alive(pid));
    let ready = poll(Duration::from_secs(5), || {
        c.output().0.contains("ready").then_some(())
    });
    assert!(
        ready.is_some(),
        "detached container output: {:?}",
        c.output()
    );
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn run_detach_with_pid_file() {
    let c = Container::new(sleeper());
    let pidfile = c.bundle.file("run.pid");
    c.run_with(&["-d", "--pid-file", pidfile.to_str().unwrap()])
        .ok();
    let pid: i32 = fs::read_to_string(&pidfile)
        .expect("pid file")
        .trim()
        .parse()
        .unwrap();
    c.remember(pid);
    assert_eq!(pid, c.pid());
    c.delete_force().ok();
    c.assert_clean();
}

#[test]
fn container_is_pid_1() {
    let c = Container::new(Bundle::new().sh("echo $$; cat /proc/self/stat | cut -d' ' -f1"));
    let out = c.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first().copied(), Some("1"), "output: {out:?}");
    c.assert_clean();
}

#[test]
fn list_table_and_json() {
    let c = Container::new(sleeper()).created();
    let o = c.rrun(&["list"]);
    o.ok();
    let header = o.stdout.lines().next().unwrap_or("");
    for col in ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"] {
        assert!(header.contains(col), "list header lacks {col}: {header:?}");
    }
    let row = o
        .stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(c.id.as_str()))
        .unwrap_or_else(|| panic!("list lacks {}:\n{o}", c.id));
    assert!(row.contains("created"), "row: {row}");
    assert!(row.contains(&c.pid().to_string()), "row: {row}");

    let o = c.rrun(&["list", "--format", "json"]);
    o.ok();
    let v: Value = serde_json::from_str(&o.stdout).expect("list json");
    let arr = v.as_array().expect("json list is an array");
    let item = arr
        .iter()
        .find(|i| i["id"] == c.id.as_str())
        .expect("container in json list");
    assert_eq!(item["status"], "created");
    assert_eq!(item["pid"].as_i64().unwrap() as i32, c.pid());

    let o = c.rrun(&["list", "-q"]);
    o.ok();
    assert_eq!(o.stdout.trim(), c.id, "list -q prints ids only");

    c.delete().ok();
    c.assert_clean();
}

#[test]
fn list_empty_root() {
    let c = Container::new(sleeper());
    fs::create_dir_all(&c.root).unwrap();
    let o = c.rrun(&["list", "--format", "json"]);
    o.ok();
    let v: Value = serde_json::from_str(o.stdout.trim()).expect("json");
    // runc prints `null` for no containers; an empty array is as good.
    assert!(
        v.is_null() || v.as_array().is_some_and(|a| a.is_empty()),
        "empty list: {v}"
    );
    let o = c.rrun(&["list", "-q"]);
    o.ok();
    assert_eq!(o.stdout.trim(), "");
}

#[test]
fn start_twice_is_an_error() {
    let c = Container::new(sleeper()).created();
    c.start().ok();
    c.wait_status("running");
    let o = c.start();
    o.failed().stderr_is_short_error();
    assert_eq!(c.status(), "running", "a failed start must not disturb it");
    c.kill("KILL").ok();
    c.wait_status("stopped");
    let o = c.start();
    o.failed();
    assert_eq!(c.status(), "stopped");
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn delete_running_without_force_fails() {
    let c = Container::new(sleeper()).created();
    c.start().ok();
    c.wait_status("running");
    let pid = c.pid();
    c.delete()
        .failed()
        .stderr_mentions(&["running", "force", "stop"]);
    assert_eq!(c.status(), "running");
    assert!(pid_alive(pid));
    c.delete_force().ok();
    c.assert_clean();
}

#[test]
fn delete_force_running() {
    let c = Container::new(sleeper()).created();
    c.start().ok();
    c.wait_status("running");
    let pid = c.pid();
    c.delete_force().ok();
    assert!(poll(Duration::from_secs(5), || (!pid_alive(pid)).then_some(())).is_some());
    c.assert_clean();
}

#[test]
fn delete_created_container() {
    let c = Container::new(sleeper()).created();
    let pid = c.pid();
    c.delete().ok();
    assert!(poll(Duration::from_secs(5), || (!pid_alive(pid)).then_some(())).is_some());
    c.assert_clean();
}

#[test]
fn delete_force_created_container() {
    let c = Container::new(sleeper()).created();
    c.delete_force().ok();
    c.assert_clean();
}

#[test]
fn kill_default_signal_is_term() {
    let c = Container::new(sleeper()).created();
    c.start().ok();
    c.wait_status("running");
    poll(Duration::from_secs(5), || {
        c.output().0.contains("ready").then_some(())
    })
    .expect("container ready");
    c.rrun(&["kill", &c.id]).ok();
    c.wait_status("stopped");
    assert!(c.output().0.contains("got TERM"), "{:?}", c.output());
    c.delete().ok();
    c.assert_clean();
}

fn kill_with(sig: &str, expect_output: Option<&str>) {
    let c = Container::new(sleeper()).created();
    c.start().ok();
    c.wait_status("running");
    poll(Duration::from_secs(5), || {
        c.output().0.contains("ready").then_some(())
    })
    .expect("container ready");
    c.kill(sig).ok();
    if let Some(text) = expect_output {
        {
            let seen = poll(Duration::from_secs(5), || {
                c.output().0.contains(text).then_some(())
            });
            assert!(seen.is_some(), "signal {sig}: {:?}", c.output());
            if text == "got USR1" {
                assert_eq!(c.status(), "running", "USR1 is handled, keeps running");
                c.kill("KILL").ok();
            }
        }
    }
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn kill_by_name_term() {
    kill_with("TERM", Some("got TERM"));
}

#[test]
fn kill_by_name_sigterm() {
    kill_with("SIGTERM", Some("got TERM"));
}

#[test]
fn kill_by_name_kill() {
    kill_with("KILL", None);
}

#[test]
fn kill_by_name_sigkill() {
    kill_with("SIGKILL", None);
}

#[test]
fn kill_by_number_9() {
    kill_with("9", None);
}

#[test]
fn kill_by_number_15() {
    kill_with("15", Some("got TERM"));
}

#[test]
fn kill_usr1_by_name_and_number() {
    kill_with("USR1", Some("got USR1"));
    kill_with("10", Some("got USR1"));
}

#[test]
fn kill_created_container() {
    let c = Container::new(sleeper()).created();
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn kill_all_kills_every_process() {
    let c = Container::new(Bundle::new().sh("sleep 30 & sleep 31 & wait"));
    c.run_detached().ok();
    // both sleeps are children of the container init
    let pid = c.pid();
    let kids = poll(Duration::from_secs(5), || {
        let s = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
        let v: Vec<i32> = s
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        (v.len() == 2).then_some(v)
    })
    .expect("two children");
    for k in &kids {
        c.remember(*k);
    }
    c.rrun(&["kill", "--all", &c.id, "KILL"]).ok();
    c.wait_status("stopped");
    for k in kids {
        assert!(
            poll(Duration::from_secs(5), || (!pid_alive(k)).then_some(())).is_some(),
            "child {k} survived kill --all"
        );
    }
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn stopped_after_exit() {
    let c = Container::new(Bundle::new().args(&["true"])).created();
    c.start().ok();
    c.wait_status("stopped");
    assert_eq!(c.state()["pid"], 0);
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn two_containers_same_root() {
    let a = Container::new(sleeper());
    let mut b = Container::with_id(sleeper(), &format!("{}-b", a.id));
    // share a's state root
    b.root = a.root.clone();
    a.create().ok();
    b.create().ok();
    let o = a.rrun(&["list", "-q"]);
    o.ok();
    let mut ids: Vec<&str> = o.stdout.lines().collect();
    ids.sort();
    let mut want = vec![a.id.as_str(), b.id.as_str()];
    want.sort();
    assert_eq!(ids, want);
    b.delete().ok();
    assert_eq!(a.status(), "created");
    a.delete().ok();
    a.assert_clean();
    b.assert_clean();
}
