//! An app's settings (apps/<name>/app.json): what `rrun app run` was
//! asked for, checked and normalised, so that starting, restarting,
//! upgrading and recreating the app need nothing but this file and the
//! image. Pure: parsing and validation, no side effects (a volume source's
//! existence is checked by the caller, which knows the host).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cli::Settings;
use crate::image::annotations::{InitOptions, init_annotations};

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "invalid app name {0:?}: use letters, digits, '_', '.', '-' (at most 63, starting with a letter or digit)"
    )]
    Name(String),
    #[error("invalid {flag} {value:?}: {why}")]
    Flag {
        flag: &'static str,
        value: String,
        why: String,
    },
    #[error("env file {path}: {source}")]
    EnvFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("env file {path} line {line}: {why}")]
    EnvLine {
        path: PathBuf,
        line: usize,
        why: &'static str,
    },
}

fn flag(flag: &'static str, value: &str, why: impl Into<String>) -> SettingsError {
    SettingsError::Flag {
        flag,
        value: value.to_string(),
        why: why.into(),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    /// An absolute host path, or a volume name (kept under the app root).
    pub source: String,
    pub target: String,
    pub readonly: bool,
}

impl Volume {
    pub fn is_named(&self) -> bool {
        !self.source.starts_with('/')
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tmpfs {
    pub target: String,
    pub size: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// The argv the init runs in the container.
    pub cmd: Vec<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub retries: Option<String>,
    pub start_period: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct AppSpec {
    pub name: String,
    /// The image source as given (`rrun app run` upgrades when it changes).
    pub source: String,
    pub command: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    /// KEY=VALUE, env files first, then -e, later ones winning.
    pub env: Vec<String>,
    /// Published ports as given (`network::parse_port` checks them).
    pub ports: Vec<String>,
    pub volumes: Vec<Volume>,
    pub tmpfs: Vec<Tmpfs>,
    /// bridge, host, none or a network's name.
    pub network: String,
    pub memory: Option<i64>,
    pub cpus: Option<f64>,
    pub pids_limit: Option<i64>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub read_only: bool,
    /// Docker's policy names: no, always, on-failure[:N], unless-stopped.
    pub restart: String,
    pub restart_delay: Option<String>,
    pub restart_max_delay: Option<String>,
    pub restart_limit: Option<String>,
    pub health: Option<Health>,
    pub stop_signal: Option<String>,
    pub stop_timeout: u64,
    pub log_max_size: u64,
    pub log_max_files: u32,
    pub labels: BTreeMap<String, String>,
    pub hostname: Option<String>,
    /// More names of the app in its network's hosts files (a compose
    /// service's name).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// NAME:IP lines added to the app's hosts file.
    #[serde(default)]
    pub extra_hosts: Vec<String>,
}

pub const DEFAULT_LOG_SIZE: u64 = 10 << 20;
pub const DEFAULT_LOG_FILES: u32 = 5;
pub const DEFAULT_STOP_TIMEOUT: u64 = 10;

/// The CFS period `--cpus` is expressed in (Docker's).
pub const CPU_PERIOD: u64 = 100_000;

/// `--cpus` as a CFS quota over CPU_PERIOD.
pub fn cpu_quota(cpus: f64) -> i64 {
    (cpus * CPU_PERIOD as f64).round() as i64
}

pub fn check_name(name: &str) -> Result<(), SettingsError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(SettingsError::Name(name.to_string()))
    }
}

/// A name from the image source: the file or directory name without its
/// extensions and reference, made a valid name.
pub fn name_from_source(source: &str) -> String {
    let s = source
        .strip_prefix("oci-archive:")
        .or_else(|| source.strip_prefix("docker-archive:"))
        .or_else(|| source.strip_prefix("oci:"))
        .unwrap_or(source);
    let path = s.split(':').next().unwrap_or(s).trim_end_matches('/');
    let base = Path::new(path)
        .file_name()
        .map(|b| b.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = base.split('.').next().unwrap_or("");
    let mut out: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    if out.is_empty() || !out.as_bytes()[0].is_ascii_alphanumeric() {
        out = format!("app{out}");
        out.truncate(63);
    }
    out
}

/// KEY=VALUE with a valid key; a bare KEY takes the caller's value, as
/// `docker run -e KEY` does (dropped when the caller has none).
fn env_entry(flagname: &'static str, e: &str) -> Result<Option<String>, SettingsError> {
    let key = e.split('=').next().unwrap_or("");
    if key.is_empty() || key.contains('\0') || e.contains('\0') {
        return Err(flag(flagname, e, "expected KEY=VALUE"));
    }
    if e.contains('=') {
        Ok(Some(e.to_string()))
    } else {
        Ok(std::env::var(key).ok().map(|v| format!("{key}={v}")))
    }
}

/// Sets KEY=VALUE, replacing an earlier value of KEY.
pub fn set_env(env: &mut Vec<String>, kv: String) {
    let key = kv.split('=').next().unwrap_or("").to_string();
    env.retain(|e| e.split('=').next() != Some(key.as_str()));
    env.push(kv);
}

/// The most a settings file (an env file, a compose file) may hold.
pub const MAX_FILE: u64 = 16 << 20;

/// A file's text, at most MAX_FILE bytes: a file named by an untrusted
/// compose file may be /dev/zero or /dev/urandom (endless); a pipe
/// (`--env-file <(...)`) still works.
pub fn read_small_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let f = std::fs::File::open(path)?;
    let mut text = String::new();
    f.take(MAX_FILE + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_FILE {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB",
            MAX_FILE >> 20
        )));
    }
    Ok(text)
}

