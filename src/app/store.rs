//! The image store: every image the apps run, each layer unpacked once.
//!
//! ```text
//! store/layers/<diff_id hex>/       one layer, in overlayfs's format (a lower layer)
//! store/layers/<diff_id hex>.json   {diffId, size, created}
//! store/images/<id>.json            one image: its layers (by diff_id), config, source
//! store/tmp/                        extractions in progress (renamed into layers/)
//! store/locks/                      flock files: `store` (import shared, prune exclusive),
//!                                   one per layer being extracted
//! ```
//!
//! A layer is named by its diff_id (the sha256 of its uncompressed tar),
//! so a layer shared by two images is stored once, whatever their
//! compression. It is extracted into tmp/ (whiteouts as overlayfs wants
//! them: see `image::layer::Whiteouts::Overlay`), its digest checked
//! against the image's metadata, synced, and only then renamed into
//! layers/: a layer directory that exists is complete and verified. A
//! layer's content is never written again: apps mount it as an overlay
//! lower layer, which the kernel never writes.
//!
//! An image's id is its manifest's digest (OCI layouts and archives), its
//! config's digest (docker-archive: docker's image id), the sha256 of the
//! file (a rootfs tarball), or the sha256 of the tar rrun makes of a
//! rootfs directory (entries in name order). Importing an image whose
//! record exists reads its metadata only: nothing is copied.
//!
//! The store never mounts anything and never decides which images are in
//! use: the app manager says (prune's `in_use`).

// Used by the app commands, which land separately.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, Flock, FlockArg, OFlag};
use nix::sys::stat::{Mode, SFlag, fstat, fstatat};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::paths::Paths;
use crate::image::config::ImageConfig;
use crate::image::layer::{ApplyOptions, Ownership, Stats, Whiteouts};
use crate::image::layout::{self, LayoutError, Source};
use crate::image::{ImageError, unpack_layer};
use crate::rootfs::resolve::Root;

/// The most of a file `read_etc` reads.
const ETC_LIMIT: u64 = 16 << 20;
/// Symlinks followed in one `read_etc` lookup (as the kernel's MAXSYMLINKS).
const MAX_LINKS: usize = 40;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("{path}: {what}: {source}")]
    Io {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{0}: the image has no layers")]
    NoLayers(String),
    #[error("{image}: the image config lists {ids} layer diff_ids for {layers} layers")]
    DiffIds {
        image: String,
        ids: usize,
        layers: usize,
    },
    #[error(
        "{label}: diff_id mismatch: the config says sha256:{expected}, the layer is sha256:{actual}"
    )]
    DiffId {
        label: String,
        expected: String,
        actual: String,
    },
    #[error("no image {0:?} in the store")]
    NoSuchImage(String),
    #[error("image id {prefix:?} is ambiguous: {matches}")]
    Ambiguous { prefix: String, matches: String },
    #[error("{path}: unreadable store record: {msg}")]
    Record { path: PathBuf, msg: String },
    #[error("image {image}: layer {layer} is missing from the store")]
    MissingLayer { image: String, layer: String },
    #[error("{path} in the image is not a regular file")]
    NotRegular { path: String },
    #[error("{path} in the image: {errno}")]
    Etc { path: String, errno: Errno },
}

fn io_err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        what,
        source,
    }
}

fn errno_err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(Errno) -> StoreError + 'a {
    move |e| io_err(path, what)(e.into())
}

/// One image of the store.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    /// sha256 hex (see the module's comment for what is hashed).
    pub id: String,
    /// What the user gave when it was first imported.
    pub source: String,
    /// The layer directories, BOTTOM first (recomputed when loaded).
    pub layers: Vec<PathBuf>,
    /// The layers' diff_ids (sha256 hex), bottom first.
    pub layer_ids: Vec<String>,
    pub config: ImageConfig,
    /// Bytes of the image's layers (regular files' content).
    pub size: u64,
    /// Of `size`, the bytes in layers other images use too (computed by
    /// `get` and `list`).
    #[serde(default)]
    pub shared_size: u64,
    /// The image config's `created`, else the import time (RFC 3339).
    pub created: String,
    /// When it was imported (RFC 3339, UTC).
    pub imported: String,
}

impl Image {
    /// "sha256:<id>".
    pub fn digest(&self) -> String {
        format!("sha256:{}", self.id)
    }
    /// The first 12 hex digits, as `docker images` shows ids.
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }
}

