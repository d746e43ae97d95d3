//! rrun's pure modules, compiled straight from ../src (rrun is a binary
//! crate, with no lib target to depend on) at the paths rrun's own crate
//! root gives them, so their `crate::` paths resolve unchanged.
//!
//! Everything here is rrun's real code except two stand-ins, for modules
//! that pull in half of rrun (`state`) or clap and a global logger (`log`),
//! and `targets`, the fuzz targets' bodies. The stand-ins define only what
//! the included modules call; `make fuzz-check` builds this crate on
//! stable and runs the targets over `seeds/` as part of `make test`, so a
//! module that starts calling something new fails there, not months later
//! here. When it does: include the real module if it compiles on its own,
//! else add the item to a stand-in, as small as the caller needs.
//!
//! `sys` is rrun's real one: `seccomp::load` and `load_listener` would
//! really load a filter into the fuzzer, so no target calls them.

// src/init/{plan,policy}.rs are core/alloc only (shared with the no-std
// rrun-init) and name `alloc::` paths.
extern crate alloc;

// Through its directory, so that spec.rs's own submodules (spec/limits.rs)
// resolve as they do in rrun's crate.
#[path = "../../src"]
mod src_dir {
    #[allow(dead_code)]
    pub mod spec;
}
pub use src_dir::spec;

#[allow(dead_code)]
#[path = "../../src/sys/mod.rs"]
pub mod sys;

#[path = "../../src/rootfs"]
pub mod rootfs {
    #[allow(dead_code)]
    pub mod options;

    pub use options::propagation_flag;
}

#[path = "../../src/security"]
pub mod security {
    #[allow(dead_code)]
    pub mod seccomp;
}

#[path = "../../src/init"]
pub mod init {
    #[allow(dead_code)]
    pub mod policy;
}

pub mod targets;

/// Stand-in for src/log.rs: the fuzzers log nothing (a line per unknown
/// syscall name would slow them down and bury libFuzzer's output).
#[allow(dead_code)]
pub mod log {
    pub fn error(_msg: &str) {}
    pub fn warn(_msg: &str) {}
    pub fn debug(_msg: &str) {}
}

/// Stand-in for src/state.rs, of which the included modules need only
/// `write_atomic` (for the seccomp cache, which no target uses: the
/// fuzzers write no files).
#[allow(dead_code)]
pub mod state {
    pub fn write_atomic(_path: &std::path::Path, _data: &[u8]) -> std::io::Result<()> {
        Err(std::io::ErrorKind::Unsupported.into())
    }
}
