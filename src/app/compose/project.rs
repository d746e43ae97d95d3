//! A compose project's apps on disk: found by their project label (so
//! `down`, `ps` and `logs` work after the file changed or lost a
//! service), and the dependency graph from the file or from the apps'
//! labels.

use super::graph::Deps;
use super::{LABEL_DEPENDS_ON, LABEL_PROJECT, LABEL_SERVICE, Project};
use crate::app::paths::Paths;
use crate::app::settings::AppSpec;
use crate::app::state::{self, App, StateError};

/// The file beside a named volume that says which project made it (a
/// volume name starts with a letter or digit, so no volume is called so).
/// `down -v` removes only the volumes its project made: a file may name
/// any volume (`name:`), and `P_V` of one project can be another's (`a` +
/// `b_c`, `a_b` + `c`).
fn owner_file(paths: &Paths, volume: &str) -> std::path::PathBuf {
    paths.volumes().join(format!(".{volume}.project"))
}

/// Makes the project's volume when it does not exist yet, marked as the
/// project's; an existing one is used as it is (and stays another's).
pub fn make_volume(paths: &Paths, project: &str, volume: &str) -> std::io::Result<()> {
    let dir = paths.volumes().join(volume);
    std::fs::create_dir_all(paths.volumes())?;
    match std::fs::create_dir(&dir) {
        Ok(()) => std::fs::write(owner_file(paths, volume), project),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether project `project` made the volume (see [`make_volume`]).
pub fn owns_volume(paths: &Paths, project: &str, volume: &str) -> bool {
    std::fs::read_to_string(owner_file(paths, volume)).is_ok_and(|o| o == project)
}

/// Forgets the volume's owner (once the volume is removed).
pub fn forget_volume(paths: &Paths, volume: &str) {
    let _ = std::fs::remove_file(owner_file(paths, volume));
}

/// The same for networks: `networks/.<name>.project` beside the network's
/// definition (`<name>.conflist`), written by `up` when it creates one.
fn network_owner_file(paths: &Paths, network: &str) -> std::path::PathBuf {
    paths.networks().join(format!(".{network}.project"))
}

pub fn mark_network(paths: &Paths, project: &str, network: &str) -> std::io::Result<()> {
    std::fs::write(network_owner_file(paths, network), project)
}

pub fn owns_network(paths: &Paths, project: &str, network: &str) -> bool {
    std::fs::read_to_string(network_owner_file(paths, network)).is_ok_and(|o| o == project)
}

pub fn forget_network(paths: &Paths, network: &str) {
    let _ = std::fs::remove_file(network_owner_file(paths, network));
}

/// One app of a project.
#[derive(Debug, Clone)]
pub struct ProjectApp {
    pub service: String,
    pub spec: AppSpec,
}

/// Every app labelled as part of project `name`, by service name.
pub fn apps_of(paths: &Paths, name: &str) -> Result<Vec<ProjectApp>, StateError> {
    let mut out = Vec::new();
    for n in state::names(paths)? {
        // An app removed meanwhile (another command) is simply not listed.
        let Ok(spec) = App::at(paths, &n).load_spec() else {
            continue;
        };
        if spec.labels.get(LABEL_PROJECT).map(String::as_str) != Some(name) {
            continue;
        }
        let service = spec
            .labels
            .get(LABEL_SERVICE)
            .cloned()
            .unwrap_or_else(|| n.clone());
        out.push(ProjectApp { service, spec });
    }
    out.sort_by(|a, b| a.service.cmp(&b.service));
    Ok(out)
}

/// The file's graph: each service's dependencies (an optional one that is
/// no service of the project left out: compose ignores it).
pub fn deps_of(p: &Project) -> Deps {
    p.services
        .iter()
        .map(|(n, s)| {
            let ds = s
                .depends_on
                .iter()
                .filter(|d| d.required || p.services.contains_key(&d.service))
                .map(|d| d.service.clone())
                .collect();
            (n.clone(), ds)
        })
        .collect()
}

/// The graph as the apps' labels tell it (`S1:condition[:restart],...`),
/// limited to those apps: what `down` stops in reverse order.
pub fn deps_of_apps(apps: &[ProjectApp]) -> Deps {
    let here: std::collections::BTreeSet<&str> = apps.iter().map(|a| a.service.as_str()).collect();
    apps.iter()
        .map(|a| {
            let ds = a
                .spec
                .labels
                .get(LABEL_DEPENDS_ON)
                .map(|l| parse_depends_label(l))
                .unwrap_or_default()
                .into_iter()
                .filter(|d| here.contains(d.as_str()))
                .collect();
            (a.service.clone(), ds)
        })
        .collect()
}

/// The service names of a depends_on label.
pub fn parse_depends_label(l: &str) -> Vec<String> {
    l.split(',')
        .filter_map(|item| item.split(':').next())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depends_labels_parse() {
        assert_eq!(
            parse_depends_label("db:service_healthy:false,migrate:service_completed_successfully"),
            ["db", "migrate"]
        );
        assert_eq!(parse_depends_label("db"), ["db"]);
        assert!(parse_depends_label("").is_empty());
    }
}
