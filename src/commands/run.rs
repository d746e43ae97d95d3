//! run [--detach] ID: create + start; in the foreground, wait for the
//! container, forward signals to it (relaying its terminal if it has one),
//! clean up and exit with its status.

use std::os::fd::OwnedFd;

use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::lifecycle::create_options;
use crate::cli::{Cli, RunArgs};
use crate::process::{self, Created, notify, tty};
use crate::state::Store;

pub fn run(store: &Store, cli: &Cli, a: &RunArgs) -> Result<i32> {
    if a.detach {
        let Created { dir, mut state, .. } = process::create(store, &run_options(cli, a, false))?;
        let listener = start_listening(cli, dir, &mut state)?;
        if let Some((l, dir)) = listener {
            drop(dir);
            l.relay(state.pid, state.pid)?;
        }
        return Ok(0);
    }

    let mask = block_signals()?;
    let Created {
        dir,
        mut state,
        console,
    } = process::create(store, &run_options(cli, a, true))?;
    let master = match console.as_ref().map(tty::recv_fd) {
        Some(Ok((fd, _))) => Some(fd),
        Some(Err(e)) => {
            let _ = process::destroy(dir, &state);
            return Err(e).context("receiving the container's terminal");
        }
        None => None,
    };
    // The program must see our terminal's size from its first instruction.
    if let Some(m) = &master
        && let Ok(size) = crate::sys::get_winsize(&std::io::stdin())
    {
        let _ = crate::sys::set_winsize(m, size);
    }
    // The directory goes with it: `state`, `kill` and `list` work on the
    // container while it runs.
    let listener = start_listening(cli, dir, &mut state)?.map(|(l, _)| l);
    if let Some(l) = listener {
        // In the foreground rrun stays the unit's main process (runc names
        // itself too); relayed beside the wait, so signals still pass.
        let (pid1, me) = (state.pid, std::process::id() as i32);
        std::thread::spawn(move || {
            if let Err(e) = l.relay(pid1, me) {
                crate::log::warn(&e.to_string());
            }
        });
    }
    let id = state.id.clone();
    let code = supervise(Pid::from_raw(state.pid), master, &mask)?;
    if !a.keep {
        let dir = store.open(&id)?;
        let state = dir.load()?;
        process::destroy(dir, &state)?;
    }
    Ok(code)
}

/// Binds the notify socket (with $NOTIFY_SOCKET), then starts the
/// container; on failure the container is destroyed. Returns the listener
/// (None without a notify socket) with the still-locked directory.
fn start_listening(
    cli: &Cli,
    dir: crate::state::ContainerDir,
    state: &mut crate::state::ContainerState,
) -> Result<Option<(notify::Listener, crate::state::ContainerDir)>> {
    let listener = match notify::Listener::bind(
        &dir,
        cli.notify_socket.as_deref().map(std::path::Path::new),
    ) {
        Ok(l) => l,
        Err(e) => {
            let _ = process::destroy(dir, state);
            return Err(e.into());
        }
    };
    if let Err(e) = process::start(&dir, state) {
        let _ = process::destroy(dir, state);
        return Err(e.into());
    }
    Ok(listener.map(|l| (l, dir)))
}

fn run_options(cli: &Cli, a: &RunArgs, foreground: bool) -> process::CreateOptions {
    process::CreateOptions {
        start_now: true,
        ..create_options(cli, &a.create, foreground)
    }
}

/// Blocks every signal we forward (and SIGCHLD) before the container
/// exists, so none is lost between its start and our wait loop (the
/// container's processes reset their own mask), and makes us the subreaper
/// of what we fork, so a process forked by an intermediate is ours to wait.
pub fn block_signals() -> Result<SigSet> {
    let mut mask = SigSet::all();
    mask.remove(Signal::SIGKILL);
    mask.remove(Signal::SIGSTOP);
    mask.thread_block().context("blocking signals")?;
    crate::sys::set_child_subreaper().context("PR_SET_CHILD_SUBREAPER")?;
    Ok(mask)
}

/// Waits for `pid` (our child), forwarding every signal we get to it, and
/// relaying its terminal when `master` is given. Returns its exit status as
/// a shell would: the code, or 128+N when killed by signal N.
pub fn supervise(pid: Pid, master: Option<OwnedFd>, mask: &SigSet) -> Result<i32> {
    let sfd = SignalFd::new(mask).context("signalfd")?;
    let on_signal = |sig: Signal| -> tty::SignalAction {
        if sig != Signal::SIGCHLD {
            let _ = kill(pid, sig);
            return tty::SignalAction::Continue;
        }
        // Signals coalesce: reap everything that exited.
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, c)) if p == pid => return tty::SignalAction::Exited(c),
                Ok(WaitStatus::Signaled(p, s, _)) if p == pid => {
                    return tty::SignalAction::Exited(128 + s as i32);
                }
                Ok(WaitStatus::StillAlive) | Err(_) => return tty::SignalAction::Continue,
                Ok(_) => continue,
            }
        }
    };
    if let Some(master) = master {
        return tty::relay(&master, &sfd, on_signal).context("relaying the terminal");
    }
    // SIGCHLD may have been consumed before the loop: check once up front.
    if let tty::SignalAction::Exited(c) = on_signal(Signal::SIGCHLD) {
        return Ok(c);
    }
    loop {
        let info = match sfd.read_signal() {
            Ok(Some(i)) => i,
            Ok(None) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context("reading signals"),
        };
        if let Ok(sig) = Signal::try_from(info.ssi_signo as i32)
            && let tty::SignalAction::Exited(c) = on_signal(sig)
        {
            return Ok(c);
        }
    }
}
