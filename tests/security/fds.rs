//! Security regressions: see the module list in tests/security.rs.
//!
//! No process the container can see (the created init, every exec'd
//! process from its fork on, the built-in init and its children) holds an
//! fd, cwd or root that leads to the host; --preserve-fds and LISTEN_FDS
//! pass only what the caller opened; the session keyring's name is never
//! a host keyring's.
//!
//! "Leads to the host" is checked as an attacker would: from the process's
//! /proc/<pid>/{fd/N,cwd,root}, walking ".." must not reach a marker file
//! in a host temp dir, and no fd may be a file the host has at the path the
//! kernel names (same inode).

use crate::common::*;
use serde_json::json;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{caps_plus, exec, host_dir, running, with_caps, with_leaked_fds};

/// A file in a host temp dir no container has: (dir guard, path relative
/// to the host's /).
fn marker() -> (tempfile::TempDir, String) {
    let d = host_dir("fds-marker");
    let f = d.path().join("HOSTMARKER");
    fs::write(&f, "host").unwrap();
    let rel = f
        .strip_prefix("/")
        .expect("temp dirs are absolute")
        .to_string_lossy()
        .into_owned();
    (d, rel)
}

const UP: &str = "../../../../../../../../../../../../../../../../";

/// What of `pid` leads to the host (empty when nothing does).
fn host_reach(pid: i32, marker_rel: &str) -> Vec<String> {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let mut found = Vec::new();
    if let Ok(rd) = fs::read_dir(proc.join("fd")) {
        for e in rd.flatten() {
            let Some(n) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if n < 3 {
                continue; // the caller's stdio, passed on by design
            }
            let link = e.path();
            let target = fs::read_link(&link)
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            let Ok(meta) = fs::metadata(&link) else {
                continue;
            };
            if meta.is_dir() {
                if link.join(UP).join(marker_rel).exists() {
                    found.push(format!("pid {pid}: fd {n} -> {target} (a host directory)"));
                }
            } else if target.starts_with('/')
                && !target.starts_with("/memfd:")
                && fs::metadata(&target)
                    .is_ok_and(|m| (m.dev(), m.ino()) == (meta.dev(), meta.ino()))
            {
                found.push(format!("pid {pid}: fd {n} -> {target} (a host file)"));
            }
        }
    }
    if proc.join("cwd").join(UP).join(marker_rel).exists() {
        found.push(format!("pid {pid}: cwd leads to the host"));
    }
    if proc.join("root").join(marker_rel).exists() {
        found.push(format!("pid {pid}: root is the host's"));
    }
    found
}

fn pid_ns(pid: i32) -> Option<PathBuf> {
    fs::read_link(format!("/proc/{pid}/ns/pid")).ok()
}

