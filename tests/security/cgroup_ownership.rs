//! rrun signals only the container's processes and removes only the
//! cgroups it made (attack round finding 4): a cgroupsPath may name a
//! cgroup that already holds other processes (a pod's, a slice), and
//! `delete --force`, `kill --all`, `ps` and `pause` must leave those
//! alone. Plus the create-time checks that go with it (a frozen cgroup, a
//! default cgroup another --root already uses, cgroupsPath spellings) and
//! the size caps on config.json.
//!
//! Foreign processes here are host `sleep`s this test starts and moves
//! into the cgroups; the guards kill them and remove the cgroups they
//! made, also when an assertion fails.

use crate::common::*;
use serde_json::{Value, json};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The directory `rel` under our own cgroup in every mounted hierarchy.
fn own_dirs(rel: &str) -> Vec<PathBuf> {
    cgroup_hierarchies()
        .iter()
        .map(|h| {
            h.mountpoint
                .join(h.own.trim_start_matches('/'))
                .join(rel.trim_start_matches('/'))
        })
        .collect()
}

/// Whether `dir` is in the v1 devices hierarchy.
fn in_devices_hierarchy(dir: &Path) -> bool {
    cgroup_hierarchies()
        .iter()
        .any(|h| dir.starts_with(&h.mountpoint) && h.mountpoint.join("devices.list").exists())
}

/// mkdir `dir` (parents too), filling a v1 cpuset's cpus and mems from
/// the parent as a cgroup manager would (an empty cpuset refuses tasks).
fn mk_cgroup(dir: &Path) {
    let mut todo = Vec::new();
    let mut p = dir;
    while !p.exists() {
        todo.push(p.to_path_buf());
        p = p.parent().expect("a cgroup has a parent");
    }
    for d in todo.iter().rev() {
        fs::create_dir(d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(v) = fs::read_to_string(d.parent().unwrap().join(f)) {
                let _ = fs::write(d.join(f), v.trim());
            }
        }
    }
}

/// Moves `pid` into `sub` below each of `dirs` (where it exists).
fn move_into(dirs: &[PathBuf], sub: &str, pid: i32) {
    for d in dirs {
        let d = d.join(sub);
        if !d.is_dir() {
            continue;
        }
        fs::write(d.join("cgroup.procs"), pid.to_string())
            .unwrap_or_else(|e| panic!("moving {pid} into {}: {e}", d.display()));
    }
}

/// Cgroups made by the test (not by the runtime) under a unique name, and
/// host processes that are nobody's container: thawed, killed and removed
/// on drop.
struct Foreign {
    name: String,
    dirs: Vec<PathBuf>,
    children: Vec<Child>,
}

impl Foreign {
    /// `name` under our own cgroup in every hierarchy, made now.
    fn new() -> Foreign {
        let name = unique_name();
        let dirs = own_dirs(&name);
        let f = Foreign {
            name,
            dirs: dirs.clone(),
            children: Vec::new(),
        };
        for d in &dirs {
            mk_cgroup(d);
        }
        f
    }

    /// The names only: nothing made yet (the runtime makes them).
    fn planned() -> Foreign {
        let name = unique_name();
        Foreign {
            dirs: own_dirs(&name),
            name,
            children: Vec::new(),
        }
    }

    /// A sub-cgroup `sub` in every hierarchy but the v1 devices one: a v1
    /// devices cgroup with children refuses a new default ("a"), which
    /// create writes before its rules.
    fn mk_sub(&self, sub: &str) {
        for d in &self.dirs {
            if !in_devices_hierarchy(d) {
                mk_cgroup(&d.join(sub));
            }
        }
    }

    /// A host `sleep` moved into `sub` ("" for the cgroup itself) of
    /// every hierarchy.
    fn sleeper(&mut self, sub: &str) -> i32 {
        let child = Command::new("sleep")
            .arg("1000")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn a host sleep");
        let pid = child.id() as i32;
        self.children.push(child);
        move_into(&self.dirs, sub, pid);
        pid
    }

