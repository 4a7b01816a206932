//! Turning a user's [`ContainerSpec`] into an OCI runtime spec (`config.json`).
//!
//! Starts from a runc-like base ([`base::base_spec`]) and applies the user's
//! command, environment, limits and namespace choices. Host facts (does the
//! kernel have time namespaces, which uid range to map, how big the host is,
//! which containers are running) come in through [`SpecContext`] so this
//! module makes no system calls and is fully unit-testable.

mod base;
mod volumes;

use std::borrow::Cow;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::build::command::command_line;
use crate::runtime::image::ImageSettings;
use crate::runtime::seccomp;
use isolab_shared::spec::{
    is_valid_hostname, is_valid_name, normalize_capability, ContainerSpec, NsKind, NsMode,
    SpecError, CAPABILITIES,
};
use oci_spec::runtime::{
    Capabilities, Capability, LinuxCapabilities, LinuxCpu, LinuxIdMapping, LinuxIdMappingBuilder,
    LinuxMemory, LinuxNamespace, LinuxNamespaceType, LinuxPids, LinuxResources, Mount, Spec,
};

pub use base::{
    base_spec, default_capabilities, default_device_rules, default_devices, default_masked_paths,
    default_mounts, DEFAULT_PATH,
};
pub use volumes::is_idmapped;

/// Size of the uid/gid range mapped into a private user namespace.
pub const USERNS_SIZE: u32 = 65536;
/// CFS period used for the `cpus` limit, in microseconds.
pub const CPU_PERIOD: u64 = 100_000;
/// Parent of every container's cgroup (`linux.cgroupsPath = /isolab/<id>`).
pub const CGROUP_PARENT: &str = "/isolab";

/// Host facts and server policy needed to build a spec.
pub struct SpecContext<'a> {
    /// Container id (hex); its first 12 characters are the default hostname.
    pub id: String,
    /// Whether sharing the host's namespaces (other than user and time) is allowed.
    pub allow_host: bool,
    /// Whether the kernel has time namespaces (`/proc/self/ns/time` exists);
    /// without them a "private" time namespace silently stays the host's.
    pub have_time_ns: bool,
    /// First host uid/gid mapped to root of a private user namespace.
    pub uid_base: Option<u32>,
    /// Host CPU count (0 = unknown, no check).
    pub host_cpus: usize,
    /// Host memory in bytes (0 = unknown, no check).
    pub host_memory: u64,
    /// Container name to the host pid of its init, for `container:NAME`.
    pub resolve: &'a dyn Fn(&str) -> Option<i32>,
    /// The image's settings (environment, working dir, ENTRYPOINT, CMD).
    pub image: &'a ImageSettings,
    /// The image's USER, resolved to a uid and gid (through the image's `/etc/passwd`).
    pub user: Option<(u32, u32)>,
    /// Where named volumes are kept (`<root>/<NAME>`); None: this caller offers none.
    pub volume_root: Option<&'a Path>,
}

/// Why no OCI spec could be built.
#[derive(Debug, thiserror::Error)]
pub enum SpecBuildError {
    /// The user's spec does not validate.
    #[error(transparent)]
    Invalid(#[from] SpecError),
    /// The container id cannot be used in paths and hostnames.
    #[error("invalid container id {0:?}")]
    InvalidId(String),
    /// A host namespace was asked for but the server does not allow it.
    #[error(
        "namespaces.{kind}: sharing the host's {kind} namespace is not allowed on this server"
    )]
    HostNotAllowed {
        /// The namespace kind.
        kind: NsKind,
    },
    /// `container:NAME` names no running container.
    #[error(
        "namespaces.{kind}: no running container named {name:?} to share the {kind} namespace with"
    )]
    UnknownContainer {
        /// The namespace kind.
        kind: NsKind,
        /// The name asked for.
        name: String,
    },
    /// A private user namespace was asked for but no uid range is configured.
    #[error("namespaces.user: a private user namespace needs a subordinate uid range, and none is configured")]
    NoUidBase,
    /// The uid range would run past the largest uid.
    #[error("uid base {0} leaves no room for {USERNS_SIZE} ids")]
    UidBaseTooHigh(u32),
    /// More CPUs asked for than the host has.
    #[error("cpus: {cpus} is more than this host's {host} CPUs")]
    TooManyCpus {
        /// Asked for.
        cpus: f64,
        /// Host CPU count.
        host: usize,
    },
    /// A private user namespace with namespaces joined from two different containers: which
    /// container's user namespace to join is ambiguous.
    #[error("namespaces.user: this container joins namespaces of both {0:?} and {1:?}; a container shares the user namespace of the one it joins, so join one container, or set the user namespace (--user host or container:NAME)")]
    TwoUserNamespaces(String, String),
    /// The runtime asked for is not installed (or does not answer `--version`).
    #[error("{0}")]
    RuntimeNotInstalled(String),
    /// The runtime asked for cannot do what the spec needs.
    #[error("{field}: {message}")]
    RuntimeUnsupported {
        /// The spec field it cannot serve.
        field: &'static str,
        message: String,
    },
    /// Volumes asked for where the caller keeps none.
    #[error("volumes: named volumes are not available here")]
    NoVolumeRoot,
    /// More memory asked for than the host has.
    #[error("memory: {bytes} bytes is more than this host's {host} bytes")]
    TooMuchMemory {
        /// Asked for.
        bytes: u64,
        /// Host memory.
        host: u64,
    },
}