/// Pids in the container's cgroups.
fn cgroup_pids(c: &Container) -> Vec<i32> {
    let mut v: Vec<i32> = cgroup_dirs(&c.bundle.cgroups_path)
        .iter()
        .filter_map(|d| fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|s| {
            s.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The container's processes (init included), and their children.
fn container_pids(c: &Container) -> Vec<i32> {
    let mut v = cgroup_pids(c);
    let mut i = 0;
    while i < v.len() {
        let kids = fs::read_dir(format!("/proc/{}/task", v[i]))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|t| fs::read_to_string(t.path().join("children")).ok())
            .flat_map(|s| {
                s.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect::<Vec<_>>();
        for k in kids {
            if !v.contains(&k) {
                v.push(k);
            }
        }
        i += 1;
    }
    v
}

#[track_caller]
fn assert_nothing_reaches_host(c: &Container, marker_rel: &str, when: &str) {
    let pids = container_pids(c);
    assert!(
        !pids.is_empty(),
        "{when}: no process found in the container"
    );
    let found: Vec<String> = pids
        .iter()
        .flat_map(|p| host_reach(*p, marker_rel))
        .collect();
    assert!(
        found.is_empty(),
        "{when}: a container process holds a way to the host:\n{}",
        found.join("\n")
    );
}

/// From inside: a process with CAP_SYS_PTRACE walks every fd, the cwd and
/// the root of every other process it sees.
fn inside_probe(marker_rel: &str) -> String {
    format!(
        r#"for p in /proc/[0-9]*; do
  [ "$p" = /proc/self ] && continue
  for f in $p/fd/* $p/cwd; do
    [ -e "$f/{UP}{marker_rel}" ] && echo "REACH $f -> $(readlink $f)"
  done
  [ -e "$p/root/{marker_rel}" ] && echo "REACH $p/root"
done
echo probe-done"#
    )
}

#[track_caller]
fn assert_probe_blocked(o: &Output) {
    o.ok();
    assert!(o.stdout.contains("probe-done"), "probe did not run:\n{o}");
    assert!(
        !o.stdout.contains("REACH"),
        "the container reached the host through a runtime process:\n{o}"
    );
}

/// The created init (before start), the started program, and the
/// built-in init with its child: host fds the caller leaked to `create`
/// (without --preserve-fds), the --log file, the cgroup directories, the
/// state dir: none of them is held, from the host's view and from inside
/// with CAP_SYS_PTRACE. With `shared_pid`, the container joins the pid
/// namespace of another one (a pod sharing its process namespace), whose
/// process probes it: the init is then forked by the intermediate.
fn created_init_case(builtin_init: bool, shared_pid: bool) {
    if builtin_init && is_runc() {
        return skip("the built-in init is rrun's");
    }
    let (_m, rel) = marker();
    let leaked = host_dir("fds-leak");
    let ptrace = || with_caps(Bundle::new(), &caps_plus(&["CAP_SYS_PTRACE"]));
    let peer = shared_pid.then(|| running(ptrace().args(&["sleep", "100"])));
    let mut b = ptrace().args(&["sleep", "100"]);
    if builtin_init {
        b = b.with(|c| c["annotations"] = json!({"rrun.init": "true"}));
    }
    if let Some(p) = &peer {
        b = b.namespace("pid", Some(&format!("/proc/{}/ns/pid", p.pid())));
    }
    let c = Container::new(b);
    c.bundle.write();
    let log = c.bundle.file("rrun.log");
    let (bundle, log_arg) = (c.bundle_arg(), log.to_string_lossy().into_owned());
    let create = c.cmd(&["--log", &log_arg, "create", "--bundle", &bundle, &c.id]);
    run_timeout(
        with_leaked_fds(create, leaked.path()),
        Duration::from_secs(30),
    )
    .ok();
    c.wait_status("created");
    let prober = peer.as_ref().unwrap_or(&c);
    assert_nothing_reaches_host(&c, &rel, "created");
    assert_probe_blocked(&exec(prober, &[], &["sh", "-c", &inside_probe(&rel)]));
    c.start().ok();
    if builtin_init {
        // rrun-init and the program it forked.
        poll(Duration::from_secs(10), || {
            (container_pids(&c).len() >= 2).then_some(())
        })
        .expect("the built-in init started the program");
    }
    assert_nothing_reaches_host(&c, &rel, "running");
    assert_probe_blocked(&exec(prober, &[], &["sh", "-c", &inside_probe(&rel)]));
    c.delete_force().ok();
    c.assert_clean();
    if let Some(p) = peer {
        p.delete_force().ok();
        p.assert_clean();
    }
}

#[test]
fn created_init_holds_no_host_fd_cwd_or_root() {
    require!(
        !is_runc(),
        "runc 1.1's created init holds an fd of its exec.fifo, a file in the host's state dir"
    );
    created_init_case(false, false);
}

#[test]
fn created_init_in_a_shared_pid_namespace_holds_no_host_fd() {
    require!(
        !is_runc(),
        "runc 1.1's created init holds an fd of its exec.fifo, a file in the host's state dir"
    );
    created_init_case(false, true);
}

#[test]
fn builtin_init_holds_no_host_fd_cwd_or_root() {
    created_init_case(true, false);
}

/// Every exec'd process, from its fork to its execve, as a racer on the
/// host sees it (it polls faster than anything in the container could):
/// no host fd (the cgroup2 directory of clone3, v1 `tasks` files, the
/// --log file, fds the caller leaked), cwd or root. The racer only looks
/// at processes in the container's pid namespace (the helper that joins
/// it is not).
#[test]
fn exec_processes_never_hold_host_fds() {
    let (_m, rel) = marker();
    let leaked = host_dir("fds-exec-leak");
    let c = running(Bundle::new().args(&["sleep", "100"]));
    let init = c.pid();
    let ns = pid_ns(init).expect("the init's pid namespace");
    let stop = Arc::new(AtomicBool::new(false));
    let found = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::new(Mutex::new(std::collections::BTreeSet::<i32>::new()));
    let dirs = cgroup_dirs(&c.bundle.cgroups_path);
    let racer = {
        let (stop, found, seen, rel) = (stop.clone(), found.clone(), seen.clone(), rel.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for d in &dirs {
                    let Ok(procs) = fs::read_to_string(d.join("cgroup.procs")) else {
                        continue;
                    };
                    for p in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                        if p == init || pid_ns(p).as_ref() != Some(&ns) {
                            continue;
                        }
                        seen.lock().unwrap().insert(p);
                        found.lock().unwrap().extend(host_reach(p, &rel));
                    }
                }
            }
        })
    };
    let log = c.bundle.file("exec.log").to_string_lossy().into_owned();
    for i in 0..40 {
        let mut args = vec!["--log", log.as_str(), "exec"];
        if i % 2 == 1 {
            args.extend(["--preserve-fds", "0"]);
        }
        args.extend([c.id.as_str(), "true"]);
        run_timeout(with_leaked_fds(c.cmd(&args), leaked.path()), TIMEOUT).ok();
        if !found.lock().unwrap().is_empty() {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    racer.join().unwrap();
    let found = found.lock().unwrap();
    assert!(
        found.is_empty(),
        "an exec'd process held a way to the host:\n{}",
        found.join("\n")
    );
    assert!(
        !seen.lock().unwrap().is_empty(),
        "the racer never saw an exec'd process: the test proves nothing"
    );
    c.delete_force().ok();
    c.assert_clean();
}

/// A shell that lists the fds it holds among 3..=`last` as `fd N TARGET`
/// lines (a builtin test: no new fd is opened for the check itself).
fn list_fds(last: u32) -> String {
    format!(
        r#"i=3; while [ $i -le {last} ]; do [ -e /proc/self/fd/$i ] && echo "fd $i $(readlink /proc/self/fd/$i)"; i=$((i+1)); done"#
    )
}

/// `fd N` numbers in the output of [`list_fds`].
fn listed(out: &str) -> Vec<u32> {
    out.lines()
        .filter_map(|l| {
            l.strip_prefix("fd ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// Wraps a runtime command in a shell that closes every fd above 2 it
/// inherited (the test harness may pass some), runs `pre`, and then
/// applies `redirs` (e.g. `4<FILE`): the runtime starts with exactly the
/// fds the test means to pass.
fn with_fds(cmd: Command, pre: &str, redirs: &str) -> Command {
    let closes =
        r#"for f in /proc/$$/fd/*; do n=${f##*/}; [ "$n" -gt 2 ] && eval "exec $n<&-"; done"#;
    let mut w = Command::new("bash");
    w.arg("-c")
        .arg(format!("{closes} 2>/dev/null; {pre} exec {redirs} \"$@\""))
        .arg("bash")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => w.env(k, v),
            None => w.env_remove(k),
        };
    }
    w
}

/// A host file with `content`, for passing as an fd.
fn host_file(dir: &Path, name: &str, content: &str) -> String {
    let p = dir.join(name);
    fs::write(&p, content).unwrap();
    p.to_string_lossy().into_owned()
}

/// exec --preserve-fds N passes the fds the caller opened among 3..3+N,
/// at their numbers, and nothing else: a gap (3 closed, 4 passed) stays
/// closed, and a large N with nothing passed yields no fd at all, where
/// rrun's own fds (cgroup dirs, tasks files, sockets) used to fill the
/// range.
#[test]
fn exec_preserve_fds_pass_only_what_the_caller_opened() {
    if is_runc() {
        return skip("runc refuses a --preserve-fds range with closed fds");
    }
    let dir = host_dir("fds-preserve");
    let passed = host_file(dir.path(), "passed", "passed-content");
    let c = running(Bundle::new().args(&["sleep", "100"]));
    let script = format!("{}; cat <&4", list_fds(40));
    let cmd = c.cmd(&["exec", "--preserve-fds", "20", &c.id, "sh", "-c", &script]);
    let o = run_timeout(with_fds(cmd, "", &format!("4<{passed}")), TIMEOUT);
    o.ok();
    assert_eq!(listed(&o.stdout), vec![4], "only fd 4 was passed:\n{o}");
    assert!(o.stdout.contains("passed-content"), "{o}");

    let script = list_fds(450);
    let cmd = c.cmd(&["exec", "--preserve-fds", "400", &c.id, "sh", "-c", &script]);
    let o = run_timeout(with_fds(cmd, "", ""), TIMEOUT);
    o.ok();
    assert_eq!(
        listed(&o.stdout),
        Vec::<u32>::new(),
        "nothing was passed:\n{o}"
    );
    c.delete_force().ok();
    c.assert_clean();
}

/// create --preserve-fds: the fds passed to create reach the program at
/// start (rrun's own in the gap do not).
#[test]
fn create_preserve_fds_reach_the_program_at_start() {
    if is_runc() {
        return skip("runc refuses a --preserve-fds range with closed fds");
    }
    let dir = host_dir("fds-create");
    let a = host_file(dir.path(), "a", "content-a");
    let b = host_file(dir.path(), "b", "content-b");
    let out = host_dir("fds-create-out");
    // exec, not a redirected group: ash would park the old stdout at fd 10.
    let script = format!("exec >/out/report 2>&1; {}; cat <&3; cat <&5", list_fds(40));
    let c = Container::new(
        Bundle::new()
            .bind_mount(out.path(), "/out", &["rbind", "rw"])
            .args(&["sh", "-c", &script]),
    );
    c.bundle.write();
    let bundle = c.bundle_arg();
    let cmd = c.cmd(&["create", "--preserve-fds", "12", "--bundle", &bundle, &c.id]);
    run_timeout(with_fds(cmd, "", &format!("3<{a} 5<{b}")), TIMEOUT).ok();
    c.wait_status("created");
    c.start().ok();
    let report = out.path().join("report");
    poll(Duration::from_secs(10), || {
        fs::read_to_string(&report)
            .ok()
            .filter(|r| r.contains("content-b"))
    })
    .unwrap_or_else(|| panic!("no report: {:?}", fs::read_to_string(&report)));
    let r = fs::read_to_string(&report).unwrap();
    assert_eq!(listed(&r), vec![3, 5], "fds 3 and 5 were passed:\n{r}");
    assert!(r.contains("content-a"), "{r}");
    c.delete_force().ok();
    c.assert_clean();
}

/// LISTEN_FDS is honoured only with LISTEN_PID naming the runtime (as
/// runc, through go-systemd, does); then the program gets LISTEN_FDS and
/// LISTEN_PID=1 and only the fds that were really passed.
#[test]
fn listen_fds_need_listen_pid_and_pass_only_open_fds() {
    let dir = host_dir("fds-listen");
    let a = host_file(dir.path(), "a", "content-a");
    let script = format!("{}; env | grep ^LISTEN_ | sort; echo end", list_fds(40));
    let c = Container::new(Bundle::new().args(&["sh", "-c", &script]));
    c.bundle.write();
    let bundle = c.bundle_arg();

    // No LISTEN_PID: ignored, even with fds open.
    let mut cmd = c.cmd(&["run", "--bundle", &bundle, &c.id]);
    cmd.env("LISTEN_FDS", "20").env_remove("LISTEN_PID");
    let o = run_timeout(with_fds(cmd, "", &format!("3<{a}")), TIMEOUT);
    o.ok();
    assert!(o.stdout.contains("end"), "{o}");
    assert_eq!(listed(&o.stdout), Vec::<u32>::new(), "{o}");
    assert!(!o.stdout.contains("LISTEN_"), "{o}");
    c.delete_force();

    // Another process's LISTEN_PID: ignored.
    let mut cmd = c.cmd(&["run", "--bundle", &bundle, &c.id]);
    cmd.env("LISTEN_FDS", "1").env("LISTEN_PID", "1");
    let o = run_timeout(with_fds(cmd, "", &format!("3<{a}")), TIMEOUT);
    o.ok();
    assert_eq!(listed(&o.stdout), Vec::<u32>::new(), "{o}");
    assert!(!o.stdout.contains("LISTEN_"), "{o}");
    c.delete_force();

    if is_runc() {
        c.assert_clean();
        return skip("runc refuses LISTEN_FDS naming closed fds");
    }
    // Our own pid (the shell execs the runtime): fd 3 passed, 4 not.
    let mut cmd = c.cmd(&["run", "--bundle", &bundle, &c.id]);
    cmd.env_remove("LISTEN_PID").env("LISTEN_FDS", "2");
    let o = run_timeout(
        with_fds(cmd, "export LISTEN_PID=$$;", &format!("3<{a}")),
        TIMEOUT,
    );
    o.ok();
    assert_eq!(listed(&o.stdout), vec![3], "{o}");
    assert!(
        o.stdout.contains("LISTEN_FDS=2\nLISTEN_PID=1\n"),
        "the program is told about the fds:\n{o}"
    );
    c.delete_force();
    c.assert_clean();
}

// ---------------------------------------------------------------------------
// Session keyring
// ---------------------------------------------------------------------------

const KEYCTL_GET_KEYRING_ID: libc::c_long = 0;
const KEYCTL_DESCRIBE: libc::c_long = 6;
const KEYCTL_INVALIDATE: libc::c_long = 21;
const KEY_SPEC_USER_KEYRING: libc::c_long = -4;
const KEY_SPEC_USER_SESSION_KEYRING: libc::c_long = -5;

/// The static key probe, built into a host directory to bind at /mnt.
fn key_probe() -> tempfile::TempDir {
    let probe_dir = host_dir("fds-keyprobe");
    let src = probe_dir.path().join("k.c");
    fs::write(&src, KEY_PROBE).unwrap();
    let bin = probe_dir.path().join("keyprobe");
    let mut cc = Command::new("gcc");
    cc.args(["-static", "-O2", "-o"]).arg(&bin).arg(&src);
    run_timeout(cc, Duration::from_secs(120)).ok();
    probe_dir
}

/// Runs the probe as container `id`, planting `key`; the container (for
/// cleanup checks) and its session keyring's description.
#[track_caller]
fn run_key_probe(probe_dir: &tempfile::TempDir, id: &str, key: &str) -> (Container, String) {
    let b = Bundle::new()
        .bind_mount(probe_dir.path(), "/mnt", &["rbind", "ro"])
        .args(&["/mnt/keyprobe", key]);
    let c = Container::with_id(b, id);
    let o = c.run();
    o.ok();
    let session = o
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("session="))
        .unwrap_or_else(|| panic!("no session keyring described:\n{o}"))
        .to_string();
    (c, session)
}

/// A static probe for the container: prints its session keyring's
/// description and plants key `argv[1]` in it.
const KEY_PROBE: &str = r#"
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
    char d[256] = {0};
    long n = syscall(SYS_keyctl, 6, -3, d, sizeof d - 1, 0);
    printf("session=%s\n", n > 0 ? d : "?");
    long s = syscall(SYS_keyctl, 0, -3, 0, 0, 0);
    long k = syscall(SYS_add_key, "user", argv[1], "x", 1, s);
    printf("planted=%ld\n", k);
    return 0;
}
"#;

