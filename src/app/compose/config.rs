//! `rrun app compose config`: the resolved file, or its services' names.

use anyhow::Result;

use super::args::{ConfigArgs, ProjectOpts};

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
