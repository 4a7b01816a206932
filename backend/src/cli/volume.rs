//! `isolab volume ls` and `isolab volume rm NAME...`: the CLI's named volumes, in
//! `<state_root>/volumes/local` (a server's sessions keep theirs apart, and remove them).

use std::process::ExitCode;

use anyhow::Result;

use crate::runtime::container::Runtime;
use crate::runtime::volumes;

#[derive(Debug, clap::Subcommand)]
pub enum VolumeCommand {
    /// List the volumes and the running containers that mount them.
    Ls,
    /// Remove volumes and everything in them (refused while a running container mounts one).
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

pub fn run(rt: &Runtime, cmd: VolumeCommand) -> Result<ExitCode> {
    let root = rt.paths.local_volumes();
    let states = rt.list();
    match cmd {
        VolumeCommand::Ls => {
            println!("{:<24}USED BY", "VOLUME NAME");
            for name in volumes::list(&root) {
                let users = volumes::users(&states, &root.join(&name));
                println!("{name:<24}{}", users.join(", "));
            }
            Ok(ExitCode::SUCCESS)
        }
        VolumeCommand::Rm { names } => {
            Ok(super::manage::each_name(&names, "remove volume", |name| {
                let users = volumes::users(&states, &root.join(name));
                Ok(volumes::remove(&root, name, &users)?)
            }))
        }
    }
}
