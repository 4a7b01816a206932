//! Density: many live containers at once, each with an idle shell whose terminal must answer.
//!
//! Opens `--sessions` WebSocket connections (each without a cookie: a session of its own), each
//! creating `--per-session` busybox containers running `sh` with a tty, `--concurrency` sessions
//! being filled at a time (a session makes its containers one after the other, as the page
//! does). At each of `--checkpoints` (container counts, e.g. `500,1000,2000`), once that many
//! exist, every terminal is probed: `echo` of a unique word is typed, and the time until the
//! word comes back is measured; a terminal that does not answer within `--probe-timeout` is a
//! failure. Then a JSON line goes to stdout (the count, create and probe latencies) and the
//! client waits for a line on stdin before going on (`bench/density.py` measures the host in
//! that pause; with stdin closed it goes on at once). After the last checkpoint every
//! connection closes; the server removes the containers when the sessions' grace ends.
//!
//! ```text
//! cargo build --release -p isolab-tests --example density
//! target/release/examples/density --url ws://127.0.0.1:8080/ws --sessions 250 \
//!     --per-session 8 --checkpoints 500,1000,2000 < /dev/null
//! ```
//!
//! One current-thread runtime: the client takes at most one core of the machine it measures.

use std::error::Error;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncBufReadExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;
type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const USAGE: &str = "usage: density --url ws://HOST:PORT/ws [--sessions N] [--per-session N] \
[--concurrency N] [--checkpoints N,N,...] [--memory SIZE] [--probe-timeout SECS] \
[--create-timeout SECS] [--pace MS]";

struct Args {
    url: String,
    sessions: usize,
    per_session: usize,
    concurrency: usize,
    checkpoints: Vec<usize>,
    memory: String,
    probe_timeout: Duration,
    create_timeout: Duration,
    /// A pause before each new session (as attendees arriving one after the other).
    pace: Duration,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        url: String::new(),
        sessions: 250,
        per_session: 8,
        concurrency: 4,
        checkpoints: Vec::new(),
        memory: "64m".into(),
        probe_timeout: Duration::from_secs(30),
        create_timeout: Duration::from_secs(120),
        pace: Duration::ZERO,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = it.next().ok_or(format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--url" => args.url = value,
            "--sessions" => args.sessions = value.parse()?,
            "--per-session" => args.per_session = value.parse()?,
            "--concurrency" => args.concurrency = value.parse()?,
            "--checkpoints" => {
                args.checkpoints = value
                    .split(',')
                    .map(str::parse)
                    .collect::<std::result::Result<_, _>>()?
            }
            "--memory" => args.memory = value,
            "--probe-timeout" => args.probe_timeout = Duration::from_secs(value.parse()?),
            "--create-timeout" => args.create_timeout = Duration::from_secs(value.parse()?),
            "--pace" => args.pace = Duration::from_millis(value.parse()?),
            _ => return Err(format!("unknown flag {flag}\n{USAGE}").into()),
        }
    }
    if args.url.is_empty() || args.sessions == 0 || args.per_session == 0 {
        return Err(USAGE.into());
    }
    let total = args.sessions * args.per_session;
    args.checkpoints.retain(|&c| c > 0 && c <= total);
    if args.checkpoints.last() != Some(&total) {
        args.checkpoints.push(total);
    }
    args.concurrency = args.concurrency.max(1);
    Ok(args)
}

/// What the main task asks a session.
enum Command {
    /// Type `echo WORD` in every terminal; answer each terminal's round trip.
    Probe(u64, oneshot::Sender<Vec<Option<Duration>>>),
}

/// What a session tells the main task when it has made its containers.
struct Filled {
    /// Each create's time from request to `created`.
    creates: Vec<Duration>,
    /// Each create's time from request to the shell's first output (its prompt).
    prompts: Vec<Duration>,
    commands: mpsc::Sender<Command>,
}

struct Session {
    ws: Ws,
    /// Terminal handles, in creation order.
    handles: Vec<u32>,
}

impl Session {
    async fn open(url: &str) -> Result<Session> {
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await?;
        let mut s = Session {
            ws,
            handles: Vec::new(),
        };
        match s.next_text().await? {
            v if v["type"] == "hello" => Ok(s),
            v => Err(format!("expected hello, got {v}").into()),
        }
    }

    /// Answer what a terminal asks of its terminal: busybox's line editor asks where the cursor
    /// is (`ESC [6n`) after each prompt and, unanswered, holds the next line about 20 ms (the
    /// page's xterm.js answers at once).
    async fn answer_queries(&mut self, frame: &[u8]) -> Result<()> {
        if frame.len() > 5 && frame[5..].windows(4).any(|w| w == b"\x1b[6n") {
            let mut reply = vec![isolab_shared::protocol::FrameKind::Input as u8];
            reply.extend_from_slice(&frame[1..5]);
            reply.extend_from_slice(b"\x1b[1;1R");
            self.ws.send(Message::Binary(reply.into())).await?;
        }
        Ok(())
    }

