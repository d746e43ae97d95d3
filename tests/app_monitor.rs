//! rrun-monitor (the per-app host-side monitor of `rrun app`), driven
//! directly through its protocol with a fake helper: a shell script that
//! plays `rrun app _spawn` (starts a "container init" in the background,
//! names it in init.pid, says "ok" on fd 3 and exits 0; exits 3 when told
//! the run is over). No container is involved: what is tested is the
//! monitor's own work — logs, rotation, pipes kept across runs, exits
//! recorded as a subreaper, signals ignored, fds not leaked.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

const MONITOR: &str = env!("RRUN_MONITOR_BIN");
const TIMEOUT: Duration = Duration::from_secs(30);

/// The helper: run number G (1, 2, ...) records its argv and fd 3 (and
/// logs its fds when $PROG mentions LSFD),
/// then exits 3 after $RUNS runs, else starts $PROG in the background as
/// the "init" and reports it.
const HELPER: &str = r#"
G=$(( $(cat "$D/gen" 2>/dev/null || echo 0) + 1 ))
echo $G > "$D/gen"
echo "$G $*" >> "$D/helper.args"
# (to the log: a redirection would show in the shell's own fds)
case "$PROG" in *LSFD*) echo "fds $G"; ls /proc/$$/fd;; esac
readlink /proc/$$/fd/3 > "$D/helper.fd3.$G"
[ "$G" -gt "$RUNS" ] && exit 3
G=$G sh -c "$PROG" &
echo $! > "$D/init.pid"
echo ok >&3
exit 0
"#;

/// A monitor run in a temp dir, killed (with its "init") if the test
/// fails before it ends.
struct Mon {
    dir: tempfile::TempDir,
    child: Child,
}

impl Mon {
    fn start(prog: &str, runs: u32, max_size: u64, max_files: u32) -> Mon {
        Mon::exec(Mon::config(prog, runs, max_size, max_files))
    }

