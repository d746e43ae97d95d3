//! rrun-init: the built-in PID 1 (see src/init/pid1.rs). rrun execs it
//! from a sealed memfd as the container's PID 1 when config.json asks for
//! it (annotation `rrun.init`, or any `rrun.restart*`/`rrun.health*` key),
//! passing the launch plan in the fd named by argv[1]. It is a separate,
//! small program so that the runtime's image and heap do not stay
//! resident in every container.

#[path = "../init/pid1.rs"]
mod pid1;
#[path = "../init/plan.rs"]
mod plan;
#[path = "../init/policy.rs"]
#[allow(dead_code)]
mod policy;
#[path = "../sys/mod.rs"]
#[allow(dead_code)]
mod sys;

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};

fn main() {
    let fd: i32 = match std::env::args().nth(1).and_then(|a| a.parse().ok()) {
        Some(fd) if fd > 2 => fd,
        _ => {
            eprintln!("rrun-init: started without a launch plan (it is run by rrun, not by hand)");
            std::process::exit(2);
        }
    };
    // SAFETY: rrun passes this fd, open and owned by nobody else here.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut data = Vec::new();
    let mut file = std::fs::File::from(owned);
    if let Err(e) = file.read_to_end(&mut data) {
        eprintln!("rrun-init: reading the launch plan: {e}");
        std::process::exit(2);
    }
    drop(file);
    match serde_json::from_slice::<plan::Launch>(&data) {
        Ok(p) => pid1::main(p),
        Err(e) => {
            eprintln!("rrun-init: bad launch plan: {e}");
            std::process::exit(2);
        }
    }
}
