//! Error handling: each failure exits non-zero, names the problem in one
//! short stderr message, and leaves nothing behind.

#[macro_use]
mod common;

use common::*;
use serde_json::{Value, json};
use std::fs;
use std::path::PathBuf;

/// Assert a failed create left no container and no processes/cgroups.
fn assert_failed_create_clean(c: &Container) {
    c.assert_clean();
    if let Ok(rd) = fs::read_dir(&c.root) {
        let left: Vec<_> = rd.flatten().map(|e| e.file_name()).collect();
        assert!(left.is_empty(), "state root not empty: {left:?}");
    }
}

#[test]
fn missing_bundle_dir() {
    let c = Container::new(Bundle::new());
    let missing = c.bundle.file("does-not-exist");
    let o = c.rrun(&["create", "--bundle", missing.to_str().unwrap(), &c.id]);
    o.failed().stderr_is_short_error().stderr_mentions(&[
        "bundle",
        "config.json",
        "no such file",
        "not found",
    ]);
    assert_failed_create_clean(&c);
}

#[test]
fn missing_config_json() {
    let c = Container::new(Bundle::new());
    // bundle dir exists but has no config.json
    let o = c.rrun(&["create", "--bundle", &c.bundle_arg(), &c.id]);
    o.failed()
        .stderr_is_short_error()
        .stderr_mentions(&["config.json", "config", "no such file"]);
    assert_failed_create_clean(&c);
}

#[test]
fn malformed_config_json() {
    let c = Container::new(Bundle::new());
    fs::write(
        c.bundle.file("config.json"),
        "{ \"ociVersion\": \"1.0.2\", \"process\": { \"args\": [\"sh\"] ",
    )
    .unwrap();
    let o = c.rrun(&["create", "--bundle", &c.bundle_arg(), &c.id]);
    o.failed()
        .stderr_is_short_error()
        .stderr_mentions(&["config", "json", "parse", "EOF"]);
    assert_failed_create_clean(&c);
}

#[test]
fn config_json_wrong_types() {
    let c = Container::new(Bundle::new().with(|v| v["process"]["args"] = json!("sh -c true")));
    let o = c.create();
    o.failed()
        .stderr_is_short_error()
        .stderr_mentions(&["config", "args", "json", "invalid", "type"]);
    assert_failed_create_clean(&c);
}

#[test]
fn unsupported_oci_version() {
    require!(!is_runc(), "runc 1.1 does not validate ociVersion");
    let c = Container::new(Bundle::new().with(|v| v["ociVersion"] = json!("9.9.9")));
    let o = c.create();
    o.failed()
        .stderr_is_short_error()
        .stderr_mentions(&["ociVersion", "version", "9.9.9"]);
    assert_failed_create_clean(&c);
}

#[test]
fn missing_rootfs() {
    let c = Container::new(Bundle::new().with(|v| {
        v["root"] = json!({ "path": "/nonexistent-rrun-test-rootfs", "readonly": true })
    }));
    let o = c.create();
    o.failed().stderr_is_short_error().stderr_mentions(&[
        "rootfs",
        "root",
        "no such file",
        "nonexistent-rrun-test-rootfs",
    ]);
    assert_failed_create_clean(&c);
}

#[test]
fn missing_process_args() {
    let c = Container::new(Bundle::new().with(|v| v["process"]["args"] = json!([])));
    let o = c.create();
    o.failed()
        .stderr_is_short_error()
        .stderr_mentions(&["args"]);
    assert_failed_create_clean(&c);
}

#[test]
fn relative_cwd_rejected() {
    let c = Container::new(Bundle::new().cwd("relative/dir"));
    let o = c.create();
    o.failed()
        .stderr_is_short_error()
        .stderr_mentions(&["cwd", "absolute"]);
    assert_failed_create_clean(&c);
}

#[test]
fn missing_executable() {
    let c = Container::new(Bundle::new().args(&["/bin/rrun-no-such-binary"]));
    let o = c.run();
    o.failed().stderr_is_short_error().stderr_mentions(&[
        "rrun-no-such-binary",
        "no such file",
        "not found",
    ]);
    c.assert_clean();
}

#[test]
fn duplicate_id() {
    let a = Container::new(Bundle::new().sh("exec sleep 30")).created();
    let mut b = Container::with_id(Bundle::new().sh("exec sleep 30"), &a.id);
    b.root = a.root.clone();
    let pid = a.pid();
    let o = b.create();
    o.failed()
        .stderr_is_short_error()
        .stderr_mentions(&["exist", "already", "in use"]);
    // The first one is untouched.
    let st = a.state();
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(st["pid"].as_i64(), Some(pid as i64));
    assert!(pid_alive(pid));
    assert!(
        cgroup_dirs(&b.bundle.cgroups_path)
            .iter()
            .all(|d| !d.exists()),
        "second create left a cgroup"
    );
    // Do not let b's guard delete a's container.
    b.id = String::new();
    a.delete().ok();
    a.assert_clean();
}

fn unknown_id_fails(args: &[&str]) {
    let c = Container::new(Bundle::new());
    fs::create_dir_all(&c.root).unwrap();
    let mut full: Vec<&str> = args.to_vec();
    full.push("rrun-test-no-such-container");
    let o = c.rrun(&full);
    o.failed().stderr_is_short_error().stderr_mentions(&[
        "not exist",
        "not found",
        "no such",
        "unknown",
        "does not",
    ]);
}

#[test]
fn unknown_id_state() {
    unknown_id_fails(&["state"]);
}

