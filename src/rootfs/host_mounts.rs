//! Bind mounts made on the host side: id-mapped ones (runtime-spec 1.2:
//! `mounts[].uidMappings` and `gidMappings`, options `idmap` and
//! `ridmap`), and every bind of a container with a new user namespace.
//!
//! Why the host side: only a process privileged over the source filesystem
//! (host root) may id-map a mount, and a source below a directory only the
//! host's root may enter cannot be reached by the init once it is root of
//! a user namespace only. rrun create, after the init's id maps are
//! written and before Go, clones each source tree (open_tree), id-maps it
//! where asked (mount_setattr MOUNT_ATTR_IDMAP with a user namespace that
//! carries the mapping) and sends the detached mount over the sync
//! channel; the init attaches it at its destination inside the rootfs
//! (move_mount onto the fd resolved in the root), where a bind would have
//! gone. An unprivileged rrun (rootless) cannot clone trees: its binds are
//! made by the init, as before, and it cannot id-map.
//!
//! The mapping: the mount's own uidMappings/gidMappings ("containerID" is
//! the id on the source filesystem, "hostID" the id seen through the
//! mount: the user namespace mapping format), else the container's user
//! namespace mappings (so files owned by uid 0 on disk are the
//! container's root), else an error, as the spec says.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxIdMapping, Mount, Spec};

use super::resolve::Root;
use crate::sys::mount_api;

#[derive(Debug, thiserror::Error)]
pub enum IdmapError {
    #[error("mounts[{index}] ({dest}): {why}")]
    Invalid {
        index: usize,
        dest: String,
        why: String,
    },
    #[error("mounts[{index}] ({dest}): {what}: {source}")]
    Sys {
        index: usize,
        dest: String,
        what: &'static str,
        source: nix::Error,
    },
}

/// One bind to make on the host side.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub index: usize,
    pub dest: String,
    pub source: PathBuf,
    /// rbind: the submounts come along.
    pub tree: bool,
    /// ridmap: they are id-mapped too.
    pub recursive: bool,
    pub mapping: Mapping,
}

/// How a host-side bind is id-mapped.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapping {
    /// Not at all: a plain bind, cloned here because the container's user
    /// namespace may not reach its source.
    None,
    /// The mount's own uid_map and gid_map text.
    Own(String, String),
    /// The container's user namespace's.
    Container,
}

/// Whether `m` asks for an id-mapped mount: the idmap/ridmap option, or
/// mappings of its own.
pub fn wanted(m: &Mount) -> bool {
    let opts = m.options().as_deref().unwrap_or_default();
    opts.iter().any(|o| o == "idmap" || o == "ridmap")
        || m.uid_mappings().as_ref().is_some_and(|v| !v.is_empty())
        || m.gid_mappings().as_ref().is_some_and(|v| !v.is_empty())
}

/// The binds of `spec` to make host side, checked before anything is
/// created: the id-mapped ones, and, with `userns_root` (a privileged rrun
/// and a new user namespace: the host uid and gid of its root), the binds
/// whose source that root cannot reach. Only those: a bind the init makes
/// itself keeps the kernel's locks on the submounts it copies (the
/// container cannot unmount them to look underneath), which a tree cloned
/// on the host side does not have. `container_userns`: the container has
/// a user namespace (new or joined) whose mappings a mount without its own
/// may use. `runtime_sources`: sources rrun itself adds that do not exist
/// yet (the notify socket's directory in the state directory, which no
/// container root may search): host side whenever `userns_root` is given.
pub fn requests(
    spec: &Spec,
    bundle: &Path,
    rootfs: &Path,
    container_userns: bool,
    userns_root: Option<(u32, u32)>,
    runtime_sources: &[PathBuf],
) -> Result<Vec<Request>, IdmapError> {
    let mut out = Vec::new();
    // The rootfs, to resolve sources that reach it inside it (an image's
    // symlink is never followed on the host: resolve::locate_source).
    let root = std::cell::OnceCell::new();
    for (index, m) in spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let opts = m.options().as_deref().unwrap_or_default();
        let has = |o: &str| opts.iter().any(|x| x == o);
        let bind = has("bind") || has("rbind") || m.typ().as_deref() == Some("bind");
        let idmapped = wanted(m);
        let source_of = |m: &Mount| {
            m.source()
                .clone()
                .map(|s| if s.is_absolute() { s } else { bundle.join(s) })
        };
        // Where the source really is: a source in the rootfs is the init's
        // to bind (its root reaches the rootfs); a host one is checked.
        let unreachable = bind
            && userns_root.is_some_and(|(uid, gid)| {
                source_of(m).is_some_and(|s| {
                    if runtime_sources.contains(&s) {
                        return true;
                    }
                    let Some(root) = root_of(&root, rootfs) else {
                        return false;
                    };
                    match root.bind_source(&s) {
                        Ok(fd) if !root.is_beneath(&fd) => std::fs::read_link(
                            super::resolve::fd_path(&std::os::fd::AsRawFd::as_raw_fd(&fd)),
                        )
                        .is_ok_and(|p| !reachable_by(&p, uid, gid)),
                        _ => false,
                    }
                })
            });
        if !idmapped && !unreachable {
            continue;
        }
        let dest = m.destination().display().to_string();
        let bad = |why: &str| IdmapError::Invalid {
            index,
            dest: dest.clone(),
            why: why.to_string(),
        };
        if !bind {
            return Err(bad(
                "an id-mapped mount must be a bind mount (rrun id-maps binds only)",
            ));
        }
        // /proc and /sys take the init's own checks (a procfs only from the
        // runtime's pid namespace, the host's cgroups masked): a tree made
        // on the host side would bypass them.
        let clean = super::resolve::clean(m.destination());
        if clean.starts_with("proc") || clean.starts_with("sys") {
            return Err(bad(
                "a bind at /proc or /sys cannot be id-mapped or come from a source the \
                 container's user namespace cannot reach",
            ));
        }
        let uid = m.uid_mappings().as_deref().unwrap_or_default();
        let gid = m.gid_mappings().as_deref().unwrap_or_default();
        let mapping = match (idmapped, uid.is_empty(), gid.is_empty()) {
            (false, _, _) => Mapping::None,
            (true, false, false) => Mapping::Own(map_text(uid), map_text(gid)),
            (true, true, true) if container_userns => Mapping::Container,
            (true, true, true) => {
                return Err(bad(
                    "idmap without uidMappings/gidMappings needs the container's user namespace, and it has none",
                ));
            }
            _ => return Err(bad("uidMappings and gidMappings must be given together")),
        };
        let source = source_of(m).ok_or_else(|| bad("a bind mount needs a source"))?;
        out.push(Request {
            index,
            dest: dest.clone(),
            source,
            tree: has("rbind"),
            recursive: has("ridmap"),
            mapping,
        });
    }
    Ok(out)
}

