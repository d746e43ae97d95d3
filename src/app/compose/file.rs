//! Loading a compose project: finding and reading its files, merging them
//! (later files over earlier ones), the variables for interpolation
//! (environment over `.env`), interpolating every value, and the project's
//! name; `resolve` then checks every key and makes the services' apps.
//! Reads the files and env files; writes nothing.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::interpolate::interpolate;
use super::model::{ComposeError, LoadOptions, Project};
use super::resolve;
use super::yaml::{self, Node, Value};

/// The default files, first found wins (docker compose's order); its
/// `.override` twin is merged over it.
pub const DEFAULT_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

/// The override file of a default file: compose.override.yaml (or .yml)
/// beside compose.yaml, docker-compose.override.yml beside
/// docker-compose.yml, when it exists.
fn override_of(default: &Path) -> Option<PathBuf> {
    let stem = default.file_stem()?.to_str()?;
    ["yaml", "yml"]
        .iter()
        .map(|ext| default.with_file_name(format!("{stem}.override.{ext}")))
        .find(|p| p.is_file())
}

/// A path made absolute against `base`, with `.` and `..` resolved
/// lexically (the file need not exist).
pub fn absolute(base: &Path, p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// The project's name from a directory: lowercased, only [a-z0-9_-] kept
/// (compose's rule).
pub fn name_from_dir(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
        .collect()
}

/// A project name as given (-p, `name:`, COMPOSE_PROJECT_NAME): lowercase
/// letters, digits, '_' and '-', starting with a letter or digit.
pub fn check_project_name(name: &str) -> Result<(), String> {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid project name {name:?}: use lowercase letters, digits, '_' and '-', starting with a letter or digit"
        ))
    }
}

fn read(path: &Path) -> Result<String, ComposeError> {
    crate::app::settings::read_small_file(path).map_err(|source| ComposeError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Variables of an env file for interpolation: KEY=VALUE lines, a value in
/// matching quotes unquoted.
fn env_file_vars(path: &Path) -> Result<Vec<(String, String)>, ComposeError> {
    let lines = crate::app::settings::read_env_file(path)?;
    Ok(lines
        .into_iter()
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = ['"', '\'']
                .iter()
                .find_map(|q| v.strip_prefix(*q)?.strip_suffix(*q))
                .unwrap_or(v);
            Some((k.trim().to_string(), v.to_string()))
        })
        .collect())
}

/// Later files over earlier ones, as compose merges them: mappings key by
/// key; in a service, `environment`, `labels` and `depends_on` (either
/// form) by key too, `ports`, `tmpfs`, `extra_hosts` and `env_file`
/// appended, `volumes` appended with an entry for the same target
/// replaced; anything else (lists, scalars) replaced.
fn merge(base: Node, over: Node, path: &[&str]) -> Node {
    let in_service = path.len() == 3 && path[0] == "services";
    let key = path.last().copied().unwrap_or("");
    let (base, over) = if in_service && matches!(key, "environment" | "labels" | "depends_on") {
        (as_map(base, key), as_map(over, key))
    } else {
        (base, over)
    };
    match (base.value, over.value) {
        (Value::Map(mut b), Value::Map(o)) => {
            for (k, v) in o {
                match b.iter().position(|(bk, _)| bk.name == k.name) {
                    Some(i) => {
                        let old = b.remove(i).1;
                        let mut p = path.to_vec();
                        p.push(&k.name);
                        let merged = merge(old, v, &p);
                        b.insert(i, (k, merged));
                    }
                    None => b.push((k, v)),
                }
            }
            Node {
                value: Value::Map(b),
                ..over
            }
        }
        (Value::Seq(mut b), Value::Seq(o))
            if in_service
                && matches!(
                    key,
                    "ports" | "tmpfs" | "extra_hosts" | "env_file" | "volumes"
                ) =>
        {
            for item in o {
                let same = |x: &Node| {
                    if key == "volumes" {
                        mount_target(x).is_some() && mount_target(x) == mount_target(&item)
                    } else {
                        x.value == item.value
                    }
                };
                match b.iter().position(same) {
                    Some(i) => b[i] = item,
                    None => b.push(item),
                }
            }
            Node {
                value: Value::Seq(b),
                ..over
            }
        }
        (_, value) => Node { value, ..over },
    }
}

