//! The fuzz targets' bodies: `fuzz_targets/*.rs` hand libFuzzer's input to
//! these, and `tests/seeds.rs` runs them over `seeds/` on stable (`make
//! fuzz-check`), so the code the fuzzers run is compiled and run in `make
//! test` even where there is no nightly. Each must never panic, whatever
//! the bytes; the asserts are invariants of rrun's code.

use std::collections::BTreeMap;
use std::path::Path;

use crate::init::policy;
use crate::security::seccomp;
use crate::{rootfs, spec};

/// config.json bytes -> parse -> validate -> mount options, seccomp
/// compile: what create does with a config before any side effect.
pub fn config(data: &[u8]) {
    let Ok(s) = spec::parse_config_bytes(Path::new("config.json"), data) else {
        return;
    };
    if spec::validate(&s).is_err() {
        return;
    }
    for m in s.mounts().iter().flatten() {
        let _ = rootfs::options::parse(
            m.options().as_deref().unwrap_or_default(),
            m.typ().as_deref(),
        );
    }
    if let Some(sc) = s.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        seccomp_profile(sc);
    }
}

/// An OCI seccomp profile (linux.seccomp as JSON) -> seccompiler JSON ->
/// BPF.
pub fn seccomp(data: &[u8]) {
    if let Ok(p) = serde_json::from_slice::<oci_spec::runtime::LinuxSeccomp>(data) {
        let _ = seccomp::filters_json(&p, &[]);
        let _ = seccomp::process_state(&p, 1, serde_json::json!({}));
        seccomp_profile(&p);
    }
}

const BPF_RET_K: u16 = 0x06;
const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
/// BPF_MAXINSNS: the kernel refuses longer programs.
const BPF_MAXINSNS: usize = 4096;

/// Compiles `p` and checks what the loaders rely on.
fn seccomp_profile(p: &oci_spec::runtime::LinuxSeccomp) {
    let _ = seccomp::uses_notify(p);
    let Ok(c) = seccomp::compile(p) else { return };
    assert!(c.listener.is_none_or(|i| i < c.programs.len()));
    for (i, prog) in c.programs.iter().enumerate() {
        assert!(
            !prog.is_empty() && prog.len() <= BPF_MAXINSNS,
            "program {i}: {} instructions",
            prog.len()
        );
        // Only the filter loaded with a listener may answer USER_NOTIF:
        // elsewhere the kernel would fail the syscall with ENOSYS.
        let notifies = prog
            .iter()
            .any(|f| f.code == BPF_RET_K && f.k == SECCOMP_RET_USER_NOTIF);
        assert_eq!(
            notifies,
            c.listener == Some(i),
            "program {i} of {:?}",
            c.listener
        );
    }
}

/// `rrun.*` annotations as lines `key=value` (`rrun.` is prefixed) ->
/// init policy -> restart decisions and backoff: never an endless loop.
pub fn annotations(data: &[u8]) {
    let ann = annotation_map(data);
    for v in ann.values() {
        let _ = policy::parse_duration(v);
    }
    let _ = policy::enabled(&ann);
    let Ok(c) = policy::parse(&ann) else { return };
    let mut b = policy::Backoff::new(&c);
    let mut now = 0u64;
    for i in 0..16u32 {
        b.started(now);
        for e in [policy::Exit::Code(i as i32), policy::Exit::Signal(9)] {
            let _ = c.should_restart(e, i % 2 == 0, i);
        }
        match b.next(&c, now, now.saturating_add(50)) {
            Some(d) => now = now.saturating_add(d.as_millis().min(u64::MAX as u128) as u64),
            None => break,
        }
    }
}

/// The annotations an `annotations` input stands for.
pub fn annotation_map(data: &[u8]) -> BTreeMap<String, String> {
    String::from_utf8_lossy(data)
        .lines()
        .map(|line| {
            let (k, v) = line.split_once('=').unwrap_or((line, ""));
            (format!("{}{k}", policy::PREFIX), v.to_string())
        })
        .collect()
}

/// A target's body: libFuzzer's input in, a panic for a bug.
pub type Target = fn(&[u8]);

/// Every target by name, as in `fuzz_targets/` and `seeds/`.
pub const ALL: [(&str, Target); 3] = [
    ("config", config),
    ("seccomp", seccomp),
    ("annotations", annotations),
];