impl SpecBuildError {
    /// The spec field at fault, as `SpecError::field` names it.
    pub fn field(&self) -> Option<String> {
        match self {
            SpecBuildError::Invalid(e) => Some(e.field().to_string()),
            SpecBuildError::HostNotAllowed { kind }
            | SpecBuildError::UnknownContainer { kind, .. } => {
                Some(format!("namespaces.{}", kind.proc_name()))
            }
            SpecBuildError::NoUidBase
            | SpecBuildError::UidBaseTooHigh(_)
            | SpecBuildError::TwoUserNamespaces(..) => Some("namespaces.user".to_string()),
            SpecBuildError::TooManyCpus { .. } => Some("cpus".to_string()),
            SpecBuildError::TooMuchMemory { .. } => Some("memory".to_string()),
            SpecBuildError::NoVolumeRoot => Some("volumes".to_string()),
            SpecBuildError::RuntimeNotInstalled(_) => Some("runtime".to_string()),
            SpecBuildError::RuntimeUnsupported { field, .. } => Some(field.to_string()),
            SpecBuildError::InvalidId(_) => None,
        }
    }

    /// Stable machine-readable code (the [`SpecError::code`] for invalid specs).
    pub fn code(&self) -> &'static str {
        match self {
            SpecBuildError::Invalid(e) => e.code(),
            SpecBuildError::InvalidId(_) => "invalid_id",
            SpecBuildError::HostNotAllowed { .. } => "host_namespace_not_allowed",
            SpecBuildError::UnknownContainer { .. } => "unknown_container",
            SpecBuildError::NoUidBase => "no_uid_range",
            SpecBuildError::UidBaseTooHigh(_) => "no_uid_range",
            SpecBuildError::TwoUserNamespaces(..) => "ambiguous_user_namespace",
            SpecBuildError::TooManyCpus { .. } => "cpus_exceed_host",
            SpecBuildError::TooMuchMemory { .. } => "memory_exceeds_host",
            SpecBuildError::NoVolumeRoot => "volumes_unavailable",
            SpecBuildError::RuntimeNotInstalled(_) => "runtime_not_installed",
            SpecBuildError::RuntimeUnsupported { .. } => "runtime_unsupported",
        }
    }
}

fn oci_kind(kind: NsKind) -> LinuxNamespaceType {
    match kind {
        NsKind::Mnt => LinuxNamespaceType::Mount,
        NsKind::Uts => LinuxNamespaceType::Uts,
        NsKind::Ipc => LinuxNamespaceType::Ipc,
        NsKind::Pid => LinuxNamespaceType::Pid,
        NsKind::Net => LinuxNamespaceType::Network,
        NsKind::Cgroup => LinuxNamespaceType::Cgroup,
        NsKind::User => LinuxNamespaceType::User,
        NsKind::Time => LinuxNamespaceType::Time,
    }
}

/// Order of the namespace list: runc's (pid, network, ipc, uts, mount) then the rest.
const NS_ORDER: [NsKind; 8] = [
    NsKind::Pid,
    NsKind::Net,
    NsKind::Ipc,
    NsKind::Uts,
    NsKind::Mnt,
    NsKind::Cgroup,
    NsKind::User,
    NsKind::Time,
];

