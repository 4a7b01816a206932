//! A session's side of a workshop ([`crate::workshop`]): as an attendee it joins with a code,
//! reports its progress and containers, obeys the hub's commands (end; copy a terminal's
//! output to a trainer); as a trainer (after `admin`) it creates, follows and ends workshops
//! and watches attendees' terminals read-only.

use std::collections::BTreeMap;

use isolab_shared::protocol::{
    codes, AttendeeContainer, Frame, FrameKind, Handle, Joined, Ref, ServerMsg, WorkshopView,
};
use tokio::sync::{mpsc, watch};

use super::Session;
use crate::workshop::{Command, Spectated, WorkshopError};

/// Chunks of watched terminals queued for a trainer's session; past it, chunks are dropped
/// (a watched `yes` must not grow the server's memory, nor slow the attendee).
const SPECTATED_QUEUE: usize = 256;

/// What links a session to workshops.
#[derive(Default)]
pub(super) struct Link {
    /// As an attendee: the workshop's and its own id, and the hub's commands.
    attendee: Option<(String, String)>,
    pub commands: Option<mpsc::UnboundedReceiver<Command>>,
    /// Trainers watching this session's terminals: (its handle, their handle, trainer, sink).
    spectators: Vec<(Handle, Handle, u64, mpsc::Sender<Spectated>)>,
    /// As a trainer: the admin token was given; the dashboard followed; the terminals
    /// watched (this session's handle → workshop and attendee) and where their output arrives.
    admin: Option<u64>,
    pub dashboards: Option<watch::Receiver<WorkshopView>>,
    watching: BTreeMap<Handle, (String, String)>,
    pub spectated: Option<(mpsc::Sender<Spectated>, mpsc::Receiver<Spectated>)>,
}

