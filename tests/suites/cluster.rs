//! Many hosts: three isolab nodes, each in a network namespace of its own on a bridge, behind
//! nginx running the configuration we ship (docker/nginx/isolab.conf, with this test's
//! addresses put in). New sessions spread over the nodes and skip a full one; a session stays
//! on its node across reconnects, full or not; a killed node takes only its own sessions with
//! it, and their browsers get a new session on a surviving node, the same one on every retry.
//! Needs root, `ip`, `nsenter` and nginx (`cargo xtask setup` installs it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use isolab_shared::protocol::ServerMsg;
use isolab_shared::spec::ContainerSpec;
use isolab_tests::server::{http_get, metric, Client, Server};
use isolab_tests::{eventually, Isolab};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio_tungstenite::tungstenite::http::HeaderMap;

const BIN: &str = env!("CARGO_BIN_EXE_isolab");
const NGINX: &str = "/usr/sbin/nginx";
/// The file we ship; the test renders it with its own addresses (see [`render`]).
const SHIPPED: &str = include_str!("../../docker/nginx/isolab.conf");

/// Every node's token (nodes listen beyond loopback).
const TOKEN: &str = "cluster-test-token";
/// Seconds a session outlives its connection: a reconnect comes back within it, and a
/// session let go ends soon.
const GRACE: &str = "3";
/// New sessions opened at first.
const SESSIONS: usize = 24;
/// node-a's `--max-sessions`.
const A_MAX: usize = 3;

/// The test's network: a bridge in the host's namespace (the host is `.1`), the nodes on it.
const SUBNET: &str = "10.213.7";
const BRIDGE: &str = "isolabt-br";
/// Each node: name, network namespace, host end of its veth, host number, and the address the
/// shipped file gives it (replaced by `SUBNET.N:8080`).
const NODES: [(&str, &str, &str, u8, &str); 3] = [
    ("node-a", "isolab-t-a", "isolabt-a", 11, "10.0.0.11:8080"),
    ("node-b", "isolab-t-b", "isolabt-b", 12, "10.0.0.12:8080"),
    ("node-c", "isolab-t-c", "isolabt-c", 13, "10.0.0.13:8080"),
];
/// nginx's prefix (configuration, pid, logs, temp files): fixed like the namespaces' names, so
/// that the next run finds and stops what a crashed one left.
const NGINX_DIR: &str = "/run/isolab-cluster-test";

