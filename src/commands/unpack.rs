//! unpack SOURCE DIR [COMMAND...]: make a bundle from an image or a rootfs
//! tarball (the work is in crate::image).

use anyhow::{Context, Result};

use crate::cli::UnpackArgs;
use crate::image::annotations::InitOptions;
use crate::image::config::{Overrides, parse_entrypoint};
use crate::image::{UnpackOptions, unpack as unpack_image};

pub fn unpack(a: &UnpackArgs) -> Result<()> {
    let entrypoint = a.entrypoint.as_deref().map(parse_entrypoint).transpose()?;
    let o = UnpackOptions {
        source: a.source.clone(),
        dir: a.dir.clone(),
        rootless: a.rootless,
        overrides: Overrides {
            entrypoint,
            cmd: a.command.clone(),
            env: a.env.clone(),
            workdir: a.workdir.clone(),
            user: a.user.clone(),
        },
        init: InitOptions {
            no_init: a.no_init,
            restart: a.restart.clone(),
            restart_delay: a.restart_delay.clone(),
            restart_max_delay: a.restart_max_delay.clone(),
            restart_reset_after: a.restart_reset_after.clone(),
            restart_multiplier: a.restart_multiplier.clone(),
            restart_limit: a.restart_limit.clone(),
            restart_success_exit: a.restart_success_exit.clone(),
            restart_prevent_exit: a.restart_prevent_exit.clone(),
            stop_timeout: a.stop_timeout.clone(),
            health_cmd: a.health_cmd.clone(),
            health_interval: a.health_interval.clone(),
            health_timeout: a.health_timeout.clone(),
            health_retries: a.health_retries.clone(),
            health_start_period: a.health_start_period.clone(),
        },
    };
    let summary = unpack_image(&o).with_context(|| format!("unpack {}", a.source))?;
    let s = &summary.stats;
    if s.skipped_devices > 0 {
        crate::log::warn(&format!(
            "unpack: skipped {} device node(s): only root makes them, and never for a rootless bundle",
            s.skipped_devices
        ));
    }
    if s.skipped_xattrs > 0 {
        crate::log::warn(&format!(
            "unpack: skipped {} extended attribute(s) the filesystem or our privileges refused",
            s.skipped_xattrs
        ));
    }
    crate::log::debug(&format!(
        "unpack: {} layer(s), {} entries, {} bytes into {}",
        summary.layers,
        s.entries,
        s.bytes,
        a.dir.display()
    ));
    Ok(())
}
