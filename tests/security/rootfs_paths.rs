//! Paths inside the rootfs: device nodes made while another container
//! swaps symlinks in (CVE-2024-45310 class), mount options that must not be
//! dropped (rro and the other recursive attributes, `ro` on an rbind), the
//! host's cgroups under a bound /sys (CVE-2023-25809 class), mount
//! destinations that a symlink leads into procfs, and hostile rootfs
//! entries (dangling links, `/proc -> /`, a FIFO as /etc/passwd).

use super::{CorePatternGuard, host_dir};
use crate::common::*;
use serde_json::{Value, json};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The config's mounts without the ones under /dev: the devices are then
/// made in the rootfs's own /dev.
fn without_dev_mounts(c: &mut Value) {
    c["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| !m["destination"].as_str().unwrap_or("").starts_with("/dev"));
}

/// stderr names every one of `words`.
#[track_caller]
fn mentions_all(o: &Output, words: &[&str]) {
    for w in words {
        o.stderr_mentions(&[w]);
    }
}

/// Stops and joins a background thread on drop, also when a test fails.
struct Stopper(Arc<AtomicBool>, Option<std::thread::JoinHandle<()>>);

impl Drop for Stopper {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
        if let Some(h) = self.1.take() {
            let _ = h.join();
        }
    }
}

/// Swaps every name in `dir` for a symlink to `victim`, in a loop, as a
/// second container sharing this /dev would.
fn swap_names_for_symlinks(dir: PathBuf, names: Vec<String>, victim: PathBuf) -> Stopper {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let h = std::thread::spawn(move || {
        let tmp = dir.join(".swp");
        while !s.load(Ordering::SeqCst) {
            for n in &names {
                let _ = fs::remove_file(&tmp);
                if symlink(&victim, &tmp).is_ok() {
                    let _ = fs::rename(&tmp, dir.join(n));
                }
            }
        }
    });
    Stopper(stop, Some(h))
}

/// Finding 7: device setup before pivot_root must never chmod or chown
/// through a name: a symlink swapped in for the new node leads to the host.
/// The script uses a second container on the default nodes; here a host
/// thread races, on the default nodes and on a `linux.devices` entry with
/// its own owner and a set-gid mode (the variant: chown and chmod both).
#[test]
fn device_nodes_never_follow_a_swapped_symlink() {
    require!(
        !is_runc(),
        "runc 1.1.5 chmods device nodes by name (CVE-2024-45310 class); this test would change \
         a host file's mode"
    );
    let host = host_dir("devrace");
    let victim = host.path().join("victim");
    fs::write(&victim, "secret").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&victim, Some(1000), Some(1000)).unwrap();
    let b = Bundle::new().private_rootfs().with(|c| {
        without_dev_mounts(c);
        c["root"]["readonly"] = json!(false);
        c["linux"]["devices"] = json!([{ "path": "/dev/rrun-test-dev", "type": "c",
            "major": 1, "minor": 3, "fileMode": 0o2666, "uid": 0, "gid": 0 }]);
    });
    let dev = b.rootfs.join("dev");
    fs::create_dir_all(&dev).unwrap();
    let names: Vec<String> = ["null", "zero", "full", "random", "urandom", "tty"]
        .iter()
        .map(|s| s.to_string())
        .chain(["rrun-test-dev".to_string()])
        .collect();
    let c = Container::new(b.args(&["true"]));
    let swapper = swap_names_for_symlinks(dev.clone(), names, victim.clone());
    let deadline = Instant::now() + Duration::from_secs(25);
    let (mut runs, mut ok) = (0, 0);
    while Instant::now() < deadline && runs < 150 {
        let o = c.run();
        runs += 1;
        if o.success() {
            ok += 1;
        }
        c.delete_force();
        let m = fs::metadata(&victim).unwrap();
        assert_eq!(
            (m.mode() & 0o7777, m.uid(), m.gid()),
            (0o600, 1000, 1000),
            "run {runs}: the host file's mode or owner changed through a /dev symlink:\n{o}"
        );
    }
    drop(swapper);
    eprintln!("{runs} runs, {ok} succeeded while /dev was being swapped");

    // Without the race, the node is made with the config's mode and owner.
    let b = Bundle::new().private_rootfs().with(|c| {
        without_dev_mounts(c);
        c["root"]["readonly"] = json!(false);
        c["linux"]["devices"] = json!([{ "path": "/dev/rrun-test-dev", "type": "c",
            "major": 1, "minor": 3, "fileMode": 0o640, "uid": 1000, "gid": 1001 }]);
    });
    let c = Container::new(b.sh("stat -c '%a %u %g %t %T' /dev/rrun-test-dev"));
    let out = c.run_ok();
    assert_eq!(out.trim(), "640 1000 1001 1 3", "{out}");
}

