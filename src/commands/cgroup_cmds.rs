//! pause, resume, ps, events and update: the commands that work on a
//! container's cgroups.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use crate::cgroups;
use crate::cli::{EventsArgs, PsArgs, UpdateArgs};
use crate::state::{Status, Store};

pub fn pause(store: &Store, id: &str) -> Result<()> {
    let dir = store.open(id)?;
    let state = dir.load()?;
    match state.status() {
        Status::Running => {}
        s => bail!("container {id} is not running: {s}"),
    }
    // Freezing is per cgroup: in a cgroup shared with processes that are
    // not the container's (an existing cgroupsPath), it would stop them
    // too. resume stays allowed: thawing only undoes a freeze.
    let found = crate::process::members_of(&state, None);
    if let Some(p) = found.foreign.first() {
        bail!(
            "cannot pause container {id}: its cgroups also hold processes that are not the \
             container's (pid {p}{}), which freezing would stop too",
            if found.foreign.len() > 1 {
                " and others"
            } else {
                ""
            }
        );
    }
    cgroups::set_frozen(&state.cgroup_paths, true)?;
    Ok(())
}

pub fn resume(store: &Store, id: &str) -> Result<()> {
    let dir = store.open(id)?;
    let state = dir.load()?;
    if state.status() != Status::Paused {
        bail!("container {id} is not paused");
    }
    cgroups::set_frozen(&state.cgroup_paths, false)?;
    Ok(())
}

pub fn ps(store: &Store, a: &PsArgs) -> Result<()> {
    let state = store.open(&a.id)?.load()?;
    // The container's processes only, not others sharing its cgroups.
    let pids = crate::process::members_of(&state, None).members;
    match a.format.as_str() {
        "json" => {
            println!("{}", serde_json::to_string(&pids)?);
            Ok(())
        }
        "table" => {
            let args = if a.ps_args.is_empty() {
                vec!["-ef".to_string()]
            } else {
                a.ps_args.clone()
            };
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .context("running ps")?;
            if !out.status.success() {
                bail!(
                    "ps {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or_default();
            let col = header
                .split_whitespace()
                .position(|h| h == "PID")
                .ok_or_else(|| anyhow!("ps output has no PID column"))?;
            println!("{header}");
            for l in lines {
                let pid = l
                    .split_whitespace()
                    .nth(col)
                    .and_then(|p| p.parse::<i32>().ok());
                if pid.is_some_and(|p| pids.contains(&p)) {
                    println!("{l}");
                }
            }
            Ok(())
        }
        f => bail!("invalid --format {f:?}: use table or json"),
    }
}

/// --interval: a duration as the init's annotations take it (100ms, 5s,
/// 1m), which must be above zero.
pub fn parse_duration(s: &str) -> Result<Duration> {
    crate::init::policy::parse_duration(s)
        .map_err(|e| anyhow!(e))
        .and_then(|d| {
            if d.is_zero() {
                Err(anyhow!("invalid duration {s:?}: must be above zero"))
            } else {
                Ok(d)
            }
        })
}

pub fn events(store: &Store, a: &EventsArgs) -> Result<()> {
    let interval = parse_duration(&a.interval)?;
    let state = store.open(&a.id)?.load()?;
    if state.status() == Status::Stopped {
        bail!("container {} is not running", a.id);
    }
    let stats = |s: &crate::state::ContainerState| {
        Event::new("stats", &s.id, Some(cgroups::stats(&s.cgroup_paths))).to_string()
    };
    if a.stats {
        println!("{}", stats(&state));
        return Ok(());
    }
    // OOM kills are checked every 100ms; stats every interval.
    let tick = Duration::from_millis(100).min(interval);
    let mut ooms = cgroups::oom_kills(&state.cgroup_paths);
    let mut next_stats = std::time::Instant::now();
    let mut last_init: Option<serde_json::Value> = None;
    // Held open so the init's final status is still readable after the
    // container stopped (see init::status_dir).
    let init_dir = state
        .has_init()
        .then(|| crate::init::status_dir(state.pid))
        .flatten();
    let watch_init = |last: &mut Option<serde_json::Value>| {
        if let Some(dir) = &init_dir
            && let Some(init) = crate::init::status_in(dir, state.pid)
        {
            for e in init_events(&state.id, last.as_ref(), &init) {
                println!("{e}");
            }
            *last = Some(init);
        }
    };
    while state.status() != Status::Stopped {
        watch_init(&mut last_init);
        let now_ooms = cgroups::oom_kills(&state.cgroup_paths);
        if now_ooms > ooms {
            ooms = now_ooms;
            println!("{}", Event::<()>::new("oom", &state.id, None));
        }
        if std::time::Instant::now() >= next_stats {
            println!("{}", stats(&state));
            next_stats += interval;
        }
        std::thread::sleep(tick);
    }
    // The last run's exit (and a give-up) happen as the container stops.
    watch_init(&mut last_init);
    if let Some(init) = last_init
        && let Ok(dir) = store.open(&a.id)
        && let Ok(mut s) = dir.load()
    {
        s.init_status = Some(init);
        let _ = dir.save(&s);
    }
    Ok(())
}

/// One line of `events`. runc prints `type`, `id`, then `data`, and
/// line-oriented tools match on that order; serde_json's own maps sort
/// their keys, so the order is fixed by this struct.
#[derive(serde::Serialize)]
struct Event<'a, D: serde::Serialize> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<D>,
}

impl<'a, D: serde::Serialize> Event<'a, D> {
    fn new(kind: &'a str, id: &'a str, data: Option<D>) -> Self {
        Event { kind, id, data }
    }
}

impl<D: serde::Serialize> std::fmt::Display for Event<'_, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let line = serde_json::to_string(self).map_err(|_| std::fmt::Error)?;
        f.write_str(&line)
    }
}

