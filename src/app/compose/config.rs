//! TEMPORARY stand-in for the file engineer's config.rs (until r20-file is
//! merged).

use super::args::{ConfigArgs, ProjectOpts};

pub fn config(o: &ProjectOpts, a: &ConfigArgs) -> anyhow::Result<i32> {
    let p = o.load()?;
    if a.services {
        for s in &p.service_order {
            println!("{s}");
        }
    } else {
        print!("{}", p.resolved_yaml);
    }
    Ok(0)
}
