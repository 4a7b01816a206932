//! `isolab net move IFACE --from A --to B`.

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::network::moving::move_interface;
use crate::runtime::container::Runtime;

#[derive(Debug, clap::Subcommand)]
pub enum NetCommand {
    /// Move a network interface from one container to another (a veth pair is made in the
    /// first when it has no such interface, so the two end up joined by a cable).
    Move {
        interface: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
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
            let moved = move_interface(&interface, (&from, a), (&to, b))?;
            match moved.created_peer {
                Some(peer) => {
                    println!("{interface} moved to {to}; its peer {peer} stays in {from}")
                }
                None => println!("{interface} moved to {to}"),
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
