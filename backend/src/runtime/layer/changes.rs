//! What a container changed, read from its upper folder, as `docker diff` lists it.

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{io_err, is_whiteout, xattr, LayerError, OPAQUE_XATTR};

/// What happened to one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Changed,
    Deleted,
}

impl ChangeKind {
    /// docker's letter: `A`, `C` or `D`.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Changed => 'C',
            ChangeKind::Deleted => 'D',
        }
    }
}

/// One line of `isolab diff`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Change {
    pub kind: ChangeKind,
    /// The path inside the container (`/etc/hostname`).
    pub path: String,
}

impl fmt::Display for Change {
    /// As `docker diff` prints it: `C /etc`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.letter(), self.path)
    }
}

/// What the container whose writable layer is `upper` added, changed and deleted, compared
/// with its image's layers `lowers` (top first, as overlayfs's `lowerdir` lists them), sorted
/// by path.
///
/// A whiteout is `Deleted`. Anything else in `upper` is `Changed` if the image has that path
/// (looked up as overlayfs would: top layer first, stopping at a whiteout, a non-folder or an
/// opaque folder), else `Added`. A folder is in `upper` because something in it changed, so it
/// shows as `Changed` (docker prints `C /etc` before `A /etc/foo`); an opaque folder (removed
/// and made again) is `Changed` too, without listing the lower contents it hides.
///
/// Paths that are not UTF-8 are shown with U+FFFD in place of the bad bytes.
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>, LayerError> {
    let mut out = Vec::new();
    walk(upper, &mut Vec::new(), lowers, &mut out)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn walk(
    dir: &Path,
    rel: &mut Vec<OsString>,
    lowers: &[PathBuf],
    out: &mut Vec<Change>,
) -> Result<(), LayerError> {
    let list = fs::read_dir(dir).map_err(io_err("listing", dir))?;
    for entry in list {
        let entry = entry.map_err(io_err("listing", dir))?;
        let abs = entry.path();
        let meta = fs::symlink_metadata(&abs).map_err(io_err("lstat", &abs))?;
        rel.push(entry.file_name());
        let kind = if is_whiteout(&meta) {
            ChangeKind::Deleted
        } else if in_lowers(rel, lowers)? {
            ChangeKind::Changed
        } else {
            ChangeKind::Added
        };
        out.push(Change {
            kind,
            path: rel
                .iter()
                .map(|p| format!("/{}", p.to_string_lossy()))
                .collect(),
        });
        if meta.is_dir() {
            walk(&abs, rel, lowers, out)?;
        }
        rel.pop();
    }
    Ok(())
}

/// Does the merged view of `lowers` (top first) have `rel`? Each folder on the way is merged
/// from the layers that have it as a folder, top down, until one hides the rest: a whiteout or
/// a non-folder there, or the folder being opaque.
fn in_lowers(rel: &[OsString], lowers: &[PathBuf]) -> Result<bool, LayerError> {
    let Some((last, parents)) = rel.split_last() else {
        return Ok(true);
    };
    let mut dirs: Vec<PathBuf> = lowers.to_vec();
    for part in parents {
        let mut next = Vec::new();
        for layer in &dirs {
            let path = layer.join(part);
            match lstat(&path)? {
                None => continue,
                Some(meta) if meta.is_dir() => {
                    let opaque = xattr::get(&path, OPAQUE_XATTR.as_bytes())
                        .map_err(io_err("reading the xattrs of", &path))?;
                    next.push(path);
                    if opaque.as_deref() == Some(b"y") {
                        break;
                    }
                }
                // A whiteout, or a file over folders below: nothing further down shows.
                Some(_) => break,
            }
        }
        if next.is_empty() {
            return Ok(false);
        }
        dirs = next;
    }
    for layer in &dirs {
        match lstat(&layer.join(last))? {
            None => continue,
            Some(meta) => return Ok(!is_whiteout(&meta)),
        }
    }
    Ok(false)
}

fn lstat(path: &Path) -> Result<Option<fs::Metadata>, LayerError> {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(meta)),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(io_err("lstat", path)(e)),
    }
}
