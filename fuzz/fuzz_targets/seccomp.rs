//! Fuzz target `seccomp`: the body is `rrun_fuzz::targets::seccomp` (src/targets.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rrun_fuzz::targets::seccomp(data));
