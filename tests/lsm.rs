//! LSM labels: process.apparmorProfile (and `exec --apparmor`),
//! process.selinuxLabel (`exec --process-label`) and linux.mountLabel.
//!
//! Where the host has the LSM off (this suite's usual host), the labels are
//! ignored with a warning and the container runs. AppArmor itself is
//! checked in the test VM (scripts/vm): Debian's kernel has it on by
//! default, so scripts/vm/lsm-tests.sh loads a profile with apparmor_parser
//! and checks a container, an exec'd process and an unknown profile from
//! inside; the same boot runs the checks against runc when it is
//! installed. SELinux needs a loaded policy, which neither host nor VM
//! has: its pure parts are unit tests in src/security/lsm.rs.

#[macro_use]
mod common;

use common::vm::{self, VmRun};
use common::*;
use serde_json::json;
use std::path::PathBuf;

/// Seconds the VM may run (boot ~4 s, the script ~20 s under TCG).
const VM_TIMEOUT_SECS: u64 = 150;

/// A host executable by name, from PATH or the sbin directories.
fn host_bin(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin"])
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.is_file())
}

fn host_lsms() -> String {
    std::fs::read_to_string("/sys/kernel/security/lsm").unwrap_or_default()
}

/// Whether the host has AppArmor or SELinux on (as rrun detects it).
fn host_has_label_lsm() -> bool {
    let l = host_lsms();
    l.split(',')
        .any(|x| x.trim() == "apparmor" || x.trim() == "selinux")
        || std::fs::read("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|b| b.first() == Some(&b'Y'))
        || std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

#[test]
fn apparmor_in_vm() {
    let missing = vm::missing();
    require!(missing.is_none(), "{}", missing.unwrap_or_default());
    let parser = host_bin("apparmor_parser");
    require!(
        parser.is_some(),
        "apparmor_parser missing (apt-get install apparmor)"
    );
    let mut extra = vec![parser.unwrap()];
    let mut runtimes = vec!["rrun"];
    // runc as a second opinion in the same boot (unless it is the runtime
    // under test already, packed as "rrun").
    if !is_runc()
        && let Some(runc) = host_bin("runc")
    {
        extra.push(runc);
        runtimes.push("runc");
    }
    VmRun {
        name: "lsm",
        script: "scripts/vm/lsm-tests.sh",
        extra_bins: extra,
        env: vec![("RUNTIMES".into(), runtimes.join(" "))],
        timeout_secs: VM_TIMEOUT_SECS,
    }
    .run();
}

#[test]
fn vm_script_is_valid_sh() {
    vm::check_syntax("scripts/vm/lsm-tests.sh");
}

/// Without the LSMs, every label is ignored with a warning naming it, for
/// create and for exec, and the container runs as usual.
#[test]
fn labels_ignored_with_a_warning_where_the_lsm_is_off() {
    require!(
        !host_has_label_lsm(),
        "the host has AppArmor or SELinux on ({})",
        host_lsms().trim()
    );
    // runc 1.1 refuses these on such a host (it writes the AppArmor
    // profile regardless and validates the SELinux label).
    require!(
        !is_runc(),
        "runc fails on labels of an LSM the host has off"
    );
    let c = Container::new(
        Bundle::new()
            .with(|v| {
                v["process"]["apparmorProfile"] = json!("rrun-test");
                v["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0:c1,c2");
                v["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0:c1,c2");
            })
            .args(&["sleep", "30"]),
    );
    let o = c.run_detached();
    o.ok();
    for field in [
        "process.apparmorProfile",
        "process.selinuxLabel",
        "linux.mountLabel",
    ] {
        assert!(
            o.stderr.contains(field) && o.stderr.contains("ignored"),
            "no warning about {field}:\n{o}"
        );
    }
    assert_eq!(c.status(), "running");
    // No context= reached a mount (it would have failed without SELinux,
    // but check the container's view all the same).
    let e = c.rrun(&["exec", &c.id, "cat", "/proc/self/mountinfo"]);
    e.ok();
    assert!(!e.stdout.contains("context="), "{e}");

    let e = c.rrun(&[
        "exec",
        "--apparmor",
        "rrun-other",
        "--process-label",
        "system_u:system_r:spc_t:s0",
        &c.id,
        "echo",
        "exec-ok",
    ]);
    e.ok();
    assert_eq!(e.stdout, "exec-ok\n", "{e}");
    assert!(
        e.stderr.contains("rrun-other") && e.stderr.contains("ignored"),
        "no warning about --apparmor:\n{e}"
    );
    assert!(
        e.stderr.contains("system_u:system_r:spc_t:s0"),
        "no warning about --process-label:\n{e}"
    );
    c.delete_force().ok();
    c.assert_clean();
}

/// A label that could not be passed on (a newline would end the attr
/// write early) is refused before anything exists, LSM or not.
#[test]
fn malformed_label_is_refused_before_anything_exists() {
    require!(!is_runc(), "runc does not check labels itself");
    let c = Container::new(
        Bundle::new()
            .with(|v| v["process"]["apparmorProfile"] = json!("rrun-test\nexec unconfined"))
            .args(&["true"]),
    );
    let o = c.create();
    o.failed()
        .stderr_is_short_error()
        .stderr_mentions(&["apparmorProfile", "control characters"]);
    c.assert_clean();
}

/// `features` says whether rrun will apply each kind of label here.
#[test]
fn features_report_the_host_lsms() {
    require!(
        !is_runc(),
        "runc reports LSM support compiled in, whatever the host"
    );
    let c = Container::new(Bundle::new());
    let o = c.rrun(&["features"]);
    o.ok();
    let f: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let l = host_lsms();
    let listed = |n: &str| l.trim().split(',').any(|x| x == n);
    assert_eq!(
        f["linux"]["apparmor"]["enabled"],
        json!(listed("apparmor")),
        "lsm: {l:?}\n{o}"
    );
    if !listed("selinux") {
        assert_eq!(f["linux"]["selinux"]["enabled"], json!(false), "{o}");
    }
}