    /// The next JSON message (binary frames are skipped).
    async fn next_text(&mut self) -> Result<serde_json::Value> {
        loop {
            match self
                .ws
                .next()
                .await
                .ok_or("the server closed the connection")??
            {
                Message::Text(t) => return Ok(serde_json::from_str(&t)?),
                Message::Close(c) => return Err(format!("closed: {c:?}").into()),
                _ => {}
            }
        }
    }

    /// Create a container running the image's default command (busybox: `sh`) with a tty:
    /// the times to `created` and to its first output.
    async fn create(&mut self, name: &str, memory: &str) -> Result<(Duration, Duration)> {
        let spec = serde_json::json!({"image": "busybox", "name": name, "tty": true,
            "memory": memory});
        let msg = serde_json::json!({"type": "create", "ref": 1, "spec": spec});
        let asked = Instant::now();
        self.ws.send(Message::Text(msg.to_string().into())).await?;
        // Output may come before `created` names its handle: keep the first frame's time.
        let mut first_output: Vec<(u32, Duration)> = Vec::new();
        let (handle, created) = loop {
            match self
                .ws
                .next()
                .await
                .ok_or("the server closed the connection")??
            {
                Message::Text(t) => {
                    let v: serde_json::Value = serde_json::from_str(&t)?;
                    match v["type"].as_str() {
                        Some("created") => {
                            let handle = v["handle"].as_u64().ok_or("created without a handle")?;
                            break (handle as u32, asked.elapsed());
                        }
                        Some("error") => {
                            return Err(format!("create {name}: {}", v["message"]).into())
                        }
                        _ => {}
                    }
                }
                Message::Binary(b) if b.len() > 5 => {
                    let h = u32::from_be_bytes([b[1], b[2], b[3], b[4]]);
                    first_output.push((h, asked.elapsed()));
                    self.answer_queries(&b).await?;
                }
                Message::Close(c) => return Err(format!("closed: {c:?}").into()),
                _ => {}
            }
        };
        self.handles.push(handle);
        if let Some(&(_, at)) = first_output.iter().find(|(h, _)| *h == handle) {
            return Ok((created, at));
        }
        loop {
            match self
                .ws
                .next()
                .await
                .ok_or("the server closed the connection")??
            {
                Message::Binary(b) if b.len() > 5 && b[1..5] == handle.to_be_bytes() => {
                    self.answer_queries(&b).await?;
                    return Ok((created, asked.elapsed()));
                }
                Message::Close(c) => return Err(format!("closed: {c:?}").into()),
                _ => {}
            }
        }
    }

    /// Type `echo WORD` into every terminal at once and time each answer.
    async fn probe(&mut self, round: u64, timeout: Duration) -> Result<Vec<Option<Duration>>> {
        let sent = Instant::now();
        let mut words = Vec::new();
        for (i, &h) in self.handles.iter().enumerate() {
            // Typed as two parts so the echo of the typed line itself does not match.
            let word = format!("r{round}t{i}");
            let mut frame = vec![isolab_shared::protocol::FrameKind::Input as u8];
            frame.extend_from_slice(&h.to_be_bytes());
            frame.extend_from_slice(format!("echo r{round}''t{i}\n").as_bytes());
            self.ws.send(Message::Binary(frame.into())).await?;
            words.push(word);
        }
        let mut seen: Vec<String> = vec![String::new(); self.handles.len()];
        let mut answers: Vec<Option<Duration>> = vec![None; self.handles.len()];
        let until = sent + timeout;
        while answers.iter().any(Option::is_none) {
            let msg = match tokio::time::timeout_at(until, self.ws.next()).await {
                Ok(Some(m)) => m?,
                Ok(None) => return Err("the server closed the connection".into()),
                Err(_) => break,
            };
            let Message::Binary(b) = msg else { continue };
            if b.len() < 5 {
                continue;
            }
            let handle = u32::from_be_bytes([b[1], b[2], b[3], b[4]]);
            let Some(i) = self.handles.iter().position(|&h| h == handle) else {
                continue;
            };
            seen[i].push_str(&String::from_utf8_lossy(&b[5..]));
            if answers[i].is_none() && seen[i].contains(&words[i]) {
                answers[i] = Some(sent.elapsed());
            }
            self.answer_queries(&b).await?;
            // Idle shells say little; acknowledge all of it so flow control never holds one.
            let ack = format!(
                "{{\"type\":\"ack\",\"handle\":{handle},\"bytes\":{}}}",
                b.len() - 5
            );
            self.ws.send(Message::Text(ack.into())).await?;
        }
        Ok(answers)
    }
}

