//! `isolab oci …`: an OCI runtime command line with runc's commands, arguments and behaviour,
//! so tools that drive runc can drive isolab (`runtime/oci.rs` does the work).

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;

use super::run::{attach, block_forwarded, own_stdio};
use crate::runtime::container::{Runtime, StdioSpec};
use crate::runtime::oci::send_console;

#[derive(Debug, clap::Args)]
pub struct OciArgs {
    /// Where container state goes (runc's `--root`); default: isolab's state root.
    #[arg(long)]
    root: Option<PathBuf>,
    /// Accepted for runc compatibility; isolab logs to stderr.
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Accepted for runc compatibility.
    #[arg(long = "log-format", value_name = "FORMAT")]
    log_format: Option<String>,
    /// Accepted for runc compatibility; isolab manages its cgroups itself.
    #[arg(long = "systemd-cgroup")]
    systemd_cgroup: bool,
    #[command(subcommand)]
    command: OciCommand,
}

#[derive(Debug, clap::Subcommand)]
enum OciCommand {
    /// Create a container from a bundle; it waits for `start`.
    Create(CreateArgs),
    /// Run a created container's process.
    Start { id: String },
    /// Print a container's state (the runtime spec's JSON).
    State { id: String },
    /// Send a signal (default SIGTERM) to a container's process.
    Kill {
        id: String,
        /// A number or a name, with or without SIG (`9`, `KILL`, `SIGKILL`).
        #[arg(default_value = "SIGTERM")]
        signal: String,
        /// Signal every process of the container, not only its first.
        #[arg(short = 'a', long)]
        all: bool,
    },
    /// Remove a stopped container (`--force`: a running one too).
    Delete {
        id: String,
        #[arg(short = 'f', long)]
        force: bool,
    },
    /// Create and start a container, and wait for its end (then delete it), unless `--detach`;
    /// a terminal without `--console-socket` is relayed to our own stdin and stdout.
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    /// The bundle: a folder with config.json and the root folder it names.
    #[arg(short = 'b', long, default_value = ".")]
    bundle: PathBuf,
    /// Write the container process's pid here.
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// With `process.terminal`, send the pty master to this unix socket.
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Accepted for runc compatibility (isolab always uses pivot_root).
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Accepted for runc compatibility.
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    id: String,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    create: CreateArgs,
    /// Return once started, leaving the container running.
    #[arg(short = 'd', long)]
    detach: bool,
}

pub fn main(rt: &mut Runtime, args: OciArgs) -> Result<ExitCode> {
    if let Some(root) = &args.root {
        rt.paths.state_root = root.clone();
    }
    match args.command {
        OciCommand::Create(a) => {
            create(rt, &a)?.detach(&rt.paths)?;
            Ok(ExitCode::SUCCESS)
        }
        OciCommand::Start { id } => {
            rt.oci_start(&id)?;
            Ok(ExitCode::SUCCESS)
        }
        OciCommand::State { id } => {
            println!("{}", serde_json::to_string_pretty(&rt.oci_state(&id)?)?);
            Ok(ExitCode::SUCCESS)
        }
        OciCommand::Kill { id, signal, all } => {
            let sig = parse_signal(&signal)?;
            if all {
                let st = rt.find(&id)?;
                for pid in rt.cgroups.pids(&st.id).unwrap_or_default() {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
                }
            } else {
                rt.oci_kill(&id, sig)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        OciCommand::Delete { id, force } => {
            rt.oci_delete(&id, force)?;
            Ok(ExitCode::SUCCESS)
        }
        OciCommand::Run(a) => {
            let mask = block_forwarded();
            // Attached with a terminal and no console socket, as `runc run` in a shell: the pty
            // is relayed to our own stdin and stdout.
            let relay = !a.detach && a.create.console_socket.is_none();
            let mut container = create_with(rt, &a.create, relay)?;
            if let Err(e) = container.start() {
                let _ = rt.oci_delete(&a.create.id, true);
                return Err(e.into());
            }
            if a.detach {
                container.detach(&rt.paths)?;
                return Ok(ExitCode::SUCCESS);
            }
            let code = attach(container, mask);
            let _ = rt.oci_delete(&a.create.id, true);
            code
        }
    }
}

/// `create`, shared by `create` and `run`: the container set up, its pid written, its pty
/// (with a terminal) sent to the console socket.
fn create(rt: &Runtime, a: &CreateArgs) -> Result<crate::runtime::container::Container> {
    create_with(rt, a, false)
}

/// [`create`]; with `relay_terminal`, a terminal needs no console socket: the caller relays
/// the pty itself (`run` attached).
fn create_with(
    rt: &Runtime,
    a: &CreateArgs,
    relay_terminal: bool,
) -> Result<crate::runtime::container::Container> {
    let config = a.bundle.join("config.json");
    let text =
        std::fs::read_to_string(&config).with_context(|| format!("read {}", config.display()))?;
    let terminal = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["process"]["terminal"].as_bool())
        .unwrap_or(false);
    if terminal && a.console_socket.is_none() && !relay_terminal {
        bail!("process.terminal is true: give --console-socket (as runc needs)");
    }
    let stdio = match terminal {
        true => StdioSpec::Tty,
        false => StdioSpec::Fds(own_stdio()?),
    };
    let mut container = rt
        .oci_create(&a.id, &a.bundle, stdio)
        .with_context(|| format!("create {}", a.id))?;
    if let Some(path) = &a.pid_file {
        std::fs::write(path, container.pid.to_string())
            .with_context(|| format!("write {}", path.display()))?;
    }
    if let Some(socket) = &a.console_socket {
        if let Some(master) = container.pty.take() {
            send_console(socket, &master)?;
        }
    }
    Ok(container)
}

/// `9`, `KILL`, `SIGKILL`, `sigkill`.
fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).with_context(|| format!("no signal {n}"));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).with_context(|| format!("unknown signal {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_as_runc_takes_them() {
        for s in ["9", "KILL", "SIGKILL", "sigkill", "kill"] {
            assert_eq!(parse_signal(s).unwrap(), Signal::SIGKILL, "{s}");
        }
        assert_eq!(parse_signal("TERM").unwrap(), Signal::SIGTERM);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("999").is_err());
    }
}