/// `spec` with its user namespace resolved: a private one (the default) becomes
/// `container:NAME` when the container joins another namespace of `NAME`, as a process can only
/// use (mount /proc for, configure) a namespace owned by its own user namespace.
pub fn with_effective_user(spec: &ContainerSpec) -> Result<Cow<'_, ContainerSpec>, SpecBuildError> {
    if spec.namespaces.user != NsMode::Private {
        return Ok(Cow::Borrowed(spec));
    }
    let mut joined = spec.namespaces.iter().filter_map(|(_, mode)| match mode {
        NsMode::Container(name) => Some(name),
        _ => None,
    });
    let Some(first) = joined.next() else {
        return Ok(Cow::Borrowed(spec));
    };
    if let Some(other) = joined.find(|n| *n != first) {
        return Err(SpecBuildError::TwoUserNamespaces(
            first.clone(),
            other.clone(),
        ));
    }
    let mut owned = spec.clone();
    owned.namespaces.user = NsMode::Container(first.clone());
    Ok(Cow::Owned(owned))
}

/// Builds the OCI spec for a container. Validates `spec` first.
pub fn to_oci(spec: &ContainerSpec, ctx: &SpecContext<'_>) -> Result<Spec, SpecBuildError> {
    spec.validate()?;
    let spec = &*with_effective_user(spec)?;
    if !is_valid_name(&ctx.id) {
        return Err(SpecBuildError::InvalidId(ctx.id.clone()));
    }
    let namespaces = namespace_list(spec, ctx)?;
    let uts_private = spec.namespaces.uts == NsMode::Private;
    let hostname = uts_private.then(|| default_hostname(spec, &ctx.id));

    let mut process = base::base_process();
    let image = ctx.image;
    let args = command_line(
        image.entrypoint.as_deref(),
        image.cmd.as_deref(),
        &spec.cmd,
        spec.entrypoint.as_deref(),
    )
    .map_err(|e| SpecError::new("empty_command", "cmd", e.to_string()))?;
    process.set_args(Some(args));
    process.set_env(Some(build_env(spec, image, hostname.as_deref())));
    let cwd = spec
        .workdir
        .as_deref()
        .or(image.workdir.as_deref())
        .unwrap_or("/");
    process.set_cwd(PathBuf::from(cwd));
    if let Some((uid, gid)) = ctx.user {
        let mut user = process.user().clone();
        user.set_uid(uid);
        user.set_gid(gid);
        process.set_user(user);
    }
    process.set_terminal(Some(spec.tty));
    process.set_capabilities(Some(capabilities(spec)?));

    let mut mounts = default_mounts();
    if spec.namespaces.user != NsMode::Host {
        rebind_unmountable(&mut mounts, spec);
    }
    mounts.extend(volumes::volume_mounts(spec, ctx)?);

    let mut linux = base::base_linux();
    // Docker's default seccomp profile, resolved for the container's bounding set as docker does.
    let bounding = process
        .capabilities()
        .as_ref()
        .and_then(|c| c.bounding().clone());
    linux.set_seccomp(Some(seccomp::profile_for(&bounding.unwrap_or_default())));
    linux.set_namespaces(Some(namespaces));
    linux.set_cgroups_path(Some(PathBuf::from(format!("{CGROUP_PARENT}/{}", ctx.id))));
    if spec.namespaces.user == NsMode::Private {
        let map = user_mapping(ctx.uid_base)?;
        linux.set_uid_mappings(Some(vec![map]));
        linux.set_gid_mappings(Some(vec![map]));
    }
    let mut resources = linux.resources().clone().unwrap_or_default();
    apply_limits(&mut resources, spec, ctx.host_cpus, ctx.host_memory)?;
    linux.set_resources(Some(resources));

    let mut oci = base_spec();
    oci.set_process(Some(process));
    oci.set_hostname(hostname);
    oci.set_mounts(Some(mounts));
    oci.set_linux(Some(linux));
    Ok(oci)
}

