//! Command-line surface: spec, --version, --help, global flags.

#[macro_use]
mod common;

use common::*;
use serde_json::Value;
use std::fs;
use std::process::Command;

fn rrun(args: &[&str]) -> Output {
    let mut c = Command::new(rrun_bin());
    c.args(args);
    run_timeout(c, TIMEOUT)
}

fn spec_in(dir: &std::path::Path, extra: &[&str]) -> Value {
    let mut args = vec!["spec", "--bundle", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    rrun(&args).ok();
    let text = fs::read_to_string(dir.join("config.json")).expect("spec wrote config.json");
    serde_json::from_str(&text).expect("spec output is JSON")
}

#[test]
fn spec_writes_valid_config() {
    let dir = tempfile::tempdir().unwrap();
    let v = spec_in(dir.path(), &[]);
    assert!(v["ociVersion"].as_str().unwrap().starts_with("1."), "{v}");
    assert_eq!(v["root"]["path"], "rootfs");
    assert!(
        v["process"]["args"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );
    assert_eq!(v["process"]["cwd"], "/");
    assert!(v["process"]["user"]["uid"].is_u64());
    let ns: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    for want in ["pid", "network", "ipc", "uts", "mount"] {
        assert!(ns.contains(&want), "namespace {want} missing: {ns:?}");
    }
    assert!(!ns.contains(&"user"), "user namespace without --rootless");
    let mounts: Vec<&str> = v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap())
        .collect();
    for want in ["/proc", "/dev", "/dev/pts", "/dev/shm", "/sys"] {
        assert!(mounts.contains(&want), "mount {want} missing: {mounts:?}");
    }
    assert!(
        v["linux"]["maskedPaths"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );
    assert!(
        v["linux"]["readonlyPaths"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );
    let caps = &v["process"]["capabilities"]["bounding"];
    assert!(caps.as_array().is_some_and(|a| !a.is_empty()), "{caps}");
}

#[test]
fn spec_default_bundle_is_cwd() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Command::new(rrun_bin());
    c.arg("spec").current_dir(dir.path());
    run_timeout(c, TIMEOUT).ok();
    let v: Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("config.json")).unwrap()).unwrap();
    assert!(v["ociVersion"].is_string());
}

#[test]
fn spec_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("config.json"), "keep me").unwrap();
    let o = rrun(&["spec", "--bundle", dir.path().to_str().unwrap()]);
    o.failed().stderr_mentions(&["exist", "config.json"]);
    assert_eq!(
        fs::read_to_string(dir.path().join("config.json")).unwrap(),
        "keep me"
    );
}

#[test]
fn spec_rootless_adds_user_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let v = spec_in(dir.path(), &["--rootless"]);
    let ns: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(ns.contains(&"user"), "{ns:?}");
    assert!(
        !ns.contains(&"network"),
        "rootless spec keeps the host network: {ns:?}"
    );
    for key in ["uidMappings", "gidMappings"] {
        let m = v["linux"][key]
            .as_array()
            .unwrap_or_else(|| panic!("{key} missing"));
        assert_eq!(m.len(), 1, "{key}: {m:?}");
        assert_eq!(m[0]["containerID"], 0, "{key}");
        assert_eq!(m[0]["size"], 1, "{key}");
        // We run as root: the mapping is for our own ids.
        assert_eq!(m[0]["hostID"], 0, "{key}");
    }
}

#[test]
fn spec_output_runs_with_busybox() {
    // The generated spec, with terminal off and our rootfs, really runs.
    let b = Bundle::new();
    let v = spec_in(b.path(), &[]);
    let mut c = Container::new(b);
    c.bundle.config = v;
    c.bundle.config["process"]["terminal"] = serde_json::json!(false);
    c.bundle.config["process"]["args"] = serde_json::json!(["sh", "-c", "echo spec-ok"]);
    c.bundle.config["root"]["path"] = serde_json::json!(c.bundle.rootfs.to_str().unwrap());
    c.bundle.config["linux"]["cgroupsPath"] = serde_json::json!(c.bundle.cgroups_path.clone());
    assert_eq!(c.run_ok(), "spec-ok\n");
    c.assert_clean();
}

