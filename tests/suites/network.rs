//! Session networks through real CNI plugins (Debian's containernetworking-plugins): containers
//! of a session reach each other by name, another session's do not, nothing outside the subnet
//! answers, a published port serves the host, and nothing is left (bridges, veths, iptables
//! rules, IPAM leases: the harness's leak checker looks at each). Needs root.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use isolab_shared::protocol::view::{ViewTarget, ViewUpdate};
use isolab_shared::protocol::{ClientMsg, InterfaceKind, ServerMsg};
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
        kind: None,
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
            kind: None,
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
    assert_eq!(isolab_tests::firewall_tables(), Vec::<String>::new());
}

/// A network outside the host for egress tests, as the host's tools make it: a namespace whose
/// `eth0` is 198.51.100.2/24, its veth peer on the host 198.51.100.1/24, and no route back to
/// the session subnets: only an address the host masquerades to gets an answer.
struct Outside {
    ns: String,
    host_end: String,
}

impl Outside {
    const ADDR: &'static str = "198.51.100.2";

    fn new() -> Outside {
        let id = std::process::id() % 100_000;
        let o = Outside {
            ns: format!("isolab-test-out{id}"),
            host_end: format!("xout{id}"),
        };
        let ip = |args: &[&str]| {
            let out = std::process::Command::new("ip")
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "ip {args:?}: {out:?}");
        };
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &o.ns])
            .output();
        ip(&["netns", "add", &o.ns]);
        ip(&[
            "link",
            "add",
            &o.host_end,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &o.ns,
        ]);
        ip(&["addr", "add", "198.51.100.1/24", "dev", &o.host_end]);
        ip(&["link", "set", &o.host_end, "up"]);
        for args in [
            &["addr", "add", "198.51.100.2/24", "dev", "eth0"][..],
            &["link", "set", "eth0", "up"],
            &["link", "set", "lo", "up"],
        ] {
            let mut full = vec!["-n", o.ns.as_str()];
            full.extend_from_slice(args);
            ip(&full);
        }
        o
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        // Deleting the namespace deletes its veth end, and with it the host's.
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.ns])
            .output();
    }
}

