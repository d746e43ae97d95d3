//! rrun-bench: rrun against runc, crun and youki, side by side in one run.
//!
//! It drives every runtime only through its command line (never rrun's
//! internal modules), gives all of them the identical bundle, interleaves
//! them, and reports medians, p10–p90 spreads and rrun/peer ratios as a
//! table, JSON and an SVG chart. See docs/bench.md.
//!
//! Everything it creates lives under a per-run work dir, per-runtime state
//! roots `/run/rrun-bench-<pid>-<runtime>` and the relative cgroup
//! `rrun-bench-<pid>`; all of it is removed at the end, on error and on
//! SIGINT/SIGTERM.

mod bench;
mod cgroup;
mod monitor;
mod proc;
mod report;
mod runtime;
mod seccomp;
mod stats;
mod targets;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use nix::sys::signal::{SigSet, Signal};
use serde_json::json;

use bench::{Baseline, Bench, Params, Results};
use runtime::Runtime;

#[derive(Parser, Debug)]
#[command(
    name = "rrun-bench",
    about = "Benchmark rrun against runc, crun and youki in one interleaved run"
)]
struct Opts {
    /// Quick CI mode: a few repetitions, small parallel count, tiny image
    #[arg(long)]
    smoke: bool,
    /// The rrun binary under test
    #[arg(long, default_value = "target/x86_64-unknown-linux-gnu/release/rrun")]
    rrun: PathBuf,
    /// youki binary (built with `--features v1`); default: youki on PATH
    #[arg(long)]
    youki: Option<PathBuf>,
    /// Where results.json, ratios.svg and the work dir go
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Measured repetitions per latency figure (default 30; smoke 3)
    #[arg(long)]
    reps: Option<usize>,
    /// Containers per parallel batch (default 100; smoke 10)
    #[arg(long)]
    parallel: Option<usize>,
    /// Parallel batches per runtime and variant (default 2; smoke 1)
    #[arg(long)]
    par_reps: Option<usize>,
    /// Seconds to watch the idle inits (default 10; smoke 1)
    #[arg(long)]
    idle_secs: Option<u64>,
    /// Unpack repetitions per tool (default 3; smoke 1)
    #[arg(long)]
    unpack_reps: Option<usize>,
    /// Milliseconds of idle before each timed run/create/exec, so no
    /// command inherits the cgroup rwsem's grace period from the previous
    /// one (default 50; smoke 0)
    #[arg(long)]
    settle_ms: Option<u64>,
    /// Host directories (relative to /) packed into the unpack image;
    /// default usr/bin and usr/share/man (smoke: the bench rootfs)
    #[arg(long, value_delimiter = ',')]
    image_src: Option<Vec<String>>,
    /// Run only these phases (lifecycle, exec, seccomp, parallel, init,
    /// monitor, unpack; the probe always runs): a quick look at one figure
    #[arg(long, value_delimiter = ',')]
    only: Option<Vec<String>>,
}

/// --only, read by `phase`.
static ONLY: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

/// What cleanup needs, shared with the signal thread.
struct Cleanup {
    work: PathBuf,
    cg_parent: String,
    runtimes: Mutex<Vec<Runtime>>,
}

/// Cleans up on every way out of main, a panic included.
struct CleanupGuard(Arc<Cleanup>);

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        self.0.run();
    }
}

impl Cleanup {
    /// Force-delete every container left in each state root, empty and
    /// remove the bench cgroups, remove the roots and the work dir.
    fn run(&self) {
        proc::kill_all();
        let runtimes = self
            .runtimes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for rt in &runtimes {
            if let Ok(rd) = fs::read_dir(&rt.root) {
                for e in rd.flatten().filter(|e| e.path().is_dir()) {
                    let id = e.file_name().to_string_lossy().into_owned();
                    let _ = proc::run(
                        rt.cmd().args(["delete", "--force", &id]),
                        Duration::from_secs(20),
                    );
                }
            }
        }
        for d in cgroup::parent_dirs(&self.cg_parent) {
            cgroup::remove_tree(&d);
        }
        for rt in &runtimes {
            let _ = fs::remove_dir_all(&rt.root);
        }
        let _ = fs::remove_dir_all(&self.work);
    }
}

