//! `rrun app`: the app manager — images run as managed, networked, logged
//! services with no daemon. A layer above the runtime: it uses the
//! runtime's modules as a library (image unpacking, bundles, the
//! lifecycle verbs); no runtime module imports anything from here (a test
//! in tests/app.rs checks).
//!
//! - cli:       the `rrun app` command line
//! - paths:     where everything lives (app root, run directory)
//! - settings:  an app's settings (app.json): parsing and validation, pure
//! - state:     an app on disk: settings, state, events, its lock
//! - store:     the image store (layers unpacked once, shared, read-only)
//! - overlay:   each app's root: overlayfs over the image's layers
//! - network:   networks and ports through the CNI plugins (cni: the protocol)
//! - bundle:    an app's config.json
//! - runtime:   the runtime's verbs, called in-process
//! - monitor:   the per-app host-side monitor (logs, exits), its config
//! - notify:    readiness under systemd (sd_notify), a unit's leaf cgroup
//! - spawn:     the monitor's helper: starts containers, tells exit reasons
//! - logs:      reading and following app logs
//! - rmtree:    removing an app's directory, whatever the app left in it
//! - lifecycle: run/upgrade, start, stop, restart, rm, update, foreground
//! - show:      ls, inspect, logs, events, images, network ls
//! - unit:      systemd units for apps, compose projects, the status page
//! - compose:   compose files: up, down, ps, logs, restart, config; wait
//! - serve:     the status page, /metrics and /api (`rrun app serve`)

pub mod bundle;
pub mod cli;
pub mod cni;
pub mod compose;
pub mod lifecycle;
pub mod logs;
pub mod monitor;
pub mod network;
pub mod notify;
pub mod overlay;
pub mod paths;
pub mod rmtree;
pub mod runtime;
pub mod serve;
pub mod settings;
pub mod show;
pub mod spawn;
pub mod state;
pub mod store;
pub mod unit;

use anyhow::Result;

use cli::{AppArgs, AppCommand, NetworkCommand};

/// Runs `rrun app ...`; returns the exit code.
pub fn main(a: &AppArgs) -> Result<i32> {
    if let Some(c) = compose::config::config_of(&a.command) {
        // Reads the compose files only: it makes no app root.
        return compose::config::config(c.0, c.1);
    }
    let paths = paths::from_flag(a.app_root.as_deref());
    if let AppCommand::Unit(u) = &a.command {
        // Generation reads app settings only: it makes no app root.
        return unit::main(&paths, u);
    }
    paths
        .make_private()
        .map_err(|e| anyhow::anyhow!("preparing the app root {}: {e}", paths.root.display()))?;
    match &a.command {
        AppCommand::Run(r) if r.sd_notify => notify::run(&paths, r),
        AppCommand::Run(r) => lifecycle::run(&paths, r),
        AppCommand::Ls(l) => show::ls(&paths, l).map(|_| 0),
        AppCommand::Logs(l) => show::logs(&paths, l).map(|_| 0),
        AppCommand::Stop(s) => lifecycle::stop_cmd(&paths, s).map(|_| 0),
        AppCommand::Start(n) if n.sd_notify => notify::start(&paths, &n.names).map(|_| 0),
        AppCommand::Start(n) => {
            lifecycle::each(&n.names, |n| lifecycle::start(&paths, n)).map(|_| 0)
        }
        AppCommand::Restart(s) => lifecycle::restart(&paths, s).map(|_| 0),
        AppCommand::Rm(r) => {
            let names = match &r.if_project {
                Some(p) => lifecycle::of_project(&paths, &r.names, p),
                None => r.names.clone(),
            };
            lifecycle::rm(&paths, &names, r.force).map(|_| 0)
        }
        AppCommand::Inspect(n) => show::inspect(&paths, &n.names).map(|_| 0),
        AppCommand::Update(u) => lifecycle::update(&paths, u).map(|_| 0),
        AppCommand::Events(e) => show::events(&paths, &e.name, e.follow).map(|_| 0),
        AppCommand::Images(i) => show::images(&paths, &i.format).map(|_| 0),
        AppCommand::Prune => show::prune(&paths).map(|_| 0),
        AppCommand::Network(NetworkCommand::Create { subnet, name }) => {
            let n = network::create(&paths, name, subnet.as_deref())?;
            println!("{}", n.name);
            Ok(0)
        }
        AppCommand::Network(NetworkCommand::Ls { format }) => {
            show::networks(&paths, format).map(|_| 0)
        }
        AppCommand::Network(NetworkCommand::Rm { names }) => {
            lifecycle::each(names, |n| network::remove(&paths, n).map_err(Into::into)).map(|_| 0)
        }
        AppCommand::Unit(u) => unit::main(&paths, u),
        AppCommand::Compose(c) => compose::args::main(&paths, c),
        AppCommand::Up(u) => compose::up::up(&paths, &u.opts.load()?, &u.args),
        AppCommand::Down(d) => compose::ops::down(&paths, &d.opts.load()?, &d.args),
        AppCommand::Config(c) => compose::config::config(&c.opts, &c.args),
        AppCommand::Wait(w) => compose::wait::wait_cmd(&paths, w),
        AppCommand::Serve(s) => serve::serve(&paths, s),
        AppCommand::Spawn(s) => spawn::spawn(&paths, s),
    }
}
