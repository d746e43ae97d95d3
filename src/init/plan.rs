//! The launch plan: everything the built-in init needs to start (and
//! restart) the user's program exactly as rrun would have started it, in
//! plain numbers. rrun computes it inside the container, before exec'ing
//! the init, and hands it over in a sealed memfd; the init applies it in
//! each child it forks (and in health checks). Shared by rrun and rrun-init.

// core/alloc only: the init is built without std.
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Caps {
    pub bounding: u64,
    pub effective: u64,
    pub inheritable: u64,
    pub permitted: u64,
    pub ambient: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Launch {
    /// args[0] resolved against the container's PATH.
    pub path: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    /// None where setgroups is denied (some user namespaces).
    pub groups: Option<Vec<u32>>,
    pub umask: u32,
    /// (resource, soft, hard)
    pub rlimits: Vec<(u32, u64, u64)>,
    pub caps: Caps,
    pub no_new_privs: bool,
    /// Raw sock_filter programs: (code, jt, jf, k).
    pub seccomp: Vec<Vec<(u16, u8, u8, u32)>>,
    pub seccomp_flags: u32,
    pub terminal: bool,
    /// fds 3.. that pass to the program.
    pub preserve_fds: u32,
    /// The config's annotations (the init parses its own rrun.* keys).
    pub annotations: BTreeMap<String, String>,
}

/// Where, inside the container, the init publishes its status (a tmpfs
/// the runtime created). The host reads it through /proc/<pid>/root with
/// RESOLVE_IN_ROOT: the container gets no host fd or path for it.
pub const STATUS_PATH: &str = "/dev/.rrun-init.json";

/// The status the init publishes (and `rrun state` shows as `init`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LastExit {
    Code(i32),
    Signal(i32),
}
