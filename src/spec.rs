//! Loading and validating a bundle's config.json (oci-spec types), and the
//! default config that `rrun spec` writes. Everything that can be checked
//! without touching the system is checked here, before create has any side
//! effect; this module never mounts, forks or writes outside the bundle.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde_json::json;

pub mod limits;

/// The runtime-spec versions rrun accepts (major 1, minor 0 ..= MAX_MINOR).
pub const OCI_VERSION_MIN: &str = "1.0.0";
pub const OCI_VERSION_MAX: &str = "1.3.0";
const MAX_MINOR: u64 = 3;

/// The version rrun writes into state JSON and `spec` output.
pub const OCI_VERSION: &str = "1.2.1";

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("bundle {0}: {1}")]
    Bundle(PathBuf, std::io::Error),
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid JSON at {field}: {msg}")]
    Parse {
        path: PathBuf,
        field: String,
        msg: String,
    },
    #[error("config.json: {0}")]
    Invalid(String),
    /// Input over one of the size limits (the message names the file or field).
    #[error("{0}")]
    Limit(String),
}

pub type Result<T> = std::result::Result<T, SpecError>;

/// A validated bundle: its absolute path, the parsed config and the absolute
/// rootfs path.
pub struct Bundle {
    pub path: PathBuf,
    pub spec: Spec,
    pub rootfs: PathBuf,
}

/// Loads `<bundle>/config.json` and validates it.
pub fn load_bundle(bundle: &Path) -> Result<Bundle> {
    let path = fs::canonicalize(bundle).map_err(|e| SpecError::Bundle(bundle.to_path_buf(), e))?;
    if !path.is_dir() {
        return Err(SpecError::Bundle(
            path,
            std::io::Error::from_raw_os_error(libc::ENOTDIR),
        ));
    }
    let config = path.join("config.json");
    let spec = parse_config(&config)?;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| SpecError::Invalid("root: missing".into()))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        path.join(root.path())
    };
    let rootfs = fs::canonicalize(&rootfs)
        .map_err(|e| SpecError::Invalid(format!("root.path {}: {}", rootfs.display(), e)))?;
    if !rootfs.is_dir() {
        return Err(SpecError::Invalid(format!(
            "root.path {}: not a directory",
            rootfs.display()
        )));
    }
    validate(&spec)?;
    Ok(Bundle { path, spec, rootfs })
}

/// Parses config.json, naming the field (and line/column) of any error.
pub fn parse_config(config: &Path) -> Result<Spec> {
    let data = limits::read_capped(config, "config.json")?;
    parse_config_bytes(config, &data)
}

pub fn parse_config_bytes(config: &Path, data: &[u8]) -> Result<Spec> {
    let de = &mut serde_json::Deserializer::from_slice(data);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        SpecError::Parse {
            path: config.to_path_buf(),
            field: if field == "." {
                "top level".into()
            } else {
                field
            },
            msg: e.into_inner().to_string(),
        }
    })
}

