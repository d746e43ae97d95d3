//! Pure translation of config.json mount options into mount(2) flags,
//! mount_setattr(2) attributes and a data string. No syscalls here;
//! unit-tested below. An option rrun cannot apply is an error, never
//! dropped: a bind mount has no filesystem to hand unknown words to, so
//! `rro` misspelt or unimplemented would otherwise leave a volume writable.

use nix::mount::MsFlags;

use crate::sys::mount_attr as attr;

/// A change of mount attributes for mount_setattr(2).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AttrChange {
    pub set: u64,
    pub clear: u64,
}

impl AttrChange {
    /// Later options win over earlier ones, as with mount(8).
    fn apply(&mut self, set: u64, clear: u64) {
        self.set = (self.set & !clear) | set;
        self.clear = (self.clear & !set) | clear;
    }

    pub fn is_empty(&self) -> bool {
        self.set == 0 && self.clear == 0
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum OptionError {
    #[error("mount option {0:?} is not known to rrun and a bind mount cannot pass it on")]
    UnknownForBind(String),
    /// `remount` on a new mount would act on whatever is already mounted at
    /// the destination (a bound host filesystem's superblock), not on a
    /// mount of the container's own.
    #[error(
        "mount option \"remount\" is not allowed: it would change the filesystem already \
         mounted at the destination (possibly the host's), not a mount of the container"
    )]
    Remount,
}

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
    /// rro, rnosuid, ...: applied with mount_setattr(AT_RECURSIVE) after
    /// the mount, to it and every mount below it.
    pub recursive_attr: AttrChange,
    /// nosymfollow/symfollow (no MsFlags bit in nix): applied with
    /// mount_setattr to the mount itself.
    pub attr: AttrChange,
    /// tmpcopyup: a tmpfs starts with the contents of the directory it
    /// covers (copyup.rs).
    pub copy_up: bool,
}

/// The recursive attributes (runtime-spec 1.1 mount options, runc 1.1+):
/// (keyword, set, clear) for mount_setattr. An atime mode replaces the
/// whole atime field, which the kernel wants cleared when one is set.
const RECURSIVE: &[(&str, u64, u64)] = &[
    ("rro", attr::RDONLY, 0),
    ("rrw", 0, attr::RDONLY),
    ("rnosuid", attr::NOSUID, 0),
    ("rsuid", 0, attr::NOSUID),
    ("rnodev", attr::NODEV, 0),
    ("rdev", 0, attr::NODEV),
    ("rnoexec", attr::NOEXEC, 0),
    ("rexec", 0, attr::NOEXEC),
    ("rnodiratime", attr::NODIRATIME, 0),
    ("rdiratime", 0, attr::NODIRATIME),
    ("rrelatime", attr::RELATIME, attr::ATIME_MASK),
    // Without relatime and noatime, atime is updated on every access.
    ("rnorelatime", attr::STRICTATIME, attr::ATIME_MASK),
    ("rnoatime", attr::NOATIME, attr::ATIME_MASK),
    // "atime" only undoes noatime: back to the kernel's default, relatime.
    ("ratime", attr::RELATIME, attr::ATIME_MASK),
    ("rstrictatime", attr::STRICTATIME, attr::ATIME_MASK),
    ("rnostrictatime", attr::RELATIME, attr::ATIME_MASK),
    ("rnosymfollow", attr::NOSYMFOLLOW, 0),
    ("rsymfollow", 0, attr::NOSYMFOLLOW),
];

fn recursive_attr(opt: &str) -> Option<(u64, u64)> {
    RECURSIVE
        .iter()
        .find(|(k, _, _)| *k == opt)
        .map(|(_, s, c)| (*s, *c))
}

/// Every option keyword rrun understands (for `rrun features`, with the
/// recursive ones of [`RECURSIVE`]); anything else is passed to the
/// filesystem as data, and refused on a bind mount.
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
    "nosymfollow",
    "notmpcopyup",
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
    "symfollow",
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

/// The mount_setattr change that gives a bind mount the per-mount flags
/// `flags` as a bind remount (MS_BIND | MS_REMOUNT | flags) would: ro,
/// nosuid, nodev and noexec set exactly as given, the atime mode only when
/// one is given. Superblock flags (sync, dirsync, ...) mean nothing to a
/// bind and are ignored, as the kernel ignores them on a bind remount.
pub fn bind_flags_attr(flags: MsFlags) -> AttrChange {
    use MsFlags as F;
    let mut c = AttrChange::default();
    for (f, a) in [
        (F::MS_RDONLY, attr::RDONLY),
        (F::MS_NOSUID, attr::NOSUID),
        (F::MS_NODEV, attr::NODEV),
        (F::MS_NOEXEC, attr::NOEXEC),
    ] {
        if flags.contains(f) {
            c.set |= a;
        } else {
            c.clear |= a;
        }
    }
    let atime = F::MS_NOATIME | F::MS_NODIRATIME | F::MS_RELATIME | F::MS_STRICTATIME;
    if flags.intersects(atime) {
        c.clear |= attr::ATIME_MASK;
        c.set |= if flags.contains(F::MS_NOATIME) {
            attr::NOATIME
        } else if flags.contains(F::MS_STRICTATIME) {
            attr::STRICTATIME
        } else {
            attr::RELATIME
        };
        if flags.contains(F::MS_NODIRATIME) {
            c.set |= attr::NODIRATIME;
        } else {
            c.clear |= attr::NODIRATIME;
        }
    }
    c
}