/// What `prune` removed.
#[derive(Serialize, Debug, Default, Clone)]
pub struct PruneReport {
    /// Image ids.
    pub images: Vec<String>,
    /// Layer diff_ids.
    pub layers: Vec<String>,
    /// Bytes of the removed layers.
    pub bytes: u64,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
struct LayerRecord {
    diff_id: String,
    size: u64,
    created: String,
}

pub struct Store {
    root: PathBuf,
}

/// Unique names for temporary files and directories of this process
/// (threads of one process import in parallel in tests).
fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}.{}.{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Store {
    /// The store of an app root; its directories are created if missing.
    pub fn open(paths: &Paths) -> Result<Store, StoreError> {
        let s = Store {
            root: paths.store(),
        };
        for d in [s.layers_dir(), s.images_dir(), s.tmp_dir(), s.locks_dir()] {
            fs::create_dir_all(&d).map_err(io_err(&d, "creating the store directory"))?;
        }
        // Only root may walk into the store: the layers hold the images'
        // set-uid programs and files owned by ids that mean other users on
        // the host (a shadow file of group 42). Apps reach them through
        // their overlay, which checks the lower layers with the mounter's
        // credentials, never through this path.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&s.root, fs::Permissions::from_mode(0o700))
            .map_err(io_err(&s.root, "chmod"))?;
        Ok(s)
    }

    fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }
    fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }
    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }
    fn locks_dir(&self) -> PathBuf {
        self.root.join("locks")
    }
    fn layer_dir(&self, hex: &str) -> PathBuf {
        self.layers_dir().join(hex)
    }
    fn image_record(&self, id: &str) -> PathBuf {
        self.images_dir().join(format!("{id}.json"))
    }

    fn lock(&self, name: &str, arg: FlockArg) -> Result<Flock<File>, StoreError> {
        let path = self.locks_dir().join(name);
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(io_err(&path, "opening the lock"))?;
        Flock::lock(f, arg).map_err(|(_, e)| errno_err(&path, "locking")(e))
    }

    /// Writes a file whole under a temporary name, then renames it.
    fn write_atomic(&self, path: &Path, data: &[u8]) -> Result<(), StoreError> {
        let tmp = self.tmp_dir().join(unique("record"));
        let r = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
            fs::rename(&tmp, path)
        })();
        if r.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        r.map_err(io_err(path, "writing"))
    }

    /// Imports SOURCE (oci:, oci-archive:, docker-archive:, a rootfs
    /// tarball, a rootfs directory, or an OCI layout directory). Safe to run
    /// in parallel with itself (layers are extracted under a lock each)
    /// and with `prune` (which waits for imports in flight).
    pub fn import(&self, source: &str) -> Result<Image, StoreError> {
        let parsed = layout::parse_source(source)?;
        let _shared = self.lock("store", FlockArg::LockShared)?;
        // A plain path naming a directory: an OCI layout if it has the
        // layout's marker file, else a rootfs, tarred into tmp/ first.
        if let Source::Tarball(path) = &parsed
            && path.is_dir()
        {
            if path.join("oci-layout").is_file() {
                let oci = Source::Oci {
                    path: path.clone(),
                    reference: None,
                };
                return self.import_parsed(source, &oci);
            }
            let tar = TempFile(self.tmp_dir().join(unique("rootfs.tar")));
            tar_directory(path, &tar.0)?;
            return self.import_parsed(source, &Source::Tarball(tar.0.clone()));
        }
        self.import_parsed(source, &parsed)
    }

    fn import_parsed(&self, source: &str, parsed: &Source) -> Result<Image, StoreError> {
        let image = layout::open(parsed)?;
        if image.layers.is_empty() {
            return Err(StoreError::NoLayers(source.to_string()));
        }
        let id = match (&image.digest, parsed) {
            (Some(d), _) => d.clone(),
            (None, Source::Tarball(path)) => sha256_file(path)?,
            (None, _) => unreachable!("layout::open gives a digest to every source but a tarball"),
        };
        // Already here: nothing to copy.
        if let Ok(existing) = self.load(&id)
            && existing.layers.iter().all(|l| l.is_dir())
        {
            return self.with_shared_size(existing);
        }
        let known_ids = image.digest.is_some();
        if known_ids && image.diff_ids.len() != image.layers.len() {
            return Err(StoreError::DiffIds {
                image: source.to_string(),
                ids: image.diff_ids.len(),
                layers: image.layers.len(),
            });
        }
        let mut layer_ids = Vec::new();
        let mut size = 0;
        for (i, l) in image.layers.iter().enumerate() {
            let want = image.diff_ids.get(i).map(String::as_str);
            let (hex, bytes) = self.ensure_layer(&image, l, want, &id)?;
            layer_ids.push(hex);
            size += bytes;
        }
        let imported = now();
        let created = image
            .config
            .as_ref()
            .and_then(|c| c.created().clone())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| imported.clone());
        let config = match &image.config {
            Some(c) => c
                .config()
                .as_ref()
                .map(ImageConfig::from)
                .unwrap_or_default(),
            // A bare rootfs has no config: its command comes from the app.
            None => ImageConfig::default(),
        };
        let record = Image {
            id: id.clone(),
            source: source.to_string(),
            layers: Vec::new(),
            layer_ids,
            config,
            size,
            shared_size: 0,
            created,
            imported,
        };
        let text = serde_json::to_vec_pretty(&record).expect("an Image always serialises");
        self.write_atomic(&self.image_record(&id), &text)?;
        let loaded = self.load(&id)?;
        self.with_shared_size(loaded)
    }

    /// Makes sure one layer is in the store; returns its diff_id and size.
    /// `want`: the diff_id the image's config gives (None: a tarball,
    /// named by what it hashes to).
    fn ensure_layer(
        &self,
        image: &layout::Image,
        l: &layout::Layer,
        want: Option<&str>,
        image_id: &str,
    ) -> Result<(String, u64), StoreError> {
        if let Some(hex) = want
            && let Some(size) = self.layer_present(hex)
        {
            return Ok((hex.to_string(), size));
        }
        // One extraction per layer at a time: a parallel import of the
        // same layer waits here, then finds it present.
        let _lock = self.lock(
            &format!("layer-{}", want.unwrap_or(image_id)),
            FlockArg::LockExclusive,
        )?;
        if let Some(hex) = want
            && let Some(size) = self.layer_present(hex)
        {
            return Ok((hex.to_string(), size));
        }
        let tmp = TempDir(self.tmp_dir().join(unique("layer")));
        fs::create_dir(&tmp.0).map_err(io_err(&tmp.0, "creating"))?;
        let root = Root::open(&tmp.0).map_err(errno_err(&tmp.0, "opening"))?;
        let privileged = nix::unistd::geteuid().is_root();
        let opts = ApplyOptions {
            ownership: if privileged {
                Ownership::Preserve
            } else {
                Ownership::Unchanged
            },
            allow_devices: privileged,
            unprivileged: !privileged,
            whiteouts: Whiteouts::Overlay,
        };
        let mut stats = Stats::default();
        let actual = unpack_layer(image, l, &root, &opts, &mut stats)?;
        if let Some(expected) = want
            && expected != actual
        {
            return Err(StoreError::DiffId {
                label: l.label.clone(),
                expected: expected.to_string(),
                actual,
            });
        }
        // Durable before it is published: a layer directory that exists
        // must be whole, also after a power loss.
        let dirfd = nix::fcntl::open(
            &tmp.0,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno_err(&tmp.0, "opening"))?;
        nix::unistd::syncfs(&dirfd).map_err(errno_err(&tmp.0, "syncfs"))?;
        drop(dirfd);
        let dest = self.layer_dir(&actual);
        if let Some(size) = self.layer_present(&actual) {
            // A tarball whose layer another image already brought.
            return Ok((actual, size));
        }
        let record = LayerRecord {
            diff_id: format!("sha256:{actual}"),
            size: stats.bytes,
            created: now(),
        };
        let text = serde_json::to_vec_pretty(&record).expect("a record always serialises");
        self.write_atomic(&self.layers_dir().join(format!("{actual}.json")), &text)?;
        match fs::rename(&tmp.0, &dest) {
            Ok(()) => {}
            // Another importer of the same tarball content won the race.
            Err(e)
                if dest.is_dir()
                    && matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST)) => {}
            Err(e) => return Err(io_err(&dest, "moving the layer into place")(e)),
        }
        Ok((actual, stats.bytes))
    }

    /// The size of a layer that is in the store (None: it is not).
    fn layer_present(&self, hex: &str) -> Option<u64> {
        if !self.layer_dir(hex).is_dir() {
            return None;
        }
        Some(self.layer_size(hex))
    }

    fn layer_size(&self, hex: &str) -> u64 {
        let path = self.layers_dir().join(format!("{hex}.json"));
        fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<LayerRecord>(&b).ok())
            .map(|r| r.size)
            .unwrap_or(0)
    }

    /// Reads an image record by its full id.
    fn load(&self, id: &str) -> Result<Image, StoreError> {
        let path = self.image_record(id);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NoSuchImage(id.to_string()));
            }
            Err(e) => return Err(io_err(&path, "reading")(e)),
        };
        let mut image: Image = serde_json::from_slice(&bytes).map_err(|e| StoreError::Record {
            path: path.clone(),
            msg: e.to_string(),
        })?;
        if image.id != id || !image.layer_ids.iter().all(|l| is_hex64(l)) {
            return Err(StoreError::Record {
                path,
                msg: "id or layer ids malformed".into(),
            });
        }
        image.layers = image.layer_ids.iter().map(|l| self.layer_dir(l)).collect();
        Ok(image)
    }

    fn ids(&self) -> Result<Vec<String>, StoreError> {
        let dir = self.images_dir();
        let mut ids = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err(&dir, "listing"))? {
            let e = e.map_err(io_err(&dir, "listing"))?;
            let name = e.file_name();
            if let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json"))
                && is_hex64(id)
            {
                ids.push(id.to_string());
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// An image by its id (hex, with or without `sha256:`) or a unique
    /// prefix of it.
    pub fn get(&self, id: &str) -> Result<Image, StoreError> {
        let want = id.strip_prefix("sha256:").unwrap_or(id);
        if want.is_empty() || !want.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::NoSuchImage(id.to_string()));
        }
        let want = want.to_ascii_lowercase();
        let matches: Vec<String> = self
            .ids()?
            .into_iter()
            .filter(|i| i.starts_with(&want))
            .collect();
        match matches.as_slice() {
            [] => Err(StoreError::NoSuchImage(id.to_string())),
            [one] => {
                let image = self.load(one)?;
                self.with_shared_size(image)
            }
            many => Err(StoreError::Ambiguous {
                prefix: id.to_string(),
                matches: many.iter().map(|m| &m[..12]).collect::<Vec<_>>().join(", "),
            }),
        }
    }

    /// Every image, the most recently imported first, with `shared_size`.
    pub fn list(&self) -> Result<Vec<Image>, StoreError> {
        let mut images = self
            .ids()?
            .iter()
            .map(|id| self.load(id))
            .collect::<Result<Vec<_>, _>>()?;
        let users = layer_users(&images);
        for image in &mut images {
            image.shared_size = self.shared_size(image, &users);
        }
        images.sort_by(|a, b| b.imported.cmp(&a.imported).then(a.id.cmp(&b.id)));
        Ok(images)
    }

    fn with_shared_size(&self, mut image: Image) -> Result<Image, StoreError> {
        let mut all = Vec::new();
        for id in self.ids()? {
            if let Ok(i) = self.load(&id) {
                all.push(i);
            }
        }
        image.shared_size = self.shared_size(&image, &layer_users(&all));
        Ok(image)
    }

    fn shared_size(&self, image: &Image, users: &BTreeMap<String, usize>) -> u64 {
        let mine: BTreeSet<&String> = image.layer_ids.iter().collect();
        mine.into_iter()
            .filter(|l| users.get(*l).copied().unwrap_or(0) > 1)
            .map(|l| self.layer_size(l))
            .sum()
    }

    /// Removes the images whose ids are not in `in_use`, then the layers no
    /// remaining image uses, then leftovers of interrupted imports. Waits
    /// for imports in flight (and keeps new ones out while it runs).
    pub fn prune(&self, in_use: &BTreeSet<String>) -> Result<PruneReport, StoreError> {
        self.prune_with(|| Ok::<_, StoreError>(in_use.clone()))
    }

    /// `prune`, with the images in use listed by `in_use` while the store
    /// is locked: no import can finish between the listing and the removal
    /// (with `prune`, an app whose image is imported after the caller
    /// listed the images in use loses it). `in_use` must not wait for an
    /// app's lock: `rrun app run` holds its app's lock while it imports.
    pub fn prune_with<E: From<StoreError>>(
        &self,
        in_use: impl FnOnce() -> Result<BTreeSet<String>, E>,
    ) -> Result<PruneReport, E> {
        let _exclusive = self.lock("store", FlockArg::LockExclusive)?;
        let in_use = in_use()?;
        Ok(self.prune_locked(&in_use)?)
    }

    fn prune_locked(&self, in_use: &BTreeSet<String>) -> Result<PruneReport, StoreError> {
        let mut report = PruneReport::default();
        let mut keep_layers = BTreeSet::new();
        for id in self.ids()? {
            let image = match self.load(&id) {
                Ok(i) => i,
                // An unreadable record is not removed behind the user's back.
                Err(_) => continue,
            };
            if in_use.contains(&id) {
                keep_layers.extend(image.layer_ids);
                continue;
            }
            let path = self.image_record(&id);
            fs::remove_file(&path).map_err(io_err(&path, "removing"))?;
            report.images.push(id);
        }
        let layers = self.layers_dir();
        let mut names = Vec::new();
        for e in fs::read_dir(&layers).map_err(io_err(&layers, "listing"))? {
            let e = e.map_err(io_err(&layers, "listing"))?;
            if let Some(n) = e.file_name().to_str() {
                names.push(n.to_string());
            }
        }
        for name in names {
            let hex = name.strip_suffix(".json").unwrap_or(&name);
            if !is_hex64(hex) || keep_layers.contains(hex) || name.ends_with(".json") {
                continue;
            }
            let size = self.layer_size(hex);
            remove_tree(&layers, &name)?;
            let rec = layers.join(format!("{hex}.json"));
            match fs::remove_file(&rec) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&rec, "removing")(e)),
            }
            report.layers.push(hex.to_string());
            report.bytes += size;
        }
        // Records of layers whose directory is gone (an import that died
        // between the two).
        for e in fs::read_dir(&layers).map_err(io_err(&layers, "listing"))? {
            let e = e.map_err(io_err(&layers, "listing"))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(hex) = name.strip_suffix(".json")
                && is_hex64(hex)
                && !layers.join(hex).exists()
            {
                let _ = fs::remove_file(e.path());
            }
        }
        // No import runs (we hold the store lock exclusively): whatever is
        // in tmp/ is left from one that died.
        let tmp = self.tmp_dir();
        for e in fs::read_dir(&tmp).map_err(io_err(&tmp, "listing"))? {
            let e = e.map_err(io_err(&tmp, "listing"))?;
            remove_tree(&tmp, &e.file_name().to_string_lossy())?;
        }
        report.images.sort();
        report.layers.sort();
        Ok(report)
    }

    /// Reads a regular file of the image (e.g. "etc/passwd") as the
    /// container would see it, through the layers top-down, without a
    /// mount: whiteouts and opaque directories hide lower layers, symlinks
    /// are followed inside the image (an absolute target or `..` never
    /// leaves it). None: the image has no such file.
    pub fn read_etc(&self, image: &Image, rel: &str) -> Result<Option<String>, StoreError> {
        let mut layers = Vec::new();
        for l in image.layers.iter().rev() {
            let root = Root::open(l).map_err(|_| StoreError::MissingLayer {
                image: image.id.clone(),
                layer: l.display().to_string(),
            })?;
            layers.push(root);
        }
        let view = Merged { top_first: layers };
        match view.resolve(Path::new(rel)) {
            Ok(None) => Ok(None),
            Ok(Some((layer, path))) => {
                let fd = view.open_regular(layer, &path).map_err(|e| match e {
                    Errno::ENODATA => StoreError::NotRegular {
                        path: rel.to_string(),
                    },
                    errno => StoreError::Etc {
                        path: rel.to_string(),
                        errno,
                    },
                })?;
                crate::rootfs::resolve::read_regular(fd, ETC_LIMIT)
                    .map(Some)
                    .map_err(|e| match e {
                        Errno::ENODATA => StoreError::NotRegular {
                            path: rel.to_string(),
                        },
                        errno => StoreError::Etc {
                            path: rel.to_string(),
                            errno,
                        },
                    })
            }
            Err(errno) => Err(StoreError::Etc {
                path: rel.to_string(),
                errno,
            }),
        }
    }
}

