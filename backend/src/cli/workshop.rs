//! `isolab workshop create|ls|end` and `isolab workshop lessons`: a trainer's commands, spoken
//! to a running server over its WebSocket protocol with the admin token (from
//! `--admin-token`, `ISOLAB_ADMIN_TOKEN`, or the file the server wrote on this host).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use isolab_shared::protocol::{ClientMsg, ServerMsg, WorkshopView};
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, clap::Args)]
pub struct WorkshopArgs {
    #[command(subcommand)]
    command: WorkshopCommand,
    /// The server's WebSocket (`ws://HOST:PORT/ws`, with `?token=` if it has an access token).
    #[arg(long, global = true, default_value = "ws://127.0.0.1:8080/ws")]
    server: String,
    /// The server's admin token (default: the one it wrote in `<state root>/admin-token`).
    #[arg(
        long,
        global = true,
        env = "ISOLAB_ADMIN_TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
enum WorkshopCommand {
    /// Start a workshop running a lesson; prints its join code and link.
    Create {
        #[arg(long)]
        lesson: String,
        #[arg(long)]
        title: Option<String>,
    },
    /// List the running workshops with their attendees' progress.
    Ls,
    /// End a workshop: every attendee's containers are removed.
    End { id: String },
    /// The lessons the server offers.
    Lessons,
}

pub fn main(state_root: &Path, args: WorkshopArgs) -> Result<ExitCode> {
    let token = match args.admin_token.clone() {
        Some(t) => t,
        None => {
            let file = state_root.join("admin-token");
            std::fs::read_to_string(&file)
                .with_context(|| {
                    format!(
                        "read the admin token from {} (or give --admin-token)",
                        file.display()
                    )
                })?
                .trim()
                .to_string()
        }
    };
    let runtime = tokio::runtime::Runtime::new().context("start tokio")?;
    runtime.block_on(talk(args, token))
}

async fn talk(args: WorkshopArgs, token: String) -> Result<ExitCode> {
    let url = args.server.as_str();
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .with_context(|| format!("connect to {url}"))?;
    let (mut sink, mut stream) = ws.split();
    let request = match &args.command {
        WorkshopCommand::Create { lesson, title } => Some(ClientMsg::WorkshopCreate {
            reference: Some(2),
            lesson: lesson.clone(),
            title: title.clone(),
        }),
        WorkshopCommand::End { id } => Some(ClientMsg::WorkshopEnd {
            reference: Some(2),
            id: id.clone(),
        }),
        WorkshopCommand::Lessons => Some(ClientMsg::Lessons { reference: Some(2) }),
        WorkshopCommand::Ls => None,
    };
    let mut messages = vec![ClientMsg::Admin {
        reference: Some(1),
        token,
    }];
    messages.extend(request);
    for m in &messages {
        sink.send(Message::Text(serde_json::to_string(m)?.into()))
            .await?;
    }
    let base = url
        .replacen("ws://", "http://", 1)
        .replacen("wss://", "https://", 1);
    let base = base.split("/ws").next().unwrap_or(&base).to_string();
    let want = messages.len() as u64;
    while let Some(msg) = stream.next().await {
        let Message::Text(text) = msg.context("read from the server")? else {
            continue;
        };
        let reply: ServerMsg = serde_json::from_str(&text)?;
        match reply {
            ServerMsg::Error {
                reference: Some(_),
                message,
                ..
            } => bail!("{message}"),
            ServerMsg::Workshops {
                reference: Some(r),
                workshops,
            } if r == want => {
                for w in &workshops {
                    print_workshop(&base, w);
                }
                if workshops.is_empty() && matches!(args.command, WorkshopCommand::Ls) {
                    eprintln!("no workshop is running");
                }
                break;
            }
            ServerMsg::Workshop {
                reference: Some(2),
                workshop,
            } => {
                print_workshop(&base, &workshop);
                break;
            }
            ServerMsg::Lessons { lessons, .. } => {
                for l in lessons {
                    println!("{:<20} {:>2} steps  {}", l.name, l.steps, l.title);
                }
                break;
            }
            _ => {}
        }
    }
    let _ = sink.close().await;
    Ok(ExitCode::SUCCESS)
}

fn print_workshop(base: &str, w: &WorkshopView) {
    println!(
        "workshop {}  {:?}  lesson {}",
        w.brief.id, w.brief.title, w.brief.lesson
    );
    println!("  code {}   join {base}{}", w.brief.code, w.join_path);
    if w.attendees.is_empty() {
        println!("  no attendee yet");
    }
    for a in &w.attendees {
        let state = if a.connected { "" } else { "  (away)" };
        println!(
            "  {:<24} {}/{} steps{state}",
            a.name,
            a.progress.done(),
            w.steps.len()
        );
    }
}
