//! The lifecycle API the CLI and the server call: create, start, wait, exec, remove, list.
//!
//! `create` validates the spec, writes the bundle (`config.json`, readable by runc too), makes the
//! cgroup and launches the init helper, which reports `Created` once everything is in place;
//! `start` runs the command. From then on the helper's monitor owns the container and removes it
//! when it ends; `remove` kills it and waits for that.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use isolab_shared::spec::{ContainerSpec, NsMode, SpecError};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::cgroups::{self, CgroupError, CgroupManager, Resources};
use super::channel::Channel;
use super::cleanup;
use super::image::{resolve_user, Image, ImageError, ImageStore, BUSYBOX_IMAGE};
use super::init::protocol::{
    CreateConfig, ExitStatus, Failure, FromInit, Launch, RootfsLayers, ToInit,
};
use super::launcher::{InitProcess, LaunchError};
use super::peer::Peer;
use super::spec::{self as oci, SpecBuildError, SpecContext};
use super::state::{self, ContainerState, NameError, ProcRef, Status};
use super::{is_id, new_id, sys, uid_ranges, Paths};

/// How long `remove` waits for a container's monitor to clean up before doing it itself.
const REMOVE_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("invalid spec: {0}")]
    InvalidSpec(#[from] SpecError),
    #[error("{0}")]
    Spec(#[from] SpecBuildError),
    #[error("{0}")]
    Image(#[from] ImageError),
    #[error("{0}")]
    Name(#[from] NameError),
    #[error("no such container: {0}")]
    NotFound(String),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("cgroup: {0}")]
    Cgroup(#[from] CgroupError),
    #[error("{0}")]
    Launch(#[from] LaunchError),
    #[error("{0}")]
    Init(Failure),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("unexpected answer from the init helper: {0}")]
    Protocol(String),
    #[error("network: {0}")]
    Network(#[from] super::cni::CniError),
    #[error("{0}")]
    UidRange(#[from] super::uid_ranges::UidRangeError),
    #[error("{0}")]
    Volume(#[from] super::volumes::VolumeError),
}

impl RuntimeError {
    pub(super) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RuntimeError {
        let what = what.into();
        move |source| RuntimeError::Io { what, source }
    }
}

/// Where the container's standard streams go.
pub enum StdioSpec {
    /// A pty made inside the container; its master comes back in [`Container::pty`].
    Tty,
    /// Stdin, stdout, stderr.
    Fds([OwnedFd; 3]),
}

#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Allow `host` for namespaces other than user and time (the CLI's caller is root anyway; the
    /// server refuses it for attendees).
    pub allow_host_namespaces: bool,
    /// Move the container's upper folder here when it ends (see `RootfsLayers::keep_upper`).
    pub keep_upper: Option<PathBuf>,
    /// Give it an `/etc/hosts` of its own, bound from its state folder, that
    /// [`Runtime::write_hosts`] rewrites as its network's containers come and go.
    pub hosts_file: bool,
    /// Where the spec's named volumes are kept (`<root>/<NAME>`, made when missing); without
    /// one, a spec with volumes is refused.
    pub volume_root: Option<PathBuf>,
}

/// The runtime: where files go, the host's cgroups, the image store.
pub struct Runtime {
    pub paths: Paths,
    pub cgroups: Box<dyn CgroupManager>,
    pub images: ImageStore,
}

/// A created container, or a process started by `exec`, and its helper.
#[derive(Debug)]
pub struct Container {
    pub id: String,
    pub name: Option<String>,
    /// Host pid of the container's first process (or of the exec'd process).
    pub pid: i32,
    /// The pty master, with a tty.
    pub pty: Option<OwnedFd>,
    pub(super) init: InitProcess,
}

/// A container's own `/etc/hosts`, in its state folder.
const HOSTS: &str = "hosts";

/// Bind `source` on the container's `/etc/hosts` (read-write, as docker's).
fn add_hosts_mount(spec: &mut Spec, source: &std::path::Path) {
    let mount = oci_spec::runtime::MountBuilder::default()
        .destination("/etc/hosts")
        .typ("bind")
        .source(source)
        .options(vec!["rbind".to_string(), "rw".to_string()])
        .build()
        .expect("a mount builder cannot fail");
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.push(mount);
    spec.set_mounts(Some(mounts));
}

impl Runtime {
    /// Attach a created (not yet started) container to a network: the attachment is saved
    /// first (so that every removal path DELs it), then ADD runs on its namespace. Returns
    /// CNI's result.
    pub fn attach_network(
        &self,
        container: &Container,
        mut attachment: super::cni::Attachment,
    ) -> Result<serde_json::Value, RuntimeError> {
        let dir = self.paths.container(&container.id);
        attachment.save(&dir)?;
        let netns = std::path::PathBuf::from(format!("/proc/{}/ns/net", container.pid));
        let result = attachment.add(&netns)?;
        attachment.save(&dir)?;
        Ok(result)
    }

    /// Rewrite a container's `/etc/hosts` in place (the bind mount holds the file, so it is
    /// written, not replaced).
    pub fn write_hosts(&self, id: &str, text: &str) -> Result<(), RuntimeError> {
        use std::io::Write;
        let path = self.paths.container(id).join(HOSTS);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(RuntimeError::io(format!("open {}", path.display())))?;
        f.write_all(text.as_bytes())
            .map_err(RuntimeError::io(format!("write {}", path.display())))
    }

    /// Give a created, not yet started container (one made for the warm pool) to a request:
    /// its name and its limits become the request's; the hostname goes with
    /// [`Container::start_as`], the bundle's record with [`Runtime::record_adopted`]. The
    /// caller checked that everything else matches.
    pub fn adopt(&self, c: &mut Container, spec: &ContainerSpec) -> Result<(), RuntimeError> {
        spec.validate()?;
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        let limits = oci::limits(spec, cpus, host_memory())?;
        self.cgroups.update(&c.id, &resources_of(Some(&limits)))?;
        if let Some(name) = &spec.name {
            state::reserve_name(&self.paths, name, &c.id)?;
            if let Some(old) = c.name.replace(name.clone()) {
                let _ = std::fs::remove_file(self.paths.name(&old));
            }
            ContainerState::update(&self.paths, &c.id, |st| st.name = Some(name.clone()))
                .map_err(RuntimeError::io("record the container's name"))?;
        }
        Ok(())
    }

    /// Free `name` if it is `id`'s, before `id` is torn down: a new container may take the
    /// name at once (a quick unlink, no scan).
    pub fn release_name(&self, name: &str, id: &str) {
        if state::resolve_name(&self.paths, name).as_deref() == Some(id) {
            let _ = std::fs::remove_file(self.paths.name(name));
        }
    }

    /// After [`Runtime::adopt`]: the bundle (`config.json`) says what the container now is, as
    /// a fresh one's would (its hostname and limits). A record only, so not on the way to the
    /// prompt (0.7 ms: the spec with its seccomp profile is parsed and written again).
    pub fn record_adopted(&self, id: &str, spec: &ContainerSpec) -> Result<(), RuntimeError> {
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        let limits = oci::limits(spec, cpus, host_memory())?;
        let dir = self.paths.container(id);
        let bundle = std::fs::read(dir.join("config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Spec>(&b).ok());
        if let Some(mut bundle) = bundle {
            bundle.set_hostname(spec.hostname.clone());
            if let Some(linux) = bundle.linux_mut() {
                let mut res = linux.resources().clone().unwrap_or_default();
                res.set_memory(*limits.memory());
                res.set_cpu(limits.cpu().clone());
                res.set_pids(*limits.pids());
                linux.set_resources(Some(res));
            }
            oci::write_bundle(&dir, &bundle).map_err(RuntimeError::io("write config.json"))?;
        }
        Ok(())
    }

    pub fn new(paths: Paths) -> Result<Runtime, RuntimeError> {
        let cgroups = cgroups::detect_at(&paths.cgroup_root)?;
        searchable(&paths.containers())?;
        let images = ImageStore::new(paths.data_root.clone());
        Ok(Runtime {
            paths,
            cgroups,
            images,
        })
    }

    /// Validate, prepare and set up a container; it waits for [`Container::start`].
    pub fn create(
        &self,
        spec: &ContainerSpec,
        opts: &CreateOptions,
        stdio: StdioSpec,
    ) -> Result<Container, RuntimeError> {
        spec.validate()?;
        // The store's lock, shared, until the container's state names its layers: a collection
        // (exclusive) then either ran before the image was opened or sees this container.
        let _store = self.images.lock(false)?;
        // Everything that can be refused is checked before anything is made.
        let image = match self.images.open(&spec.image) {
            Err(ImageError::NotFound(_)) if spec.image == BUSYBOX_IMAGE => {
                self.images.init_busybox()?
            }
            r => r?,
        };
        self.create_from(spec, image, opts, stdio)
    }

    /// [`Self::create`] from an image already opened (a build's image so far).
    pub fn create_from(
        &self,
        spec: &ContainerSpec,
        image: Image,
        opts: &CreateOptions,
        stdio: StdioSpec,
    ) -> Result<Container, RuntimeError> {
        spec.validate()?;
        let user = match &image.settings.user {
            Some(u) => Some(resolve_user(&image.layers, u)?),
            None => None,
        };
        let peer = self.peer_for(spec)?;
        let id = new_id();
        let resolve = |name: &str| self.find(name).ok().and_then(|s| s.init).map(|p| p.pid);
        let uid_base = match oci::with_effective_user(spec)?.namespaces.user {
            NsMode::Private => Some(uid_ranges::claim(&self.paths, &id)?),
            _ => None,
        };
        let ctx = SpecContext {
            id: id.clone(),
            allow_host: opts.allow_host_namespaces,
            // A peer that makes no time namespace gets a bundle without one.
            have_time_ns: sys::have_time_namespace()
                && peer.as_ref().is_none_or(|p| p.has_time_namespace()),
            uid_base,
            host_cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            host_memory: host_memory(),
            resolve: &resolve,
            image: &image.settings,
            user,
            volume_root: opts.volume_root.as_deref(),
        };
        let mut oci_spec = oci::to_oci(spec, &ctx).inspect_err(|_| {
            uid_ranges::release(&self.paths, &id);
        })?;
        if opts.hosts_file {
            add_hosts_mount(&mut oci_spec, &self.paths.container(&id).join(HOSTS));
        }
        // Start the helper first: its exec and start-up (about 1 ms) run on another core while
        // we write the bundle and make the cgroup. The helper only waits for `Create`.
        let sealed = spec.init || !namespace_is_new(&oci_spec, LinuxNamespaceType::Pid);
        let init = InitProcess::spawn(sealed)?;
        let made = match self.prepare(&id, spec, &oci_spec, image, uid_base, opts) {
            Ok((st, cfg)) => {
                let cfg = CreateConfig { peer, ..cfg };
                self.launch(st, cfg, stdio, init)
            }
            Err(e) => {
                init.reap(); // it reads end of file instead of `Create`, and exits
                Err(e)
            }
        };
        made.inspect_err(|_| {
            cleanup::teardown(&self.paths, &id, self.cgroups.as_ref());
        })
    }

    /// The installed peer a spec names (None for our own runtime), refused when it is missing
    /// or cannot make what the spec asks for.
    fn peer_for(&self, spec: &ContainerSpec) -> Result<Option<Peer>, RuntimeError> {
        let name = spec.runtime_name();
        if name == isolab_shared::spec::RUNTIMES[0] {
            return Ok(None);
        }
        let peer = Peer::find(name, &self.paths)
            .map_err(|e| SpecBuildError::RuntimeNotInstalled(e.to_string()))?;
        let user = oci::with_effective_user(spec)?.namespaces.user.clone();
        if !spec.volumes.is_empty() && user != NsMode::Host && !peer.has_idmapped_mounts() {
            let (major, minor) = peer.version;
            return Err(SpecBuildError::RuntimeUnsupported {
                field: "volumes",
                message: format!(
                    "{name} {major}.{minor} makes no idmapped mounts (runc 1.2 or crun do): \
                     a volume's files would be nobody's inside"
                ),
            }
            .into());
        }
        Ok(Some(peer))
    }

    /// Everything before the helper is told to `Create`: state, name, bundle, writable layer,
    /// cgroup.
    fn prepare(
        &self,
        id: &str,
        spec: &ContainerSpec,
        oci_spec: &Spec,
        image: Image,
        uid_base: Option<u32>,
        opts: &CreateOptions,
    ) -> Result<(ContainerState, CreateConfig), RuntimeError> {
        let dir = self.paths.container(id);
        std::fs::create_dir_all(&dir).map_err(RuntimeError::io("make the state folder"))?;
        let volumes = match &opts.volume_root {
            Some(root) => spec
                .volume_mounts()
                .iter()
                .map(|v| super::volumes::ensure(root, &v.name))
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        let st = ContainerState {
            uid_base,
            lower: image.layers.clone(),
            volumes,
            runtime: spec
                .runtime
                .clone()
                .filter(|r| r != isolab_shared::spec::RUNTIMES[0]),
            ..ContainerState::creating(
                id,
                spec.name.clone(),
                spec.image.clone(),
                oci_spec
                    .process()
                    .as_ref()
                    .and_then(|p| p.args().clone())
                    .unwrap_or_default(),
            )
        };
        st.save(&self.paths)
            .map_err(RuntimeError::io("write state.json"))?;
        if let Some(name) = &spec.name {
            state::reserve_name(&self.paths, name, id)?;
        }
        oci::write_bundle(&dir, oci_spec).map_err(RuntimeError::io("write config.json"))?;
        if opts.hosts_file {
            let name = spec.name.as_deref().unwrap_or(id);
            let text = crate::network::plan::hosts_file(&[]) + &format!("127.0.1.1\t{name}\n");
            std::fs::write(dir.join(HOSTS), text).map_err(RuntimeError::io("write hosts"))?;
            // Its root may edit it, as in docker (the file is rewritten in place, so the owner
            // stays).
            if let Some(base) = uid_base {
                std::os::unix::fs::chown(dir.join(HOSTS), Some(base), Some(base))
                    .map_err(RuntimeError::io("chown hosts"))?;
            }
        }
        let joins_mnt = namespace_path(oci_spec, LinuxNamespaceType::Mount).is_some();
        let rootfs = if joins_mnt {
            None
        } else {
            let layer = self.paths.layer(id);
            if let Some(size) = spec.storage_size {
                mount_storage_cap(&layer, size.bytes())?;
            }
            // overlayfs takes the top layer first.
            let layers = RootfsLayers {
                lower: image.layers.iter().rev().cloned().collect(),
                upper: layer.join("upper"),
                work: layer.join("work"),
                target: self.paths.rootfs(id),
                keep_upper: opts.keep_upper.clone(),
                overlay: true,
            };
            for d in [&layers.upper, &layers.work, &layers.target] {
                std::fs::create_dir_all(d).map_err(RuntimeError::io("make the writable layer"))?;
            }
            Some(layers)
        };
        self.cgroups.create(id, &resources(oci_spec))?;
        let cfg = CreateConfig {
            id: id.to_string(),
            spec: oci_spec.clone(),
            rootfs,
            cgroup_procs: self.cgroups.procs_files(id),
            cgroup_v1_dirs: match self.cgroups.version() {
                cgroups::CgroupVersion::V1 => self.cgroups.container_dirs(id),
                cgroups::CgroupVersion::V2 => Vec::new(),
            },
            reaper: namespace_is_new(oci_spec, LinuxNamespaceType::Pid) && spec.init,
            paths: self.paths.clone(),
            oci_start_fifo: None,
            peer: None,
        };
        Ok((st, cfg))
    }

    /// Hand the prepared container to the helper and wait until it is set up.
    fn launch(
        &self,
        mut st: ContainerState,
        cfg: CreateConfig,
        stdio: StdioSpec,
        init: InitProcess,
    ) -> Result<Container, RuntimeError> {
        let msg = ToInit::Create(Box::new(cfg));
        let container = hand_over(init, msg, stdio, st.id.clone(), st.name.clone())?;
        st.status = Status::Created;
        st.monitor = ProcRef::of(container.init.pid());
        st.init = ProcRef::of(container.pid);
        if let Err(e) = st.save(&self.paths) {
            container.init.reap();
            return Err(RuntimeError::io("write state.json")(e));
        }
        Ok(container)
    }

    /// Find a container by name or id (a unique id prefix is enough, as with docker).
    pub fn find(&self, name_or_id: &str) -> Result<ContainerState, RuntimeError> {
        let not_found = || RuntimeError::NotFound(name_or_id.to_string());
        if let Some(id) = state::resolve_name(&self.paths, name_or_id) {
            return ContainerState::load(&self.paths, &id).map_err(|_| not_found());
        }
        if !is_id(name_or_id) {
            return Err(not_found());
        }
        let mut matches = self
            .list()
            .into_iter()
            .filter(|s| s.id.starts_with(name_or_id));
        match (matches.next(), matches.next()) {
            (Some(s), None) => Ok(s),
            _ => Err(not_found()),
        }
    }

    pub fn list(&self) -> Vec<ContainerState> {
        state::list(&self.paths)
    }

    /// The image layer folders live containers use (for the store's collection, which asks
    /// under its lock).
    pub fn layers_in_use(&self) -> std::collections::BTreeSet<PathBuf> {
        self.list().into_iter().flat_map(|c| c.lower).collect()
    }

    /// Kill a container and wait until it is gone (its monitor cleans up; if the monitor is dead,
    /// we do).
    pub fn remove(&self, name_or_id: &str) -> Result<(), RuntimeError> {
        let st = self.find(name_or_id)?;
        let _ = self.cgroups.kill_all(&st.id);
        let deadline = Instant::now() + REMOVE_WAIT;
        while st.is_owned() && self.paths.container(&st.id).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let problems = cleanup::teardown(&self.paths, &st.id, self.cgroups.as_ref());
        match problems.is_empty() {
            true => Ok(()),
            false => Err(RuntimeError::Protocol(problems.join("; "))),
        }
    }

    /// Stop a container as `docker stop` does: SIGTERM to its first process, up to `timeout` for
    /// it to end (its monitor then removes it), then [`Runtime::remove`], which kills every
    /// process through the cgroup: a command that ignores SIGTERM (as a PID 1 without a
    /// handler does) ends all the same.
    pub fn stop(&self, name_or_id: &str, timeout: Duration) -> Result<(), RuntimeError> {
        let st = self.find(name_or_id)?;
        if let Some(init) = st.init.filter(|p| p.is_alive()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(init.pid),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + timeout;
            while init.is_alive() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        match self.remove(&st.id) {
            Err(RuntimeError::NotFound(_)) => Ok(()),
            other => other,
        }
    }

    /// Remove whatever crashed runs left behind.
    pub fn gc(&self) -> cleanup::GcReport {
        cleanup::gc(&self.paths, self.cgroups.as_ref())
    }

    /// Wait (up to `timeout`) for containers whose creator is dead but whose monitor still
    /// lives: a killed server's, being torn down by their monitors (their processes die with
    /// the server). A restarted server waits for them before it collects what is left, so no
    /// late teardown (a CNI DEL recreating a lease folder) follows its own clean-up.
    pub fn wait_for_orphans(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let orphans = self
                .list()
                .iter()
                .filter(|s| {
                    !s.detached
                        && s.launcher.is_some_and(|l| !l.is_alive())
                        && s.monitor.is_some_and(|m| m.is_alive())
                })
                .count();
            if orphans == 0 || Instant::now() >= deadline {
                return orphans;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Container {
    /// Run the command; returns once it has been exec'd.
    pub fn start(&mut self) -> Result<(), RuntimeError> {
        self.start_with(ToInit::Start)
    }

    /// [`Container::start`] with settings that were not known at create (a pooled container).
    pub fn start_as(&mut self, launch: Launch) -> Result<(), RuntimeError> {
        self.start_with(ToInit::StartAs(launch))
    }

    fn start_with(&mut self, msg: ToInit) -> Result<(), RuntimeError> {
        self.init.send(&msg, &[])?;
        match self.init.recv()?.0 {
            FromInit::Started => Ok(()),
            FromInit::Failed(f) => Err(RuntimeError::Init(f)),
            other => Err(RuntimeError::Protocol(format!("{other:?}"))),
        }
    }

    /// Wait for the end. For a container, all of it has been removed when this returns.
    pub fn wait(self) -> Result<ExitStatus, RuntimeError> {
        let result = loop {
            match self.init.recv() {
                Ok((FromInit::Exited(status), _)) => break Ok(status),
                Ok((FromInit::Failed(f), _)) => break Err(RuntimeError::Init(f)),
                Ok(_) => continue,
                Err(e) => break Err(e.into()),
            }
        };
        self.init.reap();
        result
    }

    /// A descriptor that becomes readable when the helper reports (the command's end): wait
    /// on it without a thread, then [`Container::wait`] returns at once. A server waits this
    /// way for thousands of containers; a thread each would exhaust its blocking pool.
    pub fn report_fd(&self) -> std::io::Result<OwnedFd> {
        Ok(self.init.channel_clone()?.into_fd())
    }

    /// Forward a signal to the command.
    pub fn signal(&self, sig: i32) -> Result<(), RuntimeError> {
        Ok(self.init.send(&ToInit::Signal(sig), &[])?)
    }

    /// A channel on which a thread can send `Signal` while another waits.
    pub fn signaller(&self) -> Result<Signaller, RuntimeError> {
        Ok(Signaller(
            self.init
                .channel_clone()
                .map_err(RuntimeError::io("clone the helper channel"))?,
        ))
    }

    /// Let the container run on its own; its monitor removes it when it ends. `paths` is the
    /// runtime's: the state records it, so a server starting up does not wait for it.
    pub fn detach(self, paths: &Paths) -> Result<(), RuntimeError> {
        match ContainerState::update(paths, &self.id, |st| st.detached = true) {
            Ok(()) => {}
            // Gone already: it ended, and its monitor removed it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(RuntimeError::io("write state.json")(e)),
        }
        self.init.send(&ToInit::Detach, &[])?;
        self.init.reap_detached();
        Ok(())
    }

    /// Host pid of the container's monitor (its init helper).
    pub fn init_pid(&self) -> i32 {
        self.init.pid()
    }

    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), RuntimeError> {
        if let Some(pty) = &self.pty {
            sys::set_winsize(pty.as_raw_fd(), rows, cols)
                .map_err(RuntimeError::io("resize the terminal"))?;
        }
        Ok(())
    }
}

/// Sends signals to a container from another thread.
pub struct Signaller(Channel);

impl Signaller {
    pub fn signal(&self, sig: i32) {
        let _ = self.0.send(&ToInit::Signal(sig));
    }
}

/// Send `Create` or `Exec` with the stdio descriptors (our copies close once sent) and wait for
/// `Created`: the pid and, with a tty, the pty master. On failure the helper is reaped.
pub(super) fn hand_over(
    init: InitProcess,
    msg: ToInit,
    stdio: StdioSpec,
    id: String,
    name: Option<String>,
) -> Result<Container, RuntimeError> {
    let created = init
        .send(&msg, &stdio_fds(&stdio))
        .map_err(RuntimeError::from)
        .and_then(|()| {
            drop(stdio);
            match init.recv()? {
                (FromInit::Created { pid }, mut fds) => Ok((pid, fds.pop())),
                (FromInit::Failed(f), _) => Err(RuntimeError::Init(f)),
                (other, _) => Err(RuntimeError::Protocol(format!("{other:?}"))),
            }
        });
    match created {
        Ok((pid, pty)) => Ok(Container {
            id,
            name,
            pid,
            pty,
            init,
        }),
        Err(e) => {
            init.reap();
            Err(e)
        }
    }
}

fn stdio_fds(stdio: &StdioSpec) -> Vec<i32> {
    match stdio {
        StdioSpec::Tty => Vec::new(),
        StdioSpec::Fds(fds) => fds.iter().map(|f| f.as_raw_fd()).collect(),
    }
}

fn namespace_path(spec: &Spec, kind: LinuxNamespaceType) -> Option<PathBuf> {
    spec.linux()
        .as_ref()?
        .namespaces()
        .as_ref()?
        .iter()
        .find(|n| n.typ() == kind)?
        .path()
        .clone()
}

pub(super) fn namespace_is_new(spec: &Spec, kind: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|list| list.iter().any(|n| n.typ() == kind && n.path().is_none()))
}

/// The cgroup limits the spec asks for.
pub(super) fn resources(spec: &Spec) -> Resources {
    resources_of(spec.linux().as_ref().and_then(|l| l.resources().as_ref()))
}

fn resources_of(r: Option<&oci_spec::runtime::LinuxResources>) -> Resources {
    let memory = r.and_then(|r| r.memory().as_ref());
    let cpu = r.and_then(|r| r.cpu().as_ref());
    Resources {
        memory_bytes: memory
            .and_then(|m| m.limit())
            .and_then(|l| u64::try_from(l).ok()),
        cpu_quota_us: cpu.and_then(|c| c.quota()),
        cpu_period_us: cpu.and_then(|c| c.period()),
        pids_max: r.and_then(|r| r.pids().as_ref()).map(|p| p.limit()),
        devices: r
            .and_then(|r| r.devices().as_ref())
            .map(|list| list.iter().map(device_rule).collect())
            .unwrap_or_default(),
    }
}

/// Make `dir` (and its parent, the state root) exist and searchable by everyone (`--x`, no
/// listing): a container's root, in a user namespace, reaches its root folder, its hosts file
/// and its mount points through these as an unprivileged host uid. A state root made 0700 (by
/// `mktemp -d`) would refuse every create.
fn searchable(dir: &std::path::Path) -> Result<(), RuntimeError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(RuntimeError::io(format!("make {}", dir.display())))?;
    for d in [Some(dir), dir.parent()].into_iter().flatten() {
        let meta =
            std::fs::metadata(d).map_err(RuntimeError::io(format!("stat {}", d.display())))?;
        let mode = meta.permissions().mode();
        if mode & 0o011 != 0o011 {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode | 0o011))
                .map_err(RuntimeError::io(format!("chmod {}", d.display())))?;
        }
    }
    Ok(())
}

/// The writable layer's folder as a tmpfs of `bytes` (`--storage-opt size=`): writes past it
/// fail with ENOSPC instead of filling the host's disk. tmpfs pages are charged to the memory
/// cgroup of the process that writes them, so they count toward the container's memory too.
/// (A file system with project quotas, as docker uses on xfs, would keep them apart: not here.)
fn mount_storage_cap(dir: &std::path::Path, bytes: u64) -> Result<(), RuntimeError> {
    use nix::mount::{mount, MsFlags};
    std::fs::create_dir_all(dir).map_err(RuntimeError::io("make the writable layer"))?;
    let data = format!("size={bytes},mode=0755");
    mount(
        Some("isolab-layer"),
        dir,
        Some("tmpfs"),
        MsFlags::MS_NODEV | MsFlags::MS_NOSUID,
        Some(data.as_str()),
    )
    .map_err(|e| RuntimeError::io("mount the writable layer's size cap")(e.into()))
}

/// An OCI device cgroup entry as a [`cgroups::DeviceRule`].
pub(super) fn device_rule(d: &oci_spec::runtime::LinuxDeviceCgroup) -> cgroups::DeviceRule {
    use oci_spec::runtime::LinuxDeviceType;
    cgroups::DeviceRule {
        allow: d.allow(),
        kind: match d.typ() {
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => Some('c'),
            Some(LinuxDeviceType::B) => Some('b'),
            _ => None,
        },
        major: d.major().and_then(|m| u32::try_from(m).ok()),
        minor: d.minor().and_then(|m| u32::try_from(m).ok()),
        access: ["r", "w", "m"]
            .into_iter()
            .filter(|a| d.access().as_deref().unwrap_or("rwm").contains(a))
            .collect(),
    }
}

/// Total memory of the host, from /proc/meminfo.
fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(u64::MAX)
}
