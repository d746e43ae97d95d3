//! Property tests: whatever config.json, annotations, seccomp profile or
//! argv rrun is given, it never panics, exits 0 or 1, and leaves nothing
//! behind (docs/robustness.md). Cases are bounded so the file runs in well
//! under a minute; `PROPTEST_CASES=N` runs more.

mod common;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn runner(n: u32) -> TestRunner {
    TestRunner::new(Config {
        cases: cases(n),
        failure_persistence: None,
        max_shrink_iters: 64,
        ..Config::default()
    })
}

/// A fresh state root and a bundle whose config we overwrite per case.
struct Env {
    root: PathBuf,
    bundle: Bundle,
    cg: String,
    n: std::cell::Cell<usize>,
}

impl Env {
    fn new() -> Env {
        let name = unique_name();
        Env {
            root: PathBuf::from(format!("/run/{name}")),
            bundle: Bundle::new(),
            cg: name,
            n: std::cell::Cell::new(0),
        }
    }

    fn id(&self) -> String {
        self.n.set(self.n.get() + 1);
        format!("{}-c{}", self.cg, self.n.get())
    }

    fn rr(&self, args: &[&str], timeout: Duration) -> Output {
        let mut c = Command::new(rrun_bin());
        c.arg("--root").arg(&self.root).args(args);
        run_timeout(c, timeout)
    }

    /// create with `config` (raw bytes), then delete --force; checks the
    /// properties and returns create's output.
    fn create_and_delete(&self, config: &[u8]) -> Result<Output, TestCaseError> {
        fs::write(self.bundle.file("config.json"), config).unwrap();
        let id = self.id();
        let bp = self.bundle.path().to_string_lossy().into_owned();
        let o = self.rr(&["create", "--bundle", &bp, &id], TIMEOUT);
        prop_assert!(!o.stderr.contains("panicked"), "panic:\n{}", o);
        prop_assert!(
            matches!(o.code, Some(0) | Some(1)),
            "exit code not 0/1:\n{}",
            o
        );
        if o.code == Some(1) {
            prop_assert!(!o.stderr.trim().is_empty(), "silent failure:\n{}", o);
        }
        let d = self.rr(&["delete", "--force", &id], TIMEOUT);
        prop_assert!(!d.stderr.contains("panicked"), "panic:\n{}", d);
        if o.success() {
            prop_assert!(d.success(), "delete --force after create:\n{}", d);
        }
        prop_assert!(
            !self.root.join(&id).exists(),
            "state dir left after create ({:?}) and delete",
            o.code
        );
        for c in cgroup_dirs(&self.cg) {
            prop_assert!(!c.exists(), "cgroup left: {}", c.display());
        }
        let m = mounts_mentioning(&self.bundle.path().to_string_lossy());
        prop_assert!(m.is_empty(), "mounts left: {:?}", m);
        Ok(o)
    }

    fn base(&self) -> Value {
        let mut c = base_config(&rootfs(), "fuzz", &self.cg);
        c["process"]["args"] = json!(["true"]);
        c
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Ok(rd) = fs::read_dir(&self.root) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.rr(&["delete", "--force", &id], TIMEOUT);
            }
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

fn odd_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("/".to_string()),
        Just("..".to_string()),
        Just("../../..".to_string()),
        Just("/proc/self".to_string()),
        Just("a\0b".to_string()),
        Just("\u{202e}é∂".to_string()),
        Just("x".repeat(5000)),
        Just("-1".to_string()),
        Just("18446744073709551616".to_string()),
        Just("1e309".to_string()),
        Just("NaN".to_string()),
        Just("rw,ro,bind,nosuid".to_string()),
        "[a-z/._=,-]{0,24}",
        any::<String>().prop_map(|s| s.chars().take(40).collect()),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        Just(json!(-1)),
        Just(json!(0)),
        Just(json!(1.5)),
        odd_string().prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-zA-Z]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every JSON pointer of `v` (objects and arrays, depth-first).
fn pointers(v: &Value, here: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{here}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(x, p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let p = format!("{here}/{i}");
                out.push(p.clone());
                pointers(x, p, out);
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the value at pointer index (mod len) with a random value.
    Replace(usize, Value),
    /// Remove the key/element at pointer index.
    Remove(usize),
    /// Add a key with a random value to the object at pointer index.
    AddKey(usize, String, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), value()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        2 => any::<usize>().prop_map(Mutation::Remove),
        1 => (any::<usize>(), "[a-zA-Z]{1,12}", value()).prop_map(|(i, k, v)| Mutation::AddKey(i, k, v)),
    ]
}

