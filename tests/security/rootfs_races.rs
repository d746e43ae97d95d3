//! Mount setup raced by a second container that shares a directory with
//! this one (simulated by a host thread): proc and sysfs only on a real
//! directory that still holds them when the masked and read-only paths go
//! on, binds that carry their flags before they are attached, masked paths
//! that lead out of /proc or /sys refused; rootfsPropagation on a shared
//! parent leaves nothing on the host; `remount` refused on a new mount;
//! `unpack` never opens a device of the image.

use super::{CorePatternGuard, host_dir};
use crate::common::*;
use serde_json::json;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Stops and joins a racer thread on drop, also when a test fails.
struct Racer(Arc<AtomicBool>, Option<std::thread::JoinHandle<()>>);

impl Racer {
    fn spawn(mut f: impl FnMut() + Send + 'static) -> Racer {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let h = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                f();
            }
        });
        Racer(stop, Some(h))
    }
}

impl Drop for Racer {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
        if let Some(h) = self.1.take() {
            let _ = h.join();
        }
    }
}

/// Detaches a mount the test made, also when it fails.
struct Umount(PathBuf);

impl Drop for Umount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// renameat2(a, b, RENAME_EXCHANGE).
fn exchange(a: &Path, b: &Path) {
    let _ = nix::fcntl::renameat2(
        nix::fcntl::AT_FDCWD,
        a,
        nix::fcntl::AT_FDCWD,
        b,
        nix::fcntl::RenameFlags::RENAME_EXCHANGE,
    );
}

/// Finding F1, first half: /proc (or /sys) of the rootfs a symlink into a
/// volume another container controls. Refused whether the link leads into
/// the volume (the report), to a real directory of the rootfs, or is the
/// last component of a deeper destination (variants), and the host's
/// core_pattern is never writable from the container.
#[test]
fn proc_and_sysfs_only_on_real_directories() {
    let core = CorePatternGuard::new();
    let shared = host_dir("procvol");
    fs::create_dir_all(shared.path().join("p")).unwrap();
    // (rootfs entry, its symlink target, mount type at it); the last one,
    // a bind of the host's /sys at a symlinked /sys, is the variant.
    let cases = [
        ("proc", "/s/p", "proc"),
        ("proc", "/mnt", "proc"),
        ("sys", "/etc", "sysfs"),
        ("sys", "/mnt", "bind"),
    ];
    for (entry, target, typ) in cases {
        let b = Bundle::new().private_rootfs();
        let link = b.rootfs.join(entry);
        let _ = fs::remove_dir_all(&link);
        symlink(target, &link).unwrap();
        fs::create_dir_all(b.rootfs.join("mnt")).unwrap();
        let b = b
            .with(|c| {
                c["mounts"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|m| m["destination"] != "/proc" && m["destination"] != "/sys");
                // Nothing that needs /proc or /sys to be right: the
                // refusal must come from the mount point check itself.
                c["linux"]["maskedPaths"] = json!([]);
                c["linux"]["readonlyPaths"] = json!([]);
            })
            .bind_mount(shared.path(), "/s", &["rbind", "rw"])
            .mount(if typ == "bind" {
                json!({"destination": format!("/{entry}"), "type": "bind", "source": "/sys",
                       "options": ["rbind", "ro"]})
            } else {
                json!({"destination": format!("/{entry}"), "type": typ, "source": typ})
            })
            .sh("for d in /s/* /mnt /etc; do ( : >> $d/sys/kernel/core_pattern ) 2>/dev/null && echo WRITABLE $d; done; true");
        let c = Container::new(b);
        let o = c.run();
        assert!(!o.success(), "/{entry} -> {target} accepted for {typ}: {o}");
        // runc refuses too, each case in words of its own.
        if !is_runc() {
            o.stderr_mentions(&[&format!("/{entry}")])
                .stderr_mentions(&["symlink"]);
        }
        assert!(!o.stdout.contains("WRITABLE"), "{o}");
        assert!(!core.changed());
    }
    // A deeper destination whose last component is the symlink.
    let b = Bundle::new().private_rootfs();
    fs::create_dir_all(b.rootfs.join("data")).unwrap();
    symlink("/etc", b.rootfs.join("data/proc")).unwrap();
    let b = b
        .mount(json!({"destination": "/data/proc", "type": "proc", "source": "proc"}))
        .args(&["true"]);
    let o = Container::new(b).run();
    assert!(!o.success(), "proc on a symlink as last component: {o}");
    o.stderr_mentions(&["/data/proc"]);
}

