//! An app on disk: apps/<name>/{app.json,state.json,events.jsonl} and the
//! per-app lock. Settings change only by `run`/`update`; the state by the
//! commands and by `_spawn` (the monitor's helper), always under the lock.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::network::Attachment;
use super::paths::Paths;
use super::settings::AppSpec;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("no app named {0:?}")]
    NoSuchApp(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Made, never started (or a start is under way).
    #[default]
    Created,
    Running,
    /// Ended: see `exit`.
    Exited,
}

/// How an app's last run ended, with the reason `ls` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// `exit N`, `signal N`, `oom`, `unhealthy`, `gave-up`, `stopped by user`.
    pub reason: String,
    /// The exit status as a shell gives it (128+N for signal N).
    pub status: i32,
    pub time: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct AppState {
    pub phase: Phase,
    /// The image (store id) the app runs now.
    pub image: String,
    /// The image before the last upgrade (rollback target), until the
    /// upgrade is known good.
    #[serde(default)]
    pub previous_image: Option<String>,
    /// The monitor: pid and its start time (liveness without pid reuse).
    #[serde(default)]
    pub monitor: Option<(i32, u64)>,
    /// The container's init (host pid, start time) while it runs.
    #[serde(default)]
    pub init: Option<(i32, u64)>,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
    #[serde(default)]
    pub exit: Option<ExitInfo>,
    /// Restarts of the whole container (its init died), by rrun; the
    /// init's own restarts of the program are in its status.
    #[serde(default)]
    pub recreated: u32,
    /// Program restarts of earlier containers of this run (so `ls` keeps
    /// counting when the container is recreated).
    #[serde(default)]
    pub earlier_restarts: u32,
    /// Set by stop/rm: the next exit is the user's doing, not a failure.
    #[serde(default)]
    pub stop_requested: bool,
    #[serde(default)]
    pub network: Option<Attachment>,
    /// OOM kills counted before the current container (reason `oom`).
    #[serde(default)]
    pub created_at: String,
}

/// One app's directory.
pub struct App {
    pub name: String,
    pub dir: PathBuf,
}

impl App {
    pub fn at(paths: &Paths, name: &str) -> App {
        App {
            name: name.to_string(),
            dir: paths.app(name),
        }
    }

    pub fn exists(&self) -> bool {
        self.dir.join("app.json").is_file()
    }

    pub fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("bundle").join("rootfs")
    }
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
    pub fn logs(&self) -> PathBuf {
        self.dir.join("logs")
    }
    pub fn init_pid_file(&self) -> PathBuf {
        self.dir.join("init.pid")
    }

    pub fn load_spec(&self) -> Result<AppSpec, StateError> {
        read_json(&self.dir.join("app.json")).map_err(|e| self.missing_as_no_app(e))
    }
    pub fn save_spec(&self, spec: &AppSpec) -> Result<(), StateError> {
        write_json(&self.dir.join("app.json"), spec)
    }
    pub fn load_state(&self) -> Result<AppState, StateError> {
        read_json(&self.dir.join("state.json")).map_err(|e| self.missing_as_no_app(e))
    }
    pub fn save_state(&self, st: &AppState) -> Result<(), StateError> {
        write_json(&self.dir.join("state.json"), st)
    }

    fn missing_as_no_app(&self, e: StateError) -> StateError {
        match &e {
            StateError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                StateError::NoSuchApp(self.name.clone())
            }
            _ => e,
        }
    }

    /// Appends one event (a JSON line with its time).
    pub fn event(&self, kind: &str, detail: serde_json::Value) {
        self.event_at(&crate::state::now_rfc3339(), kind, detail)
    }

    /// An event that happened at `time` (RFC 3339).
    pub fn event_at(&self, time: &str, kind: &str, detail: serde_json::Value) {
        let mut ev = serde_json::json!({
            "time": time,
            "app": self.name,
            "type": kind,
        });
        if let (Some(obj), serde_json::Value::Object(d)) = (ev.as_object_mut(), detail) {
            obj.extend(d);
        }
        let path = self.dir.join("events.jsonl");
        if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(&path) {
            let _ = writeln!(f, "{ev}");
        }
    }
}

/// Exclusive lock of one app (flock on a file in the run directory): held
/// while a command changes the app; released when dropped.
pub struct Lock {
    _held: nix::fcntl::Flock<File>,
}

pub fn lock(paths: &Paths, name: &str) -> Result<Lock, StateError> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = paths.locks();
    fs::create_dir_all(&dir).map_err(io(&dir))?;
    let path = dir.join(format!("app-{name}.lock"));
    // 0600 in a root-only directory: flock needs only a read fd, and any
    // other local user holding this lock would wedge the app.
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(io(&path))?;
    let held =
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| {
            StateError::Io {
                path: path.clone(),
                source: e.into(),
            }
        })?;
    Ok(Lock { _held: held })
}

/// Every app's name, sorted.
pub fn names(paths: &Paths) -> Result<Vec<String>, StateError> {
    let dir = paths.apps();
    let rd = match fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(&dir)(e)),
    };
    let mut out: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("app.json").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    out.sort();
    Ok(out)
}

pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, StateError> {
    let data = fs::read(path).map_err(io(path))?;
    serde_json::from_slice(&data).map_err(|source| StateError::Json {
        path: path.to_path_buf(),
        source,
    })
}

pub fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<(), StateError> {
    let text = serde_json::to_vec_pretty(v).expect("app files serialise");
    crate::state::write_atomic(path, &text).map_err(io(path))
}
