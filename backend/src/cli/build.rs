//! `isolab build -t NAME [-f Dockerfile] DIR`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::build::{build, BuildEvent, BuildRequest};
use crate::runtime::container::Runtime;

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The image's name.
    #[arg(short = 't', long = "tag")]
    tag: String,
    /// The Dockerfile (default: DIR/Dockerfile).
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// The build context: COPY's sources are taken from here.
    context: PathBuf,
}

pub fn run(rt: &Runtime, args: BuildArgs) -> Result<ExitCode> {
    let file = args
        .file
        .clone()
        .unwrap_or_else(|| args.context.join("Dockerfile"));
    let dockerfile =
        std::fs::read_to_string(&file).with_context(|| format!("read {}", file.display()))?;
    let req = BuildRequest {
        name: args.tag.clone(),
        dockerfile,
        context: Some(args.context.clone()),
        memory: None,
        cpus: None,
        pids_limit: None,
    };
    let mut stdout = std::io::stdout();
    let record = build(rt, &req, &mut |e| {
        if let BuildEvent::Log(text) = e {
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
        }
    })
    .with_context(|| format!("build {}", args.tag))?;
    println!("{} {}", record.name, record.manifest);
    Ok(ExitCode::SUCCESS)
}
