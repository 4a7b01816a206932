use isolab_shared::protocol::view::{AttachmentView, InterfaceView, NetworkView, NsView};
use isolab_shared::protocol::{ContainerInfo, ViewTarget, ViewUpdate};

use super::layout::{layout, BOX_TOP, COLUMN, MIN_WIDTH, PAD};
use super::*;

fn info(name: &str, address: Option<&str>, ports: &[&str]) -> ContainerInfo {
    ContainerInfo {
        runtime: String::new(),
        id: format!("{name}-id"),
        name: name.to_string(),
        image: "busybox".to_string(),
        hostname: name.to_string(),
        cmd: vec!["sh".to_string()],
        handles: vec![1],
        address: address.map(str::to_string),
        ports: ports.iter().map(|p| p.to_string()).collect(),
    }
}

fn iface(name: &str, addresses: &[&str], peer: Option<&str>) -> InterfaceView {
    InterfaceView {
        name: name.to_string(),
        index: 2,
        up: true,
        running: true,
        addresses: addresses.iter().map(|a| a.to_string()).collect(),
        peer: peer.map(str::to_string),
        kind: peer.map(|_| "veth".to_string()),
    }
}

fn network(attachments: Vec<AttachmentView>) -> NetworkView {
    NetworkView {
        name: "isolab-s1".to_string(),
        bridge: "isolab-br1".to_string(),
        up: true,
        subnet: "10.88.1.0/24".to_string(),
        gateway: "10.88.1.1".to_string(),
        egress: false,
        attachments,
    }
}

fn attachment(
    container: &str,
    address: &str,
    veth: Option<&str>,
    ports: &[&str],
) -> AttachmentView {
    AttachmentView {
        container: container.to_string(),
        address: address.to_string(),
        host_veth: veth.map(str::to_string),
        ports: ports.iter().map(|p| p.to_string()).collect(),
    }
}

fn with_interfaces(views: &mut Views, name: &str, list: Vec<InterfaceView>) {
    views.received(
        ViewTarget::Container(name.to_string()),
        ViewUpdate {
            interfaces: Some(list),
            ..ViewUpdate::default()
        },
    );
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn cable(from: &str, from_iface: &str, to: &str, to_iface: &str) -> Cable {
    Cable {
        from: from.into(),
        from_iface: from_iface.into(),
        to: to.into(),
        to_iface: to_iface.into(),
    }
}

#[test]
fn peers_say_where_the_other_end_is() {
    assert_eq!(
        parse_peer("cable0p in alpha"),
        Some(Peer {
            interface: "cable0p".into(),
            place: Place::Container("alpha".into())
        })
    );
    assert_eq!(
        parse_peer("veth1a2b on the host").map(|p| p.place),
        Some(Place::Host)
    );
    assert_eq!(
        parse_peer("veth9 in another namespace").map(|p| p.place),
        Some(Place::Elsewhere)
    );
    assert_eq!(parse_peer("veth9"), None);
    assert_eq!(bare_address("10.88.1.2/24"), "10.88.1.2");
    assert_eq!(bare_address("10.88.1.2"), "10.88.1.2");
}

#[test]
fn the_host_view_draws_the_bridge_and_each_containers_line() {
    let net = network(vec![
        attachment("alpha", "10.88.1.2", Some("veth1a2b"), &["8080:80"]),
        attachment("beta", "10.88.1.3", Some("veth3c4d"), &[]),
    ]);
    let alpha = info("alpha", Some("10.88.1.2"), &["8080:80"]);
    let beta = info("beta", Some("10.88.1.3"), &[]);
    let pic = picture(Some(&net), &[&alpha, &beta], &Views::default());
    let bridge = pic.bridge.as_ref().unwrap();
    assert_eq!(
        (
            bridge.name.as_str(),
            bridge.subnet.as_str(),
            bridge.gateway.as_str()
        ),
        ("isolab-br1", "10.88.1.0/24", "10.88.1.1")
    );
    assert!(bridge.up && !bridge.egress);
    let alpha = &pic.nodes[0];
    assert_eq!(alpha.name, "alpha");
    assert!(alpha.attached);
    assert_eq!(alpha.address.as_deref(), Some("10.88.1.2"));
    assert_eq!(alpha.eth, "eth0");
    assert_eq!(alpha.host_veth.as_deref(), Some("veth1a2b"));
    assert_eq!(alpha.ports[0].label(), "127.0.0.1:8080 → :80");
    assert_eq!(pic.nodes[1].host_veth.as_deref(), Some("veth3c4d"));
    assert!(pic.cables.is_empty());
}

#[test]
fn without_the_network_section_the_containers_and_their_interfaces_say_it() {
    // An older server (or one not reporting yet): the address from `ContainerInfo`, the host
    // end of the pair from eth0's peer.
    let mut views = Views::default();
    with_interfaces(
        &mut views,
        "alpha",
        vec![
            iface("lo", &["127.0.0.1/8"], None),
            iface(
                "eth0",
                &["10.88.1.2/24", "fe80::1/64"],
                Some("veth1a2b on the host"),
            ),
        ],
    );
    let alpha = info("alpha", Some("10.88.1.2"), &["8080:80", "bad"]);
    let pic = picture(None, &[&alpha], &views);
    assert_eq!(pic.bridge, None);
    let node = &pic.nodes[0];
    assert!(node.attached);
    assert_eq!(node.host_veth.as_deref(), Some("veth1a2b"));
    assert_eq!(node.ports.len(), 1);

    // Nothing but the interfaces: the address from eth0, not attached as far as we know.
    let bare = info("alpha", None, &[]);
    let node = &picture(None, &[&bare], &views).nodes[0];
    assert_eq!(node.address.as_deref(), Some("10.88.1.2"));
    assert!(!node.attached);
}

#[test]
fn containers_come_and_go_with_the_list() {
    let net = network(vec![
        attachment("alpha", "10.88.1.2", None, &[]),
        attachment("gone", "10.88.1.9", None, &[]),
    ]);
    let alpha = info("alpha", Some("10.88.1.2"), &[]);
    let gamma = info("gamma", None, &[]);
    let pic = picture(Some(&net), &[&alpha, &gamma], &Views::default());
    let drawn: Vec<_> = pic.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        drawn,
        vec!["alpha", "gamma"],
        "a stale attachment is not drawn"
    );
    assert!(!pic.nodes[1].attached, "gamma has no attachment (yet)");
}

