//! The CNI protocol, as the spec (1.0) says a runtime drives plugins: each
//! plugin is an executable found on CNI_PATH, called with its network
//! configuration as JSON on stdin and the CNI_* variables in its
//! environment; it answers a result (ADD) or nothing (DEL, CHECK) on
//! stdout, or an error object `{code, msg, details}` with a non-zero exit.
//! A network configuration list (conflist) runs its plugins in order for
//! ADD (each one gets the previous one's result as `prevResult`) and in
//! reverse for DEL and CHECK (with the cached result of the ADD).
//!
//! This module knows nothing of apps or networks' meaning: network.rs
//! writes the conflists, picks ids and keeps the cached results.
// Used by the app commands (the lead's cli); until they land, some is not.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

/// The directories searched for plugins when $RRUN_CNI_PATH is not set
/// (Debian's containernetworking-plugins, then the upstream default).
pub const DEFAULT_CNI_PATH: &[&str] = &["/usr/lib/cni", "/opt/cni/bin"];

#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error("CNI plugin {plugin:?} not found in {}", dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(":"))]
    PluginMissing { plugin: String, dirs: Vec<PathBuf> },
    #[error("CNI plugin {plugin} ({command}): {msg} (code {code}){}", if details.is_empty() { String::new() } else { format!(": {details}") })]
    Plugin {
        plugin: String,
        command: &'static str,
        code: u64,
        msg: String,
        details: String,
    },
    #[error("CNI plugin {plugin} ({command}): {source}")]
    Exec {
        plugin: String,
        command: &'static str,
        source: std::io::Error,
    },
    #[error("CNI plugin {plugin} ({command}) answered no valid JSON: {text}")]
    BadOutput {
        plugin: String,
        command: &'static str,
        text: String,
    },
    #[error("CNI plugin {plugin} ({command}) did not finish in {secs} s (killed)")]
    Timeout {
        plugin: String,
        command: &'static str,
        secs: u64,
    },
    #[error("CNI configuration list: {0}")]
    BadConfig(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
}

impl Command {
    fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
        }
    }
}

/// What the runtime tells every plugin about the container (CNI_* vars and
/// the runtimeConfig of plugins that declare capabilities).
#[derive(Debug, Clone)]
pub struct RuntimeConf {
    pub container_id: String,
    /// The network namespace's path; None when it is gone (DEL after a
    /// crash or a reboot: the spec asks plugins to clean up what they can).
    pub netns: Option<PathBuf>,
    pub ifname: String,
    /// Capability arguments, by capability name (e.g. "portMappings").
    pub capability_args: Map<String, Value>,
}

/// The plugin directories: $RRUN_CNI_PATH (colon separated) or the default.
pub fn plugin_dirs() -> Vec<PathBuf> {
    match std::env::var("RRUN_CNI_PATH") {
        Ok(v) if !v.is_empty() => v
            .split(':')
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect(),
        _ => DEFAULT_CNI_PATH.iter().map(PathBuf::from).collect(),
    }
}

/// The executable of plugin `kind` in `dirs`. The type is a file name, never
/// a path (a conflist must not run an arbitrary program).
pub fn find_plugin(dirs: &[PathBuf], kind: &str) -> Result<PathBuf, CniError> {
    let missing = || CniError::PluginMissing {
        plugin: kind.to_string(),
        dirs: dirs.to_vec(),
    };
    if kind.is_empty() || kind.contains('/') || kind.starts_with('.') {
        return Err(missing());
    }
    for d in dirs {
        let p = d.join(kind);
        if let Ok(m) = p.metadata()
            && m.is_file()
            && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
        {
            return Ok(p);
        }
    }
    Err(missing())
}

/// Checks that every plugin of a conflist is installed (before any side
/// effect, so a missing one is one clear line and nothing done).
pub fn check_plugins(dirs: &[PathBuf], conflist: &Value) -> Result<(), CniError> {
    for p in plugins(conflist)? {
        find_plugin(dirs, plugin_type(p)?)?;
    }
    Ok(())
}

fn plugins(conflist: &Value) -> Result<&Vec<Value>, CniError> {
    conflist
        .get("plugins")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| CniError::BadConfig("no \"plugins\" array".into()))
}

fn plugin_type(p: &Value) -> Result<&str, CniError> {
    p.get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| CniError::BadConfig("a plugin without \"type\"".into()))
}

