//! A session: the containers of one browser, kept across reloads and dropped connections, as
//! one event loop with one writer per connection. Messages from the socket, output from the
//! terminals and events from the session's own tasks go through `select!`; runtime calls, which
//! block, run on the blocking pool.
//!
//! A browser is known by a random 128-bit id in an HttpOnly, SameSite cookie ([`registry`]). When
//! its connection drops, the session waits `grace_secs` for it to come back; a new connection
//! gets `hello` with the session's containers, then each terminal's last 64 KiB. After the grace
//! (or on server shutdown) the session removes its containers.
//!
//! Containers are named per session (`<session tag>-<name>` in the runtime), so two attendees
//! can both have an `alpha`, and `container:NAME` only reaches the session's own containers.

mod images;
mod lesson;
mod network;
pub mod registry;
mod terminal;
mod volumes;
mod watch;
mod workshop;

pub use images::gc as gc_images;

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures_util::stream::SplitStream;
use futures_util::{SinkExt, StreamExt};
use isolab_shared::protocol::{
    codes, ClientMsg, ContainerInfo, Frame, FrameKind, Handle, Ref, ServerMsg, ViewTarget,
    ViewUpdate, PROTOCOL_VERSION,
};
use isolab_shared::spec::{ContainerSpec, NsKind, NsMode};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Sleep;

use crate::observe::{Observer, Subject};
use crate::runtime::container::{Container, CreateOptions, RuntimeError, StdioSpec};
use crate::runtime::init::protocol::{ExitStatus, Launch};
use crate::server::AppState;
use terminal::{signal_number, spawn_reader, AsyncDescriptor, Flow, Output, Scrollback, Terminal};

/// How long an ended process's output may still take to drain before `exited` is sent.
const DRAIN: Duration = Duration::from_millis(500);
/// Outgoing frames queued for the socket writer.
const OUTGOING: usize = 64;
/// Output chunks queued from the terminals to the session.
const OUTPUT_QUEUE: usize = 16;
/// What a reattaching connection is replayed, per terminal.
const SCROLLBACK: usize = 64 * 1024;
/// How often the observer looks at the watched targets (changes reach the page within this
/// and a pass's time).
const OBSERVE_EVERY: Duration = Duration::from_millis(250);
/// Ended containers whose exit status and last output a lesson's checks may still read.
const EXITED_KEPT: usize = 32;
/// How often a lesson's current check re-runs.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// What a tty's line discipline reads as end of input (^D).
const EOF_CHAR: u8 = 4;

/// Something the session's own tasks report.
enum Event {
    Exited {
        handle: Handle,
        status: Result<ExitStatus, String>,
    },
    /// A running build's log or new layer, to send on.
    Build(ServerMsg),
    /// A build ended (`built` or `error`).
    BuildEnded(ServerMsg),
    /// A pass of the observer ended: the changes to send, and the observer back.
    Observed {
        observer: Observer,
        updates: Vec<(ViewTarget, ViewUpdate)>,
    },
    /// A lesson's check (or a solution's wait) was evaluated.
    Probed {
        generation: u64,
        probe: lesson::Probe,
        outcome: crate::lessons::condition::Outcome,
    },
    /// A solution's `exec` ended.
    SolveExec {
        generation: u64,
        result: Result<(), String>,
    },
}

/// The current connection: its incoming half, and the channel to its writer task.
struct Connection {
    incoming: SplitStream<WebSocket>,
    out: mpsc::Sender<Message>,
    writer: JoinHandle<()>,
}

