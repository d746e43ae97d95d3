//! Real-kernel tests of the store and the overlay (root: mknod of
//! whiteouts, trusted.* xattrs, overlay mounts). rrun has no library
//! target, so they live in the binary: `cargo test --bin rrun app::store`.
//! Images are built here as OCI layouts (tar crate), each test in a
//! temporary app root of its own; mounts are removed by a guard.

use super::*;
use crate::app::overlay;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

fn root_or_skip() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("SKIPPED: the store's tests need root (whiteouts, trusted xattrs, overlay)");
    false
}

struct Env {
    tmp: tempfile::TempDir,
    paths: Paths,
    store: Store,
}

fn env() -> Env {
    let tmp = tempfile::Builder::new()
        .prefix("rrun-store-")
        .tempdir()
        .unwrap();
    let paths = Paths::new(&tmp.path().join("app"));
    let store = Store::open(&paths).unwrap();
    Env { tmp, paths, store }
}

/// Unmounts on drop, so a failing test leaves no mount.
struct Mounted(PathBuf);
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = overlay::unmount(&self.0);
    }
}

// --- building images ------------------------------------------------------

enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Link(&'a str, &'a str),
    Hard(&'a str, &'a str),
    /// A file with a pax xattr.
    Xattr(&'a str, &'a str, &'a [u8]),
}

fn tar_of(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, io::empty()).unwrap();
            }
            E::File(p, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, *data).unwrap();
            }
            E::Link(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
            E::Hard(p, target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
            E::Xattr(p, key, value) => {
                let k = format!("SCHILY.xattr.{key}");
                b.append_pax_extensions([(k.as_str(), *value)]).unwrap();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(1);
                b.append_data(&mut h, p, &b"x"[..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// A tar with a raw `../` name (the tar crate refuses to write one).
fn tar_escaping() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_path("x").unwrap();
    h.as_old_mut().name[..9].copy_from_slice(b"../escape");
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(1);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_cksum();
    b.append(&h, &b"e"[..]).unwrap();
    b.into_inner().unwrap()
}

fn sha(b: &[u8]) -> String {
    layout::hex_digest(Sha256::digest(b).as_slice())
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn put_blob(dir: &Path, bytes: &[u8]) -> String {
    let hex = sha(bytes);
    fs::write(dir.join("blobs/sha256").join(&hex), bytes).unwrap();
    hex
}

/// An OCI layout at `dir` with these layer tars (bottom first); `gz`
/// compresses them; `diff_ids` overrides the config's diff_ids.
fn oci(dir: &Path, layers: &[Vec<u8>], gz: bool, diff_ids: Option<Vec<String>>) -> String {
    fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let mut descs = Vec::new();
    let mut ids = Vec::new();
    for l in layers {
        ids.push(format!("sha256:{}", sha(l)));
        let blob = if gz { gzip(l) } else { l.clone() };
        let hex = put_blob(dir, &blob);
        descs.push(serde_json::json!({
            "mediaType": if gz { "application/vnd.oci.image.layer.v1.tar+gzip" }
                         else { "application/vnd.oci.image.layer.v1.tar" },
            "digest": format!("sha256:{hex}"), "size": blob.len()}));
    }
    let (os, arch) = layout::host_platform();
    let config = serde_json::json!({
        "architecture": arch, "os": os, "created": "2024-01-02T03:04:05Z",
        "config": {"Cmd": ["/bin/sh"], "Env": ["A=1"], "User": "app"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids.unwrap_or(ids)}});
    let cbytes = serde_json::to_vec(&config).unwrap();
    let chex = put_blob(dir, &cbytes);
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": format!("sha256:{chex}"), "size": cbytes.len()},
        "layers": descs});
    let mbytes = serde_json::to_vec(&manifest).unwrap();
    let mhex = put_blob(dir, &mbytes);
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{mhex}"), "size": mbytes.len(),
        "annotations": {"org.opencontainers.image.ref.name": "latest"}}]});
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    mhex
}

fn src(dir: &Path) -> String {
    format!("oci:{}", dir.display())
}

const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";

fn base_layer() -> Vec<u8> {
    tar_of(&[
        E::Dir("etc"),
        E::File("etc/passwd", PASSWD),
        E::Dir("d"),
        E::File("d/a", b"a"),
        E::File("d/b", b"b"),
        E::File("gone", b"gone"),
        E::Dir("o"),
        E::File("o/x", b"x"),
        E::Dir("o/sub"),
        E::File("o/sub/deep", b"deep"),
        E::File("f", b"lower f"),
    ])
}

