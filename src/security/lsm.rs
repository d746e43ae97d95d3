//! LSM labels: process.apparmorProfile, process.selinuxLabel and
//! linux.mountLabel. The parent plans them before any side effect (which
//! LSMs the host has on; a label for an LSM that is off is dropped with a
//! warning, so a config made for another host still runs); the container
//! process applies them to itself right before it execs, as runc does:
//!
//! - AppArmor: `exec <profile>` into the thread's attr/apparmor/exec
//!   (attr/exec before Linux 5.8), which is what libapparmor's
//!   aa_change_onexec does: the profile takes effect at the next execve.
//! - SELinux: the label into attr/exec (the program's domain after execve)
//!   and, around joining the session keyring, into attr/keycreate (the
//!   keyring gets the container's label); the mount label becomes the
//!   `context="..."` option of the container's filesystem mounts, or the
//!   label of mqueue's root (see [`mount_labeling`]).
//!
//! Every /proc write goes through rootfs::procfs (a verified procfs root,
//! no symlinks, no mount crossings), never through a path the container
//! could have redirected (runc CVE-2025-52881 class). This module never
//! decides where in the create sequence labels are applied: process/ does.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::errno::Errno;
use oci_spec::runtime::Process;

use crate::rootfs::RootfsError;
use crate::rootfs::procfs::ProcFs;

#[derive(Debug, thiserror::Error)]
pub enum LsmError {
    /// A label that cannot be applied: `field` is the config.json field
    /// (or the exec flag's equivalent), `label` its value.
    #[error("{field} {label:?}: {msg}")]
    Label {
        field: &'static str,
        label: String,
        msg: String,
    },
}

/// The LSMs the host has on, as far as labels are concerned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Host {
    pub apparmor: bool,
    /// SELinux enabled with a policy loaded (before a policy load every
    /// task is "kernel" and no label can mean anything).
    pub selinux: bool,
}

impl Host {
    pub fn detect() -> Host {
        Host::detect_in(Path::new("/sys"), Path::new("/proc"))
    }

    /// `sys` and `proc` are where sysfs and procfs are mounted (a test
    /// points them at a directory of its own).
    pub fn detect_in(sys: &Path, proc: &Path) -> Host {
        // The kernel lists the LSMs it initialised in securityfs (4.15+).
        let lsm = std::fs::read_to_string(sys.join("kernel/security/lsm")).ok();
        let listed = |name: &str| {
            lsm.as_deref()
                .map(|l| l.trim().split(',').any(|x| x == name))
        };
        // Without securityfs mounted: AppArmor's module parameter (what
        // runc reads), SELinux's own filesystem.
        let apparmor = listed("apparmor").unwrap_or_else(|| {
            std::fs::read(sys.join("module/apparmor/parameters/enabled"))
                .is_ok_and(|b| b.first() == Some(&b'Y'))
        });
        let selinux = listed("selinux").unwrap_or_else(|| sys.join("fs/selinux/enforce").exists())
            && std::fs::read_to_string(proc.join("self/attr/current"))
                .is_ok_and(|c| c.trim_end_matches(['\0', '\n']) != "kernel");
        Host { apparmor, selinux }
    }
}

/// The labels to apply: only those whose LSM is on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    pub apparmor: Option<String>,
    pub selinux: Option<String>,
    pub mount: Option<String>,
}

const APPARMOR_FIELD: &str = "process.apparmorProfile";
const SELINUX_FIELD: &str = "process.selinuxLabel";
const MOUNT_FIELD: &str = "linux.mountLabel";

fn check(field: &'static str, label: &str) -> Result<(), LsmError> {
    let bad = |msg: &str| LsmError::Label {
        field,
        label: label.to_string(),
        msg: msg.to_string(),
    };
    if label.chars().any(|c| c.is_control()) {
        return Err(bad("must not contain control characters"));
    }
    // Quoted in context="..." (SELinux contexts contain commas: s0:c1,c2).
    if field == MOUNT_FIELD && label.contains('"') {
        return Err(bad("must not contain '\"'"));
    }
    Ok(())
}

impl Labels {
    /// Pure: the labels `host` can apply, and a warning for each one it
    /// cannot. Empty strings mean "none", as in runc.
    pub fn plan(
        apparmor: Option<&str>,
        selinux: Option<&str>,
        mount: Option<&str>,
        host: Host,
    ) -> Result<(Labels, Vec<String>), LsmError> {
        let mut warnings = Vec::new();
        let mut take = |field: &'static str, label: Option<&str>, on: bool, lsm: &str| {
            let Some(label) = label.filter(|l| !l.is_empty()) else {
                return Ok(None);
            };
            check(field, label)?;
            if on {
                Ok(Some(label.to_string()))
            } else {
                warnings.push(format!(
                    "{field} {label:?} ignored: {lsm} is not enabled on this host"
                ));
                Ok(None)
            }
        };
        let labels = Labels {
            apparmor: take(APPARMOR_FIELD, apparmor, host.apparmor, "AppArmor")?,
            selinux: take(SELINUX_FIELD, selinux, host.selinux, "SELinux")?,
            mount: take(MOUNT_FIELD, mount, host.selinux, "SELinux")?,
        };
        Ok((labels, warnings))
    }
}

