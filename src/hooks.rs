//! OCI hooks: each runs as `path` with `args` (argv[0] included) and `env`,
//! the container's state JSON on stdin, and is killed when its `timeout`
//! (seconds) passes. Which hooks run where, and what a failure means, is
//! decided by the callers (process/ and commands/), following config.md.

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    AddressFamily, MsgFlags, Shutdown, SockFlag, SockType, send, shutdown, socketpair,
};
use oci_spec::runtime::Hook;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{kind} hook {path}: {msg}")]
    Failed {
        kind: &'static str,
        path: String,
        msg: String,
    },
}

/// Runs `hooks` in order; the first failure stops the rest.
pub fn run_all(kind: &'static str, hooks: &[Hook], state_json: &[u8]) -> Result<(), HookError> {
    run_all_in(kind, hooks, state_json, None)
}

/// `run_all` with `cwd` as the hooks' working directory (createContainer
/// hooks run in the container's rootfs, as runc runs them; the others in
/// rrun's own).
pub fn run_all_in(
    kind: &'static str,
    hooks: &[Hook],
    state_json: &[u8],
    cwd: Option<&std::path::Path>,
) -> Result<(), HookError> {
    for h in hooks {
        run_one(kind, h, state_json, cwd)?;
    }
    Ok(())
}

fn run_one(
    kind: &'static str,
    hook: &Hook,
    state_json: &[u8],
    cwd: Option<&std::path::Path>,
) -> Result<(), HookError> {
    let path = hook.path().display().to_string();
    let fail = |msg: String| HookError::Failed {
        kind,
        path: path.clone(),
        msg,
    };
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args().as_deref() {
        if let Some(a0) = args.first() {
            cmd.arg0(a0);
        }
        cmd.args(args.iter().skip(1));
    }
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    cmd.env_clear();
    for kv in hook.env().as_deref().unwrap_or_default() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    // Hooks run outside the user's program: they get the runtime's stdout
    // and stderr, like runc's, and the state on stdin. stdin is a socket,
    // not a pipe, so that a hook exiting without reading it costs us an
    // EPIPE (sent with MSG_NOSIGNAL), never a SIGPIPE.
    // A startContainer hook runs under the container's seccomp filter: a
    // profile without socketpair gets a pipe, written with SIGPIPE ignored.
    let (ours, theirs, pipe) = match socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    ) {
        Ok((ours, theirs)) => {
            let _ = shutdown(theirs.as_raw_fd(), Shutdown::Write);
            (ours, theirs, false)
        }
        Err(_) => {
            let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(|e| fail(format!("pipe: {e}")))?;
            (w, r, true)
        }
    };
    cmd.stdin(Stdio::from(theirs));
    let mut child = cmd
        .spawn()
        .map_err(|e| fail(format!("cannot start: {e}")))?;
    // The state fits in the socket buffer: a hook that never reads stdin
    // does not block us.
    let sigpipe_was_ignored = pipe && crate::sys::ignore_sigpipe();
    let mut sent = 0;
    while sent < state_json.len() {
        let rest = &state_json[sent..];
        let r = if pipe {
            nix::unistd::write(&ours, rest)
        } else {
            send(ours.as_raw_fd(), rest, MsgFlags::MSG_NOSIGNAL)
        };
        match r {
            Ok(n) => sent += n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    if pipe {
        crate::sys::restore_sigpipe(sigpipe_was_ignored);
    }
    drop(ours);
    let timeout = hook.timeout().map(|t| Duration::from_secs(t as u64));
    let status = match timeout {
        None => child.wait().map_err(|e| fail(format!("wait: {e}")))?,
        // A startContainer hook runs under the container's seccomp filter,
        // which may refuse pidfd_open (newer than many profiles): then the
        // child is polled with wait4(WNOHANG) instead.
        Some(t) => match crate::sys::pidfd_open(child.id() as i32) {
            Err(_) => {
                let deadline = std::time::Instant::now() + t;
                loop {
                    if let Some(status) =
                        child.try_wait().map_err(|e| fail(format!("wait: {e}")))?
                    {
                        break status;
                    }
                    if std::time::Instant::now() >= deadline {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(fail(format!("timed out after {}s", t.as_secs())));
                    }
                    // Not thread::sleep, which panics when the filter
                    // refuses the restart of an interrupted sleep.
                    let _ = poll(&mut [], PollTimeout::from(10u8));
                }
            }
            Ok(pidfd) => {
                let mut fds = [PollFd::new(
                    std::os::fd::AsFd::as_fd(&pidfd),
                    PollFlags::POLLIN,
                )];
                let ms = PollTimeout::try_from(t.as_millis().min(i32::MAX as u128) as i32)
                    .unwrap_or(PollTimeout::MAX);
                let ready = loop {
                    match poll(&mut fds, ms) {
                        Err(nix::errno::Errno::EINTR) => continue,
                        other => break other.unwrap_or(0),
                    }
                };
                if ready == 0 {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(fail(format!("timed out after {}s", t.as_secs())));
                }
                child.wait().map_err(|e| fail(format!("wait: {e}")))?
            }
        },
    };
    if status.success() {
        Ok(())
    } else {
        Err(fail(format!("exited with {status}")))
    }
}