/// Finding F1, second half (variant the report did not try): the rootfs
/// itself is shared, and its /proc directory is renamed away, with the
/// fresh procfs on it, while the container is being set up; a new empty
/// /proc takes the name. The masked and read-only paths would then land
/// on the impostor and leave the real procfs writable at the old name.
/// Every run either fails naming /proc or finds no procfs anywhere in
/// the rootfs (at /proc or at a name it was moved to) with a writable
/// /proc/sys.
#[test]
fn proc_renamed_away_during_setup_is_caught() {
    require!(
        !is_runc(),
        "runc does not check that /proc still holds its procfs when masking"
    );
    let core = CorePatternGuard::new();
    let b = Bundle::new().private_rootfs().sh(
        "for d in /proc /.old*; do [ -e $d/sys/kernel/core_pattern ] || continue; \
           echo PROCFS $d; ( : >> $d/sys/kernel/core_pattern ) 2>/dev/null && echo WRITABLE $d; \
         done; true",
    );
    let rootfs = b.rootfs.clone();
    let c = Container::new(b);
    let r = rootfs.clone();
    let mut n = 0u32;
    let racer = Racer::spawn(move || {
        n += 1;
        let away = r.join(format!(".old{n}"));
        if fs::rename(r.join("proc"), &away).is_ok() {
            let _ = fs::create_dir(r.join("proc"));
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    });
    let (mut ok, mut moved) = (0, 0);
    for _ in 0..40 {
        let o = c.run();
        let _ = c.delete();
        assert!(!o.stdout.contains("WRITABLE"), "procfs left writable: {o}");
        moved += o.stdout.contains("PROCFS /.old") as u32;
        if o.success() {
            ok += 1;
        } else {
            o.stderr_mentions(&["/proc"]);
        }
    }
    drop(racer);
    assert!(!core.changed());
    eprintln!("{ok} of 40 runs succeeded, {moved} with the procfs moved after setup");
    for e in fs::read_dir(&rootfs).unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with(".old") {
            let _ = fs::remove_dir(e.path());
        }
    }
    let _ = fs::create_dir(rootfs.join("proc"));
}

/// Finding F1, the race in the first half (variant): the rootfs's /proc
/// is swapped (RENAME_EXCHANGE) with a symlink to another directory of the
/// rootfs while the container is set up, so that the name is a real
/// directory when it is checked and a symlink when it is mounted on (or
/// the other way round). No run may end with a procfs whose /proc/sys is
/// writable, wherever it landed.
#[test]
fn proc_swapped_with_a_symlink_during_setup_is_caught() {
    require!(
        !is_runc(),
        "runc resolves the destination again by name after its check"
    );
    let core = CorePatternGuard::new();
    // Only /proc entries masked: nothing else needs /proc to work.
    let b = Bundle::new()
        .private_rootfs()
        .with(|c| c["linux"]["maskedPaths"] = json!(["/proc/kcore"]))
        .sh(
            "for d in /proc /mnt/x; do [ -e $d/sys/kernel/core_pattern ] || continue; \
           echo PROCFS $d; ( : >> $d/sys/kernel/core_pattern ) 2>/dev/null && echo WRITABLE $d; \
         done; true",
        );
    let r = b.rootfs.clone();
    fs::create_dir_all(r.join("mnt/x")).unwrap();
    symlink("/mnt/x", r.join("procl")).unwrap();
    let c = Container::new(b);
    let (a, l) = (r.join("proc"), r.join("procl"));
    let racer = Racer::spawn(move || {
        exchange(&a, &l);
        std::thread::sleep(std::time::Duration::from_micros(200));
    });
    let mut elsewhere = 0;
    for _ in 0..40 {
        let o = c.run();
        let _ = c.delete();
        assert!(!o.stdout.contains("WRITABLE"), "procfs left writable: {o}");
        elsewhere += o.stdout.contains("PROCFS /mnt/x") as u32;
    }
    drop(racer);
    if r.join("proc").is_symlink() {
        exchange(&r.join("proc"), &r.join("procl"));
    }
    assert!(!core.changed());
    eprintln!("{elsewhere} of 40 runs saw a procfs at /mnt/x");
}

