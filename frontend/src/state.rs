//! The page's one state machine: the connection, the session's containers (cards, each with
//! its last diff), their terminals (panes), the live view of each ([`Views`]), the images and
//! the last build ([`Images`]), the move control's last request ([`Mover`]), the preset last
//! run, the lesson followed ([`Lessons`]), the workshop joined ([`Attendance`]), the trainer's
//! dashboard ([`Trainer`]), and which request each pending `ref` came from, so that a reply
//! lands next to what caused it. How lesson and workshop messages land is in `state/teaching.rs`.
//!
//! Plain data and a pure [`AppState::apply`]; `Reducible` wraps it for Yew. Terminal bytes
//! never pass through here (they go straight to xterm.js, see `screens.rs`).

use std::rc::Rc;

use isolab_shared::protocol::{
    codes, ChangeInfo, ContainerInfo, Handle, ImageInfo, LayerInfo, Limits, Ref, ServerMsg,
    ViewTarget, ViewUpdate,
};
use yew::Reducible;

use crate::images::Images;
use crate::join::Attendance;
use crate::lessons::Lessons;
use crate::network::{Move, Mover};
use crate::presets::PresetStatus;
use crate::route::Route;
use crate::trainer::Trainer;
use crate::view::Views;

mod teaching;

/// The WebSocket's state as the page shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Conn {
    #[default]
    Connecting,
    Open,
    Closed,
}

impl Conn {
    pub fn label(self) -> &'static str {
        match self {
            Conn::Connecting => "connecting",
            Conn::Open => "open",
            Conn::Closed => "closed",
        }
    }
}

/// What a request was for: its reply (matched by `ref`) is shown there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The create form.
    Create,
    /// A card's `+ shell` button (the container's id).
    Exec(String),
    /// A card's remove button, or a preset clearing the session (the container's id).
    Remove(String),
    /// A preset's `create`: its progress and errors are the preset bar's (`presets::Runner`).
    Preset,
    /// A `watch`: its errors are shown where the view would be. Its answer is a `view`.
    Watch(ViewTarget),
    /// The `images` asked on each `hello`.
    Images,
    /// The build panel's `build` of image `name`, `FROM` image `from`: its log, layers and end
    /// come with this `ref`.
    Build { name: String, from: Option<String> },
    /// A card's diff button (the container's id).
    Diff(String),
    /// The network panel's move control: its answer is a `state`, its error shown there.
    Move(Move),
    /// The `lessons` asked on each `hello`.
    Lessons,
    /// "Start lesson" or "Restart lesson" (the lesson's name): answered by `lesson`.
    LessonStart(String),
    /// A step's "Show me": its answer is a `progress` (which has no `ref`).
    LessonSolve(u32),
    /// The join form: answered by `joined`.
    Join,
    /// The trainer's token (from the form, or re-sent after a `hello`): answered by `workshops`.
    Admin(String),
    /// The trainer's "New workshop" form: answered by `workshop`, which opens its dashboard.
    WorkshopCreate,
    /// A workshop's "Open" (its id): answered by `workshop`.
    WorkshopOpen(String),
    /// "End workshop" (its id).
    WorkshopEnd(String),
    /// A "Watch" button: the attendee's terminal. Answered by `spectating`.
    Spectate {
        workshop: String,
        attendee: String,
        handle: Handle,
    },
    /// A watched terminal's close button (our handle for it).
    Unspectate(Handle),
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// docker's code: the exit code, or 128 + the signal.
    pub code: i32,
    pub signal: Option<i32>,
    pub oom_killed: bool,
}

impl Exit {
    pub fn describe(&self) -> String {
        match (self.oom_killed, self.signal) {
            (true, _) => format!("killed: out of memory (code {})", self.code),
            (false, Some(sig)) => format!("killed by signal {sig} (code {})", self.code),
            (false, None) => format!("exited with code {}", self.code),
        }
    }

    pub fn success(&self) -> bool {
        self.code == 0
    }
}

