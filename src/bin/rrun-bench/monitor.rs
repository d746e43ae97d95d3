//! Per-app monitor idle cost: rrun-monitor (what `rrun app` leaves beside
//! each app) against conmon (podman's) and containerd-shim-runc-v2
//! (containerd's), each idle. rrun-monitor and conmon each hold one
//! container running `sleep` (started by rrun); the shim is started as
//! containerd starts it (`start`, then its daemon) and holds no task,
//! since giving it one takes containerd's ttrpc client: its figure is a
//! lower bound. PSS and RSS from /proc/<pid>/smaps_rollup after a second,
//! CPU ticks over the idle time.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Duration;

use crate::bench::{Bench, CMD_TIMEOUT, InitRow, Results, smaps_rollup};
use crate::proc;
use crate::runtime::{Runtime, Variant};

/// rrun-monitor as rrun embeds it (same build).
const MONITOR_BIN: &str = env!("RRUN_MONITOR_BIN");

/// The fake `rrun app _spawn`: creates and starts the container with the
/// runtime under test and names its init; after its end, says "done".
const HELPER: &str = r#"[ -n "$1" ] && exit 3
"$RT" --root "$ROOT" create --bundle "$B" --pid-file "$B/init.pid" "$ID" || exit 1
"$RT" --root "$ROOT" start "$ID" || exit 1
cp "$B/init.pid" "$D/init.pid"
echo ok >&3"#;

struct Running {
    name: &'static str,
    pid: i32,
    cleanup: Box<dyn FnOnce()>,
}

impl Bench {
    pub fn monitor_idle(&self, res: &mut Results) {
        let Some(rt) = self.runtimes.iter().find(|r| r.name == "rrun") else {
            res.notes
                .push("monitor: skipped (rrun could not run containers)".into());
            return;
        };
        let dir = self.work.join("monitor");
        let _ = fs::create_dir_all(&dir);
        let mut running = Vec::new();
        type Starter = fn(&Bench, &Runtime, &Path) -> Result<Running, String>;
        let cases: [(&str, Starter); 3] = [
            ("rrun-monitor", Bench::start_rrun_monitor),
            ("conmon", Bench::start_conmon),
            ("containerd-shim-runc-v2", Bench::start_shim),
        ];
        for (name, start) in cases {
            let d = dir.join(name);
            let _ = fs::create_dir_all(&d);
            match start(self, rt, &d) {
                Ok(r) => running.push(r),
                Err(e) => res.notes.push(format!("monitor: {name}: {e}")),
            }
        }
        thread::sleep(Duration::from_secs(1));
        let mut rows = Vec::new();
        for r in &running {
            let exe = fs::read_link(format!("/proc/{}/exe", r.pid))
                .ok()
                .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
                .unwrap_or_default();
            let (pss, rss) = smaps_rollup(r.pid);
            rows.push((
                r.pid,
                proc::cpu_ticks(r.pid),
                InitRow {
                    name: r.name.to_string(),
                    implemented: true,
                    pid1_exe: exe,
                    pss_kib: pss,
                    rss_kib: rss,
                    idle_cpu_ticks: None,
                    idle_secs: self.params.idle_secs,
                },
            ));
        }
        thread::sleep(Duration::from_secs(self.params.idle_secs));
        for (pid, before, mut row) in rows {
            if let (Some(a), Some(b)) = (before, proc::cpu_ticks(pid)) {
                row.idle_cpu_ticks = Some(b.saturating_sub(a));
            }
            res.monitor.push(row);
        }
        for r in running {
            (r.cleanup)();
        }
        let _ = fs::remove_dir_all(&dir);
    }

    /// A bundle of the bench's rootfs running `sleep 3600`, id `tag`.
    fn sleeper(&self, rt: &Runtime, tag: &str) -> Result<crate::bench::Container, String> {
        self.container(rt, tag, &Variant::args(&["sleep", "3600"]))
            .map_err(|e| e.to_string())
    }

