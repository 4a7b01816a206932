use isolab_shared::protocol::codes::{FORBIDDEN, UNKNOWN_WORKSHOP};
use isolab_shared::protocol::{AttendeeContainer, AttendeeView, Progress, WorkshopBrief};

use super::*;
use crate::spectate::Spectator;

pub(crate) fn attendee(id: &str, name: &str, passed: &[bool], solved: &[bool]) -> AttendeeView {
    AttendeeView {
        id: id.into(),
        name: name.into(),
        connected: true,
        progress: Progress {
            passed: passed.to_vec(),
            solved: solved.to_vec(),
            current: passed.iter().position(|p| !p).unwrap_or(passed.len()) as u32,
            last_check: None,
        },
        containers: vec![
            AttendeeContainer {
                name: "alpha".into(),
                hostname: "alpha".into(),
                handles: vec![1, 4],
            },
            AttendeeContainer {
                name: "beta".into(),
                hostname: "beta".into(),
                handles: vec![2],
            },
        ],
    }
}

/// Workshop `id` of the `uts` lesson (three steps) with `attendees`.
pub(crate) fn workshop(id: &str, attendees: Vec<AttendeeView>) -> WorkshopView {
    WorkshopView {
        brief: WorkshopBrief {
            id: id.into(),
            code: "AB12CD".into(),
            title: "Namespaces 101".into(),
            lesson: "uts".into(),
        },
        join_path: "/?join=AB12CD".into(),
        steps: vec!["Two names".into(), "Rename alpha".into(), "Look".into()],
        attendees,
        ended: false,
    }
}

fn problem(code: &str) -> Problem {
    Problem {
        code: code.into(),
        message: format!("{code} happened"),
        field: None,
    }
}

#[test]
fn a_token_is_kept_until_refused() {
    let mut t = Trainer::new(Some("secret".into()), Some(String::new()));
    assert_eq!(t.token.as_deref(), Some("secret"));
    assert_eq!(t.open, None);
    t.sent_admin("secret".into());
    assert!(t.checking);
    t.listed(vec![workshop("w1", vec![])]);
    assert!(t.admitted && !t.checking);
    assert_eq!(t.workshops.len(), 1);

    t.sent_admin("wrong".into());
    t.refused_admin(problem(FORBIDDEN));
    assert!(!t.admitted && !t.checking);
    assert_eq!(t.token, None);
    assert_eq!(t.admin_error.as_ref().unwrap().code, FORBIDDEN);

    // Another refusal (the server's own trouble) keeps the token for the next hello.
    t.sent_admin("secret".into());
    t.refused_admin(problem("bad_message"));
    assert_eq!(t.token.as_deref(), Some("secret"));
}

#[test]
fn a_created_or_opened_workshop_becomes_the_dashboard() {
    let mut t = Trainer::new(None, None);
    t.listed(vec![workshop("w1", vec![])]);
    t.sent_create();
    assert!(t.creating);
    t.workshop(workshop("w2", vec![]), true);
    assert!(!t.creating);
    assert_eq!(t.open.as_deref(), Some("w2"));
    assert_eq!(t.workshops.len(), 2);

    // An update of another workshop changes the list, not the dashboard.
    t.workshop(workshop("w1", vec![attendee("a1", "Ada", &[], &[])]), false);
    assert_eq!(t.open_view().unwrap().brief.id, "w2");
    assert_eq!(t.workshops[0].attendees.len(), 1);

    // Opening one the list has shows it at once.
    t.sent_open("w1".into());
    assert_eq!(t.open_view().unwrap().attendees.len(), 1);
}

#[test]
fn a_workshop_that_is_gone_is_closed() {
    let mut t = Trainer::new(Some("s".into()), Some("w9".into()));
    assert_eq!(t.open.as_deref(), Some("w9"));
    assert_eq!(t.open_view(), None);
    t.refused(problem("forbidden"), Some("w9"));
    assert_eq!(t.open.as_deref(), Some("w9"));
    t.refused(problem(UNKNOWN_WORKSHOP), Some("w9"));
    assert_eq!(t.open, None);
    assert_eq!(t.error.as_ref().unwrap().code, UNKNOWN_WORKSHOP);

    let mut t = Trainer::new(None, None);
    t.sent_create();
    t.refused_create(problem("unknown_lesson"));
    assert!(!t.creating);
    assert_eq!(t.create_error.as_ref().unwrap().code, "unknown_lesson");
}

