//! Child processes of the bench. One reaper thread reaps every child with
//! wait4(2): the runtimes we spawn (their exit status, wall time and
//! rusage) and the container inits that are reparented to us as subreaper
//! (which nobody else would reap on a host whose PID 1 does not).
//! Nothing else in the bench may wait for a child, so every child is
//! started through [`run`].

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::{Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// What one finished command did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Exit code, or 128 + signal number, or 124 after a timeout (as timeout(1)).
    pub code: i32,
    /// From just before spawn to the moment the reaper saw it exit.
    pub wall: Duration,
    /// Peak RSS of the process and of the descendants it waited for (KiB).
    pub maxrss_kib: i64,
    /// User + system CPU time of the process and its waited-for descendants.
    pub cpu: Duration,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.code == 0
    }

    /// The last non-empty stderr line (runtimes put the reason there).
    pub fn reason(&self) -> String {
        let line = self
            .stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        format!("exit {}: {}", self.code, line.trim())
    }
}

struct Reaped {
    status: i32,
    rusage: libc::rusage,
    at: Instant,
}

#[derive(Default)]
struct Table {
    waiting: HashMap<i32, SyncSender<Reaped>>,
    spawned: u64,
}

struct Reaper {
    table: Mutex<Table>,
    spawned: Condvar,
    tmp: PathBuf,
    seq: AtomicU64,
}

static REAPER: OnceLock<Reaper> = OnceLock::new();

/// Become a child subreaper and start the reaper thread. `tmp` holds the
/// files that catch each command's stdout and stderr.
pub fn init(tmp: PathBuf) -> io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(io::Error::from)?;
    fs::create_dir_all(&tmp)?;
    let reaper = Reaper {
        table: Mutex::new(Table::default()),
        spawned: Condvar::new(),
        tmp,
        seq: AtomicU64::new(0),
    };
    if REAPER.set(reaper).is_err() {
        return Ok(());
    }
    thread::Builder::new()
        .name("reaper".into())
        .spawn(reap_forever)?;
    Ok(())
}

fn reaper() -> &'static Reaper {
    REAPER.get().expect("proc::init runs before any command")
}

fn lock(r: &Reaper) -> std::sync::MutexGuard<'_, Table> {
    r.table.lock().unwrap_or_else(|e| e.into_inner())
}

