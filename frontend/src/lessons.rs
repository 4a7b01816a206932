//! Lessons as the learner's page keeps them: the server's list (for the picker), the lesson
//! followed and its progress (which steps passed, which were shown by "Show me", the current
//! one and why its check fails), which hints are open, and the requests in flight.
//!
//! Plain Rust, unit-tested on the host. `AppState` holds one [`Lessons`] and feeds it
//! `lessons`, `lesson` and `progress`, and the lesson a `hello` restores; [`Lessons::steps`]
//! and [`segments`] turn it into what the lesson panel and the progress bars draw (the
//! trainer's dashboard draws its attendees' progress with the same [`segments`]).

use isolab_shared::protocol::{LessonInfo, LessonState, LessonSummary, Progress, StepInfo};

use crate::state::Problem;

/// Where a step is, as drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    /// Its check passed.
    Passed,
    /// Its check passed after the learner asked for the solution ("Show me").
    Solved,
    /// The step being checked now.
    Current,
    /// Not reached yet.
    Pending,
}

impl StepStatus {
    /// Stable, for CSS and tests (`class="step passed"`).
    pub fn id(self) -> &'static str {
        match self {
            StepStatus::Passed => "passed",
            StepStatus::Solved => "solved",
            StepStatus::Current => "current",
            StepStatus::Pending => "pending",
        }
    }

    /// Passed, by the learner or by "Show me".
    pub fn passed(self) -> bool {
        matches!(self, StepStatus::Passed | StepStatus::Solved)
    }
}

/// Step `index` of a lesson whose progress is `progress`.
pub fn step_status(progress: &Progress, index: usize) -> StepStatus {
    let passed = progress.passed.get(index).copied().unwrap_or(false);
    let solved = progress.solved.get(index).copied().unwrap_or(false);
    match (passed, solved) {
        (true, true) => StepStatus::Solved,
        (true, false) => StepStatus::Passed,
        _ if index == progress.current as usize => StepStatus::Current,
        _ => StepStatus::Pending,
    }
}

/// A progress bar: one segment per step of `total`.
pub fn segments(progress: &Progress, total: usize) -> Vec<StepStatus> {
    (0..total).map(|i| step_status(progress, i)).collect()
}

/// The lesson followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveLesson {
    pub info: LessonInfo,
    pub progress: Progress,
    /// Per step: its hint is shown.
    pub hints: Vec<bool>,
    /// Per step: the learner opened (`Some(true)`) or closed it; otherwise only the current
    /// step is open.
    pub opened: Vec<Option<bool>>,
}

impl ActiveLesson {
    fn new(state: LessonState) -> ActiveLesson {
        let steps = state.lesson.steps.len();
        ActiveLesson {
            info: state.lesson,
            progress: state.progress,
            hints: vec![false; steps],
            opened: vec![None; steps],
        }
    }

    pub fn total(&self) -> usize {
        self.info.steps.len()
    }

    /// How many steps passed.
    pub fn done(&self) -> u32 {
        self.progress.done()
    }

    pub fn finished(&self) -> bool {
        self.progress.finished()
    }
}

/// One step as the panel draws it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRow<'a> {
    pub index: u32,
    pub info: &'a StepInfo,
    pub status: StepStatus,
    /// Its text, check and buttons are shown (the current step's, unless the learner closed it).
    pub open: bool,
    pub hint_open: bool,
    /// Why the current step's check fails, under the current step only.
    pub last_check: Option<&'a str>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lessons {
    /// The server's lessons, in its order.
    pub list: Vec<LessonSummary>,
    /// The picker's choice, once the learner picked one.
    pub picked: Option<String>,
    pub active: Option<ActiveLesson>,
    /// A `lesson_start` is in flight.
    pub starting: bool,
    /// The step whose "Show me" is in flight.
    pub solving: Option<u32>,
    /// The last refused `lesson_start` or `lesson_solve`.
    pub error: Option<Problem>,
}

