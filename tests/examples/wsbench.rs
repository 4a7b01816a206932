//! Bulk terminal throughput over a WebSocket, with a client fast enough to measure the server.
//!
//! One round: open a terminal (isolab: a busybox container with a tty; terminado: its shell; or,
//! as the ceiling, a shell on a local pty read directly), wait for the prompt, write N bytes to
//! a file (`--line 40`, the default: 40-byte lines, `yes aaa… | head -c N > FILE`; `--line 0`:
//! no newline at all), not timed, then time `cat FILE; echo MARKER` from sending the command to
//! the marker: N / that time, in MB/s (10^6 bytes). A file and `cat`, because `yes | head`
//! straight into a pty is itself the bottleneck (about 12 MB/s on a 2-core VM whatever reads the
//! pty: its writes are small).
//!
//! ```text
//! cargo build --release -p isolab-tests --example wsbench
//! target/release/examples/wsbench --isolab ws://127.0.0.1:8080/ws [--bytes N] [--rounds R]
//! target/release/examples/wsbench --terminado ws://127.0.0.1:8888/websocket/NAME
//! target/release/examples/wsbench --pty /bin/busybox
//! ```
//!
//! isolab's output is acknowledged (`ack`) every `--ack-every` bytes (default 64 KiB, at most
//! the server's `flow_high_bytes`; 0: every frame, as the page does); `--cpus` sets the
//! container's CPU limit (default: the server's). One line per round, then the whole run as JSON
//! on the last line. A current-thread runtime; the reading loop allocates nothing of its own
//! (frames are borrowed from what tungstenite hands over). `bench/web.py` runs it.

use std::error::Error;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Result<T> = std::result::Result<T, Box<dyn Error>>;
type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const USAGE: &str = "usage: wsbench (--isolab ws://HOST:PORT/ws | --terminado ws://HOST:PORT/PATH \
| --pty BUSYBOX) [--bytes N] [--rounds R] [--warmup W] [--ack-every BYTES] [--cpus X] \
[--line BYTES] [--timeout SECS]";

/// terminado's output messages: `["stdout", "…"]` (Python's `json.dumps`).
const STDOUT_PREFIX: &[u8] = b"[\"stdout\", \"";
const STDOUT_SUFFIX: &[u8] = b"\"]";
/// The terminal size every terminal is given.
const ROWS: u16 = 50;
const COLS: u16 = 200;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Isolab,
    Terminado,
    Pty,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Isolab => "isolab",
            Kind::Terminado => "terminado",
            Kind::Pty => "pty",
        }
    }
}

struct Args {
    kind: Kind,
    /// The WebSocket's URL, or (`--pty`) the busybox binary.
    target: String,
    bytes: u64,
    rounds: usize,
    warmup: usize,
    ack_every: u64,
    cpus: Option<f64>,
    /// Bytes per line, newline included; 0: no newline at all.
    line: usize,
    timeout: Duration,
}

fn parse_args() -> Result<Args> {
    let mut target = None;
    let mut args = Args {
        kind: Kind::Isolab,
        target: String::new(),
        bytes: 50_000_000,
        rounds: 5,
        warmup: 1,
        ack_every: 64 * 1024,
        cpus: None,
        line: 40,
        timeout: Duration::from_secs(120),
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
            "--isolab" => target = Some((Kind::Isolab, value)),
            "--terminado" => target = Some((Kind::Terminado, value)),
            "--pty" => target = Some((Kind::Pty, value)),
            "--bytes" => args.bytes = number.parse()?,
            "--rounds" => args.rounds = number.parse()?,
            "--warmup" => args.warmup = number.parse()?,
            "--ack-every" => args.ack_every = number.parse()?,
            "--cpus" => args.cpus = Some(value.parse()?),
            "--line" => args.line = number.parse()?,
            "--timeout" => args.timeout = Duration::from_secs(number.parse()?),
            _ => return Err(format!("unknown flag {flag}\n{USAGE}").into()),
        }
    }
    (args.kind, args.target) = target.ok_or(USAGE)?;
    if args.rounds == 0 {
        return Err("--rounds must be at least 1".into());
    }
    Ok(args)
}

/// Looks for a marker in a stream that arrives in chunks, without allocating: the marker may
/// straddle two chunks, so the last `len - 1` bytes are kept.
struct Finder {
    marker: Vec<u8>,
    tail: [u8; Finder::MAX],
    tail_len: usize,
}

impl Finder {
    const MAX: usize = 64;

    fn new(marker: &str) -> Finder {
        assert!(!marker.is_empty() && marker.len() <= Finder::MAX);
        Finder {
            marker: marker.as_bytes().to_vec(),
            tail: [0; Finder::MAX],
            tail_len: 0,
        }
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.len() >= needle.len() && hay.windows(needle.len()).any(|w| w == needle)
    }