/// Finding F1 (2): a masked path below /sys that a symlink in a bound
/// /sys leads out of sysfs is an error, not a tmpfs over whatever the
/// link names (variant: the link is planted in a bound /sys, the report
/// raced /proc).
#[test]
fn masked_path_leading_out_of_sys_is_refused() {
    let fake_sys = host_dir("fakesys");
    symlink("/etc", fake_sys.path().join("firmware")).unwrap();
    let b = Bundle::new()
        .with(|c| {
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .retain(|m| m["destination"] != "/sys");
            c["linux"]["maskedPaths"] = json!(["/sys/firmware"]);
        })
        .bind_mount(fake_sys.path(), "/sys", &["rbind", "ro"])
        .sh("ls /etc | wc -l");
    let o = Container::new(b).run();
    if is_runc() {
        return; // runc follows the link and masks /etc
    }
    assert!(
        !o.success(),
        "mask through /sys/firmware -> /etc accepted: {o}"
    );
    o.stderr_mentions(&["/sys/firmware", "symlink"]);
}

/// Writes `pwn` through every name in `names` and reports which worked.
fn write_probe(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("( echo x > {n} ) 2>/dev/null && echo WROTE {n};"))
        .collect::<String>()
        + " true"
}

/// Finding F3: a read-only bind whose destination a second container
/// swaps (RENAME_EXCHANGE) with a symlink while it is set up. The report
/// used a directory and `ro`/`rro`; variants: a file bind, and a
/// symlink to `/` as well as to /dev/mqueue. The bound host directory and
/// file are never written.
#[test]
fn read_only_binds_stay_read_only_when_swapped() {
    require!(
        !is_runc(),
        "runc remounts the bind by name and is affected too (report F3)"
    );
    let shared = host_dir("swapvol");
    let s = shared.path().to_path_buf();
    let hdir = host_dir("robind");
    let hfile_dir = host_dir("robindf");
    let hfile = hfile_dir.path().join("f");
    fs::write(&hfile, "orig").unwrap();
    fs::create_dir(s.join("ro")).unwrap();
    fs::write(s.join("rofile"), "").unwrap();
    let mut runs = 0;
    for (i, (link, opts)) in [
        ("/dev/mqueue", &["bind", "ro"][..]),
        ("/", &["rbind", "rro"][..]),
        ("/tmp", &["bind", "ro"][..]),
    ]
    .into_iter()
    .enumerate()
    {
        let _ = fs::remove_file(s.join("sym"));
        let _ = fs::remove_file(s.join("symf"));
        symlink(link, s.join("sym")).unwrap();
        symlink("/etc/hostname", s.join("symf")).unwrap();
        let (a, b2, fa, fb) = (
            s.join("ro"),
            s.join("sym"),
            s.join("rofile"),
            s.join("symf"),
        );
        let racer = Racer::spawn(move || {
            exchange(&a, &b2);
            exchange(&fa, &fb);
        });
        let b = Bundle::new()
            .private_rootfs()
            .bind_mount(&s, "/s", &["rbind", "rw"])
            .bind_mount(hdir.path(), "/s/ro", opts)
            .bind_mount(&hfile, "/s/rofile", &["bind", "ro"])
            .sh(&write_probe(&[
                "/s/ro/pwn",
                "/s/sym/pwn",
                "/s/rofile",
                "/s/symf",
            ]));
        let c = Container::new(b);
        for _ in 0..15 {
            let o = c.run();
            let _ = c.delete();
            runs += o.success() as u32;
            assert!(
                fs::read_dir(hdir.path()).unwrap().next().is_none(),
                "case {i}: the read-only host directory was written: {o}"
            );
            assert_eq!(fs::read_to_string(&hfile).unwrap(), "orig", "case {i}: {o}");
        }
        drop(racer);
        // Back to the starting layout for the next case.
        if s.join("ro").is_symlink() {
            exchange(&s.join("ro"), &s.join("sym"));
        }
        if s.join("rofile").is_symlink() {
            exchange(&s.join("rofile"), &s.join("symf"));
        }
    }
    assert!(runs > 0, "no run succeeded at all");
}

/// Finding F4: `remount` on a new mount changed the superblock of the
/// host filesystem bound at the destination by an earlier entry. Refused
/// by name, before anything is mounted; the variant: the bound filesystem
/// is a host tmpfs whose size and read-only state are checked after.
#[test]
fn remount_option_is_refused() {
    require!(
        !is_runc(),
        "runc 1.1 passes `remount` to mount(2) with the bind and fails it (EINVAL)"
    );
    let t = host_dir("remount");
    let m = t.path().join("m");
    fs::create_dir(&m).unwrap();
    sh(&format!(
        "mount -t tmpfs -o size=1m rrun-remount-test {}",
        m.display()
    ))
    .ok();
    let _u = Umount(m.clone());
    let before = sh(&format!("findmnt -no OPTIONS {}", m.display())).stdout;
    for opts in [json!(["remount", "ro", "size=2m"]), json!(["remount"])] {
        let b = Bundle::new()
            .private_rootfs()
            .bind_mount(&m, "/data", &["bind"])
            .mount(
                json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                          "options": opts}),
            )
            .args(&["true"]);
        let c = Container::new(b);
        let o = c.run();
        let _ = c.delete();
        if is_runc() {
            continue;
        }
        assert!(!o.success(), "remount accepted: {o}");
        o.stderr_mentions(&["remount"]).stderr_is_short_error();
        let after = sh(&format!("findmnt -no OPTIONS {}", m.display())).stdout;
        assert_eq!(before, after, "the host's tmpfs changed");
    }
    // On a bind the word changes nothing and stays accepted.
    let b = Bundle::new()
        .private_rootfs()
        .bind_mount(&m, "/data", &["bind", "remount", "ro"])
        .sh("! touch /data/x 2>/dev/null");
    Container::new(b).run().ok();
}

