//! Where the app manager keeps things. Two roots:
//! - the app root (default /var/lib/rrun/app, `--app-root` or
//!   $RRUN_APP_ROOT): what must survive a reboot — the image store, each
//!   app's settings, upper directory and logs, the network definitions;
//! - the run directory (a tmpfs under /run): what a reboot must forget —
//!   the runtime's container state, network namespaces, IPAM leases,
//!   the monitor's binary.
//!
//! A non-default app root gets run directory and cgroup names of its own
//! (derived from its path), so two roots (parallel tests) never share a
//! container id, a lease or a cgroup.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub const DEFAULT_ROOT: &str = "/var/lib/rrun/app";
const RUN_BASE: &str = "/run/rrun-app";

#[derive(Debug, Clone)]
pub struct Paths {
    /// The app root (absolute).
    pub root: PathBuf,
    /// The run directory (absolute, on a tmpfs).
    pub run: PathBuf,
    /// Distinguishes this root's names on the host ("" for the default
    /// root, else "-" and 8 hex digits of its path's digest).
    pub tag: String,
}

impl Paths {
    pub fn new(root: &Path) -> Paths {
        let root = if root.is_absolute() {
            root.to_path_buf()
        } else {
            std::env::current_dir().unwrap_or_default().join(root)
        };
        let tag = if root == Path::new(DEFAULT_ROOT) {
            String::new()
        } else {
            let d = Sha256::digest(root.as_os_str().as_encoded_bytes());
            format!("-{:02x}{:02x}{:02x}{:02x}", d[0], d[1], d[2], d[3])
        };
        let run = PathBuf::from(format!("{RUN_BASE}{tag}"));
        Paths { root, run, tag }
    }

    /// The image store: layers/, images/, tmp/.
    pub fn store(&self) -> PathBuf {
        self.root.join("store")
    }
    pub fn apps(&self) -> PathBuf {
        self.root.join("apps")
    }
    pub fn app(&self, name: &str) -> PathBuf {
        self.apps().join(name)
    }
    /// Named volumes, one directory each.
    pub fn volumes(&self) -> PathBuf {
        self.root.join("volumes")
    }
    /// Creates the app root, and closes to everyone but root the
    /// directories that hold what apps and images put on the host: upper
    /// directories and overlay mounts (bundle/rootfs), layers, volumes,
    /// settings with secrets. An app is root in its container: a
    /// setuid-root program it writes there is host root for any local user
    /// who can reach it (Docker keeps /var/lib/docker 0710 for this).
    /// Also fixes the modes of a root made before.
    pub fn make_private(&self) -> std::io::Result<()> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::create_dir_all(&self.root)?;
        // The run directory too: its lock files (a local user holding one
        // with flock would wedge the app), netns files, IPAM leases.
        if let Some(d) = self.run.parent() {
            std::fs::create_dir_all(d)?;
        }
        for d in [self.apps(), self.store(), self.volumes(), self.run.clone()] {
            match std::fs::DirBuilder::new().mode(0o700).create(&d) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
    /// Network definitions (CNI conflists), persistent.
    pub fn networks(&self) -> PathBuf {
        self.root.join("networks")
    }
    /// The runtime's state root (`rrun --root`) for the apps' containers.
    pub fn runtime_root(&self) -> PathBuf {
        self.run.join("runtime")
    }
    /// Bind-mounted network namespaces, one file per app.
    pub fn netns_dir(&self) -> PathBuf {
        self.run.join("netns")
    }
    /// IPAM leases and CNI results: forgotten with the netns at reboot.
    pub fn cni_state(&self) -> PathBuf {
        self.run.join("cni")
    }
    /// Locks (flock) of this root.
    pub fn locks(&self) -> PathBuf {
        self.run.join("locks")
    }
    /// The container id of an app (its name).
    pub fn container_id(&self, name: &str) -> String {
        name.to_string()
    }
    /// The cgroupsPath (relative: nested where the monitor runs, as the
    /// runtime nests relative paths) of an app's container.
    pub fn cgroups_path(&self, name: &str) -> String {
        format!("rrun-app{}/{name}", self.tag)
    }
}

/// The app root from the command line or $RRUN_APP_ROOT, else the default.
pub fn from_flag(flag: Option<&Path>) -> Paths {
    match flag {
        Some(p) => Paths::new(p),
        None => match std::env::var_os("RRUN_APP_ROOT").filter(|v| !v.is_empty()) {
            Some(v) => Paths::new(Path::new(&v)),
            None => Paths::new(Path::new(DEFAULT_ROOT)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_root_has_plain_names() {
        let p = Paths::new(Path::new(DEFAULT_ROOT));
        assert_eq!(p.run, Path::new("/run/rrun-app"));
        assert_eq!(p.cgroups_path("web"), "rrun-app/web");
    }

    #[test]
    fn other_roots_get_their_own_names() {
        let a = Paths::new(Path::new("/tmp/a"));
        let b = Paths::new(Path::new("/tmp/b"));
        assert_ne!(a.run, b.run);
        assert_ne!(a.cgroups_path("web"), b.cgroups_path("web"));
        assert!(a.tag.starts_with('-') && a.tag.len() == 9);
    }
}
