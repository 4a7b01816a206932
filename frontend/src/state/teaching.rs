//! Lessons and workshops in the state machine: the requests going out
//! (`Origin::LessonStart`, `Join`, `Admin`, …), the server's `lessons`, `lesson`, `progress`,
//! `joined`, `workshops`, `workshop` and `spectating`, and where a refusal of each is shown.

use isolab_shared::protocol::{codes, Ref, ServerMsg};

use super::{AppState, Origin, Problem};
use crate::spectate::Spectator;

impl AppState {
    /// A lesson or workshop request went out.
    pub(super) fn sent_lesson_or_workshop(&mut self, origin: &Origin) {
        match origin {
            Origin::LessonStart(_) => self.lessons.sent_start(),
            Origin::LessonSolve(step) => self.lessons.sent_solve(*step),
            Origin::Join => self.attendance.sent(),
            Origin::Admin(token) => self.trainer.sent_admin(token.clone()),
            Origin::WorkshopCreate => self.trainer.sent_create(),
            Origin::WorkshopOpen(id) => self.trainer.sent_open(id.clone()),
            _ => {}
        }
    }

    /// A lesson or workshop message.
    pub(super) fn lesson_or_workshop(&mut self, msg: ServerMsg) {
        match msg {
            ServerMsg::Lessons { reference, lessons } => {
                self.answered(reference);
                self.lessons.listed(lessons);
            }
            ServerMsg::Lesson { reference, state } => {
                self.answered(reference);
                self.lessons.started(state);
            }
            ServerMsg::Progress { progress } => {
                // A "Show me" is answered by the progress that shows its step passed.
                let passed = |step: &u32| {
                    progress
                        .passed
                        .get(*step as usize)
                        .copied()
                        .unwrap_or(false)
                };
                self.pending
                    .retain(|(_, origin)| !matches!(origin, Origin::LessonSolve(s) if passed(s)));
                self.lessons.progressed(progress);
            }
            ServerMsg::Joined { reference, joined } => {
                self.answered(reference);
                self.attendance.joined(joined);
            }
            ServerMsg::Workshops {
                reference,
                workshops,
            } => {
                self.answered(reference);
                self.trainer.listed(workshops);
            }
            ServerMsg::Workshop {
                reference,
                workshop,
            } => {
                let opens = matches!(
                    self.answered(reference),
                    Some(Origin::WorkshopCreate | Origin::WorkshopOpen(_))
                );
                self.trainer.workshop(workshop, opens);
            }
            ServerMsg::Spectating {
                reference,
                handle,
                workshop,
                attendee,
                name,
                container,
            } => self.spectating(
                reference,
                Spectator {
                    handle,
                    workshop,
                    attendee,
                    name,
                    container,
                    source: None,
                    exit: None,
                },
            ),
            _ => {}
        }
    }

    /// Whether an error with `reference` ends a "Show me" (then no longer pending).
    pub(super) fn solve_refused(&mut self, reference: Option<Ref>) -> bool {
        let Some(at) = self.pending.iter().position(|(r, origin)| {
            Some(*r) == reference && matches!(origin, Origin::LessonSolve(_))
        }) else {
            return false;
        };
        self.pending.remove(at);
        true
    }

    fn spectating(&mut self, reference: Option<Ref>, mut spectator: Spectator) {
        if let Some(Origin::Spectate { handle, .. }) = self.answered(reference) {
            spectator.source = Some(handle);
        }
        self.trainer.spectators.add(spectator);
    }

    /// A lesson or workshop request was refused: shown next to what sent it.
    pub(super) fn refused(&mut self, origin: Origin, problem: Problem) {
        match origin {
            // A server without lessons: the page simply offers none.
            Origin::Lessons if problem.code == codes::UNKNOWN_TYPE => {}
            Origin::Lessons => {
                self.notice = Some(format!(
                    "the lessons could not be listed: {}: {}",
                    problem.code, problem.message
                ))
            }
            Origin::LessonStart(_) | Origin::LessonSolve(_) => self.lessons.failed(problem),
            Origin::Join => self.attendance.failed(problem),
            Origin::Admin(_) => self.trainer.refused_admin(problem),
            Origin::WorkshopCreate => self.trainer.refused_create(problem),
            Origin::WorkshopOpen(id) | Origin::WorkshopEnd(id) => {
                self.trainer.refused(problem, Some(&id))
            }
            Origin::Spectate { .. } | Origin::Unspectate(_) => self.trainer.refused(problem, None),
            _ => self.notice = Some(format!("{}: {}", problem.code, problem.message)),
        }
    }
}