impl Link {
    /// Copy a terminal's output to the trainers watching it.
    pub fn forward(&mut self, handle: Handle, data: &[u8]) {
        self.spectators.retain(|(h, remote, _, sink)| {
            if *h != handle {
                return !sink.is_closed();
            }
            match sink.try_send(Spectated {
                remote: *remote,
                data: data.to_vec(),
            }) {
                Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => true,
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }

    /// A handle this session watches read-only.
    pub fn is_spectated_handle(&self, handle: Handle) -> bool {
        self.watching.contains_key(&handle)
    }
}

pub(super) async fn next_command(
    rx: &mut Option<mpsc::UnboundedReceiver<Command>>,
) -> Option<Command> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

pub(super) async fn next_update(
    rx: &mut Option<watch::Receiver<WorkshopView>>,
) -> Option<WorkshopView> {
    match rx {
        Some(r) => match r.changed().await {
            Ok(()) => Some(r.borrow_and_update().clone()),
            // The workshop ended and its last view was seen.
            Err(_) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

pub(super) async fn next_spectated(
    rx: &mut Option<(mpsc::Sender<Spectated>, mpsc::Receiver<Spectated>)>,
) -> Option<Spectated> {
    match rx {
        Some((_, rx)) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn workshop_error(e: &WorkshopError) -> &'static str {
    match e {
        WorkshopError::UnknownCode(_) | WorkshopError::Unknown(_) => codes::UNKNOWN_WORKSHOP,
        WorkshopError::UnknownAttendee(_) => "unknown_attendee",
        WorkshopError::BadName(_) => codes::BAD_NAME,
    }
}

impl Session {
    /// `join`: become an attendee and start the workshop's lesson.
    pub(super) async fn join(&mut self, reference: Option<Ref>, code: &str, name: &str) {
        if let Some(joined) = self.joined.clone() {
            if joined.workshop.code.eq_ignore_ascii_case(code.trim()) {
                return self.send(ServerMsg::Joined { reference, joined }).await;
            }
            let message = format!(
                "this session is in workshop {:?} already",
                joined.workshop.title
            );
            return self.error(reference, codes::BAD_NAME, message).await;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let (brief, attendee) = match self.state.workshops.join(code, name, tx) {
            Ok(v) => v,
            Err(e) => {
                return self
                    .error(reference, workshop_error(&e), e.to_string())
                    .await
            }
        };
        let joined = Joined {
            workshop: brief.clone(),
            name: name.trim().to_string(),
        };
        self.joined = Some(joined.clone());
        self.workshop.attendee = Some((brief.id.clone(), attendee));
        self.workshop.commands = Some(rx);
        self.send(ServerMsg::Joined { reference, joined }).await;
        self.lesson_start(reference, &brief.lesson).await;
    }

    /// The session joined a workshop, or is a trainer.
    pub(super) fn in_workshop(&self) -> bool {
        self.workshop.attendee.is_some() || self.workshop.admin.is_some()
    }

    /// Tell the workshop's trainer what this attendee has now.
    pub(super) fn report_to_workshop(&self) {
        let Some((workshop, attendee)) = &self.workshop.attendee else {
            return;
        };
        let progress = self.lesson.as_ref().map(|l| l.progress.clone());
        let containers: Vec<AttendeeContainer> = self
            .containers
            .values()
            .map(|c| AttendeeContainer {
                name: c.name.clone(),
                hostname: c.hostname.clone(),
                handles: c.handles.clone(),
            })
            .collect();
        let connected = self.out.is_some();
        self.state.workshops.update(workshop, attendee, |a| {
            a.connected = connected;
            a.containers = containers;
            if let Some(p) = progress {
                a.progress = p;
            }
        });
    }

    /// The session ends: the trainer sees the attendee gone.
    pub(super) fn leave_workshop(&mut self) {
        if let Some((workshop, attendee)) = self.workshop.attendee.take() {
            self.state.workshops.update(&workshop, &attendee, |a| {
                a.connected = false;
                a.containers.clear();
            });
        }
    }

    /// A command from the hub; `false` ends the session.
    pub(super) async fn on_workshop_command(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::End => {
                let message = "the workshop has ended: your containers are removed";
                self.error(None, codes::SESSION_ENDED, message).await;
                return false;
            }
            Command::Spectate {
                handle,
                remote,
                trainer,
                sink,
            } => {
                let replay = match self.terminals.get(&handle) {
                    Some(term) => term.scrollback.contents(),
                    None => b"[this terminal has ended]\r\n".to_vec(),
                };
                let _ = sink.try_send(Spectated {
                    remote,
                    data: replay,
                });
                if self.terminals.contains_key(&handle) {
                    self.workshop
                        .spectators
                        .push((handle, remote, trainer, sink));
                }
            }
            Command::Unspectate { remote, trainer } => {
                self.workshop
                    .spectators
                    .retain(|(_, r, t, _)| !(*r == remote && *t == trainer));
            }
        }
        true
    }

    /// `admin`: become a trainer.
    pub(super) async fn admin(&mut self, reference: Option<Ref>, token: &str) {
        if !self.state.workshops.is_admin(token) {
            tracing::warn!(session = %self.tag, "a wrong admin token");
            let message = "that is not this server's admin token";
            return self.error(reference, codes::FORBIDDEN, message).await;
        }
        if self.workshop.admin.is_none() {
            self.workshop.admin = Some(self.state.workshops.trainer_id());
        }
        let workshops = self.state.workshops.list();
        self.send(ServerMsg::Workshops {
            reference,
            workshops,
        })
        .await;
    }

    async fn require_admin(&self, reference: Option<Ref>) -> Option<u64> {
        if self.workshop.admin.is_none() {
            let message = "only a trainer may do this: send `admin` with the server's admin token";
            self.error(reference, codes::FORBIDDEN, message).await;
        }
        self.workshop.admin
    }

    pub(super) async fn workshop_create(
        &mut self,
        reference: Option<Ref>,
        lesson: &str,
        title: Option<String>,
    ) {
        if self.require_admin(reference).await.is_none() {
            return;
        }
        let Some(lesson) = self.state.lessons.get(lesson) else {
            let message = format!("no lesson {lesson:?} on this server");
            return self.error(reference, codes::UNKNOWN_LESSON, message).await;
        };
        let view = self.state.workshops.create(&lesson, title);
        tracing::info!(workshop = %view.brief.id, code = %view.brief.code, lesson = %lesson.name, "workshop created");
        self.workshop_open(reference, &view.brief.id).await;
    }

    /// Follow a workshop's dashboard: its view now, then whenever it changes.
    pub(super) async fn workshop_open(&mut self, reference: Option<Ref>, id: &str) {
        if self.require_admin(reference).await.is_none() {
            return;
        }
        match self.state.workshops.subscribe(id) {
            Ok(mut rx) => {
                let workshop = rx.borrow_and_update().clone();
                self.workshop.dashboards = Some(rx);
                self.send(ServerMsg::Workshop {
                    reference,
                    workshop,
                })
                .await;
            }
            Err(e) => {
                self.error(reference, workshop_error(&e), e.to_string())
                    .await
            }
        }
    }

    pub(super) async fn workshop_end(&mut self, reference: Option<Ref>, id: &str) {
        if self.require_admin(reference).await.is_none() {
            return;
        }
        match self.state.workshops.end(id) {
            Ok(()) => {
                tracing::info!(workshop = %id, "workshop ended");
                let workshops = self.state.workshops.list();
                self.send(ServerMsg::Workshops {
                    reference,
                    workshops,
                })
                .await;
            }
            Err(e) => {
                self.error(reference, workshop_error(&e), e.to_string())
                    .await
            }
        }
    }

    /// The followed dashboard changed.
    pub(super) async fn on_dashboard(&mut self, workshop: WorkshopView) {
        self.send(ServerMsg::Workshop {
            reference: None,
            workshop,
        })
        .await;
    }

    /// `spectate`: watch an attendee's terminal under a handle of this session.
    pub(super) async fn spectate(
        &mut self,
        reference: Option<Ref>,
        workshop: &str,
        attendee: &str,
        handle: Handle,
    ) {
        let Some(trainer) = self.require_admin(reference).await else {
            return;
        };
        let sink = self
            .workshop
            .spectated
            .get_or_insert_with(|| mpsc::channel(SPECTATED_QUEUE))
            .0
            .clone();
        let remote = self.next_handle;
        let command = Command::Spectate {
            handle,
            remote,
            trainer,
            sink,
        };
        let name = match self.state.workshops.command(workshop, attendee, command) {
            Ok(name) => name,
            Err(e) => {
                return self
                    .error(reference, workshop_error(&e), e.to_string())
                    .await
            }
        };
        self.next_handle += 1;
        self.workshop
            .watching
            .insert(remote, (workshop.to_string(), attendee.to_string()));
        let container = self
            .state
            .workshops
            .container_of(workshop, attendee, handle)
            .unwrap_or_default();
        self.send(ServerMsg::Spectating {
            reference,
            handle: remote,
            workshop: workshop.to_string(),
            attendee: attendee.to_string(),
            name,
            container,
        })
        .await;
    }

    /// A new page of the trainer: the terminals it watched are gone from it (it asks again);
    /// the dashboard it followed is sent again.
    pub(super) async fn greet_trainer(&mut self) {
        let handles: Vec<Handle> = self.workshop.watching.keys().copied().collect();
        for h in handles {
            self.unspectate(h);
        }
        let view = self
            .workshop
            .dashboards
            .as_mut()
            .map(|rx| rx.borrow_and_update().clone());
        if let Some(workshop) = view {
            self.on_dashboard(workshop).await;
        }
    }

    pub(super) fn unspectate(&mut self, handle: Handle) {
        let (Some(trainer), Some((workshop, attendee))) =
            (self.workshop.admin, self.workshop.watching.remove(&handle))
        else {
            return;
        };
        let command = Command::Unspectate {
            remote: handle,
            trainer,
        };
        let _ = self.state.workshops.command(&workshop, &attendee, command);
    }

    /// Output of a watched terminal: on to the page, under this session's handle.
    pub(super) async fn on_spectated(&mut self, chunk: Spectated) {
        if !self.workshop.watching.contains_key(&chunk.remote) {
            return;
        }
        if let Some(out) = &self.out {
            let frame = Frame::new(FrameKind::Output, chunk.remote, &chunk.data).encode();
            let _ = out
                .send(axum::extract::ws::Message::Binary(frame.into()))
                .await;
        }
    }
}