/// A host directory with a tmpfs mounted on `sub`, unmounted on drop.
struct HostVolume {
    dir: tempfile::TempDir,
}

impl HostVolume {
    fn new() -> HostVolume {
        let dir = host_dir("vol");
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        sh(&format!(
            "mount -t tmpfs -o size=1m rrun-test-vol {}",
            sub.display()
        ))
        .ok();
        fs::write(sub.join("x.sh"), "#!/bin/sh\necho EXEC-OK\n").unwrap();
        fs::set_permissions(sub.join("x.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        HostVolume { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for HostVolume {
    fn drop(&mut self) {
        let _ = sh(&format!(
            "umount -l {}",
            self.dir.path().join("sub").display()
        ));
    }
}

/// The mount options of `point` in a mountinfo text.
fn mount_opts<'a>(mountinfo: &'a str, point: &str) -> Option<&'a str> {
    mountinfo
        .lines()
        .rev()
        .find(|l| l.split_whitespace().nth(4) == Some(point))
        .and_then(|l| l.split_whitespace().nth(5))
}

/// Finding 8: `rro` (and every recursive attribute) reaches the submounts
/// of a bind; a plain `ro` on an rbind stays on its top, as with runc
/// (Kubernetes sends `ro` for a read-only volume whose submounts stay
/// writable, `rro` for a recursive one). The script tries `rro` with
/// touch; here every attribute is read back from mountinfo and noexec is
/// tried.
#[test]
fn recursive_mount_options_reach_submounts() {
    let vol = HostVolume::new();
    let b = Bundle::new()
        .private_rootfs()
        .bind_mount(
            vol.path(),
            "/data",
            &["rbind", "rro", "rnosuid", "rnodev", "rnoexec", "rnoatime"],
        )
        .bind_mount(vol.path(), "/plain", &["rbind", "ro"])
        .bind_mount(vol.path(), "/back", &["rbind", "ro", "rrw"])
        .bind_mount(&vol.path().join("sub/x.sh"), "/file", &["bind", "rro"])
        .sh(
            "cat /proc/self/mountinfo; echo >> /file && echo WROTE-file; \
             touch /data/sub/w-rro && echo WROTE-rro; touch /plain/w-top 2>/dev/null && echo WROTE-top; \
             touch /plain/sub/w-ro && echo WROTE-ro; \
             /data/sub/x.sh; /plain/sub/x.sh; echo done",
        );
    let c = Container::new(b);
    let out = c.run_ok();
    assert!(out.contains("done"), "{out}");
    assert!(
        !out.contains("WROTE-rro"),
        "rro left a submount writable:\n{out}"
    );
    assert!(
        !out.contains("WROTE-file"),
        "rro on a file bind left it writable:\n{out}"
    );
    // A plain `ro` stays on the top mount, as with runc: Kubernetes sends
    // it for a read-only volume whose submounts stay writable (rro is the
    // recursive one; critest checks both).
    assert!(
        out.contains("WROTE-ro"),
        "ro on an rbind made a submount read-only (only rro may):\n{out}"
    );
    assert!(
        !out.contains("WROTE-top"),
        "ro on an rbind left its top writable:\n{out}"
    );
    assert_eq!(
        out.matches("EXEC-OK").count(),
        1,
        "rnoexec did not reach the submount (or ro made /plain noexec):\n{out}"
    );
    for point in ["/data", "/data/sub"] {
        let opts = mount_opts(&out, point).unwrap_or_else(|| panic!("{point} not mounted:\n{out}"));
        for want in ["ro", "nosuid", "nodev", "noexec", "noatime"] {
            assert!(
                opts.split(',').any(|o| o == want),
                "{point} lacks {want} ({opts}):\n{out}"
            );
        }
    }
    let plain = mount_opts(&out, "/plain/sub").expect("/plain/sub mounted");
    assert!(plain.split(',').any(|o| o == "rw"), "{plain}");
    let top = mount_opts(&out, "/plain").expect("/plain mounted");
    assert!(top.split(',').any(|o| o == "ro"), "{top}");
    if is_runc() {
        return;
    }
    let back = mount_opts(&out, "/back/sub").expect("/back/sub mounted");
    assert!(
        back.split(',').any(|o| o == "rw"),
        "rrw did not win: {back}"
    );
    assert!(!vol.path().join("sub/w-rro").exists());
    assert!(!vol.path().join("w-top").exists());
}

/// Finding 8, second half: an option rrun cannot apply to a bind is an
/// error naming it, before anything is made; filesystem options of other
/// mounts still pass as data. (runc ignores unknown bind options.)
#[test]
fn unknown_bind_options_are_refused_by_name() {
    require!(
        !is_runc(),
        "runc silently ignores unknown options of a bind mount"
    );
    let vol = host_dir("unknown");
    for bad in ["rreadonly", "size=1m", "ridmap"] {
        let b = Bundle::new().bind_mount(vol.path(), "/data", &["rbind", bad]);
        let c = Container::new(b);
        let o = c.create();
        o.failed()
            .stderr_is_short_error()
            .stderr_mentions(&[bad, "/data"]);
        c.assert_clean();
    }
    let b = Bundle::new()
        .private_rootfs()
        .mount(
            json!({ "destination": "/t", "type": "tmpfs", "source": "tmpfs",
                       "options": ["size=1m", "mode=700", "rnosuid"] }),
        )
        .sh("grep ' /t ' /proc/self/mountinfo");
    let out = Container::new(b).run_ok();
    assert!(
        out.contains("nosuid") && out.contains("size=1024k"),
        "{out}"
    );
}

#[test]
fn features_lists_the_recursive_mount_options() {
    let o = run_timeout(
        {
            let mut c = std::process::Command::new(rrun_bin());
            c.arg("features");
            c
        },
        TIMEOUT,
    );
    o.ok();
    let v: Value = serde_json::from_str(&o.stdout).expect("features is JSON");
    let opts: Vec<&str> = v["mountOptions"]
        .as_array()
        .expect("mountOptions")
        .iter()
        .filter_map(|x| x.as_str())
        .collect();
    for want in [
        "rro",
        "rrw",
        "rnosuid",
        "rsuid",
        "rnodev",
        "rdev",
        "rnoexec",
        "rexec",
        "rnodiratime",
        "rdiratime",
        "rrelatime",
        "rnorelatime",
        "rnoatime",
        "ratime",
        "rstrictatime",
        "rnostrictatime",
        "rnosymfollow",
        "rsymfollow",
    ] {
        assert!(opts.contains(&want), "features lacks {want}: {opts:?}");
    }
}

/// A cgroup directory in each mounted hierarchy, removed on drop.
struct DelegatedCgroups(Vec<PathBuf>);

impl DelegatedCgroups {
    fn new(name: &str, owner: Option<&User>) -> DelegatedCgroups {
        let mut v = Vec::new();
        for h in cgroup_hierarchies() {
            let leaf = h.mountpoint.file_name().unwrap().to_string_lossy();
            if leaf != "pids" && leaf != "unified" && leaf != "cgroup" {
                continue;
            }
            let d = h.mountpoint.join(name);
            if fs::create_dir(&d).is_ok() {
                if let Some(u) = owner {
                    let _ = sh(&format!("chown -R {}:{} {}", u.uid, u.gid, d.display()));
                }
                v.push(d);
            }
        }
        DelegatedCgroups(v)
    }

