//! Writing an overlayfs upper folder as an OCI layer tar.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use super::{
    io_err, is_overlay_xattr, is_whiteout, xattr, LayerError, OPAQUE_WHITEOUT, OPAQUE_XATTR,
    WHITEOUT_PREFIX,
};

/// What [`diff`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiffStats {
    /// Tar entries written (whiteouts and opaque markers included; GNU long-name and PAX
    /// records not).
    pub entries: u64,
    /// Bytes of regular-file data written.
    pub bytes: u64,
}

/// Writes `upper`, an overlayfs upper folder (not mounted any more), to `out` as an
/// uncompressed OCI layer tar: the caller compresses and hashes.
///
/// Paths are relative, in a fixed order (names sorted bytewise, each folder before its
/// contents; the root itself is not written). An overlay whiteout (a character device 0/0)
/// becomes an empty `.wh.NAME`; a folder with `trusted.overlay.opaque=y` is written followed
/// at once by its `.wh..wh..opq`. Modes, numeric owners, mtimes (whole seconds), symlinks,
/// devices, fifos and hard links within the folder (the second path of an inode becomes a tar
/// hard link to the first) are kept, and xattrs as `SCHILY.xattr.*` PAX records except
/// overlay's own (`trusted.overlay.*`). Nothing else varies: no atime or ctime, no user or
/// group names. Sockets are skipped, as docker skips them.
///
/// An upper folder made with `redirect_dir` or `metacopy` on holds folders and files whose
/// content lives in a lower layer: refused ([`LayerError::OverlayFeature`]).
pub fn diff(upper: &Path, out: impl Write) -> Result<DiffStats, LayerError> {
    diff_shifted(upper, out, IdShift::default())
}

/// Host ids written back as the ids a container saw: for an upper folder written by a
/// container with a user namespace, whose root was host uid `uid` and gid `gid` (a build's
/// RUN step); owners in `uid..uid + 65536` are written less `uid` (and the same for groups).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdShift {
    /// Host uid of the container's root (0: none).
    pub uid: u32,
    /// Host gid of the container's root group (0: none).
    pub gid: u32,
}

impl IdShift {
    /// The shift of an upper folder: its root is owned by the container's root (the monitor
    /// chowns it so; without a user namespace that is 0 and nothing shifts).
    pub fn of_upper(upper: &Path) -> std::io::Result<IdShift> {
        let meta = fs::symlink_metadata(upper)?;
        Ok(IdShift {
            uid: meta.uid(),
            gid: meta.gid(),
        })
    }

    fn apply(base: u32, host: u32) -> u32 {
        match host.checked_sub(base) {
            Some(inside) if base > 0 && inside < crate::runtime::spec::USERNS_SIZE => inside,
            _ => host,
        }
    }
}

/// [`diff`] with the owners shifted back by `shift`.
pub fn diff_shifted(
    upper: &Path,
    out: impl Write,
    shift: IdShift,
) -> Result<DiffStats, LayerError> {
    let mut writer = Writer {
        builder: tar::Builder::new(out),
        links: HashMap::new(),
        stats: DiffStats::default(),
        shift,
    };
    writer.dir(upper, Path::new(""))?;
    let mut out = writer
        .builder
        .into_inner()
        .map_err(io_err("finishing the layer tar of", upper))?;
    out.flush()
        .map_err(io_err("finishing the layer tar of", upper))?;
    Ok(writer.stats)
}

struct Writer<W: Write> {
    builder: tar::Builder<W>,
    /// The first path written for each (device, inode) with more than one link.
    links: HashMap<(u64, u64), PathBuf>,
    stats: DiffStats,
    shift: IdShift,
}

impl<W: Write> Writer<W> {
    fn header(&self, meta: &Metadata, ty: EntryType) -> Header {
        header(meta, ty, self.shift)
    }

    /// Every entry of the folder `abs` (whose path in the tar is `rel`), sorted.
    fn dir(&mut self, abs: &Path, rel: &Path) -> Result<(), LayerError> {
        let mut names = fs::read_dir(abs)
            .and_then(|list| {
                list.map(|entry| entry.map(|e| e.file_name()))
                    .collect::<io::Result<Vec<OsString>>>()
            })
            .map_err(io_err("listing", abs))?;
        names.sort();
        for name in names {
            self.entry(&abs.join(&name), &rel.join(&name))?;
        }
        Ok(())
    }