fn top_layer() -> Vec<u8> {
    tar_of(&[
        E::File(".wh.gone", b""),
        E::Dir("o"),
        E::File("o/.wh..wh..opq", b""),
        E::File("o/y", b"y"),
        E::Dir("d"),
        E::File("d/c", b"c"),
        E::File("d/.wh.a", b""),
        E::File("etc/group", b"app:x:1000:\n"),
    ])
}

/// (path, inode, mtime, ctime) of everything under `dir`, sorted.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u64, i64, i64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = fs::symlink_metadata(e.path()).unwrap();
            out.push((
                e.path(),
                m.ino(),
                m.mtime_nsec() + m.mtime() * 1_000_000_000,
                m.ctime() * 1_000_000_000 + m.ctime_nsec(),
            ));
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    out
}

fn count_dirs(dir: &Path) -> usize {
    fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_type().unwrap().is_dir())
        .count()
}

fn is_empty_dir(dir: &Path) -> bool {
    fs::read_dir(dir).unwrap().next().is_none()
}

// --- tests ----------------------------------------------------------------

#[test]
fn layers_are_stored_in_overlay_format_and_mount_merged() {
    if !root_or_skip() {
        return;
    }
    let e = env();
    let layout = e.tmp.path().join("img");
    let mhex = oci(&layout, &[base_layer(), top_layer()], true, None);
    let image = e.store.import(&src(&layout)).unwrap();
    assert_eq!(
        image.id, mhex,
        "an OCI image is named by its manifest digest"
    );
    assert_eq!(image.layers.len(), 2);
    assert_eq!(
        image.layer_ids[0],
        sha(&base_layer()),
        "layers named by diff_id"
    );
    assert_eq!(image.config.user.as_deref(), Some("app"));
    assert_eq!(image.created, "2024-01-02T03:04:05Z");
    let mode = fs::metadata(e.paths.store()).unwrap().mode() & 0o7777;
    assert_eq!(
        mode, 0o700,
        "host users cannot reach the layers' set-uid files"
    );
    assert!(image.size > 0);

    // The top layer keeps its whiteouts as overlayfs reads them.
    let top = &image.layers[1];
    let gone = fs::symlink_metadata(top.join("gone")).unwrap();
    assert!(
        gone.file_type().is_char_device() && gone.rdev() == 0,
        "whiteout = 0/0 char device"
    );
    assert!(
        fs::symlink_metadata(top.join("d/a"))
            .unwrap()
            .file_type()
            .is_char_device()
    );
    assert_eq!(
        xattr::get(top.join("o"), "trusted.overlay.opaque")
            .unwrap()
            .as_deref(),
        Some(&b"y"[..])
    );
    assert!(!top.join("o/.wh..wh..opq").exists());
    assert!(!top.join(".wh.gone").exists());

    // Mounted: the merged view is the image as a flat unpack would be.
    let app = e.paths.app("web");
    fs::create_dir_all(&app).unwrap();
    let target = app.join("rootfs");
    overlay::mount(
        &image.layers,
        &app.join("upper"),
        &app.join("work"),
        &target,
    )
    .unwrap();
    let _m = Mounted(target.clone());
    assert!(overlay::is_mounted(&target));
    // The mount's options (which the container reads in its mountinfo)
    // name no host path.
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = info
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(target.to_str().unwrap()))
        .unwrap();
    let (_, opts) = line.split_once(" - ").unwrap();
    assert!(opts.contains("upperdir=/proc/self/fd/"), "{line}");
    assert!(!opts.contains("store") && !opts.contains("web"), "{line}");
    assert!(!target.join("gone").exists());
    assert!(!target.join("d/a").exists());
    assert_eq!(fs::read(target.join("d/b")).unwrap(), b"b");
    assert_eq!(fs::read(target.join("d/c")).unwrap(), b"c");
    assert!(
        !target.join("o/x").exists(),
        "opaque dir hides the lower o/x"
    );
    assert!(!target.join("o/sub").exists());
    assert_eq!(fs::read(target.join("o/y")).unwrap(), b"y");
    assert_eq!(fs::read(target.join("etc/passwd")).unwrap(), PASSWD);

    // Writes go to the app's upper dir; the shared layer is untouched.
    let before = snapshot(&e.paths.store().join("layers"));
    fs::write(target.join("f"), b"changed").unwrap();
    fs::write(target.join("new"), b"new").unwrap();
    fs::remove_file(target.join("d/b")).unwrap();
    assert_eq!(fs::read(image.layers[0].join("f")).unwrap(), b"lower f");
    assert!(image.layers[0].join("d/b").exists());
    assert_eq!(fs::read(app.join("upper/f")).unwrap(), b"changed");
    assert_eq!(before, snapshot(&e.paths.store().join("layers")));

    // A second app of the same image: its own view, nothing copied.
    let app2 = e.paths.app("web2");
    let target2 = app2.join("rootfs");
    fs::create_dir_all(&app2).unwrap();
    overlay::mount(
        &image.layers,
        &app2.join("upper"),
        &app2.join("work"),
        &target2,
    )
    .unwrap();
    let _m2 = Mounted(target2.clone());
    assert_eq!(fs::read(target2.join("f")).unwrap(), b"lower f");
    assert!(target2.join("d/b").exists());
    assert!(matches!(
        overlay::mount(
            &image.layers,
            &app2.join("upper"),
            &app2.join("work"),
            &target2
        ),
        Err(overlay::OverlayError::AlreadyMounted(_))
    ));

    overlay::unmount(&target).unwrap();
    assert!(!overlay::is_mounted(&target));
    overlay::unmount(&target).unwrap(); // idempotent
    overlay::unmount(&e.tmp.path().join("never-there")).unwrap();
}