#[test]
fn a_container_in_anothers_network_namespace_says_whose() {
    let mut views = Views::default();
    views.received(
        ViewTarget::Container("beta".into()),
        ViewUpdate {
            namespaces: Some(vec![NsView {
                kind: "net".into(),
                inode: 4026532100,
                shared_with: vec!["alpha".into()],
            }]),
            ..ViewUpdate::default()
        },
    );
    let alpha = info("alpha", Some("10.88.1.2"), &[]);
    let beta = info("beta", None, &[]);
    let pic = picture(None, &[&alpha, &beta], &views);
    assert_eq!(pic.nodes[1].shares_net_with.as_deref(), Some("alpha"));
    assert_eq!(pic.nodes[0].shares_net_with, None);
}

#[test]
fn a_moved_interface_is_a_cable_from_where_it_was_made() {
    let all = names(&["alpha", "beta", "gamma"]);
    let alpha = vec![iface("cable0p", &[], Some("cable0 in beta"))];
    let beta = vec![
        iface("eth0", &["10.88.1.3/24"], Some("veth3c4d on the host")),
        iface("cable0", &[], Some("cable0p in alpha")),
    ];
    // Either end alone is enough (the other view may be a second behind), and both ends
    // make one cable.
    let expected = vec![cable("alpha", "cable0p", "beta", "cable0")];
    assert_eq!(cables(&all, &[("alpha", &alpha)]), expected);
    assert_eq!(cables(&all, &[("beta", &beta)]), expected);
    assert_eq!(
        cables(&all, &[("alpha", &alpha), ("beta", &beta)]),
        expected
    );
    // Made in gamma, moved to alpha: from gamma, whatever the order on the page.
    let gamma = vec![iface("link7p", &[], Some("link7 in alpha"))];
    assert_eq!(
        cables(&all, &[("gamma", &gamma)]),
        vec![cable("gamma", "link7p", "alpha", "link7")]
    );
    // Names of no known pattern: the page's order.
    let beta = vec![iface("left", &[], Some("right in alpha"))];
    assert_eq!(
        cables(&all, &[("beta", &beta)]),
        vec![cable("alpha", "right", "beta", "left")]
    );
}

#[test]
fn what_is_not_a_cable_between_two_containers_is_left_out() {
    let all = names(&["alpha", "beta"]);
    let alpha = vec![
        iface("eth0", &[], Some("veth1 on the host")),
        iface("pair0", &[], Some("pair0p in alpha")),
        iface("far0", &[], Some("far0p in delta")),
        iface("odd0", &[], Some("odd0p in another namespace")),
        iface("dummy0", &[], None),
    ];
    assert!(cables(&all, &[("alpha", &alpha)]).is_empty());
}

