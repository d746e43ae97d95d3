//! exec [flags] ID [COMMAND ARGS...]

use anyhow::{Context, Result, bail};
use nix::unistd::Pid;

use super::run::{block_signals, supervise};
use crate::cli::ExecArgs;
use crate::process::exec::{self, ExecOptions, Overrides};
use crate::process::tty;
use crate::state::Store;

pub fn exec(store: &Store, a: &ExecArgs) -> Result<i32> {
    let dir = store.open(&a.id)?;
    let state = dir.load()?;
    // Other commands (kill, delete, a second exec) must not wait for us.
    drop(dir);
    let Some(container) = state.spec.as_ref().and_then(|s| s.process().clone()) else {
        bail!("container {}: no process config recorded", a.id);
    };
    let from_file = match &a.process {
        Some(path) => {
            let data = crate::spec::limits::read_capped(path, "--process")?;
            let de = &mut serde_json::Deserializer::from_slice(&data);
            let p = serde_path_to_error::deserialize(de).map_err(|e| {
                anyhow::anyhow!(
                    "--process {}: invalid JSON at {}: {}",
                    path.display(),
                    e.path(),
                    e.inner()
                )
            })?;
            crate::spec::limits::check_process(&p, &format!("--process {}: ", path.display()))?;
            Some(p)
        }
        None => None,
    };
    let overrides = Overrides {
        args: a.command.clone(),
        tty: a.tty,
        cwd: a.cwd.clone(),
        env: a.env.clone(),
        user: a.user.clone(),
        additional_gids: a.additional_gids.clone(),
        caps: a.cap.clone(),
        no_new_privs: a.no_new_privs,
        apparmor: a.apparmor.clone(),
        process_label: a.process_label.clone(),
    };
    let mut process = exec::build_process(&container, from_file, &overrides)?;
    // A relayed terminal starts with our terminal's size, so the program
    // never sees another one.
    if !a.detach
        && a.console_socket.is_none()
        && process.terminal().unwrap_or(false)
        && let Ok(size) = crate::sys::get_winsize(&std::io::stdin())
    {
        let b =
            serde_json::from_value(serde_json::json!({"height": size.rows, "width": size.cols}))
                .context("console size")?;
        process.set_console_size(Some(b));
    }
    let opts = ExecOptions {
        process,
        console_socket: a.console_socket.clone(),
        detach: a.detach,
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
        sub_cgroups: a.cgroup.clone(),
    };
    let mask = if a.detach {
        None
    } else {
        Some(block_signals()?)
    };
    let execed = exec::exec(&state, &opts)?;
    if let Some(p) = &a.pid_file {
        crate::process::write_pid_file(p, execed.pid.as_raw())
            .with_context(|| format!("pid file {}", p.display()))?;
    }
    let Some(mask) = mask else { return Ok(0) };
    let master = match execed.console.as_ref().map(tty::recv_fd) {
        Some(r) => Some(r.context("receiving the process's terminal")?.0),
        None => None,
    };
    supervise(Pid::from_raw(execed.pid.as_raw()), master, &mask)
}
