//! Many sessions streaming at once, every byte checked: none lost, none corrupted.
//!
//! `--sessions` WebSocket connections (each without a cookie, so each is a session of its own),
//! each creating `--terminals` busybox containers with a tty whose command writes numbered lines,
//! `N abcdefghijklmnopqrstuvwxyz0123456789`, N counting from 1, for `--seconds`. The client checks
//! every line of every terminal as it arrives: the numbers consecutive (a gap is lines lost), the
//! text intact and the pty's `\r\n` at the end (anything else is corrupt); it acknowledges what it
//! consumed (`ack`, every `--ack-every` bytes and at least every 250 ms), so the server's flow
//! control never holds a terminal for long. At the end each session removes its containers and
//! closes; the summary is one JSON line on stdout (progress goes to stderr every `--progress`
//! seconds). Exit status 1 when anything was lost or corrupt, a container could not be made or
//! ended early, or any other error occurred.
//!
//! ```text
//! cargo build --release -p isolab-tests --example load
//! target/release/examples/load --url ws://127.0.0.1:8080/ws --sessions 100 --terminals 2 \
//!     --seconds 600 [--rate BYTES_PER_SEC_PER_TERMINAL]
//! ```
//!
//! The rate (default 20000 bytes/s per terminal) is paced inside the container, without forking:
//! each round writes a batch of lines with one `echo` (one `write` to the pty), then waits with
//! `read -t` on a FIFO nobody writes to; `--rate 0` writes as fast as the terminal takes it. The
//! measuring window starts once every container has been created (so the 200 creates are not in
//! it) and lasts `--seconds`; bytes checked before and after it (until the removal) are checked
//! and counted in `bytes` and `lines` but not in the throughput. One current-thread runtime, as
//! `wsbench`: the client takes at most one core of the machine it measures. `bench/load.py` runs it
//! against a server of its own and watches the server's memory.

use std::collections::HashMap;
use std::error::Error;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;
type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const USAGE: &str = "usage: load --url ws://HOST:PORT/ws [--sessions N] [--terminals N] \
[--seconds S] [--rate BYTES_PER_SEC_PER_TERMINAL] [--memory SIZE] [--ack-every BYTES] \
[--progress SECS] [--create-timeout SECS]";

/// Every line's text after its number.
const TEXT: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// A line's length as it arrives, for the pacing: a 6-digit number, a space, the text, `\r\n`.
const LINE_BYTES: f64 = 45.0;
/// How often a paced terminal writes a batch.
const PERIOD: f64 = 0.1;
/// A line longer than this without a newline is corrupt (and dropped, to resynchronise).
const MAX_LINE: usize = 4096;
/// Bad lines kept, as examples, per terminal.
const SAMPLES: usize = 3;

struct Args {
    url: String,
    sessions: usize,
    terminals: usize,
    seconds: u64,
    /// Bytes per second per terminal; 0: unpaced.
    rate: u64,
    memory: String,
    ack_every: u64,
    progress: u64,
    create_timeout: Duration,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        url: String::new(),
        sessions: 100,
        terminals: 2,
        seconds: 600,
        rate: 20_000,
        memory: "32m".into(),
        ack_every: 32 * 1024,
        progress: 10,
        create_timeout: Duration::from_secs(180),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = it.next().ok_or(format!("{flag} needs a value\n{USAGE}"))?;
        let number = value.replace('_', "");
        match flag.as_str() {
            "--url" => args.url = value,
            "--sessions" => args.sessions = number.parse()?,
            "--terminals" => args.terminals = number.parse()?,
            "--seconds" => args.seconds = number.parse()?,
            "--rate" => args.rate = number.parse()?,
            "--memory" => args.memory = value,
            "--ack-every" => args.ack_every = number.parse()?,
            "--progress" => args.progress = number.parse()?,
            "--create-timeout" => args.create_timeout = Duration::from_secs(number.parse()?),
            _ => return Err(format!("unknown flag {flag}\n{USAGE}").into()),
        }
    }
    if args.url.is_empty() {
        return Err(USAGE.into());
    }
    if args.sessions == 0 || args.terminals == 0 || args.seconds == 0 {
        return Err("--sessions, --terminals and --seconds must be at least 1".into());
    }
    Ok(args)
}

