//! An app's config.json: the runtime's default spec, the image's config
//! (the same code as `rrun unpack`), and the app's settings on top —
//! its overlay root, network namespace, volumes, limits, the built-in init
//! with the app's restart policy and health check. Pure except for
//! reading the image's /etc/passwd and /etc/group through the store.

use std::path::Path;

use serde_json::{Value, json};

use super::settings::AppSpec;
use super::store::{Image, Store};
use crate::image::config::{self, Overrides};

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{0}")]
    Config(#[from] config::ConfigError),
    #[error("{0}")]
    Settings(#[from] super::settings::SettingsError),
    #[error("reading the image's {file}: {why}")]
    Etc { file: &'static str, why: String },
}

/// Docker's default capabilities: what images expect their programs to
/// hold (drop to a user, chown files, bind low ports).
const CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Where the host side of the app lives, for the mounts.
pub struct Inputs<'a> {
    pub spec: &'a AppSpec,
    pub image: &'a Image,
    /// The app's directory (hosts, resolv.conf, hostname files).
    pub app_dir: &'a Path,
    /// The network namespace to join; None: the host's (`--network host`).
    pub netns: Option<&'a Path>,
    /// Named volumes' directory.
    pub volumes_dir: &'a Path,
    pub cgroups_path: String,
}

pub fn config(store: &Store, i: &Inputs) -> Result<Value, BundleError> {
    let s = i.spec;
    let overrides = Overrides {
        entrypoint: s.entrypoint.clone(),
        cmd: s.command.clone(),
        env: s.env.clone(),
        workdir: s.workdir.clone(),
        user: s.user.clone(),
    };
    let user = match config::user_spec(&i.image.config, &overrides) {
        Some(u) => {
            let etc = |file: &'static str| {
                store.read_etc(i.image, file).map_err(|e| BundleError::Etc {
                    file,
                    why: e.to_string(),
                })
            };
            let passwd = etc("etc/passwd")?;
            let group = etc("etc/group")?;
            config::resolve_user(u, passwd.as_deref(), group.as_deref())?
        }
        None => config::ResolvedUser::default(),
    };
    let mut annotations = s.init_annotations()?;
    for (k, v) in &s.labels {
        annotations.insert(format!("app.rrun.label.{k}"), v.clone());
    }
    annotations.insert("app.rrun.name".into(), s.name.clone());
    let base = crate::spec::default_spec(false);
    let mut v = config::runtime_config(base, &i.image.config, &overrides, &user, &annotations)?;

    v["root"] = json!({"path": "rootfs", "readonly": s.read_only});
    v["hostname"] = json!(s.hostname.clone().unwrap_or_else(|| s.name.clone()));
    v["process"]["terminal"] = json!(false);
    // Servers want many fds: as many as this process may have (raising a
    // hard limit would need a privilege the init no longer holds then).
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .unwrap_or((1024, 1024));
    let nofile = hard.min(1 << 20);
    v["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile}]);
    let caps = json!(CAPS);
    for set in ["bounding", "effective", "permitted"] {
        v["process"]["capabilities"][set] = caps.clone();
    }

    v["linux"]["seccomp"] = seccomp_profile();

    let mounts = v["mounts"]
        .as_array_mut()
        .expect("the default spec has mounts");
    for (file, target) in [
        ("hosts", "/etc/hosts"),
        ("resolv.conf", "/etc/resolv.conf"),
        ("hostname", "/etc/hostname"),
    ] {
        let src = i.app_dir.join(file);
        if src.exists() {
            mounts.push(json!({
                "destination": target, "type": "bind",
                "source": src, "options": ["bind", "ro", "nosuid", "nodev", "noexec"]
            }));
        }
    }
    for vol in &s.volumes {
        let source = if vol.is_named() {
            i.volumes_dir.join(&vol.source)
        } else {
            vol.source.clone().into()
        };
        let mut options = vec!["rbind", "nodev"];
        options.push(if vol.readonly { "ro" } else { "rw" });
        mounts.push(json!({
            "destination": vol.target, "type": "bind", "source": source, "options": options
        }));
    }
    for t in &s.tmpfs {
        let mut options = vec![
            "nosuid".to_string(),
            "nodev".to_string(),
            "mode=1777".to_string(),
        ];
        if let Some(size) = t.size {
            options.push(format!("size={size}"));
        }
        mounts.push(json!({
            "destination": t.target, "type": "tmpfs", "source": "tmpfs", "options": options
        }));
    }

    let namespaces = v["linux"]["namespaces"]
        .as_array_mut()
        .expect("the default spec has namespaces");
    namespaces.retain(|n| n["type"] != "network");
    if let Some(ns) = i.netns {
        namespaces.push(json!({"type": "network", "path": ns}));
    }

    let mut resources = json!({});
    if let Some(m) = s.memory {
        resources["memory"] = json!({"limit": m});
    }
    if let Some(c) = s.cpus {
        resources["cpu"] = json!({
            "quota": super::settings::cpu_quota(c),
            "period": super::settings::CPU_PERIOD,
        });
    }
    if let Some(p) = s.pids_limit {
        resources["pids"] = json!({"limit": p});
    }
    let devices = v["linux"]["resources"]["devices"].clone();
    if !devices.is_null() {
        resources["devices"] = devices;
    }
    v["linux"]["resources"] = resources;
    v["linux"]["cgroupsPath"] = json!(i.cgroups_path);
    Ok(v)
}

/// System calls an app never needs that open kernel surface beyond its
/// capabilities (what Docker's default profile also refuses): the keyrings
/// (shared with the host's root: same uid, no user namespace), new user
/// namespaces (a full capability set in them: mounts, netfilter, ...),
/// bpf, perf, userfaultfd, io_uring, modules, kexec, handles, mounts,
/// clocks, swap, accounting. Everything else is allowed: a denylist, so
/// images keep working as under Docker.
const DENIED: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "init_module",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ioperm",
    "iopl",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mount",
    "mount_setattr",
    "move_mount",
    "name_to_handle_at",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "quotactl",
    "request_key",
    "setns",
    "settimeofday",
    "swapoff",
    "swapon",
    "syslog",
    "umount2",
    "userfaultfd",
];

/// CLONE_NEWUSER.
const NEWUSER: u64 = 0x1000_0000;

fn seccomp_profile() -> Value {
    let newuser =
        json!([{"index": 0, "value": NEWUSER, "valueTwo": NEWUSER, "op": "SCMP_CMP_MASKED_EQ"}]);
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": DENIED, "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM},
            // clone3's flags are behind a pointer, out of a filter's reach:
            // ENOSYS makes libc fall back to clone, whose flags are checked.
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS},
            {"names": ["unshare", "clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM,
             "args": newuser},
        ]
    })
}