fn machine() -> serde_json::Value {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cgroups = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "v2"
    } else if Path::new("/sys/fs/cgroup/unified").is_dir() {
        "hybrid (v1 controllers, cgroup2 at /sys/fs/cgroup/unified)"
    } else {
        "v1"
    };
    json!({
        "cpu": cpu,
        "cores": thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "kernel": kernel.trim(),
        "mem_gib": mem_kib / (1024.0 * 1024.0),
        "cgroups": cgroups,
        "state_fs": fs_name(Path::new("/run")),
    })
}

/// The filesystem the state roots (under /run) live on. On most hosts /run
/// is a tmpfs; on a disk, runtimes that rewrite their state files pay for
/// the writeback (and its waits), which is not the runtime's own cost.
fn fs_name(dir: &Path) -> String {
    use nix::sys::statfs::{TMPFS_MAGIC, statfs};
    match statfs(dir) {
        Ok(s) if s.filesystem_type() == TMPFS_MAGIC => "tmpfs".into(),
        Ok(s) => format!("not tmpfs (f_type {:#x})", s.filesystem_type().0),
        Err(e) => format!("unknown ({e})"),
    }
}

/// The bench rootfs: scripts/mkrootfs.sh's busybox tree plus tini and
/// catatonit (static builds) for the init comparison.
fn make_rootfs(dest: &Path, notes: &mut Vec<String>) -> Result<(), String> {
    proc::run_ok(
        std::process::Command::new("scripts/mkrootfs.sh").arg(dest),
        Duration::from_secs(120),
    )
    .map_err(|e| e.to_string())?;
    for (src, dst) in [
        ("tini-static", "sbin/tini"),
        ("catatonit", "sbin/catatonit"),
    ] {
        match runtime::which(src) {
            Some(p) => {
                fs::copy(&p, dest.join(dst)).map_err(|e| format!("copy {}: {e}", p.display()))?;
            }
            None => notes.push(format!(
                "{src} not found on PATH: not in the init comparison"
            )),
        }
    }
    Ok(())
}

fn discover(opts: &Opts, work: &Path, pid: u32, res: &mut Results) -> Result<Vec<Runtime>, String> {
    let root = |short: &str| PathBuf::from(format!("/run/rrun-bench-{pid}-{short}"));
    let rrun = fs::canonicalize(&opts.rrun)
        .map_err(|e| format!("rrun binary {}: {e} (build it first)", opts.rrun.display()))?;
    let mut rts = vec![Runtime {
        name: "rrun".into(),
        short: "rrun".into(),
        bin: rrun.clone(),
        root: root("rrun"),
        version: runtime::version(&rrun),
    }];
    let wrappers = work.join("wrappers");
    fs::create_dir_all(&wrappers).map_err(|e| e.to_string())?;
    let wrap = |name: &str, real: &Path| {
        runtime::write_wrapper(&wrappers, name, real).map_err(|e| e.to_string())
    };
    rts.push(Runtime {
        name: "rrun (wrapped)".into(),
        short: "rrunw".into(),
        bin: wrap("rrun", &rrun)?,
        root: root("rrunw"),
        version: "as rrun, in a mount namespace without the cgroup2 mount".into(),
    });
    match runtime::which("runc") {
        Some(p) => rts.push(Runtime {
            name: "runc".into(),
            short: "runc".into(),
            version: runtime::version(&p),
            bin: p,
            root: root("runc"),
        }),
        None => res
            .notes
            .push("runc: skipped (not installed: apt-get install runc)".into()),
    }
    match runtime::which("crun") {
        Some(p) => rts.push(Runtime {
            name: "crun (wrapped)".into(),
            short: "crunw".into(),
            version: format!(
                "{}, in a mount namespace without the cgroup2 mount",
                runtime::version(&p)
            ),
            bin: wrap("crun", &p)?,
            root: root("crunw"),
        }),
        None => res
            .notes
            .push("crun: skipped (not installed: apt-get install crun)".into()),
    }
    let youki = opts
        .youki
        .clone()
        .filter(|p| p.is_file())
        .or_else(|| runtime::which("youki"));
    match youki {
        Some(p) => rts.push(Runtime {
            name: "youki".into(),
            short: "youki".into(),
            version: runtime::version(&p).replace('\n', " "),
            bin: p,
            root: root("youki"),
        }),
        None => res.notes.push(
            "youki: skipped (not installed; `make bench-youki` builds it: cargo install youki --features v1)".into(),
        ),
    }
    Ok(rts)
}