    fn entry(&mut self, abs: &Path, rel: &Path) -> Result<(), LayerError> {
        let meta = fs::symlink_metadata(abs).map_err(io_err("lstat", abs))?;
        let ft = meta.file_type();
        if is_whiteout(&meta) {
            let mut name = OsString::from(WHITEOUT_PREFIX);
            name.push(rel.file_name().expect("an entry has a name"));
            let mut header = self.header(&meta, EntryType::Regular);
            header.set_mode(0o600);
            return self.append(header, &rel.with_file_name(name), io::empty(), abs);
        }
        if ft.is_socket() {
            return Ok(());
        }
        let (records, opaque) = read_xattrs(abs)?;
        if !records.is_empty() {
            let pairs = records.iter().map(|(k, v)| (k.as_str(), v.as_slice()));
            self.builder
                .append_pax_extensions(pairs)
                .map_err(io_err("writing the layer tar at", abs))?;
        }
        if ft.is_dir() {
            self.append(
                self.header(&meta, EntryType::Directory),
                rel,
                io::empty(),
                abs,
            )?;
            if opaque {
                let mut marker = self.header(&meta, EntryType::Regular);
                marker.set_mode(0o600);
                self.append(marker, &rel.join(OPAQUE_WHITEOUT), io::empty(), abs)?;
            }
            return self.dir(abs, rel);
        }
        if meta.nlink() > 1 {
            if let Some(first) = self.links.get(&(meta.dev(), meta.ino())) {
                let mut h = self.header(&meta, EntryType::Link);
                let first = first.clone();
                self.stats.entries += 1;
                return self
                    .builder
                    .append_link(&mut h, rel, &first)
                    .map_err(io_err("writing the layer tar at", abs));
            }
            self.links
                .insert((meta.dev(), meta.ino()), rel.to_path_buf());
        }
        if ft.is_file() {
            let file = fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(abs)
                .map_err(io_err("opening", abs))?;
            let mut h = self.header(&meta, EntryType::Regular);
            h.set_size(meta.len());
            self.stats.bytes += meta.len();
            let data = Exact {
                file: file.take(meta.len()),
                left: meta.len(),
            };
            self.append(h, rel, data, abs)
        } else if ft.is_symlink() {
            let target = fs::read_link(abs).map_err(io_err("reading the symlink", abs))?;
            let mut h = self.header(&meta, EntryType::Symlink);
            self.stats.entries += 1;
            self.builder
                .append_link(&mut h, rel, &target)
                .map_err(io_err("writing the layer tar at", abs))
        } else {
            let ty = if ft.is_char_device() {
                EntryType::Char
            } else if ft.is_block_device() {
                EntryType::Block
            } else {
                EntryType::Fifo
            };
            // Fifos get 0/0 (written, not left blank, as GNU tar and Go's archive/tar do).
            let mut h = self.header(&meta, ty);
            {
                let rdev = meta.rdev();
                let bad = |_| LayerError::Io {
                    op: "writing the device numbers of",
                    path: abs.to_path_buf(),
                    source: io::ErrorKind::InvalidData.into(),
                };
                h.set_device_major(u32::try_from(nix::sys::stat::major(rdev)).map_err(bad)?)
                    .map_err(io_err("writing the layer tar at", abs))?;
                h.set_device_minor(u32::try_from(nix::sys::stat::minor(rdev)).map_err(bad)?)
                    .map_err(io_err("writing the layer tar at", abs))?;
            }
            self.append(h, rel, io::empty(), abs)
        }
    }

    fn append(
        &mut self,
        mut header: Header,
        rel: &Path,
        data: impl Read,
        abs: &Path,
    ) -> Result<(), LayerError> {
        self.stats.entries += 1;
        self.builder
            .append_data(&mut header, rel, data)
            .map_err(io_err("writing the layer tar at", abs))
    }
}

/// A PAX record: key and value.
type PaxRecord = (String, Vec<u8>);

/// A GNU header (long names and link targets go in GNU records) with only what a layer keeps:
/// type, mode, numeric owner, mtime.
fn header(meta: &Metadata, ty: EntryType, shift: IdShift) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(ty);
    h.set_mode(meta.mode() & 0o7777);
    h.set_uid(IdShift::apply(shift.uid, meta.uid()).into());
    h.set_gid(IdShift::apply(shift.gid, meta.gid()).into());
    h.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
    h.set_size(0);
    h
}

/// The xattrs to write as PAX records (sorted, overlay's own left out), and whether the entry
/// is an opaque folder. Refuses overlay's redirects and metadata-only copies.
fn read_xattrs(path: &Path) -> Result<(Vec<PaxRecord>, bool), LayerError> {
    let mut names = xattr::list(path).map_err(io_err("listing the xattrs of", path))?;
    names.sort();
    let mut records = Vec::new();
    let mut opaque = false;
    for name in names {
        let feature = match name.as_slice() {
            b"trusted.overlay.redirect" | b"user.overlay.redirect" => Some("redirect_dir"),
            b"trusted.overlay.metacopy" | b"user.overlay.metacopy" => Some("metacopy"),
            _ => None,
        };
        if let Some(what) = feature {
            return Err(LayerError::OverlayFeature {
                path: path.to_path_buf(),
                what,
            });
        }
        let Some(value) = xattr::get(path, &name).map_err(io_err("reading the xattrs of", path))?
        else {
            continue; // removed meanwhile
        };
        if name == OPAQUE_XATTR.as_bytes() {
            opaque = value == b"y";
        }
        if is_overlay_xattr(&name) {
            continue;
        }
        let key = String::from_utf8(name).map_err(|_| LayerError::Io {
            op: "reading the xattrs of",
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidData, "an xattr name is not UTF-8"),
        })?;
        records.push((format!("SCHILY.xattr.{key}"), value));
    }
    Ok((records, opaque))
}

/// A file's data, exactly as long as its header says: an error rather than a corrupt tar if
/// it shrank while being read.
struct Exact {
    file: io::Take<File>,
    left: u64,
}

impl Read for Exact {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while being read",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}
