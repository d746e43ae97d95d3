//! delete [--force] ID

use anyhow::{Result, bail};

use crate::cli::DeleteArgs;
use crate::state::{StateError, Status, Store};

pub fn delete(store: &Store, a: &DeleteArgs) -> Result<()> {
    let dir = match store.open(&a.id) {
        Ok(d) => d,
        // Like runc, --force on a missing container is not an error.
        Err(StateError::NotExist(_)) if a.force => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let state = match dir.load() {
        Ok(s) => s,
        // A directory without state.json is a create that died half-way
        // (its lock is free, or we would not hold it): remove it.
        Err(StateError::Creating(_)) => {
            dir.destroy()?;
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    match state.status() {
        // runc deletes a created container without --force: nothing of the
        // user's program has run yet.
        Status::Stopped | Status::Created => {}
        Status::Creating if !a.force => {
            bail!(
                "container {} is being created (or its create was interrupted): use --force",
                a.id
            )
        }
        s if a.force => {
            let _ = s;
        }
        s => bail!(
            "cannot delete container {} that is not stopped: {}",
            a.id,
            s
        ),
    }
    crate::process::destroy(dir, &state)?;
    Ok(())
}
