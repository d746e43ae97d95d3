//! Rootless containers: the runtime run by an unprivileged user (created by
//! the test setup if missing) on a bundle from its own `spec --rootless`,
//! with a user namespace mapping that user to root. No cgroups unless
//! delegated, no device nodes but bind mounts of the host's, the rest as
//! for root. Each test checks from inside the container and from the host.

#[macro_use]
mod common;

use common::*;
use serde_json::{Value, json};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// A container program that waits until signalled (TERM ends it with 0).
const WAIT_FOREVER: &str =
    "trap 'echo got TERM; exit 0' TERM; echo ready; while true; do sleep 0.05; done";

/// The unprivileged user, or None (with a printed reason) when the suite
/// does not run as root. Running as root, failing to get one is a failure.
fn setup() -> Option<User> {
    if !is_root() {
        skip("rootless tests create an unprivileged user and switch to it: run them as root");
        return None;
    }
    if !have_cmd("setpriv") {
        skip("setpriv (util-linux) not found");
        return None;
    }
    let u = rootless_user().unwrap_or_else(|e| panic!("cannot get the rootless test user: {e}"));
    assert_ne!(u.uid, 0, "the rootless test user must not be root");
    // Bundles are made in the temp dir; the user must be able to reach them.
    let tmp = std::env::temp_dir();
    assert!(
        user_can(&u, "-x \"$1\"", &tmp),
        "{} is not searchable by {}: point TMPDIR at a directory others can reach",
        tmp.display(),
        u.name
    );
    Some(u)
}

/// Whether `user` can run `test EXPR` with `$1` = `path` successfully.
fn user_can(user: &User, expr: &str, path: &Path) -> bool {
    let mut c = user.command(Path::new("/bin/sh"), Path::new("/"));
    c.arg("-c").arg(format!("test {expr}")).arg("sh").arg(path);
    run_timeout(c, TIMEOUT).success()
}

/// Whether `user` can reach and run the shared rootfs (every directory on
/// the way searchable, busybox executable); decided once.
fn shared_rootfs_usable(user: &User) -> bool {
    static USABLE: OnceLock<bool> = OnceLock::new();
    *USABLE.get_or_init(|| {
        let r = rootfs();
        let ok = user_can(user, "-x \"$1/bin/busybox\" -a -r \"$1/etc/passwd\"", &r);
        if !ok {
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!(
                    "rootless: {} is not reachable by {}; each bundle gets a private copy\n",
                    r.display(),
                    user.name
                )
                .as_bytes(),
            );
        }
        ok
    })
}

/// A bundle owned by `user` whose config is the runtime's own
/// `spec --rootless` (made as the user, so the maps name its ids), adjusted:
/// no terminal, the test rootfs (read-only), a known hostname.
fn rootless_bundle(user: &User) -> Bundle {
    let mut b = Bundle::new();
    user.chown(b.path());
    let mut c = user.command(&rrun_bin(), b.path());
    c.arg("spec")
        .arg("--rootless")
        .arg("--bundle")
        .arg(b.path());
    run_timeout(c, TIMEOUT).ok();
    let text = fs::read_to_string(b.file("config.json")).expect("spec wrote config.json");
    let mut config: Value = serde_json::from_str(&text).expect("spec output is JSON");
    assert_eq!(
        config["linux"]["uidMappings"],
        json!([{"containerID": 0, "hostID": user.uid, "size": 1}]),
        "spec --rootless must map root to the user"
    );
    assert!(config.get("hooks").is_none(), "spec --rootless has hooks");
    if !shared_rootfs_usable(user) {
        b = b.private_rootfs();
        user.chown_tree(&b.rootfs);
    }
    config["process"]["terminal"] = json!(false);
    config["root"] = json!({ "path": b.rootfs.to_string_lossy(), "readonly": true });
    config["hostname"] = json!("rrun-rootless");
    b.config = config;
    b
}

/// A rootless container with an explicit private `--root`. The bundle's
/// cgroups_path is the id: what a rootless create with no cgroupsPath would
/// use if it made cgroups (the leak checks look there).
fn container(mut b: Bundle, user: &User) -> Container {
    let id = unique_name();
    b.cgroups_path = id.clone();
    Container::rootless_with_id(b, user, false, &id)
}

