//! `isolab image init` and `isolab image ls`.

use std::process::ExitCode;

use anyhow::Result;

use crate::runtime::image::ImageStore;
use crate::runtime::Paths;

#[derive(Debug, clap::Subcommand)]
pub enum ImageCommand {
    /// Make the built-in `busybox` image from Debian's busybox-static.
    Init,
    /// List images.
    Ls,
}

pub fn run(paths: &Paths, cmd: ImageCommand) -> Result<ExitCode> {
    let store = ImageStore::new(paths.data_root.clone());
    match cmd {
        ImageCommand::Init => {
            let path = store.init_busybox()?;
            println!("busybox: {}", path.display());
        }
        ImageCommand::Ls => {
            for name in store.list()? {
                println!("{name}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
