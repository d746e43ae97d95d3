//! $NOTIFY_SOCKET (systemd's readiness protocol) through the container, as
//! runc does it: the program gets /run/notify/notify.sock, `start`/`run`
//! relay its READY with MAINPID to the host's socket. Everything the
//! container sends is hostile: only READY is acted on, nothing it writes is
//! passed on as such.

#[macro_use]
mod common;

use common::*;
use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A static program that sends each argument as one datagram to
/// $NOTIFY_SOCKET (the container's rootfs has no such tool).
const SENDER_C: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
int main(int argc, char **argv) {
    const char *p = getenv("NOTIFY_SOCKET");
    if (!p) { fprintf(stderr, "no NOTIFY_SOCKET\n"); return 2; }
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    strncpy(a.sun_path, p, sizeof a.sun_path - 1);
    for (int i = 1; i < argc; i++) {
        if (sendto(s, argv[i], strlen(argv[i]), 0, (struct sockaddr *)&a, sizeof a) < 0) {
            perror("sendto");
            return 1;
        }
    }
    return 0;
}
"#;

fn sender_dir() -> Option<PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    let dir = DIR
        .get_or_init(|| {
            if !have_cmd("gcc") {
                return None;
            }
            let dir = target_dir().join("notify-sender");
            fs::create_dir_all(&dir).unwrap();
            set_mode(&dir, 0o755);
            // Built under a name of this process's, then renamed: another
            // test binary may be running the old one.
            let tmp = dir.join(format!("notify.{}", std::process::id()));
            let c_file = tmp.with_extension("c");
            fs::write(&c_file, SENDER_C).unwrap();
            let mut c = Command::new("gcc");
            c.args(["-static", "-O2", "-o"]).arg(&tmp).arg(&c_file);
            run_timeout(c, TIMEOUT).ok();
            let _ = fs::remove_file(&c_file);
            fs::rename(&tmp, dir.join("notify")).unwrap();
            Some(dir)
        })
        .clone();
    if dir.is_none() {
        skip("gcc missing (apt-get install build-essential): no notify sender");
    }
    dir
}

/// The host's end: what systemd would be.
struct Host {
    dir: tempfile::TempDir,
    sock: UnixDatagram,
}

impl Host {
    fn new() -> Host {
        let dir = tempfile::Builder::new()
            .prefix("rrun-test-notify-")
            .tempdir()
            .unwrap();
        let sock = UnixDatagram::bind(dir.path().join("host.sock")).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Host { dir, sock }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("host.sock")
    }

