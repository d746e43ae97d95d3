//! Pure translation of config.json mount options into mount(2) flags and a
//! data string. No syscalls here; unit-tested below.

use nix::mount::MsFlags;

/// What one `mounts[]` entry asks of mount(2).
#[derive(Debug, Clone, PartialEq)]
pub struct MountOptions {
    /// Flags for the mount itself (MS_RDONLY, MS_NOSUID, ...).
    pub flags: MsFlags,
    /// Propagation changes applied after the mount, in order.
    pub propagation: Vec<MsFlags>,
    /// Filesystem-specific options (size=, mode=, ...), comma-joined.
    pub data: String,
    pub bind: bool,
    pub recursive: bool,
}

/// Every option keyword rrun understands (for `rrun features`); anything
/// else is passed to the filesystem as data.
pub const KNOWN: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "private",
    "rbind",
    "relatime",
    "remount",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
    "ro",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "sync",
    "tmpcopyup",
    "unbindable",
];

/// MS_* flag for a propagation keyword (also used for rootfsPropagation).
pub fn propagation_flag(opt: &str) -> Option<MsFlags> {
    Some(match opt {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// (set, clear) for a flag keyword of mount(8).
fn flag(opt: &str) -> Option<(MsFlags, MsFlags)> {
    use MsFlags as F;
    let none = F::empty();
    Some(match opt {
        "ro" => (F::MS_RDONLY, none),
        "rw" => (none, F::MS_RDONLY),
        "nosuid" => (F::MS_NOSUID, none),
        "suid" => (none, F::MS_NOSUID),
        "nodev" => (F::MS_NODEV, none),
        "dev" => (none, F::MS_NODEV),
        "noexec" => (F::MS_NOEXEC, none),
        "exec" => (none, F::MS_NOEXEC),
        "sync" => (F::MS_SYNCHRONOUS, none),
        "async" => (none, F::MS_SYNCHRONOUS),
        "dirsync" => (F::MS_DIRSYNC, none),
        "remount" => (F::MS_REMOUNT, none),
        "mand" => (F::MS_MANDLOCK, none),
        "nomand" => (none, F::MS_MANDLOCK),
        "atime" => (none, F::MS_NOATIME),
        "noatime" => (F::MS_NOATIME, none),
        "diratime" => (none, F::MS_NODIRATIME),
        "nodiratime" => (F::MS_NODIRATIME, none),
        "relatime" => (F::MS_RELATIME, none),
        "norelatime" => (none, F::MS_RELATIME),
        "strictatime" => (F::MS_STRICTATIME, none),
        "nostrictatime" => (none, F::MS_STRICTATIME),
        "lazytime" => (F::MS_LAZYTIME, none),
        "nolazytime" => (none, F::MS_LAZYTIME),
        "silent" => (F::MS_SILENT, none),
        "loud" => (none, F::MS_SILENT),
        "iversion" => (F::MS_I_VERSION, none),
        "noiversion" => (none, F::MS_I_VERSION),
        _ => return None,
    })
}

pub fn parse(options: &[String], typ: Option<&str>) -> MountOptions {
    let mut m = MountOptions {
        flags: MsFlags::empty(),
        propagation: Vec::new(),
        data: String::new(),
        bind: false,
        recursive: false,
    };
    let mut data = Vec::new();
    if typ == Some("bind") {
        m.bind = true;
    }
    for o in options {
        match o.as_str() {
            "bind" => m.bind = true,
            "rbind" => {
                m.bind = true;
                m.recursive = true;
            }
            // Runtime extensions that other runtimes understand and that
            // carry no mount(2) meaning here.
            "tmpcopyup" | "defaults" => {}
            _ => {
                if let Some(p) = propagation_flag(o) {
                    m.propagation.push(p);
                } else if let Some((set, clear)) = flag(o) {
                    m.flags.insert(set);
                    m.flags.remove(clear);
                } else {
                    data.push(o.clone());
                }
            }
        }
    }
    m.data = data.join(",");
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn tmpfs_options() {
        let m = parse(
            &s(&["nosuid", "strictatime", "mode=755", "size=65536k"]),
            Some("tmpfs"),
        );
        assert_eq!(m.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(m.data, "mode=755,size=65536k");
        assert!(!m.bind);
    }

    #[test]
    fn bind_ro_with_propagation() {
        let m = parse(&s(&["rbind", "ro", "rprivate", "nodev"]), None);
        assert!(m.bind && m.recursive);
        assert_eq!(m.flags, MsFlags::MS_RDONLY | MsFlags::MS_NODEV);
        assert_eq!(m.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        assert!(m.data.is_empty());
    }

    #[test]
    fn every_known_option_is_understood() {
        for o in KNOWN {
            let m = parse(&[o.to_string()], None);
            assert!(m.data.is_empty(), "{o} fell through to data");
        }
    }

    #[test]
    fn later_options_win() {
        let m = parse(&s(&["ro", "rw"]), None);
        assert!(!m.flags.contains(MsFlags::MS_RDONLY));
        assert!(parse(&[], Some("bind")).bind);
    }
}
