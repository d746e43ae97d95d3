//! One function per verb: load, call, print. Errors leave as anyhow with
//! context; main.rs turns them into one stderr line and a log line.

pub mod cgroup_cmds;
pub mod delete;
pub mod exec;
pub mod features;
pub mod kill;
pub mod lifecycle;
pub mod list;
pub mod run;
pub mod spec;
pub mod unpack;

use anyhow::{Result, bail};

use crate::cli::{Cli, Command};
use crate::state::Store;

/// /run/rrun for root; an unprivileged user gets a directory of its own,
/// as runc does ($XDG_RUNTIME_DIR/runc).
fn default_root() -> std::path::PathBuf {
    if nix::unistd::geteuid().is_root() {
        return "/run/rrun".into();
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => std::path::PathBuf::from(d).join("rrun"),
        None => std::path::PathBuf::from(format!("/tmp/rrun-{}", nix::unistd::geteuid())),
    }
}

/// Runs the command; returns the process exit code.
pub fn dispatch(cli: &Cli) -> Result<i32> {
    let root = cli.root.clone().unwrap_or_else(default_root);
    let store = Store::new(&root);
    let Some(command) = &cli.command else {
        bail!("no command given (see rrun --help)");
    };
    match command {
        Command::Create(a) => lifecycle::create(&store, cli, a).map(|_| 0),
        Command::Start(a) => lifecycle::start(&store, cli, &a.id).map(|_| 0),
        Command::State(a) => lifecycle::state(&store, &a.id).map(|_| 0),
        Command::Kill(a) => kill::kill(&store, a).map(|_| 0),
        Command::Delete(a) => delete::delete(&store, a).map(|_| 0),
        Command::Run(a) => run::run(&store, cli, a),
        Command::List(a) => list::list(&store, a).map(|_| 0),
        Command::Spec(a) => spec::spec(a).map(|_| 0),
        Command::Exec(a) => exec::exec(&store, a),
        Command::Features => features::features().map(|_| 0),
        Command::Pause(a) => cgroup_cmds::pause(&store, &a.id).map(|_| 0),
        Command::Resume(a) => cgroup_cmds::resume(&store, &a.id).map(|_| 0),
        Command::Ps(a) => cgroup_cmds::ps(&store, a).map(|_| 0),
        Command::Events(a) => cgroup_cmds::events(&store, a).map(|_| 0),
        Command::Update(a) => cgroup_cmds::update(&store, a).map(|_| 0),
        Command::Unpack(a) => unpack::unpack(a).map(|_| 0),
        // main.rs hands `app` to the app manager: the runtime never calls up.
        Command::App(_) => bail!("rrun app: dispatched by main"),
        Command::Other(args) => {
            let verb = args.first().map(String::as_str).unwrap_or("");
            match verb {
                "checkpoint" | "restore" => {
                    bail!("rrun {verb}: not supported by this version of rrun")
                }
                _ => bail!("unknown command {verb:?} (see rrun --help)"),
            }
        }
    }
}
