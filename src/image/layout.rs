//! Where an image comes from: the SOURCE argument (skopeo's transport
//! names), the blob stores behind it (an OCI layout directory, an
//! oci-archive or docker-archive tar indexed in place, a plain rootfs
//! tarball), choosing the manifest (ref name, then this machine's
//! platform), and reading the JSON blobs only after their digest matched.
//!
//! Never writes anything; layer bytes are handed out as readers together
//! with what they must hash to, and the caller checks that.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

/// The annotation that names a manifest in an OCI layout's index.json.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// JSON blobs (index, manifest, config) are small; anything bigger is not
/// one, and is not read into memory.
const MAX_JSON: u64 = 16 << 20;

#[derive(Debug, Error)]
pub enum LayoutError {
    #[error(
        "unsupported transport {0:?} (rrun unpack reads oci:, oci-archive:, docker-archive: and rootfs tarballs)"
    )]
    Transport(String),
    #[error("{0:?}: no path given")]
    NoPath(String),
    #[error("{path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{archive}: reading the archive: {source}")]
    Archive {
        archive: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}: not found in the image")]
    Missing(String),
    #[error("{what}: invalid JSON: {msg}")]
    Json { what: String, msg: String },
    #[error("{0}: larger than {MAX_JSON} bytes, not a JSON blob")]
    TooBig(String),
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    Digest {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    Size {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("digest {0:?}: only sha256 digests are supported")]
    DigestAlgorithm(String),
    #[error("no image named {wanted:?} (has: {have})")]
    NoSuchRef { wanted: String, have: String },
    #[error("the layout holds several images ({have}): name one as PATH:REF")]
    Ambiguous { have: String },
    #[error("no manifest for {wanted} (has: {have})")]
    NoPlatform { wanted: String, have: String },
    #[error("{what}: unsupported media type {media_type}")]
    MediaType { what: String, media_type: String },
    #[error("{0}: the image config lists {1} layer diff_ids for {2} layers")]
    DiffIds(String, usize, usize),
}

/// The SOURCE argument, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Oci {
        path: PathBuf,
        reference: Option<String>,
    },
    OciArchive {
        path: PathBuf,
        reference: Option<String>,
    },
    DockerArchive {
        path: PathBuf,
        reference: Option<String>,
    },
    Tarball(PathBuf),
}

/// skopeo transports rrun does not read (a registry needs the network).
const OTHER_TRANSPORTS: &[&str] = &[
    "docker:",
    "docker-daemon:",
    "containers-storage:",
    "dir:",
    "ostree:",
    "sif:",
    "tarball:",
];

/// Parses SOURCE as skopeo does: the transport, then PATH, then an
/// optional `:REF` after the first colon of the rest.
pub fn parse_source(s: &str) -> Result<Source, LayoutError> {
    let split = |rest: &str| -> Result<(PathBuf, Option<String>), LayoutError> {
        let (path, reference) = match rest.split_once(':') {
            Some((p, r)) => (p, Some(r.to_string()).filter(|r| !r.is_empty())),
            None => (rest, None),
        };
        if path.is_empty() {
            return Err(LayoutError::NoPath(s.to_string()));
        }
        Ok((PathBuf::from(path), reference))
    };
    if let Some(rest) = s.strip_prefix("oci:") {
        let (path, reference) = split(rest)?;
        return Ok(Source::Oci { path, reference });
    }
    if let Some(rest) = s.strip_prefix("oci-archive:") {
        let (path, reference) = split(rest)?;
        return Ok(Source::OciArchive { path, reference });
    }
    if let Some(rest) = s.strip_prefix("docker-archive:") {
        let (path, reference) = split(rest)?;
        return Ok(Source::DockerArchive { path, reference });
    }
    if let Some(t) = OTHER_TRANSPORTS.iter().find(|t| s.starts_with(**t)) {
        return Err(LayoutError::Transport(t.trim_end_matches(':').to_string()));
    }
    if s.is_empty() {
        return Err(LayoutError::NoPath(s.to_string()));
    }
    Ok(Source::Tarball(PathBuf::from(s)))
}

