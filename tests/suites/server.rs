//! The web slice's server, through its WebSocket with a real client: containers made, typed
//! into, resized, exec'd into, and every kind of bad input answered without harm. Needs root.

use std::time::Duration;

use isolab_shared::protocol::{codes, ClientMsg, Frame, FrameKind, ServerMsg, PROTOCOL_VERSION};
use isolab_shared::spec::ContainerSpec;
use isolab_tests::server::{metric, Client, Server};
use isolab_tests::Isolab;
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_isolab");

fn shell(name: &str) -> ClientMsg {
    let mut spec = ContainerSpec::new("busybox", vec!["sh".into()]);
    spec.name = Some(name.into());
    spec.tty = true;
    ClientMsg::Create {
        reference: Some(1),
        spec: Box::new(spec),
    }
}

/// Create and return the terminal handle, checking the reply.
async fn create(c: &mut Client, msg: ClientMsg) -> u32 {
    c.send(&msg).await;
    match c.next_msg().await {
        ServerMsg::Created { handle, .. } => handle,
        other => panic!("expected created, got {other:?}"),
    }
}

/// Wait for the `exited` of a terminal; its code.
async fn exit_code(c: &mut Client, handle: u32) -> i32 {
    loop {
        if let ServerMsg::Exited {
            handle: h, code, ..
        } = c.next_msg().await
        {
            if h == handle {
                return code;
            }
        }
    }
}