fn proc_status_ids(pid: i32, field: &str) -> Vec<u32> {
    let st = fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    st.lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().expect("numeric id"))
        .collect()
}

/// Every uid and gid (real, effective, saved, fs) of a host pid is the user's.
#[track_caller]
fn assert_runs_as(pid: i32, user: &User) {
    assert_eq!(
        proc_status_ids(pid, "Uid"),
        vec![user.uid; 4],
        "pid {pid}'s uids seen from the host"
    );
    assert_eq!(
        proc_status_ids(pid, "Gid"),
        vec![user.gid; 4],
        "pid {pid}'s gids seen from the host"
    );
}

/// Wait until the container's stdout has a line `want`; returns all stdout.
#[track_caller]
fn wait_output_line(c: &Container, want: &str) -> String {
    let got = poll(STATUS_TIMEOUT, || {
        let (out, _) = c.output();
        out.lines().any(|l| l.trim() == want).then_some(out)
    });
    got.unwrap_or_else(|| {
        let (out, err) = c.output();
        panic!("no line {want:?} from the container within {STATUS_TIMEOUT:?}\nstdout: {out:?}\nstderr: {err:?}")
    })
}

/// The value after `key=` on a `key=value` line of the container's output.
#[track_caller]
fn field<'a>(out: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}=");
    out.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key}= line in container output:\n{out}"))
        .trim()
}

/// Every directory named `name` under /sys/fs/cgroup (a few levels deep).
fn cgroup_dirs_named(name: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, name: &str, depth: usize, out: &mut Vec<PathBuf>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            let p = e.path();
            if e.file_name() == name {
                out.push(p.clone());
            }
            if depth > 0 {
                walk(&p, name, depth - 1, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), name, 8, &mut out);
    out
}