    fn start_rrun_monitor(&self, rt: &Runtime, d: &Path) -> Result<Running, String> {
        let c = self.sleeper(rt, "mon")?;
        fs::create_dir_all(d.join("logs")).map_err(|e| e.to_string())?;
        let cfg = serde_json::json!({
            "helper": ["/bin/sh", "-c", HELPER, "helper"],
            "env": [
                format!("PATH={}", std::env::var("PATH").unwrap_or_default()),
                format!("RT={}", rt.bin.display()), format!("ROOT={}", rt.root.display()),
                format!("B={}", c.dir.display()), format!("ID={}", c.id), format!("D={}", d.display()),
            ],
            "log": d.join("logs/ctr.log"), "maxSize": 10_000_000, "maxFiles": 5,
            "initPid": d.join("init.pid"), "exitFile": d.join("exit"),
        });
        fs::write(d.join("monitor.json"), cfg.to_string()).map_err(|e| e.to_string())?;
        // Started in the background by a shell that exits: the monitor
        // is then the bench's (a subreaper's) child, reaped by proc.
        let o = proc::run(
            Command::new("/bin/sh")
                .arg("-c")
                .arg(
                    r#""$0" "$1" 3>"$1/sync" </dev/null >/dev/null 2>"$1/monitor.err" &
                echo $! > "$1/monitor.pid""#,
                )
                .arg(MONITOR_BIN)
                .arg(d),
            CMD_TIMEOUT,
        )
        .map_err(|e| e.to_string())?;
        if !o.ok() {
            return Err(o.reason());
        }
        let pid = read_pid(&d.join("monitor.pid")).ok_or("no monitor pid")?;
        let ok = poll(CMD_TIMEOUT, || {
            fs::read_to_string(d.join("sync"))
                .ok()
                .filter(|s| !s.is_empty())
        });
        let (rt, dd) = (rt.clone(), d.to_path_buf());
        let bench_finish = self.finisher(&rt, c);
        let cleanup = move || {
            bench_finish();
            // The init's end makes the monitor run the helper, which says
            // "done" (exit 3): the monitor ends.
            if !proc::wait_exited(pid, CMD_TIMEOUT) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = fs::remove_dir_all(&dd);
        };
        match ok.as_deref() {
            Some("ok\n") => Ok(Running {
                name: "rrun-monitor",
                pid,
                cleanup: Box::new(cleanup),
            }),
            other => {
                let log = fs::read_to_string(d.join("logs/ctr.log")).unwrap_or_default();
                cleanup();
                Err(format!("the helper said {other:?}: {log}"))
            }
        }
    }

    fn start_conmon(&self, rt: &Runtime, d: &Path) -> Result<Running, String> {
        let conmon =
            crate::runtime::which("conmon").ok_or("not installed (apt-get install conmon)")?;
        let c = self.sleeper(rt, "conmon")?;
        for sub in ["exit", "sock"] {
            fs::create_dir_all(d.join(sub)).map_err(|e| e.to_string())?;
        }
        let pidfile = c.pid_file();
        let o = proc::run(
            Command::new(&conmon)
                .args([
                    "--api-version",
                    "1",
                    "-c",
                    &c.id,
                    "-u",
                    &c.id,
                    "-n",
                    &c.id,
                    "-r",
                ])
                .arg(&rt.bin)
                .arg("-b")
                .arg(&c.dir)
                .arg("-p")
                .arg(&pidfile)
                .arg("-P")
                .arg(d.join("conmon.pid"))
                .arg("-l")
                .arg(format!("k8s-file:{}", d.join("ctr.log").display()))
                .arg("--exit-dir")
                .arg(d.join("exit"))
                .arg("--socket-dir-path")
                .arg(d.join("sock"))
                .arg("--runtime-arg")
                .arg(format!("--root={}", rt.root.display()))
                .args(["--log-level", "error"]),
            CMD_TIMEOUT,
        )
        .map_err(|e| e.to_string())?;
        let finish = self.finisher(rt, c.clone());
        if !o.ok() {
            finish();
            return Err(o.reason());
        }
        let created = poll(CMD_TIMEOUT, || pidfile.exists().then_some(()));
        let pid = read_pid(&d.join("conmon.pid"));
        let started = created.is_some() && self.exec(rt, &["start", &c.id]).is_ok_and(|o| o.ok());
        let Some(pid) = pid.filter(|_| started) else {
            finish();
            return Err("conmon did not create and start the container".into());
        };
        Ok(Running {
            name: "conmon",
            pid,
            cleanup: Box::new(move || {
                finish();
                // conmon ends with its container.
                proc::wait_exited(pid, CMD_TIMEOUT);
            }),
        })
    }

