//! Security regressions: see the module list in tests/security.rs.
//!
//! The sync channel (src/process/sync.rs) between rrun and the processes
//! it forks: until its exec, an exec'd process (and an init forked into a
//! joined pid namespace) is visible in the container with its end of the
//! channel, which a container process with CAP_SYS_PTRACE can take with
//! pidfd_getfd. Whatever such a thief writes on it must never make rrun
//! act: not signal the pid a forged ChildPid names (a host process here),
//! not write its oom_score_adj, not fail on a forged Error, and not wait
//! on the thief for as long as it keeps the stolen end open.
//!
//! The thief is a small static C program (gcc -static) bind-mounted at
//! /probe: `thief VICTIM SECONDS OUT` scans /proc for its whole run,
//! takes every SOCK_SEQPACKET socket any other process holds, sends a
//! forged ChildPid naming VICTIM, a forged SeccompFd carrying an fd and a
//! forged Error on it, keeps it open, and counts the thefts in OUT.

use super::{caps_plus, exec, running, with_caps};
use crate::common::*;
use serde_json::json;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::time::Duration;

const THIEF_C: &str = r#"
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
static unsigned char done[(1 << 22) / 8];
static void send_with_fd(int s, const char *msg, int fd) {
    char space[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { (void *)msg, strlen(msg) };
    struct msghdr m = { 0 };
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = space;
    m.msg_controllen = sizeof space;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    sendmsg(s, &m, MSG_NOSIGNAL);
}
int main(int argc, char **argv) {
    if (argc != 4) return 2;
    char forged[64];
    snprintf(forged, sizeof forged, "{\"ChildPid\":%d}", atoi(argv[1]));
    const char *error = "{\"Error\":\"forged by a thief\"}";
    time_t end = time(0) + atoi(argv[2]);
    int self = getpid();
    long stolen = 0;
    while (time(0) < end) {
        DIR *d = opendir("/proc");
        if (!d) return 3;
        struct dirent *e;
        while ((e = readdir(d))) {
            int pid = atoi(e->d_name);
            if (pid <= 0 || pid == self || pid >= (1 << 22)) continue;
            if (done[pid / 8] & (1 << (pid % 8))) continue;
            int pfd = syscall(SYS_pidfd_open, pid, 0);
            if (pfd < 0) continue;
            for (int fd = 0; fd < 64; fd++) {
                int s = syscall(SYS_pidfd_getfd, pfd, fd, 0);
                if (s < 0) continue;
                int type = 0;
                socklen_t len = sizeof type;
                if (getsockopt(s, SOL_SOCKET, SO_TYPE, &type, &len) || type != SOCK_SEQPACKET) {
                    close(s);
                    continue;
                }
                send(s, forged, strlen(forged), MSG_NOSIGNAL);
                send_with_fd(s, "\"SeccompFd\"", s);
                send(s, error, strlen(error), MSG_NOSIGNAL);
                done[pid / 8] |= 1 << (pid % 8);
                stolen++;
                int out = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
                if (out >= 0) {
                    dprintf(out, "%ld\n", stolen);
                    close(out);
                }
                /* Kept open: rrun must not wait for the thief. */
                if (stolen > 900) close(s);
            }
            close(pfd);
        }
        closedir(d);
    }
    return 0;
}
"#;

/// The directory holding the static thief, built once per test run; None
/// (with a skip notice) without gcc.
fn thief_dir() -> Option<PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    let dir = DIR
        .get_or_init(|| {
            if !have_cmd("gcc") {
                return None;
            }
            let dir = target_dir().join("channel-thief");
            fs::create_dir_all(&dir).unwrap();
            set_mode(&dir, 0o755);
            // Built under a name of this process's, then renamed: another
            // test binary may be running the old one.
            let tmp = dir.join(format!("thief.{}", std::process::id()));
            let c_file = tmp.with_extension("c");
            fs::write(&c_file, THIEF_C).unwrap();
            let mut c = Command::new("gcc");
            c.args(["-static", "-O2", "-o"]).arg(&tmp).arg(&c_file);
            run_timeout(c, TIMEOUT).ok();
            let _ = fs::remove_file(&c_file);
            fs::rename(&tmp, dir.join("thief")).unwrap();
            Some(dir)
        })
        .clone();
    if dir.is_none() {
        skip("gcc missing (apt-get install build-essential): no static thief");
    }
    dir
}

/// A host process outside every container, in its own process group: what
/// a forged ChildPid names. Killed on drop.
struct Victim {
    child: Child,
    start: u64,
}

