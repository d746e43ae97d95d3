//! Id-mapped bind mounts (runtime-spec 1.2: `mounts[].uidMappings` and
//! `gidMappings`, options `idmap` and `ridmap`).
//!
//! The host side makes them: only a process privileged over the source
//! filesystem (host root) may id-map a mount, and the container init may be
//! in a user namespace by then. rrun create, after the init's id maps are
//! written and before Go, clones each source tree (open_tree), applies the
//! mapping (mount_setattr MOUNT_ATTR_IDMAP with a user namespace that
//! carries it) and sends the detached mount over the sync channel; the
//! init attaches it at its destination inside the rootfs (move_mount onto
//! the fd resolved in the root), where a bind would have gone.
//!
//! The mapping: the mount's own uidMappings/gidMappings ("containerID" is
//! the id on the source filesystem, "hostID" the id seen through the
//! mount: the user namespace mapping format), else the container's user
//! namespace mappings (so files owned by uid 0 on disk are the
//! container's root), else an error, as the spec says.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxIdMapping, Mount, Spec};

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

/// One mount to id-map.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub index: usize,
    pub dest: String,
    pub source: PathBuf,
    /// rbind: the submounts come along.
    pub tree: bool,
    /// ridmap: they are id-mapped too.
    pub recursive: bool,
    /// uid_map and gid_map text; None: the container's user namespace.
    pub maps: Option<(String, String)>,
}

/// Whether `m` asks for an id-mapped mount: the idmap/ridmap option, or
/// mappings of its own.
pub fn wanted(m: &Mount) -> bool {
    let opts = m.options().as_deref().unwrap_or_default();
    opts.iter().any(|o| o == "idmap" || o == "ridmap")
        || m.uid_mappings().as_ref().is_some_and(|v| !v.is_empty())
        || m.gid_mappings().as_ref().is_some_and(|v| !v.is_empty())
}

/// The id-mapped mounts of `spec`, checked before anything is created.
/// `container_userns`: the container has a user namespace (new or joined)
/// whose mappings a mount without its own may use.
pub fn requests(
    spec: &Spec,
    bundle: &Path,
    container_userns: bool,
) -> Result<Vec<Request>, IdmapError> {
    let mut out = Vec::new();
    for (index, m) in spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if !wanted(m) {
            continue;
        }
        let dest = m.destination().display().to_string();
        let bad = |why: &str| IdmapError::Invalid {
            index,
            dest: dest.clone(),
            why: why.to_string(),
        };
        let opts = m.options().as_deref().unwrap_or_default();
        let has = |o: &str| opts.iter().any(|x| x == o);
        if !(has("bind") || has("rbind") || m.typ().as_deref() == Some("bind")) {
            return Err(bad(
                "an id-mapped mount must be a bind mount (rrun id-maps binds only)",
            ));
        }
        let uid = m.uid_mappings().as_deref().unwrap_or_default();
        let gid = m.gid_mappings().as_deref().unwrap_or_default();
        let maps = match (uid.is_empty(), gid.is_empty()) {
            (false, false) => Some((map_text(uid), map_text(gid))),
            (true, true) if container_userns => None,
            (true, true) => {
                return Err(bad(
                    "idmap without uidMappings/gidMappings needs the container's user namespace, and it has none",
                ));
            }
            _ => return Err(bad("uidMappings and gidMappings must be given together")),
        };
        let source = m
            .source()
            .clone()
            .ok_or_else(|| bad("an id-mapped bind needs a source"))?;
        let source = if source.is_absolute() {
            source
        } else {
            bundle.join(source)
        };
        out.push(Request {
            index,
            dest: dest.clone(),
            source,
            tree: has("rbind"),
            recursive: has("ridmap"),
            maps,
        });
    }
    Ok(out)
}

fn map_text(maps: &[LinuxIdMapping]) -> String {
    crate::namespaces::map_text(maps)
}

/// Makes the detached, id-mapped mounts (host side; `init_pid` is the
/// container init, whose user namespace serves mounts without mappings).
pub fn make(reqs: &[Request], init_pid: i32) -> Result<Vec<(usize, OwnedFd)>, IdmapError> {
    let mut out = Vec::with_capacity(reqs.len());
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
        let tree =
            mount_api::open_tree_clone(&r.source, r.tree).map_err(sys("cloning the source"))?;
        let own;
        let userns = match &r.maps {
            Some((u, g)) => {
                own = mount_api::userns_with_maps(u, g)
                    .map_err(sys("making a user namespace with the mount's mappings"))?;
                &own
            }
            None => {
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
        let r = requests(&s, Path::new("/bundle"), u).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].tree, r[0].recursive), (true, true));
        assert_eq!(r[0].maps.as_ref().unwrap().0.trim(), "0 1000 1");
        assert_eq!(r[1].source, Path::new("/bundle/rel"));
        assert_eq!(
            (r[1].tree, r[1].recursive, r[1].maps.is_none()),
            (false, false, true)
        );

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
            assert!(requests(&s, Path::new("/b"), u).is_err(), "{mounts}");
        }
    }
}