/// Host keys (ids) whose description is `desc`, from /proc/keys.
fn host_keys_named(desc: &str) -> Vec<i64> {
    fs::read_to_string("/proc/keys")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&format!(" {desc}: ")))
        .filter_map(|l| i64::from_str_radix(l.split_whitespace().next()?, 16).ok())
        .collect()
}

/// Invalidates every host key named `desc` on drop (a vulnerable runtime
/// planted it in a host keyring).
struct KeyCleanup(String);

impl Drop for KeyCleanup {
    fn drop(&mut self) {
        for k in host_keys_named(&self.0) {
            // SAFETY: keyctl with integer arguments only.
            unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_INVALIDATE, k, 0, 0, 0) };
        }
    }
}

/// Description of one of this process's special keyrings (`type;uid;gid;
/// perm;name`), created if missing.
fn own_keyring(spec: libc::c_long) -> (i64, String) {
    // SAFETY: keyctl with integer arguments; the buffer outlives the call.
    let id = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_GET_KEYRING_ID, spec, 1, 0, 0) };
    assert!(
        id > 0,
        "keyctl(GET_KEYRING_ID {spec}): {}",
        std::io::Error::last_os_error()
    );
    let mut buf = vec![0u8; 256];
    // SAFETY: as above; the kernel writes at most buf.len() bytes.
    let n = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_DESCRIBE,
            id,
            buf.as_mut_ptr(),
            buf.len(),
            0,
        )
    };
    assert!(
        n > 0,
        "keyctl(DESCRIBE): {}",
        std::io::Error::last_os_error()
    );
    let s = String::from_utf8_lossy(&buf[..(n as usize).min(buf.len())])
        .trim_end_matches('\0')
        .to_string();
    (id, s)
}