/// The configuration one plugin of a list receives: its own object plus
/// the list's name and cniVersion, the runtimeConfig for the capabilities
/// it declares, and prevResult when there is one.
pub fn plugin_config(
    conflist: &Value,
    plugin: &Value,
    rt: &RuntimeConf,
    prev: Option<&Value>,
) -> Value {
    let mut c = plugin.as_object().cloned().unwrap_or_default();
    for key in ["name", "cniVersion"] {
        if let Some(v) = conflist.get(key) {
            c.insert(key.to_string(), v.clone());
        }
    }
    let mut runtime = Map::new();
    if let Some(caps) = plugin.get("capabilities").and_then(Value::as_object) {
        for (cap, on) in caps {
            if on.as_bool() == Some(true)
                && let Some(arg) = rt.capability_args.get(cap)
            {
                runtime.insert(cap.clone(), arg.clone());
            }
        }
    }
    c.remove("capabilities");
    if !runtime.is_empty() {
        c.insert("runtimeConfig".into(), Value::Object(runtime));
    }
    match prev {
        Some(p) => c.insert("prevResult".into(), p.clone()),
        None => c.remove("prevResult"),
    };
    Value::Object(c)
}

/// Runs one plugin. Returns its stdout parsed (ADD's result), or None when
/// it printed nothing (DEL, CHECK).
pub fn exec_plugin(
    dirs: &[PathBuf],
    cmd: Command,
    rt: &RuntimeConf,
    config: &Value,
) -> Result<Option<Value>, CniError> {
    let kind = plugin_type(config)?;
    let exe = find_plugin(dirs, kind)?;
    let command = cmd.as_str();
    let exec_err = |source| CniError::Exec {
        plugin: kind.to_string(),
        command,
        source,
    };
    let cni_path = std::env::join_paths(dirs).map_err(|e| CniError::BadConfig(e.to_string()))?;
    let mut child = Process::new(&exe)
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", &rt.container_id)
        .env("CNI_NETNS", rt.netns.as_deref().unwrap_or(Path::new("")))
        .env("CNI_IFNAME", &rt.ifname)
        .env("CNI_PATH", cni_path)
        .env_remove("CNI_ARGS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(exec_err)?;
    let input = serde_json::to_vec(config).map_err(|e| CniError::BadConfig(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A plugin that exits without reading gives EPIPE here: its exit
        // status and output below say why.
        let _ = stdin.write_all(&input);
    }
    let out = wait_output(child, PLUGIN_TIMEOUT).map_err(|e| match e {
        Some(e) => exec_err(e),
        None => CniError::Timeout {
            plugin: kind.to_string(),
            command,
            secs: PLUGIN_TIMEOUT.as_secs(),
        },
    })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let parsed: Option<Value> = if text.trim().is_empty() {
        None
    } else {
        serde_json::from_str(&text).ok()
    };
    if !out.status.success() {
        let (code, msg, details) = match &parsed {
            Some(v) => (
                v.get("code").and_then(Value::as_u64).unwrap_or(0),
                v.get("msg")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                v.get("details")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            ),
            None => (0, String::new(), String::new()),
        };
        let msg = if msg.is_empty() {
            let e = String::from_utf8_lossy(&out.stderr)
                .trim()
                .replace('\n', "; ");
            if e.is_empty() {
                format!("failed ({})", out.status)
            } else {
                e
            }
        } else {
            msg
        };
        return Err(CniError::Plugin {
            plugin: kind.to_string(),
            command,
            code,
            msg,
            details,
        });
    }
    match (parsed, text.trim().is_empty()) {
        (Some(v), _) => Ok(Some(v)),
        (None, true) => Ok(None),
        (None, false) => Err(CniError::BadOutput {
            plugin: kind.to_string(),
            command,
            text: text.chars().take(200).collect(),
        }),
    }
}

/// How long one plugin may take: a hung plugin (a stuck iptables lock)
/// must not hang `rrun app` forever.
pub const PLUGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// The child's exit and output, or None after `timeout` (the child is then
/// killed; its output readers are left to end with its pipes).
fn wait_output(mut child: Child, timeout: Duration) -> Result<Output, Option<std::io::Error>> {
    fn reader(p: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut b = Vec::new();
            if let Some(mut p) = p {
                let _ = p.read_to_end(&mut b);
            }
            b
        })
    }
    let (out, err) = (reader(child.stdout.take()), reader(child.stderr.take()));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait().map_err(Some)? {
            Some(s) => break s,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(None);
            }
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    };
    Ok(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// ADD of a whole list. `progress` is called with the result after each
/// plugin, so the caller can persist it: a DEL after a crash half-way then
/// has the prevResult the plugins already added need.
pub fn add_list(
    dirs: &[PathBuf],
    conflist: &Value,
    rt: &RuntimeConf,
    progress: &mut dyn FnMut(&Value),
) -> Result<Value, CniError> {
    let mut prev: Option<Value> = None;
    for p in plugins(conflist)? {
        let cfg = plugin_config(conflist, p, rt, prev.as_ref());
        let result =
            exec_plugin(dirs, Command::Add, rt, &cfg)?.ok_or_else(|| CniError::BadOutput {
                plugin: plugin_type(p).unwrap_or("?").to_string(),
                command: "ADD",
                text: "(nothing)".into(),
            })?;
        progress(&result);
        prev = Some(result);
    }
    Ok(prev.unwrap_or_else(|| json!({})))
}

/// DEL of a whole list, last plugin first, each with the cached result.
/// Goes on past a failing plugin (the others still clean up) and returns
/// the first error.
pub fn del_list(
    dirs: &[PathBuf],
    conflist: &Value,
    rt: &RuntimeConf,
    prev: Option<&Value>,
) -> Result<(), CniError> {
    let mut first = None;
    for p in plugins(conflist)?.iter().rev() {
        let cfg = plugin_config(conflist, p, rt, prev);
        if let Err(e) = exec_plugin(dirs, Command::Del, rt, &cfg) {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// CHECK of a whole list (in order, each with the cached result).
pub fn check_list(
    dirs: &[PathBuf],
    conflist: &Value,
    rt: &RuntimeConf,
    prev: &Value,
) -> Result<(), CniError> {
    for p in plugins(conflist)? {
        let cfg = plugin_config(conflist, p, rt, Some(prev));
        exec_plugin(dirs, Command::Check, rt, &cfg)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> RuntimeConf {
        let mut caps = Map::new();
        caps.insert(
            "portMappings".into(),
            json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]),
        );
        RuntimeConf {
            container_id: "c1".into(),
            netns: None,
            ifname: "eth0".into(),
            capability_args: caps,
        }
    }

    #[test]
    fn plugin_config_injects_name_version_runtime_config_and_prev_result() {
        let list = json!({"cniVersion": "1.0.0", "name": "n1", "plugins": [
            {"type": "bridge"}, {"type": "portmap", "capabilities": {"portMappings": true}}]});
        let prev = json!({"ips": []});
        let c = plugin_config(&list, &list["plugins"][1], &rt(), Some(&prev));
        assert_eq!(c["name"], "n1");
        assert_eq!(c["cniVersion"], "1.0.0");
        assert_eq!(c["runtimeConfig"]["portMappings"][0]["hostPort"], 8080);
        assert_eq!(c["prevResult"], prev);
        assert!(c.get("capabilities").is_none());
        let b = plugin_config(&list, &list["plugins"][0], &rt(), None);
        assert!(b.get("runtimeConfig").is_none() && b.get("prevResult").is_none());
    }

    #[test]
    fn a_hung_plugin_is_killed_at_the_timeout() {
        let child = Process::new("sleep")
            .arg("30")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let t = Instant::now();
        assert!(matches!(
            wait_output(child, Duration::from_millis(200)),
            Err(None)
        ));
        assert!(t.elapsed() < Duration::from_secs(5));
        let child = Process::new("echo")
            .arg("hi")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = wait_output(child, Duration::from_secs(10)).unwrap();
        assert_eq!(out.stdout, b"hi\n");
    }

    #[test]
    fn plugin_types_are_names_not_paths() {
        let dirs = vec![PathBuf::from("/usr/bin")];
        assert!(matches!(
            find_plugin(&dirs, "../bin/sh"),
            Err(CniError::PluginMissing { .. })
        ));
        assert!(matches!(
            find_plugin(&dirs, "/bin/sh"),
            Err(CniError::PluginMissing { .. })
        ));
        let e = find_plugin(&[PathBuf::from("/nonexistent")], "bridge").unwrap_err();
        assert_eq!(
            e.to_string(),
            "CNI plugin \"bridge\" not found in /nonexistent"
        );
    }
}