pub fn read_env_file(path: &Path) -> Result<Vec<String>, SettingsError> {
    let text = read_small_file(path).map_err(|source| SettingsError::EnvFile {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim_start();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        match env_entry("--env-file", l) {
            Ok(Some(e)) => out.push(e),
            Ok(None) => {}
            Err(_) => {
                return Err(SettingsError::EnvLine {
                    path: path.to_path_buf(),
                    line: i + 1,
                    why: "expected KEY=VALUE",
                });
            }
        }
    }
    Ok(out)
}

pub fn parse_volume(s: &str) -> Result<Volume, SettingsError> {
    let parts: Vec<&str> = s.split(':').collect();
    let (src, dst, ro) = match parts.as_slice() {
        [src, dst] => (*src, *dst, false),
        [src, dst, "ro"] => (*src, *dst, true),
        [src, dst, "rw"] => (*src, *dst, false),
        [_, _, o] => {
            return Err(flag(
                "--volume",
                s,
                format!("unknown option {o:?} (ro or rw)"),
            ));
        }
        _ => return Err(flag("--volume", s, "expected SRC:DST[:ro]")),
    };
    if !dst.starts_with('/') {
        return Err(flag(
            "--volume",
            s,
            "the destination must be an absolute path",
        ));
    }
    if dst.split('/').any(|c| c == "..") {
        return Err(flag("--volume", s, "the destination must not contain '..'"));
    }
    if src.is_empty() {
        return Err(flag("--volume", s, "empty source"));
    }
    if !src.starts_with('/') && check_name(src).is_err() {
        return Err(flag(
            "--volume",
            s,
            "the source must be an absolute host path or a volume name",
        ));
    }
    Ok(Volume {
        source: src.to_string(),
        target: dst.to_string(),
        readonly: ro,
    })
}

pub fn parse_tmpfs(s: &str) -> Result<Tmpfs, SettingsError> {
    let (dst, opts) = match s.split_once(':') {
        Some((d, o)) => (d, Some(o)),
        None => (s, None),
    };
    if !dst.starts_with('/') || dst.split('/').any(|c| c == "..") {
        return Err(flag("--tmpfs", s, "expected an absolute path without '..'"));
    }
    let size = match opts {
        None => None,
        Some(o) => match o.strip_prefix("size=") {
            Some(v) => Some(parse_size("--tmpfs", v)?),
            None => return Err(flag("--tmpfs", s, "the only option is size=N")),
        },
    };
    Ok(Tmpfs {
        target: dst.to_string(),
        size,
    })
}

pub fn parse_size(flagname: &'static str, s: &str) -> Result<i64, SettingsError> {
    match crate::commands::cgroup_cmds::parse_bytes(s) {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(flag(flagname, s, "expected a size such as 512k, 256m, 1g")),
    }
}

pub fn parse_cpus(s: &str) -> Result<f64, SettingsError> {
    let max = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64;
    match s.parse::<f64>() {
        Ok(c) if c > 0.0 && c.is_finite() && c <= max => Ok(c),
        Ok(c) if c > max => Err(flag(
            "--cpus",
            s,
            format!("more than the {max} CPUs this machine has"),
        )),
        _ => Err(flag(
            "--cpus",
            s,
            "expected a number of CPUs above 0, e.g. 0.5",
        )),
    }
}

/// Docker's --health-cmd: a shell string, or a JSON array starting with
/// CMD (an argv) or CMD-SHELL (a shell string); ["NONE"] is no check.
pub fn parse_health_cmd(s: &str) -> Result<Option<Vec<String>>, SettingsError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(flag("--health-cmd", s, "empty command"));
    }
    if !t.starts_with('[') {
        return Ok(Some(vec!["/bin/sh".into(), "-c".into(), t.to_string()]));
    }
    let v: Vec<String> = serde_json::from_str(t).map_err(|e| {
        flag(
            "--health-cmd",
            s,
            format!("not a JSON array of strings: {e}"),
        )
    })?;
    match v.first().map(String::as_str) {
        Some("NONE") => Ok(None),
        Some("CMD") if v.len() > 1 => Ok(Some(v[1..].to_vec())),
        Some("CMD-SHELL") if v.len() == 2 => {
            Ok(Some(vec!["/bin/sh".into(), "-c".into(), v[1].clone()]))
        }
        Some("CMD" | "CMD-SHELL") => Err(flag("--health-cmd", s, "nothing to run")),
        Some(_) => Ok(Some(v)),
        None => Err(flag("--health-cmd", s, "empty array")),
    }
}

