//! A learner's lesson and an attendee's workshop, through the state machine.

use isolab_shared::protocol::{
    ContainerInfo, Joined, LessonState, LessonSummary, Limits, Progress, ServerMsg,
};

use super::*;
use crate::join::tests::joined;
use crate::lessons::tests::uts;
use crate::lessons::StepStatus;

pub(super) fn hello(lesson: Option<LessonState>, workshop: Option<Joined>) -> Action {
    hello_with(vec![], lesson, workshop)
}

fn hello_with(
    containers: Vec<ContainerInfo>,
    lesson: Option<LessonState>,
    workshop: Option<Joined>,
) -> Action {
    Action::Received(ServerMsg::Hello {
        version: 5,
        limits: Limits::default(),
        containers,
        lesson,
        workshop,
    })
}

fn alpha() -> ContainerInfo {
    ContainerInfo {
        id: "a1".into(),
        name: "alpha".into(),
        image: "busybox".into(),
        hostname: "alpha".into(),
        cmd: vec!["sh".into()],
        handles: vec![1],
        address: None,
        ports: Vec::new(),
        runtime: String::new(),
    }
}

pub(super) fn sent(s: &mut AppState, reference: u64, origin: Origin) {
    s.apply(Action::Sent { reference, origin });
}

pub(super) fn error(reference: Option<u64>, code: &str) -> Action {
    Action::Received(ServerMsg::error(
        reference,
        code,
        format!("{code} happened"),
    ))
}

fn progress(passed: &[bool], solved: &[bool], last_check: Option<&str>) -> Action {
    Action::Received(ServerMsg::Progress {
        progress: Progress {
            passed: passed.to_vec(),
            solved: solved.to_vec(),
            current: passed.iter().position(|p| !p).unwrap_or(passed.len()) as u32,
            last_check: last_check.map(str::to_string),
        },
    })
}

fn statuses(s: &AppState) -> Vec<StepStatus> {
    s.lessons.steps().iter().map(|r| r.status).collect()
}

fn open() -> AppState {
    let mut s = AppState::default();
    s.apply(hello(None, None));
    s
}

#[test]
fn the_lessons_list_answers_its_request() {
    let mut s = open();
    sent(&mut s, 1, Origin::Lessons);
    s.apply(Action::Received(ServerMsg::Lessons {
        reference: Some(1),
        lessons: vec![LessonSummary {
            name: "uts".into(),
            title: "UTS".into(),
            summary: "Two hostnames.".into(),
            steps: 3,
        }],
    }));
    assert!(s.pending.is_empty());
    assert_eq!(s.lessons.chosen(), Some("uts"));
    s.apply(Action::PickLesson("pid".into()));
    assert_eq!(s.lessons.chosen(), Some("pid"));
}

#[test]
fn a_started_lesson_shows_its_steps_and_progress_moves_them() {
    let mut s = open();
    sent(&mut s, 2, Origin::LessonStart("uts".into()));
    assert!(s.lessons.starting);
    let state = uts();
    s.apply(Action::Received(ServerMsg::Lesson {
        reference: Some(2),
        state,
    }));
    assert!(!s.lessons.starting);
    assert!(s.pending.is_empty());
    assert_eq!(
        statuses(&s),
        [
            StepStatus::Current,
            StepStatus::Pending,
            StepStatus::Pending
        ]
    );

    s.apply(progress(
        &[false, false, false],
        &[false, false, false],
        Some("alpha.hostname is \"alpha\""),
    ));
    assert_eq!(
        s.lessons.steps()[0].last_check,
        Some("alpha.hostname is \"alpha\"")
    );
    s.apply(progress(
        &[true, false, false],
        &[false, false, false],
        None,
    ));
    assert_eq!(statuses(&s)[..2], [StepStatus::Passed, StepStatus::Current]);

    // "Show me" on step 1: in flight until a progress shows it passed. What its actions
    // bring under its ref (a container created, a `state`) does not answer it.
    sent(&mut s, 3, Origin::LessonSolve(1));
    assert_eq!(s.lessons.solving, Some(1));
    s.apply(progress(&[true, false, false], &[false, true, false], None));
    s.apply(Action::Received(ServerMsg::Created {
        reference: Some(3),
        container: alpha(),
        handle: 1,
    }));
    s.apply(Action::Received(ServerMsg::State {
        reference: Some(3),
        containers: vec![alpha()],
    }));
    assert_eq!(s.lessons.solving, Some(1));
    assert_eq!(s.pending.len(), 1);
    assert_eq!(s.panes.len(), 1);
    s.apply(progress(&[true, true, false], &[false, true, false], None));
    assert_eq!(s.lessons.solving, None);
    assert!(s.pending.is_empty());
    assert_eq!(statuses(&s)[1], StepStatus::Solved);

    s.apply(Action::ToggleHint(2));
    s.apply(Action::ToggleStep(0));
    let steps = s.lessons.steps();
    assert!(steps[2].hint_open && steps[2].open && steps[0].open);
}

