//! `ContainerSpec`: what a user asks for when starting a container, using
//! docker's names (`image`, `cmd`, `env`, `memory`, `cpus`, `pids_limit`, ...),
//! and its validation.
//!
//! Pure data and checks (no OS calls) so the page can validate the same way
//! the server does. The server turns a validated spec into an OCI runtime spec.

mod memory;
mod namespaces;
mod volumes;

pub use memory::MemorySize;
pub use namespaces::{Namespaces, NsKind, NsMode};
pub use volumes::{is_valid_volume_name, VolumeMount};

use serde::{Deserialize, Serialize};

/// docker's minimum memory limit (`--memory`): 6 MiB.
pub const MIN_MEMORY: u64 = 6 * MemorySize::MIB;
/// Smallest writable layer cap: 1 MiB.
const MIN_STORAGE: u64 = 1 << 20;
/// Largest memory limit accepted: 16 TiB.
pub const MAX_MEMORY: u64 = 16 * MemorySize::TIB;
/// Smallest CPU share (a 1 ms quota per 100 ms period).
pub const MIN_CPUS: f64 = 0.01;
/// Largest CPU count accepted.
pub const MAX_CPUS: f64 = 1024.0;
/// Largest pids limit accepted (the kernel's `PID_MAX_LIMIT`).
pub const MAX_PIDS: i64 = 4_194_304;

/// A container request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerSpec {
    /// Image name, e.g. `busybox`.
    pub image: String,
    /// Container name; when absent the server picks one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Hostname inside the container; defaults to the name, else the short id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Program and arguments; empty means the image's CMD (after its ENTRYPOINT), as with
    /// `docker run IMAGE`.
    #[serde(default)]
    pub cmd: Vec<String>,
    /// Replaces the image's ENTRYPOINT (docker's `--entrypoint`; an empty list clears it), and
    /// then the image's CMD is not used either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// Environment entries, `KEY=VALUE`.
    #[serde(default)]
    pub env: Vec<String>,
    /// Absolute working directory; defaults to `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// Allocate a terminal.
    #[serde(default)]
    pub tty: bool,
    /// Memory limit (no swap on top).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemorySize>,
    /// CPU limit in CPUs, e.g. `0.5`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Maximum number of tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    /// Size cap of the writable layer (docker's `--storage-opt size=`): past it, writes fail
    /// with "No space left on device". What is written counts toward `memory` too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_size: Option<MemorySize>,
    /// Namespace choices.
    #[serde(default)]
    pub namespaces: Namespaces,
    /// Run a small reaping init as PID 1 that starts `cmd` (docker's
    /// `--init`; only with a private pid namespace). By default `cmd` itself
    /// is PID 1, as with docker.
    #[serde(default)]
    pub init: bool,
    /// Capabilities added to docker's default set (`--cap-add`), e.g. `SYS_ADMIN`; `ALL` adds
    /// every one. A server only grants one outside the default set to a container with a
    /// private user namespace, where it is worth nothing against the host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// Capabilities removed (`--cap-drop`); `ALL` drops every one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// Ports published on the host's loopback (`-p HOSTPORT:CONTAINERPORT[/tcp|/udp]`); the
    /// container needs a private network namespace on the server's network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publish: Vec<String>,
    /// `none` (docker's `--network none`): a private network namespace with only its loopback,
    /// not plugged into the server's session network. Unset (or `default`): a container with a
    /// private network namespace joins its session's network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Named volumes (docker's `-v NAME:/path[:ro]`): folders that outlive the container, kept
    /// by the CLI (until `isolab volume rm`) or by the server's session (until it ends). Root
    /// inside owns what it writes there, whatever the container's uid range.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// Which OCI runtime runs it, from the same bundle: `isolab` (our own, the default), or
    /// `runc` or `crun` where installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
}

/// `network: none`.
pub const NETWORK_NONE: &str = "none";

/// The runtimes a spec may name: ours first (the default), then the peers that run the same
/// bundle.
pub const RUNTIMES: [&str; 3] = ["isolab", "runc", "crun"];

/// A published port: `-p 8080:80` or `-p 5353:53/udp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortMapping {
    pub host_port: u16,
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub protocol: &'static str,
}

impl PortMapping {
    /// Parse `HOSTPORT:CONTAINERPORT[/PROTO]`.
    pub fn parse(s: &str) -> Option<PortMapping> {
        let (ports, protocol) = match s.split_once('/') {
            Some((p, "tcp")) => (p, "tcp"),
            Some((p, "udp")) => (p, "udp"),
            Some(_) => return None,
            None => (s, "tcp"),
        };
        let (host, container) = ports.split_once(':')?;
        let port = |p: &str| p.parse::<u16>().ok().filter(|&n| n > 0);
        Some(PortMapping {
            host_port: port(host)?,
            container_port: port(container)?,
            protocol,
        })
    }
}

