//! The trainer's dashboard and the terminals it watches, through the state machine.

use isolab_shared::protocol::{ClientMsg, ServerMsg};

use super::lesson_tests::{error, hello, sent};
use super::*;
use crate::spectate::{Guard, TerminalMode};
use crate::trainer::attendee_rows;
use crate::trainer::tests::{attendee, workshop};

fn trainer_page(token: Option<&str>) -> AppState {
    let mut s = AppState::new(
        Route::Trainer {
            token: token.map(str::to_string),
        },
        Trainer::new(token.map(str::to_string), None),
    );
    s.apply(hello(None, None));
    s
}

fn spectating(reference: Option<u64>, handle: u32) -> Action {
    Action::Received(ServerMsg::Spectating {
        reference,
        handle,
        workshop: "w1".into(),
        attendee: "a1".into(),
        name: "Ada".into(),
        container: "alpha".into(),
    })
}

/// A trainer admitted, with workshop w1's dashboard open (Ada, at step 1 of 3).
fn dashboard() -> AppState {
    let mut s = trainer_page(Some("secret"));
    sent(&mut s, 1, Origin::Admin("secret".into()));
    s.apply(Action::Received(ServerMsg::Workshops {
        reference: Some(1),
        workshops: vec![],
    }));
    sent(&mut s, 2, Origin::WorkshopCreate);
    s.apply(Action::Received(ServerMsg::Workshop {
        reference: Some(2),
        workshop: workshop("w1", vec![]),
    }));
    s.apply(Action::Received(ServerMsg::Workshop {
        reference: None,
        workshop: workshop(
            "w1",
            vec![attendee("a1", "Ada", &[false, false, false], &[false; 3])],
        ),
    }));
    s
}

#[test]
fn the_token_is_taken_by_a_workshops_list() {
    let mut s = trainer_page(None);
    sent(&mut s, 1, Origin::Admin("secret".into()));
    assert!(s.trainer.checking);
    assert_eq!(s.trainer.token.as_deref(), Some("secret"));
    s.apply(Action::Received(ServerMsg::Workshops {
        reference: Some(1),
        workshops: vec![workshop("w1", vec![])],
    }));
    assert!(s.trainer.admitted && !s.trainer.checking);
    assert_eq!(s.trainer.workshops.len(), 1);
    assert!(s.pending.is_empty());
}

#[test]
fn a_wrong_token_is_shown_at_the_form_and_forgotten() {
    let mut s = trainer_page(Some("stale"));
    sent(&mut s, 1, Origin::Admin("stale".into()));
    s.apply(error(Some(1), "forbidden"));
    assert!(!s.trainer.admitted);
    assert_eq!(s.trainer.token, None);
    assert_eq!(s.trainer.admin_error.as_ref().unwrap().code, "forbidden");
    assert_eq!(s.notice, None);
}

#[test]
fn workshop_messages_update_the_open_dashboard() {
    let mut s = dashboard();
    assert_eq!(s.trainer.open.as_deref(), Some("w1"));
    let view = s.trainer.open_view().unwrap();
    assert_eq!(view.brief.code, "AB12CD");
    let rows = attendee_rows(view, &s.trainer.spectators);
    assert_eq!((rows[0].done, rows[0].total), (0, 3));
    assert_eq!(rows[0].at, "1. Two names");

    // Ada passes a step, Bob joins.
    s.apply(Action::Received(ServerMsg::Workshop {
        reference: None,
        workshop: workshop(
            "w1",
            vec![
                attendee("a1", "Ada", &[true, false, false], &[false; 3]),
                attendee("a2", "Bob", &[false; 3], &[false; 3]),
            ],
        ),
    }));
    let rows = attendee_rows(s.trainer.open_view().unwrap(), &s.trainer.spectators);
    let names: Vec<_> = rows.iter().map(|r| r.attendee.name.as_str()).collect();
    assert_eq!(names, ["Ada", "Bob"]);
    assert_eq!(rows[0].done, 1);
    assert_eq!(rows[0].at, "2. Rename alpha");

    // The workshop ends: the answer lists the live workshops (w1 no longer), and the dashboard
    // followed says it ended.
    sent(&mut s, 3, Origin::WorkshopEnd("w1".into()));
    s.apply(Action::Received(ServerMsg::Workshops {
        reference: Some(3),
        workshops: vec![workshop("w2", vec![])],
    }));
    assert!(s.pending.is_empty());
    assert!(s.trainer.open_view().unwrap().ended);
    let mut ended = workshop("w1", vec![]);
    ended.ended = true;
    s.apply(Action::Received(ServerMsg::Workshop {
        reference: None,
        workshop: ended,
    }));
    assert!(s.trainer.open_view().unwrap().ended);
    assert_eq!(s.trainer.workshops.len(), 2);
}

