//! `features` (runtime-spec features.md), claims that must match behaviour,
//! the verbs not offered (checkpoint, restore) and the JSON error log.

#[macro_use]
mod common;

use common::*;
use serde_json::{Value, json};
use std::fs;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// `features` parsed (asserts exit 0 and a JSON object on stdout).
#[track_caller]
fn features() -> Value {
    let c = Container::new(Bundle::new());
    let o = c.rrun(&["features"]);
    o.ok();
    let v: Value = serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("features is not JSON ({e}):\n{o}"));
    assert!(v.is_object(), "features is not an object:\n{o}");
    v
}

/// An array of strings (panics otherwise, naming `what`).
#[track_caller]
fn strings<'a>(v: &'a Value, what: &str) -> Vec<&'a str> {
    v.as_array()
        .unwrap_or_else(|| panic!("{what} is not an array: {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("{what} has a non-string item: {s}"))
        })
        .collect()
}

#[track_caller]
fn assert_unique(items: &[&str], what: &str) {
    let mut v = items.to_vec();
    v.sort();
    v.dedup();
    assert_eq!(v.len(), items.len(), "{what} has duplicates: {items:?}");
}

/// "MAJOR.MINOR.PATCH[-suffix]" as numbers.
#[track_caller]
fn semver(s: &str) -> (u64, u64, u64) {
    let core = s.split(['-', '+']).next().unwrap();
    let parts: Vec<u64> = core
        .split('.')
        .map(|p| {
            p.parse()
                .unwrap_or_else(|_| panic!("not a semantic version: {s:?}"))
        })
        .collect();
    assert_eq!(parts.len(), 3, "not a semantic version: {s:?}");
    (parts[0], parts[1], parts[2])
}

/// `{ "enabled": bool }` when present; returns the flag.
#[track_caller]
fn enabled_object(v: &Value, what: &str) -> Option<bool> {
    if v.is_null() {
        return None;
    }
    let o = v
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not an object: {v}"));
    o.get("enabled").map(|e| {
        e.as_bool()
            .unwrap_or_else(|| panic!("{what}.enabled is not a boolean: {e}"))
    })
}

// ---------------------------------------------------------------------------
// The document
// ---------------------------------------------------------------------------