/// The `0:uid:1`-style first line of a uid_map/gid_map file, normalised.
fn map_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn lifecycle_create_start_state_kill_delete() {
    let Some(u) = setup() else { return };
    let c = container(rootless_bundle(&u).sh(WAIT_FOREVER), &u);
    c.create().ok();

    let st = c.state();
    assert_eq!(st["status"], "created", "state: {st}");
    assert_eq!(st["id"], c.id.as_str());
    assert!(
        st["ociVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "state: {st}"
    );
    assert_eq!(st["bundle"], c.bundle_arg().as_str(), "state: {st}");
    assert_eq!(
        st["rootfs"],
        c.bundle.rootfs.to_string_lossy().as_ref(),
        "state: {st}"
    );
    let created = st["created"].as_str().expect("created is a string");
    assert!(
        created.len() >= 20 && created.as_bytes()[4] == b'-' && created.contains('T'),
        "created is not an RFC 3339 time: {created}"
    );
    assert!(st["owner"].is_string(), "state has no owner string: {st}");
    let pid = st["pid"].as_i64().expect("pid") as i32;
    assert!(
        pid > 0 && pid_alive(pid),
        "created container has no live pid: {st}"
    );
    // The init already runs as the user on the host, in its own user
    // namespace, and the program has not run yet.
    assert_runs_as(pid, &u);
    assert_ne!(ns_of(&pid.to_string(), "user"), ns_of("self", "user"));
    std::thread::sleep(Duration::from_millis(200));
    assert!(!c.output().0.contains("ready"), "program ran before start");
    // The state is the user's: its directory is owned by it, closed to others.
    let meta = fs::metadata(c.root.join(&c.id)).expect("state dir");
    assert_eq!(meta.uid(), u.uid, "state dir owner");
    assert_eq!(meta.mode() & 0o022, 0, "state dir writable by others");

    c.start().ok();
    c.wait_status("running");
    wait_output_line(&c, "ready");
    assert_eq!(c.pid(), pid, "pid changed at start");
    assert_runs_as(pid, &u);

    c.kill("TERM").ok();
    c.wait_status("stopped");
    wait_output_line(&c, "got TERM");
    assert_eq!(c.state()["pid"], 0, "a stopped container reports pid 0");
    c.delete().ok();
    c.assert_clean();
}

#[test]
fn run_exit_codes_and_output() {
    let Some(u) = setup() else { return };
    for (script, code) in [("echo hello-rootless", 0), ("echo bye; exit 7", 7)] {
        let c = container(rootless_bundle(&u).sh(script), &u);
        let o = c.run();
        assert_eq!(o.code, Some(code), "run {script:?}:\n{o}");
        c.assert_clean();
        if code == 0 {
            assert_eq!(o.stdout.trim(), "hello-rootless", "{o}");
        }
    }
    // Killed by a signal from the user: 128+9.
    let c = container(rootless_bundle(&u).sh("exec sleep 60"), &u);
    let bg = c.run_background();
    if poll(STATUS_TIMEOUT, || {
        (c.state_output().success()).then_some(())
    })
    .is_none()
    {
        panic!("run never created the container:\n{}", bg.wait(TIMEOUT));
    }
    c.wait_status("running");
    c.kill("KILL").ok();
    let o = bg.wait(TIMEOUT);
    assert_eq!(
        o.code,
        Some(137),
        "run of a container killed by SIGKILL:\n{o}"
    );
    c.assert_clean();
}

#[test]
fn root_inside_is_the_user_outside() {
    let Some(u) = setup() else { return };
    let b = rootless_bundle(&u);
    // A directory of the user's with one file of its own and one of root's.
    let share = b.file("share");
    fs::create_dir(&share).unwrap();
    fs::write(share.join("mine"), "mine\n").unwrap();
    fs::write(share.join("roots"), "roots\n").unwrap();
    set_mode(&share.join("roots"), 0o644);
    u.chown(&share);
    u.chown(&share.join("mine"));
    let script = "echo uid=$(id -u) gid=$(id -g); \
        echo uidmap=$(cat /proc/self/uid_map); echo gidmap=$(cat /proc/self/gid_map); \
        echo setgroups=$(cat /proc/self/setgroups); \
        echo mine=$(stat -c %u:%g /mnt/mine); echo roots=$(stat -c %u:%g /mnt/roots); \
        if echo x >> /mnt/mine; then echo write-mine=ok; else echo write-mine=fail; fi; \
        if echo x >> /mnt/roots; then echo write-roots=ok; else echo write-roots=fail; fi; \
        echo ready; exec sleep 60";
    let b = b.sh(script).bind_mount(&share, "/mnt", &["rbind", "rw"]);
    let c = container(b, &u);
    c.run_detached().ok();
    let out = wait_output_line(&c, "ready");

    // Inside: root, mapped from the user, setgroups denied.
    assert_eq!(field(&out, "uid"), "0 gid=0", "{out}");
    assert_eq!(field(&out, "uidmap"), format!("0 {} 1", u.uid), "{out}");
    assert_eq!(field(&out, "gidmap"), format!("0 {} 1", u.gid), "{out}");
    assert_eq!(field(&out, "setgroups"), "deny", "{out}");
    // The user's file is root's inside; root's file belongs to nobody
    // (the overflow id) and stays closed to the container's root.
    assert_eq!(field(&out, "mine"), "0:0", "{out}");
    assert_eq!(field(&out, "roots"), "65534:65534", "{out}");
    assert_eq!(field(&out, "write-mine"), "ok", "{out}");
    assert_eq!(field(&out, "write-roots"), "fail", "{out}");
    assert_eq!(fs::read_to_string(share.join("roots")).unwrap(), "roots\n");
    assert_eq!(fs::read_to_string(share.join("mine")).unwrap(), "mine\nx\n");

    // Outside: the same maps, the user's ids, setgroups denied.
    let pid = c.pid();
    assert_runs_as(pid, &u);
    let m = |f: &str| map_line(&fs::read_to_string(format!("/proc/{pid}/{f}")).unwrap());
    assert_eq!(m("uid_map"), format!("0 {} 1", u.uid));
    assert_eq!(m("gid_map"), format!("0 {} 1", u.gid));
    assert_eq!(m("setgroups"), "deny");
    for ns in ["user", "pid", "mnt", "ipc", "uts"] {
        assert_ne!(
            ns_of(&pid.to_string(), ns),
            ns_of("self", ns),
            "{ns} namespace of the container equals the test's"
        );
    }
    // No capability on the host: the effective set is the config's, and
    // only inside the container's user namespace.
    let caps = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let eff = caps.lines().find(|l| l.starts_with("CapEff:")).unwrap();
    let eff = u64::from_str_radix(eff.split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert_eq!(eff, cap_mask(DEFAULT_CAPS), "effective capabilities");
    c.delete_force().ok();
    c.assert_clean();
}

#[test]
fn no_cgroup_without_delegation() {
    let Some(u) = setup() else { return };
    // Only meaningful when our own cgroups are not the user's to write.
    for h in cgroup_hierarchies() {
        let own = h.mountpoint.join(h.own.trim_start_matches('/'));
        let m = fs::metadata(&own).unwrap();
        require!(
            m.uid() != u.uid && m.mode() & 0o002 == 0,
            "{} is writable by {}: cgroups are delegated here",
            own.display(),
            u.name
        );
    }
    let ours = fs::read_to_string("/proc/self/cgroup").unwrap();
    // With no cgroupsPath (the default `<id>`) and with a relative one.
    let explicit = unique_name();
    let cases = [None, Some(explicit.clone())];
    for cg in cases {
        let mut b = rootless_bundle(&u).args(&["sleep", "60"]);
        if let Some(p) = &cg {
            b = b.with(|c| c["linux"]["cgroupsPath"] = json!(p));
        }
        let mut c = container(b, &u);
        let name = cg.clone().unwrap_or_else(|| c.id.clone());
        c.bundle.cgroups_path = name.clone();
        let o = c.run_detached();
        if is_runc() && cg.is_some() && !o.success() {
            skip(
                "explicit cgroupsPath case: runc 1.1 refuses an explicit cgroupsPath it cannot create in rootless mode (rrun runs without cgroups, as for the default path)",
            );
            o.stderr_is_short_error();
            c.assert_clean();
            continue;
        }
        o.ok();
        let pid = c.pid();
        let found = cgroup_dirs_named(&name);
        assert!(found.is_empty(), "cgroups made for {name}: {found:?}");
        for d in cgroup_dirs(&name) {
            assert!(!d.exists(), "cgroup {} exists", d.display());
        }
        // The container stays where the user's command was: in our cgroups.
        let theirs = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        assert_eq!(theirs, ours, "cgroups of the container's init");
        c.delete_force().ok();
        c.assert_clean();
    }
}

#[test]
fn resource_limits_without_delegation_are_refused() {
    let Some(u) = setup() else { return };
    let b = rootless_bundle(&u).with(|c| c["linux"]["resources"] = json!({"pids": {"limit": 10}}));
    let c = container(b, &u);
    let o = c.create();
    o.failed()
        .stderr_is_short_error()
        .stderr_mentions(&["cgroup"]);
    c.assert_clean();
}

#[test]
fn devices_are_bind_mounts_of_the_hosts() {
    let Some(u) = setup() else { return };
    let script = "if echo x > /dev/null; then echo null=ok; else echo null=fail; fi; \
        echo zero=$(head -c 3 /dev/zero | od -An -tx1); \
        echo nodeowner=$(stat -c %u:%g:%t:%T /dev/null); \
        if mknod /dev/shm/n c 1 3 2>/dev/shm/err; then echo mknod=ok; else echo mknod=fail; fi; \
        echo mknoderr=$(cat /dev/shm/err); \
        for f in /dev/* /dev/*/*; do if [ ! -L $f ] && { [ -c $f ] || [ -b $f ]; }; then echo dev $f; fi; done; \
        cat /proc/self/mountinfo; echo done";
    let c = container(rootless_bundle(&u).sh(script), &u);
    let o = c.run();
    o.ok();
    let out = &o.stdout;
    assert_eq!(field(out, "null"), "ok", "{out}");
    assert_eq!(field(out, "zero"), "00 00 00", "{out}");
    // The host's node (root-owned, so nobody's inside), char 1:3.
    assert_eq!(field(out, "nodeowner"), "65534:65534:1:3", "{out}");
    assert_eq!(field(out, "mknod"), "fail", "{out}");
    assert!(
        field(out, "mknoderr").contains("not permitted"),
        "mknod should fail with EPERM:\n{out}"
    );
    let mount_points: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split(" - ").next()?.split_whitespace().nth(4))
        .collect();
    let devs: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix("dev ")).collect();
    for d in ["null", "zero", "full", "random", "urandom", "tty"] {
        assert!(
            devs.contains(&format!("/dev/{d}").as_str()),
            "/dev/{d} missing:\n{out}"
        );
    }
    for d in &devs {
        // devpts makes its own ptmx; every other node is a host bind.
        if d.starts_with("/dev/pts/") {
            continue;
        }
        assert!(
            mount_points.contains(d),
            "{d} is a device node but not a bind mount:\n{out}"
        );
    }
    c.assert_clean();
}