/// Fill one session, report, then serve probes until the main task hangs up.
async fn run_session(
    index: usize,
    args: std::rc::Rc<Args>,
    filled: oneshot::Sender<Result<Filled>>,
) {
    let made = async {
        let mut s = Session::open(&args.url).await?;
        let (mut creates, mut prompts) = (Vec::new(), Vec::new());
        for t in 0..args.per_session {
            let name = format!("d{t}");
            let (created, prompt) =
                tokio::time::timeout(args.create_timeout, s.create(&name, &args.memory))
                    .await
                    .map_err(|_| format!("session {index}: create {name} timed out"))??;
            creates.push(created);
            prompts.push(prompt);
        }
        Ok::<_, Box<dyn Error + Send + Sync>>((s, creates, prompts))
    }
    .await;
    let (mut s, creates, prompts) = match made {
        Ok(v) => v,
        Err(e) => {
            let _ = filled.send(Err(e));
            return;
        }
    };
    let (tx, mut rx) = mpsc::channel(1);
    if filled
        .send(Ok(Filled {
            creates,
            prompts,
            commands: tx,
        }))
        .is_err()
    {
        return;
    }
    // Between commands the socket is still read, so the server never waits on this client.
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(Command::Probe(round, answer)) => {
                    let result = s.probe(round, args.probe_timeout).await;
                    let _ = answer.send(result.unwrap_or_default());
                }
                None => break,
            },
            msg = s.ws.next() => match msg {
                Some(Ok(Message::Binary(b))) => {
                    if s.answer_queries(&b).await.is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                _ => break,
            },
        }
    }
    let _ = s.ws.close(None).await;
}

/// Percentiles of durations, in milliseconds.
fn summary(mut d: Vec<Duration>) -> serde_json::Value {
    if d.is_empty() {
        return serde_json::Value::Null;
    }
    d.sort();
    let at = |p: f64| {
        let i = ((d.len() as f64 - 1.0) * p).round() as usize;
        (d[i].as_secs_f64() * 1e5).round() / 100.0
    };
    serde_json::json!({"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": at(1.0),
        "n": d.len()})
}

async fn run(args: Args) -> Result<bool> {
    let args = std::rc::Rc::new(args);
    let mut sessions: Vec<mpsc::Sender<Command>> = Vec::new();
    let mut creates_since = Vec::new();
    let mut prompts_since = Vec::new();
    let mut in_flight = Vec::new();
    let mut next = 0;
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let started = Instant::now();
    let mut ok = true;
    for (round, &checkpoint) in args.checkpoints.iter().enumerate() {
        let wanted = checkpoint.div_ceil(args.per_session);
        let ramp = Instant::now();
        while sessions.len() < wanted {
            while next < wanted && in_flight.len() < args.concurrency {
                if !args.pace.is_zero() {
                    tokio::time::sleep(args.pace).await;
                }
                let (tx, rx) = oneshot::channel();
                tokio::task::spawn_local(run_session(next, args.clone(), tx));
                in_flight.push(rx);
                next += 1;
            }
            // The first session to be filled, whichever it is.
            let (done, i, _) = futures_util::future::select_all(in_flight.iter_mut()).await;
            in_flight.swap_remove(i);
            let filled = done.map_err(|_| "a session task ended")??;
            creates_since.extend(filled.creates);
            prompts_since.extend(filled.prompts);
            sessions.push(filled.commands);
            if sessions.len().is_multiple_of(25) {
                eprintln!(
                    "density: {} containers after {:.0} s",
                    sessions.len() * args.per_session,
                    started.elapsed().as_secs_f64()
                );
            }
        }
        let ramp_secs = ramp.elapsed().as_secs_f64();
        // Probe every terminal of every session at once.
        let mut answers = Vec::new();
        for s in &sessions {
            let (tx, rx) = oneshot::channel();
            s.send(Command::Probe(round as u64, tx)).await?;
            answers.push(rx);
        }
        let mut probes = Vec::new();
        let mut silent = 0;
        for rx in answers {
            let got = rx.await.unwrap_or_default();
            silent += args
                .per_session
                .saturating_sub(got.iter().flatten().count());
            probes.extend(got.into_iter().flatten());
        }
        ok &= silent == 0;
        let line = serde_json::json!({
            "containers": sessions.len() * args.per_session,
            "sessions": sessions.len(),
            "ramp_secs": (ramp_secs * 10.0).round() / 10.0,
            "create_ms": summary(std::mem::take(&mut creates_since)),
            "prompt_ms": summary(std::mem::take(&mut prompts_since)),
            "probe_ms": summary(probes),
            "silent": silent,
        });
        println!("{line}");
        // The driver measures the host now; it answers with a line (or closes stdin).
        let _ = stdin.next_line().await;
    }
    drop(sessions);
    // Let the tasks close their sockets.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(ok)
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("density: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let local = tokio::task::LocalSet::new();
    match local.block_on(&rt, run(args)) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("density: some terminals did not answer");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("density: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