/// Docker's default set with `cap_add` and `cap_drop` applied as docker does: `--cap-drop ALL`
/// keeps only what `--cap-add` names; `--cap-add ALL` starts from every capability.
/// Any capability may be added: where host access is not allowed the container always has a
/// user namespace of its own, in which a capability gives no power over the host.
fn capabilities(spec: &ContainerSpec) -> Result<LinuxCapabilities, SpecBuildError> {
    let names = |list: &[String]| -> Vec<String> {
        list.iter()
            .filter_map(|c| normalize_capability(c))
            .collect()
    };
    let (add, drop) = (names(&spec.cap_add), names(&spec.cap_drop));
    let defaults = default_capabilities()
        .bounding()
        .clone()
        .unwrap_or_default();
    // Every capability; the init leaves out those the running kernel does not know.
    let all = || -> Capabilities {
        CAPABILITIES
            .iter()
            .filter_map(|c| Capability::from_str(c).ok())
            .collect()
    };
    let added: Capabilities = if add.iter().any(|c| c == "ALL") {
        all()
    } else {
        add.iter()
            .filter_map(|c| Capability::from_str(c).ok())
            .collect()
    };
    let set: Capabilities = if drop.iter().any(|c| c == "ALL") {
        added.clone()
    } else {
        let dropped: Capabilities = drop
            .iter()
            .filter_map(|c| Capability::from_str(c).ok())
            .collect();
        defaults
            .union(&added)
            .filter(|c| !dropped.contains(c))
            .copied()
            .collect()
    };
    let mut caps = default_capabilities();
    caps.set_bounding(Some(set.clone()));
    caps.set_effective(Some(set.clone()));
    caps.set_permitted(Some(set));
    Ok(caps)
}

/// Root of the container mapped to `base`, [`USERNS_SIZE`] ids.
fn user_mapping(base: Option<u32>) -> Result<LinuxIdMapping, SpecBuildError> {
    let base = base.ok_or(SpecBuildError::NoUidBase)?;
    if base.checked_add(USERNS_SIZE - 1).is_none() {
        return Err(SpecBuildError::UidBaseTooHigh(base));
    }
    // LinuxIdMapping has no setters; its builder has a default for every
    // field and no validator, so build() cannot fail.
    Ok(LinuxIdMappingBuilder::default()
        .container_id(0u32)
        .host_id(base)
        .size(USERNS_SIZE)
        .build()
        .expect("id mapping builder cannot fail"))
}

/// The limits alone (memory, CPU, pids) as the spec asks for them: what a pooled container
/// is given when someone takes it. `host_cpus`, `host_memory`: 0 for unknown.
pub fn limits(
    spec: &ContainerSpec,
    host_cpus: usize,
    host_memory: u64,
) -> Result<LinuxResources, SpecBuildError> {
    let mut resources = LinuxResources::default();
    apply_limits(&mut resources, spec, host_cpus, host_memory)?;
    Ok(resources)
}

/// Memory (with no swap), CPU quota and pids limit.
fn apply_limits(
    resources: &mut LinuxResources,
    spec: &ContainerSpec,
    host_cpus: usize,
    host_memory: u64,
) -> Result<(), SpecBuildError> {
    if let Some(mem) = spec.memory {
        if host_memory != 0 && mem.bytes() > host_memory {
            return Err(SpecBuildError::TooMuchMemory {
                bytes: mem.bytes(),
                host: host_memory,
            });
        }
        // validate() caps memory at 16 TiB, far below i64::MAX.
        let bytes = i64::try_from(mem.bytes()).unwrap_or(i64::MAX);
        let mut memory = LinuxMemory::default();
        memory.set_limit(Some(bytes));
        // OCI `swap` is memory+swap: equal to the limit means no swap at all.
        memory.set_swap(Some(bytes));
        resources.set_memory(Some(memory));
    }
    if let Some(cpus) = spec.cpus {
        if host_cpus != 0 && cpus > host_cpus as f64 {
            return Err(SpecBuildError::TooManyCpus {
                cpus,
                host: host_cpus,
            });
        }
        let mut cpu = LinuxCpu::default();
        // validate() keeps cpus within 0.01..=1024: quota is 1000..=102_400_000.
        cpu.set_quota(Some((cpus * CPU_PERIOD as f64).round() as i64));
        cpu.set_period(Some(CPU_PERIOD));
        resources.set_cpu(Some(cpu));
    }
    if let Some(limit) = spec.pids_limit {
        let mut pids = LinuxPids::default();
        pids.set_limit(limit);
        resources.set_pids(Some(pids));
    }
    Ok(())
}

/// Hostname: the user's, else the container name if it is a valid hostname,
/// else the short id (docker's default).
fn default_hostname(spec: &ContainerSpec, id: &str) -> String {
    if let Some(h) = &spec.hostname {
        return h.clone();
    }
    match &spec.name {
        Some(name) if is_valid_hostname(name) => name.clone(),
        _ => id.chars().take(12).collect(),
    }
}

