//! The live view, checked against ground truth the test reads itself: `/proc/PID/ns/*`,
//! util-linux's `lsns -J` as a witness, `ip -j addr` inside the netns (by `nsenter`), the
//! cgroup files, `/proc/PID/status`, `mountinfo` and the uid map. Needs root.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use isolab_shared::protocol::view::{NsView, ViewTarget, ViewUpdate};
use isolab_shared::protocol::{codes, ClientMsg, ServerMsg};
use isolab_shared::spec::{ContainerSpec, MemorySize, NsMode};
use isolab_tests::server::{Client, Server};
use isolab_tests::Isolab;

const BIN: &str = env!("CARGO_BIN_EXE_isolab");

/// The latest view of every target, merged from the `view` messages received.
#[derive(Default)]
struct Views(BTreeMap<ViewTarget, ViewUpdate>);

impl Views {
    fn merge(&mut self, target: ViewTarget, u: ViewUpdate) {
        let v = self.0.entry(target).or_default();
        macro_rules! take {
            ($($f:ident),*) => { $( if u.$f.is_some() { v.$f = u.$f; } )* };
        }
        take!(namespaces, processes, uts, interfaces, mounts, id_maps, cgroup, kernel);
    }

    fn get(&self, name: &str) -> &ViewUpdate {
        &self.0[&target(name)]
    }
}

fn target(name: &str) -> ViewTarget {
    match name {
        "host" => ViewTarget::Host,
        n => ViewTarget::Container(n.to_string()),
    }
}

/// Read messages, merging views, until `done` holds (each wait is bounded by the client).
async fn until(c: &mut Client, views: &mut Views, mut done: impl FnMut(&Views) -> bool) {
    while !done(views) {
        if let ServerMsg::View { target, update } = c.next_msg().await {
            views.merge(target, *update);
        }
    }
}

fn complete(v: Option<&ViewUpdate>) -> bool {
    v.is_some_and(|v| {
        v.namespaces.is_some() && v.processes.is_some() && v.uts.is_some() && v.mounts.is_some()
    })
}

async fn create(c: &mut Client, spec: ContainerSpec) -> (u32, String) {
    let (handle, info) = c.create(spec).await;
    (handle, info.id)
}

fn shell(name: &str) -> ContainerSpec {
    let mut spec = ContainerSpec::new("busybox", vec!["sh".into()]);
    spec.name = Some(name.into());
    spec.tty = true;
    spec
}

fn readlink_ns(pid: i32, kind: &str) -> u64 {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap();
    let link = link.to_string_lossy();
    link[link.find('[').unwrap() + 1..link.len() - 1]
        .parse()
        .unwrap()
}

