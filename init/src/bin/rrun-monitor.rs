//! rrun-monitor: the small host-side process that stays with each app
//! (`rrun app`), as conmon does for podman. It owns the app's stdout and
//! stderr pipes, writes what comes through them to the app's log file
//! (timestamped, rotated), and outlives every run of the app's container:
//! the write ends stay open here across restarts, so the app never gets
//! SIGPIPE or EIO because a reader or terminal went away.
//!
//! Protocol (rrun's src/app/monitor.rs starts it; the helper is
//! `rrun app _spawn NAME`):
//! 1. argv[1] = the app's directory; fd 3 = the sync pipe's write end.
//!    Config from <dir>/monitor.json. Any failure before the first helper
//!    runs is written to fd 3 as "error: monitor: <why>\n".
//! 2. The helper runs with stdio (/dev/null, stdout pipe, stderr pipe) and
//!    fd 3 = the sync pipe on its first run, /dev/null on later runs,
//!    which also get `--after-exit exit:N|signal:N`. Every run gets both
//!    ends of one socketpair as fds 4 and 5: the helper leaves the init's
//!    status directory fd in flight there (the final status outlives the
//!    container that way) and the next helper receives it.
//! 3. Helper exit 0: it started the container and wrote the init's pid
//!    to initPid; the monitor (a subreaper, so the init is its child once
//!    the helper is gone) waits for that pid, reaping every other child
//!    silently. The init's end is written to exitFile and the helper runs
//!    again.
//! 4. Helper exit non-zero (3: done, cleanly; 4: done, the app failed;
//!    anything else: the helper failed): the pipes are drained and the
//!    monitor exits 0 after a 3, 2 after a 4, else 1 — under a systemd
//!    unit the monitor is the main process, and this is what it reports.
//!
//! SIGTERM, SIGINT and SIGHUP are ignored: only the helper ends it.
//! Built like rrun-init (no std, no libc) so that its idle footprint is
//! its own few pages.

#![no_std]
#![no_main]

extern crate alloc;

#[path = "../monitor/mod.rs"]
mod monitor;
#[path = "../rt.rs"]
#[allow(dead_code)]
mod rt;
#[path = "../sys.rs"]
#[allow(dead_code)]
mod sys;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use linux_raw_sys::general as k;

use monitor::logfile::{LogFile, timestamp};
use monitor::{Config, msys};
use sys::Wait;

/// Reads from the pipes are at most this long: a longer line is logged
/// as several P lines and one F line.
const READ: usize = 16 << 10;
/// At most this many reads per stream when draining (16 MiB).
const DRAIN_READS: usize = 1024;
/// Exits of children other than the one awaited, kept for the case where
/// the init's end is reaped before the helper that names it.
const REAPED_MAX: usize = 64;

fn main(args: &[&[u8]]) -> ! {
    msys::close_from(4);
    // The sync pipe moves off fd 3 (close-on-exec): only the first
    // helper gets it, as its fd 3.
    let sync = msys::dup_cloexec(3, 3).ok();
    if sync.is_some() {
        sys::close(3);
    }
    // 0..2 open (on /dev/null if need be), so no fd of ours lands there
    // and gets replaced in a helper before it is copied.
    while let Ok(fd) = msys::open("/dev/null", k::O_RDWR, 0) {
        if fd > 2 {
            sys::close(fd);
            break;
        }
    }
    let fail = |why: String| -> ! {
        mlog!("{why}");
        if let Some(fd) = sync {
            let _ = sys::write_all(fd, format!("error: monitor: {why}\n").as_bytes());
        }
        sys::exit(1)
    };
    let Some(dir) = args.get(1).and_then(|a| core::str::from_utf8(a).ok()) else {
        fail("usage: rrun-monitor APP_DIR (it is run by rrun, not by hand)".into())
    };
    let cfg_path = format!("{dir}/monitor.json");
    let cfg: Config = match msys::read_file(&cfg_path) {
        Ok(data) => match serde_json::from_slice(&data) {
            Ok(c) => c,
            Err(e) => fail(format!("{cfg_path}: {e}")),
        },
        Err(e) => fail(format!("reading {cfg_path}: {}", msys::why(e))),
    };
    if cfg.helper.first().is_none_or(|p| !p.starts_with('/')) {
        fail(format!("{cfg_path}: helper must be an absolute argv"));
    }
    let setup = || -> Result<Monitor, String> {
        let at = |what: &'static str| move |e: sys::Errno| format!("{what}: {}", msys::why(e));
        msys::set_child_subreaper().map_err(at("PR_SET_CHILD_SUBREAPER"))?;
        for sig in [k::SIGTERM, k::SIGINT, k::SIGHUP, k::SIGPIPE] {
            msys::ignore_signal(sig).map_err(at("sigaction"))?;
        }
        let sigchld = msys::signalfd(k::SIGCHLD).map_err(at("signalfd"))?;
        let devnull = msys::open("/dev/null", k::O_RDWR, 0).map_err(at("/dev/null"))?;
        let (out_r, out_w) = msys::pipe().map_err(at("pipe"))?;
        let (err_r, err_w) = msys::pipe().map_err(at("pipe"))?;
        for fd in [out_r, err_r] {
            msys::set_nonblocking(fd).map_err(at("O_NONBLOCK"))?;
        }
        let status = msys::socketpair().map_err(at("socketpair"))?;
        let max_files = if cfg.max_files == 0 { 5 } else { cfg.max_files };
        let log = LogFile::open(&cfg.log, cfg.max_size, max_files)
            .map_err(|e| format!("opening {}: {}", cfg.log, msys::why(e)))?;
        Ok(Monitor {
            sigchld,
            devnull,
            out: [out_r, out_w],
            err: [err_r, err_w],
            status: [status.0, status.1],
            log,
            buf: Vec::new(),
            reaped: Vec::new(),
        })
    };
    let mut m = match setup() {
        Ok(m) => m,
        Err(e) => fail(e),
    };
    let first = match m.run_helper(&cfg, sync.unwrap_or(m.devnull), None) {
        Ok(pid) => pid,
        Err(e) => fail(format!("starting {}: {}", cfg.helper[0], msys::why(e))),
    };
    // The helper holds the sync pipe now: rrun reads its end of file when
    // the helper is gone, whatever happens to it.
    if let Some(fd) = sync {
        sys::close(fd);
    }
    m.run(&cfg, first)
}