impl Victim {
    fn new() -> Victim {
        let child = Command::new("sleep")
            .arg("600")
            .process_group(0)
            .spawn()
            .expect("spawn the victim");
        let start = proc_starttime(child.id() as i32).expect("victim's start time");
        Victim { child, start }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    #[track_caller]
    fn assert_untouched(&mut self, when: &str) {
        assert!(
            self.child.try_wait().unwrap().is_none()
                && proc_starttime(self.pid()) == Some(self.start),
            "{when}: the host victim {} was killed",
            self.pid()
        );
        let adj = fs::read_to_string(format!("/proc/{}/oom_score_adj", self.pid())).unwrap();
        assert_eq!(adj.trim(), "0", "{when}: the victim's oom_score_adj");
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bundle with CAP_SYS_PTRACE running the thief against `victim`, its
/// count of thefts in the returned directory's `stolen`.
fn thief_bundle(dir: &std::path::Path, victim: i32) -> (Bundle, tempfile::TempDir) {
    let out = tempfile::tempdir().unwrap();
    let b = with_caps(Bundle::new(), &caps_plus(&["CAP_SYS_PTRACE"]))
        .bind_mount(dir, "/probe", &["rbind", "ro"])
        .bind_mount(out.path(), "/out", &["rbind", "rw"])
        .args(&["/probe/thief", &victim.to_string(), "120", "/out/stolen"]);
    (b, out)
}

/// Asserts the thief took at least one channel (else the test proved
/// nothing). runc's sync sockets are not SOCK_SEQPACKET: it has none to take.
#[track_caller]
fn assert_thief_reached_a_channel(out: &tempfile::TempDir) {
    if is_runc() {
        return skip("part skipped: runc has no SOCK_SEQPACKET channel to steal");
    }
    let reached = poll(Duration::from_secs(5), || (stolen(out) > 0).then_some(()));
    assert!(
        reached.is_some(),
        "the thief never reached a channel: the test proves nothing"
    );
}

fn stolen(out: &tempfile::TempDir) -> u64 {
    fs::read_to_string(out.path().join("stolen"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// An rrun command under attack either worked or failed with one clear
/// line, and never because of what the thief wrote.
#[track_caller]
fn worked_or_failed_clearly(o: &Output, what: &str) {
    if !o.success() {
        o.stderr_is_short_error();
        assert!(!o.stderr.contains("forged"), "{what}: a forged Error: {o}");
    }
}

#[test]
fn a_thief_of_an_exec_channel_cannot_make_rrun_signal_a_host_process() {
    let Some(dir) = thief_dir() else { return };
    let mut victim = Victim::new();
    let (b, out) = thief_bundle(&dir, victim.pid());
    let c = running(b);
    let mut ok = 0;
    for i in 0..25 {
        let o = exec(&c, &[], &["true"]);
        worked_or_failed_clearly(&o, &format!("exec {i}"));
        ok += o.success() as u32;
        victim.assert_untouched(&format!("after exec {i}"));
    }
    // Detached, with the process still running while the thief holds its
    // end: rrun returns once the process has exec'd or exited.
    let o = exec(&c, &["--detach"], &["sleep", "1"]);
    worked_or_failed_clearly(&o, "exec --detach");
    victim.assert_untouched("after exec --detach");
    assert_thief_reached_a_channel(&out);
    // Each forgery is refused, none is an error: every exec works.
    assert_eq!(ok, 25, "execs that worked under attack");
    c.delete_force().ok();
    c.assert_clean();
    victim.assert_untouched("after delete");
}

#[test]
fn a_thief_in_a_joined_pid_namespace_cannot_make_create_signal_a_host_process() {
    let Some(dir) = thief_dir() else { return };
    let mut victim = Victim::new();
    let (b, out) = thief_bundle(&dir, victim.pid());
    let peer = running(b);
    let pid_ns = format!("/proc/{}/ns/pid", peer.pid());
    for i in 0..6 {
        let c = Container::new(
            Bundle::new()
                .namespace("pid", Some(&pid_ns))
                .with(|c| c["process"]["oomScoreAdj"] = json!(500))
                .args(&["sleep", "100"]),
        );
        let o = c.create();
        worked_or_failed_clearly(&o, &format!("create {i}"));
        victim.assert_untouched(&format!("after create {i}"));
        if o.success() {
            let adj = fs::read_to_string(format!("/proc/{}/oom_score_adj", c.pid())).unwrap();
            assert_eq!(adj.trim(), "500", "create {i}: the init's oom_score_adj");
        }
        c.delete_force().ok();
        c.assert_clean();
        victim.assert_untouched(&format!("after delete {i}"));
    }
    assert_thief_reached_a_channel(&out);
    peer.delete_force().ok();
    peer.assert_clean();
}

/// With a notify rule, the exec'd process hands its seccomp listener to
/// rrun on the same channel (SeccompFd): a forged one, carrying the stolen
/// socket itself, must never reach the agent in its place, and the real
/// one must, for every exec.
#[test]
fn a_thief_cannot_hand_the_seccomp_agent_a_forged_listener() {
    let Some(dir) = thief_dir() else { return };
    if is_runc() {
        return skip("runc 1.1 refuses SCMP_ACT_NOTIFY for its own steps");
    }
    let mut victim = Victim::new();
    let agent = super::Agent::start();
    let (b, out) = thief_bundle(&dir, victim.pid());
    let b = b.with(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": agent.path_str(),
            "syscalls": [ { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY" } ]
        })
    });
    let c = running(b);
    const N: usize = 10;
    for i in 0..N {
        // The agent makes every mkdir "succeed" without a directory; a
        // process whose listener went astray gets ENOSYS instead.
        let script = format!("mkdir /dev/shm/by-agent-{i} && echo made-{i}");
        let o = exec(&c, &[], &["sh", "-c", &script]);
        o.ok();
        assert!(o.stdout.contains(&format!("made-{i}")), "exec {i}: {o}");
        victim.assert_untouched(&format!("after exec {i}"));
    }
    // The init's state, then one per exec; states() also asserts that no
    // fd the agent got failed as a listener.
    agent.states(N + 1);
    assert_thief_reached_a_channel(&out);
    c.delete_force().ok();
    c.assert_clean();
}
