//! An attendee's side of a workshop: the join form's request (a code and a display name), its
//! refusal (an unknown code, a name taken), and, once joined, the workshop and the name, which
//! fix the lesson and name the attendee in the status bar.
//!
//! Plain Rust, unit-tested on the host. `AppState` holds one [`Attendance`] and feeds it
//! `joined` and the workshop a `hello` restores.

use isolab_shared::protocol::{ClientMsg, Joined, Ref};

use crate::state::Problem;

/// The join request for what the form holds, once both fields say something.
pub fn join_request(code: &str, name: &str, reference: Option<Ref>) -> Option<ClientMsg> {
    let (code, name) = (code.trim(), name.trim());
    (!code.is_empty() && !name.is_empty()).then(|| ClientMsg::Join {
        reference,
        code: code.to_string(),
        name: name.to_string(),
    })
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attendance {
    /// The workshop this session joined, and the name it joined with.
    pub joined: Option<Joined>,
    /// A `join` is in flight.
    pub joining: bool,
    /// The last refused `join` (`unknown_workshop`, `bad_name`).
    pub error: Option<Problem>,
}

impl Attendance {
    pub fn sent(&mut self) {
        self.joining = true;
        self.error = None;
    }

    pub fn joined(&mut self, joined: Joined) {
        self.joining = false;
        self.error = None;
        self.joined = Some(joined);
    }

    /// A `hello`: the session's workshop, if it joined one (a session without is a new one).
    pub fn restored(&mut self, joined: Option<Joined>) {
        self.joining = false;
        self.joined = joined;
    }

    pub fn failed(&mut self, problem: Problem) {
        self.joining = false;
        self.error = Some(problem);
    }

    pub fn lost(&mut self) {
        self.joining = false;
    }

    /// The lesson of the workshop joined: the only one this session may (re)start.
    pub fn fixed_lesson(&self) -> Option<&str> {
        self.joined.as_ref().map(|j| j.workshop.lesson.as_str())
    }

    /// The status bar's line: `Workshop: TITLE — you are NAME`.
    pub fn label(&self) -> Option<String> {
        self.joined
            .as_ref()
            .map(|j| format!("Workshop: {} — you are {}", j.workshop.title, j.name))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use isolab_shared::protocol::WorkshopBrief;

    use super::*;

    pub(crate) fn joined() -> Joined {
        Joined {
            workshop: WorkshopBrief {
                id: "w1".into(),
                code: "AB12CD".into(),
                title: "Namespaces 101".into(),
                lesson: "uts".into(),
            },
            name: "Ada".into(),
        }
    }

    #[test]
    fn a_join_needs_a_code_and_a_name_trimmed() {
        assert_eq!(join_request(" ", "Ada", None), None);
        assert_eq!(join_request("AB12CD", "  ", None), None);
        assert_eq!(
            join_request(" ab12cd ", " Ada ", Some(4)),
            Some(ClientMsg::Join {
                reference: Some(4),
                code: "ab12cd".into(),
                name: "Ada".into(),
            })
        );
    }

    #[test]
    fn joining_fixes_the_lesson_and_names_the_attendee() {
        let mut a = Attendance::default();
        assert_eq!((a.label(), a.fixed_lesson()), (None, None));
        a.sent();
        assert!(a.joining);
        a.joined(joined());
        assert!(!a.joining);
        assert_eq!(
            a.label().as_deref(),
            Some("Workshop: Namespaces 101 — you are Ada")
        );
        assert_eq!(a.fixed_lesson(), Some("uts"));
    }

    #[test]
    fn a_refusal_is_kept_until_the_next_try() {
        let mut a = Attendance::default();
        a.sent();
        a.failed(Problem {
            code: "bad_name".into(),
            message: "\"Ada\" is taken".into(),
            field: None,
        });
        assert!(!a.joining);
        assert_eq!(a.error.as_ref().unwrap().code, "bad_name");
        a.sent();
        assert_eq!(a.error, None);
        a.lost();
        assert!(!a.joining);
    }

    #[test]
    fn hello_restores_or_forgets_the_workshop() {
        let mut a = Attendance::default();
        a.restored(Some(joined()));
        assert_eq!(a.fixed_lesson(), Some("uts"));
        a.restored(None);
        assert_eq!(a.joined, None);
    }
}
