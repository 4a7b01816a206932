//! `isolab run` and `isolab spec`.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use isolab_shared::spec::{ContainerSpec, MemorySize, Namespaces, NsMode};
use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};

use crate::runtime::container::{Container, CreateOptions, Runtime, StdioSpec};
use crate::runtime::pty::RawMode;
use crate::runtime::{spec as oci, sys};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Name the container (used by `exec`, `rm` and `--pid container:NAME`).
    #[arg(long)]
    name: Option<String>,
    /// The container's hostname (default: its name, else its short id).
    #[arg(long)]
    hostname: Option<String>,
    /// Memory limit, e.g. 64m or 1g (swap is off).
    #[arg(short = 'm', long)]
    memory: Option<MemorySize>,
    /// CPUs, e.g. 0.5.
    #[arg(long)]
    cpus: Option<f64>,
    /// Most processes at once.
    #[arg(long)]
    pids_limit: Option<i64>,
    /// Storage options, as docker's: `size=64m` caps the writable layer.
    #[arg(long = "storage-opt", value_name = "size=SIZE", value_parser = parse_storage_opt)]
    storage_opt: Option<MemorySize>,
    /// Environment variables, KEY=VALUE.
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long)]
    workdir: Option<String>,
    /// Allocate a terminal.
    #[arg(short = 't', long)]
    tty: bool,
    /// Keep stdin open (always the case; accepted for docker's `-it`).
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Run in the background and print the id; the container is removed when it ends. Not
    /// with --server: a remote container belongs to the connection, and ends with it.
    #[arg(short = 'd', long)]
    pub(super) detach: bool,
    /// Run a minimal init as PID 1 that forwards signals and reaps zombies (like docker's
    /// `--init`); without it the command itself is PID 1.
    #[arg(long)]
    init: bool,
    /// UTS namespace: private, host or container:NAME.
    #[arg(long, value_name = "MODE")]
    uts: Option<NsMode>,
    /// PID namespace.
    #[arg(long, value_name = "MODE")]
    pid: Option<NsMode>,
    /// Network namespace.
    #[arg(long, value_name = "MODE")]
    net: Option<NsMode>,
    /// IPC namespace.
    #[arg(long, value_name = "MODE")]
    ipc: Option<NsMode>,
    /// Mount namespace.
    #[arg(long, value_name = "MODE")]
    mnt: Option<NsMode>,
    /// Cgroup namespace.
    #[arg(long, value_name = "MODE")]
    cgroup: Option<NsMode>,
    /// User namespace: private (the default: root inside is an unprivileged host uid, a range
    /// of 65536 per container), host (root inside is the host's root), or container:NAME.
    #[arg(long, alias = "userns", value_name = "MODE")]
    user: Option<NsMode>,
    /// Time namespace.
    #[arg(long, value_name = "MODE")]
    time: Option<NsMode>,
    /// Replace the image's ENTRYPOINT (\"\" clears it); the image's CMD is then not used.
    #[arg(long, value_name = "PROGRAM")]
    entrypoint: Option<String>,
    /// Publish a port, HOSTPORT:CONTAINERPORT[/udp], on the server's session network: only
    /// with --server (a local run publishes nothing, and refuses the flag).
    #[arg(short = 'p', long = "publish", value_name = "PORTS")]
    publish: Vec<String>,
    /// `none`: a private network namespace with only its loopback, kept off the server's
    /// session network (docker's `--network none`); `default`: the session's network. A local
    /// run has only the loopback either way.
    #[arg(long, value_name = "NETWORK")]
    network: Option<String>,
    /// Mount a named volume, NAME:/path[:ro] (made if missing, kept until `isolab volume rm`;
    /// with --server, the session's, removed when it ends).
    #[arg(short = 'v', long = "volume", value_name = "NAME:PATH")]
    volumes: Vec<String>,
    /// The OCI runtime that runs it, from the same bundle: isolab (the default), runc or crun.
    #[arg(long, value_name = "NAME")]
    runtime: Option<String>,
    /// Add a Linux capability (e.g. SYS_ADMIN; ALL for every one).
    #[arg(long = "cap-add", value_name = "CAP")]
    cap_add: Vec<String>,
    /// Drop a Linux capability (ALL for every one).
    #[arg(long = "cap-drop", value_name = "CAP")]
    cap_drop: Vec<String>,
    /// Run it on an isolab server instead, through its WebSocket (e.g. ws://127.0.0.1:8080/ws),
    /// as the docker CLI talks to dockerd.
    #[arg(long, value_name = "URL")]
    pub(super) server: Option<String>,
    /// The image (`busybox` is built in).
    image: String,
    /// The command and its arguments (default: sh).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    cmd: Vec<String>,
}

