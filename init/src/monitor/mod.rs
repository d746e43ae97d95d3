//! rrun-monitor's parts: its own system calls and the log file writer.

pub mod logfile;
pub mod msys;

use alloc::string::String;
use alloc::vec::Vec;

/// apps/<name>/monitor.json, written by rrun (src/app/monitor.rs,
/// `MonitorConfig`: the two must agree).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    /// The helper's argv (argv[0] an absolute path).
    pub helper: Vec<String>,
    /// The helper's environment, "K=V".
    #[serde(default)]
    pub env: Vec<String>,
    pub log: String,
    #[serde(default)]
    pub max_size: u64,
    #[serde(default)]
    pub max_files: u32,
    pub init_pid: String,
    pub exit_file: String,
}

/// A line on the monitor's stderr (apps/<name>/monitor.log).
#[macro_export]
macro_rules! mlog {
    ($($arg:tt)*) => {{
        let line = alloc::format!("rrun-monitor: {}\n", format_args!($($arg)*));
        let _ = $crate::sys::write_all(2, line.as_bytes());
    }};
}