/// Lines per batch and the wait after each, for a rate (`None`: unpaced).
fn pacing(rate: u64) -> (u64, Option<f64>) {
    if rate == 0 {
        return (100, None);
    }
    let per_period = rate as f64 * PERIOD / LINE_BYTES;
    if per_period >= 1.0 {
        (per_period.round() as u64, Some(PERIOD))
    } else {
        (1, Some(LINE_BYTES / rate as f64))
    }
}

/// The container's command: numbered lines, in batches of one `echo` each, paced by `read -t`
/// on a FIFO held open for reading and writing (so it never has data and never reaches its end).
/// Only shell builtins in the loop: no fork per batch.
fn script(rate: u64) -> String {
    let (lines, wait) = pacing(rate);
    let text = std::str::from_utf8(TEXT).unwrap();
    let pause = match wait {
        Some(secs) => format!("read -t {secs:.3} x <&3"),
        None => ":".into(),
    };
    format!(
        "mkfifo /tmp/pace && exec 3<>/tmp/pace && rm /tmp/pace || exit 99\n\
         i=0\n\
         while :; do\n\
         b=; j=0\n\
         while [ $j -lt {lines} ]; do j=$((j+1)); i=$((i+1)); b=\"$b$i {text}\n\"; done\n\
         echo -n \"$b\"\n\
         {pause}\n\
         done\n"
    )
}

/// What every session shares: the window, and running totals for the progress lines.
#[derive(Default)]
struct Shared {
    /// When the window starts (all containers created) and ends.
    window: OnceLock<(Instant, Instant)>,
    /// Terminals created, or given up on.
    settled: AtomicUsize,
    created: AtomicUsize,
    settled_changed: tokio::sync::Notify,
    bytes: AtomicU64,
    lines: AtomicU64,
    lost: AtomicU64,
    corrupt: AtomicU64,
    errors: Mutex<Vec<String>>,
}

impl Shared {
    fn settle(&self, created: bool) {
        self.settled.fetch_add(1, Relaxed);
        if created {
            self.created.fetch_add(1, Relaxed);
        }
        self.settled_changed.notify_one();
    }

    fn error(&self, e: String) {
        eprintln!("load: {e}");
        self.errors.lock().unwrap().push(e);
    }
}

/// One terminal's stream, checked line by line.
#[derive(Default)]
struct Checker {
    /// A line begun in an earlier frame.
    carry: Vec<u8>,
    /// The last line's number.
    last: u64,
    bytes: u64,
    lines: u64,
    lost: u64,
    corrupt: u64,
    /// Bytes that arrived inside the window, and the longest time inside it without any.
    window_bytes: u64,
    last_in_window: Option<Instant>,
    max_gap: Duration,
    samples: Vec<String>,
}