/// Where a blob's bytes live.
pub enum Store {
    Dir(PathBuf),
    /// An uncompressed tar read in place: member name → (offset, size).
    Tar {
        file: File,
        path: PathBuf,
        members: HashMap<String, (u64, u64)>,
    },
    /// One file (a plain rootfs tarball).
    Single(PathBuf),
}

/// Reads `len` bytes from `offset` of a shared file (pread: no seek state).
struct Section<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for Section<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end.saturating_sub(self.pos);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// A tar member name as a lookup key: `./a//b` and `a/b` are the same.
fn member_key(name: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for c in name.components() {
        match c {
            Component::Normal(n) => parts.push(n.to_str()?.to_string()),
            Component::ParentDir => {
                parts.pop()?;
            }
            _ => {}
        }
    }
    Some(parts.join("/"))
}

impl Store {
    /// Indexes an uncompressed tar (oci-archive, docker-archive) without
    /// extracting it: blobs are later read in place.
    pub fn open_tar(path: &Path) -> Result<Store, LayoutError> {
        let file = File::open(path).map_err(|source| LayoutError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let err = |source| LayoutError::Archive {
            archive: path.to_path_buf(),
            source,
        };
        let mut members = HashMap::new();
        let mut links = Vec::new();
        let mut archive = tar::Archive::new(&file);
        for entry in archive.entries_with_seek().map_err(err)? {
            let entry = entry.map_err(err)?;
            let name = entry.path().map_err(err)?;
            let Some(key) = member_key(&name) else {
                continue;
            };
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    members.insert(key, (entry.raw_file_position(), entry.size()));
                }
                // Old `docker save` links identical layers to each other.
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    if let Ok(Some(target)) = entry.link_name() {
                        let base = if entry.header().entry_type() == tar::EntryType::Symlink {
                            Path::new(&key)
                                .parent()
                                .unwrap_or(Path::new(""))
                                .join(&target)
                        } else {
                            target.into_owned()
                        };
                        if let Some(t) = member_key(&base) {
                            links.push((key, t));
                        }
                    }
                }
                _ => {}
            }
        }
        // Links to links: a few rounds settle any sane archive.
        for _ in 0..8 {
            for (key, target) in &links {
                if let Some(m) = members.get(target).copied() {
                    members.entry(key.clone()).or_insert(m);
                }
            }
        }
        Ok(Store::Tar {
            file,
            path: path.to_path_buf(),
            members,
        })
    }

    /// Opens a blob by name; returns a reader and its size.
    pub fn open(&self, name: &str) -> Result<(Box<dyn Read + '_>, u64), LayoutError> {
        let open_file = |path: PathBuf| {
            let f = File::open(&path).map_err(|source| {
                if source.kind() == io::ErrorKind::NotFound {
                    LayoutError::Missing(name.to_string())
                } else {
                    LayoutError::Open {
                        path: path.clone(),
                        source,
                    }
                }
            })?;
            let size = f
                .metadata()
                .map_err(|source| LayoutError::Open { path, source })?
                .len();
            Ok((Box::new(f) as Box<dyn Read>, size))
        };
        match self {
            Store::Dir(dir) => open_file(dir.join(name)),
            Store::Single(path) => open_file(path.clone()),
            Store::Tar { file, members, .. } => {
                let (offset, size) = *members
                    .get(name)
                    .ok_or_else(|| LayoutError::Missing(name.to_string()))?;
                let section = Section {
                    file,
                    pos: offset,
                    end: offset + size,
                };
                Ok((Box::new(section), size))
            }
        }
    }

    /// A small file read whole (index.json, manifest.json).
    fn read_json_file(&self, name: &str) -> Result<Vec<u8>, LayoutError> {
        let (mut r, size) = self.open(name)?;
        if size > MAX_JSON {
            return Err(LayoutError::TooBig(name.to_string()));
        }
        let mut buf = Vec::with_capacity(size as usize);
        r.read_to_end(&mut buf).map_err(|e| self.read_error(e))?;
        Ok(buf)
    }

    fn read_error(&self, source: io::Error) -> LayoutError {
        match self {
            Store::Dir(p) | Store::Single(p) | Store::Tar { path: p, .. } => LayoutError::Archive {
                archive: p.clone(),
                source,
            },
        }
    }

    /// A JSON blob read whole and checked against its descriptor before
    /// anyone parses it.
    fn read_verified(&self, what: &str, digest: &str, size: u64) -> Result<Vec<u8>, LayoutError> {
        let hex = sha256_hex_of(digest)?;
        if size > MAX_JSON {
            return Err(LayoutError::TooBig(what.to_string()));
        }
        let buf = self.read_json_file(&blob_name(hex))?;
        check_blob(what, hex, size, &buf)?;
        Ok(buf)
    }
}