/// An `error` reply, as shown next to what caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub code: String,
    pub message: String,
    /// The spec field at fault (`hostname`, `namespaces.net`, `cmd[0]`, ...).
    pub field: Option<String>,
}

impl Problem {
    /// A refused `create` names its field; some server checks only say it in the message
    /// (`"namespaces.net: sharing the host's net namespace is not allowed"`). Takes the field
    /// from there when it is one of the spec's, and drops the prefix the field already says.
    pub fn located(mut self) -> Problem {
        let Some((prefix, rest)) = self.message.split_once(": ") else {
            return self;
        };
        let base = prefix.split('[').next().unwrap_or(prefix);
        let is_spec_field = SPEC_FIELDS.contains(&base) || prefix.starts_with("namespaces.");
        match &self.field {
            Some(field) if field == prefix => {}
            None if is_spec_field => self.field = Some(prefix.to_string()),
            _ => return self,
        }
        self.message = rest.to_string();
        self
    }
}

/// The fields of a `ContainerSpec` (as named in a refused spec's `field`).
const SPEC_FIELDS: [&str; 13] = [
    "image",
    "name",
    "hostname",
    "cmd",
    "entrypoint",
    "env",
    "workdir",
    "tty",
    "memory",
    "cpus",
    "pids_limit",
    "init",
    "publish",
];

/// A container of this session.
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    pub info: ContainerInfo,
    /// Set when its main process ended (the server has then removed it).
    pub exit: Option<Exit>,
    /// A request about it is in flight.
    pub busy: bool,
    pub error: Option<Problem>,
    /// What it added, changed or deleted, as its last `diff` said (until hidden).
    pub diff: Option<Vec<ChangeInfo>>,
    /// A `diff` is in flight.
    pub diffing: bool,
}

impl Card {
    pub fn running(&self) -> bool {
        self.exit.is_none()
    }
}

/// A terminal on screen: one per handle.
#[derive(Debug, Clone, PartialEq)]
pub struct Pane {
    pub handle: Handle,
    /// The container's id.
    pub container: String,
    pub title: String,
    pub exit: Option<Exit>,
}

impl Pane {
    /// A key unique across reconnections (the server numbers handles per connection).
    pub fn key(&self, session: u32) -> String {
        format!("{session}-{}", self.handle)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AppState {
    /// The page the address asked for.
    pub route: Route,
    pub conn: Conn,
    /// Bumped on every `hello`: handles start again with each connection.
    pub session: u32,
    pub limits: Option<Limits>,
    pub cards: Vec<Card>,
    pub panes: Vec<Pane>,
    /// Requests waiting for their reply.
    pub pending: Vec<(Ref, Origin)>,
    /// A `create` is in flight.
    pub creating: bool,
    /// The last refused `create`.
    pub form_error: Option<Problem>,
    /// Something that belongs to no request (a lost connection, an error without `ref`).
    pub notice: Option<String>,
    /// Terminals side by side: 1 or 2.
    pub columns: u8,
    /// The live view of the host and of each container.
    pub views: Views,
    /// The preset last run (its progress, then its hint), until dismissed.
    pub preset: Option<PresetStatus>,
    /// The server's images, the picker's choice and the last build.
    pub images: Images,
    /// The move control's request in flight, last done, last refused.
    pub mover: Mover,
    /// The lessons offered, the one followed and its progress.
    pub lessons: Lessons,
    /// The workshop joined (an attendee's page).
    pub attendance: Attendance,
    /// The trainer's dashboard (the trainer's page).
    pub trainer: Trainer,
    /// Why the server ended the session (`session_ended`: idle, too old, or its workshop
    /// ended), shown until dismissed, across the reconnection that follows.
    pub ended: Option<String>,
}

impl Default for AppState {
    fn default() -> Self {
        AppState {
            route: Route::Playground,
            conn: Conn::Connecting,
            session: 0,
            limits: None,
            cards: Vec::new(),
            panes: Vec::new(),
            pending: Vec::new(),
            creating: false,
            form_error: None,
            notice: None,
            columns: 2,
            views: Views::default(),
            preset: None,
            images: Images::default(),
            mover: Mover::default(),
            lessons: Lessons::default(),
            attendance: Attendance::default(),
            trainer: Trainer::default(),
            ended: None,
        }
    }
}

// A `hello` (with its lesson and workshop) makes `Received` the largest variant by far; an
// action is made once per message and consumed at once, so boxing it would only add an
// allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Connecting,
    Closed,
    /// A request went out with this `ref`.
    Sent {
        reference: Ref,
        origin: Origin,
    },
    Received(ServerMsg),
    /// Forget an exited container and its terminals.
    Dismiss(String),
    /// Close the terminal of an ended process.
    ClosePane(Handle),
    SetColumns(u8),
    /// Something to tell that belongs to no request.
    Notice(String),
    ClearNotice,
    /// The one-second tick: a point of history for each container's sparklines.
    Sample,
    /// A preset's progress (`None`: its hint is dismissed).
    Preset(Option<PresetStatus>),
    /// The image picker's choice.
    SelectImage(String),
    /// Stop showing a container's diff (its id).
    HideDiff(String),
    /// The lesson picker's choice (a lesson's name).
    PickLesson(String),
    /// Show or hide a step's hint.
    ToggleHint(u32),
    /// Open or close a step.
    ToggleStep(u32),
    /// Forget a watched terminal (its `unspectate` is sent).
    CloseSpectator(Handle),
    /// Stop showing why the session ended.
    DismissEnded,
}

impl Reducible for AppState {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut next = (*self).clone();
        next.apply(action);
        // The same Rc when nothing changed: Yew then skips the render (a tick with nothing
        // to sample, a status already shown).
        if next == *self {
            self
        } else {
            Rc::new(next)
        }
    }
}