/// A list of KEY=VALUE (or of services, for depends_on) as a mapping.
fn as_map(n: Node, key: &str) -> Node {
    let Value::Seq(items) = &n.value else {
        return n;
    };
    let mut entries = Vec::new();
    for i in items {
        let Some(s) = i.scalar() else {
            return n.clone();
        };
        let (k, v) = match s.split_once('=') {
            Some((k, v)) if key != "depends_on" => (k, Value::Scalar(v.to_string(), false)),
            _ => (s, Value::Scalar(String::new(), true)),
        };
        entries.push((
            yaml::Key {
                name: k.to_string(),
                line: i.line,
            },
            Node {
                file: i.file,
                line: i.line,
                value: v,
            },
        ));
    }
    Node {
        value: Value::Map(entries),
        ..n
    }
}

/// A volume entry's target (short or long syntax).
fn mount_target(n: &Node) -> Option<&str> {
    match &n.value {
        Value::Scalar(s, _) => s.split(':').nth(1),
        Value::Map(m) => m
            .iter()
            .find(|(k, _)| k.name == "target")
            .and_then(|(_, v)| v.scalar()),
        Value::Seq(_) => None,
    }
}

/// The most all interpolated values of a file may add up to.
const TOTAL_VALUES: usize = 64 << 20;

/// Interpolates every scalar value (keys are not; `x-` fields, ignored
/// anyway, are skipped).
fn interpolate_tree(
    n: &mut Node,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    files: &[String],
    unset: &mut Vec<String>,
    budget: &mut usize,
) -> Result<(), ComposeError> {
    match &mut n.value {
        Value::Scalar(s, plain) => {
            if s.contains('$') {
                let (v, u) = interpolate(s, lookup).map_err(|e| ComposeError::At {
                    file: files[n.file].clone(),
                    line: n.line,
                    key: path.to_string(),
                    msg: e.to_string(),
                })?;
                // All values together are bounded too (many values, each
                // below the bound of one).
                *budget = budget
                    .checked_sub(v.len())
                    .ok_or_else(|| ComposeError::At {
                        file: files[n.file].clone(),
                        line: n.line,
                        key: path.to_string(),
                        msg: format!(
                            "the file's values expand to more than {} MiB",
                            TOTAL_VALUES >> 20
                        ),
                    })?;
                *s = v;
                // What a variable gave is text, never YAML's null.
                *plain = false;
                for name in u {
                    if !unset.contains(&name) {
                        unset.push(name);
                    }
                }
            }
        }
        Value::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate_tree(item, &format!("{path}[{i}]"), lookup, files, unset, budget)?;
            }
        }
        Value::Map(entries) => {
            for (k, v) in entries {
                if k.name.starts_with("x-") {
                    continue;
                }
                let p = if path.is_empty() {
                    k.name.clone()
                } else {
                    format!("{path}.{}", k.name)
                };
                interpolate_tree(v, &p, lookup, files, unset, budget)?;
            }
        }
    }
    Ok(())
}