/// Checks what the spec requires and what rrun cannot honour, so create fails
/// before any process or mount exists.
/// No new mount namespace: the container inherits rrun's (the spec's rule
/// for any namespace not listed) or joins one by path, and its process is
/// only chrooted into root.path. Whatever would change mounts there (the
/// host's own, or another container's) is refused by name instead of
/// being done to them; the rest is allowed, with a warning, since it is
/// rare and the container shares the filesystem view.
fn check_without_mount_ns(spec: &Spec, joined: bool) -> Result<()> {
    let linux = spec.linux().as_ref();
    let nonempty = |v: Option<&Vec<String>>| v.is_some_and(|v| !v.is_empty());
    for (what, set) in [
        (
            "mounts",
            spec.mounts().as_ref().is_some_and(|m| !m.is_empty()),
        ),
        (
            "linux.maskedPaths",
            nonempty(linux.and_then(|l| l.masked_paths().as_ref())),
        ),
        (
            "linux.readonlyPaths",
            nonempty(linux.and_then(|l| l.readonly_paths().as_ref())),
        ),
        (
            "linux.devices",
            linux
                .and_then(|l| l.devices().as_ref())
                .is_some_and(|d| !d.is_empty()),
        ),
        (
            "linux.sysctl",
            linux
                .and_then(|l| l.sysctl().as_ref())
                .is_some_and(|d| !d.is_empty()),
        ),
        (
            "linux.rootfsPropagation",
            linux
                .and_then(|l| l.rootfs_propagation().as_ref())
                .is_some(),
        ),
        (
            "root.readonly",
            spec.root()
                .as_ref()
                .and_then(|r| r.readonly())
                .unwrap_or(false),
        ),
        (
            "process.terminal",
            spec.process()
                .as_ref()
                .and_then(|p| p.terminal())
                .unwrap_or(false),
        ),
    ] {
        if set {
            return Err(SpecError::Invalid(format!(
                "{what}: needs a new mount namespace (linux.namespaces has none: the container \
                 shares {} mounts, which rrun does not change)",
                if joined {
                    "the joined namespace's"
                } else {
                    "the host's"
                }
            )));
        }
    }
    crate::log::warn(if joined {
        "linux.namespaces: the container joins an existing mount namespace and shares its mounts"
    } else {
        "linux.namespaces: no mount namespace: the container shares the host's mounts (chrooted into root.path only)"
    });
    Ok(())
}

