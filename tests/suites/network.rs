//! Session networks through real CNI plugins (Debian's containernetworking-plugins): containers
//! of a session reach each other by name, another session's do not, nothing outside the subnet
//! answers, a published port serves the host, and nothing is left (bridges, veths, iptables
//! rules, IPAM leases: the harness's leak checker looks at each). Needs root.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use isolab_shared::protocol::view::{ViewTarget, ViewUpdate};
use isolab_shared::protocol::{ClientMsg, ServerMsg};
use isolab_shared::spec::ContainerSpec;
use isolab_tests::server::{Client, Server};
use isolab_tests::Isolab;

const BIN: &str = env!("CARGO_BIN_EXE_isolab");

fn plugins_present() -> bool {
    let ok = std::path::Path::new("/usr/lib/cni/bridge").is_file();
    if !ok {
        eprintln!("skipped: no CNI plugins (apt-get install containernetworking-plugins)");
    }
    ok
}

fn shell(name: &str) -> ContainerSpec {
    let mut spec = ContainerSpec::new("busybox", vec!["sh".into()]);
    spec.name = Some(name.into());
    spec.tty = true;
    spec
}

/// Create; the terminal handle and the container's address.
async fn create(c: &mut Client, spec: ContainerSpec) -> (u32, Option<String>) {
    let (handle, info) = c.create(spec).await;
    (handle, info.address)
}

