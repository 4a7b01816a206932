//! Which namespaces to make and which to join, in a correct order.
//!
//! New namespaces are all made by one `clone` (so every one of them is owned by the new user
//! namespace when there is one); the time namespace, which `clone` cannot make, by `unshare`
//! just before. Shared ones are joined by `setns` on `/proc/PID/ns/KIND` before that `clone`:
//! the user namespace first (it gives the rights to join the rest), the mount namespace last
//! (joining it changes our root, and the other paths were opened before).

use std::fs::File;
use std::os::unix::fs::MetadataExt;

use nix::sched::{setns, CloneFlags};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::protocol::Failure;
use super::Step;

/// The order in which shared namespaces are joined: runc's nsexec order, user first, except
/// time: a container's time namespace is made by the monitor, so it belongs to the host's user
/// namespace and must be joined while we still hold the host's rights.
pub const JOIN_ORDER: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::Time,
    LinuxNamespaceType::User,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Mount,
];

pub fn clone_flag(kind: LinuxNamespaceType) -> CloneFlags {
    match kind {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        // CLONE_NEWTIME (0x80) overlaps clone's signal bits, so it is made by unshare.
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The `/proc/PID/ns` file name of a kind.
pub fn proc_name(kind: LinuxNamespaceType) -> &'static str {
    match kind {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// What the monitor does about namespaces for one container.
#[derive(Debug)]
pub struct Plan {
    /// Flags for the `clone` that makes the container's first process (time excluded).
    pub clone_flags: CloneFlags,
    /// A new time namespace, made by `unshare` before the `clone`.
    pub new_time: bool,
    /// Namespaces to join, already opened, in [`JOIN_ORDER`].
    pub joins: Vec<(LinuxNamespaceType, File)>,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            clone_flags: CloneFlags::empty(),
            new_time: false,
            joins: Vec::new(),
        }
    }
}

impl Plan {
    pub fn is_new(&self, kind: LinuxNamespaceType) -> bool {
        match kind {
            LinuxNamespaceType::Time => self.new_time,
            k => self.clone_flags.contains(clone_flag(k)),
        }
    }

    /// The user namespace to join, if any (another container's).
    pub fn joined(&self, kind: LinuxNamespaceType) -> Option<&File> {
        self.joins.iter().find(|(k, _)| *k == kind).map(|(_, f)| f)
    }
}

/// The spec's path for a namespace to join (`/proc/PID/ns/KIND`), if it joins one.
pub fn join_path(spec: &Spec, kind: LinuxNamespaceType) -> Option<std::path::PathBuf> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())?
        .iter()
        .find(|n| n.typ() == kind)
        .and_then(|n| n.path().clone())
}

/// The host uid and gid of root in the user namespace at `ns_path` (`/proc/PID/ns/user`), read
/// from that process's maps; (0, 0) when root is not mapped.
pub fn root_ids_of(ns_path: &std::path::Path) -> (u32, u32) {
    let proc_dir = ns_path.parent().and_then(|p| p.parent());
    let host_of_0 = |file: &str| -> u32 {
        proc_dir
            .and_then(|d| std::fs::read_to_string(d.join(file)).ok())
            .and_then(|text| {
                text.lines().find_map(|l| {
                    let f: Vec<u32> = l
                        .split_whitespace()
                        .filter_map(|x| x.parse().ok())
                        .collect();
                    (f.len() == 3 && f[0] == 0).then_some(f[1])
                })
            })
            .unwrap_or(0)
    };
    (host_of_0("uid_map"), host_of_0("gid_map"))
}

/// Read the spec's namespace list: entries without a path are new, with a path joined.
pub fn plan_for_spec(spec: &Spec) -> Result<Plan, Failure> {
    let mut plan = Plan::default();
    let list = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    for kind in JOIN_ORDER {
        let Some(ns) = list.iter().find(|n| n.typ() == kind) else {
            continue;
        };
        match ns.path() {
            None if kind == LinuxNamespaceType::Time => plan.new_time = true,
            None => plan.clone_flags |= clone_flag(kind),
            Some(path) => {
                let file = File::open(path).step(&format!(
                    "open {} namespace {}",
                    proc_name(kind),
                    path.display()
                ))?;
                plan.joins.push((kind, file));
            }
        }
    }
    Ok(plan)
}

/// The kinds the spec asks to be new (entries without a path).
pub fn new_kinds(spec: &Spec) -> Vec<LinuxNamespaceType> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .map(|list| {
            list.iter()
                .filter(|n| n.path().is_none())
                .map(|n| n.typ())
                .collect()
        })
        .unwrap_or_default()
}

/// Every namespace of `pid` that differs from ours, opened, for `exec`.
pub fn plan_for_exec(pid: i32) -> Result<Plan, Failure> {
    let mut plan = Plan::default();
    for kind in JOIN_ORDER {
        let name = proc_name(kind);
        let theirs = format!("/proc/{pid}/ns/{name}");
        let ours = format!("/proc/self/ns/{name}");
        let (Ok(a), Ok(b)) = (std::fs::metadata(&theirs), std::fs::metadata(&ours)) else {
            continue; // a kind this kernel lacks
        };
        if a.ino() == b.ino() && a.dev() == b.dev() {
            continue;
        }
        let file = File::open(&theirs).step(&format!("open {theirs}"))?;
        plan.joins.push((kind, file));
    }
    Ok(plan)
}

/// `setns` into every namespace of the plan, in order.
pub fn join(plan: &Plan) -> Result<(), Failure> {
    for (kind, file) in &plan.joins {
        setns(file, clone_flag(*kind)).step(&format!("setns {}", proc_name(*kind)))?;
    }
    Ok(())
}

/// [`join`] but for some kinds, which the caller joins some other way.
pub fn join_except(plan: &Plan, skip: &[LinuxNamespaceType]) -> Result<(), Failure> {
    for (kind, file) in plan.joins.iter().filter(|(k, _)| !skip.contains(k)) {
        setns(file, clone_flag(*kind)).step(&format!("setns {}", proc_name(*kind)))?;
    }
    Ok(())
}
