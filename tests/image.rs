//! `rrun unpack`: images built locally (umoci, skopeo; crafted layers
//! written here with the tar crate) unpacked into bundles, compared with
//! `umoci unpack`, attacked with hostile archives, and run.

#[macro_use]
mod common;

use common::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

fn unpack(args: &[&str]) -> Output {
    let mut c = Command::new(rrun_bin());
    c.arg("unpack").args(args);
    run_timeout(c, TIMEOUT)
}

fn tmpdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("rrun-test-image-")
        .tempdir()
        .expect("tempdir")
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// An OCI layout of the busybox test rootfs, built with umoci, whose
/// config runs `sh -c 'echo hello from image'`.
fn umoci_layout(dir: &Path) -> PathBuf {
    let layout = dir.join("layout");
    let bundle = dir.join("umoci-bundle");
    let l = s(&layout);
    let img = format!("{l}:latest");
    sh(&format!(
        "umoci init --layout {l} && umoci new --image {img}"
    ))
    .ok();
    sh(&format!("umoci unpack --image {img} {}", s(&bundle))).ok();
    sh(&format!(
        "cp -a {}/. {}/rootfs/ && rm -f {}/rootfs/.done",
        s(&rootfs()),
        s(&bundle),
        s(&bundle)
    ))
    .ok();
    sh(&format!("umoci repack --image {img} {}", s(&bundle))).ok();
    sh(&format!(
        "umoci config --image {img} --config.cmd sh --config.cmd -c \
         --config.cmd 'echo hello from image' --config.env GREETING=hi \
         --config.label org.example.k=v --config.stopsignal SIGQUIT"
    ))
    .ok();
    fs::remove_dir_all(&bundle).unwrap();
    layout
}

/// One line per file: path, type+mode, owner, size, link target, mtime.
fn listing(root: &Path) -> String {
    let o = sh(&format!(
        "cd {} && find . -printf '%p %M %U %G %s %l %T@\\n' | LC_ALL=C sort",
        s(root)
    ));
    o.ok();
    o.stdout
}

fn assert_same_tree(a: &Path, b: &Path) {
    let (la, lb) = (listing(a), listing(b));
    assert!(!la.is_empty());
    assert_eq!(la, lb, "trees differ: {} vs {}", a.display(), b.display());
    // diff cannot compare device nodes (the shared test rootfs may hold
    // some: a container without a /dev mount gets them in its rootfs); the
    // listing above already compares their type, mode and owner.
    sh(&format!(
        "diff -r --no-dereference --exclude=dev {} {}",
        s(a),
        s(b)
    ))
    .ok();
}

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// A hand-written OCI layout: each layer's bytes (tar, gzip or zstd, as
/// given) become a blob; returns the layout dir.
fn write_layout(dir: &Path, layers: &[(Vec<u8>, &str)], config: Value) -> PathBuf {
    let layout = dir.join("crafted");
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| -> (String, usize) {
        let h = sha256_hex(bytes);
        fs::write(blobs.join(&h), bytes).unwrap();
        (format!("sha256:{h}"), bytes.len())
    };
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for (bytes, media_type) in layers {
        let (digest, size) = put(bytes);
        descs.push(json!({"mediaType": media_type, "digest": digest, "size": size}));
        diff_ids.push(format!("sha256:{}", sha256_hex(bytes)));
    }
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids}
    });
    let (cd, cs) = put(&serde_json::to_vec(&config).unwrap());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": descs
    });
    let (md, ms) = put(&serde_json::to_vec(&manifest).unwrap());
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": md, "size": ms,
            "annotations": {"org.opencontainers.image.ref.name": "latest"}
        }]
    });
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    layout
}

const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const TAR_GZ: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const TAR_ZST: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_500_000_000);
    h
}

/// Sets the raw name bytes (the tar crate refuses `..` and absolute
/// paths, which is exactly what the hostile tests need).
fn raw_name(h: &mut tar::Header, name: &str) {
    let n = &mut h.as_old_mut().name;
    n.fill(0);
    n[..name.len()].copy_from_slice(name.as_bytes());
    h.set_cksum();
}

struct Layer(tar::Builder<Vec<u8>>);