/// The lease files of the host-local IPAM, under the test's data root.
fn leases(t: &Isolab) -> Vec<String> {
    let mut out = Vec::new();
    for net in std::fs::read_dir(t.data_root.join("cni/ipam"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for e in std::fs::read_dir(net.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            out.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn with_egress_a_session_reaches_outside_through_nat_and_never_another_session() {
    if !plugins_present() {
        return;
    }
    let t = Isolab::new(BIN);
    let outside = Outside::new();
    let server = Server::start_with(&t, &["--grace", "1", "--egress"]);
    let mut a = Client::connect(&server.url()).await;
    let (alpha, _) = create(&mut a, shell("alpha")).await;
    let (_, beta_ip) = create(&mut a, shell("beta")).await;
    let beta_ip = beta_ip.expect("beta has an address");
    let mut b = Client::connect(&server.url()).await;
    let (_, gamma_ip) = create(&mut b, shell("gamma")).await;
    let gamma_ip = gamma_ip.expect("gamma has an address");

    let mut n = 0;
    // A default route now, and the outside answers: it has no route to 10.88.0.0/14, so the
    // reply can only be to the host's address, which the masquerade put there.
    let (code, out) = sh(&mut a, alpha, "ip route", &mut n).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("default via"), "{out}");
    let ping = format!("ping -c 1 -W 3 {}", Outside::ADDR);
    let (code, out) = sh(&mut a, alpha, &ping, &mut n).await;
    assert_eq!(code, 0, "alpha reaches the outside through NAT: {out}");
    // The route to gamma's subnet exists (the default one), but the firewall drops it.
    let (code, out) = sh(&mut a, alpha, &format!("ping -c 1 -W 1 {gamma_ip}"), &mut n).await;
    assert_ne!(
        code, 0,
        "alpha must not reach gamma even with egress: {out}"
    );
    assert!(
        out.contains("0 packets received"),
        "dropped, not unroutable: {out}"
    );
    // Its own session still works.
    let (code, out) = sh(&mut a, alpha, "ping -c 1 -W 3 beta", &mut n).await;
    assert_eq!(code, 0, "alpha pings beta: {out}");

    // Removing a container while its session lives gives back its lease and its veth.
    let before = leases(&t);
    assert!(before.iter().any(|l| l == &beta_ip), "{before:?}");
    a.send(&ClientMsg::Remove {
        reference: Some(9),
        container: "beta".into(),
    })
    .await;
    isolab_tests::eventually("beta's lease given back", Duration::from_secs(10), || {
        !leases(&t).contains(&beta_ip)
    });
    let veths = || {
        let out = std::process::Command::new("ip")
            .args(["-o", "link", "show", "type", "veth"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(" master isl-"))
            .count()
    };
    // alpha's and gamma's are left (each session's bridge has one veth per container).
    isolab_tests::eventually("beta's veth deleted", Duration::from_secs(10), || {
        veths() == 2
    });

    assert_eq!(isolab_tests::firewall_tables(), ["table inet isolab"]);
    drop(a);
    drop(b);
    drop(server);
    drop(outside);
    t.assert_no_leaks();
    assert_eq!(
        isolab_tests::firewall_tables(),
        Vec::<String>::new(),
        "the server's table and its NAT rule go with it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn network_none_keeps_a_private_namespace_to_its_loopback() {
    if !plugins_present() {
        return;
    }
    let t = Isolab::new(BIN);
    let server = Server::start(&t);
    let mut c = Client::connect(&server.url()).await;
    let mut alpha = shell("alpha");
    alpha.network = Some("none".into());
    let (alpha, alpha_ip) = create(&mut c, alpha).await;
    assert_eq!(alpha_ip, None, "no address on the session network");
    let (beta, beta_ip) = create(&mut c, shell("beta")).await;
    assert!(beta_ip.is_some());

    let mut n = 0;
    let (code, out) = sh(&mut c, alpha, "ls /sys/class/net", &mut n).await;
    assert_eq!(code, 0, "{out}");
    let listed: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.contains("ls /sys/class/net"))
        .skip(1)
        .take_while(|l| !l.contains("done"))
        .flat_map(str::split_whitespace)
        .collect();
    assert_eq!(listed, ["lo"], "{out}");
    // beta's hosts file names no alpha: alpha is on no network beta could reach.
    let (_, out) = sh(&mut c, beta, "cat /etc/hosts", &mut n).await;
    assert!(!out.contains("\talpha"), "{out}");
    // Publishing from it is refused, naming the field.
    let mut web = shell("web");
    web.network = Some("none".into());
    web.publish = vec!["8080:80".into()];
    c.send(&ClientMsg::Create {
        reference: Some(3),
        spec: Box::new(web),
    })
    .await;
    match c.next_msg().await {
        ServerMsg::Error { code, field, .. } => assert_eq!(
            (code.as_str(), field.as_deref()),
            ("conflicting_options", Some("publish"))
        ),
        other => panic!("{other:?}"),
    }
    drop(c);
    drop(server);
    t.assert_no_leaks();
}

/// Whether this kernel makes dummy interfaces (`CONFIG_DUMMY`), asked in a throwaway namespace.
fn dummy_driver() -> bool {
    let ok = std::process::Command::new("unshare")
        .args(["-n", "ip", "link", "add", "probe0", "type", "dummy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("no dummy driver in this kernel (CONFIG_DUMMY): only the refusal is checked");
    }
    ok
}

/// Witness: each interface of the network namespace of `pid` but `lo`, with its kind, as
/// `ip -d` sees them.
fn ip_kinds(pid: i32) -> std::collections::BTreeMap<String, Option<String>> {
    let out = std::process::Command::new("nsenter")
        .args([
            "-t",
            &pid.to_string(),
            "-n",
            "ip",
            "-j",
            "-d",
            "link",
            "show",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "nsenter ip: {out:?}");
    let links: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    links
        .iter()
        .map(|l| {
            let kind = l["linkinfo"]["info_kind"].as_str().map(str::to_string);
            (l["ifname"].as_str().unwrap().to_string(), kind)
        })
        .filter(|(name, _)| name != "lo")
        .collect()
}

/// The answer to request `reference` (`Ok` for its `state`, the code and message of its
/// `error`), and the views that came meanwhile, merged as [`views_until`] merges them.
async fn answer_and_views(
    c: &mut Client,
    reference: u64,
) -> (
    Result<(), (String, String)>,
    std::collections::BTreeMap<ViewTarget, ViewUpdate>,
) {
    let mut views: std::collections::BTreeMap<ViewTarget, ViewUpdate> = Default::default();
    loop {
        match c.next_msg().await {
            ServerMsg::View { target, update } => {
                let v = views.entry(target).or_default();
                if update.interfaces.is_some() {
                    v.interfaces = update.interfaces;
                }
            }
            ServerMsg::State {
                reference: Some(r), ..
            } if r == reference => return (Ok(()), views),
            ServerMsg::Error {
                reference: Some(r),
                code,
                message,
                ..
            } if r == reference => return (Err((code, message)), views),
            _ => {}
        }
    }
}

/// The kind the latest view of `who` gives `iface`; `None` when the view does not list it.
fn viewed_kind(
    views: &std::collections::BTreeMap<ViewTarget, ViewUpdate>,
    who: &str,
    iface: &str,
) -> Option<Option<String>> {
    views
        .get(&ViewTarget::Container(who.into()))?
        .interfaces
        .as_ref()?
        .iter()
        .find(|i| i.name == iface)
        .map(|i| i.kind.clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dummy_moves_whole_from_alpha_to_beta_and_the_view_follows_it() {
    if !plugins_present() {
        return;
    }
    let dummies = dummy_driver();
    let t = Isolab::new(BIN);
    let server = Server::start(&t);
    let mut c = Client::connect(&server.url()).await;
    let (_, alpha) = c.create(shell("alpha")).await;
    let (_, beta) = c.create(shell("beta")).await;
    let (alpha_pid, beta_pid) = (t.pid_of(&alpha.id), t.pid_of(&beta.id));
    for name in ["alpha", "beta"] {
        c.send(&ClientMsg::Watch {
            reference: None,
            target: ViewTarget::Container(name.into()),
        })
        .await;
    }
    let move_msg =
        |reference: u64, interface: &str, kind: Option<InterfaceKind>| ClientMsg::MoveInterface {
            reference: Some(reference),
            interface: interface.into(),
            from: "alpha".into(),
            to: "beta".into(),
            kind,
        };
    c.send(&move_msg(7, "dummy0", Some(InterfaceKind::Dummy)))
        .await;
    let (answer, mut views) = answer_and_views(&mut c, 7).await;
    if dummies {
        answer.expect("the dummy moved");
        // The live view: dummy0 is beta's, a dummy, with no peer; alpha has none.
        while viewed_kind(&views, "beta", "dummy0").is_none()
            || viewed_kind(&views, "alpha", "eth0").is_none()
            || viewed_kind(&views, "alpha", "dummy0").is_some()
        {
            if let ServerMsg::View { target, update } = c.next_msg().await {
                if update.interfaces.is_some() {
                    views.entry(target).or_default().interfaces = update.interfaces;
                }
            }
        }
        assert_eq!(
            viewed_kind(&views, "beta", "dummy0"),
            Some(Some("dummy".into()))
        );
        assert_eq!(
            peer_of(&views, "beta", "dummy0"),
            None,
            "a dummy has no peer"
        );
        assert_eq!(viewed_kind(&views, "alpha", "dummy0"), None);
        // Witness: where `ip` sees it, and what it is; nothing was left in alpha.
        assert_eq!(
            ip_kinds(beta_pid).get("dummy0"),
            Some(&Some("dummy".into()))
        );
        let left = ip_kinds(alpha_pid);
        assert!(
            !left.contains_key("dummy0") && !left.contains_key("dummy0p"),
            "{left:?}"
        );
        // A name beta has is refused, whatever the kind.
        c.send(&move_msg(8, "dummy0", Some(InterfaceKind::Dummy)))
            .await;
        let (answer, _) = answer_and_views(&mut c, 8).await;
        assert_eq!(answer.unwrap_err().0, "interface_exists");
    } else {
        let (code, message) = answer.expect_err("no dummy driver: refused");
        assert_eq!(code, "runtime", "{message}");
        assert!(message.contains("dummy"), "{message}");
        for pid in [alpha_pid, beta_pid] {
            assert!(
                !ip_kinds(pid).contains_key("dummy0"),
                "nothing made, nothing left"
            );
        }
    }
    // With kind dummy, a name the target has is interface_exists, as for a veth.
    c.send(&move_msg(9, "cable0", None)).await;
    answer_and_views(&mut c, 9).await.0.expect("the veth moved");
    assert_eq!(ip_kinds(beta_pid).get("cable0"), Some(&Some("veth".into())));
    c.send(&move_msg(10, "cable0", Some(InterfaceKind::Dummy)))
        .await;
    let (answer, _) = answer_and_views(&mut c, 10).await;
    assert_eq!(answer.unwrap_err().0, "interface_exists");
    drop(c);
    drop(server);
    t.assert_no_leaks();
}

#[test]
fn net_move_kind_dummy_moves_a_dummy_between_local_containers() {
    let dummies = dummy_driver();
    let t = Isolab::new(BIN);
    t.ok(&["run", "-d", "--name", "a", "busybox", "sleep", "600"]);
    t.ok(&["run", "-d", "--name", "b", "busybox", "sleep", "600"]);
    let (a, b) = (t.pid_of("a"), t.pid_of("b"));
    // Inside each container, as its own tools see its namespace.
    let listed = |name: &str| -> Vec<String> {
        t.ok(&["exec", name, "ls", "/sys/class/net"])
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let out = t.run(&[
        "net", "move", "dummy0", "--from", "a", "--to", "b", "--kind", "dummy",
    ]);
    if dummies {
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            isolab_tests::stdout(&out),
            "dummy0 (a new dummy) moved to b\n"
        );
        assert_eq!(ip_kinds(b).get("dummy0"), Some(&Some("dummy".into())));
        assert!(ip_kinds(a).is_empty(), "moved whole: {:?}", ip_kinds(a));
        assert!(
            listed("b").contains(&"dummy0".to_string()),
            "{:?}",
            listed("b")
        );
        assert_eq!(listed("a"), ["lo"]);
    } else {
        assert!(!out.status.success(), "{out:?}");
        let err = isolab_tests::stderr(&out);
        assert!(err.contains("cannot make a dummy interface"), "{err}");
        assert!(ip_kinds(a).is_empty() && ip_kinds(b).is_empty());
    }
    // Another kind is refused by the command line.
    let out = t.run(&[
        "net", "move", "x0", "--from", "a", "--to", "b", "--kind", "bond",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // Without --kind: a veth pair, as before.
    assert_eq!(
        t.ok(&["net", "move", "cable0", "--from", "a", "--to", "b"]),
        "cable0 moved to b; its peer cable0p stays in a\n"
    );
    assert_eq!(ip_kinds(a).get("cable0p"), Some(&Some("veth".into())));
    assert_eq!(ip_kinds(b).get("cable0"), Some(&Some("veth".into())));
    assert_eq!(listed("a"), ["cable0p", "lo"]);
    assert!(
        listed("b").contains(&"cable0".to_string()),
        "{:?}",
        listed("b")
    );
    t.ok(&["rm", "a", "b"]);
    t.assert_no_leaks();
}
