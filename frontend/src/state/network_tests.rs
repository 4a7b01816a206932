//! The reducer's part of the network panel: the move control's request answered by `state` or
//! by an `error` routed to its field, and a refused `publish` on the form (the model itself:
//! `network/tests.rs`; the picture: `view/picture/tests.rs`).

use isolab_shared::protocol::{ContainerInfo, Limits, ServerMsg};

use super::*;

fn info(id: &str, name: &str, handle: u32) -> ContainerInfo {
    ContainerInfo {
        runtime: String::new(),
        id: id.into(),
        name: name.into(),
        image: "busybox".into(),
        hostname: name.into(),
        cmd: vec!["sh".into()],
        handles: vec![handle],
        address: Some(format!("10.88.0.{}", handle + 1)),
        ports: Vec::new(),
    }
}

/// An open connection with alpha and beta running.
fn open() -> AppState {
    let mut s = AppState::default();
    s.apply(Action::Received(ServerMsg::Hello {
        version: 4,
        limits: Limits::default(),
        containers: vec![info("a1", "alpha", 1), info("b2", "beta", 2)],
        lesson: None,
        workshop: None,
    }));
    s
}

fn cable0() -> Move {
    Move {
        interface: "cable0".into(),
        from: "alpha".into(),
        to: "beta".into(),
        kind: Default::default(),
    }
}

fn send_move(s: &mut AppState, reference: u64) {
    s.apply(Action::Sent {
        reference,
        origin: Origin::Move(cable0()),
    });
}

fn error(reference: Option<u64>, code: &str, message: &str, field: Option<&str>) -> Action {
    Action::Received(ServerMsg::Error {
        reference,
        code: code.into(),
        message: message.into(),
        field: field.map(str::to_string),
    })
}

#[test]
fn a_move_is_busy_until_its_state_comes() {
    let mut s = open();
    send_move(&mut s, 5);
    assert!(s.mover.busy());
    // Another `state` (a container came or went) does not answer it.
    s.apply(Action::Received(ServerMsg::State {
        reference: None,
        containers: vec![info("a1", "alpha", 1), info("b2", "beta", 2)],
    }));
    assert!(s.mover.busy());
    s.apply(Action::Received(ServerMsg::State {
        reference: Some(5),
        containers: vec![info("a1", "alpha", 1), info("b2", "beta", 2)],
    }));
    assert!(!s.mover.busy());
    assert_eq!(s.mover.done, Some(cable0()));
    assert!(s.pending.is_empty());
    assert_eq!(s.cards.len(), 2, "the cards are untouched");
}

#[test]
fn a_refused_move_is_shown_at_the_control_not_as_a_notice() {
    let mut s = open();
    send_move(&mut s, 6);
    s.apply(error(
        Some(6),
        "interface_exists",
        "beta already has an interface named \"cable0\"",
        None,
    ));
    assert!(!s.mover.busy());
    let shown = s.mover.error_for(Some("interface")).unwrap();
    assert_eq!(shown.code, "interface_exists");
    assert_eq!(s.notice, None);
    assert_eq!(s.form_error, None);
    assert!(s.cards.iter().all(|c| c.error.is_none()));

    send_move(&mut s, 7);
    s.apply(error(
        Some(7),
        "host_interface",
        "beta uses the host's network namespace: isolab does not move the host's interfaces",
        None,
    ));
    assert_eq!(
        s.mover.error_for(Some("to")).unwrap().code,
        "host_interface"
    );
    assert_eq!(
        s.mover.error_for(Some("interface")),
        None,
        "the old one is gone"
    );
}

#[test]
fn a_lost_connection_ends_the_move() {
    let mut s = open();
    send_move(&mut s, 8);
    s.apply(Action::Closed);
    assert!(!s.mover.busy());
    send_move(&mut s, 9);
    s.apply(Action::Received(ServerMsg::Hello {
        version: 4,
        limits: Limits::default(),
        containers: vec![],
        lesson: None,
        workshop: None,
    }));
    assert!(!s.mover.busy());
}

#[test]
fn a_port_in_use_lands_on_the_publish_field() {
    let mut s = open();
    s.apply(Action::Sent {
        reference: 3,
        origin: Origin::Create,
    });
    s.apply(error(
        Some(3),
        "port_in_use",
        "127.0.0.1:8080 is in use",
        Some("publish"),
    ));
    let problem = s.form_error.as_ref().unwrap();
    assert_eq!(problem.field.as_deref(), Some("publish"));

    // A check that names the field only in its message is placed there too.
    s.apply(Action::Sent {
        reference: 4,
        origin: Origin::Create,
    });
    s.apply(error(
        Some(4),
        "invalid_publish",
        "publish[0]: \"8080\" is not HOSTPORT:CONTAINERPORT",
        None,
    ));
    let problem = s.form_error.as_ref().unwrap();
    assert_eq!(problem.field.as_deref(), Some("publish[0]"));
    assert_eq!(problem.message, "\"8080\" is not HOSTPORT:CONTAINERPORT");
}
