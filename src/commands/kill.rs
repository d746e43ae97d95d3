//! kill [--all] ID [SIGNAL]

use anyhow::{Result, anyhow, bail};
use nix::sys::signal::Signal;

use crate::cli::KillArgs;
use crate::state::{Status, Store};

/// A signal as runc accepts it: a number, or a name with or without SIG,
/// in any case (TERM, SIGTERM, term).
/// A signal number to send; 0 only checks that the container exists, as
/// with kill(2) (runc accepts it).
pub fn parse_signal_number(s: &str) -> Result<i32> {
    if s == "0" {
        return Ok(0);
    }
    parse_signal(s).map(|sig| sig as i32)
}

pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| anyhow!("unknown signal {s:?}"));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>()
        .map_err(|_| anyhow!("unknown signal {s:?}"))
}

pub fn kill(store: &Store, a: &KillArgs) -> Result<()> {
    let sig = parse_signal_number(&a.signal)?;
    let dir = store.open(&a.id)?;
    let state = dir.load()?;
    if state.status() == Status::Stopped {
        // runc 1.1: --all on a stopped container is not an error (containerd
        // sends it after the init exits); without it, this exact wording is
        // what containerd recognises.
        if a.all {
            return Ok(());
        }
        bail!("container not running");
    }
    crate::process::signal(&state, sig, a.all)
        .map_err(|e| anyhow!("signalling container {}: {e}", a.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names() {
        assert_eq!(parse_signal("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("SIGKILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("hup").unwrap(), Signal::SIGHUP);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert!(parse_signal("SIGFOO").is_err());
        assert!(parse_signal("999").is_err());
        assert!(parse_signal("").is_err());
        assert_eq!(parse_signal_number("0").unwrap(), 0);
        assert_eq!(parse_signal_number("TERM").unwrap(), 15);
    }
}
