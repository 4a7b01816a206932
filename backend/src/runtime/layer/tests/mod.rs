//! Tests for the layer codec. They make devices, chown, set `trusted.*` xattrs and mount
//! overlays, so they need root (and skip, saying so, without it). Everything lives in temp dirs
//! under /tmp; mounts are guards that unmount on drop, so a failing test leaves nothing behind.

mod apply;
mod changes;
mod diff;
mod overlay;
mod security;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use tar::{EntryType, Header};

use super::{xattr, ApplyStats, LayerError};

/// Skips the test (with a note) unless we are root.
macro_rules! require_root {
    () => {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping: needs root (mknod, chown, trusted xattrs, mounts)");
            return;
        }
    };
}
pub(crate) use require_root;

/// A fixed mtime for entries (2023-11-14), so checks do not depend on the clock.
pub(super) const MTIME: u64 = 1_700_000_000;

pub(super) fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("isolab-layer-")
        .tempdir_in("/tmp")
        .expect("a temp dir under /tmp")
}

/// A tar being written in memory, with one call per entry kind.
pub(super) struct Tar(tar::Builder<Vec<u8>>);

impl Tar {
    pub(super) fn new() -> Tar {
        Tar(tar::Builder::new(Vec::new()))
    }

    fn header(ty: EntryType, mode: u32, uid: u64, gid: u64) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(ty);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(MTIME);
        h.set_size(0);
        h
    }

    pub(super) fn dir(&mut self, path: &str, mode: u32) -> &mut Tar {
        self.dir_owned(path, mode, 0, 0)
    }

    pub(super) fn dir_owned(&mut self, path: &str, mode: u32, uid: u64, gid: u64) -> &mut Tar {
        let mut h = Tar::header(EntryType::Directory, mode, uid, gid);
        self.0.append_data(&mut h, path, &[][..]).unwrap();
        self
    }

    pub(super) fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> &mut Tar {
        self.file_owned(path, mode, 0, 0, data)
    }

    pub(super) fn file_owned(
        &mut self,
        path: &str,
        mode: u32,
        uid: u64,
        gid: u64,
        data: &[u8],
    ) -> &mut Tar {
        let mut h = Tar::header(EntryType::Regular, mode, uid, gid);
        h.set_size(data.len() as u64);
        self.0.append_data(&mut h, path, data).unwrap();
        self
    }

    pub(super) fn symlink(&mut self, path: &str, target: &str) -> &mut Tar {
        let mut h = Tar::header(EntryType::Symlink, 0o777, 0, 0);
        self.0.append_link(&mut h, path, target).unwrap();
        self
    }

    pub(super) fn hard_link(&mut self, path: &str, target: &str) -> &mut Tar {
        let mut h = Tar::header(EntryType::Link, 0o644, 0, 0);
        self.0.append_link(&mut h, path, target).unwrap();
        self
    }

    pub(super) fn node(&mut self, path: &str, ty: EntryType, major: u32, minor: u32) -> &mut Tar {
        let mut h = Tar::header(ty, 0o666, 0, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.0.append_data(&mut h, path, &[][..]).unwrap();
        self
    }

    pub(super) fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Tar {
        self.0
            .append_pax_extensions(records.iter().copied())
            .unwrap();
        self
    }

    /// An entry whose name (and link name) bytes go into the header as they are: the
    /// builder's own `set_path` refuses `..`, which is exactly what these tests need.
    pub(super) fn raw(&mut self, name: &[u8], ty: EntryType, link: &[u8], data: &[u8]) -> &mut Tar {
        let mut h = Tar::header(ty, 0o644, 0, 0);
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    pub(super) fn finish(&mut self) -> Vec<u8> {
        let builder = std::mem::replace(&mut self.0, tar::Builder::new(Vec::new()));
        builder.into_inner().unwrap()
    }
}

/// Unpacks `tar` into a fresh `dest` under `parent`.
pub(super) fn unpack(tar: &[u8], parent: &Path, name: &str) -> (PathBuf, ApplyStats) {
    let dest = parent.join(name);
    fs::create_dir(&dest).unwrap();
    let stats = super::apply(tar, &dest).unwrap_or_else(|e| panic!("apply into {name}: {e}"));
    (dest, stats)
}

/// `diff` into memory.
pub(super) fn diff_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    super::diff(dir, &mut out).unwrap();
    out
}