/// Every Linux capability, without the `CAP_` prefix, numbered as in `<linux/capability.h>`.
pub const CAPABILITIES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// A capability name as docker takes it (`SYS_ADMIN`, `cap_sys_admin`, `ALL`), normalised to
/// `SYS_ADMIN` / `ALL`; None when unknown.
pub fn normalize_capability(name: &str) -> Option<String> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    (bare == "ALL" || CAPABILITIES.contains(&bare)).then(|| bare.to_string())
}

/// Why a spec was refused: a stable machine-readable `code`, the `field`
/// at fault (e.g. `hostname`, `env[2]`, `namespaces.net`) and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    code: &'static str,
    field: String,
    message: String,
}

impl SpecError {
    /// A new error.
    pub fn new(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        SpecError {
            code,
            field: field.into(),
            message: message.into(),
        }
    }

    /// The error for a missing command (also used for `exec`).
    pub fn empty_command() -> Self {
        SpecError::new(
            "empty_command",
            "cmd",
            "empty command: give at least a program to run",
        )
    }

    /// Stable code such as `invalid_hostname`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The offending field.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// Human explanation (without the field name).
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Whether `s` is a valid container name: `[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}`.
pub fn is_valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && s.len() <= 63
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Whether `s` is an RFC 1123 host name: dot-separated labels of 1..=63
/// `[A-Za-z0-9-]` not starting or ending with `-`, at most 253 bytes in all.
pub fn is_valid_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Whether `s` is an acceptable image reference: `[a-z0-9._-/:]`, at most
/// 255 bytes, and no empty, `.` or `..` path components (it names a directory).
pub fn is_valid_image(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '-' | '/' | ':'))
        && s.split('/').all(|part| !matches!(part, "" | "." | ".."))
}

impl ContainerSpec {
    /// A spec running `cmd` in `image` with every other field at its default.
    pub fn new(image: impl Into<String>, cmd: Vec<String>) -> Self {
        ContainerSpec {
            image: image.into(),
            name: None,
            hostname: None,
            cmd,
            env: Vec::new(),
            workdir: None,
            tty: false,
            memory: None,
            cpus: None,
            pids_limit: None,
            storage_size: None,
            namespaces: Namespaces::default(),
            init: false,
            entrypoint: None,
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            publish: Vec::new(),
            network: None,
            volumes: Vec::new(),
            runtime: None,
        }
    }

    /// Whether the spec asks for no network beyond the loopback (`network: none`).
    pub fn network_none(&self) -> bool {
        self.network.as_deref() == Some(NETWORK_NONE)
    }

    /// The runtime that runs it: `isolab` unless the spec names a peer.
    pub fn runtime_name(&self) -> &str {
        self.runtime.as_deref().unwrap_or(RUNTIMES[0])
    }