#[test]
fn exec_into_a_rootless_container() {
    let Some(u) = setup() else { return };
    let c = container(rootless_bundle(&u).args(&["sleep", "60"]), &u);
    c.run_detached().ok();
    let init = c.pid();

    let o = c.rrun(&[
        "exec",
        &c.id,
        "sh",
        "-c",
        "echo uid=$(id -u); echo uidmap=$(cat /proc/self/uid_map); \
         echo pid1=$(cat /proc/1/comm); exit 5",
    ]);
    assert_eq!(o.code, Some(5), "exec exit code:\n{o}");
    assert_eq!(field(&o.stdout, "uid"), "0", "{o}");
    assert_eq!(field(&o.stdout, "uidmap"), format!("0 {} 1", u.uid), "{o}");
    assert_eq!(field(&o.stdout, "pid1"), "sleep", "{o}");

    // A detached exec: on the host it is the user, in the container's
    // namespaces.
    let pid = exec_detached_sleep(&c);
    assert!(pid_alive(pid), "exec'd process {pid} is not alive");
    assert_ne!(pid, init);
    assert_runs_as(pid, &u);
    for ns in ["user", "pid", "mnt", "ipc", "uts"] {
        assert_eq!(
            ns_of(&pid.to_string(), ns),
            ns_of(&init.to_string(), ns),
            "exec'd process is not in the container's {ns} namespace"
        );
    }
    // Delete --force takes the exec'd process along.
    c.delete_force().ok();
    assert!(!pid_alive(pid), "exec'd process survived delete --force");
    c.assert_clean();
}

