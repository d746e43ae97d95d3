//! `rrun app serve`: the apps' status page, /metrics and a small JSON API,
//! served in the foreground for as long as it is wanted. Nothing runs
//! beside it and it keeps nothing on disk: every request reads rrun's
//! state again (only the sparklines' samples live in memory, taken while
//! someone looks).
//!
//! - http:    one HTTP/1.1 request per connection (httparse), the limits
//! - auth:    the token, the Host check, the CSRF check
//! - api:     the routes and what they answer
//! - page:    the HTML page, its script and style
//! - metrics: the Prometheus text format
//! - sampler: CPU and memory history for the sparklines
//! - logtail: the last lines of an app's log, read from the end
//!
//! Threads: one accepts, WORKERS answer; a connection waits in a bounded
//! queue and is refused (503) when that is full, and every read and write
//! has a timeout, so no number of clients, slow or not, makes the server
//! grow. The log panels follow by polling (no connection is held open).

mod api;
mod auth;
mod http;
mod logtail;
mod metrics;
mod page;
mod peer;
mod sampler;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;

use super::paths::Paths;

/// Threads answering requests.
const WORKERS: usize = 16;
/// Connections accepted and waiting for a worker; more get 503.
const QUEUE: usize = 256;
/// The most a client may take to send its request or read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The most the server waits, when told to end, for actions under way.
const DRAIN: Duration = Duration::from_secs(120);

pub const DEFAULT_LISTEN: &str = "127.0.0.1:9780";

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Where to listen, ADDR:PORT (port 0: any free one). Another address
    /// than loopback needs the token for reading too
    #[arg(long, default_value = DEFAULT_LISTEN, value_name = "ADDR:PORT")]
    pub listen: String,
    /// The token is read from FILE; made and written there (mode 0600)
    /// when FILE does not exist. Without it, one is made and printed
    #[arg(long = "token-file", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

/// Runs the server until SIGINT, SIGTERM or SIGHUP.
pub fn serve(paths: &Paths, a: &ServeArgs) -> Result<i32> {
    let addr: SocketAddr = a.listen.parse().map_err(|_| {
        anyhow::anyhow!(
            "--listen {:?}: not ADDR:PORT (e.g. 127.0.0.1:9780, [::1]:9780, 0.0.0.0:9780)",
            a.listen
        )
    })?;
    // A client that goes away while it is answered must cost an EPIPE,
    // not the server (rrun's main restores SIGPIPE's default for its
    // other commands). Whatever it starts gets the default back: the
    // monitor's spawn resets every signal, std's Command resets SIGPIPE.
    crate::sys::ignore_sigpipe();
    let listener = TcpListener::bind(addr).with_context(|| format!("listening on {addr}"))?;
    let bound = listener.local_addr()?;
    let (token, source) = auth::load_or_create(a.token_file.as_deref())?;
    let loopback = bound.ip().is_loopback();

    // Blocked in every thread (they inherit it) and waited for by one:
    // an action under way finishes before the server ends. (Processes it
    // starts get an empty mask: the monitor's spawn resets it.)
    let mut mask = nix::sys::signal::SigSet::empty();
    for s in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGHUP,
    ] {
        mask.add(s);
    }
    mask.thread_block().context("blocking the stop signals")?;

    let ctx = Arc::new(api::Ctx::new(paths.clone(), token.clone(), loopback));
    let url = format!("http://{bound}/");
    // Written, not println!: a stdout nobody reads (closed) is no reason
    // to end.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {url}");
    match &source {
        auth::TokenSource::Generated => {
            // Printed once, here, and never again.
            let _ = writeln!(out, "token: {token}");
            let _ = writeln!(out, "open {url}#token={token}");
        }
        auth::TokenSource::File(p) | auth::TokenSource::Created(p) => {
            let _ = writeln!(out, "token in {}", p.display());
        }
    }
    if loopback {
        let _ = writeln!(
            out,
            "reading needs the token too, but from uid {} on this machine",
            nix::unistd::geteuid()
        );
    } else {
        let _ = writeln!(out, "not on loopback: reading needs the token too");
    }
    let _ = out.flush();
    drop(out);
    drop(token);

    {
        let ctx = ctx.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let _ = mask.wait();
                ctx.stopping.store(true, Ordering::SeqCst);
                let end = Instant::now() + DRAIN;
                while ctx.actions.load(Ordering::SeqCst) > 0 && Instant::now() < end {
                    std::thread::sleep(Duration::from_millis(50));
                }
                std::process::exit(0);
            })
            .context("starting the signal thread")?;
    }

    let (tx, rx) = mpsc::sync_channel::<TcpStream>(QUEUE);
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..WORKERS {
        let (rx, ctx) = (rx.clone(), ctx.clone());
        std::thread::Builder::new()
            .name(format!("worker{i}"))
            .spawn(move || {
                loop {
                    let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    match next {
                        Ok(s) => answer(&ctx, s),
                        Err(_) => return,
                    }
                }
            })
            .context("starting the workers")?;
    }
    for conn in listener.incoming() {
        let s = match conn {
            Ok(s) => s,
            // A client gone before it was accepted, or out of fds for a
            // moment: the next one may do.
            Err(e) => {
                if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                continue;
            }
        };
        let _ = s.set_read_timeout(Some(IO_TIMEOUT));
        let _ = s.set_write_timeout(Some(IO_TIMEOUT));
        if let Err(mpsc::TrySendError::Full(mut s)) = tx.try_send(s) {
            let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = http::write_response(
                &mut s,
                &http::Response::text(503, "busy: try again").with("Retry-After", "1"),
                false,
            );
        }
    }
    bail!("the listening socket failed")
}

/// The stream with one deadline for the whole request (or answer): each
/// read or write may wait only for what is left of it, so a client sending
/// or reading a byte now and then (slowloris, slow read) cannot hold a
/// worker longer than IO_TIMEOUT.
struct Deadline<'a> {
    s: &'a TcpStream,
    end: Instant,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.s.set_read_timeout(Some(left))?;
        self.s.read(buf)
    }
}

impl Write for Deadline<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let left = self.end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.s.set_write_timeout(Some(left))?;
        self.s.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads one request from the connection and answers it.
fn answer(ctx: &api::Ctx, s: TcpStream) {
    let read = http::read_request(&mut Deadline {
        s: &s,
        end: Instant::now() + IO_TIMEOUT,
    });
    let resp = match read {
        Ok(req) => {
            let head_only = req.method == "HEAD";
            let own = ctx.loopback
                && match (s.peer_addr(), s.local_addr()) {
                    (Ok(p), Ok(l)) => peer::uid_of(p, l) == Some(nix::unistd::geteuid().as_raw()),
                    _ => false,
                };
            let resp = api::handle(ctx, &req, own);
            let mut out = Deadline {
                s: &s,
                end: Instant::now() + IO_TIMEOUT,
            };
            let _ = http::write_response(&mut out, &resp, head_only);
            return;
        }
        Err(e) => match e.status() {
            Some(code) => http::Response::text(code, &e.to_string()),
            None => return,
        },
    };
    let mut out = Deadline {
        s: &s,
        end: Instant::now() + IO_TIMEOUT,
    };
    let _ = http::write_response(&mut out, &resp, false);
    // The client may still be sending what was refused: closing with
    // unread input would reset the connection, and the answer with it.
    // Its end of the stream is read (bounded) before closing.
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut rest = Deadline {
        s: &s,
        end: Instant::now() + Duration::from_secs(1),
    };
    let _ = std::io::copy(&mut (&mut rest).take(1 << 20), &mut std::io::sink());
}
