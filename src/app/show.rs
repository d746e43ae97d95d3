//! The app commands that only look: ls, inspect, logs, events, images,
//! network ls. What the init reports (health, restarts, the program's last
//! exit) is the container's word, read as hostile input by init::status.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::{Value, json};

use super::cli::{LogsArgs, LsArgs};
use super::lifecycle::{logs_dir, monitor_alive};
use super::paths::Paths;
use super::state::{self, App, Phase};
use super::store::Store;
use super::{network, runtime};

/// What `ls` and `inspect` show of an app right now.
pub fn live(paths: &Paths, name: &str, cpu_window: Option<&CpuWindow>) -> Result<Value> {
    let app = App::at(paths, name);
    let spec = app.load_spec()?;
    let st = app.load_state().unwrap_or_default();
    let monitor = monitor_alive(paths, name);
    let ctr = runtime::state(paths, name).ok().flatten();
    let running = monitor.is_some()
        && ctr
            .as_ref()
            .is_some_and(|c| c.pid > 0 && crate::state::process_alive(c.pid, c.pid_start));
    let status = ctr
        .as_ref()
        .filter(|c| c.pid > 0)
        .and_then(|c| crate::init::status::open_dir(c.pid).ok())
        .and_then(|d| crate::init::status::read(&d).ok());
    let stats = ctr.as_ref().map(|c| crate::cgroups::stats(&c.cgroup_paths));
    let cpu_ns = stats
        .as_ref()
        .and_then(|s| s["cpu"]["usage"]["total"].as_u64());
    let mem = stats
        .as_ref()
        .and_then(|s| s["memory"]["usage"]["usage"].as_u64());
    let cpu_pct = match (cpu_window.and_then(|w| w.get(name)), cpu_ns) {
        (Some((before, t0)), Some(now)) if running => {
            let dt = t0.elapsed().as_nanos().max(1) as f64;
            Some(((now.saturating_sub(*before)) as f64 / dt * 100.0 * 10.0).round() / 10.0)
        }
        _ => None,
    };
    let phase = if running {
        "running"
    } else if monitor.is_some() {
        "starting"
    } else {
        match st.phase {
            Phase::Created => "created",
            Phase::Running => "exited",
            Phase::Exited => "exited",
        }
    };
    let image = Store::open(paths).ok().and_then(|s| s.get(&st.image).ok());
    // The status's count is the container's word (any u32): saturating,
    // not an overflow panic or a wrap.
    let restarts = st
        .recreated
        .saturating_add(st.earlier_restarts)
        .saturating_add(status.as_ref().map(|s| s.restarts).unwrap_or(0));
    let oom = ctr
        .as_ref()
        .map(|c| crate::cgroups::oom_kills(&c.cgroup_paths))
        .unwrap_or(0);
    let last_exit = match (&status, &st.exit) {
        (Some(s), _) if running && !s.exit_log.is_empty() => s
            .exit_log
            .last()
            .map(|r| super::spawn::record_reason(r, oom)),
        (_, Some(e)) => Some(e.reason.clone()),
        _ => None,
    };
    Ok(json!({
        "name": name,
        "state": phase,
        "health": status.as_ref().map(|s| s.health.clone()).unwrap_or_else(|| "none".into()),
        "healthLog": status.as_ref().map(|s| s.health_log.iter().map(|h| json!({
            "time": super::spawn::rfc3339_ms(h.time),
            "exit": match h.exit {
                crate::init::plan::LastExit::Code(c) => format!("exit {c}"),
                crate::init::plan::LastExit::Signal(n) => format!("signal {n}"),
            },
            "output": h.output,
        })).collect::<Vec<_>>()),
        "restarts": restarts,
        "startedAt": st.started_at,
        "finishedAt": st.finished_at,
        "uptimeSeconds": if running { st.started_at.as_deref().and_then(age_secs) } else { None },
        "cpuPercent": cpu_pct,
        "memoryBytes": if running { mem } else { None },
        "memoryLimit": spec.memory,
        "image": {
            "source": spec.source,
            "digest": image.as_ref().map(|i| i.digest()),
        },
        "ports": spec.ports,
        "network": spec.network,
        "ip": st.network.as_ref().and_then(|n| n.ip),
        "lastExit": last_exit,
        "exitStatus": st.exit.as_ref().map(|e| e.status),
        "pid": ctr.as_ref().filter(|_| running).map(|c| c.pid),
        "monitorPid": monitor.map(|m| m.pid),
        "reportedBy": if status.is_some() { Some("container") } else { None },
    }))
}

fn age_secs(t: &str) -> Option<u64> {
    let t = chrono::DateTime::parse_from_rfc3339(t).ok()?;
    let secs = chrono::Utc::now().signed_duration_since(t).num_seconds();
    u64::try_from(secs).ok()
}

pub fn human_duration(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        3600..86400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

pub fn human_bytes(b: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b}B")
    } else {
        format!("{v:.1}{}", U[i])
    }
}

fn check_format(f: &str) -> Result<()> {
    match f {
        "table" | "json" => Ok(()),
        _ => bail!("invalid --format {f:?}: use table or json"),
    }
}