#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_behind_nginx_spread_keep_and_recover_sessions() {
    let begun = Instant::now();
    let t = Isolab::new(BIN);
    let mut cluster = Cluster::start(&t);
    println!("three nodes and nginx up in {:?}", begun.elapsed());

    // Spread: new browsers (no cookie but the token's) are spread over the nodes; node-a takes
    // its three, then answers 503, and nginx takes the session to the next node.
    let mut browsers = Vec::new();
    for _ in 0..SESSIONS {
        let mut b = Browser::new();
        let names = cluster.open(&mut b).await;
        assert!(
            names.is_empty(),
            "a new session has no containers: {names:?}"
        );
        assert!(b.jar.contains_key("isolab_session"), "{:?}", b.jar);
        browsers.push(b);
    }
    let counts = per_node(&browsers);
    println!("{SESSIONS} new sessions: {counts:?}");
    assert_eq!(counts.get("node-a"), Some(&A_MAX), "{counts:?}");
    assert!(counts.get("node-b").is_some_and(|&n| n > 0), "{counts:?}");
    assert!(counts.get("node-c").is_some_and(|&n| n > 0), "{counts:?}");
    assert_eq!(counts.values().sum::<usize>(), SESSIONS, "{counts:?}");
    for node in &cluster.nodes {
        let metrics = node.metrics();
        assert_eq!(
            metric(&metrics, "isolab_sessions") as usize,
            counts.get(node.name).copied().unwrap_or(0),
            "{}'s own count",
            node.name
        );
        assert_eq!(
            metric(
                &metrics,
                &format!("isolab_node_info{{node=\"{}\"}}", node.name)
            ),
            1.0
        );
    }
    let a_refused = metric(
        &cluster.nodes[0].metrics(),
        "isolab_sessions_refused_total{reason=\"busy\"}",
    );
    assert!(a_refused >= 1.0, "node-a refused no new session");

    // Stick: every session makes a container, and its browser comes back (a reload, a lost
    // connection) to the same node, which still has it.
    for (i, b) in browsers.iter_mut().enumerate() {
        let name = format!("box-{i}");
        let mut spec = ContainerSpec::new("busybox", vec!["sleep".into(), "3600".into()]);
        spec.name = Some(name.clone());
        let (_, info) = b.client.as_mut().expect("connected").create(spec).await;
        assert_eq!(info.name, name);
        b.container = Some(name);
    }
    println!("{SESSIONS} containers made at {:?}", begun.elapsed());
    for _ in 0..3 {
        for b in &mut browsers {
            let node = b.node.clone();
            let names = cluster.open(b).await;
            assert_eq!(b.node, node, "a reconnect went to another node");
            assert_eq!(names, b.container.iter().cloned().collect::<Vec<_>>());
        }
    }
    // nginx logs a WebSocket when it closes: the first connections are closed by now. A line
    // with "503, 101" is a new session that node-a refused and the next node took.
    let went_on = format!("tried={}, ", cluster.nodes[0].addr);
    let passed_on = |l: &str| l.contains(&went_on) && l.contains("statuses=503, 101");
    eventually(
        "a log line of a new session that a full node-a passed on",
        Duration::from_secs(10),
        || cluster.log_line(passed_on).is_some(),
    );
    println!("for example: {}", cluster.log_line(passed_on).unwrap());

    // A full node keeps its sessions: node-a is full (its /healthz says so), and its browsers
    // still reach it, containers and all.
    let a = &cluster.nodes[0];
    let (code, _, body) = http_get(&a.addr, "/healthz", None);
    assert_eq!(code, 503, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["node"], "node-a");
    assert_eq!(health["sessions"], A_MAX);
    for b in browsers.iter_mut().filter(|b| b.node == "node-a") {
        let names = cluster.open(b).await;
        assert_eq!(b.node, "node-a");
        assert_eq!(names, b.container.iter().cloned().collect::<Vec<_>>());
    }
    // Its browsers' page comes from it; a new browser's from another node.
    let a_browser = browsers.iter().find(|b| b.node == "node-a").unwrap();
    let (code, head, body) = http_get(&cluster.front(), "/", Some(&a_browser.cookie_header()));
    assert_eq!(code, 200, "{head}{body}");
    assert_eq!(header(&head, "x-isolab-node").as_deref(), Some("node-a"));
    for _ in 0..6 {
        let (code, head, body) =
            http_get(&cluster.front(), "/", Some(&Browser::new().cookie_header()));
        assert_eq!(code, 200, "{head}{body}");
        assert!(body.contains("the playground"), "{body}");
        assert_ne!(
            header(&head, "x-isolab-node").as_deref(),
            Some("node-a"),
            "{head}"
        );
    }
    // A workshop's join link names its node (`/?join=CODE&node=NAME`, and the page's `/ws`
    // carries both): a new browser goes straight there, whatever the ring would choose.
    for node in ["node-b", "node-c", "node-b"] {
        let path = format!("/?join=AB12CD&node={node}");
        let (code, head, body) = http_get(
            &cluster.front(),
            &path,
            Some(&Browser::new().cookie_header()),
        );
        assert_eq!(code, 200, "{head}{body}");
        assert_eq!(
            header(&head, "x-isolab-node").as_deref(),
            Some(node),
            "{head}"
        );
    }
    // A browser pinned to node-a whose session node-a does not have (node-a restarted, say):
    // node-a answers 503 (full), nginx takes it to the ring, another node starts the session
    // under the same id and pins the browser there.
    let mut lost = Browser::new();
    lost.jar.insert("isolab_node".into(), "node-a".into());
    let lost_id = "0123456789abcdef0123456789abcdef";
    lost.jar.insert("isolab_session".into(), lost_id.into());
    let names = cluster.open(&mut lost).await;
    assert_ne!(lost.node, "node-a");
    assert!(names.is_empty(), "{names:?}");
    assert_eq!(lost.jar["isolab_session"], lost_id, "the id is kept");
    assert_eq!(lost.jar["isolab_node"], lost.node);
    drop(lost);
    assert_eq!(metric(&cluster.nodes[0].metrics(), "isolab_sessions"), 3.0);

    // Room again: node-a lets two sessions go, and takes a new one at once (nginx does not
    // hold its earlier 503s against it: max_fails=0 in the ring).
    for _ in 0..2 {
        let gone = browsers.iter().position(|b| b.node == "node-a").unwrap();
        drop(browsers.remove(gone));
    }
    eventually(
        "node-a's released sessions to end",
        Duration::from_secs(15),
        || metric(&cluster.nodes[0].metrics(), "isolab_sessions") == 1.0,
    );
    for attempt in 1.. {
        let mut b = Browser::new();
        cluster.open(&mut b).await;
        let on_a = b.node == "node-a";
        browsers.push(b);
        if on_a {
            break;
        }
        assert!(attempt < 6, "node-a has room but gets no new session");
    }
    assert_eq!(metric(&cluster.nodes[0].metrics(), "isolab_sessions"), 2.0);

    // A killed node takes only its own sessions: node-b dies as in a crash (node-a has room
    // for one of its browsers).
    let mut b_server = cluster.nodes[1].server.take().unwrap();
    b_server.kill(); // SIGKILL, and reaped
    drop(b_server);
    // The sessions of node-a and node-c: their nodes, their containers.
    for b in browsers.iter_mut().filter(|b| b.node != "node-b") {
        let node = b.node.clone();
        let names = cluster.open(b).await;
        assert_eq!(b.node, node, "a survivor's session moved");
        assert_eq!(names, b.container.iter().cloned().collect::<Vec<_>>());
    }
    // node-b's: a new session (no containers) on node-a or node-c, under the same id; the
    // same node again on retries with the old cookies (the pin to node-b fails over to the
    // ring, where the id hashes to the same node); then the new pin is followed.
    let mut moved: BTreeMap<String, usize> = BTreeMap::new();
    for (i, b) in browsers.iter_mut().enumerate() {
        if b.node != "node-b" {
            continue;
        }
        let stale = b.jar.clone();
        let names = cluster.open(b).await;
        assert!(b.node == "node-a" || b.node == "node-c", "{}", b.node);
        assert!(
            names.is_empty(),
            "node-b's containers died with it: {names:?}"
        );
        assert_eq!(b.jar["isolab_session"], stale["isolab_session"]);
        assert_eq!(b.jar["isolab_node"], b.node);
        let first = b.node.clone();
        for _ in 0..2 {
            b.jar = stale.clone();
            let names = cluster.open(b).await;
            assert_eq!(b.node, first, "a retry with the old cookies went elsewhere");
            assert!(names.is_empty(), "{names:?}");
        }
        let name = format!("moved-{i}");
        let mut spec = ContainerSpec::new("busybox", vec!["sleep".into(), "3600".into()]);
        spec.name = Some(name.clone());
        b.client.as_mut().unwrap().create(spec).await;
        b.container = Some(name);
        let names = cluster.open(b).await;
        assert_eq!(b.node, first, "the new pin was not followed");
        assert_eq!(names, b.container.iter().cloned().collect::<Vec<_>>());
        *moved.entry(first).or_default() += 1;
    }
    println!("node-b's sessions went to: {moved:?}");
    assert!(!moved.is_empty(), "node-b had no session");
    let a_now = metric(&cluster.nodes[0].metrics(), "isolab_sessions") as usize;
    assert!(a_now <= A_MAX, "node-a holds {a_now} sessions");
    // Retries of node-b's browsers reached node-b (dead: 502 from nginx), then the ring.
    let failed_over = format!("tried={} : ", cluster.nodes[1].addr);
    let retried = |l: &str| {
        l.contains("pin=\"node-b\"") && l.contains(&failed_over) && l.contains("statuses=502 : ")
    };
    eventually(
        "a log line of a retry that failed over from the dead node-b",
        Duration::from_secs(10),
        || cluster.log_line(retried).is_some(),
    );
    println!("for example: {}", cluster.log_line(retried).unwrap());

    // The end: every node stopped (SIGTERM removes the containers), nginx too, the network
    // gone, and nothing left behind.
    drop(browsers);
    cluster.stop();
    for (_, netns, veth, _, _) in NODES {
        assert!(
            !Path::new("/run/netns").join(netns).exists(),
            "{netns} left"
        );
        assert!(!link_exists(veth), "{veth} left");
    }
    assert!(!link_exists(BRIDGE), "{BRIDGE} left");
    assert!(
        processes_mentioning(NGINX_DIR).is_empty(),
        "nginx left running"
    );
    t.assert_no_leaks();
    for (name, _, _, _, _) in NODES {
        let containers = t.state_root.join(name).join("containers");
        eventually(
            &format!("{name}'s containers to be removed"),
            Duration::from_secs(10),
            || std::fs::read_dir(&containers).map_or(true, |d| d.count() == 0),
        );
    }
    drop(cluster);
    println!("done in {:?}", begun.elapsed());
}

