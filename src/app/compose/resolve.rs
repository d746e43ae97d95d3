//! From a compose file's (interpolated) tree to a Project: every key
//! checked against the subset rrun supports (anything else is an error
//! naming the key and its line; `x-` fields are ignored), every value in
//! each of its forms turned into the app's settings with the checks
//! `rrun app run` makes (settings.rs's parsers), names made (P-S apps, P_N
//! networks, P_V volumes), relative paths made absolute, the config-hash
//! computed, and the normalised file for `config`. Pure.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::file::absolute;
use super::model::*;
use super::yaml::{Key, Node, Out, Value};
use crate::app::settings::{self, AppSpec, Health, Tmpfs, Volume};

pub struct Context<'a> {
    /// The files as shown in errors, by index.
    pub files: &'a [String],
    pub abs_files: &'a [PathBuf],
    pub dir: &'a Path,
    pub project: &'a str,
    /// The variables (environment over env files): bare `environment` keys.
    pub vars: &'a BTreeMap<String, String>,
}

type R<T> = Result<T, ComposeError>;

const SERVICE_KEYS: &[&str] = &[
    "image",
    "build",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "ports",
    "volumes",
    "tmpfs",
    "networks",
    "network_mode",
    "depends_on",
    "healthcheck",
    "restart",
    "user",
    "working_dir",
    "read_only",
    "stop_signal",
    "stop_grace_period",
    "labels",
    "logging",
    "deploy",
    "mem_limit",
    "cpus",
    "pids_limit",
    "hostname",
    "extra_hosts",
    "init",
];

impl Context<'_> {
    fn err(&self, n: &Node, key: &str, msg: impl Display) -> ComposeError {
        self.err_line(n, n.line, key, msg)
    }

    fn err_line(&self, n: &Node, line: usize, key: &str, msg: impl Display) -> ComposeError {
        ComposeError::At {
            file: self.files.get(n.file).cloned().unwrap_or_default(),
            line,
            key: key.to_string(),
            msg: msg.to_string(),
        }
    }

    fn map<'n>(&self, n: &'n Node, key: &str) -> R<&'n [(Key, Node)]> {
        match &n.value {
            Value::Map(m) => Ok(m),
            _ if n.is_null() => Ok(&[]),
            _ => Err(self.err(n, key, format!("expected a mapping, not {}", n.kind()))),
        }
    }

    /// The entries of a mapping, each key checked against `allowed`.
    fn keys<'n>(
        &self,
        n: &'n Node,
        path: &str,
        allowed: &[&str],
    ) -> R<Vec<(&'n Key, &'n Node, String)>> {
        let mut out = Vec::new();
        for (k, v) in self.map(n, path)? {
            if k.name.starts_with("x-") {
                continue;
            }
            let p = join(path, &k.name);
            if !allowed.contains(&k.name.as_str()) {
                return Err(self.err_line(
                    v,
                    k.line,
                    &p,
                    "unknown key (not in the subset of the Compose Specification rrun supports)",
                ));
            }
            out.push((k, v, p));
        }
        Ok(out)
    }

    fn str<'n>(&self, n: &'n Node, key: &str) -> R<&'n str> {
        match &n.value {
            Value::Scalar(s, _) if !n.is_null() => Ok(s),
            _ => Err(self.err(n, key, format!("expected a string, not {}", n.kind()))),
        }
    }

    fn bool(&self, n: &Node, key: &str) -> R<bool> {
        match self.str(n, key)? {
            "true" | "True" | "TRUE" => Ok(true),
            "false" | "False" | "FALSE" => Ok(false),
            s => Err(self.err(n, key, format!("expected true or false, not {s:?}"))),
        }
    }

    fn seq<'n>(&self, n: &'n Node, key: &str) -> R<&'n [Node]> {
        match &n.value {
            Value::Seq(v) => Ok(v),
            _ if n.is_null() => Ok(&[]),
            _ => Err(self.err(n, key, format!("expected a list, not {}", n.kind()))),
        }
    }

    /// A string, or a list of strings.
    fn strings(&self, n: &Node, key: &str) -> R<Vec<String>> {
        match &n.value {
            Value::Seq(v) => v
                .iter()
                .enumerate()
                .map(|(i, x)| self.str(x, &format!("{key}[{i}]")).map(str::to_string))
                .collect(),
            _ => Ok(vec![self.str(n, key)?.to_string()]),
        }
    }

    /// A map of strings, or a list of KEY=VALUE (a bare KEY: `bare(KEY)`).
    fn kv(
        &self,
        n: &Node,
        key: &str,
        bare: &dyn Fn(&str) -> Option<String>,
    ) -> R<Vec<(String, String)>> {
        let mut out = Vec::new();
        match &n.value {
            Value::Seq(items) => {
                for (i, x) in items.iter().enumerate() {
                    let s = self.str(x, &format!("{key}[{i}]"))?;
                    match s.split_once('=') {
                        Some((k, v)) => out.push((k.to_string(), v.to_string())),
                        None => {
                            if let Some(v) = bare(s) {
                                out.push((s.to_string(), v));
                            }
                        }
                    }
                }
            }
            _ => {
                for (k, v) in self.map(n, key)? {
                    if v.is_null() {
                        if let Some(val) = bare(&k.name) {
                            out.push((k.name.clone(), val));
                        }
                    } else {
                        out.push((
                            k.name.clone(),
                            self.str(v, &join(key, &k.name))?.to_string(),
                        ));
                    }
                }
            }
        }
        for (k, _) in &out {
            if k.is_empty() || k.contains(['=', '\0']) {
                return Err(self.err(n, key, format!("invalid key {k:?}")));
            }
        }
        Ok(out)
    }

    fn duration(&self, n: &Node, key: &str) -> R<Duration> {
        let s = self.str(n, key)?;
        parse_duration(s).ok_or_else(|| {
            self.err(
                n,
                key,
                format!("invalid duration {s:?} (e.g. 1m30s, 10s, 500ms)"),
            )
        })
    }

    fn size(&self, n: &Node, key: &str) -> R<i64> {
        let s = self.str(n, key)?;
        settings::parse_size("size", s).map_err(|_| {
            self.err(
                n,
                key,
                format!("invalid size {s:?} (e.g. 512m, 1g, or a number of bytes)"),
            )
        })
    }

    fn settings_err(&self, n: &Node, key: &str, e: settings::SettingsError) -> ComposeError {
        self.err(n, key, e)
    }
}

