//! `rrun unpack`: an image (OCI layout, oci-archive, docker-archive) or a
//! rootfs tarball turned into a bundle directory (rootfs/ + config.json).
//!
//! The order is: validate every option, read and verify the image's
//! metadata, and only then create the bundle; layers are streamed through
//! a sha256 check into `layer::apply_layer`, which never writes outside the
//! rootfs. A failed unpack removes everything it wrote (one guard): a layer
//! whose digest turns out wrong at its end leaves nothing behind.
//!
//! Submodules: `layout` (sources, blobs, manifests), `layer` (applying a
//! tar safely, whiteouts), `config` (image config → config.json),
//! `annotations` (the init's options).

pub mod annotations;
pub mod config;
pub mod layer;
pub mod layout;

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::rootfs::resolve::Root;
use annotations::{AnnotationError, InitOptions};
use config::{ConfigError, ImageConfig, Overrides};
use layer::{ApplyOptions, IdRange, LayerError, Ownership, Stats};
use layout::{Check, LayoutError};

#[derive(Debug, Error)]
pub enum ImageError {
    #[error(transparent)]
    Annotation(#[from] AnnotationError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("{label}: {source}")]
    Layer {
        label: String,
        #[source]
        source: LayerError,
    },
    #[error("{label}: digest mismatch: expected sha256:{expected}, got sha256:{actual}")]
    LayerDigest {
        label: String,
        expected: String,
        actual: String,
    },
    #[error("{label}: size mismatch: expected {expected} bytes, got {actual}")]
    LayerSize {
        label: String,
        expected: u64,
        actual: u64,
    },
    #[error("{label}: not a tar archive (nor gzip or zstd compressed)")]
    NotTar { label: String },
    #[error("{path}: {what}: {source}")]
    Bundle {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{0}: exists and is not an empty directory")]
    NotEmpty(PathBuf),
    #[error("{0} in the image is not a regular file")]
    EtcNotRegular(&'static str),
    #[error("{path}: {source}")]
    Etc {
        path: &'static str,
        #[source]
        source: nix::errno::Errno,
    },
}

/// Everything `rrun unpack` was asked for.
#[derive(Debug, Clone, Default)]
pub struct UnpackOptions {
    pub source: String,
    pub dir: PathBuf,
    pub rootless: bool,
    pub overrides: Overrides,
    pub init: InitOptions,
}

#[derive(Debug, Default)]
pub struct Summary {
    pub layers: usize,
    pub stats: Stats,
}

/// Hashes what passes through and counts it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

impl<R: Read> Hashing<R> {
    fn new(inner: R) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Reads the rest (tar's end blocks, compression trailers, padding), so
    /// the digest covers the whole blob; returns the hex digest and size.
    fn finish(mut self) -> io::Result<(String, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((
            layout::hex_digest(self.hasher.finalize().as_slice()),
            self.count,
        ))
    }
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Compression by magic number: media types lie (docker-archive layers
/// have none, and some tools label gzip layers as plain tar).
fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// 512-byte tar header check ("ustar" magic or a valid old-style checksum)
/// so that a random file fails as "not a tar" rather than somewhere deep.
fn looks_like_tar(head: &[u8]) -> bool {
    if head.is_empty() {
        return true; // an empty layer is an empty tar stream
    }
    if head.len() < 512 {
        return false;
    }
    if &head[257..262] == b"ustar" {
        return true;
    }
    let stored = std::str::from_utf8(&head[148..156])
        .ok()
        .and_then(|s| u32::from_str_radix(s.trim_matches(|c: char| c == '\0' || c == ' '), 8).ok());
    let sum: u32 = head[..512]
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(*b)
            }
        })
        .sum();
    stored == Some(sum) || head[..512].iter().all(|b| *b == 0)
}

/// Removes a half-made bundle on drop unless committed: the whole DIR when
/// rrun created it, else what it put into the empty DIR it was given.
struct BundleGuard {
    dir: PathBuf,
    created: bool,
    committed: bool,
}

impl Drop for BundleGuard {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        let Ok(parent) = Root::open(&self.dir) else {
            return;
        };
        let Ok(parent) = parent.open_in(Path::new("."), OFlag::O_RDONLY | OFlag::O_DIRECTORY)
        else {
            return;
        };
        for name in ["rootfs", "config.json"] {
            let _ = layer::remove_all_at(std::os::fd::AsFd::as_fd(&parent), Path::new(name));
        }
        if self.created {
            let _ = fs::remove_dir(&self.dir);
        }
    }
}

fn bundle_err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> ImageError + 'a {
    move |source| ImageError::Bundle {
        path: path.to_path_buf(),
        what,
        source,
    }
}

/// Creates DIR, or takes an existing empty one.
fn claim_dir(dir: &Path) -> Result<BundleGuard, ImageError> {
    match fs::create_dir(dir) {
        Ok(()) => {
            // Readable by the uids a user namespace maps (as `rrun spec`).
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
                .map_err(bundle_err(dir, "chmod"))?;
            Ok(BundleGuard {
                dir: dir.to_path_buf(),
                created: true,
                committed: false,
            })
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let mut entries =
                fs::read_dir(dir).map_err(|_| ImageError::NotEmpty(dir.to_path_buf()))?;
            if entries.next().is_some() {
                return Err(ImageError::NotEmpty(dir.to_path_buf()));
            }
            Ok(BundleGuard {
                dir: dir.to_path_buf(),
                created: false,
                committed: false,
            })
        }
        Err(e) => Err(bundle_err(dir, "creating the bundle directory")(e)),
    }
}

fn id_ranges(spec: &serde_json::Value, key: &str) -> Vec<IdRange> {
    let field = |m: &serde_json::Value, k: &str| m[k].as_u64().and_then(|v| u32::try_from(v).ok());
    spec["linux"][key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| {
                    Some(IdRange {
                        container: field(m, "containerID")?,
                        host: field(m, "hostID")?,
                        size: field(m, "size")?,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Streams one layer: hash (compressed bytes for OCI, uncompressed for
/// docker-archive diff_ids), decompress, apply, then compare. Returns the
/// uncompressed tar's sha256 hex (its diff_id), for callers that name
/// layers by it.
pub(crate) fn unpack_layer(
    image: &layout::Image,
    l: &layout::Layer,
    root: &Root,
    opts: &ApplyOptions,
    stats: &mut Stats,
) -> Result<String, ImageError> {
    let label = || l.label.clone();
    let (blob, size) = image.store.open(&l.name)?;
    if let Check::Blob { size: want, .. } = &l.check
        && *want != size
    {
        return Err(ImageError::LayerSize {
            label: label(),
            expected: *want,
            actual: size,
        });
    }
    let read_err = |e: io::Error| ImageError::Layer {
        label: label(),
        source: LayerError::Read(e),
    };
    let mut outer = Hashing::new(blob);
    let mut buffered = BufReader::with_capacity(256 * 1024, &mut outer);
    let compression = sniff(buffered.fill_buf().map_err(read_err)?);
    let tar_stream: Box<dyn Read + '_> = match compression {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(buffered).map_err(read_err)?)
        }
    };
    let mut inner = Hashing::new(tar_stream);
    {
        let mut tar_buffered = BufReader::with_capacity(64 * 1024, &mut inner);
        if !looks_like_tar(tar_buffered.fill_buf().map_err(read_err)?) {
            return Err(ImageError::NotTar { label: label() });
        }
        layer::apply_layer(root, &mut tar_buffered, opts, stats).map_err(|source| {
            ImageError::Layer {
                label: label(),
                source,
            }
        })?;
        // Drain the tar stream's tail through the inner hash (end blocks).
        io::copy(&mut tar_buffered, &mut io::sink()).map_err(read_err)?;
    }
    let (inner_hex, _) = inner.finish().map_err(read_err)?;
    let (outer_hex, outer_size) = outer.finish().map_err(read_err)?;
    let (expected, actual) = match &l.check {
        Check::Blob { hex, .. } => (hex, outer_hex),
        Check::DiffId(hex) => (hex, inner_hex.clone()),
        Check::Nothing => return Ok(inner_hex),
    };
    if *expected != actual {
        return Err(ImageError::LayerDigest {
            label: label(),
            expected: expected.clone(),
            actual,
        });
    }
    if let Check::Blob { size: want, .. } = &l.check
        && *want != outer_size
    {
        return Err(ImageError::LayerSize {
            label: label(),
            expected: *want,
            actual: outer_size,
        });
    }
    Ok(inner_hex)
}

/// The most of an /etc file of the image that is read.
const ETC_LIMIT: u64 = 16 << 20;

/// Opens a regular file of the image for reading without ever opening
/// anything else: the name is resolved to an O_PATH handle first (which
/// opens no device and blocks on no FIFO), checked to be a regular file of
/// bounded size, and only that inode is then opened (through this host
/// process's own /proc), non-blocking. A device node planted as
/// etc/passwd is refused before any driver sees an open (ENODATA).
fn open_regular(root: &Root, path: &Path) -> Result<std::os::fd::OwnedFd, nix::errno::Errno> {
    use nix::errno::Errno;
    use nix::sys::stat::{FileStat, SFlag, fstat};
    let regular = |st: &FileStat| {
        SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG
            && u64::try_from(st.st_size).is_ok_and(|n| n <= ETC_LIMIT)
    };
    let handle = root.open_in(path, OFlag::O_PATH)?;
    let st = fstat(&handle)?;
    if !regular(&st) {
        return Err(Errno::ENODATA);
    }
    let fd = nix::fcntl::open(
        &crate::rootfs::resolve::fd_path(&handle),
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    let again = fstat(&fd)?;
    if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino) || !regular(&again) {
        return Err(Errno::ENODATA);
    }
    Ok(fd)
}

/// Reads a file of the rootfs's /etc, resolved inside the rootfs (an
/// `/etc/passwd -> /host/file` symlink resolves to the rootfs's own path).
fn read_etc(root: &Root, path: &'static str) -> Result<Option<String>, ImageError> {
    match open_regular(root, Path::new(path))
        .and_then(|fd| crate::rootfs::resolve::read_regular(fd, ETC_LIMIT))
    {
        Ok(text) => Ok(Some(text)),
        Err(nix::errno::Errno::ENOENT) => Ok(None),
        Err(nix::errno::Errno::ENODATA) => Err(ImageError::EtcNotRegular(path)),
        Err(source) => Err(ImageError::Etc { path, source }),
    }
}

/// Unpacks `o.source` into the bundle `o.dir`.
pub fn unpack(o: &UnpackOptions) -> Result<Summary, ImageError> {
    // 1. Everything that can be checked without the image or the disk.
    let annotations: BTreeMap<String, String> = annotations::init_annotations(&o.init)?;
    config::check_overrides(&o.overrides)?;
    let source = layout::parse_source(&o.source)?;

    // 2. The image's metadata, verified, before anything is created.
    let image = layout::open(&source)?;
    let image_config: ImageConfig = image
        .config
        .as_ref()
        .and_then(|c| c.config().as_ref())
        .map(ImageConfig::from)
        .unwrap_or_default();
    let base = crate::spec::default_spec(o.rootless);
    let mut image_config = image_config;
    if image.config.is_none() {
        // A bare rootfs tarball has no config: its command is the default
        // spec's, as `rrun spec` would write it.
        image_config.cmd = base["process"]["args"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
    }

    config::process_args(&image_config, &o.overrides)?;

    // 3. The bundle, removed again unless everything below succeeds.
    let mut guard = claim_dir(&o.dir)?;
    let rootfs = o.dir.join("rootfs");
    fs::create_dir(&rootfs).map_err(bundle_err(&rootfs, "creating the rootfs"))?;
    fs::set_permissions(&rootfs, fs::Permissions::from_mode(0o755))
        .map_err(bundle_err(&rootfs, "chmod"))?;
    let root =
        Root::open(&rootfs).map_err(|e| bundle_err(&rootfs, "opening the rootfs")(e.into()))?;

    let privileged = nix::unistd::geteuid().is_root();
    let ownership = match (privileged, o.rootless) {
        (false, _) => Ownership::Unchanged,
        (true, false) => Ownership::Preserve,
        (true, true) => Ownership::Map {
            uids: id_ranges(&base, "uidMappings"),
            gids: id_ranges(&base, "gidMappings"),
        },
    };
    let opts = ApplyOptions {
        ownership,
        allow_devices: privileged && !o.rootless,
        unprivileged: !privileged,
        whiteouts: layer::Whiteouts::Apply,
    };
    let mut summary = Summary {
        layers: image.layers.len(),
        ..Default::default()
    };
    for l in &image.layers {
        unpack_layer(&image, l, &root, &opts, &mut summary.stats)?;
    }

    // 4. The user, resolved in the unpacked rootfs.
    let user = match config::user_spec(&image_config, &o.overrides) {
        Some(spec) => {
            let passwd = read_etc(&root, "etc/passwd")?;
            let group = read_etc(&root, "etc/group")?;
            config::resolve_user(spec, passwd.as_deref(), group.as_deref())?
        }
        None => config::ResolvedUser::default(),
    };

    // 5. config.json.
    let spec = config::runtime_config(base, &image_config, &o.overrides, &user, &annotations)?;
    let path = o.dir.join("config.json");
    let text = serde_json::to_string_pretty(&spec).expect("a serde_json::Value always serialises");
    fs::write(&path, text + "\n").map_err(bundle_err(&path, "writing"))?;
    guard.committed = true;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_by_magic() {
        assert_eq!(sniff(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Compression::Zstd);
        assert_eq!(sniff(b"etc/\0\0\0"), Compression::None);
        assert_eq!(sniff(b""), Compression::None);
    }

    #[test]
    fn tar_headers_are_recognised() {
        let mut h = tar::Header::new_gnu();
        h.set_path("a").unwrap();
        h.set_size(0);
        h.set_cksum();
        assert!(looks_like_tar(h.as_bytes()));
        let mut old = tar::Header::new_old();
        old.set_path("a").unwrap();
        old.set_cksum();
        assert!(looks_like_tar(old.as_bytes()));
        assert!(!looks_like_tar(&[b'x'; 512]));
        assert!(!looks_like_tar(b"short"));
        assert!(looks_like_tar(&[0; 1024]));
    }

    #[test]
    fn id_ranges_from_spec() {
        let spec = serde_json::json!({"linux": {"uidMappings": [
            {"containerID": 0, "hostID": 1000, "size": 1}
        ]}});
        assert_eq!(
            id_ranges(&spec, "uidMappings"),
            vec![IdRange {
                container: 0,
                host: 1000,
                size: 1
            }]
        );
        assert!(id_ranges(&spec, "gidMappings").is_empty());
    }
}
