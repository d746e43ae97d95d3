//! `rrun app compose down | ps | logs | restart`: the project's apps,
//! found by their project label (project.rs), so these work after the
//! file changed.

use std::collections::BTreeSet;

use anyhow::{Result, bail};
use clap::Args;
use serde_json::{Value, json};

use super::project::{self, ProjectApp};
use super::up::{Prefixed, follow, prefixes};
use super::{Project, graph};
use crate::app::lifecycle::{self, monitor_alive};
use crate::app::paths::Paths;
use crate::app::{network, state};

#[derive(Args, Debug, Clone, Default)]
pub struct DownArgs {
    /// Remove the project's named volumes too
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Remove the apps of services no longer in the file too
    #[arg(long = "remove-orphans")]
    pub remove_orphans: bool,
    /// Seconds to wait after the stop signal before SIGKILL
    #[arg(short = 't', long = "timeout", value_name = "SECS")]
    pub timeout: Option<u64>,
}

#[derive(Args, Debug, Clone, Default)]
pub struct PsArgs {
    /// Stopped apps too
    #[arg(short = 'a', long)]
    pub all: bool,
    #[arg(long, default_value = "table")]
    pub format: String,
}

#[derive(Args, Debug, Clone, Default)]
pub struct LogsArgs {
    /// Keep printing what the services write
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines of each service
    #[arg(short = 'n', long)]
    pub tail: Option<usize>,
    /// Prefix each line with its time
    #[arg(short = 't', long)]
    pub timestamps: bool,
    pub services: Vec<String>,
}

#[derive(Args, Debug, Clone, Default)]
pub struct RestartArgs {
    /// Seconds to wait after the stop signal before SIGKILL
    #[arg(short = 't', long = "timeout", value_name = "SECS")]
    pub timeout: Option<u64>,
    pub services: Vec<String>,
}

fn progress(what: &str, state: &str) {
    eprintln!("{what}  {state}");
}

