//! Mounts, devices and the root filesystem.

#[macro_use]
mod common;

use common::*;
use serde_json::{Value, json};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "mounts/propagation.rs"]
mod propagation;

/// A host directory for bind-mount sources (outside the bundle).
fn host_dir() -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("rrun-test-src-")
        .tempdir()
        .unwrap();
    set_mode(d.path(), 0o755);
    d
}

/// The mountinfo line (as fields) for mount point `mp`, from container output.
fn mountinfo_line<'a>(mountinfo: &'a str, mp: &str) -> Vec<&'a str> {
    mountinfo
        .lines()
        .rev() // the last one is the visible one
        .find(|l| l.split_whitespace().nth(4) == Some(mp))
        .unwrap_or_else(|| panic!("no mount at {mp} in:\n{mountinfo}"))
        .split_whitespace()
        .collect()
}

/// Per-mount options (field 6) of mount point `mp`.
fn mount_opts(mountinfo: &str, mp: &str) -> Vec<String> {
    mountinfo_line(mountinfo, mp)[5]
        .split(',')
        .map(str::to_string)
        .collect()
}

/// Filesystem type of mount point `mp`.
fn mount_fstype(mountinfo: &str, mp: &str) -> String {
    let f = mountinfo_line(mountinfo, mp);
    let sep = f.iter().position(|x| *x == "-").unwrap();
    f[sep + 1].to_string()
}

/// Super-block options of mount point `mp`.
fn super_opts(mountinfo: &str, mp: &str) -> String {
    let f = mountinfo_line(mountinfo, mp);
    let sep = f.iter().position(|x| *x == "-").unwrap();
    f[sep + 3].to_string()
}

#[test]
fn bind_mount_rw() {
    let src = host_dir();
    fs::write(src.path().join("from-host"), "host data\n").unwrap();
    let c = Container::new(
        Bundle::new()
            .bind_mount(src.path(), "/mnt", &["rbind", "rw"])
            .sh("cat /mnt/from-host; echo container data > /mnt/from-container"),
    );
    assert_eq!(c.run_ok(), "host data\n");
    assert_eq!(
        fs::read_to_string(src.path().join("from-container")).unwrap(),
        "container data\n"
    );
    c.assert_clean();
    assert!(mounts_mentioning(&src.path().to_string_lossy()).is_empty());
}

#[test]
fn bind_mount_ro_nosuid_nodev_noexec() {
    let src = host_dir();
    fs::write(src.path().join("f"), "x").unwrap();
    let c = Container::new(
        Bundle::new()
            .bind_mount(src.path(), "/mnt", &["bind", "ro", "nosuid", "nodev", "noexec"])
            .sh("touch /mnt/new 2>/dev/null && echo WROTE || echo refused; cat /proc/self/mountinfo"),
    );
    let out = c.run_ok();
    assert!(out.starts_with("refused\n"), "{out}");
    let opts = mount_opts(&out, "/mnt");
    for o in ["ro", "nosuid", "nodev", "noexec"] {
        assert!(opts.iter().any(|x| x == o), "{o} missing in {opts:?}");
    }
    assert!(!src.path().join("new").exists());
    c.assert_clean();
}

#[test]
fn bind_mount_file() {
    let src = host_dir();
    let f = src.path().join("motd");
    fs::write(&f, "bound file\n").unwrap();
    let c = Container::new(
        Bundle::new()
            .bind_mount(&f, "/etc/issue", &["bind", "ro"])
            .sh("cat /etc/issue"),
    );
    assert_eq!(c.run_ok(), "bound file\n");
    c.assert_clean();
}

/// A host tmpfs mounted inside `dir` for rbind tests; unmounted on drop.
struct HostSubmount(PathBuf);

impl Drop for HostSubmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn host_submount(dir: &Path) -> HostSubmount {
    let sub = dir.join("sub");
    fs::create_dir(&sub).unwrap();
    let mut c = Command::new("mount");
    c.args(["-t", "tmpfs", "-o", "size=1m", "rrun-test-sub"])
        .arg(&sub);
    run_timeout(c, TIMEOUT).ok();
    let guard = HostSubmount(sub.clone());
    fs::write(sub.join("inner"), "submount\n").unwrap();
    guard
}

