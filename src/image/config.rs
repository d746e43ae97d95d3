//! Image config → runtime config.json. Pure: the default spec, the image's
//! config, the command-line overrides and the already-resolved user go in,
//! a config.json value comes out. Resolving the user reads the rootfs's
//! /etc/passwd and /etc/group, but only as strings handed in by the caller
//! (who opened them inside the root); nothing here touches the system.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};
use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum ConfigError {
    #[error("--entrypoint {0:?}: not a JSON array of strings nor a plain command")]
    Entrypoint(String),
    #[error("--env {0:?}: expected KEY=VALUE")]
    Env(String),
    #[error("--workdir {0:?}: must be an absolute path")]
    Workdir(String),
    #[error("user {user:?}: no user {name:?} in the image's /etc/passwd")]
    NoSuchUser { user: String, name: String },
    #[error("user {user:?}: no group {name:?} in the image's /etc/group")]
    NoSuchGroup { user: String, name: String },
    #[error("user {0:?}: expected NAME, UID, NAME:GROUP or UID:GID")]
    BadUser(String),
    #[error(
        "the image has no command (neither Entrypoint nor Cmd): give one after DIR or use --entrypoint"
    )]
    NoCommand,
}

/// What the command line overrides in the image's config.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--entrypoint`; when given, the image's Cmd is dropped too (as with
    /// `docker run --entrypoint`), and only the trailing command follows.
    pub entrypoint: Option<Vec<String>>,
    /// The trailing command: replaces the image's Cmd when non-empty.
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
}

/// The parts of the OCI image config that make the runtime config (kept
/// as JSON by the app store, with the OCI config's field names).
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub labels: HashMap<String, String>,
    pub stop_signal: Option<String>,
}

impl From<&oci_spec::image::Config> for ImageConfig {
    fn from(c: &oci_spec::image::Config) -> Self {
        ImageConfig {
            entrypoint: c.entrypoint().clone().unwrap_or_default(),
            cmd: c.cmd().clone().unwrap_or_default(),
            env: c.env().clone().unwrap_or_default(),
            working_dir: c.working_dir().clone().filter(|w| !w.is_empty()),
            user: c.user().clone().filter(|u| !u.is_empty()),
            labels: c.labels().clone().unwrap_or_default(),
            stop_signal: c.stop_signal().clone().filter(|s| !s.is_empty()),
        }
    }
}

/// The process user after resolution against the rootfs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `--entrypoint` takes a JSON array (`'["sh","-c"]'`) or, as with Docker,
/// a single program name.
pub fn parse_entrypoint(s: &str) -> Result<Vec<String>, ConfigError> {
    if s.trim_start().starts_with('[') {
        return serde_json::from_str(s).map_err(|_| ConfigError::Entrypoint(s.into()));
    }
    if s.is_empty() {
        return Err(ConfigError::Entrypoint(s.into()));
    }
    Ok(vec![s.to_string()])
}

/// Validates the overrides that need no image (before any side effect).
pub fn check_overrides(o: &Overrides) -> Result<(), ConfigError> {
    if let Some(e) = o
        .env
        .iter()
        .find(|e| e.split_once('=').is_none_or(|(k, _)| k.is_empty()))
    {
        return Err(ConfigError::Env(e.clone()));
    }
    if let Some(w) = &o.workdir
        && !w.starts_with('/')
    {
        return Err(ConfigError::Workdir(w.clone()));
    }
    Ok(())
}

/// Sets `KEY=VALUE` in `env`, replacing an earlier value of KEY in place.
fn set_env(env: &mut Vec<String>, kv: &str) {
    let key = kv.split_once('=').map_or(kv, |(k, _)| k);
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
    {
        Some(e) => *e = kv.to_string(),
        None => env.push(kv.to_string()),
    }
}

/// The user the process runs as: the override, else the image's User.
pub fn user_spec<'a>(image: &'a ImageConfig, o: &'a Overrides) -> Option<&'a str> {
    o.user.as_deref().or(image.user.as_deref())
}

/// A line of /etc/passwd or /etc/group split on ':' (comments and blank
/// lines skipped).
fn records(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
}