#[test]
fn read_etc_follows_the_merged_view_inside_the_image() {
    if !root_or_skip() {
        return;
    }
    let e = env();
    let layout = e.tmp.path().join("img");
    let extra = tar_of(&[
        E::Dir("etc"),
        E::Link("etc/abs", "/etc/passwd"),
        E::Link("etc/rel", "../etc/../etc/group"),
        E::Link("etc/out", "../../../../../../etc/hostname"),
        E::Link("etc/loop", "loop"),
        E::Link("lib", "/d"),
    ]);
    oci(&layout, &[base_layer(), top_layer(), extra], false, None);
    let image = e.store.import(&src(&layout)).unwrap();
    let read = |p: &str| e.store.read_etc(&image, p);
    assert_eq!(read("etc/passwd").unwrap().unwrap().as_bytes(), PASSWD);
    assert_eq!(read("/etc/group").unwrap().unwrap(), "app:x:1000:\n");
    assert_eq!(read("etc/abs").unwrap().unwrap().as_bytes(), PASSWD);
    assert_eq!(read("etc/rel").unwrap().unwrap(), "app:x:1000:\n");
    // Climbs stop at the image's root: the host's /etc/hostname is never read.
    assert_eq!(read("etc/out").unwrap(), None);
    assert_eq!(read("lib/c").unwrap().unwrap(), "c");
    assert_eq!(read("gone").unwrap(), None, "whited out");
    assert_eq!(read("d/a").unwrap(), None, "whited out");
    assert_eq!(read("o/x").unwrap(), None, "under an opaque dir");
    assert_eq!(read("o/sub/deep").unwrap(), None, "under an opaque dir");
    assert_eq!(read("o/y").unwrap().unwrap(), "y");
    assert_eq!(read("etc/shadow").unwrap(), None);
    assert!(matches!(read("etc"), Err(StoreError::NotRegular { .. })));
    assert!(matches!(
        read("etc/loop"),
        Err(StoreError::Etc {
            errno: Errno::ELOOP,
            ..
        })
    ));

    // And the user resolves as the lead's code will resolve it.
    let passwd = read("etc/passwd").unwrap();
    let group = read("etc/group").unwrap();
    let u = crate::image::config::resolve_user("app", passwd.as_deref(), group.as_deref()).unwrap();
    assert_eq!((u.uid, u.gid), (1000, 1000));
}

#[test]
fn a_second_import_copies_nothing() {
    if !root_or_skip() {
        return;
    }
    let e = env();
    let layout = e.tmp.path().join("img");
    oci(&layout, &[base_layer(), top_layer()], true, None);
    let first = e.store.import(&src(&layout)).unwrap();
    let store = e.paths.store();
    let before = snapshot(&store.join("layers"));
    let rec = fs::metadata(store.join(format!("images/{}.json", first.id))).unwrap();
    let second = e.store.import(&src(&layout)).unwrap();
    assert_eq!(first.id, second.id);
    assert_eq!(first.layers, second.layers);
    assert_eq!(
        before,
        snapshot(&store.join("layers")),
        "no layer file touched"
    );
    let rec2 = fs::metadata(store.join(format!("images/{}.json", first.id))).unwrap();
    assert_eq!(
        (rec.ino(), rec.mtime_nsec()),
        (rec2.ino(), rec2.mtime_nsec())
    );
    assert!(is_empty_dir(&store.join("tmp")));
    assert_eq!(e.store.list().unwrap().len(), 1);
}