pub fn check_hostname(h: &str) -> Result<(), SettingsError> {
    if h.is_empty()
        || h.len() > 64
        || !h
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(flag(
            "--hostname",
            h,
            "letters, digits, '-' and '.', at most 64",
        ));
    }
    Ok(())
}

/// Docker's restart policy as the built-in init's (systemd's names).
pub fn init_policy(restart: &str) -> Result<String, SettingsError> {
    let (p, n) = match restart.split_once(':') {
        Some((p, n)) => (p, Some(n)),
        None => (restart, None),
    };
    match (p, n) {
        ("no", None) => Ok("no".into()),
        ("always" | "unless-stopped", None) => Ok("always".into()),
        ("on-failure", None) => Ok("on-failure".into()),
        ("on-failure", Some(n)) if n.parse::<u32>().is_ok_and(|n| n > 0) => {
            Ok(format!("on-failure:{n}"))
        }
        _ => Err(flag(
            "--restart",
            restart,
            "use no, always, on-failure[:N] or unless-stopped",
        )),
    }
}

impl AppSpec {
    /// The annotations of the built-in init (checked by the same code as
    /// `rrun unpack`'s flags).
    pub fn init_annotations(&self) -> Result<BTreeMap<String, String>, SettingsError> {
        let health = self.health.as_ref();
        let o = InitOptions {
            no_init: false,
            restart: Some(init_policy(&self.restart)?),
            restart_delay: self.restart_delay.clone(),
            restart_max_delay: self.restart_max_delay.clone(),
            restart_limit: self.restart_limit.clone(),
            stop_timeout: Some(format!("{}s", self.stop_timeout)),
            health_cmd: health.map(|h| serde_json::to_string(&h.cmd).expect("strings serialise")),
            health_interval: health.and_then(|h| h.interval.clone()),
            health_timeout: health.and_then(|h| h.timeout.clone()),
            health_retries: health.and_then(|h| h.retries.clone()),
            health_start_period: health.and_then(|h| h.start_period.clone()),
            ..Default::default()
        };
        let mut a = init_annotations(&o)
            .map_err(|e| flag("restart or health option", "", e.to_string()))?;
        a.insert("rrun.init".into(), "true".into());
        Ok(a)
    }