/// Checks bytes against a descriptor's size and sha256.
fn check_blob(what: &str, hex: &str, size: u64, buf: &[u8]) -> Result<(), LayoutError> {
    if buf.len() as u64 != size {
        return Err(LayoutError::Size {
            what: what.to_string(),
            expected: size,
            actual: buf.len() as u64,
        });
    }
    let actual = hex_digest(Sha256::digest(buf).as_slice());
    if actual != hex {
        return Err(LayoutError::Digest {
            what: what.to_string(),
            expected: format!("sha256:{hex}"),
            actual: format!("sha256:{actual}"),
        });
    }
    Ok(())
}

pub fn hex_digest(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The hex of a `sha256:<64 hex>` digest; anything else is refused, which
/// also keeps a crafted digest from naming a path outside blobs/.
pub fn sha256_hex_of(digest: &str) -> Result<&str, LayoutError> {
    match digest.strip_prefix("sha256:") {
        Some(h) if h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) => {
            Ok(h)
        }
        _ => Err(LayoutError::DigestAlgorithm(digest.to_string())),
    }
}

fn blob_name(hex: &str) -> String {
    format!("blobs/sha256/{hex}")
}

/// This machine's platform, in the OCI (GOARCH) vocabulary.
pub fn host_platform() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "arm" => "arm",
        other => other,
    };
    ("linux", arch)
}

fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations().as_ref()?.get(REF_NAME).map(String::as_str)
}

fn platform_of(d: &Descriptor) -> Option<(String, String)> {
    d.platform()
        .as_ref()
        .map(|p| (p.os().to_string(), p.architecture().to_string()))
}

fn list<T: AsRef<str>>(items: impl Iterator<Item = T>) -> String {
    let v: Vec<String> = items.map(|s| s.as_ref().to_string()).collect();
    if v.is_empty() {
        "nothing".into()
    } else {
        v.join(", ")
    }
}

/// Chooses a manifest from an index: by ref name (default `latest`; a
/// layout with a single unnamed or only unnamed entries needs none), then
/// by platform among what is left. Entries without a platform fit any.
pub fn select_manifest<'a>(
    manifests: &'a [Descriptor],
    reference: Option<&str>,
    platform: (&str, &str),
) -> Result<&'a Descriptor, LayoutError> {
    let named = |r: &str| -> Vec<&Descriptor> {
        manifests
            .iter()
            .filter(|d| ref_name(d) == Some(r))
            .collect()
    };
    let names = || list(manifests.iter().filter_map(ref_name));
    let candidates = match reference {
        Some(r) => named(r),
        None => {
            let latest = named("latest");
            if !latest.is_empty() {
                latest
            } else if manifests.len() == 1 || manifests.iter().all(|d| ref_name(d).is_none()) {
                manifests.iter().collect()
            } else {
                return Err(LayoutError::Ambiguous { have: names() });
            }
        }
    };
    if candidates.is_empty() {
        return Err(LayoutError::NoSuchRef {
            wanted: reference.unwrap_or("latest").to_string(),
            have: names(),
        });
    }
    pick_platform(&candidates, platform)
}