async fn expect_error(c: &mut Client, code: &str) -> ServerMsg {
    match c.next_msg().await {
        e @ ServerMsg::Error { .. } => {
            let ServerMsg::Error { code: got, .. } = &e else {
                unreachable!()
            };
            assert_eq!(got, code, "{e:?}");
            e
        }
        other => panic!("expected error {code}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shell_over_the_websocket_answers_resizes_and_execs() {
    let t = Isolab::new(BIN);
    let server = Server::start(&t);
    let mut c = Client::connect(&server.url()).await;
    assert!(
        matches!(
            c.hello,
            ServerMsg::Hello {
                version: PROTOCOL_VERSION,
                ..
            }
        ),
        "{:?}",
        c.hello
    );
    let h = create(&mut c, shell("alpha")).await;
    c.input(h, "hostname; echo pid=$$\n").await;
    let out = c.output_until(h, "pid=1").await;
    assert!(out.contains("alpha"), "{out}");
    c.send(&ClientMsg::Resize {
        reference: None,
        handle: h,
        rows: 40,
        cols: 120,
    })
    .await;
    c.input(h, "stty size\n").await;
    c.output_until(h, "40 120").await;
    // A second shell in the same container, with an extra variable (docker exec -e).
    c.send(&ClientMsg::Exec {
        reference: Some(2),
        container: "alpha".into(),
        cmd: vec![],
        env: vec!["GREETING=hi".into()],
    })
    .await;
    let e = match c.next_msg().await {
        ServerMsg::Created {
            handle, container, ..
        } => {
            assert_eq!(container.handles, vec![h, handle]);
            handle
        }
        other => panic!("{other:?}"),
    };
    c.input(e, "hostname; echo $GREETING-there; exit 3\n").await;
    assert_eq!(exit_code(&mut c, e).await, 3);
    assert!(c.output_until(e, "alpha").await.contains("alpha"));
    assert!(c.output_until(e, "hi-there").await.contains("hi-there"));
    // The main shell's exit ends the container.
    c.input(h, "exit 7\n").await;
    assert_eq!(exit_code(&mut c, h).await, 7);
    drop(c);
    drop(server);
    t.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_tty_stdout_stderr_and_the_exit_code_come_back() {
    let t = Isolab::new(BIN);
    let server = Server::start(&t);
    let mut c = Client::connect(&server.url()).await;
    let spec = ContainerSpec::new(
        "busybox",
        vec![
            "sh".into(),
            "-c".into(),
            "echo out; echo err >&2; exit 4".into(),
        ],
    );
    let h = create(
        &mut c,
        ClientMsg::Create {
            reference: None,
            spec: Box::new(spec),
        },
    )
    .await;
    assert_eq!(exit_code(&mut c, h).await, 4);
    // Output and stderr share the handle's buffer in this client; both arrived.
    let out = String::from_utf8_lossy(&c.output[&h]).into_owned();
    assert!(out.contains("out") && out.contains("err"), "{out}");
    drop(c);
    drop(server);
    t.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_an_error_and_harms_nothing() {
    let t = Isolab::new(BIN);
    let server = Server::start(&t);
    let mut c = Client::connect(&server.url()).await;
    let h = create(&mut c, shell("keep")).await;
    c.send_raw(Message::Text("{not json".into())).await;
    expect_error(&mut c, codes::BAD_MESSAGE).await;
    c.send_raw(Message::Text(r#"{"type":"explode","ref":4}"#.into()))
        .await;
    expect_error(&mut c, codes::UNKNOWN_TYPE).await;
    c.send(&ClientMsg::Remove {
        reference: Some(5),
        container: "ghost".into(),
    })
    .await;
    let e = expect_error(&mut c, codes::UNKNOWN_CONTAINER).await;
    assert!(
        matches!(
            e,
            ServerMsg::Error {
                reference: Some(5),
                ..
            }
        ),
        "ref echoed: {e:?}"
    );
    c.send_raw(Message::Binary(
        Frame::new(FrameKind::Input, 999, b"x").encode().into(),
    ))
    .await;
    expect_error(&mut c, codes::UNKNOWN_HANDLE).await;
    c.send_raw(Message::Binary(vec![2, 0].into())).await;
    expect_error(&mut c, codes::BAD_FRAME).await;
    c.send_raw(Message::Binary(vec![0u8; 10 << 20].into()))
        .await;
    expect_error(&mut c, codes::FRAME_TOO_LARGE).await;
    let mut bad = ContainerSpec::new("busybox", vec!["sh".into()]);
    bad.hostname = Some("a/b".into());
    c.send(&ClientMsg::Create {
        reference: Some(6),
        spec: Box::new(bad),
    })
    .await;
    let e = expect_error(&mut c, "invalid_hostname").await;
    assert!(
        matches!(e, ServerMsg::Error { field: Some(ref f), .. } if f == "hostname"),
        "{e:?}"
    );
    c.send(&ClientMsg::Signal {
        reference: None,
        handle: h,
        signal: "STOP".into(),
    })
    .await;
    expect_error(&mut c, codes::UNKNOWN_SIGNAL).await;
    // The session's container still works.
    c.input(h, "echo still-$((40+2))\n").await;
    c.output_until(h, "still-42").await;
    drop(c);
    drop(server);
    t.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_sessions_have_their_own_names_and_cannot_reach_each_other() {
    let t = Isolab::new(BIN);
    let server = Server::start(&t);
    let mut a = Client::connect(&server.url()).await;
    let mut b = Client::connect(&server.url()).await;
    let ha = create(&mut a, shell("alpha")).await;
    let hb = create(&mut b, shell("alpha")).await;
    // b cannot join a's namespaces by name, nor remove a's container.
    let mut spec = ContainerSpec::new("busybox", vec!["sh".into()]);
    spec.namespaces.pid = "container:ghost".parse().unwrap();
    b.send(&ClientMsg::Create {
        reference: None,
        spec: Box::new(spec),
    })
    .await;
    expect_error(&mut b, codes::UNKNOWN_CONTAINER).await;
    a.input(ha, "hostname\n").await;
    b.input(hb, "hostname\n").await;
    a.output_until(ha, "alpha").await;
    b.output_until(hb, "alpha").await;
    b.send(&ClientMsg::Remove {
        reference: Some(1),
        container: "alpha".into(),
    })
    .await;
    assert!(matches!(b.next_msg().await, ServerMsg::State { .. }));
    a.input(ha, "echo a-lives\n").await;
    a.output_until(ha, "a-lives").await;
    drop(a);
    drop(b);
    drop(server);
    t.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread")]
async fn yes_against_a_client_that_does_not_ack_stops_at_the_window() {
    let t = Isolab::new(BIN);
    let server = Server::start(&t);
    let mut c = Client::connect(&server.url()).await;
    let ServerMsg::Hello { limits, .. } = c.hello.clone() else {
        panic!()
    };
    let h = create(&mut c, shell("flood")).await;
    c.input(h, "yes\n").await;
    let first = c.drain_for(Duration::from_secs(2)).await as u64;
    assert!(
        first >= limits.flow_high_bytes / 2,
        "output flowed: {first}"
    );
    assert!(
        first <= limits.flow_high_bytes + 64 * 1024,
        "without acks the server stops near {} bytes, sent {first}",
        limits.flow_high_bytes
    );
    let idle = c.drain_for(Duration::from_millis(500)).await;
    assert_eq!(idle, 0, "nothing more without an ack");
    c.send(&ClientMsg::Ack {
        handle: h,
        bytes: first,
    })
    .await;
    let more = c.drain_for(Duration::from_millis(500)).await;
    assert!(more > 0, "an ack lets it flow again");
    drop(c);
    drop(server);
    t.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_origin_is_refused() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let t = Isolab::new(BIN);
    let server = Server::start(&t);
    let mut req = server.url().into_client_request().unwrap();
    req.headers_mut()
        .insert("Origin", "http://evil.example".parse().unwrap());
    let Err(err) = tokio_tungstenite::connect_async(req).await else {
        panic!("a foreign Origin must be refused");
    };
    assert!(err.to_string().contains("403"), "{err}");
    drop(server);
    t.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_allowed_origin_is_accepted_and_another_still_refused() {
    let t = Isolab::new(BIN);
    let server = Server::start_with(
        &t,
        &[
            "--grace",
            "1",
            "--allow-origin",
            "https://lab.example.com",
            "--allow-origin",
            "http://other.example:8443/",
        ],
    );
    for origin in ["https://lab.example.com", "http://other.example:8443"] {
        let (mut c, _) = Client::try_connect_with_headers(&server.url(), &[("Origin", origin)])
            .await
            .unwrap_or_else(|e| panic!("{origin} is allowed: {e}"));
        create(&mut c, shell("allowed")).await;
        drop(c);
    }
    // The server's own page still may.
    let own = format!("http://{}", server.addr);
    let (c, _) = Client::try_connect_with_headers(&server.url(), &[("Origin", &own)])
        .await
        .expect("the same origin");
    drop(c);
    // Exact: another scheme, port or host is still foreign.
    for origin in [
        "http://lab.example.com",
        "https://lab.example.com:8443",
        "https://evil.example",
        "https://lab.example.com.evil.example",
    ] {
        let Err(err) = Client::try_connect_with_headers(&server.url(), &[("Origin", origin)]).await
        else {
            panic!("{origin} must be refused");
        };
        assert!(err.to_string().contains("403"), "{origin}: {err}");
    }
    drop(server);
    // Not an exact origin: refused at start-up, with what to give instead.
    let out = t.run(&["serve", "--listen", "127.0.0.1:0", "--allow-origin", "*"]);
    assert!(!out.status.success());
    let err = isolab_tests::stderr(&out);
    assert!(err.contains("https://lab.example.com"), "{err}");
    t.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread")]
async fn closing_the_connection_or_stopping_the_server_removes_containers() {
    let t = Isolab::new(BIN);
    let mut server = Server::start(&t);
    let mut c = Client::connect(&server.url()).await;
    create(&mut c, shell("gone")).await;
    drop(c);
    t.assert_no_leaks();
    let mut c = Client::connect(&server.url()).await;
    create(&mut c, shell("stopped")).await;
    // One that ignores SIGTERM goes too: the server kills through the cgroup.
    let mut stubborn = ContainerSpec::new(
        "busybox",
        vec!["sh".into(), "-c".into(), "trap '' TERM; sleep 1000".into()],
    );
    stubborn.name = Some("stubborn".into());
    let msg = ClientMsg::Create {
        reference: Some(2),
        spec: Box::new(stubborn),
    };
    create(&mut c, msg).await;
    let status = server.stop();
    assert!(status.success(), "SIGTERM is a clean stop: {status:?}");
    t.assert_no_leaks();
}

#[test]
fn isolab_run_over_the_wire_prints_and_exits_like_a_local_run() {
    let t = Isolab::new(BIN);
    let server = Server::start(&t);
    let url = server.url();
    let out = t.run(&[
        "run",
        "--server",
        &url,
        "--hostname",
        "alpha",
        "busybox",
        "hostname",
    ]);
    assert_eq!(isolab_tests::stdout(&out), "alpha\n");
    assert!(out.status.success());
    let out = t.run(&[
        "run",
        "--server",
        &url,
        "busybox",
        "sh",
        "-c",
        "echo oops >&2; exit 5",
    ]);
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(isolab_tests::stderr(&out), "oops\n");
    // Piped input reaches the container, and its end is the container's end of input (eof).
    let mut piped = t
        .cmd(&[
            "run",
            "--server",
            &url,
            "busybox",
            "sh",
            "-c",
            "wc -l; exit 4",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = piped.stdin.take().unwrap();
        stdin.write_all(b"one\ntwo\nthree\n").unwrap();
    }
    let out = piped.wait_with_output().unwrap();
    assert_eq!(isolab_tests::stdout(&out).trim(), "3");
    assert_eq!(out.status.code(), Some(4));
    let out = t.run(&[
        "run",
        "--server",
        &url,
        "--hostname",
        "a/b",
        "busybox",
        "true",
    ]);
    assert!(!out.status.success());
    assert!(
        isolab_tests::stderr(&out).contains("hostname"),
        "{}",
        isolab_tests::stderr(&out)
    );
    drop(server);
    t.assert_no_leaks();
}

#[test]
fn isolab_run_over_the_wire_refuses_detach() {
    let t = Isolab::new(BIN);
    let server = Server::start(&t);
    let url = server.url();
    for flag in ["-d", "--detach"] {
        let out = t.run(&["run", "--server", &url, flag, "busybox", "sleep", "100"]);
        let err = isolab_tests::stderr(&out);
        assert_eq!(out.status.code(), Some(125), "{err}");
        assert!(
            err.contains("-d/--detach cannot be used with --server"),
            "{err}"
        );
        assert!(isolab_tests::stdout(&out).is_empty(), "no id is printed");
    }
    // Refused before connecting: no session was started for it.
    let text = scrape(&server.addr);
    assert_eq!(metric(&text, "isolab_sessions_started_total"), 0.0);
    drop(server);
    t.assert_no_leaks();
}

/// Read `out`'s chunks into `seen` until it holds `needle` (a panic after `WAIT`).
fn read_until(out: &std::sync::mpsc::Receiver<Vec<u8>>, seen: &mut String, needle: &str) {
    let until = std::time::Instant::now() + isolab_tests::server::WAIT;
    while !seen.contains(needle) {
        let left = until.saturating_duration_since(std::time::Instant::now());
        match out.recv_timeout(left) {
            Ok(chunk) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            Err(e) => panic!("no {needle:?} ({e}) in {seen:?}"),
        }
    }
}

#[test]
fn isolab_run_over_the_wire_forwards_window_changes() {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::process::Stdio;
    let t = Isolab::new(BIN);
    let server = Server::start(&t);
    // A terminal of the test's own as the client's stdin, 24x80 to start.
    let pty = nix::pty::openpty(None, None).unwrap();
    isolab::runtime::sys::set_winsize(pty.master.as_raw_fd(), 24, 80).unwrap();
    // The container says its size once it has the client's, then waits (10 s at most) for it
    // to change and says it again.
    let script = "i=0; until [ \"$(stty size)\" = '24 80' ] || [ $i = 100 ]; do \
                  sleep 0.1; i=$((i+1)); done; echo \"was $(stty size)\"; \
                  i=0; while [ \"$(stty size)\" = '24 80' ] && [ $i != 100 ]; do \
                  sleep 0.1; i=$((i+1)); done; echo \"now $(stty size)\"";
    let url = server.url();
    let mut child = t
        .cmd(&["run", "--server", &url, "-t", "busybox", "sh", "-c", script])
        .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    read_until(&rx, &mut seen, "was 24 80");
    // As a terminal emulator does: a new size, then SIGWINCH (sent here, as the terminal is
    // not the client's controlling one).
    isolab::runtime::sys::set_winsize(pty.master.as_raw_fd(), 40, 100).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGWINCH,
    )
    .unwrap();
    read_until(&rx, &mut seen, "now ");
    let status = child.wait().unwrap();
    // The rest, to the end of its output.
    for chunk in rx.iter() {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        seen.contains("now 40 100"),
        "the container saw the new size: {seen:?}"
    );
    assert!(status.success(), "{status:?}: {seen:?}");
    drop(server);
    t.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_reattaches_and_replays_the_scrollback() {
    let t = Isolab::new(BIN);
    let server = Server::start_with(&t, &["--grace", "30"]);
    let mut c = Client::connect(&server.url()).await;
    let cookie = c.cookie.clone().expect("the server sets a session cookie");
    assert!(cookie.starts_with("isolab_session="), "{cookie}");
    let h = create(&mut c, shell("keep")).await;
    c.input(h, "echo marker-$((6*7))\n").await;
    c.output_until(h, "marker-42").await;
    drop(c); // the page reloads
    let mut c = Client::connect_with_cookie(&server.url(), Some(&cookie)).await;
    let ServerMsg::Hello { containers, .. } = &c.hello else {
        panic!("{:?}", c.hello)
    };
    assert_eq!(containers.len(), 1, "{containers:?}");
    assert_eq!(containers[0].name, "keep");
    assert_eq!(containers[0].handles, vec![h]);
    c.output_until(h, "marker-42").await; // replayed
    c.input(h, "echo back-again\n").await;
    c.output_until(h, "back-again").await;
    // Another browser (no cookie) has its own, empty session.
    let other = Client::connect(&server.url()).await;
    assert!(matches!(&other.hello, ServerMsg::Hello { containers, .. } if containers.is_empty()));
    drop(other);
    drop(c);
    drop(server); // SIGTERM removes the session's containers at once, grace or not
    t.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread")]
async fn after_the_grace_period_the_containers_are_removed() {
    let t = Isolab::new(BIN);
    let server = Server::start_with(&t, &["--grace", "1"]);
    let mut c = Client::connect(&server.url()).await;
    let cookie = c.cookie.clone().unwrap();
    create(&mut c, shell("brief")).await;
    drop(c);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        t.ok(&["ps"]).lines().count(),
        2,
        "still there within the grace"
    );
    t.assert_no_leaks(); // waits; the grace ends after 1 s
    let c = Client::connect_with_cookie(&server.url(), Some(&cookie)).await;
    assert!(matches!(&c.hello, ServerMsg::Hello { containers, .. } if containers.is_empty()));
    drop(c);
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_host_namespaces_are_refused_for_attendees_with_the_field_named() {
    let t = Isolab::new(BIN);
    let server = Server::start(&t);
    let mut c = Client::connect(&server.url()).await;
    let mut spec = ContainerSpec::new("busybox", vec!["sh".into()]);
    spec.namespaces.net = "host".parse().unwrap();
    c.send(&ClientMsg::Create {
        reference: Some(3),
        spec: Box::new(spec),
    })
    .await;
    let e = expect_error(&mut c, "host_namespace_not_allowed").await;
    assert!(
        matches!(&e, ServerMsg::Error { field: Some(f), reference: Some(3), .. } if f == "namespaces.net"),
        "{e:?}"
    );
    // Keystrokes typed fast arrive in order.
    let h = create(&mut c, shell("order")).await;
    for ch in "echo in-order-$((1+1))\n".chars() {
        c.input(h, &ch.to_string()).await;
    }
    c.output_until(h, "in-order-2").await;
    drop(c);
    drop(server);
    t.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_session_ends_and_so_does_one_past_its_lifetime() {
    let t = Isolab::new(BIN);
    let server = Server::start_with(&t, &["--grace", "30", "--idle", "1"]);
    let mut c = Client::connect(&server.url()).await;
    create(&mut c, shell("sleepy")).await;
    loop {
        match c.next_msg().await {
            ServerMsg::Error { code, .. } if code == codes::SESSION_ENDED => break,
            _ => continue,
        }
    }
    t.assert_no_leaks();
    drop(c);
    drop(server);
    // Busy all along, it still ends at its lifetime.
    let server = Server::start_with(&t, &["--grace", "30", "--lifetime", "2"]);
    let mut c = Client::connect(&server.url()).await;
    let h = create(&mut c, shell("busy")).await;
    let ended = async {
        loop {
            match c.next_msg().await {
                ServerMsg::Error { code, .. } if code == codes::SESSION_ENDED => break,
                _ => c.input(h, "echo x\n").await,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(8), ended)
        .await
        .expect("ended at its lifetime");
    t.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread")]
async fn running_out_of_descriptors_gives_errors_not_a_crash() {
    // A server with few descriptors (RLIMIT_NOFILE 64): creates are refused with a clear
    // error once they run out, the server keeps serving, and works again once some are free.
    let t = Isolab::new(BIN);
    let flags = [
        "--grace",
        "1",
        "--no-network",
        "--max-containers",
        "64",
        "--session-memory",
        "64g",
    ];
    let mut server = Server::start_with_nofile(&t, 64, &flags);
    let mut c = Client::connect(&server.url()).await;
    let (mut created, mut refusal) = (0, None);
    for i in 0..60 {
        let mut spec = ContainerSpec::new("busybox", vec!["sh".into()]);
        spec.name = Some(format!("fd{i}"));
        spec.tty = true;
        c.send(&ClientMsg::Create {
            reference: Some(i),
            spec: Box::new(spec),
        })
        .await;
        match c.next_msg().await {
            ServerMsg::Created { .. } => created += 1,
            ServerMsg::Error { message, .. } => {
                refusal = Some(message);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let message = refusal.expect("64 descriptors ran out");
    assert!(created >= 1, "not even one container: {message}");
    assert!(
        message.contains("file descriptors"),
        "the error says what ran out: {message}"
    );
    // Still serving: the connection answers, and after its containers go a new one works.
    c.send(&ClientMsg::List {
        reference: Some(99),
    })
    .await;
    assert!(matches!(c.next_msg().await, ServerMsg::State { .. }));
    drop(c);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut c = Client::connect(&server.url()).await;
    create(&mut c, shell("again")).await;
    drop(c);
    assert!(server.stop().success());
    t.assert_no_leaks();
}

/// A plain HTTP/1.0 GET: (status code, head and body as one text).
fn http_get(addr: &str, path: &str) -> (u16, String) {
    let (code, head, body) = isolab_tests::server::http_get(addr, path, None);
    (code, head + &body)
}

/// A server (grace 1 s, and `flags`) whose page is a marker, "the playground", from a folder of
/// its own (kept while the second value lives).
fn serve_a_page(t: &Isolab, flags: &[&str]) -> (Server, tempfile::TempDir) {
    let dist = tempfile::tempdir().unwrap();
    std::fs::write(dist.path().join("index.html"), "<p>the playground</p>").unwrap();
    let mut args = vec!["--grace", "1", "--dist", dist.path().to_str().unwrap()];
    args.extend_from_slice(flags);
    (Server::start_with(t, &args), dist)
}

/// The HTTP status a WebSocket upgrade to `url` is refused with (None if it is accepted).
async fn refusal(url: &str) -> Option<String> {
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_guards_the_page_and_the_socket() {
    let t = Isolab::new(BIN);
    let (mut server, _page) = serve_a_page(&t, &["--token", "s3cret-token"]);
    let addr = server.addr.clone();
    // Without it: a page that says what to do, and a refused socket.
    let (code, text) = http_get(&addr, "/");
    assert_eq!(code, 401);
    assert!(
        text.contains("token") && !text.contains("the playground"),
        "{text}"
    );
    assert!(refusal(&server.url()).await.unwrap().contains("401"));
    let wrong = format!("{}?token=s3cret-tokeN", server.url());
    assert!(refusal(&wrong).await.unwrap().contains("401"));
    // With it: the page, and a cookie that lets the page's own socket in.
    let (code, text) = http_get(&addr, "/?token=s3cret-token");
    assert_eq!(code, 200, "{text}");
    assert!(text.contains("the playground"));
    assert!(
        text.contains("isolab_token=s3cret-token; Path=/; HttpOnly; SameSite=Strict"),
        "{text}"
    );
    let mut c = Client::connect_with_cookie(&server.url(), Some("isolab_token=s3cret-token")).await;
    create(&mut c, shell("tok")).await;
    drop(c);
    // The command line puts it in the URL.
    let mut c = Client::connect(&format!("{}?token=s3cret-token", server.url())).await;
    create(&mut c, shell("tok2")).await;
    drop(c);
    // A balancer's health check needs none.
    assert_eq!(http_get(&addr, "/healthz").0, 200);
    assert!(server.stop().success());
    t.assert_no_leaks();
}

#[test]
fn listening_beyond_loopback_needs_a_token_or_insecure() {
    let t = Isolab::new(BIN);
    let out = t.run(&["serve", "--listen", "0.0.0.0:0"]);
    assert!(!out.status.success());
    let err = isolab_tests::stderr(&out);
    assert!(
        err.contains("--token") && err.contains("--insecure"),
        "{err}"
    );
    let out = t.run(&["serve", "--listen", "127.0.0.1:0", "--token", "short"]);
    assert!(
        !out.status.success(),
        "a token too short to guess is refused"
    );
    t.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_host_refuses_new_sessions_clearly_and_healthz_says_why() {
    let t = Isolab::new(BIN);
    // No host has more than 100 % of its memory available: always busy.
    let (mut server, _page) = serve_a_page(&t, &["--min-free-memory", "101"]);
    let (code, text) = http_get(&server.addr, "/healthz");
    assert_eq!(code, 503, "{text}");
    let body = text.split("\r\n\r\n").nth(1).unwrap();
    let load: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(load["status"], "busy");
    assert!(
        load["reasons"][0].as_str().unwrap().contains("memory"),
        "{load}"
    );
    assert!(load["memory_available_pct"].as_f64().unwrap() > 0.0);
    let (code, text) = http_get(&server.addr, "/");
    assert_eq!(code, 503);
    assert!(
        text.contains("too busy") && !text.contains("the playground"),
        "{text}"
    );
    assert!(refusal(&server.url()).await.unwrap().contains("503"));
    assert!(server.stop().success());
    t.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_address_holds_at_most_its_share_of_sessions() {
    let t = Isolab::new(BIN);
    let mut server = Server::start_with(&t, &["--grace", "1", "--max-sessions-per-ip", "2"]);
    let a = Client::connect(&server.url()).await;
    let b = Client::connect(&server.url()).await;
    let third = refusal(&server.url())
        .await
        .expect("a third session refused");
    assert!(third.contains("429"), "{third}");
    // A reload of a live session is not a new one.
    let c = Client::connect_with_cookie(&server.url(), a.cookie.as_deref()).await;
    drop((a, b, c));
    // Once they end (grace 1 s), there is room again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _d = Client::connect(&server.url()).await;
    assert!(server.stop().success());
    t.assert_no_leaks();
}

/// `create` of `spec` is refused with `code`, naming `field` (`state`s and `view`s that come
/// first are skipped).
async fn assert_refused(c: &mut Client, spec: ContainerSpec, code: &str, field: &str) {
    c.send(&ClientMsg::Create {
        reference: Some(9),
        spec: Box::new(spec),
    })
    .await;
    let e = loop {
        match c.next_msg().await {
            ServerMsg::State { .. } | ServerMsg::View { .. } => {}
            other => break other,
        }
    };
    assert!(
        matches!(&e, ServerMsg::Error { code: got, field: Some(f), .. }
            if got == code && f == field),
        "expected {code} on {field}: {e:?}"
    );
}

/// The volume sets of the server's sessions under the test's state root.
fn session_volume_sets(t: &Isolab) -> Vec<std::path::PathBuf> {
    let dirs = std::fs::read_dir(t.state_root.join("volumes"))
        .into_iter()
        .flatten();
    dirs.flatten()
        .map(|e| e.path())
        .filter(|p| !p.ends_with("local"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_s_volume_outlives_its_containers_and_goes_with_the_session() {
    let t = Isolab::new(BIN);
    let server = Server::start(&t);
    let mut c = Client::connect(&server.url()).await;
    let run = |name: &str, script: &str, volume: &str| {
        let mut spec = ContainerSpec::new("busybox", vec!["sh".into(), "-c".into(), script.into()]);
        spec.name = Some(name.into());
        spec.volumes = vec![volume.into()];
        spec
    };
    let (h, _) = c
        .create(run("writer", "echo from-writer > /data/f", "data:/data"))
        .await;
    assert_eq!(exit_code(&mut c, h).await, 0);
    let read = "cat /v/f; ls -ln /v/f; echo no > /v/g";
    let (h, _) = c.create(run("reader", read, "data:/v:ro")).await;
    assert_eq!(
        exit_code(&mut c, h).await,
        1,
        "a read-only volume refuses the write"
    );
    let out = String::from_utf8_lossy(&c.output[&h]).into_owned();
    assert!(out.contains("from-writer"), "{out}");
    assert!(out.contains(" 0        0 "), "root's inside: {out}");
    assert!(out.contains("Read-only file system"), "{out}");
    let sets = session_volume_sets(&t);
    assert_eq!(sets.len(), 1, "{sets:?}");
    assert!(sets[0].join("data/f").exists());
    // A bad entry is refused with its field.
    let bad = run("bad", "true", "data:/proc/x");
    assert_refused(&mut c, bad, "invalid_volume", "volumes[0]").await;
    // The session ends (its grace is 1 s): its volumes go with it.
    drop(c);
    isolab_tests::eventually(
        "the session's volumes removed",
        Duration::from_secs(10),
        || !sets[0].exists(),
    );
    drop(server);
    t.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashed_server_s_session_volumes_are_removed_when_the_next_starts() {
    let t = Isolab::new(BIN);
    let mut server = Server::start(&t);
    let mut c = Client::connect(&server.url()).await;
    let mut spec = ContainerSpec::new("busybox", vec!["true".into()]);
    spec.volumes = vec!["data:/data".into()];
    let (h, _) = c.create(spec).await;
    assert_eq!(exit_code(&mut c, h).await, 0);
    // The CLI's own volumes are never a server's to remove.
    t.ok(&["run", "-v", "mine:/m", "busybox", "touch", "/m/kept"]);
    server.kill();
    drop(c);
    let sets = session_volume_sets(&t);
    assert_eq!(sets.len(), 1, "{sets:?}");
    let next = Server::start(&t);
    assert!(!sets[0].exists(), "removed at start-up");
    assert!(t.state_root.join("volumes/local/mine/kept").exists());
    drop(next);
    t.ok(&["volume", "rm", "mine"]);
    t.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_runs_containers_under_the_runtime_it_names() {
    let t = Isolab::new(BIN);
    let server = Server::start(&t);
    let mut c = Client::connect(&server.url()).await;
    let installed = |name: &str| {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .any(|dir| dir.join(name).is_file())
    };
    for rt in ["runc", "crun"] {
        if !installed(rt) {
            eprintln!("skipped: {rt} is not installed here");
            continue;
        }
        let mut spec = ContainerSpec::new("busybox", vec!["sh".into()]);
        spec.name = Some(format!("on-{rt}"));
        spec.tty = true;
        spec.runtime = Some(rt.into());
        spec.memory = Some(isolab_shared::spec::MemorySize(40 << 20));
        let (h, info) = c.create(spec).await;
        assert_eq!(info.runtime, rt);
        c.input(h, "tty; echo pid=$$; hostname\n").await;
        let out = c.output_until(h, &format!("on-{rt}\r\n")).await;
        assert!(out.contains("/dev/pts/0") && out.contains("pid=1"), "{out}");
        // The live view finds its cgroup where isolab made it.
        let target = isolab_shared::protocol::view::ViewTarget::Container(info.name.clone());
        c.send(&ClientMsg::Watch {
            reference: None,
            target: target.clone(),
        })
        .await;
        let cgroup = loop {
            if let ServerMsg::View { target: t, update } = c.next_msg().await {
                if let (true, Some(cg)) = (t == target, update.cgroup) {
                    break cg;
                }
            }
        };
        assert_eq!(cgroup.memory_limit, Some(40 << 20), "{rt}: {cgroup:?}");
        assert!(cgroup.pids_current >= 1, "{rt}: {cgroup:?}");
        c.input(h, "exit 6\n").await;
        assert_eq!(exit_code(&mut c, h).await, 6);
    }
    let mut spec = ContainerSpec::new("busybox", vec!["true".into()]);
    spec.runtime = Some("youki".into());
    assert_refused(&mut c, spec, "invalid_runtime", "runtime").await;
    drop(c);
    drop(server);
    t.assert_no_leaks();
}

fn scrape(addr: &str) -> String {
    let (code, text) = http_get(addr, "/metrics");
    assert_eq!(code, 200, "{text}");
    assert!(text.contains("text/plain; version=0.0.4"), "{text}");
    text.split("\r\n\r\n").nth(1).unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_sessions_starts_bytes_ooms_and_refusals() {
    let t = Isolab::new(BIN);
    let mut server = Server::start_with(
        &t,
        &[
            "--grace",
            "1",
            "--max-sessions",
            "1",
            "--node",
            "metrics-node",
        ],
    );
    let addr = server.addr.clone();
    let before = scrape(&addr);
    assert_eq!(
        metric(&before, "isolab_node_info{node=\"metrics-node\"}"),
        1.0
    );
    assert_eq!(metric(&before, "isolab_sessions"), 0.0);
    let mut c = Client::connect(&server.url()).await;
    // A container with a terminal, typed into.
    let mut spec = ContainerSpec::new("busybox", vec!["sh".into()]);
    spec.tty = true;
    spec.name = Some("shell".into());
    let (handle, _) = c.create(spec).await;
    c.input(handle, "echo metrics-$((6*7))\n").await;
    c.output_until(handle, "metrics-42").await;
    // A create that fails.
    c.send(&ClientMsg::Create {
        reference: Some(2),
        spec: Box::new(ContainerSpec::new("no-such-image", vec!["sh".into()])),
    })
    .await;
    loop {
        match c.next_msg().await {
            ServerMsg::Error { .. } => break,
            ServerMsg::View { .. } | ServerMsg::State { .. } => {}
            other => panic!("expected an error, got {other:?}"),
        }
    }
    // A container the OOM killer ends.
    let mut hog = ContainerSpec::new(
        "busybox",
        vec![
            "sh".into(),
            "-c".into(),
            "head -c 100000000 /dev/zero | tail".into(),
        ],
    );
    hog.memory = Some(isolab_shared::spec::MemorySize(
        32 * isolab_shared::spec::MemorySize::MIB,
    ));
    hog.name = Some("hog".into());
    let (hog_handle, _) = c.create(hog).await;
    loop {
        match c.next_msg().await {
            ServerMsg::Exited {
                handle, oom_killed, ..
            } if handle == hog_handle => {
                assert!(oom_killed);
                break;
            }
            _ => {}
        }
    }
    // A second session is refused: this node takes one.
    assert!(refusal(&server.url()).await.unwrap().contains("503"));
    let text = scrape(&addr);
    assert_eq!(metric(&text, "isolab_sessions"), 1.0);
    assert_eq!(metric(&text, "isolab_sessions_started_total"), 1.0);
    assert_eq!(
        metric(&text, "isolab_sessions_refused_total{reason=\"busy\"}"),
        1.0
    );
    // The hog is gone with its process: one live container.
    assert_eq!(metric(&text, "isolab_containers"), 1.0);
    assert_eq!(
        metric(&text, "isolab_container_starts_total{result=\"ok\"}"),
        2.0
    );
    assert_eq!(
        metric(&text, "isolab_container_starts_total{result=\"error\"}"),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "isolab_container_start_seconds_count{pooled=\"false\"}"
        ),
        2.0
    );
    assert!(
        metric(
            &text,
            "isolab_container_start_seconds_sum{pooled=\"false\"}"
        ) > 0.0
    );
    assert_eq!(metric(&text, "isolab_oom_kills_total"), 1.0);
    let typed = "echo metrics-$((6*7))\n".len() as f64;
    assert_eq!(
        metric(&text, "isolab_terminal_bytes_total{direction=\"in\"}"),
        typed
    );
    assert!(metric(&text, "isolab_terminal_bytes_total{direction=\"out\"}") >= typed);
    assert!(metric(&text, "process_resident_memory_bytes") > 1e6);
    assert!(metric(&text, "process_open_fds") > 3.0);
    // Removing a container lowers the gauge; a closed session's end too.
    c.send(&ClientMsg::Remove {
        reference: Some(3),
        container: "shell".into(),
    })
    .await;
    isolab_tests::eventually("the shell's removal", Duration::from_secs(10), || {
        metric(&scrape(&addr), "isolab_containers") == 0.0
    });
    drop(c);
    isolab_tests::eventually("the session's end", Duration::from_secs(15), || {
        let text = scrape(&addr);
        metric(&text, "isolab_sessions") == 0.0 && metric(&text, "isolab_containers") == 0.0
    });
    assert!(server.stop().success());
    t.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_session_is_pinned_to_its_node_and_readyz_stays_up_when_full() {
    let t = Isolab::new(BIN);
    let (mut server, _page) = serve_a_page(&t, &["--max-sessions", "1", "--node", "n-7"]);
    let addr = server.addr.clone();
    let (code, text) = http_get(&addr, "/healthz");
    assert_eq!(code, 200, "{text}");
    assert!(
        text.to_ascii_lowercase().contains("x-isolab-node: n-7"),
        "{text}"
    );
    assert!(text.contains("\"node\":\"n-7\""), "{text}");
    // The upgrade's answer sets the session and the node cookies.
    let request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        server.url(),
    )
    .unwrap();
    let (ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    let cookies: Vec<&str> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        cookies.iter().any(|c| c.starts_with("isolab_session=")),
        "{cookies:?}"
    );
    assert!(
        cookies.iter().any(|c| c.starts_with("isolab_node=n-7;")),
        "{cookies:?}"
    );
    // Full: new sessions and /healthz get 503, /readyz stays 200 for the live one.
    let (code, _) = http_get(&addr, "/healthz");
    assert_eq!(code, 503);
    let (code, text) = http_get(&addr, "/readyz");
    assert_eq!(code, 200, "{text}");
    let (code, text) = http_get(&addr, "/");
    assert_eq!(code, 503, "{text}");
    drop(ws);
    assert!(server.stop().success());
    t.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pooled_container_is_the_one_asked_for() {
    let t = Isolab::new(BIN);
    let mut server = Server::start_with(&t, &["--grace", "1", "--pool", "busybox=2"]);
    let addr = server.addr.clone();
    isolab_tests::eventually("a full pool", Duration::from_secs(20), || {
        metric(&scrape(&addr), "isolab_pool_ready") == 2.0
    });
    let mut c = Client::connect(&server.url()).await;
    // The default shell with a terminal: what the pool makes, but for name, hostname, limits.
    let mut spec = ContainerSpec::new("busybox", Vec::new());
    spec.tty = true;
    spec.name = Some("alpha".into());
    spec.memory = Some(isolab_shared::spec::MemorySize(
        48 * isolab_shared::spec::MemorySize::MIB,
    ));
    spec.cpus = Some(0.5);
    spec.pids_limit = Some(33);
    let (handle, info) = c.create(spec.clone()).await;
    let text = scrape(&addr);
    assert_eq!(
        metric(&text, "isolab_pool_requests_total{result=\"hit\"}"),
        1.0,
        "taken from the pool"
    );
    assert_eq!(
        metric(
            &text,
            "isolab_container_start_seconds_count{pooled=\"true\"}"
        ),
        1.0
    );
    // Its hostname, seen by its shell, and its limits, read from the host.
    c.input(handle, "echo host-$(hostname)-end\n").await;
    c.output_until(handle, "host-alpha-end").await;
    assert_eq!(
        isolab_tests::cgroup_limits(&info.id),
        isolab_tests::CgroupLimits {
            memory: (48u64 << 20).to_string(),
            cpu: "50000 100000".into(),
            pids: "33".into(),
        }
    );
    // Its name, as the host's `isolab ps` and its bundle tell.
    let inspected = t.inspect(&info.id);
    assert!(
        inspected["name"].as_str().unwrap().ends_with("-alpha"),
        "{inspected}"
    );
    let bundle_file = t
        .state_root
        .join("containers")
        .join(&info.id)
        .join("config.json");
    isolab_tests::eventually("the bundle records it", Duration::from_secs(5), || {
        let bundle: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&bundle_file).unwrap()).unwrap();
        bundle["hostname"] == "alpha" && bundle["linux"]["resources"]["pids"]["limit"] == 33
    });
    // Namespaces of its own: none shared with the host or with the next pooled container.
    let pid = inspected["init"]["pid"].as_i64().unwrap();
    spec.name = Some("beta".into());
    let (_, beta) = c.create(spec.clone()).await;
    let beta_pid = t.inspect(&beta.id)["init"]["pid"].as_i64().unwrap();
    for kind in ["mnt", "uts", "ipc", "pid", "net", "cgroup", "user"] {
        let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/{kind}")).unwrap();
        let mine = ns(&pid.to_string());
        assert_ne!(mine, ns("self"), "{kind} shared with the host");
        assert_ne!(mine, ns(&beta_pid.to_string()), "{kind} shared with beta");
    }
    // The pool fills up again; a request it cannot serve (a command) makes a fresh one.
    isolab_tests::eventually("the pool refilled", Duration::from_secs(20), || {
        metric(&scrape(&addr), "isolab_pool_ready") == 2.0
    });
    let mut other = ContainerSpec::new("busybox", vec!["top".into()]);
    other.tty = true;
    other.name = Some("gamma".into());
    c.create(other).await;
    let text = scrape(&addr);
    assert_eq!(
        metric(&text, "isolab_pool_requests_total{result=\"miss\"}"),
        1.0
    );
    // `sh` by name, as the page sends it, is busybox's own command: a pooled one.
    let mut page = ContainerSpec::new("busybox", vec!["sh".into()]);
    page.tty = true;
    page.name = Some("delta".into());
    let (delta, _) = c.create(page).await;
    c.input(delta, "echo host-$(hostname)-end\n").await;
    c.output_until(delta, "host-delta-end").await;
    let text = scrape(&addr);
    assert_eq!(
        metric(&text, "isolab_pool_requests_total{result=\"hit\"}"),
        3.0
    );
    isolab_tests::eventually("the pool refilled", Duration::from_secs(20), || {
        metric(&scrape(&addr), "isolab_pool_ready") == 2.0
    });
    drop(c);
    // Stopping removes the sessions' containers and the pooled ones.
    assert!(server.stop().success());
    t.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_removed_containers_name_is_free_at_once_and_its_teardown_finishes() {
    let t = Isolab::new(BIN);
    let mut server = Server::start_with(&t, &["--grace", "1"]);
    let mut c = Client::connect(&server.url()).await;
    let mut spec = ContainerSpec::new("busybox", vec!["sleep".into(), "600".into()]);
    spec.name = Some("alpha".into());
    let (_, first) = c.create(spec.clone()).await;
    // Remove, then at once make another of the same name: the teardown runs behind.
    c.send(&ClientMsg::Remove {
        reference: Some(5),
        container: "alpha".into(),
    })
    .await;
    let (_, second) = c.create(spec).await;
    assert_ne!(first.id, second.id);
    // The first one is gone from the host: no process, no state, no cgroup.
    let state = t.state_root.join("containers").join(&first.id);
    isolab_tests::eventually("the first one's teardown", Duration::from_secs(20), || {
        !state.exists() && !isolab_tests::cgroup_dir("memory", &first.id).exists()
    });
    drop(c);
    assert!(server.stop().success());
    t.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_a_trusted_balancer_the_cap_counts_each_browser() {
    let t = Isolab::new(BIN);
    let mut server = Server::start_with(
        &t,
        &[
            "--grace",
            "1",
            "--max-sessions-per-ip",
            "1",
            "--trusted-proxy",
            "127.0.0.0/8",
        ],
    );
    let url = server.url();
    let from = |addr: &'static str| [("x-forwarded-for", addr)];
    let (_a, _) = Client::try_connect_with_headers(&url, &from("203.0.113.5"))
        .await
        .expect("the first browser");
    // The same browser again: its own address is at its cap.
    let refused = Client::try_connect_with_headers(&url, &from("203.0.113.5")).await;
    let e = refused
        .err()
        .expect("a second session of 203.0.113.5 is refused");
    assert!(e.to_string().contains("429"), "{e}");
    // Another browser through the same balancer is not.
    let (_b, _) = Client::try_connect_with_headers(&url, &from("203.0.113.6"))
        .await
        .expect("another browser");
    // A forged entry left of the balancer's own is ignored: the cap holds.
    let forged = Client::try_connect_with_headers(&url, &from("198.51.100.1, 203.0.113.6")).await;
    assert!(
        forged.is_err(),
        "203.0.113.6 is at its cap whatever it claims"
    );
    drop((_a, _b));
    assert!(server.stop().success());
    t.assert_no_leaks();
}

/// A session's defaults and caps, as `hello` announces them and the host's cgroup files show:
/// a spec without limits gets 256 MiB, 1 CPU and 128 pids; the 9th container of a session, or
/// one past its 2 GiB of memory, is refused with `limit_reached`, and the others carry on.
#[tokio::test(flavor = "multi_thread")]
async fn default_limits_apply_and_a_session_is_capped_at_8_containers_and_2g() {
    let t = Isolab::new(BIN);
    let server = Server::start_with(&t, &["--grace", "1", "--no-network"]);
    let mut c = Client::connect(&server.url()).await;
    let limits = match &c.hello {
        ServerMsg::Hello { limits, .. } => limits.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (
            limits.max_containers,
            limits.max_session_memory,
            limits.default_memory,
            limits.default_cpus,
            limits.default_pids,
            limits.grace_secs,
        ),
        (8, 2 << 30, 256 << 20, 1.0, 128, 1)
    );
    let idle = |name: &str| {
        let mut spec = ContainerSpec::new("busybox", vec!["sleep".into(), "600".into()]);
        spec.name = Some(name.into());
        spec
    };
    let (_, first) = c.create(idle("c1")).await;
    assert_eq!(
        isolab_tests::cgroup_limits(&first.id),
        isolab_tests::CgroupLimits {
            memory: (256u64 << 20).to_string(),
            cpu: "100000 100000".into(),
            pids: "128".into(),
        }
    );
    for i in 2..=8 {
        c.create(idle(&format!("c{i}"))).await;
    }
    assert_eq!(
        refused_create(&mut c, idle("c9"), 9).await,
        codes::LIMIT_REACHED
    );
    // Another session: 2 GiB of memory in all, whatever the count.
    let mut d = Client::connect(&server.url()).await;
    let mut big = idle("big");
    big.memory = Some(isolab_shared::spec::MemorySize(1920 << 20));
    d.create(big).await;
    let mut more = idle("more");
    more.memory = Some(isolab_shared::spec::MemorySize(256 << 20));
    assert_eq!(refused_create(&mut d, more, 10).await, codes::LIMIT_REACHED);
    let mut fits = idle("fits");
    fits.memory = Some(isolab_shared::spec::MemorySize(128 << 20));
    d.create(fits).await;
    // The first session's containers still answer to a list.
    c.send(&ClientMsg::List {
        reference: Some(11),
    })
    .await;
    loop {
        if let ServerMsg::State { containers, .. } = c.next_msg().await {
            assert_eq!(containers.len(), 8);
            break;
        }
    }
    drop(c);
    drop(d);
    drop(server);
    t.assert_no_leaks();
}

/// Send a create that must be refused: the error's code (with the request's `ref` echoed).
async fn refused_create(c: &mut Client, spec: ContainerSpec, r: u64) -> String {
    c.send(&ClientMsg::Create {
        reference: Some(r),
        spec: Box::new(spec),
    })
    .await;
    loop {
        match c.next_msg().await {
            ServerMsg::Error {
                code, reference, ..
            } => {
                assert_eq!(reference, Some(r));
                return code;
            }
            ServerMsg::View { .. } | ServerMsg::State { .. } => {}
            other => panic!("expected an error, got {other:?}"),
        }
    }
}

/// The signal handlers are in place before the URL is printed: a SIGTERM the moment a script
/// has read it is a clean shutdown (exit 0, the firewall table removed), never the default
/// disposition's instant exit.
#[test]
fn a_sigterm_right_after_start_up_is_a_clean_shutdown() {
    let t = Isolab::new(BIN);
    for _ in 0..3 {
        let mut server = Server::start(&t);
        let status = server.stop();
        assert!(status.success(), "{status:?}");
        assert_eq!(isolab_tests::firewall_tables(), Vec::<String>::new());
    }
    t.assert_no_leaks();
}

/// `isolab …` that must fail at start-up: its stderr (killed, and the test failed, if it is
/// still running after 15 s).
fn refused_at_start(mut cmd: std::process::Command) -> String {
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("it started: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Two servers must not share a state root (the second would remove the first's containers as
/// a crashed run's) nor, with session networks, a network namespace (firewall table, bridges).
#[test]
fn a_second_server_on_the_same_state_root_or_network_namespace_is_refused() {
    let t = Isolab::new(BIN);
    let mut first = Server::start(&t);
    let err = refused_at_start(t.cmd(&["serve", "--listen", "127.0.0.1:0", "--no-network"]));
    assert!(err.contains("uses the state root"), "{err}");
    let other = tempfile::Builder::new()
        .prefix("isolab-test-other-")
        .tempdir_in("/run")
        .unwrap();
    let other_root = other.path().to_str().unwrap();
    let err = refused_at_start(t.cmd(&[
        "--state-root",
        other_root,
        "serve",
        "--listen",
        "127.0.0.1:0",
    ]));
    assert!(err.contains("in this network namespace"), "{err}");
    // Its own state root and no networks: it runs beside the first.
    let mut beside = Server::from_command(t.cmd(&[
        "--state-root",
        other_root,
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--no-network",
    ]));
    assert!(beside.stop().success());
    // The first one was not disturbed: it still makes containers.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = Client::connect(&first.url()).await;
        let (handle, _) = c
            .create(ContainerSpec::new("busybox", vec!["sh".into()]))
            .await;
        c.input(handle, "echo still-$((40+2))\n").await;
        c.output_until(handle, "still-42").await;
    });
    assert!(first.stop().success());
    t.assert_no_leaks();
}

/// The server's resident memory, from `/proc/PID/status`.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// One round of a slow reader: about a fifth of the time reading (and acknowledging what it
/// read), the rest busy elsewhere. The bytes read.
async fn slow_round(c: &mut Client, handle: u32) -> u64 {
    let got = c.drain_for(Duration::from_millis(20)).await as u64;
    c.send(&ClientMsg::Ack { handle, bytes: got }).await;
    tokio::time::sleep(Duration::from_millis(80)).await;
    got
}

/// `yes` against a client that reads slowly and acknowledges what it has read (as a busy page
/// does): output keeps flowing at the client's pace, the server's memory stays where it was,
/// and the session's other terminal still answers.
#[tokio::test(flavor = "multi_thread")]
async fn yes_against_a_slow_reader_keeps_the_server_s_memory_bounded() {
    let t = Isolab::new(BIN);
    let server = Server::start_with(&t, &["--grace", "1", "--no-network"]);
    let mut c = Client::connect(&server.url()).await;
    let flood = create(&mut c, shell("flood")).await;
    let calm = create(&mut c, shell("calm")).await;
    c.input(flood, "yes\n").await;
    let mut read = 0u64;
    for _ in 0..10 {
        read += slow_round(&mut c, flood).await;
    }
    let before = rss_kib(server.pid());
    for _ in 0..60 {
        read += slow_round(&mut c, flood).await;
    }
    let after = rss_kib(server.pid());
    assert!(
        read > 1 << 20,
        "output flowed at the client's pace: {read} bytes"
    );
    assert!(
        after < before + 8 * 1024,
        "the server's memory grew from {before} to {after} KiB while a slow client read {read} bytes"
    );
    // The other terminal answers while the flood goes on (flow control is per terminal).
    c.input(calm, "echo calm-$((6*7))\n").await;
    c.output_until(calm, "calm-42").await;
    drop(c);
    drop(server);
    t.assert_no_leaks();
}

/// Ctrl-C (SIGINT) is a shutdown like SIGTERM: every container removed, exit 0.
#[tokio::test(flavor = "multi_thread")]
async fn sigint_removes_every_container_and_exits_cleanly() {
    let t = Isolab::new(BIN);
    let mut server = Server::start_with(&t, &["--grace", "60", "--no-network"]);
    let mut c = Client::connect(&server.url()).await;
    create(&mut c, shell("alpha")).await;
    // SAFETY: kill takes a pid and a signal number; the pid is our own child's.
    unsafe { libc::kill(server.pid() as i32, libc::SIGINT) };
    let status = server.wait();
    assert!(status.success(), "{status:?}");
    drop(c);
    t.assert_no_leaks();
}