impl AppState {
    /// The page at `route`; a trainer's with what its tab remembers (`Trainer::new`).
    pub fn new(route: Route, trainer: Trainer) -> AppState {
        AppState {
            route,
            trainer,
            ..AppState::default()
        }
    }

    /// The state after `action`.
    pub fn apply(&mut self, action: Action) {
        match action {
            Action::Connecting => self.conn = Conn::Connecting,
            Action::Closed => self.closed(),
            Action::Sent { reference, origin } => self.sent(reference, origin),
            Action::Received(msg) => self.received(msg),
            Action::Dismiss(id) => self.forget(&id),
            Action::ClosePane(handle) => self
                .panes
                .retain(|p| p.handle != handle || p.exit.is_none()),
            Action::SetColumns(n) => self.columns = n.clamp(1, 2),
            Action::Notice(text) => self.notice = Some(text),
            Action::ClearNotice => self.notice = None,
            Action::Sample => self.views.sample(),
            Action::Preset(status) => self.preset = status,
            Action::SelectImage(name) => self.images.select(name),
            Action::HideDiff(id) => {
                if let Some(card) = self.card_mut(&id) {
                    card.diff = None;
                }
            }
            Action::PickLesson(name) => self.lessons.pick(name),
            Action::ToggleHint(step) => self.lessons.toggle_hint(step),
            Action::ToggleStep(step) => self.lessons.toggle_step(step),
            Action::CloseSpectator(handle) => self.trainer.spectators.close(handle),
            Action::DismissEnded => self.ended = None,
        }
    }

    pub fn card(&self, id: &str) -> Option<&Card> {
        self.cards.iter().find(|c| c.info.id == id)
    }

    /// Names of running containers (targets for `container:NAME`).
    pub fn running_names(&self) -> Vec<String> {
        self.cards
            .iter()
            .filter(|c| c.running())
            .map(|c| c.info.name.clone())
            .collect()
    }

    /// Whether the session may create another container.
    pub fn at_limit(&self) -> bool {
        let running = self.cards.iter().filter(|c| c.running()).count();
        self.limits
            .as_ref()
            .is_some_and(|l| running >= l.max_containers as usize)
    }

    fn card_mut(&mut self, id: &str) -> Option<&mut Card> {
        self.cards.iter_mut().find(|c| c.info.id == id)
    }

