//! linux.seccomp to BPF, with seccompiler's compiler.
//!
//! seccompiler gives each filter one match action, while an OCI profile
//! gives each rule its own. rrun therefore compiles one filter per distinct
//! non-default action (its rules -> that action, anything else -> allow)
//! plus one default filter (every rule's syscall -> allow, anything else ->
//! defaultAction) and loads them all. The kernel runs every loaded filter
//! and takes the most restrictive answer (kill, then trap, errno, trace,
//! log, allow), which is the profile's meaning for the profiles engines ship.
//! Unknown syscall names are skipped with a warning, as runc does. The
//! filters accept only the native architecture (x86_64): others, e.g. the
//! 32-bit int 0x80 entry, are killed rather than let through.

use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt;

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use seccompiler::{BpfProgram, TargetArch};
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("linux.seccomp: {0}")]
    Unsupported(String),
    #[error("linux.seccomp: compiling the filter: {0}")]
    Compile(String),
}

/// Compiled filters, in load order, and the seccomp(2) flags.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub programs: Vec<BpfProgram>,
    pub flags: u32,
}

const EPERM: u32 = 1;

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<Value, SeccompError> {
    use LinuxSeccompAction as A;
    Ok(match a {
        A::ScmpActKill | A::ScmpActKillThread => json!("kill_thread"),
        A::ScmpActKillProcess => json!("kill_process"),
        A::ScmpActTrap => json!("trap"),
        A::ScmpActErrno => json!({"errno": errno.unwrap_or(EPERM)}),
        A::ScmpActTrace => json!({"trace": errno.unwrap_or(EPERM)}),
        A::ScmpActLog => json!("log"),
        A::ScmpActAllow => json!("allow"),
        A::ScmpActNotify => {
            return Err(SeccompError::Unsupported(
                "SCMP_ACT_NOTIFY (seccomp user notification) is not supported yet".into(),
            ));
        }
    })
}

fn condition(index: usize, op: LinuxSeccompOperator, value: u64, value_two: Option<u64>) -> Value {
    use LinuxSeccompOperator as O;
    let (op, val) = match op {
        O::ScmpCmpNe => (json!("ne"), value),
        O::ScmpCmpLt => (json!("lt"), value),
        O::ScmpCmpLe => (json!("le"), value),
        O::ScmpCmpEq => (json!("eq"), value),
        O::ScmpCmpGe => (json!("ge"), value),
        O::ScmpCmpGt => (json!("gt"), value),
        // libseccomp's MASKED_EQ: (arg & value) == valueTwo.
        O::ScmpCmpMaskedEq => (json!({"masked_eq": value}), value_two.unwrap_or(0)),
    };
    json!({"index": index, "type": "qword", "op": op, "val": val})
}

/// seccompiler's JSON for one filter per action (see the module comment).
pub fn filters_json(s: &LinuxSeccomp, skip: &[String]) -> Result<Value, SeccompError> {
    let default = action(s.default_action(), s.default_errno_ret())?;
    let mut groups: BTreeMap<String, (Value, Vec<Value>)> = BTreeMap::new();
    let mut all = Vec::new();
    for sc in s.syscalls().as_deref().unwrap_or_default() {
        let act = action(sc.action(), sc.errno_ret())?;
        if act == default {
            continue;
        }
        let args = sc.args().as_deref().unwrap_or_default();
        for a in args {
            if a.index() > 5 {
                return Err(SeccompError::Unsupported(format!(
                    "argument index {} is over 5",
                    a.index()
                )));
            }
        }
        // Conditions on distinct arguments are ANDed in one rule; several
        // conditions on the same argument become one rule each (ORed), as
        // runc translates them for libseccomp.
        let mut idx: Vec<usize> = args.iter().map(|a| a.index()).collect();
        idx.sort_unstable();
        let repeated = idx.windows(2).any(|w| w[0] == w[1]);
        let conds: Vec<Value> = args
            .iter()
            .map(|a| condition(a.index(), a.op(), a.value(), a.value_two()))
            .collect();
        let cond_sets: Vec<Vec<Value>> = if repeated {
            conds.into_iter().map(|c| vec![c]).collect()
        } else {
            vec![conds]
        };
        for name in sc.names() {
            if skip.contains(name) {
                continue;
            }
            for cs in &cond_sets {
                let rule = if cs.is_empty() {
                    json!({"syscall": name})
                } else {
                    json!({"syscall": name, "args": cs})
                };
                all.push(rule.clone());
                groups
                    .entry(act.to_string())
                    .or_insert_with(|| (act.clone(), Vec::new()))
                    .1
                    .push(rule);
            }
        }
    }
    let mut out = serde_json::Map::new();
    for (i, (_, (act, rules))) in groups.into_iter().enumerate() {
        if act == json!("allow") {
            continue;
        }
        out.insert(
            format!("{i:03}-action"),
            json!({"mismatch_action": "allow", "match_action": act, "filter": rules}),
        );
    }
    if default != json!("allow") {
        out.insert(
            "999-default".into(),
            json!({"mismatch_action": default, "match_action": "allow", "filter": all}),
        );
    }
    Ok(Value::Object(out))
}