/// The commands timed beside `run`: the same namespaces entered by
/// unshare(1) alone, and the crun wrapper around true(1) alone.
fn baselines(work: &Path, res: &mut Results) -> Vec<Baseline> {
    let mut out = Vec::new();
    if runtime::which("unshare").is_none() {
        res.notes
            .push("baselines: skipped (unshare not on PATH: apt-get install util-linux)".into());
        return out;
    }
    out.push(Baseline {
        key: "unshare",
        label: bench::UNSHARE_ARGV.join(" "),
        argv: bench::UNSHARE_ARGV.iter().map(|s| s.to_string()).collect(),
    });
    let wrapped_true = runtime::which("true")
        .ok_or_else(|| "true not on PATH".to_owned())
        .and_then(|t| {
            runtime::write_wrapper(&work.join("wrappers"), "true", &t).map_err(|e| e.to_string())
        });
    match wrapped_true {
        Ok(w) => out.push(Baseline {
            key: "wrapper",
            label: "the wrapper alone (unshare -m, umount cgroup2, exec true)".into(),
            argv: vec![w.to_string_lossy().into_owned()],
        }),
        Err(e) => res.notes.push(format!("baseline wrapper: skipped ({e})")),
    }
    out
}

fn params(opts: &Opts) -> Params {
    let s = opts.smoke;
    Params {
        smoke: s,
        reps: opts.reps.unwrap_or(if s { 3 } else { 30 }),
        warmup: if s { 1 } else { 3 },
        parallel: opts.parallel.unwrap_or(if s { 10 } else { 100 }),
        par_reps: opts.par_reps.unwrap_or(if s { 1 } else { 2 }),
        idle_secs: opts.idle_secs.unwrap_or(if s { 1 } else { 10 }),
        unpack_reps: opts.unpack_reps.unwrap_or(if s { 1 } else { 3 }),
        settle: Duration::from_millis(opts.settle_ms.unwrap_or(if s { 0 } else { 50 })),
        image_src: opts.image_src.clone().unwrap_or_else(|| {
            if s {
                vec![]
            } else {
                vec!["usr/bin".into(), "usr/share/man".into()]
            }
        }),
    }
}

fn phase(name: &str, f: impl FnOnce()) {
    if bench::STOP.load(Ordering::Relaxed) {
        return;
    }
    if name != "probe" && ONLY.get().is_some_and(|o| !o.iter().any(|p| p == name)) {
        return;
    }
    let t = Instant::now();
    proc::say(&format!("{name}..."));
    f();
    proc::say(&format!(
        "{name} done in {:.1} s",
        t.elapsed().as_secs_f64()
    ));
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    if !nix::unistd::geteuid().is_root() {
        eprintln!("rrun-bench: must run as root (containers need real namespaces and cgroups)");
        return ExitCode::FAILURE;
    }
    // Signals go to one thread that cleans up; every other thread has them
    // blocked (children get an empty mask from std::process).
    let mut signals = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(s);
    }
    if let Err(e) = signals.thread_block() {
        eprintln!("rrun-bench: blocking signals: {e}");
        return ExitCode::FAILURE;
    }
    let pid = std::process::id();
    // Bundles name the rootfs by absolute path.
    let out = match fs::create_dir_all(&opts.out).and_then(|_| fs::canonicalize(&opts.out)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("rrun-bench: {}: {e}", opts.out.display());
            return ExitCode::FAILURE;
        }
    };
    let work = out.join(format!("work-{pid}"));
    if let Err(e) = proc::init(work.join("tmp")) {
        eprintln!("rrun-bench: {e}");
        return ExitCode::FAILURE;
    }
    let cleanup = Arc::new(Cleanup {
        work: work.clone(),
        cg_parent: format!("rrun-bench-{pid}"),
        runtimes: Mutex::new(Vec::new()),
    });
    {
        let cleanup = cleanup.clone();
        thread::spawn(move || {
            if let Ok(sig) = signals.wait() {
                bench::STOP.store(true, Ordering::Relaxed);
                proc::say(&format!("{sig}: cleaning up"));
                // Let commands in flight finish, so nothing is created after.
                thread::sleep(Duration::from_millis(500));
                cleanup.run();
                std::process::exit(130);
            }
        });
    }
    let guard = CleanupGuard(cleanup.clone());
    let code = match run(&opts, &work, pid, &cleanup) {
        Ok(ok) => {
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("rrun-bench: {e}");
            ExitCode::FAILURE
        }
    };
    drop(guard);
    code
}