#[test]
fn shared_layers_are_stored_once() {
    if !root_or_skip() {
        return;
    }
    let e = env();
    let a = e.tmp.path().join("a");
    let b = e.tmp.path().join("b");
    let other = tar_of(&[E::File("only-b", b"bbbb")]);
    // The same layer, gzip in one image and plain in the other: one copy.
    oci(&a, &[base_layer(), top_layer()], true, None);
    oci(&b, &[base_layer(), other.clone()], false, None);
    let ia = e.store.import(&src(&a)).unwrap();
    let ib = e.store.import(&src(&b)).unwrap();
    assert_ne!(ia.id, ib.id);
    assert_eq!(ia.layers[0], ib.layers[0]);
    assert_eq!(count_dirs(&e.paths.store().join("layers")), 3);
    let list = e.store.list().unwrap();
    assert_eq!(list.len(), 2);
    let base_size = e.store.layer_size(&sha(&base_layer()));
    assert!(base_size > 0);
    for i in &list {
        assert_eq!(i.shared_size, base_size, "{}", i.source);
        assert!(i.size > i.shared_size);
    }
    assert_eq!(list[0].id, ib.id, "newest import first");
    // By prefix, and refusals.
    assert_eq!(e.store.get(&ia.id[..10]).unwrap().id, ia.id);
    assert_eq!(e.store.get(&ia.digest()).unwrap().id, ia.id);
    assert!(matches!(e.store.get("zz"), Err(StoreError::NoSuchImage(_))));
    assert!(matches!(
        e.store.get("../x"),
        Err(StoreError::NoSuchImage(_))
    ));
    if ia.id[..1] == ib.id[..1] {
        assert!(matches!(
            e.store.get(&ia.id[..1]),
            Err(StoreError::Ambiguous { .. })
        ));
    }
}

#[test]
fn parallel_imports_of_one_image() {
    if !root_or_skip() {
        return;
    }
    let e = env();
    let layout = e.tmp.path().join("img");
    let big: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
    let l3 = tar_of(&[E::File("big", &big)]);
    oci(&layout, &[base_layer(), top_layer(), l3], true, None);
    let source = src(&layout);
    let ids: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..6)
            .map(|_| s.spawn(|| e.store.import(&source).map(|i| i.id)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap().unwrap()).collect()
    });
    assert!(ids.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(count_dirs(&e.paths.store().join("layers")), 3);
    assert!(is_empty_dir(&e.paths.store().join("tmp")));
    let image = e.store.get(&ids[0]).unwrap();
    assert_eq!(fs::read(image.layers[2].join("big")).unwrap(), big);
}

#[test]
fn hostile_layers_stay_inside_their_directory() {
    if !root_or_skip() {
        return;
    }
    let e = env();
    let outside = e.tmp.path().join("outside");
    fs::write(&outside, b"host").unwrap();
    let store_layers = e.paths.store().join("layers");

    // `../escape`: refused, nothing left behind.
    let bad = e.tmp.path().join("bad");
    oci(&bad, &[tar_escaping()], false, None);
    let err = e.store.import(&src(&bad)).unwrap_err();
    assert!(err.to_string().contains("escapes"), "{err}");
    assert!(!e.tmp.path().join("escape").exists());
    assert!(!e.paths.store().join("escape").exists());
    assert_eq!(count_dirs(&store_layers), 0);
    assert!(is_empty_dir(&e.paths.store().join("tmp")));

    // Symlink tricks land inside the layer; overlay xattrs are dropped.
    let o = outside.display().to_string();
    let tricks = tar_of(&[
        E::Link("root", "/"),
        E::File("root/x", b"in"),
        E::Link("up", "../../../../.."),
        E::File("up/y", b"in"),
        E::Link("victim", &o),
        E::File("victim", b"evil"),
        E::Hard("pw", &o),
    ]);
    let t = e.tmp.path().join("tricks");
    oci(&t, &[tricks], false, None);
    let err = e.store.import(&src(&t)).unwrap_err();
    assert!(err.to_string().contains("hard link"), "{err}");
    assert_eq!(fs::read(&outside).unwrap(), b"host");
    assert!(!e.tmp.path().join("x").exists() && !e.tmp.path().join("y").exists());
    assert_eq!(count_dirs(&store_layers), 0);

    let tricks = tar_of(&[
        E::Link("root", "/"),
        E::File("root/x", b"in"),
        E::Link("up", "../../../../.."),
        E::File("up/y", b"in"),
        E::Link("victim", &o),
        E::File("victim", b"evil"),
        E::Xattr("redir", "trusted.overlay.redirect", b"/etc"),
        E::Xattr("meta", "trusted.overlay.metacopy", b""),
    ]);
    let t2 = e.tmp.path().join("tricks2");
    oci(&t2, &[tricks], false, None);
    let image = e.store.import(&src(&t2)).unwrap();
    let l = &image.layers[0];
    assert_eq!(fs::read(l.join("x")).unwrap(), b"in");
    assert_eq!(fs::read(l.join("y")).unwrap(), b"in");
    assert_eq!(fs::read(l.join("victim")).unwrap(), b"evil");
    assert_eq!(fs::read(&outside).unwrap(), b"host");
    assert_eq!(
        xattr::get(l.join("redir"), "trusted.overlay.redirect").unwrap(),
        None
    );
    assert_eq!(
        xattr::get(l.join("meta"), "trusted.overlay.metacopy").unwrap(),
        None
    );
}

