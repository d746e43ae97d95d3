//! The measurements. Every phase interleaves the runtimes (a rotating order
//! per repetition) so that whatever else the machine does hits all of them
//! alike, and discards warm-up repetitions.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::cgroup;
use crate::proc::{self, Outcome};
use crate::runtime::{self, Runtime, Variant};
use crate::seccomp;

/// Set when SIGINT/SIGTERM arrives: phases stop starting new work.
pub static STOP: AtomicBool = AtomicBool::new(false);

fn stopped() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// One runtime command on an idle machine takes milliseconds; a command
/// that takes this long hangs (youki 0.7's foreground `run` sometimes loses
/// its child's SIGCHLD and waits forever).
pub const CMD_TIMEOUT: Duration = Duration::from_secs(15);
/// The same in a parallel batch, where N commands share the cores.
pub const PAR_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
pub struct Params {
    pub smoke: bool,
    pub reps: usize,
    pub warmup: usize,
    pub parallel: usize,
    pub par_reps: usize,
    pub idle_secs: u64,
    pub unpack_reps: usize,
    /// Directories (relative to /) packed into the unpack image; empty: the
    /// bench rootfs.
    pub image_src: Vec<String>,
    /// Idle time before each timed command that may put a process into a
    /// cgroup (run, create, exec); see [`Bench::settle`].
    pub settle: Duration,
}

/// A command timed beside the runtimes' foreground `run`, in the same
/// rotation: a floor for what a lifecycle could cost (the same namespaces
/// with no runtime at all), or the cost of the wrapper alone.
#[derive(Debug, Clone)]
pub struct Baseline {
    /// Key in `Results::baselines` and the JSON.
    pub key: &'static str,
    /// The command as the report shows it.
    pub label: String,
    pub argv: Vec<String>,
}

impl Baseline {
    fn cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(&self.argv[0]);
        c.args(&self.argv[1..]);
        c
    }
}

/// The namespaces of the bench bundle (pid, net, ipc, uts, mount) plus the
/// cgroup namespace runtimes also set up, entered by util-linux alone: the
/// lower bound any runtime's `run` is measured against.
pub const UNSHARE_ARGV: [&str; 9] = [
    "unshare", "--pid", "--fork", "--mount", "--net", "--uts", "--ipc", "--cgroup", "true",
];

pub struct Bench {
    pub params: Params,
    pub work: PathBuf,
    pub rootfs: PathBuf,
    pub runtimes: Vec<Runtime>,
    pub baselines: Vec<Baseline>,
    pub cg_parent: String,
    seq: AtomicU64,
    in_batch: AtomicBool,
}

#[derive(Clone)]
pub struct Container {
    pub id: String,
    pub dir: PathBuf,
}