/// Each app's CPU time (ns) at an instant: what a CPU % is measured from.
pub type CpuWindow = std::collections::HashMap<String, (u64, Instant)>;

/// The app's CPU time so far (ns), while its container exists.
pub fn cpu_ns(paths: &Paths, name: &str) -> Option<u64> {
    let c = runtime::state(paths, name).ok().flatten()?;
    crate::cgroups::stats(&c.cgroup_paths)["cpu"]["usage"]["total"].as_u64()
}

/// Every app's row as `ls --all --format json` prints it (the status
/// page's /api/apps too); cpuPercent from `cpu_window` to now, when given.
pub fn app_rows(paths: &Paths, cpu_window: Option<&CpuWindow>) -> Result<Vec<Value>> {
    let names = state::names(paths)?;
    Ok(names
        .iter()
        .map(|n| match live(paths, n, cpu_window) {
            Ok(v) => v,
            Err(e) => json!({"name": n, "state": "unknown", "error": format!("{e:#}")}),
        })
        .collect())
}

pub fn ls(paths: &Paths, a: &LsArgs) -> Result<()> {
    check_format(&a.format)?;
    // CPU % over a short window, sampled for every app at once.
    let mut window = CpuWindow::new();
    for n in state::names(paths)? {
        if let Some(ns) = cpu_ns(paths, &n) {
            window.insert(n, (ns, Instant::now()));
        }
    }
    if !window.is_empty() {
        std::thread::sleep(Duration::from_millis(200));
    }
    let rows: Vec<Value> = app_rows(paths, Some(&window))?
        .into_iter()
        .filter(|v| a.all || matches!(v["state"].as_str(), Some("running" | "starting")))
        .collect();
    if a.format == "json" {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let mut out = vec![
        [
            "NAME",
            "STATE",
            "HEALTH",
            "RESTARTS",
            "UPTIME",
            "CPU %",
            "MEM",
            "IMAGE",
            "PORTS",
            "LAST EXIT",
        ]
        .map(String::from),
    ];
    for v in &rows {
        let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
        let digest = v["image"]["digest"].as_str().unwrap_or("");
        let short = digest
            .strip_prefix("sha256:")
            .unwrap_or(digest)
            .get(..12)
            .unwrap_or("");
        out.push([
            s("name"),
            s("state"),
            s("health"),
            v["restarts"].as_u64().unwrap_or(0).to_string(),
            v["uptimeSeconds"]
                .as_u64()
                .map(human_duration)
                .unwrap_or_else(|| "-".into()),
            v["cpuPercent"]
                .as_f64()
                .map(|c| format!("{c:.1}"))
                .unwrap_or_else(|| "-".into()),
            v["memoryBytes"]
                .as_u64()
                .map(human_bytes)
                .unwrap_or_else(|| "-".into()),
            format!("{} ({short})", v["image"]["source"].as_str().unwrap_or("")),
            ports_text(v),
            v["lastExit"].as_str().unwrap_or("-").to_string(),
        ]);
    }
    print_table(&out);
    Ok(())
}

/// Rows in `rrun list`'s table layout.
fn print_table<const N: usize>(rows: &[[String; N]]) {
    let rows: Vec<Vec<String>> = rows.iter().map(|r| r.to_vec()).collect();
    print!("{}", crate::commands::list::table(&rows));
}

pub fn inspect(paths: &Paths, names: &[String]) -> Result<()> {
    let mut out = Vec::new();
    for n in names {
        let app = App::at(paths, n);
        let spec = app.load_spec()?;
        let st = app.load_state().unwrap_or_default();
        let image = Store::open(paths).ok().and_then(|s| s.get(&st.image).ok());
        out.push(json!({
            "name": n,
            "settings": spec,
            "state": st,
            "live": live(paths, n, None)?,
            "image": image,
            "paths": {
                "dir": app.dir, "logs": app.logs(), "rootfs": app.rootfs(),
                "runtimeRoot": paths.runtime_root(), "containerId": paths.container_id(n),
            },
        }));
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

pub fn logs(paths: &Paths, a: &LogsArgs) -> Result<()> {
    let dir = logs_dir(paths, &a.name)?;
    let since = a
        .since
        .as_deref()
        .map(super::logs::parse_since)
        .transpose()?;
    let o = super::logs::LogOptions {
        follow: a.follow,
        since,
        tail: a.tail,
        timestamps: a.timestamps,
    };
    let until = || !a.follow || monitor_alive(paths, &a.name).is_none();
    super::logs::print(
        &dir,
        &o,
        &until,
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    )?;
    Ok(())
}

/// The program's exits in the running container, as its init logged them
/// (written to events.jsonl only when the container ends).
fn live_exit_events(paths: &Paths, name: &str) -> Vec<Value> {
    let Some(c) = runtime::state(paths, name)
        .ok()
        .flatten()
        .filter(|c| c.pid > 0)
    else {
        return Vec::new();
    };
    let Some(st) = crate::init::status::open_dir(c.pid)
        .ok()
        .and_then(|d| crate::init::status::read(&d).ok())
    else {
        return Vec::new();
    };
    let oom = crate::cgroups::oom_kills(&c.cgroup_paths);
    st.exit_log
        .iter()
        .map(|r| {
            json!({
                "time": super::spawn::rfc3339_ms(r.time), "app": name, "type": "exit",
                "reason": super::spawn::record_reason(r, oom), "reportedBy": "container",
            })
        })
        .collect()
}

pub fn events(paths: &Paths, name: &str, follow: bool) -> Result<()> {
    let app = App::at(paths, name);
    if !app.exists() {
        bail!("no app named {name:?}");
    }
    let path = app.dir.join("events.jsonl");
    let mut f = None;
    let mut stdout = std::io::stdout();
    let mut line = String::new();
    // (time, reason) of container-reported exits already printed.
    let mut seen = BTreeSet::new();
    loop {
        if f.is_none() {
            f = std::fs::File::open(&path).ok().map(BufReader::new);
        }
        if let Some(f) = f.as_mut() {
            loop {
                line.clear();
                let n = f.read_line(&mut line)?;
                if n > 0 && line.ends_with('\n') {
                    if let Ok(v) = serde_json::from_str::<Value>(&line)
                        && v["reportedBy"] == "container"
                        && !seen.insert((v["time"].to_string(), v["reason"].to_string()))
                    {
                        continue;
                    }
                    stdout.write_all(line.as_bytes())?;
                    continue;
                }
                if n > 0 {
                    // A line being written: read it again whole.
                    f.seek(SeekFrom::Current(-(n as i64)))?;
                }
                break;
            }
        }
        for v in live_exit_events(paths, name) {
            if seen.insert((v["time"].to_string(), v["reason"].to_string())) {
                writeln!(stdout, "{v}")?;
            }
        }
        stdout.flush()?;
        if !follow || !app.exists() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn images(paths: &Paths, format: &str) -> Result<()> {
    check_format(format)?;
    let store = Store::open(paths)?;
    let list = store.list()?;
    let mut used: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for n in state::names(paths)? {
        if let Ok(st) = App::at(paths, &n).load_state() {
            used.entry(st.image.clone()).or_default().push(n.clone());
            if let Some(p) = st.previous_image {
                used.entry(p).or_default().push(format!("{n} (previous)"));
            }
        }
    }
    if format == "json" {
        let v: Vec<Value> = list
            .iter()
            .map(|i| {
                let mut v = serde_json::to_value(i).unwrap_or_default();
                v["usedBy"] = json!(used.get(&i.id).cloned().unwrap_or_default());
                v
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let mut rows = vec![
        [
            "ID", "SOURCE", "LAYERS", "SIZE", "SHARED", "CREATED", "USED BY",
        ]
        .map(String::from),
    ];
    for i in &list {
        rows.push([
            i.short_id().to_string(),
            i.source.clone(),
            i.layers.len().to_string(),
            human_bytes(i.size),
            human_bytes(i.shared_size),
            i.created.clone(),
            used.get(&i.id)
                .map(|u| u.join(","))
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    print_table(&rows);
    Ok(())
}

pub fn prune(paths: &Paths) -> Result<()> {
    let store = Store::open(paths)?;
    // Listed under the store's exclusive lock (no import in flight). An
    // app whose state does not exist yet is being created: its image may
    // be the one just imported, so nothing is pruned until it exists.
    // (No app lock here: `run` holds its app lock while it imports.)
    let r = store.prune_with(|| -> Result<std::collections::BTreeSet<String>> {
        let mut in_use = std::collections::BTreeSet::new();
        for n in state::names(paths)? {
            match App::at(paths, &n).load_state() {
                Ok(st) => {
                    in_use.insert(st.image);
                    if let Some(p) = st.previous_image {
                        in_use.insert(p);
                    }
                }
                Err(_) => bail!("app {n} is being created: prune again when it is"),
            }
        }
        Ok(in_use)
    })?;
    for i in &r.images {
        println!("removed image {i}");
    }
    println!(
        "{} image(s), {} layer(s), {} reclaimed",
        r.images.len(),
        r.layers.len(),
        human_bytes(r.bytes)
    );
    Ok(())
}

pub fn networks(paths: &Paths, format: &str) -> Result<()> {
    check_format(format)?;
    let list = network::list(paths)?;
    if format == "json" {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    let mut rows = vec![["NAME", "SUBNET", "GATEWAY", "BRIDGE", "APPS"].map(String::from)];
    for n in &list {
        let v = serde_json::to_value(n)?;
        let s = |k: &str| match &v[k] {
            Value::String(s) => s.clone(),
            Value::Null => "-".into(),
            other => other.to_string(),
        };
        rows.push([
            s("name"),
            s("subnet"),
            s("gateway"),
            s("bridge"),
            n.apps.join(","),
        ]);
    }
    print_table(&rows);
    Ok(())
}

/// A row's published ports as the tables show them ("8080:80,53:53/udp").
pub fn ports_text(row: &Value) -> String {
    row["ports"]
        .as_array()
        .map(|p| {
            p.iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}