    /// Datagrams received until `done` returns true or the timeout. A
    /// passed fd (BARRIER's pipe) is dropped unread: the kernel closes it,
    /// which is the confirmation the runtime waits for.
    fn collect(&self, timeout: Duration, mut done: impl FnMut(&[String]) -> bool) -> Vec<String> {
        let mut got = Vec::new();
        let end = Instant::now() + timeout;
        let mut buf = [0u8; 8192];
        while Instant::now() < end && !done(&got) {
            if let Ok(n) = self.sock.recv(&mut buf) {
                got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
        got
    }
}

/// The last MAINPID the host was told.
fn main_pid(msgs: &[String]) -> Option<i32> {
    msgs.iter()
        .flat_map(|m| m.lines())
        .filter_map(|l| l.strip_prefix("MAINPID="))
        .filter_map(|p| p.parse().ok())
        .next_back()
}

/// The runtime's last message: it waits for the fd it carries to close.
fn barrier(msgs: &[String]) -> bool {
    msgs.iter().any(|m| m.starts_with("BARRIER="))
}

fn said_ready(msgs: &[String]) -> bool {
    msgs.iter()
        .any(|m| m.lines().any(|l| l.starts_with("READY=")))
}

/// `rrun VERB... [--bundle B] ID` (config.json written) with $NOTIFY_SOCKET
/// the host's, or unset without one.
fn notify_cmd(c: &Container, host: Option<&Host>, verb: &[&str]) -> Command {
    c.bundle.write();
    let b = c.bundle_arg();
    let mut args: Vec<&str> = verb.to_vec();
    if matches!(verb.first(), Some(&"create" | &"run")) {
        args.extend(["--bundle", b.as_str()]);
    }
    args.push(&c.id);
    let mut cmd = c.cmd(&args);
    match host {
        Some(h) => cmd.env("NOTIFY_SOCKET", h.path()),
        None => cmd.env_remove("NOTIFY_SOCKET"),
    };
    cmd
}

/// A bundle with the sender at /probe/notify and a writable /out.
fn bundle(out: &Path, script: &str) -> Option<Bundle> {
    let probe = sender_dir()?;
    set_mode(out, 0o777);
    Some(
        Bundle::new()
            .bind_mount(&probe, "/probe", &["rbind", "ro"])
            .bind_mount(out, "/out", &["rbind", "rw"])
            .sh(script),
    )
}

#[test]
fn start_relays_ready_with_the_init_as_main_pid_and_nothing_the_container_wrote() {
    let out = tempfile::tempdir().unwrap();
    // Junk first (a forged MAINPID, a status, an oversized datagram), then
    // READY carrying a forged MAINPID of its own. The marker is written
    // before READY: `start` must not have returned before it exists.
    let Some(b) = bundle(
        out.path(),
        "echo \"$NOTIFY_SOCKET\" > /out/env; \
         grep -c ' /run/notify ' /proc/self/mountinfo > /out/mounts; \
         sleep 1; \
         big=$(head -c 3000 /dev/zero | tr '\\0' x); \
         /probe/notify \"$(printf 'MAINPID=1\\nSTATUS=forged')\" \"$big\" || exit 1; \
         touch /out/sent; \
         /probe/notify \"$(printf 'READY=1\\nMAINPID=1')\"; \
         exec sleep 60",
    ) else {
        return;
    };
    let host = Host::new();
    let c = Container::new(b);
    run_timeout(notify_cmd(&c, Some(&host), &["create"]), TIMEOUT).ok();
    let pid1 = c.pid();

    let bg = Background::spawn(notify_cmd(&c, Some(&host), &["start"]));
    let msgs = host.collect(TIMEOUT, barrier);
    bg.wait(TIMEOUT).ok();
    assert!(
        out.path().join("sent").exists(),
        "start returned before the container said READY"
    );
    assert!(said_ready(&msgs), "no READY reached the host: {msgs:?}");
    assert_eq!(
        main_pid(&msgs),
        Some(pid1),
        "MAINPID is not the container's init: {msgs:?}"
    );
    let all = msgs.join("|");
    assert!(
        !all.contains("forged") && !all.contains("xxxx"),
        "the container's own text reached the host: {msgs:?}"
    );
    assert_eq!(
        fs::read_to_string(out.path().join("env")).unwrap().trim(),
        "/run/notify/notify.sock"
    );
    assert_eq!(
        fs::read_to_string(out.path().join("mounts"))
            .unwrap()
            .trim(),
        "1",
        "/run/notify is not one mount in the container"
    );
    c.kill("KILL").ok();
}

#[test]
fn a_container_that_never_says_ready_does_not_hang_start() {
    let out = tempfile::tempdir().unwrap();
    let Some(b) = bundle(out.path(), "/probe/notify STATUS=starting; sleep 1; exit 3") else {
        return;
    };
    let host = Host::new();
    let c = Container::new(b);
    run_timeout(notify_cmd(&c, Some(&host), &["create"]), TIMEOUT).ok();
    // Returns once the init is gone (TIMEOUT would fail the test).
    run_timeout(notify_cmd(&c, Some(&host), &["start"]), TIMEOUT).ok();
    let msgs = host.collect(Duration::from_millis(300), |_| false);
    assert!(
        !said_ready(&msgs) && main_pid(&msgs).is_none(),
        "the host was told something: {msgs:?}"
    );
}

#[test]
fn foreground_run_names_itself_main_pid() {
    let out = tempfile::tempdir().unwrap();
    let Some(b) = bundle(out.path(), "/probe/notify READY=1; exec sleep 60") else {
        return;
    };
    let host = Host::new();
    let c = Container::new(b);
    let bg = Background::spawn(notify_cmd(&c, Some(&host), &["run"]));
    let me = bg.child.id() as i32;
    let msgs = host.collect(TIMEOUT, barrier);
    assert!(said_ready(&msgs), "no READY: {msgs:?}");
    assert_eq!(
        main_pid(&msgs),
        Some(me),
        "MAINPID is not `run` itself: {msgs:?}"
    );
    c.kill("KILL").ok();
    bg.wait(TIMEOUT);
}

#[test]
fn detached_run_relays_ready_too() {
    let out = tempfile::tempdir().unwrap();
    let Some(b) = bundle(
        out.path(),
        "sleep 0.5; /probe/notify READY=1; exec sleep 60",
    ) else {
        return;
    };
    let host = Host::new();
    let c = Container::new(b);
    let bg = Background::spawn(notify_cmd(&c, Some(&host), &["run", "-d"]));
    let msgs = host.collect(TIMEOUT, barrier);
    bg.wait(TIMEOUT).ok();
    assert_eq!(main_pid(&msgs), Some(c.pid()), "{msgs:?}");
    c.kill("KILL").ok();
}

#[test]
fn without_notify_socket_the_container_gets_none() {
    let out = tempfile::tempdir().unwrap();
    let Some(b) = bundle(
        out.path(),
        "grep -c ' /run/notify ' /proc/self/mountinfo > /out/mounts; \
         env | grep -c NOTIFY_SOCKET > /out/env; exit 0",
    ) else {
        return;
    };
    let c = Container::new(b);
    run_timeout(notify_cmd(&c, None, &["run"]), TIMEOUT).ok();
    for f in ["mounts", "env"] {
        assert_eq!(
            fs::read_to_string(out.path().join(f)).unwrap().trim(),
            "0",
            "{f}: the container got a notify socket without NOTIFY_SOCKET"
        );
    }
}

#[test]
fn a_container_with_its_own_user_namespace_gets_its_socket_too() {
    let out = tempfile::tempdir().unwrap();
    let Some(b) = bundle(out.path(), "/probe/notify READY=1; exec sleep 60") else {
        return;
    };
    let host = Host::new();
    let c = Container::new(b.in_userns());
    let bg = Background::spawn(notify_cmd(&c, Some(&host), &["run", "-d"]));
    let msgs = host.collect(TIMEOUT, barrier);
    bg.wait(TIMEOUT).ok();
    assert_eq!(main_pid(&msgs), Some(c.pid()), "{msgs:?}");
    c.kill("KILL").ok();
}
