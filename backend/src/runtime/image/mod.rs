//! The image store: content-addressed blobs and unpacked layers shared by every image that
//! uses them, and one record per image name.
//!
//! ```text
//! <data_root>/blobs/sha256/<hex>     layer tars as they came, configs, manifests (OCI layout)
//! <data_root>/layers/<diff_id hex>/  a layer unpacked once, overlayfs whiteouts in place
//! <data_root>/images/<name>/image.json   the record: manifest, config, layers in order
//! ```
//!
//! A container's root is an overlay of its image's layer folders (top first) and its own upper
//! folder. Everything is written beside its final place and renamed in, so a half-made layer or
//! record is never seen, and two imports or builds of the same content agree. Removing an image,
//! collecting unreferenced layers and blobs ([`ImageStore::collect`]) and undoing a failed import
//! hold the store's lock exclusively; imports, builds and exports hold it shared while they add
//! (or read) what a record names, so nothing a running one has made or reused is taken.
//!
//! There is no registry client: `busybox` is built locally from Debian's `busybox-static`
//! (`isolab image init`), and other images are imported from files ([`import`]) or built
//! (`isolab build`).

mod archive;
mod blobs;
pub mod bootstrap;
mod busybox;
pub mod export;
pub mod import;
mod record;
mod users;

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use isolab_shared::spec::is_valid_image;
use nix::fcntl::{Flock, FlockArg};

pub use blobs::{Blobs, Digest, HashingReader, HashingWriter};
pub use record::{HistoryStep, ImageRecord, ImageSettings, LayerRecord};
pub use users::resolve_user;

/// Where isolab keeps its state unless told otherwise.
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/isolab";
/// The static busybox installed by Debian's `busybox-static` package.
pub const HOST_BUSYBOX: &str = "/bin/busybox";
/// Name of the built-in image.
pub const BUSYBOX_IMAGE: &str = "busybox";