fn join(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}

/// A Go-style duration as compose takes it: "1m30s", "10s", "500ms",
/// "1h", "1.5s" (units h, m, s, ms, us, ns).
pub fn parse_duration(s: &str) -> Option<Duration> {
    if s.is_empty() {
        return None;
    }
    let mut rest = s;
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let (num, after) = rest.split_at(n);
        let num: f64 = num.parse().ok()?;
        let u = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(u);
        let mult = match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += num * mult;
        rest = next;
    }
    if !total.is_finite() || total > 1e9 {
        return None;
    }
    Some(Duration::from_secs_f64(total))
}

/// A duration as the init's annotations take it (whole milliseconds, or
/// seconds when whole).
fn init_duration(d: Duration) -> String {
    let ms = d.as_nanos().div_ceil(1_000_000);
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Splits a command line as a shell would, without expanding anything:
/// blanks separate words, quotes group, a backslash escapes.
pub fn split_words(s: &str) -> Result<Vec<String>, &'static str> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("unterminated single quote"),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => cur.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err("unterminated double quote"),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("unterminated double quote"),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(c) => cur.push(c),
                    None => return Err("a backslash at the end"),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// The top-level `name:`, if any.
pub fn top_level_name(doc: &Node, files: &[String]) -> R<Option<String>> {
    let Value::Map(m) = &doc.value else {
        return Ok(None);
    };
    match m.iter().find(|(k, _)| k.name == "name") {
        Some((_, v)) if !v.is_null() => match v.scalar() {
            Some(s) if !s.is_empty() => Ok(Some(s.to_string())),
            _ => Err(ComposeError::At {
                file: files.get(v.file).cloned().unwrap_or_default(),
                line: v.line,
                key: "name".into(),
                msg: "expected the project's name".into(),
            }),
        },
        _ => Ok(None),
    }
}

/// How an `image:` is read: rrun's sources with relative paths made
/// absolute, or a registry reference.
fn image_source(image: &str, dir: &Path) -> (String, Option<String>) {
    for prefix in ["oci:", "oci-archive:", "docker-archive:"] {
        if let Some(rest) = image.strip_prefix(prefix) {
            let (path, reference) = match rest.split_once(':') {
                Some((p, r)) => (p, Some(r)),
                None => (rest, None),
            };
            let abs = absolute(dir, Path::new(path));
            let mut s = format!("{prefix}{}", abs.display());
            if let Some(r) = reference {
                s = format!("{s}:{r}");
            }
            return (s, None);
        }
    }
    let looks_like_path = image.starts_with(['/', '.'])
        || [".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.xz"]
            .iter()
            .any(|e| image.ends_with(e))
        || dir.join(image).exists();
    if looks_like_path {
        (absolute(dir, Path::new(image)).display().to_string(), None)
    } else {
        (image.to_string(), Some(image.to_string()))
    }
}

struct Dep {
    dep: Dependency,
    node: Node,
    line: usize,
}

struct Resolved {
    service: Service,
    deps: Vec<Dep>,
    /// The network's key in the file, when the service is on a network.
    network_key: Option<String>,
    out: Vec<(String, Out)>,
}

pub fn resolve(doc: &Node, cx: &Context) -> R<Project> {
    let top = cx
        .keys(
            doc,
            "",
            &["version", "name", "services", "networks", "volumes"],
        )
        .map_err(|e| match e {
            ComposeError::At {
                file, line, key, ..
            } if matches!(key.as_str(), "configs" | "secrets" | "include") => ComposeError::At {
                file,
                line,
                key,
                msg: "not supported by rrun".into(),
            },
            e => e,
        })?;
    let get = |name: &str| {
        top.iter()
            .find(|(k, _, _)| k.name == name)
            .map(|(_, v, _)| *v)
    };

    // Declared networks and volumes.
    let mut networks: BTreeMap<String, NetworkDef> = BTreeMap::new();
    if let Some(n) = get("networks") {
        for (k, v) in cx.map(n, "networks")? {
            if k.name.starts_with("x-") {
                continue;
            }
            networks.insert(k.name.clone(), network_def(cx, &k.name, v)?);
        }
    }
    let mut volumes: BTreeMap<String, VolumeDef> = BTreeMap::new();
    if let Some(n) = get("volumes") {
        for (k, v) in cx.map(n, "volumes")? {
            if k.name.starts_with("x-") {
                continue;
            }
            volumes.insert(k.name.clone(), volume_def(cx, &k.name, v)?);
        }
    }

    let services_node = get("services").ok_or_else(|| ComposeError::At {
        file: cx.files.first().cloned().unwrap_or_default(),
        line: doc.line,
        key: "services".into(),
        msg: "no services defined".into(),
    })?;
    let mut resolved: Vec<Resolved> = Vec::new();
    for (k, v) in cx.map(services_node, "services")? {
        if k.name.starts_with("x-") {
            continue;
        }
        resolved.push(service(cx, &k.name, k.line, v, &networks, &volumes)?);
    }
    if resolved.is_empty() {
        return Err(cx.err(services_node, "services", "no services defined"));
    }

    // Dependencies name services of the file.
    let names: Vec<String> = resolved.iter().map(|r| r.service.name.clone()).collect();
    for r in &resolved {
        for d in &r.deps {
            if !names.contains(&d.dep.service) {
                return Err(cx.err_line(
                    &d.node,
                    d.line,
                    &format!("services.{}.depends_on", r.service.name),
                    format!("unknown service {}", d.dep.service),
                ));
            }
        }
    }
    let waited_for: Vec<String> = resolved
        .iter()
        .flat_map(|r| r.deps.iter())
        .filter(|d| d.dep.condition == Condition::CompletedSuccessfully)
        .map(|d| d.dep.service.clone())
        .collect();

    // The default network, when some service is on it.
    if resolved
        .iter()
        .any(|r| r.network_key.as_deref() == Some("default"))
        && !networks.contains_key("default")
    {
        networks.insert(
            "default".into(),
            NetworkDef {
                name: format!("{}_default", cx.project),
                external: false,
                subnet: None,
            },
        );
    }

    let files = cx
        .abs_files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut services = BTreeMap::new();
    let mut order = Vec::new();
    let mut out_services = Vec::new();
    for mut r in resolved {
        let s = &mut r.service;
        s.one_shot = s.app.restart == "no" && waited_for.contains(&s.name);
        if let Some(k) = &r.network_key {
            s.app.network = networks[k].name.clone();
            r.out
                .push(("networks".into(), Out::Seq(vec![Out::str(k.clone())])));
        }
        s.depends_on = r.deps.iter().map(|d| d.dep.clone()).collect();
        s.hash = hash(&s.app, &s.depends_on);
        let l = &mut s.app.labels;
        l.insert(LABEL_PROJECT.into(), cx.project.into());
        l.insert(LABEL_SERVICE.into(), s.name.clone());
        l.insert(LABEL_HASH.into(), s.hash.clone());
        l.insert(LABEL_FILES.into(), files.clone());
        l.insert(LABEL_DIR.into(), cx.dir.display().to_string());
        l.insert(
            LABEL_DEPENDS_ON.into(),
            s.depends_on
                .iter()
                .map(|d| format!("{}:{}:{}", d.service, d.condition.as_str(), d.restart))
                .collect::<Vec<_>>()
                .join(","),
        );
        order.push(s.name.clone());
        out_services.push((s.name.clone(), Out::Map(r.out)));
        services.insert(r.service.name.clone(), r.service);
    }

    let mut out = vec![("name".to_string(), Out::str(cx.project))];
    out.push(("services".into(), Out::Map(out_services)));
    if !networks.is_empty() {
        out.push((
            "networks".into(),
            Out::Map(
                networks
                    .iter()
                    .map(|(k, n)| {
                        let mut m = vec![("name".to_string(), Out::str(n.name.clone()))];
                        if n.external {
                            m.push(("external".into(), Out::Bool(true)));
                        }
                        if let Some(s) = &n.subnet {
                            m.push((
                                "ipam".into(),
                                Out::Map(vec![(
                                    "config".into(),
                                    Out::Seq(vec![Out::Map(vec![(
                                        "subnet".into(),
                                        Out::str(s.clone()),
                                    )])]),
                                )]),
                            ));
                        }
                        (k.clone(), Out::Map(m))
                    })
                    .collect(),
            ),
        ));
    }
    if !volumes.is_empty() {
        out.push((
            "volumes".into(),
            Out::Map(
                volumes
                    .iter()
                    .map(|(k, v)| {
                        let mut m = vec![("name".to_string(), Out::str(v.name.clone()))];
                        if v.external {
                            m.push(("external".into(), Out::Bool(true)));
                        }
                        (k.clone(), Out::Map(m))
                    })
                    .collect(),
            ),
        ));
    }

    Ok(Project {
        name: cx.project.to_string(),
        dir: cx.dir.to_path_buf(),
        files: cx.abs_files.to_vec(),
        services,
        service_order: order,
        networks,
        volumes,
        resolved_yaml: super::yaml::to_string(&Out::Map(out)),
        warnings: Vec::new(),
    })
}

/// sha256 of the service's resolved definition (without the compose
/// labels, which name files and directories, not what runs).
fn hash(app: &AppSpec, deps: &[Dependency]) -> String {
    let mut a = app.clone();
    a.labels
        .retain(|k, _| !k.starts_with("com.docker.compose."));
    let deps: Vec<String> = deps
        .iter()
        .map(|d| {
            format!(
                "{}:{}:{}:{}",
                d.service,
                d.condition.as_str(),
                d.restart,
                d.required
            )
        })
        .collect();
    let text = serde_json::to_vec(&(a, deps)).expect("an AppSpec serialises");
    Sha256::digest(&text)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn network_def(cx: &Context, key: &str, n: &Node) -> R<NetworkDef> {
    let path = format!("networks.{key}");
    let mut def = NetworkDef {
        name: format!("{}_{key}", cx.project),
        external: false,
        subnet: None,
    };
    let mut given_name = None;
    for (_, v, p) in cx.keys(n, &path, &["name", "external", "driver", "ipam"])? {
        match p.rsplit('.').next().unwrap_or("") {
            "name" => given_name = Some(cx.str(v, &p)?.to_string()),
            "external" => def.external = cx.bool(v, &p)?,
            "driver" => {
                let d = cx.str(v, &p)?;
                if d != "bridge" {
                    return Err(cx.err(
                        v,
                        &p,
                        format!("driver {d:?}: rrun's networks are bridges"),
                    ));
                }
            }
            _ => {
                for (_, iv, ip) in cx.keys(v, &p, &["driver", "config"])? {
                    if ip.ends_with(".driver") {
                        let d = cx.str(iv, &ip)?;
                        if d != "default" {
                            return Err(cx.err(
                                iv,
                                &ip,
                                format!("ipam driver {d:?}: only default"),
                            ));
                        }
                        continue;
                    }
                    let configs = cx.seq(iv, &ip)?;
                    if configs.len() > 1 {
                        return Err(cx.err(iv, &ip, "rrun's networks have one subnet"));
                    }
                    for c in configs {
                        for (_, sv, sp) in cx.keys(c, &ip, &["subnet"])? {
                            let s = cx.str(sv, &sp)?;
                            def.subnet = Some(s.to_string());
                        }
                    }
                }
            }
        }
    }
    if def.external {
        def.name = given_name.unwrap_or_else(|| key.to_string());
        if def.subnet.is_some() {
            return Err(cx.err(
                n,
                &path,
                "an external network's subnet is not the project's to set",
            ));
        }
    } else if let Some(g) = given_name {
        def.name = g;
    }
    crate::app::network::validate_name(&def.name).map_err(|e| cx.err(n, &path, e))?;
    Ok(def)
}

fn volume_def(cx: &Context, key: &str, n: &Node) -> R<VolumeDef> {
    let path = format!("volumes.{key}");
    let mut def = VolumeDef {
        name: format!("{}_{key}", cx.project),
        external: false,
    };
    let mut given_name = None;
    for (_, v, p) in cx.keys(n, &path, &["name", "external", "driver"])? {
        match p.rsplit('.').next().unwrap_or("") {
            "name" => given_name = Some(cx.str(v, &p)?.to_string()),
            "external" => def.external = cx.bool(v, &p)?,
            _ => {
                let d = cx.str(v, &p)?;
                if d != "local" {
                    return Err(cx.err(v, &p, format!("driver {d:?}: rrun's volumes are local")));
                }
            }
        }
    }
    if let Some(g) = given_name {
        def.name = g;
    } else if def.external {
        def.name = key.to_string();
    }
    settings::check_name(&def.name).map_err(|e| cx.err(n, &path, e))?;
    Ok(def)
}

fn service(
    cx: &Context,
    name: &str,
    line: usize,
    n: &Node,
    networks: &BTreeMap<String, NetworkDef>,
    volumes: &BTreeMap<String, VolumeDef>,
) -> R<Resolved> {
    let sp = format!("services.{name}");
    if !matches!(n.value, Value::Map(_)) {
        return Err(cx.err(n, &sp, format!("expected a mapping, not {}", n.kind())));
    }
    let app_name = format!("{}-{name}", cx.project);
    settings::check_name(&app_name).map_err(|_| {
        cx.err_line(n, line, &sp, format!("the app name {app_name:?} is not valid: use letters, digits, '_', '.', '-' (at most 63 with the project's name)"))
    })?;
    let mut app = AppSpec {
        name: app_name,
        network: String::new(),
        restart: "no".into(),
        stop_timeout: settings::DEFAULT_STOP_TIMEOUT,
        log_max_size: settings::DEFAULT_LOG_SIZE,
        log_max_files: settings::DEFAULT_LOG_FILES,
        aliases: vec![name.to_string()],
        ..Default::default()
    };
    let mut out: Vec<(String, Out)> = Vec::new();
    let mut registry_ref = None;
    let mut env_from_files: Vec<String> = Vec::new();
    let mut env: Vec<(String, String)> = Vec::new();
    let mut deps = Vec::new();
    let mut network_key = Some("default".to_string());
    let mut network_mode: Option<(String, &Node)> = None;
    let mut networks_node: Option<&Node> = None;
    let mut mem_limit: Option<(i64, &Node)> = None;
    let mut cpus: Option<(f64, &Node)> = None;
    let mut pids: Option<(i64, &Node)> = None;
    let mut image_seen = false;
    let mut health_out = None;
    let bare = |k: &str| cx.vars.get(k).cloned();

    for (k, v, p) in cx.keys(n, &sp, SERVICE_KEYS)? {
        match k.name.as_str() {
            "image" => {
                let img = cx.str(v, &p)?;
                let (src, reg) = image_source(img, cx.dir);
                out.push(("image".into(), Out::str(src.clone())));
                app.source = src;
                registry_ref = reg;
                image_seen = true;
            }
            "build" => {
                return Err(cx.err_line(v, k.line, &p, "rrun does not build images; build it with podman or buildah and point image: at the result"));
            }
            "command" | "entrypoint" => {
                let words = match &v.value {
                    Value::Seq(_) => cx.strings(v, &p)?,
                    _ if v.is_null() => Vec::new(),
                    _ => split_words(cx.str(v, &p)?).map_err(|e| cx.err(v, &p, e))?,
                };
                out.push((k.name.clone(), Out::Seq(words.iter().cloned().map(Out::Str).collect())));
                if k.name == "command" {
                    app.command = words;
                } else {
                    app.entrypoint = Some(words);
                }
            }
            "environment" => env.extend(cx.kv(v, &p, &bare)?),
            "env_file" => {
                let items: Vec<&Node> = match &v.value {
                    Value::Seq(items) => items.iter().collect(),
                    _ => vec![v],
                };
                for item in items {
                    let (path, required) = match &item.value {
                        Value::Map(_) => {
                            let mut path = None;
                            let mut required = true;
                            for (_, fv, fp) in cx.keys(item, &p, &["path", "required"])? {
                                if fp.ends_with(".path") {
                                    path = Some(cx.str(fv, &fp)?.to_string());
                                } else {
                                    required = cx.bool(fv, &fp)?;
                                }
                            }
                            (path.ok_or_else(|| cx.err(item, &p, "path is required"))?, required)
                        }
                        _ => (cx.str(item, &p)?.to_string(), true),
                    };
                    let abs = absolute(cx.dir, Path::new(&path));
                    if !required && !abs.exists() {
                        continue;
                    }
                    let lines = settings::read_env_file(&abs).map_err(|e| cx.settings_err(item, &p, e))?;
                    env_from_files.extend(lines);
                }
            }
            "ports" => {
                let mut ports = Vec::new();
                for (i, item) in cx.seq(v, &p)?.iter().enumerate() {
                    let ip = format!("{p}[{i}]");
                    let s = port(cx, item, &ip)?;
                    crate::app::network::parse_port(&s).map_err(|e| cx.err(item, &ip, e))?;
                    ports.push(s);
                }
                out.push(("ports".into(), Out::Seq(ports.iter().cloned().map(Out::Str).collect())));
                app.ports = ports;
            }
            "volumes" => {
                let mut outv = Vec::new();
                for (i, item) in cx.seq(v, &p)?.iter().enumerate() {
                    let ip = format!("{p}[{i}]");
                    match mount(cx, item, &ip, volumes)? {
                        Mount::Volume(vol, shown) => {
                            outv.push(Out::str(format!(
                                "{shown}:{}{}",
                                vol.target,
                                if vol.readonly { ":ro" } else { "" }
                            )));
                            app.volumes.push(vol);
                        }
                        Mount::Tmpfs(t) => app.tmpfs.push(t),
                    }
                }
                out.push(("volumes".into(), Out::Seq(outv)));
            }
            "tmpfs" => {
                for (i, t) in cx.strings(v, &p)?.iter().enumerate() {
                    app.tmpfs.push(settings::parse_tmpfs(t).map_err(|e| cx.err(v, &format!("{p}[{i}]"), e))?);
                }
            }
            "networks" => networks_node = Some(v),
            "network_mode" => network_mode = Some((cx.str(v, &p)?.to_string(), v)),
            "depends_on" => deps = depends_on(cx, v, &p)?,
            "healthcheck" => {
                let (h, o) = healthcheck(cx, v, &p)?;
                app.health = h;
                health_out = o;
            }
            "restart" => {
                let r = cx.str(v, &p)?;
                settings::init_policy(r).map_err(|e| cx.settings_err(v, &p, e))?;
                app.restart = r.to_string();
            }
            "user" => app.user = Some(cx.str(v, &p)?.to_string()),
            "working_dir" => {
                let w = cx.str(v, &p)?;
                if !w.starts_with('/') {
                    return Err(cx.err(v, &p, "must be an absolute path"));
                }
                app.workdir = Some(w.to_string());
            }
            "read_only" => app.read_only = cx.bool(v, &p)?,
            "stop_signal" => {
                let s = cx.str(v, &p)?;
                crate::commands::kill::parse_signal(s).map_err(|e| cx.err(v, &p, e))?;
                app.stop_signal = Some(s.to_string());
            }
            "stop_grace_period" => app.stop_timeout = cx.duration(v, &p)?.as_secs_f64().ceil() as u64,
            "labels" => {
                for (lk, lv) in cx.kv(v, &p, &|_| Some(String::new()))? {
                    if lk.starts_with("com.docker.compose.") {
                        return Err(cx.err(v, &p, format!("label {lk} is set by rrun")));
                    }
                    app.labels.insert(lk, lv);
                }
            }
            "logging" => logging(cx, v, &p, &mut app)?,
            "deploy" => {
                for (_, dv, dp) in cx.keys(v, &p, &["resources"])? {
                    for (_, rv, rp) in cx.keys(dv, &dp, &["limits"])? {
                        for (lk, lv, lp) in cx.keys(rv, &rp, &["cpus", "memory", "pids"])? {
                            match lk.name.as_str() {
                                "cpus" => cpus = Some((cpus_of(cx, lv, &lp)?, lv)),
                                "memory" => mem_limit = Some((cx.size(lv, &lp)?, lv)),
                                _ => pids = pids_of(cx, lv, &lp)?.map(|x| (x, lv)),
                            }
                        }
                    }
                }
            }
            "mem_limit" => {
                let m = cx.size(v, &p)?;
                if mem_limit.is_some_and(|(x, _)| x != m) {
                    return Err(cx.err(v, &p, "differs from deploy.resources.limits.memory"));
                }
                mem_limit = Some((m, v));
            }
            "cpus" => {
                let c = cpus_of(cx, v, &p)?;
                if cpus.is_some_and(|(x, _)| x != c) {
                    return Err(cx.err(v, &p, "differs from deploy.resources.limits.cpus"));
                }
                cpus = Some((c, v));
            }
            "pids_limit" => {
                let x = pids_of(cx, v, &p)?;
                if pids.is_some_and(|(y, _)| Some(y) != x) {
                    return Err(cx.err(v, &p, "differs from deploy.resources.limits.pids"));
                }
                pids = x.map(|x| (x, v));
            }
            "hostname" => {
                let h = cx.str(v, &p)?;
                settings::check_hostname(h).map_err(|e| cx.settings_err(v, &p, e))?;
                app.hostname = Some(h.to_string());
            }
            "extra_hosts" => {
                let pairs: Vec<(String, String)> = match &v.value {
                    Value::Map(_) => cx.kv(v, &p, &|_| None)?,
                    _ => cx
                        .strings(v, &p)?
                        .iter()
                        .map(|h| {
                            h.split_once(['=', ':'])
                                .map(|(a, b)| (a.to_string(), b.to_string()))
                                .ok_or_else(|| cx.err(v, &p, format!("{h:?}: expected NAME:IP")))
                        })
                        .collect::<R<_>>()?,
                };
                for (h, ip) in pairs {
                    let ip = ip.trim_start_matches('[').trim_end_matches(']');
                    if h.is_empty() || h.contains(char::is_whitespace) || ip.parse::<std::net::IpAddr>().is_err() {
                        return Err(cx.err(v, &p, format!("{h}:{ip}: expected NAME:IP")));
                    }
                    app.extra_hosts.push(format!("{h}:{ip}"));
                }
                out.push(("extra_hosts".into(), Out::Seq(app.extra_hosts.iter().cloned().map(Out::Str).collect())));
            }
            // rrun's apps always have rrun's init as their PID 1.
            _ /* init */ => {
                cx.bool(v, &p)?;
            }
        }
    }
    if !image_seen {
        return Err(cx.err_line(n, line, &sp, "image is required"));
    }

    // Networks: one per service.
    match (network_mode, networks_node) {
        (Some((_, m)), Some(_)) => {
            return Err(cx.err(
                m,
                &format!("{sp}.network_mode"),
                "network_mode and networks exclude each other",
            ));
        }
        (Some((mode, m)), None) => {
            network_key = None;
            app.network = match mode.as_str() {
                "host" | "none" | "bridge" => mode.clone(),
                _ => {
                    return Err(cx.err(
                        m,
                        &format!("{sp}.network_mode"),
                        format!("{mode:?}: rrun takes host, none or bridge"),
                    ));
                }
            };
            out.push(("network_mode".into(), Out::str(mode)));
        }
        (None, Some(nn)) => {
            let np = format!("{sp}.networks");
            let keys: Vec<(String, &Node, usize)> = match &nn.value {
                Value::Seq(items) => items
                    .iter()
                    .map(|i| cx.str(i, &np).map(|s| (s.to_string(), i, i.line)))
                    .collect::<R<_>>()?,
                _ => {
                    let mut v = Vec::new();
                    for (k, val, p) in cx
                        .keys(
                            nn,
                            &np,
                            &networks
                                .keys()
                                .map(String::as_str)
                                .chain(["default"])
                                .collect::<Vec<_>>(),
                        )
                        .map_err(|e| match e {
                            ComposeError::At {
                                file, line, key, ..
                            } => ComposeError::At {
                                file,
                                line,
                                msg: "unknown network (declare it under the top-level networks:)"
                                    .into(),
                                key,
                            },
                            e => e,
                        })?
                    {
                        // Aliases beyond the service's name: none (one
                        // name per service, in its network).
                        cx.keys(val, &p, &[])?;
                        v.push((k.name.clone(), val, k.line));
                    }
                    v
                }
            };
            if keys.len() > 1 {
                return Err(cx.err_line(
                    nn,
                    keys[1].2,
                    &np,
                    "rrun puts an app on one network: list one",
                ));
            }
            match keys.first() {
                None => {}
                Some((k, node, l)) => {
                    if k != "default" && !networks.contains_key(k) {
                        return Err(cx.err_line(
                            node,
                            *l,
                            &np,
                            format!(
                                "unknown network {k} (declare it under the top-level networks:)"
                            ),
                        ));
                    }
                    network_key = Some(k.clone());
                }
            }
        }
        (None, None) => {}
    }

    // env files first, then `environment`, later ones winning.
    for e in env_from_files {
        settings::set_env(&mut app.env, e);
    }
    for (k, v) in &env {
        settings::set_env(&mut app.env, format!("{k}={v}"));
    }
    if !app.env.is_empty() {
        out.push((
            "environment".into(),
            Out::Map(
                app.env
                    .iter()
                    .map(|e| {
                        let (k, v) = e.split_once('=').unwrap_or((e, ""));
                        (k.to_string(), Out::str(v))
                    })
                    .collect(),
            ),
        ));
    }
    app.memory = mem_limit.map(|(m, _)| m);
    app.cpus = cpus.map(|(c, _)| c);
    app.pids_limit = pids.map(|(p, _)| p);

    if !deps.is_empty() {
        out.push((
            "depends_on".into(),
            Out::Map(
                deps.iter()
                    .map(|d: &Dep| {
                        (
                            d.dep.service.clone(),
                            Out::Map(vec![
                                ("condition".into(), Out::str(d.dep.condition.as_str())),
                                ("restart".into(), Out::Bool(d.dep.restart)),
                                ("required".into(), Out::Bool(d.dep.required)),
                            ]),
                        )
                    })
                    .collect(),
            ),
        ));
    }
    if let Some(h) = health_out {
        out.push(("healthcheck".into(), h));
    }
    if !app.tmpfs.is_empty() {
        out.push((
            "tmpfs".into(),
            Out::Seq(
                app.tmpfs
                    .iter()
                    .map(|t| {
                        Out::str(match t.size {
                            Some(s) => format!("{}:size={s}", t.target),
                            None => t.target.clone(),
                        })
                    })
                    .collect(),
            ),
        ));
    }
    out.push(("restart".into(), Out::str(app.restart.clone())));
    for (k, v) in [
        ("user", &app.user),
        ("working_dir", &app.workdir),
        ("stop_signal", &app.stop_signal),
        ("hostname", &app.hostname),
    ] {
        if let Some(v) = v {
            out.push((k.into(), Out::str(v.clone())));
        }
    }
    if app.read_only {
        out.push(("read_only".into(), Out::Bool(true)));
    }
    out.push((
        "stop_grace_period".into(),
        Out::str(format!("{}s", app.stop_timeout)),
    ));
    if !app.labels.is_empty() {
        out.push((
            "labels".into(),
            Out::Map(
                app.labels
                    .iter()
                    .map(|(k, v)| (k.clone(), Out::str(v.clone())))
                    .collect(),
            ),
        ));
    }
    out.push((
        "logging".into(),
        Out::Map(vec![
            ("driver".into(), Out::str("json-file")),
            (
                "options".into(),
                Out::Map(vec![
                    ("max-size".into(), Out::str(app.log_max_size.to_string())),
                    ("max-file".into(), Out::str(app.log_max_files.to_string())),
                ]),
            ),
        ]),
    ));
    let mut limits = Vec::new();
    if let Some(c) = app.cpus {
        limits.push(("cpus".to_string(), Out::Float(c)));
    }
    if let Some(m) = app.memory {
        limits.push(("memory".to_string(), Out::Int(m)));
    }
    if let Some(p) = app.pids_limit {
        limits.push(("pids".to_string(), Out::Int(p)));
    }
    if !limits.is_empty() {
        out.push((
            "deploy".into(),
            Out::Map(vec![(
                "resources".into(),
                Out::Map(vec![("limits".into(), Out::Map(limits))]),
            )]),
        ));
    }

    // What `rrun app run` would refuse (the policy with the health
    // settings, durations the init checks) is refused here too.
    app.init_annotations()
        .map_err(|e| cx.err_line(n, line, &sp, e))?;

    Ok(Resolved {
        service: Service {
            name: name.to_string(),
            app,
            depends_on: Vec::new(),
            hash: String::new(),
            one_shot: false,
            registry_ref,
        },
        deps,
        network_key,
        out,
    })
}

fn cpus_of(cx: &Context, n: &Node, p: &str) -> R<f64> {
    settings::parse_cpus(cx.str(n, p)?).map_err(|e| cx.settings_err(n, p, e))
}

/// pids: N > 0, or -1/0 for no limit.
fn pids_of(cx: &Context, n: &Node, p: &str) -> R<Option<i64>> {
    let s = cx.str(n, p)?;
    match s.parse::<i64>() {
        Ok(x) if x > 0 => Ok(Some(x)),
        Ok(-1 | 0) => Ok(None),
        _ => Err(cx.err(
            n,
            p,
            format!("invalid pids limit {s:?}: a number above 0, or -1 for none"),
        )),
    }
}

fn logging(cx: &Context, n: &Node, p: &str, app: &mut AppSpec) -> R<()> {
    for (k, v, kp) in cx.keys(n, p, &["driver", "options"])? {
        if k.name == "driver" {
            let d = cx.str(v, &kp)?;
            if !matches!(d, "json-file" | "local") {
                return Err(cx.err(
                    v,
                    &kp,
                    format!("driver {d:?}: rrun keeps its own log files (json-file or local)"),
                ));
            }
            continue;
        }
        for (ok, ov, op) in cx.keys(v, &kp, &["max-size", "max-file"])? {
            if ok.name == "max-size" {
                app.log_max_size = cx.size(ov, &op)? as u64;
            } else {
                let s = cx.str(ov, &op)?;
                app.log_max_files = s
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| cx.err(ov, &op, format!("invalid number of files {s:?}")))?;
            }
        }
    }
    Ok(())
}

fn depends_on(cx: &Context, n: &Node, p: &str) -> R<Vec<Dep>> {
    let mut out = Vec::new();
    match &n.value {
        Value::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                out.push(Dep {
                    dep: Dependency {
                        service: cx.str(item, &format!("{p}[{i}]"))?.to_string(),
                        condition: Condition::Started,
                        restart: false,
                        required: true,
                    },
                    node: item.clone(),
                    line: item.line,
                });
            }
        }
        _ => {
            for (k, v) in cx.map(n, p)? {
                let kp = join(p, &k.name);
                let mut dep = Dependency {
                    service: k.name.clone(),
                    condition: Condition::Started,
                    restart: false,
                    required: true,
                };
                for (dk, dv, dp) in cx.keys(v, &kp, &["condition", "restart", "required"])? {
                    match dk.name.as_str() {
                        "condition" => {
                            let c = cx.str(dv, &dp)?;
                            dep.condition = Condition::parse(c).ok_or_else(|| {
                                cx.err(dv, &dp, format!("unknown condition {c:?} (service_started, service_healthy or service_completed_successfully)"))
                            })?;
                        }
                        "restart" => dep.restart = cx.bool(dv, &dp)?,
                        _ => dep.required = cx.bool(dv, &dp)?,
                    }
                }
                out.push(Dep {
                    dep,
                    node: v.clone(),
                    line: k.line,
                });
            }
        }
    }
    for (i, d) in out.iter().enumerate() {
        if out[..i].iter().any(|o| o.dep.service == d.dep.service) {
            return Err(cx.err_line(
                &d.node,
                d.line,
                p,
                format!("{} listed twice", d.dep.service),
            ));
        }
    }
    Ok(out)
}

