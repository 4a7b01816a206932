//! The session's network as the page acts on it (issue 6): published ports as the cards and
//! the picture show them, and the "move an interface" control — what the user picked, the
//! checks made before sending (the server's own rules), the request in flight, and where its
//! error belongs.
//!
//! Plain Rust, unit-tested on the host. `AppState` holds one [`Mover`] and routes the answer
//! to a `move_interface` (its `state` or `error`, matched by `ref`) into it. The picture of
//! the network is [`crate::view::picture`].

use isolab_shared::protocol::{ClientMsg, InterfaceKind, Ref};
use isolab_shared::spec::PortMapping;

use crate::state::Problem;

/// The interface the move control starts with: moved from a container that has none, it
/// becomes a veth cable (`cable0` there, `cable0p` left behind), or a dummy that moves whole.
pub const DEFAULT_INTERFACE: &str = "cable0";

/// What the move control says about it.
pub const MOVE_HINT: &str = "every interface lives in exactly one network namespace; moving one \
takes it out of one container and into another — a veth pair is a cable whose two ends can \
live in different namespaces (one end moves, its peer stays), a dummy moves whole";

/// The kind select's options: the value sent, and what the option says.
pub fn kind_options() -> [(InterfaceKind, &'static str); 2] {
    InterfaceKind::ALL.map(|kind| {
        let label = match kind {
            InterfaceKind::Veth => "veth pair",
            InterfaceKind::Dummy => "dummy",
        };
        (kind, label)
    })
}

/// Where published ports are: the server's loopback.
pub const LOOPBACK: &str = "127.0.0.1";

/// A published port (`8080:80`, `5353:53/udp`), as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub host: u16,
    pub container: u16,
    /// `tcp` or `udp`.
    pub protocol: &'static str,
}

impl Port {
    /// One of `ContainerInfo.ports` (or a picture attachment's); `None` if it is not
    /// `HOSTPORT:CONTAINERPORT[/tcp|/udp]`.
    pub fn parse(text: &str) -> Option<Port> {
        PortMapping::parse(text.trim()).map(|p| Port {
            host: p.host_port,
            container: p.container_port,
            protocol: p.protocol,
        })
    }

    /// Every port of a list that parses, in order.
    pub fn all(list: &[String]) -> Vec<Port> {
        list.iter().filter_map(|p| Port::parse(p)).collect()
    }

    /// `/udp` for UDP, nothing for TCP.
    fn suffix(&self) -> &'static str {
        if self.protocol == "udp" {
            "/udp"
        } else {
            ""
        }
    }

    /// The card's text: `:8080 → :80`.
    pub fn short(&self) -> String {
        format!(":{} → :{}{}", self.host, self.container, self.suffix())
    }

    /// The picture's label: `127.0.0.1:8080 → :80`.
    pub fn label(&self) -> String {
        format!("{LOOPBACK}{}", self.short())
    }

    /// A link to it for TCP ports (HTTP is the likely use); none for UDP.
    pub fn link(&self) -> Option<String> {
        (self.protocol == "tcp").then(|| format!("http://{LOOPBACK}:{}/", self.host))
    }
}

/// The publish field: `8080:80, 8443:443` (commas or spaces between) as the spec's list.
pub fn publish_list(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// Names the server moves: 1 to 14 letters, digits, `-`, `_` or `.` (room for the `p` of a
/// new pair's other end), and never `lo` or CNI's `eth0`.
pub fn valid_interface(name: &str) -> bool {
    (1..=14).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !matches!(name, "lo" | "eth0")
}

/// A move to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub interface: String,
    pub from: String,
    pub to: String,
    /// What the server makes in `from` when it has no such interface.
    pub kind: InterfaceKind,
}

impl Move {
    pub fn message(self, reference: Option<Ref>) -> ClientMsg {
        ClientMsg::MoveInterface {
            reference,
            interface: self.interface,
            from: self.from,
            to: self.to,
            kind: Some(self.kind),
        }
    }

