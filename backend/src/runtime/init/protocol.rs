//! What the launcher and the init helper say to each other, and what the helper's two stages
//! (the monitor on the host side, the container's first process inside) say between themselves.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Launcher → helper.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToInit {
    /// Set up a new container and wait for `Start`. With `tty: false` three descriptors
    /// (stdin, stdout, stderr) travel with this message.
    Create(Box<CreateConfig>),
    /// Start another process in a running container; descriptors as for `Create`.
    Exec(Box<ExecConfig>),
    /// Run the user's command now.
    Start,
    /// Run it now, with what was not known at `Create` (a container made for the warm pool
    /// before anyone asked for it).
    StartAs(Launch),
    /// Forward a signal to the user's command.
    Signal(i32),
    /// The launcher goes away; keep the container running and clean up when it ends.
    Detach,
}

/// Helper → launcher.
#[derive(Debug, Serialize, Deserialize)]
pub enum FromInit {
    /// Everything is set up; `pid` is the container's first process as the host sees it. With a
    /// tty the pty master travels with this message.
    Created { pid: i32 },
    /// The user's command was executed.
    Started,
    /// The command ended and the container is gone (for `Create`), or the exec'd process ended.
    Exited(ExitStatus),
    /// A step failed; nothing the step made is left.
    Failed(Failure),
}

/// Between the helper's two stages.
#[derive(Debug, Serialize, Deserialize)]
pub enum StageMsg {
    /// Monitor → container: the uid/gid maps are written; carry on.
    Go,
    /// Container → monitor: set up, waiting for `Start` (pty master attached when asked).
    Ready,
    /// Monitor → container: run the command (with these last settings).
    Start(Launch),
    /// Container → monitor: a step failed.
    Failed(Failure),
}

/// What `Start` may still set: the settings of a request a pooled container is given to, that
/// had to wait until someone asked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Launch {
    /// The hostname (the container has a UTS namespace of its own).
    pub hostname: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The setup step that failed, e.g. `mount /proc` or `pivot_root`.
    pub step: String,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.step, self.message)
    }
}

/// How a container's command ended, docker-style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// The exit code, or 128 + the signal that killed the command.
    pub code: i32,
    /// The signal that killed the command, if one did.
    pub signal: Option<i32>,
    /// The kernel's OOM killer killed a process of this container.
    pub oom_killed: bool,
}

impl ExitStatus {
    pub fn from_wait(status: nix::sys::wait::WaitStatus) -> Option<ExitStatus> {
        use nix::sys::wait::WaitStatus;
        match status {
            WaitStatus::Exited(_, code) => Some(ExitStatus {
                code,
                signal: None,
                oom_killed: false,
            }),
            WaitStatus::Signaled(_, sig, _) => Some(ExitStatus {
                code: 128 + sig as i32,
                signal: Some(sig as i32),
                oom_killed: false,
            }),
            _ => None,
        }
    }
}

/// The overlay that becomes the container's root.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RootfsLayers {
    /// Read-only layers, top first.
    pub lower: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    /// Where the overlay is mounted (the bundle's `rootfs`).
    pub target: PathBuf,
    /// Where to move the upper folder when the container has ended, before the rest is
    /// removed (a build keeps each RUN's changes this way, to make a layer of them).
    #[serde(default)]
    pub keep_upper: Option<PathBuf>,
    /// False: no overlay; `target` is a root folder used as it is (an OCI bundle's `rootfs`,
    /// `isolab oci`), bound onto itself inside and never unmounted or removed by us.
    #[serde(default = "yes")]
    pub overlay: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CreateConfig {
    pub id: String,
    pub spec: oci_spec::runtime::Spec,
    /// The overlay to mount, or `None` when the container joins another's mount namespace.
    pub rootfs: Option<RootfsLayers>,
    /// `cgroup.procs` files to join before any namespace is made.
    pub cgroup_procs: Vec<PathBuf>,
    /// cgroup v1: (hierarchy name, host dir) to show read-only in the container's `/sys/fs/cgroup`.
    pub cgroup_v1_dirs: Vec<(String, PathBuf)>,
    /// Run a minimal init as PID 1 that reaps zombies and forwards signals.
    pub reaper: bool,
    pub paths: super::super::Paths,
    /// `isolab oci`: a FIFO whose first byte starts the container (from `oci start`); its
    /// state is kept, as stopped, when it ends, until `oci delete`.
    #[serde(default)]
    pub oci_start_fifo: Option<PathBuf>,
    /// Run by a peer runtime (runc, crun) from the bundle, instead of our own clone.
    #[serde(default)]
    pub peer: Option<crate::runtime::peer::Peer>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ExecConfig {
    /// The host pid of the container's first process, whose namespaces are joined.
    pub target_pid: i32,
    /// Its start time, checked so a recycled pid is never entered.
    pub target_start_time: u64,
    pub process: oci_spec::runtime::Process,
    /// The container's `linux.seccomp`: the exec'd process gets the same filter.
    #[serde(default)]
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    pub cgroup_procs: Vec<PathBuf>,
}