fn pick_platform<'a>(
    candidates: &[&'a Descriptor],
    (os, arch): (&str, &str),
) -> Result<&'a Descriptor, LayoutError> {
    candidates
        .iter()
        .find(|d| platform_of(d).is_none_or(|(o, a)| o == os && a == arch))
        .copied()
        .ok_or_else(|| LayoutError::NoPlatform {
            wanted: format!("{os}/{arch}"),
            have: list(
                candidates
                    .iter()
                    .filter_map(|d| platform_of(d))
                    .map(|(o, a)| format!("{o}/{a}")),
            ),
        })
}

/// What a layer's bytes must hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The compressed blob: sha256 hex and size (OCI manifests).
    Blob { hex: String, size: u64 },
    /// The uncompressed tar: sha256 hex of the diff_id (docker-archive).
    DiffId(String),
    /// A plain rootfs tarball has nothing to check against.
    Nothing,
}

#[derive(Debug, Clone)]
pub struct Layer {
    /// The name in the store.
    pub name: String,
    /// For messages: the digest, or the member name.
    pub label: String,
    pub check: Check,
}

pub struct Image {
    pub store: Store,
    pub config: Option<ImageConfiguration>,
    pub layers: Vec<Layer>,
    /// The image's identity, sha256 hex: the manifest's digest (OCI), the
    /// config's (docker-archive: docker's image id); None for a tarball.
    pub digest: Option<String>,
    /// Each layer's diff_id hex (the uncompressed tar's sha256), from the
    /// config, bottom first; empty for a tarball.
    pub diff_ids: Vec<String>,
}

fn json<T: for<'de> Deserialize<'de>>(what: &str, bytes: &[u8]) -> Result<T, LayoutError> {
    serde_json::from_slice(bytes).map_err(|e| LayoutError::Json {
        what: what.to_string(),
        msg: e.to_string(),
    })
}

const INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];
const LAYER_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

/// Reads an OCI layout (directory or archive) down to its layers.
fn open_oci(store: Store, reference: Option<&str>) -> Result<Image, LayoutError> {
    // index.json is the root of trust of a layout: nothing names its digest.
    let index: ImageIndex = json("index.json", &store.read_json_file("index.json")?)?;
    let platform = host_platform();
    let mut desc = select_manifest(index.manifests(), reference, platform)?.clone();
    // Nested indexes (a multi-platform image under one name).
    for _ in 0..4 {
        let mt = desc.media_type().to_string();
        if !INDEX_TYPES.contains(&mt.as_str()) {
            break;
        }
        let what = format!("index {}", desc.digest());
        let bytes = store.read_verified(&what, desc.digest().as_ref(), desc.size())?;
        let nested: ImageIndex = json(&what, &bytes)?;
        let all: Vec<&Descriptor> = nested.manifests().iter().collect();
        desc = pick_platform(&all, platform)?.clone();
    }
    let mt = desc.media_type().to_string();
    let what = format!("manifest {}", desc.digest());
    if !MANIFEST_TYPES.contains(&mt.as_str()) {
        return Err(LayoutError::MediaType {
            what,
            media_type: mt,
        });
    }
    let bytes = store.read_verified(&what, desc.digest().as_ref(), desc.size())?;
    let digest = sha256_hex_of(desc.digest().as_ref())?.to_string();
    let manifest: ImageManifest = json(&what, &bytes)?;
    let cdesc = manifest.config();
    let cwhat = format!("config {}", cdesc.digest());
    let cbytes = store.read_verified(&cwhat, cdesc.digest().as_ref(), cdesc.size())?;
    let config: ImageConfiguration = json(&cwhat, &cbytes)?;
    let mut layers = Vec::new();
    for l in manifest.layers() {
        let label = format!("layer {}", l.digest());
        let mt = l.media_type().to_string();
        if !LAYER_TYPES.contains(&mt.as_str()) {
            return Err(LayoutError::MediaType {
                what: label,
                media_type: mt,
            });
        }
        let hex = sha256_hex_of(l.digest().as_ref())?.to_string();
        layers.push(Layer {
            name: blob_name(&hex),
            label,
            check: Check::Blob {
                hex,
                size: l.size(),
            },
        });
    }
    // `rrun unpack` checks layers by their blob digests only; whoever needs
    // the diff_ids (the app store) checks them against the layers.
    let diff_ids = diff_id_hexes(&config).unwrap_or_default();
    Ok(Image {
        store,
        config: Some(config),
        layers,
        digest: Some(digest),
        diff_ids,
    })
}

