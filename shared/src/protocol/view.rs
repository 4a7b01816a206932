//! The live view: what the kernel isolates for a container, next to the host's own view.
//!
//! A client sends `watch` for a container (or for the host column); the server then sends `view`
//! messages for it. The first `view` after a `watch` has every section; later ones carry only the
//! sections that changed since the last one sent for that target, so an idle container costs
//! nothing on the wire. All numbers are read from `/proc` and the cgroup files on the host.

use serde::{Deserialize, Serialize};

/// What a `watch`, `unwatch` or `view` is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum ViewTarget {
    /// The server's own view, the reference column.
    Host,
    /// A container of the session, by name (or id).
    Container(String),
}

/// One `view` message's payload: a section is present when it changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ViewUpdate {
    /// One entry per namespace kind, in the order mnt, uts, ipc, pid, net, cgroup, user, time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<NsView>>,
    /// The processes the target's `ps` would list (for the host: the session's containers'
    /// processes, as the host numbers them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<ProcessesView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uts: Option<UtsView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interfaces: Option<Vec<InterfaceView>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mounts: Option<MountsView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_maps: Option<IdMapsView>,
    /// Absent for the host column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<CgroupView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<KernelView>,
    /// For the host column: the session's network (its bridge and what is plugged into it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkView>,
}

/// A session's network as the host sees it: a bridge, and a veth pair per container whose
/// host end is plugged into the bridge.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkView {
    /// The CNI network's name.
    pub name: String,
    /// The bridge interface on the host, and whether it is up.
    pub bridge: String,
    pub up: bool,
    /// `10.88.0.0/24`.
    pub subnet: String,
    /// The bridge's address (the host's side).
    pub gateway: String,
    /// Whether containers may reach beyond the subnet.
    pub egress: bool,
    /// One per container on the network.
    pub attachments: Vec<AttachmentView>,
}

/// A container on the session's network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentView {
    pub container: String,
    pub address: String,
    /// The veth end on the host, plugged into the bridge (when found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_veth: Option<String>,
    /// Ports published on the host's loopback (`8080:80`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
}

impl ViewUpdate {
    /// No section changed.
    pub fn is_empty(&self) -> bool {
        *self == ViewUpdate::default()
    }
}

/// One namespace of the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsView {
    /// `mnt`, `uts`, `ipc`, `pid`, `net`, `cgroup`, `user` or `time`.
    pub kind: String,
    /// The namespace's inode (`readlink /proc/PID/ns/KIND` says `KIND:[INODE]`): equal inodes
    /// are the same namespace.
    pub inode: u64,
    /// Who else is in it: `"host"` and the names of the session's other containers.
    pub shared_with: Vec<String>,
}

/// The target's processes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessesView {
    /// Sorted by host pid; `ppid` links them into a tree.
    pub list: Vec<ProcessView>,
    /// For the host: every process it runs (the list is only the session's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_total: Option<u32>,
}

/// One process, as the host and as the target see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessView {
    /// The pid the host sees.
    pub pid: i32,
    /// The pid inside the target's pid namespace (equal to `pid` for the host column).
    pub pid_inside: i32,
    /// The parent's host pid (0 for a process whose parent is outside the view).
    pub ppid: i32,
    /// The real uid inside the target's user namespace, and on the host.
    pub uid_inside: u32,
    pub uid_host: u32,
    /// The command line (at most 200 bytes), or `[comm]` for a kernel thread.
    pub cmd: String,
    /// When the process belongs to another container of the session (a shared pid namespace),
    /// that container's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

/// Hostname and NIS domain name, as `uname` inside the target returns them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UtsView {
    pub hostname: String,
    pub domainname: String,
}

/// A network interface in the target's network namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceView {
    pub name: String,
    pub index: u32,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Carrier (`IFF_RUNNING`).
    pub running: bool,
    /// `addr/prefix`, IPv4 then IPv6.
    pub addresses: Vec<String>,
    /// For a veth, where its other end is: `eth0 in alpha`, `vethab12 on the host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// The link's kind (`veth`, `bridge`, …), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// The target's mount table (`/proc/PID/mountinfo`), summarised.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountsView {
    /// How many mounts the target's mount namespace has.
    pub count: u32,
    /// The root's filesystem type (`overlay` for a container).
    pub root_fstype: String,
    /// For an overlay root: its lower layers, top first, and its upper dir (host paths).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub root_layers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_upper: Option<String>,
    /// `/proc`, `/dev`, `/dev/pts`, `/sys`, … with their types and whether read-only.
    pub notable: Vec<MountView>,
    /// Paths hidden from the target (a `/dev/null` or an empty tmpfs mounted over them).
    pub masked: Vec<String>,
    /// Paths mounted read-only under `/proc` and `/sys`.
    pub read_only: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountView {
    pub target: String,
    pub fstype: String,
    pub read_only: bool,
}

/// The target's user namespace's uid and gid maps (`/proc/PID/uid_map`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMapsView {
    pub uid: Vec<IdRange>,
    pub gid: Vec<IdRange>,
}

/// `inside outside count`: ids `inside..inside+count` are `outside..` on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// The container's cgroup: usage and limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CgroupView {
    /// `v1` or `v2`.
    pub version: String,
    pub memory_current: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_peak: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<u64>,
    pub oom_kills: u64,
    /// CPU time used in all (µs).
    pub cpu_usage_usec: u64,
    /// CPUs used since the previous sample (1.0 = one core busy).
    pub cpu_rate: f64,
    /// CPUs the container may use (`--cpus`), if limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_limit: Option<f64>,
    /// Time the CFS quota held it back (µs).
    pub cpu_throttled_usec: u64,
    pub pids_current: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<u64>,
}

/// The kernel: one for the host and every container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelView {
    /// `uname -r`.
    pub release: String,
    /// Always true: containers share the host's kernel; shown so the page can say so.
    pub shared_with_host: bool,
}