impl Checker {
    fn push(&mut self, data: &[u8], shared: &Shared) {
        let (lines, lost, corrupt) = (self.lines, self.lost, self.corrupt);
        self.bytes += data.len() as u64;
        if let Some(&(start, end)) = shared.window.get() {
            let now = Instant::now();
            if now >= start && now < end {
                self.window_bytes += data.len() as u64;
                let since = self.last_in_window.unwrap_or(start);
                self.max_gap = self.max_gap.max(now - since);
                self.last_in_window = Some(now);
            }
        }
        let mut rest = data;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            if self.carry.is_empty() {
                self.line(&rest[..nl]);
            } else {
                let mut line = std::mem::take(&mut self.carry);
                line.extend_from_slice(&rest[..nl]);
                self.line(&line);
                line.clear();
                self.carry = line;
            }
            rest = &rest[nl + 1..];
        }
        self.carry.extend_from_slice(rest);
        if self.carry.len() > MAX_LINE {
            let long = std::mem::take(&mut self.carry);
            self.corrupt += 1;
            self.sample("no newline", &long);
        }
        shared.bytes.fetch_add(data.len() as u64, Relaxed);
        shared.lines.fetch_add(self.lines - lines, Relaxed);
        shared.lost.fetch_add(self.lost - lost, Relaxed);
        shared.corrupt.fetch_add(self.corrupt - corrupt, Relaxed);
    }

    /// One line, its `\n` taken off.
    fn line(&mut self, line: &[u8]) {
        self.lines += 1;
        let parsed = line
            .strip_suffix(b"\r")
            .and_then(|body| {
                let space = body.iter().position(|&b| b == b' ')?;
                Some((&body[..space], &body[space + 1..]))
            })
            .and_then(|(digits, text)| {
                let ok = !digits.is_empty()
                    && digits.len() <= 18
                    && digits.iter().all(u8::is_ascii_digit)
                    && digits[0] != b'0';
                ok.then(|| {
                    let n = digits
                        .iter()
                        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
                    (n, text == TEXT)
                })
            });
        match parsed {
            Some((n, true)) if n == self.last + 1 => self.last = n,
            Some((n, true)) if n > self.last + 1 => {
                self.lost += n - self.last - 1;
                self.sample("gap", line);
                self.last = n;
            }
            // Its number but not its text.
            Some((n, _)) if n == self.last + 1 => {
                self.corrupt += 1;
                self.sample("corrupt", line);
                self.last = n;
            }
            // A number that goes back (or skips ahead with a damaged text).
            Some(_) => {
                self.corrupt += 1;
                self.sample("out of order", line);
            }
            // A garbled line: taken for the one expected, so that it is not counted lost too.
            None => {
                self.corrupt += 1;
                self.sample("corrupt", line);
                self.last += 1;
            }
        }
    }

    fn sample(&mut self, what: &str, line: &[u8]) {
        if self.samples.len() < SAMPLES {
            let shown = &line[..line.len().min(120)];
            self.samples.push(format!(
                "{what} after line {}: {:?}",
                self.last,
                String::from_utf8_lossy(shown)
            ));
        }
    }
}

/// One terminal of a session.
struct Term {
    name: String,
    container: String,
    handle: Option<u32>,
    checker: Checker,
    unacked: u64,
    /// Whether its create was answered (either way).
    settled: bool,
    removed: bool,
}

struct Session {
    index: usize,
    ws: Ws,
    terms: Vec<Term>,
    by_handle: HashMap<u32, usize>,
    /// Output of a handle not yet named by `created`.
    early: HashMap<u32, Vec<u8>>,
    ack_every: u64,
    stopping: bool,
}

impl Session {
    async fn connect(index: usize, args: &Args) -> Result<Session> {
        let (ws, _) = tokio_tungstenite::connect_async_with_config(&args.url, None, true).await?;
        let mut s = Session {
            index,
            ws,
            terms: Vec::new(),
            by_handle: HashMap::new(),
            early: HashMap::new(),
            ack_every: args.ack_every,
            stopping: false,
        };
        let hello = match s.ws.next().await.ok_or("closed before hello")?? {
            Message::Text(t) => serde_json::from_str::<serde_json::Value>(&t)?,
            other => return Err(format!("expected hello, got {other:?}").into()),
        };
        if hello["type"] != "hello" {
            return Err(format!("expected hello, got {hello}").into());
        }
        if !hello["containers"].as_array().is_none_or(|c| c.is_empty()) {
            return Err("a new connection found containers: not a session of its own".into());
        }
        let high = hello["limits"]["flow_high_bytes"]
            .as_u64()
            .unwrap_or(512 << 10);
        s.ack_every = s.ack_every.clamp(1, high / 2);
        Ok(s)
    }

    fn fail(&self, shared: &Shared, e: String) {
        shared.error(format!("session {}: {e}", self.index));
    }

    async fn send_text(&mut self, text: String) -> Result<()> {
        self.ws.send(Message::Text(text.into())).await?;
        Ok(())
    }