/// Mount points in this mount namespace under `dir`.
fn mounts_under(info: &str, dir: &Path) -> Vec<String> {
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(dir))
        .map(String::from)
        .collect()
}

/// Finding F5: a non-recursive rootfsPropagation with the bundle on a
/// shared mount. Run in a private mount namespace of its own (`unshare
/// -m`, then everything made rshared): the container runs, nothing is
/// left in that namespace after a successful and after a failed run
/// (variant: create fails late, a missing program), and the mode still
/// shows inside the container. Also the shared modes, which keep the
/// container's copies of the host's mounts in the host's peer groups
/// until the binds are made: the container's / is shared, but in a peer
/// group of its own.
#[test]
fn rootfs_propagation_on_a_shared_parent_leaks_nothing() {
    require!(have_cmd("unshare"), "needs unshare(1)");
    // (mode, tag of the container's / , the rootfs is a shared mount of
    // its own too: the variant)
    for (mode, tag, own) in [
        ("private", "", false),
        ("slave", "master:", false),
        ("private", "", true),
        ("shared", "shared:", false),
        ("rshared", "shared:", false),
        ("rshared", "shared:", true),
    ] {
        let b = Bundle::new()
            .private_rootfs()
            .with(|c| c["linux"]["rootfsPropagation"] = json!(mode))
            .sh("awk '$5==\"/\"' /proc/self/mountinfo");
        b.write();
        let bundle = b.path().to_path_buf();
        let bad = bundle.join("bad");
        fs::create_dir(&bad).unwrap();
        let mut cfg = b.config.clone();
        cfg["process"]["args"] = json!(["/no/such/program"]);
        fs::write(bad.join("config.json"), cfg.to_string()).unwrap();
        let id = unique_name();
        let state = host_dir("propstate");
        let script = format!(
            "set -e; mount --make-rshared /; \
             mount --bind {dir} {dir}; mount --make-shared {dir}; {own} \
             cat /proc/self/mountinfo; echo ==; \
             {rrun} run --bundle {dir} {id}; {rrun} delete -f {id} >/dev/null 2>&1 || true; \
             if {rrun} run --bundle {dir}/bad {id}b >/dev/null 2>&1; then echo BAD-RAN; fi; \
             {rrun} delete -f {id}b >/dev/null 2>&1 || true; \
             echo ==; cat /proc/self/mountinfo",
            dir = bundle.display(),
            own = if own {
                format!(
                    "mount --bind {r} {r}; mount --make-shared {r};",
                    r = bundle.join("rootfs").display()
                )
            } else {
                String::new()
            },
            rrun = format!("{} --root {}", rrun_bin().display(), state.path().display()),
        );
        let mut cmd = std::process::Command::new("unshare");
        cmd.args(["-m", "sh", "-c", &script]);
        let o = run_timeout(cmd, TIMEOUT);
        let (before, rest) = o.stdout.split_once("==\n").unwrap_or(("", &o.stdout));
        let (inside, info) = rest.split_once("==\n").unwrap_or((rest, ""));
        assert!(o.success(), "{mode}: {o}");
        assert!(!inside.contains("BAD-RAN"), "{o}");
        // Exactly the sandbox's own mounts there (a bind on a shared
        // mount shows twice), nothing of the container's.
        let left = mounts_under(info, &bundle);
        let had = mounts_under(before, &bundle);
        assert!(!had.is_empty(), "{o}");
        assert_eq!(left, had, "{mode}: mounts left behind");
        // The container's / : a slave of the bundle's mount, or private;
        // shared only when asked, and then never with the host's mounts.
        let root_line = inside.lines().next().unwrap_or("");
        let group = root_line
            .split(' ')
            .find_map(|f| f.strip_prefix("shared:"))
            .map(|n| format!("shared:{n} "));
        match &group {
            Some(g) => {
                assert!(tag == "shared:", "{mode}: {root_line}");
                assert!(!before.contains(g.as_str()), "{mode}: / a host peer: {o}");
            }
            None if tag == "shared:" => {
                // runc 1.1 leaves it private (applies shared before binding).
                assert!(is_runc(), "{mode}: / not shared: {root_line}")
            }
            None => {}
        }
        if !tag.is_empty() && !is_runc() {
            assert!(root_line.contains(tag), "{mode}: {root_line}");
        }
    }
}