/// Run a command in a shell; its output up to a marker with the exit code.
async fn sh(c: &mut Client, h: u32, cmd: &str, n: &mut u32) -> (i32, String) {
    *n += 1;
    let marker = format!("done{n}-");
    c.input(h, &format!("{cmd}; echo {marker}$?\n")).await;
    // The echo of the typed line holds the marker too, followed by `$?`: wait for a digit.
    let start = c.output.get(&h).map_or(0, Vec::len);
    loop {
        let text = c.output_until(h, &marker).await;
        let tail = &text[start.min(text.len())..];
        if let Some(at) = tail.rfind(&marker) {
            let code: String = tail[at + marker.len()..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            if !code.is_empty() && !tail[..at].ends_with("echo ") {
                return (code.parse().unwrap(), tail.to_string());
            }
        }
        // More output is needed: wait for the next frame.
        let _ = tokio::time::timeout(Duration::from_millis(200), c.next_msg()).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_s_containers_reach_each_other_by_name_and_nothing_else() {
    if !plugins_present() {
        return;
    }
    let t = Isolab::new(BIN);
    let server = Server::start(&t);
    let mut a = Client::connect(&server.url()).await;
    let (alpha, alpha_ip) = create(&mut a, shell("alpha")).await;
    let (_, beta_ip) = create(&mut a, shell("beta")).await;
    let alpha_ip = alpha_ip.expect("alpha has an address");
    let beta_ip = beta_ip.expect("beta has an address");
    assert_ne!(alpha_ip, beta_ip);
    let mut b = Client::connect(&server.url()).await;
    let (_, gamma_ip) = create(&mut b, shell("gamma")).await;
    let gamma_ip = gamma_ip.expect("gamma has an address");
    let same_subnet =
        |x: &str, y: &str| x.rsplit_once('.').unwrap().0 == y.rsplit_once('.').unwrap().0;
    assert!(same_subnet(&alpha_ip, &beta_ip), "{alpha_ip} {beta_ip}");
    assert!(
        !same_subnet(&alpha_ip, &gamma_ip),
        "another session, another subnet"
    );

    let mut n = 0;
    // By name, through /etc/hosts.
    let (code, out) = sh(&mut a, alpha, "grep beta /etc/hosts", &mut n).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&beta_ip), "{out}");
    let (code, out) = sh(&mut a, alpha, "ping -c 1 -W 3 beta", &mut n).await;
    assert_eq!(code, 0, "alpha pings beta: {out}");
    // Not another session's container, not the internet, not the host's other networks.
    let (code, out) = sh(&mut a, alpha, &format!("ping -c 1 -W 1 {gamma_ip}"), &mut n).await;
    assert_ne!(code, 0, "alpha must not reach gamma: {out}");
    let (code, out) = sh(&mut a, alpha, "ping -c 1 -W 1 1.1.1.1", &mut n).await;
    assert_ne!(code, 0, "no egress: {out}");
    // CNI's CHECK agrees with what ADD did.
    let alpha_id = t
        .ok(&["ps"])
        .lines()
        .find(|l| l.contains("-alpha"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        t.ok(&["net", "check", &alpha_id]),
        format!("{alpha_id}: ok\n")
    );
    // Its interfaces: lo and eth0, with its address.
    let (_, out) = sh(&mut a, alpha, "ip -o -4 addr show eth0", &mut n).await;
    assert!(out.contains(&format!("{alpha_ip}/24")), "{out}");

    drop(a);
    drop(b);
    drop(server);
    t.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_published_port_serves_httpd_to_the_host() {
    if !plugins_present() {
        return;
    }
    let t = Isolab::new(BIN);
    let server = Server::start(&t);
    let mut c = Client::connect(&server.url()).await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut spec = ContainerSpec::new(
        "busybox",
        vec![
            "sh".into(),
            "-c".into(),
            "mkdir /www && echo hello-from-httpd > /www/index.html && exec httpd -f -p 80 -h /www"
                .into(),
        ],
    );
    spec.name = Some("web".into());
    spec.publish = vec![format!("{port}:80")];
    create(&mut c, spec).await;
    // A second container cannot take the same host port.
    let mut again = shell("web2");
    again.publish = vec![format!("{port}:80")];
    c.send(&ClientMsg::Create {
        reference: Some(2),
        spec: Box::new(again),
    })
    .await;
    match c.next_msg().await {
        ServerMsg::Error { code, field, .. } => {
            assert_eq!(
                (code.as_str(), field.as_deref()),
                ("port_in_use", Some("publish"))
            )
        }
        other => panic!("{other:?}"),
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let got = (|| -> std::io::Result<String> {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")?;
            let mut text = String::new();
            s.read_to_string(&mut text)?;
            Ok(text)
        })();
        match got {
            Ok(text) if text.contains("hello-from-httpd") => break text,
            other => {
                assert!(Instant::now() < deadline, "no answer on {port}: {other:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert!(
        body.lines().next().unwrap_or("").contains(" 200 "),
        "{body}"
    );
    drop(c);
    drop(server);
    t.assert_no_leaks();
}

/// The latest interfaces of a watched container, and the host's network section.
async fn views_until(
    c: &mut Client,
    mut done: impl FnMut(&std::collections::BTreeMap<ViewTarget, ViewUpdate>) -> bool,
) -> std::collections::BTreeMap<ViewTarget, ViewUpdate> {
    let mut views: std::collections::BTreeMap<ViewTarget, ViewUpdate> = Default::default();
    while !done(&views) {
        if let ServerMsg::View { target, update } = c.next_msg().await {
            let v = views.entry(target).or_default();
            if update.interfaces.is_some() {
                v.interfaces = update.interfaces;
            }
            if update.network.is_some() {
                v.network = update.network;
            }
        }
    }
    views
}

fn peer_of(
    views: &std::collections::BTreeMap<ViewTarget, ViewUpdate>,
    who: &str,
    iface: &str,
) -> Option<String> {
    views
        .get(&ViewTarget::Container(who.into()))?
        .interfaces
        .as_ref()?
        .iter()
        .find(|i| i.name == iface)?
        .peer
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interface_moves_between_containers_and_the_view_follows_it() {
    if !plugins_present() {
        return;
    }
    let t = Isolab::new(BIN);
    let server = Server::start(&t);
    let mut c = Client::connect(&server.url()).await;
    let (_, alpha) = c.create(shell("alpha")).await;
    let (_, beta) = c.create(shell("beta")).await;
    for target in [
        ViewTarget::Host,
        ViewTarget::Container("alpha".into()),
        ViewTarget::Container("beta".into()),
    ] {
        c.send(&ClientMsg::Watch {
            reference: None,
            target,
        })
        .await;
    }
    c.send(&ClientMsg::MoveInterface {
        reference: Some(5),
        interface: "cable0".into(),
        from: "alpha".into(),
        to: "beta".into(),
    })
    .await;
    let views = views_until(&mut c, |v| {
        peer_of(v, "alpha", "cable0p").is_some()
            && peer_of(v, "beta", "cable0").is_some()
            && v.get(&ViewTarget::Host).is_some_and(|h| {
                h.network.as_ref().is_some_and(|n| {
                    n.attachments.len() == 2 && n.attachments.iter().all(|a| a.host_veth.is_some())
                })
            })
    })
    .await;
    assert_eq!(
        peer_of(&views, "alpha", "cable0p").as_deref(),
        Some("cable0 in beta")
    );
    assert_eq!(
        peer_of(&views, "beta", "cable0").as_deref(),
        Some("cable0p in alpha")
    );
    assert!(
        peer_of(&views, "alpha", "cable0").is_none(),
        "cable0 left alpha"
    );
    let eth0 = peer_of(&views, "alpha", "eth0").unwrap();
    assert!(eth0.ends_with(" on the host"), "{eth0}");
    let net = views[&ViewTarget::Host].network.clone().unwrap();
    let host_veth = net
        .attachments
        .iter()
        .find(|a| a.container == "alpha")
        .unwrap();
    assert_eq!(Some(host_veth.address.clone()), alpha.address);
    assert_eq!(
        eth0,
        format!("{} on the host", host_veth.host_veth.clone().unwrap())
    );
    assert!(net.up && net.bridge.starts_with("isl-"));
    // Witness: where `ip` sees each end.
    let links = |id: &str| {
        let pid = t.pid_of(id).to_string();
        isolab_tests::stdout(
            &std::process::Command::new("nsenter")
                .args(["-t", &pid, "-n", "ip", "-o", "link"])
                .output()
                .unwrap(),
        )
    };
    assert!(links(&beta.id).contains(" cable0@"), "{}", links(&beta.id));
    assert!(!links(&alpha.id).contains(" cable0@") && links(&alpha.id).contains(" cable0p@"));
    // Refused: CNI's eth0, and a name the target already has.
    for (iface, code) in [
        ("eth0", "invalid_interface"),
        ("cable0", "interface_exists"),
    ] {
        c.send(&ClientMsg::MoveInterface {
            reference: Some(6),
            interface: iface.into(),
            from: "alpha".into(),
            to: "beta".into(),
        })
        .await;
        loop {
            match c.next_msg().await {
                ServerMsg::Error {
                    code: got,
                    reference: Some(6),
                    ..
                } => {
                    assert_eq!(got, code);
                    break;
                }
                ServerMsg::View { .. } | ServerMsg::State { .. } => {}
                other => panic!("{other:?}"),
            }
        }
    }
    drop(c);
    drop(server);
    t.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_server_leaves_nothing_once_the_next_one_starts() {
    if !plugins_present() {
        return;
    }
    let t = Isolab::new(BIN);
    let mut server = Server::start(&t);
    let mut c = Client::connect(&server.url()).await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut alpha = shell("alpha");
    alpha.publish = vec![format!("{port}:80")];
    c.create(alpha).await;
    c.create(shell("beta")).await;
    server.kill();
    drop(c);
    // The next start finds what the killed run left (bridge, leases, rules) and removes it.
    let next = Server::start(&t);
    drop(next);
    t.assert_no_leaks();
}
