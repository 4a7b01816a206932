//! The image store: root filesystems at `<data_root>/images/<name>/rootfs`.
//!
//! There is no registry client: the one image, `busybox`, is built locally
//! from Debian's `busybox-static` package (`isolab image init`). Images are
//! built in a temporary directory beside their final place and renamed in,
//! so a half-built image is never visible and concurrent inits are safe.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use isolab_shared::spec::is_valid_image;

/// Where isolab keeps its state unless told otherwise.
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/isolab";
/// The static busybox installed by Debian's `busybox-static` package.
pub const HOST_BUSYBOX: &str = "/bin/busybox";
/// Name of the built-in image.
pub const BUSYBOX_IMAGE: &str = "busybox";

/// Why an image could not be found or built.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// No such image in the store (holds the name asked for).
    #[error(
        "image {0:?} not found (`isolab image ls` lists the images; `isolab image init` makes busybox)"
    )]
    NotFound(String),
    /// The name cannot name an image directory.
    #[error("invalid image name {name:?}")]
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

/// The images under one data root.
#[derive(Debug, Clone)]
pub struct ImageStore {
    data_root: PathBuf,
}

impl ImageStore {
    /// A store under `data_root` (usually [`DEFAULT_DATA_ROOT`]); nothing is created yet.
    pub fn new(data_root: PathBuf) -> Self {
        ImageStore { data_root }
    }

    /// `<data_root>/images`.
    pub fn images_dir(&self) -> PathBuf {
        self.data_root.join("images")
    }

    /// The directory of image `name` (`busybox:latest` is `busybox`).
    fn image_dir(&self, name: &str) -> Result<PathBuf, ImageError> {
        let bare = name.strip_suffix(":latest").unwrap_or(name);
        // No tags other than latest; no hidden components (temporary build dirs).
        if !is_valid_image(bare)
            || bare.contains(':')
            || bare.split('/').any(|c| c.starts_with('.'))
        {
            return Err(ImageError::InvalidName {
                name: name.to_owned(),
            });
        }
        Ok(self.images_dir().join(bare))
    }

    /// The root filesystem of image `name`, which must exist.
    pub fn rootfs(&self, name: &str) -> Result<PathBuf, ImageError> {
        let rootfs = self.image_dir(name)?.join("rootfs");
        if rootfs.is_dir() {
            Ok(rootfs)
        } else {
            Err(ImageError::NotFound(name.to_owned()))
        }
    }

    /// Names of the images present (top level of the store), sorted.
    pub fn list(&self) -> Result<Vec<String>, ImageError> {
        let dir = self.images_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("reading", &dir)(e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err("reading", &dir))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            // Temporary build directories start with '.'.
            if !name.starts_with('.') && entry.path().join("rootfs").is_dir() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Builds the `busybox` image from the host's static busybox ([`HOST_BUSYBOX`]),
    /// or returns its root filesystem if it already exists.
    pub fn init_busybox(&self) -> Result<PathBuf, ImageError> {
        self.init_busybox_from(Path::new(HOST_BUSYBOX))
    }

    /// [`Self::init_busybox`] from a given static busybox binary.
    pub fn init_busybox_from(&self, busybox: &Path) -> Result<PathBuf, ImageError> {
        let target = self.image_dir(BUSYBOX_IMAGE)?;
        if target.join("rootfs").is_dir() {
            return Ok(target.join("rootfs"));
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
        let applets = list_applets(busybox)?;

        let images = self.images_dir();
        fs::create_dir_all(&images).map_err(io_err("creating", &images))?;
        let tmp = TempDir(images.join(temp_name(BUSYBOX_IMAGE)));
        fs::create_dir(&tmp.0).map_err(io_err("creating", &tmp.0))?;
        build_busybox_rootfs(&tmp.0.join("rootfs"), busybox, &applets)?;
        match fs::rename(&tmp.0, &target) {
            Ok(()) => {
                std::mem::forget(tmp);
                Ok(target.join("rootfs"))
            }
            // Someone else finished first: theirs wins, ours is dropped (and removed).
            Err(_) if target.join("rootfs").is_dir() => Ok(target.join("rootfs")),
            Err(e) => Err(io_err("renaming into place", &target)(e)),
        }
    }
}

/// A build directory removed when dropped (unless forgotten after the rename).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// `.<name>.tmp.<pid>.<nanos>.<n>`: unique within and across processes.
fn temp_name(name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(".{name}.tmp.{}.{nanos}.{n}", std::process::id())
}

/// Runs `busybox --list-full` and returns the applet paths (relative, like
/// `usr/bin/env`), refusing anything that could escape the root filesystem.
fn list_applets(busybox: &Path) -> Result<Vec<PathBuf>, ImageError> {
    let fail = |detail: String| ImageError::Applets {
        path: busybox.to_path_buf(),
        detail,
    };
    let out = Command::new(busybox)
        .arg("--list-full")
        .output()
        .map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        return Err(fail(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8(out.stdout).map_err(|_| fail("output is not UTF-8".into()))?;
    let mut applets = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let path = PathBuf::from(line);
        if !path.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(fail(format!("unexpected applet path {line:?}")));
        }
        if path != Path::new("bin/busybox") {
            applets.push(path);
        }
    }
    if applets.is_empty() {
        return Err(fail("no applets listed".into()));
    }
    Ok(applets)
}

/// Creates `dir` with exactly `mode` (whatever the umask).
fn make_dir(dir: &Path, mode: u32) -> Result<(), ImageError> {
    fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
        .map_err(io_err("setting mode of", dir))
}

/// Writes `path` with `text` and mode 0644.
fn write_file(path: &Path, text: &str) -> Result<(), ImageError> {
    fs::write(path, text).map_err(io_err("writing", path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644))
        .map_err(io_err("setting mode of", path))
}

/// Lays out the busybox root filesystem at `rootfs`.
fn build_busybox_rootfs(
    rootfs: &Path,
    busybox: &Path,
    applets: &[PathBuf],
) -> Result<(), ImageError> {
    for (dir, mode) in [
        ("", 0o755),
        ("bin", 0o755),
        ("etc", 0o755),
        ("root", 0o700),
        ("tmp", 0o1777),
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
        ("var", 0o755),
        ("home", 0o755),
    ] {
        make_dir(&rootfs.join(dir), mode)?;
    }
    let bin = rootfs.join("bin/busybox");
    fs::copy(busybox, &bin).map_err(io_err("copying busybox to", &bin))?;
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755))
        .map_err(io_err("setting mode of", &bin))?;

    for applet in applets {
        let link = rootfs.join(applet);
        if let Some(parent) = link.parent() {
            if !parent.is_dir() {
                make_dir(parent, 0o755)?;
            }
        }
        // Relative, so the link is also right when followed from the host.
        let target: PathBuf = if applet.parent() == Some(Path::new("bin")) {
            PathBuf::from("busybox")
        } else {
            let depth = applet.components().count() - 1;
            std::iter::repeat_n(OsStr::new(".."), depth)
                .chain([OsStr::new("bin"), OsStr::new("busybox")])
                .collect()
        };
        match symlink(&target, &link) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            other => other.map_err(io_err("linking applet", &link))?,
        }
    }

    let etc = rootfs.join("etc");
    write_file(
        &etc.join("passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    write_file(
        &etc.join("group"),
        "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n",
    )?;
    write_file(
        &etc.join("hosts"),
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    )?;
    write_file(&etc.join("resolv.conf"), "")
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
