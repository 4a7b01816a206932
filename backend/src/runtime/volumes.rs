//! Named volumes: folders under a root the caller chooses (`<state_root>/volumes/local` for the
//! CLI, `<state_root>/volumes/<session tag>` for a server's session), mounted into containers
//! that name them.
//!
//! A volume folder is made owned by 0:0, as an image's files are stored: with a private user
//! namespace it is mounted idmapped with that namespace (`init/idmap.rs`), so its root owns it
//! whatever the container's uid range, and what it writes is stored as 0-based ids again. The
//! parents are 0700: what is stored there (root-owned files, setuid ones too) is reached by no
//! host user, only through the containers' mounts (which are `nosuid`, `nodev` anyway).

use std::fs::{self, DirBuilder, File};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use isolab_shared::spec::is_valid_volume_name;
use nix::fcntl::{Flock, FlockArg};

use super::state::ContainerState;

/// The CLI's volumes, kept until `isolab volume rm`.
pub const LOCAL: &str = "local";
/// A [`VolumeSet`]'s lock file (a volume name cannot start with a dot).
const LOCK: &str = ".lock";

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("{0:?} is not a valid volume name")]
    InvalidName(String),
    #[error("no such volume: {0}")]
    NotFound(String),
    #[error("volume {name} is in use by {users}")]
    InUse { name: String, users: String },
    #[error("volume {}: not a folder of ours (a symlink or a file is in its place)", .0.display())]
    NotAFolder(PathBuf),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> VolumeError {
    let path = path.to_path_buf();
    move |source| VolumeError::Io { what, path, source }
}

/// Make `dir` and its missing parents 0700.
fn private_dir(dir: &Path) -> Result<(), VolumeError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err("make", dir))
}

/// The folder of volume `name` under `root`, made (0755, owned by 0:0) if missing.
pub fn ensure(root: &Path, name: &str) -> Result<PathBuf, VolumeError> {
    if !is_valid_volume_name(name) {
        return Err(VolumeError::InvalidName(name.to_string()));
    }
    private_dir(root)?;
    let dir = root.join(name);
    match DirBuilder::new().mode(0o755).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err("make", &dir)(e)),
    }
    let meta = fs::symlink_metadata(&dir).map_err(io_err("stat", &dir))?;
    if !meta.is_dir() {
        return Err(VolumeError::NotAFolder(dir));
    }
    Ok(dir)
}

/// The volumes under `root`, by name.
pub fn list(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_valid_volume_name(n))
        .collect();
    names.sort();
    names
}

/// Remove volume `name` under `root` and everything in it. `users` names the live containers
/// that mount it: with any, nothing is removed.
pub fn remove(root: &Path, name: &str, users: &[String]) -> Result<(), VolumeError> {
    if !is_valid_volume_name(name) {
        return Err(VolumeError::InvalidName(name.to_string()));
    }
    if !users.is_empty() {
        return Err(VolumeError::InUse {
            name: name.to_string(),
            users: users.join(", "),
        });
    }
    let dir = root.join(name);
    match fs::symlink_metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(VolumeError::NotAFolder(dir)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(VolumeError::NotFound(name.to_string()))
        }
        Err(e) => return Err(io_err("stat", &dir)(e)),
    }
    // remove_dir_all follows no symlink a container left inside.
    fs::remove_dir_all(&dir).map_err(io_err("remove", &dir))
}

/// The live containers (by name) that mount the volume folder `dir`.
pub fn users(states: &[ContainerState], dir: &Path) -> Vec<String> {
    states
        .iter()
        .filter(|s| s.is_owned() && s.volumes.iter().any(|v| v == dir))
        .map(|s| s.display_name().to_string())
        .collect()
}

/// The volumes of one live owner (a server's session): a folder whose lock is held while the
/// owner lives, so that a server starting up removes only what a crashed run left.
#[derive(Debug)]
pub struct VolumeSet {
    root: PathBuf,
    _lock: Flock<File>,
}

impl VolumeSet {
    /// Make `root` (0700) and hold its lock.
    pub fn open(root: PathBuf) -> Result<VolumeSet, VolumeError> {
        private_dir(&root)?;
        let path = root.join(LOCK);
        let file = File::create(&path).map_err(io_err("create", &path))?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock)
            .map_err(|(_, e)| io_err("lock", &path)(e.into()))?;
        Ok(VolumeSet { root, _lock: lock })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The owner ended: remove every volume of the set (their containers are gone).
    pub fn remove(self) -> Result<(), VolumeError> {
        match fs::remove_dir_all(&self.root) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove", &self.root)(e)),
            _ => Ok(()),
        }
    }
}

/// Remove every set of volumes under `volumes` but `local` whose lock nobody holds (a crashed
/// server's sessions'). Returns the folders removed.
pub fn collect_sets(volumes: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for entry in fs::read_dir(volumes).into_iter().flatten().flatten() {
        let dir = entry.path();
        if entry.file_name() == LOCAL || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let held = File::open(dir.join(LOCK))
            .ok()
            .is_some_and(|f| Flock::lock(f, FlockArg::LockExclusiveNonblock).is_err());
        if !held && fs::remove_dir_all(&dir).is_ok() {
            removed.push(dir);
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn volumes_are_made_listed_and_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("volumes/local");
        let dir = ensure(&root, "data").unwrap();
        assert_eq!(dir, root.join("data"));
        std::fs::write(dir.join("f"), "x").unwrap();
        assert_eq!(ensure(&root, "data").unwrap(), dir, "made once, then kept");
        assert!(dir.join("f").exists());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&tmp.path().join("volumes")), 0o700);
        assert_eq!(mode(&dir), 0o755);
        ensure(&root, "cache").unwrap();
        assert_eq!(list(&root), ["cache", "data"]);
        let users = vec!["alpha".to_string()];
        assert!(matches!(
            remove(&root, "data", &users),
            Err(VolumeError::InUse { .. })
        ));
        remove(&root, "data", &[]).unwrap();
        assert!(matches!(
            remove(&root, "data", &[]),
            Err(VolumeError::NotFound(_))
        ));
        assert!(matches!(
            ensure(&root, "../x"),
            Err(VolumeError::InvalidName(_))
        ));
        std::os::unix::fs::symlink("/etc", root.join("evil")).unwrap();
        assert!(matches!(
            ensure(&root, "evil"),
            Err(VolumeError::NotAFolder(_))
        ));
        assert!(matches!(
            remove(&root, "evil", &[]),
            Err(VolumeError::NotAFolder(_))
        ));
    }

    #[test]
    fn only_sets_nobody_holds_are_collected() {
        let tmp = tempfile::tempdir().unwrap();
        let held = VolumeSet::open(tmp.path().join("aaaa")).unwrap();
        ensure(held.root(), "data").unwrap();
        let left = VolumeSet::open(tmp.path().join("bbbb")).unwrap();
        ensure(left.root(), "data").unwrap();
        drop(left); // a crashed server's session: its lock went with it
        ensure(&tmp.path().join(LOCAL), "mine").unwrap();
        assert!(
            VolumeSet::open(tmp.path().join("aaaa")).is_err(),
            "held by one owner at a time"
        );
        let removed = collect_sets(tmp.path());
        assert_eq!(removed, [tmp.path().join("bbbb")]);
        assert!(held.root().join("data").exists());
        assert!(tmp.path().join("local/mine").exists());
        let root = held.root().to_path_buf();
        held.remove().unwrap();
        assert!(!root.exists());
    }
}
