use isolab_shared::protocol::{LessonInfo, LessonState, LessonSummary, Progress, StepInfo};

use super::*;

pub(crate) fn step(title: &str) -> StepInfo {
    StepInfo {
        title: title.to_string(),
        html: format!("<p>{title}</p>"),
        hint_html: format!("<p>hint for {title}</p>"),
        check: format!("{title}.hostname == \"gamma\""),
    }
}

/// A lesson of three steps, none passed.
pub(crate) fn uts() -> LessonState {
    LessonState {
        lesson: LessonInfo {
            name: "uts".into(),
            title: "UTS: a hostname of one's own".into(),
            intro_html: "<p>Two containers.</p>".into(),
            steps: vec![step("one"), step("two"), step("three")],
        },
        progress: Progress::new(3),
    }
}

fn summary(name: &str) -> LessonSummary {
    LessonSummary {
        name: name.into(),
        title: name.to_uppercase(),
        summary: String::new(),
        steps: 2,
    }
}

fn progress(passed: &[bool], solved: &[bool], last_check: Option<&str>) -> Progress {
    Progress {
        passed: passed.to_vec(),
        solved: solved.to_vec(),
        current: passed.iter().position(|p| !p).unwrap_or(passed.len()) as u32,
        last_check: last_check.map(str::to_string),
    }
}

fn statuses(l: &Lessons) -> Vec<&'static str> {
    l.steps().iter().map(|s| s.status.id()).collect()
}

#[test]
fn the_picker_starts_with_the_first_lesson_and_keeps_a_pick_still_listed() {
    let mut l = Lessons::default();
    assert_eq!(l.chosen(), None);
    l.listed(vec![summary("pid"), summary("uts")]);
    assert_eq!(l.chosen(), Some("pid"));
    l.pick("uts".into());
    assert_eq!(l.chosen(), Some("uts"));
    l.listed(vec![summary("pid"), summary("uts"), summary("net")]);
    assert_eq!(l.chosen(), Some("uts"));
    l.listed(vec![summary("net")]);
    assert_eq!(l.chosen(), Some("net"));
}

#[test]
fn a_started_lesson_opens_its_first_step() {
    let mut l = Lessons::default();
    l.sent_start();
    assert!(l.starting);
    l.started(uts());
    assert!(!l.starting);
    let active = l.active.as_ref().unwrap();
    assert_eq!((active.done(), active.total()), (0, 3));
    assert_eq!(statuses(&l), ["current", "pending", "pending"]);
    let open: Vec<bool> = l.steps().iter().map(|s| s.open).collect();
    assert_eq!(open, [true, false, false]);
    // The lesson followed is what "Start lesson" restarts when nothing is picked.
    assert_eq!(l.chosen(), Some("uts"));
}

#[test]
fn progress_marks_steps_passed_and_solved_and_moves_the_current_one() {
    let mut l = Lessons::default();
    l.started(uts());
    l.progressed(progress(
        &[true, false, false],
        &[false, false, false],
        Some("alpha.hostname is \"alpha\", not \"gamma\""),
    ));
    assert_eq!(statuses(&l), ["passed", "current", "pending"]);
    let steps = l.steps();
    assert_eq!(steps[0].last_check, None);
    assert_eq!(
        steps[1].last_check,
        Some("alpha.hostname is \"alpha\", not \"gamma\"")
    );
    assert!(!steps[0].open && steps[1].open);

    l.sent_solve(1);
    assert_eq!(l.solving, Some(1));
    // The server marks the step solved as the solution starts: it runs until the step passes.
    l.progressed(progress(&[true, false, false], &[false, true, false], None));
    assert_eq!(l.solving, Some(1));
    assert_eq!(statuses(&l)[1], "current");
    l.progressed(progress(&[true, true, false], &[false, true, false], None));
    assert_eq!(l.solving, None);
    assert_eq!(statuses(&l), ["passed", "solved", "current"]);
    assert!(l.steps()[1].status.passed());
    assert_eq!(l.active.as_ref().unwrap().done(), 2);

    l.progressed(progress(&[true, true, true], &[false, true, false], None));
    assert!(l.active.as_ref().unwrap().finished());
    assert_eq!(statuses(&l), ["passed", "solved", "passed"]);
    assert!(l.steps().iter().all(|s| !s.open && s.last_check.is_none()));
}

#[test]
fn progress_without_a_lesson_is_ignored() {
    let mut l = Lessons::default();
    l.progressed(Progress::new(2));
    assert_eq!(l.active, None);
}

#[test]
fn hints_and_steps_toggle_and_a_new_start_resets_them() {
    let mut l = Lessons::default();
    l.started(uts());
    l.toggle_hint(0);
    l.toggle_step(2);
    l.toggle_step(0);
    let steps = l.steps();
    assert!(steps[0].hint_open && !steps[1].hint_open);
    assert_eq!(
        steps.iter().map(|s| s.open).collect::<Vec<_>>(),
        [false, false, true]
    );
    // Out of range: nothing happens.
    l.toggle_hint(9);
    l.toggle_step(9);
    l.started(uts());
    let steps = l.steps();
    assert!(!steps[0].hint_open && steps[0].open && !steps[2].open);
}

#[test]
fn hello_restores_the_lesson_keeping_what_the_learner_opened() {
    let mut l = Lessons::default();
    l.started(uts());
    l.toggle_hint(1);
    l.sent_solve(0);
    let mut state = uts();
    state.progress = progress(&[true, false, false], &[true, false, false], None);
    l.restored(Some(state.clone()));
    assert_eq!(l.solving, None);
    assert!(l.steps()[1].hint_open);
    assert_eq!(statuses(&l), ["solved", "current", "pending"]);

    // A fresh page gets it too.
    let mut fresh = Lessons::default();
    fresh.restored(Some(state));
    assert_eq!(statuses(&fresh), ["solved", "current", "pending"]);

    // A session without a lesson (a new one) has none.
    l.restored(None);
    assert_eq!(l.active, None);
    assert!(l.steps().is_empty());
}

#[test]
fn a_refused_request_ends_what_was_in_flight() {
    let mut l = Lessons::default();
    l.sent_start();
    let problem = Problem {
        code: "unknown_lesson".into(),
        message: "no lesson \"nope\"".into(),
        field: None,
    };
    l.failed(problem.clone());
    assert!(!l.starting);
    assert_eq!(l.error, Some(problem));
    l.sent_solve(2);
    assert_eq!(l.error, None);
    l.lost();
    assert_eq!(l.solving, None);
}

#[test]
fn segments_follow_the_steps() {
    let p = progress(
        &[true, true, false, false],
        &[false, true, false, false],
        None,
    );
    assert_eq!(
        segments(&p, 4),
        [
            StepStatus::Passed,
            StepStatus::Solved,
            StepStatus::Current,
            StepStatus::Pending
        ]
    );
    // A progress shorter than the lesson (not sent yet): the rest is pending or current.
    assert_eq!(
        segments(&Progress::default(), 2),
        [StepStatus::Current, StepStatus::Pending]
    );
}
