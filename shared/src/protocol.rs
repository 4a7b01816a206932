//! The WebSocket protocol between the page (or `isolab run --server`) and the server, at `/ws`.
//!
//! Control messages are JSON text frames tagged by `type` ([`ClientMsg`], [`ServerMsg`]).
//! Terminal bytes travel in binary frames ([`Frame`]): one byte of kind, four bytes of terminal
//! handle (big-endian), then the raw bytes — no base64 and no UTF-8 decoding on the way, so a
//! multi-byte character split across two reads arrives intact and the terminal puts it together.
//! `docs/protocol.md` is the reference for both sides.

use serde::{Deserialize, Serialize};

use crate::spec::ContainerSpec;

pub mod images;
pub mod lessons;
pub mod view;
pub use images::{ChangeInfo, ImageInfo, LayerInfo};
pub use lessons::{
    AttendeeContainer, AttendeeView, LessonInfo, LessonSummary, Progress, StepInfo, WorkshopBrief,
    WorkshopView,
};
pub use view::{ViewTarget, ViewUpdate};

/// Bumped on any change a peer must know about; sent in [`ServerMsg::Hello`].
pub const PROTOCOL_VERSION: u32 = 6;

/// The request a reply answers: any number the client chose, echoed back.
pub type Ref = u64;

/// A terminal: one per process with a tty (a container's command, or an `exec`'d shell), chosen
/// by the server and unique within a session.
pub type Handle = u32;

/// Client → server control messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// Create and start a container; answered by `created` (or `error`).
    Create {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        spec: Box<ContainerSpec>,
    },
    /// Start another process in a running container (a second shell); answered by `created`.
    Exec {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        /// The container's name or id.
        container: String,
        /// Default: `["sh"]`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        cmd: Vec<String>,
        /// `NAME=value` entries added to the container's environment, as `docker exec -e`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        env: Vec<String>,
    },
    /// A terminal's size changed.
    Resize {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        handle: Handle,
        rows: u16,
        cols: u16,
    },
    /// Send a signal to a terminal's process, by name (`"INT"`, `"TERM"`, `"KILL"`, …).
    Signal {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        handle: Handle,
        signal: String,
    },
    /// No more input for a terminal: a process without a tty sees its stdin closed; one with a
    /// tty is sent the terminal's end-of-file character (^D).
    Eof {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        handle: Handle,
    },
    /// Kill and remove a container; answered by `state`.
    Remove {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        container: String,
    },
    /// Ask for the session's containers; answered by `state`.
    List {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
    },
    /// The client has written `bytes` more of a terminal's output (flow control).
    Ack { handle: Handle, bytes: u64 },
    /// Send the live view of a container (or of the host) as `view` messages until `unwatch`:
    /// first every section, then only what changed.
    Watch {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        target: ViewTarget,
    },
    /// Stop sending `view` messages for a target.
    Unwatch {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        target: ViewTarget,
    },
    /// The server's images with their layer stacks; answered by `images`.
    Images {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
    },
    /// Build an image from a Dockerfile's text (no build context: COPY is refused); the log
    /// streams as `build_log`, each new layer as `build_layer`, the end as `built` or `error`.
    Build {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        /// The image's name (`-t`).
        name: String,
        dockerfile: String,
    },
    /// What a container added, changed or deleted; answered by `diff`.
    Diff {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        container: String,
    },
    /// Move a network interface from one container's namespace to another's. When `from` has
    /// no such interface, one of `kind` is made there first: a veth pair (`interface` and
    /// `interface` + `p`, the default), so the move leaves a cable between the two; or a dummy,
    /// which moves whole. Answered by `state`; the live view shows the interface leave one and
    /// appear in the other.
    MoveInterface {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        interface: String,
        from: String,
        to: String,
        /// What to make in `from` when it has no such interface; absent: veth.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kind: Option<InterfaceKind>,
    },
    /// The lessons this server offers; answered by `lessons`.
    Lessons {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
    },
    /// Start a lesson: the session's containers are removed, the lesson's are created, and its
    /// checks start; answered by `lesson`, then `progress` as steps pass. In a workshop, only
    /// the workshop's lesson may be (re)started.
    LessonStart {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        lesson: String,
    },
    /// Run a step's solution (what the learner would have typed); the step is marked solved.
    LessonSolve {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        step: u32,
    },
    /// Join a workshop with its code and a display name; answered by `joined`, then `lesson`.
    Join {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        code: String,
        name: String,
    },
    /// Become the server's trainer with its admin token; answered by `workshops`.
    Admin {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        token: String,
    },
    /// (Trainer) Create a workshop running a lesson; answered by `workshop`, sent again
    /// whenever an attendee joins, leaves or progresses.
    WorkshopCreate {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        lesson: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
    },
    /// (Trainer) Follow an existing workshop's dashboard (`workshop` messages).
    WorkshopOpen {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        id: String,
    },
    /// (Trainer) End a workshop: every attendee's containers are removed.
    WorkshopEnd {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        id: String,
    },
    /// (Trainer) Watch an attendee's terminal read-only: answered by `spectating` with a handle
    /// of this session, whose output frames follow (the last 64 KiB first). Input, resizes and
    /// signals for that handle are refused.
    Spectate {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        workshop: String,
        attendee: String,
        /// The attendee's terminal handle (from `workshop`).
        handle: Handle,
    },
    /// Stop watching.
    Unspectate {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        handle: Handle,
    },
}

