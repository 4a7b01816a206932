//! The peer runtimes, runc and crun, as a container's chosen runtime (the spec's `runtime`):
//! where they are installed, what their version can do, and the command lines the monitor
//! runs (`init/peer.rs`). Their state lives in `<state_root>/peer-<name>` (their `--root`),
//! keyed by the container's id.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use super::Paths;

/// The peers a spec may name.
pub const PEERS: [&str; 2] = ["runc", "crun"];

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("runtime: {0} is not installed on this host (no {0} in PATH)")]
    NotInstalled(String),
    #[error("runtime: {name} --version: {message}")]
    Version { name: String, message: String },
}

/// An installed peer, as the monitor runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// `runc` or `crun`.
    pub name: String,
    pub binary: PathBuf,
    /// Its `--root`: where it keeps its containers' state.
    pub root: PathBuf,
    /// (major, minor) from `--version`.
    pub version: (u32, u32),
}

impl Peer {
    /// The peer `name` (one of [`PEERS`]) as installed: found in `PATH`, its version asked.
    pub fn find(name: &str, paths: &Paths) -> Result<Peer, PeerError> {
        let binary = which(name).ok_or_else(|| PeerError::NotInstalled(name.to_string()))?;
        let version_err = |message: String| PeerError::Version {
            name: name.to_string(),
            message,
        };
        let out = Command::new(&binary)
            .arg("--version")
            .output()
            .map_err(|e| version_err(e.to_string()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let version = parse_version(&text)
            .ok_or_else(|| version_err(format!("no version in {:?}", text.trim())))?;
        Ok(Peer {
            name: name.to_string(),
            binary,
            root: root_of(paths, name),
            version,
        })
    }

    /// Whether it makes time namespaces (runc since 1.2; crun does).
    pub fn has_time_namespace(&self) -> bool {
        self.name == "crun" || self.version >= (1, 2)
    }

    /// Whether it makes idmapped bind mounts (`idmap`, `uidMappings`): runc since 1.2; crun
    /// does. Without them a volume's files would be `nobody`'s inside.
    pub fn has_idmapped_mounts(&self) -> bool {
        self.name == "crun" || self.version >= (1, 2)
    }

    /// `PEER --root ROOT --log LOG ARGS…`, its output to `log` (read back on failure).
    pub fn command(&self, log: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root").arg(&self.root).arg("--log").arg(log);
        if self.name == "crun" {
            // isolab makes the cgroup and puts crun in it (crun refuses hybrid hosts anyway).
            cmd.arg("--cgroup-manager=disabled");
        }
        cmd.args(args);
        cmd
    }
}

/// A peer's `--root` under our state root.
pub fn root_of(paths: &Paths, name: &str) -> PathBuf {
    paths.state_root.join(format!("peer-{name}"))
}

/// Remove what a peer keeps of container `id` (`delete -f`, which also kills what is left
/// and removes its own cgroups), for every peer that has its state. Returns the problems.
pub fn delete(paths: &Paths, id: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for name in PEERS {
        let root = root_of(paths, name);
        if !root.join(id).exists() {
            continue;
        }
        let deleted = which(name).map(|bin| {
            Command::new(bin)
                .arg("--root")
                .arg(&root)
                .args(["delete", "-f", id])
                .output()
        });
        match deleted {
            Some(Ok(out)) if out.status.success() => {}
            Some(Ok(out)) => problems.push(format!(
                "{name} delete: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Some(Err(e)) => problems.push(format!("{name} delete: {e}")),
            None => problems.push(format!("{name} delete: {name} is no longer installed")),
        }
        // Whatever it left (or could not remove, its binary gone).
        let _ = std::fs::remove_dir_all(root.join(id));
        remove_empty_parents(&paths.cgroup_root);
    }
    problems
}

/// runc makes the `isolab` parent in every cgroup hierarchy, those isolab does not use too, and
/// leaves them: each goes once empty (a parent that still has a child is never removed; a
/// create racing with this makes it again).
fn remove_empty_parents(cgroup_root: &Path) {
    let hierarchies = std::fs::read_dir(cgroup_root)
        .into_iter()
        .flatten()
        .flatten();
    let parent = super::spec::CGROUP_PARENT.trim_start_matches('/');
    for dir in hierarchies.map(|h| h.path().join(parent)) {
        let _ = std::fs::remove_dir(dir);
    }
    let _ = std::fs::remove_dir(cgroup_root.join(parent));
}

/// `name` in `PATH`, as a shell finds it.
fn which(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// `runc version 1.1.5+ds1` or `crun version 1.8.1` → (1, 1) or (1, 8).
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let first = text.lines().next()?;
    let number = first.split_whitespace().nth(2)?;
    let mut parts = number.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_the_first_line() {
        let runc = "runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\n";
        assert_eq!(parse_version(runc), Some((1, 1)));
        assert_eq!(
            parse_version("crun version 1.8.1\ncommit: f8a0\n"),
            Some((1, 8))
        );
        assert_eq!(parse_version("runc version 1.2.0-rc.1"), Some((1, 2)));
        assert_eq!(parse_version("nonsense"), None);
        let peer = |name: &str, version| Peer {
            name: name.into(),
            binary: PathBuf::new(),
            root: PathBuf::new(),
            version,
        };
        assert!(!peer("runc", (1, 1)).has_idmapped_mounts());
        assert!(!peer("runc", (1, 1)).has_time_namespace());
        assert!(peer("runc", (1, 2)).has_idmapped_mounts());
        assert!(peer("crun", (1, 8)).has_time_namespace());
    }

    #[test]
    fn a_missing_peer_is_not_installed() {
        let paths = Paths::default();
        assert!(matches!(
            Peer::find("no-such-runtime-here", &paths),
            Err(PeerError::NotInstalled(_))
        ));
    }
}