/// `spec`'s config.json, byte for byte, is a working container: with the
/// bundle's rootfs where it points ("rootfs") it creates (it asks for a
/// terminal: console socket), starts, runs its `sh` on the pty, and is
/// deleted; the file is left as it was.
#[test]
fn spec_output_round_trips_through_create_unchanged() {
    require!(is_root(), "needs root");
    let b = Bundle::new().private_rootfs();
    let dir = b.path().to_path_buf();
    spec_in(&dir, &[]);
    let before = fs::read(dir.join("config.json")).unwrap();
    let root = tempfile::Builder::new()
        .prefix("rrun-test-root-")
        .tempdir()
        .unwrap();
    let r = root.path().to_string_lossy().into_owned();
    let id = unique_name();
    struct Del(String, String);
    impl Drop for Del {
        fn drop(&mut self) {
            let _ = rrun(&["--root", &self.0, "delete", "--force", &self.1]);
        }
    }
    let _del = Del(r.clone(), id.clone());
    let mut sock = ConsoleSocket::new();
    let d = dir.to_string_lossy().into_owned();
    rrun(&[
        "--root",
        &r,
        "create",
        "--bundle",
        &d,
        "--console-socket",
        &sock.arg(),
        &id,
    ])
    .ok();
    let (master, _) = sock.receive();
    rrun(&["--root", &r, "start", &id]).ok();
    let st: Value = serde_json::from_str(&rrun(&["--root", &r, "state", &id]).ok().stdout).unwrap();
    assert_eq!(st["status"], "running", "{st}");
    // The shell answers on the pty.
    // Non-blocking, so a silent shell fails the test instead of hanging it.
    let fl = nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_GETFL).unwrap();
    let fl = nix::fcntl::OFlag::from_bits_truncate(fl) | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_SETFL(fl)).unwrap();
    let mut m = fs::File::from(master);
    use std::io::{Read, Write};
    m.write_all(b"echo spec-$((40+2))\n").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    let deadline = std::time::Instant::now() + TIMEOUT;
    while !String::from_utf8_lossy(&got).contains("spec-42") && std::time::Instant::now() < deadline
    {
        match m.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(_) => break,
        }
    }
    assert!(
        String::from_utf8_lossy(&got).contains("spec-42"),
        "pty said {:?}",
        String::from_utf8_lossy(&got)
    );
    rrun(&["--root", &r, "kill", &id, "KILL"]).ok();
    poll(TIMEOUT, || {
        let o = rrun(&["--root", &r, "state", &id]);
        o.stdout.contains("\"stopped\"").then_some(())
    })
    .expect("container stopped");
    rrun(&["--root", &r, "delete", &id]).ok();
    assert_eq!(
        fs::read(dir.join("config.json")).unwrap(),
        before,
        "config.json changed"
    );
}

/// exec's steps are in the debug log too, as runc's `--debug` shows its
/// exec (text and JSON formats).
#[test]
fn debug_log_has_exec_steps() {
    require!(!is_runc(), "rrun's step names are its own");
    let c = Container::new(Bundle::new().args(&["sleep", "30"]));
    c.create().ok();
    c.start().ok();
    for (format, prefix) in [("text", "level=debug"), ("json", "\"level\":\"debug\"")] {
        let log = c.bundle.path().join(format!("exec-{format}.log"));
        let l = log.to_string_lossy().into_owned();
        c.rrun(&[
            "--debug",
            "--log",
            &l,
            "--log-format",
            format,
            "exec",
            &c.id,
            "true",
        ])
        .ok();
        let text = std::fs::read_to_string(&log).expect("the debug log");
        for step in ["exec-forked", "exec-joined", "exec-done"] {
            assert!(
                text.lines()
                    .any(|l| l.contains(prefix) && l.contains(&format!("step {step} (+"))),
                "no {format} debug line for {step} in:\n{text}"
            );
        }
    }
    c.delete_force().ok();
    c.assert_clean();
}

