//! The built-in init (rrun-init as PID 1, `rrun.init`): PID 1 never holds
//! more than the program (credentials in every set, uid/gid/groups,
//! no_new_privs, seccomp, rlimits, fds), and still starts, restarts and
//! health-checks it; and host-side `state`/`list`/`events` treat the
//! status the init publishes in the container as hostile input (never
//! open a device node, FIFO or socket planted there, never follow a link
//! or cross a mount to it, bounded, strictly parsed, labelled as the
//! container's word).
//!
//! rrun-only: runc has no built-in init (it ignores the annotations).

#[allow(unused_imports)]
use crate::common::*;
use serde_json::{Value, json};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

macro_rules! rrun_init_only {
    () => {
        require!(is_root(), "needs root");
        require!(
            !is_runc(),
            "runc has no built-in init: it ignores the rrun.* annotations"
        );
    };
}

fn with_init(b: Bundle, extra: &[(&str, &str)]) -> Bundle {
    let mut ann = json!({ "rrun.init": "true" });
    for (k, v) in extra {
        ann[*k] = json!(v);
    }
    b.with(|c| c["annotations"] = ann)
}

/// Adds `caps` to the bounding, effective and permitted sets.
fn add_caps(config: &mut Value, caps: &[&str]) {
    for set in ["bounding", "effective", "permitted"] {
        let v = &mut config["process"]["capabilities"][set];
        if !v.is_array() {
            *v = json!([]);
        }
        for cap in caps {
            v.as_array_mut().expect("an array").push(json!(cap));
        }
    }
}

/// A host dir at /out in the container, writable by any user.
fn out_dir() -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("rrun-test-init-sec-")
        .tempdir()
        .expect("tempdir");
    fs::set_permissions(d.path(), fs::Permissions::from_mode(0o777)).unwrap();
    d
}

/// Waits until `state` shows the program's host pid; returns (init, program).
#[track_caller]
fn init_and_program(c: &Container) -> (i32, i32) {
    let prog = poll(STATUS_TIMEOUT, || {
        let v: Value = serde_json::from_str(&c.state_output().stdout).ok()?;
        v["init"]["pid"].as_i64().map(|p| p as i32)
    })
    .unwrap_or_else(|| {
        panic!(
            "state never showed the program's pid:\n{}",
            c.state_output()
        )
    });
    c.remember(prog);
    (c.pid(), prog)
}

fn proc_status(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default()
}

fn field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key}: in {status:?}"))
}

/// Everything of /proc/<pid>/status that says what a process may do.
const CRED_KEYS: [&str; 11] = [
    "Uid",
    "Gid",
    "Groups",
    "CapInh",
    "CapPrm",
    "CapEff",
    "CapBnd",
    "CapAmb",
    "NoNewPrivs",
    "Seccomp",
    "Seccomp_filters",
];

/// PID 1's credentials equal the program's, seen from the host.
#[track_caller]
fn assert_same_credentials(init: i32, prog: i32, what: &str) {
    let (a, b) = (proc_status(init), proc_status(prog));
    for key in CRED_KEYS {
        assert_eq!(
            field(&a, key),
            field(&b, key),
            "{what}: PID 1 (host pid {init}) and the program (host pid {prog}) differ in {key}\n\
             PID 1:\n{a}\nprogram:\n{b}"
        );
    }
    let limits = |p: i32| fs::read_to_string(format!("/proc/{p}/limits")).unwrap_or_default();
    assert_eq!(limits(init), limits(prog), "{what}: rlimits differ");
    for attr in ["current", "apparmor/current"] {
        let read = |p: i32| fs::read_to_string(format!("/proc/{p}/attr/{attr}")).ok();
        assert_eq!(read(init), read(prog), "{what}: LSM attr/{attr} differs");
    }
}

