use isolab_shared::protocol::{ClientMsg, InterfaceKind};

use super::*;

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn problem(code: &str, message: &str) -> Problem {
    Problem {
        code: code.to_string(),
        message: message.to_string(),
        field: None,
    }
}

fn cable0(from: &str, to: &str) -> Move {
    Move {
        interface: "cable0".into(),
        from: from.into(),
        to: to.into(),
        kind: InterfaceKind::Veth,
    }
}

#[test]
fn ports_read_as_the_card_and_the_picture_show_them() {
    let web = Port::parse("8080:80").unwrap();
    assert_eq!(web.short(), ":8080 → :80");
    assert_eq!(web.label(), "127.0.0.1:8080 → :80");
    assert_eq!(web.link().as_deref(), Some("http://127.0.0.1:8080/"));
    let dns = Port::parse("5353:53/udp").unwrap();
    assert_eq!(dns.short(), ":5353 → :53/udp");
    assert_eq!(dns.link(), None, "no link to a UDP port");
    assert_eq!(Port::parse("8443:443/tcp").unwrap().short(), ":8443 → :443");
    assert_eq!(Port::parse("80"), None);
    assert_eq!(
        Port::all(&names(&["8080:80", "junk", "9090:90"])).len(),
        2,
        "what does not parse is left out"
    );
}

#[test]
fn the_publish_field_splits_on_commas_and_spaces() {
    assert_eq!(
        publish_list("8080:80,8443:443  5353:53/udp, "),
        names(&["8080:80", "8443:443", "5353:53/udp"])
    );
    assert!(publish_list("  , ").is_empty());
}

#[test]
fn interface_names_as_the_server_takes_them() {
    for ok in ["cable0", "veth-a", "x.y_z", "a", "fourteen-chars"] {
        assert!(valid_interface(ok), "{ok}");
    }
    for bad in ["", "lo", "eth0", "fifteen-chars-x", "sp ace", "a/b", "ü"] {
        assert!(!valid_interface(bad), "{bad}");
    }
}

#[test]
fn the_selects_default_to_the_first_two_containers() {
    let running = names(&["alpha", "beta", "gamma"]);
    let fields = MoveFields::default();
    assert_eq!(fields.interface, "cable0");
    assert_eq!(fields.resolve(&running), ("alpha".into(), "beta".into()));

    let picked = MoveFields {
        from: Some("beta".into()),
        ..MoveFields::default()
    };
    assert_eq!(
        picked.resolve(&running),
        ("beta".into(), "alpha".into()),
        "to: the first other than from"
    );

    // A container that went away falls back to the default.
    let gone = MoveFields {
        from: Some("delta".into()),
        to: Some("gamma".into()),
        ..MoveFields::default()
    };
    assert_eq!(gone.resolve(&running), ("alpha".into(), "gamma".into()));
    assert_eq!(
        MoveFields::default().resolve(&names(&["alpha"])),
        ("alpha".into(), String::new())
    );
    assert_eq!(
        MoveFields::default().resolve(&[]),
        (String::new(), String::new())
    );
}

#[test]
fn the_move_request_has_the_protocols_shape() {
    let running = names(&["alpha", "beta"]);
    let fields = MoveFields {
        interface: " cable0 ".into(),
        ..MoveFields::default()
    };
    let request = fields.to_move(&running).unwrap();
    assert_eq!(request, cable0("alpha", "beta"));
    let json = serde_json::to_value(request.message(Some(7))).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"type": "move_interface", "ref": 7, "interface": "cable0",
            "from": "alpha", "to": "beta", "kind": "veth"})
    );
    assert!(matches!(
        serde_json::from_value::<ClientMsg>(json).unwrap(),
        ClientMsg::MoveInterface { .. }
    ));
}

