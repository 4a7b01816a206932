//! A real `isolab serve` on a free port, and a WebSocket client speaking its protocol.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use isolab_shared::protocol::{ClientMsg, Frame, FrameKind, Handle, ServerMsg};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::Isolab;

/// A server process; SIGTERM and a wait when dropped.
pub struct Server {
    child: Child,
    /// `127.0.0.1:PORT`
    pub addr: String,
}

impl Server {
    /// A server whose sessions end 1 s after their connection (so tests see the cleanup).
    pub fn start(isolab: &Isolab) -> Server {
        Server::start_with(isolab, &["--grace", "1"])
    }

    pub fn start_with(isolab: &Isolab, extra: &[&str]) -> Server {
        Server::spawn(isolab, extra, None)
    }

    /// [`Server::start_with`] with at most `nofile` open descriptors (`RLIMIT_NOFILE`).
    pub fn start_with_nofile(isolab: &Isolab, nofile: u64, extra: &[&str]) -> Server {
        Server::spawn(isolab, extra, Some(nofile))
    }

    fn spawn(isolab: &Isolab, extra: &[&str], nofile: Option<u64>) -> Server {
        use std::os::unix::process::CommandExt;
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        // Every test client comes from 127.0.0.1, and other tests load the host (a fork bomb
        // lifts the load average for a minute): admission is off unless a test turns it on.
        for (flag, value) in [
            ("--max-sessions-per-ip", "0"),
            ("--max-load", "1000"),
            ("--min-free-memory", "0"),
            ("--min-free-disk", "0"),
        ] {
            if !extra.contains(&flag) {
                args.extend([flag, value]);
            }
        }
        args.extend_from_slice(extra);
        let mut cmd = isolab.cmd(&args);
        if let Some(n) = nofile {
            // SAFETY: between fork and exec only setrlimit runs, which is async-signal-safe and
            // touches no memory but the struct on this stack.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: n,
                        rlim_max: n,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        Server::from_command(cmd)
    }

    /// A server run by a command of the caller's making (`isolab … serve …`, perhaps wrapped,
    /// e.g. by `nsenter` into another network namespace, which must exec it so that the child
    /// is the server): its URL is read from the first line of its stdout.
    pub fn from_command(mut cmd: std::process::Command) -> Server {
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .expect("start isolab serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(addr) = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .map(str::to_string)
        else {
            let status = child.kill().and_then(|()| child.wait());
            panic!("no URL in {line:?} (the server: {status:?})");
        };
        Server { child, addr }
    }

    /// SIGKILL, as a crash would: nothing of the server's own clean-up runs.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The server's process id (to read its `/proc` files, or signal it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Wait for the server to exit by itself (after a signal the test sent).
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }

    /// SIGTERM, then the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        // SAFETY: kill takes a pid and a signal number; the pid is our own child's.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.stop();
        }
    }
}

/// A protocol client: control messages and terminal output, with a timeout on every wait.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The session cookie the server set (`isolab_session=…`), to come back with.
    pub cookie: Option<String>,
    /// Output received but not yet looked at, per handle.
    pub output: std::collections::BTreeMap<Handle, Vec<u8>>,
    pub hello: ServerMsg,
}

pub const WAIT: Duration = Duration::from_secs(10);

impl Client {
    pub async fn connect(url: &str) -> Client {
        Client::connect_with_cookie(url, None).await
    }

    /// Connect as the browser that holds `cookie` (as a reload would).
    pub async fn connect_with_cookie(url: &str, cookie: Option<&str>) -> Client {
        let headers: Vec<(&str, &str)> = cookie.map(|c| ("Cookie", c)).into_iter().collect();
        let (mut c, _) = Client::try_connect_with_headers(url, &headers)
            .await
            .expect("connect");
        c.cookie = c.cookie.or(cookie.map(str::to_string));
        c
    }