fn healthcheck(cx: &Context, n: &Node, p: &str) -> R<(Option<Health>, Option<Out>)> {
    let entries = cx.keys(
        n,
        p,
        &[
            "test",
            "interval",
            "timeout",
            "retries",
            "start_period",
            "disable",
        ],
    )?;
    let mut cmd: Option<Option<Vec<String>>> = None;
    let mut h = Health {
        cmd: Vec::new(),
        interval: None,
        timeout: None,
        retries: None,
        start_period: None,
    };
    let mut out = Vec::new();
    let mut disabled = false;
    for (k, v, kp) in entries {
        match k.name.as_str() {
            "test" => {
                let c = match &v.value {
                    Value::Seq(_) => {
                        let argv = cx.strings(v, &kp)?;
                        if !matches!(
                            argv.first().map(String::as_str),
                            Some("CMD" | "CMD-SHELL" | "NONE")
                        ) {
                            return Err(cx.err(
                                v,
                                &kp,
                                "a list starts with CMD, CMD-SHELL or NONE",
                            ));
                        }
                        serde_json::to_string(&argv).expect("strings serialise")
                    }
                    _ => cx.str(v, &kp)?.to_string(),
                };
                cmd = Some(settings::parse_health_cmd(&c).map_err(|e| cx.settings_err(v, &kp, e))?);
            }
            "disable" => disabled = cx.bool(v, &kp)?,
            "retries" => {
                let s = cx.str(v, &kp)?;
                if s.parse::<u32>().is_err() {
                    return Err(cx.err(v, &kp, format!("invalid number {s:?}")));
                }
                h.retries = Some(s.to_string());
                out.push(("retries".to_string(), Out::str(s)));
            }
            name => {
                let d = init_duration(cx.duration(v, &kp)?);
                out.push((name.to_string(), Out::str(d.clone())));
                let field = match name {
                    "interval" => &mut h.interval,
                    "timeout" => &mut h.timeout,
                    _ => &mut h.start_period,
                };
                *field = Some(d);
            }
        }
    }
    if disabled {
        return Ok((
            None,
            Some(Out::Map(vec![("disable".into(), Out::Bool(true))])),
        ));
    }
    match cmd {
        None => Err(cx.err(n, p, "test is required (or disable: true)")),
        Some(None) => Ok((
            None,
            Some(Out::Map(vec![("disable".into(), Out::Bool(true))])),
        )),
        Some(Some(c)) => {
            out.insert(
                0,
                (
                    "test".into(),
                    Out::Seq(
                        std::iter::once(Out::str("CMD"))
                            .chain(c.iter().cloned().map(Out::Str))
                            .collect(),
                    ),
                ),
            );
            h.cmd = c;
            Ok((Some(h), Some(Out::Map(out))))
        }
    }
}