/// Events for what changed in the init's status between two readings.
fn init_events<'a>(
    id: &'a str,
    before: Option<&serde_json::Value>,
    now: &serde_json::Value,
) -> Vec<Event<'a, serde_json::Value>> {
    use serde_json::json;
    // What the init publishes is the container's word, not rrun's.
    let ev = |kind, mut data: serde_json::Value| {
        data["reportedBy"] = json!(crate::init::REPORTED_BY);
        Event::new(kind, id, Some(data))
    };
    let mut out = Vec::new();
    let Some(before) = before else {
        // Health starts as "starting": a change from it that happened before
        // we began watching is still news.
        if now["health"] != "starting" && now["health"] != "none" {
            out.push(ev("health", json!({"health": now["health"]})));
        }
        return out;
    };
    let restarts = |v: &serde_json::Value| v["restarts"].as_u64().unwrap_or(0);
    let exits = |v: &serde_json::Value| v["exits"].as_u64().unwrap_or(0);
    if exits(now) > exits(before) {
        out.push(ev(
            "exit",
            json!({"lastExit": now["lastExit"], "restarts": now["restarts"]}),
        ));
    }
    if restarts(now) > restarts(before) {
        out.push(ev(
            "restart",
            json!({"restarts": now["restarts"], "pid": now["pid"]}),
        ));
    }
    if now["health"] != before["health"] {
        out.push(ev("health", json!({"health": now["health"]})));
    }
    if now["gaveUp"] == true && before["gaveUp"] != true {
        out.push(ev("gave-up", json!({"lastExit": now["lastExit"]})));
    }
    out
}

/// Bytes with an optional k/m/g/t suffix (binary, as runc's units); -1 is
/// unlimited.
pub fn parse_bytes(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.parse().map_err(|_| anyhow!("invalid size {s:?}"))?;
    if n < 0.0 {
        bail!("invalid size {s:?}");
    }
    Ok((n * mult as f64) as i64)
}

