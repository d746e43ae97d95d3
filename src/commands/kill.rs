//! kill [--all] ID [SIGNAL]

use anyhow::{Result, anyhow, bail};
use nix::sys::signal::Signal;

use crate::cli::KillArgs;
use crate::state::{Status, Store};

/// A signal as runc accepts it: a number, or a name with or without SIG,
/// in any case (TERM, SIGTERM, term).
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
    let sig = parse_signal(&a.signal)?;
    let dir = store.open(&a.id)?;
    let state = dir.load()?;
    if state.status() == Status::Stopped {
        bail!("container {} is not running", a.id);
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
    }
}