    /// The `rrun app run` flags that make these settings (every field, so
    /// the result does not depend on defaults): `from_args` of them gives
    /// this spec back. Name, source and command are the caller's (they are
    /// positional or `--name`).
    pub fn to_args(&self) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        let mut put = |f: &str, v: String| {
            a.push(f.to_string());
            a.push(v);
        };
        for e in &self.env {
            put("--env", e.clone());
        }
        for p in &self.ports {
            put("--publish", p.clone());
        }
        for v in &self.volumes {
            let ro = if v.readonly { ":ro" } else { "" };
            put("--volume", format!("{}:{}{ro}", v.source, v.target));
        }
        for t in &self.tmpfs {
            match t.size {
                Some(n) => put("--tmpfs", format!("{}:size={n}", t.target)),
                None => put("--tmpfs", t.target.clone()),
            }
        }
        put("--network", self.network.clone());
        if let Some(m) = self.memory {
            put("--memory", m.to_string());
        }
        if let Some(c) = self.cpus {
            put("--cpus", c.to_string());
        }
        if let Some(p) = self.pids_limit {
            put("--pids-limit", p.to_string());
        }
        if let Some(u) = &self.user {
            put("--user", u.clone());
        }
        if let Some(w) = &self.workdir {
            put("--workdir", w.clone());
        }
        if let Some(e) = &self.entrypoint {
            put(
                "--entrypoint",
                serde_json::to_string(e).expect("strings serialise"),
            );
        }
        put("--restart", self.restart.clone());
        for (f, v) in [
            ("--restart-delay", &self.restart_delay),
            ("--restart-max-delay", &self.restart_max_delay),
            ("--restart-limit", &self.restart_limit),
        ] {
            if let Some(v) = v {
                put(f, v.clone());
            }
        }
        if let Some(h) = &self.health {
            // ["CMD", argv...] is taken as the argv itself, whatever it is.
            let mut cmd = vec!["CMD".to_string()];
            cmd.extend(h.cmd.iter().cloned());
            put(
                "--health-cmd",
                serde_json::to_string(&cmd).expect("strings serialise"),
            );
            for (f, v) in [
                ("--health-interval", &h.interval),
                ("--health-timeout", &h.timeout),
                ("--health-retries", &h.retries),
                ("--health-start-period", &h.start_period),
            ] {
                if let Some(v) = v {
                    put(f, v.clone());
                }
            }
        }
        if let Some(s) = &self.stop_signal {
            put("--stop-signal", s.clone());
        }
        put("--stop-timeout", self.stop_timeout.to_string());
        put("--log-max-size", self.log_max_size.to_string());
        put("--log-max-files", self.log_max_files.to_string());
        for (k, v) in &self.labels {
            put("--label", format!("{k}={v}"));
        }
        if let Some(h) = &self.hostname {
            put("--hostname", h.clone());
        }
        if self.read_only {
            a.push("--read-only".into());
        }
        a
    }

    /// A new app's settings from the command line.
    pub fn from_args(
        name: &str,
        source: &str,
        command: &[String],
        s: &Settings,
    ) -> Result<AppSpec, SettingsError> {
        check_name(name)?;
        let mut spec = AppSpec {
            name: name.to_string(),
            source: source.to_string(),
            command: command.to_vec(),
            network: "bridge".into(),
            restart: "no".into(),
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            log_max_size: DEFAULT_LOG_SIZE,
            log_max_files: DEFAULT_LOG_FILES,
            ..Default::default()
        };
        spec.apply(s, &[])?;
        Ok(spec)
    }

    /// Applies the flags given (an `update`, or a new app's flags); returns
    /// whether anything beyond the live resources changed.
    pub fn apply(&mut self, s: &Settings, env_rm: &[String]) -> Result<bool, SettingsError> {
        let before = self.clone();
        for f in &s.env_file {
            for e in read_env_file(f)? {
                set_env(&mut self.env, e);
            }
        }
        for e in &s.env {
            if let Some(e) = env_entry("--env", e)? {
                set_env(&mut self.env, e);
            }
        }
        for k in env_rm {
            self.env.retain(|e| e.split('=').next() != Some(k.as_str()));
        }
        if !s.publish.is_empty() {
            for p in &s.publish {
                super::network::parse_port(p).map_err(|e| flag("--publish", p, e.to_string()))?;
            }
            self.ports = s.publish.clone();
        }
        if !s.volume.is_empty() {
            self.volumes = s
                .volume
                .iter()
                .map(|v| parse_volume(v))
                .collect::<Result<_, _>>()?;
        }
        if !s.tmpfs.is_empty() {
            self.tmpfs = s
                .tmpfs
                .iter()
                .map(|t| parse_tmpfs(t))
                .collect::<Result<_, _>>()?;
        }
        if let Some(n) = &s.network {
            super::network::parse_mode(n).map_err(|e| flag("--network", n, e.to_string()))?;
            self.network = n.clone();
        }
        if let Some(m) = &s.memory {
            self.memory = Some(parse_size("--memory", m)?);
        }
        if let Some(c) = &s.cpus {
            self.cpus = Some(parse_cpus(c)?);
        }
        if let Some(p) = s.pids_limit {
            if p <= 0 {
                return Err(flag("--pids-limit", &p.to_string(), "must be above 0"));
            }
            self.pids_limit = Some(p);
        }
        if let Some(u) = &s.user {
            self.user = Some(u.clone());
        }
        if let Some(w) = &s.workdir {
            if !w.starts_with('/') {
                return Err(flag("--workdir", w, "must be an absolute path"));
            }
            self.workdir = Some(w.clone());
        }
        if let Some(e) = &s.entrypoint {
            self.entrypoint = Some(
                crate::image::config::parse_entrypoint(e)
                    .map_err(|err| flag("--entrypoint", e, err.to_string()))?,
            );
        }
        if s.read_only {
            self.read_only = true;
        }
        if let Some(r) = &s.restart {
            init_policy(r)?;
            self.restart = r.clone();
        }
        for (field, v) in [
            (&mut self.restart_delay, &s.restart_delay),
            (&mut self.restart_max_delay, &s.restart_max_delay),
            (&mut self.restart_limit, &s.restart_limit),
        ] {
            if v.is_some() {
                *field = v.clone();
            }
        }
        if let Some(c) = &s.health_cmd {
            self.health = parse_health_cmd(c)?.map(|cmd| Health {
                cmd,
                interval: None,
                timeout: None,
                retries: None,
                start_period: None,
            });
        }
        let health_opts = [
            &s.health_interval,
            &s.health_timeout,
            &s.health_retries,
            &s.health_start_period,
        ];
        match &mut self.health {
            Some(h) => {
                for (field, v) in [
                    (&mut h.interval, &s.health_interval),
                    (&mut h.timeout, &s.health_timeout),
                    (&mut h.retries, &s.health_retries),
                    (&mut h.start_period, &s.health_start_period),
                ] {
                    if v.is_some() {
                        *field = v.clone();
                    }
                }
            }
            None if health_opts.iter().any(|o| o.is_some()) => {
                return Err(flag("--health-*", "", "given without --health-cmd"));
            }
            None => {}
        }
        if let Some(sig) = &s.stop_signal {
            crate::commands::kill::parse_signal(sig)
                .map_err(|e| flag("--stop-signal", sig, e.to_string()))?;
            self.stop_signal = Some(sig.clone());
        }
        if let Some(t) = s.stop_timeout {
            self.stop_timeout = t;
        }
        if let Some(sz) = &s.log_max_size {
            self.log_max_size = parse_size("--log-max-size", sz)? as u64;
        }
        if let Some(n) = s.log_max_files {
            if n == 0 {
                return Err(flag("--log-max-files", "0", "must be at least 1"));
            }
            self.log_max_files = n;
        }
        for l in &s.label {
            let Some((k, v)) = l.split_once('=') else {
                return Err(flag("--label", l, "expected KEY=VALUE"));
            };
            if k.is_empty() {
                return Err(flag("--label", l, "empty key"));
            }
            self.labels.insert(k.to_string(), v.to_string());
        }
        if let Some(h) = &s.hostname {
            check_hostname(h)?;
            self.hostname = Some(h.clone());
        }
        // The init's own checks of durations, limits and the policy.
        self.init_annotations()?;
        let mut live = before.clone();
        live.memory = self.memory;
        live.cpus = self.cpus;
        live.pids_limit = self.pids_limit;
        Ok(live != *self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("web-1.a_b").is_ok());
        for bad in ["", "-x", ".x", "a/b", "a b", &"x".repeat(64)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(name_from_source("oci-archive:/tmp/my.app.tar:latest"), "my");
        assert_eq!(name_from_source("/srv/images/httpd.tar.gz"), "httpd");
        assert_eq!(name_from_source("oci:./layout:v1"), "layout");
        assert_eq!(name_from_source("/"), "app");
    }

    #[test]
    fn volumes_and_tmpfs() {
        assert_eq!(
            parse_volume("/srv/data:/data:ro").unwrap(),
            Volume {
                source: "/srv/data".into(),
                target: "/data".into(),
                readonly: true
            }
        );
        assert!(parse_volume("data:/data").unwrap().is_named());
        for bad in ["/a", "/a:b", "/a:/b:rx", "/a:/b/../c", ":/b", "a/b:/c"] {
            assert!(parse_volume(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_tmpfs("/run:size=1m").unwrap().size, Some(1 << 20));
        assert!(parse_tmpfs("run").is_err());
        assert!(parse_tmpfs("/run:mode=1").is_err());
    }

    #[test]
    fn health_commands_as_docker() {
        assert_eq!(
            parse_health_cmd("wget -q localhost").unwrap().unwrap(),
            ["/bin/sh", "-c", "wget -q localhost"]
        );
        assert_eq!(
            parse_health_cmd(r#"["CMD","true"]"#).unwrap().unwrap(),
            ["true"]
        );
        assert_eq!(
            parse_health_cmd(r#"["CMD-SHELL","exit 0"]"#)
                .unwrap()
                .unwrap(),
            ["/bin/sh", "-c", "exit 0"]
        );
        assert_eq!(parse_health_cmd(r#"["NONE"]"#).unwrap(), None);
        assert!(parse_health_cmd(r#"["CMD"]"#).is_err());
        assert!(parse_health_cmd("[1,2]").is_err());
    }

    #[test]
    fn restart_policies() {
        assert_eq!(init_policy("unless-stopped").unwrap(), "always");
        assert_eq!(init_policy("on-failure:3").unwrap(), "on-failure:3");
        for bad in ["on-failure:0", "sometimes", "always:2"] {
            assert!(init_policy(bad).is_err(), "{bad}");
        }
    }

    /// `rrun app run --name N <to_args> SOURCE CMD...` as clap parses it.
    fn reparse(spec: &AppSpec) -> AppSpec {
        use clap::Parser;
        #[derive(Parser)]
        struct Run {
            #[command(flatten)]
            run: super::super::cli::RunArgs,
        }
        let mut argv = vec!["run".to_string(), "--name".into(), spec.name.clone()];
        argv.extend(spec.to_args());
        argv.push(spec.source.clone());
        argv.extend(spec.command.iter().cloned());
        let r = Run::try_parse_from(&argv)
            .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
            .run;
        AppSpec::from_args(
            r.name.as_deref().unwrap(),
            &r.source,
            &r.command,
            &r.settings,
        )
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
    }

    #[test]
    fn to_args_round_trips_every_field() {
        let plain = AppSpec::from_args("a", "/x.tar", &[], &Settings::default()).unwrap();
        assert_eq!(reparse(&plain), plain);
        let full = AppSpec {
            name: "web-1".into(),
            source: "oci:/srv/img:v1".into(),
            command: vec!["--port".into(), "8080".into(), "a b".into(), "-x".into()],
            entrypoint: Some(vec!["/bin/sh".into(), "-c".into(), "exec \"$@\"".into()]),
            env: vec!["A=1".into(), "B=x=y z".into(), "EMPTY=".into()],
            ports: vec!["127.0.0.1:8080:80/tcp".into(), "53:53/udp".into()],
            volumes: vec![
                parse_volume("/srv/data:/data:ro").unwrap(),
                parse_volume("cache:/cache").unwrap(),
            ],
            tmpfs: vec![
                parse_tmpfs("/run:size=1m").unwrap(),
                parse_tmpfs("/tmp").unwrap(),
            ],
            network: "backend".into(),
            memory: Some(256 << 20),
            cpus: Some(0.3),
            pids_limit: Some(100),
            user: Some("1000:1000".into()),
            workdir: Some("/srv".into()),
            read_only: true,
            restart: "on-failure:3".into(),
            restart_delay: Some("200ms".into()),
            restart_max_delay: Some("10s".into()),
            restart_limit: Some("5/1m".into()),
            health: Some(Health {
                cmd: vec!["/bin/sh".into(), "-c".into(), "test -e /ready".into()],
                interval: Some("1s".into()),
                timeout: Some("2s".into()),
                retries: Some("4".into()),
                start_period: Some("3s".into()),
            }),
            stop_signal: Some("SIGINT".into()),
            stop_timeout: 3,
            log_max_size: 1 << 20,
            log_max_files: 2,
            labels: [
                ("k".to_string(), "v=w".to_string()),
                ("e".into(), String::new()),
            ]
            .into(),
            hostname: Some("web.local".into()),
            // No run flags (compose's): not part of the round trip.
            aliases: vec![],
            extra_hosts: vec![],
        };
        assert_eq!(reparse(&full), full);
        // A health check whose argv starts like a keyword stays that argv.
        let mut odd = full.clone();
        odd.health.as_mut().unwrap().cmd = vec!["NONE".into()];
        odd.entrypoint = Some(vec!["[x".into()]);
        assert_eq!(reparse(&odd), odd);
    }

    proptest::proptest! {
        /// Any printable strings in the free-form fields survive the trip.
        #[test]
        fn to_args_round_trips_strings(
            cmd in proptest::collection::vec("[ -~]{0,12}", 0..4),
            env in proptest::collection::vec("[A-Z]{1,4}=[ -~]{0,10}", 0..4),
            label in "[a-z]{1,5}=[ -~]{0,10}",
            health in proptest::collection::vec("[ -~]{1,10}", 1..3),
            user in "[a-z0-9:]{1,10}",
        ) {
            let s = Settings {
                env: env.clone(),
                label: vec![label],
                user: Some(user),
                health_cmd: Some(serde_json::to_string(
                    &std::iter::once("CMD".to_string()).chain(health).collect::<Vec<_>>(),
                ).unwrap()),
                ..Default::default()
            };
            let spec = AppSpec::from_args("p", "/img.tar", &cmd, &s).unwrap();
            proptest::prop_assert_eq!(reparse(&spec), spec);
        }
    }

    #[test]
    fn update_tells_live_from_recreate() {
        let mut spec = AppSpec::from_args("a", "x.tar", &[], &Settings::default()).unwrap();
        let mem = Settings {
            memory: Some("64m".into()),
            ..Default::default()
        };
        assert!(!spec.apply(&mem, &[]).unwrap());
        assert_eq!(spec.memory, Some(64 << 20));
        let env = Settings {
            env: vec!["A=1".into()],
            ..Default::default()
        };
        assert!(spec.apply(&env, &[]).unwrap());
        assert!(spec.apply(&Settings::default(), &["A".into()]).unwrap());
        assert!(spec.env.is_empty());
    }
}