/// A browser: its cookies, and its connection while it has one.
struct Browser {
    jar: BTreeMap<String, String>,
    client: Option<Client>,
    /// The node that answered its last upgrade.
    node: String,
    /// Its container, once it made one.
    container: Option<String>,
}

impl Browser {
    /// One that opened the page with `?token=` (so it has the token's cookie) and nothing else.
    fn new() -> Browser {
        let mut jar = BTreeMap::new();
        jar.insert("isolab_token".to_string(), TOKEN.to_string());
        Browser {
            jar,
            client: None,
            node: String::new(),
            container: None,
        }
    }

    fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Keep what the answer's `Set-Cookie`s set.
    fn take_cookies(&mut self, headers: &HeaderMap) {
        for v in headers.get_all("set-cookie") {
            let v = v.to_str().expect("a text cookie");
            let pair = v.split(';').next().unwrap_or_default();
            if let Some((k, val)) = pair.split_once('=') {
                self.jar
                    .insert(k.trim().to_string(), val.trim().to_string());
            }
        }
    }
}

fn per_node(browsers: &[Browser]) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    for b in browsers {
        *counts.entry(b.node.as_str()).or_default() += 1;
    }
    counts
}

/// A refused upgrade: its status, the node that answered, and its body.
fn refusal(e: &tokio_tungstenite::tungstenite::Error) -> String {
    match e {
        tokio_tungstenite::tungstenite::Error::Http(resp) => format!(
            "{} from {:?}: {}",
            resp.status(),
            resp.headers().get("x-isolab-node"),
            String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default())
        ),
        other => other.to_string(),
    }
}

