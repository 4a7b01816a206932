//! Host uid/gid ranges for private user namespaces: one range of [`USERNS_SIZE`] ids per live
//! container, never the same range to two containers at once, even across processes (two
//! `isolab run` and a server racing).
//!
//! A range is claimed by creating a symlink `<state root>/uid-ranges/<first uid>` that points at
//! the container's id: `symlink(2)` either makes the link or fails because it exists, so exactly
//! one claimant wins. A claim is released when its container is torn down; one whose container
//! has gone without that (a crash) is skipped by new claims (taking it over would need a
//! compare-and-swap the file system does not have: two racing take-overs could both win) and
//! removed by `gc`.

use std::fs;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::spec::USERNS_SIZE;
use super::Paths;

/// The first host uid handed out. High enough to stay clear of the ranges distributions give
/// users in `/etc/subuid` (from 100000 up, 65536 each), below 2^31 so that no tool sees a
/// negative id.
pub const FIRST_UID: u32 = 1_000_000_000;
/// The last id any range may reach.
const LAST_UID: u32 = (1 << 31) - 1;
/// A claim younger than this whose container has no state folder yet is a create in progress.
const YOUNG: Duration = Duration::from_secs(30);

/// Why no range could be claimed.
#[derive(Debug, thiserror::Error)]
pub enum UidRangeError {
    /// Every range is in use.
    #[error("every uid range for user namespaces is in use ({0} ranges)")]
    Exhausted(u32),
    /// The claim folder could not be used.
    #[error("uid range claim {path}: {source}")]
    Io {
        /// The claim (or its folder).
        path: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
}

fn dir(paths: &Paths) -> PathBuf {
    paths.state_root.join("uid-ranges")
}

/// How many ranges fit between [`FIRST_UID`] and [`LAST_UID`].
pub fn capacity() -> u32 {
    (LAST_UID - FIRST_UID + 1) / USERNS_SIZE
}

/// Claim the lowest free range for container `id`; returns its first host uid.
pub fn claim(paths: &Paths, id: &str) -> Result<u32, UidRangeError> {
    let dir = dir(paths);
    fs::create_dir_all(&dir).map_err(|source| UidRangeError::Io {
        path: dir.clone(),
        source,
    })?;
    for k in 0..capacity() {
        let base = FIRST_UID + k * USERNS_SIZE;
        let link = dir.join(base.to_string());
        match std::os::unix::fs::symlink(id, &link) {
            Ok(()) => return Ok(base),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => return Err(UidRangeError::Io { path: link, source }),
        }
    }
    Err(UidRangeError::Exhausted(capacity()))
}

/// A claim whose container has no state folder, and that is not a create in progress.
fn is_stale(paths: &Paths, link: &std::path::Path) -> bool {
    let Ok(owner) = fs::read_link(link) else {
        return false; // gone already: the next symlink decides
    };
    let live = owner
        .to_str()
        .is_some_and(|id| super::is_id(id) && paths.container(id).exists());
    let young = fs::symlink_metadata(link)
        .and_then(|m| m.modified())
        .is_ok_and(|t| SystemTime::now().duration_since(t).unwrap_or_default() < YOUNG);
    !live && !young
}

/// Release every range claimed for `id` (normally one).
pub fn release(paths: &Paths, id: &str) {
    for (link, owner) in claims(paths) {
        if owner == id {
            let _ = fs::remove_file(link);
        }
    }
}

/// Remove claims whose container is gone (for `gc`).
pub fn release_stale(paths: &Paths) {
    for (link, _) in claims(paths) {
        if is_stale(paths, &link) {
            let _ = fs::remove_file(link);
        }
    }
}

/// Every claim: its link and the id it points at.
fn claims(paths: &Paths) -> Vec<(PathBuf, String)> {
    let Ok(entries) = fs::read_dir(dir(paths)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let owner = fs::read_link(e.path()).ok()?.to_str()?.to_string();
            Some((e.path(), owner))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(root: &std::path::Path) -> Paths {
        Paths {
            state_root: root.join("run"),
            data_root: root.join("data"),
            cgroup_root: root.join("cg"),
        }
    }

    #[test]
    fn ranges_are_distinct_and_reused_after_release() {
        let tmp = tempfile::tempdir().unwrap();
        let p = paths(tmp.path());
        let a = claim(&p, "aaaa").unwrap();
        let b = claim(&p, "bbbb").unwrap();
        assert_eq!(a, FIRST_UID);
        assert_eq!(b, FIRST_UID + USERNS_SIZE);
        release(&p, "aaaa");
        assert_eq!(claim(&p, "cccc").unwrap(), FIRST_UID);
        assert!(u64::from(FIRST_UID) + u64::from(capacity()) * u64::from(USERNS_SIZE) <= 1 << 31);
    }

    #[test]
    fn racing_claims_never_share_a_range() {
        let tmp = tempfile::tempdir().unwrap();
        let p = paths(tmp.path());
        let bases: Vec<u32> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|i| {
                    let p = &p;
                    s.spawn(move || claim(p, &format!("{i:04x}")).unwrap())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut unique = bases.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), bases.len(), "{bases:?}");
    }

    #[test]
    fn a_stale_claim_is_skipped_and_removed_by_gc() {
        let tmp = tempfile::tempdir().unwrap();
        let p = paths(tmp.path());
        claim(&p, "dead").unwrap();
        // Its container is gone and the claim is old: a crash left it.
        let link = dir(&p).join(FIRST_UID.to_string());
        let old = std::time::SystemTime::now() - 2 * YOUNG;
        let times = [
            nix::sys::time::TimeSpec::from(old.duration_since(std::time::UNIX_EPOCH).unwrap()),
            nix::sys::time::TimeSpec::from(old.duration_since(std::time::UNIX_EPOCH).unwrap()),
        ];
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &link,
            &times[0],
            &times[1],
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
        assert_eq!(
            claim(&p, "live").unwrap(),
            FIRST_UID + USERNS_SIZE,
            "skipped"
        );
        release_stale(&p);
        assert!(
            !link.exists() && fs::symlink_metadata(&link).is_err(),
            "gc removed it"
        );
        assert_eq!(claim(&p, "next").unwrap(), FIRST_UID);
    }

    #[test]
    fn a_young_claim_of_a_container_not_yet_written_is_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let p = paths(tmp.path());
        claim(&p, "aaaa").unwrap(); // no state folder: a create in progress
        release_stale(&p);
        assert_eq!(claim(&p, "bbbb").unwrap(), FIRST_UID + USERNS_SIZE);
    }
}