fn flags(s: &LinuxSeccomp) -> u32 {
    const TSYNC: u32 = 1;
    const LOG: u32 = 2;
    const SPEC_ALLOW: u32 = 4;
    s.flags()
        .iter()
        .flatten()
        .map(|f| match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => SPEC_ALLOW,
            // Only meaningful with user notification, which is refused.
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 0,
        })
        .fold(0, |a, b| a | b)
}

/// Syscall names of the profile this architecture does not have. Engines'
/// profiles list every architecture's names (dozens unknown on x86_64), so
/// they are found with one tiny compile each rather than one full compile
/// per unknown name, and reported at debug level, as runc does.
fn unknown_names(s: &LinuxSeccomp) -> Vec<String> {
    let mut names: Vec<&String> = s
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|sc| sc.names())
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| {
            let probe = json!({"p": {"mismatch_action": "allow", "match_action": "trap", "filter": [{"syscall": n}]}});
            seccompiler::compile_from_json(probe.to_string().as_bytes(), TargetArch::x86_64).is_err()
        })
        .map(|n| {
            crate::log::debug(&format!("seccomp: unknown syscall {n:?} skipped"));
            n.clone()
        })
        .collect()
}

/// Compiles the profile. Unknown syscall names are dropped (debug log).
pub fn compile(s: &LinuxSeccomp) -> Result<Compiled, SeccompError> {
    let mut skip: Vec<String> = unknown_names(s);
    loop {
        let doc = filters_json(s, &skip)?;
        match seccompiler::compile_from_json(doc.to_string().as_bytes(), TargetArch::x86_64) {
            Ok(map) => {
                let mut keys: Vec<_> = map.keys().cloned().collect();
                keys.sort();
                let mut map = map;
                let programs = keys.iter().filter_map(|k| map.remove(k)).collect();
                return Ok(Compiled {
                    programs,
                    flags: flags(s),
                });
            }
            Err(e) => {
                let msg = e.to_string();
                // seccompiler keeps its syscall table private: its error
                // names the unknown syscall, which we skip and retry.
                let unknown = msg
                    .split("Invalid syscall name: ")
                    .nth(1)
                    .and_then(|r| r.split(" for given arch").next())
                    .map(str::to_string);
                match unknown {
                    Some(name) if !skip.contains(&name) => {
                        crate::log::debug(&format!("seccomp: unknown syscall {name:?} skipped"));
                        skip.push(name);
                    }
                    _ => return Err(SeccompError::Compile(msg)),
                }
            }
        }
    }
}

/// Loads the compiled filters into the calling process.
pub fn load(c: &Compiled) -> Result<(), nix::Error> {
    for p in &c.programs {
        crate::sys::seccomp_load(p, c.flags)?;
    }
    Ok(())
}

/// Where compiled filters are cached: a root-only system cache (FHS
/// /var/cache), shared by every state root. None for unprivileged users,
/// who compile every time.
pub fn cache_dir() -> Option<std::path::PathBuf> {
    nix::unistd::geteuid()
        .is_root()
        .then(|| std::path::PathBuf::from("/var/cache/rrun/seccomp"))
}