/// PID 1 holds no fd but stdio: the launch plan's memfd is closed, no
/// status dir or host file is held.
#[track_caller]
fn assert_only_stdio(init: i32, what: &str) {
    let mut extra = Vec::new();
    for e in fs::read_dir(format!("/proc/{init}/fd")).unwrap().flatten() {
        let n: u32 = e.file_name().to_string_lossy().parse().unwrap();
        if n > 2 {
            extra.push(format!(
                "{n} -> {:?}",
                fs::read_link(e.path()).unwrap_or_default()
            ));
        }
    }
    assert!(extra.is_empty(), "{what}: PID 1 holds fds {extra:?}");
}

#[test]
fn builtin_init_holds_no_more_than_the_program() {
    rrun_init_only!();
    let caps = ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"];
    let seccomp = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            { "names": ["open_by_handle_at", "name_to_handle_at"],
              "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }
        ]
    });
    // What the program reports of itself and of PID 1, from inside.
    let script = "cat /proc/1/status > /out/pid1; cat /proc/self/status > /out/self; \
                  exec sleep 1000";
    type Variant = (&'static str, Box<dyn Fn(Bundle) -> Bundle>);
    let variants: Vec<Variant> = vec![
        (
            "default caps + CAP_SYS_PTRACE (the attack's config)",
            Box::new(|b| b.with(|c| add_caps(c, &["CAP_SYS_PTRACE"]))),
        ),
        (
            "non-root user with groups and an ambient cap",
            Box::new(move |b| {
                b.user(1000, 1000, &[2000, 2001]).with(|c| {
                    c["process"]["capabilities"] = json!({
                        "bounding": caps, "effective": caps, "permitted": caps,
                        "inheritable": caps, "ambient": ["CAP_KILL"]
                    });
                })
            }),
        ),
        (
            "no capabilities at all, no_new_privs, rlimits",
            Box::new(|b| {
                b.with(|c| {
                    c["process"]["capabilities"] = json!({});
                    c["process"]["noNewPrivileges"] = json!(true);
                    c["process"]["rlimits"] = json!([
                        { "type": "RLIMIT_NOFILE", "hard": 333, "soft": 222 },
                        { "type": "RLIMIT_CORE", "hard": 0, "soft": 0 }
                    ]);
                })
            }),
        ),
        (
            "a seccomp profile without no_new_privs",
            Box::new(move |b| {
                let s = seccomp.clone();
                b.with(move |c| c["linux"]["seccomp"] = s)
            }),
        ),
    ];
    for (what, f) in &variants {
        let out = out_dir();
        let b = with_init(
            f(Bundle::new()
                .sh(script)
                .bind_mount(out.path(), "/out", &["rbind", "rw"])),
            &[],
        );
        let c = Container::new(b);
        c.run_detached().ok();
        let (init, prog) = init_and_program(&c);
        assert_same_credentials(init, prog, what);
        assert_only_stdio(init, what);
        let root = |p: i32| fs::read_link(format!("/proc/{p}/root")).unwrap();
        assert_eq!(root(init), root(prog), "{what}: root differs");
        // From inside: PID 1 is no more than the program.
        let inside = |n: &str| {
            let p = out.path().join(n);
            poll(STATUS_TIMEOUT, || {
                fs::read_to_string(&p).ok().filter(|s| s.contains("CapAmb"))
            })
            .unwrap_or_else(|| panic!("{what}: the program wrote no /out/{n}"))
        };
        let (pid1, me) = (inside("pid1"), inside("self"));
        for key in CRED_KEYS {
            assert_eq!(
                field(&pid1, key),
                field(&me, key),
                "{what}: inside, /proc/1/status and /proc/self/status differ in {key}"
            );
        }
        c.kill("KILL").ok();
        c.wait_status("stopped");
        c.delete().ok();
        c.assert_clean();
    }
}

