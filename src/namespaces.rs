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
    /// A config an unprivileged user cannot run, found before clone.
    #[error("config.json: {0}")]
    Rootless(String),
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
    /// The id maps are written by an unprivileged parent (rootless).
    pub unprivileged: bool,
}

impl NsPlan {
    /// The plan for this process as the writer of the id maps.
    pub fn from_spec(spec: &Spec) -> Result<NsPlan, NsError> {
        let euid = nix::unistd::geteuid();
        let unprivileged =
            (!euid.is_root()).then(|| (euid.as_raw(), nix::unistd::getegid().as_raw()));
        Self::for_writer(spec, unprivileged)
    }

    /// The plan when the maps are written by root (None) or by an
    /// unprivileged user with this (uid, gid).
    pub fn for_writer(spec: &Spec, unprivileged: Option<(u32, u32)>) -> Result<NsPlan, NsError> {
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
            unprivileged: false,
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
        if let Some((uid, gid)) = unprivileged {
            plan.unprivileged = true;
            plan.check_unprivileged(uid, gid)?;
        }
        Ok(plan)
    }

    /// What the kernel refuses an unprivileged user (no CAP_SYS_ADMIN,
    /// CAP_SETUID or CAP_SETGID on the host), said before anything exists:
    /// new namespaces only under a new or joined user namespace, and a new
    /// user namespace's maps may only map the user's own uid and gid, one
    /// id each (user_namespaces(7); rrun has no newuidmap support).
    pub fn check_unprivileged(&self, uid: u32, gid: u32) -> Result<(), NsError> {
        let creates = !self.new.is_empty() || self.new_cgroup || self.new_time;
        if creates && !self.in_userns() {
            return Err(NsError::Rootless(
                "linux.namespaces: an unprivileged user can create namespaces only with a user namespace (add {\"type\": \"user\"} and uidMappings/gidMappings, as `rrun spec --rootless` does)".into(),
            ));
        }
        if !self.new_user() {
            return Ok(());
        }
        for (field, what, own, maps) in [
            ("uidMappings", "uid", uid, &self.uid_mappings),
            ("gidMappings", "gid", gid, &self.gid_mappings),
        ] {
            let only_own = matches!(maps.as_slice(), [m] if m.host_id() == own && m.size() == 1);
            if !only_own {
                return Err(NsError::Rootless(format!(
                    "linux.{field}: an unprivileged user can map only its own {what} {own}, one id (hostID {own}, size 1); got {:?}",
                    map_text(maps).trim_end().replace('\n', ", ")
                )));
            }
        }
        Ok(())
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
    /// joined pid namespace applies to children only), a new time
    /// namespace, or a new user namespace whose maps an unprivileged parent
    /// writes. That parent may open /proc/<pid>/uid_map only while the
    /// process is dumpable (else the file belongs to global root), and the
    /// init makes itself non-dumpable as its first step, racing the parent;
    /// the intermediate stays dumpable until its maps are written.
    pub fn needs_intermediate(&self) -> bool {
        !self.joins.is_empty() || self.new_time || (self.new_user() && self.unprivileged)
    }

    /// The open namespace files to join (kept until the joins are done).
    pub fn join_fds(&self) -> Vec<std::os::fd::BorrowedFd<'_>> {
        self.joins.iter().map(|j| j.file.as_fd()).collect()
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
        let p = NsPlan::for_writer(&spec, None).unwrap();
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
        let p = NsPlan::for_writer(&spec, None).unwrap();
        assert!(p.needs_intermediate());
        assert_eq!(p.joins[0].typ, LinuxNamespaceType::User);
        assert!(p.in_userns() && !p.new_user());
    }

    fn rootless_plan() -> NsPlan {
        let spec: Spec = serde_json::from_value(crate::spec::default_spec(true)).unwrap();
        let mut p = NsPlan::for_writer(&spec, None).unwrap();
        p.unprivileged = true;
        p
    }

    fn maps(text: &str) -> Vec<LinuxIdMapping> {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn unprivileged_maps_only_its_own_ids() {
        let mut p = rootless_plan();
        p.uid_mappings = maps(r#"[{"containerID":0,"hostID":1000,"size":1}]"#);
        p.gid_mappings = maps(r#"[{"containerID":0,"hostID":100,"size":1}]"#);
        p.check_unprivileged(1000, 100).unwrap();
        // Any container id is fine; another host id, a range or a second
        // line is not.
        p.uid_mappings = maps(r#"[{"containerID":1000,"hostID":1000,"size":1}]"#);
        p.check_unprivileged(1000, 100).unwrap();
        let e = p.check_unprivileged(1001, 100).unwrap_err().to_string();
        assert!(e.contains("linux.uidMappings") && e.contains("1001"), "{e}");
        p.uid_mappings = maps(r#"[{"containerID":0,"hostID":1000,"size":2}]"#);
        assert!(p.check_unprivileged(1000, 100).is_err());
        p.uid_mappings = maps(
            r#"[{"containerID":0,"hostID":1000,"size":1},{"containerID":1,"hostID":1000,"size":1}]"#,
        );
        assert!(p.check_unprivileged(1000, 100).is_err());
        p.uid_mappings = maps(r#"[{"containerID":0,"hostID":1000,"size":1}]"#);
        p.gid_mappings = maps(r#"[{"containerID":0,"hostID":0,"size":1}]"#);
        let e = p.check_unprivileged(1000, 100).unwrap_err().to_string();
        assert!(e.contains("linux.gidMappings"), "{e}");
    }

    #[test]
    fn unprivileged_needs_a_user_namespace() {
        let spec: Spec = serde_json::from_value(crate::spec::default_spec(false)).unwrap();
        let p = NsPlan::for_writer(&spec, None).unwrap();
        let e = p.check_unprivileged(1000, 100).unwrap_err().to_string();
        assert!(e.contains("user namespace"), "{e}");
        // Joining one is as good as a new one; no namespace at all is fine.
        let mut v = crate::spec::default_spec(false);
        v["linux"]["namespaces"] = serde_json::json!([
            {"type": "user", "path": "/proc/self/ns/user"},
            {"type": "pid"}
        ]);
        let spec: Spec = serde_json::from_value(v.clone()).unwrap();
        NsPlan::for_writer(&spec, None)
            .unwrap()
            .check_unprivileged(1000, 100)
            .unwrap();
        v["linux"]["namespaces"] = serde_json::json!([]);
        let spec: Spec = serde_json::from_value(v).unwrap();
        NsPlan::for_writer(&spec, None)
            .unwrap()
            .check_unprivileged(1000, 100)
            .unwrap();
    }

    #[test]
    fn unprivileged_new_user_namespace_needs_intermediate() {
        let mut p = rootless_plan();
        assert!(p.new_user() && p.joins.is_empty() && !p.new_time);
        assert!(p.needs_intermediate());
        // Root may write the maps of a non-dumpable child: one clone.
        p.unprivileged = false;
        assert!(!p.needs_intermediate());
        // Without a new user namespace there are no maps to write.
        let spec: Spec = serde_json::from_value(crate::spec::default_spec(false)).unwrap();
        let mut p = NsPlan::for_writer(&spec, None).unwrap();
        p.unprivileged = true;
        assert!(!p.needs_intermediate());
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