/// `lsns -J -p PID`: kind → inode, as util-linux sees the process.
fn lsns(pid: i32) -> BTreeMap<String, u64> {
    let out = Command::new("lsns")
        .args(["-J", "-p", &pid.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "lsns: {out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["type"].as_str().unwrap().to_string(),
                n["ns"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn ns<'a>(v: &'a ViewUpdate, kind: &str) -> &'a NsView {
    v.namespaces
        .as_ref()
        .unwrap()
        .iter()
        .find(|n| n.kind == kind)
        .unwrap()
}

fn status_field(pid: i32, key: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .unwrap()
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_view_agrees_with_proc_lsns_and_the_cgroup_files() {
    let t = Isolab::new(BIN);
    let server = Server::start(&t);
    let mut c = Client::connect(&server.url()).await;
    let mut alpha = shell("alpha");
    alpha.memory = Some(MemorySize(64 << 20));
    alpha.pids_limit = Some(50);
    alpha.cpus = Some(0.5);
    alpha.namespaces.user = NsMode::Private;
    let (_, alpha_id) = create(&mut c, alpha).await;
    let mut beta = shell("beta");
    beta.namespaces.pid = NsMode::Container("alpha".into());
    let (_, beta_id) = create(&mut c, beta).await;
    for name in ["host", "alpha", "beta"] {
        c.send(&ClientMsg::Watch {
            reference: None,
            target: target(name),
        })
        .await;
    }
    let mut views = Views::default();
    until(&mut c, &mut views, |v| {
        ["host", "alpha", "beta"]
            .iter()
            .all(|n| complete(v.0.get(&target(n))))
    })
    .await;
    let (a_pid, b_pid) = (t.pid_of(&alpha_id), t.pid_of(&beta_id));
    let (a, b, host) = (views.get("alpha"), views.get("beta"), views.get("host"));

    // Every kind agrees with readlink and with lsns.
    for (pid, v) in [(a_pid, a), (b_pid, b)] {
        let witness = lsns(pid);
        for n in v.namespaces.as_ref().unwrap() {
            assert_eq!(n.inode, readlink_ns(pid, &n.kind), "{} of {pid}", n.kind);
            if let Some(&ino) = witness.get(&n.kind) {
                assert_eq!(n.inode, ino, "lsns disagrees on {}", n.kind);
            }
        }
        assert!(witness.len() >= 7, "lsns saw {witness:?}");
        assert_eq!(v.namespaces.as_ref().unwrap().len(), witness.len());
    }
    let me = std::process::id() as i32;
    for n in host.namespaces.as_ref().unwrap() {
        assert_eq!(n.inode, readlink_ns(me, &n.kind), "host {}", n.kind);
    }
    // Sharing shows as equal inodes and in shared_with; private ones are the container's own.
    assert_eq!(ns(a, "pid").inode, ns(b, "pid").inode);
    assert_eq!(ns(b, "pid").shared_with, ["alpha"]);
    assert_ne!(ns(a, "uts").inode, ns(b, "uts").inode);
    assert!(ns(a, "uts").shared_with.is_empty());
    assert!(ns(a, "mnt").shared_with.is_empty());
    assert_eq!(
        ns(b, "user").shared_with,
        ["alpha"],
        "beta joins alpha's user ns with its PID ns"
    );
    assert_ne!(ns(a, "user").inode, ns(host, "user").inode);
    assert!(
        ns(host, "user").shared_with.is_empty(),
        "no container is root on the host"
    );

    // Processes: beta's `ps` sees alpha's shell as pid 1; numbers match NSpid.
    let b_procs = &b.processes.as_ref().unwrap().list;
    let a_sh = b_procs
        .iter()
        .find(|p| p.pid == a_pid)
        .expect("alpha's shell");
    assert_eq!(
        (a_sh.pid_inside, a_sh.container.as_deref()),
        (1, Some("alpha"))
    );
    let b_sh = b_procs
        .iter()
        .find(|p| p.pid == b_pid)
        .expect("beta's shell");
    let nspid = status_field(b_pid, "NSpid");
    assert_eq!(
        nspid.split_whitespace().last().unwrap(),
        b_sh.pid_inside.to_string()
    );
    assert_eq!(b_sh.container, None);
    // alpha is root inside and an unprivileged uid on the host, per its map.
    let map = std::fs::read_to_string(format!("/proc/{a_pid}/uid_map")).unwrap();
    let outside: u32 = map.split_whitespace().nth(1).unwrap().parse().unwrap();
    let a_procs = &a.processes.as_ref().unwrap().list;
    let me_a = a_procs.iter().find(|p| p.pid == a_pid).unwrap();
    assert_eq!((me_a.uid_inside, me_a.uid_host), (0, outside));
    assert_eq!(a.id_maps.as_ref().unwrap().uid[0].outside, outside);
    assert!(host.processes.as_ref().unwrap().host_total.unwrap() > 2);
    let host_list = &host.processes.as_ref().unwrap().list;
    assert!(host_list
        .iter()
        .any(|p| p.pid == a_pid && p.pid_inside == a_pid));

    // Hostname, interfaces (witness: `ip -j addr` run in alpha's netns), kernel.
    assert_eq!(a.uts.as_ref().unwrap().hostname, "alpha");
    assert_eq!(b.uts.as_ref().unwrap().hostname, "beta");
    let ip = Command::new("nsenter")
        .args(["-t", &a_pid.to_string(), "-n", "ip", "-j", "addr"])
        .output()
        .unwrap();
    let ip: serde_json::Value = serde_json::from_slice(&ip.stdout).unwrap();
    let names: Vec<&str> = ip
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["ifname"].as_str().unwrap())
        .collect();
    let ours: Vec<&str> = a
        .interfaces
        .as_ref()
        .unwrap()
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    assert_eq!(ours, names);
    let lo = &a.interfaces.as_ref().unwrap()[0];
    assert!(lo.up && lo.addresses.contains(&"127.0.0.1/8".to_string()));
    let release = Command::new("uname").arg("-r").output().unwrap();
    assert_eq!(
        a.kernel.as_ref().unwrap().release,
        String::from_utf8_lossy(&release.stdout).trim()
    );

    // Mounts: as many as mountinfo has, an overlay root, /proc/keys masked.
    let m = a.mounts.as_ref().unwrap();
    let lines = std::fs::read_to_string(format!("/proc/{a_pid}/mountinfo"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(m.count as usize, lines);
    assert_eq!(m.root_fstype, "overlay");
    assert!(m.masked.contains(&"/proc/keys".to_string()), "{m:?}");
    assert!(m.read_only.contains(&"/proc/sys".to_string()), "{m:?}");

    // cgroup: the limits the files hold.
    let cg = a.cgroup.as_ref().unwrap();
    // v1 (this hybrid host) or v2, whichever hierarchy holds the container.
    let files = isolab_tests::cgroup_limits(&alpha_id);
    assert_eq!(cg.memory_limit, files.memory.parse().ok());
    assert_eq!(cg.memory_limit, Some(64 << 20));
    assert_eq!(cg.pids_limit, files.pids.parse().ok());
    assert_eq!(files.cpu, "50000 100000");
    assert_eq!(cg.cpu_limit, Some(0.5));
    assert!(cg.pids_current >= 1);
    drop(c);
    drop(server);
    t.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostname_change_shows_within_a_second_and_only_for_its_container() {
    let t = Isolab::new(BIN);
    let server = Server::start(&t);
    let mut c = Client::connect(&server.url()).await;
    // sethostname needs CAP_SYS_ADMIN over the UTS namespace: granted inside a user namespace.
    let mut alpha = shell("alpha");
    alpha.namespaces.user = NsMode::Private;
    alpha.cap_add = vec!["SYS_ADMIN".into()];
    let (h, _) = create(&mut c, alpha).await;
    create(&mut c, shell("beta")).await;
    for name in ["alpha", "beta"] {
        c.send(&ClientMsg::Watch {
            reference: None,
            target: target(name),
        })
        .await;
    }
    let mut views = Views::default();
    until(&mut c, &mut views, |v| {
        complete(v.0.get(&target("alpha"))) && complete(v.0.get(&target("beta")))
    })
    .await;
    c.input(h, "hostname gamma && echo re''named\n").await;
    c.output_until(h, "renamed").await;
    let changed = Instant::now();
    let mut beta_uts_updates = 0;
    loop {
        match c.next_msg().await {
            ServerMsg::View { target: tg, update } => {
                if tg == target("beta") && update.uts.is_some() {
                    beta_uts_updates += 1;
                }
                let gamma = tg == target("alpha")
                    && update.uts.as_ref().is_some_and(|u| u.hostname == "gamma");
                views.merge(tg, *update);
                if gamma {
                    break;
                }
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(
        changed.elapsed() < Duration::from_secs(1),
        "the change took {:?} to show",
        changed.elapsed()
    );
    assert_eq!(beta_uts_updates, 0);
    assert_eq!(views.get("beta").uts.as_ref().unwrap().hostname, "beta");

    // Unwatched: no more views of alpha, even when it changes.
    c.send(&ClientMsg::Unwatch {
        reference: None,
        target: target("alpha"),
    })
    .await;
    c.input(h, "hostname delta\n").await;
    let until_t = Instant::now() + Duration::from_millis(800);
    while Instant::now() < until_t {
        let next = tokio::time::timeout(Duration::from_millis(100), c.next_msg()).await;
        if let Ok(ServerMsg::View { target: tg, .. }) = next {
            assert_ne!(tg, target("alpha"), "a view of an unwatched container");
        }
    }
    // Watching an unknown container is an error that names it.
    c.send(&ClientMsg::Watch {
        reference: Some(9),
        target: target("ghost"),
    })
    .await;
    loop {
        match c.next_msg().await {
            ServerMsg::Error {
                reference, code, ..
            } => {
                assert_eq!(
                    (reference, code.as_str()),
                    (Some(9), codes::UNKNOWN_CONTAINER)
                );
                break;
            }
            ServerMsg::View { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    drop(c);
    drop(server);
    t.assert_no_leaks();
}