    async fn create_all(&mut self, args: &Args, cmd: &str) -> Result<()> {
        for t in 0..args.terminals {
            let name = format!("load{t}");
            let spec = serde_json::json!({"image": "busybox", "name": name, "tty": true,
                "cmd": ["sh", "-c", cmd], "memory": args.memory, "pids_limit": 16});
            let msg = serde_json::json!({"type": "create", "ref": t + 1, "spec": spec});
            self.terms.push(Term {
                name,
                container: String::new(),
                handle: None,
                checker: Checker::default(),
                unacked: 0,
                settled: false,
                removed: false,
            });
            self.send_text(msg.to_string()).await?;
        }
        Ok(())
    }

    /// Acknowledge a terminal's consumed bytes (all of them when `all`, else from `ack_every`).
    async fn ack(&mut self, t: usize, all: bool) -> Result<()> {
        let term = &mut self.terms[t];
        let Some(handle) = term.handle else {
            return Ok(());
        };
        if term.unacked == 0 || (!all && term.unacked < self.ack_every) {
            return Ok(());
        }
        let ack = format!(
            "{{\"type\":\"ack\",\"handle\":{handle},\"bytes\":{}}}",
            term.unacked
        );
        term.unacked = 0;
        self.send_text(ack).await
    }

    async fn on_message(&mut self, msg: Message, shared: &Shared) -> Result<()> {
        match msg {
            Message::Binary(b) => {
                if b.len() < 5 {
                    self.fail(shared, format!("a frame of {} bytes", b.len()));
                    return Ok(());
                }
                let handle = u32::from_be_bytes([b[1], b[2], b[3], b[4]]);
                if b[0] != 1 {
                    let text = String::from_utf8_lossy(&b[5..]).into_owned();
                    self.fail(shared, format!("a frame of kind {}: {text:?}", b[0]));
                }
                let Some(&t) = self.by_handle.get(&handle) else {
                    self.early
                        .entry(handle)
                        .or_default()
                        .extend_from_slice(&b[5..]);
                    return Ok(());
                };
                let term = &mut self.terms[t];
                term.checker.push(&b[5..], shared);
                term.unacked += (b.len() - 5) as u64;
                self.ack(t, false).await?;
            }
            Message::Text(text) => {
                let v: serde_json::Value = serde_json::from_str(&text)?;
                let reference = v["ref"].as_u64().unwrap_or(0) as usize;
                match v["type"].as_str().unwrap_or("") {
                    "created" if (1..=self.terms.len()).contains(&reference) => {
                        let t = reference - 1;
                        let handle = v["handle"].as_u64().ok_or("created without handle")? as u32;
                        let term = &mut self.terms[t];
                        term.handle = Some(handle);
                        term.container = v["container"]["id"].as_str().unwrap_or("").into();
                        term.settled = true;
                        self.by_handle.insert(handle, t);
                        if let Some(data) = self.early.remove(&handle) {
                            term.checker.push(&data, shared);
                            term.unacked += data.len() as u64;
                        }
                        shared.settle(true);
                    }
                    "error" => {
                        if (1..=self.terms.len()).contains(&reference)
                            && !self.terms[reference - 1].settled
                        {
                            self.terms[reference - 1].settled = true;
                            shared.settle(false);
                        }
                        self.fail(shared, format!("error: {text}"));
                    }
                    "exited" => {
                        let handle = v["handle"].as_u64().unwrap_or(0) as u32;
                        if let Some(&t) = self.by_handle.get(&handle) {
                            if !self.terms[t].removed {
                                self.terms[t].removed = true;
                                if !self.stopping {
                                    let name = self.terms[t].name.clone();
                                    self.fail(shared, format!("{name} ended early: {text}"));
                                }
                            }
                        }
                    }
                    // The answer to a `remove` (ref 1000 + terminal).
                    "state" if reference >= 1000 && reference - 1000 < self.terms.len() => {
                        self.terms[reference - 1000].removed = true;
                    }
                    _ => {}
                }
            }
            Message::Close(frame) => return Err(format!("closed by the server: {frame:?}").into()),
            _ => {}
        }
        Ok(())
    }

