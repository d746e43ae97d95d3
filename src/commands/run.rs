//! run [--detach] ID: create + start; in the foreground, wait for the
//! container, forward signals to it, clean up and exit with its status.

use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::lifecycle::create_options;
use crate::cli::{Cli, RunArgs};
use crate::process::{self, Created};
use crate::state::Store;

pub fn run(store: &Store, cli: &Cli, a: &RunArgs) -> Result<i32> {
    if a.detach {
        let Created { dir, mut state } =
            process::create(store, &create_options(cli, &a.create, false))?;
        if let Err(e) = process::start(&dir, &mut state) {
            let _ = process::destroy(dir, &state);
            return Err(e.into());
        }
        return Ok(0);
    }

    // Block every signal we forward (and SIGCHLD) before the container
    // exists, so none is lost between its start and our wait loop. The
    // container init resets its own mask before it runs anything.
    let mut mask = SigSet::all();
    mask.remove(Signal::SIGKILL);
    mask.remove(Signal::SIGSTOP);
    mask.thread_block().context("blocking signals")?;
    // With an intermediate process, the init is our grandchild: become its
    // subreaper so we can wait for it.
    crate::sys::set_child_subreaper().context("PR_SET_CHILD_SUBREAPER")?;

    let Created { dir, mut state } = process::create(store, &create_options(cli, &a.create, true))?;
    if let Err(e) = process::start(&dir, &mut state) {
        let _ = process::destroy(dir, &state);
        return Err(e.into());
    }
    let id = state.id.clone();
    let pid = Pid::from_raw(state.pid);
    // Let `state`, `kill` and `list` work on the container while it runs.
    drop(dir);

    let sfd = SignalFd::new(&mask).context("signalfd")?;
    let code = 'outer: loop {
        let info = match sfd.read_signal() {
            Ok(Some(i)) => i,
            Ok(None) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context("reading signals"),
        };
        let signo = info.ssi_signo as i32;
        if signo == libc::SIGCHLD {
            // Signals coalesce: reap everything that exited.
            loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(p, c)) if p == pid => break 'outer c,
                    Ok(WaitStatus::Signaled(p, s, _)) if p == pid => break 'outer 128 + s as i32,
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(_) => continue,
                }
            }
        } else if let Ok(sig) = Signal::try_from(signo) {
            let _ = kill(pid, sig);
        }
    };

    if !a.keep {
        let dir = store.open(&id)?;
        let state = dir.load()?;
        process::destroy(dir, &state)?;
    }
    Ok(code)
}