    /// The paths the container would see under /sys/fs/cgroup.
    fn in_container(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|d| {
                let mut it = d.iter().rev();
                let name = it.next().unwrap().to_string_lossy().into_owned();
                let h = it.next().unwrap().to_string_lossy().into_owned();
                if h == "cgroup" {
                    format!("/sys/fs/cgroup/{name}")
                } else {
                    format!("/sys/fs/cgroup/{h}/{name}")
                }
            })
            .collect()
    }

    #[track_caller]
    fn assert_untouched(&self, out: &str) {
        for d in &self.0 {
            assert!(
                !d.join("from-container").exists(),
                "the container made a host cgroup in {}:\n{out}",
                d.display()
            );
            if let Ok(v) = fs::read_to_string(d.join("pids.max")) {
                assert_eq!(
                    v.trim(),
                    "max",
                    "host {}/pids.max changed:\n{out}",
                    d.display()
                );
            }
        }
    }
}

impl Drop for DelegatedCgroups {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = fs::remove_dir(d.join("from-container"));
            let _ = fs::remove_dir(d);
        }
    }
}

fn cgroup_probe(dirs: &[String]) -> String {
    let mut s = String::new();
    for d in dirs {
        s.push_str(&format!(
            "mkdir {d}/from-container && echo MADE {d}; echo 7 > {d}/pids.max && echo WROTE {d}; "
        ));
    }
    s.push_str("grep ' /sys' /proc/self/mountinfo; echo probed");
    s
}