    fn closed(&mut self) {
        self.conn = Conn::Closed;
        self.pending.clear();
        self.creating = false;
        for card in &mut self.cards {
            card.busy = false;
            card.diffing = false;
        }
        self.images.failed(connection_lost());
        self.mover.lost();
        self.lessons.lost();
        self.attendance.lost();
        self.trainer.lost();
    }

    fn sent(&mut self, reference: Ref, origin: Origin) {
        match &origin {
            Origin::Create => {
                self.creating = true;
                self.form_error = None;
            }
            Origin::Exec(id) | Origin::Remove(id) => {
                if let Some(card) = self.card_mut(id) {
                    card.busy = true;
                    card.error = None;
                }
            }
            Origin::Diff(id) => {
                if let Some(card) = self.card_mut(id) {
                    card.diffing = true;
                    card.error = None;
                }
            }
            Origin::Build { name, from } => {
                self.images
                    .started(reference, name.clone(), from.as_deref());
            }
            Origin::Move(request) => self.mover.sent(request.clone()),
            Origin::Preset | Origin::Watch(_) | Origin::Images => {}
            lesson_or_workshop => self.sent_lesson_or_workshop(lesson_or_workshop),
        }
        self.pending.push((reference, origin));
    }

    /// The origin of the request `reference` answers, no longer pending. A "Show me" is not
    /// answered by the replies its actions bring under its `ref` (`created`, `state`): only by
    /// its step passing or an error (`teaching.rs`).
    fn answered(&mut self, reference: Option<Ref>) -> Option<Origin> {
        let at = self
            .pending
            .iter()
            .position(|(r, _)| Some(*r) == reference)?;
        if matches!(self.pending[at].1, Origin::LessonSolve(_)) {
            return None;
        }
        Some(self.pending.remove(at).1)
    }

    fn received(&mut self, msg: ServerMsg) {
        match msg {
            ServerMsg::Hello {
                limits,
                containers,
                lesson,
                workshop,
                ..
            } => {
                self.hello(limits, containers);
                self.lessons.restored(lesson);
                self.attendance.restored(workshop);
                self.trainer.reconnected();
            }
            ServerMsg::Created {
                reference,
                container,
                handle,
            } => self.created(reference, container, handle),
            ServerMsg::Exited {
                handle,
                container,
                code,
                signal,
                oom_killed,
            } => self.exited(
                handle,
                &container,
                Exit {
                    code,
                    signal,
                    oom_killed,
                },
            ),
            ServerMsg::State {
                reference,
                containers,
            } => self.state(reference, containers),
            ServerMsg::View { target, update } => self.view(target, *update),
            ServerMsg::Images { reference, images } => self.listed(reference, images),
            ServerMsg::BuildLog { reference, text } => {
                if let Some(build) = self.images.build_for(reference) {
                    build.log(&text);
                }
            }
            ServerMsg::BuildLayer {
                reference,
                index,
                layer,
            } => self.build_layer(reference, index, layer),
            ServerMsg::Built { reference, image } => self.built(reference, image),
            ServerMsg::Diff {
                reference,
                container,
                changes,
            } => self.diff(reference, &container, changes),
            msg @ (ServerMsg::Lessons { .. }
            | ServerMsg::Lesson { .. }
            | ServerMsg::Progress { .. }
            | ServerMsg::Joined { .. }
            | ServerMsg::Workshops { .. }
            | ServerMsg::Workshop { .. }
            | ServerMsg::Spectating { .. }) => self.lesson_or_workshop(msg),
            ServerMsg::Error {
                reference,
                code,
                message,
                field,
            } => self.error(
                reference,
                Problem {
                    code,
                    message,
                    field,
                },
            ),
        }
    }