/// The labels for `process` (and the container's mount label) on this
/// host, warning about the ones ignored. Called by the parent of create
/// and of exec, before anything exists.
pub fn plan(process: &Process, mount_label: Option<&str>) -> Result<Labels, LsmError> {
    let wanted = [
        process.apparmor_profile().as_deref(),
        process.selinux_label().as_deref(),
        mount_label,
    ];
    // Most configs ask for no label: no need to look at the host then.
    if wanted.iter().all(|l| l.is_none_or(str::is_empty)) {
        return Ok(Labels::default());
    }
    let (labels, warnings) = Labels::plan(wanted[0], wanted[1], wanted[2], Host::detect())?;
    for w in warnings {
        crate::log::warn(&w);
    }
    Ok(labels)
}

/// How linux.mountLabel applies to one mount, as runc applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountLabeling {
    /// `context="<label>"` in the mount data: every file on the mount
    /// gets the label (tmpfs, devpts, the masked-directory tmpfs, ...).
    Context,
    /// mqueue: mounted as is, its root directory labelled afterwards.
    RootLabel,
    /// Left alone: bind mounts (the kernel ignores their data; the files
    /// keep their labels), proc and sysfs (labelled by the policy), cgroup
    /// hierarchies.
    Unlabelled,
}

pub fn mount_labeling(typ: Option<&str>, bind: bool) -> MountLabeling {
    if bind {
        return MountLabeling::Unlabelled;
    }
    match typ {
        Some("proc" | "sysfs" | "cgroup" | "cgroup2") => MountLabeling::Unlabelled,
        Some("mqueue") => MountLabeling::RootLabel,
        _ => MountLabeling::Context,
    }
}

/// Mount data with the mount label's context option appended.
pub fn with_context(data: &str, label: Option<&str>) -> String {
    match label {
        None => data.to_string(),
        Some(l) if data.is_empty() => format!("context=\"{l}\""),
        Some(l) => format!("{data},context=\"{l}\""),
    }
}

/// Labels the directory open at `dir` (the root of a fresh mount).
pub fn set_file_label(dir: OwnedFd, label: &str) -> std::io::Result<()> {
    use xattr::FileExt;
    File::from(dir).set_xattr("security.selinux", label.as_bytes())
}

/// Writes `value` into the calling thread's attr file (the first of
/// `names` this kernel has), as one write(2): LSMs take the whole value
/// or nothing.
fn write_attr(
    proc: &ProcFs,
    names: &[&str],
    value: &str,
    field: &'static str,
    label: &str,
) -> Result<(), LsmError> {
    let fail = |msg: String| LsmError::Label {
        field,
        label: label.to_string(),
        msg,
    };
    let (fd, name) = proc
        .open_self_attr(names)
        .map_err(|e| fail(e.to_string()))?;
    match nix::unistd::write(&fd, value.as_bytes()) {
        Ok(n) if n == value.len() => Ok(()),
        Ok(n) => Err(fail(format!("short write to attr/{name} ({n} bytes)"))),
        Err(e) => Err(fail(explain(field, name, e))),
    }
}

/// What a refused attr write means, in the user's terms.
fn explain(field: &'static str, attr: &str, e: Errno) -> String {
    match (field, e) {
        (APPARMOR_FIELD, Errno::ENOENT) => "no such AppArmor profile is loaded".into(),
        (SELINUX_FIELD, Errno::EINVAL) => "not a valid SELinux label in the loaded policy".into(),
        _ => format!("writing attr/{attr}: {}", e.desc()),
    }
}

fn open_proc(field: &'static str, label: &str) -> Result<ProcFs, LsmError> {
    ProcFs::open().map_err(|e: RootfsError| LsmError::Label {
        field,
        label: label.to_string(),
        msg: format!("cannot reach the container's procfs: {e}"),
    })
}

/// Before execve, in the process that will exec: the AppArmor profile and
/// the SELinux label the program starts in. Both take effect at the next
/// execve only; the kernel resets them there.
pub fn set_exec_labels(labels: &Labels) -> Result<(), LsmError> {
    if let Some(p) = &labels.apparmor {
        let proc = open_proc(APPARMOR_FIELD, p)?;
        write_attr(
            &proc,
            &["apparmor/exec", "exec"],
            &format!("exec {p}"),
            APPARMOR_FIELD,
            p,
        )?;
    }
    if let Some(l) = &labels.selinux {
        let proc = open_proc(SELINUX_FIELD, l)?;
        write_attr(&proc, &["exec"], l, SELINUX_FIELD, l)?;
    }
    Ok(())
}