/// [`compile`] through the cache, when there is one.
pub fn compile_with_cache(s: &LinuxSeccomp) -> Result<Compiled, SeccompError> {
    match cache_dir() {
        Some(dir) => compile_cached(s, &dir),
        None => compile(s),
    }
}

/// [`compile`] through a cache of compiled filters in `dir`, keyed by the
/// SHA-256 of the profile: engines pass the same profile on every create
/// and exec, and compiling podman's takes tens of milliseconds. A missing,
/// unreadable or corrupt entry is simply compiled again.
pub fn compile_cached(s: &LinuxSeccomp, dir: &std::path::Path) -> Result<Compiled, SeccompError> {
    use sha2::{Digest, Sha256};
    let key = serde_json::to_vec(s).map_err(|e| SeccompError::Compile(e.to_string()))?;
    let hash: String = Sha256::digest(&key)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = dir.join(format!("{hash}.json"));
    if let Ok(data) = std::fs::read(&path)
        && let Ok((programs, flags)) =
            serde_json::from_slice::<(Vec<Vec<(u16, u8, u8, u32)>>, u32)>(&data)
    {
        let programs = programs
            .into_iter()
            .map(|p| {
                p.into_iter()
                    .map(|(code, jt, jf, k)| seccompiler::sock_filter { code, jt, jf, k })
                    .collect()
            })
            .collect();
        return Ok(Compiled { programs, flags });
    }
    let c = compile(s)?;
    let raw: Vec<Vec<(u16, u8, u8, u32)>> = c
        .programs
        .iter()
        .map(|p| p.iter().map(|f| (f.code, f.jt, f.jf, f.k)).collect())
        .collect();
    if std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .is_ok()
        && let Ok(data) = serde_json::to_vec(&(raw, c.flags))
    {
        let _ = crate::state::write_atomic(&path, &data);
    }
    Ok(c)
}

/// What `rrun features` reports.
pub fn features() -> Value {
    json!({
        "enabled": true,
        "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
        "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                      "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
        "archs": ["SCMP_ARCH_X86_64"],
        "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(j: &str) -> LinuxSeccomp {
        serde_json::from_str(j).unwrap()
    }

    #[test]
    fn allowlist_profile() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
                {"names":["read","write"],"action":"SCMP_ACT_ALLOW"},
                {"names":["clone3"],"action":"SCMP_ACT_ERRNO","errnoRet":38},
                {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"}]},
                {"names":["no_such_syscall"],"action":"SCMP_ACT_ALLOW"}]}"#,
        );
        let j = filters_json(&p, &[]).unwrap();
        let def = &j["999-default"];
        assert_eq!(def["mismatch_action"], json!({"errno": 1}));
        assert_eq!(def["filter"].as_array().unwrap().len(), 5);
        assert_eq!(j.as_object().unwrap().len(), 2, "default + errno 38");
        let c = compile(&p).unwrap();
        assert_eq!(c.programs.len(), 2);
    }

    #[test]
    fn blocklist_and_masked_eq() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG"],"syscalls":[
                {"names":["mkdir"],"action":"SCMP_ACT_ERRNO"},
                {"names":["clone"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":2080505856,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#,
        );
        let j = filters_json(&p, &[]).unwrap();
        assert!(j.get("999-default").is_none());
        let rules = j.as_object().unwrap().values().next().unwrap()["filter"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(
            rules[1]["args"][0]["op"],
            json!({"masked_eq": 2080505856u64})
        );
        let c = compile(&p).unwrap();
        assert_eq!((c.programs.len(), c.flags), (1, 2));
    }

    #[test]
    fn cache_returns_the_same_programs() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"}]}"#,
        );
        let tmp = tempfile::tempdir().unwrap();
        let a = compile_cached(&p, tmp.path()).unwrap();
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
        let b = compile_cached(&p, tmp.path()).unwrap();
        assert_eq!(a.programs, b.programs);
        assert_eq!(a.flags, b.flags);
        // A corrupt entry is recompiled, not trusted.
        let entry = std::fs::read_dir(tmp.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        std::fs::write(&entry, b"garbage").unwrap();
        assert_eq!(compile_cached(&p, tmp.path()).unwrap().programs, a.programs);
    }

    #[test]
    fn notify_is_refused() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        );
        assert!(compile(&p).is_err());
    }
}