    fn hello(&mut self, limits: Limits, containers: Vec<ContainerInfo>) {
        let had_running = self.cards.iter().any(Card::running);
        self.conn = Conn::Open;
        self.session += 1;
        self.limits = Some(limits);
        self.pending.clear();
        self.creating = false;
        self.images.failed(connection_lost());
        self.mover.lost();
        self.panes.clear();
        self.cards.clear();
        // Once the server said why it ended the session, that is what the page shows.
        let removed = had_running && containers.is_empty() && self.ended.is_none();
        self.notice = removed.then(|| {
            "The connection was lost and the server removed this session's containers.".to_string()
        });
        self.views
            .keep(|name| containers.iter().any(|c| c.name == name));
        for info in containers {
            for &handle in &info.handles {
                self.add_pane(&info, handle);
            }
            self.upsert(info);
        }
    }

    fn created(&mut self, reference: Option<Ref>, info: ContainerInfo, handle: Handle) {
        match self.answered(reference) {
            Some(Origin::Create) => {
                self.creating = false;
                self.form_error = None;
            }
            Some(Origin::Exec(id) | Origin::Remove(id)) => {
                if let Some(card) = self.card_mut(&id) {
                    card.busy = false;
                }
            }
            _ => {}
        }
        self.add_pane(&info, handle);
        self.upsert(info);
    }

    fn exited(&mut self, handle: Handle, container: &str, exit: Exit) {
        if self.trainer.spectators.exited(handle, exit.clone()) {
            return;
        }
        if let Some(pane) = self.panes.iter_mut().find(|p| p.handle == handle) {
            pane.exit = Some(exit.clone());
        }
        if let Some(card) = self.card_mut(container) {
            if card.info.handles.first() == Some(&handle) {
                card.exit = Some(exit);
                card.busy = false;
            } else {
                card.info.handles.retain(|h| *h != handle);
            }
        }
    }

    fn state(&mut self, reference: Option<Ref>, containers: Vec<ContainerInfo>) {
        match self.answered(reference) {
            Some(Origin::Remove(id)) => self.forget(&id),
            Some(Origin::Move(_)) => self.mover.moved(),
            _ => {}
        }
        // A card the server no longer lists: keep it if its process ended (its exit status is
        // on show until dismissed); anything else went away without us seeing why.
        self.cards
            .retain(|c| c.exit.is_some() || containers.iter().any(|i| i.id == c.info.id));
        let cards = &self.cards;
        self.panes
            .retain(|p| cards.iter().any(|c| c.info.id == p.container));
        // A container's view ends with it.
        self.views
            .keep(|name| containers.iter().any(|c| c.name == name));
        for info in containers {
            self.upsert(info);
        }
    }

    /// A `view`: it answers the `watch`; kept for the host and for running containers only
    /// (one that just went away is not brought back).
    fn view(&mut self, target: ViewTarget, update: ViewUpdate) {
        self.pending
            .retain(|(_, origin)| !matches!(origin, Origin::Watch(t) if *t == target));
        let known = match &target {
            ViewTarget::Host => true,
            ViewTarget::Container(name) => self
                .cards
                .iter()
                .any(|c| c.running() && c.info.name == *name),
        };
        if known {
            self.views.received(target, update);
        }
    }

    /// An `images` list (the answer to ours, or sent after a build).
    fn listed(&mut self, reference: Option<Ref>, images: Vec<ImageInfo>) {
        if reference.is_some() {
            self.answered(reference);
        }
        self.images.listed(images);
    }

    fn build_layer(&mut self, reference: Option<Ref>, index: u32, layer: LayerInfo) {
        if let Some(build) = self.images.build_for(reference) {
            build.layer(index, layer);
        }
    }

    fn built(&mut self, reference: Option<Ref>, image: ImageInfo) {
        self.answered(reference);
        self.images.built(reference, image);
    }

    /// A `diff`: shown under the card that asked (else the card of that name or id).
    fn diff(&mut self, reference: Option<Ref>, container: &str, changes: Vec<ChangeInfo>) {
        let id = match self.answered(reference) {
            Some(Origin::Diff(id)) => Some(id),
            _ => self
                .cards
                .iter()
                .find(|c| c.info.name == container || c.info.id == container)
                .map(|c| c.info.id.clone()),
        };
        if let Some(card) = id.and_then(|id| self.card_mut(&id)) {
            card.diffing = false;
            card.diff = Some(changes);
        }
    }