struct Monitor {
    sigchld: i32,
    devnull: i32,
    /// [read, write]: the write ends are kept open here for good.
    out: [i32; 2],
    err: [i32; 2],
    /// Both ends of the socketpair on which helpers leave the init's
    /// status directory in flight (fds 4 and 5 of every helper).
    status: [i32; 2],
    log: LogFile,
    buf: Vec<u8>,
    reaped: Vec<(sys::Pid, Ended)>,
}

#[derive(Clone, Copy, PartialEq)]
enum Ended {
    Exit(i32),
    Signal(i32),
}

impl Ended {
    fn arg(self) -> String {
        match self {
            Ended::Exit(n) => format!("exit:{n}"),
            Ended::Signal(n) => format!("signal:{n}"),
        }
    }
}

/// Whom the monitor is waiting for.
enum Awaiting {
    Helper(sys::Pid),
    Init(sys::Pid),
}

impl Monitor {
    fn run(&mut self, cfg: &Config, helper: sys::Pid) -> ! {
        let mut awaiting = Awaiting::Helper(helper);
        loop {
            let mut fds = [self.out[0], self.err[0], self.sigchld].map(|fd| k::pollfd {
                fd,
                events: k::POLLIN as i16,
                revents: 0,
            });
            if let Err(e) = msys::poll(&mut fds) {
                mlog!("poll: {}", msys::why(e));
                sys::sleep(core::time::Duration::from_millis(100));
                continue;
            }
            // Output first: what a program wrote before it died is logged
            // before its exit is acted on.
            for (i, stream) in [(0, "stdout"), (1, "stderr")] {
                if fds[i].revents != 0 {
                    self.pump(fds[i].fd, stream, 4);
                }
            }
            if fds[2].revents != 0 {
                let mut info = [0u8; 128 * 8];
                while matches!(msys::read(self.sigchld, &mut info), Ok(n) if n > 0) {}
                awaiting = self.reap(cfg, awaiting);
            }
        }
    }

    /// Logs what `fd` has, at most `rounds` reads (the other stream and
    /// the children get their turn).
    fn pump(&mut self, fd: i32, stream: &str, rounds: usize) -> bool {
        if self.buf.len() < READ {
            self.buf.resize(READ, 0);
        }
        for _ in 0..rounds {
            match msys::read(fd, &mut self.buf) {
                Ok(0) => return false,
                Ok(n) => {
                    let data = &self.buf[..n];
                    self.log.chunk(stream, data);
                }
                Err(_) => return false,
            }
        }
        true
    }

    /// What is still in the pipes (the write ends are ours, so this stops
    /// at "would block", not at end of file; and after a bounded amount,
    /// so a process left writing cannot hold the monitor here).
    fn drain(&mut self) {
        for (fd, stream) in [(self.out[0], "stdout"), (self.err[0], "stderr")] {
            self.pump(fd, stream, DRAIN_READS);
        }
    }

    /// Reaps every child that has ended and acts on the awaited one.
    fn reap(&mut self, cfg: &Config, mut awaiting: Awaiting) -> Awaiting {
        loop {
            let (pid, ended) = match sys::wait_any(false) {
                Ok(Wait::Exited(p, c)) => (p, Ended::Exit(c)),
                Ok(Wait::Signaled(p, s)) => (p, Ended::Signal(s)),
                Ok(Wait::Other) => continue,
                Ok(Wait::None) | Err(_) => return awaiting,
            };
            awaiting = match awaiting {
                Awaiting::Helper(h) if h == pid => self.helper_ended(cfg, ended),
                Awaiting::Init(i) if i == pid => self.init_ended(cfg, ended),
                other => {
                    if self.reaped.len() >= REAPED_MAX {
                        self.reaped.remove(0);
                    }
                    self.reaped.push((pid, ended));
                    other
                }
            };
        }
    }

