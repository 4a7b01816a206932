//! The container runtime: no axum or WebSocket types in here.
//!
//! A launcher ([`launcher`]) re-executes our own binary, from a sealed in-memory copy, as the
//! single-threaded init helper ([`init`]), which makes or joins the namespaces, mounts the root
//! and `exec`s the user's command. [`container`] is the lifecycle API the CLI and the server call
//! (create, start, wait, exec, remove); [`cleanup`] removes what a container or a crashed run left.

pub mod cgroups;
pub mod channel;
pub mod cleanup;
pub mod cni;
pub mod container;
pub mod diff;
pub mod exec;
pub mod image;
pub mod init;
pub mod launcher;
pub mod layer;
pub mod oci;
pub mod peer;
pub mod pty;
pub mod seccomp;
pub mod spec;
pub mod state;
pub mod sys;
pub mod uid_ranges;
pub mod volumes;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where the runtime keeps its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paths {
    /// Live state (`/run/isolab`): one folder per container with `state.json` and the bundle's
    /// `config.json`, the overlay mount point `rootfs`, and the name reservations.
    pub state_root: PathBuf,
    /// Lasting data (`/var/lib/isolab`): images, and each container's writable layer.
    pub data_root: PathBuf,
    /// Where the cgroup file systems are (`/sys/fs/cgroup`): v2 if that is a cgroup2 mount,
    /// else the v1 hierarchies (hybrid hosts included).
    pub cgroup_root: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            state_root: PathBuf::from("/run/isolab"),
            data_root: PathBuf::from("/var/lib/isolab"),
            cgroup_root: PathBuf::from(cgroups::DEFAULT_ROOT),
        }
    }
}

impl Paths {
    /// The bundle and state folder of one container.
    pub fn container(&self, id: &str) -> PathBuf {
        self.state_root.join("containers").join(id)
    }
    pub fn containers(&self) -> PathBuf {
        self.state_root.join("containers")
    }
    /// The writable layer (`upper`, `work`) of one container.
    pub fn layer(&self, id: &str) -> PathBuf {
        self.data_root.join("containers").join(id)
    }
    pub fn layers(&self) -> PathBuf {
        self.data_root.join("containers")
    }
    /// Name reservations: `names/NAME` is a symlink to the id.
    pub fn names(&self) -> PathBuf {
        self.state_root.join("names")
    }
    pub fn name(&self, name: &str) -> PathBuf {
        self.names().join(name)
    }
    pub fn rootfs(&self, id: &str) -> PathBuf {
        self.container(id).join("rootfs")
    }
    /// Every set of named volumes: `local` (the CLI's) and one per live server session.
    pub fn volumes(&self) -> PathBuf {
        self.state_root.join("volumes")
    }
    /// The CLI's named volumes.
    pub fn local_volumes(&self) -> PathBuf {
        self.volumes().join(volumes::LOCAL)
    }
}

/// A fresh container id: 12 lowercase hex digits, like docker's short ids.
pub fn new_id() -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("the kernel's random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// True when `id` has the shape of our ids (so it can be joined to a path safely).
pub fn is_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}
