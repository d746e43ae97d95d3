//! The on-disk container state under `--root`: one directory per container,
//! `state.json` written atomically (write, rename), an exclusive flock
//! on the directory so two commands on one container never interleave, and
//! the status derived from the process itself (pid + start time), so a
//! recycled pid can never make a dead container look alive.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

pub const STATE_FILE: &str = "state.json";
/// The unix socket the blocked container init listens on until `start`.
pub const EXEC_SOCKET: &str = "exec.sock";
const MAX_ID_LEN: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("invalid container id {0:?}: {1}")]
    InvalidId(String, &'static str),
    #[error("container {0} does not exist")]
    NotExist(String),
    #[error("container with id {0} already exists")]
    Exists(String),
    #[error("container {0} is still being created")]
    Creating(String),
    #[error("state of container {id}: {what} {path}: {source}")]
    Io {
        id: String,
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state of container {0}: corrupt state.json: {1}")]
    Corrupt(String, String),
}

pub type Result<T> = std::result::Result<T, StateError>;

/// The lifecycle states of runtime.md, plus `paused` as runc reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.write_str(s)
    }
}

/// What rrun remembers about a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// Host pid of the container's init; 0 once it is known to be gone.
    pub pid: i32,
    /// Field 22 of /proc/<pid>/stat when the container was created.
    pub pid_start: u64,
    pub created: String,
    pub owner: String,
    /// Set by `start` once the user program was released.
    pub started: bool,
    /// True from the claim of the id until create succeeded.
    #[serde(default)]
    pub creating: bool,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The container's cgroup directory in each hierarchy (made by rrun,
    /// or an existing one that cgroupsPath named).
    #[serde(default)]
    pub cgroup_paths: Vec<PathBuf>,
    /// Every cgroup directory rrun made for the container (its own
    /// directories and the parents it had to make), parents first,
    /// recorded before they are made. `delete` removes these and nothing
    /// else; a container without a pid namespace of its own is known by
    /// them (see cgroups::members). Missing in states written by an older
    /// rrun: such a container's cgroups are then left in place.
    #[serde(default)]
    pub cgroups_created: Vec<PathBuf>,
    /// config.json as it was at create: start (poststart hooks), exec (the
    /// process defaults) and delete (poststop hooks) must not re-read a
    /// bundle that may have changed since.
    #[serde(default)]
    pub spec: Option<oci_spec::runtime::Spec>,
    /// The built-in init's last status seen from the host (kept for
    /// `state` after the container stopped).
    #[serde(default)]
    pub init_status: Option<serde_json::Value>,
    /// The random part of the session keyring's name (see
    /// process::init::session_keyring_name); empty in older states.
    #[serde(default)]
    pub keyring_nonce: String,
    /// The systemd unit rrun made as the container's cgroup
    /// (`--systemd-cgroup`), recorded once systemd has started it:
    /// `delete` stops it. Absent in older states and without the driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_unit: Option<SystemdUnit>,
}

/// A unit rrun started for a container, and on which systemd.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemdUnit {
    pub name: String,
    pub manager: crate::cgroups::systemd::bus::Which,
    /// The unit's InvocationID (hex) read right after it started: the
    /// name alone may belong to another unit once systemd has forgotten
    /// this one. Absent in states written before rrun recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation: Option<String>,
}

impl SystemdUnit {
    /// The unit as the bus checks it (`Bus::holds`) for container `id`.
    pub fn own(&self, id: &str) -> crate::cgroups::systemd::bus::OwnUnit<'_> {
        crate::cgroups::systemd::bus::OwnUnit {
            name: &self.name,
            invocation: self.invocation.as_deref(),
            description: crate::cgroups::systemd::description(id),
        }
    }
}

impl ContainerState {
    /// The container's cgroup directories that are rrun's own: those it
    /// made, and all of them when they are a systemd unit rrun made and
    /// that unit is still the container's (`unit_ours`: not one that took
    /// its name after systemd forgot it).
    pub fn owned_cgroups(&self, unit_ours: bool) -> Vec<PathBuf> {
        self.cgroup_paths
            .iter()
            .filter(|d| {
                (unit_ours && self.systemd_unit.is_some()) || self.cgroups_created.contains(d)
            })
            .cloned()
            .collect()
    }
}

/// The state JSON of runtime.md as runc prints it (same field order).
#[derive(Debug, Serialize)]
pub struct OciState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub pid: i32,
    pub status: Status,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    pub owner: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: &'a BTreeMap<String, String>,
    /// The built-in init's status, when the container has the init.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<serde_json::Value>,
}

