use isolab_shared::protocol::view::{
    CgroupView, IdRange, KernelView, NsView, ProcessView, ProcessesView, UtsView,
};
use isolab_shared::protocol::{ContainerInfo, Limits, ServerMsg, ViewTarget, ViewUpdate};

use super::chart::chart;
use super::colour::{self, distance, row_hues};
use super::format;
use super::matrix::rows;
use super::tree::tree;
use super::*;

fn uts(hostname: &str) -> Option<UtsView> {
    Some(UtsView {
        hostname: hostname.to_string(),
        domainname: "(none)".to_string(),
    })
}

fn cgroup(memory: u64, cpu: f64, pids: u64) -> Option<CgroupView> {
    Some(CgroupView {
        version: "v2".to_string(),
        memory_current: memory,
        memory_limit: Some(32 << 20),
        cpu_rate: cpu,
        pids_current: pids,
        pids_limit: Some(24),
        ..CgroupView::default()
    })
}

fn ns(kind: &str, inode: u64, shared_with: &[&str]) -> NsView {
    NsView {
        kind: kind.to_string(),
        inode,
        shared_with: shared_with.iter().map(|s| s.to_string()).collect(),
    }
}

fn process(pid: i32, pid_inside: i32, ppid: i32, cmd: &str) -> ProcessView {
    ProcessView {
        pid,
        pid_inside,
        ppid,
        uid_inside: 0,
        uid_host: 100000,
        cmd: cmd.to_string(),
        container: None,
    }
}

/// A first view: every section.
fn full(hostname: &str) -> ViewUpdate {
    ViewUpdate {
        namespaces: Some(vec![ns("uts", 4026532001, &[])]),
        processes: Some(ProcessesView {
            list: vec![process(900, 1, 0, "sh")],
            host_total: None,
        }),
        uts: uts(hostname),
        interfaces: Some(Vec::new()),
        mounts: Some(Default::default()),
        id_maps: Some(Default::default()),
        cgroup: cgroup(1 << 20, 0.0, 1),
        kernel: Some(KernelView {
            release: "6.1.0".to_string(),
            shared_with_host: true,
        }),
        network: None,
    }
}

fn alpha() -> ViewTarget {
    ViewTarget::Container("alpha".to_string())
}

#[test]
fn a_partial_update_replaces_only_the_sections_it_has() {
    let mut views = Views::default();
    views.received(alpha(), full("alpha"));
    views.received(
        alpha(),
        ViewUpdate {
            cgroup: cgroup(5 << 20, 0.5, 3),
            ..ViewUpdate::default()
        },
    );
    let view = views.container("alpha").unwrap();
    assert_eq!(view.updates, 2);
    assert_eq!(view.hostname(), Some("alpha"), "uts unchanged");
    assert_eq!(view.latest.processes.as_ref().unwrap().list.len(), 1);
    assert_eq!(view.latest.kernel.as_ref().unwrap().release, "6.1.0");
    let cg = view.latest.cgroup.as_ref().unwrap();
    assert_eq!((cg.memory_current, cg.pids_current), (5 << 20, 3));
    assert!(views.container("beta").is_none());
}

#[test]
fn the_hostname_marker_moves_only_when_the_hostname_changes() {
    let mut view = TargetView::default();
    view.merge(full("alpha"));
    assert_eq!(
        view.hostname_changed_at, None,
        "the first view is no change"
    );
    view.merge(ViewUpdate {
        uts: uts("alpha"),
        ..ViewUpdate::default()
    });
    assert_eq!(view.hostname_changed_at, None, "same name again");
    view.merge(ViewUpdate {
        uts: uts("gamma"),
        ..ViewUpdate::default()
    });
    assert_eq!(view.hostname_changed_at, Some(3));
    assert_eq!(view.hostname(), Some("gamma"));
    view.merge(ViewUpdate {
        cgroup: cgroup(0, 0.0, 1),
        ..ViewUpdate::default()
    });
    assert_eq!(view.hostname_changed_at, Some(3), "other sections leave it");
    view.merge(ViewUpdate {
        uts: uts("delta"),
        ..ViewUpdate::default()
    });
    assert_eq!(
        view.hostname_changed_at,
        Some(5),
        "a new change, a new marker"
    );
}

#[test]
fn the_ring_keeps_the_latest_points_oldest_first() {
    let mut ring = Ring::new(3);
    assert!(ring.is_empty());
    assert_eq!(ring.last(), None);
    for v in 1..=5u64 {
        ring.push(v);
    }
    assert_eq!(ring.len(), 3);
    assert_eq!(ring.capacity(), 3);
    assert_eq!(ring.iter().collect::<Vec<_>>(), vec![3, 4, 5]);
    assert_eq!(ring.last(), Some(5));
    assert_eq!(ring.points(), vec![3.0, 4.0, 5.0]);
}