#[test]
fn a_layer_that_is_not_its_diff_id_is_refused() {
    if !root_or_skip() {
        return;
    }
    let e = env();
    let layout = e.tmp.path().join("img");
    // The config claims the layer is another (already trusted) layer: the
    // store would hand this content out under that name.
    oci(
        &layout,
        &[top_layer()],
        true,
        Some(vec![format!("sha256:{}", sha(&base_layer()))]),
    );
    let err = e.store.import(&src(&layout)).unwrap_err();
    assert!(matches!(err, StoreError::DiffId { .. }), "{err}");
    assert_eq!(count_dirs(&e.paths.store().join("layers")), 0);
    assert!(is_empty_dir(&e.paths.store().join("tmp")));
    assert!(is_empty_dir(&e.paths.store().join("images")));
    // A corrupted blob is refused by its digest.
    let l2 = e.tmp.path().join("img2");
    oci(&l2, &[base_layer()], false, None);
    let blob = l2.join("blobs/sha256").join(sha(&base_layer()));
    let mut bytes = fs::read(&blob).unwrap();
    bytes[1030] ^= 1; // in etc/passwd's content
    fs::write(&blob, bytes).unwrap();
    let err = e.store.import(&src(&l2)).unwrap_err();
    assert!(err.to_string().contains("digest mismatch"), "{err}");
    assert_eq!(count_dirs(&e.paths.store().join("layers")), 0);
}

#[test]
fn prune_removes_what_no_app_uses() {
    if !root_or_skip() {
        return;
    }
    let e = env();
    let a = e.tmp.path().join("a");
    let b = e.tmp.path().join("b");
    oci(&a, &[base_layer(), top_layer()], true, None);
    oci(
        &b,
        &[base_layer(), tar_of(&[E::File("only-b", b"bbbb")])],
        false,
        None,
    );
    let ia = e.store.import(&src(&a)).unwrap();
    let ib = e.store.import(&src(&b)).unwrap();
    // Leftovers of an import that died.
    fs::create_dir_all(e.paths.store().join("tmp/layer.1.1/x")).unwrap();

    let keep: BTreeSet<String> = [ia.id.clone()].into();
    let r = e.store.prune(&keep).unwrap();
    assert_eq!(r.images, vec![ib.id.clone()]);
    assert_eq!(r.layers, vec![ib.layer_ids[1].clone()]);
    assert_eq!(r.bytes, 4);
    assert!(is_empty_dir(&e.paths.store().join("tmp")));
    assert!(
        e.store
            .get(&ia.id)
            .unwrap()
            .layers
            .iter()
            .all(|l| l.is_dir())
    );
    assert!(matches!(
        e.store.get(&ib.id),
        Err(StoreError::NoSuchImage(_))
    ));
    assert_eq!(count_dirs(&e.paths.store().join("layers")), 2);

    let r = e.store.prune(&BTreeSet::new()).unwrap();
    assert_eq!(r.images, vec![ia.id.clone()]);
    assert_eq!(r.layers.len(), 2);
    assert!(is_empty_dir(&e.paths.store().join("layers")));
    assert!(e.store.list().unwrap().is_empty());
    // The images in use listed under the store's lock; its error is the
    // caller's, and nothing is removed then.
    let again = e.store.import(&src(&a)).unwrap();
    let err = e
        .store
        .prune_with(|| Err::<BTreeSet<String>, _>(StoreError::NoSuchImage("busy".into())))
        .unwrap_err();
    assert!(err.to_string().contains("busy"));
    assert!(e.store.get(&again.id).is_ok());
    let r = e
        .store
        .prune_with(|| Ok::<_, StoreError>([again.id.clone()].into()))
        .unwrap();
    assert!(r.images.is_empty() && r.layers.is_empty());
    // Importing again after a prune works (layers come back).
    let again = e.store.import(&src(&a)).unwrap();
    assert!(again.layers.iter().all(|l| l.is_dir()));
}

