//! LSM labels: process.apparmorProfile (and `exec --apparmor`),
//! process.selinuxLabel (`exec --process-label`) and linux.mountLabel.
//!
//! Where the host has the LSM off (this suite's usual host), the labels are
//! ignored with a warning and the container runs. The labels themselves
//! are checked in the test VM (scripts/vm), booted once per LSM: Debian's
//! kernel has AppArmor on by default (scripts/vm/lsm-tests.sh loads a
//! profile with apparmor_parser) and SELinux with security=selinux (the
//! script compiles a minimal policy with checkpolicy and loads it,
//! permissive). From inside, it checks a container, exec'd processes, the
//! mount label (SELinux) and unknown labels; the same boot runs the checks
//! against runc when it is installed.

#[macro_use]
mod common;

use common::vm::{self, VmRun};
use common::*;
use serde_json::json;
use std::path::PathBuf;

/// Seconds the VM may run (boot ~4 s, the script ~30 s under TCG).
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

/// Boots the LSM VM with `kernel_args` (which pick the LSM) and runs
/// lsm-tests.sh against rrun and, as a second opinion in the same boot,
/// runc (unless it is the runtime under test already, packed as "rrun").
fn lsm_vm(lsm: &str, kernel_args: &str, tool: &str, package: &str) {
    let missing = vm::missing();
    require!(missing.is_none(), "{}", missing.unwrap_or_default());
    // Both tools in both boots: one initramfs serves both.
    let tools: Vec<PathBuf> = ["apparmor_parser", "checkpolicy"]
        .iter()
        .filter_map(|t| host_bin(t))
        .collect();
    require!(
        host_bin(tool).is_some(),
        "{tool} missing (apt-get install {package})"
    );
    let mut extra = tools;
    let mut runtimes = vec!["rrun"];
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
        env: vec![
            ("RUNTIMES".into(), runtimes.join(" ")),
            ("WANT_LSM".into(), lsm.into()),
        ],
        kernel_args,
        timeout_secs: VM_TIMEOUT_SECS,
    }
    .run();
}

#[test]
fn apparmor_in_vm() {
    lsm_vm("apparmor", "", "apparmor_parser", "apparmor");
}

#[test]
fn selinux_in_vm() {
    lsm_vm("selinux", "security=selinux", "checkpolicy", "checkpolicy");
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