/// The config's rootfs.diff_ids as sha256 hexes.
fn diff_id_hexes(config: &ImageConfiguration) -> Result<Vec<String>, LayoutError> {
    config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| sha256_hex_of(d).map(str::to_string))
        .collect()
}

/// One image of a docker-archive's manifest.json.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerImage {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Picks the image of a docker-archive: the only one, the one tagged REF,
/// or `@N` (skopeo's index form).
fn select_docker<'a>(
    images: &'a [DockerImage],
    reference: Option<&str>,
) -> Result<&'a DockerImage, LayoutError> {
    let tags = || list(images.iter().flat_map(|i| i.repo_tags.iter().flatten()));
    match reference {
        None if images.len() == 1 => Ok(&images[0]),
        None => Err(LayoutError::Ambiguous { have: tags() }),
        Some(r) => {
            if let Some(n) = r.strip_prefix('@').and_then(|n| n.parse::<usize>().ok()) {
                return images.get(n).ok_or_else(|| LayoutError::NoSuchRef {
                    wanted: r.to_string(),
                    have: format!("{} images", images.len()),
                });
            }
            let want = normalize_docker_ref(r);
            images
                .iter()
                .find(|i| {
                    i.repo_tags
                        .iter()
                        .flatten()
                        .any(|t| normalize_docker_ref(t) == want)
                })
                .ok_or_else(|| LayoutError::NoSuchRef {
                    wanted: r.to_string(),
                    have: tags(),
                })
        }
    }
}

/// A Docker image name in full, as `docker save` and skopeo store it:
/// `busybox` is `docker.io/library/busybox:latest`.
pub fn normalize_docker_ref(r: &str) -> String {
    let (first, _) = r.split_once('/').unwrap_or(("", r));
    let has_domain = first.contains('.') || first.contains(':') || first == "localhost";
    let mut full = match (r.contains('/'), has_domain) {
        (false, _) => format!("docker.io/library/{r}"),
        (true, false) => format!("docker.io/{r}"),
        (true, true) => r.to_string(),
    };
    let last = full.rsplit('/').next().unwrap_or("");
    if !last.contains(':') && !last.contains('@') {
        full.push_str(":latest");
    }
    full
}

fn open_docker(store: Store, reference: Option<&str>) -> Result<Image, LayoutError> {
    let images: Vec<DockerImage> = json("manifest.json", &store.read_json_file("manifest.json")?)?;
    let image = select_docker(&images, reference)?;
    let cwhat = format!("config {}", image.config);
    let cbytes = store.read_json_file(&image.config)?;
    // The config's file is named by its digest (`<hex>.json` in classic
    // `docker save`, `blobs/sha256/<hex>` in newer ones): check it when so.
    let stem = Path::new(&image.config)
        .file_name()
        .and_then(|n| n.to_str())
        .map(|n| n.trim_end_matches(".json"))
        .unwrap_or("");
    if let Ok(hex) = sha256_hex_of(&format!("sha256:{stem}")) {
        check_blob(&cwhat, hex, cbytes.len() as u64, &cbytes)?;
    }
    let digest = hex_digest(Sha256::digest(&cbytes).as_slice());
    let config: ImageConfiguration = json(&cwhat, &cbytes)?;
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != image.layers.len() {
        return Err(LayoutError::DiffIds(
            cwhat,
            diff_ids.len(),
            image.layers.len(),
        ));
    }
    let mut layers = Vec::new();
    for (name, diff_id) in image.layers.iter().zip(diff_ids) {
        let hex = sha256_hex_of(diff_id)?.to_string();
        let name = member_key(Path::new(name)).ok_or_else(|| LayoutError::Missing(name.clone()))?;
        layers.push(Layer {
            label: format!("layer {name}"),
            name,
            check: Check::DiffId(hex),
        });
    }
    let diff_ids = diff_id_hexes(&config)?;
    Ok(Image {
        store,
        config: Some(config),
        layers,
        digest: Some(digest),
        diff_ids,
    })
}