#[test]
fn unknown_id_start() {
    unknown_id_fails(&["start"]);
}

#[test]
fn unknown_id_kill() {
    unknown_id_fails(&["kill"]);
}

#[test]
fn unknown_id_delete() {
    unknown_id_fails(&["delete"]);
}

#[test]
fn unknown_id_delete_force_succeeds() {
    // runc: `delete --force` of a missing container is not an error.
    let c = Container::new(Bundle::new());
    fs::create_dir_all(&c.root).unwrap();
    c.rrun(&["delete", "--force", "rrun-test-no-such-container"])
        .ok();
}

#[test]
fn start_running_container() {
    let c = Container::new(Bundle::new().sh("exec sleep 30")).created();
    c.start().ok();
    c.wait_status("running");
    c.start()
        .failed()
        .stderr_is_short_error()
        .stderr_mentions(&["running", "created", "state", "cannot start"]);
    assert_eq!(c.status(), "running");
    c.delete_force().ok();
    c.assert_clean();
}

#[test]
fn start_stopped_container() {
    let c = Container::new(Bundle::new().args(&["true"])).created();
    c.start().ok();
    c.wait_status("stopped");
    c.start()
        .failed()
        .stderr_is_short_error()
        .stderr_mentions(&["stopped", "created", "state", "cannot start"]);
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn kill_stopped_container() {
    let c = Container::new(Bundle::new().args(&["true"])).created();
    c.start().ok();
    c.wait_status("stopped");
    c.kill("KILL")
        .failed()
        .stderr_is_short_error()
        .stderr_mentions(&["not running", "stopped", "state"]);
    c.delete().ok();
    c.assert_clean();
}

fn invalid_id(id: &str) {
    let c = Container::with_id(Bundle::new().sh("exec sleep 30"), id);
    fs::create_dir_all(&c.root).unwrap();
    let o = c.create();
    o.failed()
        .stderr_is_short_error()
        .stderr_mentions(&["id", "invalid", "name", "too long", "empty"]);
    if let Ok(rd) = fs::read_dir(&c.root) {
        let left: Vec<_> = rd.flatten().map(|e| e.file_name()).collect();
        assert!(left.is_empty(), "state root not empty: {left:?}");
    }
    for d in cgroup_dirs(&c.bundle.cgroups_path) {
        assert!(!d.exists(), "cgroup {} left", d.display());
    }
}

#[test]
fn invalid_id_parent_traversal() {
    // Must not create anything next to the state root.
    let name = unique_name();
    let escaped = PathBuf::from("/run").join(&name);
    invalid_id(&format!("../{name}"));
    assert!(!escaped.exists(), "{} created", escaped.display());
}

#[test]
fn invalid_id_with_slash() {
    invalid_id("rrun-test/slash");
}

#[test]
fn invalid_id_empty() {
    invalid_id("");
}

#[test]
fn invalid_id_too_long() {
    invalid_id(&format!("rrun-test-{}", "x".repeat(1014)));
}

#[test]
fn invalid_id_dot() {
    invalid_id("..");
}

#[test]
fn unknown_signal() {
    let c = Container::new(Bundle::new().sh("exec sleep 30")).created();
    for sig in ["SIGNOPE", "NOPE", "999", "-1"] {
        c.kill(sig)
            .failed()
            .stderr_is_short_error()
            .stderr_mentions(&["signal", sig]);
    }
    assert_eq!(c.status(), "created");
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn json_log_on_error() {
    let c = Container::new(Bundle::new());
    fs::create_dir_all(&c.root).unwrap();
    let log = c.bundle.file("rrun.log");
    let o = c.rrun(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        "rrun-test-no-such-container",
    ]);
    o.failed();
    let text = fs::read_to_string(&log).expect("log file written");
    let errors: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("log line not JSON ({e}): {l}")))
        .filter(|v: &Value| v["level"] == "error")
        .collect();
    assert!(!errors.is_empty(), "no error line in log: {text}");
    let e = &errors[0];
    let msg = e["msg"].as_str().expect("msg string");
    assert!(
        ["not exist", "not found", "no such", "does not"]
            .iter()
            .any(|w| msg.to_lowercase().contains(w)),
        "msg does not name the problem: {msg}"
    );
    let time = e["time"].as_str().expect("time string");
    assert!(
        time.len() >= 19 && time.as_bytes()[10] == b'T',
        "time: {time}"
    );
}

#[test]
fn text_log_on_error() {
    let c = Container::new(Bundle::new());
    fs::create_dir_all(&c.root).unwrap();
    let log = c.bundle.file("rrun.log");
    let o = c.rrun(&[
        "--log",
        log.to_str().unwrap(),
        "state",
        "rrun-test-no-such-container",
    ]);
    o.failed();
    let text = fs::read_to_string(&log).expect("log file written");
    assert!(text.contains("error"), "log: {text}");
}

#[test]
fn unknown_subcommand() {
    let c = Container::new(Bundle::new());
    let o = c.rrun(&["frobnicate"]);
    o.failed().stderr_mentions(&["frobnicate", "command"]);
}

#[test]
fn failed_start_leaves_nothing_with_run() {
    // run with a broken config must not leave a half-created container.
    let c = Container::new(Bundle::new().with(|v| {
        v["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/mnt", "type": "bind",
            "source": "/nonexistent-rrun-test-src", "options": ["bind"]
        }))
    }));
    let o = c.run();
    o.failed().stderr_is_short_error().stderr_mentions(&[
        "nonexistent-rrun-test-src",
        "mount",
        "no such file",
    ]);
    assert_failed_create_clean(&c);
}