impl Container {
    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("init.pid")
    }

    pub fn pid(&self) -> Option<i32> {
        fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct InitRow {
    pub name: String,
    pub implemented: bool,
    pub pid1_exe: String,
    pub pss_kib: Option<u64>,
    pub rss_kib: Option<u64>,
    pub idle_cpu_ticks: Option<u64>,
    pub idle_secs: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct UnpackResult {
    pub image_bytes: u64,
    pub image_src: String,
    pub rrun_supported: bool,
    pub umoci_s: Vec<f64>,
    pub umoci_rss_mib: Vec<f64>,
    pub rrun_s: Vec<f64>,
    pub rrun_rss_mib: Vec<f64>,
}

#[derive(Default)]
pub struct Results {
    /// figure key -> runtime name -> samples
    pub samples: BTreeMap<&'static str, BTreeMap<String, Vec<f64>>>,
    /// baseline key -> (its label, samples in ms), timed beside `run`
    pub baselines: BTreeMap<&'static str, (String, Vec<f64>)>,
    /// runtime name -> count and the first few reasons
    pub failures: BTreeMap<String, (usize, Vec<String>)>,
    pub leftovers: BTreeMap<String, usize>,
    pub init: Vec<InitRow>,
    /// Per-app monitors idle (monitor.rs): rrun-monitor, conmon, the shim.
    pub monitor: Vec<InitRow>,
    pub unpack: Option<UnpackResult>,
    pub notes: Vec<String>,
}

impl Results {
    pub fn add(&mut self, fig: &'static str, rt: &str, v: f64) {
        self.samples
            .entry(fig)
            .or_default()
            .entry(rt.to_owned())
            .or_default()
            .push(v);
    }

    pub fn fail(&mut self, rt: &str, what: &str, reason: &str) {
        let e = self.failures.entry(rt.to_owned()).or_default();
        e.0 += 1;
        if e.1.len() < 3 {
            e.1.push(format!("{what}: {reason}"));
        }
    }

    fn leftover(&mut self, rt: &str, n: usize) {
        *self.leftovers.entry(rt.to_owned()).or_default() += n;
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl Bench {
    pub fn new(params: Params, work: PathBuf, rootfs: PathBuf, cg_parent: String) -> Self {
        Bench {
            params,
            work,
            rootfs,
            runtimes: Vec::new(),
            baselines: Vec::new(),
            cg_parent,
            seq: AtomicU64::new(0),
            in_batch: AtomicBool::new(false),
        }
    }

    /// Runtimes in this repetition's order.
    fn rotated(&self, rep: usize) -> Vec<&Runtime> {
        let n = self.runtimes.len();
        (0..n).map(|i| &self.runtimes[(i + rep) % n]).collect()
    }

    /// A fresh bundle (config.json over the shared read-only rootfs) with a
    /// unique id and cgroupsPath.
    pub fn container(&self, rt: &Runtime, tag: &str, v: &Variant) -> std::io::Result<Container> {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{tag}-{n}", rt.short);
        let dir = self.work.join("bundles").join(&id);
        fs::create_dir_all(&dir)?;
        let cfg = runtime::config(&self.rootfs, &format!("{}/{id}", self.cg_parent), v);
        fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&cfg)?)?;
        Ok(Container { id, dir })
    }

    pub fn exec(&self, rt: &Runtime, args: &[&str]) -> Result<Outcome, String> {
        let t = if self.in_batch.load(Ordering::Relaxed) {
            PAR_TIMEOUT
        } else {
            CMD_TIMEOUT
        };
        proc::run(rt.cmd().args(args), t).map_err(|e| format!("{}: {e}", rt.name))
    }

    /// A cgroup.procs write waits for an RCU grace period (~8-12 ms here)
    /// unless another one happened in the last ~10-20 ms, which then paid it.
    /// Without a pause, a runtime that migrates its init that way would run
    /// faster right after another one did (and slower on a quiet host), so
    /// the rotation would bias the comparison: every timed command that can
    /// migrate a process starts after the kernel's state has gone idle.
    fn settle(&self) {
        if !self.in_batch.load(Ordering::Relaxed) && !self.params.settle.is_zero() {
            thread::sleep(self.params.settle);
        }
    }

    fn create(&self, rt: &Runtime, c: &Container) -> Result<Outcome, String> {
        self.settle();
        let o = self.exec(
            rt,
            &[
                "create",
                "--bundle",
                &c.dir.to_string_lossy(),
                "--pid-file",
                &c.pid_file().to_string_lossy(),
                &c.id,
            ],
        )?;
        if o.ok() { Ok(o) } else { Err(o.reason()) }
    }

    fn verb(&self, rt: &Runtime, verb: &str, c: &Container) -> Result<Outcome, String> {
        let o = self.exec(rt, &[verb, &c.id])?;
        if o.ok() { Ok(o) } else { Err(o.reason()) }
    }

    /// Residue of a container that should be gone: its state dir, its
    /// cgroups, its init. Returns how many kinds were left.
    pub fn residue(&self, rt: &Runtime, c: &Container) -> usize {
        let mut n = 0;
        if rt.root.join(&c.id).exists() {
            n += 1;
        }
        if !cgroup::leftovers(&self.cg_parent, &c.id).is_empty() {
            n += 1;
        }
        if c.pid().is_some_and(|p| !proc::exited(p)) {
            n += 1;
        }
        n
    }

    /// Force away whatever is left of a container and its bundle.
    pub fn finish(&self, rt: &Runtime, c: &Container) {
        if rt.root.join(&c.id).exists() {
            let _ = self.exec(rt, &["delete", "--force", &c.id]);
        }
        for d in cgroup::leftovers(&self.cg_parent, &c.id) {
            cgroup::remove_tree(&d);
        }
        let _ = fs::remove_dir_all(&c.dir);
    }

    /// create, start, wait for /bin/true to exit, delete. Timings in ms.
    fn create_start_delete(&self, rt: &Runtime, c: &Container) -> Result<[Outcome; 3], String> {
        let created = self.create(rt, c)?;
        let pid = c.pid().ok_or("no pid file after create")?;
        let started = self.verb(rt, "start", c)?;
        if !proc::wait_exited(pid, Duration::from_secs(20)) {
            return Err("the container's /bin/true did not exit within 20 s".into());
        }
        let deleted = self.verb(rt, "delete", c)?;
        Ok([created, started, deleted])
    }

    /// Try each runtime once (run /bin/true); drop those that cannot.
    pub fn probe(&mut self, res: &mut Results) {
        let v = Variant::args(&["/bin/true"]);
        let mut kept = Vec::new();
        for rt in std::mem::take(&mut self.runtimes) {
            // Twice: youki's foreground run hangs now and then.
            let mut outcome = Err(String::new());
            for _ in 0..2 {
                outcome = self.probe_one(&rt, &v);
                if outcome.is_ok() {
                    break;
                }
            }
            match outcome {
                Ok(()) => kept.push(rt),
                Err(e) => res
                    .notes
                    .push(format!("{}: dropped, a trial run failed ({e})", rt.name)),
            }
        }
        self.runtimes = kept;
        let mut kept = Vec::new();
        for b in std::mem::take(&mut self.baselines) {
            match proc::run(&mut b.cmd(), CMD_TIMEOUT) {
                Ok(o) if o.ok() => kept.push(b),
                Ok(o) => res.notes.push(format!(
                    "baseline `{}`: dropped, a trial run failed ({})",
                    b.label,
                    o.reason()
                )),
                Err(e) => res.notes.push(format!(
                    "baseline `{}`: dropped, a trial run failed ({e})",
                    b.label
                )),
            }
        }
        self.baselines = kept;
    }

    fn probe_one(&self, rt: &Runtime, v: &Variant) -> Result<(), String> {
        let c = self.container(rt, "probe", v).map_err(|e| e.to_string())?;
        let o = self.exec(rt, &["run", "--bundle", &c.dir.to_string_lossy(), &c.id]);
        self.finish(rt, &c);
        let o = o?;
        if o.ok() { Ok(()) } else { Err(o.reason()) }
    }

    /// Lifecycle latency: foreground `run`, then create/start/delete apart;
    /// the baselines take their turn in the same rotation.
    pub fn lifecycle(&self, res: &mut Results) {
        let v = Variant::args(&["/bin/true"]);
        let p = &self.params;
        let slots = self.runtimes.len() + self.baselines.len();
        for rep in 0..p.warmup + p.reps {
            for slot in (0..slots).map(|i| (i + rep) % slots) {
                if stopped() {
                    return;
                }
                let record = rep >= p.warmup;
                let Some(rt) = self.runtimes.get(slot) else {
                    let b = &self.baselines[slot - self.runtimes.len()];
                    self.time_baseline(b, record, res);
                    continue;
                };
                let Ok(c) = self.container(rt, "run", &v) else {
                    continue;
                };
                self.settle();
                match self.exec(rt, &["run", "--bundle", &c.dir.to_string_lossy(), &c.id]) {
                    Ok(o) if o.ok() => {
                        if record {
                            res.add("run", &rt.name, ms(o.wall));
                        }
                    }
                    Ok(o) => res.fail(&rt.name, "run", &o.reason()),
                    Err(e) => res.fail(&rt.name, "run", &e),
                }
                let left = self.residue(rt, &c);
                res.leftover(&rt.name, left);
                self.finish(rt, &c);

                let Ok(c) = self.container(rt, "csd", &v) else {
                    continue;
                };
                match self.create_start_delete(rt, &c) {
                    Ok([cr, st, de]) => {
                        if record {
                            res.add("create", &rt.name, ms(cr.wall));
                            res.add("start", &rt.name, ms(st.wall));
                            res.add("delete", &rt.name, ms(de.wall));
                            res.add("csd", &rt.name, ms(cr.wall + st.wall + de.wall));
                            res.add("create_rss", &rt.name, cr.maxrss_kib as f64 / 1024.0);
                            res.add("create_cpu", &rt.name, ms(cr.cpu));
                        }
                    }
                    Err(e) => res.fail(&rt.name, "create/start/delete", &e),
                }
                let left = self.residue(rt, &c);
                res.leftover(&rt.name, left);
                self.finish(rt, &c);
            }
        }
    }

    fn time_baseline(&self, b: &Baseline, record: bool, res: &mut Results) {
        let what = format!("baseline {}", b.key);
        match proc::run(&mut b.cmd(), CMD_TIMEOUT) {
            Ok(o) if o.ok() => {
                if record {
                    res.baselines
                        .entry(b.key)
                        .or_insert_with(|| (b.label.clone(), Vec::new()))
                        .1
                        .push(ms(o.wall));
                }
            }
            Ok(o) => res.fail(&what, "run", &o.reason()),
            Err(e) => res.fail(&what, "run", &e.to_string()),
        }
    }

    /// exec of /bin/true into a running container (one per runtime).
    pub fn exec_latency(&self, res: &mut Results) {
        let v = Variant::args(&["sleep", "3600"]);
        let mut running = Vec::new();
        for rt in &self.runtimes {
            let Ok(c) = self.container(rt, "exec", &v) else {
                continue;
            };
            match self.create(rt, &c).and_then(|_| self.verb(rt, "start", &c)) {
                Ok(_) => running.push((rt, c)),
                Err(e) => {
                    res.fail(&rt.name, "exec container", &e);
                    self.finish(rt, &c);
                }
            }
        }
        let p = &self.params;
        for rep in 0..p.warmup + p.reps {
            let n = running.len();
            for i in 0..n {
                if stopped() {
                    break;
                }
                let (rt, c) = &running[(i + rep) % n];
                self.settle();
                match self.exec(rt, &["exec", &c.id, "/bin/true"]) {
                    Ok(o) if o.ok() => {
                        if rep >= p.warmup {
                            res.add("exec", &rt.name, ms(o.wall));
                        }
                    }
                    Ok(o) => res.fail(&rt.name, "exec", &o.reason()),
                    Err(e) => res.fail(&rt.name, "exec", &e),
                }
            }
        }
        for (rt, c) in running {
            // SIGKILL: a `sleep` as PID 1 of its pid namespace ignores SIGTERM.
            if let Err(e) = self.exec(rt, &["kill", &c.id, "KILL"]).and_then(|o| {
                if !o.ok() {
                    return Err(o.reason());
                }
                let _ = c
                    .pid()
                    .map(|p| proc::wait_exited(p, Duration::from_secs(10)));
                self.verb(rt, "delete", &c)
            }) {
                res.fail(&rt.name, "kill/delete after exec", &e);
            }
            let left = self.residue(rt, &c);
            res.leftover(&rt.name, left);
            self.finish(rt, &c);
        }
    }

    /// Seccomp: podman's default profile. `run /bin/true` with and without
    /// it (paired, alternating order) catches the compile+load wherever a
    /// runtime does it (rrun at create; runc with noNewPrivileges just
    /// before exec, after start); create with and without shows rrun's part.
    pub fn seccomp(&self, res: &mut Results) {
        let profile = match fs::read_to_string(seccomp::PODMAN_PROFILE)
            .map_err(|e| {
                format!(
                    "{}: {e} (install containers-common)",
                    seccomp::PODMAN_PROFILE
                )
            })
            .and_then(|s| serde_json::from_str::<Value>(&s).map_err(|e| e.to_string()))
            .and_then(|p| seccomp::to_oci(&p, &runtime::DEFAULT_CAPS, kernel_version()))
        {
            Ok(p) => p,
            Err(e) => {
                res.notes.push(format!("seccomp: skipped ({e})"));
                return;
            }
        };
        let plain = Variant::args(&["/bin/true"]);
        let secc = Variant {
            seccomp: Some(profile.clone()),
            ..plain.clone()
        };
        // Check that each runtime really filters (Seccomp: 2 in the container).
        let check = Variant {
            seccomp: Some(profile),
            ..Variant::args(&["grep", "^Seccomp:", "/proc/self/status"])
        };
        for rt in &self.runtimes {
            if let Ok(c) = self.container(rt, "seccheck", &check) {
                if let Ok(o) = self.exec(rt, &["run", "--bundle", &c.dir.to_string_lossy(), &c.id])
                {
                    let mode = o.stdout.split_whitespace().nth(1).unwrap_or("?").to_owned();
                    if mode != "2" {
                        res.notes.push(format!(
                            "{}: with the profile the container shows Seccomp: {mode} ({})",
                            rt.name,
                            o.reason()
                        ));
                    }
                }
                self.finish(rt, &c);
            }
        }
        let p = &self.params;
        for rep in 0..p.warmup + p.reps {
            for rt in self.rotated(rep) {
                if stopped() {
                    return;
                }
                let record = rep >= p.warmup;
                let order = if rep % 2 == 0 {
                    [false, true]
                } else {
                    [true, false]
                };
                let mut run_ms = [None, None];
                let mut create_ms = [None, None];
                for with in order {
                    let v = if with { &secc } else { &plain };
                    if let Ok(c) = self.container(rt, "sec", v) {
                        self.settle();
                        match self.exec(rt, &["run", "--bundle", &c.dir.to_string_lossy(), &c.id]) {
                            Ok(o) if o.ok() => run_ms[with as usize] = Some(ms(o.wall)),
                            Ok(o) => res.fail(&rt.name, "run (seccomp phase)", &o.reason()),
                            Err(e) => res.fail(&rt.name, "run (seccomp phase)", &e),
                        }
                        self.finish(rt, &c);
                    }
                    if let Ok(c) = self.container(rt, "sec", v) {
                        match self.create(rt, &c) {
                            Ok(o) => create_ms[with as usize] = Some(ms(o.wall)),
                            Err(e) => res.fail(&rt.name, "create (seccomp phase)", &e),
                        }
                        if let Err(e) = self.exec(rt, &["delete", "--force", &c.id]) {
                            res.fail(&rt.name, "delete --force", &e);
                        }
                        self.finish(rt, &c);
                    }
                }
                if !record {
                    continue;
                }
                if let [Some(a), Some(b)] = run_ms {
                    res.add("run_nosec", &rt.name, a);
                    res.add("run_sec", &rt.name, b);
                    res.add("seccomp_run_cost", &rt.name, b - a);
                }
                if let [Some(a), Some(b)] = create_ms {
                    res.add("create_nosec", &rt.name, a);
                    res.add("create_sec", &rt.name, b);
                    res.add("seccomp_create_cost", &rt.name, b - a);
                }
            }
        }
    }

    /// `n` containers created, started and deleted at once (one thread
    /// each): wall time, failures, leftovers.
    fn batch(&self, rt: &Runtime, v: &Variant, tag: &str, res: &mut Results) -> Duration {
        let n = self.params.parallel;
        let containers: Vec<Container> = (0..n)
            .filter_map(|_| self.container(rt, tag, v).ok())
            .collect();
        self.in_batch.store(true, Ordering::Relaxed);
        let start = Instant::now();
        let outcomes: Vec<Result<[Outcome; 3], String>> = thread::scope(|s| {
            let handles: Vec<_> = containers
                .iter()
                .map(|c| s.spawn(move || self.create_start_delete(rt, c)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("thread panicked".into())))
                .collect()
        });
        let wall = start.elapsed();
        self.in_batch.store(false, Ordering::Relaxed);
        let mut failures = 0;
        for o in &outcomes {
            if let Err(e) = o {
                failures += 1;
                res.fail(&rt.name, &format!("parallel {tag}"), e);
            }
        }
        let left = containers
            .iter()
            .filter(|c| self.residue(rt, c) > 0)
            .count();
        res.add(leak_key(tag, "failures"), &rt.name, failures as f64);
        res.add(leak_key(tag, "leftovers"), &rt.name, left as f64);
        res.leftover(&rt.name, left);
        for c in &containers {
            self.finish(rt, c);
        }
        wall
    }

    pub fn parallel(&self, res: &mut Results) {
        let plain = Variant::args(&["/bin/true"]);
        let limited = Variant {
            limits: true,
            ..plain.clone()
        };
        for rep in 0..self.params.par_reps {
            for rt in self.rotated(rep) {
                for (tag, v) in [("par", &plain), ("parlim", &limited)] {
                    if stopped() {
                        return;
                    }
                    let w = self.batch(rt, v, tag, res);
                    let key = if tag == "par" {
                        "par_wall"
                    } else {
                        "parlim_wall"
                    };
                    res.add(key, &rt.name, w.as_secs_f64());
                }
            }
        }
    }

    /// PID 1 idle cost: tini and catatonit (and rrun's built-in init when
    /// it exists) supervising the same `sleep`, run by rrun.
    pub fn init_idle(&self, res: &mut Results) {
        let Some(rt) = self.runtimes.iter().find(|r| r.name == "rrun") else {
            res.notes
                .push("init: skipped (rrun could not run containers)".into());
            return;
        };
        let mut cases: Vec<(&str, Variant)> = Vec::new();
        for (name, bin) in [("tini", "/sbin/tini"), ("catatonit", "/sbin/catatonit")] {
            if self.rootfs.join(bin.trim_start_matches('/')).exists() {
                cases.push((name, Variant::args(&[bin, "--", "sleep", "3600"])));
            } else {
                res.notes
                    .push(format!("init: {name} skipped (not installed on the host)"));
            }
        }
        cases.push((
            "rrun init",
            Variant {
                annotations: vec![("rrun.init".into(), "true".into())],
                ..Variant::args(&["sleep", "3600"])
            },
        ));
        let mut running = Vec::new();
        for (name, v) in &cases {
            let Ok(c) = self.container(rt, "init", v) else {
                continue;
            };
            match self.create(rt, &c).and_then(|_| self.verb(rt, "start", &c)) {
                Ok(_) => running.push((*name, c)),
                Err(e) => {
                    res.fail(&rt.name, &format!("init {name}"), &e);
                    self.finish(rt, &c);
                }
            }
        }
        // Let each init reach its idle loop.
        thread::sleep(Duration::from_secs(1));
        let mut rows = Vec::new();
        for (name, c) in &running {
            let pid = c.pid().unwrap_or(0);
            let exe = fs::read_link(format!("/proc/{pid}/exe"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let exe_name = Path::new(exe.trim_end_matches(" (deleted)"))
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            let implemented = match *name {
                // rrun's init runs from a sealed memfd: "memfd:rrun-init".
                "rrun init" => exe_name.contains("rrun"),
                other => exe_name.starts_with(other),
            };
            let (pss, rss) = smaps_rollup(pid);
            rows.push((
                pid,
                proc::cpu_ticks(pid),
                InitRow {
                    name: name.to_string(),
                    implemented,
                    pid1_exe: exe_name,
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
            if !row.implemented {
                row.pss_kib = None;
                row.rss_kib = None;
                row.idle_cpu_ticks = None;
            }
            res.init.push(row);
        }
        for (_, c) in running {
            let _ = self.exec(rt, &["delete", "--force", &c.id]);
            let left = self.residue(rt, &c);
            res.leftover(&rt.name, left);
            self.finish(rt, &c);
        }
    }

    /// `rrun unpack` against `umoci unpack` on one locally built image.
    pub fn unpack(&self, rrun: &Path, res: &mut Results) {
        let Some(umoci) = runtime::which("umoci") else {
            res.notes
                .push("unpack: skipped (umoci not installed)".into());
            return;
        };
        let rrun_supported = proc::run(
            std::process::Command::new(rrun).args(["unpack", "--help"]),
            CMD_TIMEOUT,
        )
        .map(|o| o.ok())
        .unwrap_or(false);
        let layout = self.work.join("image");
        let src_desc = if self.params.image_src.is_empty() {
            "the bench busybox rootfs".to_owned()
        } else {
            self.params
                .image_src
                .iter()
                .map(|s| format!("/{s}"))
                .collect::<Vec<_>>()
                .join(" + ")
        };
        if let Err(e) = self.build_image(&umoci, &layout) {
            res.notes
                .push(format!("unpack: skipped, could not build the image ({e})"));
            return;
        }
        let image_bytes = dir_bytes(&layout.join("blobs"));
        let mut u = UnpackResult {
            image_bytes,
            image_src: src_desc,
            rrun_supported,
            umoci_s: vec![],
            umoci_rss_mib: vec![],
            rrun_s: vec![],
            rrun_rss_mib: vec![],
        };
        let layout_s = layout.to_string_lossy().into_owned();
        let dest = self.work.join("unpacked");
        for rep in 0..self.params.unpack_reps {
            let order: &[bool] = if rep % 2 == 0 {
                &[false, true]
            } else {
                &[true, false]
            };
            for &is_rrun in order {
                if stopped() {
                    return;
                }
                if is_rrun && !rrun_supported {
                    continue;
                }
                let _ = fs::remove_dir_all(&dest);
                let mut cmd = if is_rrun {
                    let mut c = std::process::Command::new(rrun);
                    c.arg("unpack")
                        .arg(format!("oci:{layout_s}:bench"))
                        .arg(&dest);
                    c
                } else {
                    let mut c = std::process::Command::new(&umoci);
                    c.args(["unpack", "--image", &format!("{layout_s}:bench")])
                        .arg(&dest);
                    c
                };
                let who = if is_rrun {
                    "rrun unpack"
                } else {
                    "umoci unpack"
                };
                match proc::run(&mut cmd, Duration::from_secs(600)) {
                    Ok(o) if o.ok() => {
                        let (t, r) = if is_rrun {
                            (&mut u.rrun_s, &mut u.rrun_rss_mib)
                        } else {
                            (&mut u.umoci_s, &mut u.umoci_rss_mib)
                        };
                        t.push(o.wall.as_secs_f64());
                        r.push(o.maxrss_kib as f64 / 1024.0);
                    }
                    Ok(o) => res.notes.push(format!("{who}: {}", o.reason())),
                    Err(e) => res.notes.push(format!("{who}: {e}")),
                }
            }
        }
        let _ = fs::remove_dir_all(&dest);
        let _ = fs::remove_dir_all(&layout);
        res.unpack = Some(u);
    }

    fn build_image(&self, umoci: &Path, layout: &Path) -> Result<(), String> {
        let _ = fs::remove_dir_all(layout);
        let layer = self.work.join("layer.tar");
        let mut tar = std::process::Command::new("tar");
        tar.arg("-cf").arg(&layer);
        if self.params.image_src.is_empty() {
            tar.arg("-C").arg(&self.rootfs).arg(".");
        } else {
            tar.args(["-C", "/"]).args(&self.params.image_src);
        }
        let t = Duration::from_secs(600);
        let l = layout.to_string_lossy();
        let img = format!("{l}:bench");
        let steps: Vec<std::process::Command> = {
            let mut init = std::process::Command::new(umoci);
            init.args(["init", "--layout", &l]);
            let mut new = std::process::Command::new(umoci);
            new.args(["new", "--image", &img]);
            let mut add = std::process::Command::new(umoci);
            add.args(["raw", "add-layer", "--image", &img]).arg(&layer);
            // A command, so that unpackers that write config.json have one.
            let mut cfg = std::process::Command::new(umoci);
            cfg.args(["config", "--image", &img, "--config.cmd", "sh"]);
            vec![tar, init, new, add, cfg]
        };
        for mut s in steps {
            // tar exits 1 for files that changed while read: still a layer.
            let o = proc::run(&mut s, t).map_err(|e| e.to_string())?;
            if o.code > 1 || (o.code == 1 && !format!("{s:?}").contains("\"tar\"")) {
                let _ = fs::remove_file(&layer);
                return Err(format!("{s:?}: {}", o.reason()));
            }
        }
        let _ = fs::remove_file(&layer);
        Ok(())
    }
}

pub fn leak_key(tag: &str, what: &str) -> &'static str {
    match (tag, what) {
        ("par", "failures") => "par_failures",
        ("par", _) => "par_leftovers",
        (_, "failures") => "parlim_failures",
        _ => "parlim_leftovers",
    }
}

pub fn smaps_rollup(pid: i32) -> (Option<u64>, Option<u64>) {
    let s = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    (field("Pss:"), field("Rss:"))
}

fn dir_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// The running kernel as (major, minor).
pub fn kernel_version() -> (u32, u32) {
    let r = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut it = r.trim().split(['.', '-']).map(|p| p.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}