/// The entries of a tar: path, type, and for `.wh.`/link entries what they say.
pub(super) fn list_tar(bytes: &[u8]) -> Vec<(String, EntryType)> {
    let mut archive = tar::Archive::new(bytes);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let path = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            (path, e.header().entry_type())
        })
        .collect()
}

/// An overlay mount that is undone on drop (lazily, so a failing test still cleans up).
pub(super) struct Mounted(Option<PathBuf>);

impl Mounted {
    pub(super) fn overlay(
        target: &Path,
        lowers: &[&Path],
        upper: Option<(&Path, &Path)>,
    ) -> Mounted {
        let lowers: Vec<_> = lowers.iter().map(|p| p.display().to_string()).collect();
        let mut opts = format!("lowerdir={}", lowers.join(":"));
        if let Some((upper, work)) = upper {
            opts += &format!(",upperdir={},workdir={}", upper.display(), work.display());
        }
        mount(
            Some("overlay"),
            target,
            Some("overlay"),
            MsFlags::empty(),
            Some(opts.as_str()),
        )
        .unwrap_or_else(|e| panic!("mount -t overlay -o {opts}: {e}"));
        Mounted(Some(target.to_path_buf()))
    }

    /// Unmounts now (an upper folder is read only once its overlay is gone).
    pub(super) fn unmount(mut self) {
        let target = self.0.take().unwrap();
        umount2(&target, MntFlags::empty()).unwrap();
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(target) = self.0.take() {
            let _ = umount2(&target, MntFlags::MNT_DETACH);
        }
    }
}

/// What a tree holds, path by path (the root itself left out): enough to compare two trees.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Node {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub data: Vec<u8>,
    pub rdev: u64,
    /// For the second and later paths of an inode: the first path (walk order).
    pub link_of: Option<String>,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

pub(super) fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    fn walk(
        dir: &Path,
        rel: &str,
        inodes: &mut BTreeMap<u64, String>,
        out: &mut BTreeMap<String, Node>,
    ) {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let rel = format!("{rel}/{}", name.to_string_lossy());
            let meta = fs::symlink_metadata(&path).unwrap();
            let ft = meta.file_type();
            let (kind, data) = if ft.is_dir() {
                ("dir", Vec::new())
            } else if ft.is_file() {
                ("file", fs::read(&path).unwrap())
            } else if ft.is_symlink() {
                (
                    "symlink",
                    fs::read_link(&path)
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes(),
                )
            } else if ft.is_char_device() {
                ("char", Vec::new())
            } else if ft.is_block_device() {
                ("block", Vec::new())
            } else {
                ("fifo", Vec::new())
            };
            let link_of = if !ft.is_dir() && meta.nlink() > 1 {
                match inodes.get(&meta.ino()) {
                    Some(first) => Some(first.clone()),
                    None => {
                        inodes.insert(meta.ino(), rel.clone());
                        None
                    }
                }
            } else {
                None
            };
            let mut xattrs = Vec::new();
            let mut keys = xattr::list(&path).unwrap();
            keys.sort();
            for key in keys {
                let value = xattr::get(&path, &key).unwrap().unwrap();
                xattrs.push((key, value));
            }
            out.insert(
                rel.clone(),
                Node {
                    kind,
                    mode: meta.mode() & 0o7777,
                    uid: meta.uid(),
                    gid: meta.gid(),
                    mtime: meta.mtime(),
                    data,
                    rdev: meta.rdev(),
                    link_of,
                    xattrs,
                },
            );
            if ft.is_dir() {
                walk(&path, &rel, inodes, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, "", &mut BTreeMap::new(), &mut out);
    out
}

/// gzip of `data`.
pub(super) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// The message of an error, for `contains` checks.
pub(super) fn message(result: Result<ApplyStats, LayerError>) -> (LayerError, String) {
    let err = result.expect_err("the layer should have been refused");
    let msg = err.to_string();
    (err, msg)
}