impl ClientMsg {
    /// Every `type` a client may send (a server tells an unknown type from a malformed message).
    pub const TYPES: [&'static str; 24] = [
        "create",
        "exec",
        "resize",
        "signal",
        "eof",
        "remove",
        "list",
        "ack",
        "watch",
        "unwatch",
        "images",
        "build",
        "diff",
        "move_interface",
        "lessons",
        "lesson_start",
        "lesson_solve",
        "join",
        "admin",
        "workshop_create",
        "workshop_open",
        "workshop_end",
        "spectate",
        "unspectate",
    ];

    /// The `ref` the reply will echo.
    pub fn reference(&self) -> Option<Ref> {
        match self {
            ClientMsg::Create { reference, .. }
            | ClientMsg::Exec { reference, .. }
            | ClientMsg::Resize { reference, .. }
            | ClientMsg::Signal { reference, .. }
            | ClientMsg::Eof { reference, .. }
            | ClientMsg::Remove { reference, .. }
            | ClientMsg::List { reference }
            | ClientMsg::Watch { reference, .. }
            | ClientMsg::Unwatch { reference, .. }
            | ClientMsg::Images { reference }
            | ClientMsg::Build { reference, .. }
            | ClientMsg::Diff { reference, .. }
            | ClientMsg::MoveInterface { reference, .. }
            | ClientMsg::LessonStart { reference, .. }
            | ClientMsg::LessonSolve { reference, .. }
            | ClientMsg::Join { reference, .. }
            | ClientMsg::Admin { reference, .. }
            | ClientMsg::WorkshopCreate { reference, .. }
            | ClientMsg::WorkshopOpen { reference, .. }
            | ClientMsg::WorkshopEnd { reference, .. }
            | ClientMsg::Spectate { reference, .. }
            | ClientMsg::Unspectate { reference, .. } => *reference,
            ClientMsg::Lessons { reference } => *reference,
            ClientMsg::Ack { .. } => None,
        }
    }
}

/// What `move_interface` makes in the source container when it has no interface of that name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InterfaceKind {
    /// A veth pair: one end moves, its peer (the name + `p`) stays.
    #[default]
    Veth,
    /// A dummy interface, which moves whole.
    Dummy,
}

impl InterfaceKind {
    /// Every kind, in the order a page or a help text lists them.
    pub const ALL: [InterfaceKind; 2] = [InterfaceKind::Veth, InterfaceKind::Dummy];

    /// Its name on the wire (and on the command line): `veth`, `dummy`.
    pub fn as_str(self) -> &'static str {
        match self {
            InterfaceKind::Veth => "veth",
            InterfaceKind::Dummy => "dummy",
        }
    }
}

impl std::fmt::Display for InterfaceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for InterfaceKind {
    type Err = String;

    fn from_str(s: &str) -> Result<InterfaceKind, String> {
        InterfaceKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not an interface kind isolab makes (veth or dummy)"))
    }
}

