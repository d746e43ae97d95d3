// Stand-ins for the `crate::` items the fuzzed modules call; included by
// each target with `include!`, so they sit at the target's crate root.

#[allow(dead_code)]
mod log {
    pub fn warn(_msg: &str) {}
}

#[allow(dead_code)]
mod sys {
    /// Never load a filter into the fuzzer itself.
    pub fn seccomp_load(_prog: &[seccompiler::sock_filter], _flags: u32) -> Result<(), nix::Error> {
        Ok(())
    }
}

#[allow(dead_code)]
mod rootfs {
    /// The propagation names rrun accepts (src/rootfs/options.rs).
    pub fn propagation_flag(opt: &str) -> Option<()> {
        matches!(
            opt,
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
                | "runbindable"
        )
        .then_some(())
    }
}