    fn helper_ended(&mut self, cfg: &Config, ended: Ended) -> Awaiting {
        if ended != Ended::Exit(0) {
            // 3: the app's life is over, cleanly; 4: in failure; anything
            // else: the helper failed (it said why on stderr, in the log).
            self.drain();
            sys::exit(match ended {
                Ended::Exit(3) => 0,
                Ended::Exit(4) => 2,
                _ => 1,
            })
        }
        let pid = msys::read_file(&cfg.init_pid)
            .ok()
            .and_then(|d| parse_pid(&d))
            .filter(|p| *p > 0);
        let Some(pid) = pid else {
            mlog!("the helper exited 0 without a pid in {}", cfg.init_pid);
            self.drain();
            sys::exit(1)
        };
        if let Some(i) = self.reaped.iter().position(|(p, _)| *p == pid) {
            let (_, ended) = self.reaped.remove(i);
            return self.init_ended(cfg, ended);
        }
        if parent_of(pid) != Some(msys::getpid()) {
            // Gone before we could see it end (or never ours): its status
            // is lost.
            mlog!("init pid {pid} is not a child of the monitor");
            return self.init_ended(cfg, Ended::Exit(255));
        }
        Awaiting::Init(pid)
    }

    fn init_ended(&mut self, cfg: &Config, ended: Ended) -> Awaiting {
        // What the program wrote last goes in before the helper's lines.
        self.drain();
        let line = format!("{} {}\n", ended.arg(), timestamp(msys::realtime()));
        let tmp = format!("{}.tmp", cfg.exit_file);
        if let Err(e) = sys::write_file_atomic(&cfg.exit_file, &tmp, line.as_bytes()) {
            mlog!("writing {}: {}", cfg.exit_file, msys::why(e));
        }
        match self.run_helper(cfg, self.devnull, Some(ended)) {
            Ok(pid) => Awaiting::Helper(pid),
            Err(e) => {
                mlog!("starting {}: {}", cfg.helper[0], msys::why(e));
                self.drain();
                sys::exit(1)
            }
        }
    }

    /// Forks and execs the helper with stdio (/dev/null, out, err), `fd3`
    /// as its fd 3 and the status socketpair as fds 4 and 5; nothing else
    /// of ours is open in it.
    fn run_helper(
        &mut self,
        cfg: &Config,
        fd3: i32,
        after: Option<Ended>,
    ) -> Result<sys::Pid, sys::Errno> {
        let mut argv = cfg.helper.clone();
        if let Some(e) = after {
            argv.push("--after-exit".into());
            argv.push(e.arg());
        }
        self.reaped.clear();
        match sys::fork()? {
            Some(pid) => Ok(pid),
            None => {
                let (devnull, out, err) = (self.devnull, self.out[1], self.err[1]);
                // fd3 first: it may itself sit at 0..2 only if those were
                // closed when we started, and dup_to copies before it closes.
                let high = |fd: i32| msys::dup_cloexec(fd, 10).unwrap_or(fd);
                let (fd3, s0, s1) = (high(fd3), high(self.status[0]), high(self.status[1]));
                let r = [(devnull, 0), (out, 1), (err, 2), (fd3, 3), (s0, 4), (s1, 5)]
                    .into_iter()
                    .try_for_each(|(fd, to)| msys::dup_to(fd, to))
                    .and_then(|_| sys::cloexec_from(6))
                    .and_then(|_| sys::set_sigmask(sys::SigSet::empty()));
                sys::reset_signal_dispositions();
                let e = match r {
                    Ok(()) => sys::execve(&cfg.helper[0], &argv, &cfg.env),
                    Err(e) => e,
                };
                // On stderr (the app's log) and on fd 3: the sync pipe on
                // the first run, so `rrun app` can say why in one line.
                let why = format!("exec {}: {}", cfg.helper[0], msys::why(e));
                mlog!("{why}");
                let why = format!("error: monitor: {why}\n");
                let _ = sys::write_all(3, why.as_bytes());
                sys::exit(127)
            }
        }
    }
}

/// The first number in the file ("PID" or "PID STARTTIME").
fn parse_pid(data: &[u8]) -> Option<sys::Pid> {
    let s = core::str::from_utf8(data).ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// The parent pid of `pid` from /proc/<pid>/stat (field 4, after the
/// command name in parentheses, which may itself hold spaces or parens).
fn parent_of(pid: sys::Pid) -> Option<sys::Pid> {
    let data = msys::read_file(&format!("/proc/{pid}/stat")).ok()?;
    let s = core::str::from_utf8(&data).ok()?;
    let after = &s[s.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}