pub fn update(store: &Store, a: &UpdateArgs) -> Result<()> {
    let dir = store.open(&a.id)?;
    let mut state = dir.load()?;
    if state.status() == Status::Stopped {
        bail!("container {} is not running", a.id);
    }
    let mut r: LinuxResources = match &a.resources {
        Some(p) if p == Path::new("-") => {
            serde_json::from_reader(std::io::stdin()).context("--resources -: invalid JSON")?
        }
        Some(p) => {
            let data = std::fs::read(p).with_context(|| format!("--resources {}", p.display()))?;
            serde_json::from_slice(&data)
                .with_context(|| format!("--resources {}: invalid JSON", p.display()))?
        }
        None => LinuxResources::default(),
    };
    let mut mem = (*r.memory()).unwrap_or_default();
    let mut mem_set = r.memory().is_some();
    for (flag, setter) in [
        (
            &a.memory,
            LinuxMemory::set_limit as fn(&mut LinuxMemory, Option<i64>) -> &mut LinuxMemory,
        ),
        (&a.memory_reservation, LinuxMemory::set_reservation),
        (&a.memory_swap, LinuxMemory::set_swap),
        (&a.kernel_memory, LinuxMemory::set_kernel),
        (&a.kernel_memory_tcp, LinuxMemory::set_kernel_tcp),
    ] {
        if let Some(v) = flag {
            setter(&mut mem, Some(parse_bytes(v)?));
            mem_set = true;
        }
    }
    if mem_set {
        r.set_memory(Some(mem));
    }
    let mut cpu = r.cpu().clone().unwrap_or_default();
    let before = cpu.clone();
    if a.cpu_shares.is_some() {
        cpu.set_shares(a.cpu_shares);
    }
    if a.cpu_quota.is_some() {
        cpu.set_quota(a.cpu_quota);
    }
    if a.cpu_period.is_some() {
        cpu.set_period(a.cpu_period);
    }
    if a.cpu_rt_period.is_some() {
        cpu.set_realtime_period(a.cpu_rt_period);
    }
    if a.cpu_rt_runtime.is_some() {
        cpu.set_realtime_runtime(a.cpu_rt_runtime);
    }
    if a.cpuset_cpus.is_some() {
        cpu.set_cpus(a.cpuset_cpus.clone());
    }
    if a.cpuset_mems.is_some() {
        cpu.set_mems(a.cpuset_mems.clone());
    }
    if r.cpu().is_some() || cpu != before || cpu != LinuxCpu::default() {
        r.set_cpu(Some(cpu));
    }
    if let Some(p) = a.pids_limit {
        let mut pids = LinuxPids::default();
        pids.set_limit(p);
        r.set_pids(Some(pids));
    }
    if let Some(w) = a.blkio_weight {
        let mut b = r.block_io().clone().unwrap_or_default();
        b.set_weight(Some(w));
        r.set_block_io(Some(b));
    }
    // Device rules are not changed by update (as runc).
    r.set_devices(None);
    // A unit rrun made (--systemd-cgroup) gets the new limits as its
    // properties too, so systemd keeps them (a daemon-reload rewrites the
    // unit's cgroup files from its properties); the files follow.
    if let Some(u) = &state.systemd_unit {
        use crate::cgroups::systemd as sd;
        sd::round_quota(&mut r);
        let v2 = cgroups::is_pure_v2(&cgroups::discover(std::path::Path::new("/proc"))?);
        let bus = sd::bus::Bus::connect(u.manager).map_err(cgroups::CgroupError::from)?;
        // Its name may belong to another unit by now (systemd forgot the
        // container's): that one is never changed, nor its cgroup files.
        if !bus
            .holds(&u.own(&state.id))
            .map_err(cgroups::CgroupError::from)?
        {
            bail!(
                "container {}: its systemd unit {} is gone (the unit of that name now is not \
                 the container's)",
                a.id,
                u.name
            );
        }
        let props = sd::properties_for(&r, v2, bus.version())?;
        bus.set_properties(&u.name, &props)
            .map_err(cgroups::CgroupError::from)?;
    }
    cgroups::apply_resources(&state.cgroup_paths, &r, false)?;
    // Remember the new limits, so `exec` and later updates see them.
    if let Some(spec) = state.spec.as_mut()
        && let Some(linux) = spec.linux_mut()
    {
        let mut cur = linux.resources().clone().unwrap_or_default();
        if r.memory().is_some() {
            cur.set_memory(*r.memory());
        }
        if r.cpu().is_some() {
            cur.set_cpu(r.cpu().clone());
        }
        if r.pids().is_some() {
            cur.set_pids(*r.pids());
        }
        if r.block_io().is_some() {
            cur.set_block_io(r.block_io().clone());
        }
        linux.set_resources(Some(cur));
    }
    dir.save(&state)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_events_say_whose_word_they_are() {
        let before = serde_json::json!({"restarts": 0, "exits": 0, "health": "starting"});
        let now = serde_json::json!({"restarts": 1, "exits": 1, "health": "healthy",
            "lastExit": {"code": 3}, "gaveUp": true});
        let evs = init_events("c", Some(&before), &now);
        assert_eq!(evs.len(), 4);
        for e in evs.iter().chain(&init_events("c", None, &now)) {
            let v: serde_json::Value = serde_json::from_str(&e.to_string()).unwrap();
            assert_eq!(v["data"]["reportedBy"], "container", "{e}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("5y").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("1024").unwrap(), 1024);
        assert_eq!(parse_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("-1").unwrap(), -1);
        assert!(parse_bytes("abc").is_err());
        assert!(parse_bytes("-5").is_err());
    }
}
