//! `isolab run --server URL`: the same run, on a server, through the WebSocket protocol (as the
//! docker CLI talks to dockerd). Output goes to stdout (and stderr without a tty); with `-t` the
//! local terminal is in raw mode and every keystroke goes to the container; without, stdin is
//! forwarded and its end closes the container's stdin (`eof`); the exit code is the container's.
//! With `-t` the terminal's size goes with it, at the start and on every change (SIGWINCH).
//! There is no `-d`: a remote container belongs to its WebSocket session, which ends when the
//! client leaves.

use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use isolab_shared::protocol::{ClientMsg, Frame, FrameKind, Handle, ServerMsg};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::run::RunArgs;
use crate::runtime::pty::RawMode;
use crate::runtime::sys;

pub fn run(args: RunArgs) -> Result<ExitCode> {
    // Refused rather than ignored: nothing would keep the container once this client is gone.
    anyhow::ensure!(
        !args.detach,
        "-d/--detach cannot be used with --server: a remote container belongs to this \
         connection's session, which ends (and removes it) when the client leaves"
    );
    let runtime = tokio::runtime::Runtime::new().context("start tokio")?;
    runtime.block_on(run_remote(args))
}

async fn run_remote(args: RunArgs) -> Result<ExitCode> {
    let url = args.server.clone().expect("called with --server");
    let spec = args.to_spec();
    let tty = spec.tty;
    // Watched from the start, so that no change is lost between the first size and the watch.
    let mut winch = match tty {
        true => Some(signal(SignalKind::window_change()).context("watch the window size")?),
        false => None,
    };
    // No Nagle: keystrokes go out at once.
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url.as_str(), None, true)
        .await
        .with_context(|| format!("connect to {url}"))?;
    let (mut sink, mut stream) = ws.split();
    let create = ClientMsg::Create {
        reference: Some(1),
        spec: Box::new(spec),
    };
    sink.send(Message::Text(serde_json::to_string(&create)?.into()))
        .await?;
    // Keystrokes or piped input, read on a plain thread (stdin has no async form that tolerates
    // a terminal); an empty chunk is the end of input.
    let (keys_tx, mut keys) = mpsc::channel::<Vec<u8>>(16);
    let mut handle = None;
    let mut _raw = None;
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(msg) = msg else { bail!("the server closed the connection") };
                match msg.context("read from the server")? {
                    Message::Text(text) => match serde_json::from_str::<ServerMsg>(&text)? {
                        ServerMsg::Created { handle: h, .. } if handle.is_none() => {
                            handle = Some(h);
                            if tty {
                                _raw = RawMode::enable(0);
                                if let Some(resize) = resize_msg(h) {
                                    sink.send(Message::Text(serde_json::to_string(&resize)?.into())).await?;
                                }
                            }
                            spawn_stdin_reader(keys_tx.clone());
                        }
                        ServerMsg::Exited { handle: h, code, oom_killed, .. } if Some(h) == handle => {
                            drop(_raw.take());
                            if oom_killed {
                                eprintln!("isolab: the container was OOM-killed (it reached its memory limit)");
                            }
                            return Ok(ExitCode::from(code.clamp(0, 255) as u8));
                        }
                        ServerMsg::Error { message, .. } if handle.is_none() => bail!("{message}"),
                        _ => {}
                    },
                    Message::Binary(bytes) => {
                        let frame = Frame::decode(&bytes)?;
                        let out: &mut dyn Write = match frame.kind {
                            FrameKind::Stderr => &mut stderr,
                            _ => &mut stdout,
                        };
                        out.write_all(frame.data)?;
                        out.flush()?;
                        let ack = ClientMsg::Ack { handle: frame.handle, bytes: frame.data.len() as u64 };
                        sink.send(Message::Text(serde_json::to_string(&ack)?.into())).await?;
                    }
                    Message::Close(_) => bail!("the server closed the connection"),
                    _ => {}
                }
            }
            Some(()) = window_change(&mut winch) => {
                let Some(resize) = handle.and_then(resize_msg) else { continue };
                sink.send(Message::Text(serde_json::to_string(&resize)?.into())).await?;
            }
            Some(data) = keys.recv() => {
                let Some(h) = handle else { continue };
                if data.is_empty() {
                    let eof = ClientMsg::Eof { reference: None, handle: h };
                    sink.send(Message::Text(serde_json::to_string(&eof)?.into())).await?;
                } else {
                    let frame = Frame::new(FrameKind::Input, h, &data).encode();
                    sink.send(Message::Binary(frame.into())).await?;
                }
            }
        }
    }
}

/// The terminal's size now, as a `resize` of the container's terminal (None: stdin is not a
/// terminal).
fn resize_msg(handle: Handle) -> Option<ClientMsg> {
    let (rows, cols) = sys::get_winsize(0)?;
    Some(ClientMsg::Resize {
        reference: None,
        handle,
        rows,
        cols,
    })
}

/// The next SIGWINCH; never, without a terminal.
async fn window_change(winch: &mut Option<Signal>) -> Option<()> {
    match winch {
        Some(w) => w.recv().await,
        None => std::future::pending().await,
    }
}

fn spawn_stdin_reader(tx: mpsc::Sender<Vec<u8>>) {
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 4096];
        loop {
            let n = stdin.read(&mut buf).unwrap_or(0);
            // n == 0: the end of input, sent on as an empty chunk.
            if tx.blocking_send(buf[..n].to_vec()).is_err() || n == 0 {
                break;
            }
        }
    });
}
