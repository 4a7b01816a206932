//! `isolab exec`, `ps`, `rm` and `gc`.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use super::run::{attach, block_forwarded, own_stdio};
use crate::runtime::container::{Runtime, StdioSpec};
use crate::runtime::state::Status;

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Allocate a terminal.
    #[arg(short = 't', long)]
    tty: bool,
    /// Keep stdin open (always the case; accepted for docker's `-it`).
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Extra environment variables, KEY=VALUE.
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// The container's name or id.
    container: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    cmd: Vec<String>,
}

pub fn exec(rt: &Runtime, args: ExecArgs) -> Result<ExitCode> {
    let stdio = if args.tty {
        StdioSpec::Tty
    } else {
        StdioSpec::Fds(own_stdio()?)
    };
    let mask = block_forwarded();
    let mut process = rt.exec(&args.container, args.cmd, args.env, args.tty, stdio)?;
    process.start()?;
    attach(process, mask)
}

pub fn ps(rt: &Runtime) -> Result<ExitCode> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    println!(
        "{:<14}{:<16}{:<10}{:<24}{:<12}STATUS",
        "CONTAINER ID", "NAME", "IMAGE", "COMMAND", "CREATED"
    );
    for s in rt.list() {
        let status = match (s.status, s.init.filter(|p| p.is_alive())) {
            (Status::Created | Status::Running, Some(p)) => format!("running (pid {})", p.pid),
            (Status::Creating, _) => "creating".to_string(),
            _ => "exited".to_string(),
        };
        let mut command = format!("{:?}", s.command.join(" "));
        if command.chars().count() > 22 {
            command = command.chars().take(19).collect::<String>() + "...";
        }
        println!(
            "{:<14}{:<16}{:<10}{:<24}{:<12}{}",
            s.id,
            s.display_name(),
            s.image,
            command,
            format!("{}s ago", now.saturating_sub(s.created)),
            status
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn inspect(rt: &Runtime, name: &str) -> Result<ExitCode> {
    let state = rt.find(name)?;
    println!("{}", serde_json::to_string_pretty(&state)?);
    Ok(ExitCode::SUCCESS)
}

/// `isolab diff NAME`: `A /path`, `C /path`, `D /path`, as `docker diff` prints them.
pub fn diff(rt: &Runtime, name: &str) -> Result<ExitCode> {
    for change in rt.diff(name)? {
        println!("{change}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn rm(rt: &Runtime, names: &[String]) -> Result<ExitCode> {
    Ok(each_name(names, "remove", |name| Ok(rt.remove(name)?)))
}

pub fn stop(rt: &Runtime, secs: u64, names: &[String]) -> Result<ExitCode> {
    let timeout = std::time::Duration::from_secs(secs);
    Ok(each_name(names, "stop", |name| Ok(rt.stop(name, timeout)?)))
}

/// `f` for each name, as docker's `rm` and `stop` go: the name printed when it went well, the
/// error (`isolab: VERB NAME: …`) when not, and exit code 1 if any failed.
pub(super) fn each_name(names: &[String], verb: &str, f: impl Fn(&str) -> Result<()>) -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    for name in names {
        match f(name).with_context(|| format!("{verb} {name}")) {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("isolab: {}", super::describe(&e));
                code = ExitCode::from(1);
            }
        }
    }
    code
}

pub fn gc(rt: &Runtime) -> Result<ExitCode> {
    let report = rt.gc();
    for id in &report.removed {
        println!("removed {id}");
    }
    for dir in &report.volume_sets {
        println!("removed the volumes {}", dir.display());
    }
    for p in &report.problems {
        eprintln!("isolab: gc: {p}");
    }
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