#[test]
fn sampling_records_the_latest_cgroup_numbers_of_each_container_every_tick() {
    let mut views = Views::default();
    views.received(ViewTarget::Host, ViewUpdate::default());
    views.sample();
    views.received(alpha(), full("alpha"));
    views.sample();
    // No new view: the same numbers again (a missing section is unchanged).
    views.sample();
    views.received(
        alpha(),
        ViewUpdate {
            cgroup: cgroup(7 << 20, 0.25, 4),
            ..ViewUpdate::default()
        },
    );
    views.sample();
    let history = &views.container("alpha").unwrap().history;
    assert_eq!(
        history.memory.points(),
        vec![1048576.0, 1048576.0, 7340032.0]
    );
    assert_eq!(history.cpu.points(), vec![0.0, 0.0, 0.25]);
    assert_eq!(history.pids.iter().collect::<Vec<_>>(), vec![1, 1, 4]);
    assert!(
        views.host.history.memory.is_empty(),
        "the host has no cgroup"
    );

    for _ in 0..100 {
        views.sample();
    }
    assert_eq!(
        views.container("alpha").unwrap().history.memory.len(),
        HISTORY_POINTS
    );
}

#[test]
fn keep_drops_the_views_of_containers_that_are_gone() {
    let mut views = Views::default();
    views.received(ViewTarget::Host, full("host"));
    views.received(alpha(), full("alpha"));
    views.received(ViewTarget::Container("beta".into()), full("beta"));
    views.keep(|name| name == "beta");
    assert!(views.container("alpha").is_none());
    assert!(views.container("beta").is_some());
    assert_eq!(views.host.hostname(), Some("host"));
}

#[test]
fn a_refused_watch_is_kept_until_a_view_comes() {
    let mut views = Views::default();
    views.failed(alpha(), "unknown_type: not implemented yet".into());
    assert!(views.get(&alpha()).unwrap().error.is_some());
    views.received(alpha(), full("alpha"));
    assert_eq!(views.get(&alpha()).unwrap().error, None);
}

fn info(name: &str, handles: &[u32]) -> ContainerInfo {
    ContainerInfo {
        runtime: String::new(),
        id: format!("{name}-id"),
        name: name.to_string(),
        image: "busybox".to_string(),
        hostname: name.to_string(),
        cmd: vec!["sh".to_string()],
        handles: handles.to_vec(),
        address: None,
        ports: Vec::new(),
    }
}

#[test]
fn hello_watches_the_host_and_every_container_created_watches_its_container() {
    let hello = ServerMsg::Hello {
        version: 2,
        limits: Limits::default(),
        containers: vec![info("alpha", &[1]), info("beta", &[2])],
        lesson: None,
        workshop: None,
    };
    assert_eq!(
        watches_for(&hello),
        vec![
            ViewTarget::Host,
            ViewTarget::Container("alpha".into()),
            ViewTarget::Container("beta".into())
        ]
    );
    let created = ServerMsg::Created {
        reference: Some(1),
        container: info("gamma", &[3]),
        handle: 3,
    };
    assert_eq!(
        watches_for(&created),
        vec![ViewTarget::Container("gamma".into())]
    );
    let exec = ServerMsg::Created {
        reference: Some(2),
        container: info("gamma", &[3, 4]),
        handle: 4,
    };
    assert_eq!(
        watches_for(&exec),
        vec![],
        "a second shell is no new container"
    );
    let state = ServerMsg::State {
        reference: None,
        containers: vec![info("gamma", &[3])],
    };
    assert_eq!(watches_for(&state), vec![]);
}

#[test]
fn watch_messages_have_the_protocols_shape() {
    use isolab_shared::protocol::ClientMsg;
    let host = ClientMsg::Watch {
        reference: None,
        target: ViewTarget::Host,
    };
    assert_eq!(
        serde_json::to_string(&host).unwrap(),
        r#"{"type":"watch","target":{"kind":"host"}}"#
    );
    let alpha = ClientMsg::Watch {
        reference: Some(3),
        target: alpha(),
    };
    assert_eq!(
        serde_json::to_string(&alpha).unwrap(),
        r#"{"type":"watch","ref":3,"target":{"kind":"container","name":"alpha"}}"#
    );
}