#[test]
fn tarballs_and_directories() {
    if !root_or_skip() {
        return;
    }
    let e = env();
    let tgz = e.tmp.path().join("rootfs.tar.gz");
    fs::write(&tgz, gzip(&base_layer())).unwrap();
    let t = e.store.import(&tgz.display().to_string()).unwrap();
    assert_eq!(
        t.id,
        sha(&fs::read(&tgz).unwrap()),
        "a tarball is named by its sha256"
    );
    assert_eq!(t.layer_ids, vec![sha(&base_layer())]);
    let t2 = e.store.import(&tgz.display().to_string()).unwrap();
    assert_eq!(t.id, t2.id);

    // A rootfs directory: tarred in name order, so the same tree is the
    // same image.
    let dir = e.tmp.path().join("rootfs");
    fs::create_dir_all(dir.join("etc")).unwrap();
    fs::write(dir.join("etc/passwd"), PASSWD).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.join("pw")).unwrap();
    fs::hard_link(dir.join("etc/passwd"), dir.join("etc/passwd-")).unwrap();
    fs::create_dir(dir.join("dev")).unwrap();
    nix::sys::stat::mknod(
        &dir.join("dev/null"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    nix::unistd::mkfifo(&dir.join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(dir.join("sock")).unwrap();
    let d = e.store.import(&dir.display().to_string()).unwrap();
    let l = &d.layers[0];
    let null = fs::symlink_metadata(l.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device() && null.rdev() == nix::sys::stat::makedev(1, 3));
    assert!(
        fs::symlink_metadata(l.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert!(!l.join("sock").exists());
    assert_eq!(
        fs::metadata(l.join("etc/passwd")).unwrap().ino(),
        fs::metadata(l.join("etc/passwd-")).unwrap().ino()
    );
    let before = snapshot(&e.paths.store().join("layers"));
    let d2 = e.store.import(&dir.display().to_string()).unwrap();
    assert_eq!(d.id, d2.id);
    assert_eq!(before, snapshot(&e.paths.store().join("layers")));
    assert_eq!(
        e.store.read_etc(&d, "pw").unwrap().unwrap().as_bytes(),
        PASSWD
    );
    assert!(is_empty_dir(&e.paths.store().join("tmp")));

    // An OCI layout named by its path alone.
    let layout = e.tmp.path().join("layout");
    let mhex = oci(&layout, &[base_layer()], false, None);
    assert_eq!(
        e.store.import(&layout.display().to_string()).unwrap().id,
        mhex
    );
    // The tarball's layer is the OCI image's layer: stored once.
    assert_eq!(count_dirs(&e.paths.store().join("layers")), 2);

    let missing = e
        .store
        .import(&e.tmp.path().join("nope.tar").display().to_string());
    let msg = missing.unwrap_err().to_string();
    assert!(msg.contains("nope.tar"), "{msg}");
}

#[test]
fn many_layers_mount_both_ways() {
    if !root_or_skip() {
        return;
    }
    let e = env();
    // A long store path: 120 layers' full paths would not fit in a page.
    let deep = e.tmp.path().join("x".repeat(200));
    let paths = Paths::new(&deep.join("app"));
    let store = Store::open(&paths).unwrap();
    let layers: Vec<Vec<u8>> = (0..120)
        .map(|i| {
            let name = format!("f{i:03}");
            let body = format!("{i}");
            tar_of(&[
                E::File(&name, body.as_bytes()),
                E::File("top", body.as_bytes()),
            ])
        })
        .collect();
    let layout = e.tmp.path().join("img");
    oci(&layout, &layers, false, None);
    let image = store.import(&src(&layout)).unwrap();
    assert!(
        super::super::overlay::tests_support::options_len(&image.layers) > 4096,
        "the test needs options longer than a page"
    );
    for (n, new_api) in [(0, true), (1, false)] {
        let app = paths.app(&format!("a{n}"));
        fs::create_dir_all(&app).unwrap();
        let target = app.join("rootfs");
        overlay::tests_support::mount_with(
            &image.layers,
            &app.join("upper"),
            &app.join("work"),
            &target,
            new_api,
        )
        .unwrap();
        let _m = Mounted(target.clone());
        assert_eq!(fs::read(target.join("f000")).unwrap(), b"0");
        assert_eq!(fs::read(target.join("f119")).unwrap(), b"119");
        // The top layer (last in the list) wins.
        assert_eq!(fs::read_to_string(target.join("top")).unwrap(), "119");
    }
    assert!(matches!(
        overlay::mount(&[], &deep.join("u"), &deep.join("w"), &deep.join("t")),
        Err(overlay::OverlayError::NoLayers)
    ));
    let err = overlay::mount(
        &[deep.join("missing")],
        &deep.join("u"),
        &deep.join("w"),
        &deep.join("t"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn docker_archives_are_named_by_their_config() {
    if !root_or_skip() {
        return;
    }
    let e = env();
    let (os, arch) = layout::host_platform();
    let layers = [base_layer(), top_layer()];
    let config = serde_json::json!({
        "architecture": arch, "os": os,
        "config": {"Entrypoint": ["/bin/httpd"], "StopSignal": "SIGQUIT"},
        "rootfs": {"type": "layers", "diff_ids": layers.iter()
            .map(|l| format!("sha256:{}", sha(l))).collect::<Vec<_>>()}});
    let cbytes = serde_json::to_vec(&config).unwrap();
    let chex = sha(&cbytes);
    let manifest = serde_json::json!([{"Config": format!("{chex}.json"),
        "RepoTags": ["example/web:1"], "Layers": ["l0/layer.tar", "l1/layer.tar"]}]);
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        b.append_data(&mut h, name, data).unwrap();
    };
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    add(&format!("{chex}.json"), &cbytes);
    add("l0/layer.tar", &layers[0]);
    add("l1/layer.tar", &layers[1]);
    let archive = e.tmp.path().join("web.tar");
    fs::write(&archive, b.into_inner().unwrap()).unwrap();
    let source = format!("docker-archive:{}:example/web:1", archive.display());
    let image = e.store.import(&source).unwrap();
    assert_eq!(image.id, chex, "docker's image id");
    assert_eq!(image.source, source);
    assert_eq!(image.config.entrypoint, vec!["/bin/httpd"]);
    assert_eq!(image.config.stop_signal.as_deref(), Some("SIGQUIT"));
    assert!(
        !image.created.is_empty(),
        "no created in the config: the import time"
    );
    assert_eq!(e.store.import(&source).unwrap().id, chex);
    // Stored JSON round-trips (the app manager keeps ids, the store the rest).
    let back = e.store.get(&chex).unwrap();
    assert_eq!(back.config.entrypoint, image.config.entrypoint);
    assert_eq!(back.layer_ids, vec![sha(&layers[0]), sha(&layers[1])]);
    let err = e
        .store
        .import(&format!("docker-archive:{}:other:2", archive.display()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("other:2"), "{err}");
}

#[test]
fn bad_sources_fail_in_one_line_and_leave_nothing() {
    if !root_or_skip() {
        return;
    }
    let e = env();
    let not_tar = e.tmp.path().join("junk.tar");
    fs::write(&not_tar, vec![b'x'; 4096]).unwrap();
    for (source, words) in [
        (format!("oci:{}/none", e.tmp.path().display()), "none"),
        ("docker://busybox".to_string(), "docker"),
        (not_tar.display().to_string(), "not a tar"),
        (format!("oci-archive:{}", not_tar.display()), "junk.tar"),
    ] {
        let err = e.store.import(&source).unwrap_err().to_string();
        assert!(err.contains(words), "{source}: {err}");
        assert!(!err.contains('\n'), "{err}");
    }
    for d in ["layers", "images", "tmp"] {
        assert!(is_empty_dir(&e.paths.store().join(d)), "{d}");
    }
}

/// Files in each of `crash_image`'s layers.
const FILES: usize = 400;

/// Three layers of FILES files each: an import long enough to be killed in.
fn crash_image(dir: &Path) -> Vec<Vec<u8>> {
    let layers: Vec<Vec<u8>> = (0..3)
        .map(|l| {
            let names: Vec<String> = (0..FILES).map(|i| format!("l{l}/f{i:05}")).collect();
            let mut entries = vec![E::Dir(["l0", "l1", "l2"][l])];
            entries.extend(names.iter().map(|n| E::File(n, b"some content")));
            tar_of(&entries)
        })
        .collect();
    oci(dir, &layers, true, None);
    layers
}

/// Run by `import_killed_at_any_point_leaves_a_consistent_store` in a
/// process of its own (this test binary), to be SIGKILLed mid-import.
#[test]
#[ignore]
fn crash_helper_import() {
    let (Some(root), Some(source)) = (
        std::env::var_os("RRUN_STORE_CRASH_ROOT"),
        std::env::var_os("RRUN_STORE_CRASH_SOURCE"),
    ) else {
        return;
    };
    let store = Store::open(&Paths::new(Path::new(&root))).unwrap();
    store.import(&source.to_string_lossy()).unwrap();
}

#[test]
fn import_killed_at_any_point_leaves_a_consistent_store() {
    if !root_or_skip() {
        return;
    }
    let e = env();
    let layout = e.tmp.path().join("img");
    let layers = crash_image(&layout);
    let ids: Vec<String> = layers.iter().map(|l| sha(l)).collect();
    let exe = std::env::current_exe().unwrap();
    let root = e.paths.root.clone();
    let mut killed_mid_way = 0;
    // Kills later and later until an import gets through: each step of it
    // (extracting, syncing, renaming layers, the record) is hit on the way.
    let mut delay_ms = 2;
    let mut completed = false;
    while !completed && delay_ms < 60_000 {
        let mut child = std::process::Command::new(&exe)
            .args([
                "--exact",
                "app::store::tests::crash_helper_import",
                "--ignored",
            ])
            .env("RRUN_STORE_CRASH_ROOT", &root)
            .env("RRUN_STORE_CRASH_SOURCE", src(&layout))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        if !status.success() {
            killed_mid_way += 1;
        }
        // Every layer directory in place is whole.
        for entry in fs::read_dir(e.paths.store().join("layers")).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if let Some(hex) = name.strip_suffix(".json") {
                assert!(ids.iter().any(|i| i == hex), "{name}");
                continue;
            }
            let l = ids
                .iter()
                .position(|i| *i == name)
                .expect("a layer of the image");
            let n = fs::read_dir(
                e.paths
                    .store()
                    .join("layers")
                    .join(&name)
                    .join(format!("l{l}")),
            )
            .unwrap()
            .count();
            assert_eq!(n, FILES, "layer {l} complete after a kill at {delay_ms} ms");
        }
        // An image record names only layers that are there.
        for image in e.store.list().unwrap() {
            assert!(image.layers.iter().all(|l| l.is_dir()));
        }
        // Clean the leftovers, keeping what is whole, and go on.
        let keep: BTreeSet<String> = e.store.list().unwrap().into_iter().map(|i| i.id).collect();
        e.store.prune(&keep).unwrap();
        assert!(is_empty_dir(&e.paths.store().join("tmp")));
        completed = !keep.is_empty();
        delay_ms = delay_ms * 3 / 2;
    }
    assert!(completed, "the import never completed");
    assert!(killed_mid_way > 0, "no import was ever killed mid-way");
    let image = e.store.import(&src(&layout)).unwrap();
    for (l, dir) in image.layers.iter().enumerate() {
        assert_eq!(
            fs::read_dir(dir.join(format!("l{l}"))).unwrap().count(),
            FILES
        );
    }
}

/// Not a test: timings for the report. RRUN_STORE_BENCH=<tarball>.
#[test]
#[ignore]
fn bench_import_and_mount() {
    let Some(src) = std::env::var_os("RRUN_STORE_BENCH") else {
        return;
    };
    let src = src.to_string_lossy().into_owned();
    let e = env();
    let t = std::time::Instant::now();
    let image = e.store.import(&src).unwrap();
    let cold = t.elapsed();
    let t = std::time::Instant::now();
    e.store.import(&src).unwrap();
    let warm = t.elapsed();
    let mut mounts = Vec::new();
    let t = std::time::Instant::now();
    for n in 0..20 {
        let app = e.paths.app(&format!("a{n}"));
        fs::create_dir_all(&app).unwrap();
        let target = app.join("rootfs");
        overlay::mount(
            &image.layers,
            &app.join("upper"),
            &app.join("work"),
            &target,
        )
        .unwrap();
        mounts.push(Mounted(target));
    }
    let mount20 = t.elapsed();
    let upper_bytes: u64 = (0..20)
        .map(|n| snapshot(&e.paths.app(&format!("a{n}")).join("upper")).len() as u64)
        .sum();
    let t = std::time::Instant::now();
    drop(mounts);
    let umount20 = t.elapsed();
    eprintln!(
        "BENCH size={} cold={cold:?} warm={warm:?} mount20={mount20:?} umount20={umount20:?} upper_entries={upper_bytes}",
        image.size
    );
}