#[test]
fn a_shared_namespace_does_not_draw_its_cables_twice() {
    let mut views = Views::default();
    let shared = |other: &str| {
        Some(vec![NsView {
            kind: "net".into(),
            inode: 4026532100,
            shared_with: vec![other.to_string()],
        }])
    };
    for (name, other) in [("alpha", "gamma"), ("gamma", "alpha")] {
        views.received(
            ViewTarget::Container(name.into()),
            ViewUpdate {
                namespaces: shared(other),
                interfaces: Some(vec![iface("cable0p", &[], Some("cable0 in beta"))]),
                ..ViewUpdate::default()
            },
        );
    }
    let (alpha, beta, gamma) = (
        info("alpha", Some("10.88.1.2"), &[]),
        info("beta", Some("10.88.1.3"), &[]),
        info("gamma", None, &[]),
    );
    let pic = picture(None, &[&alpha, &beta, &gamma], &views);
    assert_eq!(
        pic.cables,
        vec![cable("alpha", "cable0p", "beta", "cable0")]
    );
}

#[test]
fn the_layout_gives_each_container_a_column_and_each_cable_a_curve() {
    let mut views = Views::default();
    with_interfaces(
        &mut views,
        "alpha",
        vec![iface("cable0p", &[], Some("cable0 in beta"))],
    );
    let (alpha, beta, gamma) = (
        info("alpha", Some("10.88.1.2"), &["8080:80", "8443:443"]),
        info("beta", Some("10.88.1.3"), &[]),
        info("gamma", Some("10.88.1.4"), &[]),
    );
    let pic = picture(None, &[&alpha, &beta, &gamma], &views);
    let drawing = layout(&pic);
    assert_eq!(drawing.nodes.len(), 3);
    assert_eq!(drawing.width, (2 * PAD + 3 * COLUMN).max(MIN_WIDTH));
    let middles: Vec<i32> = drawing.nodes.iter().map(|n| n.middle).collect();
    assert_eq!(middles[1] - middles[0], COLUMN);
    assert!(drawing.nodes.iter().all(|n| n.body.y == BOX_TOP));
    assert!(
        drawing.nodes[0].body.height > drawing.nodes[1].body.height,
        "ports make the box taller"
    );
    // The cable runs from under alpha to under beta, below every box.
    let at = &drawing.cables[0];
    let lowest = drawing.nodes.iter().map(|n| n.body.bottom()).max().unwrap();
    assert!(at.path.starts_with(&format!(
        "M{},{}",
        middles[0],
        drawing.nodes[0].body.bottom()
    )));
    assert!(at.path.ends_with(&format!(
        "{},{}",
        middles[1],
        drawing.nodes[1].body.bottom()
    )));
    assert!(drawing.height > lowest + 20, "room for the curve");
    // Each name outside its end: alpha's to the left, beta's to the right.
    assert_eq!(at.from_label.anchor, "end");
    assert!(at.from_label.x < middles[0]);
    assert_eq!(at.to_label.anchor, "start");
    assert!(at.to_label.x > middles[1]);
    assert!(drawing.bridge.x >= drawing.host.x && drawing.bridge.width < drawing.host.width);

    // No containers: the host and its bridge, the narrowest width.
    let empty = layout(&Picture::default());
    assert_eq!(empty.width, MIN_WIDTH);
    assert!(empty.nodes.is_empty() && empty.cables.is_empty());
    assert!(empty.height > empty.host.bottom());
}

#[test]
fn cable_ends_on_one_box_are_spread_apart() {
    let all = ["alpha", "beta", "gamma"].map(|n| info(n, Some("10.88.1.9"), &[]));
    let pic = Picture {
        bridge: None,
        nodes: picture(None, &all.iter().collect::<Vec<_>>(), &Views::default()).nodes,
        cables: vec![
            cable("alpha", "a0p", "beta", "a0"),
            cable("alpha", "b0p", "gamma", "b0"),
        ],
    };
    let drawing = layout(&pic);
    let starts: Vec<&str> = drawing
        .cables
        .iter()
        .map(|c| c.path.split(' ').next().unwrap())
        .collect();
    assert_ne!(starts[0], starts[1], "two ends under alpha, apart");
    assert_ne!(drawing.cables[0].from_label, drawing.cables[1].from_label);
}