pub fn validate(spec: &Spec) -> Result<()> {
    check_version(spec.version())?;
    limits::check_spec(spec)?;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| SpecError::Invalid("process: missing".into()))?;
    match process.args() {
        Some(args) if !args.is_empty() && !args[0].is_empty() => {}
        _ => return Err(SpecError::Invalid("process.args: must not be empty".into())),
    }
    if !process.cwd().is_absolute() {
        return Err(SpecError::Invalid(format!(
            "process.cwd {:?}: must be an absolute path",
            process.cwd()
        )));
    }
    if let Some(env) = process.env() {
        for (i, e) in env.iter().enumerate() {
            if !e.contains('=') {
                return Err(SpecError::Invalid(format!(
                    "process.env[{i}] {e:?}: must be KEY=VALUE"
                )));
            }
        }
    }
    if process.terminal().unwrap_or(false) && process.console_size().is_some() {
        // consoleSize is only meaningful with a terminal; nothing to check.
    }
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| SpecError::Invalid("linux: missing".into()))?;

    for (what, set) in [
        (
            "process.execCPUAffinity",
            process.exec_cpu_affinity().is_some(),
        ),
        ("linux.intelRdt", linux.intel_rdt().is_some()),
        ("linux.memoryPolicy", linux.memory_policy().is_some()),
        (
            "linux.netDevices",
            linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()),
        ),
    ] {
        if set {
            return Err(SpecError::Invalid(format!(
                "{what}: not supported by this build of rrun"
            )));
        }
    }
    if let Some(p) = linux.personality()
        && p.flags().as_ref().is_some_and(|f| !f.is_empty())
    {
        return Err(SpecError::Invalid(
            "linux.personality.flags: no flags are supported (the spec defines none)".into(),
        ));
    }
    if let Some(io) = process.io_priority()
        && !(0..=7).contains(&io.priority())
    {
        return Err(SpecError::Invalid(format!(
            "process.ioPriority.priority {}: must be 0-7",
            io.priority()
        )));
    }
    let mut seen = HashSet::new();
    let mut new_ns = HashSet::new();
    for ns in linux.namespaces().as_deref().unwrap_or_default() {
        if !seen.insert(ns.typ()) {
            return Err(SpecError::Invalid(format!(
                "linux.namespaces: duplicate namespace {}",
                ns.typ()
            )));
        }
        match ns.path() {
            Some(p) if !p.is_absolute() => {
                return Err(SpecError::Invalid(format!(
                    "linux.namespaces: {} path {:?} is not absolute",
                    ns.typ(),
                    p
                )));
            }
            Some(_) => {}
            None => {
                new_ns.insert(ns.typ());
            }
        }
    }
    let has = |t: LinuxNamespaceType| seen.contains(&t);
    if !new_ns.contains(&LinuxNamespaceType::Mount) {
        check_without_mount_ns(spec, has(LinuxNamespaceType::Mount))?;
    }
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(SpecError::Invalid(
            "hostname: cannot set a hostname without a private UTS namespace".into(),
        ));
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts)
    {
        return Err(SpecError::Invalid(
            "domainname: cannot set a domainname without a private UTS namespace".into(),
        ));
    }
    let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if new_ns.contains(&LinuxNamespaceType::User) {
        if linux.uid_mappings().as_ref().is_none_or(|m| m.is_empty())
            || linux.gid_mappings().as_ref().is_none_or(|m| m.is_empty())
        {
            return Err(SpecError::Invalid(
                "linux.uidMappings/gidMappings: required with a new user namespace".into(),
            ));
        }
    } else if maps && !has(LinuxNamespaceType::User) {
        return Err(SpecError::Invalid(
            "linux.uidMappings: user namespace mappings given without a user namespace".into(),
        ));
    }
    if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty())
        && !new_ns.contains(&LinuxNamespaceType::Time)
    {
        return Err(SpecError::Invalid(
            "linux.timeOffsets: require a new time namespace".into(),
        ));
    }
    if let Some(sysctl) = linux.sysctl() {
        for key in sysctl.keys() {
            check_sysctl(key, &new_ns)?;
        }
    }
    if let Some(prop) = linux.rootfs_propagation()
        && crate::rootfs::propagation_flag(prop).is_none()
    {
        return Err(SpecError::Invalid(format!(
            "linux.rootfsPropagation {prop:?}: unknown propagation mode"
        )));
    }
    for (i, m) in spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if m.destination().as_os_str().is_empty() {
            return Err(SpecError::Invalid(format!(
                "mounts[{i}].destination: empty"
            )));
        }
        let typ = m.typ().as_deref().filter(|t| !t.is_empty());
        crate::rootfs::options::parse(m.options().as_deref().unwrap_or_default(), typ).map_err(
            |e| SpecError::Invalid(format!("mounts[{i}] ({}): {e}", m.destination().display())),
        )?;
    }
    for (i, d) in linux
        .devices()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if !d.path().is_absolute() {
            return Err(SpecError::Invalid(format!(
                "linux.devices[{i}].path {:?}: must be absolute",
                d.path()
            )));
        }
    }
    if let Some(s) = linux.seccomp() {
        check_seccomp(s)?;
    }
    if let Some(hooks) = spec.hooks() {
        let all = [
            ("prestart", hooks.prestart()),
            ("createRuntime", hooks.create_runtime()),
            ("createContainer", hooks.create_container()),
            ("startContainer", hooks.start_container()),
            ("poststart", hooks.poststart()),
            ("poststop", hooks.poststop()),
        ];
        for (name, list) in all {
            for (i, h) in list.as_deref().unwrap_or_default().iter().enumerate() {
                if !h.path().is_absolute() {
                    return Err(SpecError::Invalid(format!(
                        "hooks.{name}[{i}].path {:?}: must be absolute",
                        h.path()
                    )));
                }
                if h.timeout().is_some_and(|t| t <= 0) {
                    return Err(SpecError::Invalid(format!(
                        "hooks.{name}[{i}].timeout: must be greater than zero"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// The syscall the container process hands its seccomp listener over
/// with, right after loading the notify filter (process::sync, step s1):
/// nobody can answer a notification then, so it must not be notified.
const SECCOMP_HANDOFF_SYSCALL: &str = "sendmsg";

/// linux.seccomp's listener fields: listenerPath is required with
/// SCMP_ACT_NOTIFY and listenerMetadata needs it (config-linux.md); the
/// hand-off syscall must not be notified, or the container process would
/// wait forever for an answer only the agent it is sending to could give.
fn check_seccomp(s: &oci_spec::runtime::LinuxSeccomp) -> Result<()> {
    use oci_spec::runtime::LinuxSeccompAction as A;
    let has_path = s
        .listener_path()
        .as_ref()
        .is_some_and(|p| !p.as_os_str().is_empty());
    if s.listener_metadata().is_some() && !has_path {
        return Err(SpecError::Invalid(
            "linux.seccomp.listenerMetadata: must not be set without listenerPath".into(),
        ));
    }
    let rules = s.syscalls().as_deref().unwrap_or_default();
    let default_notify = s.default_action() == A::ScmpActNotify;
    if !default_notify && !rules.iter().any(|r| r.action() == A::ScmpActNotify) {
        return Ok(());
    }
    if !has_path {
        return Err(SpecError::Invalid(
            "linux.seccomp.listenerPath: required when SCMP_ACT_NOTIFY is used".into(),
        ));
    }
    let names_handoff = |r: &oci_spec::runtime::LinuxSyscall| {
        r.names().iter().any(|n| n == SECCOMP_HANDOFF_SYSCALL)
    };
    if let Some(i) = rules
        .iter()
        .position(|r| r.action() == A::ScmpActNotify && names_handoff(r))
    {
        return Err(SpecError::Invalid(format!(
            "linux.seccomp.syscalls[{i}]: SCMP_ACT_NOTIFY cannot be used for \
             {SECCOMP_HANDOFF_SYSCALL} (rrun hands the listener over with it)"
        )));
    }
    let handoff_ruled = rules.iter().any(|r| {
        r.action() != A::ScmpActNotify
            && names_handoff(r)
            && r.args().as_ref().is_none_or(|a| a.is_empty())
    });
    if default_notify && !handoff_ruled {
        return Err(SpecError::Invalid(format!(
            "linux.seccomp.defaultAction SCMP_ACT_NOTIFY: needs a rule for \
             {SECCOMP_HANDOFF_SYSCALL} with another action and no args (rrun hands the listener over with it)"
        )));
    }
    Ok(())
}

fn check_version(v: &str) -> Result<()> {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    let nums: Option<Vec<u64>> = parts.iter().map(|p| p.parse().ok()).collect();
    match nums.as_deref() {
        Some([1, minor, _]) if *minor <= MAX_MINOR => Ok(()),
        _ => Err(SpecError::Invalid(format!(
            "ociVersion {v:?}: unsupported (rrun supports {OCI_VERSION_MIN} to {OCI_VERSION_MAX})"
        ))),
    }
}

/// Mirrors the kernel's namespacing of sysctls: only keys that live in a
/// namespace the container owns may be set, otherwise the write would change
/// the host (runc refuses the same keys).
fn check_sysctl(key: &str, new_ns: &HashSet<LinuxNamespaceType>) -> Result<()> {
    let ipc = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let ok = if ipc.contains(&key) || key.starts_with("fs.mqueue.") {
        new_ns.contains(&LinuxNamespaceType::Ipc)
    } else if key.starts_with("net.") {
        new_ns.contains(&LinuxNamespaceType::Network)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        new_ns.contains(&LinuxNamespaceType::Uts)
    } else {
        return Err(SpecError::Invalid(format!(
            "linux.sysctl {key:?}: not allowed in a container (not namespaced)"
        )));
    };
    if ok {
        Ok(())
    } else {
        Err(SpecError::Invalid(format!(
            "linux.sysctl {key:?}: requires a new namespace of its kind"
        )))
    }
}

/// The config.json `rrun spec` writes: what `runc spec` writes, so bundles
/// made for one work with the other.
pub fn default_spec(rootless: bool) -> serde_json::Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut v = json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "rrun",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    });
    if rootless {
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        let linux = &mut v["linux"];
        linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        // Without a network namespace of its own the container shares the
        // user's; cgroups are not delegated, so the cgroup limits go too.
        linux["namespaces"] = json!([
            {"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
            {"type": "mount"}, {"type": "cgroup"}, {"type": "user"}
        ]);
        linux.as_object_mut().map(|l| l.remove("resources"));
        let mounts = v["mounts"]
            .as_array_mut()
            .expect("default mounts are an array");
        mounts.retain(|m| m["destination"] != "/sys/fs/cgroup" && m["destination"] != "/sys");
        mounts.push(
            json!({"destination": "/sys", "type": "none", "source": "/sys",
            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}),
        );
        for m in mounts.iter_mut() {
            if m["destination"] == "/dev/pts" {
                m["options"] = json!([
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620"
                ]);
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_from(v: serde_json::Value) -> Result<Spec> {
        parse_config_bytes(Path::new("config.json"), &serde_json::to_vec(&v).unwrap())
    }

    #[test]
    fn default_spec_parses_and_validates() {
        for rootless in [false, true] {
            let spec = spec_from(default_spec(rootless)).unwrap();
            validate(&spec).unwrap();
        }
    }

    #[test]
    fn versions() {
        assert!(check_version("1.0.2-dev").is_ok());
        assert!(check_version("1.2.0").is_ok());
        assert!(check_version("1.3.0").is_ok());
        assert!(check_version("9.9.9").is_err());
        assert!(check_version("2.0.0").is_err());
        assert!(check_version("1.4.0").is_err());
        assert!(check_version("").is_err());
    }

    #[test]
    fn parse_error_names_the_field() {
        let mut v = default_spec(false);
        v["process"]["user"]["uid"] = json!("root");
        match spec_from(v) {
            Err(SpecError::Parse { field, .. }) => assert_eq!(field, "process.user.uid"),
            other => panic!("unexpected {:?}", other.err()),
        }
    }

    #[test]
    fn hostname_needs_uts() {
        let mut v = default_spec(false);
        v["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}]);
        let spec = spec_from(v).unwrap();
        assert!(validate(&spec).unwrap_err().to_string().contains("UTS"));
    }

    #[test]
    fn sysctl_rules() {
        let ns: HashSet<_> = [LinuxNamespaceType::Network, LinuxNamespaceType::Ipc].into();
        assert!(check_sysctl("net.ipv4.ip_forward", &ns).is_ok());
        assert!(check_sysctl("kernel.shm_rmid_forced", &ns).is_ok());
        assert!(check_sysctl("kernel.hostname", &ns).is_err());
        assert!(check_sysctl("vm.swappiness", &ns).is_err());
        assert!(check_sysctl("net.ipv4.ip_forward", &HashSet::new()).is_err());
    }

    #[test]
    fn duplicate_namespace_rejected() {
        let mut v = default_spec(false);
        v["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "pid"}, {"type": "uts"}]);
        let spec = spec_from(v).unwrap();
        assert!(
            validate(&spec)
                .unwrap_err()
                .to_string()
                .contains("duplicate")
        );
    }

    fn with_seccomp(sc: serde_json::Value) -> Result<()> {
        let mut v = default_spec(false);
        v["linux"]["seccomp"] = sc;
        validate(&spec_from(v).unwrap())
    }

    #[test]
    fn seccomp_listener_rules() {
        let notify = json!([{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]);
        let ok = |sc| with_seccomp(sc).map_err(|e| e.to_string());
        let err = |sc| with_seccomp(sc).unwrap_err().to_string();
        assert!(
            err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": notify}))
                .contains("listenerPath: required")
        );
        assert!(
            err(json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "", "syscalls": notify}))
                .contains("listenerPath: required")
        );
        ok(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/a.sock",
                  "listenerMetadata": "m", "syscalls": notify}),
        )
        .unwrap();
        // Without notify, a listenerPath is ignored; metadata alone is not.
        ok(json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/a.sock"})).unwrap();
        assert!(
            err(json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "m"}))
                .contains("listenerMetadata")
        );
        // The hand-off syscall may not be notified, by rule or by default.
        let e = err(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
                         {"names": ["mkdir", "sendmsg"], "action": "SCMP_ACT_NOTIFY"}]}),
        );
        assert!(e.contains("syscalls[1]") && e.contains("sendmsg"), "{e}");
        let e = err(json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/a"}));
        assert!(e.contains("defaultAction") && e.contains("sendmsg"), "{e}");
        let e = err(
            json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/a",
            "syscalls": [{"names": ["sendmsg"], "action": "SCMP_ACT_ALLOW",
                          "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_EQ"}]}]}),
        );
        assert!(
            e.contains("defaultAction"),
            "conditional rules may not match: {e}"
        );
        ok(
            json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/a",
            "syscalls": [{"names": ["read", "sendmsg"], "action": "SCMP_ACT_LOG"}]}),
        )
        .unwrap();
    }
}