    fn start_shim(&self, _rt: &Runtime, d: &Path) -> Result<Running, String> {
        let shim = crate::runtime::which("containerd-shim-runc-v2")
            .ok_or("not installed (apt-get install containerd)")?;
        let id = format!("rrun-bench-{}-shim", std::process::id());
        fs::write(d.join("config.json"), "{}").map_err(|e| e.to_string())?;
        // The shim logs into the fifo "log" of its directory, which
        // containerd reads: a cat stands in.
        let o = proc::run(
            Command::new("/bin/sh")
                .arg("-c")
                .arg(r#"mkfifo log && { cat log >/dev/null & }"#)
                .current_dir(d),
            CMD_TIMEOUT,
        )
        .map_err(|e| e.to_string())?;
        if !o.ok() {
            return Err(o.reason());
        }
        let o = proc::run(
            Command::new(&shim)
                .args(["-namespace", "rrun-bench", "-id", &id, "-address"])
                .arg(d.join("containerd.sock"))
                .args(["-publish-binary", "/bin/true", "start"])
                .current_dir(d),
            CMD_TIMEOUT,
        )
        .map_err(|e| e.to_string())?;
        let socket = o.stdout.trim().strip_prefix("unix://").map(PathBuf::from);
        let pid = find_pid(&["-id", &id], "start");
        let fifo = d.join("log");
        let cleanup = move |pid: Option<i32>| {
            if let Some(pid) = pid {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                proc::wait_exited(pid, CMD_TIMEOUT);
            }
            if let Some(s) = &socket {
                let _ = fs::remove_file(s);
            }
            // A cat still waiting for a writer gets one, and its end.
            use std::os::unix::fs::OpenOptionsExt;
            let _ = fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&fifo);
        };
        match pid.filter(|_| o.ok()) {
            Some(pid) => Ok(Running {
                name: "containerd-shim-runc-v2",
                pid,
                cleanup: Box::new(move || cleanup(Some(pid))),
            }),
            None => {
                cleanup(pid);
                Err(format!("no shim daemon: {}", o.reason()))
            }
        }
    }

    /// Deletes a container and its bundle (later, from a cleanup).
    fn finisher(&self, rt: &Runtime, c: crate::bench::Container) -> impl FnOnce() + use<> {
        let (bin, root, cg_parent) = (rt.bin.clone(), rt.root.clone(), self.cg_parent.clone());
        move || {
            let _ = proc::run(
                Command::new(&bin)
                    .arg("--root")
                    .arg(&root)
                    .args(["delete", "--force", &c.id]),
                CMD_TIMEOUT,
            );
            for d in crate::cgroup::leftovers(&cg_parent, &c.id) {
                crate::cgroup::remove_tree(&d);
            }
            let _ = fs::remove_dir_all(&c.dir);
        }
    }
}

/// `f` until it gives Some, at most `timeout`.
fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn read_pid(p: &Path) -> Option<i32> {
    fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// The process whose argv holds `want` in a row and not `not`.
fn find_pid(want: &[&str], not: &str) -> Option<i32> {
    fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<&[u8]> = raw.split(|&b| b == 0).collect();
        let hit = args
            .windows(want.len())
            .any(|w| w.iter().zip(want).all(|(a, b)| *a == b.as_bytes()));
        (hit && !args.contains(&not.as_bytes())).then_some(pid)
    })
}