/// How many images use each layer.
fn layer_users(images: &[Image]) -> BTreeMap<String, usize> {
    let mut users = BTreeMap::new();
    for i in images {
        let distinct: BTreeSet<&String> = i.layer_ids.iter().collect();
        for l in distinct {
            *users.entry(l.clone()).or_insert(0) += 1;
        }
    }
    users
}

/// `rm -rf dir/name`, never following a symlink.
fn remove_tree(dir: &Path, name: &str) -> Result<(), StoreError> {
    let fd = nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno_err(dir, "opening"))?;
    crate::image::layer::remove_all_at(fd.as_fd(), Path::new(name))
        .map_err(errno_err(&dir.join(name), "removing"))
}

/// A path removed on drop (a file).
struct TempFile(PathBuf);
impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// A directory removed on drop, if still there (renamed away = kept).
struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        if let (Some(parent), Some(name)) = (self.0.parent(), self.0.file_name()) {
            let _ = remove_tree(parent, &name.to_string_lossy());
        }
    }
}

fn sha256_file(path: &Path) -> Result<String, StoreError> {
    let mut f = File::open(path).map_err(io_err(path, "opening"))?;
    let mut h = Sha256::new();
    let mut buf = vec![0; 256 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(io_err(path, "reading"))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(layout::hex_digest(h.finalize().as_slice()))
}

/// Writes a tar of the rootfs directory `dir` to `out`: entries in name
/// order (the same tree gives the same bytes, hence the same image id),
/// symlinks kept as symlinks, hard links as links, owners, modes and
/// device numbers as they are; sockets (runtime leftovers) skipped.
fn tar_directory(dir: &Path, out: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let file = File::create(out).map_err(io_err(out, "creating"))?;
    let mut b = tar::Builder::new(io::BufWriter::new(file));
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Complete);
    // (dev, ino) of files with several links -> the first name archived.
    let mut links: BTreeMap<(u64, u64), PathBuf> = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let full = dir.join(&rel);
        let mut names: Vec<_> = fs::read_dir(&full)
            .map_err(io_err(&full, "reading the directory"))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(io_err(&full, "reading the directory"))?;
        names.sort();
        // Depth first in name order: push in reverse so the first pops first.
        let mut subdirs = Vec::new();
        for n in &names {
            let r = rel.join(n);
            let p = dir.join(&r);
            let meta = fs::symlink_metadata(&p).map_err(io_err(&p, "stat"))?;
            let ft = meta.file_type();
            let add = |e: io::Error| io_err(&p, "adding to the tar")(e);
            if ft.is_socket() {
                continue;
            }
            if ft.is_file() && meta.nlink() > 1 {
                if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                    let mut h = tar::Header::new_gnu();
                    h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_size(0);
                    b.append_link(&mut h, &r, first).map_err(add)?;
                    continue;
                }
                links.insert((meta.dev(), meta.ino()), r.clone());
            }
            if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
                // By hand: the tar crate names special files by their full
                // host path.
                let mut h = tar::Header::new_gnu();
                h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
                h.set_entry_type(if ft.is_fifo() {
                    tar::EntryType::Fifo
                } else if ft.is_char_device() {
                    tar::EntryType::Char
                } else {
                    tar::EntryType::Block
                });
                h.set_size(0);
                let rdev = meta.rdev();
                h.set_device_major(libc::major(rdev)).map_err(add)?;
                h.set_device_minor(libc::minor(rdev)).map_err(add)?;
                b.append_data(&mut h, &r, io::empty()).map_err(add)?;
                continue;
            }
            b.append_path_with_name(&p, &r).map_err(add)?;
            if meta.is_dir() {
                subdirs.push(r);
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
    b.into_inner()
        .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
        .and_then(|f| f.sync_all())
        .map_err(io_err(out, "writing"))
}

