//! An OCI seccomp profile (JSON) -> seccompiler JSON -> BPF: never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("stubs.rs");

#[allow(dead_code)]
#[path = "../../src/security/seccomp.rs"]
mod seccomp;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = serde_json::from_slice::<oci_spec::runtime::LinuxSeccomp>(data) {
        let _ = seccomp::filters_json(&p, &[]);
        let _ = seccomp::compile(&p);
    }
});