/// The names of the containers a `hello` lists.
fn hello_names(hello: &ServerMsg) -> Vec<String> {
    match hello {
        ServerMsg::Hello { containers, .. } => containers.iter().map(|c| c.name.clone()).collect(),
        other => panic!("expected hello, got {other:?}"),
    }
}

struct Node {
    name: &'static str,
    netns: &'static str,
    veth: &'static str,
    /// `SUBNET.N:8080`
    addr: String,
    /// The address the shipped file gives this node.
    shipped: &'static str,
    /// Its own state root.
    root: PathBuf,
    server: Option<Server>,
}

impl Node {
    /// Its `/metrics`, asked directly (not through nginx).
    fn metrics(&self) -> String {
        let (code, head, body) = http_get(&self.addr, "/metrics", None);
        assert_eq!(code, 200, "{}: {head}{body}", self.name);
        body
    }
}

/// The test's hosts and balancer; all of it is stopped and removed on drop, test failed or not.
struct Cluster {
    nodes: Vec<Node>,
    nginx: Option<Child>,
    /// nginx's port on 127.0.0.1.
    port: u16,
    bin: PathBuf,
    data_root: PathBuf,
}

impl Cluster {
    fn start(t: &Isolab) -> Cluster {
        assert!(
            Path::new(NGINX).is_file(),
            "{NGINX} is missing: run `cargo xtask setup` (or apt-get install nginx)"
        );
        remove_leftovers();
        let mut cluster = Cluster {
            nodes: Vec::new(),
            nginx: None,
            port: 0,
            bin: t.bin.clone(),
            data_root: t.data_root.clone(),
        };
        ip(&["link", "add", BRIDGE, "type", "bridge"]);
        ip(&["addr", "add", &format!("{SUBNET}.1/24"), "dev", BRIDGE]);
        ip(&["link", "set", BRIDGE, "up"]);
        for (name, netns, veth, host, shipped) in NODES {
            ip(&["netns", "add", netns]);
            let root = t.state_root.join(name);
            std::fs::create_dir_all(&root).unwrap();
            cluster.nodes.push(Node {
                name,
                netns,
                veth,
                addr: format!("{SUBNET}.{host}:8080"),
                shipped,
                root,
                server: None,
            });
            let inner = format!("{veth}-p");
            ip(&[
                "link", "add", veth, "type", "veth", "peer", "name", &inner, "netns", netns,
            ]);
            ip(&["link", "set", veth, "master", BRIDGE, "up"]);
            ip(&["-n", netns, "link", "set", &inner, "name", "eth0"]);
            ip(&[
                "-n",
                netns,
                "addr",
                "add",
                &format!("{SUBNET}.{host}/24"),
                "dev",
                "eth0",
            ]);
            ip(&["-n", netns, "link", "set", "eth0", "up"]);
            ip(&["-n", netns, "link", "set", "lo", "up"]);
        }
        let dist = t.state_root.join("dist");
        std::fs::create_dir_all(&dist).unwrap();
        std::fs::write(dist.join("index.html"), "<p>the playground</p>").unwrap();
        for i in 0..cluster.nodes.len() {
            let server = cluster.start_node(i, &dist);
            cluster.nodes[i].server = Some(server);
        }
        cluster.start_nginx();
        cluster
    }

