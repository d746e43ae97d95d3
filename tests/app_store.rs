//! `rrun app images` / `rrun app prune` and the image store as apps use it:
//! images with a shared layer stored once, a second app of an image
//! copying nothing, prune removing only what no app uses, and the app's
//! own view of its root naming no host path. (The store's own real-kernel
//! tests — whiteouts, hostile layers, parallel and killed imports, many
//! layers — are unit tests: `cargo test --bin rrun app::store`.)

#[macro_use]
mod common;

use common::app::*;
use common::*;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The store's images as `rrun app images --format json` lists them.
fn list_images(env: &Env) -> Vec<Value> {
    let out = env.app(&["images", "--format", "json"]);
    out.ok();
    serde_json::from_str::<Value>(&out.stdout)
        .expect("images prints JSON")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn layers_dir(env: &Env) -> PathBuf {
    env.root().join("store/layers")
}

/// Root, and a build with the app commands; else a printed skip.
fn requires() -> bool {
    if !is_root() {
        skip("needs root (overlay mounts, containers)");
        return false;
    }
    let mut c = Command::new(rrun_bin());
    c.args(["app", "--help"]);
    if !run_timeout(c, TIMEOUT).success() {
        skip("this build has no `rrun app`");
        return false;
    }
    true
}

fn sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn put_blob(dir: &Path, bytes: &[u8]) -> String {
    let hex = sha(bytes);
    fs::write(dir.join("blobs/sha256").join(&hex), bytes).unwrap();
    hex
}

/// An OCI layout of uncompressed layer tars (bottom first), running
/// `sleep 1000`.
fn oci(dir: &Path, layers: &[Vec<u8>]) -> String {
    fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let mut descs = Vec::new();
    let mut ids = Vec::new();
    for l in layers {
        let hex = put_blob(dir, l);
        ids.push(format!("sha256:{hex}"));
        descs.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": format!("sha256:{hex}"), "size": l.len()}));
    }
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let config = serde_json::json!({"architecture": arch, "os": "linux",
        "config": {"Cmd": ["sleep", "1000"]},
        "rootfs": {"type": "layers", "diff_ids": ids}});
    let cbytes = serde_json::to_vec(&config).unwrap();
    let chex = put_blob(dir, &cbytes);
    let manifest = serde_json::json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": format!("sha256:{chex}"), "size": cbytes.len()},
        "layers": descs});
    let mbytes = serde_json::to_vec(&manifest).unwrap();
    let mhex = put_blob(dir, &mbytes);
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{mhex}"), "size": mbytes.len()}]});
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    format!("oci:{}", dir.display())
}

/// The test busybox rootfs as one layer.
fn base_layer(dir: &Path) -> Vec<u8> {
    let tar = dir.join("base.tar");
    sh(&format!(
        "tar --numeric-owner -C {} -cf {} .",
        rootfs().display(),
        tar.display()
    ))
    .ok();
    fs::read(&tar).unwrap()
}

fn file_layer(name: &str, content: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(content.len() as u64);
    h.set_mtime(1_600_000_000);
    h.set_uid(0);
    h.set_gid(0);
    b.append_data(&mut h, name, content).unwrap();
    b.into_inner().unwrap()
}

/// (path, inode, mtime) of everything under `dir`.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u64, i64, i64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let m = fs::symlink_metadata(e.path()).unwrap();
            out.push((e.path(), m.ino(), m.mtime(), m.mtime_nsec()));
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
        .map(|rd| rd.flatten().filter(|e| e.path().is_dir()).count())
        .unwrap_or(0)
}