#[test]
fn rbind_includes_submounts_bind_does_not() {
    let src = host_dir();
    let _sub = host_submount(src.path());
    let c = Container::new(
        Bundle::new()
            .bind_mount(src.path(), "/mnt", &["rbind", "ro"])
            .bind_mount(src.path(), "/home", &["bind", "ro"])
            .sh("cat /mnt/sub/inner; ls -A /home/sub | wc -l"),
    );
    let out = c.run_ok();
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines, ["submount", "0"], "{out}");
    c.assert_clean();
}

/// "ro" on an rbind makes the bind itself read-only, not the mounts under
/// it (runc; critest's "should support non-recursive readonly mounts", a
/// CRI read-only volume holding a writable tmpfs): "rro" is the recursive one.
#[test]
fn rbind_ro_leaves_submounts_writable() {
    let src = host_dir();
    let _sub = host_submount(src.path());
    let c = Container::new(
        Bundle::new()
            .bind_mount(src.path(), "/mnt", &["rbind", "rprivate", "ro"])
            .sh(
                "touch /mnt/top 2>/dev/null && echo top-written || echo top-refused; \
                 touch /mnt/sub/new && echo sub-written || echo sub-refused",
            ),
    );
    let out = c.run_ok();
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines, ["top-refused", "sub-written"], "{out}");
    assert!(!src.path().join("top").exists());
    c.assert_clean();
}

#[test]
fn tmpfs_with_size_and_mode() {
    let c = Container::new(
        Bundle::new()
            .mount(json!({
                "destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "nodev", "size=2m", "mode=1770"]
            }))
            .sh("stat -c %a /tmp; echo x > /tmp/f && echo written; cat /proc/self/mountinfo"),
    );
    let out = c.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    // runc copies the mode of the existing mount point (/tmp is 1777 in the
    // rootfs) onto the tmpfs; only the mount option is checked for it.
    if !is_runc() {
        assert_eq!(lines[0], "1770", "{out}");
    }
    assert_eq!(lines[1], "written", "{out}");
    assert_eq!(mount_fstype(&out, "/tmp"), "tmpfs");
    let sopts = super_opts(&out, "/tmp");
    assert!(sopts.contains("size=2048k"), "{sopts}");
    assert!(sopts.contains("mode=1770"), "{sopts}");
    let opts = mount_opts(&out, "/tmp");
    assert!(opts.iter().any(|o| o == "nosuid"), "{opts:?}");
    assert!(opts.iter().any(|o| o == "nodev"), "{opts:?}");
    c.assert_clean();
}

#[test]
fn mounts_applied_in_order() {
    // /mnt/inner only exists inside the first tmpfs: order matters.
    let c = Container::new(
        Bundle::new()
            .mount(json!({
                "destination": "/mnt", "type": "tmpfs", "source": "tmpfs",
                "options": ["size=1m"]
            }))
            .mount(json!({
                "destination": "/mnt/inner", "type": "tmpfs", "source": "tmpfs",
                "options": ["size=1m", "mode=700"]
            }))
            .sh("stat -c %a /mnt/inner; cat /proc/self/mountinfo"),
    );
    let out = c.run_ok();
    assert!(out.starts_with("700\n"), "{out}");
    let mnt = mountinfo_line(&out, "/mnt");
    let inner = mountinfo_line(&out, "/mnt/inner");
    // inner's parent id is the /mnt mount.
    assert_eq!(inner[1], mnt[0], "{out}");
    c.assert_clean();
}

/// A path on the host that a symlink escape would create; removed on drop.
struct HostPath(PathBuf);

impl Drop for HostPath {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = fs::remove_dir(&self.0);
    }
}

