//! The command line (clap): `isolab run`, `exec`, `ps`, `rm`, `gc`, `image`, `volume`, `spec`.
//! Errors here are `anyhow` with context; the runtime's own are typed.

mod build;
mod image;
mod manage;
mod net;
mod oci;
mod remote;
mod run;
mod serve;
mod volume;
mod workshop;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::runtime::container::Runtime;
use crate::runtime::Paths;

#[derive(Debug, Parser)]
#[command(
    name = "isolab",
    version,
    about = "A container playground: real Linux containers, made by our own code"
)]
pub struct Cli {
    /// Where live state goes (one folder per container).
    #[arg(
        long,
        global = true,
        env = "ISOLAB_STATE_ROOT",
        default_value = "/run/isolab"
    )]
    state_root: std::path::PathBuf,
    /// Where images and writable layers go.
    #[arg(
        long,
        global = true,
        env = "ISOLAB_DATA_ROOT",
        default_value = "/var/lib/isolab"
    )]
    data_root: std::path::PathBuf,
    /// Where the cgroup file systems are mounted (a cgroup2 mount there means cgroup v2).
    #[arg(
        long,
        global = true,
        env = "ISOLAB_CGROUP_ROOT",
        default_value = "/sys/fs/cgroup"
    )]
    cgroup_root: std::path::PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the page and its WebSocket (`/ws`): every browser gets its own containers.
    Serve(serve::ServeArgs),
    /// Run a command in a new container, attached (like `docker run --rm`).
    Run(run::RunArgs),
    /// Run a command in a running container (like `docker exec`).
    Exec(manage::ExecArgs),
    /// List containers.
    Ps,
    /// Show a container's state as JSON (pids, name, image, command).
    Inspect { container: String },
    /// What a running container added (A), changed (C) or deleted (D), like `docker diff`.
    Diff { container: String },
    /// Build an image from a Dockerfile: each RUN is a layer.
    Build(build::BuildArgs),
    /// Kill and remove containers (`-f` is accepted: a running one is always removed).
    Rm {
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Stop containers as docker does: SIGTERM, then after `--time` seconds SIGKILL to every
    /// process of the container (through its cgroup, so one that ignores SIGTERM ends too).
    Stop {
        /// Seconds to wait after SIGTERM.
        #[arg(short = 't', long = "time", default_value_t = 10)]
        time: u64,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove whatever crashed runs left behind (processes, mounts, cgroups, folders).
    Gc,
    /// Manage images.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Network interfaces of containers.
    #[command(subcommand)]
    Net(net::NetCommand),
    /// Named volumes (`run -v NAME:/path`): list, remove.
    #[command(subcommand)]
    Volume(volume::VolumeCommand),
    /// Write the OCI bundle (`config.json`) a run would use, without running it, like `runc spec`.
    Spec(run::SpecArgs),
    /// An OCI runtime with runc's commands: create, start, state, kill, delete, run.
    Oci(oci::OciArgs),
    /// A trainer's workshops on a running server: create, ls, end, lessons.
    Workshop(workshop::WorkshopArgs),
}

impl Cli {
    fn paths(&self) -> Paths {
        Paths {
            state_root: self.state_root.clone(),
            data_root: self.data_root.clone(),
            cgroup_root: self.cgroup_root.clone(),
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let remote = matches!(&cli.command, Command::Run(args) if args.server.is_some())
        || matches!(&cli.command, Command::Workshop(_));
    if !remote && !matches!(cli.command, Command::Serve(_)) {
        // Printing into a closed pipe (`isolab image inspect x | head`) ends the command quietly,
        // as with other Unix tools, instead of a panic. Not for the server or a remote run,
        // which write to sockets.
        // SAFETY: SIG_DFL is a valid disposition; no handler runs, and nothing else in this
        // single-threaded start-up is installing handlers at the same time.
        let _ = unsafe {
            nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGPIPE,
                nix::sys::signal::SigHandler::SigDfl,
            )
        };
    }
    if !remote && !nix::unistd::geteuid().is_root() {
        eprintln!("isolab: must run as root (it makes namespaces, cgroups and mounts); try sudo");
        return ExitCode::from(1);
    }
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("isolab: {}", describe(&e));
            ExitCode::from(125)
        }
    }
}

/// An error and its causes on one line, skipping a cause whose text the message already holds
/// (many error types repeat their source in their own message).
pub(crate) fn describe(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    let paths = cli.paths();
    let rt = || -> Result<Runtime> { Ok(Runtime::new(paths.clone())?) };
    match cli.command {
        Command::Serve(args) => serve::serve(paths, args),
        Command::Run(args) if args.server.is_some() => remote::run(args),
        Command::Run(args) => run::run(&rt()?, args),
        Command::Exec(args) => manage::exec(&rt()?, args),
        Command::Ps => manage::ps(&rt()?),
        Command::Inspect { container } => manage::inspect(&rt()?, &container),
        Command::Diff { container } => manage::diff(&rt()?, &container),
        Command::Build(args) => build::run(&rt()?, args),
        Command::Rm { names, .. } => manage::rm(&rt()?, &names),
        Command::Stop { time, names } => manage::stop(&rt()?, time, &names),
        Command::Gc => manage::gc(&rt()?),
        Command::Image(cmd) => image::run(&rt()?, cmd),
        Command::Net(cmd) => net::run(&rt()?, cmd),
        Command::Volume(cmd) => volume::run(&rt()?, cmd),
        Command::Spec(args) => run::spec(&rt()?, args),
        Command::Oci(args) => oci::main(&mut rt()?, args),
        Command::Workshop(args) => workshop::main(&paths.state_root, args),
    }
}