impl RunArgs {
    pub(super) fn to_spec(&self) -> ContainerSpec {
        let mut ns = Namespaces::default();
        let pick = |given: &Option<NsMode>, default: &NsMode| {
            given.clone().unwrap_or_else(|| default.clone())
        };
        ns = Namespaces {
            mnt: pick(&self.mnt, &ns.mnt),
            uts: pick(&self.uts, &ns.uts),
            ipc: pick(&self.ipc, &ns.ipc),
            pid: pick(&self.pid, &ns.pid),
            net: pick(&self.net, &ns.net),
            cgroup: pick(&self.cgroup, &ns.cgroup),
            user: pick(&self.user, &ns.user),
            time: pick(&self.time, &ns.time),
        };
        ContainerSpec {
            image: self.image.clone(),
            name: self.name.clone(),
            hostname: self.hostname.clone(),
            // None given: the image's CMD (`sh` for busybox).
            cmd: self.cmd.clone(),
            entrypoint: self.entrypoint.as_ref().map(|e| {
                if e.is_empty() {
                    Vec::new()
                } else {
                    vec![e.clone()]
                }
            }),
            env: self.env.clone(),
            workdir: self.workdir.clone(),
            tty: self.tty,
            memory: self.memory,
            cpus: self.cpus,
            pids_limit: self.pids_limit,
            storage_size: self.storage_opt,
            namespaces: ns,
            init: self.init,
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            publish: self.publish.clone(),
            network: self.network.clone(),
            volumes: self.volumes.clone(),
            runtime: self.runtime.clone(),
        }
    }
}

/// Signals an attached `run` or `exec` passes on to the container (docker's sig-proxy).
const FORWARDED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Refused rather than ignored: only a server publishes ports (on its session network), and a
/// bundle's `config.json` has no place for them.
fn no_local_ports(args: &RunArgs) -> Result<()> {
    anyhow::ensure!(
        args.publish.is_empty(),
        "-p/--publish needs --server: only a server publishes ports (on its session \
         network), a local run or bundle does not; give --server ws://HOST:PORT/ws"
    );
    Ok(())
}

pub fn run(rt: &Runtime, args: RunArgs) -> Result<ExitCode> {
    no_local_ports(&args)?;
    let spec = args.to_spec();
    let opts = CreateOptions {
        allow_host_namespaces: true,
        volume_root: Some(rt.paths.local_volumes()),
        ..CreateOptions::default()
    };
    let stdio = if args.detach {
        StdioSpec::Fds(null_stdio()?)
    } else if args.tty {
        StdioSpec::Tty
    } else {
        StdioSpec::Fds(own_stdio()?)
    };
    let mask = block_forwarded();
    let mut container = rt.create(&spec, &opts, stdio)?;
    // The terminal's size before the command starts (it may ask at once).
    if let Some((rows, cols)) = sys::get_winsize(0).filter(|_| args.tty) {
        let _ = container.resize(rows, cols);
    }
    container.start()?;
    if args.detach {
        println!("{}", container.id);
        container.detach(&rt.paths)?;
        return Ok(ExitCode::SUCCESS);
    }
    attach(container, mask)
}