fn apply(c: &mut Value, m: &Mutation) {
    let mut ps = Vec::new();
    pointers(c, String::new(), &mut ps);
    if ps.is_empty() {
        return;
    }
    let pick = |i: usize| ps[i % ps.len()].clone();
    match m {
        Mutation::Replace(i, v) => {
            if let Some(x) = c.pointer_mut(&pick(*i)) {
                *x = v.clone();
            }
        }
        Mutation::Remove(i) => {
            let p = pick(*i);
            let (parent, last) = p.rsplit_once('/').unwrap();
            match c.pointer_mut(parent) {
                Some(Value::Object(m)) => {
                    m.remove(&last.replace("~1", "/").replace("~0", "~"));
                }
                Some(Value::Array(a)) => {
                    if let Ok(n) = last.parse::<usize>()
                        && n < a.len()
                    {
                        a.remove(n);
                    }
                }
                _ => {}
            }
        }
        Mutation::AddKey(i, k, v) => {
            if let Some(Value::Object(m)) = c.pointer_mut(&pick(*i)) {
                m.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Keep the host safe whatever the mutations did: the container always
/// has its own mount namespace and our cgroupsPath, and runs no host hook.
fn keep_safe(c: &mut Value, cg: &str) {
    if !c.is_object() {
        return;
    }
    if !c["linux"].is_object() {
        c["linux"] = json!({});
    }
    c["linux"]["cgroupsPath"] = json!(cg);
    let ns = c["linux"]["namespaces"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut ns: Vec<Value> = ns
        .into_iter()
        .filter(|n| n.get("type") != Some(&json!("mount")) && n.get("path").is_none())
        .collect();
    ns.push(json!({ "type": "mount" }));
    c["linux"]["namespaces"] = json!(ns);
    if let Some(h) = c.get_mut("hooks") {
        *h = json!({});
    }
    // Nothing on the host is a mount source but the shared rootfs.
    if let Some(ms) = c["mounts"].as_array_mut() {
        for m in ms {
            if m.is_object() {
                let ty = m.get("type").and_then(Value::as_str).unwrap_or("");
                let bind = ty == "bind"
                    || m["options"]
                        .as_array()
                        .is_some_and(|o| o.iter().any(|x| x == "bind" || x == "rbind"));
                if bind {
                    m["source"] = json!(rootfs().to_string_lossy());
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

#[test]
fn mutated_configs_never_panic_or_leak() {
    require!(is_root(), "needs root");
    let env = Env::new();
    let base = env.base();
    let mut r = runner(200);
    let ok = std::cell::Cell::new(0usize);
    let n = std::cell::Cell::new(0usize);
    r.run(
        &(prop::collection::vec(mutation(), 1..4), 0u8..20),
        |(ms, raw)| {
            let mut c = base.clone();
            for m in &ms {
                apply(&mut c, m);
            }
            keep_safe(&mut c, &env.cg);
            let mut bytes = serde_json::to_vec(&c).unwrap();
            // Sometimes not JSON at all: truncated or with a stray byte.
            if raw == 0 {
                bytes.truncate(bytes.len() / 2);
            } else if raw == 1 {
                bytes.insert(bytes.len() / 3, 0xff);
            }
            let o = env.create_and_delete(&bytes)?;
            n.set(n.get() + 1);
            if o.success() {
                ok.set(ok.get() + 1);
            }
            Ok(())
        },
    )
    .unwrap();
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("mutated configs: {} cases, {} created\n", n.get(), ok.get()).as_bytes(),
    );
}

const RRUN_KEYS: &[&str] = &[
    "rrun.init",
    "rrun.restart",
    "rrun.restart.delay",
    "rrun.restart.multiplier",
    "rrun.restart.max-delay",
    "rrun.restart.reset-after",
    "rrun.restart.limit",
    "rrun.restart.success-exit",
    "rrun.restart.prevent-exit",
    "rrun.stop-timeout",
    "rrun.signal-group",
    "rrun.health.cmd",
    "rrun.health.interval",
    "rrun.health.timeout",
    "rrun.health.retries",
    "rrun.health.start-period",
    "rrun.bogus",
];

fn annotation_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("true".to_string()),
        Just("false".to_string()),
        Just("0".to_string()),
        Just("0s".to_string()),
        Just("1ms".to_string()),
        Just("99999999999999999999s".to_string()),
        Just("18446744073709551615ms".to_string()),
        Just("-5s".to_string()),
        Just("1e308".to_string()),
        Just("inf".to_string()),
        Just("5/0s".to_string()),
        Just("0/1s".to_string()),
        Just("on-failure:".to_string()),
        Just("on-failure:-1".to_string()),
        Just("on-failure:4294967296".to_string()),
        Just("[]".to_string()),
        Just("[\"sh\"".to_string()),
        Just("[1,2]".to_string()),
        Just("1,2,,3".to_string()),
        Just("256,-1".to_string()),
        "(no|always|on-success|on-failure|on-abnormal|on-abort)(:[0-9]{1,3})?",
        "[0-9]{1,12}(ns|us|ms|s|m|h|d)?",
        "[0-9]{1,4}/[0-9]{1,4}(ms|s|m|h)",
        odd_string(),
    ]
}

#[test]
fn random_rrun_annotations_never_panic() {
    require!(is_root(), "needs root");
    let env = Env::new();
    let base = env.base();
    let mut r = runner(120);
    r.run(
        &prop::collection::btree_map(prop::sample::select(RRUN_KEYS), annotation_value(), 1..5),
        |ann| {
            let mut c = base.clone();
            c["annotations"] = json!(ann);
            env.create_and_delete(&serde_json::to_vec(&c).unwrap())?;
            Ok(())
        },
    )
    .unwrap();
}

fn seccomp_profile() -> impl Strategy<Value = Value> {
    let action = prop::sample::select(vec![
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_LOG",
        "SCMP_ACT_NOTIFY",
        "SCMP_ACT_BOGUS",
    ]);
    let op = prop::sample::select(vec![
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
        "SCMP_CMP_NOPE",
    ]);
    let name = prop_oneof![
        prop::sample::select(vec![
            "getcwd",
            "mkdir",
            "read",
            "write",
            "execve",
            "personality",
            "chmod",
            "socket",
            "clone",
            "ptrace",
            "no_such_syscall",
            "",
            "open_by_handle_at",
        ])
        .prop_map(str::to_string),
        "[a-z_0-9]{1,20}",
    ];
    let arg = (0u32..8, any::<u64>(), prop::option::of(any::<u64>()), op).prop_map(
        |(index, value, value_two, op)| {
            let mut a = json!({ "index": index, "value": value, "op": op });
            if let Some(v2) = value_two {
                a["valueTwo"] = json!(v2);
            }
            a
        },
    );
    let rule = (
        prop::collection::vec(name, 0..4),
        action.clone(),
        prop::option::of(0u32..200),
        prop::collection::vec(arg, 0..3),
    )
        .prop_map(|(names, action, errno, args)| {
            let mut r = json!({ "names": names, "action": action, "args": args });
            if let Some(e) = errno {
                r["errnoRet"] = json!(e);
            }
            r
        });
    let arch = prop::sample::select(vec![
        "SCMP_ARCH_X86_64",
        "SCMP_ARCH_X86",
        "SCMP_ARCH_X32",
        "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_NOPE",
    ]);
    let flag = prop::sample::select(vec![
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_BOGUS",
    ]);
    (
        prop_oneof![
            3 => Just("SCMP_ACT_ALLOW"),
            1 => action,
        ],
        prop::collection::vec(arch, 0..3),
        prop::collection::vec(flag, 0..2),
        prop::collection::vec(rule, 0..5),
        prop::option::of(0u32..200),
    )
        .prop_map(|(default, arches, flags, rules, errno)| {
            let mut p = json!({
                "defaultAction": default,
                "architectures": arches,
                "flags": flags,
                "syscalls": rules,
            });
            if let Some(e) = errno {
                p["defaultErrnoRet"] = json!(e);
            }
            p
        })
}

#[test]
fn random_seccomp_profiles_work_or_fail_clearly() {
    require!(
        !is_runc(),
        "runc 1.1 hangs on some of these profiles (create does not return in 30 s)"
    );
    require!(is_root(), "needs root");
    let env = Env::new();
    let base = env.base();
    let mut r = runner(120);
    r.run(&seccomp_profile(), |p| {
        let mut c = base.clone();
        c["linux"]["seccomp"] = p;
        let o = env.create_and_delete(&serde_json::to_vec(&c).unwrap())?;
        if !o.success() {
            prop_assert!(
                o.stderr.lines().filter(|l| !l.trim().is_empty()).count() <= 5,
                "error should be short:\n{}",
                o
            );
        }
        Ok(())
    })
    .unwrap();
}

fn arg_token() -> impl Strategy<Value = Vec<u8>> {
    let words = prop::sample::select(vec![
        "create",
        "start",
        "run",
        "kill",
        "delete",
        "state",
        "list",
        "ps",
        "pause",
        "resume",
        "update",
        "exec",
        "spec",
        "features",
        "checkpoint",
        "restore",
        "unpack",
        "help",
        "--force",
        "-f",
        "--all",
        "-a",
        "--detach",
        "-d",
        "--bundle",
        "-b",
        "--pid-file",
        "--console-socket",
        "--format",
        "json",
        "table",
        "--quiet",
        "-q",
        "--log",
        "--log-format",
        "--debug",
        "--systemd-cgroup",
        "--no-pivot",
        "--preserve-fds",
        "99999999999",
        "-1",
        "--keep",
        "--rootless",
        "--interval",
        "0s",
        "--stats",
        "KILL",
        "SIGTERM",
        "0",
        "65",
        "--",
        "-",
        "--help",
        "--version",
        "-t",
        "--process",
        "--resources",
        "--memory",
        "--pids-limit",
        "x=y",
    ])
    .prop_map(|s| s.as_bytes().to_vec());
    prop_oneof![
        6 => words,
        1 => prop::collection::vec(any::<u8>(), 0..12)
            .prop_map(|v| v.into_iter().filter(|b| *b != 0).collect()),
        1 => "[a-z0-9._-]{1,10}".prop_map(|s| s.into_bytes()),
        1 => Just(b"..".to_vec()),
        1 => Just(vec![b'a'; 1024]),
        1 => Just(b"\xff\xfe".to_vec()),
    ]
}

#[test]
fn random_argv_never_panics() {
    require!(
        !is_runc(),
        "runc 1.1 answers an unknown word with exit 3 (\"No help topic\"), outside 0/1/2/255"
    );
    let env = Env::new();
    let cwd = tempfile::tempdir().unwrap();
    let mut r = runner(200);
    r.run(&prop::collection::vec(arg_token(), 0..6), |argv| {
        let mut c = Command::new(rrun_bin());
        c.current_dir(cwd.path()).env_remove("RRUN_FAILPOINT");
        // Always our own root (the random words never include --root, and
        // no token climbs out of the temp cwd: nothing on the host is hit).
        c.arg("--root").arg(&env.root);
        for a in &argv {
            c.arg(OsString::from_vec(a.clone()));
        }
        let mut bg = Background::spawn(c);
        // `events` and foreground commands may legitimately block.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut timed_out = false;
        while let Ok(None) = bg.child.try_wait() {
            if std::time::Instant::now() > deadline {
                let _ = bg.child.kill();
                timed_out = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let o = bg.wait(TIMEOUT);
        prop_assert!(!o.stderr.contains("panicked"), "panic:\n{}", o);
        if !timed_out {
            // 255: a failed `exec`, as runc reports it.
            prop_assert!(
                matches!(o.code, Some(0) | Some(1) | Some(2) | Some(255)),
                "exit code (0, 1, 2 for usage, or 255 for exec) expected:\n{}",
                o
            );
        }
        Ok(())
    })
    .unwrap();
    // A random argv may have written files here (spec, logs): fine, it is
    // a temp dir; it must not have left state we cannot delete.
    scrub_root(&env.root);
}

fn scrub_root(root: &Path) {
    if let Ok(rd) = fs::read_dir(root) {
        for e in rd.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            let mut c = Command::new(rrun_bin());
            c.arg("--root").arg(root).args(["delete", "--force", &id]);
            let _ = run_timeout(c, TIMEOUT);
        }
    }
}

/// The smallest case the random argv finds: one non-UTF-8 argument. rrun
/// must answer with a usage error, not a panic (exit 101).
#[test]
fn non_utf8_argument_is_an_error_not_a_panic() {
    require!(
        !is_runc(),
        "runc 1.1 answers an unknown word with exit 3 (\"No help topic\"), outside 0/1/2/255"
    );
    let env = Env::new();
    for argv in [
        vec![b"\xff".to_vec()],
        vec![b"state".to_vec(), b"id\xfe".to_vec()],
        vec![b"list".to_vec(), b"--format".to_vec(), b"\xff".to_vec()],
    ] {
        let mut c = Command::new(rrun_bin());
        c.arg("--root").arg(&env.root);
        for a in &argv {
            c.arg(OsString::from_vec(a.clone()));
        }
        let o = run_timeout(c, TIMEOUT);
        assert!(!o.stderr.contains("panicked"), "panic on {argv:?}:\n{o}");
        assert!(matches!(o.code, Some(1) | Some(2)), "{o}");
    }
}