/// The structure of schema/features-schema.json (and features-linux.json)
/// of the runtime-spec, checked by hand: required versions, arrays of
/// strings, booleans, the enumerations of namespaces and seccomp values.
#[test]
fn features_document_has_the_spec_structure() {
    let f = features();
    let known_top = [
        "ociVersionMin",
        "ociVersionMax",
        "hooks",
        "mountOptions",
        "linux",
        "annotations",
        "potentiallyUnsafeConfigAnnotations",
    ];
    for k in f.as_object().unwrap().keys() {
        assert!(known_top.contains(&k.as_str()), "unknown top-level {k}");
    }
    // Required: the supported range of the spec.
    let min = f["ociVersionMin"].as_str().expect("ociVersionMin string");
    let max = f["ociVersionMax"].as_str().expect("ociVersionMax string");
    assert!(
        semver(min) <= semver(max),
        "ociVersionMin {min} > Max {max}"
    );
    assert_eq!(semver(min).0, 1, "ociVersionMin {min}");
    assert!(semver(max) >= (1, 0, 2), "ociVersionMax {max}");

    let hooks = strings(&f["hooks"], "hooks");
    assert_unique(&hooks, "hooks");
    for h in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        assert!(hooks.contains(&h), "hook {h} missing: {hooks:?}");
    }
    for h in &hooks {
        assert!(
            [
                "prestart",
                "createRuntime",
                "createContainer",
                "startContainer",
                "poststart",
                "poststop"
            ]
            .contains(h),
            "unknown hook {h}"
        );
    }

    let opts = strings(&f["mountOptions"], "mountOptions");
    assert_unique(&opts, "mountOptions");
    for o in [
        "ro", "rw", "bind", "rbind", "nosuid", "nodev", "noexec", "private", "rprivate",
    ] {
        assert!(opts.contains(&o), "mount option {o} missing");
    }
    assert!(opts.iter().all(|o| !o.is_empty() && !o.contains(',')));

    if let Some(a) = f.get("annotations").filter(|a| !a.is_null()) {
        let a = a.as_object().expect("annotations is an object");
        for (k, v) in a {
            assert!(!k.is_empty(), "empty annotation key");
            assert!(v.is_string(), "annotation {k} is not a string: {v}");
        }
    }
    if let Some(p) = f.get("potentiallyUnsafeConfigAnnotations") {
        strings(p, "potentiallyUnsafeConfigAnnotations");
    }

    let linux = &f["linux"];
    assert!(linux.is_object(), "linux missing: {f}");
    let ns = strings(&linux["namespaces"], "linux.namespaces");
    assert_unique(&ns, "linux.namespaces");
    let all_ns = [
        "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
    ];
    for n in &ns {
        assert!(all_ns.contains(n), "unknown namespace type {n}");
    }
    for n in ["mount", "pid", "network", "uts", "ipc"] {
        assert!(ns.contains(&n), "namespace {n} missing: {ns:?}");
    }

    let caps = strings(&linux["capabilities"], "linux.capabilities");
    assert_unique(&caps, "linux.capabilities");
    for c in &caps {
        let name = c.strip_prefix("CAP_").unwrap_or("");
        assert!(
            !name.is_empty() && name.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_'),
            "bad capability name {c}"
        );
        cap_number(c); // a known capability
    }
    // Every capability this kernel knows up to CAP_CHECKPOINT_RESTORE.
    let last: u32 = fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .map(|s| s.trim().parse().unwrap())
        .unwrap_or(40)
        .min(40);
    for c in &caps {
        assert!(cap_number(c) <= 63);
    }
    let numbers: Vec<u32> = caps.iter().map(|c| cap_number(c)).collect();
    for n in 0..=last {
        assert!(numbers.contains(&n), "capability number {n} missing");
    }

    let cg = &linux["cgroup"];
    assert!(cg.is_object(), "linux.cgroup missing");
    for (k, v) in cg.as_object().unwrap() {
        assert!(
            ["v1", "v2", "systemd", "systemdUser", "rdma"].contains(&k.as_str()),
            "unknown linux.cgroup.{k}"
        );
        assert!(v.is_boolean(), "linux.cgroup.{k} is not a boolean: {v}");
    }
    // This host mounts v1 hierarchies (tests rely on them): v1 is needed.
    assert_eq!(cg["v1"], json!(true), "cgroup v1 not claimed");

    let sc = &linux["seccomp"];
    assert!(sc.is_object(), "linux.seccomp missing");
    assert!(sc["enabled"].is_boolean(), "seccomp.enabled: {sc}");
    let enums: [(&str, &[&str]); 2] = [
        (
            "actions",
            &[
                "SCMP_ACT_KILL",
                "SCMP_ACT_KILL_PROCESS",
                "SCMP_ACT_KILL_THREAD",
                "SCMP_ACT_TRAP",
                "SCMP_ACT_ERRNO",
                "SCMP_ACT_TRACE",
                "SCMP_ACT_ALLOW",
                "SCMP_ACT_LOG",
                "SCMP_ACT_NOTIFY",
            ],
        ),
        (
            "operators",
            &[
                "SCMP_CMP_NE",
                "SCMP_CMP_LT",
                "SCMP_CMP_LE",
                "SCMP_CMP_EQ",
                "SCMP_CMP_GE",
                "SCMP_CMP_GT",
                "SCMP_CMP_MASKED_EQ",
            ],
        ),
    ];
    for (k, allowed) in enums {
        if let Some(v) = sc.get(k) {
            for s in strings(v, k) {
                assert!(allowed.contains(&s), "unknown seccomp {k} value {s}");
            }
        }
    }
    for k in ["archs", "knownFlags", "supportedFlags"] {
        if let Some(v) = sc.get(k) {
            let items = strings(v, k);
            if k == "archs" {
                assert!(
                    items.iter().all(|a| a.starts_with("SCMP_ARCH_")),
                    "{items:?}"
                );
            }
        }
    }
    for k in ["apparmor", "selinux", "intelRdt"] {
        enabled_object(&linux[k], k);
    }
    if let Some(me) = linux.get("mountExtensions") {
        assert!(me.is_object(), "mountExtensions: {me}");
        enabled_object(&me["idmap"], "mountExtensions.idmap");
    }
}

