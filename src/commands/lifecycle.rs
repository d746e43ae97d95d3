//! create, start and state.

use anyhow::{Context, Result};

use crate::cli::{Cli, CreateArgs};
use crate::process::{self, CreateOptions, Created, notify};
use crate::state::Store;

pub fn create_options(cli: &Cli, a: &CreateArgs, foreground: bool) -> CreateOptions {
    CreateOptions {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        systemd_cgroup: cli.systemd_cgroup,
        foreground,
        start_now: false,
        notify_socket: crate::process::notify::host_socket(
            cli.notify_socket.as_deref().map(std::path::Path::new),
        )
        .is_some(),
    }
}

pub fn create(store: &Store, cli: &Cli, a: &CreateArgs) -> Result<Created> {
    let created = process::create(store, &create_options(cli, a, false))?;
    Ok(created)
}

pub fn start(store: &Store, cli: &Cli, id: &str) -> Result<()> {
    let dir = store.open(id)?;
    let mut state = dir.load()?;
    // Bound before the program runs, so no READY it sends is lost.
    let listener =
        notify::Listener::bind(&dir, cli.notify_socket.as_deref().map(std::path::Path::new))?;
    process::start(&dir, &mut state)?;
    if let Some(l) = listener {
        // Others may use the container meanwhile: runc waits the same way.
        let pid = state.pid;
        drop(dir);
        l.relay(pid, pid)?;
    }
    Ok(())
}

pub fn state(store: &Store, id: &str) -> Result<()> {
    let dir = store.open(id)?;
    let mut state = dir.load()?;
    let full = state.full_state();
    // Remember the init's status while it can be read, for after it stops.
    if let Some(init) = full
        .init
        .clone()
        .filter(|_| full.status == crate::state::Status::Running)
        && state.init_status.as_ref() != Some(&init)
    {
        drop(full);
        state.init_status = Some(init);
        dir.save(&state)?;
    }
    let json = serde_json::to_string_pretty(&state.full_state()).context("serialising state")?;
    println!("{json}");
    Ok(())
}
