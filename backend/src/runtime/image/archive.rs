//! Unpacking an image archive (a tar of an OCI layout, or a `docker save` tarball, maybe
//! gzip) into a work folder, before its blobs are read.
//!
//! Only folders, regular files and links between the archive's own files are taken, each
//! strictly inside. Docker before 25 writes a repeated layer once and the other copies as
//! symlinks (`<id>/layer.tar -> ../<other>/layer.tar`); such a link (or a hard link) is
//! resolved by name inside the archive and made a hard link to the file it names, so no
//! symlink ever lands on disk. A link that leaves the archive, or names no file of it, is
//! refused.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, BufReader};
use std::path::{Component, Path, PathBuf};

use super::record::is_gzip;
use super::{io_err, ImageError};

/// How many links a chain of links may follow before it is taken for a loop.
const MAX_LINK_HOPS: usize = 16;

/// A link entry, resolved to a path relative to the archive's root.
struct Link {
    /// The entry's name as written (for messages).
    entry: PathBuf,
    target: PathBuf,
}

/// Unpack `source` into `dest` (created).
pub(super) fn unpack_archive(source: &Path, dest: &Path) -> Result<(), ImageError> {
    fs::create_dir_all(dest).map_err(io_err("creating", dest))?;
    let file = BufReader::new(File::open(source).map_err(io_err("opening", source))?);
    let reader: Box<dyn io::Read> = if is_gzip(source)? {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let bad = |what: String| ImageError::Invalid {
        what: format!("{}: {what}", source.display()),
    };
    let mut archive = tar::Archive::new(reader);
    let mut files = BTreeSet::new();
    let mut links: BTreeMap<PathBuf, Link> = BTreeMap::new();
    for entry in archive
        .entries()
        .map_err(|e| bad(format!("not a tar archive: {e}")))?
    {
        let mut entry = entry.map_err(|e| bad(format!("a truncated or corrupt tar: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| bad(format!("an entry's name: {e}")))?
            .into_owned();
        let rel: PathBuf = path
            .components()
            .filter(|c| !matches!(c, Component::CurDir))
            .collect();
        if rel.as_os_str().is_empty() {
            continue;
        }
        if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(bad(format!("entry {path:?} leaves the archive")));
        }
        let target = dest.join(&rel);
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            fs::create_dir_all(&target).map_err(io_err("creating", &target))?;
        } else if kind.is_file() {
            if links.contains_key(&rel) {
                return Err(bad(format!("entry {path:?} is both a link and a file")));
            }
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).map_err(io_err("creating", parent))?;
            }
            let mut out = File::create(&target).map_err(io_err("creating", &target))?;
            io::copy(&mut entry, &mut out)
                .map_err(|e| bad(format!("a truncated or corrupt tar at {path:?}: {e}")))?;
            files.insert(rel);
        } else if kind.is_symlink() || kind.is_hard_link() {
            let link = entry
                .link_name()
                .map_err(|e| bad(format!("entry {path:?}'s link target: {e}")))?
                .ok_or_else(|| bad(format!("entry {path:?} is a link without a target")))?
                .into_owned();
            // A symlink is read from its own folder; a hard link names a path of the archive.
            let base = match kind.is_symlink() {
                true => rel.parent().unwrap_or(Path::new("")),
                false => Path::new(""),
            };
            let resolved = resolve_inside(base, &link).ok_or_else(|| {
                bad(format!(
                    "entry {path:?} links to {link:?}, which leaves the archive"
                ))
            })?;
            if files.contains(&rel) || links.contains_key(&rel) {
                return Err(bad(format!("entry {path:?} appears twice")));
            }
            links.insert(
                rel,
                Link {
                    entry: path,
                    target: resolved,
                },
            );
        } else {
            // Devices, fifos and the like have no place in an image archive's own files.
            return Err(bad(format!(
                "entry {path:?} is a {kind:?}, not a file, folder or link to a file"
            )));
        }
    }
    for (rel, link) in &links {
        let file = final_file(&files, &links, &link.target).ok_or_else(|| {
            bad(format!(
                "entry {:?} links to {:?}, which is not a file of the archive",
                link.entry, link.target
            ))
        })?;
        let to = dest.join(rel);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(io_err("creating", parent))?;
        }
        fs::hard_link(dest.join(file), &to).map_err(io_err("linking", &to))?;
    }
    if files.is_empty() {
        return Err(bad("an empty archive".into()));
    }
    Ok(())
}

