//! Unpacking one OCI layer tar into a folder that overlayfs will use as a lower layer.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fchmodat, futimens, makedev, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, UnlinkatFlags};
use tar::EntryType;

use super::header::{entry_err, invalid, read_meta, Meta};
use super::walk::{self, display, kind, lstat_at, normalize, Root, Stop};
use super::{
    io_err, xattr, LayerError, META_PREFIX, OPAQUE_WHITEOUT, OPAQUE_XATTR, WHITEOUT_PREFIX,
};

/// What [`apply`] unpacked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Tar entries handled (whiteouts included; PAX global headers not).
    pub entries: u64,
    /// Bytes of regular-file data written.
    pub bytes: u64,
}

/// Unpacks one OCI layer (a tar, plain or gzip: told apart by the gzip magic bytes) into
/// `dest`, an empty folder that will be used as an overlayfs lower layer.
///
/// OCI whiteouts become overlayfs ones: `dir/.wh.NAME` a character device 0/0 named
/// `dir/NAME`, `dir/.wh..wh..opq` the xattr `trusted.overlay.opaque=y` on `dir`. Files,
/// folders, symlinks, hard links, devices and fifos keep their mode (setuid bits included),
/// owner and mtime, and their `SCHILY.xattr.*` PAX records (except overlay's own
/// `trusted.overlay.*`, which a layer may not forge). A later entry for a path replaces an
/// earlier one; a folder over a folder merges.
///
/// Refused, with an error naming the entry: a path whose `..` climbs above the root (absolute
/// paths are made relative, as docker does), anything written through a symlink already in the
/// layer, a hard link whose target is outside the layer, behind a symlink or not unpacked yet,
/// and a whiteout of `..`. A symlink itself may point anywhere: it is resolved inside the
/// container when it runs.
///
/// After the tar's end the rest of `reader` is read (and dropped), so a hashing reader sees the
/// whole stream and gzip's trailer is checked.
///
/// On error, `dest` holds whatever was unpacked so far: the caller removes it.
pub fn apply(reader: impl Read, dest: &Path) -> Result<ApplyStats, LayerError> {
    let mut reader = reader;
    let mut magic = [0u8; 2];
    let mut got = 0;
    while got < magic.len() {
        match reader.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(LayerError::Read(e)),
        }
    }
    let stream = (&magic[..got]).chain(reader);
    let root = Root::open(dest).map_err(io_err("opening", dest))?;
    let mut unpacker = Unpacker {
        root,
        dest: dest.to_path_buf(),
        dirs: BTreeMap::new(),
        stats: ApplyStats::default(),
        buf: vec![0; 128 * 1024],
        last_dir: None,
    };
    if got == 2 && magic == [0x1f, 0x8b] {
        unpacker.unpack(flate2::read::MultiGzDecoder::new(stream))?;
    } else {
        unpacker.unpack(stream)?;
    }
    Ok(unpacker.stats)
}

struct Unpacker {
    root: Root,
    dest: PathBuf,
    /// Every folder a header listed, with its mtime: set at the end, since writing into a
    /// folder changes its mtime.
    dirs: BTreeMap<Vec<OsString>, TimeSpec>,
    stats: ApplyStats,
    buf: Vec<u8>,
    /// The folder the last walk reached: a tar lists a folder's entries together, so most
    /// entries reuse it instead of walking again from the root. Dropped by [`Self::clear`]
    /// whenever what it names is removed.
    last_dir: Option<(Vec<OsString>, OwnedFd)>,
}