#[test]
fn symlink_destination_does_not_escape_rootfs() {
    let b = Bundle::new().private_rootfs();
    std::os::unix::fs::symlink("/", b.rootfs.join("evil")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../../..", b.rootfs.join("evil2")).unwrap();
    let n1 = unique_name();
    let n2 = unique_name();
    let esc1 = HostPath(PathBuf::from("/").join(&n1));
    let esc2 = HostPath(PathBuf::from("/").join(&n2));
    let b = b
        .mount(json!({
            "destination": format!("/evil/{n1}"), "type": "tmpfs", "source": "tmpfs",
            "options": ["size=1m"]
        }))
        .mount(json!({
            "destination": format!("/evil2/{n2}"), "type": "tmpfs", "source": "tmpfs",
            "options": ["size=1m"]
        }))
        .sh("cat /proc/self/mountinfo");
    let c = Container::new(b);
    let o = c.run();
    assert!(
        !esc1.0.exists(),
        "mount destination escaped to host {:?}",
        esc1.0
    );
    assert!(
        !esc2.0.exists(),
        "mount destination escaped to host {:?}",
        esc2.0
    );
    if o.success() {
        // Resolved inside the rootfs instead.
        assert_eq!(mount_fstype(&o.stdout, &format!("/{n1}")), "tmpfs");
        assert_eq!(mount_fstype(&o.stdout, &format!("/{n2}")), "tmpfs");
        assert!(c.bundle.rootfs.join(&n1).is_dir());
    } else {
        // Refusing is acceptable too, with a clear message.
        o.stderr_is_short_error();
    }
    c.assert_clean();
}

#[test]
fn default_devices() {
    let c = Container::new(
        Bundle::new().sh("for d in null zero full random urandom tty; do \
           stat -c \"%n %F %t:%T %a\" /dev/$d; done; \
         for l in fd stdin stdout stderr; do readlink /dev/$l; done; \
         ls -l /dev/ptmx | cut -c1; \
         head -c 5 /dev/zero | wc -c; echo hi > /dev/null && echo null-ok"),
    );
    let out = c.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    let want = [
        "/dev/null character special file 1:3 666",
        "/dev/zero character special file 1:5 666",
        "/dev/full character special file 1:7 666",
        "/dev/random character special file 1:8 666",
        "/dev/urandom character special file 1:9 666",
        "/dev/tty character special file 5:0 666",
        "/proc/self/fd",
        "/proc/self/fd/0",
        "/proc/self/fd/1",
        "/proc/self/fd/2",
    ];
    assert!(lines.len() >= want.len() + 3, "{out}");
    assert_eq!(&lines[..want.len()], want, "{out}");
    // ptmx: a symlink to pts/ptmx or a char device.
    assert!(["l", "c"].contains(&lines[want.len()]), "{out}");
    assert_eq!(lines[want.len() + 1].trim(), "5", "{out}");
    assert_eq!(lines[want.len() + 2], "null-ok", "{out}");
    c.assert_clean();
}

#[test]
fn linux_devices_entry_creates_node() {
    let b = Bundle::new()
        .with(|c| {
            c["linux"]["devices"] = json!([{
                "path": "/dev/rrun-null", "type": "c", "major": 1, "minor": 3,
                "fileMode": 0o646, "uid": 1000, "gid": 2000
            }]);
            // allow it in the device cgroup too
            c["linux"]["resources"]["devices"]
                .as_array_mut()
                .unwrap()
                .push(
                    json!({ "allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm" }),
                );
        })
        .sh("stat -c '%F %t:%T %a %u:%g' /dev/rrun-null; echo x > /dev/rrun-null && echo ok");
    let c = Container::new(b);
    let out = c.run_ok();
    assert_eq!(out, "character special file 1:3 646 1000:2000\nok\n");
    c.assert_clean();
}

#[test]
fn device_cgroup_denies_unlisted_device() {
    // 1:7 is /dev/full, allowed by default; 7:0 (loop0) is not.
    let b = Bundle::new()
        .with(|c| {
            c["linux"]["devices"] = json!([{
                "path": "/dev/rrun-loop", "type": "b", "major": 7, "minor": 0,
                "fileMode": 0o600, "uid": 0, "gid": 0
            }]);
        })
        .sh("head -c1 /dev/rrun-loop 2>&1 >/dev/null; true");
    let c = Container::new(b);
    let out = c.run_ok();
    assert!(
        out.contains("not permitted"),
        "device access not denied: {out}"
    );
    c.assert_clean();
}

#[test]
fn dev_pts_shm_mqueue_present() {
    let c = Container::new(Bundle::new().sh("cat /proc/self/mountinfo"));
    let out = c.run_ok();
    assert_eq!(mount_fstype(&out, "/dev"), "tmpfs");
    assert_eq!(mount_fstype(&out, "/dev/pts"), "devpts");
    assert_eq!(mount_fstype(&out, "/dev/shm"), "tmpfs");
    assert_eq!(mount_fstype(&out, "/dev/mqueue"), "mqueue");
    assert_eq!(mount_fstype(&out, "/proc"), "proc");
    assert_eq!(mount_fstype(&out, "/sys"), "sysfs");
    assert!(mount_opts(&out, "/sys").iter().any(|o| o == "ro"));
    let pts = super_opts(&out, "/dev/pts");
    assert!(pts.contains("ptmxmode=666"), "{pts}");
    assert!(pts.contains("mode=620"), "{pts}");
    c.assert_clean();
}

#[test]
fn no_host_mounts_visible() {
    let c = Container::new(Bundle::new().sh("cut -d' ' -f5 /proc/self/mountinfo"));
    let out = c.run_ok();
    let host_only = ["/run", "/boot", "/home"];
    for mp in out.lines() {
        assert!(
            !mp.starts_with("/sys/fs/cgroup/") && !host_only.contains(&mp),
            "unexpected mount {mp} in:\n{out}"
        );
    }
    assert!(!out.contains(&*target_dir().to_string_lossy()), "{out}");
}

fn root_optional_fields(propagation: &str) -> String {
    let c = Container::new(
        Bundle::new()
            .with(|c| c["linux"]["rootfsPropagation"] = json!(propagation))
            .sh("cat /proc/self/mountinfo"),
    );
    let out = c.run_ok();
    c.assert_clean();
    let f = mountinfo_line(&out, "/");
    let sep = f.iter().position(|x| *x == "-").unwrap();
    f[6..sep].join(" ")
}

#[test]
fn rootfs_propagation_private() {
    let opt = root_optional_fields("private");
    assert!(!opt.contains("shared:"), "private root is shared: {opt:?}");
}

#[test]
fn rootfs_propagation_shared() {
    // runc 1.1 makes the rootfs' parent mount private before binding the
    // rootfs, so "/" ends up private whatever rootfsPropagation says.
    require!(
        !is_runc(),
        "runc 1.1 leaves the container root private with rootfsPropagation=shared"
    );
    let opt = root_optional_fields("shared");
    assert!(
        opt.contains("shared:"),
        "shared root lacks a peer group: {opt:?}"
    );
}

/// Every value the spec lists for rootfsPropagation, on a rootfs that is a
/// plain directory and on one that is itself a mount point; the container's
/// "/" shows the mode asked for.
#[test]
fn rootfs_propagation_every_value_on_a_dir_and_a_mount_point() {
    require!(is_root(), "needs root");
    require!(
        !is_runc(),
        "runc 1.1 fails (un)bindable with EINVAL binding the rootfs out of an unbindable /"
    );
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    for mount_point in [false, true] {
        for p in [
            "shared",
            "rshared",
            "slave",
            "rslave",
            "private",
            "rprivate",
            "unbindable",
            "runbindable",
        ] {
            let b = Bundle::new()
                .private_rootfs()
                .with(|c| c["linux"]["rootfsPropagation"] = json!(p))
                .sh("cat /proc/self/mountinfo");
            let _guard = mount_point.then(|| {
                let r = b.rootfs.clone();
                let st = Command::new("mount").arg("--bind").arg(&r).arg(&r).status();
                assert!(st.is_ok_and(|s| s.success()), "bind {}", r.display());
                Unmount(r)
            });
            let c = Container::new(b);
            let out = c.run_ok();
            let f = mountinfo_line(&out, "/");
            let sep = f.iter().position(|x| *x == "-").unwrap();
            let opt = f[6..sep].join(" ");
            let what =
                format!("rootfsPropagation {p} (rootfs a mount point: {mount_point}): {opt:?}");
            match p.trim_start_matches('r') {
                "shared" => assert!(opt.contains("shared:"), "{what}"),
                "unbindable" => assert!(opt.contains("unbindable"), "{what}"),
                "private" => assert!(
                    !opt.contains("shared:") && !opt.contains("master:"),
                    "{what}"
                ),
                _ => assert!(
                    !opt.contains("shared:") && !opt.contains("unbindable"),
                    "{what}"
                ),
            }
            drop(c);
        }
    }
}

#[test]
fn no_pivot_still_runs() {
    let c = Container::new(Bundle::new().sh("echo no-pivot ok; cat /etc/hostname; ls /"));
    let out = c.run_with(&["--no-pivot"]);
    out.ok();
    assert!(out.stdout.starts_with("no-pivot ok\nrrun\n"), "{out}");
    assert!(out.stdout.lines().any(|l| l == "bin"), "{out}");
    c.assert_clean();
}

/// --no-pivot leaves the old root in the container's mount namespace. The
/// host's /proc there would let an unprivileged process in the container
/// make a user namespace and mount a fresh procfs without the masked paths
/// (the kernel allows it when an unmasked procfs is fully visible in the
/// mount namespace): rrun detaches every proc and sysfs outside the rootfs
/// first (checked from inside: the mount is refused), and refuses
/// --no-pivot where they are locked (a new user namespace).
#[test]
fn no_pivot_leaves_no_host_procfs_to_reveal() {
    require!(is_root(), "needs root");
    let b = Bundle::new()
        .user(1000, 1000, &[])
        .with(|c| {
            c["linux"]
                .as_object_mut()
                .unwrap()
                .remove("seccomp");
        })
        .sh("unshare -Urmpf sh -c 'mount -t proc proc /tmp && echo MOUNTED || echo REFUSED' 2>&1; sleep 30");
    let c = Container::new(b);
    c.create_with(&["--no-pivot"]).ok();
    c.start().ok();
    let out = poll(std::time::Duration::from_secs(10), || {
        let (o, e) = c.output();
        let s = o + &e;
        (s.contains("MOUNTED") || s.contains("REFUSED")).then_some(s)
    })
    .expect("the probe printed nothing");
    assert!(
        out.contains("REFUSED") && !out.contains("MOUNTED"),
        "a fresh procfs could be mounted from inside a --no-pivot container:\n{out}"
    );
    // From outside, the old root cannot be listed: a process joining the
    // mount namespace gets the rootfs stacked over it as its root, and
    // mountinfo only shows what is reachable from a reader's root. The
    // refused mount above is the observable effect. The same config in a
    // new user namespace (locked mounts, nothing can be detached) is refused.
    let u = Container::new(Bundle::new().in_userns().args(&["true"]));
    if !is_runc() {
        u.run_with(&["--no-pivot"])
            .failed()
            .stderr_mentions(&["--no-pivot", "/proc"]);
        u.assert_clean();
    }
    c.delete_force().ok();
    c.assert_clean();
}

/// The runtime's /proc bound at /proc is allowed where the container
/// shares the runtime's pid namespace (type bind, or none with rbind); not
/// with a pid namespace of its own, and only from the root of a procfs.
#[test]
fn host_proc_bind_only_with_the_host_pid_namespace() {
    require!(is_root(), "needs root");
    let proc_bind = |typ: &str, src: &str| json!({"destination": "/proc", "type": typ, "source": src, "options": ["rbind", "nosuid", "noexec", "nodev"]});
    let with_proc = |b: Bundle, m: Value| {
        b.with(move |c| {
            let mounts = c["mounts"].as_array_mut().unwrap();
            mounts.retain(|x| x["destination"] != "/proc");
            mounts.insert(0, m);
        })
    };
    for typ in ["bind", "none"] {
        let b = with_proc(
            Bundle::new().without_namespace("pid"),
            proc_bind(typ, "/proc"),
        );
        let c = Container::new(
            b.sh("readlink /proc/1/exe >/dev/null; echo pid1=$(cut -d' ' -f2 /proc/1/stat)"),
        );
        let out = c.run_ok();
        // The host's pid 1 (not the container's init) is visible.
        let host_comm = fs::read_to_string("/proc/1/stat").unwrap();
        let host_comm = host_comm.split(' ').nth(1).unwrap();
        assert_eq!(out.trim(), format!("pid1={host_comm}"), "type {typ}");
        c.assert_clean();
    }
    if is_runc() {
        return;
    }
    // A pid namespace of its own: the host's pids would show; refused.
    let c = Container::new(with_proc(Bundle::new(), proc_bind("bind", "/proc")).args(&["true"]));
    c.run()
        .failed()
        .stderr_mentions(&["/proc", "pid namespace"]);
    c.assert_clean();
    // Not the root of a procfs.
    for src in ["/proc/sys", "/tmp"] {
        let b = with_proc(
            Bundle::new().without_namespace("pid"),
            proc_bind("bind", src),
        );
        let c = Container::new(b.args(&["true"]));
        c.run().failed().stderr_mentions(&["/proc", src]);
        c.assert_clean();
    }
}

/// No mount namespace in linux.namespaces: the container inherits rrun's
/// (the spec's rule for an unlisted namespace) and is only chrooted into
/// root.path; nothing is mounted on the host, and what would need its own
/// mounts is refused by name. Joining another container's mount namespace
/// by path shares that container's mounts (its /dev/shm here).
#[test]
fn no_or_joined_mount_namespace() {
    require!(is_root(), "needs root");
    require!(
        !is_runc(),
        "runc 1.1 needs /proc/self/fd in the root, and mounts the config's mounts into the host's namespace"
    );
    let shared = |b: Bundle| {
        b.with(|c| {
            c["mounts"] = json!([]);
            c["linux"]["maskedPaths"] = json!([]);
            c["linux"]["readonlyPaths"] = json!([]);
            c["root"]["readonly"] = json!(false);
        })
    };
    let host_mounts = || {
        fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .count()
    };
    let before = host_mounts();
    let c = Container::new(
        shared(Bundle::new().without_namespace("mount"))
            .sh("test -e /linuxrc && echo in-rootfs; readlink /proc/self/ns/mnt || echo no-proc"),
    );
    let o = c.run();
    o.ok();
    assert!(o.stdout.starts_with("in-rootfs\nno-proc"), "{o}");
    assert!(o.stderr.contains("mount namespace"), "no warning:\n{o}");
    assert_eq!(
        host_mounts(),
        before,
        "mounts were made in the host's namespace"
    );
    c.assert_clean();
    // exec into it lands in its root too (setns gives no root here), from
    // inside and from outside.
    let c = Container::new(shared(Bundle::new().without_namespace("mount")).args(&["sleep", "30"]));
    c.create().ok();
    c.start().ok();
    let o = c.rrun(&[
        "exec",
        &c.id,
        "sh",
        "-c",
        "test -e /linuxrc && echo in-rootfs",
    ]);
    o.ok();
    assert_eq!(
        o.stdout, "in-rootfs\n",
        "exec ran outside the container's root:\n{o}"
    );
    let pid = c.exec_detached(&["sleep", "30"]);
    let root = fs::read_link(format!("/proc/{pid}/root")).unwrap();
    assert_eq!(
        root,
        fs::canonicalize(&c.bundle.rootfs).unwrap(),
        "exec'd process root"
    );
    c.delete_force().ok();
    c.assert_clean();
    // What needs mounts of its own is refused, naming the field.
    let c = Container::new(Bundle::new().without_namespace("mount").args(&["true"]));
    c.run().failed().stderr_mentions(&["mount namespace"]);
    c.assert_clean();
    // Joined: a second container sees the first one's /dev/shm.
    let a = Container::new(Bundle::new().sh("echo from-a > /dev/shm/marker; exec sleep 30"));
    a.create().ok();
    a.start().ok();
    poll(std::time::Duration::from_secs(5), || {
        fs::read_to_string(format!("/proc/{}/root/dev/shm/marker", a.pid()))
            .ok()
            .filter(|s| s.contains("from-a"))
    })
    .expect("container a wrote its marker");
    let path = format!("/proc/{}/ns/mnt", a.pid());
    let b = shared(Bundle::new().namespace("mount", Some(&path)))
        .with(|c| c["root"]["path"] = json!("/"));
    let bc = Container::new(b.sh("cat /dev/shm/marker"));
    let o = bc.run();
    o.ok();
    assert_eq!(o.stdout, "from-a\n", "{o}");
    bc.assert_clean();
    a.delete_force().ok();
    a.assert_clean();
}

/// Id-mapped binds (runtime-spec 1.2): with the mount's own mappings, and
/// with `idmap` alone in a container with a user namespace (its mapping:
/// files of uid 0 on disk are the container's root, and what the container
/// root creates is uid 0 on disk). Checked from inside (stat) and outside
/// (the file's owner on the host). Mount points that exist in the shared
/// rootfs (/mnt, /home): a user namespace's root may not create them.
#[test]
fn idmapped_bind_mounts() {
    require!(is_root(), "needs root");
    require!(!is_runc(), "runc 1.1 has no id-mapped mounts");
    let src = tempfile::Builder::new()
        .prefix("rrun-test-idmap-")
        .tempdir_in("/var/tmp")
        .unwrap();
    set_mode(src.path(), 0o777);
    fs::write(src.path().join("f0"), "x").unwrap();
    fs::write(src.path().join("f1234"), "x").unwrap();
    std::os::unix::fs::chown(src.path().join("f1234"), Some(1234), Some(1234)).unwrap();
    let s = src.path().to_string_lossy().into_owned();
    let map = |c: u32, h: u32, n: u32| json!([{"containerID": c, "hostID": h, "size": n}]);

    // The mount's own mapping, no user namespace: on-disk 0 reads as 5000.
    let c = Container::new(
        Bundle::new()
            .mount(json!({"destination": "/mnt", "type": "bind", "source": s,
                "options": ["bind", "idmap"], "uidMappings": map(0, 5000, 2000), "gidMappings": map(0, 5000, 2000)}))
            .sh("stat -c '%u:%g' /mnt/f0 /mnt/f1234"),
    );
    assert_eq!(c.run_ok(), "5000:5000\n6234:6234\n");
    c.assert_clean();

    // idmap alone in a user namespace: the container's mapping.
    let c = Container::new(
        Bundle::new().in_userns()
            .mount(json!({"destination": "/mnt", "type": "bind", "source": s, "options": ["rbind", "idmap"]}))
            .mount(json!({"destination": "/home", "type": "bind", "source": s, "options": ["rbind"]}))
            .sh("stat -c '%u' /mnt/f0 /mnt/f1234 /home/f0; echo made > /mnt/new"),
    );
    assert_eq!(c.run_ok(), "0\n1234\n65534\n");
    c.assert_clean();
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(src.path().join("new")).unwrap();
    assert_eq!(
        (m.uid(), m.gid()),
        (0, 0),
        "the container's root wrote as uid 0 on disk"
    );

    // No mapping to use: refused before anything is made.
    let c = Container::new(
        Bundle::new()
            .mount(json!({"destination": "/mnt", "type": "bind", "source": s, "options": ["bind", "idmap"]}))
            .args(&["true"]),
    );
    c.run()
        .failed()
        .stderr_mentions(&["/mnt", "user namespace"]);
    c.assert_clean();
}

/// A bind whose source only the host's root may reach (below a 0700
/// directory), in a container with a user namespace: the namespace's root
/// cannot open it, so rrun clones it on the host side; it is there, with
/// its options (a reachable source is still bound by the init: see
/// rootfs::host_mounts for why).
#[test]
fn userns_bind_of_a_source_only_host_root_reaches() {
    require!(is_root(), "needs root");
    require!(
        !is_runc(),
        "runc 1.1 binds from inside the user namespace (EACCES)"
    );
    let closed = tempfile::Builder::new()
        .prefix("rrun-test-closed-")
        .tempdir()
        .unwrap();
    set_mode(closed.path(), 0o700);
    let vol = closed.path().join("vol");
    fs::create_dir(&vol).unwrap();
    set_mode(&vol, 0o755);
    fs::write(vol.join("data"), "behind-0700\n").unwrap();
    set_mode(&vol.join("data"), 0o644);
    let b = Bundle::new()
        .in_userns()
        .mount(json!({"destination": "/mnt", "type": "bind",
            "source": vol.to_string_lossy(), "options": ["rbind", "ro"]}))
        .sh("cat /mnt/data; touch /mnt/x 2>/dev/null && echo WRITABLE || echo read-only");
    let c = Container::new(b);
    assert_eq!(c.run_ok(), "behind-0700\nread-only\n");
    c.assert_clean();
}

#[test]
fn relative_root_path() {
    // root.path relative to the bundle directory.
    let b = Bundle::new()
        .private_rootfs()
        .with(|c| c["root"] = json!({ "path": "rootfs", "readonly": true }));
    let c = Container::new(b.sh("cat /etc/hostname"));
    assert_eq!(c.run_ok(), "rrun\n");
    c.assert_clean();
}