/// `link` read from folder `base` (both relative to the archive's root), `.` and `..`
/// resolved by name; `None` when it is absolute or climbs above the root.
fn resolve_inside(base: &Path, link: &Path) -> Option<PathBuf> {
    let mut out: Vec<&std::ffi::OsStr> = base
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p),
            _ => None,
        })
        .collect();
    for c in link.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    if out.is_empty() {
        return None;
    }
    Some(out.iter().collect())
}

/// The regular file a link target ends at, following links between the archive's entries.
fn final_file<'a>(
    files: &BTreeSet<PathBuf>,
    links: &'a BTreeMap<PathBuf, Link>,
    mut target: &'a Path,
) -> Option<&'a Path> {
    for _ in 0..MAX_LINK_HOPS {
        if files.contains(target) {
            return Some(target);
        }
        target = &links.get(target)?.target;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar of `entries`: (name, symlink target or None for a file with that text).
    fn archive(dir: &Path, entries: &[(&str, Option<&str>, &str)]) -> PathBuf {
        let path = dir.join("in.tar");
        let mut b = tar::Builder::new(File::create(&path).unwrap());
        for (name, link, text) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            match link {
                Some(target) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    b.append_link(&mut h, name, target).unwrap();
                }
                None => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(text.len() as u64);
                    b.append_data(&mut h, name, text.as_bytes()).unwrap();
                }
            }
        }
        b.into_inner().unwrap();
        path
    }

    fn unpack(entries: &[(&str, Option<&str>, &str)]) -> (tempfile::TempDir, Result<(), String>) {
        let dir = tempfile::tempdir().unwrap();
        let tar = archive(dir.path(), entries);
        let result = unpack_archive(&tar, &dir.path().join("out")).map_err(|e| e.to_string());
        (dir, result)
    }

    #[test]
    fn a_docker_style_layer_symlink_becomes_a_copy_of_its_file() {
        let (dir, result) = unpack(&[
            ("manifest.json", None, "[]"),
            ("aaa/layer.tar", None, "layer bytes"),
            ("bbb/layer.tar", Some("../aaa/layer.tar"), ""),
            // A chain, and a link written before the file it names.
            ("ccc/layer.tar", Some("../bbb/layer.tar"), ""),
            ("ddd/layer.tar", Some("./../eee/./layer.tar"), ""),
            ("eee/layer.tar", None, "later"),
        ]);
        result.unwrap();
        let out = dir.path().join("out");
        for (name, want) in [
            ("bbb/layer.tar", "layer bytes"),
            ("ccc/layer.tar", "layer bytes"),
            ("ddd/layer.tar", "later"),
        ] {
            let meta = fs::symlink_metadata(out.join(name)).unwrap();
            assert!(meta.is_file(), "{name} is a regular file, not a symlink");
            assert_eq!(fs::read_to_string(out.join(name)).unwrap(), want, "{name}");
        }
    }

    #[test]
    fn links_that_leave_the_archive_or_name_no_file_are_refused() {
        for (link, want) in [
            ("/etc/passwd", "leaves the archive"),
            ("../../etc/passwd", "leaves the archive"),
            ("../../../x", "leaves the archive"),
            ("..", "leaves the archive"),
            ("../aaa", "not a file of the archive"),
            ("../nope/layer.tar", "not a file of the archive"),
            ("layer.tar", "not a file of the archive"),
        ] {
            let (dir, result) = unpack(&[
                ("aaa/layer.tar", None, "layer"),
                ("bbb/layer.tar", Some(link), ""),
            ]);
            let err = result.expect_err(link);
            assert!(err.contains(want), "{link}: {err}");
            assert!(!dir.path().join("out/bbb/layer.tar").exists(), "{link}");
        }
        // Two links naming each other.
        let (_dir, result) = unpack(&[
            ("aaa/file", None, "x"),
            ("a", Some("b"), ""),
            ("b", Some("a"), ""),
        ]);
        assert!(result.unwrap_err().contains("not a file of the archive"));
    }

    #[test]
    fn names_resolve_inside_the_root_only() {
        let p = |s: &str| Some(PathBuf::from(s));
        assert_eq!(
            resolve_inside(Path::new("a"), Path::new("../b/c")),
            p("b/c")
        );
        assert_eq!(
            resolve_inside(Path::new("a/b"), Path::new("./c")),
            p("a/b/c")
        );
        assert_eq!(resolve_inside(Path::new(""), Path::new("x")), p("x"));
        assert_eq!(resolve_inside(Path::new("a"), Path::new("../../b")), None);
        assert_eq!(resolve_inside(Path::new("a"), Path::new("/a/b")), None);
        assert_eq!(resolve_inside(Path::new("a"), Path::new("..")), None);
    }
}