impl ContainerState {
    /// Whether the container runs rrun's built-in init.
    pub fn has_init(&self) -> bool {
        crate::init::policy::enabled(&self.annotations)
    }

    /// The OCI state plus the init's status (read from the container).
    pub fn full_state(&self) -> OciState<'_> {
        let status = self.status();
        let mut s = self.oci_state(status);
        if self.has_init() {
            let saved = || {
                let mut v = self
                    .init_status
                    .clone()
                    .unwrap_or_else(crate::init::empty_status);
                v["pid"] = serde_json::Value::Null;
                v
            };
            s.init = Some(match status {
                Status::Stopped | Status::Created | Status::Creating => saved(),
                _ => crate::init::status(self.pid).unwrap_or_else(saved),
            });
        }
        s
    }

    pub fn hooks(&self) -> Option<&oci_spec::runtime::Hooks> {
        self.spec.as_ref().and_then(|s| s.hooks().as_ref())
    }

    /// The status as seen now: the stored phase, checked against the process.
    pub fn status(&self) -> Status {
        if self.creating {
            // A create in progress, or one that died half-way (rrun killed):
            // only `delete --force` acts on it.
            return if self.pid > 0 && !process_alive(self.pid, self.pid_start) {
                Status::Stopped
            } else {
                Status::Creating
            };
        }
        if self.pid <= 0 || !process_alive(self.pid, self.pid_start) {
            return Status::Stopped;
        }
        if !self.started {
            return Status::Created;
        }
        if crate::cgroups::is_frozen(&self.cgroup_paths) {
            return Status::Paused;
        }
        Status::Running
    }

    pub fn oci_state(&self, status: Status) -> OciState<'_> {
        OciState {
            oci_version: crate::spec::OCI_VERSION,
            id: &self.id,
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            owner: &self.owner,
            annotations: &self.annotations,
            init: None,
        }
    }
}

/// Parses /proc/<pid>/stat: (state char, start time). The comm field may
/// contain spaces and parentheses, so split after the last ')'.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// True when `pid` is the same process that was recorded (same start time)
/// and has not exited (a zombie has exited).
pub fn process_alive(pid: i32, start: u64) -> bool {
    match proc_stat(pid) {
        Some((state, s)) => s == start && state != 'Z' && state != 'X',
        None => false,
    }
}

pub fn validate_id(id: &str) -> Result<()> {
    let bad = |why| Err(StateError::InvalidId(id.to_string(), why));
    if id.is_empty() {
        return bad("empty");
    }
    if id.len() > MAX_ID_LEN {
        return bad("longer than 1024 bytes");
    }
    if id == "." || id == ".." {
        return bad("must not be . or ..");
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'))
    {
        return bad("only letters, digits and _ + - . are allowed");
    }
    Ok(())
}

/// The state root (`--root`).
pub struct Store {
    pub root: PathBuf,
}

/// An open, locked container directory. The flock is released on drop.
pub struct ContainerDir {
    pub id: String,
    pub path: PathBuf,
    lock: Flock<File>,
}

impl Store {
    pub fn new(root: &Path) -> Self {
        Store {
            root: root.to_path_buf(),
        }
    }

    fn io(id: &str, what: &'static str, path: &Path, source: std::io::Error) -> StateError {
        StateError::Io {
            id: id.to_string(),
            what,
            path: path.to_path_buf(),
            source,
        }
    }

    /// Creates the directory for a new container and locks it. mkdir is the
    /// atomic claim on the id: of many concurrent creates exactly one wins,
    /// and the losers never touch the winner's directory.
    pub fn create(&self, id: &str) -> Result<ContainerDir> {
        validate_id(id)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .map_err(|e| Self::io(id, "creating state root", &self.root, e))?;
        let path = self.root.join(id);
        match fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StateError::Exists(id.to_string()));
            }
            Err(e) => return Err(Self::io(id, "creating", &path, e)),
        }
        let dir = lock_dir(id, &path)?;
        Ok(dir)
    }

    /// Opens and locks an existing container directory.
    pub fn open(&self, id: &str) -> Result<ContainerDir> {
        validate_id(id)?;
        let path = self.root.join(id);
        let dir = match lock_dir(id, &path) {
            Err(StateError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::NotExist(id.to_string()));
            }
            other => other?,
        };
        // The directory may have been removed while we waited for the lock.
        let meta = dir
            .lock
            .metadata()
            .map_err(|e| Self::io(id, "stat", &path, e))?;
        if meta.nlink() == 0 {
            return Err(StateError::NotExist(id.to_string()));
        }
        Ok(dir)
    }

    /// Ids of all containers under the root, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(Self::io("", "listing", &self.root, e)),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| validate_id(id).is_ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Reads a container's state without taking its lock (for `list`, which
    /// must not block behind a long create).
    pub fn peek(&self, id: &str) -> Result<ContainerState> {
        read_state(id, &self.root.join(id))
    }
}

