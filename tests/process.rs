//! The container process: argv, PATH lookup, stdio, fds, exit and signals.

#[macro_use]
mod common;

use common::*;
use serde_json::json;
use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn argv_is_passed_verbatim() {
    let c = Container::new(Bundle::new().args(&[
        "sh",
        "-c",
        "printf '%s|' \"$0\" \"$@\"",
        "argv0",
        "a b",
        "c'd",
        "",
        "$HOME",
    ]));
    assert_eq!(c.run_ok(), "argv0|a b|c'd||$HOME|");
    c.assert_clean();
}

#[test]
fn program_found_via_path() {
    let c = Container::new(Bundle::new().args(&["echo", "via", "path"]));
    assert_eq!(c.run_ok(), "via path\n");
    c.assert_clean();
}

#[test]
fn program_by_absolute_path() {
    let c = Container::new(Bundle::new().args(&["/bin/busybox", "echo", "abs"]));
    assert_eq!(c.run_ok(), "abs\n");
    c.assert_clean();
}

#[test]
fn home_defaults_from_passwd() {
    let c = Container::new(Bundle::new().sh("echo $HOME"));
    assert_eq!(c.run_ok(), "/root\n");
    c.assert_clean();
    let c = Container::new(Bundle::new().user(1000, 1000, &[]).sh("echo $HOME"));
    assert_eq!(c.run_ok(), "/home/user\n");
    c.assert_clean();
    let c = Container::new(Bundle::new().env("HOME=/custom").sh("echo $HOME"));
    assert_eq!(c.run_ok(), "/custom\n");
    c.assert_clean();
}

#[test]
fn stdin_is_passed_through() {
    // Our stdin is /dev/null: cat ends at once.
    let c = Container::new(Bundle::new().sh("cat; echo done"));
    assert_eq!(c.run_ok(), "done\n");
    c.assert_clean();
}

#[test]
fn large_output_not_truncated() {
    let c = Container::new(Bundle::new().sh("head -c 300000 /dev/zero | tr '\\0' a"));
    let out = c.run_ok();
    assert_eq!(out.len(), 300000);
    assert!(out.bytes().all(|b| b == b'a'));
    c.assert_clean();
}

#[test]
fn init_exit_ends_container_and_kills_children() {
    let c = Container::new(Bundle::new().sh("sleep 20 & echo $! > /dev/null; exit 5"));
    let t = Instant::now();
    let o = c.run();
    assert_eq!(o.code, Some(5), "{o}");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
    c.assert_clean();
}

/// Run `rrun ... run` from a host shell that first opens fd 3 on a file.
fn run_with_fd3(c: &Container, extra: &str) -> Output {
    c.bundle.write();
    let secret = c.bundle.file("fd3-data");
    fs::write(&secret, "through fd 3\n").unwrap();
    let script = format!(
        "exec 3<'{}'; exec '{}' --root '{}' run {} --bundle '{}' '{}'",
        secret.display(),
        rrun_bin().display(),
        c.root.display(),
        extra,
        c.bundle.path().display(),
        c.id
    );
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script);
    run_timeout(cmd, TIMEOUT)
}

#[test]
fn preserve_fds_passes_extra_fd() {
    let c = Container::new(Bundle::new().sh("cat <&3"));
    let o = run_with_fd3(&c, "--preserve-fds 1");
    o.ok();
    assert_eq!(o.stdout, "through fd 3\n");
    c.assert_clean();
}

#[test]
fn extra_fds_not_leaked_without_preserve_fds() {
    let c = Container::new(
        Bundle::new().sh("ls /proc/1/fd; for f in /proc/1/fd/*; do readlink $f; done; true"),
    );
    let o = run_with_fd3(&c, "");
    o.ok();
    assert!(!o.stdout.contains("fd3-data"), "fd 3 leaked:\n{o}");
    assert!(
        !o.stdout.lines().any(|l| l == "3"),
        "fd 3 open in init:\n{o}"
    );
    assert!(
        !o.stdout.contains(&*c.bundle.path().to_string_lossy()),
        "host fd leaked:\n{o}"
    );
    c.assert_clean();
}

#[test]
fn foreground_run_forwards_signals() {
    let c = Container::new(
        Bundle::new()
            .sh("trap 'echo got TERM; exit 7' TERM; echo ready; while true; do sleep 0.05; done"),
    );
    let bg = c.run_background();
    c.wait_status("running");
    // Let the trap be installed.
    std::thread::sleep(Duration::from_millis(300));
    let pid = bg.child.id().to_string();
    let mut k = Command::new("kill");
    k.args(["-TERM", &pid]);
    run_timeout(k, TIMEOUT).ok();
    let o = bg.wait(TIMEOUT);
    assert_eq!(o.code, Some(7), "{o}");
    assert!(o.stdout.contains("got TERM"), "{o}");
    c.assert_clean();
}

#[test]
fn exit_code_of_exec_failure_in_shell() {
    let c = Container::new(Bundle::new().sh("exec /nonexistent-rrun-cmd"));
    let o = c.run();
    assert_eq!(o.code, Some(127), "{o}");
    c.assert_clean();
}

#[test]
fn no_new_keyring_flag_accepted() {
    let c = Container::new(Bundle::new().sh("echo keyring-ok"));
    let o = c.run_with(&["--no-new-keyring"]);
    o.ok();
    assert_eq!(o.stdout, "keyring-ok\n");
    c.assert_clean();
}

#[test]
fn process_runs_in_its_own_session() {
    // The container init is a session leader, not in the runtime's session.
    let c = Container::new(Bundle::new().sh("cut -d' ' -f6 /proc/self/stat"));
    let out = c.run_ok();
    // Field 6 is the session id as seen in the container's pid namespace:
    // either 1 (init leads its session) or 0 (session leader outside).
    assert!(["0", "1"].contains(&out.trim()), "sid {out:?}");
    c.assert_clean();
}

#[test]
fn apparmor_and_selinux_labels_ignored_when_unsupported() {
    require!(
        !std::path::Path::new("/sys/kernel/security/apparmor").exists(),
        "AppArmor is enabled on this host"
    );
    // An empty profile must be accepted on hosts without LSMs.
    let c = Container::new(
        Bundle::new()
            .with(|v| v["process"]["apparmorProfile"] = json!(""))
            .sh("echo lsm-ok"),
    );
    assert_eq!(c.run_ok(), "lsm-ok\n");
    c.assert_clean();
}
