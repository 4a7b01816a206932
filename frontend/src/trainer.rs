//! The trainer's dashboard as the page keeps it: the admin token (re-sent after every
//! `hello`, so a reload or a reconnect needs nothing typed), the server's workshops, the one
//! whose dashboard is open (remembered across reloads too), the requests in flight and their
//! refusals, and the attendees' terminals watched ([`Spectators`]).
//!
//! Plain Rust, unit-tested on the host. `AppState` holds one [`Trainer`] and feeds it
//! `workshops`, `workshop` and `spectating`; [`attendee_rows`] and [`join_link`] are what the
//! dashboard draws.

use isolab_shared::protocol::codes::{FORBIDDEN, UNKNOWN_WORKSHOP};
use isolab_shared::protocol::{AttendeeView, Handle, WorkshopView};

use crate::lessons::{segments, StepStatus};
use crate::spectate::Spectators;
use crate::state::Problem;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trainer {
    /// The admin token, sent after each `hello`; forgotten when the server refuses it.
    pub token: Option<String>,
    /// An `admin` is in flight.
    pub checking: bool,
    /// The server took the token (a `workshops` came).
    pub admitted: bool,
    /// Why the token was refused.
    pub admin_error: Option<Problem>,
    /// Every workshop, as the last `workshops` or `workshop` said.
    pub workshops: Vec<WorkshopView>,
    /// The workshop whose dashboard is shown (its id), re-opened after each `hello`.
    pub open: Option<String>,
    /// A `workshop_create` is in flight.
    pub creating: bool,
    pub create_error: Option<Problem>,
    /// The last refused request about the dashboard (open, end, watch).
    pub error: Option<Problem>,
    pub spectators: Spectators,
}

impl Trainer {
    /// A trainer's page with the token and the open workshop it remembers (from the address or
    /// the tab's storage).
    pub fn new(token: Option<String>, open: Option<String>) -> Trainer {
        Trainer {
            token: token.filter(|t| !t.is_empty()),
            open: open.filter(|o| !o.is_empty()),
            ..Trainer::default()
        }
    }

    pub fn sent_admin(&mut self, token: String) {
        self.token = Some(token);
        self.checking = true;
        self.admin_error = None;
    }

    /// A `workshops` (the answer to `admin` and to `workshop_end`): the token was taken. The
    /// list holds live workshops only: the open one, gone from it, has ended, and stays on
    /// show as ended.
    pub fn listed(&mut self, workshops: Vec<WorkshopView>) {
        self.checking = false;
        self.admitted = true;
        self.admin_error = None;
        let gone = self
            .open_view()
            .filter(|open| !workshops.iter().any(|w| w.brief.id == open.brief.id))
            .cloned();
        self.workshops = workshops;
        if let Some(mut view) = gone {
            view.ended = true;
            self.workshops.push(view);
        }
    }

    /// The token was refused: a wrong one is forgotten (not re-sent, not remembered).
    pub fn refused_admin(&mut self, problem: Problem) {
        self.checking = false;
        self.admitted = false;
        if problem.code == FORBIDDEN {
            self.token = None;
        }
        self.admin_error = Some(problem);
    }

    pub fn sent_create(&mut self) {
        self.creating = true;
        self.create_error = None;
    }

    pub fn refused_create(&mut self, problem: Problem) {
        self.creating = false;
        self.create_error = Some(problem);
    }

    /// The dashboard of `id` is asked for: shown at once if the list has it.
    pub fn sent_open(&mut self, id: String) {
        self.open = Some(id);
        self.error = None;
    }

    /// A `workshop`: a dashboard changed, or the one created or opened (`opens`) arrived.
    pub fn workshop(&mut self, view: WorkshopView, opens: bool) {
        if opens {
            self.creating = false;
            self.error = None;
            self.open = Some(view.brief.id.clone());
        }
        match self
            .workshops
            .iter_mut()
            .find(|w| w.brief.id == view.brief.id)
        {
            Some(known) => *known = view,
            None => self.workshops.push(view),
        }
    }

    /// A request about workshop `about` was refused; one that is gone is no longer open.
    pub fn refused(&mut self, problem: Problem, about: Option<&str>) {
        if problem.code == UNKNOWN_WORKSHOP && about.is_some() && self.open.as_deref() == about {
            self.open = None;
        }
        self.error = Some(problem);
    }

    /// The dashboard shown, once the server listed it.
    pub fn open_view(&self) -> Option<&WorkshopView> {
        let id = self.open.as_deref()?;
        self.workshops.iter().find(|w| w.brief.id == id)
    }

    /// A `hello`: a new connection, where nothing is watched yet.
    pub fn reconnected(&mut self) {
        self.lost();
        self.spectators.clear();
    }

    /// The connection dropped: nothing is in flight any more.
    pub fn lost(&mut self) {
        self.checking = false;
        self.creating = false;
    }
}

/// The address an attendee opens: the page's origin and the workshop's `join_path`.
pub fn join_link(origin: &str, view: &WorkshopView) -> String {
    let path = &view.join_path;
    match (origin.ends_with('/'), path.starts_with('/')) {
        (true, true) => format!("{origin}{}", &path[1..]),
        (false, false) => format!("{origin}/{path}"),
        _ => format!("{origin}{path}"),
    }
}

/// One attendee as the dashboard draws it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttendeeRow<'a> {
    pub attendee: &'a AttendeeView,
    /// Steps passed, of `total`.
    pub done: u32,
    pub total: usize,
    pub segments: Vec<StepStatus>,
    /// Where the attendee is: the current step's title, or that they finished.
    pub at: String,
    pub watches: Vec<Watch>,
}

/// A "Watch" button: one per terminal of each of an attendee's containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    pub container: String,
    /// The attendee's handle.
    pub handle: Handle,
    /// `alpha`, then `alpha · shell 2` for the container's next terminals.
    pub label: String,
    /// Already open on this page.
    pub watching: bool,
}

/// The dashboard's rows, in the server's order.
pub fn attendee_rows<'a>(view: &'a WorkshopView, spectators: &Spectators) -> Vec<AttendeeRow<'a>> {
    let total = view.steps.len();
    view.attendees
        .iter()
        .map(|attendee| {
            let progress = &attendee.progress;
            let at = if progress.finished() {
                "finished".to_string()
            } else {
                let current = progress.current as usize;
                match view.steps.get(current) {
                    Some(title) => format!("{}. {title}", current + 1),
                    None => "—".to_string(),
                }
            };
            let watches = attendee
                .containers
                .iter()
                .flat_map(|c| {
                    c.handles.iter().enumerate().map(move |(i, &handle)| Watch {
                        container: c.name.clone(),
                        handle,
                        label: if i == 0 {
                            c.name.clone()
                        } else {
                            format!("{} · shell {}", c.name, i + 1)
                        },
                        watching: spectators.watching(&view.brief.id, &attendee.id, handle),
                    })
                })
                .collect();
            AttendeeRow {
                attendee,
                done: progress.done(),
                total,
                segments: segments(progress, total),
                at,
                watches,
            }
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests;