impl Connection {
    fn open(socket: WebSocket) -> Connection {
        let (mut sink, incoming) = socket.split();
        let (out, mut out_rx) = mpsc::channel::<Message>(OUTGOING);
        let writer = tokio::spawn(async move {
            while let Some(msg) = out_rx.recv().await {
                if sink.send(msg).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        Connection {
            incoming,
            out,
            writer,
        }
    }

    /// Let the writer flush what is queued and close.
    async fn close(self) {
        drop(self.out);
        let _ = tokio::time::timeout(DRAIN, self.writer).await;
    }
}

/// The next message of the connection, if there is one (pending forever otherwise).
async fn next_message(conn: &mut Option<Connection>) -> Option<Message> {
    match conn {
        Some(c) => match c.incoming.next().await {
            Some(Ok(msg)) => Some(msg),
            _ => None,
        },
        None => std::future::pending().await,
    }
}

/// The grace timer, if it runs (pending forever otherwise).
async fn grace_over(grace: &mut Option<Pin<Box<Sleep>>>) {
    match grace {
        Some(sleep) => sleep.await,
        None => std::future::pending().await,
    }
}

struct Session {
    state: AppState,
    /// Prefixes this session's container names in the runtime.
    tag: String,
    /// The connection's writer, while one is attached.
    out: Option<mpsc::Sender<Message>>,
    events: mpsc::UnboundedSender<Event>,
    output: mpsc::Sender<Output>,
    /// By user-facing name.
    containers: BTreeMap<String, ContainerInfo>,
    /// Memory granted to each container (by name), counted against the session's limit.
    granted: BTreeMap<String, u64>,
    terminals: BTreeMap<Handle, Terminal>,
    next_handle: Handle,
    /// The tasks that wait for each process's end.
    waiters: Vec<JoinHandle<()>>,
    /// Containers being removed: off the loop, so that a create right after a remove does not
    /// wait for a teardown (cgroups, the writable layer, the network namespace); the session's
    /// end waits for them.
    removing: tokio::task::JoinSet<()>,
    /// Someone did something (a request or a keystroke; the page's automatic acks do not count)
    /// since the loop last looked: the idle timer starts again.
    active: bool,
    /// The live view: what the observer may look at (every container, by name), what the
    /// client watches, which of those get every section next time, and the observer itself
    /// (None while a pass runs on the blocking pool).
    subjects: BTreeMap<String, Subject>,
    watched: BTreeSet<ViewTarget>,
    fresh: BTreeSet<ViewTarget>,
    observer: Option<Observer>,
    /// A build runs (one at a time), and the images this session built (which it may rebuild).
    building: bool,
    built: BTreeSet<String>,
    /// The session's network, once a container needed it, and its networked containers.
    network: Option<crate::network::plan::NetworkPlan>,
    members: BTreeMap<String, network::Member>,
    /// A networked container left: the others' `/etc/hosts` are rewritten soon.
    hosts_stale: bool,
    /// The session's named volumes, once a container named one (`volumes.rs`).
    volumes: Option<crate::runtime::volumes::VolumeSet>,
    /// The lesson it follows, and what its checks read about ended containers: exit code and
    /// OOM kill, and the last output, by name (until the name is used again).
    lesson: Option<lesson::LessonRun>,
    exited: BTreeMap<String, (i32, bool)>,
    exited_output: BTreeMap<String, String>,
    /// The workshop it joined, and its side of the workshop (as attendee or trainer).
    joined: Option<isolab_shared::protocol::Joined>,
    workshop: workshop::Link,
}

/// Run a session from its first connection until its grace runs out or the server stops.
/// Later connections of the same browser arrive on `attach`.
pub async fn run(
    first: WebSocket,
    state: AppState,
    id: registry::SessionId,
    mut attach: mpsc::Receiver<WebSocket>,
) {
    let (events, mut events_rx) = mpsc::unbounded_channel();
    let (output, mut output_rx) = mpsc::channel(OUTPUT_QUEUE);
    let mut session = Session {
        tag: id.tag(),
        state: state.clone(),
        out: None,
        events,
        output,
        containers: BTreeMap::new(),
        granted: BTreeMap::new(),
        terminals: BTreeMap::new(),
        next_handle: 1,
        waiters: Vec::new(),
        removing: tokio::task::JoinSet::new(),
        active: false,
        subjects: BTreeMap::new(),
        watched: BTreeSet::new(),
        fresh: BTreeSet::new(),
        observer: Some(Observer::new()),
        building: false,
        built: BTreeSet::new(),
        network: None,
        members: BTreeMap::new(),
        hosts_stale: false,
        volumes: None,
        lesson: None,
        exited: BTreeMap::new(),
        exited_output: BTreeMap::new(),
        joined: None,
        workshop: workshop::Link::default(),
    };
    let mut check_tick = tokio::time::interval(CHECK_EVERY);
    check_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut observe_tick = tokio::time::interval(OBSERVE_EVERY);
    observe_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let grace_period = Duration::from_secs(state.limits.grace_secs);
    let idle_period = Duration::from_secs(state.limits.idle_secs);
    let lifetime = tokio::time::sleep(Duration::from_secs(state.limits.max_lifetime_secs));
    tokio::pin!(lifetime);
    let idle = tokio::time::sleep(idle_period);
    tokio::pin!(idle);
    let mut conn = Some(Connection::open(first));
    session.greet(conn.as_ref()).await;
    let mut grace: Option<Pin<Box<Sleep>>> = None;
    loop {
        tokio::select! {
            // Output before events: a process's last bytes go out before its `exited`.
            biased;
            Some(socket) = attach.recv() => {
                // A reload or a second tab: the newest connection wins.
                if let Some(old) = conn.take() {
                    old.close().await;
                }
                conn = Some(Connection::open(socket));
                grace = None;
                session.greet(conn.as_ref()).await;
            }
            Some(out) = output_rx.recv() => session.on_output(out).await,
            Some(event) = events_rx.recv() => session.on_event(event).await,
            _ = observe_tick.tick(), if !session.watched.is_empty() && session.observer.is_some() => {
                session.observe();
            }
            _ = check_tick.tick(), if session.lesson_wants_probe() => session.lesson_probe().await,
            Some(cmd) = workshop::next_command(&mut session.workshop.commands) => {
                if !session.on_workshop_command(cmd).await {
                    break;
                }
            }
            Some(update) = workshop::next_update(&mut session.workshop.dashboards) => {
                session.on_dashboard(update).await;
            }
            Some(watched) = workshop::next_spectated(&mut session.workshop.spectated) => {
                session.on_spectated(watched).await;
            }
            msg = next_message(&mut conn) => {
                let keep = match msg {
                    Some(msg) => session.on_message(msg).await,
                    None => false,
                };
                if std::mem::take(&mut session.active) {
                    idle.as_mut().reset(tokio::time::Instant::now() + idle_period);
                }
                if !keep {
                    if let Some(c) = conn.take() {
                        session.out = None;
                        c.close().await;
                    }
                    session.report_to_workshop();
                    grace = Some(Box::pin(tokio::time::sleep(grace_period)));
                }
            }
            _ = grace_over(&mut grace) => break,
            // A workshop's attendees listen to their trainer for long stretches, and a trainer
            // may only watch: their sessions end with the workshop (or the lifetime) instead.
            _ = &mut idle, if !session.in_workshop() => {
                let message = format!("idle for {} s: the session's containers are removed", idle_period.as_secs());
                session.error(None, codes::SESSION_ENDED, message).await;
                break;
            }
            _ = &mut lifetime => {
                let message = "the session reached its maximum lifetime: its containers are removed";
                session.error(None, codes::SESSION_ENDED, message).await;
                break;
            }
            _ = state.shutdown.cancelled() => break,
        }
        if std::mem::take(&mut session.hosts_stale) {
            session.refresh_hosts().await;
        }
    }
    state.registry.remove(&id);
    session.close().await;
    session.out = None;
    if let Some(c) = conn.take() {
        c.close().await;
    }
}

impl Session {
    async fn send(&self, msg: ServerMsg) {
        let text = serde_json::to_string(&msg).expect("server messages serialize");
        if let Some(out) = &self.out {
            let _ = out.send(Message::Text(text.into())).await;
        }
    }

    /// A (re)attached connection: `hello` with the session's containers, then each
    /// terminal's scrollback, from which its flow control starts again.
    async fn greet(&mut self, conn: Option<&Connection>) {
        self.out = conn.map(|c| c.out.clone());
        // A new page watches what it draws.
        self.watched.clear();
        self.fresh.clear();
        self.send(ServerMsg::Hello {
            version: PROTOCOL_VERSION,
            limits: self.state.limits.clone(),
            containers: self.containers.values().cloned().collect(),
            lesson: self.lesson.as_ref().map(|l| l.state()),
            workshop: self.joined.clone(),
        })
        .await;
        let Some(out) = self.out.clone() else { return };
        for (handle, term) in &self.terminals {
            let replay = term.scrollback.contents();
            term.flow.reset(replay.len() as u64);
            if !replay.is_empty() {
                let frame = Frame::new(FrameKind::Output, *handle, &replay).encode();
                let _ = out.send(Message::Binary(frame.into())).await;
            }
        }
        self.report_to_workshop();
        self.greet_trainer().await;
    }

    /// Output from a terminal: kept for a later reattach, and sent on if connected.
    async fn on_output(&mut self, output: Output) {
        let Some(term) = self.terminals.get_mut(&output.handle) else {
            return;
        };
        term.scrollback.push(&output.data);
        self.state.metrics.terminal_output(output.data.len());
        self.workshop.forward(output.handle, &output.data);
        self.lesson_touched();
        if let Some(out) = &self.out {
            let frame = Frame::new(output.kind, output.handle, &output.data).encode();
            let _ = out.send(Message::Binary(frame.into())).await;
        }
    }

    async fn error(&self, reference: Option<Ref>, code: &str, message: impl Into<String>) {
        self.send(ServerMsg::error(reference, code, message)).await;
    }

    /// Handle one frame; `false` ends the session.
    async fn on_message(&mut self, msg: Message) -> bool {
        let max = self.state.limits.max_frame_bytes as usize;
        match msg {
            Message::Text(text) if text.len() > max => {
                self.error(None, codes::FRAME_TOO_LARGE, too_large(text.len(), max))
                    .await
            }
            Message::Binary(bytes) if bytes.len() > max => {
                self.error(None, codes::FRAME_TOO_LARGE, too_large(bytes.len(), max))
                    .await
            }
            Message::Text(text) => match parse(&text) {
                Ok(msg) => self.on_request(msg).await,
                Err((code, message)) => self.error(None, code, message).await,
            },
            Message::Binary(bytes) => self.on_frame(&bytes).await,
            Message::Close(_) => return false,
            Message::Ping(_) | Message::Pong(_) => {}
        }
        true
    }

    async fn on_frame(&mut self, bytes: &[u8]) {
        let frame = match Frame::decode(bytes) {
            Ok(f) if f.kind == FrameKind::Input => f,
            Ok(f) => {
                let message = format!("a client may only send input frames, not {:?}", f.kind);
                return self.error(None, codes::BAD_FRAME, message).await;
            }
            Err(e) => return self.error(None, codes::BAD_FRAME, e.to_string()).await,
        };
        self.active = true;
        if self.workshop.is_spectated_handle(frame.handle) {
            let message = format!("terminal {} is watched read-only", frame.handle);
            return self.error(None, codes::READ_ONLY, message).await;
        }
        let Some(term) = self.terminals.get(&frame.handle) else {
            let message = format!("no terminal {}", frame.handle);
            return self.error(None, codes::UNKNOWN_HANDLE, message).await;
        };
        let Some(input) = &term.input else {
            let message = format!("terminal {}'s input was closed (eof)", frame.handle);
            return self.error(None, codes::RUNTIME, message).await;
        };
        // In order, through the terminal's own writer: a process that does not read its
        // input must not block the session, so a full queue is an error, not a wait.
        self.state.metrics.terminal_input(frame.data.len());
        if input.try_send(frame.data.to_vec()).is_err() {
            let message = format!("terminal {} is not reading its input", frame.handle);
            self.error(None, codes::RUNTIME, message).await;
        }
    }

    async fn on_request(&mut self, msg: ClientMsg) {
        let reference = msg.reference();
        self.active |= !matches!(msg, ClientMsg::Ack { .. });
        match msg {
            ClientMsg::Create { spec, .. } => self.create(reference, *spec).await,
            ClientMsg::Exec {
                container,
                cmd,
                env,
                ..
            } => self.exec(reference, &container, cmd, env).await,
            ClientMsg::Resize { handle, .. } if self.workshop.is_spectated_handle(handle) => {}
            ClientMsg::Resize {
                handle, rows, cols, ..
            } => match self.terminals.get(&handle) {
                Some(t) => {
                    if let Err(e) = t.resize(rows, cols) {
                        self.error(reference, codes::RUNTIME, format!("resize: {e}"))
                            .await;
                    }
                }
                None => self.unknown_handle(reference, handle).await,
            },
            ClientMsg::Signal { handle, .. } if self.workshop.is_spectated_handle(handle) => {
                let message = format!("terminal {handle} is watched read-only");
                self.error(reference, codes::READ_ONLY, message).await
            }
            ClientMsg::Signal { handle, signal, .. } => {
                match (self.terminals.get(&handle), signal_number(&signal)) {
                    (Some(t), Some(sig)) => t.signaller.signal(sig),
                    (None, _) => self.unknown_handle(reference, handle).await,
                    (_, None) => {
                        let message = format!("{signal:?} is not a signal a client may send");
                        self.error(reference, codes::UNKNOWN_SIGNAL, message).await
                    }
                }
            }
            ClientMsg::Remove { container, .. } => self.remove(reference, &container).await,
            ClientMsg::List { .. } => self.send_state(reference).await,
            ClientMsg::Eof { handle, .. } => self.eof(reference, handle).await,
            ClientMsg::Watch { target, .. } => self.watch(reference, target).await,
            ClientMsg::Unwatch { target, .. } => {
                let target = self.view_target(target);
                self.watched.remove(&target);
            }
            ClientMsg::Images { .. } => self.images(reference).await,
            ClientMsg::Build {
                name, dockerfile, ..
            } => self.build(reference, name, dockerfile).await,
            ClientMsg::Diff { container, .. } => self.diff(reference, &container).await,
            ClientMsg::MoveInterface {
                interface,
                from,
                to,
                kind,
                ..
            } => {
                let kind = kind.unwrap_or_default();
                self.move_interface(reference, &interface, kind, &from, &to)
                    .await;
            }
            ClientMsg::Ack { handle, bytes } => {
                if let Some(t) = self.terminals.get(&handle) {
                    t.flow.ack(bytes);
                }
            }
            ClientMsg::Lessons { .. } => self.lessons(reference).await,
            ClientMsg::LessonStart { lesson, .. } => self.lesson_start(reference, &lesson).await,
            ClientMsg::LessonSolve { step, .. } => self.lesson_solve(reference, step).await,
            ClientMsg::Join { code, name, .. } => self.join(reference, &code, &name).await,
            ClientMsg::Admin { token, .. } => self.admin(reference, &token).await,
            ClientMsg::WorkshopCreate { lesson, title, .. } => {
                self.workshop_create(reference, &lesson, title).await
            }
            ClientMsg::WorkshopOpen { id, .. } => self.workshop_open(reference, &id).await,
            ClientMsg::WorkshopEnd { id, .. } => self.workshop_end(reference, &id).await,
            ClientMsg::Spectate {
                workshop,
                attendee,
                handle,
                ..
            } => self.spectate(reference, &workshop, &attendee, handle).await,
            ClientMsg::Unspectate { handle, .. } => self.unspectate(handle),
        }
    }

    /// No more input: a pipe is closed once what is queued is written (the writer ends when
    /// its channel does); a tty gets its end-of-file character.
    async fn eof(&mut self, reference: Option<Ref>, handle: Handle) {
        let Some(term) = self.terminals.get_mut(&handle) else {
            return self.unknown_handle(reference, handle).await;
        };
        if term.pty.is_some() {
            if let Some(input) = &term.input {
                let _ = input.try_send(vec![EOF_CHAR]);
            }
        } else {
            term.input = None;
        }
    }

    async fn unknown_handle(&self, reference: Option<Ref>, handle: Handle) {
        self.error(
            reference,
            codes::UNKNOWN_HANDLE,
            format!("no terminal {handle}"),
        )
        .await;
    }

    async fn send_state(&self, reference: Option<Ref>) {
        let containers = self.containers.values().cloned().collect();
        self.send(ServerMsg::State {
            reference,
            containers,
        })
        .await;
    }

    /// The runtime's name for a user-facing one.
    fn runtime_name(&self, name: &str) -> String {
        format!("{}-{name}", self.tag)
    }

    /// A container of this session, or an `unknown_container` error sent (and None).
    async fn require(&self, reference: Option<Ref>, target: &str) -> Option<ContainerInfo> {
        let found = self.find(target).cloned();
        if found.is_none() {
            let message = format!("no container {target:?} in this session");
            self.error(reference, codes::UNKNOWN_CONTAINER, message)
                .await;
        }
        found
    }

    /// A container of this session by user-facing name or by id.
    fn find(&self, name_or_id: &str) -> Option<&ContainerInfo> {
        self.containers
            .get(name_or_id)
            .or_else(|| self.containers.values().find(|c| c.id == name_or_id))
    }

    async fn create(&mut self, reference: Option<Ref>, mut spec: ContainerSpec) {
        let asked = std::time::Instant::now();
        let limits = &self.state.limits;
        if self.containers.len() as u32 >= limits.max_containers {
            let message = format!(
                "this session already has {} containers",
                limits.max_containers
            );
            return self.error(reference, codes::LIMIT_REACHED, message).await;
        }
        crate::pool::apply_defaults(&mut spec, limits);
        let used: u64 = self.granted.values().sum();
        let wanted = spec.memory.map_or(0, |m| m.bytes());
        if used + wanted > limits.max_session_memory {
            let message = format!(
                "the session's containers may use {} MiB together; {} MiB are taken",
                limits.max_session_memory >> 20,
                used >> 20
            );
            return self.error(reference, codes::LIMIT_REACHED, message).await;
        }
        if let Err(e) = spec.validate() {
            return self
                .spec_error(reference, e.code(), e.field(), e.message())
                .await;
        }
        let name = spec
            .name
            .clone()
            .unwrap_or_else(|| format!("c{}", self.next_handle));
        if self.containers.contains_key(&name) {
            let message = format!("this session already has a container named {name:?}");
            return self
                .spec_error(reference, "name_in_use", "name", &message)
                .await;
        }
        // Names, images built here and container:NAME references are the session's own.
        let image = spec.image.clone();
        spec.image = self.store_image(&image);
        // A container in another's UTS namespace has that one's hostname.
        if *spec.namespaces.get(NsKind::Uts) == NsMode::Private {
            spec.hostname = spec.hostname.or(Some(name.clone()));
        }
        spec.name = Some(self.runtime_name(&name));
        for kind in NsKind::ALL {
            if let NsMode::Container(other) = spec.namespaces.get_mut(kind) {
                if !self.containers.contains_key(other.as_str()) {
                    let message = format!("no container named {other:?} in this session");
                    let field = format!("namespaces.{}", kind.proc_name());
                    return self
                        .spec_error(reference, codes::UNKNOWN_CONTAINER, &field, &message)
                        .await;
                }
                *other = format!("{}-{other}", self.tag);
            }
        }
        let tty = spec.tty;
        let (stdio, pipes) = match stdio_for(tty) {
            Ok(v) => v,
            Err(e) => return self.error(reference, codes::RUNTIME, e.to_string()).await,
        };
        let Some(volume_root) = self.volume_root(reference, &spec).await else {
            return;
        };
        let Some(joining) = self.join_network(reference, &spec).await else {
            return;
        };
        let ports = joining
            .as_ref()
            .map(|j| j.ports.clone())
            .unwrap_or_default();
        let rt = self.state.runtime.clone();
        let pool = self.state.pool.clone().filter(|p| p.serves(&spec.image));
        let pooled_image = pool.is_some();
        let created = {
            let spec = spec.clone();
            let (name, hostname) = (name.clone(), spec.hostname.clone().unwrap_or_default());
            tokio::task::spawn_blocking(move || {
                let opts = CreateOptions {
                    hosts_file: joining.is_some(),
                    volume_root,
                    ..CreateOptions::default()
                };
                // A pooled container when one fits: its name and limits become this request's
                // now, its hostname at `Start`.
                let pooled =
                    pool.and_then(|p| p.take(&spec))
                        .map(|mut c| match rt.adopt(&mut c, &spec) {
                            Ok(()) => Ok(c),
                            Err(e) => {
                                let id = c.id.clone();
                                drop(c);
                                let _ = rt.remove(&id);
                                Err(e)
                            }
                        });
                let from_pool = pooled.is_some();
                let mut c = match pooled {
                    Some(c) => c?,
                    None => rt.create(&spec, &opts, stdio)?,
                };
                let mut ip = None;
                if let Some(mut j) = joining {
                    // Attached before it starts: its first command already has its network.
                    j.attachment.container_id = c.id.clone();
                    let attached = rt.attach_network(&c, j.attachment).and_then(|result| {
                        let addr = crate::runtime::cni::result_ipv4(&result).unwrap_or_default();
                        let mut entries = j.others;
                        entries.push((addr.clone(), name, hostname));
                        let text = crate::network::plan::hosts_file(&entries);
                        rt.write_hosts(&c.id, &text).map(|()| addr)
                    });
                    match attached {
                        Ok(addr) => ip = Some(addr),
                        Err(e) => {
                            let id = c.id.clone();
                            drop(c);
                            let _ = rt.remove(&id);
                            return Err(e);
                        }
                    }
                }
                match from_pool {
                    true => c.start_as(Launch {
                        hostname: spec.hostname.clone(),
                    })?,
                    false => c.start()?,
                }
                Ok::<_, RuntimeError>((c, ip, from_pool))
            })
            .await
        };
        let (container, ip, from_pool) = match created {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                self.state.metrics.start_failed();
                self.state.networks.release_ports(&ports);
                return self.runtime_error(reference, e).await;
            }
            Err(e) => {
                self.state.metrics.start_failed();
                self.state.networks.release_ports(&ports);
                return self.error(reference, codes::RUNTIME, e.to_string()).await;
            }
        };
        if let Some(ip) = &ip {
            self.members.insert(
                name.clone(),
                network::Member {
                    id: container.id.clone(),
                    ip: ip.clone(),
                    hostname: spec.hostname.clone().unwrap_or_default(),
                    ports,
                },
            );
            self.refresh_hosts().await;
        }
        self.exited.remove(&name);
        self.exited_output.remove(&name);
        self.lesson_touched();
        let info = ContainerInfo {
            id: container.id.clone(),
            name: name.clone(),
            image,
            hostname: spec.hostname.clone().unwrap_or_default(),
            cmd: spec.cmd.clone(),
            handles: Vec::new(),
            address: ip,
            ports: spec.publish.clone(),
            runtime: spec.runtime_name().to_string(),
        };
        self.containers.insert(name.clone(), info);
        self.state.containers.fetch_add(1, Relaxed);
        self.state.metrics.started(asked.elapsed(), from_pool);
        if from_pool {
            let (rt, id, spec) = (
                self.state.runtime.clone(),
                container.id.clone(),
                spec.clone(),
            );
            tokio::task::spawn_blocking(move || {
                if let Err(e) = rt.record_adopted(&id, &spec) {
                    tracing::warn!(container = %id, "record a pooled container's settings: {e}");
                }
            });
        }
        if pooled_image {
            self.state.metrics.pool(from_pool);
        }
        self.granted.insert(name.clone(), wanted);
        self.subjects.insert(
            name.clone(),
            Subject {
                name: name.clone(),
                id: container.id.clone(),
                pid: container.pid,
                cpu_limit: spec.cpus,
            },
        );
        let handle = self.attach(container, pipes);
        if let Some(info) = self.containers.get_mut(&name) {
            info.handles.push(handle);
        }
        let container = self.containers[&name].clone();
        self.send(ServerMsg::Created {
            reference,
            container,
            handle,
        })
        .await;
        self.report_to_workshop();
    }

    async fn exec(
        &mut self,
        reference: Option<Ref>,
        target: &str,
        cmd: Vec<String>,
        env: Vec<String>,
    ) {
        let Some(info) = self.require(reference, target).await else {
            return;
        };
        let cmd = if cmd.is_empty() {
            vec!["sh".to_string()]
        } else {
            cmd
        };
        let rt = self.state.runtime.clone();
        let id = info.id.clone();
        let started = tokio::task::spawn_blocking(move || {
            let mut c = rt.exec(&id, cmd, env, true, StdioSpec::Tty)?;
            c.start()?;
            Ok::<Container, RuntimeError>(c)
        })
        .await;
        let process = match started {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return self.runtime_error(reference, e).await,
            Err(e) => return self.error(reference, codes::RUNTIME, e.to_string()).await,
        };
        let handle = self.attach(process, None);
        let Some(info) = self.containers.get_mut(&info.name) else {
            return;
        };
        info.handles.push(handle);
        let container = info.clone();
        self.send(ServerMsg::Created {
            reference,
            container,
            handle,
        })
        .await;
    }

    async fn remove(&mut self, reference: Option<Ref>, target: &str) {
        let Some(info) = self.require(reference, target).await else {
            return;
        };
        // Gone from the session now (its name free for a new container at once); torn down
        // in the background.
        self.forget(&info.name);
        let (rt, id) = (self.state.runtime.clone(), info.id.clone());
        rt.release_name(&self.runtime_name(&info.name), &id);
        self.removing
            .spawn_blocking(move || remove_quietly(&rt, &id));
        while self.removing.try_join_next().is_some() {}
        self.send_state(reference).await;
    }

    fn forget(&mut self, name: &str) {
        self.lesson_touched();
        if self.leave_network(name) {
            self.hosts_stale = true;
        }
        self.granted.remove(name);
        self.subjects.remove(name);
        self.watched
            .remove(&ViewTarget::Container(name.to_string()));
        if let Some(info) = self.containers.remove(name) {
            self.state.containers.fetch_sub(1, Relaxed);
            for h in info.handles {
                self.terminals.remove(&h);
            }
        }
    }

    /// Start forwarding a created process's output, and watch for its end.
    fn attach(&mut self, mut process: Container, pipes: Option<Pipes>) -> Handle {
        let handle = self.next_handle;
        self.next_handle += 1;
        let limits = &self.state.limits;
        let flow = Flow::new(limits.flow_high_bytes, limits.flow_low_bytes);
        let mut readers = Vec::new();
        let (input, pty) = match (process.pty.take(), pipes) {
            (Some(master), _) => {
                let pty = Arc::new(AsyncDescriptor::new(master).expect("a pty master"));
                readers.push(spawn_reader(
                    pty.clone(),
                    FrameKind::Output,
                    handle,
                    flow.clone(),
                    self.output.clone(),
                ));
                (pty.clone(), Some(pty))
            }
            (None, Some(p)) => {
                for (fd, kind) in [(p.stdout, FrameKind::Output), (p.stderr, FrameKind::Stderr)] {
                    let fd = Arc::new(AsyncDescriptor::new(fd).expect("a pipe"));
                    readers.push(spawn_reader(
                        fd,
                        kind,
                        handle,
                        flow.clone(),
                        self.output.clone(),
                    ));
                }
                (
                    Arc::new(AsyncDescriptor::new(p.stdin).expect("a pipe")),
                    None,
                )
            }
            (None, None) => unreachable!("a process has a pty or pipes"),
        };
        let signaller = process.signaller().expect("a helper channel");
        let input = Some(spawn_writer(input));
        self.terminals.insert(
            handle,
            Terminal {
                container: process.id.clone(),
                input,
                pty,
                flow,
                signaller,
                scrollback: Scrollback::new(SCROLLBACK),
            },
        );
        // The end: wait for the helper's report (its socket readable: no thread is held while
        // the container lives), collect it, let the output drain (a process left in the
        // background may keep a pty open: the readers get DRAIN, then stop), tell.
        let events = self.events.clone();
        // Not made non-blocking: the descriptor shares its file with the one `wait` reads.
        let report = process.report_fd().and_then(|fd| {
            // SAFETY: the `OwnedFd` is open and stays the same descriptor until the `AsyncFd`
            // that owns it is dropped.
            unsafe { tokio::io::unix::AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)
        });
        self.waiters.push(tokio::spawn(async move {
            match report {
                Ok(fd) => {
                    let _ = fd.readable().await;
                }
                Err(e) => tracing::warn!("wait for a container's end on a thread: {e}"),
            }
            let status = tokio::task::spawn_blocking(move || process.wait())
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
            for mut reader in readers {
                if tokio::time::timeout(DRAIN, &mut reader).await.is_err() {
                    reader.abort();
                }
            }
            let _ = events.send(Event::Exited { handle, status });
        }));
        handle
    }

    async fn on_event(&mut self, event: Event) {
        if matches!(event, Event::Exited { .. } | Event::BuildEnded(_)) {
            self.lesson_touched();
        }
        match event {
            Event::Build(msg) => self.send(msg).await,
            Event::BuildEnded(msg) => {
                self.building = false;
                let built = matches!(msg, ServerMsg::Built { .. });
                self.send(msg).await;
                if built {
                    // Every page's picker lists the new image.
                    self.images(None).await;
                }
                self.on_build_ended(built).await;
            }
            Event::Probed {
                generation,
                probe,
                outcome,
            } => self.on_probed(generation, probe, outcome).await,
            Event::SolveExec { generation, result } => self.on_solve_exec(generation, result).await,
            Event::Observed { observer, updates } => {
                self.observer = Some(observer);
                for (target, update) in updates {
                    // Unwatched, or gone, while the pass ran: its changes are not wanted.
                    if self.watched.contains(&target) {
                        let update = Box::new(update);
                        self.send(ServerMsg::View { target, update }).await;
                    }
                }
            }
            Event::Exited { handle, status } => {
                let Some(term) = self.terminals.remove(&handle) else {
                    return;
                };
                let status = status.unwrap_or(ExitStatus {
                    code: 255,
                    signal: None,
                    oom_killed: false,
                });
                self.send(ServerMsg::Exited {
                    handle,
                    container: term.container.clone(),
                    code: status.code,
                    signal: status.signal,
                    oom_killed: status.oom_killed,
                })
                .await;
                // The main process's end is the container's.
                let main = self
                    .containers
                    .iter()
                    .find(|(_, c)| c.handles.first() == Some(&handle))
                    .map(|(name, _)| name.clone());
                match main {
                    Some(name) => {
                        self.state.metrics.exited(status.oom_killed);
                        let output = lesson::tail(&term.scrollback.contents());
                        self.exited
                            .insert(name.clone(), (status.code, status.oom_killed));
                        self.exited_output.insert(name.clone(), output);
                        // What a learner could grow without end: the records of ended
                        // containers are kept for the last few names only.
                        while self.exited.len() > EXITED_KEPT {
                            let Some(oldest) = self.exited.keys().next().cloned() else {
                                break;
                            };
                            if oldest == name {
                                break;
                            }
                            self.exited.remove(&oldest);
                            self.exited_output.remove(&oldest);
                        }
                        self.forget(&name);
                        self.send_state(None).await;
                        self.report_to_workshop();
                    }
                    None => {
                        for info in self.containers.values_mut() {
                            info.handles.retain(|h| *h != handle);
                        }
                    }
                }
            }
        }
    }

    async fn spec_error(&self, reference: Option<Ref>, code: &str, field: &str, message: &str) {
        self.send(ServerMsg::Error {
            reference,
            code: code.to_string(),
            message: format!("{field}: {message}"),
            field: Some(field.to_string()),
        })
        .await;
    }

    async fn runtime_error(&self, reference: Option<Ref>, e: RuntimeError) {
        match &e {
            RuntimeError::InvalidSpec(s) => {
                self.spec_error(reference, s.code(), s.field(), s.message())
                    .await
            }
            RuntimeError::Spec(s) => {
                self.send(ServerMsg::Error {
                    reference,
                    code: s.code().to_string(),
                    message: s.to_string(),
                    field: s.field(),
                })
                .await
            }
            _ => {
                tracing::warn!(session = %self.tag, "runtime: {e}");
                match exhausted(&e.to_string()) {
                    Some(what) => {
                        let message = format!("{what}; try again in a while ({e})");
                        self.error(reference, codes::HOST_EXHAUSTED, message).await
                    }
                    None => self.error(reference, codes::RUNTIME, e.to_string()).await,
                }
            }
        }
    }

    /// Remove every container (a lesson starts over); the network stays.
    async fn remove_all(&mut self) {
        self.remove_containers().await;
        let names: Vec<String> = self.containers.keys().cloned().collect();
        for name in names {
            self.forget(&name);
        }
        self.refresh_hosts().await;
        self.send_state(None).await;
    }

    /// Remove the session's containers in the runtime, one after the other (in parallel, 2000
    /// teardowns at once fight over the kernel's network and cgroup locks: 2.7x slower in
    /// bench/density.py), and wait for those being removed already (its books are the
    /// caller's to clear).
    async fn remove_containers(&mut self) {
        let ids: Vec<String> = self.containers.values().map(|c| c.id.clone()).collect();
        let rt = self.state.runtime.clone();
        self.removing.spawn_blocking(move || {
            for id in ids {
                remove_quietly(&rt, &id);
            }
        });
        while self.removing.join_next().await.is_some() {}
    }

    /// Remove every container of the session (the connection is gone, or the server stops).
    async fn close(&mut self) {
        self.leave_workshop();
        self.remove_containers().await;
        self.terminals.clear();
        self.state
            .containers
            .fetch_sub(self.containers.len(), Relaxed);
        self.containers.clear();
        self.granted.clear();
        let networked: Vec<String> = self.members.keys().cloned().collect();
        for name in networked {
            self.leave_network(&name);
        }
        self.drop_network().await;
        self.drop_volumes().await;
        self.remove_images().await;
        // Every process has ended with its container; their waiters finish at once.
        for w in self.waiters.drain(..) {
            let _ = tokio::time::timeout(DRAIN * 4, w).await;
        }
    }
}

fn too_large(len: usize, max: usize) -> String {
    format!("a frame of {len} bytes is larger than the {max} this server reads")
}

/// Parse a text frame: a known `type` that does not fit is `bad_message`; an unknown one is
/// `unknown_type`.
fn parse(text: &str) -> Result<ClientMsg, (&'static str, String)> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| (codes::BAD_MESSAGE, format!("not JSON: {e}")))?;
    match value.get("type").and_then(|t| t.as_str()) {
        None => return Err((codes::BAD_MESSAGE, "a message needs a \"type\"".into())),
        Some(t) if !ClientMsg::TYPES.contains(&t) => {
            return Err((codes::UNKNOWN_TYPE, format!("unknown message type {t:?}")))
        }
        Some(_) => {}
    }
    serde_json::from_value(value).map_err(|e| (codes::BAD_MESSAGE, e.to_string()))
}

/// Remove a container, logging what goes wrong (nobody waits for the answer).
fn remove_quietly(rt: &crate::runtime::container::Runtime, id: &str) {
    match rt.remove(id) {
        // Gone already: it shared a pid namespace whose init went first.
        Ok(()) | Err(RuntimeError::NotFound(_)) => {}
        Err(e) => tracing::warn!(container = %id, "remove: {e}"),
    }
}

/// Input frames queued for one terminal.
const INPUT_QUEUE: usize = 256;

/// One writer per terminal, so keystrokes arrive in the order they were typed.
fn spawn_writer(target: Arc<AsyncDescriptor>) -> mpsc::Sender<Vec<u8>> {
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(INPUT_QUEUE);
    tokio::spawn(async move {
        while let Some(data) = rx.recv().await {
            if target.write_all(&data).await.is_err() {
                break;
            }
        }
    });
    tx
}

/// Our ends of a process's pipes, without a tty.
struct Pipes {
    stdin: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

fn stdio_for(tty: bool) -> std::io::Result<(StdioSpec, Option<Pipes>)> {
    if tty {
        return Ok((StdioSpec::Tty, None));
    }
    let cloexec = nix::fcntl::OFlag::O_CLOEXEC;
    let (in_r, in_w) = nix::unistd::pipe2(cloexec)?;
    let (out_r, out_w) = nix::unistd::pipe2(cloexec)?;
    let (err_r, err_w) = nix::unistd::pipe2(cloexec)?;
    Ok((
        StdioSpec::Fds([in_r, out_w, err_w]),
        Some(Pipes {
            stdin: in_w,
            stdout: out_r,
            stderr: err_r,
        }),
    ))
}

/// What a runtime error says the host ran out of, in words an attendee understands: file
/// descriptors (EMFILE for the server, ENFILE for the whole host) or disk space (ENOSPC).
fn exhausted(text: &str) -> Option<&'static str> {
    let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    if has(&[
        "EMFILE",
        "Too many open files",
        "ENFILE",
        "Too many open files in system",
    ]) {
        Some("the server has run out of file descriptors (its limit, ulimit -n, is too low for this many terminals)")
    } else if has(&["ENOSPC", "No space left on device"]) {
        Some("the server's disk is full (no space left where it keeps containers)")
    } else {
        None
    }
}

#[cfg(test)]
mod exhausted_tests {
    #[test]
    fn descriptors_and_disk_are_named() {
        let fds = super::exhausted("init helper channel: socketpair: EMFILE: Too many open files");
        assert!(fds.unwrap().contains("file descriptors"));
        let disk = super::exhausted("write state.json: No space left on device (os error 28)");
        assert!(disk.unwrap().contains("disk is full"));
        assert_eq!(super::exhausted("mount /proc: EPERM"), None);
    }
}
