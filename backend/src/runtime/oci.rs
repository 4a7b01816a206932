//! The OCI runtime lifecycle (`isolab oci create|start|state|kill|delete`), as runc runs it: a
//! container is made from a bundle (a folder with `config.json` and its root folder) under a
//! caller-chosen id, waits in `created` until `start`, and stays as `stopped` after its
//! process ends until `delete`.
//!
//! It is the same machinery as `isolab run` (the init helper, its monitor, namespaces, cgroups,
//! seccomp) with three differences: the root is the bundle's folder as it is (no image, no
//! overlay, no user namespace unless `config.json` asks for one); `start` comes from another
//! process, through a FIFO in the container's state folder that the monitor reads; and the end
//! keeps the state. The OCI id is the container's name; isolab gives it an id of its own.

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde::Serialize;

use super::container::{
    hand_over, namespace_is_new, resources, Container, Runtime, RuntimeError, StdioSpec,
};
use super::init::protocol::{CreateConfig, RootfsLayers, ToInit};
use super::launcher::InitProcess;
use super::state::{self, ContainerState, ProcRef, Status};
use super::{cgroups, cleanup, new_id, sys};

/// The FIFO in a container's state folder whose first byte starts it.
const START_FIFO: &str = "start";
/// The OCI runtime spec version our state documents follow.
pub const OCI_VERSION: &str = "1.0.2";

/// The state document of the runtime spec (`runc state`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    pub oci_version: &'static str,
    pub id: String,
    /// `creating`, `created`, `running` or `stopped`.
    pub status: &'static str,
    /// The container process's host pid (0 once stopped).
    pub pid: i32,
    pub bundle: PathBuf,
    #[serde(skip_serializing_if = "std::collections::HashMap::is_empty")]
    pub annotations: std::collections::HashMap<String, String>,
}

impl Runtime {
    /// `oci create`: the container `name` from the bundle at `bundle`, set up and waiting for
    /// [`Runtime::oci_start`].
    pub fn oci_create(
        &self,
        name: &str,
        bundle: &Path,
        stdio: StdioSpec,
    ) -> Result<Container, RuntimeError> {
        // The id becomes the container's name (a file name in the state folder).
        if !isolab_shared::spec::is_valid_name(name) {
            return Err(RuntimeError::Protocol(format!(
                "{name:?} is not a valid container id: use [a-zA-Z0-9][a-zA-Z0-9_.-]{{0,62}}"
            )));
        }
        let bundle = bundle
            .canonicalize()
            .map_err(RuntimeError::io(format!("bundle {}", bundle.display())))?;
        let config = bundle.join("config.json");
        let spec = Spec::load(&config).map_err(|e| {
            RuntimeError::Protocol(format!(
                "{}: not an OCI runtime spec: {e}",
                config.display()
            ))
        })?;
        let process = spec.process().as_ref().ok_or_else(|| {
            RuntimeError::Protocol(format!("{}: no process to run", config.display()))
        })?;
        let root = spec
            .root()
            .as_ref()
            .map_or(PathBuf::from("rootfs"), |r| r.path().clone());
        let root = bundle.join(root);
        if !root.is_dir() {
            return Err(RuntimeError::Protocol(format!(
                "{}: the root folder {} does not exist",
                config.display(),
                root.display()
            )));
        }
        let id = new_id();
        let dir = self.paths.container(&id);
        fs::create_dir_all(&dir).map_err(RuntimeError::io("make the state folder"))?;
        let made = (|| {
            let st = ContainerState {
                bundle: Some(bundle.clone()),
                ..ContainerState::creating(
                    &id,
                    Some(name.to_string()),
                    format!("bundle:{}", bundle.display()),
                    process.args().clone().unwrap_or_default(),
                )
            };
            st.save(&self.paths)
                .map_err(RuntimeError::io("write state.json"))?;
            state::reserve_name(&self.paths, name, &id)?;
            let fifo = dir.join(START_FIFO);
            nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
                .map_err(|e| RuntimeError::io("make the start FIFO")(e.into()))?;
            // As runc does: the spec's device rules, then the default devices allowed after
            // them (a `runc spec` bundle says only "deny all" and relies on that).
            let mut res = resources(&spec);
            let mut allowed = crate::runtime::spec::default_device_rules();
            allowed.retain(|r| r.allow());
            res.devices
                .extend(allowed.iter().map(super::container::device_rule));
            self.cgroups.create(&id, &res)?;
            let cfg = CreateConfig {
                id: id.clone(),
                spec: spec.clone(),
                rootfs: Some(RootfsLayers {
                    lower: Vec::new(),
                    upper: PathBuf::new(),
                    work: PathBuf::new(),
                    target: root,
                    keep_upper: None,
                    overlay: false,
                }),
                cgroup_procs: self.cgroups.procs_files(&id),
                cgroup_v1_dirs: match self.cgroups.version() {
                    cgroups::CgroupVersion::V1 => self.cgroups.container_dirs(&id),
                    cgroups::CgroupVersion::V2 => Vec::new(),
                },
                reaper: false,
                paths: self.paths.clone(),
                oci_start_fifo: Some(fifo),
                peer: None,
            };
            // The sealed copy of our binary when a helper could be seen from inside (as `create`).
            let init = InitProcess::spawn(!namespace_is_new(&spec, LinuxNamespaceType::Pid))?;
            let mut st = st;
            let container = hand_over(
                init,
                ToInit::Create(Box::new(cfg)),
                stdio,
                id.clone(),
                Some(name.to_string()),
            )?;
            st.status = Status::Created;
            st.monitor = ProcRef::of(container.init_pid());
            st.init = ProcRef::of(container.pid);
            st.save(&self.paths)
                .map_err(RuntimeError::io("write state.json"))?;
            Ok(container)
        })();
        made.inspect_err(|_| {
            cleanup::teardown(&self.paths, &id, self.cgroups.as_ref());
        })
    }

