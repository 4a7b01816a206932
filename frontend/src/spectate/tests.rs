use isolab_shared::protocol::{ClientMsg, ServerMsg};

use super::*;

fn spectating(handle: Handle) -> ServerMsg {
    ServerMsg::Spectating {
        reference: None,
        handle,
        workshop: "w1".into(),
        attendee: "a1".into(),
        name: "Ada".into(),
        container: "alpha".into(),
    }
}

fn spectator(handle: Handle, source: Option<Handle>) -> Spectator {
    Spectator {
        handle,
        workshop: "w1".into(),
        attendee: "a1".into(),
        name: "Ada".into(),
        container: "alpha".into(),
        source,
        exit: None,
    }
}

/// Everything a terminal could send about `handle`.
fn frames_for(handle: Handle) -> Vec<ClientMsg> {
    vec![
        ClientMsg::Resize {
            reference: None,
            handle,
            rows: 24,
            cols: 80,
        },
        ClientMsg::Signal {
            reference: None,
            handle,
            signal: "INT".into(),
        },
        ClientMsg::Eof {
            reference: None,
            handle,
        },
    ]
}

#[test]
fn a_read_only_terminal_sends_only_acks() {
    let mode = TerminalMode::ReadOnly;
    assert!(!mode.sends_input());
    assert!(!mode.sends_resize());
    assert!(mode.acks());
    let mode = TerminalMode::Interactive;
    assert!(mode.sends_input() && mode.sends_resize() && mode.acks());
}

#[test]
fn the_guard_stops_input_resize_signal_and_eof_for_spectated_handles() {
    let mut guard = Guard::default();
    for msg in frames_for(7) {
        assert!(guard.allows(&msg), "{msg:?} before spectating");
    }
    assert!(guard.allows_input(7));

    guard.on_message(&spectating(7));
    assert_eq!(guard.mode(7), TerminalMode::ReadOnly);
    assert!(!guard.allows_input(7));
    for msg in frames_for(7) {
        assert!(
            !guard.allows(&msg),
            "{msg:?} went out for a watched terminal"
        );
    }
    assert!(guard.allows(&ClientMsg::Ack {
        handle: 7,
        bytes: 100
    }));
    // The session's own terminals are untouched.
    assert!(guard.allows_input(1));
    for msg in frames_for(1) {
        assert!(guard.allows(&msg));
    }
    // Requests about no terminal go out.
    assert!(guard.allows(&ClientMsg::Unspectate {
        reference: None,
        handle: 7
    }));

    // A new connection numbers its handles anew.
    guard.reset();
    assert!(guard.allows_input(7));
}

#[test]
fn other_messages_make_nothing_read_only() {
    let mut guard = Guard::default();
    guard.on_message(&ServerMsg::Progress {
        progress: Default::default(),
    });
    assert_eq!(guard, Guard::default());
}

#[test]
fn spectators_are_added_refreshed_closed_and_cleared() {
    let mut s = Spectators::default();
    s.add(spectator(5, Some(1)));
    s.add(spectator(6, Some(2)));
    assert_eq!(s.get(5).unwrap().title(), "Ada · alpha");
    assert!(s.watching("w1", "a1", 1));
    assert!(!s.watching("w1", "a1", 3));
    assert!(!s.watching("w2", "a1", 1));

    let mut again = spectator(5, Some(1));
    again.container = "beta".into();
    s.add(again);
    assert_eq!(s.list.len(), 2);
    assert_eq!(s.get(5).unwrap().container, "beta");

    let exit = Exit {
        code: 0,
        signal: None,
        oom_killed: false,
    };
    assert!(s.exited(6, exit.clone()));
    assert!(!s.exited(9, exit.clone()));
    assert_eq!(s.get(6).unwrap().exit, Some(exit));

    s.close(5);
    assert!(s.get(5).is_none());
    s.clear();
    assert!(s.list.is_empty());
}