#[test]
fn images_share_layers_and_prune_removes_only_the_unused() {
    if !requires() {
        return;
    }
    let env = Env::new();
    let tmp = tempfile::tempdir().unwrap();
    let base = base_layer(tmp.path());
    let a = oci(
        &tmp.path().join("a"),
        &[base.clone(), file_layer("a", b"A")],
    );
    let b = oci(
        &tmp.path().join("b"),
        &[base.clone(), file_layer("b", b"BB")],
    );
    env.app(&["run", "-d", "--network", "none", "--name", "a", &a])
        .ok();
    env.app(&["run", "-d", "--network", "none", "--name", "b", &b])
        .ok();
    // The busybox layer once, plus each image's own.
    assert_eq!(count_dirs(&layers_dir(&env)), 3);

    let images = list_images(&env);
    assert_eq!(images.len(), 2, "{images:?}");
    for i in &images {
        let id = i["id"].as_str().unwrap();
        assert!(id.len() == 64 && id.bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(i["source"].as_str().unwrap().starts_with("oci:"));
        assert_eq!(i["layers"].as_array().unwrap().len(), 2);
        assert!(!i["created"].as_str().unwrap().is_empty());
        let size = i["size"].as_u64().unwrap();
        let shared = i["sharedSize"].as_u64().unwrap();
        assert!(shared > 1_000_000, "the busybox layer is shared: {i}");
        assert!(size > shared && size - shared <= 2, "{i}");
        assert_eq!(i["usedBy"].as_array().unwrap().len(), 1, "{i}");
    }
    let table = env.app(&["images"]);
    table.ok();
    for col in ["ID", "SOURCE", "LAYERS", "SIZE", "SHARED", "CREATED"] {
        assert!(table.stdout.contains(col), "{}", table.stdout);
    }

    // A second app of image a: nothing of the store is written.
    let before = snapshot(&env.root().join("store"));
    env.app(&["run", "-d", "--network", "none", "--name", "a2", &a])
        .ok();
    let after = snapshot(&env.root().join("store"));
    let layers_before: Vec<_> = before
        .iter()
        .filter(|e| e.0.starts_with(layers_dir(&env)))
        .collect();
    let layers_after: Vec<_> = after
        .iter()
        .filter(|e| e.0.starts_with(layers_dir(&env)))
        .collect();
    assert_eq!(
        layers_before, layers_after,
        "no layer file copied or touched"
    );
    assert_eq!(list_images(&env).len(), 2);

    // Everything in use: prune removes nothing.
    let out = env.app(&["prune"]);
    out.ok();
    assert!(out.stdout.contains("0 image(s)"), "{}", out.stdout);
    assert_eq!(count_dirs(&layers_dir(&env)), 3);

    // b gone: its image and its own layer go; the shared layer stays.
    env.app(&["rm", "-f", "b"]).ok();
    let out = env.app(&["prune"]);
    out.ok();
    assert!(
        out.stdout.contains("1 image(s), 1 layer(s)"),
        "{}",
        out.stdout
    );
    assert_eq!(count_dirs(&layers_dir(&env)), 2);
    assert_eq!(list_images(&env).len(), 1);
    // The apps of image a still run on their layers.
    let out = env.app(&["ls", "--format", "json"]);
    let running = serde_json::from_str::<Value>(&out.stdout).unwrap();
    assert_eq!(running.as_array().unwrap().len(), 2, "{running}");

    env.app(&["rm", "-f", "a", "a2"]).ok();
    env.app(&["prune"]).ok();
    assert_eq!(count_dirs(&layers_dir(&env)), 0);
    assert!(list_images(&env).is_empty());
}

#[test]
fn the_apps_mounts_name_no_host_path() {
    if !requires() {
        return;
    }
    let env = Env::new();
    let tmp = tempfile::tempdir().unwrap();
    let img = oci(
        &tmp.path().join("img"),
        &[base_layer(tmp.path()), file_layer("x", b"x")],
    );
    let out = env.app(&[
        "run",
        "--network",
        "none",
        "--name",
        "m",
        &img,
        "cat",
        "/proc/self/mountinfo",
    ]);
    out.ok();
    let root_line = out
        .stdout
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .unwrap_or_else(|| panic!("no / in the app's mountinfo:\n{}", out.stdout));
    assert!(root_line.contains(" - overlay "), "{root_line}");
    // Its root's layers, upper and work dirs: named by fd, no host path.
    // (Files bind-mounted in, such as /etc/hosts, show their source's path
    // in field 4 as every bind mount does: not the store's concern.)
    let root = env.root().display().to_string();
    assert!(
        !root_line.contains(&root) && !root_line.contains("store/layers"),
        "host paths in the app's root mount: {root_line}"
    );
    assert!(root_line.contains("upperdir=/proc/self/fd/"), "{root_line}");
}