/// Finding F6: `unpack` opened a device node of the image on the host
/// (etc/passwd as a char device) before refusing it. /dev/tty (5,0) makes
/// the open observable: without a controlling terminal it fails ENXIO,
/// which only a real open reports. The report used etc/passwd; variant:
/// etc/group.
#[test]
fn unpack_never_opens_a_device_of_the_image() {
    require!(!is_runc(), "unpack is rrun's own");
    require!(have_cmd("setsid"), "needs setsid(1)");
    for name in ["etc/passwd", "etc/group"] {
        let t = host_dir("unpackdev");
        let mut tb = tar::Builder::new(Vec::new());
        let mut add = |path: &str, kind: tar::EntryType, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            h.set_mtime(1_500_000_000);
            h.set_uid(0);
            h.set_gid(0);
            if kind == tar::EntryType::Char {
                h.set_device_major(5).unwrap();
                h.set_device_minor(0).unwrap();
            }
            h.set_path(path).unwrap();
            h.set_cksum();
            tb.append(&h, data).unwrap();
        };
        add("etc/", tar::EntryType::Directory, b"");
        for f in ["etc/passwd", "etc/group"] {
            if f == name {
                add(f, tar::EntryType::Char, b"");
            } else {
                add(
                    f,
                    tar::EntryType::Regular,
                    b"nobody:x:65534:65534::/:/bin/sh\n",
                );
            }
        }
        let tarball = t.path().join("img.tar");
        fs::write(&tarball, tb.into_inner().unwrap()).unwrap();
        let out = t.path().join("out");
        let mut cmd = std::process::Command::new("setsid");
        cmd.arg(rrun_bin())
            .args(["unpack", "--user", "nobody"])
            .arg(&tarball)
            .arg(&out)
            .stdin(std::process::Stdio::null());
        let o = run_timeout(cmd, TIMEOUT);
        assert!(!o.success(), "{name} as a device accepted: {o}");
        o.stderr_mentions(&[name]);
        assert!(
            !o.stderr.contains("No such device"),
            "{name}: the device was opened: {o}"
        );
        assert!(!out.exists(), "{name}: output left behind");
    }
}

/// The weaker finding: an image whose /dev is a symlink into a volume
/// (`/dev -> /data`, a host directory bound at /data) had rrun unlink and
/// mknod in the host's directory. The variant: a `linux.devices` entry in
/// a subdirectory reached through a symlink as well.
#[test]
fn device_nodes_only_in_real_directories() {
    require!(!is_runc(), "runc makes the nodes through the symlink too");
    let vol = host_dir("devvol");
    fs::write(vol.path().join("null"), "host file").unwrap();
    for (link_at, target, dev_path) in [
        ("dev", "/data", None),
        ("dev/sub", "/data", Some("/dev/sub/mydev")),
    ] {
        let b = Bundle::new().private_rootfs().with(|c| {
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .retain(|m| !m["destination"].as_str().unwrap_or("").starts_with("/dev"));
        });
        let link = b.rootfs.join(link_at);
        if link_at == "dev" {
            let _ = fs::remove_dir_all(&link);
        }
        symlink(target, &link).unwrap();
        let mut b = b
            .bind_mount(vol.path(), "/data", &["rbind", "rw"])
            .args(&["true"]);
        if let Some(p) = dev_path {
            b = b.with(|c| {
                c["linux"]["devices"] = json!([{"path": p, "type": "c", "major": 1, "minor": 3}]);
            });
        }
        let c = Container::new(b);
        let o = c.run();
        let _ = c.delete();
        assert!(!o.success(), "{link_at} -> {target} accepted: {o}");
        o.stderr_mentions(&["symlink"]);
        let names: Vec<String> = fs::read_dir(vol.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["null"], "{link_at}: the host directory changed");
        assert_eq!(
            fs::read_to_string(vol.path().join("null")).unwrap(),
            "host file"
        );
    }
}