/// Resolves `USER[:GROUP]` (names or numbers) as Docker and runc's
/// libcontainer do: a name must exist in passwd; a number need not (its
/// gid is then 0); supplementary groups are those listing the user's name.
pub fn resolve_user(
    spec: &str,
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ResolvedUser, ConfigError> {
    let bad = || ConfigError::BadUser(spec.to_string());
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() || grp.is_some_and(|g| g.is_empty() || g.contains(':')) {
        return Err(bad());
    }
    let passwd = passwd.unwrap_or("");
    let group = group.unwrap_or("");
    let pw_entry = records(passwd)
        .find(|r| r.len() >= 4 && (r[0] == user || (user.parse::<u32>().is_ok() && r[2] == user)));
    let (uid, mut gid, name) = match (user.parse::<u32>(), &pw_entry) {
        (_, Some(r)) => {
            let uid = r[2].parse().map_err(|_| bad())?;
            let gid = r[3].parse().map_err(|_| bad())?;
            (uid, gid, Some(r[0]))
        }
        (Ok(uid), None) => (uid, 0, None),
        (Err(_), None) => {
            return Err(ConfigError::NoSuchUser {
                user: spec.into(),
                name: user.into(),
            });
        }
    };
    if let Some(g) = grp {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => records(group)
                .find(|r| r.len() >= 3 && r[0] == g)
                .and_then(|r| r[2].parse().ok())
                .ok_or_else(|| ConfigError::NoSuchGroup {
                    user: spec.into(),
                    name: g.into(),
                })?,
        };
    }
    let mut additional_gids = Vec::new();
    if let Some(name) = name {
        for r in records(group).filter(|r| r.len() >= 4) {
            let Ok(g) = r[2].parse::<u32>() else { continue };
            if g != gid
                && r[3].split(',').any(|m| m.trim() == name)
                && !additional_gids.contains(&g)
            {
                additional_gids.push(g);
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
    })
}

/// The process's argv: Entrypoint + Cmd, with Docker's override rules.
/// Checked before anything is unpacked, so a missing command fails early.
pub fn process_args(image: &ImageConfig, o: &Overrides) -> Result<Vec<String>, ConfigError> {
    let mut args = match &o.entrypoint {
        Some(ep) => ep.clone(),
        None => image.entrypoint.clone(),
    };
    if !o.cmd.is_empty() {
        args.extend(o.cmd.iter().cloned());
    } else if o.entrypoint.is_none() {
        args.extend(image.cmd.iter().cloned());
    }
    if args.first().is_none_or(|a| a.is_empty()) {
        return Err(ConfigError::NoCommand);
    }
    Ok(args)
}

/// Builds config.json from rrun's default spec (`base`), the image config
/// and the overrides. `annotations` are rrun's own (init options).
pub fn runtime_config(
    mut base: Value,
    image: &ImageConfig,
    o: &Overrides,
    user: &ResolvedUser,
    annotations: &BTreeMap<String, String>,
) -> Result<Value, ConfigError> {
    let args = process_args(image, o)?;

    let mut env = Vec::new();
    for e in &image.env {
        set_env(&mut env, e);
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    for e in &o.env {
        set_env(&mut env, e);
    }

    // An image's WorkingDir is absolute by spec; a relative one (seen in
    // hand-made images) is taken from / as Docker does.
    let cwd = match o.workdir.as_deref().or(image.working_dir.as_deref()) {
        Some(w) if w.starts_with('/') => w.to_string(),
        Some(w) => format!("/{w}"),
        None => "/".to_string(),
    };

    let process = &mut base["process"];
    process["terminal"] = json!(false);
    process["args"] = json!(args);
    process["env"] = json!(env);
    process["cwd"] = json!(cwd);
    let mut u = json!({"uid": user.uid, "gid": user.gid});
    if !user.additional_gids.is_empty() {
        u["additionalGids"] = json!(user.additional_gids);
    }
    process["user"] = u;

    // An image's labels become annotations, except rrun's own: whether the
    // built-in init runs, its restart policy and health command are the
    // choice of whoever runs the image (unpack's flags), never of its
    // author (an image could otherwise turn the init on under --no-init).
    let mut ann: BTreeMap<String, String> = image
        .labels
        .iter()
        .filter(|(k, _)| !crate::init::policy::is_rrun_key(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(sig) = &image.stop_signal {
        ann.insert("org.opencontainers.image.stopSignal".into(), sig.clone());
    }
    ann.extend(annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
    if !ann.is_empty() {
        base["annotations"] = json!(ann);
    }
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        # a comment\n\
        daemon:x:1:1::/:/bin/false\n\
        app:x:1000:1000:App:/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:app,root\nstaff:x:50: app \napp:x:1000:\n";

    fn resolve(s: &str) -> Result<ResolvedUser, ConfigError> {
        resolve_user(s, Some(PASSWD), Some(GROUP))
    }

    #[test]
    fn users_by_name_and_number() {
        assert_eq!(
            resolve("app").unwrap(),
            ResolvedUser {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![10, 50]
            }
        );
        assert_eq!(resolve("1000").unwrap().gid, 1000);
        assert_eq!(resolve("0").unwrap().additional_gids, vec![10]);
        // A uid without a passwd entry is fine (Docker): gid 0.
        assert_eq!(
            resolve("4242").unwrap(),
            ResolvedUser {
                uid: 4242,
                gid: 0,
                additional_gids: vec![]
            }
        );
        assert_eq!(resolve("app:wheel").unwrap().gid, 10);
        assert_eq!(resolve("app:77").unwrap().gid, 77);
        assert_eq!(resolve("4242:4343").unwrap().gid, 4343);
        // No passwd at all (scratch images): numbers still work.
        assert_eq!(resolve_user("5:6", None, None).unwrap().uid, 5);
    }

    #[test]
    fn unknown_users_and_groups_fail() {
        assert!(matches!(
            resolve("nobody"),
            Err(ConfigError::NoSuchUser { .. })
        ));
        assert!(matches!(
            resolve("app:nogroup"),
            Err(ConfigError::NoSuchGroup { .. })
        ));
        assert!(matches!(
            resolve_user("app", None, None),
            Err(ConfigError::NoSuchUser { .. })
        ));
        for bad in ["", ":0", "app:", "a:b:c"] {
            assert!(
                matches!(resolve(bad), Err(ConfigError::BadUser(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn entrypoints() {
        assert_eq!(parse_entrypoint("/bin/sh").unwrap(), vec!["/bin/sh"]);
        assert_eq!(
            parse_entrypoint(r#"["sh","-c"]"#).unwrap(),
            vec!["sh", "-c"]
        );
        assert!(parse_entrypoint("[sh").is_err());
        assert!(parse_entrypoint("").is_err());
    }

    #[test]
    fn overrides_are_checked() {
        let o = Overrides {
            env: vec!["A=1".into(), "=x".into()],
            ..Default::default()
        };
        assert_eq!(check_overrides(&o), Err(ConfigError::Env("=x".into())));
        let o = Overrides {
            workdir: Some("rel".into()),
            ..Default::default()
        };
        assert!(check_overrides(&o).is_err());
    }

    fn image() -> ImageConfig {
        ImageConfig {
            entrypoint: vec!["/entry".into()],
            cmd: vec!["serve".into(), "--port=1".into()],
            env: vec!["PATH=/bin".into(), "A=1".into()],
            working_dir: Some("/srv".into()),
            user: None,
            labels: HashMap::from([
                ("l".to_string(), "v".to_string()),
                ("rrun.restart".to_string(), "always".to_string()),
                ("rrun.init".to_string(), "true".to_string()),
            ]),
            stop_signal: Some("SIGQUIT".into()),
        }
    }

    fn build(o: &Overrides) -> Result<Value, ConfigError> {
        let ann = BTreeMap::from([("rrun.init".to_string(), "true".to_string())]);
        let base =
            json!({"process": {"terminal": true, "args": ["sh"]}, "root": {"path": "rootfs"}});
        runtime_config(base, &image(), o, &ResolvedUser::default(), &ann)
    }

    #[test]
    fn image_config_becomes_process() {
        let c = build(&Overrides::default()).unwrap();
        assert_eq!(c["process"]["args"], json!(["/entry", "serve", "--port=1"]));
        assert_eq!(c["process"]["env"], json!(["PATH=/bin", "A=1"]));
        assert_eq!(c["process"]["cwd"], "/srv");
        assert_eq!(c["process"]["terminal"], false);
        assert_eq!(c["process"]["user"], json!({"uid": 0, "gid": 0}));
        assert_eq!(c["root"]["path"], "rootfs");
        assert_eq!(c["annotations"]["l"], "v");
        assert_eq!(
            c["annotations"]["org.opencontainers.image.stopSignal"],
            "SIGQUIT"
        );
        assert_eq!(c["annotations"]["rrun.init"], "true");
        // The image's own rrun.* labels are not taken.
        assert!(c["annotations"].get("rrun.restart").is_none(), "{c}");
        let none = runtime_config(
            json!({"process": {"args": ["sh"]}}),
            &image(),
            &Overrides::default(),
            &ResolvedUser::default(),
            &BTreeMap::new(),
        )
        .unwrap();
        assert!(none["annotations"].get("rrun.init").is_none(), "{none}");
    }

    #[test]
    fn overrides_win() {
        let o = Overrides {
            cmd: vec!["other".into()],
            env: vec!["A=2".into(), "B=3".into()],
            workdir: Some("/w".into()),
            ..Default::default()
        };
        let c = build(&o).unwrap();
        assert_eq!(c["process"]["args"], json!(["/entry", "other"]));
        assert_eq!(c["process"]["env"], json!(["PATH=/bin", "A=2", "B=3"]));
        assert_eq!(c["process"]["cwd"], "/w");
        // --entrypoint drops the image's Cmd.
        let o = Overrides {
            entrypoint: Some(vec!["/bin/sh".into()]),
            ..Default::default()
        };
        assert_eq!(build(&o).unwrap()["process"]["args"], json!(["/bin/sh"]));
        let o = Overrides {
            entrypoint: Some(vec!["/bin/sh".into()]),
            cmd: vec!["-c".into(), "true".into()],
            ..Default::default()
        };
        assert_eq!(
            build(&o).unwrap()["process"]["args"],
            json!(["/bin/sh", "-c", "true"])
        );
    }

    #[test]
    fn no_command_is_an_error_and_path_has_a_default() {
        let base = json!({"process": {}});
        let img = ImageConfig::default();
        let r = runtime_config(
            base.clone(),
            &img,
            &Overrides::default(),
            &ResolvedUser::default(),
            &BTreeMap::new(),
        );
        assert_eq!(r, Err(ConfigError::NoCommand));
        let o = Overrides {
            cmd: vec!["sh".into()],
            ..Default::default()
        };
        let c = runtime_config(base, &img, &o, &ResolvedUser::default(), &BTreeMap::new()).unwrap();
        assert_eq!(c["process"]["env"], json!([DEFAULT_PATH]));
        assert_eq!(c["process"]["cwd"], "/");
        assert!(c.get("annotations").is_none());
    }
}