/// Finding 9: a /sys bound from the host (what `spec --rootless` asks, and
/// what rrun falls back to when sysfs cannot be mounted) is read-only all
/// the way down and hides the host's cgroup hierarchies. The script runs
/// `spec --rootless` as an unprivileged user against v1 pids; here the
/// cgroup2 hierarchy too, and a root container with the same /sys bind
/// (uid 0 in the container would otherwise write the host's cgroups).
#[test]
fn bound_sys_leaves_host_cgroups_alone() {
    require!(
        !is_runc(),
        "runc 1.1.5 shows the host's cgroups under a bound /sys (read-only); rrun hides them"
    );
    // Root, no user namespace, /sys as an rbind with ro.
    let cg = DelegatedCgroups::new(&unique_name(), None);
    require!(!cg.0.is_empty(), "no pids or cgroup2 hierarchy to delegate");
    let b = Bundle::new()
        .with(|c| {
            for m in c["mounts"].as_array_mut().unwrap() {
                if m["destination"] == "/sys" {
                    *m = json!({ "destination": "/sys", "type": "none", "source": "/sys",
                                 "options": ["rbind", "nosuid", "noexec", "nodev", "ro"] });
                }
            }
        })
        .sh(&cgroup_probe(&cg.in_container()));
    let out = Container::new(b).run_ok();
    cg.assert_untouched(&out);
    assert!(out.contains("probed"), "{out}");
    assert!(!out.contains("MADE") && !out.contains("WROTE"), "{out}");
    let opts = mount_opts(&out, "/sys/fs/cgroup").expect("/sys/fs/cgroup masked");
    assert!(opts.split(',').any(|o| o == "ro"), "{out}");

    // Rootless, from the runtime's own `spec --rootless`.
    let user = match rootless_user() {
        Ok(u) => u,
        Err(e) => {
            skip(&format!("no rootless user: {e}"));
            return;
        }
    };
    let cg = DelegatedCgroups::new(&unique_name(), Some(&user));
    let b = Bundle::new();
    user.chown(b.path());
    let mut spec = user.command(&rrun_bin(), b.path());
    spec.arg("spec")
        .arg("--rootless")
        .arg("--bundle")
        .arg(b.path());
    run_timeout(spec, TIMEOUT).ok();
    let text = fs::read_to_string(b.file("config.json")).expect("spec --rootless wrote config");
    let mut config: Value = serde_json::from_str(&text).unwrap();
    config["process"]["terminal"] = json!(false);
    config["process"]["args"] = json!(["sh", "-c", cgroup_probe(&cg.in_container())]);
    // Variant: /sys asked as sysfs, which a user namespace without its own
    // network namespace cannot mount: rrun binds the host's instead.
    let mut as_sysfs = config.clone();
    for m in as_sysfs["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/sys" {
            *m = json!({ "destination": "/sys", "type": "sysfs", "source": "sysfs",
                         "options": ["nosuid", "noexec", "nodev", "ro"] });
        }
    }
    for config in [config, as_sysfs] {
        let mut b = Bundle::new();
        user.chown(b.path());
        b = b.private_rootfs();
        user.chown_tree(&b.rootfs);
        let mut config = config;
        config["root"] = json!({ "path": b.rootfs.to_string_lossy(), "readonly": true });
        b.config = config;
        let c = Container::rootless(b, &user, false);
        let o = c.run();
        cg.assert_untouched(&o.to_string());
        o.ok();
        assert!(
            !o.stdout.contains("MADE") && !o.stdout.contains("WROTE"),
            "{o}"
        );
        let opts = mount_opts(&o.stdout, "/sys/fs/cgroup").expect("/sys/fs/cgroup masked");
        assert!(opts.split(',').any(|o| o == "ro"), "{o}");
    }
}