    /// `isolab serve` in the node's namespace. `nsenter --net` changes only the network
    /// namespace and execs the server; `ip netns exec` would also remount /sys for the
    /// namespace, hiding the cgroup hierarchies mounted under /sys/fs/cgroup.
    fn start_node(&self, i: usize, dist: &Path) -> Server {
        let n = &self.nodes[i];
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", n.netns))
            .arg("--")
            .arg(&self.bin)
            .args([
                "serve", "--listen", &n.addr, "--token", TOKEN, "--node", n.name,
            ])
            .args(["--no-network", "--grace", GRACE, "--dist"])
            .arg(dist)
            // Admission depends only on --max-sessions (every session comes from nginx's
            // address, and other tests may load the host).
            .args(["--max-sessions-per-ip", "0", "--max-load", "1000"])
            .args(["--min-free-memory", "0", "--min-free-disk", "0"])
            .env("ISOLAB_STATE_ROOT", &n.root)
            .env("ISOLAB_DATA_ROOT", &self.data_root)
            .stdin(Stdio::null());
        if n.name == "node-a" {
            cmd.args(["--max-sessions", &A_MAX.to_string()]);
        }
        Server::from_command(cmd)
    }

    fn start_nginx(&mut self) {
        let dir = Path::new(NGINX_DIR);
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        self.port = free_port();
        let site = render(SHIPPED, self.port, &self.nodes, &dir.join("access.log"));
        std::fs::write(dir.join("isolab.conf"), site).unwrap();
        let tmp = dir.join("tmp");
        let tmp = tmp.display();
        let main = format!(
            "worker_processes 2;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log info;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n\
             \x20   access_log off;\n\
             \x20   client_body_temp_path {tmp}/client_body;\n\
             \x20   proxy_temp_path {tmp}/proxy;\n\
             \x20   fastcgi_temp_path {tmp}/fastcgi;\n\
             \x20   uwsgi_temp_path {tmp}/uwsgi;\n\
             \x20   scgi_temp_path {tmp}/scgi;\n\
             \x20   include {d}/isolab.conf;\n\
             }}\n",
            d = dir.display()
        );
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, main).unwrap();
        let args = |cmd: &mut Command| {
            cmd.arg("-p")
                .arg(dir)
                .arg("-e")
                .arg(dir.join("error.log"))
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null());
        };
        let mut check = Command::new(NGINX);
        args(&mut check);
        let out = check.arg("-t").output().expect("run nginx -t");
        assert!(
            out.status.success(),
            "nginx -t: {}{}",
            isolab_tests::stderr(&out),
            self.nginx_log("error.log")
        );
        let mut run = Command::new(NGINX);
        args(&mut run);
        let child = run
            .args(["-g", "daemon off;"])
            .spawn()
            .expect("start nginx");
        self.nginx = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = self.nginx.as_mut().unwrap().try_wait() {
                panic!("nginx exited ({status}): {}", self.nginx_log("error.log"));
            }
            assert!(
                Instant::now() < deadline,
                "nginx does not listen: {}",
                self.nginx_log("error.log")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `127.0.0.1:PORT`, where browsers connect.
    fn front(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Connect (again) as the browser, through nginx, with its cookies and an Origin as a page
    /// of this site sends: the old connection is dropped first, as a reload does. Returns the
    /// names of the containers the `hello` lists; the browser keeps the answer's cookies and
    /// the node that answered.
    async fn open(&self, b: &mut Browser) -> Vec<String> {
        drop(b.client.take());
        let url = format!("ws://{}/ws", self.front());
        let origin = format!("http://{}", self.front());
        let cookie = b.cookie_header();
        let headers = [("Cookie", cookie.as_str()), ("Origin", origin.as_str())];
        let (client, answer) = match Client::try_connect_with_headers(&url, &headers).await {
            Ok(x) => x,
            Err(e) => panic!(
                "the upgrade through nginx was refused ({cookie}): {}\n{}",
                refusal(&e),
                self.nginx_log("error.log")
            ),
        };
        b.take_cookies(&answer);
        let node = answer
            .get("x-isolab-node")
            .and_then(|v| v.to_str().ok())
            .expect("an X-Isolab-Node header")
            .to_string();
        assert_eq!(
            b.jar.get("isolab_node"),
            Some(&node),
            "the node cookie names the node that answered"
        );
        b.node = node;
        let names = hello_names(&client.hello);
        b.client = Some(client);
        names
    }

    /// The first line of nginx's access log that `f` accepts.
    fn log_line(&self, f: impl Fn(&str) -> bool) -> Option<String> {
        std::fs::read_to_string(Path::new(NGINX_DIR).join("access.log"))
            .ok()?
            .lines()
            .find(|l| f(l))
            .map(str::to_string)
    }

    /// One of nginx's logs, for a failure's message.
    fn nginx_log(&self, name: &str) -> String {
        let text = std::fs::read_to_string(Path::new(NGINX_DIR).join(name)).unwrap_or_default();
        format!("--- nginx {name}:\n{text}")
    }

    /// Stop every node that still runs (SIGTERM: each must exit cleanly), then nginx, then
    /// remove the network.
    fn stop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut server) = n.server.take() {
                let status = server.stop();
                assert!(status.success(), "{} exited with {status}", n.name);
            }
        }
        if let Some(mut nginx) = self.nginx.take() {
            let status = stop_child(&mut nginx);
            assert!(status.success(), "nginx exited with {status}");
        }
        self.remove_network();
    }

    fn remove_network(&mut self) {
        for n in &self.nodes {
            ip_quiet(&["netns", "del", n.netns]);
            ip_quiet(&["link", "del", n.veth]);
        }
        ip_quiet(&["link", "del", BRIDGE]);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "{}\n{}",
                self.nginx_log("error.log"),
                self.nginx_log("access.log")
            );
        }
        if let Some(mut nginx) = self.nginx.take() {
            stop_child(&mut nginx);
        }
        for n in &mut self.nodes {
            drop(n.server.take()); // SIGTERM and a wait, unless it exited already
        }
        // A killed node's containers: collected with its own state root.
        for n in &self.nodes {
            let _ = Command::new(&self.bin)
                .arg("gc")
                .env("ISOLAB_STATE_ROOT", &n.root)
                .env("ISOLAB_DATA_ROOT", &self.data_root)
                .stdin(Stdio::null())
                .output();
        }
        self.remove_network();
        let _ = std::fs::remove_dir_all(NGINX_DIR);
    }
}