#[test]
fn hostname_in_its_own_uts_namespace() {
    let Some(u) = setup() else { return };
    let before = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let name = format!("rl-{}", std::process::id());
    let b = rootless_bundle(&u)
        .hostname(&name)
        .sh("echo host=$(hostname); echo ready; exec sleep 60");
    let c = container(b, &u);
    c.run_detached().ok();
    let out = wait_output_line(&c, "ready");
    assert_eq!(field(&out, "host"), name, "{out}");
    let pid = c.pid();
    assert_ne!(ns_of(&pid.to_string(), "uts"), ns_of("self", "uts"));
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        before
    );
    c.delete_force().ok();
    c.assert_clean();
}

#[test]
fn readonly_and_writable_rootfs() {
    let Some(u) = setup() else { return };
    let script = "if touch /probe 2>/dev/shm/err; then echo root=rw; else echo root=ro; fi; \
        echo err=$(cat /dev/shm/err); \
        if echo x > /dev/shm/f; then echo shm=ok; else echo shm=fail; fi";
    let c = container(rootless_bundle(&u).sh(script), &u);
    let o = c.run();
    o.ok();
    assert_eq!(field(&o.stdout, "root"), "ro", "{o}");
    assert!(field(&o.stdout, "err").contains("Read-only"), "{o}");
    assert_eq!(field(&o.stdout, "shm"), "ok", "{o}");
    c.assert_clean();

    // A writable private rootfs owned by the user: a file made by the
    // container's root is the user's on the host.
    let b = rootless_bundle(&u).private_rootfs();
    u.chown_tree(&b.rootfs);
    let b = b.sh(script);
    let rootfs = b.rootfs.clone();
    let c = container(b, &u);
    let o = c.run();
    o.ok();
    assert_eq!(field(&o.stdout, "root"), "rw", "{o}");
    let meta = fs::metadata(rootfs.join("probe")).expect("file made in the container");
    assert_eq!(
        (meta.uid(), meta.gid()),
        (u.uid, u.gid),
        "owner on the host"
    );
    c.assert_clean();
}