    /// Whether the marker has now been seen.
    fn push(&mut self, chunk: &[u8]) -> bool {
        let keep = self.marker.len() - 1;
        // Across the boundary: the kept tail, then the chunk's first `keep` bytes.
        let head = &chunk[..chunk.len().min(keep)];
        let mut joined = [0u8; 2 * Finder::MAX];
        joined[..self.tail_len].copy_from_slice(&self.tail[..self.tail_len]);
        joined[self.tail_len..self.tail_len + head.len()].copy_from_slice(head);
        let found = Finder::contains(&joined[..self.tail_len + head.len()], &self.marker)
            // `contains` of one byte is a memchr: plain output is passed over quickly.
            || (chunk.contains(&self.marker[0]) && Finder::contains(chunk, &self.marker));
        // Keep the last `keep` bytes of tail + chunk.
        if chunk.len() >= keep {
            self.tail[..keep].copy_from_slice(&chunk[chunk.len() - keep..]);
            self.tail_len = keep;
        } else {
            let drop = (self.tail_len + chunk.len()).saturating_sub(keep);
            self.tail.copy_within(drop..self.tail_len, 0);
            self.tail_len -= drop;
            self.tail[self.tail_len..self.tail_len + chunk.len()].copy_from_slice(chunk);
            self.tail_len += chunk.len();
        }
        found
    }
}

/// A shell on a local pty, read directly: what a terminal can carry at all on this machine.
struct Pty {
    master: File,
    child: Child,
    buf: Vec<u8>,
}

impl Pty {
    fn spawn(busybox: &str) -> Result<Pty> {
        let (mut master, mut slave) = (-1, -1);
        let size = libc::winsize {
            ws_row: ROWS,
            ws_col: COLS,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two descriptors into the integers it is given; the name
        // pointer may be null, and the termios and winsize pointers are read only.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        if rc != 0 {
            return Err(format!("openpty: {}", std::io::Error::last_os_error()).into());
        }
        // SAFETY: both descriptors were just opened by openpty and are owned by nobody else.
        let (master, slave) = unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let mut cmd = Command::new(busybox);
        cmd.args(["sh", "-i"])
            .env("PS1", "# ")
            .stdin(Stdio::from(slave.try_clone()?))
            .stdout(Stdio::from(slave.try_clone()?))
            .stderr(Stdio::from(slave));
        // SAFETY: the closure only makes async-signal-safe calls (setsid, ioctl) between fork
        // and exec: a new session whose controlling terminal is the pty (stdin by now).
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        Ok(Pty {
            master,
            child,
            buf: vec![0; 64 * 1024],
        })
    }
}

/// Where a terminal's bytes come from.
enum Link {
    Ws(Box<Ws>),
    Pty(Pty),
}

/// One terminal on one connection (or pty).
struct Term {
    kind: Kind,
    link: Link,
    handle: u32,
    /// isolab: bytes received and not yet acknowledged, and when to acknowledge them.
    unacked: u64,
    ack_every: u64,
    /// Output chunks read (frames, or reads of the pty).
    chunks: u64,
}

impl Term {
    async fn open(args: &Args) -> Result<Term> {
        let link = match args.kind {
            Kind::Pty => Link::Pty(Pty::spawn(&args.target)?),
            _ => {
                let url = args.target.as_str();
                let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await?;
                Link::Ws(Box::new(ws))
            }
        };
        let mut term = Term {
            kind: args.kind,
            link,
            handle: 0,
            unacked: 0,
            ack_every: args.ack_every,
            chunks: 0,
        };
        match args.kind {
            Kind::Isolab => {
                let hello = term.control().await?;
                if hello["type"] != "hello" {
                    return Err(format!("expected hello, got {hello}").into());
                }
                let high = hello["limits"]["flow_high_bytes"]
                    .as_u64()
                    .unwrap_or(512 << 10);
                term.ack_every = term.ack_every.min(high);
                let mut spec = serde_json::json!({"image": "busybox", "cmd": ["sh"], "tty": true});
                if let Some(cpus) = args.cpus {
                    spec["cpus"] = cpus.into();
                }
                let create = serde_json::json!({"type": "create", "ref": 1, "spec": spec});
                term.send_text(create.to_string()).await?;
                loop {
                    let msg = term.control().await?;
                    match msg["type"].as_str() {
                        Some("created") => {
                            term.handle = msg["handle"].as_u64().ok_or("no handle")? as u32;
                            break;
                        }
                        Some("error") => return Err(format!("create: {msg}").into()),
                        _ => {}
                    }
                }
                let resize = serde_json::json!({"type": "resize", "handle": term.handle,
                    "rows": ROWS, "cols": COLS});
                term.send_text(resize.to_string()).await?;
            }
            Kind::Terminado => {
                term.send_text(format!("[\"set_size\", {ROWS}, {COLS}]"))
                    .await?;
            }
            Kind::Pty => {}
        }
        Ok(term)
    }

