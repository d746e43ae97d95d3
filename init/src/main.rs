//! rrun-init: the built-in PID 1 (see pid1.rs). rrun execs it from a sealed
//! memfd as the container's PID 1 when config.json asks for it (annotation
//! `rrun.init`, or any `rrun.restart*`/`rrun.health*` key), passing the
//! launch plan in the fd named by argv[1].
//!
//! It is built without std or libc (rt.rs, sys.rs): PID 1 stays resident
//! in every container that asks for it, and what stays resident is only
//! this program's own pages.

#![no_std]
#![no_main]

extern crate alloc;

mod pid1;
#[path = "../../src/init/plan.rs"]
mod plan;
#[path = "../../src/init/policy.rs"]
#[allow(dead_code)]
mod policy;
mod rt;
mod sys;

/// Reads the launch plan from the fd named by argv[1] and runs PID 1.
fn main(args: &[&[u8]]) -> ! {
    let fd = args
        .get(1)
        .and_then(|a| core::str::from_utf8(a).ok())
        .and_then(|a| a.parse::<i32>().ok())
        .filter(|fd| *fd > 2);
    let Some(fd) = fd else {
        log!("started without a launch plan (it is run by rrun, not by hand)");
        sys::exit(2)
    };
    let data = match sys::read_to_end(fd) {
        Ok(d) => d,
        Err(e) => {
            log!("reading the launch plan: {e}");
            sys::exit(2)
        }
    };
    sys::close(fd);
    match serde_json::from_slice::<plan::Launch>(&data) {
        Ok(p) => {
            drop(data);
            pid1::main(p)
        }
        Err(e) => {
            log!("bad launch plan: {e}");
            sys::exit(2)
        }
    }
}
