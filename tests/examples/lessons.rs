//! Many learners sitting on a lesson: `--sessions` WebSocket sessions, each starting `--lesson`
//! (its checks then run about once a second and keep failing, as for a learner who reads), or
//! with `--no-lesson` creating the same containers without it (the baseline). Once every
//! session has its containers (and, with a lesson, its first failed check), it prints `ready`
//! on stdout, idles `--seconds` reading what the server sends, prints one JSON line (progress
//! messages received), and closes every session. `bench/lessons.py` runs it and measures the
//! CPU the checks cost.
//!
//! ```text
//! cargo build --release -p isolab-tests --example lessons
//! target/release/examples/lessons --url ws://127.0.0.1:8080/ws --sessions 50 --lesson uts --seconds 60
//! ```

use std::error::Error;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use isolab_shared::protocol::{ClientMsg, ServerMsg};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;
type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const USAGE: &str =
    "usage: lessons --url ws://HOST:PORT/ws [--sessions N] [--lesson NAME | --no-lesson] [--seconds S]";

struct Args {
    url: String,
    sessions: usize,
    lesson: Option<String>,
    seconds: u64,
}

fn args() -> Result<Args> {
    let mut a = Args {
        url: String::new(),
        sessions: 50,
        lesson: Some("uts".into()),
        seconds: 60,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(USAGE);
        match flag.as_str() {
            "--url" => a.url = value()?,
            "--sessions" => a.sessions = value()?.parse()?,
            "--lesson" => a.lesson = Some(value()?),
            "--no-lesson" => a.lesson = None,
            "--seconds" => a.seconds = value()?.parse()?,
            _ => return Err(USAGE.into()),
        }
    }
    if a.url.is_empty() {
        return Err(USAGE.into());
    }
    Ok(a)
}

async fn send(ws: &mut Ws, msg: &ClientMsg) -> Result<()> {
    ws.send(Message::Text(serde_json::to_string(msg)?.into()))
        .await?;
    Ok(())
}

async fn next(ws: &mut Ws) -> Result<ServerMsg> {
    loop {
        match tokio::time::timeout(Duration::from_secs(60), ws.next()).await? {
            Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(&t)?),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => return Err("the server closed a session".into()),
        }
    }
}

/// One session, ready: the lesson started and its first check failed (or, without a lesson,
/// the same containers made).
async fn open(a: &Args, lesson: &str) -> Result<Ws> {
    let (mut ws, _) = tokio_tungstenite::connect_async(a.url.as_str()).await?;
    match &a.lesson {
        Some(name) => {
            send(
                &mut ws,
                &ClientMsg::LessonStart {
                    reference: Some(1),
                    lesson: name.clone(),
                },
            )
            .await?;
            loop {
                match next(&mut ws).await? {
                    ServerMsg::Progress { progress } if progress.last_check.is_some() => break,
                    ServerMsg::Error { message, .. } => return Err(message.into()),
                    _ => {}
                }
            }
        }
        None => {
            // The lesson's containers, made as the page's form would.
            let catalog_specs = lesson_specs(lesson);
            for spec in catalog_specs {
                send(
                    &mut ws,
                    &ClientMsg::Create {
                        reference: Some(1),
                        spec: Box::new(spec),
                    },
                )
                .await?;
                loop {
                    match next(&mut ws).await? {
                        ServerMsg::Created { .. } => break,
                        ServerMsg::Error { message, .. } => return Err(message.into()),
                        _ => {}
                    }
                }
            }
        }
    }
    Ok(ws)
}

/// The uts lesson's two containers (the baseline's).
fn lesson_specs(_lesson: &str) -> Vec<isolab_shared::spec::ContainerSpec> {
    ["alpha", "beta"]
        .iter()
        .map(|name| {
            let mut s = isolab_shared::spec::ContainerSpec::new("busybox", vec!["sh".into()]);
            s.name = Some(name.to_string());
            s.tty = true;
            s.cap_add = vec!["SYS_ADMIN".into()];
            s
        })
        .collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let a = args()?;
    let mut sessions = Vec::new();
    for _ in 0..a.sessions {
        sessions.push(open(&a, "uts").await?);
    }
    println!("ready");
    let until = tokio::time::Instant::now() + Duration::from_secs(a.seconds);
    let mut progress = 0u64;
    let mut streams = futures_util::stream::select_all(sessions.iter_mut().map(|ws| ws.by_ref()));
    while let Ok(Some(msg)) = tokio::time::timeout_at(until, streams.next()).await {
        if let Ok(Message::Text(t)) = msg {
            if t.contains("\"progress\"") {
                progress += 1;
            }
        }
    }
    drop(streams);
    println!(
        "{{\"sessions\": {}, \"seconds\": {}, \"progress_messages\": {progress}}}",
        a.sessions, a.seconds
    );
    for mut ws in sessions {
        let _ = ws.close(None).await;
    }
    Ok(())
}