#[test]
fn network_namespace_has_only_lo() {
    let Some(u) = setup() else { return };
    let script = "echo ifaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ' '); \
        echo ready; exec sleep 60";
    let b = rootless_bundle(&u).namespace("network", None).sh(script);
    let c = container(b, &u);
    c.run_detached().ok();
    let out = wait_output_line(&c, "ready");
    assert_eq!(field(&out, "ifaces"), "lo", "{out}");
    let pid = c.pid();
    assert_ne!(ns_of(&pid.to_string(), "net"), ns_of("self", "net"));

    // Without one (the rootless default), the container shares the user's.
    let c2 = container(rootless_bundle(&u).args(&["sleep", "60"]), &u);
    assert!(!c2.bundle.has_namespace("network"));
    c2.run_detached().ok();
    assert_eq!(ns_of(&c2.pid().to_string(), "net"), ns_of("self", "net"));
    for c in [c, c2] {
        c.delete_force().ok();
        c.assert_clean();
    }
}

#[test]
fn list_shows_only_the_users_own_containers() {
    let Some(u) = setup() else { return };
    // The user's container under its default state root
    // ($XDG_RUNTIME_DIR/<runtime>), another of the user's in a different
    // root, and one of root's.
    let mut b = rootless_bundle(&u).args(&["sleep", "60"]);
    let id = unique_name();
    b.cgroups_path = id.clone();
    let mine = Container::rootless_with_id(b, &u, true, &id);
    mine.run_detached().ok();
    let other_root = container(rootless_bundle(&u).args(&["sleep", "60"]), &u);
    other_root.run_detached().ok();
    let roots = Container::new(Bundle::new().args(&["sleep", "60"]));
    roots.run_detached().ok();

    assert!(
        mine.root.join(&mine.id).is_dir(),
        "state not under $XDG_RUNTIME_DIR: {}",
        mine.root.display()
    );
    let o = mine.rrun(&["list"]);
    o.ok();
    let rows: Vec<Vec<&str>> = o
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 1, "list shows one container:\n{o}");
    assert_eq!(rows[0][0], mine.id, "{o}");
    assert_eq!(rows[0][2], "running", "{o}");
    assert_eq!(*rows[0].last().unwrap(), u.name, "OWNER column:\n{o}");

    let o = mine.rrun(&["list", "--format", "json"]);
    o.ok();
    let v: Value = serde_json::from_str(&o.stdout).expect("list json");
    let ids: Vec<&str> = v
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(ids, vec![mine.id.as_str()], "{o}");

    // Root's state root is closed to the user.
    let run_as = mine.run_as.as_ref().unwrap();
    let mut c = run_as.command(&rrun_bin());
    c.arg("--root").arg(&roots.root).arg("list");
    let o = run_timeout(c, TIMEOUT);
    assert!(
        !o.stdout.contains(&roots.id),
        "the user sees root's container:\n{o}"
    );

    for c in [mine, other_root, roots] {
        c.delete_force().ok();
        c.assert_clean();
    }
}

/// A create the user may not do: fails with a short error (for rrun one
/// line naming `names`; runc's wording differs), nothing left.
#[track_caller]
fn assert_refused(c: &Container, why: &str, names: &str) {
    let o = c.create();
    o.failed().stderr_is_short_error();
    if !is_runc() {
        let lines = o.stderr.lines().filter(|l| !l.trim().is_empty()).count();
        assert_eq!(lines, 1, "{why}: one error line expected:\n{o}");
        o.stderr_mentions(&[names]);
    }
    c.assert_clean();
    let left = fs::read_dir(&c.root).map(|d| d.count()).unwrap_or(0);
    assert_eq!(
        left,
        0,
        "{why}: entries left in the state root {}",
        c.root.display()
    );
}

#[test]
fn bad_mappings_fail_cleanly() {
    let Some(u) = setup() else { return };
    let cases = [
        (
            "a uid that is not the user's",
            "linux.uidMappings",
            json!([{"containerID": 0, "hostID": u.uid + 1, "size": 1}]),
            json!([{"containerID": 0, "hostID": u.gid, "size": 1}]),
        ),
        (
            "more ids than the user's own",
            "linux.uidMappings",
            json!([{"containerID": 0, "hostID": u.uid, "size": 2}]),
            json!([{"containerID": 0, "hostID": u.gid, "size": 1}]),
        ),
        (
            "root's gid",
            "linux.gidMappings",
            json!([{"containerID": 0, "hostID": u.uid, "size": 1}]),
            json!([{"containerID": 0, "hostID": 0, "size": 1}]),
        ),
    ];
    for (why, names, uids, gids) in cases {
        let b = rootless_bundle(&u).with(|c| {
            c["linux"]["uidMappings"] = uids.clone();
            c["linux"]["gidMappings"] = gids.clone();
        });
        let c = container(b, &u);
        assert_refused(&c, why, names);
    }
}