#[test]
fn features_is_stable_and_quiet() {
    let c = Container::new(Bundle::new());
    let a = c.rrun(&["features"]);
    let b = c.rrun(&["features"]);
    a.ok();
    assert_eq!(a.stdout, b.stdout, "features output differs between runs");
    assert!(a.stderr.trim().is_empty(), "features wrote to stderr:\n{a}");
}

// ---------------------------------------------------------------------------
// Claims versus behaviour
// ---------------------------------------------------------------------------

/// Every namespace type claimed (except user, which needs mappings) can be
/// requested, all at once, and the container really gets each of them.
#[test]
fn claimed_namespaces_can_be_created() {
    let f = features();
    let claimed = strings(&f["linux"]["namespaces"], "linux.namespaces");
    let mut b = Bundle::new().sh("true");
    let mut check = Vec::new();
    for ns in &claimed {
        let proc_name = match *ns {
            "mount" => "mnt",
            "network" => "net",
            "user" => continue,
            "time" if !std::path::Path::new("/proc/self/ns/time").exists() => continue,
            other => other,
        };
        if !b.has_namespace(ns) {
            b = b.namespace(ns, None);
        }
        check.push(proc_name);
    }
    let c = Container::new(b.args(&["sleep", "30"]));
    c.create().ok();
    let pid = c.pid().to_string();
    for n in check {
        assert_ne!(ns_of(&pid, n), ns_of("self", n), "{n} namespace not new");
    }
    c.delete().ok();
    c.assert_clean();
}