    fn ws(&mut self) -> &mut Ws {
        match &mut self.link {
            Link::Ws(ws) => ws,
            Link::Pty(_) => unreachable!("a pty has no WebSocket"),
        }
    }

    async fn send_text(&mut self, text: String) -> Result<()> {
        self.ws().send(Message::Text(text.into())).await?;
        Ok(())
    }

    /// The next control message (isolab), output frames in between being acknowledged.
    async fn control(&mut self) -> Result<serde_json::Value> {
        loop {
            match self.ws().next().await.ok_or("connection closed")?? {
                Message::Text(t) => return Ok(serde_json::from_str(&t)?),
                Message::Binary(b) if b.len() > 5 => {
                    self.acknowledge(b.len() as u64 - 5).await?;
                }
                Message::Close(_) => return Err("connection closed".into()),
                _ => {}
            }
        }
    }

    async fn acknowledge(&mut self, n: u64) -> Result<()> {
        self.unacked += n;
        if self.unacked >= self.ack_every {
            let ack = format!(
                "{{\"type\":\"ack\",\"handle\":{},\"bytes\":{}}}",
                self.handle, self.unacked
            );
            self.unacked = 0;
            self.send_text(ack).await?;
        }
        Ok(())
    }

    async fn type_in(&mut self, text: &str) -> Result<()> {
        match self.kind {
            Kind::Isolab => {
                let mut frame = Vec::with_capacity(5 + text.len());
                frame.push(2);
                frame.extend_from_slice(&self.handle.to_be_bytes());
                frame.extend_from_slice(text.as_bytes());
                self.ws().send(Message::Binary(frame.into())).await?;
            }
            Kind::Terminado => {
                self.send_text(serde_json::to_string(&("stdin", text))?)
                    .await?;
            }
            Kind::Pty => match &mut self.link {
                Link::Pty(pty) => pty.master.write_all(text.as_bytes())?,
                Link::Ws(_) => unreachable!(),
            },
        }
        Ok(())
    }

    /// Read output until `finder` sees its marker; the number of output bytes read.
    async fn read_until(&mut self, finder: &mut Finder) -> Result<u64> {
        let mut total = 0u64;
        if let Link::Pty(pty) = &mut self.link {
            // Blocking reads: nothing else runs on this thread meanwhile.
            loop {
                let n = pty.master.read(&mut pty.buf)?;
                if n == 0 {
                    return Err("the pty ended".into());
                }
                total += n as u64;
                self.chunks += 1;
                if finder.push(&pty.buf[..n]) {
                    return Ok(total);
                }
            }
        }
        loop {
            let msg = self.ws().next().await.ok_or("connection closed")??;
            match (self.kind, &msg) {
                (Kind::Isolab, Message::Binary(b)) => {
                    if b.len() < 5 || b[0] != 1 || b[1..5] != self.handle.to_be_bytes() {
                        continue;
                    }
                    let data = &b[5..];
                    total += data.len() as u64;
                    self.chunks += 1;
                    let found = finder.push(data);
                    self.acknowledge(data.len() as u64).await?;
                    if found {
                        return Ok(total);
                    }
                }
                (Kind::Isolab, Message::Text(t))
                    if t.contains("\"exited\"") || t.contains("\"error\"") =>
                {
                    return Err(format!("while reading: {t}").into());
                }
                (Kind::Terminado, Message::Text(t)) => {
                    let bytes = t.as_bytes();
                    if let Some(data) = bytes
                        .strip_prefix(STDOUT_PREFIX)
                        .and_then(|b| b.strip_suffix(STDOUT_SUFFIX))
                    {
                        // JSON-escaped: `\r\n` counts 4 here.
                        total += data.len() as u64;
                        self.chunks += 1;
                        if finder.push(data) {
                            return Ok(total);
                        }
                    } else if bytes.starts_with(b"[\"disconnect\"") {
                        return Err("terminado: the terminal ended".into());
                    }
                }
                (_, Message::Close(_)) => return Err("connection closed".into()),
                _ => {}
            }
        }
    }