    fn error(&mut self, reference: Option<Ref>, problem: Problem) {
        if problem.code == codes::SESSION_ENDED {
            self.answered(reference);
            self.ended = Some(problem.message);
            return;
        }
        if self.solve_refused(reference) {
            self.lessons.failed(problem);
            return;
        }
        match self.answered(reference) {
            Some(Origin::Create) => {
                self.creating = false;
                self.form_error = Some(problem.located());
            }
            Some(Origin::Exec(id) | Origin::Remove(id)) => match self.card_mut(&id) {
                Some(card) => {
                    card.busy = false;
                    card.error = Some(problem);
                }
                None => self.notice = Some(problem.message),
            },
            Some(Origin::Diff(id)) => match self.card_mut(&id) {
                Some(card) => {
                    card.diffing = false;
                    card.error = Some(problem);
                }
                None => self.notice = Some(problem.message),
            },
            // Shown next to the build panel.
            Some(Origin::Build { .. }) => self.images.failed(problem),
            // Shown next to the move control, at the field it is about.
            Some(Origin::Move(_)) => self.mover.refused(problem),
            Some(Origin::Images) => {
                self.notice = Some(format!(
                    "the images could not be listed: {}: {}",
                    problem.code, problem.message
                ))
            }
            // The preset bar shows it (the runner hears the same error).
            Some(Origin::Preset) => {}
            Some(Origin::Watch(target)) => self
                .views
                .failed(target, format!("{}: {}", problem.code, problem.message)),
            Some(lesson_or_workshop) => self.refused(lesson_or_workshop, problem),
            // A resize or keystroke that crossed its process's end (a short-lived command,
            // such as an image's CMD, can end before its terminal is even drawn): nothing lost.
            None if self.crossed_an_exit(&problem) => {}
            None => self.notice = Some(format!("{}: {}", problem.code, problem.message)),
        }
    }

    /// Whether `problem` is the server's `unknown_handle` ("no terminal N") about a terminal
    /// whose process the page already knows has ended.
    fn crossed_an_exit(&self, problem: &Problem) -> bool {
        let handle = problem
            .message
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse::<Handle>().ok());
        problem.code == "unknown_handle"
            && handle.is_some_and(|h| self.panes.iter().any(|p| p.handle == h && p.exit.is_some()))
    }

    /// Adds or refreshes a card with the server's view of it.
    fn upsert(&mut self, info: ContainerInfo) {
        match self.card_mut(&info.id) {
            Some(card) => card.info = info,
            None => self.cards.push(Card {
                info,
                exit: None,
                busy: false,
                error: None,
                diff: None,
                diffing: false,
            }),
        }
    }

    fn add_pane(&mut self, info: &ContainerInfo, handle: Handle) {
        if self.panes.iter().any(|p| p.handle == handle) {
            return;
        }
        let title = if info.handles.first() == Some(&handle) {
            format!("{} · {}", info.name, command_text(&info.cmd))
        } else {
            format!("{} · shell #{handle}", info.name)
        };
        self.panes.push(Pane {
            handle,
            container: info.id.clone(),
            title,
            exit: None,
        });
    }

    fn forget(&mut self, id: &str) {
        self.cards.retain(|c| c.info.id != id);
        self.panes.retain(|p| p.container != id);
    }
}

/// A container's command as shown; an empty one ran the image's ENTRYPOINT and CMD.
pub fn command_text(cmd: &[String]) -> String {
    if cmd.is_empty() {
        "(the image's command)".to_string()
    } else {
        cmd.join(" ")
    }
}

/// Why a running build is no longer followed.
fn connection_lost() -> Problem {
    Problem {
        code: "connection_lost".to_string(),
        message: "the connection was lost during the build; its image may still appear in the list"
            .to_string(),
        field: None,
    }
}

#[cfg(test)]
mod image_tests;
#[cfg(test)]
mod lesson_tests;
#[cfg(test)]
mod network_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod workshop_tests;