/// Server → client control messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// The first message on every connection.
    Hello {
        version: u32,
        limits: Limits,
        /// The containers this session already has (after a reload or a reconnect), whose
        /// terminals' last output follows as binary frames.
        containers: Vec<ContainerInfo>,
        /// The session's lesson and progress, when it follows one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lesson: Option<LessonState>,
        /// The workshop this session joined, and the name it joined with.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workshop: Option<Joined>,
    },
    /// A container (or an `exec`'d process) runs; its terminal is `handle`.
    Created {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        container: ContainerInfo,
        handle: Handle,
    },
    /// A terminal's process ended. For a container's main process, the container is gone too.
    Exited {
        handle: Handle,
        /// The container's id.
        container: String,
        /// Exit code, or 128 + the signal.
        code: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signal: Option<i32>,
        oom_killed: bool,
    },
    /// A request failed, or a frame could not be used.
    Error {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        /// Stable and machine-readable: see [`codes`], or a spec's own code
        /// (`invalid_hostname`, `memory_too_small`, …).
        code: String,
        message: String,
        /// The spec field at fault, for a refused `create`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        field: Option<String>,
    },
    /// The session's containers, in answer to `list` and `remove`, and whenever they change.
    State {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        containers: Vec<ContainerInfo>,
    },
    /// The live view of a watched target: the sections that changed (all of them, the first
    /// time after `watch`). A container's view ends with its container (a `state` without it).
    View {
        target: ViewTarget,
        #[serde(flatten)]
        update: Box<ViewUpdate>,
    },
    /// The server's images, in answer to `images`, and after a build adds one.
    Images {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        images: Vec<ImageInfo>,
    },
    /// Output of a build: its steps and what each RUN printed.
    BuildLog {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        text: String,
    },
    /// A build made a layer (the stack so far has `index + 1` layers).
    BuildLayer {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        index: u32,
        layer: LayerInfo,
    },
    /// A build ended with an image.
    Built {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        image: ImageInfo,
    },
    /// A container's changes, in answer to `diff`.
    Diff {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        container: String,
        changes: Vec<ChangeInfo>,
    },
    /// The lessons this server offers.
    Lessons {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        lessons: Vec<LessonSummary>,
    },
    /// A lesson started (its containers follow as `created`).
    Lesson {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        #[serde(flatten)]
        state: LessonState,
    },
    /// The learner's progress changed (a check passed, or failed for a new reason).
    Progress { progress: Progress },
    /// This session joined a workshop.
    Joined {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        #[serde(flatten)]
        joined: Joined,
    },
    /// (Trainer) The server's workshops, in answer to `admin`.
    Workshops {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        workshops: Vec<WorkshopView>,
    },
    /// (Trainer) A workshop's dashboard, whenever it changes.
    Workshop {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        workshop: WorkshopView,
    },
    /// (Trainer) An attendee's terminal is watched read-only under `handle`.
    Spectating {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        handle: Handle,
        workshop: String,
        attendee: String,
        /// The attendee's display name and container, for the terminal's title.
        name: String,
        container: String,
    },
}

/// A lesson and how far the session is in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LessonState {
    pub lesson: LessonInfo,
    pub progress: Progress,
}

/// A workshop joined, and the display name the session joined with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joined {
    pub workshop: WorkshopBrief,
    pub name: String,
}

impl ServerMsg {
    /// An `error` reply.
    pub fn error(reference: Option<Ref>, code: &str, message: impl Into<String>) -> ServerMsg {
        ServerMsg::Error {
            reference,
            code: code.to_string(),
            message: message.into(),
            field: None,
        }
    }
}

/// Stable error codes of the protocol itself.
pub mod codes {
    /// A text frame that is not JSON, or not a message.
    pub const BAD_MESSAGE: &str = "bad_message";
    /// A message whose `type` this server does not know.
    pub const UNKNOWN_TYPE: &str = "unknown_type";
    /// A binary frame too short for its header, or of an unknown kind.
    pub const BAD_FRAME: &str = "bad_frame";
    /// A frame larger than `limits.max_frame_bytes`.
    pub const FRAME_TOO_LARGE: &str = "frame_too_large";
    /// No container of this session by that name or id.
    pub const UNKNOWN_CONTAINER: &str = "unknown_container";
    /// No terminal of this session with that handle.
    pub const UNKNOWN_HANDLE: &str = "unknown_handle";
    /// A signal name that is not one of the forwarded signals.
    pub const UNKNOWN_SIGNAL: &str = "unknown_signal";
    /// The session has reached a limit (containers, memory).
    pub const LIMIT_REACHED: &str = "limit_reached";
    /// The runtime could not do it; the message says which step failed.
    pub const RUNTIME: &str = "runtime";
    /// The server's host ran out of something every container needs (file descriptors, disk
    /// space): not the attendee's fault; try again later.
    pub const HOST_EXHAUSTED: &str = "host_exhausted";
    /// The session was idle too long, or reached its maximum lifetime: its containers are
    /// removed and the connection closes.
    pub const SESSION_ENDED: &str = "session_ended";
    /// A trainer's request without the admin token, or with a wrong one.
    pub const FORBIDDEN: &str = "forbidden";
    /// No lesson by that name on this server.
    pub const UNKNOWN_LESSON: &str = "unknown_lesson";
    /// No live workshop with that code or id (it may have ended).
    pub const UNKNOWN_WORKSHOP: &str = "unknown_workshop";
    /// The session follows no lesson (`lesson_solve` without `lesson_start`).
    pub const NO_LESSON: &str = "no_lesson";
    /// A display name already taken in the workshop, or not usable (empty, too long).
    pub const BAD_NAME: &str = "bad_name";
    /// Input, a resize or a signal for a terminal watched read-only.
    pub const READ_ONLY: &str = "read_only";
}

