//! `rrun.*` annotations -> init policy -> restart decisions and backoff:
//! never a panic, never an endless loop. Input: lines `key=value`.
#![no_main]

extern crate alloc;

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

#[allow(dead_code)]
#[path = "../../src/init/policy.rs"]
mod policy;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut ann = BTreeMap::new();
    for line in text.lines() {
        let (k, v) = line.split_once('=').unwrap_or((line, ""));
        ann.insert(format!("rrun.{k}"), v.to_string());
        let _ = policy::parse_duration(v);
    }
    let _ = policy::enabled(&ann);
    if let Ok(c) = policy::parse(&ann) {
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
});