/// The init and exec'd processes join a session keyring named
/// `_ses.<id>`, whatever the id: an id spelled like a host keyring
/// (root's user keyring `_uid.0`, its user-session keyring `_uid_ses.0`)
/// never makes the container join that keyring, and nothing it plants
/// lands on the host.
#[test]
fn session_keyring_is_never_a_host_keyring() {
    if !have_cmd("gcc") {
        return skip("gcc is needed to build the static keyring probe");
    }
    let probe_dir = key_probe();
    // The host keyrings the ids below name exist (the kernel creates
    // them on first use).
    let (_, uid_desc) = own_keyring(KEY_SPEC_USER_KEYRING);
    let (_, uid_ses_desc) = own_keyring(KEY_SPEC_USER_SESSION_KEYRING);
    let uid = uid_desc.rsplit(';').next().unwrap().to_string();
    let uid_ses = uid_ses_desc.rsplit(';').next().unwrap().to_string();
    for id in [uid_ses.as_str(), uid.as_str()] {
        let key = unique_name();
        let _cleanup = KeyCleanup(key.clone());
        let (c, session) = run_key_probe(&probe_dir, id, &key);
        assert!(
            session.contains(&format!(";_ses.{id}")),
            "container {id}: the init joined session keyring {session:?}"
        );
        c.delete_force();
        // The container's own keyring goes with it; a planted key still
        // on the host sits in a host keyring.
        let left = poll(Duration::from_secs(5), || {
            host_keys_named(&key).is_empty().then_some(())
        });
        assert!(
            left.is_some(),
            "container {id}: its key {key} is in a host keyring"
        );
        c.assert_clean();

        // exec joins the same name.
        let b = Bundle::new()
            .bind_mount(probe_dir.path(), "/mnt", &["rbind", "ro"])
            .args(&["sleep", "100"]);
        let c = running_with_id(b, id);
        let key = unique_name();
        let _cleanup = KeyCleanup(key.clone());
        let o = exec(&c, &[], &["/mnt/keyprobe", &key]);
        o.ok();
        assert!(
            o.stdout.contains(&format!(";_ses.{id}")),
            "exec in {id}: {o}"
        );
        c.delete_force().ok();
        assert!(
            poll(Duration::from_secs(5), || host_keys_named(&key)
                .is_empty()
                .then_some(()))
            .is_some(),
            "exec in {id}: its key {key} is in a host keyring"
        );
        c.assert_clean();
    }
}

