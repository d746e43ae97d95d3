//! The launch plan: what the built-in init needs to start (and restart)
//! the user's program. rrun computes it inside the container and hands it
//! over in a sealed memfd. It holds no credentials: rrun applies the whole
//! process config (user, groups, capabilities, rlimits, no_new_privs,
//! seccomp, LSM labels) to the init itself before exec'ing it, so PID 1
//! never holds more than the program, and the program and health checks
//! inherit exactly that. Shared by rrun and rrun-init.

// core/alloc only: the init is built without std.
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Launch {
    /// args[0] resolved against the container's PATH.
    pub path: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub terminal: bool,
    /// fds 3.. that pass to the program.
    pub preserve_fds: u32,
    /// The config's annotations (the init parses its own rrun.* keys).
    pub annotations: BTreeMap<String, String>,
}

/// The directory, inside the container, where the init publishes its
/// status (in the /dev tmpfs the runtime created). rrun makes it before
/// the init drops to the program's user and gives it to that user, so the
/// init can replace the file atomically with no privilege over /dev.
pub const STATUS_DIR: &str = "/dev/.rrun-init";

/// The status file in STATUS_DIR. Anything in the container can rewrite or
/// replace it: the host reads it as hostile input (src/init/status.rs).
pub const STATUS_FILE: &str = "status.json";

/// The status the init publishes (and `rrun state` shows as `init`).
/// Unknown keys are refused: the host parses what the container wrote.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Status {
    pub restarts: u32,
    /// The program's pid in the container's pid namespace, while it runs.
    pub pid: Option<i32>,
    pub last_exit: Option<LastExit>,
    pub health: String,
    pub gave_up: bool,
    /// How many times the program has exited.
    #[serde(default)]
    pub exits: u32,
    /// Unix time (ms) of each start, newest last (at most 64 kept).
    pub starts: Vec<u64>,
    /// Each exit of the program, newest last (at most 64 kept): what the
    /// app manager turns into timestamped exit events.
    #[serde(default)]
    pub exit_log: Vec<ExitRecord>,
    /// The last health checks, newest last (at most HEALTH_LOG_MAX kept):
    /// their output goes here, never into the program's stdout/stderr.
    #[serde(default)]
    pub health_log: Vec<HealthRecord>,
}

/// How many health check results the status keeps (Docker keeps 5).
pub const HEALTH_LOG_MAX: usize = 5;
/// How much of a health check's output is kept.
pub const HEALTH_OUTPUT_MAX: usize = 1024;
/// Where a health check's stdout and stderr go, in STATUS_DIR.
pub const HEALTH_OUTPUT: &str = "health.out";

/// One health check's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthRecord {
    /// Unix time (ms) it ended.
    pub time: u64,
    pub exit: LastExit,
    /// The start of its output (stdout and stderr together).
    pub output: String,
}

/// One exit of the program, as the init saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExitRecord {
    /// Unix time (ms).
    pub time: u64,
    pub exit: LastExit,
    /// The init killed it for failing its health check.
    pub unhealthy: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LastExit {
    Code(i32),
    Signal(i32),
}