#[test]
fn no_user_namespace_fails_cleanly() {
    let Some(u) = setup() else { return };
    let b = rootless_bundle(&u).without_namespace("user").with(|c| {
        let l = c["linux"].as_object_mut().unwrap();
        l.remove("uidMappings");
        l.remove("gidMappings");
    });
    let c = container(b, &u);
    assert_refused(
        &c,
        "new namespaces without a user namespace",
        "user namespace",
    );
}

#[test]
fn device_missing_on_the_host_fails_cleanly() {
    let Some(u) = setup() else { return };
    let b = rootless_bundle(&u).with(|c| {
        c["linux"]["devices"] = json!([{
            "path": "/dev/rrun-test-no-such-device", "type": "c",
            "major": 1, "minor": 3, "fileMode": 438, "uid": 0, "gid": 0
        }])
    });
    let c = container(b, &u);
    assert_refused(
        &c,
        "a device the host does not have",
        "/dev/rrun-test-no-such-device",
    );
}

#[test]
fn delete_force_of_a_running_container_leaves_nothing() {
    let Some(u) = setup() else { return };
    let c = container(rootless_bundle(&u).sh(WAIT_FOREVER), &u);
    c.run_detached().ok();
    c.wait_status("running");
    let init = c.pid();
    let exec_pid = exec_detached_sleep(&c);
    assert!(pid_alive(init) && pid_alive(exec_pid));

    c.delete_force().ok();
    assert!(!pid_alive(init), "init {init} survived delete --force");
    assert!(
        !pid_alive(exec_pid),
        "exec'd {exec_pid} survived delete --force"
    );
    assert!(!c.root.join(&c.id).exists(), "state dir left");
    c.state_output().failed();
    c.assert_clean();
}

/// Regression: the parent wrote the id maps while the init, racing it, had
/// already made itself non-dumpable, which hands its /proc files to global
/// root: "writing setgroups of pid N: Permission denied" for a few creates
/// in a hundred under load. Many concurrent creates must all succeed.
#[test]
fn concurrent_rootless_creates_all_succeed() {
    let Some(u) = setup() else { return };
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let u = u.clone();
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                for _ in 0..8 {
                    let c = container(rootless_bundle(&u).args(&["true"]), &u);
                    let o = c.run();
                    if !o.success() {
                        failures.push(o.to_string());
                    }
                    c.assert_clean();
                }
                failures
            })
        })
        .collect();
    let failures: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("create thread panicked"))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of 32 rootless runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A cgroup delegated to the user in every hierarchy (under our own
/// cgroup): owned by it, with its cgroup.procs, as systemd delegates a
/// user's session. Removed on drop (after the containers in it).
struct Delegation {
    name: String,
    dirs: Vec<PathBuf>,
}

impl Delegation {
    fn new(user: &User) -> Delegation {
        let name = unique_name();
        let mut d = Delegation {
            name: name.clone(),
            dirs: Vec::new(),
        };
        for h in cgroup_hierarchies() {
            let own = h.mountpoint.join(h.own.trim_start_matches('/'));
            let dir = own.join(&name);
            fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
            d.dirs.push(dir.clone());
            // A new v1 cpuset takes no task until it has cpus and mems.
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if let Ok(v) = fs::read_to_string(own.join(f)) {
                    fs::write(dir.join(f), v.trim()).unwrap();
                }
            }
            user.chown(&dir);
            for f in [
                "cgroup.procs",
                "tasks",
                "cgroup.threads",
                "cgroup.subtree_control",
            ] {
                if dir.join(f).exists() {
                    user.chown(&dir.join(f));
                }
            }
        }
        d
    }
}

impl Drop for Delegation {
    fn drop(&mut self) {
        // A killed container's last tasks may keep a cgroup busy a moment.
        poll(Duration::from_secs(5), || {
            for d in &self.dirs {
                rmdir_cgroup_tree(d);
            }
            self.dirs.iter().all(|d| !d.exists()).then_some(())
        });
    }
}