impl Unpacker {
    fn unpack<R: Read>(&mut self, stream: R) -> Result<(), LayerError> {
        let mut archive = tar::Archive::new(stream);
        for entry in archive.entries().map_err(LayerError::Read)? {
            let mut entry = entry.map_err(LayerError::Read)?;
            self.entry(&mut entry)?;
        }
        io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(LayerError::Read)?;
        for (parts, mtime) in std::mem::take(&mut self.dirs) {
            let name = display(&parts);
            let fd = self.dir(&name, &parts, false)?;
            futimens(&fd, &mtime, &mtime).map_err(self.io("setting the mtime of", &parts))?;
        }
        Ok(())
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), LayerError> {
        let raw_path = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw_path).into_owned();
        let ty = entry.header().entry_type();
        if ty.is_pax_global_extensions() {
            return Ok(());
        }
        self.stats.entries += 1;
        let parts = normalize(&raw_path).ok_or_else(|| LayerError::Escapes {
            entry: name.clone(),
        })?;
        let meta = read_meta(entry, &name)?;
        let Some((last, parent)) = parts.split_last() else {
            // The root itself (`./`): a folder entry gives it its metadata.
            if ty != EntryType::Directory {
                return Err(invalid(&name, "names the layer's root but is not a folder"));
            }
            self.set_meta(self.root.fd(), &meta, &parts)?;
            self.dirs.insert(parts, meta.mtime);
            return Ok(());
        };
        let last_bytes = last.as_bytes();
        if last_bytes == OPAQUE_WHITEOUT.as_bytes() {
            let dir = self.dir(&name, parent, true)?;
            return xattr::fset(dir.as_fd(), OPAQUE_XATTR.as_bytes(), b"y")
                .map_err(io_err("marking opaque", self.path(parent)));
        }
        if last_bytes.starts_with(META_PREFIX.as_bytes()) {
            return Ok(()); // aufs metadata (`.wh..wh.plnk`): docker skips it too
        }
        if let Some(hidden) = last_bytes.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(&name, parent, OsStr::from_bytes(hidden));
        }
        let dir = self.dir(&name, parent, true)?;
        match ty {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.file(entry, &name, &dir, &parts, &meta)
            }
            EntryType::Directory => {
                if !self.clear(&dir, &parts, true)? {
                    mkdirat(&dir, last.as_os_str(), Mode::from_bits_truncate(0o700))
                        .map_err(self.io("creating the folder", &parts))?;
                }
                let fd = self.dir(&name, &parts, false)?;
                self.set_meta(fd.as_fd(), &meta, &parts)?;
                self.dirs.insert(parts, meta.mtime);
                Ok(())
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| invalid(&name, "a symlink without a target"))?
                    .into_owned();
                self.clear(&dir, &parts, false)?;
                symlinkat(OsStr::from_bytes(&target), &dir, last.as_os_str())
                    .map_err(self.io("creating the symlink", &parts))?;
                self.set_meta_at(&dir, &meta, &parts, false)
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| invalid(&name, "a hard link without a target"))?
                    .into_owned();
                self.hard_link(&name, &dir, &parts, &target)
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (kind, dev) = if ty == EntryType::Fifo {
                    (SFlag::S_IFIFO, 0) // device numbers mean nothing here, may be blank
                } else {
                    let header = entry.header();
                    let major = header.device_major().map_err(entry_err(&name))?;
                    let minor = header.device_minor().map_err(entry_err(&name))?;
                    let kind = match ty {
                        EntryType::Char => SFlag::S_IFCHR,
                        _ => SFlag::S_IFBLK,
                    };
                    (
                        kind,
                        makedev(major.unwrap_or(0).into(), minor.unwrap_or(0).into()),
                    )
                };
                self.clear(&dir, &parts, false)?;
                mknodat(
                    &dir,
                    last.as_os_str(),
                    kind,
                    Mode::from_bits_truncate(0o600),
                    dev,
                )
                .map_err(self.io("creating the node", &parts))?;
                self.set_meta_at(&dir, &meta, &parts, true)
            }
            other => Err(invalid(&name, format!("unsupported entry type {other:?}"))),
        }
    }

    /// A regular file: made fresh (`O_EXCL`, never through a symlink), data, then metadata.
    fn file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        name: &str,
        dir: &OwnedFd,
        parts: &[OsString],
        meta: &Meta,
    ) -> Result<(), LayerError> {
        let last = parts.last().expect("a file has a name");
        self.clear(dir, parts, false)?;
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(
            dir,
            last.as_os_str(),
            flags,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(self.io("creating", parts))?;
        let mut file = File::from(fd);
        let mut total = 0u64;
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(entry_err(name)(e)),
            };
            file.write_all(&self.buf[..n])
                .map_err(io_err("writing", self.path(parts)))?;
            total += n as u64;
        }
        let sparse = entry.header().entry_type() == EntryType::GNUSparse;
        if !sparse && total != entry.size() {
            return Err(entry_err(name)(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("truncated: {total} of {} bytes", entry.size()),
            )));
        }
        self.stats.bytes += total;
        self.set_meta(file.as_fd(), meta, parts)?;
        futimens(&file, &meta.mtime, &meta.mtime).map_err(self.io("setting the mtime of", parts))
    }

    /// A hard link: its target must already be in the layer, reached without a symlink.
    fn hard_link(
        &mut self,
        name: &str,
        dir: &OwnedFd,
        parts: &[OsString],
        target: &[u8],
    ) -> Result<(), LayerError> {
        let shown = String::from_utf8_lossy(target).into_owned();
        let tparts = normalize(target).ok_or_else(|| LayerError::LinkEscapes {
            entry: name.to_string(),
            target: shown.clone(),
        })?;
        let Some((tlast, tparent)) = tparts.split_last() else {
            return Err(invalid(name, "a hard link to the layer's root"));
        };
        if tparts == parts {
            return Ok(()); // a link to itself: already there
        }
        if tparts.starts_with(parts) {
            return Err(invalid(
                name,
                format!("a hard link to {shown:?}, inside itself"),
            ));
        }
        let not_unpacked = || {
            invalid(
                name,
                format!("a hard link to {shown:?}, which is not in the layer (yet)"),
            )
        };
        let tdir = match self.root.dir(tparent, false) {
            Ok(fd) => fd,
            Err(Stop::Missing(_)) | Err(Stop::NotDir(_)) => return Err(not_unpacked()),
            Err(stop) => return Err(self.stop(name, stop)),
        };
        match lstat_at(tdir.as_fd(), tlast).map_err(self.io("lstat", &tparts))? {
            None => return Err(not_unpacked()),
            Some(st) if kind(&st) == SFlag::S_IFDIR => {
                return Err(invalid(
                    name,
                    format!("a hard link to the folder {shown:?}"),
                ))
            }
            Some(_) => {}
        }
        self.clear(dir, parts, false)?;
        let last = parts.last().expect("a link has a name");
        linkat(
            &tdir,
            tlast.as_os_str(),
            dir,
            last.as_os_str(),
            AtFlags::empty(),
        )
        .map_err(self.io("creating the hard link", parts))
    }

    /// `dir/.wh.NAME`: a character device 0/0 named `dir/NAME`, replacing whatever was there.
    fn whiteout(
        &mut self,
        name: &str,
        parent: &[OsString],
        hidden: &OsStr,
    ) -> Result<(), LayerError> {
        if matches!(hidden.as_bytes(), b"" | b"." | b"..") {
            return Err(invalid(
                name,
                format!("a whiteout of {:?}", hidden.to_string_lossy()),
            ));
        }
        let dir = self.dir(name, parent, true)?;
        let mut parts = parent.to_vec();
        parts.push(hidden.to_os_string());
        self.clear(&dir, &parts, false)?;
        mknodat(&dir, hidden, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
            .map_err(self.io("creating the whiteout", &parts))
    }

    /// Removes what is at `parts` (in its parent `dir`) so an entry can take its place; with
    /// `keep_dir`, a folder stays (a folder over a folder merges) and `true` says so.
    fn clear(
        &mut self,
        dir: &OwnedFd,
        parts: &[OsString],
        keep_dir: bool,
    ) -> Result<bool, LayerError> {
        let last = parts.last().expect("not the root");
        let Some(st) = lstat_at(dir.as_fd(), last).map_err(self.io("lstat", parts))? else {
            return Ok(false);
        };
        if self
            .last_dir
            .as_ref()
            .is_some_and(|(p, _)| p.starts_with(parts))
        {
            self.last_dir = None;
        }
        if kind(&st) == SFlag::S_IFDIR {
            if keep_dir {
                return Ok(true);
            }
            walk::remove_all_at(dir.as_fd(), last).map_err(self.io("removing", parts))?;
            self.dirs.retain(|k, _| !k.starts_with(parts));
        } else {
            unlinkat(dir, last.as_os_str(), UnlinkatFlags::NoRemoveDir)
                .map_err(self.io("removing", parts))?;
        }
        Ok(false)
    }

    /// Owner, then mode (a chown clears setuid bits), then xattrs, on an open file or folder.
    fn set_meta(
        &self,
        fd: BorrowedFd<'_>,
        meta: &Meta,
        parts: &[OsString],
    ) -> Result<(), LayerError> {
        fchown(fd, Some(meta.uid), Some(meta.gid)).map_err(self.io("chown", parts))?;
        fchmod(fd, meta.mode).map_err(self.io("chmod", parts))?;
        for (key, value) in &meta.xattrs {
            tolerate(xattr::fset(fd, key, value))
                .map_err(io_err("setting an xattr on", self.path(parts)))?;
        }
        Ok(())
    }

    /// The same for a symlink or a node (which cannot be opened safely), by name in `dir`;
    /// `chmod` only for nodes (a symlink's mode means nothing); then the mtime.
    fn set_meta_at(
        &self,
        dir: &OwnedFd,
        meta: &Meta,
        parts: &[OsString],
        chmod: bool,
    ) -> Result<(), LayerError> {
        let last = parts.last().expect("not the root");
        fchownat(
            dir,
            last.as_os_str(),
            Some(meta.uid),
            Some(meta.gid),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(self.io("chown", parts))?;
        if chmod {
            // Just made by mknod in a folder reached without symlinks: not a symlink.
            fchmodat(
                dir,
                last.as_os_str(),
                meta.mode,
                FchmodatFlags::FollowSymlink,
            )
            .map_err(self.io("chmod", parts))?;
        }
        if !meta.xattrs.is_empty() {
            let mut via = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
            via.push(last);
            for (key, value) in &meta.xattrs {
                tolerate(xattr::lset(&via, key, value))
                    .map_err(io_err("setting an xattr on", self.path(parts)))?;
            }
        }
        utimensat(
            dir,
            last.as_os_str(),
            &meta.mtime,
            &meta.mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(self.io("setting the mtime of", parts))
    }

    /// The folder at `parts`, reached without symlinks (made if missing with `create`).
    fn dir(&mut self, name: &str, parts: &[OsString], create: bool) -> Result<OwnedFd, LayerError> {
        if let Some((last, fd)) = &self.last_dir {
            if last == parts {
                return fd
                    .try_clone()
                    .map_err(io_err("duplicating", self.path(parts)));
            }
        }
        let fd = self
            .root
            .dir(parts, create)
            .map_err(|stop| self.stop(name, stop))?;
        let keep = fd
            .try_clone()
            .map_err(io_err("duplicating", self.path(parts)))?;
        self.last_dir = Some((parts.to_vec(), keep));
        Ok(fd)
    }

    fn stop(&self, name: &str, stop: Stop) -> LayerError {
        match stop {
            Stop::Symlink(symlink) => LayerError::ThroughSymlink {
                entry: name.to_string(),
                symlink,
            },
            Stop::NotDir(p) => invalid(name, format!("{p:?} is not a folder")),
            Stop::Missing(p) => invalid(name, format!("{p:?} does not exist")),
            Stop::Io(op, p, source) => LayerError::Io {
                op,
                path: self.dest.join(p),
                source,
            },
        }
    }

    fn path(&self, parts: &[OsString]) -> PathBuf {
        let mut path = self.dest.clone();
        path.extend(parts);
        path
    }

    fn io(&self, op: &'static str, parts: &[OsString]) -> impl FnOnce(Errno) -> LayerError {
        let path = self.path(parts);
        move |e| LayerError::Io {
            op,
            path,
            source: e.into(),
        }
    }
}

/// xattrs a file system cannot hold (`ENOTSUP`) or that we may not set (`EPERM`, a
/// `trusted.*` one without `CAP_SYS_ADMIN`) are dropped, as docker drops them.
fn tolerate(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTSUP) | Some(libc::EPERM)) => Ok(()),
        other => other,
    }
}
