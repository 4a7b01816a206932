//! What the runtime records about each container, in `<state_root>/containers/<id>/state.json`,
//! and the name reservations in `<state_root>/names/`.

use std::fs;
use std::io;
use std::path::Path;
#[cfg(test)]
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{sys, Paths};

/// A process, identified by pid and start time so a recycled pid is never mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcRef {
    pub pid: i32,
    pub start_time: u64,
}

impl ProcRef {
    pub fn of(pid: i32) -> Option<ProcRef> {
        Some(ProcRef {
            pid,
            start_time: sys::process_start_time(pid)?,
        })
    }
    pub fn is_alive(&self) -> bool {
        sys::process_start_time(self.pid) == Some(self.start_time)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Creating,
    Created,
    Running,
    /// Ended, its state kept for `isolab oci state` until `oci delete` (OCI containers only;
    /// others are removed when they end).
    Stopped,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    pub id: String,
    pub name: Option<String>,
    pub image: String,
    pub command: Vec<String>,
    /// Seconds since the epoch.
    pub created: u64,
    pub status: Status,
    /// The process that is creating it (the CLI or the server).
    pub launcher: Option<ProcRef>,
    /// The init helper's monitor, which owns the container once created.
    pub monitor: Option<ProcRef>,
    /// The container's first process (PID 1 inside a private PID namespace).
    pub init: Option<ProcRef>,
    /// First host uid/gid of its user namespace's range, when it has one.
    #[serde(default)]
    pub uid_base: Option<u32>,
    /// The image layer folders its root is made of, bottom first (kept by image collection
    /// while it lives; `isolab diff` compares its upper folder with them).
    #[serde(default)]
    pub lower: Vec<std::path::PathBuf>,
    /// Left to run on its own (`run -d`): its creator's exit is not its end.
    #[serde(default)]
    pub detached: bool,
    /// The OCI bundle it was made from (`isolab oci create`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<std::path::PathBuf>,
    /// How its command ended, once [`Status::Stopped`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The folders of the named volumes it mounts (`isolab volume rm` spares them while it
    /// lives).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<std::path::PathBuf>,
    /// The peer runtime (runc, crun) that runs it; None: isolab's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
}

impl ContainerState {
    /// The state of a container being created now by this process: no monitor or process
    /// yet, nothing else known.
    pub fn creating(id: &str, name: Option<String>, image: String, command: Vec<String>) -> Self {
        ContainerState {
            id: id.to_string(),
            name,
            image,
            command,
            created: std::time::SystemTime::now()
                .duration_since(std::time::SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            status: Status::Creating,
            launcher: ProcRef::of(std::process::id() as i32),
            monitor: None,
            init: None,
            uid_base: None,
            lower: Vec::new(),
            detached: false,
            bundle: None,
            exit_code: None,
            volumes: Vec::new(),
            runtime: None,
        }
    }

    pub fn load(paths: &Paths, id: &str) -> io::Result<ContainerState> {
        let text = fs::read_to_string(paths.container(id).join("state.json"))?;
        serde_json::from_str(&text).map_err(io::Error::other)
    }

    /// Write atomically (a temporary file renamed over the old one).
    /// Write the whole state (a temporary file of this process's, renamed in, so a reader
    /// never sees half of it). For a change by someone other than the creator, use
    /// [`ContainerState::update`].
    pub fn save(&self, paths: &Paths) -> io::Result<()> {
        let dir = paths.container(&self.id);
        let tmp = dir.join(format!("state.json.{}.tmp", std::process::id()));
        fs::write(
            &tmp,
            serde_json::to_vec_pretty(self).map_err(io::Error::other)?,
        )?;
        fs::rename(tmp, dir.join("state.json"))
    }

    /// Change the saved state of `id` under a lock on its folder: the launcher (`detach`) and
    /// the monitor (a status) may change it at the same moment, and neither change may be lost.
    pub fn update(
        paths: &Paths,
        id: &str,
        change: impl FnOnce(&mut ContainerState),
    ) -> io::Result<()> {
        let dir = fs::File::open(paths.container(id))?;
        let _lock = nix::fcntl::Flock::lock(dir, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| io::Error::from(e))?;
        let mut st = ContainerState::load(paths, id)?;
        change(&mut st);
        st.save(paths)
    }

    /// Someone is still in charge of this container: its monitor, or while it is being created,
    /// its launcher.
    pub fn is_owned(&self) -> bool {
        match self.monitor {
            Some(m) => m.is_alive(),
            None => self.launcher.is_some_and(|l| l.is_alive()),
        }
    }

    /// The name to show: the given one, else the short id.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// Every container with a readable state file.
pub fn list(paths: &Paths) -> Vec<ContainerState> {
    let Ok(dir) = fs::read_dir(paths.containers()) else {
        return Vec::new();
    };
    let mut out: Vec<_> = dir
        .flatten()
        .filter_map(|e| ContainerState::load(paths, e.file_name().to_str()?).ok())
        .collect();
    out.sort_by_key(|s| s.created);
    out
}

#[derive(Debug, thiserror::Error)]
pub enum NameError {
    #[error("the name {0:?} is already in use by container {1}")]
    InUse(String, String),
    #[error("cannot reserve name {name:?}: {source}")]
    Io {
        name: String,
        #[source]
        source: io::Error,
    },
}

/// Reserve `name` for `id`: `names/NAME` is created as a symlink to the id, which is atomic, so
/// two racing creates cannot both win. A reservation whose container is gone is taken over.
pub fn reserve_name(paths: &Paths, name: &str, id: &str) -> Result<(), NameError> {
    let io_err = |source| NameError::Io {
        name: name.to_string(),
        source,
    };
    fs::create_dir_all(paths.names()).map_err(io_err)?;
    let link = paths.name(name);
    for _ in 0..2 {
        match std::os::unix::fs::symlink(id, &link) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let owner = resolve_name(paths, name).unwrap_or_default();
                if !owner.is_empty() && paths.container(&owner).exists() {
                    return Err(NameError::InUse(name.to_string(), owner));
                }
                let _ = fs::remove_file(&link);
            }
            Err(e) => return Err(io_err(e)),
        }
    }
    Err(NameError::InUse(name.to_string(), String::new()))
}

/// The id a name is reserved for.
pub fn resolve_name(paths: &Paths, name: &str) -> Option<String> {
    if name.contains('/') || name.starts_with('.') {
        return None;
    }
    let target = fs::read_link(paths.name(name)).ok()?;
    target.to_str().map(str::to_string)
}

/// Drop every reservation that points at `id`.
pub fn release_names(paths: &Paths, id: &str) {
    let Ok(dir) = fs::read_dir(paths.names()) else {
        return;
    };
    for e in dir.flatten() {
        if fs::read_link(e.path()).is_ok_and(|t| t == Path::new(id)) {
            let _ = fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(dir: &Path) -> Paths {
        Paths {
            state_root: dir.join("run"),
            data_root: dir.join("lib"),
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
        }
    }

    #[test]
    fn a_name_is_reserved_once_and_freed_with_its_container() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        fs::create_dir_all(p.container("aaa")).unwrap();
        reserve_name(&p, "web", "aaa").unwrap();
        assert!(matches!(
            reserve_name(&p, "web", "bbb"),
            Err(NameError::InUse(..))
        ));
        assert_eq!(resolve_name(&p, "web").as_deref(), Some("aaa"));
        // Once its container is gone the name can be taken again.
        fs::remove_dir_all(p.container("aaa")).unwrap();
        reserve_name(&p, "web", "bbb").unwrap();
        release_names(&p, "bbb");
        assert!(resolve_name(&p, "web").is_none());
    }

    #[test]
    fn state_round_trips_and_dead_owners_are_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        fs::create_dir_all(p.container("abc")).unwrap();
        let me = ProcRef::of(std::process::id() as i32).unwrap();
        let mut s = ContainerState {
            created: 1,
            launcher: Some(me),
            ..ContainerState::creating("abc", None, "busybox".into(), vec!["sh".into()])
        };
        s.save(&p).unwrap();
        assert!(ContainerState::load(&p, "abc").unwrap().is_owned());
        s.monitor = Some(ProcRef {
            pid: me.pid,
            start_time: me.start_time + 1,
        });
        assert!(!s.is_owned(), "a recycled pid is not the monitor");
        assert_eq!(list(&p).len(), 1);
    }
}