#[test]
fn opening_a_workshop_that_is_gone_closes_the_dashboard() {
    let mut s = dashboard();
    sent(&mut s, 3, Origin::WorkshopOpen("w9".into()));
    s.apply(error(Some(3), "unknown_workshop"));
    assert_eq!(s.trainer.open, None);
    assert_eq!(s.trainer.error.as_ref().unwrap().code, "unknown_workshop");
}

#[test]
fn a_watched_terminal_is_a_spectator_not_a_pane() {
    let mut s = dashboard();
    sent(
        &mut s,
        4,
        Origin::Spectate {
            workshop: "w1".into(),
            attendee: "a1".into(),
            handle: 1,
        },
    );
    s.apply(spectating(Some(4), 17));
    assert!(s.pending.is_empty());
    let spectator = s.trainer.spectators.get(17).unwrap();
    assert_eq!(spectator.title(), "Ada · alpha");
    assert_eq!(spectator.source, Some(1));
    // No pane, no card: nothing of the session's own, nothing to type into.
    assert!(s.panes.is_empty() && s.cards.is_empty());
    let rows = attendee_rows(s.trainer.open_view().unwrap(), &s.trainer.spectators);
    let watching: Vec<_> = rows[0]
        .watches
        .iter()
        .map(|w| (w.handle, w.watching))
        .collect();
    assert_eq!(watching, [(1, true), (4, false), (2, false)]);

    // Its process ends: shown on it.
    s.apply(Action::Received(ServerMsg::Exited {
        handle: 17,
        container: "alpha".into(),
        code: 0,
        signal: None,
        oom_killed: false,
    }));
    assert_eq!(
        s.trainer
            .spectators
            .get(17)
            .unwrap()
            .exit
            .as_ref()
            .unwrap()
            .code,
        0
    );
    assert_eq!(s.notice, None);

    s.apply(Action::CloseSpectator(17));
    assert!(s.trainer.spectators.get(17).is_none());
}

#[test]
fn spectated_handles_produce_no_input_resize_or_signal() {
    let mut s = dashboard();
    let mut guard = Guard::default();
    let msg = ServerMsg::Spectating {
        reference: None,
        handle: 17,
        workshop: "w1".into(),
        attendee: "a1".into(),
        name: "Ada".into(),
        container: "alpha".into(),
    };
    // The socket owner hears every message the state hears.
    guard.on_message(&msg);
    s.apply(Action::Received(msg));
    for spectator in &s.trainer.spectators.list {
        let mode = guard.mode(spectator.handle);
        assert_eq!(mode, TerminalMode::ReadOnly);
        assert!(!mode.sends_input() && !mode.sends_resize() && mode.acks());
        assert!(!guard.allows_input(spectator.handle));
        assert!(!guard.allows(&ClientMsg::Resize {
            reference: None,
            handle: spectator.handle,
            rows: 30,
            cols: 100,
        }));
        assert!(!guard.allows(&ClientMsg::Signal {
            reference: None,
            handle: spectator.handle,
            signal: "INT".into(),
        }));
        assert!(guard.allows(&ClientMsg::Ack {
            handle: spectator.handle,
            bytes: 512,
        }));
    }
    // Still read-only after it is closed: its handle is never the session's own.
    s.apply(Action::CloseSpectator(17));
    assert!(!guard.allows_input(17));
}

#[test]
fn a_reconnect_forgets_the_watched_terminals_but_keeps_the_dashboard() {
    let mut s = dashboard();
    s.apply(spectating(None, 17));
    s.apply(Action::Closed);
    s.apply(hello(None, None));
    assert!(s.trainer.spectators.list.is_empty());
    assert_eq!(s.trainer.open.as_deref(), Some("w1"));
    assert_eq!(s.trainer.token.as_deref(), Some("secret"));
    assert!(s.trainer.admitted);
}