/// A mount's data string as fsconfig(2) parameters, with the superblock
/// flags of `flags` (ro, sync, ...) as the flag parameters mount(2) turns
/// them into: "key=value" or "key", split on commas outside double quotes
/// (an SELinux context= holds commas), the quotes dropped.
pub fn fs_params(data: &str, flags: MsFlags) -> Vec<(String, Option<String>)> {
    use MsFlags as F;
    let mut out = Vec::new();
    let (mut cur, mut quoted) = (String::new(), false);
    for ch in data.chars().chain(std::iter::once(',')) {
        match ch {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                if !cur.is_empty() {
                    let item = std::mem::take(&mut cur);
                    out.push(match item.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(v.to_string())),
                        None => (item, None),
                    });
                }
            }
            c => cur.push(c),
        }
    }
    for (f, name) in [
        (F::MS_RDONLY, "ro"),
        (F::MS_SYNCHRONOUS, "sync"),
        (F::MS_DIRSYNC, "dirsync"),
        (F::MS_LAZYTIME, "lazytime"),
        (F::MS_MANDLOCK, "mand"),
        (F::MS_SILENT, "silent"),
        (F::MS_I_VERSION, "iversion"),
    ] {
        if flags.contains(f) {
            out.push((name.to_string(), None));
        }
    }
    out
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

/// Every keyword `rrun features` lists under mountOptions.
pub fn all_known() -> Vec<&'static str> {
    let mut v: Vec<&str> = KNOWN.to_vec();
    v.extend(RECURSIVE.iter().map(|(k, _, _)| *k));
    v.extend(["idmap", "ridmap"]);
    v.sort_unstable();
    v
}