fn port(cx: &Context, n: &Node, p: &str) -> R<String> {
    if let Value::Map(_) = n.value {
        let mut target = None;
        let mut published = None;
        let mut host_ip = None;
        let mut proto = None;
        for (k, v, kp) in cx.keys(
            n,
            p,
            &["target", "published", "host_ip", "protocol", "mode"],
        )? {
            let s = cx.str(v, &kp)?.to_string();
            match k.name.as_str() {
                "target" => target = Some(s),
                "published" => published = Some(s),
                "host_ip" => host_ip = Some(s),
                "protocol" => proto = Some(s),
                _ => {
                    if !matches!(s.as_str(), "host" | "ingress") {
                        return Err(cx.err(v, &kp, format!("unknown mode {s:?}")));
                    }
                }
            }
        }
        let target = target.ok_or_else(|| cx.err(n, p, "target is required"))?;
        let published = published.ok_or_else(|| {
            cx.err(
                n,
                p,
                "published is required: rrun publishes a port on a host port you choose",
            )
        })?;
        let mut s = format!("{published}:{target}");
        if let Some(ip) = host_ip {
            s = if ip.contains(':') {
                format!("[{ip}]:{s}")
            } else {
                format!("{ip}:{s}")
            };
        }
        if let Some(pr) = proto {
            s = format!("{s}/{pr}");
        }
        return Ok(s);
    }
    let s = cx.str(n, p)?;
    let no_proto = s.split('/').next().unwrap_or(s);
    if !no_proto.contains(':') {
        return Err(cx.err(
            n,
            p,
            format!("{s:?}: rrun publishes a port on a host port you choose: write HOST:{s}"),
        ));
    }
    Ok(s.to_string())
}

