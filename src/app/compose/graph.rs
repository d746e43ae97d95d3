//! The dependency graph of a compose project's services: which services an
//! `up SERVICE...` touches, in which order they start and stop, and the
//! cycles and unknown names that make a project unusable. Pure: plain maps
//! in, names out (the services' dependencies as `depends_on` lists them).

use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GraphError {
    /// The path of the cycle, its first service repeated at the end.
    #[error("dependency cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    #[error("no such service: {0}")]
    UnknownService(String),
    #[error("service {service} depends on {dependency}, which is no service of the project")]
    UnknownDependency { service: String, dependency: String },
}

/// Service name → the services it depends on (required ones; an optional
/// dependency that is not in the project is left out by the caller).
pub type Deps = BTreeMap<String, Vec<String>>;

/// The first cycle found (services visited in name order, so the answer is
/// stable), or an unknown dependency.
pub fn check(deps: &Deps) -> Result<(), GraphError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    fn visit(
        s: &str,
        deps: &Deps,
        mark: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Result<(), GraphError> {
        match mark.get(s).copied().unwrap_or(Mark::New) {
            Mark::Done => return Ok(()),
            Mark::OnPath => {
                let from = path.iter().position(|p| p == s).unwrap_or(0);
                let mut cycle = path[from..].to_vec();
                cycle.push(s.to_string());
                return Err(GraphError::Cycle(cycle));
            }
            Mark::New => {}
        }
        mark.insert(s.to_string(), Mark::OnPath);
        path.push(s.to_string());
        for d in deps.get(s).map(Vec::as_slice).unwrap_or(&[]) {
            if !deps.contains_key(d) {
                return Err(GraphError::UnknownDependency {
                    service: s.to_string(),
                    dependency: d.clone(),
                });
            }
            visit(d, deps, mark, path)?;
        }
        path.pop();
        mark.insert(s.to_string(), Mark::Done);
        Ok(())
    }
    let mut mark = BTreeMap::new();
    for s in deps.keys() {
        visit(s, deps, &mut mark, &mut Vec::new())?;
    }
    Ok(())
}

/// The services `up targets...` touches: the targets (all services when
/// none is named) and, unless `no_deps`, everything they depend on.
pub fn select(
    deps: &Deps,
    targets: &[String],
    no_deps: bool,
) -> Result<BTreeSet<String>, GraphError> {
    if let Some(t) = targets.iter().find(|t| !deps.contains_key(*t)) {
        return Err(GraphError::UnknownService(t.clone()));
    }
    if targets.is_empty() {
        return Ok(deps.keys().cloned().collect());
    }
    let mut out = BTreeSet::new();
    let mut todo: Vec<String> = targets.to_vec();
    while let Some(s) = todo.pop() {
        if !out.insert(s.clone()) || no_deps {
            continue;
        }
        todo.extend(deps.get(&s).into_iter().flatten().cloned());
    }
    Ok(out)
}

/// The services of `set` in start order: each after everything it depends
/// on; among those free to go, in name order. Expects a graph that
/// `check` accepted (a cycle's services come last, in name order).
pub fn order(deps: &Deps, set: &BTreeSet<String>) -> Vec<String> {
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    while out.len() < set.len() {
        let ready: Vec<&String> = set
            .iter()
            .filter(|s| !done.contains(*s))
            .filter(|s| {
                deps.get(*s)
                    .into_iter()
                    .flatten()
                    .all(|d| done.contains(d) || !set.contains(d))
            })
            .collect();
        if ready.is_empty() {
            out.extend(set.iter().filter(|s| !done.contains(*s)).cloned());
            break;
        }
        for s in ready {
            done.insert(s.clone());
            out.push(s.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(edges: &[(&str, &[&str])]) -> Deps {
        edges
            .iter()
            .map(|(s, d)| (s.to_string(), d.iter().map(|x| x.to_string()).collect()))
            .collect()
    }

    #[test]
    fn order_puts_dependencies_first() {
        let d = g(&[
            ("web", &["db", "migrate"]),
            ("migrate", &["db"]),
            ("db", &[]),
            ("cache", &[]),
        ]);
        check(&d).unwrap();
        let all = select(&d, &[], false).unwrap();
        assert_eq!(order(&d, &all), ["cache", "db", "migrate", "web"]);
        let web = select(&d, &["web".into()], false).unwrap();
        assert_eq!(order(&d, &web), ["db", "migrate", "web"]);
        let only = select(&d, &["web".into()], true).unwrap();
        assert_eq!(order(&d, &only), ["web"]);
    }

    #[test]
    fn cycles_and_unknown_names_are_named() {
        let d = g(&[("web", &["api"]), ("api", &["web"]), ("db", &[])]);
        assert_eq!(
            check(&d).unwrap_err().to_string(),
            "dependency cycle: api -> web -> api"
        );
        let d = g(&[("a", &["a"])]);
        assert_eq!(
            check(&d).unwrap_err().to_string(),
            "dependency cycle: a -> a"
        );
        let d = g(&[("a", &["b"]), ("b", &["c"]), ("c", &["b"])]);
        assert_eq!(
            check(&d).unwrap_err().to_string(),
            "dependency cycle: b -> c -> b"
        );
        let d = g(&[("web", &["dbb"])]);
        assert_eq!(
            check(&d).unwrap_err().to_string(),
            "service web depends on dbb, which is no service of the project"
        );
        let d = g(&[("web", &[])]);
        assert_eq!(
            select(&d, &["wbe".into()], false).unwrap_err().to_string(),
            "no such service: wbe"
        );
    }
}