    /// `exit` the shell and wait (5 s at most) until the server says it ended, so that a
    /// container's removal does not overlap the next round.
    async fn close(mut self) -> Result<()> {
        self.type_in("exit\n").await?;
        if let Link::Pty(pty) = &mut self.link {
            let deadline = Instant::now() + Duration::from_secs(5);
            while pty.child.try_wait()?.is_none() {
                if Instant::now() > deadline {
                    eprintln!("wsbench: the shell did not exit within 5 s");
                    let _ = pty.child.kill();
                    pty.child.wait()?;
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            return Ok(());
        }
        let mut ended = false;
        let wait = async {
            while let Some(Ok(msg)) = self.ws().next().await {
                match msg {
                    Message::Binary(b) if b.len() > 5 => {
                        self.acknowledge(b.len() as u64 - 5).await?;
                    }
                    Message::Text(t)
                        if t.contains("\"exited\"") || t.starts_with("[\"disconnect\"") =>
                    {
                        ended = true;
                        break;
                    }
                    Message::Close(_) => break,
                    _ => {}
                }
            }
            Ok::<(), Box<dyn Error>>(())
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), wait).await;
        if !ended {
            eprintln!("wsbench: the server did not report the shell's end within 5 s");
        }
        let _ = self.ws().close(None).await;
        Ok(())
    }
}

struct Sample {
    mbps: f64,
    secs: f64,
    received: u64,
    chunks: u64,
}

/// A marker the shell prints and its echo of the command line does not contain: typed with
/// `''` in the middle.
fn marker(word: &str, nonce: &str) -> (Finder, String) {
    (
        Finder::new(&format!("WSBENCH-{word}-{nonce}")),
        format!("echo WSBENCH-''{word}-{nonce}"),
    )
}

async fn round(args: &Args, n: usize) -> Result<Sample> {
    let mut term = Term::open(args).await?;
    let mut prompt = Finder::new("# ");
    tokio::time::timeout(Duration::from_secs(20), term.read_until(&mut prompt))
        .await
        .map_err(|_| "no prompt within 20 s")??;
    let nonce = format!("{}-{n}", std::process::id());
    let file = format!("/tmp/wsbench-{nonce}");

    let (mut ready, echo_ready) = marker("READY", &nonce);
    let source = match args.line {
        0 => "tr '\\0' x < /dev/zero".to_string(),
        n => format!("yes {}", "a".repeat(n - 1)),
    };
    let prepare = format!("{source} | head -c {} > {file}; {echo_ready}\n", args.bytes);
    term.type_in(&prepare).await?;
    tokio::time::timeout(args.timeout, term.read_until(&mut ready))
        .await
        .map_err(|_| format!("{file} not written within {:?}", args.timeout))??;

    let (mut end, echo_end) = marker("END", &nonce);
    term.chunks = 0;
    let t0 = Instant::now();
    term.type_in(&format!("cat {file}; {echo_end}\n")).await?;
    let received = tokio::time::timeout(args.timeout, term.read_until(&mut end))
        .await
        .map_err(|_| format!("no end marker within {:?}", args.timeout))??;
    let secs = t0.elapsed().as_secs_f64();
    let chunks = term.chunks;

    term.type_in(&format!("rm -f {file}\n")).await?;
    term.close().await?;
    Ok(Sample {
        mbps: args.bytes as f64 / 1e6 / secs,
        secs,
        received,
        chunks,
    })
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let mid = s.len() / 2;
    if s.len() % 2 == 1 {
        s[mid]
    } else {
        (s[mid - 1] + s[mid]) / 2.0
    }
}

async fn run(args: Args) -> Result<()> {
    let name = args.kind.name();
    let mut samples = Vec::new();
    for n in 0..args.warmup + args.rounds {
        let s = round(&args, n).await?;
        let label = if n < args.warmup {
            "warm-up".to_string()
        } else {
            format!("round {}", n - args.warmup + 1)
        };
        println!(
            "{name} {label}: {:.1} MB/s ({} bytes in {:.3} s; {} bytes of output in {} chunks)",
            s.mbps, args.bytes, s.secs, s.received, s.chunks
        );
        if n >= args.warmup {
            samples.push(s);
        }
    }
    let mbps: Vec<f64> = samples.iter().map(|s| s.mbps).collect();
    let round2 = |x: f64| (x * 100.0).round() / 100.0;
    let summary = serde_json::json!({
        "server": name,
        "target": args.target,
        "bytes": args.bytes,
        "line": args.line,
        "ack_every": (args.kind == Kind::Isolab).then_some(args.ack_every),
        "mbps": mbps.iter().copied().map(round2).collect::<Vec<_>>(),
        "median_mbps": round2(median(&mbps)),
    });
    println!("{summary}");
    Ok(())
}

fn main() {
    let result = parse_args().and_then(|args| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(run(args))
    });
    if let Err(e) = result {
        eprintln!("wsbench: {e}");
        std::process::exit(1);
    }
}