enum Mount {
    /// The volume, and its source as `config` shows it (a named volume by
    /// its name in the file).
    Volume(Volume, String),
    Tmpfs(Tmpfs),
}

/// A bind source: made absolute from the project's directory.
fn bind_source(cx: &Context, n: &Node, p: &str, src: &str) -> R<String> {
    if src.starts_with('~') {
        return Err(cx.err(
            n,
            p,
            format!("{src:?}: '~' is not supported; write the path"),
        ));
    }
    Ok(absolute(cx.dir, Path::new(src)).display().to_string())
}

fn named_source(
    cx: &Context,
    n: &Node,
    p: &str,
    src: &str,
    volumes: &BTreeMap<String, VolumeDef>,
) -> R<String> {
    volumes.get(src).map(|v| v.name.clone()).ok_or_else(|| {
        cx.err(
            n,
            p,
            format!("unknown volume {src} (declare it under the top-level volumes:)"),
        )
    })
}

fn mount(cx: &Context, n: &Node, p: &str, volumes: &BTreeMap<String, VolumeDef>) -> R<Mount> {
    if let Value::Map(_) = n.value {
        let mut ty = None;
        let mut source = None;
        let mut target = None;
        let mut ro = false;
        let mut size = None;
        for (k, v, kp) in cx.keys(n, p, &["type", "source", "target", "read_only", "tmpfs"])? {
            match k.name.as_str() {
                "type" => ty = Some(cx.str(v, &kp)?.to_string()),
                "source" => source = Some(cx.str(v, &kp)?.to_string()),
                "target" => target = Some(cx.str(v, &kp)?.to_string()),
                "read_only" => ro = cx.bool(v, &kp)?,
                _ => {
                    for (_, sv, sp) in cx.keys(v, &kp, &["size"])? {
                        size = Some(cx.size(sv, &sp)?);
                    }
                }
            }
        }
        let target = target.ok_or_else(|| cx.err(n, p, "target is required"))?;
        let ty = ty.ok_or_else(|| cx.err(n, p, "type is required (bind, volume or tmpfs)"))?;
        if ty == "tmpfs" {
            let mut spec = target.clone();
            if let Some(s) = size {
                spec = format!("{spec}:size={s}");
            }
            return settings::parse_tmpfs(&spec)
                .map(Mount::Tmpfs)
                .map_err(|e| cx.settings_err(n, p, e));
        }
        if size.is_some() {
            return Err(cx.err(n, p, "tmpfs options on a bind or volume"));
        }
        let source = source.ok_or_else(|| cx.err(n, p, "source is required"))?;
        let (src, shown) = match ty.as_str() {
            "bind" => {
                let b = bind_source(cx, n, p, &source)?;
                (b.clone(), b)
            }
            "volume" => (named_source(cx, n, p, &source, volumes)?, source),
            t => return Err(cx.err(n, p, format!("type {t:?}: bind, volume or tmpfs"))),
        };
        let spec = format!("{src}:{target}{}", if ro { ":ro" } else { "" });
        return settings::parse_volume(&spec)
            .map(|v| Mount::Volume(v, shown))
            .map_err(|e| cx.settings_err(n, p, e));
    }
    let s = cx.str(n, p)?;
    let Some((src, rest)) = s.split_once(':') else {
        return Err(cx.err(n, p, format!("{s:?}: anonymous volumes are not supported; name it (NAME:{s}) and declare NAME under volumes:")));
    };
    let (real, shown) = if src.starts_with(['/', '.', '~']) {
        let b = bind_source(cx, n, p, src)?;
        (b.clone(), b)
    } else {
        (named_source(cx, n, p, src, volumes)?, src.to_string())
    };
    settings::parse_volume(&format!("{real}:{rest}"))
        .map(|v| Mount::Volume(v, shown))
        .map_err(|e| cx.settings_err(n, p, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let d = |s: &str| parse_duration(s).map(init_duration);
        assert_eq!(d("1m30s").as_deref(), Some("90s"));
        assert_eq!(d("500ms").as_deref(), Some("500ms"));
        assert_eq!(d("1.5s").as_deref(), Some("1500ms"));
        assert_eq!(d("1h").as_deref(), Some("3600s"));
        assert_eq!(d("10us").as_deref(), Some("1ms"));
        for bad in ["", "10", "1x", "s", "1m30", "-1s", "1e400s"] {
            assert!(parse_duration(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn words() {
        assert_eq!(
            split_words(r#"sh -c 'echo "$X" a'  b\ c "d\"e""#).unwrap(),
            ["sh", "-c", "echo \"$X\" a", "b c", "d\"e"]
        );
        assert_eq!(split_words("''").unwrap(), [""]);
        assert!(split_words("'a").is_err());
        assert!(split_words("\"a").is_err());
        assert!(split_words("a\\").is_err());
        assert!(split_words("  ").unwrap().is_empty());
    }

    #[test]
    fn images() {
        let dir = Path::new("/proj");
        assert_eq!(
            image_source("oci:./img:v1", dir),
            ("oci:/proj/img:v1".into(), None)
        );
        assert_eq!(
            image_source("oci-archive:../a.tar", dir),
            ("oci-archive:/a.tar".into(), None)
        );
        assert_eq!(image_source("./rootfs", dir), ("/proj/rootfs".into(), None));
        assert_eq!(
            image_source("app.tar.gz", dir),
            ("/proj/app.tar.gz".into(), None)
        );
        assert_eq!(
            image_source("redis:7", dir),
            ("redis:7".into(), Some("redis:7".into()))
        );
        assert_eq!(
            image_source("docker.io/library/nginx", dir).1.as_deref(),
            Some("docker.io/library/nginx")
        );
    }
}
