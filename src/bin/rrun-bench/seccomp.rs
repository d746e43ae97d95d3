//! Converting the container engines' seccomp profile (containers-common's
//! seccomp.json: `archMap`, per-rule `includes`/`excludes` on arches, caps
//! and kernel versions) into the OCI `linux.seccomp` object a runtime takes,
//! the way podman does for a container with the default capability set.

use serde_json::{Map, Value, json};

/// Where containers-common installs podman's default profile.
pub const PODMAN_PROFILE: &str = "/usr/share/containers/seccomp.json";

/// The architecture names the profile's includes/excludes use for x86_64.
const ARCH_NAMES: [&str; 2] = ["amd64", "x86_64"];
const NATIVE_ARCH: &str = "SCMP_ARCH_X86_64";

fn strings(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// "5.8" -> (5, 8); anything unparsable counts as satisfied (0, 0).
fn version(s: &str) -> (u32, u32) {
    let mut it = s.split(['.', '-']).map(|p| p.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// Whether a rule applies to an x86_64 container with `caps` on `kernel`.
fn applies(rule: &Value, caps: &[&str], kernel: (u32, u32)) -> bool {
    let inc = rule.get("includes");
    let exc = rule.get("excludes");
    let inc_arches = strings(inc.and_then(|i| i.get("arches")));
    if !inc_arches.is_empty() && !inc_arches.iter().any(|a| ARCH_NAMES.contains(a)) {
        return false;
    }
    if !strings(inc.and_then(|i| i.get("caps")))
        .iter()
        .all(|c| caps.contains(c))
    {
        return false;
    }
    if let Some(min) = inc.and_then(|i| i.get("minKernel")).and_then(Value::as_str)
        && version(min) > kernel
    {
        return false;
    }
    if strings(exc.and_then(|e| e.get("arches")))
        .iter()
        .any(|a| ARCH_NAMES.contains(a))
    {
        return false;
    }
    !strings(exc.and_then(|e| e.get("caps")))
        .iter()
        .any(|c| caps.contains(c))
}

/// The OCI `linux.seccomp` for `profile` (engine format), for an x86_64
/// container holding `caps` on a kernel of version `kernel`.
pub fn to_oci(profile: &Value, caps: &[&str], kernel: (u32, u32)) -> Result<Value, String> {
    let default_action = profile
        .get("defaultAction")
        .and_then(Value::as_str)
        .ok_or("profile has no defaultAction")?;
    let mut architectures = vec![Value::from(NATIVE_ARCH)];
    for m in profile
        .get("archMap")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if m.get("architecture").and_then(Value::as_str) == Some(NATIVE_ARCH) {
            architectures.extend(
                strings(m.get("subArchitectures"))
                    .into_iter()
                    .map(Value::from),
            );
        }
    }
    let mut syscalls = Vec::new();
    for rule in profile
        .get("syscalls")
        .and_then(Value::as_array)
        .ok_or("profile has no syscalls")?
    {
        if !applies(rule, caps, kernel) {
            continue;
        }
        let names = strings(rule.get("names"));
        if names.is_empty() {
            continue;
        }
        let mut out = Map::new();
        out.insert("names".into(), json!(names));
        out.insert(
            "action".into(),
            rule.get("action").cloned().ok_or("rule has no action")?,
        );
        if let Some(e) = rule.get("errnoRet").filter(|v| v.is_u64()) {
            out.insert("errnoRet".into(), e.clone());
        }
        if let Some(a) = rule
            .get("args")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
        {
            out.insert("args".into(), Value::Array(a.clone()));
        }
        syscalls.push(Value::Object(out));
    }
    // EPERM unless the profile says otherwise (podman's says ENOSYS, 38).
    let errno_ret = profile
        .get("defaultErrnoRet")
        .and_then(Value::as_u64)
        .unwrap_or(1);
    Ok(json!({
        "defaultAction": default_action,
        "defaultErrnoRet": errno_ret,
        "architectures": architectures,
        "syscalls": syscalls,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Value {
        json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "archMap": [
                {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
            ],
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "args": [], "comment": "", "includes": {}, "excludes": {}},
                {"names": ["arm_only"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm", "arm64"]}, "excludes": {}},
                {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
                {"names": ["chroot"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_CHROOT"]}},
                {"names": ["chroot"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "errno": "EPERM", "excludes": {"caps": ["CAP_SYS_CHROOT"]}},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["new_call"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "7.1"}},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}], "includes": {}},
                {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": null, "includes": {}}
            ]
        })
    }

    #[test]
    fn keeps_rules_satisfied_for_x86_64_and_caps() {
        let oci = to_oci(&profile(), &["CAP_SYS_CHROOT"], (6, 1)).unwrap();
        assert_eq!(oci["defaultErrnoRet"], 38);
        assert_eq!(
            oci["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        let names: Vec<&str> = oci["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["names"][0].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["read", "arch_prctl", "chroot", "personality", "socket"]
        );
        let chroot = &oci["syscalls"][2];
        assert_eq!(chroot["action"], "SCMP_ACT_ALLOW");
        for r in oci["syscalls"].as_array().unwrap() {
            for k in ["includes", "excludes", "comment", "errno"] {
                assert!(r.get(k).is_none(), "{k} left in {r}");
            }
        }
        assert!(oci["syscalls"][4].get("args").is_none());
        assert_eq!(oci["syscalls"][3]["args"][0]["value"], 8);
    }

    #[test]
    fn excludes_apply_without_the_cap_and_kernel_gates_apply() {
        let oci = to_oci(&profile(), &[], (7, 2)).unwrap();
        let rules = oci["syscalls"].as_array().unwrap();
        let chroot: Vec<&Value> = rules.iter().filter(|r| r["names"][0] == "chroot").collect();
        assert_eq!(chroot.len(), 1);
        assert_eq!(chroot[0]["action"], "SCMP_ACT_ERRNO");
        assert_eq!(chroot[0]["errnoRet"], 1);
        assert!(rules.iter().any(|r| r["names"][0] == "new_call"));
    }

    #[test]
    fn rejects_a_profile_without_default_action() {
        assert!(to_oci(&json!({"syscalls": []}), &[], (6, 1)).is_err());
    }
}