/// Finding 10: a mount destination is a path in the rootfs; a symlink there
/// into /proc must not put the mount on procfs. The script's case is
/// core_pattern; here also /proc/self/attr through a relative link, and a
/// tmpfs (not a bind) through a directory link.
#[test]
fn mount_destination_symlinked_into_proc_is_refused() {
    let guard = CorePatternGuard::new();
    let host = host_dir("procdest");
    let f = host.path().join("file");
    fs::write(&f, "rrun-test |/bin/false\n").unwrap();
    let cases: [(&str, &str, Value); 3] = [
        (
            "core",
            "/proc/sys/kernel/core_pattern",
            json!({ "type": "bind", "source": f.to_string_lossy(), "options": ["bind", "rw"] }),
        ),
        (
            "attr",
            "../proc/self/attr",
            json!({ "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"] }),
        ),
        (
            "kernel",
            "/proc/sys/kernel",
            json!({ "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"] }),
        ),
    ];
    for (name, target, mut m) in cases {
        if is_runc() && name != "core" {
            // runc 1.1.5 mounts there (a tmpfs over procfs in the
            // container): the CVE-2025-52881 class, fixed in runc 1.2.8.
            eprintln!("{name}: skipped under runc 1.1.5, which mounts over procfs here");
            continue;
        }
        let b = Bundle::new().private_rootfs();
        let link = b.rootfs.join(format!("rrun-{name}"));
        symlink(target, &link).unwrap();
        m["destination"] = json!(format!("/rrun-{name}"));
        let b = b
            .mount(m)
            .sh("grep -E 'core_pattern|attr|kernel' /proc/self/mountinfo; echo ran");
        let c = Container::new(b);
        let o = c.run();
        assert!(
            !guard.changed(),
            "{name}: the host's core_pattern changed:\n{o}"
        );
        assert!(
            !o.stdout.contains("/proc/"),
            "{name}: something was mounted on procfs:\n{o}"
        );
        o.failed();
        if !is_runc() {
            let dest = format!("/rrun-{name}");
            o.stderr_is_short_error();
            mentions_all(&o, &[dest.as_str(), "procfs"]);
        }
    }
}