/// Runs `join` (joining a new session keyring) with the SELinux process
/// label as the label of keyrings this process creates, then resets it,
/// so the container's keyring carries the container's label (runc does
/// the same).
pub fn with_keyring_label<T>(labels: &Labels, join: impl FnOnce() -> T) -> Result<T, LsmError> {
    let Some(l) = &labels.selinux else {
        return Ok(join());
    };
    let proc = open_proc(SELINUX_FIELD, l)?;
    write_attr(&proc, &["keycreate"], l, SELINUX_FIELD, l)?;
    let out = join();
    write_attr(&proc, &["keycreate"], "", SELINUX_FIELD, l)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: Host = Host {
        apparmor: true,
        selinux: true,
    };

    #[test]
    fn labels_of_enabled_lsms_are_kept() {
        let (l, w) = Labels::plan(
            Some("rrun-test"),
            Some("system_u:system_r:container_t:s0:c1,c2"),
            Some("system_u:object_r:container_file_t:s0:c1,c2"),
            BOTH,
        )
        .unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(l.apparmor.as_deref(), Some("rrun-test"));
        assert_eq!(
            l.selinux.as_deref(),
            Some("system_u:system_r:container_t:s0:c1,c2")
        );
        assert!(l.mount.is_some());
    }

    #[test]
    fn labels_of_disabled_lsms_are_dropped_with_a_warning() {
        let host = Host {
            apparmor: false,
            selinux: true,
        };
        let (l, w) = Labels::plan(Some("p"), Some("s"), None, host).unwrap();
        assert_eq!(l.apparmor, None);
        assert_eq!(l.selinux.as_deref(), Some("s"));
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("process.apparmorProfile") && w[0].contains("AppArmor"));
        let (l, w) = Labels::plan(Some("p"), Some("s"), Some("m"), Host::default()).unwrap();
        assert_eq!(l, Labels::default());
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[2].contains("linux.mountLabel"));
    }

    #[test]
    fn empty_labels_mean_none_and_need_no_lsm() {
        let (l, w) = Labels::plan(Some(""), Some(""), Some(""), Host::default()).unwrap();
        assert_eq!(l, Labels::default());
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn malformed_labels_are_refused_even_where_ignored() {
        for host in [BOTH, Host::default()] {
            let e = Labels::plan(Some("a\nb"), None, None, host).unwrap_err();
            assert!(e.to_string().starts_with("process.apparmorProfile"), "{e}");
            let e = Labels::plan(None, Some("x\0"), None, host).unwrap_err();
            assert!(e.to_string().starts_with("process.selinuxLabel"), "{e}");
            let e = Labels::plan(None, None, Some("a\"b"), host).unwrap_err();
            assert!(e.to_string().starts_with("linux.mountLabel"), "{e}");
        }
    }

    #[test]
    fn context_option_formatting() {
        assert_eq!(with_context("", None), "");
        assert_eq!(with_context("mode=755", None), "mode=755");
        assert_eq!(with_context("", Some("u:r:t:s0")), "context=\"u:r:t:s0\"");
        assert_eq!(
            with_context("mode=755,size=65536k", Some("u:object_r:t:s0:c1,c2")),
            "mode=755,size=65536k,context=\"u:object_r:t:s0:c1,c2\""
        );
    }

    #[test]
    fn which_mounts_get_the_mount_label() {
        use MountLabeling::*;
        for (typ, bind, want) in [
            (Some("tmpfs"), false, Context),
            (Some("devpts"), false, Context),
            (Some("shm"), false, Context),
            (None, false, Context),
            (Some("mqueue"), false, RootLabel),
            (Some("proc"), false, Unlabelled),
            (Some("sysfs"), false, Unlabelled),
            (Some("cgroup"), false, Unlabelled),
            (Some("cgroup2"), false, Unlabelled),
            (Some("bind"), true, Unlabelled),
            (Some("tmpfs"), true, Unlabelled),
            (None, true, Unlabelled),
        ] {
            assert_eq!(mount_labeling(typ, bind), want, "{typ:?} bind={bind}");
        }
    }

    #[test]
    fn host_detection() {
        let tmp = tempfile::tempdir().unwrap();
        let (sys, proc) = (tmp.path().join("sys"), tmp.path().join("proc"));
        let write = |p: &Path, s: &str| {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, s).unwrap();
        };
        // Nothing at all: no LSM.
        assert_eq!(Host::detect_in(&sys, &proc), Host::default());
        // Only the module parameter (securityfs not mounted).
        let param = sys.join("module/apparmor/parameters/enabled");
        write(&param, "Y\n");
        assert!(Host::detect_in(&sys, &proc).apparmor);
        write(&param, "N\n");
        assert!(!Host::detect_in(&sys, &proc).apparmor);
        // The securityfs list wins over the parameter.
        let lsm = sys.join("kernel/security/lsm");
        write(&lsm, "lockdown,capability,landlock,yama,apparmor");
        assert_eq!(
            Host::detect_in(&sys, &proc),
            Host {
                apparmor: true,
                selinux: false
            }
        );
        // SELinux counts once a policy is loaded (tasks are no longer "kernel").
        write(&lsm, "capability,selinux");
        let current = proc.join("self/attr/current");
        write(&current, "kernel\0");
        assert_eq!(Host::detect_in(&sys, &proc), Host::default());
        write(&current, "system_u:system_r:unconfined_t:s0\0");
        assert!(Host::detect_in(&sys, &proc).selinux);
    }
}