/// The shipped configuration with this test's addresses: each node's address in the file
/// replaced by its own, the `listen` line by nginx's port here, the access log's path by one in
/// [`NGINX_DIR`]. Only directives are edited (not comments), and each string must occur as
/// often as the file's header says, so the test fails rather than run another configuration.
fn render(shipped: &str, port: u16, nodes: &[Node], access_log: &Path) -> String {
    let mut edits: Vec<(String, String, usize)> = nodes
        .iter()
        .map(|n| (n.shipped.to_string(), n.addr.clone(), 2))
        .collect();
    edits.push(("listen 80;".into(), format!("listen 127.0.0.1:{port};"), 1));
    edits.push((
        "/var/log/nginx/isolab.access.log".into(),
        access_log.display().to_string(),
        1,
    ));
    let mut seen = vec![0; edits.len()];
    let mut out = String::new();
    for line in shipped.lines() {
        let (code, comment) = match line.find('#') {
            Some(i) => line.split_at(i),
            None => (line, ""),
        };
        let mut code = code.to_string();
        for (i, (from, to, _)) in edits.iter().enumerate() {
            seen[i] += code.matches(from.as_str()).count();
            code = code.replace(from.as_str(), to);
        }
        out.push_str(&code);
        out.push_str(comment);
        out.push('\n');
    }
    for ((from, _, want), got) in edits.iter().zip(seen) {
        assert_eq!(
            got, *want,
            "docker/nginx/isolab.conf has {from:?} {got} times, the test expects {want}"
        );
    }
    out
}