fn lock_dir(id: &str, path: &Path) -> Result<ContainerDir> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Store::io(id, "opening", path, e))?;
    let lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| {
        Store::io(
            id,
            "locking",
            path,
            std::io::Error::from_raw_os_error(e as i32),
        )
    })?;
    Ok(ContainerDir {
        id: id.to_string(),
        path: path.to_path_buf(),
        lock,
    })
}

fn read_state(id: &str, dir: &Path) -> Result<ContainerState> {
    let path = dir.join(STATE_FILE);
    let data = match fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if dir.exists() {
                return Err(StateError::Creating(id.to_string()));
            }
            return Err(StateError::NotExist(id.to_string()));
        }
        Err(e) => return Err(Store::io(id, "reading", &path, e)),
    };
    serde_json::from_slice(&data).map_err(|e| StateError::Corrupt(id.to_string(), e.to_string()))
}

impl ContainerDir {
    pub fn load(&self) -> Result<ContainerState> {
        read_state(&self.id, &self.path)
    }

    /// Writes state.json atomically: a reader sees the old or the new state,
    /// never half of one, even if rrun is killed mid-write.
    pub fn save(&self, state: &ContainerState) -> Result<()> {
        let data = serde_json::to_vec(state).expect("state serialises: plain data");
        write_atomic(&self.path.join(STATE_FILE), &data)
            .map_err(|e| Store::io(&self.id, "writing", &self.path.join(STATE_FILE), e))
    }

    pub fn exec_socket(&self) -> PathBuf {
        self.path.join(EXEC_SOCKET)
    }

    /// A path to the exec socket short enough for sun_path (108 bytes),
    /// whatever the length of --root: through our open directory fd.
    pub fn exec_socket_short(&self) -> PathBuf {
        self.short_path(Path::new(EXEC_SOCKET))
    }

    /// `rel` inside the directory, by a path short enough for sun_path
    /// (108 bytes) whatever the length of --root: through our open fd.
    pub fn short_path(&self, rel: &Path) -> PathBuf {
        use std::os::fd::AsRawFd;
        Path::new(&format!("/proc/self/fd/{}", self.lock.as_raw_fd())).join(rel)
    }

    /// Removes the directory and everything in it; the lock goes with it.
    pub fn destroy(self) -> Result<()> {
        match fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Store::io(&self.id, "removing", &self.path, e)),
        }
    }
}

/// Write to a temporary file beside `path`, then rename it over `path`:
/// readers see the old or the new state, never half of one.
///
/// No fsync: the state describes processes, which do not outlive the
/// machine, so there is nothing to make durable across a power loss; the
/// rename alone is what protects against rrun itself dying mid-write.
/// (On a disk-backed --root an fsync per save cost milliseconds per
/// create.)
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{}.{}.tmp", name, std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(data)?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// RFC 3339 with nanoseconds, as runc prints `created`.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(validate_id("abc-1_2.3+x").is_ok());
        for bad in ["", ".", "..", "a/b", "../x", "a b", "x\n"] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate_id(&"a".repeat(1025)).is_err());
        assert!(validate_id(&"a".repeat(1024)).is_ok());
    }

    #[test]
    fn stat_with_odd_comm() {
        let line = "42 (a) b) c) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 12345 100 10";
        assert_eq!(parse_stat(line), Some(('S', 12345)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn own_process_is_alive_and_pid_reuse_is_detected() {
        let pid = std::process::id() as i32;
        let (_, start) = proc_stat(pid).unwrap();
        assert!(process_alive(pid, start));
        assert!(!process_alive(pid, start + 1));
    }

    #[test]
    fn create_claims_the_id_once() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path());
        let dir = store.create("c1").unwrap();
        assert!(matches!(store.create("c1"), Err(StateError::Exists(_))));
        drop(dir);
        assert!(matches!(store.peek("c1"), Err(StateError::Creating(_))));
        assert!(matches!(store.open("nope"), Err(StateError::NotExist(_))));
    }
}
