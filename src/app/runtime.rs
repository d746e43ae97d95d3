//! The runtime as the app manager uses it: the same verbs as on the command
//! line (`create`, `start`, `kill`, `delete`, `update`), called in-process
//! on the apps' own state root, so every check and cleanup of the runtime
//! applies to apps unchanged.

use std::path::Path;

use anyhow::{Context, Result};
use clap::Parser;

use super::paths::Paths;
use crate::cli::Cli;
use crate::state::{ContainerState, Status, Store};

fn verb(paths: &Paths, args: &[&str]) -> Result<i32> {
    let root = paths.runtime_root();
    // Never the caller's $NOTIFY_SOCKET (a unit's): readiness of an app is
    // the app manager's to tell (health), not its program's.
    let mut argv: Vec<String> = vec![
        "rrun".into(),
        "--root".into(),
        root.display().to_string(),
        "--notify-socket=".into(),
    ];
    argv.extend(args.iter().map(|a| a.to_string()));
    let cli = Cli::try_parse_from(&argv).with_context(|| format!("runtime call {args:?}"))?;
    crate::commands::dispatch(&cli)
}

/// Creates and starts the app's container; returns its init's host pid.
pub fn create_and_start(paths: &Paths, name: &str, bundle: &Path, pid_file: &Path) -> Result<i32> {
    let id = paths.container_id(name);
    let b = bundle.display().to_string();
    let p = pid_file.display().to_string();
    verb(paths, &["create", "--bundle", &b, "--pid-file", &p, &id])?;
    if let Err(e) = verb(paths, &["start", &id]) {
        let _ = delete(paths, name);
        return Err(e);
    }
    let st = state(paths, name)?.context("the container vanished right after start")?;
    Ok(st.pid)
}

/// The container's state, None when there is none.
pub fn state(paths: &Paths, name: &str) -> Result<Option<ContainerState>> {
    let store = Store::new(&paths.runtime_root());
    match store.peek(&paths.container_id(name)) {
        Ok(s) => Ok(Some(s)),
        Err(e) => {
            if store
                .list()
                .unwrap_or_default()
                .contains(&paths.container_id(name))
            {
                Err(e.into())
            } else {
                Ok(None)
            }
        }
    }
}

pub fn running(paths: &Paths, name: &str) -> bool {
    matches!(state(paths, name), Ok(Some(s)) if matches!(s.status(), Status::Running | Status::Paused | Status::Created))
}

/// Signals the container's init (`all`: every process of it).
pub fn kill(paths: &Paths, name: &str, signal: &str, all: bool) -> Result<()> {
    let id = paths.container_id(name);
    let mut args = vec!["kill"];
    if all {
        args.push("--all");
    }
    args.extend([id.as_str(), signal]);
    verb(paths, &args).map(|_| ())
}

/// Deletes the container, whatever its status (idempotent).
pub fn delete(paths: &Paths, name: &str) -> Result<()> {
    let id = paths.container_id(name);
    verb(paths, &["delete", "--force", &id]).map(|_| ())
}

/// Live resource changes (`rrun update`).
pub fn update(paths: &Paths, name: &str, args: &[String]) -> Result<()> {
    let id = paths.container_id(name);
    let mut v: Vec<&str> = vec!["update"];
    v.extend(args.iter().map(String::as_str));
    v.push(&id);
    verb(paths, &v).map(|_| ())
}