    /// `oci start`: run the created container's process.
    pub fn oci_start(&self, name: &str) -> Result<(), RuntimeError> {
        let st = self.find(name)?;
        if st.status != Status::Created {
            return Err(RuntimeError::Protocol(format!(
                "{name} is {}, not created",
                status_name(&st)
            )));
        }
        let fifo = self.paths.container(&st.id).join(START_FIFO);
        // Non-blocking: with no monitor reading, this fails (ENXIO) instead of hanging.
        let file = fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .map_err(RuntimeError::io(format!(
                "{name} has no monitor to start it"
            )))?;
        nix::unistd::write(&file, b"s").map_err(|e| RuntimeError::io("start")(e.into()))?;
        // `start` returns once the process runs (or has run and ended), as runc's does.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            match ContainerState::load(&self.paths, &st.id) {
                Ok(s) if s.status == Status::Created => {}
                _ => return Ok(()),
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        Err(RuntimeError::Protocol(format!("{name} did not start")))
    }

    /// `oci state`: the runtime spec's state document.
    pub fn oci_state(&self, name: &str) -> Result<OciState, RuntimeError> {
        let st = self.find(name)?;
        let config = st.bundle.as_ref().map(|b| b.join("config.json"));
        let annotations = config
            .and_then(|c| Spec::load(c).ok())
            .and_then(|s| s.annotations().clone())
            .unwrap_or_default();
        let alive = st.init.filter(|p| p.is_alive());
        Ok(OciState {
            oci_version: OCI_VERSION,
            id: name.to_string(),
            status: status_name(&st),
            pid: match st.status {
                Status::Stopped => 0,
                _ => alive.map_or(0, |p| p.pid),
            },
            bundle: st.bundle.clone().unwrap_or_default(),
            annotations,
        })
    }

    /// `oci kill`: send `signal` to the container's process.
    pub fn oci_kill(
        &self,
        name: &str,
        signal: nix::sys::signal::Signal,
    ) -> Result<(), RuntimeError> {
        let st = self.find(name)?;
        match (st.status, st.init.filter(|p| p.is_alive())) {
            (Status::Created | Status::Running, Some(p)) => {
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.pid), signal)
                    .map_err(|e| RuntimeError::io(format!("kill {name}"))(e.into()))
            }
            _ => Err(RuntimeError::NotRunning(name.to_string())),
        }
    }

    /// `oci delete`: remove a stopped (or, with `force`, any) container.
    pub fn oci_delete(&self, name: &str, force: bool) -> Result<(), RuntimeError> {
        let st = self.find(name)?;
        let running = st.status != Status::Stopped && st.init.is_some_and(|p| p.is_alive());
        if running && !force {
            return Err(RuntimeError::Protocol(format!(
                "{name} is {}: stop it first, or delete --force",
                status_name(&st)
            )));
        }
        self.remove(&st.id)
    }
}

/// The runtime spec's name for a container's status (a process that died without its monitor
/// noticing counts as stopped).
fn status_name(st: &ContainerState) -> &'static str {
    let alive = st.init.is_some_and(|p| p.is_alive());
    match st.status {
        Status::Creating => "creating",
        Status::Created if alive => "created",
        Status::Running if alive => "running",
        _ => "stopped",
    }
}

/// Send the pty master to the caller's console socket, as runc does (`--console-socket`).
pub fn send_console(socket: &Path, master: &impl AsRawFd) -> Result<(), RuntimeError> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
    let stream = std::os::unix::net::UnixStream::connect(socket)
        .map_err(RuntimeError::io(format!("connect {}", socket.display())))?;
    let fds = [master.as_raw_fd()];
    let name = b"/dev/ptmx";
    let iov = [std::io::IoSlice::new(name)];
    sendmsg::<UnixAddr>(
        stream.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| RuntimeError::io("send the console")(e.into()))?;
    let _ = sys::set_cloexec(stream.as_raw_fd(), true);
    Ok(())
}