/// Stops and removes the project's apps in reverse dependency order, then
/// the networks it made (when no app uses them) and, with -v, its volumes.
/// External networks and volumes are never removed.
pub fn down(paths: &Paths, p: &Project, a: &DownArgs) -> Result<i32> {
    let all = project::apps_of(paths, &p.name)?;
    let (apps, orphans): (Vec<ProjectApp>, Vec<ProjectApp>) = all
        .into_iter()
        .partition(|x| p.services.contains_key(&x.service));
    let apps = if a.remove_orphans {
        apps.into_iter().chain(orphans).collect()
    } else {
        if !orphans.is_empty() {
            let names: Vec<&str> = orphans.iter().map(|o| o.spec.name.as_str()).collect();
            eprintln!(
                "rrun: warning: apps of services not in the file: {} (remove them with --remove-orphans)",
                names.join(", ")
            );
        }
        apps
    };
    let deps = project::deps_of_apps(&apps);
    let set: BTreeSet<String> = deps.keys().cloned().collect();
    let errors = std::sync::Mutex::new(Vec::new());
    for wave in graph::stop_waves(&deps, &set) {
        // A wave's apps stop at once (each waits out its own grace).
        std::thread::scope(|scope| {
            for x in apps.iter().filter(|x| wave.contains(&x.service)) {
                let errors = &errors;
                scope.spawn(move || {
                    let name = &x.spec.name;
                    let r = (|| -> Result<()> {
                        if monitor_alive(paths, name).is_some() {
                            lifecycle::stop(paths, name, a.timeout)?;
                            progress(name, "Stopped");
                        }
                        lifecycle::rm(paths, std::slice::from_ref(name), true)?;
                        progress(name, "Removed");
                        Ok(())
                    })();
                    if let Err(e) = r {
                        let e = e.context(name.clone());
                        errors.lock().unwrap_or_else(|e| e.into_inner()).push(e);
                    }
                });
            }
        });
    }
    // The first error is down's own (main prints it); the others here.
    let mut errors = errors.into_inner().unwrap_or_else(|e| e.into_inner());
    for e in errors.iter().skip(1) {
        eprintln!("rrun: {}", crate::log::error_line(e));
    }
    let mut first_err = (!errors.is_empty()).then(|| errors.remove(0));
    // What apps are left (other projects', orphans) still use.
    let in_use: BTreeSet<String> = state::names(paths)?
        .iter()
        .filter_map(|n| state::App::at(paths, n).load_spec().ok())
        .flat_map(|s| {
            let vols: Vec<String> = s
                .volumes
                .iter()
                .filter(|v| v.is_named())
                .map(|v| format!("volume:{}", v.source))
                .collect();
            vols.into_iter().chain([format!("network:{}", s.network)])
        })
        .collect();
    let mut nets: BTreeSet<String> = p
        .networks
        .values()
        .filter(|d| !d.external)
        .map(|d| d.name.clone())
        .collect();
    let external: BTreeSet<&str> = p
        .networks
        .values()
        .filter(|d| d.external)
        .map(|d| d.name.as_str())
        .collect();
    // Networks of removed apps named as the project's (the file may have
    // lost them since).
    let own = format!("{}_", p.name);
    nets.extend(
        apps.iter()
            .map(|x| x.spec.network.clone())
            .filter(|n| n.starts_with(&own) && !external.contains(n.as_str())),
    );
    for n in nets {
        if in_use.contains(&format!("network:{n}")) || network::get(paths, &n).is_err() {
            continue;
        }
        if !project::owns_network(paths, &p.name, &n) {
            eprintln!(
                "rrun: warning: network {n} was not made by project {}: left as it is",
                p.name
            );
            continue;
        }
        match network::remove(paths, &n) {
            Ok(()) => {
                project::forget_network(paths, &n);
                progress(&format!("Network {n}"), "Removed");
            }
            Err(e) => {
                let e = anyhow::Error::from(e).context(format!("network {n}"));
                match first_err {
                    None => first_err = Some(e),
                    Some(_) => eprintln!("rrun: {}", crate::log::error_line(&e)),
                }
            }
        }
    }
    if a.volumes {
        for v in p.volumes.values().filter(|v| !v.external) {
            let dir = paths.volumes().join(&v.name);
            if in_use.contains(&format!("volume:{}", v.name)) || !dir.exists() {
                continue;
            }
            if !project::owns_volume(paths, &p.name, &v.name) {
                eprintln!(
                    "rrun: warning: volume {} was not made by project {}: left as it is",
                    v.name, p.name
                );
                continue;
            }
            match crate::app::rmtree::remove_tree(&dir) {
                Ok(()) => {
                    project::forget_volume(paths, &v.name);
                    progress(&format!("Volume {}", v.name), "Removed");
                }
                Err(e) => {
                    let e = anyhow::anyhow!("volume {}: {e}", v.name);
                    match first_err {
                        None => first_err = Some(e),
                        Some(_) => eprintln!("rrun: {}", crate::log::error_line(&e)),
                    }
                }
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(0),
    }
}

/// The project's apps: NAME, SERVICE, STATE, HEALTH, PORTS.
pub fn ps(paths: &Paths, p: &Project, a: &PsArgs) -> Result<i32> {
    if a.format != "table" && a.format != "json" {
        bail!("--format {:?}: use table or json", a.format);
    }
    let mut rows = Vec::new();
    for x in project::apps_of(paths, &p.name)? {
        let mut v = match crate::app::show::live(paths, &x.spec.name, None) {
            Ok(v) => v,
            Err(e) => json!({"name": x.spec.name, "state": "unknown", "error": format!("{e:#}")}),
        };
        if !a.all && !matches!(v["state"].as_str(), Some("running" | "starting")) {
            continue;
        }
        v["service"] = Value::String(x.service.clone());
        rows.push(v);
    }
    if a.format == "json" {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    let mut table = vec![["NAME", "SERVICE", "STATE", "HEALTH", "PORTS"].map(|h| h.to_string())];
    for v in &rows {
        let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
        let ports = crate::app::show::ports_text(v);
        table.push([s("name"), s("service"), s("state"), s("health"), ports]);
    }
    let rows: Vec<Vec<String>> = table.iter().map(|r| r.to_vec()).collect();
    print!("{}", crate::commands::list::table(&rows));
    Ok(0)
}

/// The project's apps of `services` (all when empty): (service, app name);
/// a name that is no service of the file nor has an app is an error.
fn pick(paths: &Paths, p: &Project, services: &[String]) -> Result<Vec<(String, String)>> {
    let apps = project::apps_of(paths, &p.name)?;
    if let Some(s) = services
        .iter()
        .find(|s| !p.services.contains_key(*s) && !apps.iter().any(|x| &x.service == *s))
    {
        bail!("no such service: {s}");
    }
    Ok(apps
        .into_iter()
        .filter(|x| services.is_empty() || services.contains(&x.service))
        .map(|x| (x.service, x.spec.name))
        .collect())
}

/// The services' logs, each line prefixed "S | "; -f follows all of them
/// until they have all ended.
pub fn logs(paths: &Paths, p: &Project, a: &LogsArgs) -> Result<i32> {
    let apps = pick(paths, p, &a.services)?;
    let opts = crate::app::logs::LogOptions {
        follow: a.follow,
        since: None,
        tail: a.tail,
        timestamps: a.timestamps,
    };
    if a.follow {
        let _ = follow(paths, &apps, &opts).join();
        return Ok(0);
    }
    let names: Vec<String> = apps.iter().map(|(s, _)| s.clone()).collect();
    let pre = prefixes(&names);
    for (s, name) in &apps {
        let dir = state::App::at(paths, name).logs();
        let mut out = Prefixed::new(pre[s].clone(), false);
        let mut err = Prefixed::new(pre[s].clone(), true);
        crate::app::logs::print(&dir, &opts, &|| true, &mut out, &mut err)?;
    }
    Ok(0)
}

/// Stops the services (and those that depend on them with `restart:
/// true`) in reverse order, then starts them in order.
pub fn restart(paths: &Paths, p: &Project, a: &RestartArgs) -> Result<i32> {
    let deps = project::deps_of(p);
    let mut set: BTreeSet<String> = graph::select(&deps, &a.services, true)?;
    if !a.services.is_empty() {
        // Dependents that asked to follow a restart, transitively.
        let mut todo: Vec<String> = set.iter().cloned().collect();
        while let Some(s) = todo.pop() {
            for (n, svc) in &p.services {
                if svc.depends_on.iter().any(|d| d.service == s && d.restart)
                    && set.insert(n.clone())
                {
                    todo.push(n.clone());
                }
            }
        }
    }
    let apps = project::apps_of(paths, &p.name)?;
    let order: Vec<(String, String)> = graph::order(&deps, &set)
        .into_iter()
        .filter_map(|s| {
            let a = apps.iter().find(|x| x.service == s)?;
            Some((s, a.spec.name.clone()))
        })
        .collect();
    if order.is_empty() {
        bail!("no app of these services exists (rrun app compose up first)");
    }
    for (_, name) in order.iter().rev() {
        if monitor_alive(paths, name).is_some() {
            lifecycle::stop(paths, name, a.timeout)?;
        }
    }
    for (_, name) in &order {
        lifecycle::start(paths, name)?;
        progress(name, "Restarted");
    }
    Ok(0)
}