/// The weaker finding: a bind source inside the rootfs (`rootfs/vol`,
/// relative to the bundle) through a symlink of the image (`vol -> /some/
/// host/dir`) bound the host's directory. Such a source is now resolved
/// inside the rootfs, as the container would see the link, however the
/// path reaches the rootfs (relative, absolute, through a host symlink to
/// the bundle), whether the init or the host side (a user namespace that
/// cannot reach the target, an id-mapped bind) makes the bind.
#[test]
fn bind_source_inside_the_rootfs_stays_inside() {
    require!(!is_runc(), "runc follows the image's symlink on the host");
    let host = host_dir("srcvol");
    fs::write(host.path().join("marker"), "HOST-SECRET").unwrap();
    // The host directory's parent only host root may enter: in a user
    // namespace the bind is then made on the host side, and must resolve
    // the image's link the same way.
    let closed = host_dir("srcclosed");
    set_mode(closed.path(), 0o700);
    let hidden = closed.path().join("in");
    fs::create_dir(&hidden).unwrap();
    fs::write(hidden.join("marker"), "HOST-SECRET").unwrap();
    let alias = host_dir("srcalias");
    // (spelling, user namespace, id-mapped, link target)
    for (spelling, userns, idmap, target) in [
        ("relative", false, false, host.path().to_path_buf()),
        ("absolute", false, false, host.path().to_path_buf()),
        ("alias", false, false, host.path().to_path_buf()),
        ("relative", true, false, hidden.clone()),
        ("alias", true, false, hidden.clone()),
        ("relative", true, true, PathBuf::from("/")),
        ("relative", false, true, host.path().to_path_buf()),
    ] {
        let mut b = Bundle::new().private_rootfs();
        symlink(&target, b.rootfs.join("vol")).unwrap();
        let src = match spelling {
            "relative" => "rootfs/vol".to_string(),
            "absolute" => b.rootfs.join("vol").to_string_lossy().into_owned(),
            _ => {
                // A host path that reaches the bundle through a host symlink.
                let link = alias.path().join(unique_name());
                symlink(b.path(), &link).unwrap();
                link.join("rootfs/vol").to_string_lossy().into_owned()
            }
        };
        let mut options = vec!["rbind", "rw"];
        if idmap {
            options.push("idmap");
        }
        let mut m =
            json!({"destination": "/mnt/v", "type": "bind", "source": src, "options": options});
        if idmap && !userns {
            let map = json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
            m["uidMappings"] = map.clone();
            m["gidMappings"] = map;
        }
        if userns {
            // The image's files must be the user namespace root's to run.
            let _ = Command::new("chown")
                .args(["-R", "100000:100000"])
                .arg(&b.rootfs)
                .status();
            b = b.in_userns();
        }
        let b = b
            .mount(m)
            .sh("cat /mnt/v/marker /mnt/v/etc/hostname 2>/dev/null; touch /mnt/v/pwn");
        let what = format!("{spelling} source, user namespace {userns}, idmap {idmap}");
        let c = Container::new(b);
        let o = c.run();
        let _ = c.delete();
        let host_hostname = fs::read_to_string("/etc/hostname").unwrap_or_default();
        assert!(
            !o.stdout.contains("HOST-SECRET")
                && (host_hostname.trim().is_empty() || !o.stdout.contains(host_hostname.trim())),
            "{what}: a host directory was bound: {o}"
        );
        for dir in [host.path(), hidden.as_path(), Path::new("/")] {
            assert!(
                !dir.join("pwn").exists(),
                "{what}: a host directory was written: {o}"
            );
        }
    }
}