/// Reads, interpolates, checks and resolves a project.
pub fn load(o: &LoadOptions) -> Result<Project, ComposeError> {
    // COMPOSE_FILE, as compose reads it, when no -f is given.
    let listed: Vec<PathBuf> = if o.files.is_empty() {
        o.environ
            .get("COMPOSE_FILE")
            .map(|f| {
                f.split(':')
                    .filter(|p| !p.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default()
    } else {
        o.files.clone()
    };
    let files: Vec<PathBuf> = if listed.is_empty() {
        let found = DEFAULT_FILES
            .iter()
            .map(|f| o.cwd.join(f))
            .find(|p| p.is_file())
            .ok_or_else(|| ComposeError::NoFile(o.cwd.clone()))?;
        // Its override beside it, merged over it (compose's convention).
        let over = override_of(&found);
        std::iter::once(found).chain(over).collect()
    } else {
        listed.iter().map(|f| absolute(&o.cwd, f)).collect()
    };
    // Errors name the files as the user gave them.
    let shown: Vec<String> = if listed.is_empty() {
        files
            .iter()
            .map(|f| {
                f.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    } else {
        listed.iter().map(|f| f.display().to_string()).collect()
    };
    let dir = files[0]
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| o.cwd.clone());

    let mut doc: Option<Node> = None;
    for (i, f) in files.iter().enumerate() {
        let text = read(f)?;
        let node = yaml::parse(&text, i).map_err(|e| ComposeError::At {
            file: shown[i].clone(),
            line: e.line,
            key: String::new(),
            msg: e.msg,
        })?;
        if !matches!(node.value, Value::Map(_)) {
            return Err(ComposeError::At {
                file: shown[i].clone(),
                line: node.line,
                key: String::new(),
                msg: format!("a compose file is a mapping, not {}", node.kind()),
            });
        }
        doc = Some(match doc {
            None => node,
            Some(d) => merge(d, node, &[]),
        });
    }
    let mut doc = doc.expect("at least one file: the default or -f");

    // Variables: the environment over the env files (.env by default).
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let env_files: Vec<PathBuf> = if o.env_files.is_empty() {
        let dot = dir.join(".env");
        if dot.is_file() { vec![dot] } else { vec![] }
    } else {
        o.env_files.iter().map(|f| absolute(&o.cwd, f)).collect()
    };
    for f in &env_files {
        vars.extend(env_file_vars(f)?);
    }
    vars.extend(o.environ.clone());
    let lookup = |k: &str| vars.get(k).cloned();

    let mut unset = Vec::new();
    let mut budget = TOTAL_VALUES;
    interpolate_tree(&mut doc, "", &lookup, &shown, &mut unset, &mut budget)?;
    let warnings = unset
        .iter()
        .map(|v| format!("warning: the variable {v} is not set: it stands for an empty string"))
        .collect();

    let name = match &o.project_name {
        Some(n) => {
            check_project_name(n).map_err(ComposeError::Project)?;
            n.clone()
        }
        None => resolve::top_level_name(&doc, &shown)?
            .or_else(|| {
                vars.get("COMPOSE_PROJECT_NAME")
                    .filter(|n| !n.is_empty())
                    .cloned()
            })
            .map(|n| check_project_name(&n).map(|_| n))
            .transpose()
            .map_err(ComposeError::Project)?
            .unwrap_or_else(|| name_from_dir(&dir)),
    };
    check_project_name(&name).map_err(|_| {
        ComposeError::Project(format!(
            "cannot make a project name from the directory {}: give one with -p NAME or name: in the file",
            dir.display()
        ))
    })?;

    let mut p = resolve::resolve(
        &doc,
        &resolve::Context {
            files: &shown,
            abs_files: &files,
            dir: &dir,
            project: &name,
            vars: &vars,
        },
    )?;
    p.warnings = warnings;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_names() {
        assert_eq!(
            absolute(Path::new("/p/q"), Path::new("../x/./y")),
            Path::new("/p/x/y")
        );
        assert_eq!(
            absolute(Path::new("/p"), Path::new("/abs")),
            Path::new("/abs")
        );
        assert_eq!(name_from_dir(Path::new("/srv/My App.v2")), "myappv2");
        assert!(check_project_name("web_1-a").is_ok());
        for bad in ["", "-a", "_a", "A", "a.b"] {
            assert!(check_project_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn merging_overrides_maps_and_replaces_the_rest() {
        let a = yaml::parse("s:\n  a: 1\n  l: [1, 2]\n  m: {x: 1}\n", 0).unwrap();
        let b = yaml::parse("s:\n  l: [3]\n  m: {y: 2}\n  b: 2\n", 1).unwrap();
        let out = yaml::to_string(&to_out(&merge(a, b, &[])));
        assert_eq!(
            out,
            "s:\n  a: \"1\"\n  l:\n    - \"3\"\n  m:\n    x: \"1\"\n    \"y\": \"2\"\n  b: \"2\"\n"
        );
    }

    proptest::proptest! {
        #[test]
        fn loading_any_text_never_panics(s in "[a-z_:{}\\[\\]\\-$ \n'\"&*<>!|#,.0-9?+]{0,300}") {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("compose.yaml"), format!("services:\n  s:\n    image: a.tar\n{s}")).unwrap();
            let o = LoadOptions { cwd: dir.path().to_path_buf(), project_name: Some("p".into()), ..Default::default() };
            let _ = load(&o);
        }
    }

    fn to_out(n: &Node) -> yaml::Out {
        match &n.value {
            Value::Scalar(s, _) => yaml::Out::str(s.clone()),
            Value::Seq(v) => yaml::Out::Seq(v.iter().map(to_out).collect()),
            Value::Map(m) => {
                yaml::Out::Map(m.iter().map(|(k, v)| (k.name.clone(), to_out(v))).collect())
            }
        }
    }
}