/// The layers of an image seen merged, as overlayfs shows them, for
/// reading a few files without a mount.
struct Merged {
    top_first: Vec<Root>,
}

/// What one layer has at a path.
enum Found {
    /// Nothing there: look lower (unless `opaque` stopped it).
    Absent {
        opaque: bool,
    },
    /// A whiteout or a non-directory on the way: the path does not exist.
    Hidden,
    Entry {
        dir: bool,
        symlink: bool,
    },
}

impl Merged {
    /// Looks `path` (clean, relative, no symlinks in its directories as
    /// merged) up in one layer, component by component, never following a
    /// symlink.
    fn probe(&self, layer: usize, path: &Path) -> Result<Found, Errno> {
        let root = &self.top_first[layer];
        let mut dir = root.open_in(Path::new("."), OFlag::O_PATH | OFlag::O_DIRECTORY)?;
        let mut opaque = false;
        let comps: Vec<_> = path.components().collect();
        for (i, c) in comps.iter().enumerate() {
            let name = c.as_os_str();
            let st = match fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::ENOENT) => return Ok(Found::Absent { opaque }),
                Err(e) => return Err(e),
            };
            let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
            if kind == SFlag::S_IFCHR && st.st_rdev == 0 {
                return Ok(Found::Hidden);
            }
            let last = i + 1 == comps.len();
            if last {
                return Ok(Found::Entry {
                    dir: kind == SFlag::S_IFDIR,
                    symlink: kind == SFlag::S_IFLNK,
                });
            }
            if kind != SFlag::S_IFDIR {
                // The merged view has a directory here (from a higher
                // layer): this layer's non-directory ends the lookup.
                return Ok(Found::Hidden);
            }
            let next = nix::fcntl::openat(
                &dir,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            let f = File::from(next);
            opaque |= xattr::FileExt::get_xattr(&f, "trusted.overlay.opaque")
                .ok()
                .flatten()
                .is_some_and(|v| v == b"y");
            dir = OwnedFd::from(f);
        }
        // The root itself.
        Ok(Found::Entry {
            dir: true,
            symlink: false,
        })
    }

    /// The topmost layer that has `path` (clean, directories symlink-free),
    /// with whether it is a directory or a symlink; None: no such path.
    fn lookup(&self, path: &Path) -> Result<Option<(usize, bool, bool)>, Errno> {
        for i in 0..self.top_first.len() {
            match self.probe(i, path)? {
                Found::Absent { opaque: true } | Found::Hidden => return Ok(None),
                Found::Absent { opaque: false } => continue,
                Found::Entry { dir, symlink } => return Ok(Some((i, dir, symlink))),
            }
        }
        Ok(None)
    }

    /// Resolves `p` in the merged view, following symlinks inside it.
    /// Returns the layer holding the final file and its clean path.
    fn resolve(&self, p: &Path) -> Result<Option<(usize, PathBuf)>, Errno> {
        use std::path::Component;
        let mut todo: Vec<std::ffi::OsString> = p
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .rev()
            .collect();
        let mut cur = PathBuf::new();
        let mut links = 0;
        let mut found = None;
        while let Some(c) = todo.pop() {
            if c == ".." {
                cur.pop();
                found = None;
                continue;
            }
            let cand = cur.join(&c);
            let Some((layer, dir, symlink)) = self.lookup(&cand)? else {
                return Ok(None);
            };
            if symlink {
                links += 1;
                if links > MAX_LINKS {
                    return Err(Errno::ELOOP);
                }
                let parent = self.top_first[layer].resolve(&cur)?;
                let target = nix::fcntl::readlinkat(&parent, c.as_os_str())?;
                let target = PathBuf::from(target);
                if target.is_absolute() {
                    cur = PathBuf::new();
                }
                for t in target.components().rev() {
                    match t {
                        Component::Normal(n) => todo.push(n.to_os_string()),
                        Component::ParentDir => todo.push("..".into()),
                        _ => {}
                    }
                }
                found = None;
                continue;
            }
            if !dir && !todo.is_empty() {
                return Err(Errno::ENOTDIR);
            }
            cur = cand;
            found = Some(layer);
        }
        Ok(found.map(|l| (l, cur)))
    }

    /// Opens a regular file of one layer for reading, refusing anything
    /// else before opening it (a FIFO or device never gets an open).
    fn open_regular(&self, layer: usize, path: &Path) -> Result<OwnedFd, Errno> {
        let root = &self.top_first[layer];
        let (dir, name) = match (path.parent(), path.file_name()) {
            (Some(d), Some(n)) => (root.resolve(d)?, n),
            _ => return Err(Errno::ENODATA),
        };
        let st = fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
        let regular = |mode| SFlag::from_bits_truncate(mode) & SFlag::S_IFMT == SFlag::S_IFREG;
        if !regular(st.st_mode) || st.st_size as u64 > ETC_LIMIT {
            return Err(Errno::ENODATA);
        }
        let fd = nix::fcntl::openat(
            &dir,
            name,
            OFlag::O_RDONLY
                | OFlag::O_NOFOLLOW
                | OFlag::O_NONBLOCK
                | OFlag::O_NOCTTY
                | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let again = fstat(&fd)?;
        if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino) || !regular(again.st_mode) {
            return Err(Errno::ENODATA);
        }
        Ok(fd)
    }
}

#[cfg(test)]
mod tests;