    /// Read and check until the window's end (every 250 ms, everything consumed is
    /// acknowledged).
    async fn stream(&mut self, shared: &Shared) -> Result<()> {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                msg = self.ws.next() => {
                    let msg = msg.ok_or("connection closed")??;
                    self.on_message(msg, shared).await?;
                }
                _ = tick.tick() => {
                    for t in 0..self.terms.len() {
                        self.ack(t, true).await?;
                    }
                    if shared.window.get().is_some_and(|&(_, end)| Instant::now() >= end) {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Remove the containers and wait (30 s at most) for the answers; then close.
    async fn stop(&mut self, shared: &Shared) -> Result<()> {
        self.stopping = true;
        for t in 0..self.terms.len() {
            if self.terms[t].handle.is_some() && !self.terms[t].removed {
                let msg = serde_json::json!({"type": "remove", "ref": 1000 + t,
                    "container": self.terms[t].name});
                self.send_text(msg.to_string()).await?;
            } else {
                self.terms[t].removed = true;
            }
        }
        let wait = async {
            while !self.terms.iter().all(|t| t.removed) {
                let msg = self.ws.next().await.ok_or("connection closed")??;
                self.on_message(msg, shared).await?;
            }
            Ok::<(), Box<dyn Error + Send + Sync>>(())
        };
        match tokio::time::timeout(Duration::from_secs(30), wait).await {
            Ok(r) => r?,
            Err(_) => self.fail(shared, "removes not answered within 30 s".into()),
        }
        let _ = self.ws.close(None).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
        Ok(())
    }
}

/// A session, from connecting to closing: its terminals (errors go to `shared`).
async fn session(
    index: usize,
    args: Arc<Args>,
    cmd: Arc<String>,
    shared: Arc<Shared>,
) -> Vec<Term> {
    let mut s = match Session::connect(index, &args).await {
        Ok(s) => s,
        Err(e) => {
            shared.error(format!("session {index}: connect: {e}"));
            (0..args.terminals).for_each(|_| shared.settle(false));
            return Vec::new();
        }
    };
    let mut result = s.create_all(&args, &cmd).await;
    if result.is_ok() {
        result = s.stream(&shared).await;
    }
    if let Err(e) = result {
        s.fail(&shared, e.to_string());
    }
    // Whatever was not settled never will be.
    for t in s.terms.iter_mut().filter(|t| !t.settled) {
        t.settled = true;
        shared.settle(false);
    }
    (s.terms.len()..args.terminals).for_each(|_| shared.settle(false));
    if let Err(e) = s.stop(&shared).await {
        s.fail(&shared, format!("stop: {e}"));
    }
    s.terms
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

async fn run(args: Args) -> Result<bool> {
    let args = Arc::new(args);
    let shared = Arc::new(Shared::default());
    let cmd = Arc::new(script(args.rate));
    let total = args.sessions * args.terminals;
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..args.sessions)
        .map(|i| tokio::spawn(session(i, args.clone(), cmd.clone(), shared.clone())))
        .collect();

    // The window starts when every terminal is made (or has failed), or at the timeout.
    let settled = async {
        while shared.settled.load(Relaxed) < total {
            shared.settled_changed.notified().await;
        }
    };
    if tokio::time::timeout(args.create_timeout, settled)
        .await
        .is_err()
    {
        shared.error(format!(
            "only {} of {total} terminals settled within {:?}",
            shared.settled.load(Relaxed),
            args.create_timeout
        ));
    }
    let start = Instant::now();
    let end = start + Duration::from_secs(args.seconds);
    let setup = (start - t0).as_secs_f64();
    shared.window.set((start, end)).ok();
    eprintln!(
        "load: {} of {total} terminals in {} sessions made in {setup:.1} s; streaming {} s",
        shared.created.load(Relaxed),
        args.sessions,
        args.seconds
    );

    let mut before = shared.bytes.load(Relaxed);
    let mut at = start;
    while Instant::now() < end {
        let next = (at + Duration::from_secs(args.progress.max(1))).min(end);
        tokio::time::sleep_until(next).await;
        let bytes = shared.bytes.load(Relaxed);
        let secs = (next - at).as_secs_f64();
        eprintln!(
            "load: {:>4.0} s: {:.1} MB checked ({:.2} MB/s), {} lines, lost {}, corrupt {}, errors {}",
            (next - start).as_secs_f64(),
            bytes as f64 / 1e6,
            (bytes - before) as f64 / 1e6 / secs,
            shared.lines.load(Relaxed),
            shared.lost.load(Relaxed),
            shared.corrupt.load(Relaxed),
            shared.errors.lock().unwrap().len(),
        );
        (before, at) = (bytes, next);
    }

    let mut terms = Vec::new();
    for task in tasks {
        match tokio::time::timeout(Duration::from_secs(90), task).await {
            Ok(Ok(t)) => terms.extend(t),
            Ok(Err(e)) => shared.error(format!("a session task failed: {e}")),
            Err(_) => shared.error("a session did not finish within 90 s of the end".into()),
        }
    }
    let stopped = (Instant::now() - end).as_secs_f64();

    let secs = args.seconds as f64;
    let made: Vec<&Term> = terms.iter().filter(|t| t.handle.is_some()).collect();
    let mut rates: Vec<f64> = made
        .iter()
        .map(|t| t.checker.window_bytes as f64 / secs)
        .collect();
    rates.sort_by(|a, b| a.total_cmp(b));
    let sum = |f: fn(&Checker) -> u64| made.iter().map(|t| f(&t.checker)).sum::<u64>();
    let (bytes, lines, lost, corrupt) = (
        sum(|c| c.bytes),
        sum(|c| c.lines),
        sum(|c| c.lost),
        sum(|c| c.corrupt),
    );
    let window_bytes = sum(|c| c.window_bytes);
    // The longest silence inside the window, up to its end for a terminal that went quiet.
    let gap = |t: &Term| {
        let c = &t.checker;
        let tail = end - c.last_in_window.unwrap_or(start);
        c.max_gap.max(tail).as_secs_f64() * 1000.0
    };
    let mut gaps: Vec<f64> = made.iter().map(|t| gap(t)).collect();
    gaps.sort_by(|a, b| a.total_cmp(b));
    let samples: Vec<String> = made
        .iter()
        .flat_map(|t| {
            t.checker
                .samples
                .iter()
                .map(move |s| format!("{} {}: {s}", t.container, t.name))
        })
        .take(20)
        .collect();
    let errors = shared.errors.lock().unwrap().clone();
    let (per_batch, wait) = pacing(args.rate);
    let round = |x: f64, d: i32| (x * 10f64.powi(d)).round() / 10f64.powi(d);
    let ok = lost == 0 && corrupt == 0 && errors.is_empty() && made.len() == total && bytes > 0;
    let summary = serde_json::json!({
        "ok": ok,
        "url": args.url,
        "sessions": args.sessions,
        "terminals": made.len(),
        "terminals_asked": total,
        "seconds": args.seconds,
        "rate_asked": args.rate,
        "lines_per_batch": per_batch,
        "batch_wait_s": wait,
        "setup_s": round(setup, 2),
        "stop_s": round(stopped, 2),
        "bytes": bytes,
        "lines": lines,
        "lost": lost,
        "corrupt": corrupt,
        "window_bytes": window_bytes,
        "throughput_mbps": round(window_bytes as f64 / secs / 1e6, 3),
        "per_terminal_bps": {
            "min": round(quantile(&rates, 0.0), 1),
            "median": round(quantile(&rates, 0.5), 1),
            "max": round(quantile(&rates, 1.0), 1),
        },
        "max_gap_ms": {
            "median": round(quantile(&gaps, 0.5), 1),
            "p99": round(quantile(&gaps, 0.99), 1),
            "max": round(quantile(&gaps, 1.0), 1),
        },
        "partial_tail_bytes": made.iter().map(|t| t.checker.carry.len()).sum::<usize>(),
        "bad_lines": samples,
        "errors": errors.len(),
        "error_list": errors.iter().take(20).collect::<Vec<_>>(),
        "containers": made.iter().map(|t| t.container.as_str()).collect::<Vec<_>>(),
    });
    println!("{summary}");
    Ok(ok)
}

fn main() {
    let result = parse_args().and_then(|args| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(run(args))
    });
    match result {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("load: {e}");
            std::process::exit(2);
        }
    }
}