/// Relay the terminal (if any) and signals until the command ends; exit with its status.
pub fn attach(mut container: Container, mask: SigSet) -> Result<ExitCode> {
    let pty = container.pty.take();
    let resize_fd = pty.as_ref().map(|p| p.try_clone()).transpose()?;
    if let Some(fd) = &resize_fd {
        if let Some((rows, cols)) = sys::get_winsize(0) {
            let _ = sys::set_winsize(fd.as_raw_fd(), rows, cols);
        }
    }
    let signaller = container.signaller()?;
    std::thread::spawn(move || loop {
        let Ok(sig) = mask.wait() else { continue };
        match (sig, &resize_fd) {
            (Signal::SIGWINCH, Some(fd)) => {
                if let Some((rows, cols)) = sys::get_winsize(0) {
                    let _ = sys::set_winsize(fd.as_raw_fd(), rows, cols);
                }
            }
            (Signal::SIGWINCH, None) => {}
            (sig, _) => signaller.signal(sig as i32),
        }
    });
    if let Some(master) = pty {
        let _raw = RawMode::enable(0);
        relay_pty(master)?;
    }
    let status = container.wait()?;
    if status.oom_killed {
        eprintln!("isolab: the container was OOM-killed (it reached its memory limit)");
    }
    let code = if status.oom_killed { 137 } else { status.code };
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// Copy stdin to the pty and the pty to stdout until the container side closes.
fn relay_pty(master: OwnedFd) -> Result<()> {
    let mut input = File::from(master.try_clone()?);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 || input.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let mut output = File::from(master);
    let mut stdout = std::io::stdout().lock();
    let mut buf = [0u8; 16384];
    // EIO once every holder of the slave side is gone.
    while let Ok(n) = output.read(&mut buf) {
        if n == 0 || stdout.write_all(&buf[..n]).is_err() {
            break;
        }
        let _ = stdout.flush();
    }
    Ok(())
}

/// Block the forwarded signals (and SIGWINCH) in this thread, and so in every thread started
/// after, so that one thread can take them with `sigwait`. Returns the set.
pub fn block_forwarded() -> SigSet {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.add(Signal::SIGWINCH);
    let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
    set
}

pub fn own_stdio() -> Result<[OwnedFd; 3]> {
    let dup = |fd: i32| -> Result<OwnedFd> {
        // SAFETY: 0, 1 and 2 are open for the life of the process; we only duplicate them.
        let b = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        b.try_clone_to_owned().context("duplicate stdio")
    };
    Ok([dup(0)?, dup(1)?, dup(2)?])
}

fn null_stdio() -> Result<[OwnedFd; 3]> {
    let open = || -> Result<OwnedFd> {
        Ok(std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?
            .into())
    };
    Ok([open()?, open()?, open()?])
}

#[derive(Debug, clap::Args)]
pub struct SpecArgs {
    /// The bundle folder to write `config.json` into.
    #[arg(long, default_value = ".")]
    bundle: PathBuf,
    /// The root path to put in the spec (relative to the bundle, or absolute).
    #[arg(long, default_value = "rootfs")]
    rootfs: PathBuf,
    #[command(flatten)]
    run: RunArgs,
}

pub fn spec(rt: &Runtime, args: SpecArgs) -> Result<ExitCode> {
    no_local_ports(&args.run)?;
    let spec = args.run.to_spec();
    spec.validate()?;
    let id = crate::runtime::new_id();
    let image = match rt.images.open(&spec.image) {
        Err(crate::runtime::image::ImageError::NotFound(_))
            if spec.image == crate::runtime::image::BUSYBOX_IMAGE =>
        {
            rt.images.init_busybox()?
        }
        r => r?,
    };
    let user = match &image.settings.user {
        Some(u) => Some(crate::runtime::image::resolve_user(&image.layers, u)?),
        None => None,
    };
    let volume_root = rt.paths.local_volumes();
    // For a peer, a bundle it can run: without a time namespace where it makes none.
    let peer_time = match spec.runtime_name() {
        "isolab" => true,
        name => crate::runtime::peer::Peer::find(name, &rt.paths)?.has_time_namespace(),
    };
    let ctx = oci::SpecContext {
        id: id.clone(),
        allow_host: true,
        have_time_ns: sys::have_time_namespace() && peer_time,
        // A bundle maps root to the first range isolab hands out (runc and crun make the user
        // namespace; the rootfs is read as `nobody`'s unless chowned to it, or `--user host`).
        uid_base: Some(crate::runtime::uid_ranges::FIRST_UID),
        host_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        host_memory: u64::MAX,
        resolve: &|name| rt.find(name).ok().and_then(|s| s.init).map(|p| p.pid),
        image: &image.settings,
        user,
        volume_root: Some(&volume_root),
    };
    let mut oci_spec = oci::to_oci(&spec, &ctx)?;
    for v in spec.volume_mounts() {
        crate::runtime::volumes::ensure(&volume_root, &v.name)?;
    }
    if let Some(root) = oci_spec.root_mut() {
        root.set_path(args.rootfs.clone());
    }
    std::fs::create_dir_all(&args.bundle)?;
    oci::write_bundle(&args.bundle, &oci_spec)?;
    println!("{}", args.bundle.join("config.json").display());
    Ok(ExitCode::SUCCESS)
}

/// `--storage-opt size=64m`: the only storage option isolab knows.
fn parse_storage_opt(s: &str) -> Result<MemorySize, String> {
    match s.split_once('=') {
        Some(("size", size)) => size.parse::<MemorySize>().map_err(|e| e.to_string()),
        _ => Err(format!(
            "{s:?}: the only storage option is size=SIZE (e.g. size=64m)"
        )),
    }
}
