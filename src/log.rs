//! rrun's log, in the two formats engines read: logrus-style text
//! (`time="..." level=error msg="..."`) and JSON lines with `level`, `msg`
//! and `time`, which containerd's shim and podman parse to show the user the
//! last error. Without --log the log goes to stderr.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

struct Logger {
    file: Option<File>,
    format: Format,
    debug: bool,
}

static LOGGER: OnceLock<Mutex<Logger>> = OnceLock::new();
/// When this rrun started (set by `init`), for the step timings of --debug.
static STARTED: OnceLock<std::time::Instant> = OnceLock::new();

/// Sets up the log. A log file that cannot be opened is reported on stderr
/// and logging falls back to stderr, so the real error is not lost.
pub fn init(path: Option<&Path>, format: Format, debug: bool) {
    let _ = STARTED.set(std::time::Instant::now());
    let file = path.and_then(|p| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(p)
            .map_err(|e| eprintln!("rrun: cannot open log file {}: {e}", p.display()))
            .ok()
    });
    let _ = LOGGER.set(Mutex::new(Logger {
        file,
        format,
        debug,
    }));
}

/// Closes the --log file in a process that is about to enter a container
/// (see `process::fds`): a host file must not be reachable from it. Its
/// later lines go to stderr, as without --log.
pub fn close_file() {
    if let Some(l) = LOGGER.get()
        && let Ok(mut l) = l.lock()
    {
        l.file = None;
    }
}

/// True when log lines go to a file (so the CLI also prints the plain error).
pub fn to_file() -> bool {
    LOGGER
        .get()
        .and_then(|l| l.lock().ok().map(|l| l.file.is_some()))
        .unwrap_or(false)
}

pub fn format_line(format: Format, level: &str, msg: &str, time: &str) -> String {
    match format {
        Format::Json => serde_json::json!({"level": level, "msg": msg, "time": time}).to_string(),
        Format::Text => format!(
            "time=\"{}\" level={} msg={}",
            time,
            level,
            serde_json::Value::String(msg.to_string())
        ),
    }
}

fn write(level: &str, msg: &str) {
    let now = || chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let Some(logger) = LOGGER.get() else {
        eprintln!("{}", format_line(Format::Text, level, msg, &now()));
        return;
    };
    let Ok(mut l) = logger.lock() else { return };
    if level == "debug" && !l.debug {
        return;
    }
    let time = now();
    let line = format_line(l.format, level, msg, &time);
    match l.file.as_mut() {
        Some(f) => {
            let _ = writeln!(f, "{line}");
        }
        None => eprintln!("{line}"),
    }
}

pub fn error(msg: &str) {
    write("error", msg);
}

pub fn warn(msg: &str) {
    write("warning", msg);
}

pub fn debug(msg: &str) {
    write("debug", msg);
}

fn debug_enabled() -> bool {
    LOGGER
        .get()
        .and_then(|l| l.lock().ok().map(|l| l.debug))
        .unwrap_or(false)
}

/// With --debug, one line per step of a command with the time since rrun
/// started: where a create, start or delete spends its time, measured in
/// place (`rrun --debug run ...`). Free without --debug.
pub fn step(what: &str) {
    if debug_enabled() {
        let ms = STARTED
            .get()
            .map_or(0.0, |t| t.elapsed().as_secs_f64() * 1000.0);
        write("debug", &format!("step {what} (+{ms:.3} ms)"));
    }
}

/// One line for the whole error chain; a cause already spelled out by the
/// error above it (typed errors embed their source) is not repeated.
pub fn error_line(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if msg.contains(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    msg.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_text_lines() {
        let j = format_line(Format::Json, "error", "bad \"x\"", "T");
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "bad \"x\"");
        assert_eq!(v["time"], "T");
        assert_eq!(
            format_line(Format::Text, "error", "no such \"id\"", "T"),
            "time=\"T\" level=error msg=\"no such \\\"id\\\"\""
        );
    }
}