impl Layer {
    fn new() -> Layer {
        Layer(tar::Builder::new(Vec::new()))
    }
    fn entry(
        mut self,
        name: &str,
        kind: tar::EntryType,
        mode: u32,
        data: &[u8],
        link: Option<&str>,
    ) -> Self {
        let mut h = header(kind, mode, data.len() as u64);
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        raw_name(&mut h, name);
        self.0.append(&h, data).unwrap();
        self
    }
    fn file(self, name: &str, data: &[u8]) -> Self {
        self.entry(name, tar::EntryType::Regular, 0o644, data, None)
    }
    fn dir(self, name: &str) -> Self {
        self.entry(name, tar::EntryType::Directory, 0o755, b"", None)
    }
    fn symlink(self, name: &str, target: &str) -> Self {
        self.entry(name, tar::EntryType::Symlink, 0o777, b"", Some(target))
    }
    fn hardlink(self, name: &str, target: &str) -> Self {
        self.entry(name, tar::EntryType::Link, 0o644, b"", Some(target))
    }
    fn done(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn sh_config() -> Value {
    json!({"Cmd": ["sh"]})
}

#[test]
fn unpack_matches_umoci_for_every_transport() {
    require!(
        !is_runc(),
        "`unpack` is rrun's own (runc has no such command)"
    );
    require!(is_root(), "needs root (ownership as in the image)");
    require!(have_cmd("umoci"), "umoci not installed");
    let t = tmpdir();
    let layout = umoci_layout(t.path());
    let reference = t.path().join("umoci-unpacked");
    sh(&format!(
        "umoci unpack --image {}:latest {}",
        s(&layout),
        s(&reference)
    ))
    .ok();

    let mut sources = vec![
        format!("oci:{}:latest", s(&layout)),
        format!("oci:{}", s(&layout)),
    ];
    if have_cmd("skopeo") {
        let x = t.path().join("x.tar");
        let o = t.path().join("o.tar");
        sh(&format!(
            "skopeo copy -q oci:{l}:latest docker-archive:{x}:busybox:test && \
             skopeo copy -q oci:{l}:latest oci-archive:{o}:latest",
            l = s(&layout),
            x = s(&x),
            o = s(&o)
        ))
        .ok();
        sources.push(format!("docker-archive:{}", s(&x)));
        sources.push(format!("docker-archive:{}:busybox:test", s(&x)));
        sources.push(format!("oci-archive:{}", s(&o)));
    } else {
        skip("skopeo not installed: docker-archive and oci-archive not compared");
    }
    for (i, src) in sources.iter().enumerate() {
        let dir = t.path().join(format!("b{i}"));
        unpack(&[src, &s(&dir)]).ok();
        assert_same_tree(&dir.join("rootfs"), &reference.join("rootfs"));
        let c: Value = serde_json::from_slice(&fs::read(dir.join("config.json")).unwrap()).unwrap();
        assert_eq!(
            c["process"]["args"],
            json!(["sh", "-c", "echo hello from image"]),
            "{src}"
        );
        assert_eq!(c["process"]["terminal"], false);
        assert_eq!(c["root"]["path"], "rootfs");
        assert!(
            c["process"]["env"]
                .as_array()
                .unwrap()
                .contains(&json!("GREETING=hi")),
            "{c}"
        );
        let ann = &c["annotations"];
        assert_eq!(ann["org.example.k"], "v");
        assert_eq!(ann["org.opencontainers.image.stopSignal"], "SIGQUIT");
        assert_eq!(ann["rrun.init"], "true");
    }
}

#[test]
fn crafted_layers_whiteouts_links_special_files_and_metadata() {
    require!(
        !is_runc(),
        "`unpack` is rrun's own (runc has no such command)"
    );
    let t = tmpdir();
    let l1 = Layer::new()
        .dir("etc")
        .file("etc/keep", b"keep")
        .file("etc/gone", b"gone")
        .dir("var")
        .file("var/old", b"old")
        .dir("var/sub")
        .file("var/sub/old", b"old")
        .file("bin/prog", b"#!prog")
        .hardlink("bin/prog-link", "bin/prog")
        .symlink("bin/sl", "prog")
        .entry("setuid", tar::EntryType::Regular, 0o4755, b"x", None)
        .entry("fifo", tar::EntryType::Fifo, 0o640, b"", None)
        .done();
    let mut l2 = Layer::new()
        .file("etc/.wh.gone", b"")
        .file("var/.wh..wh..opq", b"")
        .file("var/new", b"new");
    // A device node and an xattr (pax SCHILY.xattr).
    {
        let mut h = header(tar::EntryType::Char, 0o600, 0);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        raw_name(&mut h, "dev-null");
        l2.0.append(&h, &b""[..]).unwrap();
        l2.0.append_pax_extensions([("SCHILY.xattr.user.rrun", &b"yes"[..])])
            .unwrap();
        l2 = l2.file("xattr-file", b"x");
    }
    let l2 = l2.done();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let l3 = Layer::new().file("big", &big).done();
    let l3z = zstd::encode_all(&l3[..], 3).unwrap();
    let layout = write_layout(
        t.path(),
        &[(gzip(&l1), TAR_GZ), (l2, TAR), (l3z, TAR_ZST)],
        sh_config(),
    );
    let dir = t.path().join("bundle");
    unpack(&[&format!("oci:{}", s(&layout)), &s(&dir)]).ok();
    let r = dir.join("rootfs");

    assert_eq!(fs::read(r.join("etc/keep")).unwrap(), b"keep");
    assert!(!r.join("etc/gone").exists(), "whiteout");
    assert!(!r.join("var/old").exists(), "opaque dir");
    assert!(!r.join("var/sub").exists(), "opaque dir (nested)");
    assert_eq!(fs::read(r.join("var/new")).unwrap(), b"new");
    let (a, b) = (
        fs::metadata(r.join("bin/prog")).unwrap(),
        fs::metadata(r.join("bin/prog-link")).unwrap(),
    );
    assert_eq!(a.ino(), b.ino(), "hard link");
    assert_eq!(
        fs::read_link(r.join("bin/sl")).unwrap(),
        PathBuf::from("prog")
    );
    let m = fs::metadata(r.join("setuid")).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o4755);
    assert_eq!(m.mtime(), 1_500_000_000);
    let f = fs::symlink_metadata(r.join("fifo")).unwrap();
    assert!(f.file_type().is_fifo());
    assert_eq!(f.permissions().mode() & 0o7777, 0o640);
    assert_eq!(
        fs::read(r.join("big")).unwrap(),
        big,
        "zstd layer, large file"
    );
    if is_root() {
        let d = fs::symlink_metadata(r.join("dev-null")).unwrap();
        assert!(d.file_type().is_char_device());
        assert_eq!(d.rdev(), nix_makedev(1, 3));
    } else {
        assert!(!r.join("dev-null").exists(), "no device nodes unprivileged");
    }
    match xattr::get(r.join("xattr-file"), "user.rrun") {
        Ok(v) => assert_eq!(v.as_deref(), Some(&b"yes"[..])),
        Err(e) => skip(&format!("user xattrs unsupported here: {e}")),
    }
    let c: Value = serde_json::from_slice(&fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(c["process"]["args"], json!(["sh"]));
}

fn nix_makedev(major: u64, minor: u64) -> u64 {
    ((major & 0xffff_f000) << 32)
        | ((major & 0xfff) << 8)
        | ((minor & 0xffff_ff00) << 12)
        | (minor & 0xff)
}

/// Unpacks a one-layer crafted image; returns (tempdir, bundle dir, output).
fn unpack_layer(layer: Vec<u8>) -> (tempfile::TempDir, PathBuf, Output) {
    let t = tmpdir();
    let layout = write_layout(t.path(), &[(layer, TAR)], sh_config());
    let dir = t.path().join("bundle");
    let o = unpack(&[&format!("oci:{}", s(&layout)), &s(&dir)]);
    (t, dir, o)
}

#[test]
fn hostile_archives_fail_or_stay_inside() {
    require!(
        !is_runc(),
        "`unpack` is rrun's own (runc has no such command)"
    );
    let tag = unique_name();

    // ../x: refused, nothing written beside or above the bundle.
    let (t, dir, o) = unpack_layer(Layer::new().file(&format!("../{tag}"), b"evil").done());
    o.failed()
        .stderr_mentions(&["escapes"])
        .stderr_is_short_error();
    assert!(!dir.exists(), "a failed unpack leaves no bundle");
    assert!(!t.path().join(&tag).exists());

    // Absolute paths are taken from the rootfs.
    let (_t, dir, o) = unpack_layer(Layer::new().file(&format!("/tmp/{tag}"), b"abs").done());
    o.ok();
    assert!(dir.join("rootfs/tmp").join(&tag).exists());
    assert!(!Path::new("/tmp").join(&tag).exists());

    // link -> / then link/etc/x: lands in the rootfs's etc.
    let (_t, dir, o) = unpack_layer(
        Layer::new()
            .symlink("link", "/")
            .file(&format!("link/etc/{tag}"), b"x")
            .symlink("up", "../../../../../..")
            .file(&format!("up/tmp/{tag}-up"), b"x")
            .done(),
    );
    o.ok();
    assert!(dir.join("rootfs/etc").join(&tag).exists());
    assert!(!Path::new("/etc").join(&tag).exists());
    assert!(!Path::new("/tmp").join(format!("{tag}-up")).exists());

    // Hard link to the host's /etc/passwd, directly and through a symlink.
    let passwd = fs::read("/etc/passwd").unwrap();
    for layer in [
        Layer::new().hardlink("pw", "/etc/passwd").done(),
        Layer::new().hardlink("pw", "../../../../etc/passwd").done(),
        Layer::new()
            .symlink("hostetc", "/etc")
            .hardlink("pw", "hostetc/passwd")
            .done(),
    ] {
        let (_t, dir, o) = unpack_layer(layer);
        o.failed()
            .stderr_mentions(&["hard link"])
            .stderr_is_short_error();
        assert!(!dir.exists());
    }
    // A file written over a symlink to a host file replaces the link.
    let (_t, dir, o) = unpack_layer(
        Layer::new()
            .symlink("victim", "/etc/passwd")
            .file("victim", b"evil")
            .done(),
    );
    o.ok();
    assert_eq!(fs::read(dir.join("rootfs/victim")).unwrap(), b"evil");
    assert_eq!(fs::read("/etc/passwd").unwrap(), passwd);
}

#[test]
fn bad_digests_and_bad_input_fail_cleanly() {
    require!(
        !is_runc(),
        "`unpack` is rrun's own (runc has no such command)"
    );
    let t = tmpdir();
    let layer = Layer::new().dir("d").file("d/f", b"payload").done();
    let layout = write_layout(t.path(), &[(layer, TAR)], sh_config());
    let src = format!("oci:{}", s(&layout));

    // Tamper with the layer blob after the fact (same size).
    let blobs = layout.join("blobs/sha256");
    let mut tampered = false;
    for e in fs::read_dir(&blobs).unwrap() {
        let p = e.unwrap().path();
        let mut b = fs::read(&p).unwrap();
        if let Some(i) = b.windows(7).position(|w| w == b"payload") {
            b[i] = b'P';
            fs::write(&p, &b).unwrap();
            tampered = true;
        }
    }
    assert!(tampered);
    let dir = t.path().join("bundle");
    unpack(&[&src, &s(&dir)])
        .failed()
        .stderr_mentions(&["digest mismatch"])
        .stderr_is_short_error();
    assert!(!dir.exists(), "nothing of a bad layer survives");

    // An existing empty DIR is kept (and emptied again) on failure.
    fs::create_dir(&dir).unwrap();
    unpack(&[&src, &s(&dir)]).failed();
    assert!(dir.is_dir());
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);

    // A non-empty DIR is refused and left alone.
    fs::write(dir.join("mine"), b"x").unwrap();
    unpack(&[&src, &s(&dir)])
        .failed()
        .stderr_mentions(&["not an empty directory"]);
    assert!(dir.join("mine").exists());

    // Bad options fail before anything is created.
    let dir2 = t.path().join("b2");
    for args in [
        vec!["--restart-delay", "5x"],
        vec!["--restart", "sometimes"],
        vec!["--health-cmd", "curl"],
        vec!["--entrypoint", "[broken"],
        vec!["--no-init", "--restart", "always"],
    ] {
        let mut a: Vec<&str> = args.clone();
        let d = s(&dir2);
        a.extend([src.as_str(), d.as_str()]);
        unpack(&a).failed().stderr_is_short_error();
        assert!(!dir2.exists(), "{args:?}");
    }
    for bad in [
        "docker://busybox".to_string(),
        format!("oci:{}:nosuchref", s(&layout)),
        format!("oci:{}/nothing", s(t.path())),
        format!("docker-archive:{}", s(&t.path().join("missing.tar"))),
        s(&layout.join("index.json")),
    ] {
        unpack(&[&bad, &s(&dir2)]).failed().stderr_is_short_error();
        assert!(!dir2.exists(), "{bad}");
    }
}

#[test]
fn options_shape_the_config() {
    require!(
        !is_runc(),
        "`unpack` is rrun's own (runc has no such command)"
    );
    let t = tmpdir();
    let tarball = t.path().join("rootfs.tar.gz");
    sh(&format!("tar -C {} -czf {} .", s(&rootfs()), s(&tarball))).ok();
    let dir = t.path().join("bundle");
    unpack(&[
        "--entrypoint",
        r#"["/bin/sh","-c"]"#,
        "--env",
        "A=1",
        "--workdir",
        "/tmp",
        "--user",
        "user:extra",
        "--restart",
        "on-failure:3",
        "--restart-delay",
        "50ms",
        "--restart-limit",
        "5/10s",
        "--stop-timeout",
        "5s",
        "--health-cmd",
        r#"["true"]"#,
        "--health-interval",
        "1s",
        &s(&tarball),
        &s(&dir),
        "echo",
        "--not-a-flag",
    ])
    .ok();
    let c: Value = serde_json::from_slice(&fs::read(dir.join("config.json")).unwrap()).unwrap();
    let p = &c["process"];
    assert_eq!(p["args"], json!(["/bin/sh", "-c", "echo", "--not-a-flag"]));
    assert!(p["env"].as_array().unwrap().contains(&json!("A=1")));
    assert_eq!(p["cwd"], "/tmp");
    assert_eq!(p["user"], json!({"uid": 1000, "gid": 2000}));
    let a = &c["annotations"];
    assert_eq!(a["rrun.restart"], "on-failure:3");
    assert_eq!(a["rrun.restart.delay"], "50ms");
    assert_eq!(a["rrun.restart.limit"], "5/10s");
    assert_eq!(a["rrun.stop-timeout"], "5s");
    assert_eq!(a["rrun.health.cmd"], r#"["true"]"#);
    assert_eq!(a["rrun.health.interval"], "1s");
    assert_eq!(a["rrun.init"], "true");
    assert!(dir.join("rootfs/bin/busybox").exists());

    // A user missing from the image's passwd fails after unpacking and
    // leaves nothing behind.
    let dir2 = t.path().join("b2");
    unpack(&["--user", "nosuchuser", &s(&tarball), &s(&dir2)])
        .failed()
        .stderr_mentions(&["nosuchuser"]);
    assert!(!dir2.exists());

    // --rootless: a user namespace mapping us to root, --no-init: no init.
    let dir3 = t.path().join("b3");
    unpack(&["--rootless", "--no-init", &s(&tarball), &s(&dir3), "sh"]).ok();
    let c: Value = serde_json::from_slice(&fs::read(dir3.join("config.json")).unwrap()).unwrap();
    assert!(
        c["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .contains(&json!({"type": "user"}))
    );
    let uid = fs::metadata("/proc/self").unwrap().uid();
    assert_eq!(c["linux"]["uidMappings"][0]["hostID"], uid);
    assert!(c.get("annotations").is_none(), "{c}");
    let owner = fs::metadata(dir3.join("rootfs/bin/busybox")).unwrap().uid();
    assert_eq!(owner, uid, "files owned by the user mapped to root");
}

#[test]
fn unpacked_docker_archive_runs() {
    require!(
        !is_runc(),
        "`unpack` is rrun's own (runc has no such command)"
    );
    require!(is_root(), "needs root to run containers");
    require!(have_cmd("umoci"), "umoci not installed");
    require!(have_cmd("skopeo"), "skopeo not installed");
    let t = tmpdir();
    let layout = umoci_layout(t.path());
    let x = t.path().join("x.tar");
    sh(&format!(
        "skopeo copy -q oci:{}:latest docker-archive:{}",
        s(&layout),
        s(&x)
    ))
    .ok();
    let dir = t.path().join("bundle");
    set_mode(t.path(), 0o755);
    unpack(&[&format!("docker-archive:{}", s(&x)), &s(&dir)]).ok();

    // Run the generated config through the harness's guard (its config
    // is written into the guard's bundle, pointing at our rootfs).
    let mut config: Value =
        serde_json::from_slice(&fs::read(dir.join("config.json")).unwrap()).unwrap();
    let bundle = Bundle::new();
    config["root"]["path"] = json!(s(&dir.join("rootfs")));
    config["linux"]["cgroupsPath"] = json!(bundle.cgroups_path);
    let bundle = bundle.with(|c| *c = config);
    let c = Container::new(bundle);
    let out = c.run_ok();
    assert!(out.contains("hello from image"), "{out}");
}
