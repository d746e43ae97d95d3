//! Namespaces: which ones a container gets new and which it joins by path,
//! the user-namespace id maps, the time-namespace offsets, and the decision
//! whether one clone(2) is enough or an intermediate process is needed.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsFd;
use std::path::PathBuf;

use nix::sched::{CloneFlags, setns};
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, LinuxTimeOffset, Spec};

#[derive(Debug, thiserror::Error)]
pub enum NsError {
    #[error("namespace {typ} {path}: {source}")]
    Open {
        typ: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("joining {typ} namespace {path}: {source}")]
    Join {
        typ: String,
        path: PathBuf,
        source: nix::Error,
    },
    #[error("writing {file} of pid {pid}: {source}")]
    Write {
        file: String,
        pid: i32,
        source: std::io::Error,
    },
}

pub fn flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// An existing namespace to join, opened before anything moves.
pub struct Join {
    pub typ: LinuxNamespaceType,
    pub path: PathBuf,
    pub file: File,
}

/// The namespace part of a create, decided before clone.
pub struct NsPlan {
    /// New namespaces, except cgroup and time (see below).
    pub new: CloneFlags,
    /// A new cgroup namespace is unshared by the init only after the parent
    /// moved it into its cgroup, so the namespace root is that cgroup.
    pub new_cgroup: bool,
    /// A new time namespace applies to children only, and its offsets must
    /// be written before any process is in it: it needs the intermediate.
    pub new_time: bool,
    /// Joined namespaces, user first (the others may be owned by it).
    pub joins: Vec<Join>,
    pub uid_mappings: Vec<LinuxIdMapping>,
    pub gid_mappings: Vec<LinuxIdMapping>,
    pub time_offsets: HashMap<String, LinuxTimeOffset>,
}

impl NsPlan {
    pub fn from_spec(spec: &Spec) -> Result<NsPlan, NsError> {
        let linux = spec.linux().as_ref();
        let mut plan = NsPlan {
            new: CloneFlags::empty(),
            new_cgroup: false,
            new_time: false,
            joins: Vec::new(),
            uid_mappings: linux
                .and_then(|l| l.uid_mappings().clone())
                .unwrap_or_default(),
            gid_mappings: linux
                .and_then(|l| l.gid_mappings().clone())
                .unwrap_or_default(),
            time_offsets: linux
                .and_then(|l| l.time_offsets().clone())
                .unwrap_or_default(),
        };
        for ns in linux
            .and_then(|l| l.namespaces().as_deref())
            .unwrap_or_default()
        {
            match ns.path() {
                Some(path) => {
                    let file = File::open(path).map_err(|e| NsError::Open {
                        typ: ns.typ().to_string(),
                        path: path.clone(),
                        source: e,
                    })?;
                    plan.joins.push(Join {
                        typ: ns.typ(),
                        path: path.clone(),
                        file,
                    });
                }
                None => match ns.typ() {
                    LinuxNamespaceType::Cgroup => plan.new_cgroup = true,
                    LinuxNamespaceType::Time => plan.new_time = true,
                    t => plan.new |= flag(t),
                },
            }
        }
        plan.joins.sort_by_key(|j| {
            if j.typ == LinuxNamespaceType::User {
                0
            } else {
                1
            }
        });
        Ok(plan)
    }

    pub fn new_user(&self) -> bool {
        self.new.contains(CloneFlags::CLONE_NEWUSER)
    }

    /// In a user namespace at all (new or joined): no mknod, locked flags.
    pub fn in_userns(&self) -> bool {
        self.new_user() || self.joins.iter().any(|j| j.typ == LinuxNamespaceType::User)
    }

    pub fn joins_type(&self, t: LinuxNamespaceType) -> bool {
        self.joins.iter().any(|j| j.typ == t)
    }

    /// One clone(2) with every new namespace is enough unless something must
    /// happen between creating namespaces and the init starting: joining by
    /// path (the new ones must be owned by a joined user namespace, and a
    /// joined pid namespace applies to children only) or a new time
    /// namespace.
    pub fn needs_intermediate(&self) -> bool {
        !self.joins.is_empty() || self.new_time
    }

    /// setns into every joined namespace, user first.
    pub fn join_all(&self) -> Result<(), NsError> {
        for j in &self.joins {
            setns(j.file.as_fd(), flag(j.typ)).map_err(|e| NsError::Join {
                typ: j.typ.to_string(),
                path: j.path.clone(),
                source: e,
            })?;
        }
        Ok(())
    }
}

/// The text of a uid_map/gid_map file.
pub fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Written by the parent, which is privileged in the parent user namespace.
pub fn write_id_maps(pid: i32, plan: &NsPlan) -> Result<(), NsError> {
    if !nix::unistd::geteuid().is_root() {
        // An unprivileged writer may map only its own ids, and only after
        // giving up setgroups in the namespace (user_namespaces(7)).
        std::fs::write(format!("/proc/{pid}/setgroups"), "deny").map_err(|e| NsError::Write {
            file: "setgroups".into(),
            pid,
            source: e,
        })?;
    }
    for (file, maps) in [
        ("uid_map", &plan.uid_mappings),
        ("gid_map", &plan.gid_mappings),
    ] {
        std::fs::write(format!("/proc/{pid}/{file}"), map_text(maps)).map_err(|e| {
            NsError::Write {
                file: file.into(),
                pid,
                source: e,
            }
        })?;
    }
    Ok(())
}

/// The text of /proc/self/timens_offsets for the config's offsets.
pub fn timens_text(offsets: &HashMap<String, LinuxTimeOffset>) -> String {
    let mut keys: Vec<_> = offsets.keys().collect();
    keys.sort();
    keys.iter()
        .map(|k| {
            let o = &offsets[*k];
            format!(
                "{} {} {}\n",
                k,
                o.secs().unwrap_or(0),
                o.nanosecs().unwrap_or(0)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_from_default_spec() {
        let v = crate::spec::default_spec(false);
        let spec: Spec = serde_json::from_value(v).unwrap();
        let p = NsPlan::from_spec(&spec).unwrap();
        assert!(
            p.new
                .contains(CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS)
        );
        assert!(p.new_cgroup);
        assert!(!p.new.contains(CloneFlags::CLONE_NEWCGROUP));
        assert!(!p.needs_intermediate());
    }

    #[test]
    fn joins_need_intermediate_and_user_first() {
        let mut v = crate::spec::default_spec(false);
        v["linux"]["namespaces"] = serde_json::json!([
            {"type": "network", "path": "/proc/self/ns/net"},
            {"type": "user", "path": "/proc/self/ns/user"},
            {"type": "pid"}
        ]);
        let spec: Spec = serde_json::from_value(v).unwrap();
        let p = NsPlan::from_spec(&spec).unwrap();
        assert!(p.needs_intermediate());
        assert_eq!(p.joins[0].typ, LinuxNamespaceType::User);
        assert!(p.in_userns() && !p.new_user());
    }

    #[test]
    fn map_texts() {
        let m: Vec<LinuxIdMapping> =
            serde_json::from_str(r#"[{"containerID":0,"hostID":1000,"size":1}]"#).unwrap();
        assert_eq!(map_text(&m), "0 1000 1\n");
        let t: HashMap<String, LinuxTimeOffset> =
            serde_json::from_str(r#"{"monotonic":{"secs":100,"nanosecs":5}}"#).unwrap();
        assert_eq!(timens_text(&t), "monotonic 100 5\n");
    }
}