#[test]
fn builtin_init_restarts_and_health_checks_with_dropped_credentials() {
    rrun_init_only!();
    let out = out_dir();
    // Run 1 exits 3 (restart by policy); run 2 stays. The health check
    // records who runs it.
    let script = "echo run >> /out/runs; n=$(wc -l < /out/runs); \
                  if [ $n -eq 1 ]; then exit 3; fi; exec sleep 1000";
    let b = with_init(
        Bundle::new()
            .sh(script)
            .user(1000, 1000, &[])
            .bind_mount(out.path(), "/out", &["rbind", "rw"])
            .with(|c| {
                c["process"]["capabilities"] = json!({});
                c["process"]["noNewPrivileges"] = json!(true);
                c["linux"]["seccomp"] = json!({
                    "defaultAction": "SCMP_ACT_ALLOW",
                    "architectures": ["SCMP_ARCH_X86_64"],
                    "syscalls": [{ "names": ["open_by_handle_at"],
                                   "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }]
                });
            }),
        &[
            ("rrun.restart", "on-failure"),
            ("rrun.restart.delay", "50ms"),
            (
                "rrun.health.cmd",
                r#"["sh","-c","grep -E '^(Uid|CapEff|NoNewPrivs|Seccomp):' /proc/self/status > /out/hc.tmp; mv /out/hc.tmp /out/hc"]"#,
            ),
            ("rrun.health.interval", "100ms"),
        ],
    );
    let c = Container::new(b);
    c.run_detached().ok();
    let init = poll(STATUS_TIMEOUT, || {
        let v: Value = serde_json::from_str(&c.state_output().stdout).ok()?;
        (v["init"]["restarts"] == 1
            && v["init"]["health"] == "healthy"
            && v["init"]["pid"].is_i64())
        .then(|| v["init"].clone())
    })
    .unwrap_or_else(|| panic!("no restart + healthy:\n{}", c.state_output()));
    assert_eq!(init["lastExit"], json!({"code": 3}), "{init:#}");
    assert_eq!(init["reportedBy"], "container", "{init:#}");
    let prog = init["pid"].as_i64().unwrap() as i32;
    c.remember(prog);
    let pid1 = c.pid();
    assert_same_credentials(pid1, prog, "after a restart");
    let st = proc_status(pid1);
    assert_eq!(field(&st, "Uid"), "1000\t1000\t1000\t1000", "PID 1:\n{st}");
    assert_eq!(field(&st, "CapEff"), "0000000000000000", "PID 1:\n{st}");
    assert_eq!(field(&st, "CapBnd"), "0000000000000000", "PID 1:\n{st}");
    assert_eq!(field(&st, "NoNewPrivs"), "1", "PID 1:\n{st}");
    assert_eq!(field(&st, "Seccomp"), "2", "PID 1:\n{st}");
    let hc = poll(STATUS_TIMEOUT, || {
        fs::read_to_string(out.path().join("hc"))
            .ok()
            .filter(|s| s.contains("Seccomp"))
    })
    .expect("the health check never ran");
    assert_eq!(
        field(&hc, "Uid"),
        "1000\t1000\t1000\t1000",
        "health check:\n{hc}"
    );
    assert_eq!(
        field(&hc, "CapEff"),
        "0000000000000000",
        "health check:\n{hc}"
    );
    assert_eq!(field(&hc, "Seccomp"), "2", "health check:\n{hc}");
    // exec still joins a container whose PID 1 is unprivileged and
    // non-dumpable.
    let o = c.rrun(&["exec", &c.id, "sh", "-c", "id -u"]);
    o.ok();
    assert_eq!(o.stdout.trim(), "1000", "{o}");
    // `rrun kill` (TERM) still stops it: the init receives and forwards.
    c.kill("TERM").ok();
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

// ---------------------------------------------------------------------------
// Host-side reads of the init's status
// ---------------------------------------------------------------------------

/// Where a runtime reads the init's status, below the container's root:
/// the current file, and the one an rrun before this fix read (so these
/// tests fail on a runtime with the old reader too).
const STATUS_FILES: [&str; 2] = ["dev/.rrun-init/status.json", "dev/.rrun-init.json"];

/// A status the init would never write: 7777 restarts, seen in `state`
/// only when rrun read the planted thing.
const MARKER: &str = r#"{"restarts":7777,"pid":null,"lastExit":null,"health":"none","gaveUp":false,"exits":0,"starts":[]}"#;

/// A running init container (`sleep`: no further status writes).
fn sleeping_init(caps_extra: &[&str]) -> Container {
    let extra: Vec<String> = caps_extra.iter().map(|s| s.to_string()).collect();
    let b = with_init(
        Bundle::new().args(&["sleep", "1000"]).with(move |c| {
            let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
            add_caps(c, &extra)
        }),
        &[],
    );
    let c = Container::new(b);
    c.run_detached().ok();
    init_and_program(&c);
    c
}

/// The host path of `rel` in the container of `c` (through its init's root).
fn in_container(c: &Container, rel: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{}/root", c.pid())).join(rel)
}

/// Replaces every status file with what `plant` makes at the path.
fn plant(c: &Container, plant: impl Fn(&Path)) {
    for rel in STATUS_FILES {
        let p = in_container(c, rel);
        let _ = fs::remove_file(&p);
        if p.parent().is_some_and(Path::is_dir) {
            plant(&p);
        }
    }
}

/// `state` must answer promptly and must not show what was planted.
#[track_caller]
fn assert_state_ignores(c: &Container, what: &str) -> Value {
    let started = Instant::now();
    let o = run_timeout(c.cmd(&["state", &c.id]), Duration::from_secs(20));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{what}: state took {:?}:\n{o}",
        started.elapsed()
    );
    o.ok();
    let v: Value = serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{what}: {e}\n{o}"));
    assert_ne!(
        v["init"]["restarts"], 7777,
        "{what}: state read the planted file:\n{o}"
    );
    assert_eq!(v["init"]["reportedBy"], "container", "{what}:\n{o}");
    let list = run_timeout(c.cmd(&["list"]), Duration::from_secs(20));
    list.ok();
    assert!(
        !list.stdout.contains("7777") && !list.stdout.contains('\u{1b}'),
        "{what}: list shows the planted status:\n{list}"
    );
    v
}

#[test]
fn init_status_fifo_is_never_opened() {
    rrun_init_only!();
    let c = sleeping_init(&[]);
    // A FIFO with no writer: an open without O_NONBLOCK would hang.
    plant(&c, |p| {
        nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap()
    });
    assert_state_ignores(&c, "FIFO without a writer");
    // A FIFO whose writer (held here) has the marker queued: rrun reading
    // it at all shows 7777.
    let mut writers = Vec::new();
    for rel in STATUS_FILES {
        let p = in_container(&c, rel);
        if let Ok(mut w) = fs::OpenOptions::new().read(true).write(true).open(&p) {
            w.write_all(MARKER.as_bytes()).unwrap();
            writers.push(w);
        }
    }
    assert!(!writers.is_empty(), "no FIFO to write to");
    assert_state_ignores(&c, "FIFO with the marker queued");
    // Not even read and dropped: the marker is still queued.
    for w in &mut writers {
        use std::io::Read;
        use std::os::fd::AsFd;
        nix::fcntl::fcntl(
            w.as_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .unwrap();
        let mut buf = vec![0u8; MARKER.len() + 16];
        let n = w.read(&mut buf).unwrap_or(0);
        assert_eq!(
            String::from_utf8_lossy(&buf[..n]),
            MARKER,
            "state read (and consumed) the FIFO's data"
        );
    }
    // Another file bind-mounted over the status (in the container's mount
    // namespace, as its root could): a mount crossing, never followed.
    drop(writers);
    fs::write(in_container(&c, "dev/.marker"), MARKER).unwrap();
    let mut mounted = 0;
    for rel in STATUS_FILES {
        let p = in_container(&c, rel);
        let _ = fs::remove_file(&p);
        if p.parent().is_some_and(Path::is_dir) {
            fs::write(&p, "").unwrap();
            let o = sh(&format!(
                "nsenter -t {} -m -- mount --bind /dev/.marker /{rel}",
                c.pid()
            ));
            assert!(o.success(), "bind mount in the container: {o}");
            mounted += 1;
        }
    }
    assert!(mounted > 0, "nothing bound");
    assert_state_ignores(&c, "a file bound over the status");
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn init_status_links_huge_and_malformed_files_are_refused() {
    rrun_init_only!();
    let c = sleeping_init(&[]);
    // A symlink to a host file (absolute, and through a magic link).
    let host = out_dir();
    let marker = host.path().join("status.json");
    fs::write(&marker, MARKER).unwrap();
    for target in [
        marker.clone(),
        PathBuf::from(format!("/proc/self/root{}", marker.display())),
        PathBuf::from(format!("/proc/1/root/../../../../..{}", marker.display())),
    ] {
        plant(&c, |p| std::os::unix::fs::symlink(&target, p).unwrap());
        assert_state_ignores(&c, &format!("symlink to {}", target.display()));
    }
    // The status directory itself a symlink to the host dir.
    let dir = in_container(&c, "dev/.rrun-init");
    let _ = fs::remove_dir_all(&dir);
    std::os::unix::fs::symlink(host.path(), &dir).unwrap();
    assert_state_ignores(&c, "status directory as a symlink to a host dir");
    let _ = fs::remove_file(&dir);
    fs::create_dir(&dir).unwrap();
    // Bounded means refused, not cut: the marker, then 70 kB of JSON
    // whitespace (valid JSON if cut at 64 kB).
    plant(&c, |p| {
        let mut f = fs::File::create(p).unwrap();
        f.write_all(MARKER.as_bytes()).unwrap();
        f.write_all(&vec![b' '; 70_000]).unwrap();
    });
    assert_state_ignores(&c, "70 kB status");
    // A sparse 1 GB file: never read whole.
    plant(&c, |p| {
        fs::File::create(p).unwrap().set_len(1 << 30).unwrap()
    });
    assert_state_ignores(&c, "1 GB sparse status");
    // Values the init never writes: huge numbers, a terminal escape in
    // `health` (it reaches `list`'s table), unknown keys.
    for bad in [
        r#"{"restarts":7777,"pid":null,"lastExit":{"code":99999999999},"health":"none","gaveUp":false,"exits":0,"starts":[]}"#,
        r#"{"restarts":7777,"pid":-1,"lastExit":null,"health":"none","gaveUp":false,"exits":0,"starts":[]}"#,
        "{\"restarts\":7777,\"pid\":null,\"lastExit\":null,\"health\":\"\\u001b[2J\\u001b[31m7777\",\"gaveUp\":false,\"exits\":0,\"starts\":[]}",
        r#"{"restarts":7777,"pid":null,"lastExit":null,"health":"none","gaveUp":false,"exits":0,"starts":[],"x":1}"#,
    ] {
        plant(&c, |p| fs::write(p, bad).unwrap());
        assert_state_ignores(&c, bad);
    }
    // And a well-formed status is shown, as the container's word.
    plant(&c, |p| fs::write(p, MARKER.replace("7777", "5")).unwrap());
    let v = c.state();
    assert_eq!(v["init"]["restarts"], 5, "{v:#}");
    assert_eq!(v["init"]["reportedBy"], "container", "{v:#}");
    let list = c.rrun(&["list"]);
    list.ok();
    assert!(
        list.stderr.contains("reported by the container"),
        "list does not say whose numbers RESTARTS and HEALTH are:\n{list}"
    );
    // A /dev that is no longer the tmpfs rrun mounted (here a ramfs the
    // container's root mounted over it, holding a status): not read. A
    // FUSE mount there could block every lookup.
    let mut script = String::from("mount -t ramfs none /dev && mkdir /dev/.rrun-init");
    for rel in STATUS_FILES {
        script.push_str(&format!(" && echo '{MARKER}' > /{rel}"));
    }
    let o = sh(&format!(
        "nsenter -t {} -m -- sh -c \"{}\"",
        c.pid(),
        script.replace('"', "\\\"")
    ));
    assert!(o.success(), "mounting a ramfs on /dev: {o}");
    assert_state_ignores(&c, "a ramfs over /dev");
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn init_status_device_node_made_in_the_container_is_never_opened() {
    rrun_init_only!();
    require!(have_cmd("strace"), "needs strace to see what rrun opens");
    // As the attack does: the container (CAP_MKNOD) replaces the status
    // with /dev/kmsg's node (c 1 11), then the host runs `state`.
    let c = sleeping_init(&["CAP_MKNOD"]);
    for rel in STATUS_FILES {
        let p = format!("/{rel}");
        exec_sh(
            &c,
            &format!("rm -f {p}; [ -d $(dirname {p}) ] && mknod {p} c 1 11; true"),
        );
    }
    let trace = out_dir();
    let log = trace.path().join("strace");
    let mut cmd = std::process::Command::new("strace");
    cmd.args(["-f", "-e", "trace=open,openat,openat2", "-o"])
        .arg(&log)
        .arg(rrun_bin())
        .args(["--root", &c.root.to_string_lossy(), "state", &c.id]);
    run_timeout(cmd, Duration::from_secs(30)).ok();
    let text = fs::read_to_string(&log).unwrap();
    let opened: Vec<&str> = text
        .lines()
        .filter(|l| (l.contains("rrun-init") || l.contains("status.json")) && !l.contains("O_PATH"))
        .filter(|l| {
            l.rsplit("= ")
                .next()
                .is_some_and(|r| r.trim().parse::<i64>().is_ok())
        })
        .collect();
    assert!(
        opened.is_empty(),
        "state opened the container's device node:\n{}",
        opened.join("\n")
    );
    assert_state_ignores(&c, "c 1 11 node");
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

/// `exec ID sh -c SCRIPT`, which must succeed.
#[track_caller]
fn exec_sh(c: &Container, script: &str) {
    c.rrun(&["exec", &c.id, "sh", "-c", script]).ok();
}

// ---------------------------------------------------------------------------
// Files rrun's own processes read inside the container
// ---------------------------------------------------------------------------

#[test]
fn container_passwd_as_fifo_or_device_never_blocks_create_or_exec() {
    require!(is_root(), "needs root");
    require!(
        !is_runc(),
        "runc blocks on a FIFO /etc/passwd in the rootfs (it opens it to find HOME)"
    );
    // create's init and exec's child read /etc/passwd (for HOME) and
    // /proc/self/setgroups while the host command waits on them.
    let b = Bundle::new()
        .private_rootfs()
        .with(|c| {
            let env = c["process"]["env"].as_array_mut().unwrap();
            env.retain(|e| !e.as_str().unwrap_or("").starts_with("HOME="));
        })
        .sh("echo home=$HOME; exec sleep 1000");
    let passwd = b.rootfs.join("etc/passwd");
    fs::remove_file(&passwd).unwrap();
    nix::unistd::mkfifo(&passwd, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let c = Container::new(b);
    let started = Instant::now();
    let o = c.run_detached();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "run with a FIFO /etc/passwd took {:?}",
        started.elapsed()
    );
    o.ok();
    {
        // A character device (the zero device: endless data) for exec.
        let p = in_container(&c, "etc/passwd");
        fs::remove_file(&p).unwrap();
        nix::sys::stat::mknod(
            &p,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o644),
            nix::sys::stat::makedev(1, 5),
        )
        .unwrap();
        let started = Instant::now();
        let o = run_timeout(
            c.cmd(&["exec", &c.id, "sh", "-c", "echo home=$HOME"]),
            Duration::from_secs(30),
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "exec with /etc/passwd a device took {:?}:\n{o}",
            started.elapsed()
        );
        o.ok();
        assert!(o.stdout.contains("home=/"), "{o}");
    }
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn builtin_init_is_under_the_profile_from_its_exec() {
    rrun_init_only!();
    // The init is exec'd (execveat of its memfd) under the program's
    // filter, so a profile that denies execveat denies the init, in one
    // clear line, leaving nothing behind.
    let b = with_init(
        Bundle::new().args(&["true"]).with(|c| {
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{ "names": ["execveat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }]
            })
        }),
        &[],
    );
    let c = Container::new(b);
    let o = c.run();
    o.failed()
        .stderr_mentions(&["built-in init", "execveat"])
        .stderr_is_short_error();
    c.assert_clean();
}

#[test]
fn exec_sets_groups_whatever_the_containers_proc_says() {
    require!(is_root(), "needs root");
    require!(
        !is_runc(),
        "runc 1.1.5's exec needs the container's /proc/self/fd and fails once /proc is replaced"
    );
    // The container's root replaced /proc (a tmpfs with self/setgroups
    // saying "deny"): an exec'd process must still get exactly its groups,
    // never the runtime's own.
    let c = Container::new(Bundle::new().args(&["sleep", "1000"]));
    c.run_detached().ok();
    let o = sh(&format!(
        "nsenter -t {} -m -- sh -c 'mount -t tmpfs none /proc && mkdir -p /proc/self && echo deny > /proc/self/setgroups'",
        c.pid()
    ));
    assert!(o.success(), "replacing the container's /proc: {o}");
    require!(have_cmd("setpriv"), "setpriv (util-linux) not found");
    // The runtime runs with a supplementary group of its own (4242).
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--groups=4242", "--"])
        .arg(rrun_bin())
        .args(["--root", &c.root.to_string_lossy()])
        .args(["exec", "--user", "1000:1000", &c.id, "id", "-G"]);
    let o = run_timeout(cmd, Duration::from_secs(30));
    o.ok();
    assert_eq!(o.stdout.trim(), "1000", "the exec'd process's groups:\n{o}");
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete().ok();
    c.assert_clean();
}

/// As PID 1 the built-in init stops what is left with kill(-1): in a pid
/// namespace that is not its own (none in the config, or one joined by
/// path) that reaches every process its credentials may signal, outside
/// the container too. Such configs are refused at create, and a process
/// outside the container survives the attempt, a restart policy included.
/// The "host" here is a throwaway pid namespace (unshare): should the
/// check ever regress, kill(-1) stays inside it.
#[test]
fn builtin_init_needs_a_pid_namespace_of_its_own() {
    require!(is_root(), "needs root");
    require!(!is_runc(), "rrun's built-in init");
    require!(have_cmd("unshare"), "needs unshare (util-linux)");
    let host = with_init(
        Bundle::new().without_namespace("pid").args(&["true"]),
        &[("rrun.restart", "on-failure:1")],
    );
    let c = Container::new(host);
    c.bundle.write();
    let script = format!(
        "sleep 300 & v=$!; {} --root {} run --bundle {} {} 2>&1; echo rc=$?; \
         kill -0 $v && echo victim-alive; kill $v",
        rrun_bin().display(),
        c.root.display(),
        c.bundle_arg(),
        c.id
    );
    let o = run_timeout(
        {
            let mut cmd = std::process::Command::new("unshare");
            cmd.args(["--pid", "--fork", "--mount-proc", "sh", "-c", &script]);
            cmd
        },
        Duration::from_secs(60),
    );
    assert!(
        o.stdout.contains("pid namespace"),
        "not refused by name:\n{o}"
    );
    assert!(!o.stdout.contains("rc=0"), "run succeeded:\n{o}");
    assert!(
        o.stdout.contains("victim-alive"),
        "a process outside the container was signalled:\n{o}"
    );
    c.assert_clean();
    // Joined: another container's pid namespace.
    let a = Container::new(Bundle::new().args(&["sleep", "30"]));
    a.create().ok();
    a.start().ok();
    let path = format!("/proc/{}/ns/pid", a.pid());
    let b = Container::new(with_init(
        Bundle::new().namespace("pid", Some(&path)).args(&["true"]),
        &[],
    ));
    b.run().failed().stderr_mentions(&["pid namespace"]);
    b.assert_clean();
    assert_eq!(
        a.status(),
        "running",
        "the joined container's process was signalled"
    );
    a.delete_force().ok();
    a.assert_clean();
}
