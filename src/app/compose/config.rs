//! `rrun app compose config`: the resolved file, or its services' names.

use anyhow::Result;

use super::args::{ComposeArgs, ComposeCommand, ConfigArgs, ProjectOpts};
use crate::app::cli::AppCommand;

/// `rrun app [compose] config`'s options: the command needs no app root.
pub fn config_of(c: &AppCommand) -> Option<(&ProjectOpts, &ConfigArgs)> {
    match c {
        AppCommand::Config(c) => Some((&c.opts, &c.args)),
        AppCommand::Compose(ComposeArgs {
            opts,
            command: ComposeCommand::Config(c),
        }) => Some((opts, c)),
        _ => None,
    }
}

pub fn config(opts: &ProjectOpts, a: &ConfigArgs) -> Result<i32> {
    let p = opts.load()?;
    if a.services {
        for s in &p.service_order {
            println!("{s}");
        }
    } else {
        print!("{}", p.resolved_yaml);
    }
    Ok(0)
}