/// The whole run; Ok(false) when rrun failed or left something behind.
fn run(opts: &Opts, work: &Path, pid: u32, cleanup: &Cleanup) -> Result<bool, String> {
    let mut res = Results::default();
    if let Some(o) = &opts.only {
        let _ = ONLY.set(o.clone());
    }
    let p = params(opts);
    let rootfs = work.join("rootfs");
    make_rootfs(&rootfs, &mut res.notes)?;
    let runtimes = discover(opts, work, pid, &mut res)?;
    *cleanup.runtimes.lock().unwrap_or_else(|e| e.into_inner()) = runtimes.clone();
    let rrun_bin = runtimes[0].bin.clone();
    let mut b = Bench::new(
        p.clone(),
        work.to_path_buf(),
        rootfs,
        cleanup.cg_parent.clone(),
    );
    b.runtimes = runtimes;
    b.baselines = baselines(work, &mut res);
    for rt in &b.runtimes {
        fs::create_dir_all(&rt.root).map_err(|e| format!("{}: {e}", rt.root.display()))?;
    }
    phase("probe", || b.probe(&mut res));
    if !b.runtimes.iter().any(|r| r.name == "rrun") {
        return Err(format!(
            "rrun cannot run a container: {}",
            res.notes.join("; ")
        ));
    }
    phase("lifecycle", || b.lifecycle(&mut res));
    phase("exec", || b.exec_latency(&mut res));
    phase("seccomp", || b.seccomp(&mut res));
    phase("parallel", || b.parallel(&mut res));
    phase("init", || b.init_idle(&mut res));
    phase("monitor", || b.monitor_idle(&mut res));
    phase("unpack", || b.unpack(&rrun_bin, &mut res));
    if bench::STOP.load(Ordering::Relaxed) {
        return Err("interrupted".into());
    }

    let report = report::Report {
        machine: machine(),
        runtimes: b
            .runtimes
            .iter()
            .map(|r| (r.name.clone(), r.version.clone()))
            .collect(),
        res: &res,
        mode: if p.smoke { "smoke" } else { "full" },
        parallel: p.parallel,
    };
    let text = report.text();
    println!("{text}");
    fs::create_dir_all(&opts.out).map_err(|e| e.to_string())?;
    let json = serde_json::to_string_pretty(&report.json()).map_err(|e| e.to_string())?;
    let name = if p.smoke { "smoke" } else { "results" };
    let files = [
        (opts.out.join(format!("{name}.json")), json),
        (opts.out.join(format!("{name}.svg")), report.svg()),
        (opts.out.join(format!("{name}.txt")), text),
    ];
    for (path, body) in &files {
        fs::write(path, body).map_err(|e| format!("{}: {e}", path.display()))?;
        proc::say(&format!("wrote {}", path.display()));
    }

    // Timings are never judged; failures and leftovers of rrun are.
    let rrun_bad = |name: &str| {
        name.starts_with("rrun")
            && (res.failures.get(name).is_some_and(|f| f.0 > 0)
                || res.leftovers.get(name).is_some_and(|n| *n > 0))
    };
    let init_busy = res
        .init
        .iter()
        .any(|r| r.name == "rrun init" && r.implemented && r.idle_cpu_ticks.unwrap_or(0) > 0);
    let ok = !b.runtimes.iter().any(|r| rrun_bad(&r.name)) && !init_busy;
    if !ok {
        proc::say("rrun had failures, leftovers or a busy idle init (see above)");
    }
    Ok(ok)
}