#[test]
fn version() {
    let o = rrun(&["--version"]);
    o.ok();
    let out = o.stdout.to_lowercase();
    assert!(out.contains("version"), "{o}");
    assert!(
        out.contains("spec"),
        "--version should name the OCI spec version: {o}"
    );
    assert!(
        out.split_whitespace()
            .any(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()) && w.contains('.')),
        "no version number: {o}"
    );
}

#[test]
fn help_lists_commands() {
    let o = rrun(&["--help"]);
    o.ok();
    for cmd in [
        "create", "start", "state", "kill", "delete", "run", "list", "spec",
    ] {
        assert!(o.stdout.contains(cmd), "--help lacks {cmd}:\n{o}");
    }
}

#[test]
fn subcommand_help() {
    let o = rrun(&["create", "--help"]);
    o.ok();
    for flag in ["--bundle", "--pid-file", "--console-socket"] {
        assert!(o.stdout.contains(flag), "create --help lacks {flag}:\n{o}");
    }
}

#[test]
fn missing_id_argument() {
    let c = Container::new(Bundle::new());
    fs::create_dir_all(&c.root).unwrap();
    for cmd in ["state", "start", "delete", "kill"] {
        c.rrun(&[cmd]).failed();
    }
}

#[test]
fn root_flag_is_honoured() {
    let c = Container::new(Bundle::new().sh("exec sleep 30")).created();
    assert!(
        c.root.join(&c.id).is_dir(),
        "state not under --root {}",
        c.root.display()
    );
    // Another root does not see it.
    let other = Container::new(Bundle::new());
    fs::create_dir_all(&other.root).unwrap();
    other.rrun(&["state", &c.id]).failed();
    let o = other.rrun(&["list", "-q"]);
    o.ok();
    assert!(!o.stdout.contains(&c.id));
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn debug_flag_accepted() {
    let c = Container::new(Bundle::new().sh("echo dbg"));
    let b = c.bundle_arg();
    c.bundle.write();
    let o = c.rrun(&["--debug", "run", "--bundle", &b, &c.id]);
    o.ok();
    assert!(o.stdout.contains("dbg"), "{o}");
    c.assert_clean();
}

/// --debug times every step of create, start and delete in the log (with
/// --log to a file, one line each), so a slow step can be found in place.
#[test]
fn debug_log_times_each_lifecycle_step() {
    require!(!is_runc(), "rrun's step timings are its own");
    let c = Container::new(Bundle::new().args(&["true"]));
    let b = c.bundle_arg();
    c.bundle.write();
    let log = c.bundle.path().join("debug.log");
    let l = log.to_string_lossy().into_owned();
    c.rrun(&["--debug", "--log", &l, "run", "--bundle", &b, &c.id])
        .ok();
    let text = std::fs::read_to_string(&log).expect("the debug log");
    let mut last = -1.0f64;
    for step in [
        "create-claimed",
        "create-cgroups",
        "create-cloned",
        "create-ready",
        "create-saved",
        "start-exec-done",
        "delete-killed",
        "delete-done",
    ] {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("step {step} (+")))
            .unwrap_or_else(|| panic!("no timing line for {step} in:\n{text}"));
        let ms: f64 = line
            .split("(+")
            .nth(1)
            .and_then(|r| r.split(" ms").next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no time in {line:?}"));
        assert!(
            ms >= last,
            "{step} at {ms} ms comes before the previous step ({last} ms)"
        );
        last = ms;
    }
    c.assert_clean();
}

#[test]
fn bundle_short_flag_and_detach_short_flag() {
    let c = Container::new(Bundle::new().sh("exec sleep 30"));
    c.bundle.write();
    let b = c.bundle_arg();
    let mut cmd = c.cmd(&["run", "-d", "-b", &b, &c.id]);
    cmd.stdout(std::process::Stdio::null());
    run_timeout(cmd, TIMEOUT).ok();
    c.wait_status("running");
    c.delete_force().ok();
    c.assert_clean();
}