/// What the server allows, sent in `hello`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Containers one session may have at once.
    pub max_containers: u32,
    /// Memory all of a session's containers may ask for together, in bytes.
    pub max_session_memory: u64,
    /// Applied when a spec says nothing.
    pub default_memory: u64,
    pub default_cpus: f64,
    pub default_pids: i64,
    /// Writable layer cap in bytes (`storage_size`) of a container whose spec sets none; 0: none.
    #[serde(default)]
    pub default_storage: u64,
    /// The largest frame the server reads.
    pub max_frame_bytes: u64,
    /// The server stops reading a terminal with this many bytes sent and not acknowledged…
    pub flow_high_bytes: u64,
    /// …and reads again below this many.
    pub flow_low_bytes: u64,
    /// Seconds a session's containers outlive its last connection.
    pub grace_secs: u64,
    /// Seconds without a request or keystroke after which a session ends.
    #[serde(default)]
    pub idle_secs: u64,
    /// Seconds after which a session ends whatever it does.
    #[serde(default)]
    pub max_lifetime_secs: u64,
}

impl Default for Limits {
    /// A server's defaults: 8 containers and 2 GiB per session; 256 MiB, 1 CPU, 128 pids and a
    /// 200 MiB writable layer per container; frames up to 1 MiB; a 512 KiB flow-control window; a session ends 120 s after
    /// its last connection, after 30 idle minutes, or after 4 hours.
    fn default() -> Limits {
        Limits {
            max_containers: 8,
            max_session_memory: 2 << 30,
            default_memory: 256 << 20,
            default_cpus: 1.0,
            default_pids: 128,
            default_storage: 200 << 20,
            max_frame_bytes: 1 << 20,
            flow_high_bytes: 512 << 10,
            flow_low_bytes: 128 << 10,
            grace_secs: 120,
            idle_secs: 30 * 60,
            max_lifetime_secs: 4 * 3600,
        }
    }
}

/// A container as the page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub image: String,
    pub hostname: String,
    pub cmd: Vec<String>,
    /// Its terminals: the main process's first, then `exec`'d ones still running.
    pub handles: Vec<Handle>,
    /// Its address on the session's network, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Ports published on the server's loopback (`HOSTPORT:CONTAINERPORT[/udp]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
    /// The OCI runtime that runs it: `isolab`, `runc` or `crun` (empty from older servers).
    #[serde(default)]
    pub runtime: String,
}

/// What a binary frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// Server → client: bytes a terminal wrote (for a process without a tty: its stdout).
    Output = 1,
    /// Client → server: bytes typed into a terminal (or a process's stdin).
    Input = 2,
    /// Server → client: a process without a tty wrote these to its stderr.
    Stderr = 3,
}

/// The size of a binary frame's header: kind (1 byte) and handle (4 bytes, big-endian).
pub const FRAME_HEADER: usize = 5;

/// A binary frame, borrowed from the bytes it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub kind: FrameKind,
    pub handle: Handle,
    pub data: &'a [u8],
}

/// Why a binary frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("a binary frame needs {FRAME_HEADER} bytes of header, got {0}")]
    TooShort(usize),
    #[error("unknown binary frame kind {0}")]
    UnknownKind(u8),
}

impl<'a> Frame<'a> {
    pub fn new(kind: FrameKind, handle: Handle, data: &'a [u8]) -> Frame<'a> {
        Frame { kind, handle, data }
    }

    /// The bytes to send.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FRAME_HEADER + self.data.len());
        out.push(self.kind as u8);
        out.extend_from_slice(&self.handle.to_be_bytes());
        out.extend_from_slice(self.data);
        out
    }

    pub fn decode(bytes: &'a [u8]) -> Result<Frame<'a>, FrameError> {
        if bytes.len() < FRAME_HEADER {
            return Err(FrameError::TooShort(bytes.len()));
        }
        let kind = match bytes[0] {
            1 => FrameKind::Output,
            2 => FrameKind::Input,
            3 => FrameKind::Stderr,
            other => return Err(FrameError::UnknownKind(other)),
        };
        let handle = Handle::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
        Ok(Frame {
            kind,
            handle,
            data: &bytes[FRAME_HEADER..],
        })
    }
}

#[cfg(test)]
mod tests;