/// seccomp: when claimed, a filter is applied; when not, a config asking
/// for one must be refused (running unfiltered would silently drop a
/// security setting).
#[test]
fn seccomp_claim_matches_behaviour() {
    let f = features();
    let enabled = f["linux"]["seccomp"]["enabled"].as_bool().unwrap_or(false);
    let c = Container::new(
        Bundle::new()
            .with(|v| {
                v["linux"]["seccomp"] = json!({
                    "defaultAction": "SCMP_ACT_ALLOW",
                    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32",
                                      "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
                    "syscalls": [
                        { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO" }
                    ]
                })
            })
            .sh("grep '^Seccomp:' /proc/self/status; mkdir /dev/shm/x 2>/dev/null && echo created || echo denied"),
    );
    let o = c.run();
    if enabled {
        o.ok();
        assert!(o.stdout.contains("Seccomp:\t2"), "no filter:\n{o}");
        assert!(o.stdout.contains("denied"), "mkdir not denied:\n{o}");
        assert!(!o.stdout.contains("created"), "mkdir not denied:\n{o}");
    } else {
        assert!(
            !o.success(),
            "features says seccomp is not supported, yet a config with \
             linux.seccomp ran (unfiltered?):\n{o}"
        );
        o.failed()
            .stderr_is_short_error()
            .stderr_mentions(&["seccomp"]);
    }
    c.assert_clean();
}

// ---------------------------------------------------------------------------
// checkpoint / restore
// ---------------------------------------------------------------------------

fn not_supported(verb: &str) {
    require!(!is_runc(), "runc implements {verb} (with criu)");
    let c = Container::new(Bundle::new().args(&["sleep", "30"]));
    c.create().ok();
    let o = c.rrun(&[verb, &c.id]);
    o.failed();
    let lines: Vec<&str> = o.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one error line:\n{o}");
    assert!(lines[0].contains("not supported"), "{o}");
    assert!(lines[0].contains(verb), "{o}");
    assert!(o.stdout.is_empty(), "{o}");
    // The container is untouched.
    assert_eq!(c.status(), "created");
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn checkpoint_is_not_supported() {
    not_supported("checkpoint");
}

#[test]
fn restore_is_not_supported() {
    not_supported("restore");
}

// ---------------------------------------------------------------------------
// --log-format json
// ---------------------------------------------------------------------------

/// The last line of the log file, parsed; checks level, msg and time.
#[track_caller]
fn last_error_entry(log: &std::path::Path, o: &Output) -> Value {
    let text = fs::read_to_string(log)
        .unwrap_or_else(|e| panic!("log {} not written ({e}):\n{o}", log.display()));
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_else(|| panic!("log is empty:\n{o}"));
    let v: Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("last log line is not JSON ({e}): {last:?}"));
    assert_eq!(v["level"], "error", "{last}");
    assert!(
        v["msg"].as_str().is_some_and(|m| !m.is_empty()),
        "no msg: {last}"
    );
    let time = v["time"]
        .as_str()
        .unwrap_or_else(|| panic!("no time: {last}"));
    let t = chrono::DateTime::parse_from_rfc3339(time)
        .unwrap_or_else(|e| panic!("time {time:?} is not RFC 3339: {e}"));
    let skew = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
        .num_seconds()
        .abs();
    assert!(skew < 120, "log time {time} is {skew}s off");
    v
}

#[test]
fn json_log_after_failing_exec() {
    let c = Container::new(Bundle::new());
    fs::create_dir_all(&c.root).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("rrun.log");
    let l = log.to_string_lossy().into_owned();
    let o = c.rrun(&[
        "--log",
        &l,
        "--log-format",
        "json",
        "exec",
        "rrun-test-no-such-container",
        "true",
    ]);
    o.failed();
    let v = last_error_entry(&log, &o);
    let msg = v["msg"].as_str().unwrap().to_lowercase();
    assert!(
        ["not exist", "not found", "no such"]
            .iter()
            .any(|w| msg.contains(w)),
        "msg does not name the problem: {v}"
    );
}

#[test]
fn json_log_after_failing_exec_into_stopped_container() {
    let c = Container::new(Bundle::new().sh("true"));
    c.create().ok();
    c.start().ok();
    c.wait_status("stopped");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("rrun.log");
    let l = log.to_string_lossy().into_owned();
    let o = c.rrun(&["--log", &l, "--log-format", "json", "exec", &c.id, "true"]);
    o.failed();
    let v = last_error_entry(&log, &o);
    let msg = v["msg"].as_str().unwrap().to_lowercase();
    assert!(
        msg.contains("stopped") || msg.contains("not running"),
        "msg does not name the problem: {v}"
    );
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn json_log_appends() {
    let c = Container::new(Bundle::new());
    fs::create_dir_all(&c.root).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("rrun.log");
    fs::write(
        &log,
        "{\"level\":\"info\",\"msg\":\"earlier\",\"time\":\"x\"}\n",
    )
    .unwrap();
    let l = log.to_string_lossy().into_owned();
    let o = c.rrun(&[
        "--log",
        &l,
        "--log-format",
        "json",
        "exec",
        "rrun-test-no-such-container",
        "true",
    ]);
    o.failed();
    last_error_entry(&log, &o);
    let text = fs::read_to_string(&log).unwrap();
    assert!(
        text.starts_with("{\"level\":\"info\",\"msg\":\"earlier\""),
        "log truncated:\n{text}"
    );
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|e| panic!("log line not JSON ({e}): {line:?}"));
    }
}
