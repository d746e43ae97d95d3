//! Self-checks of the test helpers: the leak detector must really detect
//! leaks, and the capability masks must match the kernel's numbering.

#[macro_use]
mod common;

use common::*;
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};

#[test]
fn cap_masks_match_kernel_numbering() {
    assert_eq!(cap_number("CAP_CHOWN"), 0);
    assert_eq!(cap_number("CAP_KILL"), 5);
    assert_eq!(cap_number("CAP_NET_BIND_SERVICE"), 10);
    assert_eq!(cap_number("CAP_SYS_ADMIN"), 21);
    assert_eq!(cap_number("CAP_AUDIT_WRITE"), 29);
    assert_eq!(cap_number("CAP_CHECKPOINT_RESTORE"), 40);
    // What runc's default spec shows in /proc/self/status.
    assert_eq!(cap_mask(DEFAULT_CAPS), 0x20000420);
}

#[test]
fn unique_names_are_unique() {
    let a = unique_name();
    let b = unique_name();
    assert_ne!(a, b);
    assert!(a.starts_with("rrun-test-"));
}

#[test]
fn base_config_uses_relative_cgroups_path_and_absolute_root() {
    let b = Bundle::new();
    let cg = b.config["linux"]["cgroupsPath"].as_str().unwrap();
    assert!(!cg.starts_with('/'), "cgroupsPath must be relative: {cg}");
    assert!(cg.contains("rrun-test"));
    let root = b.config["root"]["path"].as_str().unwrap();
    assert!(root.starts_with('/'));
    assert!(std::path::Path::new(root).join("bin/busybox").is_file());
    assert_eq!(b.config["process"]["terminal"], false);
}

#[test]
fn assert_clean_detects_leftover_state_dir() {
    let c = Container::new(Bundle::new());
    fs::create_dir_all(c.root.join(&c.id)).unwrap();
    let r = catch_unwind(AssertUnwindSafe(|| c.assert_clean()));
    assert!(r.is_err(), "a leftover state dir went unnoticed");
}

#[test]
fn assert_clean_detects_leftover_cgroup() {
    let hs = cgroup_hierarchies();
    require!(!hs.is_empty(), "no cgroup hierarchy mounted");
    let c = Container::new(Bundle::new());
    let h = &hs[0];
    let dir = h
        .mountpoint
        .join(h.own.trim_start_matches('/'))
        .join(&c.bundle.cgroups_path);
    require!(
        fs::create_dir(&dir).is_ok(),
        "cannot create a cgroup in {}",
        h.mountpoint.display()
    );
    let r = catch_unwind(AssertUnwindSafe(|| c.assert_clean()));
    let _ = fs::remove_dir(&dir);
    assert!(
        r.is_err(),
        "a leftover cgroup {} went unnoticed",
        dir.display()
    );
}

#[test]
fn run_timeout_kills_a_hanging_command() {
    let mut cmd = std::process::Command::new("sleep");
    cmd.arg("30");
    let t = std::time::Instant::now();
    let r = catch_unwind(AssertUnwindSafe(|| {
        run_timeout(cmd, std::time::Duration::from_millis(300))
    }));
    assert!(r.is_err(), "no timeout panic");
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
}
