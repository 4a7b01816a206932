//! Lessons and workshops in the protocol.
//!
//! A lesson is a list of steps; each step's check re-runs on the server until it passes, and
//! `progress` tells the page (and a workshop's trainer) how far the learner is. A workshop is a
//! lesson run by a trainer for attendees who join with a code and a display name; the trainer's
//! page gets `workshop` messages (attendees, their containers, their progress) and may watch any
//! attendee's terminal read-only (`spectate`).

use serde::{Deserialize, Serialize};

/// A lesson in the list a server offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LessonSummary {
    /// The lesson's folder name: what `lesson_start` and `workshop_create` take.
    pub name: String,
    pub title: String,
    /// One sentence.
    pub summary: String,
    pub steps: u32,
}

/// A started lesson, as the learner's page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LessonInfo {
    pub name: String,
    pub title: String,
    /// The lesson's introduction, rendered from Markdown to HTML by the server.
    pub intro_html: String,
    pub steps: Vec<StepInfo>,
}

/// One step of a lesson.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepInfo {
    pub title: String,
    /// What to do, as HTML (from the step's Markdown).
    pub html: String,
    /// A hint, as HTML, for the page to show when asked.
    pub hint_html: String,
    /// What the check looks at, in words (`alpha.hostname == "gamma"`, or `script in alpha`).
    pub check: String,
}

/// How far a learner is in their lesson.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Per step: its check has passed.
    pub passed: Vec<bool>,
    /// Per step: the learner asked for the solution (`lesson_solve`) before it passed.
    pub solved: Vec<bool>,
    /// The step being checked now (the first that has not passed; `passed.len()` when done).
    pub current: u32,
    /// Why the current step's last check failed (its output, or the condition that did not
    /// hold), at most 1 KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<String>,
}

impl Progress {
    /// A lesson of `steps` steps, none passed.
    pub fn new(steps: usize) -> Progress {
        Progress {
            passed: vec![false; steps],
            solved: vec![false; steps],
            current: 0,
            last_check: None,
        }
    }

    /// How many steps have passed.
    pub fn done(&self) -> u32 {
        self.passed.iter().filter(|p| **p).count() as u32
    }

    /// Every step has passed.
    pub fn finished(&self) -> bool {
        !self.passed.is_empty() && self.passed.iter().all(|p| *p)
    }
}

/// A workshop, as an attendee knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkshopBrief {
    pub id: String,
    /// What attendees type to join (six letters and digits, any case).
    pub code: String,
    pub title: String,
    /// The lesson's name.
    pub lesson: String,
}

/// A workshop, as its trainer's dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkshopView {
    #[serde(flatten)]
    pub brief: WorkshopBrief,
    /// The path (with its query) an attendee opens to join: `/?join=CODE`.
    pub join_path: String,
    /// The lesson's step titles.
    pub steps: Vec<String>,
    pub attendees: Vec<AttendeeView>,
    /// The workshop has ended: every attendee's containers are removed.
    #[serde(default)]
    pub ended: bool,
}

/// One attendee, for the trainer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttendeeView {
    /// Unique within the workshop; what `spectate` takes.
    pub id: String,
    pub name: String,
    /// A browser is connected (false while a page reloads, or after it left for good).
    pub connected: bool,
    pub progress: Progress,
    pub containers: Vec<AttendeeContainer>,
}

/// One of an attendee's containers and its terminals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttendeeContainer {
    pub name: String,
    pub hostname: String,
    /// Its terminals (the attendee's handles): the main process's first.
    pub handles: Vec<u32>,
}