#[test]
fn delegated_cgroups_are_used() {
    let Some(u) = setup() else { return };
    let deleg = Delegation::new(&u);
    let b = rootless_bundle(&u)
        .args(&["sleep", "60"])
        .with(|c| c["linux"]["resources"] = json!({"pids": {"limit": 20}}));
    let mut c = container(b, &u);
    // No cgroupsPath: `<id>` under the runtime's own cgroup, the delegated one.
    c.bundle.cgroups_path = format!("{}/{}", deleg.name, c.id);
    c.run_as.as_mut().unwrap().enter_cgroups = deleg.dirs.clone();
    c.run_detached().ok();
    let pid = c.pid();

    let theirs = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let want = format!("/{}/{}", deleg.name, c.id);
    for line in theirs.lines() {
        if is_runc() && line.starts_with("0::") && !line.ends_with(&want) {
            skip(
                "unified-hierarchy check: runc 1.1 leaves a rootless container out of the controller-less unified hierarchy of a hybrid host",
            );
            continue;
        }
        assert!(
            line.ends_with(&want),
            "the container is not in its cgroup under the delegated one: {line:?}\n{theirs}"
        );
    }
    for d in &deleg.dirs {
        let cg = d.join(&c.id);
        // (cgroup.controllers: d is in the v2 hierarchy; runc, above.)
        if is_runc() && !cg.exists() && d.join("cgroup.controllers").exists() {
            continue;
        }
        let meta = fs::metadata(&cg).unwrap_or_else(|e| panic!("{}: {e}", cg.display()));
        assert_eq!(meta.uid(), u.uid, "{} is not the user's", cg.display());
        let procs = fs::read_to_string(cg.join("cgroup.procs")).unwrap();
        assert!(
            procs.lines().any(|l| l.trim() == pid.to_string()),
            "pid {pid} not in {}: {procs:?}",
            cg.display()
        );
        if cg.join("pids.max").exists() {
            assert_eq!(
                fs::read_to_string(cg.join("pids.max")).unwrap().trim(),
                "20"
            );
        }
    }
    assert!(
        deleg
            .dirs
            .iter()
            .any(|d| d.join(&c.id).join("pids.max").exists()),
        "no pids controller: the limit was not checked"
    );
    c.delete_force().ok();
    c.assert_clean();
    for d in &deleg.dirs {
        assert!(!d.join(&c.id).exists(), "{} left", d.join(&c.id).display());
    }
}

/// Regression (tests/common): reading a running container's output used to
/// seek the file it shares with the container to 0, so the container's next
/// write landed over earlier lines (a `host=` line lost behind `ready`).
#[test]
fn polled_output_of_a_running_container_is_intact() {
    let Some(u) = setup() else { return };
    // Three bursts, each a fresh chance for a read to overlap a write.
    let script = "for b in 0 1 2; do i=0; while [ $i -lt 20000 ]; do echo line$b-$i; i=$((i+1)); done; \
                  sleep 0.1; done; echo ready; exec sleep 60";
    let c = container(rootless_bundle(&u).sh(script), &u);
    c.run_detached().ok();
    // Read while it writes, as every wait for a line does (without a nap,
    // to read often).
    let deadline = std::time::Instant::now() + STATUS_TIMEOUT;
    let out = loop {
        let (out, _) = c.output();
        if out.lines().any(|l| l == "ready") {
            break out;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no ready line within {STATUS_TIMEOUT:?}:\n{out}"
        );
    };
    let want: Vec<String> = (0..3)
        .flat_map(|b| (0..20000).map(move |i| format!("line{b}-{i}")))
        .collect();
    let got: Vec<&str> = out.lines().filter(|l| *l != "ready").collect();
    assert_eq!(got, want, "output lost or reordered while polled");
    c.delete_force().ok();
    c.assert_clean();
}

/// `exec --detach --pid-file` of a long sleep, as the container's user:
/// the exec'd process's host pid (remembered for cleanup).
fn exec_detached_sleep(c: &Container) -> i32 {
    let pid_file = c.run_as.as_ref().unwrap().dir.join("exec.pid");
    c.rrun(&[
        "exec",
        "--detach",
        "--pid-file",
        &pid_file.to_string_lossy(),
        &c.id,
        "sleep",
        "60",
    ])
    .ok();
    let pid: i32 = fs::read_to_string(&pid_file)
        .expect("exec pid file")
        .trim()
        .parse()
        .expect("pid in the pid file");
    c.remember(pid);
    pid
}