/// `PATH`, `HOSTNAME` (when we set one), `TERM=xterm` with a tty, then the
/// user's entries; a user entry replaces an earlier one with the same key.
fn build_env(spec: &ContainerSpec, image: &ImageSettings, hostname: Option<&str>) -> Vec<String> {
    let mut env = Vec::new();
    if !image.env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(DEFAULT_PATH.to_owned());
    }
    let mut extra = image.env.clone();
    if let Some(h) = hostname {
        extra.push(format!("HOSTNAME={h}"));
    }
    if spec.tty {
        extra.push("TERM=xterm".to_owned());
    }
    extra.extend(spec.env.iter().cloned());
    for entry in &extra {
        let key = entry.split_once('=').map_or(entry.as_str(), |(k, _)| k);
        env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
        env.push(entry.clone());
    }
    env
}

/// The `linux.namespaces` list: private → entry without path, host → no
/// entry, `container:NAME` → entry with that container's `/proc/<pid>/ns/<kind>`.
fn namespace_list(
    spec: &ContainerSpec,
    ctx: &SpecContext<'_>,
) -> Result<Vec<LinuxNamespace>, SpecBuildError> {
    let mut list = Vec::new();
    for kind in NS_ORDER {
        let path = match spec.namespaces.get(kind) {
            NsMode::Private if kind == NsKind::Time && !ctx.have_time_ns => continue,
            NsMode::Private => None,
            // The host's time namespace is harmless (a private one is a choice of clocks); the
            // host's user namespace makes the container's root the host's root.
            NsMode::Host if kind == NsKind::Time || ctx.allow_host => continue,
            NsMode::Host => return Err(SpecBuildError::HostNotAllowed { kind }),
            NsMode::Container(name) => match (ctx.resolve)(name) {
                // A container that kept the host's user namespace: joining it is staying.
                Some(pid) if pid > 0 && kind == NsKind::User && same_user_namespace(pid) => {
                    continue
                }
                Some(pid) if pid > 0 => Some(PathBuf::from(format!(
                    "/proc/{pid}/ns/{}",
                    kind.proc_name()
                ))),
                _ => {
                    return Err(SpecBuildError::UnknownContainer {
                        kind,
                        name: name.clone(),
                    })
                }
            },
        };
        let mut ns = LinuxNamespace::default();
        ns.set_typ(oci_kind(kind));
        ns.set_path(path);
        list.push(ns);
    }
    Ok(list)
}

/// Whether process `pid` is in our own user namespace.
fn same_user_namespace(pid: i32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let ino = |p: &str| fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
    let theirs = ino(&format!("/proc/{pid}/ns/user"));
    theirs.is_some() && theirs == ino("/proc/self/ns/user")
}

/// With a user namespace that is not the host's, a kernel filesystem can only
/// be freshly mounted when the namespace it belongs to is owned by that user
/// namespace. Otherwise bind the host's instead, as runc's rootless template
/// does for `/sys`: sysfs needs the net ns, proc the pid ns, mqueue the ipc
/// ns, cgroup2 the cgroup ns.
fn rebind_unmountable(mounts: &mut [Mount], spec: &ContainerSpec) {
    let user = &spec.namespaces.user;
    let owned = |kind: NsKind| {
        let mode = spec.namespaces.get(kind);
        *mode == NsMode::Private || (matches!(user, NsMode::Container(_)) && mode == user)
    };
    for m in mounts.iter_mut() {
        let (kind, source, ro) = match m.typ().as_deref() {
            Some("sysfs") => (NsKind::Net, "/sys", true),
            Some("proc") => (NsKind::Pid, "/proc", false),
            Some("mqueue") => (NsKind::Ipc, "/dev/mqueue", false),
            Some("cgroup") => (NsKind::Cgroup, "/sys/fs/cgroup", true),
            _ => continue,
        };
        if owned(kind) {
            continue;
        }
        let mut options = vec!["rbind", "nosuid", "noexec", "nodev"];
        if ro {
            options.push("ro");
        }
        let dest = m.destination().to_string_lossy().into_owned();
        *m = base::mount(&dest, "none", source, &options);
    }
}

/// Writes `spec` as `<dir>/config.json` (pretty-printed). Writes a temporary
/// file first and renames it, so a reader never sees half a file.
pub fn write_bundle(dir: &Path, spec: &Spec) -> io::Result<()> {
    let json = serde_json::to_vec_pretty(spec).map_err(io::Error::other)?;
    let tmp = dir.join(".config.json.tmp");
    fs::write(&tmp, json)?;
    fs::rename(&tmp, dir.join("config.json"))
}

#[cfg(test)]
mod tests;
