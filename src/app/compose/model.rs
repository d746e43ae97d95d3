//! A compose project once loaded: its services as complete app settings
//! (AppSpec), their dependencies, the networks and volumes they use, and
//! the errors of loading it. Plain data; `file` fills it, the commands use
//! it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::app::settings::AppSpec;

pub const LABEL_PROJECT: &str = "com.docker.compose.project";
pub const LABEL_SERVICE: &str = "com.docker.compose.service";
pub const LABEL_HASH: &str = "com.docker.compose.config-hash";
pub const LABEL_FILES: &str = "com.docker.compose.project.config_files";
pub const LABEL_DIR: &str = "com.docker.compose.project.working_dir";
pub const LABEL_DEPENDS_ON: &str = "com.docker.compose.depends_on";

/// What `load` reads.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The files, later ones merged over earlier ones; empty: the default
    /// file in `cwd` (compose.yaml, compose.yml, docker-compose.yml,
    /// docker-compose.yaml).
    pub files: Vec<PathBuf>,
    pub project_name: Option<String>,
    /// Files of variables for interpolation; empty: `.env` in the project
    /// directory, if there is one.
    pub env_files: Vec<PathBuf>,
    pub cwd: PathBuf,
    /// The environment (interpolation, bare `environment` keys,
    /// COMPOSE_PROJECT_NAME); the process's, or a test's own.
    pub environ: BTreeMap<String, String>,
}

impl LoadOptions {
    /// Options with this process's working directory and environment.
    pub fn from_process(
        files: Vec<PathBuf>,
        project_name: Option<String>,
        env_files: Vec<PathBuf>,
    ) -> std::io::Result<LoadOptions> {
        Ok(LoadOptions {
            files,
            project_name,
            env_files,
            cwd: std::env::current_dir()?,
            environ: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub name: String,
    /// Where relative paths are resolved from: the first file's directory.
    pub dir: PathBuf,
    /// Absolute paths of the files read.
    pub files: Vec<PathBuf>,
    pub services: BTreeMap<String, Service>,
    /// The services' names in the order of the file.
    pub service_order: Vec<String>,
    /// Key: the network's name in the file ("default" for the implicit
    /// one); only networks declared or used.
    pub networks: BTreeMap<String, NetworkDef>,
    pub volumes: BTreeMap<String, VolumeDef>,
    /// The resolved file, normalised (what `config` prints).
    pub resolved_yaml: String,
    /// Unset variables and the like: one line each, for stderr.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub name: String,
    /// Complete: the app is created from this alone.
    pub app: AppSpec,
    pub depends_on: Vec<Dependency>,
    /// The config-hash label: sha256 of the service's resolved definition.
    pub hash: String,
    /// restart "no" and some service waits for it to complete.
    pub one_shot: bool,
    /// `image:` is a registry reference (then app.source is that reference
    /// too): it must be copied into a local layout before use.
    pub registry_ref: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub service: String,
    pub condition: Condition,
    /// Restart this service when the dependency is recreated/restarted.
    pub restart: bool,
    /// false: a missing or failing dependency only warns.
    pub required: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Started,
    Healthy,
    CompletedSuccessfully,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Started => "service_started",
            Condition::Healthy => "service_healthy",
            Condition::CompletedSuccessfully => "service_completed_successfully",
        }
    }
    pub fn parse(s: &str) -> Option<Condition> {
        [
            Condition::Started,
            Condition::Healthy,
            Condition::CompletedSuccessfully,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkDef {
    /// rrun's network name (P_N, or `name:`, or the external one's).
    pub name: String,
    /// Exists already: never created nor removed by the project.
    pub external: bool,
    pub subnet: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeDef {
    /// rrun's volume name (P_V, or `name:`).
    pub name: String,
    pub external: bool,
}

/// Loading errors; each displays as one line, with file:line when known.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error(
        "no compose file in {0} (looked for compose.yaml, compose.yml, docker-compose.yml, docker-compose.yaml; or give -f FILE)"
    )]
    NoFile(PathBuf),
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Something wrong at a place in a file: `file:line: key.path: what`.
    #[error("{file}:{line}: {key}{}{msg}", if key.is_empty() { "" } else { ": " })]
    At {
        file: String,
        line: usize,
        key: String,
        msg: String,
    },
    #[error("{0}")]
    Project(String),
    #[error(transparent)]
    Settings(#[from] crate::app::settings::SettingsError),
}