/// Whether `uid`/`gid` may search every directory on the way to `path`
/// (mode bits; an ACL could only grant more, so a false "unreachable"
/// merely makes the bind host side). A path that does not exist counts as
/// reachable: the init's own bind then reports it.
fn reachable_by(path: &Path, uid: u32, gid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(path) = std::fs::canonicalize(path) else {
        return true;
    };
    path.ancestors().skip(1).all(|dir| {
        let Ok(m) = std::fs::metadata(dir) else {
            return true;
        };
        let mode = m.mode();
        if m.uid() == uid {
            mode & 0o100 != 0
        } else if m.gid() == gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        }
    })
}

fn map_text(maps: &[LinuxIdMapping]) -> String {
    crate::namespaces::map_text(maps)
}

/// The rootfs as a `Root`, opened once.
fn root_of<'a>(cell: &'a std::cell::OnceCell<Option<Root>>, rootfs: &Path) -> Option<&'a Root> {
    cell.get_or_init(|| Root::open(rootfs).ok()).as_ref()
}

/// Makes the detached mounts (host side; `init_pid` is the container
/// init, whose user namespace serves id-mapped mounts without mappings).
/// Each source is found as the init would find it (`Root::bind_source`:
/// the image's symlinks resolved inside the rootfs), then cloned through
/// its fd, and given `propagation` (`rootfs::propagation::host_clone`):
/// a clone made here is a copy of the host's mount, a peer of a shared
/// one, where the init's own bind would have been a copy of the
/// container's namespace's (a slave of it with the default rslave), so
/// without it a mount the container makes in the bind would show on the
/// host.
pub fn make(
    reqs: &[Request],
    rootfs: &Path,
    init_pid: i32,
    propagation: &[nix::mount::MsFlags],
) -> Result<Vec<(usize, OwnedFd)>, IdmapError> {
    let mut out = Vec::with_capacity(reqs.len());
    let root = std::cell::OnceCell::new();
    let mut container_userns: Option<OwnedFd> = None;
    for r in reqs {
        let sys = |what: &'static str| {
            let (index, dest) = (r.index, r.dest.clone());
            move |source: nix::Error| IdmapError::Sys {
                index,
                dest,
                what,
                source,
            }
        };
        let root = root_of(&root, rootfs).ok_or_else(|| IdmapError::Invalid {
            index: r.index,
            dest: r.dest.clone(),
            why: format!("cannot open the rootfs {}", rootfs.display()),
        })?;
        let src = root
            .bind_source(&r.source)
            .map_err(sys("finding the source"))?;
        let tree = mount_api::clone_fd(&src, r.tree).map_err(sys("cloning the source"))?;
        for p in propagation {
            let kind = *p & !nix::mount::MsFlags::MS_REC;
            mount_api::set_propagation(&tree, p.contains(nix::mount::MsFlags::MS_REC), kind.bits())
                .map_err(sys("setting the propagation of the clone"))?;
        }
        let own;
        let userns = match &r.mapping {
            Mapping::None => {
                out.push((r.index, tree));
                continue;
            }
            Mapping::Own(u, g) => {
                own = mount_api::userns_with_maps(u, g)
                    .map_err(sys("making a user namespace with the mount's mappings"))?;
                &own
            }
            Mapping::Container => {
                if container_userns.is_none() {
                    container_userns = Some(
                        nix::fcntl::open(
                            format!("/proc/{init_pid}/ns/user").as_str(),
                            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                            nix::sys::stat::Mode::empty(),
                        )
                        .map_err(sys("opening the container's user namespace"))?,
                    );
                }
                container_userns.as_ref().expect("set above")
            }
        };
        mount_api::idmap_mount(&tree, r.recursive, userns).map_err(|e| {
            let why = match e {
                nix::Error::EINVAL => "the source filesystem cannot be id-mapped (or is already)",
                nix::Error::EPERM => "not permitted (id-mapped mounts need root on the host)",
                nix::Error::ENOSYS => "needs Linux 5.12 or later",
                _ => "id-mapping",
            };
            IdmapError::Sys {
                index: r.index,
                dest: r.dest.clone(),
                what: why,
                source: e,
            }
        })?;
        out.push((r.index, tree));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(mounts: serde_json::Value, userns: bool) -> (Spec, bool) {
        let v = serde_json::json!({"ociVersion": "1.2.0", "root": {"path": "rootfs"}, "mounts": mounts});
        (serde_json::from_value(v).unwrap(), userns)
    }

    /// A fresh directory with `mode`, owned by this (root) process.
    fn tempfile_dir(mode: u32) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let d = std::env::temp_dir().join(format!(
            "rrun-unit-host-mounts-{}-{mode:o}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode)).unwrap();
        d
    }

    #[test]
    fn requests_follow_the_spec_rules() {
        let (s, u) = spec(
            serde_json::json!([
                {"destination": "/a", "type": "bind", "source": "/src", "options": ["rbind", "ridmap"],
                 "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                 "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]},
                {"destination": "/b", "source": "rel", "options": ["bind", "idmap"]},
                {"destination": "/c", "type": "tmpfs", "source": "tmpfs"}
            ]),
            true,
        );
        let r = requests(
            &s,
            Path::new("/bundle"),
            Path::new("/nonexistent"),
            u,
            None,
            &[],
        )
        .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].tree, r[0].recursive), (true, true));
        assert!(matches!(&r[0].mapping, Mapping::Own(u, _) if u.trim() == "0 1000 1"));
        assert_eq!(r[1].source, Path::new("/bundle/rel"));
        assert_eq!(
            (r[1].tree, r[1].recursive, &r[1].mapping),
            (false, false, &Mapping::Container)
        );
        // A new user namespace's root that cannot reach a bind's source
        // gets it cloned host side; a reachable one is left to the init.
        let closed = tempfile_dir(0o700);
        let open = tempfile_dir(0o755);
        std::fs::create_dir(closed.join("d")).unwrap();
        std::fs::create_dir(open.join("d")).unwrap();
        let (s2, _) = spec(
            serde_json::json!([
                {"destination": "/p", "type": "bind", "source": closed.join("d"), "options": ["rbind"]},
                {"destination": "/q", "type": "bind", "source": open.join("d"), "options": ["bind"]},
                {"destination": "/t", "type": "tmpfs", "source": "tmpfs"}]),
            true,
        );
        let r = requests(
            &s2,
            Path::new("/b"),
            &open,
            true,
            Some((100000, 100000)),
            &[],
        )
        .unwrap();
        assert_eq!(
            (r.len(), r[0].index, r[0].tree, &r[0].mapping),
            (1, 0, true, &Mapping::None)
        );
        assert!(
            requests(&s2, Path::new("/b"), &open, true, None, &[])
                .unwrap()
                .is_empty()
        );
        let _ = std::fs::remove_dir_all(&closed);
        let _ = std::fs::remove_dir_all(&open);

        for (mounts, userns) in [
            // No mappings, no user namespace.
            (
                serde_json::json!([{"destination": "/b", "source": "/s", "options": ["bind", "idmap"]}]),
                false,
            ),
            // Not a bind.
            (
                serde_json::json!([{"destination": "/b", "type": "tmpfs", "source": "t", "options": ["idmap"]}]),
                true,
            ),
            // One of the two mappings.
            (
                serde_json::json!([{"destination": "/b", "source": "/s", "options": ["bind"],
              "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]}]),
                true,
            ),
        ] {
            let (s, u) = spec(mounts.clone(), userns);
            assert!(
                requests(&s, Path::new("/b"), Path::new("/nonexistent"), u, None, &[]).is_err(),
                "{mounts}"
            );
        }
    }
}