pub fn parse(options: &[String], typ: Option<&str>) -> Result<MountOptions, OptionError> {
    let mut m = MountOptions {
        flags: MsFlags::empty(),
        propagation: Vec::new(),
        data: String::new(),
        bind: false,
        recursive: false,
        recursive_attr: AttrChange::default(),
        attr: AttrChange::default(),
        copy_up: false,
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
            // runc's extension for tmpfs: copy the directory's contents up.
            // On any other mount runc ignores it, and so does rrun.
            "tmpcopyup" => m.copy_up = typ == Some("tmpfs"),
            // podman's way to say no (it normally strips it itself).
            "notmpcopyup" => m.copy_up = false,
            // mount(8)'s no-op.
            "defaults" => {}
            "nosymfollow" => m.attr.apply(attr::NOSYMFOLLOW, 0),
            "symfollow" => m.attr.apply(0, attr::NOSYMFOLLOW),
            // Id-mapped mounts are made on the host side (rootfs::idmap);
            // the options are not for mount(2).
            "idmap" | "ridmap" => {}
            _ => {
                if let Some(p) = propagation_flag(o) {
                    m.propagation.push(p);
                } else if let Some((set, clear)) = flag(o) {
                    m.flags.insert(set);
                    m.flags.remove(clear);
                } else if let Some((set, clear)) = recursive_attr(o) {
                    m.recursive_attr.apply(set, clear);
                } else {
                    data.push(o.clone());
                }
            }
        }
    }
    // On a bind, rrun applies the flags with a remount of its own (the
    // keyword changes nothing); elsewhere MS_REMOUNT would reconfigure the
    // superblock under the destination, which may be a host filesystem
    // bound there by an earlier entry (runc passes it to mount(2) as is).
    if !m.bind && m.flags.contains(MsFlags::MS_REMOUNT) {
        return Err(OptionError::Remount);
    }
    if m.bind {
        if let Some(o) = data.into_iter().next() {
            return Err(OptionError::UnknownForBind(o));
        }
    } else {
        m.data = data.join(",");
    }
    Ok(m)
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
        )
        .unwrap();
        assert_eq!(m.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(m.data, "mode=755,size=65536k");
        assert!(!m.bind);
    }

    #[test]
    fn bind_ro_with_propagation() {
        let m = parse(&s(&["rbind", "ro", "rprivate", "nodev"]), None).unwrap();
        assert!(m.bind && m.recursive);
        assert_eq!(m.flags, MsFlags::MS_RDONLY | MsFlags::MS_NODEV);
        assert_eq!(m.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        assert!(m.data.is_empty());
    }

    #[test]
    fn every_known_option_is_understood() {
        for o in all_known() {
            if o == "remount" {
                // Understood, and refused outside a bind (remount_only_on_binds).
                parse(&s(&["rbind", o]), None).unwrap();
                continue;
            }
            let m = parse(&[o.to_string()], Some("tmpfs")).unwrap();
            assert!(m.data.is_empty(), "{o} fell through to data");
            parse(&s(&["rbind", o]), None).unwrap();
        }
    }

    #[test]
    fn later_options_win() {
        let m = parse(&s(&["ro", "rw"]), None).unwrap();
        assert!(!m.flags.contains(MsFlags::MS_RDONLY));
        assert!(parse(&[], Some("bind")).unwrap().bind);
        let m = parse(&s(&["rro", "rnoatime", "rrw", "rstrictatime"]), None).unwrap();
        assert_eq!(m.recursive_attr.set, attr::STRICTATIME);
        assert_eq!(m.recursive_attr.clear, attr::RDONLY | attr::ATIME_MASK);
    }

    #[test]
    fn recursive_attributes() {
        let m = parse(&s(&["rbind", "rro", "rnosuid", "rnodev"]), None).unwrap();
        assert_eq!(
            m.recursive_attr,
            AttrChange {
                set: attr::RDONLY | attr::NOSUID | attr::NODEV,
                clear: 0
            }
        );
        assert!(m.flags.is_empty() && m.data.is_empty());
        let m = parse(&s(&["rrelatime"]), Some("tmpfs")).unwrap();
        assert_eq!(m.recursive_attr.clear, attr::ATIME_MASK);
        let m = parse(&s(&["nosymfollow"]), Some("tmpfs")).unwrap();
        assert_eq!(m.attr.set, attr::NOSYMFOLLOW);
    }

    #[test]
    fn unknown_options_are_refused_on_binds_only() {
        let e = parse(&s(&["rbind", "rreadonly"]), None).unwrap_err();
        assert_eq!(e, OptionError::UnknownForBind("rreadonly".into()));
        assert!(e.to_string().contains("\"rreadonly\""), "{e}");
        assert!(parse(&s(&["size=1m"]), Some("bind")).is_err());
        assert_eq!(
            parse(&s(&["size=1m"]), Some("tmpfs")).unwrap().data,
            "size=1m"
        );
        // idmap/ridmap are rrun's own (rootfs::idmap), not mount(2)'s.
        assert_eq!(parse(&s(&["rbind", "ridmap"]), None).unwrap().data, "");
    }

    #[test]
    fn remount_only_on_binds() {
        assert_eq!(
            parse(&s(&["remount", "ro"]), Some("tmpfs")),
            Err(OptionError::Remount)
        );
        assert!(parse(&s(&["bind", "remount", "ro"]), None).is_ok());
    }

    #[test]
    fn bind_flags_as_a_remount() {
        let c = bind_flags_attr(MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
        assert_eq!(c.set, attr::RDONLY | attr::NOSUID);
        assert_eq!(c.clear, attr::NODEV | attr::NOEXEC);
        let c = bind_flags_attr(MsFlags::MS_NOATIME);
        assert_eq!(c.set, attr::NOATIME);
        assert_eq!(
            c.clear,
            attr::RDONLY
                | attr::NOSUID
                | attr::NODEV
                | attr::NOEXEC
                | attr::ATIME_MASK
                | attr::NODIRATIME
        );
    }

    #[test]
    fn data_as_fs_params() {
        let p = fs_params(
            "size=1m,context=\"a:b:c:s0:c1,c2\",nr_inodes=5,noswap",
            MsFlags::MS_RDONLY,
        );
        let want: Vec<(String, Option<String>)> = vec![
            ("size".into(), Some("1m".into())),
            ("context".into(), Some("a:b:c:s0:c1,c2".into())),
            ("nr_inodes".into(), Some("5".into())),
            ("noswap".into(), None),
            ("ro".into(), None),
        ];
        assert_eq!(p, want);
        assert!(fs_params("", MsFlags::empty()).is_empty());
    }

    #[test]
    fn ro_on_rbind_is_top_only() {
        // Kubernetes asks `ro` for a read-only volume whose submounts stay
        // as they are, `rro` for a recursively read-only one (KEP-3857).
        let o = parse(&s(&["rbind", "ro"]), None).unwrap();
        assert!(o.flags.contains(MsFlags::MS_RDONLY));
        assert!(o.recursive_attr.is_empty());
        let o = parse(&s(&["rbind", "rro"]), None).unwrap();
        assert_ne!(o.recursive_attr.set & attr::RDONLY, 0);
    }
}