fn reap_forever() {
    let r = reaper();
    loop {
        let seen = lock(r).spawned;
        match wait4_any() {
            Ok((pid, status, rusage)) => {
                let at = Instant::now();
                if let Some(tx) = lock(r).waiting.remove(&pid) {
                    let _ = tx.send(Reaped { status, rusage, at });
                }
            }
            Err(Errno::ECHILD) => {
                // No children: sleep until the next spawn (the generation
                // check closes the window between wait4 and this lock).
                let t = lock(r);
                if t.spawned == seen {
                    let _ = r.spawned.wait_timeout(t, Duration::from_millis(200));
                }
            }
            Err(Errno::EINTR) => {}
            Err(e) => {
                say(&format!("wait4: {e}"));
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// wait4(-1): the next child to exit, its raw status and its rusage, whose
/// ru_maxrss covers the child and the descendants it waited for.
fn wait4_any() -> Result<(i32, i32, libc::rusage), Errno> {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is a plain C struct of integers, for which all-zero
    // bytes are a valid value; wait4 only writes through the two pointers,
    // which point to these live, writable locals for the whole call.
    let (pid, rusage) = unsafe {
        let mut rusage: libc::rusage = std::mem::zeroed();
        let pid = libc::wait4(-1, &mut status, 0, &mut rusage);
        (pid, rusage)
    };
    if pid < 0 {
        return Err(Errno::last());
    }
    Ok((pid, status, rusage))
}

fn decode(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        255
    }
}

fn tv(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
}

/// Run `cmd` to completion (stdin from /dev/null, stdout and stderr caught
/// in files: a pipe would stay open in a container the command leaves
/// running). Killed with SIGKILL after `timeout`.
pub fn run(cmd: &mut Command, timeout: Duration) -> io::Result<Outcome> {
    let r = reaper();
    let n = r.seq.fetch_add(1, Ordering::Relaxed);
    let out_path = r.tmp.join(format!("{n}.out"));
    let err_path = r.tmp.join(format!("{n}.err"));
    cmd.stdin(Stdio::null())
        .stdout(File::create(&out_path)?)
        .stderr(File::create(&err_path)?);
    let (tx, rx) = mpsc::sync_channel(1);
    let start;
    let pid;
    {
        // Spawn under the lock: the reaper must not reap this child before
        // it knows whom to tell.
        let mut t = lock(r);
        start = Instant::now();
        let spawned = cmd.spawn();
        let child = match spawned {
            Ok(c) => c,
            Err(e) => {
                let _ = fs::remove_file(&out_path);
                let _ = fs::remove_file(&err_path);
                return Err(e);
            }
        };
        pid = child.id() as i32;
        t.waiting.insert(pid, tx);
        t.spawned += 1;
        r.spawned.notify_all();
    }
    let mut timed_out = false;
    let reaped = match rx.recv_timeout(timeout) {
        Ok(x) => x,
        Err(RecvTimeoutError::Timeout) => {
            timed_out = true;
            // Still unreaped while listed, so the pid cannot be reused yet.
            if lock(r).waiting.contains_key(&pid) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            rx.recv_timeout(Duration::from_secs(30))
                .map_err(|_| io::Error::other(format!("pid {pid} not reaped after SIGKILL")))?
        }
        Err(RecvTimeoutError::Disconnected) => {
            return Err(io::Error::other("reaper dropped a child"));
        }
    };
    let stdout = fs::read_to_string(&out_path).unwrap_or_default();
    let mut stderr = fs::read_to_string(&err_path).unwrap_or_default();
    let _ = fs::remove_file(&out_path);
    let _ = fs::remove_file(&err_path);
    let mut code = decode(reaped.status);
    if timed_out {
        code = 124;
        stderr.push_str(&format!("\ntimed out after {timeout:?}"));
    }
    if std::env::var_os("RRUN_BENCH_TRACE").is_some() {
        say(&format!(
            "{:.1} ms exit {code}: {cmd:?}",
            reaped.at.duration_since(start).as_secs_f64() * 1e3
        ));
    }
    Ok(Outcome {
        code,
        wall: reaped.at.duration_since(start),
        maxrss_kib: reaped.rusage.ru_maxrss,
        cpu: tv(reaped.rusage.ru_utime) + tv(reaped.rusage.ru_stime),
        stdout,
        stderr,
    })
}

/// One progress line on stderr. Never panics (eprintln! would when stderr
/// is a closed pipe, and skip the cleanup).
pub fn say(msg: &str) {
    use std::io::Write;
    let _ = writeln!(io::stderr(), "rrun-bench: {msg}");
}

/// SIGKILL every command still running (on interrupt: a hung runtime must
/// not outlive the bench).
pub fn kill_all() {
    let t = lock(reaper());
    for pid in t.waiting.keys() {
        let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
    }
}

/// Run and require exit 0; the error names the command and its reason.
pub fn run_ok(cmd: &mut Command, timeout: Duration) -> io::Result<Outcome> {
    let o = run(cmd, timeout)?;
    if !o.ok() {
        return Err(io::Error::other(format!("{cmd:?}: {}", o.reason())));
    }
    Ok(o)
}

/// Whether `pid` has exited (gone, or a zombie not yet reaped).
pub fn exited(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => {
            // The state follows the last ')' (the command name may hold one).
            let state = s.rsplit_once(')').map(|(_, rest)| rest.trim_start());
            matches!(state.and_then(|r| r.chars().next()), Some('Z' | 'X') | None)
        }
    }
}

/// Poll until `pid` exited; false on timeout.
pub fn wait_exited(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if exited(pid) {
            return true;
        }
        thread::sleep(Duration::from_micros(500));
    }
    exited(pid)
}

/// utime + stime of `pid` in clock ticks (/proc/<pid>/stat fields 14, 15).
pub fn cpu_ticks(pid: i32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): field n is f[n - 3].
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_exit_and_signal() {
        assert_eq!(decode(3 << 8), 3);
        assert_eq!(decode(9), 137);
    }

    #[test]
    fn own_process_is_not_exited() {
        assert!(!exited(std::process::id() as i32));
        assert!(cpu_ticks(std::process::id() as i32).is_some());
    }
}