/// What a crashed run left: its nginx (found by its pid file), its servers (whatever runs in
/// the test's namespaces), the namespaces, veths and bridge.
fn remove_leftovers() {
    let dir = Path::new(NGINX_DIR);
    if let Some(pid) = std::fs::read_to_string(dir.join("nginx.pid"))
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    {
        if cmdline(pid).contains(NGINX_DIR) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            wait_gone(pid);
        }
    }
    for (_, netns, veth, _, _) in NODES {
        if Path::new("/run/netns").join(netns).exists() {
            let out = Command::new("ip")
                .args(["netns", "pids", netns])
                .output()
                .expect("run ip");
            for pid in String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
            {
                // The servers (they remove their containers); their helpers go with them.
                if cmdline(pid).contains(" serve ") {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
                    wait_gone(pid);
                }
            }
            ip_quiet(&["netns", "del", netns]);
        }
        ip_quiet(&["link", "del", veth]);
    }
    ip_quiet(&["link", "del", BRIDGE]);
    let _ = std::fs::remove_dir_all(dir);
}

/// A process's command line, arguments separated by spaces (empty if it is gone).
fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

fn wait_gone(pid: i32) {
    eventually(
        &format!("process {pid} to exit"),
        Duration::from_secs(30),
        || !Path::new(&format!("/proc/{pid}")).exists(),
    );
}

/// Pids of the processes whose command line contains `needle`.
fn processes_mentioning(needle: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| cmdline(pid).contains(needle))
        .collect()
}

/// SIGTERM (nginx's fast shutdown; ends its workers too), then the exit status; SIGKILL after
/// 10 s.
fn stop_child(child: &mut Child) -> std::process::ExitStatus {
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        isolab_tests::stderr(&out)
    );
}

fn ip_quiet(args: &[&str]) {
    let _ = Command::new("ip").args(args).output();
}

fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A header's value from a response head (names are case-insensitive).
fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}