    /// Connect with these request headers (`Cookie`, `Origin`, …); the upgrade answer's
    /// headers come back with the client (every `Set-Cookie`, `X-Isolab-Node`, …), and a
    /// refused upgrade as the error (its status and body).
    pub async fn try_connect_with_headers(
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<
        (Client, tokio_tungstenite::tungstenite::http::HeaderMap),
        tokio_tungstenite::tungstenite::Error,
    > {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = url.into_client_request()?;
        for (name, value) in headers {
            req.headers_mut().append(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                    .expect("a header name"),
                value.parse().expect("a header value"),
            );
        }
        let (ws, resp) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
            .await
            .expect("the upgrade is answered in time")?;
        let cookie = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .find(|c| c.starts_with("isolab_session="))
            .map(str::to_string);
        let mut c = Client {
            ws,
            cookie,
            output: Default::default(),
            hello: ServerMsg::State {
                reference: None,
                containers: vec![],
            },
        };
        c.hello = c.next_msg().await;
        Ok((c, resp.headers().clone()))
    }

    pub async fn send(&mut self, msg: &ClientMsg) {
        let text = serde_json::to_string(msg).unwrap();
        self.ws.send(Message::Text(text.into())).await.unwrap();
    }

    pub async fn send_raw(&mut self, msg: Message) {
        self.ws.send(msg).await.unwrap();
    }

    pub async fn input(&mut self, handle: Handle, text: &str) {
        let frame = Frame::new(FrameKind::Input, handle, text.as_bytes()).encode();
        self.ws.send(Message::Binary(frame.into())).await.unwrap();
    }

    /// The next frame of any kind (binary output is stored and returned as `None`).
    async fn next_any(&mut self) -> Option<ServerMsg> {
        let msg = tokio::time::timeout(WAIT, self.ws.next())
            .await
            .expect("the server answers in time")
            .expect("the connection stays open")
            .expect("a frame");
        match msg {
            Message::Text(t) => Some(serde_json::from_str(&t).expect("a server message")),
            Message::Binary(b) => {
                let f = Frame::decode(&b).expect("a valid frame");
                self.output
                    .entry(f.handle)
                    .or_default()
                    .extend_from_slice(f.data);
                None
            }
            _ => None,
        }
    }

    /// The next control message, storing output meanwhile.
    pub async fn next_msg(&mut self) -> ServerMsg {
        loop {
            if let Some(m) = self.next_any().await {
                return m;
            }
        }
    }

    /// Wait until a handle's output contains `needle`; returns all of it so far.
    pub async fn output_until(&mut self, handle: Handle, needle: &str) -> String {
        loop {
            let text = String::from_utf8_lossy(self.output.get(&handle).map_or(&[][..], |v| v))
                .into_owned();
            if text.contains(needle) {
                return text;
            }
            self.next_any().await;
        }
    }

    /// Create a container: its terminal's handle and what the server says of it (`view`s and
    /// `state`s that come first are skipped; anything else is a failure).
    pub async fn create(
        &mut self,
        spec: isolab_shared::spec::ContainerSpec,
    ) -> (Handle, isolab_shared::protocol::ContainerInfo) {
        self.send(&isolab_shared::protocol::ClientMsg::Create {
            reference: Some(1),
            spec: Box::new(spec),
        })
        .await;
        loop {
            match self.next_msg().await {
                ServerMsg::Created {
                    handle, container, ..
                } => return (handle, container),
                ServerMsg::View { .. } | ServerMsg::State { .. } => {}
                other => panic!("expected created, got {other:?}"),
            }
        }
    }

    /// Read frames for `time` without answering; returns the bytes of output received.
    pub async fn drain_for(&mut self, time: Duration) -> usize {
        let until = tokio::time::Instant::now() + time;
        let mut total = 0;
        while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(until, self.ws.next()).await {
            if let Message::Binary(b) = msg {
                total += b.len().saturating_sub(5);
            }
        }
        total
    }
}

/// A plain HTTP/1.0 GET, with a `Cookie` header when given: status, head (ending in the blank
/// line), body.
pub fn http_get(addr: &str, path: &str, cookie: Option<&str>) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    s.set_read_timeout(Some(WAIT)).unwrap();
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n{cookie}\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    (code, format!("{head}\r\n\r\n"), body.to_string())
}

/// One sample of a `/metrics` text, by its series as written (name and labels).
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in /metrics:\n{text}"))
        .parse()
        .unwrap()
}