/// Hostile rootfs entries: the error names the entry and what is wrong
/// with it, not an errno about a path from config.json.
#[test]
fn hostile_rootfs_links_are_named_in_errors() {
    require!(!is_runc(), "runc's messages for a broken rootfs differ");
    type Plant = fn(&Path);
    type Edit = fn(&mut Value);
    type Case<'a> = (&'a str, Plant, Edit, &'a [&'a str]);
    let cases: [Case; 4] = [
        (
            "proc to /",
            |r| {
                fs::remove_dir_all(r.join("proc")).unwrap();
                symlink("/", r.join("proc")).unwrap();
            },
            |_| {},
            &["/proc", "symlink", "\"/\""],
        ),
        (
            "dangling dev",
            |r| {
                fs::remove_dir_all(r.join("dev")).unwrap();
                symlink("/missing-dev", r.join("dev")).unwrap();
            },
            |_| {},
            &["/dev", "/missing-dev", "does not exist"],
        ),
        (
            "dangling dev, no dev mount",
            |r| {
                fs::remove_dir_all(r.join("dev")).unwrap();
                symlink("../missing-dev", r.join("dev")).unwrap();
            },
            without_dev_mounts,
            &["/dev", "missing-dev", "does not exist"],
        ),
        (
            "sys through a file",
            |r| {
                fs::remove_dir_all(r.join("sys")).unwrap();
                fs::write(r.join("sysfile"), "").unwrap();
                symlink("sysfile", r.join("sys")).unwrap();
            },
            |_| {},
            &["/sys", "sysfile"],
        ),
    ];
    for (name, plant, edit, words) in cases {
        let b = Bundle::new().private_rootfs().with(edit);
        plant(&b.rootfs);
        let c = Container::new(b);
        let o = c.create();
        eprintln!("{name}: {}", o.stderr.trim());
        o.failed().stderr_is_short_error();
        mentions_all(&o, words);
        assert!(!o.stderr.contains("ENOENT"), "{name}: {o}");
        c.assert_clean();
    }
}

/// /etc/passwd from the rootfs (read for HOME) never blocks or floods
/// create: a FIFO (the report's case, runc hangs) and a link to /dev/zero
/// (the variant: an endless read).
#[test]
fn etc_passwd_special_files_do_not_hang_create() {
    require!(!is_runc(), "runc 1.1.5 hangs on a FIFO as /etc/passwd");
    for kind in ["fifo", "zero"] {
        let b = Bundle::new().private_rootfs().sh("echo HOME=$HOME");
        let passwd = b.rootfs.join("etc/passwd");
        let _ = fs::remove_file(&passwd);
        fs::create_dir_all(passwd.parent().unwrap()).unwrap();
        match kind {
            "fifo" => nix::unistd::mkfifo(&passwd, nix::sys::stat::Mode::from_bits_truncate(0o644))
                .unwrap(),
            _ => symlink("/dev/zero", &passwd).unwrap(),
        }
        let c = Container::new(b);
        let t = Instant::now();
        let o = c.run();
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{kind}: took {:?}",
            t.elapsed()
        );
        o.ok();
        assert!(o.stdout.contains("HOME=/"), "{kind}: {o}");
    }
    // Without a proc mount, /proc is the rootfs's own directory: a FIFO
    // at /proc/self/setgroups (read to decide on setgroups) must not hang
    // create either.
    let b = Bundle::new()
        .private_rootfs()
        .with(|c| {
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .retain(|m| m["destination"] != "/proc");
            // Masking works through /proc/self/fd, which is not there.
            c["linux"]["maskedPaths"] = json!([]);
            c["linux"]["readonlyPaths"] = json!([]);
        })
        .sh("echo ran");
    let self_dir = b.rootfs.join("proc/self");
    fs::create_dir_all(&self_dir).unwrap();
    nix::unistd::mkfifo(
        &self_dir.join("setgroups"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let c = Container::new(b);
    let t = Instant::now();
    let o = c.run();
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "took {:?}",
        t.elapsed()
    );
    o.ok();
    assert!(o.stdout.contains("ran"), "{o}");
}