/// The class of F3 on a new filesystem: a tmpfs with tmpcopyup (and rro)
/// whose destination a second container swaps with a symlink to /etc
/// while it is set up. The copy and the attributes go to the tmpfs
/// through its own fd: the container's /etc never receives the covered
/// directory's contents, and the tmpfs is read-only wherever it landed.
#[test]
fn tmpfs_copy_up_never_lands_elsewhere() {
    require!(
        !is_runc(),
        "runc copies up and remounts by name after the mount"
    );
    // The shared directory on a filesystem of its own (as a volume is),
    // so that st_dev alone does not tell its directories from /etc's.
    let shared = host_dir("copyvol");
    let s = shared.path().to_path_buf();
    sh(&format!("mount -t tmpfs rrun-copyvol-test {}", s.display())).ok();
    let _u = Umount(s.clone());
    fs::create_dir(s.join("t")).unwrap();
    fs::write(s.join("t/INJECTED"), "x").unwrap();
    symlink("/etc", s.join("sym")).unwrap();
    let (a, l) = (s.join("t"), s.join("sym"));
    let racer = Racer::spawn(move || exchange(&a, &l));
    let b = Bundle::new()
        .private_rootfs()
        .bind_mount(&s, "/s", &["rbind", "rw"])
        .mount(
            json!({"destination": "/s/t", "type": "tmpfs", "source": "tmpfs",
                      "options": ["tmpcopyup", "rro", "nosuid"]}),
        )
        // The tmpfs, wherever it is now: read-only by its mount flags.
        .sh("[ -e /etc/INJECTED ] && echo IN-ETC; \
             awk '$9==\"tmpfs\" && $5 ~ /^\\/(s|etc)/ && $6 !~ /^ro/ {print \"WRITABLE\", $5}' \
               /proc/self/mountinfo; true");
    let etc = b.rootfs.join("etc");
    let c = Container::new(b);
    let mut ok = 0;
    for _ in 0..40 {
        let o = c.run();
        let _ = c.delete();
        assert!(!o.stdout.contains("IN-ETC"), "{o}");
        assert!(!o.stdout.contains("WRITABLE"), "{o}");
        // Also a failed run must not have copied into the rootfs's /etc.
        assert!(!etc.join("INJECTED").exists(), "copied into /etc: {o}");
        ok += o.success() as u32;
    }
    drop(racer);
    // Nor the rootfs's /etc into the shared directory (checked with the
    // racer stopped: the name that is the symlink leads to the host's /etc).
    for d in [&s, &s.join("t"), &s.join("sym")] {
        if d.is_symlink() {
            continue;
        }
        let names: Vec<_> = fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(
            !names.iter().any(|n| n == "passwd"),
            "/etc copied into the shared directory {}: {names:?}",
            d.display()
        );
    }
    assert!(ok > 0, "no run succeeded");
}

/// A bind at /proc or /sys takes the init's own checks (a procfs only from
/// the runtime's pid namespace, the host's cgroups masked). In a user
/// namespace, a source its root cannot reach would be bound from the
/// host side and skip them: refused (a host procfs bound from below a
/// 0700 directory showed the host's processes).
#[test]
fn host_side_binds_never_land_on_proc_or_sys() {
    require!(is_root(), "needs root");
    require!(!is_runc(), "runc binds it (and shows the host's processes)");
    let closed = host_dir("procclosed");
    set_mode(closed.path(), 0o700);
    let src = closed.path().join("p");
    fs::create_dir(&src).unwrap();
    for dest in ["/proc", "/sys/kernel"] {
        let b = Bundle::new()
            .in_userns()
            .with(|c| {
                let mounts = c["mounts"].as_array_mut().unwrap();
                mounts.retain(|m| m["destination"] != dest);
            })
            .mount(json!({"destination": dest, "type": "bind",
                "source": src.to_string_lossy(), "options": ["rbind"]}))
            .args(&["true"]);
        let c = Container::new(b);
        c.run().failed().stderr_mentions(&[dest]);
        c.assert_clean();
    }
}

/// With a non-recursive rootfsPropagation ("slave", "private"), a shared
/// host mount below the rootfs (a tmpfs at rootfs/mnt) must not carry the
/// container's own mounts back to the host: the whole rootfs tree takes
/// the asked mode. Checked from outside, in the host's mountinfo.
#[test]
fn container_mounts_never_reach_a_shared_mount_below_the_rootfs() {
    require!(is_root(), "needs root");
    require!(!is_runc(), "runc leaves the mount on the host");
    for prop in ["slave", "private"] {
        let b = Bundle::new().private_rootfs();
        let under = b.rootfs.join("mnt");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "rrun-test-shared"])
            .arg(&under)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mount tmpfs at {}", under.display());
        let _u = Umount(under.clone());
        Command::new("mount")
            .arg("--make-shared")
            .arg(&under)
            .status()
            .unwrap();
        let b = b
            .with(|c| c["linux"]["rootfsPropagation"] = json!(prop))
            .mount(json!({"destination": "/mnt/leak", "type": "tmpfs", "source": "tmpfs"}))
            .args(&["true"]);
        let c = Container::new(b);
        let o = c.run();
        let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let leaked = mounts_under(&info, &under.join("leak"));
        for m in &leaked {
            let _ = nix::mount::umount2(Path::new(m), nix::mount::MntFlags::MNT_DETACH);
        }
        drop(_u);
        o.ok();
        c.assert_clean();
        assert!(
            leaked.is_empty(),
            "rootfsPropagation {prop}: on the host: {leaked:?}"
        );
    }
}