    /// The control's field an error about this move belongs to (`interface`, `from`, `to`),
    /// when it names one: its `field` if the server gave one, else by its code (a container
    /// error goes to the select of the container its message names).
    pub fn field_of(&self, problem: &Problem) -> Option<&'static str> {
        if let Some(field) = &problem.field {
            return ["interface", "from", "to"].into_iter().find(|f| f == field);
        }
        // A word of the message, quotes and punctuation aside (`no container "alpha" in
        // this session`, `alpha uses the host's network namespace: …`).
        let names = |name: &str| {
            problem.message.split_whitespace().any(|word| {
                word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && !"-_".contains(c)) == name
            })
        };
        match problem.code.as_str() {
            "invalid_interface" | "interface_exists" => Some("interface"),
            "same_namespace" => Some("to"),
            "unknown_container" | "host_interface" if names(&self.from) => Some("from"),
            "unknown_container" | "host_interface" if names(&self.to) => Some("to"),
            _ => None,
        }
    }
}

/// What the move control holds as the user picks: `None` for a select not touched (its
/// default is then the first container, or the second for `to`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveFields {
    pub interface: String,
    pub from: Option<String>,
    pub to: Option<String>,
    /// veth unless picked.
    pub kind: InterfaceKind,
}

impl Default for MoveFields {
    fn default() -> Self {
        MoveFields {
            interface: DEFAULT_INTERFACE.to_string(),
            from: None,
            to: None,
            kind: InterfaceKind::default(),
        }
    }
}

impl MoveFields {
    /// The two selects' values among the running containers `names`: a choice that is no
    /// longer there falls back to the default (`from`: the first; `to`: the first other than
    /// `from`). Empty strings when there is nothing to pick.
    pub fn resolve(&self, names: &[String]) -> (String, String) {
        let listed = |choice: &Option<String>| choice.clone().filter(|c| names.contains(c));
        let from = listed(&self.from)
            .or_else(|| names.first().cloned())
            .unwrap_or_default();
        let to = listed(&self.to)
            .or_else(|| names.iter().find(|n| **n != from).cloned())
            .unwrap_or_default();
        (from, to)
    }

    /// The move to send, or what is wrong with it (by field), checked as the server would.
    pub fn to_move(&self, names: &[String]) -> Result<Move, Vec<Problem>> {
        let (from, to) = self.resolve(names);
        let interface = self.interface.trim().to_string();
        let mut problems = Vec::new();
        let mut problem = |code: &str, field: &str, message: String| {
            problems.push(Problem {
                code: code.to_string(),
                message,
                field: Some(field.to_string()),
            })
        };
        if !valid_interface(&interface) {
            problem(
                "invalid_interface",
                "interface",
                format!("{interface:?} is not an interface name isolab moves (1 to 14 letters, digits, '-', '_' or '.'; not lo or eth0)"),
            );
        }
        if from.is_empty() || to.is_empty() {
            problem(
                "unknown_container",
                if from.is_empty() { "from" } else { "to" },
                "two running containers are needed: one to move it from, one to move it to"
                    .to_string(),
            );
        } else if from == to {
            problem(
                "same_namespace",
                "to",
                format!("{from} to {to}: pick two different containers"),
            );
        }
        if problems.is_empty() {
            Ok(Move {
                interface,
                from,
                to,
                kind: self.kind,
            })
        } else {
            Err(problems)
        }
    }
}

/// The move control's requests: the one in flight, the last done, the last refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mover {
    /// Sent, not answered yet (its `ref` is pending in `AppState`, as `Origin::Move`).
    pub pending: Option<Move>,
    /// The last move the server made.
    pub done: Option<Move>,
    /// The last refused move's error, and the control's field it belongs to.
    pub error: Option<(Problem, Option<&'static str>)>,
}

impl Mover {
    pub fn busy(&self) -> bool {
        self.pending.is_some()
    }

    /// A `move_interface` went out.
    pub fn sent(&mut self, request: Move) {
        self.pending = Some(request);
        self.error = None;
    }

    /// Its `state`: the interface moved.
    pub fn moved(&mut self) {
        if let Some(request) = self.pending.take() {
            self.done = Some(request);
            self.error = None;
        }
    }

    /// Its `error`, placed next to the field it is about.
    pub fn refused(&mut self, problem: Problem) {
        let field = self
            .pending
            .take()
            .and_then(|request| request.field_of(&problem));
        self.done = None;
        self.error = Some((problem, field));
    }

    /// The connection went: no answer will come.
    pub fn lost(&mut self) {
        self.pending = None;
    }

    /// The error to show next to `field` (`None`: the one about no field, next to the button).
    pub fn error_for(&self, field: Option<&str>) -> Option<&Problem> {
        self.error
            .as_ref()
            .filter(|(_, f)| *f == field)
            .map(|(p, _)| p)
    }
}

#[cfg(test)]
mod tests;