    #[track_caller]
    fn assert_alive(&self, what: &str) {
        for c in &self.children {
            let pid = c.id() as i32;
            let state = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = state
                .rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'));
            assert!(
                pid_alive(pid) && !zombie,
                "{what}: host process {pid}, not the container's, was killed"
            );
        }
    }

    #[track_caller]
    fn assert_dirs_exist(&self, sub: &str) {
        for d in &self.dirs {
            if !sub.is_empty() && in_devices_hierarchy(d) {
                continue;
            }
            let d = d.join(sub);
            assert!(
                d.is_dir(),
                "cgroup {} (not made by the runtime) was removed",
                d.display()
            );
        }
    }
}

impl Drop for Foreign {
    fn drop(&mut self) {
        for d in &self.dirs {
            let _ = fs::write(d.join("freezer.state"), "THAWED");
            let _ = fs::write(d.join("cgroup.freeze"), "0");
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for d in &self.dirs {
            rmdir_cgroup_tree(d);
        }
    }
}

/// A bundle whose cgroupsPath is `name` (relative: under our cgroup).
fn in_cgroup(b: Bundle, name: &str) -> Bundle {
    let mut b = b.with(|c| c["linux"]["cgroupsPath"] = json!(name));
    b.cgroups_path = name.to_string();
    b
}

/// stderr mentions every one of `words` (case-insensitive).
#[track_caller]
fn mentions_all(o: &Output, words: &[&str]) {
    for w in words {
        o.stderr_mentions(&[w]);
    }
}

fn ps_json(c: &Container) -> Vec<i32> {
    let o = c.rrun(&["ps", "--format", "json", &c.id]);
    o.ok();
    serde_json::from_str::<Vec<i32>>(o.stdout.trim())
        .unwrap_or_else(|e| panic!("ps json ({e}):\n{o}"))
}

#[track_caller]
fn wait_dead(pid: i32, what: &str) {
    let gone = poll(Duration::from_secs(5), || (!pid_alive(pid)).then_some(()));
    assert!(gone.is_some(), "{what} {pid} still alive");
}

/// Children of `pid` (host view).
fn children_of(pid: i32) -> Vec<i32> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| {
                s.rsplit_once(')')
                    .and_then(|(_, r)| r.split_whitespace().nth(1)?.parse::<i32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

/// The repro's case and the commands it does not try: a container with a
/// pid namespace of its own in a cgroup that already holds host processes
/// (in it and in a cgroup below it). `ps` lists only the container's,
/// `pause` is refused, `kill --all` and `delete --force` kill only the
/// container's processes, and the cgroups (not made by the runtime) stay.
#[test]
fn shared_cgroup_foreign_processes_survive_kill_all_and_delete() {
    require!(is_root(), "needs root");
    let mut f = Foreign::new();
    f.mk_sub("child");
    f.sleeper("");
    f.sleeper("child");
    // A create failing half-way (a prestart hook) undoes only its own.
    let failing = Container::new(
        Bundle::new()
            .args(&["sleep", "1000"])
            .hook("prestart", json!({"path": "/bin/false"}))
            .with(|c| c["linux"]["cgroupsPath"] = json!(f.name)),
    );
    failing.create().failed();
    std::thread::sleep(Duration::from_millis(200));
    f.assert_alive("a failed create");
    f.assert_dirs_exist("child");
    assert!(!failing.root.join(&failing.id).exists(), "state dir left");
    drop(failing);

    let c = Container::new(in_cgroup(Bundle::new().args(&["sleep", "1000"]), &f.name));
    let created = c.run_detached();
    created.ok();
    let init = c.pid();
    let execd = c.exec_detached(&["sleep", "1000"]);

    let ps = ps_json(&c);
    assert!(
        ps.contains(&init) && ps.contains(&execd),
        "ps lists the container's processes: {ps:?}"
    );
    if is_runc() {
        skip("runc 1.1 lists, freezes and kill --all's every process in the cgroup");
    } else {
        for child in &f.children {
            assert!(
                !ps.contains(&(child.id() as i32)),
                "ps lists host process {} that only shares the cgroup: {ps:?}",
                child.id()
            );
        }
        let p = c.rrun(&["pause", &c.id]);
        p.failed().stderr_is_short_error();
        mentions_all(&p, &["not the container's"]);
        assert_eq!(c.status(), "running", "pause refused, nothing frozen");
        f.assert_alive("pause");
        c.rrun(&["kill", "--all", &c.id, "KILL"]).ok();
        wait_dead(execd, "exec'd process");
        wait_dead(init, "container init");
        f.assert_alive("kill --all");
    }
    c.delete_force();
    std::thread::sleep(Duration::from_millis(200));
    f.assert_alive("delete --force");
    f.assert_dirs_exist("child");
    assert!(
        !pid_alive(init) && !pid_alive(execd),
        "container processes left"
    );
    assert!(!c.root.join(&c.id).exists(), "state dir left");
    if !is_runc() {
        // runc's warning, in rrun's words.
        created.stderr_mentions(&["already holds processes"]);
    }
}

/// Without a pid namespace of its own, only a cgroup the runtime made
/// tells the container's processes: in a shared cgroup only its init is
/// killed; in its own cgroup every process in it is (and the cgroup goes).
#[test]
fn host_pid_namespace_container_kills_only_in_cgroups_rrun_made() {
    require!(is_root(), "needs root");
    require!(
        !is_runc(),
        "runc 1.1 SIGKILLs every process in the cgroup of a container without its own pid namespace"
    );
    let script = "sleep 1000 & sleep 1000 & wait";
    // Shared: the foreign sleeps stay, and so do the container's own
    // children (nothing tells them from the foreign ones).
    let mut f = Foreign::new();
    f.sleeper("");
    let c = Container::new(in_cgroup(
        Bundle::new().without_namespace("pid").sh(script),
        &f.name,
    ));
    c.run_detached().ok();
    let init = c.pid();
    let kids = poll(Duration::from_secs(5), || {
        let k = children_of(init);
        (k.len() == 2).then_some(k)
    })
    .expect("the container's two sleeps");
    for k in &kids {
        c.remember(*k);
    }
    c.delete_force().ok();
    wait_dead(init, "container init");
    std::thread::sleep(Duration::from_millis(200));
    f.assert_alive("delete --force, host pid namespace");
    f.assert_dirs_exist("");
    drop(c);

    // Its own cgroup: kill --all and delete reach every process in it,
    // also one in a sub-cgroup made inside it, and more processes than the
    // runtime checks at a time.
    let many = "i=0; while [ $i -lt 300 ]; do sleep 1000 & i=$((i+1)); done; wait";
    let c = Container::new(Bundle::new().without_namespace("pid").sh(many));
    c.run_detached().ok();
    let init = c.pid();
    let kids = poll(Duration::from_secs(15), || {
        let k = children_of(init);
        (k.len() == 300).then_some(k)
    })
    .expect("the container's 300 sleeps");
    for k in &kids {
        c.remember(*k);
    }
    let dirs = own_dirs(&c.bundle.cgroups_path);
    for d in &dirs {
        mk_cgroup(&d.join("inner"));
    }
    move_into(&dirs, "inner", kids[0]);
    let ps = ps_json(&c);
    assert!(
        ps.contains(&init) && kids.iter().all(|k| ps.contains(k)),
        "ps: {ps:?}, want {init} and {kids:?}"
    );
    c.rrun(&["kill", "--all", &c.id, "KILL"]).ok();
    for k in &kids {
        wait_dead(*k, "container child");
    }
    c.delete_force().ok();
    c.assert_clean();
}

/// A container whose own cgroup (made by the runtime) has sub-cgroups made
/// inside it: one holding a container process, one empty, and one a host
/// process was moved into. delete --force kills the container's process,
/// removes what is its, and leaves the host process and the cgroups it
/// keeps busy (with a warning naming them). Then, without the intruder,
/// everything goes.
#[test]
fn sub_cgroups_inside_the_container_cgroup() {
    require!(is_root(), "needs root");
    let mut f = Foreign::planned();
    let c = Container::new(in_cgroup(Bundle::new().args(&["sleep", "1000"]), &f.name));
    c.run_detached().ok();
    let init = c.pid();
    let execd = c.exec_detached(&["sleep", "1000"]);
    f.mk_sub("inner");
    f.mk_sub("empty/deeper");
    f.mk_sub("intruder");
    move_into(&f.dirs, "inner", execd);
    f.sleeper("intruder");
    let o = c.delete_force();
    wait_dead(init, "container init");
    wait_dead(execd, "exec'd process in a sub-cgroup");
    std::thread::sleep(Duration::from_millis(200));
    f.assert_alive("delete --force");
    f.assert_dirs_exist("intruder");
    if !is_runc() {
        o.ok();
        mentions_all(&o, &["intruder", "not the container's"]);
        for d in &f.dirs {
            for gone in ["inner", "empty"] {
                assert!(!d.join(gone).exists(), "{} left", d.join(gone).display());
            }
        }
    }
    drop(f);
    drop(c);

    let c = Container::new(Bundle::new().args(&["sleep", "1000"]));
    c.run_detached().ok();
    let execd = c.exec_detached(&["sleep", "1000"]);
    let dirs = own_dirs(&c.bundle.cgroups_path);
    for d in &dirs {
        mk_cgroup(&d.join("a/b"));
        mk_cgroup(&d.join("c"));
    }
    move_into(&dirs, "a/b", execd);
    c.delete_force().ok();
    c.assert_clean();
}

/// Two --root directories with one id and no cgroupsPath: the second
/// create is refused (its default cgroup is the first one's), so neither
/// delete can touch the other's processes; with a cgroupsPath of its own
/// it runs.
#[test]
fn two_roots_with_one_id_do_not_share_a_cgroup() {
    require!(is_root(), "needs root");
    require!(
        !is_runc(),
        "runc puts both containers in the same cgroup (the id under its own)"
    );
    let id = unique_name();
    let default = |b: Bundle| {
        let mut b = b.with(|c| {
            c["linux"].as_object_mut().unwrap().remove("cgroupsPath");
        });
        b.cgroups_path = id.clone();
        b
    };
    let a = Container::with_id(default(Bundle::new().args(&["sleep", "1000"])), &id);
    a.run_detached().ok();
    let a_init = a.pid();
    let b = Container::with_id(default(Bundle::new().args(&["sleep", "1000"])), &id);
    assert_ne!(a.root, b.root);
    let o = b.run_detached();
    o.failed().stderr_is_short_error();
    mentions_all(&o, &["already exists", "cgroupsPath", "--root"]);
    assert!(!b.root.join(&id).exists(), "the refused container's state");
    // Whatever b's delete does, a is untouched.
    b.delete_force();
    assert!(pid_alive(a_init), "the first container's init was killed");
    assert_eq!(a.status(), "running");
    for d in own_dirs(&id) {
        assert!(d.is_dir(), "{} removed", d.display());
    }
    let mut own = Bundle::new().args(&["sleep", "1000"]);
    own.cgroups_path = unique_name();
    let cg = own.cgroups_path.clone();
    let own = own.with(|c| c["linux"]["cgroupsPath"] = json!(cg));
    let b2 = Container::with_id(own, &id);
    b2.run_detached().ok();
    b2.delete_force().ok();
    b2.assert_clean();
    assert!(pid_alive(a_init));
    a.delete_force().ok();
    a.assert_clean();
}

/// A cgroup that exists and is frozen — itself, or a parent of the one
/// asked for — fails create at once with a line saying so (the init would
/// hang in it); nothing of the container is left and the frozen cgroup
/// stays as it was.
#[test]
fn frozen_cgroup_is_refused_at_create() {
    require!(is_root(), "needs root");
    require!(
        !is_runc(),
        "runc 1.1.5 refuses a frozen v1 cgroup only after placing the init in it \
         (\"unexpectedly frozen\"), and its create hangs in one of these cases"
    );
    let mut tried = 0;
    for h in cgroup_hierarchies() {
        for sub in ["", "below"] {
            let f = Foreign::planned();
            let frozen = h
                .mountpoint
                .join(h.own.trim_start_matches('/'))
                .join(&f.name);
            mk_cgroup(&frozen);
            let (file, value) = if frozen.join("freezer.state").exists() {
                ("freezer.state", "FROZEN")
            } else if frozen.join("cgroup.freeze").exists() {
                ("cgroup.freeze", "1")
            } else {
                let _ = fs::remove_dir(&frozen);
                break;
            };
            tried += 1;
            fs::write(frozen.join(file), value).unwrap();
            let path = if sub.is_empty() {
                f.name.clone()
            } else {
                format!("{}/{sub}", f.name)
            };
            let c = Container::new(in_cgroup(Bundle::new().args(&["true"]), &path));
            let o = c.create();
            o.failed()
                .stderr_is_short_error()
                .stderr_mentions(&["frozen"]);
            assert!(!c.root.join(&c.id).exists(), "state left");
            assert!(
                frozen.is_dir(),
                "the frozen cgroup {} was removed:\n{o}",
                frozen.display()
            );
            o.stderr_mentions(&[&f.name]);
            assert!(
                !frozen.join("below").exists(),
                "{file}: a cgroup was made under it"
            );
            assert_eq!(
                fs::read_to_string(frozen.join(file)).unwrap().trim(),
                value,
                "{}",
                frozen.display()
            );
            for d in own_dirs(&path) {
                if !d.starts_with(&frozen) {
                    assert!(!d.exists(), "{} left", d.display());
                }
            }
            drop(c);
            drop(f);
        }
    }
    require!(tried > 0, "no v1 freezer nor cgroup2 hierarchy");
}

/// cgroupsPath spellings that do not name one cgroup of its own: refused
/// with one line naming linux.cgroupsPath, before anything exists. An
/// empty cgroupsPath is no cgroupsPath, as in runc.
#[test]
fn cgroups_path_dots_and_empty_components_are_refused() {
    require!(is_root(), "needs root");
    require!(
        !is_runc(),
        "runc 1.1 accepts these (it makes x/y for \"x/./y\")"
    );
    let u = unique_name();
    for bad in [
        ".".to_string(),
        "./".to_string(),
        "..".to_string(),
        format!("{u}/./b"),
        format!("{u}/../{u}"),
        format!("{u}//b"),
        format!("{u}/"),
        "/".to_string(),
        format!("{u}/b\nc"),
    ] {
        // Only the config: the guard's scrub must not get "." or "/".
        let b = Bundle::new()
            .args(&["true"])
            .with(|c| c["linux"]["cgroupsPath"] = json!(bad));
        let c = Container::new(b);
        let o = c.run();
        o.failed()
            .stderr_is_short_error()
            .stderr_mentions(&["linux.cgroupsPath"]);
        assert!(!c.root.join(&c.id).exists(), "{bad:?}: state left");
        for d in own_dirs(&u) {
            assert!(!d.exists(), "{bad:?}: {} made", d.display());
        }
    }
    let id = unique_name();
    let mut b = Bundle::new()
        .args(&["true"])
        .with(|c| c["linux"]["cgroupsPath"] = json!(""));
    b.cgroups_path = id.clone();
    let c = Container::with_id(b, &id);
    c.run().ok();
    c.assert_clean();
}

/// Peak RSS (KiB) and output of a runtime command, from wait4's rusage.
fn run_measured(mut cmd: Command) -> (Output, i64) {
    use std::os::unix::process::ExitStatusExt;
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap());
    // Reaped by wait4 below (std's wait has no rusage).
    #[allow(clippy::zombie_processes)]
    let child = cmd.spawn().expect("spawn the runtime");
    let mut status = 0;
    // SAFETY: rusage is plain data, all-zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pointers are to live locals; the child is ours and is
    // reaped exactly once, here.
    let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    assert_eq!(r, child.id() as i32, "wait4");
    let read = |mut f: fs::File| {
        use std::io::{Read, Seek};
        let mut s = String::new();
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        f.read_to_string(&mut s).unwrap();
        s
    };
    let st = std::process::ExitStatus::from_raw(status);
    (
        Output {
            cmdline: format!("{cmd:?}"),
            code: st.code(),
            signal: st.signal(),
            stdout: read(out),
            stderr: read(err),
        },
        ru.ru_maxrss,
    )
}

/// A 27 MB config (the attack round's 2M env entries) is refused before it
/// is parsed, in little memory; arrays over their caps in a small file,
/// and the same for `exec --process`, are refused naming the field.
#[test]
fn oversized_config_and_arrays_are_refused_naming_the_field() {
    require!(is_root(), "needs root");
    require!(
        !is_runc(),
        "runc has no size limits (it parses the 27 MB config)"
    );
    let c = Container::new(Bundle::new());
    c.bundle.write();
    // Written as a stream: a forked child's peak RSS starts from its
    // parent's, so the test must not hold the config in memory.
    let config = c.bundle.file("config.json");
    let text = fs::read_to_string(&config).unwrap();
    let at = text.find("\"env\"").expect("an env array");
    let open = at + text[at..].find('[').expect("an env array");
    let (head, tail) = text.split_at(open + 1);
    {
        use std::io::Write;
        let mut w = std::io::BufWriter::new(fs::File::create(&config).unwrap());
        write!(w, "{head}").unwrap();
        for i in 0..2_200_000 {
            write!(w, "\"V{i}=x\",").unwrap();
        }
        write!(w, "{tail}").unwrap();
    }
    let size = fs::metadata(&config).unwrap().len();
    assert!(size > 26_000_000, "config is {size} bytes");
    let b = c.bundle_arg();
    let (base, base_kib) = run_measured(c.cmd(&["state", "no-such-container"]));
    base.failed();
    let (o, rss_kib) = run_measured(c.cmd(&["create", "--bundle", &b, &c.id]));
    o.failed().stderr_is_short_error();
    mentions_all(&o, &["config.json", "MiB"]);
    assert!(
        rss_kib < base_kib + (16 << 10),
        "peak RSS {rss_kib} KiB refusing a {size}-byte config (an error alone: {base_kib} KiB)"
    );
    c.assert_clean();

    let many = |n: usize, v: &str| -> Value { json!(vec![v; n]) };
    for (field, edit) in [
        (
            "process.env",
            Box::new(|c: &mut Value| c["process"]["env"] = many(200_000, "A=1"))
                as Box<dyn Fn(&mut Value)>,
        ),
        (
            "process.args",
            Box::new(|c: &mut Value| c["process"]["args"] = many(200_000, "true")),
        ),
        (
            "mounts",
            Box::new(|c: &mut Value| {
                let m = c["mounts"][0].clone();
                c["mounts"] = json!(vec![m; 5000]);
            }),
        ),
        (
            "linux.seccomp.syscalls",
            Box::new(|c: &mut Value| {
                c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": vec![json!({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}); 5000]});
            }),
        ),
        (
            "hooks.prestart",
            Box::new(|c: &mut Value| {
                c["hooks"] = json!({"prestart": vec![json!({"path": "/bin/true"}); 2000]});
            }),
        ),
    ] {
        let c = Container::new(Bundle::new().with(|c| edit(c)));
        let o = c.create();
        o.failed().stderr_is_short_error();
        mentions_all(&o, &[field, "entries"]);
        c.assert_clean();
    }

    // exec --process: a file over the cap, and an env over the cap.
    let c = Container::new(Bundle::new().args(&["sleep", "1000"]));
    c.run_detached().ok();
    let big = c.bundle.file("process-big.json");
    let f = fs::File::create(&big).unwrap();
    f.set_len(9 << 20).unwrap();
    let p = big.to_string_lossy().into_owned();
    let o = c.rrun(&["exec", "--process", &p, &c.id]);
    o.failed().stderr_is_short_error();
    mentions_all(&o, &["--process", "MiB"]);
    let many_env = c.bundle.file("process-env.json");
    fs::write(
        &many_env,
        json!({"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0},
               "env": vec!["A=1"; 200_000]})
        .to_string(),
    )
    .unwrap();
    let p = many_env.to_string_lossy().into_owned();
    let o = c.rrun(&["exec", "--process", &p, &c.id]);
    o.failed().stderr_is_short_error();
    mentions_all(&o, &["--process", "env", "entries"]);
    assert_eq!(c.status(), "running");
    c.delete_force().ok();
    c.assert_clean();
}