#[track_caller]
fn running_with_id(b: Bundle, id: &str) -> Container {
    let c = Container::with_id(b, id);
    c.create().ok();
    c.start().ok();
    c.wait_status("running");
    c
}

/// The fds (>= 3) of `pid`, as `N -> target`.
fn fds_of(pid: i32) -> Vec<(u32, String)> {
    let mut v: Vec<(u32, String)> = fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n: u32 = e.file_name().to_str()?.parse().ok()?;
            let t = fs::read_link(e.path()).ok()?;
            (n >= 3).then(|| (n, t.to_string_lossy().into_owned()))
        })
        .collect();
    v.sort();
    v
}

/// At `created`, the init holds nothing of rrun's but the exec socket it
/// waits on for `start`: not the channel to the long-gone `create`, not
/// the engine's console socket (the pty master went through it), which a
/// process exec'd into the container could take with pidfd_getfd.
#[test]
fn created_init_holds_only_its_start_socket() {
    if is_runc() {
        return skip("runc's init holds its own fifo and log pipe");
    }
    for terminal in [false, true] {
        let b = Bundle::new()
            .args(&["sleep", "100"])
            .with(|c| c["process"]["terminal"] = json!(terminal));
        let c = Container::new(b);
        let mut console = terminal.then(ConsoleSocket::new);
        let arg = console.as_ref().map(|s| s.arg());
        match &arg {
            Some(a) => c.create_with(&["--console-socket", a]).ok(),
            None => c.create().ok(),
        };
        if let Some(s) = console.as_mut() {
            s.receive();
        }
        let fds = fds_of(c.pid());
        assert!(
            fds.len() == 1 && fds[0].1.starts_with("socket:"),
            "terminal={terminal}: the created init holds {fds:?}"
        );
        c.delete_force().ok();
        c.assert_clean();
    }
}

