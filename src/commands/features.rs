//! features: what this build of rrun supports, as runtime-spec features.md
//! describes it. Every entry is derived from the code that implements it,
//! so the document cannot claim more than rrun does.

use anyhow::Result;
use serde_json::json;

pub fn document() -> serde_json::Value {
    // features.md defines these as "support compiled in"; rrun reports
    // whether it will apply the label on this host (it ignores labels of
    // an LSM that is off), so an engine can tell before it asks.
    let lsm = crate::security::lsm::Host::detect();
    let mut caps: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    caps.sort();
    let options = crate::rootfs::options::all_known();
    json!({
        "ociVersionMin": crate::spec::OCI_VERSION_MIN,
        "ociVersionMax": crate::spec::OCI_VERSION_MAX,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": options,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": true, "rdma": false},
            "seccomp": crate::security::seccomp::features(),
            "apparmor": {"enabled": lsm.apparmor},
            "selinux": {"enabled": lsm.selinux},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": true}}
        },
        "annotations": {
            "io.github.rrun.version": env!("CARGO_PKG_VERSION"),
            "io.github.rrun.commit": option_env!("RRUN_COMMIT").unwrap_or("unknown"),
        }
    })
}

pub fn features() -> Result<()> {
    println!("{}", serde_json::to_string_pretty(&document())?);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_as_oci_features() {
        let v = super::document();
        let f: oci_spec::runtime::Features = serde_json::from_value(v).unwrap();
        assert_eq!(f.oci_version_min(), crate::spec::OCI_VERSION_MIN);
        assert!(
            f.linux()
                .as_ref()
                .unwrap()
                .capabilities()
                .as_ref()
                .unwrap()
                .len()
                > 30
        );
    }
}