#[test]
fn a_refused_lesson_request_is_shown_on_the_panel_not_as_a_notice() {
    let mut s = open();
    sent(&mut s, 4, Origin::LessonStart("nope".into()));
    s.apply(error(Some(4), "unknown_lesson"));
    assert!(!s.lessons.starting);
    assert_eq!(s.lessons.error.as_ref().unwrap().code, "unknown_lesson");
    assert_eq!(s.notice, None);

    sent(&mut s, 5, Origin::LessonSolve(0));
    s.apply(error(Some(5), "no_lesson"));
    assert_eq!(s.lessons.solving, None);
    assert_eq!(s.lessons.error.as_ref().unwrap().code, "no_lesson");
    assert!(s.pending.is_empty());

    // A solution that fails part way (its script exits non-zero).
    sent(&mut s, 6, Origin::LessonSolve(0));
    s.apply(error(Some(6), "solve_failed"));
    assert_eq!(s.lessons.error.as_ref().unwrap().code, "solve_failed");
    assert_eq!(s.notice, None);
    assert!(s.pending.is_empty());
}

#[test]
fn hello_restores_the_lesson_and_the_workshop() {
    let mut s = AppState::default();
    let mut state = uts();
    state.progress.passed[0] = true;
    state.progress.current = 1;
    s.apply(hello_with(vec![alpha()], Some(state), Some(joined())));
    assert_eq!(s.lessons.active.as_ref().unwrap().done(), 1);
    assert_eq!(statuses(&s)[1], StepStatus::Current);
    assert_eq!(s.attendance.fixed_lesson(), Some("uts"));
    assert_eq!(
        s.attendance.label().as_deref(),
        Some("Workshop: Namespaces 101 — you are Ada")
    );
    assert_eq!(s.panes.len(), 1);

    // A new session (the old one ended): neither.
    s.apply(hello(None, None));
    assert_eq!(s.lessons.active, None);
    assert_eq!(s.attendance.joined, None);
}

#[test]
fn joining_answers_the_form_or_shows_why_not() {
    let mut s = AppState::new(
        Route::Join {
            code: "AB12CD".into(),
        },
        Default::default(),
    );
    s.apply(hello(None, None));
    sent(&mut s, 1, Origin::Join);
    assert!(s.attendance.joining);
    s.apply(error(Some(1), "unknown_workshop"));
    assert!(!s.attendance.joining);
    assert_eq!(
        s.attendance.error.as_ref().unwrap().code,
        "unknown_workshop"
    );
    assert_eq!(s.notice, None);

    sent(&mut s, 2, Origin::Join);
    s.apply(error(Some(2), "bad_name"));
    assert_eq!(s.attendance.error.as_ref().unwrap().code, "bad_name");

    sent(&mut s, 3, Origin::Join);
    assert_eq!(s.attendance.error, None);
    s.apply(Action::Received(ServerMsg::Joined {
        reference: Some(3),
        joined: joined(),
    }));
    assert!(s.pending.is_empty());
    assert_eq!(s.attendance.fixed_lesson(), Some("uts"));
    // The lesson follows, without a ref.
    s.apply(Action::Received(ServerMsg::Lesson {
        reference: None,
        state: uts(),
    }));
    assert_eq!(s.lessons.active.as_ref().unwrap().info.name, "uts");
}

#[test]
fn a_session_ended_error_is_kept_across_the_reconnection() {
    let mut s = AppState::default();
    s.apply(hello_with(vec![alpha()], Some(uts()), Some(joined())));
    s.apply(error(None, "session_ended"));
    assert_eq!(s.ended.as_deref(), Some("session_ended happened"));
    assert_eq!(s.notice, None);
    s.apply(Action::Closed);
    s.apply(hello(None, None));
    // Said once, prominently: not also as "the server removed this session's containers".
    assert_eq!(s.ended.as_deref(), Some("session_ended happened"));
    assert_eq!(s.notice, None);
    assert_eq!(s.attendance.joined, None);
    assert_eq!(s.lessons.active, None);
    s.apply(Action::DismissEnded);
    assert_eq!(s.ended, None);
}

#[test]
fn a_lost_connection_ends_what_was_in_flight() {
    let mut s = open();
    sent(&mut s, 1, Origin::LessonStart("uts".into()));
    sent(&mut s, 2, Origin::Join);
    s.apply(Action::Closed);
    assert!(!s.lessons.starting && !s.attendance.joining);
    assert!(s.pending.is_empty());
}

#[test]
fn a_server_without_lessons_offers_none_quietly() {
    let mut s = open();
    sent(&mut s, 1, Origin::Lessons);
    s.apply(error(Some(1), "unknown_type"));
    assert_eq!(s.notice, None);
    assert!(s.lessons.list.is_empty());
    sent(&mut s, 2, Origin::Lessons);
    s.apply(error(Some(2), "runtime"));
    assert!(s.notice.as_deref().unwrap().contains("lessons"));
}
