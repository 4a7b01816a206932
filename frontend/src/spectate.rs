//! Attendees' terminals the trainer watches, read-only: which are open (each the answer to a
//! `spectate`, under a handle of the trainer's own connection), and the rule that nothing but
//! acknowledgements goes out for them — no keystrokes, resizes, signals or end-of-file.
//!
//! Plain Rust, unit-tested on the host. `AppState` keeps the open ones in [`Spectators`]; the
//! socket owner keeps a [`Guard`] of every handle spectated on its connection and checks each
//! frame it sends against it; a terminal's component asks its [`TerminalMode`] what it may send.

use std::collections::BTreeSet;

use isolab_shared::protocol::{ClientMsg, Handle, ServerMsg};

use crate::state::Exit;

/// What a terminal on the page may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminalMode {
    /// One of the session's own: keystrokes and its size go to the server.
    Interactive,
    /// Someone else's, watched: only the acknowledgements of what it drew.
    ReadOnly,
}

impl TerminalMode {
    /// Typed keys become input frames.
    pub fn sends_input(self) -> bool {
        self == TerminalMode::Interactive
    }

    /// A changed size becomes a `resize`.
    pub fn sends_resize(self) -> bool {
        self == TerminalMode::Interactive
    }

    /// What it drew is acknowledged (flow control applies to watched terminals too).
    pub fn acks(self) -> bool {
        true
    }
}

/// A watched terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spectator {
    /// Our handle for it (its output frames carry it).
    pub handle: Handle,
    pub workshop: String,
    /// The attendee's id.
    pub attendee: String,
    /// The attendee's display name and container.
    pub name: String,
    pub container: String,
    /// The attendee's own handle for this terminal, when the page asked for it.
    pub source: Option<Handle>,
    /// Its process ended.
    pub exit: Option<Exit>,
}

impl Spectator {
    /// The terminal's title: `NAME · container`.
    pub fn title(&self) -> String {
        format!("{} · {}", self.name, self.container)
    }
}

/// The terminals watched on this connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spectators {
    pub list: Vec<Spectator>,
}

impl Spectators {
    /// A `spectating` arrived (a handle the page already shows is refreshed).
    pub fn add(&mut self, spectator: Spectator) {
        match self.list.iter_mut().find(|s| s.handle == spectator.handle) {
            Some(known) => *known = spectator,
            None => self.list.push(spectator),
        }
    }

    /// The trainer closed it (`unspectate` sent).
    pub fn close(&mut self, handle: Handle) {
        self.list.retain(|s| s.handle != handle);
    }

    /// A new connection: its handles are new ones, and nothing is watched.
    pub fn clear(&mut self) {
        self.list.clear();
    }

    pub fn get(&self, handle: Handle) -> Option<&Spectator> {
        self.list.iter().find(|s| s.handle == handle)
    }

    /// Its process ended; false if the handle is not a watched one.
    pub fn exited(&mut self, handle: Handle, exit: Exit) -> bool {
        match self.list.iter_mut().find(|s| s.handle == handle) {
            Some(s) => {
                s.exit = Some(exit);
                true
            }
            None => false,
        }
    }

    /// Whether attendee `attendee`'s terminal `source` of workshop `workshop` is watched.
    pub fn watching(&self, workshop: &str, attendee: &str, source: Handle) -> bool {
        self.list
            .iter()
            .any(|s| s.workshop == workshop && s.attendee == attendee && s.source == Some(source))
    }
}

/// Every handle spectated on the current connection, and what may be sent for it. Kept by
/// the socket owner, beside the components: a watched terminal stays read-only after it is
/// closed (handles are never reused within a connection).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Guard {
    read_only: BTreeSet<Handle>,
}

impl Guard {
    /// Learns the handles a message makes read-only.
    pub fn on_message(&mut self, msg: &ServerMsg) {
        if let ServerMsg::Spectating { handle, .. } = msg {
            self.read_only.insert(*handle);
        }
    }

    /// A new connection.
    pub fn reset(&mut self) {
        self.read_only.clear();
    }

    pub fn mode(&self, handle: Handle) -> TerminalMode {
        if self.read_only.contains(&handle) {
            TerminalMode::ReadOnly
        } else {
            TerminalMode::Interactive
        }
    }

    /// Whether keystrokes for `handle` may go out.
    pub fn allows_input(&self, handle: Handle) -> bool {
        self.mode(handle).sends_input()
    }

    /// Whether a control message may go out: no resize, signal or end-of-file for a watched
    /// terminal; everything else (its `ack`s included) may.
    pub fn allows(&self, msg: &ClientMsg) -> bool {
        match msg {
            ClientMsg::Resize { handle, .. } => self.mode(*handle).sends_resize(),
            ClientMsg::Signal { handle, .. } | ClientMsg::Eof { handle, .. } => {
                self.allows_input(*handle)
            }
            ClientMsg::Ack { handle, .. } => self.mode(*handle).acks(),
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests;