/// `--no-pivot` detaches the proc and sysfs mounts outside the rootfs in
/// the container's mount namespace. With a non-recursive
/// rootfsPropagation those may still be peers of the host's: the detach
/// must not reach the host (each is made private first). Checked from
/// outside: a host procfs below a shared mount is still there.
#[test]
fn no_pivot_detach_never_reaches_the_host() {
    require!(is_root(), "needs root");
    require!(!is_runc(), "runc unmounts the host's copy too");
    let s = host_dir("nopivot-shared");
    let dir = s.path().to_path_buf();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "rrun-test-np"])
        .arg(&dir)
        .status()
        .is_ok_and(|st| st.success());
    assert!(ok, "mount tmpfs");
    let _outer = Umount(dir.clone());
    Command::new("mount")
        .arg("--make-shared")
        .arg(&dir)
        .status()
        .unwrap();
    fs::create_dir(dir.join("proc")).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "proc", "proc"])
        .arg(dir.join("proc"))
        .status()
        .is_ok_and(|st| st.success());
    assert!(ok, "mount proc");
    let _inner = Umount(dir.join("proc"));
    for prop in ["slave", "private"] {
        let b = Bundle::new()
            .with(|c| c["linux"]["rootfsPropagation"] = json!(prop))
            .args(&["true"]);
        let c = Container::new(b);
        c.run_with(&["--no-pivot"]).ok();
        c.assert_clean();
        let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts_under(&info, &dir.join("proc")).is_empty(),
            "rootfsPropagation {prop}: the host's procfs at {} was unmounted",
            dir.join("proc").display()
        );
    }
    drop(_inner);
    drop(_outer);
}

/// An image symlink (`/etc/hostname -> /vol/hn`) leads an engine mount
/// into a volume that is a peer of the host's mount (rshared volume with
/// rootfsPropagation rshared or shared, as Docker sets for `:rshared`):
/// the engine's bind must not appear on the host, where it would outlive
/// the container (one more host mount per run, pinning the volume). A
/// mount written under the volume in the config still propagates.
/// Checked from outside, in the host's mountinfo.
#[test]
fn image_symlinks_never_lead_engine_mounts_to_the_host() {
    require!(is_root(), "needs root");
    require!(!is_runc(), "runc follows the symlink onto the host's peer");
    let s = host_dir("symvol");
    let vol = s.path().to_path_buf();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "rrun-test-symvol"])
        .arg(&vol)
        .status()
        .is_ok_and(|st| st.success());
    assert!(ok, "mount tmpfs at {}", vol.display());
    let _u = Umount(vol.clone());
    Command::new("mount")
        .arg("--make-shared")
        .arg(&vol)
        .status()
        .unwrap();
    fs::write(vol.join("hn"), "").unwrap();
    fs::create_dir(vol.join("engine")).unwrap();
    let src = host_dir("symsrc");
    fs::write(src.path().join("hostname"), "rt\n").unwrap();
    for prop in ["rshared", "shared"] {
        let b = Bundle::new().private_rootfs();
        let etc = b.rootfs.join("etc");
        fs::create_dir_all(&etc).unwrap();
        let _ = fs::remove_file(etc.join("hostname"));
        symlink("/vol/hn", etc.join("hostname")).unwrap();
        let b = b
            .with(|c| c["linux"]["rootfsPropagation"] = json!(prop))
            .mount(json!({"destination": "/vol", "type": "bind",
                "source": vol, "options": ["rbind", "rshared"]}))
            // Before the symlinked one, which turns the volume into a
            // slave for the rest of the container's life.
            .mount(json!({"destination": "/vol/engine", "type": "tmpfs", "source": "tmpfs"}))
            .mount(json!({"destination": "/etc/hostname", "type": "bind",
                "source": src.path().join("hostname"), "options": ["rbind", "rprivate"]}))
            .args(&["true"]);
        let c = Container::new(b);
        let o = c.run();
        let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let leaked = mounts_under(&info, &vol.join("hn"));
        let engine = mounts_under(&info, &vol.join("engine"));
        for m in leaked.iter().chain(&engine) {
            let _ = nix::mount::umount2(Path::new(m), nix::mount::MntFlags::MNT_DETACH);
        }
        o.ok();
        c.assert_clean();
        assert!(
            leaked.is_empty(),
            "rootfsPropagation {prop}: the engine's bind on the host: {leaked:?}"
        );
        // The test can fail: a destination under the volume in the config
        // is a Bidirectional mount and does reach the host.
        assert!(
            !engine.is_empty(),
            "rootfsPropagation {prop}: /vol/engine did not propagate: {o}"
        );
    }
    drop(_u);
}