#[test]
fn the_join_link_is_the_origin_and_the_path() {
    let view = workshop("w1", vec![]);
    assert_eq!(
        join_link("http://10.0.0.5:8080", &view),
        "http://10.0.0.5:8080/?join=AB12CD"
    );
    assert_eq!(
        join_link("http://10.0.0.5:8080/", &view),
        "http://10.0.0.5:8080/?join=AB12CD"
    );
}

#[test]
fn attendee_rows_show_progress_the_current_step_and_a_watch_per_terminal() {
    let view = workshop(
        "w1",
        vec![
            attendee("a1", "Ada", &[true, false, false], &[false, false, false]),
            attendee("a2", "Bob", &[true, true, true], &[false, true, false]),
            attendee("a3", "Cy", &[], &[]),
        ],
    );
    let mut spectators = Spectators::default();
    spectators.add(Spectator {
        handle: 9,
        workshop: "w1".into(),
        attendee: "a1".into(),
        name: "Ada".into(),
        container: "alpha".into(),
        source: Some(4),
        exit: None,
    });
    let rows = attendee_rows(&view, &spectators);
    assert_eq!(rows.len(), 3);

    let ada = &rows[0];
    assert_eq!((ada.done, ada.total), (1, 3));
    assert_eq!(ada.at, "2. Rename alpha");
    assert_eq!(
        ada.segments,
        [StepStatus::Passed, StepStatus::Current, StepStatus::Pending]
    );
    let labels: Vec<_> = ada.watches.iter().map(|w| w.label.as_str()).collect();
    assert_eq!(labels, ["alpha", "alpha · shell 2", "beta"]);
    let handles: Vec<_> = ada.watches.iter().map(|w| w.handle).collect();
    assert_eq!(handles, [1, 4, 2]);
    let watching: Vec<_> = ada.watches.iter().map(|w| w.watching).collect();
    assert_eq!(watching, [false, true, false]);

    let bob = &rows[1];
    assert_eq!((bob.done, bob.at.as_str()), (3, "finished"));
    assert_eq!(bob.segments[1], StepStatus::Solved);
    assert!(bob.watches.iter().all(|w| !w.watching));

    // No progress sent yet: at the first step.
    assert_eq!(rows[2].at, "1. Two names");
    assert_eq!(rows[2].done, 0);
}

#[test]
fn a_reconnect_drops_what_was_watched_and_in_flight() {
    let mut t = Trainer::new(Some("s".into()), None);
    t.sent_admin("s".into());
    t.sent_create();
    t.spectators.add(Spectator {
        handle: 3,
        workshop: "w1".into(),
        attendee: "a1".into(),
        name: "Ada".into(),
        container: "alpha".into(),
        source: Some(1),
        exit: None,
    });
    t.reconnected();
    assert!(!t.checking && !t.creating);
    assert!(t.spectators.list.is_empty());
    assert_eq!(t.token.as_deref(), Some("s"));
}

#[test]
fn the_open_workshop_gone_from_the_list_has_ended() {
    let mut t = Trainer::new(Some("s".into()), None);
    t.listed(vec![workshop("w1", vec![]), workshop("w2", vec![])]);
    t.sent_open("w1".into());
    t.listed(vec![workshop("w2", vec![])]);
    let open = t.open_view().unwrap();
    assert!(open.ended);
    assert_eq!(t.workshops.len(), 2);
    assert!(!t.workshops[0].ended);

    // Not open: simply no longer listed.
    let mut t = Trainer::new(None, None);
    t.listed(vec![workshop("w1", vec![])]);
    t.listed(vec![]);
    assert!(t.workshops.is_empty());
}