/// A keyring another container planted ahead of time, named like runc's
/// session keyring for an id (`_ses.<id>`) and linked into root's user
/// keyring (any container running as host root can do that), is never
/// joined by a later container with that id: rrun's name has a random
/// part chosen at create. (runc 1.1 joins it.)
#[test]
fn planted_session_keyring_is_never_joined() {
    require!(is_root(), "needs root");
    require!(!is_runc(), "runc 1.1 joins a planted _ses.<id> keyring");
    if !have_cmd("gcc") {
        return skip("gcc is needed to build the static keyring probe");
    }
    const KEYCTL_LINK: libc::c_long = 8;
    let probe_dir = key_probe();
    let id = unique_name();
    let planted = format!("_ses.{id}");
    let (user_ring, _) = own_keyring(KEY_SPEC_USER_KEYRING);
    let name = std::ffi::CString::new(planted.clone()).unwrap();
    // SAFETY: add_key with a valid C string type and description, no
    // payload, into our session keyring (then linked into the user one).
    let k = unsafe {
        libc::syscall(
            libc::SYS_add_key,
            c"keyring".as_ptr(),
            name.as_ptr(),
            std::ptr::null::<u8>(),
            0usize,
            -3 as libc::c_long, // KEY_SPEC_SESSION_KEYRING
        )
    };
    assert!(k > 0, "add_key: {}", std::io::Error::last_os_error());
    let _cleanup = KeyCleanup(planted.clone());
    // SAFETY: keyctl with integer arguments.
    let linked = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_LINK, k, user_ring, 0, 0) };
    assert_eq!(
        linked,
        0,
        "keyctl(LINK): {}",
        std::io::Error::last_os_error()
    );
    let key = unique_name();
    let _key_cleanup = KeyCleanup(key.clone());
    let (c, session) = run_key_probe(&probe_dir, &id, &key);
    assert!(
        !session.ends_with(&format!(";{planted}")),
        "the container joined the planted keyring {session:?}"
    );
    c.assert_clean();
}