    /// A temp dir with monitor.json for the fake helper running `prog`.
    fn config(prog: &str, runs: u32, max_size: u64, max_files: u32) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        fs::create_dir(d.join("logs")).unwrap();
        let cfg = json!({
            "helper": ["/bin/sh", "-c", HELPER, "helper"],
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", format!("D={}", d.display()),
                    format!("RUNS={runs}"), format!("PROG={prog}")],
            "log": d.join("logs/ctr.log"),
            "maxSize": max_size,
            "maxFiles": max_files,
            "initPid": d.join("init.pid"),
            "exitFile": d.join("exit"),
        });
        fs::write(d.join("monitor.json"), cfg.to_string()).unwrap();
        dir
    }

    /// The monitor with fd 3 on d/sync (a file: the test reads what the
    /// helper said there).
    fn exec(dir: tempfile::TempDir) -> Mon {
        let err = fs::File::create(dir.path().join("monitor.err")).unwrap();
        Mon::exec_with(dir, Stdio::null(), err.into())
    }

    fn exec_with(dir: tempfile::TempDir, out: Stdio, err: Stdio) -> Mon {
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(r#"exec "$0" "$1" 3>"$1/sync""#)
            .arg(MONITOR)
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawning the monitor");
        Mon { dir, child }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    /// Waits for the monitor's end; its exit code.
    #[track_caller]
    fn wait(&mut self) -> i32 {
        let st = common::wait_child(&mut self.child, TIMEOUT, "rrun-monitor");
        let err = self.read("monitor.err");
        st.code()
            .unwrap_or_else(|| panic!("monitor killed: {st:?}\n{err}"))
    }

    /// The log's lines, oldest file first, each as (stream, tag, text).
    fn log_lines(&self) -> Vec<(String, String, String)> {
        log_files(&self.path("logs"))
            .iter()
            .flat_map(|p| {
                // (not there yet before the monitor has started)
                fs::read_to_string(p)
                    .unwrap_or_default()
                    .lines()
                    .map(|l| {
                        let mut it = l.splitn(4, ' ');
                        let ts = it.next().unwrap();
                        assert!(
                            ts.len() == 30 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
                            "timestamp {ts:?} in {l:?}"
                        );
                        let s = it.next().unwrap().to_string();
                        let t = it.next().unwrap().to_string();
                        (s, t, it.next().unwrap_or_default().to_string())
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Whole lines of one stream, P pieces joined.
    fn joined(&self, stream: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = String::new();
        for (s, tag, text) in self.log_lines() {
            if s != stream {
                continue;
            }
            cur.push_str(&text);
            if tag == "F" {
                out.push(std::mem::take(&mut cur));
            } else {
                assert_eq!(tag, "P");
            }
        }
        assert!(cur.is_empty(), "an unfinished line at the end: {cur:?}");
        out
    }
}

impl Drop for Mon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Ok(pid) = self.read("init.pid").trim().parse::<i32>() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// ctr.log.N .. ctr.log.1, ctr.log.
fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u32, PathBuf)> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let n = e
                .file_name()
                .to_str()?
                .strip_prefix("ctr.log.")?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut v: Vec<PathBuf> = rotated.into_iter().map(|x| x.1).collect();
    v.push(dir.join("ctr.log"));
    v
}

fn skip_unless_root() -> bool {
    if !common::is_root() {
        common::skip("needs root (PR_SET_CHILD_SUBREAPER test of real processes)");
        return true;
    }
    false
}

#[test]
fn runs_the_helper_again_after_each_end_with_the_same_pipes_and_records_exits() {
    if skip_unless_root() {
        return;
    }
    // Run 1 exits 7, run 2 is killed by SIGKILL, run 3 exits 0; each says
    // which pipe its stdout and stderr are.
    let prog = r#"echo "run $G out $(readlink /proc/$$/fd/1)"
        echo "run $G err $(readlink /proc/$$/fd/2)" >&2
        [ $G = 1 ] && exit 7
        [ $G = 2 ] && kill -9 $$
        exit 0"#;
    let mut m = Mon::start(prog, 3, 0, 5);
    assert_eq!(m.wait(), 0, "{}", m.read("monitor.err"));
    assert_eq!(
        m.read("helper.args"),
        "1 \n2 --after-exit exit:7\n3 --after-exit signal:9\n4 --after-exit exit:0\n"
    );
    let exit = m.read("exit");
    assert!(
        exit.starts_with("exit:0 20") && exit.ends_with("Z\n"),
        "{exit:?}"
    );
    // Only the first run had the sync pipe; "ok" was said once.
    assert_eq!(m.read("sync"), "ok\n");
    assert_eq!(
        m.read("helper.fd3.1").trim(),
        m.path("sync").to_str().unwrap()
    );
    for g in 2..=4 {
        assert_eq!(m.read(&format!("helper.fd3.{g}")).trim(), "/dev/null");
    }
    // The same two pipes in every run.
    let out = m.joined("stdout");
    let err = m.joined("stderr");
    assert_eq!(out.len(), 3, "{out:?}");
    assert_eq!(err.len(), 3, "{err:?}");
    let pipe = |l: &str| l.rsplit(' ').next().unwrap().to_string();
    for (i, l) in out.iter().enumerate() {
        assert!(l.starts_with(&format!("run {} out pipe:[", i + 1)), "{l}");
        assert_eq!(pipe(l), pipe(&out[0]));
    }
    for l in &err {
        assert_eq!(pipe(l), pipe(&err[0]));
    }
    assert_ne!(pipe(&out[0]), pipe(&err[0]));
}

#[test]
fn only_fds_0_to_5_reach_the_helper_and_the_monitor_keeps_no_sync_pipe() {
    if skip_unless_root() {
        return;
    }
    let prog = r#"while [ ! -e "$D/go" ]; do sleep 0.05; done # LSFD"#;
    let mut m = Mon::start(prog, 1, 0, 5);
    let init: i32 = common::poll(TIMEOUT, || m.read("init.pid").trim().parse().ok())
        .expect("the helper wrote init.pid");
    let mon = m.child.id() as i32;
    // The init, once its helper is gone, is the monitor's child (subreaper).
    let ppid = || {
        let s = fs::read_to_string(format!("/proc/{init}/stat")).ok()?;
        s[s.rfind(')')? + 1..]
            .split_whitespace()
            .nth(1)?
            .parse::<i32>()
            .ok()
    };
    common::poll(TIMEOUT, || (ppid() == Some(mon)).then_some(())).unwrap_or_else(|| {
        panic!(
            "init {init} not reparented to the monitor {mon}: {:?}",
            ppid()
        )
    });
    // SIGTERM, SIGINT and SIGHUP do not end it.
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(mon),
            nix::sys::signal::Signal::try_from(sig).unwrap(),
        )
        .unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        m.child.try_wait().unwrap().is_none(),
        "the monitor ended on a signal"
    );
    // Its own fds: nothing that points at the sync file any more.
    let sync = m.path("sync");
    for e in fs::read_dir(format!("/proc/{mon}/fd")).unwrap().flatten() {
        let target = fs::read_link(e.path()).unwrap_or_default();
        assert_ne!(
            target,
            sync,
            "the monitor still holds the sync pipe (fd {:?})",
            e.file_name()
        );
    }
    fs::write(m.path("go"), "").unwrap();
    assert_eq!(m.wait(), 0);
    assert_eq!(
        m.joined("stdout"),
        [
            "fds 1", "0", "1", "2", "3", "4", "5", "fds 2", "0", "1", "2", "3", "4", "5"
        ],
        "the helper's fds in runs 1 and 2 (stdio, sync, the status socketpair)"
    );
    assert!(m.read("exit").starts_with("exit:0 "));
}

#[test]
fn rotation_keeps_every_line_once_in_order() {
    if skip_unless_root() {
        return;
    }
    // Both streams at once, in stdio-sized chunks: lines are cut at read
    // boundaries (P pieces) and files rotate under a full pipe.
    let n = 30000;
    let prog = format!("seq 1 {n} & seq 1 {n} >&2; wait");
    let max_size = 50_000;
    let mut m = Mon::start(&prog, 1, max_size, 1000);
    assert_eq!(m.wait(), 0);
    let want: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
    assert!(
        m.joined("stdout") == want,
        "stdout lines lost, duplicated or reordered"
    );
    assert!(
        m.joined("stderr") == want,
        "stderr lines lost, duplicated or reordered"
    );
    let files = log_files(&m.path("logs"));
    assert!(files.len() > 10, "only {} files", files.len());
    for f in &files {
        let len = fs::metadata(f).unwrap().len();
        assert!(len <= max_size, "{} is {len} bytes", f.display());
    }
}

#[test]
fn rotation_drops_the_oldest_files_beyond_the_count() {
    if skip_unless_root() {
        return;
    }
    let mut m = Mon::start("seq 1 20000", 1, 20_000, 3);
    assert_eq!(m.wait(), 0);
    let names: Vec<String> = {
        let mut v: Vec<String> = fs::read_dir(m.path("logs"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names, ["ctr.log", "ctr.log.1", "ctr.log.2"]);
    // What is kept is the end of the output, with no gap.
    let kept: Vec<u32> = m
        .joined("stdout")
        .iter()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(*kept.last().unwrap(), 20000);
    assert!(
        kept.windows(2).all(|w| w[1] == w[0] + 1),
        "a gap in the kept lines"
    );
}

#[test]
fn long_lines_are_logged_in_pieces_and_joined_back() {
    if skip_unless_root() {
        return;
    }
    let prog = "head -c 40000 /dev/zero | tr '\\0' x; echo; printf 'no newline'";
    let mut m = Mon::start(prog, 1, 0, 5);
    assert_eq!(m.wait(), 0);
    let lines = m.log_lines();
    assert!(
        lines.iter().all(|(_, _, t)| t.len() <= 16 << 10),
        "a piece over 16 KiB"
    );
    assert!(
        lines.iter().filter(|l| l.1 == "P").count() >= 3,
        "{:?}",
        lines.len()
    );
    // The last piece has no newline: a P line at the very end.
    assert_eq!(
        lines.last().unwrap(),
        &("stdout".into(), "P".into(), "no newline".into())
    );
    let all: String = lines.iter().map(|l| l.2.as_str()).collect();
    assert_eq!(all, format!("{}no newline", "x".repeat(40000)));
}

#[test]
fn output_with_nobody_reading_never_kills_the_app() {
    if skip_unless_root() {
        return;
    }
    // The monitor's own stdio is a pipe nobody reads any more (its starter
    // went away); the app writes 4 MB on both streams and ends normally.
    let prog = "head -c 2000000 /dev/zero | od -v; head -c 2000000 /dev/zero | od -v >&2";
    let dir = Mon::config(prog, 1, 1_000_000, 2);
    let mut m = Mon::exec_with(dir, Stdio::piped(), Stdio::piped());
    drop(m.child.stdout.take());
    drop(m.child.stderr.take());
    assert_eq!(m.wait(), 0);
    let exit = m.read("exit");
    assert!(exit.starts_with("exit:0 "), "the app ended with {exit:?}");
}

#[test]
fn a_bad_config_is_one_line_on_the_sync_pipe() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("monitor.json"), r#"{"helper": ["sh"]}"#).unwrap();
    let mut m = Mon::exec(dir);
    assert_eq!(m.wait(), 1);
    let sync = m.read("sync");
    assert!(
        sync.starts_with("error: monitor: ") && sync.lines().count() == 1,
        "{sync:?}"
    );
    assert!(sync.contains("monitor.json"), "{sync:?}");
}

#[test]
fn an_init_the_monitor_cannot_wait_for_is_recorded_as_exit_255() {
    if skip_unless_root() {
        return;
    }
    // The "init" is double-forked away: not the monitor's child.
    let prog = "(sleep 30 &) ; exit 0";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir(d.join("logs")).unwrap();
    let helper = r#"if [ -n "$1" ]; then echo "$*" > "$D/after"; exit 3; fi
        echo 1 > "$D/init.pid"; echo ok >&3; exit 0"#;
    let cfg = json!({
        "helper": ["/bin/sh", "-c", helper, "helper"],
        "env": [format!("D={}", d.display()), format!("PROG={prog}")],
        "log": d.join("logs/ctr.log"), "maxSize": 0, "maxFiles": 5,
        "initPid": d.join("init.pid"), "exitFile": d.join("exit"),
    });
    fs::write(d.join("monitor.json"), cfg.to_string()).unwrap();
    let mut m = Mon::exec(dir);
    assert_eq!(m.wait(), 0);
    // Keep Drop from signalling pid 1.
    fs::remove_file(m.path("init.pid")).unwrap();
    assert_eq!(m.read("after"), "--after-exit exit:255\n");
    assert!(m.read("exit").starts_with("exit:255 "));
}

#[test]
fn a_failing_helper_ends_the_monitor_and_its_words_are_in_the_log() {
    if skip_unless_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir(d.join("logs")).unwrap();
    let cfg = json!({
        "helper": ["/bin/sh", "-c", "echo 'error: no such image' >&2; exit 1"],
        "env": [], "log": d.join("logs/ctr.log"), "maxSize": 0, "maxFiles": 5,
        "initPid": d.join("init.pid"), "exitFile": d.join("exit"),
    });
    fs::write(d.join("monitor.json"), cfg.to_string()).unwrap();
    let mut m = Mon::exec(dir);
    assert_eq!(m.wait(), 1);
    assert_eq!(m.joined("stderr"), ["error: no such image"]);
    assert!(!m.path("exit").exists(), "no init ran, no exit recorded");
    // The sync pipe's reader sees nothing (then end of file): the helper
    // failed before it could say "ok".
    assert_eq!(m.read("sync"), "");
}

#[test]
fn a_real_container_sees_only_its_pipes_and_its_init_killed_from_the_host_is_recorded() {
    if skip_unless_root() {
        return;
    }
    let c = common::Container::new(
        common::Bundle::new().sh("ls -l /proc/1/fd; echo listed; exec sleep 100"),
    );
    c.bundle.write();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir(d.join("logs")).unwrap();
    // `rrun app _spawn` in miniature: create + start; after the end,
    // delete and say "done".
    let helper = r#"if [ -n "$1" ]; then
            echo "$2" > "$D/after"; "$RRUN" --root "$ROOT" delete --force "$ID"; exit 3
        fi
        "$RRUN" --root "$ROOT" create --bundle "$B" --pid-file "$D/init.pid" "$ID" || exit 1
        "$RRUN" --root "$ROOT" start "$ID" || exit 1
        echo ok >&3"#;
    let cfg = json!({
        "helper": ["/bin/sh", "-c", helper, "helper"],
        "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", format!("D={}", d.display()),
                format!("RRUN={}", common::rrun_bin().display()), format!("ROOT={}", c.root.display()),
                format!("B={}", c.bundle.path().display()), format!("ID={}", c.id)],
        "log": d.join("logs/ctr.log"), "maxSize": 0, "maxFiles": 5,
        "initPid": d.join("init.pid"), "exitFile": d.join("exit"),
    });
    fs::write(d.join("monitor.json"), cfg.to_string()).unwrap();
    let mut m = Mon::exec(dir);
    let listed = || m.joined("stdout").contains(&"listed".to_string());
    common::poll(TIMEOUT, || {
        (listed() && m.read("sync") == "ok\n").then_some(())
    })
    .unwrap_or_else(|| panic!("no listing and ok: {:?} {}", m.log_lines(), m.read("sync")));
    // PID 1's fds: stdin on the container's /dev/null, stdout and stderr
    // the monitor's pipes; nothing else (no sync pipe, no host path).
    let fds: Vec<(String, String)> = m
        .joined("stdout")
        .iter()
        .filter_map(|l| {
            let (left, target) = l.split_once(" -> ")?;
            Some((left.rsplit(' ').next()?.to_string(), target.to_string()))
        })
        .collect();
    let names: Vec<&str> = fds.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(names, ["0", "1", "2"], "{fds:?}");
    assert_eq!(fds[0].1, "/dev/null");
    assert!(
        fds[1].1.starts_with("pipe:[") && fds[2].1.starts_with("pipe:["),
        "{fds:?}"
    );
    // kill -9 of the init from the host: recorded, and the helper told.
    let init: i32 = m.read("init.pid").trim().parse().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(init),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert_eq!(m.wait(), 0, "{}", m.read("monitor.err"));
    assert_eq!(m.read("after"), "signal:9\n");
    assert!(m.read("exit").starts_with("signal:9 "));
}

#[test]
fn a_helper_that_cannot_be_run_is_one_line_on_the_sync_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir(d.join("logs")).unwrap();
    let cfg = json!({
        "helper": ["/nonexistent/rrun", "app", "_spawn", "web"],
        "log": d.join("logs/ctr.log"), "initPid": d.join("init.pid"), "exitFile": d.join("exit"),
    });
    fs::write(d.join("monitor.json"), cfg.to_string()).unwrap();
    let mut m = Mon::exec(dir);
    assert_eq!(m.wait(), 1);
    assert_eq!(
        m.read("sync"),
        "error: monitor: exec /nonexistent/rrun: No such file or directory (ENOENT)\n"
    );
}