    /// Checks every field; returns the first problem found.
    pub fn validate(&self) -> Result<(), SpecError> {
        match self.problems().into_iter().next() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    /// Every problem found, in field order (for forms that mark all fields at once).
    pub fn problems(&self) -> Vec<SpecError> {
        let mut out = Vec::new();
        check_nul(&mut out, "image", &self.image);
        if !out.is_empty() {
            // Nothing more to say about the image.
        } else if self.image.is_empty() {
            out.push(SpecError::new(
                "invalid_image",
                "image",
                "an image is required",
            ));
        } else if !is_valid_image(&self.image) {
            out.push(SpecError::new(
                "invalid_image",
                "image",
                format!(
                    "{:?} is not a valid image name: use lowercase letters, digits and . _ - / : \
                     (at most 255, no empty, '.' or '..' path parts)",
                    self.image
                ),
            ));
        }
        if let Some(name) = &self.name {
            if check_nul(&mut out, "name", name) && !is_valid_name(name) {
                out.push(SpecError::new(
                    "invalid_name",
                    "name",
                    format!(
                        "{name:?} is not a valid container name: start with a letter or digit, \
                         then letters, digits, '_', '.' or '-', at most 63 characters"
                    ),
                ));
            }
        }
        if let Some(host) = &self.hostname {
            if check_nul(&mut out, "hostname", host) && !is_valid_hostname(host) {
                out.push(SpecError::new(
                    "invalid_hostname",
                    "hostname",
                    format!(
                        "{host:?} is not a valid hostname: dot-separated labels of 1 to 63 \
                         letters, digits or '-' (not at either end), at most 253 characters"
                    ),
                ));
            }
            if self.namespaces.uts != NsMode::Private {
                out.push(SpecError::new(
                    "conflicting_options",
                    "hostname",
                    "a hostname can only be set when the uts namespace is private",
                ));
            }
        }
        self.check_cmd_env_workdir(&mut out);
        self.check_limits(&mut out);
        self.check_namespaces(&mut out);
        self.check_capabilities(&mut out);
        self.check_publish(&mut out);
        self.check_volumes(&mut out);
        self.check_runtime(&mut out);
        out
    }

    /// A known runtime; a peer (runc, crun) runs the bundle as it is, so isolab's own init
    /// (`init`) and a root in another container's mount namespace are ours only.
    fn check_runtime(&self, out: &mut Vec<SpecError>) {
        let Some(name) = &self.runtime else { return };
        if !check_nul(out, "runtime", name) {
            return;
        }
        if !RUNTIMES.contains(&name.as_str()) {
            out.push(SpecError::new(
                "invalid_runtime",
                "runtime",
                format!("{name:?} is not a runtime: use isolab, runc or crun"),
            ));
            return;
        }
        if name == RUNTIMES[0] {
            return;
        }
        if self.init {
            out.push(SpecError::new(
                "conflicting_options",
                "init",
                format!("--init is isolab's own init: {name} cannot run it"),
            ));
        }
        if matches!(self.namespaces.mnt, NsMode::Container(_)) {
            out.push(SpecError::new(
                "conflicting_options",
                "namespaces.mnt",
                format!("{name} makes a root of its own: it cannot join another container's mount namespace"),
            ));
        }
    }

    /// The `volumes` entries, parsed (those that do not parse are left out: see `validate`).
    pub fn volume_mounts(&self) -> Vec<VolumeMount> {
        self.volumes
            .iter()
            .filter_map(|v| VolumeMount::parse(v).ok())
            .collect()
    }

    fn check_volumes(&self, out: &mut Vec<SpecError>) {
        let mut seen = Vec::new();
        for (i, v) in self.volumes.iter().enumerate() {
            let field = format!("volumes[{i}]");
            if !check_nul(out, &field, v) {
                continue;
            }
            match VolumeMount::parse(v) {
                Err(message) => out.push(SpecError::new("invalid_volume", field, message)),
                Ok(m) if seen.contains(&m.path) => out.push(SpecError::new(
                    "invalid_volume",
                    field,
                    format!("{} is already the destination of another volume", m.path),
                )),
                Ok(m) => seen.push(m.path),
            }
        }
        if !self.volumes.is_empty() && matches!(self.namespaces.mnt, NsMode::Container(_)) {
            out.push(SpecError::new(
                "conflicting_options",
                "volumes",
                "volumes need a mount namespace of the container's own (it would mount them \
                 in the other container's files)",
            ));
        }
    }

    fn check_publish(&self, out: &mut Vec<SpecError>) {
        for (i, p) in self.publish.iter().enumerate() {
            let field = format!("publish[{i}]");
            if check_nul(out, &field, p) && PortMapping::parse(p).is_none() {
                out.push(SpecError::new(
                    "invalid_publish",
                    field,
                    format!("{p:?} is not HOSTPORT:CONTAINERPORT[/tcp|/udp] (ports 1 to 65535)"),
                ));
            }
        }
        if !self.publish.is_empty() && self.namespaces.net != NsMode::Private {
            out.push(SpecError::new(
                "conflicting_options",
                "publish",
                "ports can only be published from a private network namespace",
            ));
        }
        match self.network.as_deref() {
            None | Some("default") => {}
            Some(NETWORK_NONE) => {
                if self.namespaces.net != NsMode::Private {
                    out.push(SpecError::new(
                        "conflicting_options",
                        "network",
                        "network none is for a private network namespace (this one is not the \
                         container's own)",
                    ));
                } else if !self.publish.is_empty() {
                    out.push(SpecError::new(
                        "conflicting_options",
                        "publish",
                        "ports cannot be published with network none (only the loopback)",
                    ));
                }
            }
            Some(other) => out.push(SpecError::new(
                "invalid_network",
                "network",
                format!("{other:?} is not a network: none, or default (the session's)"),
            )),
        }
    }

    fn check_capabilities(&self, out: &mut Vec<SpecError>) {
        for (list, what) in [(&self.cap_add, "cap_add"), (&self.cap_drop, "cap_drop")] {
            for (i, cap) in list.iter().enumerate() {
                let field = format!("{what}[{i}]");
                if check_nul(out, &field, cap) && normalize_capability(cap).is_none() {
                    out.push(SpecError::new(
                        "invalid_capability",
                        field,
                        format!("{cap:?} is not a Linux capability (e.g. SYS_ADMIN, NET_RAW, ALL)"),
                    ));
                }
            }
        }
    }

    fn check_cmd_env_workdir(&self, out: &mut Vec<SpecError>) {
        // No command means the image's (its ENTRYPOINT and CMD); an empty program never runs.
        if self.cmd.first().is_some_and(|c| c.is_empty()) {
            out.push(SpecError::empty_command());
        }
        if let Some(entry) = &self.entrypoint {
            for (i, arg) in entry.iter().enumerate() {
                check_nul(out, &format!("entrypoint[{i}]"), arg);
            }
        }
        for (i, arg) in self.cmd.iter().enumerate() {
            check_nul(out, &format!("cmd[{i}]"), arg);
        }
        out.extend(env_problems(&self.env));
        if let Some(dir) = &self.workdir {
            if check_nul(out, "workdir", dir) && !dir.starts_with('/') {
                out.push(SpecError::new(
                    "invalid_workdir",
                    "workdir",
                    format!("{dir:?} is not an absolute path (it must start with '/')"),
                ));
            }
        }
    }

    fn check_limits(&self, out: &mut Vec<SpecError>) {
        if let Some(mem) = self.memory {
            if mem.bytes() < MIN_MEMORY {
                out.push(SpecError::new(
                    "memory_too_small",
                    "memory",
                    format!("{mem} is below the minimum of 6m (docker's minimum)"),
                ));
            } else if mem.bytes() > MAX_MEMORY {
                out.push(SpecError::new(
                    "memory_too_large",
                    "memory",
                    format!("{mem} is absurd: the maximum is 16t"),
                ));
            }
        }
        if let Some(size) = self.storage_size {
            if size.bytes() < MIN_STORAGE || size.bytes() > MAX_MEMORY {
                out.push(SpecError::new(
                    "invalid_storage_size",
                    "storage_size",
                    format!("{size} is out of range: give a size from 1m to 16t"),
                ));
            }
        }
        if let Some(cpus) = self.cpus {
            if !cpus.is_finite() || !(MIN_CPUS..=MAX_CPUS).contains(&cpus) {
                out.push(SpecError::new(
                    "invalid_cpus",
                    "cpus",
                    format!("{cpus} is out of range: give a number of CPUs from 0.01 to 1024"),
                ));
            }
        }
        if let Some(pids) = self.pids_limit {
            if pids < 1 {
                out.push(SpecError::new(
                    "invalid_pids_limit",
                    "pids_limit",
                    format!("{pids} would forbid every process; use no limit instead (leave pids_limit out)"),
                ));
            } else if pids > MAX_PIDS {
                out.push(SpecError::new(
                    "invalid_pids_limit",
                    "pids_limit",
                    format!("{pids} is above the kernel's maximum of {MAX_PIDS}"),
                ));
            }
        }
    }

    fn check_namespaces(&self, out: &mut Vec<SpecError>) {
        for (kind, mode) in self.namespaces.iter() {
            let field = format!("namespaces.{kind}");
            if let NsMode::Container(name) = mode {
                if check_nul(out, &field, name) && !is_valid_name(name) {
                    out.push(SpecError::new(
                        "invalid_namespace",
                        field,
                        format!("{name:?} is not a valid container name"),
                    ));
                    continue;
                }
            }
            if kind == NsKind::Mnt && *mode == NsMode::Host {
                // No mount namespace would build the container's root in the
                // host's mount table: never allowed. Joining another
                // container's (`container:NAME`) runs in that container's files.
                out.push(SpecError::new(
                    "unsupported_namespace",
                    field,
                    "\"host\" is not supported: a container needs its own mount namespace \
                     (or another container's, with container:NAME) for its root filesystem",
                ));
            }
        }
    }
}

/// What is wrong with a list of `KEY=VALUE` environment entries (`env[i]` fields).
pub fn env_problems(entries: &[String]) -> Vec<SpecError> {
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let field = format!("env[{i}]");
        if !check_nul(&mut out, &field, entry) {
            continue;
        }
        match entry.split_once('=') {
            Some((key, _)) if !key.is_empty() => {}
            Some(_) => out.push(SpecError::new(
                "invalid_env",
                field,
                format!("{entry:?} has an empty variable name"),
            )),
            None => out.push(SpecError::new(
                "invalid_env",
                field,
                format!("{entry:?} is not of the form KEY=VALUE"),
            )),
        }
    }
    out
}

/// Records an error if `value` holds a NUL byte; returns whether it is NUL-free.
fn check_nul(out: &mut Vec<SpecError>, field: &str, value: &str) -> bool {
    if value.contains('\0') {
        out.push(SpecError::new("nul_byte", field, "contains a NUL byte"));
        return false;
    }
    true
}

#[cfg(test)]
mod tests;