/// Why an image could not be found, read or made.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// No such image in the store (holds the name asked for).
    #[error(
        "image {0:?} not found (`isolab image ls` lists the images; `isolab image init` makes busybox)"
    )]
    NotFound(String),
    /// The name cannot name an image.
    #[error("invalid image name {name:?}: use lowercase letters, digits and . _ - / (a tag other than :latest is written name-tag)")]
    InvalidName {
        /// The name asked for.
        name: String,
    },
    /// No busybox binary to build from.
    #[error("{path} not found: run `apt-get install busybox-static`")]
    BusyboxMissing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The busybox binary needs a dynamic loader the image would not have.
    #[error("{path} is dynamically linked; the image needs the static one: run `apt-get install busybox-static`")]
    BusyboxNotStatic {
        /// The binary.
        path: PathBuf,
    },
    /// `busybox --list-full` failed or printed something unexpected.
    #[error("listing busybox applets with `{path} --list-full`: {detail}")]
    Applets {
        /// The binary.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// Input that is not a well-formed image (bad JSON, a missing field, a bad name).
    #[error("{what}")]
    Invalid {
        /// What is wrong, naming the file or field.
        what: String,
    },
    /// Content that does not match its digest, or a blob that is missing.
    #[error("corrupt image: {what}")]
    Corrupt {
        /// Which blob, and what was found.
        what: String,
    },
    /// Something valid this store does not handle (zstd layers, other platforms).
    #[error("unsupported: {what}")]
    Unsupported {
        /// What, and what is supported.
        what: String,
    },
    /// A layer tar was refused (a path escaping the root, a link through a symlink, …).
    #[error("layer {layer}: {message}")]
    Layer {
        /// The layer's digest (short).
        layer: String,
        /// Why.
        message: String,
    },
    /// The image is used by a container and cannot be removed now.
    #[error("image {name:?} is used by container {container}; remove the container first")]
    InUse {
        /// The image.
        name: String,
        /// The container's id.
        container: String,
    },
    /// A filesystem step failed.
    #[error("{step} {path}: {source}")]
    Io {
        /// What was being done.
        step: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// Attaches a step and path to an io error.
fn io_err(step: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ImageError {
    let path = path.to_path_buf();
    move |source| ImageError::Io { step, path, source }
}

/// An image ready to run: its layer folders, bottom first, and its settings.
#[derive(Debug, Clone)]
pub struct Image {
    pub name: String,
    /// Unpacked layer folders, from the base up.
    pub layers: Vec<PathBuf>,
    pub settings: ImageSettings,
    pub record: ImageRecord,
}

/// What [`ImageStore::collect`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Collected {
    pub layers: usize,
    pub blobs: usize,
}

/// The images under one data root.
#[derive(Debug, Clone)]
pub struct ImageStore {
    data_root: PathBuf,
    blobs: Blobs,
}

/// The store's lock, held shared while content is added and exclusively while it is collected.
pub struct StoreLock(#[allow(dead_code)] Flock<File>);

impl ImageStore {
    /// A store under `data_root` (usually [`DEFAULT_DATA_ROOT`]); nothing is created yet.
    pub fn new(data_root: PathBuf) -> Self {
        let blobs = Blobs::new(&data_root);
        ImageStore { data_root, blobs }
    }

    /// `<data_root>/images`.
    pub fn images_dir(&self) -> PathBuf {
        self.data_root.join("images")
    }

    /// `<data_root>/layers`.
    pub fn layers_dir(&self) -> PathBuf {
        self.data_root.join("layers")
    }

    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    /// The folder of an unpacked layer.
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.layers_dir().join(diff_id.hex())
    }

    /// A folder for temporary work (imports, builds) on the store's file system, so renames
    /// into place stay on one device.
    pub fn tmp_dir(&self) -> Result<PathBuf, ImageError> {
        let dir = self.data_root.join("tmp");
        fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
        Ok(dir)
    }

    /// Take the store's lock (waits for a collection to finish, or for adders to finish).
    pub fn lock(&self, exclusive: bool) -> Result<StoreLock, ImageError> {
        fs::create_dir_all(&self.data_root).map_err(io_err("creating", &self.data_root))?;
        let path = self.data_root.join(".store.lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err("opening", &path))?;
        let how = if exclusive {
            FlockArg::LockExclusive
        } else {
            FlockArg::LockShared
        };
        Flock::lock(file, how)
            .map(StoreLock)
            .map_err(|(_, e)| io_err("locking", &path)(e.into()))
    }

    /// The name an image is kept under: `busybox:latest` is `busybox`; `alpine:3.19` is
    /// `alpine-3.19`.
    pub fn normalize_name(name: &str) -> Result<String, ImageError> {
        let (repo, tag) = match name.rsplit_once(':') {
            // A ':' before the last '/' is a registry port, not a tag.
            Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag)),
            _ => (name, None),
        };
        let bare = match tag {
            None | Some("latest") => repo.to_string(),
            Some(tag) => format!("{repo}-{tag}"),
        };
        if !is_valid_image(&bare)
            || bare.contains(':')
            || bare.split('/').any(|c| c.starts_with('.'))
        {
            return Err(ImageError::InvalidName {
                name: name.to_owned(),
            });
        }
        Ok(bare)
    }

    /// The folder of image `name`'s record.
    fn image_dir(&self, name: &str) -> Result<PathBuf, ImageError> {
        Ok(self.images_dir().join(Self::normalize_name(name)?))
    }

    /// The record of image `name`, which must exist.
    pub fn record(&self, name: &str) -> Result<ImageRecord, ImageError> {
        let path = self.image_dir(name)?.join("image.json");
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ImageError::NotFound(name.to_owned()))
            }
            Err(e) => return Err(io_err("reading", &path)(e)),
        };
        serde_json::from_str(&text).map_err(|e| ImageError::Invalid {
            what: format!("{}: {e}", path.display()),
        })
    }

    /// Image `name`, ready to run: every layer must be unpacked.
    pub fn open(&self, name: &str) -> Result<Image, ImageError> {
        let record = self.record(name)?;
        let mut layers = Vec::new();
        for l in &record.layers {
            let dir = self.layer_dir(&Digest::parse(&l.diff_id)?);
            if !dir.is_dir() {
                return Err(ImageError::Corrupt {
                    what: format!("image {name:?}: layer {} is missing", l.diff_id),
                });
            }
            layers.push(dir);
        }
        Ok(Image {
            name: record.name.clone(),
            layers,
            settings: record.settings.clone(),
            record,
        })
    }

    /// Names of the images present, sorted.
    pub fn list(&self) -> Result<Vec<String>, ImageError> {
        let dir = self.images_dir();
        let mut names = Vec::new();
        walk_records(&dir, &dir, &mut names)?;
        names.sort();
        Ok(names)
    }

    /// Write image `name`'s record (replacing an older one of that name).
    pub fn save_record(&self, record: &ImageRecord) -> Result<(), ImageError> {
        let dir = self.image_dir(&record.name)?;
        fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
        let tmp = dir.join(temp_name("image.json"));
        let text = serde_json::to_string_pretty(record).expect("records serialize");
        fs::write(&tmp, text).map_err(io_err("writing", &tmp))?;
        let dest = dir.join("image.json");
        fs::rename(&tmp, &dest).map_err(io_err("renaming into place", &dest))
    }

    /// Remove image `name`'s record (its layers stay until [`Self::collect`]).
    pub fn remove(&self, name: &str) -> Result<(), ImageError> {
        let _lock = self.lock(true)?;
        self.remove_record(name)
    }

    /// Remove image `name` with the layers and blobs that only it used and no live container
    /// uses (`in_use`: their layer folders). Waits for running builds and imports (which hold
    /// the store's lock shared), so a layer one of them is adding is never taken.
    pub fn remove_with_layers(
        &self,
        name: &str,
        in_use: impl FnOnce() -> BTreeSet<PathBuf>,
    ) -> Result<Collected, ImageError> {
        let _lock = self.lock(true)?;
        // Asked under the lock: a container being made holds it shared until its state names
        // its layers.
        let in_use = &in_use();
        let record = self.record(name)?;
        self.remove_record(name)?;
        let (keep_layers, keep_blobs) = self.referenced()?;
        let mut out = Collected::default();
        for l in &record.layers {
            let Ok(diff_id) = Digest::parse(&l.diff_id) else {
                continue;
            };
            let path = self.layer_dir(&diff_id);
            if !keep_layers.contains(&l.diff_id) && !in_use.contains(&path) && path.is_dir() {
                fs::remove_dir_all(&path).map_err(io_err("removing", &path))?;
                out.layers += 1;
            }
        }
        let blobs = record.layers.iter().map(|l| &l.digest);
        for digest in [&record.manifest, &record.config].into_iter().chain(blobs) {
            if keep_blobs.contains(digest) {
                continue;
            }
            if let Ok(d) = Digest::parse(digest) {
                self.blobs.remove(&d)?;
                out.blobs += 1;
            }
        }
        Ok(out)
    }

    /// Remove a record, the store's lock held.
    fn remove_record(&self, name: &str) -> Result<(), ImageError> {
        let dir = self.image_dir(name)?;
        if !dir.join("image.json").is_file() {
            return Err(ImageError::NotFound(name.to_owned()));
        }
        fs::remove_dir_all(&dir).map_err(io_err("removing", &dir))?;
        // An emptied repository folder (`images/library` after `library/x`) goes too.
        let mut parent = dir.parent();
        while let Some(p) = parent.filter(|p| *p != self.images_dir()) {
            if fs::remove_dir(p).is_err() {
                break;
            }
            parent = p.parent();
        }
        Ok(())
    }

    /// The layers (diff ids) and blobs (digests) the store's records name.
    fn referenced(&self) -> Result<(BTreeSet<String>, BTreeSet<String>), ImageError> {
        let mut keep_layers = BTreeSet::new();
        let mut keep_blobs = BTreeSet::new();
        for name in self.list()? {
            let r = self.record(&name)?;
            keep_blobs.insert(r.manifest.clone());
            keep_blobs.insert(r.config.clone());
            for l in &r.layers {
                keep_layers.insert(l.diff_id.clone());
                keep_blobs.insert(l.digest.clone());
            }
        }
        Ok((keep_layers, keep_blobs))
    }

    /// Remove every layer and blob no image names and no container uses (`in_use`: the layer
    /// folders of live containers).
    pub fn collect(
        &self,
        in_use: impl FnOnce() -> BTreeSet<PathBuf>,
    ) -> Result<Collected, ImageError> {
        let _lock = self.lock(true)?;
        // Asked under the lock: a container being made holds it shared until its state names
        // its layers.
        let in_use = &in_use();
        let (keep_layers, keep_blobs) = self.referenced()?;
        let mut out = Collected::default();
        if let Ok(entries) = fs::read_dir(self.layers_dir()) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let path = e.path();
                if keep_layers.contains(&format!("sha256:{name}")) || in_use.contains(&path) {
                    continue;
                }
                fs::remove_dir_all(&path).map_err(io_err("removing", &path))?;
                out.layers += 1;
            }
        }
        for d in self.blobs.list()? {
            if !keep_blobs.contains(&d.to_string()) {
                self.blobs.remove(&d)?;
                out.blobs += 1;
            }
        }
        let tmp = self.data_root.join("tmp");
        if tmp.is_dir() {
            let _ = fs::remove_dir_all(&tmp);
        }
        Ok(out)
    }

    /// Builds the `busybox` image from the host's static busybox ([`HOST_BUSYBOX`]),
    /// unless it exists.
    pub fn init_busybox(&self) -> Result<Image, ImageError> {
        self.init_busybox_from(Path::new(HOST_BUSYBOX))
    }

    /// [`Self::init_busybox`] from a given static busybox binary.
    pub fn init_busybox_from(&self, busybox: &Path) -> Result<Image, ImageError> {
        if let Ok(image) = self.open(BUSYBOX_IMAGE) {
            return Ok(image);
        }
        if !busybox.is_file() {
            return Err(ImageError::BusyboxMissing {
                path: busybox.to_path_buf(),
            });
        }
        if !is_static_elf(busybox).map_err(io_err("reading ELF headers of", busybox))? {
            return Err(ImageError::BusyboxNotStatic {
                path: busybox.to_path_buf(),
            });
        }
        let applets = busybox::list_applets(busybox)?;
        let _lock = self.lock(false)?;
        let tmp = TempDir(self.tmp_dir()?.join(temp_name(BUSYBOX_IMAGE)));
        busybox::build_busybox_rootfs(&tmp.0, busybox, &applets)?;
        let layer = self.add_layer_from_dir(&tmp.0, "busybox-static from the host")?;
        // An image made by an older isolab kept a bare rootfs folder here.
        let legacy = self.images_dir().join(BUSYBOX_IMAGE).join("rootfs");
        if legacy.is_dir() {
            let _ = fs::remove_dir_all(&legacy);
        }
        let settings = ImageSettings {
            env: vec![crate::runtime::spec::DEFAULT_PATH.to_string()],
            cmd: Some(vec!["sh".to_string()]),
            ..ImageSettings::default()
        };
        let record = self.commit(BUSYBOX_IMAGE, &settings, vec![layer], Vec::new())?;
        self.save_record(&record)?;
        self.open(BUSYBOX_IMAGE)
    }
}

