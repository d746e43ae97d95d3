//! Cgroups on a v1 (or hybrid) host: every `linux.resources` field checked
//! twice — the value in the container's cgroup files, read from the host, and
//! its effect inside the container — plus `update`, `pause`/`resume`, `ps`,
//! `events` and the removal of the cgroups by `delete`.
//!
//! The container's directory in a hierarchy is where runc puts a relative
//! cgroupsPath: the hierarchy's mount point + our own cgroup in it (from
//! /proc/self/cgroup) + the cgroupsPath. Pure cgroup v2 is covered by
//! scripts/vm/cgroup-tests.sh (run by tests/cgroups_v2.rs in a VM).

#[macro_use]
mod common;

use common::*;
use serde_json::{Value, json};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Our own cgroup directory in the hierarchy holding `file` (e.g.
/// "memory.limit_in_bytes"), if any v1 hierarchy has it.
fn own_cgroup_with(file: &str) -> Option<PathBuf> {
    cgroup_hierarchies()
        .into_iter()
        .map(|h| h.mountpoint.join(h.own.trim_start_matches('/')))
        .find(|d| d.join(file).exists() && !d.join("cgroup.controllers").exists())
}

/// True when `name` is a v1 controller of this process (/proc/self/cgroup).
fn v1_controller(name: &str) -> bool {
    fs::read_to_string("/proc/self/cgroup")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .any(|ctrls| ctrls.split(',').any(|c| c == name))
}

/// True when the host has the v1 memory controller (the hybrid layout this
/// file is written for).
fn v1_host() -> bool {
    own_cgroup_with("memory.limit_in_bytes").is_some()
}

/// Skip the test unless we are root on a host with v1 controllers.
macro_rules! require_v1 {
    () => {
        require!(is_root(), "needs root");
        require!(
            v1_host(),
            "no cgroup v1 memory hierarchy (pure v2 is covered by the VM tests)"
        );
    };
}

/// A 64 MiB memory hog (`tail` buffering /dev/zero) that marks itself the
/// OOM killer's first choice (raising one's own oom_score_adj needs no
/// privilege): under load the killer would otherwise sometimes pick the
/// shell that reports the result.
const HOG: &str =
    "head -c 64m /dev/zero | sh -c 'echo 1000 > /proc/self/oom_score_adj; exec tail'; echo rc=$?";

/// The container's cgroup directory in the v1 hierarchy that has `probe`
/// (the hybrid layout's cgroup2 hierarchy also has cpu.stat and the like:
/// it is recognised by its cgroup.controllers file and left out).
#[track_caller]
fn cg_dir(c: &Container, probe: &str) -> PathBuf {
    let found: Vec<PathBuf> = cgroup_dirs(&c.bundle.cgroups_path)
        .into_iter()
        .filter(|d| d.join(probe).exists() && !d.join("cgroup.controllers").exists())
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one cgroup of {} with {probe}, found {found:?} (candidates {:#?})",
        c.bundle.cgroups_path,
        cgroup_dirs(&c.bundle.cgroups_path)
    );
    found.into_iter().next().unwrap()
}

/// Trimmed content of the container's cgroup file `file`.
#[track_caller]
fn cg_read(c: &Container, file: &str) -> String {
    let p = cg_dir(c, file).join(file);
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

#[track_caller]
fn cg_u64(c: &Container, file: &str) -> u64 {
    let s = cg_read(c, file);
    s.parse()
        .unwrap_or_else(|e| panic!("{file}: {s:?} is not a number: {e}"))
}

/// Value of `key` in a "key value" per line cgroup file.
#[track_caller]
fn cg_kv(c: &Container, file: &str, key: &str) -> u64 {
    let s = cg_read(c, file);
    s.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("{key} missing in {file}:\n{s}"))
}

/// Pids in the cgroup.procs of `dir`.
fn procs(dir: &Path) -> Vec<i32> {
    let mut v: Vec<i32> = fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    v.sort();
    v
}

/// `linux.resources.KEY = value` (keeps the default device rules).
fn resource(b: Bundle, key: &str, value: Value) -> Bundle {
    b.with(|c| c["linux"]["resources"][key] = value)
}

/// Created, started and running.
#[track_caller]
fn running(b: Bundle) -> Container {
    let c = Container::new(b);
    c.create().ok();
    c.start().ok();
    c.wait_status("running");
    c
}

/// A container whose init just sleeps.
#[track_caller]
fn sleeper(b: Bundle) -> Container {
    running(b.args(&["sleep", "60"]))
}

/// `exec ID COMMAND...` in the foreground.
#[track_caller]
fn exec(c: &Container, command: &[&str]) -> Output {
    let mut v = vec!["exec", c.id.as_str()];
    v.extend_from_slice(command);
    c.rrun(&v)
}

/// A background runtime command whose stdout can be read while it runs.
struct Streaming {
    child: std::process::Child,
    out: PathBuf,
    err: PathBuf,
    _dir: tempfile::TempDir,
}

impl Streaming {
    fn spawn(mut cmd: Command) -> Streaming {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("stdout");
        let err = dir.path().join("stderr");
        cmd.stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap());
        let child = cmd.spawn().expect("spawn streaming command");
        Streaming {
            child,
            out,
            err,
            _dir: dir,
        }
    }

    fn stdout(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Thaws a v1 freezer cgroup when dropped (so a failing pause test never
/// leaves a frozen container that `delete --force` cannot kill).
struct Thaw(PathBuf);

impl Drop for Thaw {
    fn drop(&mut self) {
        let _ = fs::write(self.0.join("freezer.state"), "THAWED");
    }
}

/// Block devices of the host as (name, major, minor), real disks first.
fn block_device() -> Option<(String, u32, u32)> {
    let mut devs: Vec<(String, u32, u32)> = fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let dev = fs::read_to_string(e.path().join("dev")).ok()?;
            let (ma, mi) = dev.trim().split_once(':')?;
            Some((name, ma.parse().ok()?, mi.parse().ok()?))
        })
        .collect();
    // Prefer a real disk over loop/zram/ram devices.
    devs.sort_by_key(|(n, _, _)| {
        (
            ["loop", "zram", "ram"].iter().any(|p| n.starts_with(p)),
            n.clone(),
        )
    });
    devs.into_iter().next()
}

// ---------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------

#[test]
fn memory_limit_reservation_swappiness_and_oom_kill() {
    require_v1!();
    let limit = 16 * MIB;
    let mut mem = json!({ "limit": limit, "reservation": 8 * MIB, "swappiness": 10 });
    // Without memsw the hog could be swapped out instead of killed; with it,
    // limit memory+swap to the same 16 MiB.
    let memsw = own_cgroup_with("memory.memsw.limit_in_bytes").is_some();
    if memsw {
        mem["swap"] = json!(limit);
    }
    let c = sleeper(resource(Bundle::new(), "memory", mem));

    // (a) the files, from the host.
    assert_eq!(cg_u64(&c, "memory.limit_in_bytes"), limit);
    assert_eq!(cg_u64(&c, "memory.soft_limit_in_bytes"), 8 * MIB);
    assert_eq!(cg_u64(&c, "memory.swappiness"), 10);
    if memsw {
        assert_eq!(cg_u64(&c, "memory.memsw.limit_in_bytes"), limit);
    }

    // (b) a 64 MiB hog is OOM-killed; the container's init survives.
    let o = exec(&c, &["sh", "-c", HOG]);
    let killed = o.stdout.contains("rc=137");
    let oom_kills = cg_kv(&c, "memory.oom_control", "oom_kill");
    assert!(
        killed && oom_kills > 0,
        "64 MiB hog under a 16 MiB limit was not OOM-killed (oom_kill {oom_kills}):\n{o}"
    );
    // Something well below the limit runs fine.
    let o = exec(
        &c,
        &[
            "sh",
            "-c",
            "head -c 2m /dev/zero | tail | wc -c; echo rc=$?",
        ],
    );
    o.ok();
    assert!(
        o.stdout.contains("rc=0"),
        "2 MiB under the limit failed:\n{o}"
    );
    assert_eq!(c.status(), "running");

    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn memory_swap_is_memory_plus_swap() {
    require_v1!();
    require!(
        own_cgroup_with("memory.memsw.limit_in_bytes").is_some(),
        "no memory.memsw.* files (kernel without swap accounting)"
    );
    let c = sleeper(resource(
        Bundle::new(),
        "memory",
        json!({ "limit": 32 * MIB, "swap": 48 * MIB }),
    ));
    assert_eq!(cg_u64(&c, "memory.limit_in_bytes"), 32 * MIB);
    assert_eq!(cg_u64(&c, "memory.memsw.limit_in_bytes"), 48 * MIB);
    // swap -1: unlimited memory+swap.
    drop(c);
    let c = sleeper(resource(
        Bundle::new(),
        "memory",
        json!({ "limit": 32 * MIB, "swap": -1 }),
    ));
    assert_eq!(cg_u64(&c, "memory.limit_in_bytes"), 32 * MIB);
    assert!(
        cg_u64(&c, "memory.memsw.limit_in_bytes") > 1 << 40,
        "swap -1 should leave memsw unlimited, got {}",
        cg_read(&c, "memory.memsw.limit_in_bytes")
    );
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn memory_swap_below_limit_is_refused() {
    require_v1!();
    require!(
        own_cgroup_with("memory.memsw.limit_in_bytes").is_some(),
        "no memory.memsw.* files (kernel without swap accounting)"
    );
    let c = Container::new(resource(
        Bundle::new().args(&["sleep", "60"]),
        "memory",
        json!({ "limit": 32 * MIB, "swap": 16 * MIB }),
    ));
    let o = c.create();
    o.failed().stderr_is_short_error();
    drop(c);
}

// ---------------------------------------------------------------------------
// Pids
// ---------------------------------------------------------------------------

#[test]
fn pids_limit_stops_a_fork_loop() {
    require_v1!();
    require!(v1_controller("pids"), "no pids controller");
    let c = running(resource(
        Bundle::new().sh(
            "(for i in $(seq 20); do sleep 30 & done; echo forked) 2>&1; echo loop-done; \
             exec sleep 60",
        ),
        "pids",
        json!({ "limit": 10 }),
    ));
    assert_eq!(cg_read(&c, "pids.max"), "10");
    let out = poll(STATUS_TIMEOUT, || {
        let (o, _) = c.output();
        o.contains("loop-done").then_some(o)
    })
    .unwrap_or_else(|| panic!("fork loop did not finish: {:?}", c.output()));
    assert!(
        out.contains("fork") || out.contains("Resource temporarily unavailable"),
        "no fork failed under pids.max 10: {out:?}"
    );
    let current = cg_u64(&c, "pids.current");
    assert!(
        (2..=10).contains(&current),
        "pids.current {current} outside 2..=10"
    );
    assert!(
        cg_kv(&c, "pids.events", "max") > 0,
        "pids.events max stays 0"
    );
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

// ---------------------------------------------------------------------------
// CPU and cpuset
// ---------------------------------------------------------------------------

#[test]
fn cpu_shares_quota_period_throttle_a_busy_loop() {
    require_v1!();
    require!(v1_controller("cpu"), "no cpu controller with CFS bandwidth");
    let c = running(resource(
        Bundle::new().sh("while :; do :; done"),
        "cpu",
        json!({ "shares": 512, "quota": 20000, "period": 100000 }),
    ));
    assert_eq!(cg_read(&c, "cpu.shares"), "512");
    assert_eq!(cg_read(&c, "cpu.cfs_quota_us"), "20000");
    assert_eq!(cg_read(&c, "cpu.cfs_period_us"), "100000");

    // A busy loop limited to 20% of one CPU: throttled, and well under one
    // CPU-second of usage in 2 s of wall time.
    let t = Instant::now();
    let start = v1_controller("cpuacct").then(|| cg_u64(&c, "cpuacct.usage"));
    std::thread::sleep(Duration::from_secs(2));
    let wall = t.elapsed();
    assert!(
        cg_kv(&c, "cpu.stat", "nr_throttled") > 0,
        "busy loop never throttled: {}",
        cg_read(&c, "cpu.stat")
    );
    if let Some(start) = start {
        let used = cg_u64(&c, "cpuacct.usage") - start;
        let max = wall.as_nanos() as u64 * 2 / 5; // 40%, twice the quota
        assert!(
            used < max,
            "busy loop used {used} ns of CPU in {wall:?} under a 20% quota"
        );
    }
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn cpuset_cpus_and_mems() {
    require_v1!();
    require!(v1_controller("cpuset"), "no cpuset controller");
    let c = sleeper(resource(
        Bundle::new(),
        "cpu",
        json!({ "cpus": "0", "mems": "0" }),
    ));
    assert_eq!(cg_read(&c, "cpuset.cpus"), "0");
    assert_eq!(cg_read(&c, "cpuset.mems"), "0");
    let o = exec(&c, &["cat", "/proc/self/status"]);
    o.ok();
    let allowed = o
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(str::trim)
        .unwrap_or_default();
    assert_eq!(allowed, "0", "Cpus_allowed_list inside:\n{o}");
    let allowed = o
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Mems_allowed_list:"))
        .map(str::trim)
        .unwrap_or_default();
    assert_eq!(allowed, "0", "Mems_allowed_list inside:\n{o}");
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

// ---------------------------------------------------------------------------
// Block I/O
// ---------------------------------------------------------------------------

#[test]
fn blkio_weight() {
    require_v1!();
    require!(
        own_cgroup_with("blkio.weight").is_some(),
        "no blkio.weight file (the host's I/O schedulers have no CFQ/BFQ weights)"
    );
    let c = sleeper(resource(Bundle::new(), "blockIO", json!({ "weight": 300 })));
    assert_eq!(cg_read(&c, "blkio.weight"), "300");
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

/// A loop device over a 4 MiB temp file, detached on drop.
struct LoopDev {
    path: String,
    major: u32,
    minor: u32,
    _dir: tempfile::TempDir,
}

impl LoopDev {
    fn new() -> Option<LoopDev> {
        if !have_cmd("losetup") {
            return None;
        }
        let dir = tempfile::tempdir().ok()?;
        let file = dir.path().join("disk.img");
        fs::write(&file, vec![7u8; 4 * MIB as usize]).ok()?;
        let o = sh(&format!("losetup -f --show {}", file.display()));
        if !o.success() {
            return None;
        }
        let path = o.stdout.trim().to_string();
        let name = path.rsplit('/').next()?.to_string();
        let mut lo = LoopDev {
            path,
            major: 0,
            minor: 0,
            _dir: dir,
        };
        // Dropping `lo` from here on detaches the device again.
        let dev = fs::read_to_string(format!("/sys/block/{name}/dev")).ok()?;
        let (ma, mi) = dev.trim().split_once(':')?;
        lo.major = ma.parse().ok()?;
        lo.minor = mi.parse().ok()?;
        Some(lo)
    }
}

impl Drop for LoopDev {
    fn drop(&mut self) {
        let _ = Command::new("losetup")
            .arg("-d")
            .arg(&self.path)
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn blkio_throttle_files() {
    require_v1!();
    require!(
        own_cgroup_with("blkio.throttle.read_bps_device").is_some(),
        "no blkio throttle files"
    );
    let Some((_, major, minor)) = block_device() else {
        require!(false, "no block device in /sys/block");
        return;
    };
    let dev = |rate: u64| json!([{ "major": major, "minor": minor, "rate": rate }]);
    let c = sleeper(resource(
        Bundle::new(),
        "blockIO",
        json!({
            "throttleReadBpsDevice": dev(MIB),
            "throttleWriteBpsDevice": dev(2 * MIB),
            "throttleReadIOPSDevice": dev(500),
            "throttleWriteIOPSDevice": dev(600),
        }),
    ));
    let want = |v: u64| format!("{major}:{minor} {v}");
    assert_eq!(cg_read(&c, "blkio.throttle.read_bps_device"), want(MIB));
    assert_eq!(
        cg_read(&c, "blkio.throttle.write_bps_device"),
        want(2 * MIB)
    );
    assert_eq!(cg_read(&c, "blkio.throttle.read_iops_device"), want(500));
    assert_eq!(cg_read(&c, "blkio.throttle.write_iops_device"), want(600));
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn blkio_read_throttle_slows_direct_reads() {
    require_v1!();
    require!(
        own_cgroup_with("blkio.throttle.read_bps_device").is_some(),
        "no blkio throttle files"
    );
    let lo = LoopDev::new();
    require!(lo.is_some(), "cannot set up a loop device (losetup)");
    let lo = lo.unwrap();
    let (major, minor) = (lo.major, lo.minor);
    let b = resource(
        Bundle::new(),
        "blockIO",
        json!({ "throttleReadBpsDevice": [{ "major": major, "minor": minor, "rate": MIB }] }),
    )
    .with(|c| {
        c["linux"]["devices"] = json!([{
            "path": "/dev/testdisk", "type": "b", "major": major, "minor": minor,
            "fileMode": 0o600, "uid": 0, "gid": 0
        }]);
        c["linux"]["resources"]["devices"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "allow": true, "type": "b", "major": major, "minor": minor, "access": "r" }));
    });
    let c = sleeper(b);
    assert_eq!(
        cg_read(&c, "blkio.throttle.read_bps_device"),
        format!("{major}:{minor} {MIB}")
    );
    // 2 MiB of direct reads at 1 MiB/s take about two seconds.
    let t = Instant::now();
    let o = exec(
        &c,
        &[
            "dd",
            "if=/dev/testdisk",
            "of=/dev/null",
            "bs=64k",
            "count=32",
            "iflag=direct",
        ],
    );
    let took = t.elapsed();
    o.ok();
    assert!(
        took >= Duration::from_millis(900),
        "2 MiB of direct reads at 1 MiB/s took only {took:?}:\n{o}"
    );
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
    drop(lo);
}

// ---------------------------------------------------------------------------
// Hugetlb
// ---------------------------------------------------------------------------

#[test]
fn hugetlb_limit() {
    require_v1!();
    let Some(own) = cgroup_hierarchies()
        .into_iter()
        .map(|h| h.mountpoint.join(h.own.trim_start_matches('/')))
        .find(|d| {
            fs::read_dir(d)
                .map(|rd| {
                    rd.flatten()
                        .any(|e| e.file_name().to_string_lossy().starts_with("hugetlb."))
                })
                .unwrap_or(false)
        })
    else {
        require!(false, "the hugetlb controller is not mounted");
        return;
    };
    let size = fs::read_dir(&own)
        .unwrap()
        .flatten()
        .find_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_prefix("hugetlb.")?
                .strip_suffix(".limit_in_bytes")
                .map(str::to_string)
        })
        .expect("a hugetlb.<size>.limit_in_bytes file");
    let c = sleeper(resource(
        Bundle::new(),
        "hugepageLimits",
        json!([{ "pageSize": size, "limit": 4 * MIB }]),
    ));
    let file = format!("hugetlb.{size}.limit_in_bytes");
    assert_eq!(cg_u64(&c, &file), 4 * MIB);
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

// ---------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------

/// /dev/mem (c 1:1) and /dev/testloop (b 7:0) nodes in the container; the
/// cgroup denies everything but the runtime's defaults plus `extra_rules`.
fn devices_bundle(extra_rules: &[Value]) -> Bundle {
    let b = Bundle::new().with(|c| {
        c["linux"]["devices"] = json!([
            { "path": "/dev/mem", "type": "c", "major": 1, "minor": 1,
              "fileMode": 0o640, "uid": 0, "gid": 0 },
            { "path": "/dev/testloop", "type": "b", "major": 7, "minor": 0,
              "fileMode": 0o600, "uid": 0, "gid": 0 }
        ]);
        // Only the cgroup may stand in the way of opening /dev/mem.
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SYS_RAWIO"));
        }
    });
    b.with(|c| {
        let rules = c["linux"]["resources"]["devices"].as_array_mut().unwrap();
        rules.extend(extra_rules.iter().cloned());
    })
}

#[test]
fn denied_devices_cannot_be_opened() {
    require_v1!();
    let c = sleeper(devices_bundle(&[]));
    // The nodes exist...
    exec(&c, &["ls", "-l", "/dev/mem", "/dev/testloop"]).ok();
    // ...but the cgroup refuses to open them.
    for dev in ["/dev/mem", "/dev/testloop"] {
        let o = exec(&c, &["head", "-c1", dev]);
        o.failed();
        assert!(
            o.stderr.contains("Operation not permitted"),
            "opening denied {dev} should fail with EPERM:\n{o}"
        );
    }
    // The default devices work.
    let o = exec(
        &c,
        &[
            "sh",
            "-c",
            "echo x > /dev/null && head -c3 /dev/zero | wc -c",
        ],
    );
    o.ok();
    assert_eq!(o.stdout.trim(), "3", "{o}");
    let list = cg_read(&c, "devices.list");
    assert!(
        !list.lines().any(|l| l == "a *:* rwm"),
        "devices.list allows everything:\n{list}"
    );
    for rule in ["c 1:1", "b 7:0"] {
        assert!(
            !list.lines().any(|l| l.starts_with(rule)),
            "devices.list allows {rule}:\n{list}"
        );
    }
    for rule in ["c 1:3 rwm", "c 1:5 rwm"] {
        assert!(
            list.lines().any(|l| l == rule),
            "devices.list lacks default {rule}:\n{list}"
        );
    }
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

/// A cgroup that already has exactly the device rules the config asks for
/// (a reused or pre-made cgroup) gets no device write at all: rules are
/// applied as the difference from what the cgroup has (runc's emulator),
/// never as "deny everything, then allow", which would cut a process
/// already in the cgroup off /dev/null for a moment.
#[test]
fn device_rules_already_in_place_are_not_rewritten() {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    require_v1!();
    require!(!is_runc(), "runc 1.1 writes the device rules from scratch");
    let Some(own) = own_cgroup_with("devices.list") else {
        skip("no v1 devices hierarchy");
        return;
    };
    let b = Bundle::new().args(&["sleep", "60"]);
    let dir = own.join(&b.cgroups_path);
    struct Rm(PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            rmdir_cgroup_tree(&self.0);
        }
    }
    fs::create_dir(&dir).unwrap();
    let _rm = Rm(dir.clone());
    // What rrun's defaults come to: deny all, then the default devices.
    fs::write(dir.join("devices.deny"), "a").unwrap();
    for r in [
        "c *:* m",
        "b *:* m",
        "c 1:3 rwm",
        "c 1:8 rwm",
        "c 1:7 rwm",
        "c 5:0 rwm",
        "c 1:5 rwm",
        "c 1:9 rwm",
        "c 5:1 rwm",
        "c 136:* rwm",
        "c 5:2 rwm",
        "c 10:200 rwm",
    ] {
        fs::write(dir.join("devices.allow"), r).unwrap();
    }
    let before = fs::read_to_string(dir.join("devices.list")).unwrap();
    let ino = Inotify::init(InitFlags::IN_NONBLOCK).unwrap();
    for f in ["devices.allow", "devices.deny"] {
        ino.add_watch(&dir.join(f), AddWatchFlags::IN_MODIFY)
            .unwrap();
    }
    // The config's rules: deny all, plus a deny of a device never allowed
    // (nothing to write for it either).
    let b = b.with(|c| {
        c["linux"]["resources"]["devices"] = json!([
            { "allow": false, "access": "rwm" },
            { "allow": false, "type": "c", "major": 10, "minor": 229, "access": "rwm" }
        ]);
    });
    let c = running(b);
    let events = ino.read_events().unwrap_or_default();
    assert!(
        events.is_empty(),
        "{} device rule writes into a cgroup that had the rules already",
        events.len()
    );
    assert_eq!(
        fs::read_to_string(dir.join("devices.list")).unwrap(),
        before
    );
    exec(&c, &["sh", "-c", "echo x > /dev/null"]).ok();
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
}

/// Kubernetes-style nesting on v1: the container's cpuset cgroup sits under
/// levels that exist already but were made without cpus/mems (a new v1
/// cpuset starts empty and refuses tasks with ENOSPC). Every empty level on
/// the way is filled from its parent, as runc does.
#[test]
fn nested_cpuset_under_empty_existing_levels() {
    require_v1!();
    let Some(own) = own_cgroup_with("cpuset.cpus") else {
        skip("no v1 cpuset hierarchy");
        return;
    };
    let top = unique_name();
    // Every hierarchy's `top` tree goes, also where a runtime (runc) left
    // the levels it made above the container's own cgroup.
    struct Rm(Vec<PathBuf>);
    impl Drop for Rm {
        fn drop(&mut self) {
            for d in &self.0 {
                rmdir_cgroup_tree(d);
            }
        }
    }
    let mut dirs = cgroup_dirs(&top);
    dirs.push(own.join(&top));
    let _rm = Rm(dirs);
    fs::create_dir_all(own.join(&top).join("pod")).unwrap();
    assert_eq!(
        fs::read_to_string(own.join(&top).join("pod/cpuset.cpus"))
            .unwrap()
            .trim(),
        "",
        "a new v1 cpuset is expected to start empty"
    );
    let cg = format!("{top}/pod/ctr");
    let mut b = Bundle::new().args(&["sleep", "60"]);
    b.cgroups_path = cg.clone();
    let b = b.with(|c| c["linux"]["cgroupsPath"] = json!(cg));
    let c = running(b);
    let want = fs::read_to_string(own.join("cpuset.cpus")).unwrap();
    for level in ["", "/pod", "/pod/ctr"] {
        let got = fs::read_to_string(own.join(format!("{top}{level}/cpuset.cpus"))).unwrap();
        assert_eq!(got.trim(), want.trim(), "cpuset.cpus of {top}{level}");
    }
    let tasks = fs::read_to_string(own.join(&cg).join("tasks")).unwrap();
    assert!(
        tasks.lines().any(|l| l.trim() == c.pid().to_string()),
        "init {} not in the nested cpuset: {tasks:?}",
        c.pid()
    );
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
}

#[test]
fn allowed_device_can_be_opened() {
    require_v1!();
    let c = sleeper(devices_bundle(&[
        json!({ "allow": true, "type": "b", "major": 7, "minor": 0, "access": "r" }),
        json!({ "allow": true, "type": "c", "major": 1, "minor": 1, "access": "r" }),
    ]));
    let list = cg_read(&c, "devices.list");
    for rule in ["b 7:0 r", "c 1:1 r"] {
        assert!(
            list.lines().any(|l| l == rule),
            "devices.list lacks {rule}:\n{list}"
        );
    }
    // An unbound loop device reads as empty: open works.
    let o = exec(&c, &["sh", "-c", "head -c1 /dev/testloop | wc -c"]);
    o.ok();
    // /dev/mem: the cgroup lets the open through; the kernel may still lack
    // the driver (CONFIG_DEVMEM), but it must not be EPERM.
    let o = exec(&c, &["head", "-c1", "/dev/mem"]);
    assert!(
        !o.stderr.contains("Operation not permitted"),
        "allowed /dev/mem open refused by the cgroup:\n{o}"
    );
    // Write access was not granted.
    let o = exec(&c, &["sh", "-c", "echo x > /dev/testloop"]);
    o.failed();
    assert!(
        o.stderr.contains("Operation not permitted") || o.stderr.contains("ermission"),
        "{o}"
    );
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

// ---------------------------------------------------------------------------
// update
// ---------------------------------------------------------------------------

/// runc 1.1 spells the flag `--cpu-share`; rrun documents `--cpu-shares`.
fn cpu_shares_flag() -> &'static str {
    if is_runc() {
        "--cpu-share"
    } else {
        "--cpu-shares"
    }
}

/// A running sleeper with a memory, pids and cpu configuration to update.
fn updatable() -> Container {
    sleeper(Bundle::new().with(|c| {
        let r = &mut c["linux"]["resources"];
        r["memory"] = json!({ "limit": 32 * MIB });
        r["pids"] = json!({ "limit": 20 });
        r["cpu"] = json!({ "shares": 512, "quota": 20000, "period": 100000 });
    }))
}

#[test]
fn update_flags_change_the_files() {
    require_v1!();
    let c = updatable();
    assert_eq!(cg_u64(&c, "memory.limit_in_bytes"), 32 * MIB);
    c.rrun(&[
        "update",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        "--cpu-quota",
        "30000",
        "--cpu-period",
        "200000",
        cpu_shares_flag(),
        "256",
        &c.id,
    ])
    .ok();
    assert_eq!(cg_u64(&c, "memory.limit_in_bytes"), 64 * MIB);
    assert_eq!(cg_read(&c, "pids.max"), "50");
    assert_eq!(cg_read(&c, "cpu.cfs_quota_us"), "30000");
    assert_eq!(cg_read(&c, "cpu.cfs_period_us"), "200000");
    assert_eq!(cg_read(&c, "cpu.shares"), "256");

    if v1_controller("cpuset") {
        c.rrun(&["update", "--cpuset-cpus", "0", &c.id]).ok();
        assert_eq!(cg_read(&c, "cpuset.cpus"), "0");
        let o = exec(&c, &["grep", "Cpus_allowed_list", "/proc/self/status"]);
        o.ok();
        assert!(o.stdout.trim().ends_with("\t0"), "{o}");
    }
    if own_cgroup_with("blkio.weight").is_some() {
        c.rrun(&["update", "--blkio-weight", "300", &c.id]).ok();
        assert_eq!(cg_read(&c, "blkio.weight"), "300");
    } else {
        skip("no blkio.weight file: update --blkio-weight not checked");
    }
    // Only the flags given change: a pids update keeps the memory limit.
    c.rrun(&["update", "--pids-limit", "40", &c.id]).ok();
    assert_eq!(cg_read(&c, "pids.max"), "40");
    assert_eq!(cg_u64(&c, "memory.limit_in_bytes"), 64 * MIB);
    assert_eq!(cg_read(&c, "cpu.shares"), "256");
    // The effect: a new limit below what the updated one allowed is felt.
    c.rrun(&["update", "--pids-limit", "3", &c.id]).ok();
    let o = exec(
        &c,
        &[
            "sh",
            "-c",
            "for i in 1 2 3 4 5; do sleep 5 & done 2>&1; echo end",
        ],
    );
    assert!(
        o.stdout.contains("fork")
            || o.stderr.contains("fork")
            || o.stderr.contains("Resource temporarily unavailable")
            || !o.success(),
        "5 forks under an updated pids.max 3 all succeeded:\n{o}"
    );
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn update_raises_memory_past_a_memsw_limit_and_takes_minus_one() {
    require_v1!();
    require!(
        own_cgroup_with("memory.memsw.limit_in_bytes").is_some(),
        "no swap accounting (memory.memsw.*): the memory+swap ordering cannot be checked"
    );
    let c = sleeper(resource(
        Bundle::new(),
        "memory",
        json!({ "limit": 32 * MIB, "swap": 64 * MIB }),
    ));
    // Raising both: the kernel refuses a limit above the current memsw, so
    // memsw has to be written first.
    c.rrun(&["update", "--memory", "128m", "--memory-swap", "256m", &c.id])
        .ok();
    assert_eq!(cg_u64(&c, "memory.limit_in_bytes"), 128 * MIB);
    assert_eq!(cg_u64(&c, "memory.memsw.limit_in_bytes"), 256 * MIB);
    // Lowering both: the limit first.
    c.rrun(&["update", "--memory", "48m", "--memory-swap", "96m", &c.id])
        .ok();
    assert_eq!(cg_u64(&c, "memory.limit_in_bytes"), 48 * MIB);
    assert_eq!(cg_u64(&c, "memory.memsw.limit_in_bytes"), 96 * MIB);
    // -1 is "unlimited" for every size flag, as in runc.
    c.rrun(&["update", "--memory", "-1", "--memory-swap", "-1", &c.id])
        .ok();
    assert!(cg_u64(&c, "memory.limit_in_bytes") > 1 << 50);
    assert!(cg_u64(&c, "memory.memsw.limit_in_bytes") > 1 << 50);
    c.rrun(&["update", "--pids-limit", "-1", "--cpu-quota", "-1", &c.id])
        .ok();
    assert_eq!(cg_read(&c, "pids.max"), "max");
    assert_eq!(cg_read(&c, "cpu.cfs_quota_us"), "-1");
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

/// `exec --cgroup` (v1): `CONTROLLER[,CONTROLLER]:PATH` joins existing
/// sub-cgroups of those hierarchies only; an unknown controller, a path out
/// of the container's cgroup and a missing sub-cgroup are errors, never a
/// silent exec in the container's own cgroup.
#[test]
fn exec_into_v1_sub_cgroups() {
    require_v1!();
    let c = sleeper(Bundle::new());
    let (mem, pids) = (cg_dir(&c, "memory.limit_in_bytes"), cg_dir(&c, "pids.max"));
    fs::create_dir(mem.join("sub")).unwrap();
    fs::create_dir(pids.join("sub")).unwrap();
    let line = |out: &str, ctrl: &str| {
        out.lines()
            .find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|c| c.split(',').any(|x| x == ctrl))
            })
            .map(|l| l.rsplit(':').next().unwrap().to_string())
            .unwrap_or_else(|| panic!("no {ctrl} line in {out}"))
    };
    let o = exec_cg(&c, &["--cgroup", "memory:sub"]);
    o.ok();
    assert!(line(&o.stdout, "memory").ends_with("/sub"), "{o}");
    assert!(!line(&o.stdout, "pids").ends_with("/sub"), "{o}");
    let o = exec_cg(&c, &["--cgroup", "memory,pids:sub"]);
    o.ok();
    assert!(line(&o.stdout, "memory").ends_with("/sub"), "{o}");
    assert!(line(&o.stdout, "pids").ends_with("/sub"), "{o}");
    for (flag, words) in [
        ("memory:nosub", &["nosub"][..]),
        ("nosuchcontroller:sub", &["nosuchcontroller"]),
        ("memory:../..", &["../.."]),
    ] {
        exec_cg(&c, &["--cgroup", flag])
            .failed()
            .stderr_mentions(words);
    }
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete_force().ok();
    for d in [&mem, &pids] {
        rmdir_cgroup_tree(d);
    }
}

fn exec_cg(c: &Container, flags: &[&str]) -> Output {
    let mut v = vec!["exec"];
    v.extend_from_slice(flags);
    v.extend_from_slice(&[c.id.as_str(), "cat", "/proc/self/cgroup"]);
    c.rrun(&v)
}

#[test]
fn update_accepts_runcs_cpu_share_spelling() {
    require_v1!();
    // runc 1.1's flag is `--cpu-share`; a drop-in must take it.
    let c = updatable();
    c.rrun(&["update", "--cpu-share", "128", &c.id]).ok();
    assert_eq!(cg_read(&c, "cpu.shares"), "128");
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn update_resources_file_and_stdin() {
    require_v1!();
    let c = updatable();
    let f = c.bundle.file("resources.json");
    fs::write(
        &f,
        json!({
            "memory": { "limit": 48 * MIB },
            "cpu": { "shares": 300, "quota": 40000, "period": 100000 },
            "pids": { "limit": 33 }
        })
        .to_string(),
    )
    .unwrap();
    let fa = f.to_string_lossy().into_owned();
    c.rrun(&["update", "--resources", &fa, &c.id]).ok();
    assert_eq!(cg_u64(&c, "memory.limit_in_bytes"), 48 * MIB);
    assert_eq!(cg_read(&c, "cpu.shares"), "300");
    assert_eq!(cg_read(&c, "cpu.cfs_quota_us"), "40000");
    assert_eq!(cg_read(&c, "pids.max"), "33");

    let o = run_with_stdin(
        c.cmd(&["update", "--resources", "-", &c.id]),
        json!({ "memory": { "limit": 40 * MIB }, "pids": { "limit": 22 } }).to_string(),
    );
    o.ok();
    assert_eq!(cg_u64(&c, "memory.limit_in_bytes"), 40 * MIB);
    assert_eq!(cg_read(&c, "pids.max"), "22");

    // Invalid JSON is an error and changes nothing.
    let o = run_with_stdin(c.cmd(&["update", "--resources", "-", &c.id]), "{ nope");
    o.failed().stderr_is_short_error();
    assert_eq!(cg_read(&c, "pids.max"), "22");
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn update_of_a_stopped_container_fails() {
    require_v1!();
    let c = Container::new(Bundle::new().sh("exit 0"));
    c.create().ok();
    c.start().ok();
    c.wait_status("stopped");
    let o = c.rrun(&["update", "--pids-limit", "5", &c.id]);
    o.failed().stderr_is_short_error();
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn update_with_a_bad_memory_size_fails() {
    require_v1!();
    let c = updatable();
    for bad in ["12xyz", "lots", "-5m"] {
        let o = c.rrun(&["update", "--memory", bad, &c.id]);
        o.failed().stderr_is_short_error();
    }
    assert_eq!(cg_u64(&c, "memory.limit_in_bytes"), 32 * MIB);
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

// ---------------------------------------------------------------------------
// pause / resume
// ---------------------------------------------------------------------------

#[test]
fn pause_freezes_and_resume_thaws() {
    require_v1!();
    require!(v1_controller("freezer"), "no freezer controller");
    let dir = tempfile::tempdir().unwrap();
    let c = running(
        Bundle::new()
            .bind_mount(dir.path(), "/mnt", &["rbind", "rw"])
            .sh("while true; do echo x >> /mnt/c; done"),
    );
    let counter = dir.path().join("c");
    let size = || fs::metadata(&counter).map(|m| m.len()).unwrap_or(0);
    assert!(
        poll(STATUS_TIMEOUT, || (size() > 0).then_some(())).is_some(),
        "the counter never started"
    );
    let _thaw = Thaw(cg_dir(&c, "freezer.state"));

    c.rrun(&["pause", &c.id]).ok();
    assert_eq!(c.status(), "paused");
    assert_eq!(cg_read(&c, "freezer.state"), "FROZEN");
    let frozen = size();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(size(), frozen, "the counter grew while paused");

    // Pausing twice, or exec'ing into a paused container, fails.
    c.rrun(&["pause", &c.id]).failed().stderr_is_short_error();

    c.rrun(&["resume", &c.id]).ok();
    assert_eq!(c.status(), "running");
    assert_eq!(cg_read(&c, "freezer.state"), "THAWED");
    assert!(
        poll(STATUS_TIMEOUT, || (size() > frozen).then_some(())).is_some(),
        "the counter did not grow after resume"
    );
    // Resuming a running container fails.
    c.rrun(&["resume", &c.id]).failed().stderr_is_short_error();

    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn pause_and_resume_need_the_right_state() {
    require_v1!();
    let c = Container::new(Bundle::new().args(&["sleep", "60"]));
    c.create().ok();
    // created: nothing to resume; pausing is refused (not running).
    c.rrun(&["resume", &c.id]).failed().stderr_is_short_error();
    if is_runc() {
        skip("runc 1.1 pauses a created container too: pause of created not checked");
    } else {
        c.rrun(&["pause", &c.id]).failed().stderr_is_short_error();
    }
    assert_eq!(c.status(), "created");
    c.start().ok();
    c.wait_status("running");
    c.kill("KILL").ok();
    c.wait_status("stopped");
    // stopped: neither.
    c.rrun(&["pause", &c.id]).failed().stderr_is_short_error();
    c.rrun(&["resume", &c.id]).failed().stderr_is_short_error();
    // unknown container: neither.
    c.rrun(&["pause", "no-such-container-xyz"])
        .failed()
        .stderr_is_short_error();
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn delete_force_of_a_paused_container() {
    require_v1!();
    let c = sleeper(Bundle::new());
    let _thaw = Thaw(cg_dir(&c, "freezer.state"));
    c.rrun(&["pause", &c.id]).ok();
    assert_eq!(c.status(), "paused");
    // A plain delete refuses a paused container.
    c.delete().failed();
    let t = Instant::now();
    c.delete_force().ok();
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "delete --force of a paused container took {:?}",
        t.elapsed()
    );
    c.assert_clean();
}

// ---------------------------------------------------------------------------
// ps
// ---------------------------------------------------------------------------

#[test]
fn ps_json_lists_exactly_the_containers_pids() {
    require_v1!();
    let c = sleeper(Bundle::new());
    let init = c.pid();
    let extra = c.exec_detached(&["sleep", "60"]);
    let dir = cg_dir(&c, "pids.max");
    let want = procs(&dir);
    assert!(
        want.contains(&init) && want.contains(&extra),
        "cgroup.procs {want:?} lacks init {init} or exec {extra}"
    );
    let o = c.rrun(&["ps", "--format", "json", &c.id]);
    o.ok();
    let v: Value = serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("ps --format json is not JSON ({e}):\n{o}"));
    let mut got: Vec<i32> = v
        .as_array()
        .unwrap_or_else(|| panic!("ps --format json is not an array:\n{o}"))
        .iter()
        .map(|p| p.as_i64().expect("pid numbers") as i32)
        .collect();
    got.sort();
    assert_eq!(got, want, "ps --format json vs cgroup.procs");
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn ps_table_shows_only_the_container() {
    require_v1!();
    require!(have_cmd("ps"), "no ps(1) on the host");
    let c = sleeper(Bundle::new());
    let init = c.pid();
    let extra = c.exec_detached(&["sleep", "61"]);
    let o = c.rrun(&["ps", &c.id]);
    o.ok();
    let mut lines = o.stdout.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .unwrap_or_else(|| panic!("no PID column in the header:\n{o}"));
    let mut pids: Vec<i32> = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split_whitespace()
                .nth(col)
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("row without a pid: {l:?}\n{o}"))
        })
        .collect();
    pids.sort();
    let mut want = vec![init, extra];
    want.sort();
    assert_eq!(pids, want, "ps table rows:\n{o}");
    assert!(o.stdout.contains("sleep 61"), "{o}");
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn ps_with_an_unknown_format_fails() {
    require_v1!();
    let c = sleeper(Bundle::new());
    let o = c.rrun(&["ps", "--format", "yaml", &c.id]);
    o.failed().stderr_is_short_error();
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

// ---------------------------------------------------------------------------
// events
// ---------------------------------------------------------------------------

/// runc prints each event as `{"type":..,"id":..,"data":..}` in that order,
/// and line-oriented tools (grep/sed on `{"type":"oom"`) depend on it.
fn assert_event_field_order(line: &str) {
    let at = |k: &str| line.find(&format!("\"{k}\":"));
    let (t, i) = (at("type"), at("id"));
    assert_eq!(t, Some(1), "event does not start with \"type\": {line}");
    assert!(
        i.is_some_and(|i| i > 1),
        "\"id\" does not follow \"type\": {line}"
    );
    if let Some(d) = at("data") {
        assert!(d > i.unwrap(), "\"data\" is not after \"id\": {line}");
    }
}

#[test]
fn events_stats_matches_the_cgroup_files() {
    require_v1!();
    let limit = 48 * MIB;
    let c = sleeper(Bundle::new().with(|c| {
        c["linux"]["resources"]["memory"] = json!({ "limit": limit });
        c["linux"]["resources"]["pids"] = json!({ "limit": 30 });
    }));
    c.exec_detached(&["sleep", "60"]);
    let o = c.rrun(&["events", "--stats", &c.id]);
    o.ok();
    let lines: Vec<&str> = o.stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "events --stats prints one JSON line:\n{o}");
    assert_event_field_order(lines[0]);
    let v: Value = serde_json::from_str(lines[0])
        .unwrap_or_else(|e| panic!("events --stats is not JSON ({e}):\n{o}"));
    assert_eq!(v["type"], "stats", "{v}");
    assert_eq!(v["id"], c.id.as_str(), "{v}");
    let d = &v["data"];
    assert_eq!(
        d["pids"]["current"].as_u64(),
        Some(cg_u64(&c, "pids.current")),
        "pids.current: {d}"
    );
    assert_eq!(d["pids"]["current"].as_u64(), Some(2), "{d}");
    assert_eq!(d["pids"]["limit"].as_u64(), Some(30), "{d}");
    assert!(
        d["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0,
        "memory usage: {d}"
    );
    assert_eq!(
        d["memory"]["usage"]["limit"].as_u64(),
        Some(limit),
        "memory limit: {d}"
    );
    assert!(
        d["cpu"]["usage"]["total"].as_u64().unwrap_or(0) > 0,
        "cpu usage: {d}"
    );
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn events_stream_stats_and_report_an_oom_kill() {
    require_v1!();
    let limit = 16 * MIB;
    let mut mem = json!({ "limit": limit });
    if own_cgroup_with("memory.memsw.limit_in_bytes").is_some() {
        mem["swap"] = json!(limit);
    }
    let c = sleeper(resource(Bundle::new(), "memory", mem));
    let ev = Streaming::spawn(c.cmd(&["events", "--interval", "1s", &c.id]));
    let stats_lines = |s: &str| {
        s.lines()
            .filter(|l| {
                serde_json::from_str::<Value>(l)
                    .map(|v| v["type"] == "stats" && v["id"] == c.id.as_str())
                    .unwrap_or(false)
            })
            .count()
    };
    // Stats arrive every second.
    let got = poll(Duration::from_secs(10), || {
        (stats_lines(&ev.stdout()) >= 2).then_some(())
    });
    assert!(
        got.is_some(),
        "no two stats events within 10 s:\nstdout {:?}\nstderr {:?}",
        ev.stdout(),
        ev.stderr()
    );
    // The hog is OOM-killed, and events says so.
    let o = exec(&c, &["sh", "-c", HOG]);
    // The OOM killer picks the biggest process: usually `tail` (rc=137),
    // but under load it may be `head` (then tail sees EOF), or the exec'd
    // shell itself (exec exits 137, the kill's code): the event below is
    // what this test is about; the hog only has to have ended.
    assert!(
        o.stdout.contains("rc=") || o.code == Some(137),
        "hog did not finish:\n{o}"
    );
    let oom = poll(Duration::from_secs(10), || {
        ev.stdout()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["type"] == "oom")
    });
    let oom = oom.unwrap_or_else(|| {
        panic!(
            "no oom event within 10 s:\nstdout {:?}\nstderr {:?}",
            ev.stdout(),
            ev.stderr()
        )
    });
    assert_eq!(oom["id"], c.id.as_str(), "{oom}");
    // Every line, at every interval, keeps runc's field order.
    for l in ev.stdout().lines().filter(|l| !l.trim().is_empty()) {
        assert_event_field_order(l);
    }
    // When the container ends, events ends too.
    c.kill("KILL").ok();
    c.wait_status("stopped");
    let mut ev = ev;
    let ended = poll(Duration::from_secs(10), || {
        ev.child.try_wait().ok().flatten()
    });
    if is_runc() && ended.is_none() {
        skip("runc 1.1 events keeps running after the container stopped");
    } else {
        assert!(ended.is_some(), "events did not end with the container");
    }
    drop(ev);
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn events_of_a_stopped_or_unknown_container_fails() {
    require_v1!();
    let c = Container::new(Bundle::new().sh("exit 0"));
    c.create().ok();
    c.start().ok();
    c.wait_status("stopped");
    let o = c.rrun(&["events", "--stats", &c.id]);
    o.failed().stderr_is_short_error();
    let o = c.rrun(&["events", "--stats", "no-such-container-xyz"]);
    o.failed().stderr_is_short_error();
    c.delete().ok();
    c.assert_clean();
}

// ---------------------------------------------------------------------------
// delete
// ---------------------------------------------------------------------------

/// The container's directories that exist, in every hierarchy.
fn existing_cgroups(c: &Container) -> Vec<PathBuf> {
    cgroup_dirs(&c.bundle.cgroups_path)
        .into_iter()
        .filter(|d| d.is_dir())
        .collect()
}

#[test]
fn delete_removes_every_cgroup_also_nested_ones_after_the_container_died() {
    require_v1!();
    let c = Container::new(
        Bundle::new()
            .with(|c| c["linux"]["resources"]["memory"] = json!({ "limit": 64 * MIB }))
            .args(&["sleep", "60"]),
    );
    c.create().ok();
    let dirs = existing_cgroups(&c);
    // One directory per v1 controller hierarchy at least.
    for (ctrl, probe) in [
        ("memory", "memory.limit_in_bytes"),
        ("pids", "pids.max"),
        ("devices", "devices.list"),
        ("freezer", "freezer.state"),
        ("cpu", "cpu.shares"),
        ("cpuacct", "cpuacct.usage"),
        ("cpuset", "cpuset.cpus"),
        ("blkio", "blkio.throttle.read_bps_device"),
    ] {
        if v1_controller(ctrl) {
            assert!(
                dirs.iter().any(|d| d.join(probe).exists()),
                "no container cgroup with {probe} among {dirs:#?}"
            );
        }
    }
    c.start().ok();
    c.wait_status("running");
    // Nested cgroups made inside the container's (as a workload would).
    for d in &dirs {
        let n = d.join("nested").join("deeper");
        fs::create_dir_all(&n).unwrap_or_else(|e| panic!("mkdir {}: {e}", n.display()));
    }
    // The container dies on its own (killed from the host, not by rrun).
    let pid = c.pid();
    sh(&format!("kill -9 {pid}")).ok();
    c.wait_status("stopped");
    c.delete().ok();
    for d in &dirs {
        assert!(!d.exists(), "cgroup {} left after delete", d.display());
    }
    c.assert_clean();
}

#[test]
fn delete_after_a_normal_exit_removes_the_cgroups() {
    require_v1!();
    let c = Container::new(Bundle::new().sh("exit 3"));
    c.create().ok();
    let dirs = existing_cgroups(&c);
    assert!(!dirs.is_empty(), "create made no cgroup");
    c.start().ok();
    c.wait_status("stopped");
    c.delete().ok();
    for d in &dirs {
        assert!(!d.exists(), "cgroup {} left after delete", d.display());
    }
    c.assert_clean();
}

// ---------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------

#[test]
fn unified_keys_on_v1_are_refused() {
    require_v1!();
    let c = Container::new(resource(
        Bundle::new().args(&["sleep", "60"]),
        "unified",
        json!({ "memory.max": "67108864" }),
    ));
    let o = c.create();
    o.failed().stderr_is_short_error();
    o.stderr_mentions(&["unified", "v2", "cgroup2"]);
    drop(c);
}

#[test]
fn a_limit_the_kernel_refuses_fails_create_cleanly() {
    require_v1!();
    // A CFS quota below the kernel's 1 ms minimum.
    let c = Container::new(resource(
        Bundle::new().args(&["sleep", "60"]),
        "cpu",
        json!({ "quota": 10, "period": 100000 }),
    ));
    let o = c.create();
    o.failed().stderr_is_short_error();
    for d in cgroup_dirs(&c.bundle.cgroups_path) {
        assert!(!d.exists(), "failed create left cgroup {}", d.display());
    }
    let st = c.state_output();
    assert!(!st.success(), "failed create left a container:\n{st}");
    drop(c);
}