/// Opens SOURCE down to its config and layer list (metadata verified).
pub fn open(source: &Source) -> Result<Image, LayoutError> {
    match source {
        Source::Oci { path, reference } => {
            if !path.is_dir() {
                return Err(LayoutError::Open {
                    path: path.clone(),
                    source: io::Error::new(io::ErrorKind::NotFound, "not an OCI layout directory"),
                });
            }
            open_oci(Store::Dir(path.clone()), reference.as_deref())
        }
        Source::OciArchive { path, reference } => {
            open_oci(Store::open_tar(path)?, reference.as_deref())
        }
        Source::DockerArchive { path, reference } => {
            open_docker(Store::open_tar(path)?, reference.as_deref())
        }
        Source::Tarball(path) => {
            let meta = std::fs::metadata(path).map_err(|source| LayoutError::Open {
                path: path.clone(),
                source,
            })?;
            if !meta.is_file() {
                return Err(LayoutError::Open {
                    path: path.clone(),
                    source: io::Error::new(io::ErrorKind::InvalidInput, "not a tarball (a file)"),
                });
            }
            Ok(Image {
                store: Store::Single(path.clone()),
                config: None,
                layers: vec![Layer {
                    name: String::new(),
                    label: path.display().to_string(),
                    check: Check::Nothing,
                }],
                digest: None,
                diff_ids: Vec::new(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        let p = |s: &str| parse_source(s).unwrap();
        assert_eq!(
            p("oci:/img:v1"),
            Source::Oci {
                path: "/img".into(),
                reference: Some("v1".into())
            }
        );
        assert_eq!(
            p("oci:img"),
            Source::Oci {
                path: "img".into(),
                reference: None
            }
        );
        assert_eq!(
            p("oci-archive:a.tar:latest"),
            Source::OciArchive {
                path: "a.tar".into(),
                reference: Some("latest".into())
            }
        );
        assert_eq!(
            p("docker-archive:x.tar:busybox:1.36"),
            Source::DockerArchive {
                path: "x.tar".into(),
                reference: Some("busybox:1.36".into())
            }
        );
        assert_eq!(p("rootfs.tar.gz"), Source::Tarball("rootfs.tar.gz".into()));
        assert!(matches!(
            parse_source("docker://busybox"),
            Err(LayoutError::Transport(_))
        ));
        assert!(matches!(parse_source("oci:"), Err(LayoutError::NoPath(_))));
        assert!(matches!(parse_source(""), Err(LayoutError::NoPath(_))));
    }

    #[test]
    fn digests() {
        let hex = "a".repeat(64);
        assert_eq!(sha256_hex_of(&format!("sha256:{hex}")).unwrap(), hex);
        for bad in [
            "sha512:aa".to_string(),
            format!("sha256:{}", "A".repeat(64)),
            "sha256:../../etc/passwd".to_string(),
            format!("sha256:{}", "a".repeat(63)),
        ] {
            assert!(sha256_hex_of(&bad).is_err(), "{bad}");
        }
        assert_eq!(
            hex_digest(Sha256::digest(b"").as_slice()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let h = hex_digest(Sha256::digest(b"{}").as_slice());
        assert!(check_blob("x", &h, 2, b"{}").is_ok());
        assert!(matches!(
            check_blob("x", &h, 2, b"[]"),
            Err(LayoutError::Digest { .. })
        ));
        assert!(matches!(
            check_blob("x", &h, 3, b"{}"),
            Err(LayoutError::Size { .. })
        ));
    }

    fn descriptors(v: serde_json::Value) -> Vec<Descriptor> {
        serde_json::from_value(v).unwrap()
    }

    fn d(digit: char, name: Option<&str>, platform: Option<(&str, &str)>) -> serde_json::Value {
        let mut v = serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{}", digit.to_string().repeat(64)),
            "size": 1
        });
        if let Some(n) = name {
            v["annotations"] = serde_json::json!({ REF_NAME: n });
        }
        if let Some((os, arch)) = platform {
            v["platform"] = serde_json::json!({"os": os, "architecture": arch});
        }
        v
    }

    fn pick(ms: &[Descriptor], r: Option<&str>) -> Result<char, LayoutError> {
        select_manifest(ms, r, ("linux", "amd64"))
            .map(|d| d.digest().as_ref().chars().last().unwrap())
    }

    #[test]
    fn manifest_by_name_then_platform() {
        let ms = descriptors(serde_json::json!([
            d('1', Some("v1"), None),
            d('2', Some("latest"), Some(("linux", "arm64"))),
            d('3', Some("latest"), Some(("linux", "amd64"))),
        ]));
        assert_eq!(pick(&ms, None).unwrap(), '3');
        assert_eq!(pick(&ms, Some("latest")).unwrap(), '3');
        assert_eq!(pick(&ms, Some("v1")).unwrap(), '1');
        assert!(matches!(
            pick(&ms, Some("v2")),
            Err(LayoutError::NoSuchRef { .. })
        ));

        let arm_only = descriptors(serde_json::json!([d('2', None, Some(("linux", "arm64")))]));
        let e = pick(&arm_only, None).unwrap_err();
        assert!(e.to_string().contains("linux/arm64"), "{e}");

        // Unnamed multi-platform entries: by platform alone.
        let unnamed = descriptors(serde_json::json!([
            d('4', None, Some(("linux", "arm64"))),
            d('5', None, Some(("linux", "amd64"))),
        ]));
        assert_eq!(pick(&unnamed, None).unwrap(), '5');

        // One image under a name other than latest: used without a name.
        let single = descriptors(serde_json::json!([d('6', Some("1.0"), None)]));
        assert_eq!(pick(&single, None).unwrap(), '6');

        let two = descriptors(serde_json::json!([
            d('7', Some("a"), None),
            d('8', Some("b"), None)
        ]));
        assert!(matches!(
            pick(&two, None),
            Err(LayoutError::Ambiguous { .. })
        ));
    }

    #[test]
    fn docker_archive_images() {
        let images: Vec<DockerImage> = serde_json::from_str(
            r#"[{"Config":"a.json","RepoTags":["busybox:latest"],"Layers":["x/layer.tar"]},
                {"Config":"b.json","RepoTags":null,"Layers":[]}]"#,
        )
        .unwrap();
        assert_eq!(
            select_docker(&images, Some("busybox:latest"))
                .unwrap()
                .config,
            "a.json"
        );
        assert_eq!(select_docker(&images, Some("@1")).unwrap().config, "b.json");
        assert!(select_docker(&images, None).is_err());
        assert!(select_docker(&images, Some("nope")).is_err());
        assert_eq!(select_docker(&images[..1], None).unwrap().config, "a.json");
    }

    #[test]
    fn docker_names() {
        let n = normalize_docker_ref;
        assert_eq!(n("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(n("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(n("me/app"), "docker.io/me/app:latest");
        assert_eq!(n("quay.io/me/app:v1"), "quay.io/me/app:v1");
        assert_eq!(n("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(
            n("docker.io/library/busybox:test"),
            "docker.io/library/busybox:test"
        );
    }

    #[test]
    fn member_keys() {
        assert_eq!(member_key(Path::new("./a//b")).unwrap(), "a/b");
        assert_eq!(member_key(Path::new("a/../b")).unwrap(), "b");
        assert!(member_key(Path::new("../b")).is_none());
    }
}