impl Lessons {
    /// The server's list.
    pub fn listed(&mut self, list: Vec<LessonSummary>) {
        self.list = list;
        if let Some(picked) = &self.picked {
            if !self.list.iter().any(|l| &l.name == picked) {
                self.picked = None;
            }
        }
    }

    pub fn pick(&mut self, name: String) {
        self.picked = Some(name);
    }

    /// The lesson "Start lesson" starts: the one picked, else the one followed, else the first.
    pub fn chosen(&self) -> Option<&str> {
        self.picked
            .as_deref()
            .or_else(|| self.active.as_ref().map(|a| a.info.name.as_str()))
            .or_else(|| self.list.first().map(|l| l.name.as_str()))
    }

    pub fn sent_start(&mut self) {
        self.starting = true;
        self.error = None;
    }

    /// A `lesson` arrived: it is the one followed now, from its first step.
    pub fn started(&mut self, state: LessonState) {
        self.starting = false;
        self.solving = None;
        self.error = None;
        self.active = Some(ActiveLesson::new(state));
    }

    /// A `hello`: the session's lesson, if it follows one. The same lesson keeps the hints and
    /// steps the learner opened (a reconnect, not a new start).
    pub fn restored(&mut self, state: Option<LessonState>) {
        self.starting = false;
        self.solving = None;
        match state {
            Some(state) => match &mut self.active {
                Some(active) if active.info == state.lesson => active.progress = state.progress,
                _ => self.active = Some(ActiveLesson::new(state)),
            },
            None => self.active = None,
        }
    }

    /// A `progress`: a check passed, or fails for another reason. A "Show me" runs until its
    /// step passes (the server marks the step `solved` as the solution starts).
    pub fn progressed(&mut self, progress: Progress) {
        let Some(active) = &mut self.active else {
            return;
        };
        if let Some(step) = self.solving {
            if progress.passed.get(step as usize).copied().unwrap_or(false) {
                self.solving = None;
            }
        }
        active.progress = progress;
    }

    pub fn sent_solve(&mut self, step: u32) {
        self.solving = Some(step);
        self.error = None;
    }

    /// A `lesson_start` or `lesson_solve` was refused.
    pub fn failed(&mut self, problem: Problem) {
        self.starting = false;
        self.solving = None;
        self.error = Some(problem);
    }

    /// The connection dropped: nothing is in flight any more.
    pub fn lost(&mut self) {
        self.starting = false;
        self.solving = None;
    }

    pub fn toggle_hint(&mut self, step: u32) {
        if let Some(hint) = self
            .active
            .as_mut()
            .and_then(|a| a.hints.get_mut(step as usize))
        {
            *hint = !*hint;
        }
    }

    /// Opens a closed step, closes an open one.
    pub fn toggle_step(&mut self, step: u32) {
        let Some(active) = &mut self.active else {
            return;
        };
        let open = step_open(active, step as usize);
        if let Some(slot) = active.opened.get_mut(step as usize) {
            *slot = Some(!open);
        }
    }

    /// The steps of the lesson followed, as drawn.
    pub fn steps(&self) -> Vec<StepRow<'_>> {
        let Some(active) = &self.active else {
            return Vec::new();
        };
        active
            .info
            .steps
            .iter()
            .enumerate()
            .map(|(i, info)| {
                let status = step_status(&active.progress, i);
                StepRow {
                    index: i as u32,
                    info,
                    status,
                    open: step_open(active, i),
                    hint_open: active.hints.get(i).copied().unwrap_or(false),
                    last_check: (status == StepStatus::Current)
                        .then_some(active.progress.last_check.as_deref())
                        .flatten(),
                }
            })
            .collect()
    }
}

/// A step is open when the learner opened it, or, left alone, when it is the current one.
fn step_open(active: &ActiveLesson, i: usize) -> bool {
    active
        .opened
        .get(i)
        .copied()
        .flatten()
        .unwrap_or(step_status(&active.progress, i) == StepStatus::Current)
}

#[cfg(test)]
pub(crate) mod tests;
