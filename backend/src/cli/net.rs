//! `isolab net move IFACE --from A --to B [--kind veth|dummy]`, `net check`, `net firewall`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use isolab_shared::protocol::InterfaceKind;

use crate::network::moving::move_interface;
use crate::runtime::container::Runtime;

#[derive(Debug, clap::Subcommand)]
pub enum NetCommand {
    /// Move a network interface from one container to another. When the first has no such
    /// interface, one is made there: a veth pair (one end moves, so the two end up joined by a
    /// cable) or a dummy (which moves whole).
    Move {
        interface: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        /// What to make in FROM when it has no interface of that name.
        #[arg(long, default_value = "veth", value_parser = kind_parser())]
        kind: InterfaceKind,
    },
    /// Ask the CNI plugins to CHECK a container's network attachment.
    Check { container: String },
    /// Whether the firewall rules a server installs for session networks are in place (exit
    /// 0 if so, 1 if not), and what they say.
    Firewall {
        /// Show the rules as they are with `serve --egress`.
        #[arg(long)]
        egress: bool,
    },
}

/// `--kind`: the protocol's names, listed in `--help` and in the error for another.
fn kind_parser() -> impl TypedValueParser<Value = InterfaceKind> {
    PossibleValuesParser::new(InterfaceKind::ALL.map(InterfaceKind::as_str))
        .try_map(|s| s.parse::<InterfaceKind>())
}

pub fn run(rt: &Runtime, cmd: NetCommand) -> Result<ExitCode> {
    match cmd {
        NetCommand::Firewall { egress } => {
            let on = crate::network::firewall::installed()?;
            println!(
                "table inet isolab: {}",
                if on { "installed" } else { "absent" }
            );
            print!("{}", crate::network::firewall::describe(egress));
            return Ok(if on {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        NetCommand::Move {
            interface,
            from,
            to,
            kind,
        } => {
            let pid = |name: &str| -> Result<i32> {
                let st = rt.find(name)?;
                st.init
                    .map(|p| p.pid)
                    .with_context(|| format!("{name} is not running"))
            };
            let (a, b) = (pid(&from)?, pid(&to)?);
            for (name, p) in [(&from, a), (&to, b)] {
                anyhow::ensure!(
                    crate::observe::net_inode(p) != crate::observe::host_net_inode(),
                    "{name} uses the host's network namespace: isolab does not move the host's interfaces"
                );
            }
            let moved = move_interface(&interface, kind, (&from, a), (&to, b))?;
            tracing::debug!(%interface, %from, %to, created = ?moved.created, "moved");
            match (moved.created, moved.created_peer) {
                (_, Some(peer)) => {
                    println!("{interface} moved to {to}; its peer {peer} stays in {from}")
                }
                (Some(made), None) => println!("{interface} (a new {made}) moved to {to}"),
                (None, None) => println!("{interface} moved to {to}"),
            }
        }
        NetCommand::Check { container } => {
            let st = rt.find(&container)?;
            let att = crate::runtime::cni::Attachment::load(&rt.paths.container(&st.id))
                .with_context(|| format!("{container} is on no network"))?;
            let pid = st.init.map(|p| p.pid).context("it is not running")?;
            att.check(std::path::Path::new(&format!("/proc/{pid}/ns/net")))?;
            println!("{container}: ok");
        }
    }
    Ok(ExitCode::SUCCESS)
}