/// Image names are paths under `images/` (`library/alpine`): a folder with an `image.json`.
fn walk_records(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), ImageError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("reading", dir)(e)),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if hidden || !path.is_dir() {
            continue;
        }
        if path.join("image.json").is_file() {
            if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_string_lossy().into_owned());
            }
        } else {
            walk_records(root, &path, out)?;
        }
    }
    Ok(())
}

/// A work folder removed when dropped.
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// `.<name>.tmp.<pid>.<nanos>.<n>`: unique within and across processes.
pub fn temp_name(name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(".{name}.tmp.{}.{nanos}.{n}", std::process::id())
}

/// Whether the ELF file at `path` has no `PT_INTERP` program header, i.e.
/// needs no dynamic loader. Errors if it is not an ELF file.
pub fn is_static_elf(path: &Path) -> io::Result<bool> {
    const PT_INTERP: u32 = 3;
    let bad = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not an ELF file ({what})"),
        )
    };
    let mut file = File::open(path)?;
    let mut header = [0u8; 64];
    file.read_exact(&mut header[..52])
        .map_err(|_| bad("too short"))?;
    if header[..4] != *b"\x7fELF" {
        return Err(bad("bad magic"));
    }
    let is64 = match header[4] {
        1 => false,
        2 => true,
        _ => return Err(bad("bad class")),
    };
    let little = match header[5] {
        1 => true,
        2 => false,
        _ => return Err(bad("bad byte order")),
    };
    if is64 {
        file.read_exact(&mut header[52..64])
            .map_err(|_| bad("too short"))?;
    }
    let uint = |bytes: &[u8]| -> u64 {
        let mut buf = [0u8; 8];
        if little {
            buf[..bytes.len()].copy_from_slice(bytes);
            u64::from_le_bytes(buf)
        } else {
            buf[8 - bytes.len()..].copy_from_slice(bytes);
            u64::from_be_bytes(buf)
        }
    };
    let (phoff, phentsize, phnum) = if is64 {
        (
            uint(&header[32..40]),
            uint(&header[54..56]),
            uint(&header[56..58]),
        )
    } else {
        (
            uint(&header[28..32]),
            uint(&header[42..44]),
            uint(&header[44..46]),
        )
    };
    if phentsize < 4 || phnum > 0xffff {
        return Err(bad("bad program header size"));
    }
    file.seek(SeekFrom::Start(phoff))?;
    let mut entry = vec![0u8; phentsize as usize];
    for _ in 0..phnum {
        file.read_exact(&mut entry)
            .map_err(|_| bad("truncated program headers"))?;
        if uint(&entry[..4]) == u64::from(PT_INTERP) {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests;
