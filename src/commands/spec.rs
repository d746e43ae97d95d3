//! spec [--bundle DIR] [--rootless]

use anyhow::{Context, Result, bail};

use crate::cli::SpecArgs;

pub fn spec(a: &SpecArgs) -> Result<()> {
    let path = a.bundle.join("config.json");
    if !a.bundle.is_dir() {
        bail!("bundle {}: no such directory", a.bundle.display());
    }
    if path.exists() {
        bail!("{}: file exists; remove it first", path.display());
    }
    let v = crate::spec::default_spec(a.rootless);
    let text = serde_json::to_string_pretty(&v).context("serialising spec")?;
    std::fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