/// Issue 17: a read-only /dev (tmpfs with `ro`) gets its mount points,
/// nodes and links first, then turns read-only.
#[test]
fn read_only_dev_is_populated_first() {
    let b = Bundle::new()
        .with(|c| {
            for m in c["mounts"].as_array_mut().unwrap() {
                if m["destination"] == "/dev" {
                    m["options"].as_array_mut().unwrap().push(json!("ro"));
                }
            }
        })
        .sh(
            "ls /dev/null /dev/zero /dev/pts/ptmx /dev/shm /dev/fd >/dev/null && echo nodes; \
             echo x > /dev/null && echo null-ok; \
             touch /dev/new 2>/dev/null && echo WROTE; grep ' /dev ' /proc/self/mountinfo",
        );
    let out = Container::new(b).run_ok();
    assert!(out.contains("nodes") && out.contains("null-ok"), "{out}");
    assert!(!out.contains("WROTE"), "/dev is writable:\n{out}");
    let opts = mount_opts(&out, "/dev").expect("/dev mounted");
    assert!(opts.split(',').any(|o| o == "ro"), "{out}");
}

/// `tmpcopyup` (podman adds it to its tmpfs mounts): the tmpfs starts
/// with the covered directory's contents, owners and modes; symlinks are
/// copied as links (one to a host path stays a dangling link inside), and
/// a FIFO in the image does not block the copy.
#[test]
fn tmpcopyup_copies_the_covered_directory() {
    let b = Bundle::new().private_rootfs();
    let d = b.rootfs.join("data");
    fs::create_dir_all(d.join("sub")).unwrap();
    fs::write(d.join("sub/f"), "hello").unwrap();
    std::os::unix::fs::chown(d.join("sub/f"), Some(1000), Some(1001)).unwrap();
    fs::set_permissions(d.join("sub/f"), fs::Permissions::from_mode(0o4754)).unwrap();
    symlink("/etc/shadow", d.join("host-link")).unwrap();
    // runc 1.1.5 fails the copy on a FIFO (lchown of a node it did not
    // make): a runc bug, so the FIFO is left out under runc.
    if !is_runc() {
        nix::unistd::mkfifo(
            &d.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
    }
    let tmpfs = |dest: &str, extra: &[&str]| {
        let mut opts = vec!["nosuid", "nodev", "tmpcopyup"];
        opts.extend_from_slice(extra);
        json!({ "destination": dest, "type": "tmpfs", "source": "tmpfs", "options": opts })
    };
    let b = b.mount(tmpfs("/data", &[])).sh(
        "stat -c '%a %u %g' /data/sub/f; cat /data/sub/f; echo; readlink /data/host-link; \
             cat /data/host-link 2>/dev/null && echo FOLLOWED; \
             [ -p /data/fifo ] && echo fifo; touch /data/new && echo writable; \
             grep ' /data ' /proc/self/mountinfo",
    );
    let out = Container::new(b).run_ok();
    assert!(out.contains("4754 1000 1001"), "{out}");
    assert!(out.contains("hello"), "{out}");
    assert!(
        out.contains("/etc/shadow") && !out.contains("FOLLOWED"),
        "{out}"
    );
    assert!(out.contains("writable"), "{out}");
    assert!(is_runc() || out.contains("fifo"), "{out}");
    assert!(out.contains(" - tmpfs "), "{out}");
    assert!(
        !d.join("new").exists(),
        "the write went to the image, not the tmpfs"
    );
}