#[test]
fn the_kind_select_offers_veth_then_dummy_and_is_sent() {
    let offered: Vec<&str> = kind_options().iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(offered, ["veth", "dummy"], "veth first: the default");
    assert_eq!(MoveFields::default().kind, InterfaceKind::Veth);
    assert!(MOVE_HINT.contains("veth") && MOVE_HINT.contains("dummy"));

    let fields = MoveFields {
        interface: "dummy0".into(),
        kind: "dummy".parse().unwrap(),
        ..MoveFields::default()
    };
    let request = fields.to_move(&names(&["alpha", "beta"])).unwrap();
    assert_eq!(request.kind, InterfaceKind::Dummy);
    let json = serde_json::to_value(request.message(None)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"type": "move_interface", "interface": "dummy0",
            "from": "alpha", "to": "beta", "kind": "dummy"})
    );
    assert!(matches!(
        serde_json::from_value::<ClientMsg>(json).unwrap(),
        ClientMsg::MoveInterface {
            kind: Some(InterfaceKind::Dummy),
            ..
        }
    ));
}

#[test]
fn a_move_is_checked_before_it_is_sent() {
    let running = names(&["alpha", "beta"]);
    let bad = MoveFields {
        interface: "eth0".into(),
        from: Some("beta".into()),
        to: Some("beta".into()),
        kind: InterfaceKind::Dummy,
    };
    let problems = bad.to_move(&running).unwrap_err();
    let found: Vec<_> = problems
        .iter()
        .map(|p| (p.code.as_str(), p.field.as_deref()))
        .collect();
    assert_eq!(
        found,
        vec![
            ("invalid_interface", Some("interface")),
            ("same_namespace", Some("to"))
        ]
    );

    let lonely = MoveFields::default()
        .to_move(&names(&["alpha"]))
        .unwrap_err();
    assert_eq!(lonely[0].code, "unknown_container");
    assert_eq!(lonely[0].field.as_deref(), Some("to"));
}

#[test]
fn the_servers_errors_land_at_their_field() {
    let request = cable0("alpha", "beta");
    let cases = [
        (
            "invalid_interface",
            "\"eth0\" is not an interface name",
            Some("interface"),
        ),
        (
            "interface_exists",
            "beta already has an interface named \"cable0\"",
            Some("interface"),
        ),
        (
            "same_namespace",
            "the two containers share one network namespace",
            Some("to"),
        ),
        (
            "unknown_container",
            "no container \"beta\" in this session",
            Some("to"),
        ),
        (
            "unknown_container",
            "no container \"alpha\" in this session",
            Some("from"),
        ),
        (
            "host_interface",
            "alpha uses the host's network namespace: …",
            Some("from"),
        ),
        ("runtime", "netlink: operation not permitted", None),
    ];
    for (code, message, field) in cases {
        assert_eq!(
            request.field_of(&problem(code, message)),
            field,
            "{code}: {message}"
        );
    }
    // A field the server names wins, if it is one of the control's.
    let named = Problem {
        field: Some("from".into()),
        ..problem("unknown_container", "gone")
    };
    assert_eq!(request.field_of(&named), Some("from"));
}

#[test]
fn the_mover_follows_its_request() {
    let mut mover = Mover::default();
    mover.sent(cable0("alpha", "beta"));
    assert!(mover.busy());
    mover.refused(problem(
        "interface_exists",
        "beta already has an interface named \"cable0\"",
    ));
    assert!(!mover.busy());
    assert_eq!(
        mover.error_for(Some("interface")).unwrap().code,
        "interface_exists"
    );
    assert_eq!(mover.error_for(None), None, "not under the button");

    mover.sent(cable0("alpha", "beta"));
    assert_eq!(mover.error, None, "a new try clears the old error");
    mover.moved();
    assert_eq!(mover.done, Some(cable0("alpha", "beta")));
    assert!(!mover.busy());

    mover.sent(cable0("beta", "alpha"));
    mover.refused(problem("runtime", "netlink: busy"));
    assert_eq!(mover.error_for(None).unwrap().code, "runtime");
    assert_eq!(mover.done, None);

    mover.sent(cable0("beta", "alpha"));
    mover.lost();
    assert!(!mover.busy());
}