#[test]
fn shared_namespaces_get_one_colour_and_different_ones_differ() {
    let host = vec![ns("uts", 4026531838, &[]), ns("pid", 4026531836, &[])];
    let alpha = vec![ns("uts", 4026532201, &[]), ns("pid", 4026532203, &["beta"])];
    let beta = vec![
        ns("uts", 4026532301, &[]),
        ns("pid", 4026532203, &["alpha"]),
    ];
    let matrix = rows(&[Some(&host), Some(&alpha), Some(&beta), None]);
    assert_eq!(matrix.len(), 8);
    assert_eq!(
        matrix.iter().map(|r| r.kind).collect::<Vec<_>>(),
        vec!["mnt", "uts", "ipc", "pid", "net", "cgroup", "user", "time"]
    );
    let row = |kind: &str| matrix.iter().find(|r| r.kind == kind).unwrap();
    assert!(row("mnt").cells.iter().all(Option::is_none), "no mnt sent");

    let uts = &row("uts").cells;
    assert_eq!(uts[3], None, "a column without a view yet");
    let hues: Vec<u16> = uts[..3].iter().map(|c| c.as_ref().unwrap().hue).collect();
    for (i, a) in hues.iter().enumerate() {
        for b in &hues[i + 1..] {
            assert!(distance(*a, *b) >= 12, "{hues:?} too close");
        }
    }

    let pid = &row("pid").cells;
    let (a, b) = (pid[1].as_ref().unwrap(), pid[2].as_ref().unwrap());
    assert_eq!(a.hue, b.hue, "shared cells look the same");
    assert_ne!(pid[0].as_ref().unwrap().hue, a.hue);
    assert_eq!(a.tooltip("pid"), "pid:[4026532203] — shared with beta");
    assert_eq!(
        pid[0].as_ref().unwrap().tooltip("pid"),
        "pid:[4026531836] — not shared"
    );
}

#[test]
fn hues_are_stable_and_kept_apart_in_a_row() {
    assert_eq!(colour::hue(4026531838), colour::hue(4026531838));
    assert!(colour::hue(u64::MAX) < 360);
    let inodes: Vec<u64> = (4026532200..4026532209).collect();
    let forward = row_hues(inodes.iter().copied());
    let backward = row_hues(inodes.iter().rev().copied());
    assert_eq!(
        forward, backward,
        "the order of the columns does not matter"
    );
    assert_eq!(forward.len(), 9);
    assert!(forward.windows(2).all(|w| w[0].0 < w[1].0), "by inode");
    let hues: Vec<u16> = forward.iter().map(|(_, h)| *h).collect();
    for (i, a) in hues.iter().enumerate() {
        for b in &hues[i + 1..] {
            assert!(distance(*a, *b) >= 12, "{hues:?}: {a} and {b}");
        }
    }
    // One namespace alone keeps its own hue; twice is once.
    assert_eq!(row_hues([7, 7]), vec![(7, colour::hue(7))]);
    assert_eq!(colour::hue_in(&forward, 4026532203), forward[3].1);
    assert_eq!(distance(350, 10), 20);
    assert_eq!(colour::css(120), "hsl(120, 55%, 30%)");
}

#[test]
fn the_tree_puts_children_under_their_parent() {
    // Sorted by host pid, as the server sends them.
    let list = vec![
        process(900, 1, 800, "sh"),
        process(920, 2, 900, "sh -c f"),
        process(950, 5, 900, "sleep 100"),
        process(960, 6, 920, "f"),
        process(990, 9, 990, "loop"),
    ];
    let order: Vec<(usize, &str)> = tree(&list)
        .into_iter()
        .map(|(depth, p)| (depth, p.cmd.as_str()))
        .collect();
    assert_eq!(
        order,
        vec![
            (0, "sh"),
            (1, "sh -c f"),
            (2, "f"),
            (1, "sleep 100"),
            (0, "loop")
        ]
    );
    // A loop of parents is shown, once each.
    let cycle = vec![process(1, 1, 2, "a"), process(2, 2, 1, "b")];
    assert_eq!(tree(&cycle).len(), 2);
}

#[test]
fn a_chart_is_right_aligned_and_scaled_to_its_limit() {
    let c = chart(&[0.0, 50.0, 100.0], Some(100.0), 5, 100.0, 20.0);
    // Slots at x = 0, 25, 50, 75, 100; three values take the last three.
    // The top is 110: 100 is at 20 - 20 * 100/110.
    assert_eq!(c.points, "50,20 75,10.91 100,1.82");
    assert_eq!(c.limit_y, Some(1.82));
    let empty = chart(&[], None, 60, 100.0, 20.0);
    assert_eq!(empty.points, "");
    assert_eq!(empty.limit_y, None);
    let flat = chart(&[0.0, 0.0], None, 2, 10.0, 10.0);
    assert_eq!(flat.points, "0,10 10,10");
    // Above the limit (a limit lowered): drawn at the top, not outside the box.
    let over = chart(&[200.0], Some(100.0), 1, 10.0, 10.0);
    assert_eq!(over.points, "0,0.91");
}

#[test]
fn numbers_read_well() {
    assert_eq!(format::bytes(512), "512 B");
    assert_eq!(format::bytes(1536), "1.50 KiB");
    assert_eq!(format::bytes(32 << 20), "32.0 MiB");
    assert_eq!(format::bytes(3 << 30), "3.00 GiB");
    assert_eq!(format::cpus(0.5), "0.50 CPU");
    assert_eq!(format::short_inode(4026532201), "…32201");
    assert_eq!(format::short_inode(42), "42");
    assert_eq!(
        format::id_map(&[IdRange {
            inside: 0,
            outside: 100000,
            count: 65536
        }]),
        "0 → 100000 (65536)"
    );
    assert_eq!(format::id_map(&[]), "none");
}
