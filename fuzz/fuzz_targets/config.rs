//! config.json bytes -> parse -> validate -> (seccomp) compile: never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("stubs.rs");

#[allow(dead_code)]
#[path = "../../src/spec.rs"]
mod spec;

#[allow(dead_code)]
#[path = "../../src/security/seccomp.rs"]
mod seccomp;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("config.json");
    if let Ok(s) = spec::parse_config_bytes(path, data) {
        let _ = spec::validate(&s);
        if let Some(sc) = s.linux().as_ref().and_then(|l| l.seccomp().clone()) {
            let _ = seccomp::compile(&sc);
        }
    }
});
