//! Presets: one click sets up a classic demonstration. Each removes the session's containers,
//! then creates its own in order — each `create` only once the previous one is `created`, since
//! `container:alpha` needs alpha running — and says what to try.
//!
//! Plain Rust, unit-tested on the host: [`Preset`] is what each one makes and says; [`Runner`]
//! is one run's progress, fed the server's messages by the socket owner, which sends the
//! [`Command`]s it asks for.

use std::collections::VecDeque;

use isolab_shared::protocol::{Ref, ServerMsg};
use isolab_shared::spec::{ContainerSpec, MemorySize, NsMode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    Uts,
    Pid,
    SharedPid,
    Net,
    Cgroup,
}

impl Preset {
    pub const ALL: [Preset; 5] = [
        Preset::Uts,
        Preset::Pid,
        Preset::SharedPid,
        Preset::Net,
        Preset::Cgroup,
    ];

    /// Stable, for CSS and tests (`button[data-preset="uts"]`).
    pub fn id(self) -> &'static str {
        match self {
            Preset::Uts => "uts",
            Preset::Pid => "pid",
            Preset::SharedPid => "shared-pid",
            Preset::Net => "net",
            Preset::Cgroup => "cgroup",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Preset::Uts => "UTS isolation",
            Preset::Pid => "PID isolation",
            Preset::SharedPid => "shared PID namespace",
            Preset::Net => "network namespace",
            Preset::Cgroup => "cgroup limits",
        }
    }

    /// The containers to create, in order.
    pub fn specs(self) -> Vec<ContainerSpec> {
        match self {
            Preset::Uts => ["alpha", "beta"]
                .into_iter()
                .map(|name| {
                    let mut spec = shell(name);
                    spec.namespaces.user = NsMode::Private;
                    spec.cap_add = vec!["SYS_ADMIN".to_string()];
                    spec
                })
                .collect(),
            Preset::Pid => vec![shell("alpha"), shell("beta")],
            Preset::SharedPid => {
                let mut beta = shell("beta");
                beta.namespaces.pid = NsMode::Container("alpha".to_string());
                vec![shell("alpha"), beta]
            }
            Preset::Net => {
                // alpha: a network namespace of its own with nothing in it but `lo`.
                let mut alpha = shell("alpha");
                alpha.network = Some(isolab_shared::spec::NETWORK_NONE.to_string());
                let mut beta = shell("beta");
                beta.namespaces.net = NsMode::Container("alpha".to_string());
                vec![alpha, beta]
            }
            Preset::Cgroup => {
                let mut hog = shell("hog");
                hog.memory = Some(MemorySize(32 * MemorySize::MIB));
                let mut bomb = shell("bomb");
                bomb.pids_limit = Some(24);
                vec![hog, bomb]
            }
        }
    }

    /// What to try, one paragraph per line; `commands` are between backticks.
    pub fn hint(self) -> &'static [&'static str] {
        match self {
            Preset::Uts => &[
                "Run `hostname gamma` in alpha: only alpha's badge changes. Each container has \
                 its own UTS namespace; beta's and the host's hostnames stay as they were.",
                "Both run with `SYS_ADMIN` in a private user namespace: sethostname needs \
                 CAP_SYS_ADMIN over the UTS namespace, which docker's default 14 capabilities \
                 lack. Owned by the container's own user namespace, it is worth nothing against \
                 the host.",
            ],
            Preset::Pid => &[
                "Run `ps` in alpha and in beta: each sees only its own processes, its shell as \
                 PID 1. The host column numbers the same processes with its own, larger pids.",
            ],
            Preset::SharedPid => &[
                "beta joined alpha's PID namespace (`container:alpha`): `ps` in beta lists \
                 alpha's shell too, and the pid row of the matrix shows one shared colour.",
            ],
            Preset::Net => &[
                "alpha has a network namespace of its own and nothing in it but the loopback \
                 (`--network none`): `ip addr` shows `lo` alone, none of the host's \
                 interfaces and no session network.",
                "beta joined alpha's network namespace (`container:alpha`): `ip addr` (or \
                 `ifconfig -a`) shows the same lone `lo` in both, and the net row shares a \
                 colour.",
            ],
            Preset::Cgroup => &[
                "hog may use 32 MiB: run `tail /dev/zero` in it (tail keeps the whole endless \
                 line in memory) and watch its memory chart climb to the line until the \
                 kernel OOM-kills it.",
                "bomb may run 24 processes: run the fork bomb `f(){ f|f& };f` in it and watch \
                 its pids chart stay flat at the limit while the host is untouched.",
            ],
        }
    }
}

/// `sh` on a terminal, named and with a hostname of the same name.
fn shell(name: &str) -> ContainerSpec {
    let mut spec = ContainerSpec::new("busybox", vec!["sh".to_string()]);
    spec.name = Some(name.to_string());
    spec.hostname = Some(name.to_string());
    spec.tty = true;
    spec
}

/// Splits a hint into (text, is a command) pieces at its backticks.
pub fn hint_pieces(line: &str) -> Vec<(&str, bool)> {
    line.split('`')
        .enumerate()
        .filter(|(_, piece)| !piece.is_empty())
        .map(|(i, piece)| (piece, i % 2 == 1))
        .collect()
}

/// Where a run is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Removing the session's containers.
    Removing,
    /// Creating this container.
    Creating(String),
    Ready,
    /// A step failed (the message says which).
    Failed(String),
}

/// A run as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresetStatus {
    pub preset: Preset,
    pub phase: Phase,
}

/// A request the run needs sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Remove the container with this id.
    Remove(String),
    Create(Box<ContainerSpec>),
}

#[derive(Debug)]
struct Removal {
    id: String,
    issued: bool,
    reference: Option<Ref>,
}

/// One preset's run.
#[derive(Debug)]
pub struct Runner {
    preset: Preset,
    removals: Vec<Removal>,
    to_create: VecDeque<ContainerSpec>,
    /// The create in flight: `Some(None)` until its `ref` is known.
    creating: Option<Option<Ref>>,
    phase: Phase,
}

impl Runner {
    /// A run that first removes the containers with these ids.
    pub fn new(preset: Preset, running: Vec<String>) -> Runner {
        Runner {
            preset,
            removals: running
                .into_iter()
                .map(|id| Removal {
                    id,
                    issued: false,
                    reference: None,
                })
                .collect(),
            to_create: preset.specs().into(),
            creating: None,
            phase: Phase::Removing,
        }
    }

    pub fn status(&self) -> PresetStatus {
        PresetStatus {
            preset: self.preset,
            phase: self.phase.clone(),
        }
    }

    /// Ready or failed: nothing more to do.
    pub fn finished(&self) -> bool {
        matches!(self.phase, Phase::Ready | Phase::Failed(_))
    }

    /// The requests to send now: every removal at once; once all are answered, one create,
    /// and the next only after it is `created`. Each is to be reported with [`Runner::sent`].
    pub fn requests(&mut self) -> Vec<Command> {
        if self.finished() {
            return Vec::new();
        }
        if !self.removals.is_empty() {
            return self
                .removals
                .iter_mut()
                .filter(|r| !r.issued)
                .map(|r| {
                    r.issued = true;
                    Command::Remove(r.id.clone())
                })
                .collect();
        }
        if self.creating.is_some() {
            return Vec::new();
        }
        match self.to_create.pop_front() {
            Some(spec) => {
                self.phase = Phase::Creating(spec.name.clone().unwrap_or_default());
                self.creating = Some(None);
                vec![Command::Create(Box::new(spec))]
            }
            None => {
                self.phase = Phase::Ready;
                Vec::new()
            }
        }
    }

    /// `command` went out as request `reference` (`None`: it could not be sent).
    pub fn sent(&mut self, command: &Command, reference: Option<Ref>) {
        let Some(reference) = reference else {
            self.phase = Phase::Failed("not connected".to_string());
            return;
        };
        match command {
            Command::Remove(id) => {
                if let Some(r) = self.removals.iter_mut().find(|r| r.id == *id) {
                    r.reference = Some(reference);
                }
            }
            Command::Create(_) => self.creating = Some(Some(reference)),
        }
    }

    /// A message from the server; then [`Runner::requests`] says what follows.
    pub fn on_message(&mut self, msg: &ServerMsg) {
        if self.finished() {
            return;
        }
        match msg {
            // A container no longer listed is removed (by us or because it ended).
            ServerMsg::State { containers, .. } => self
                .removals
                .retain(|r| containers.iter().any(|c| c.id == r.id)),
            ServerMsg::Created { reference, .. }
                if reference.is_some() && self.creating == Some(*reference) =>
            {
                self.creating = None;
            }
            ServerMsg::Error {
                reference: Some(reference),
                code,
                message,
                ..
            } => {
                if self.creating == Some(Some(*reference)) {
                    let name = match &self.phase {
                        Phase::Creating(name) => name.clone(),
                        _ => String::new(),
                    };
                    self.phase = Phase::Failed(format!("creating {name}: {code}: {message}"));
                } else if let Some(at) = self
                    .removals
                    .iter()
                    .position(|r| r.reference == Some(*reference))
                {
                    // Already gone (or not removable: the create of its name will say so).
                    self.removals.remove(at);
                }
            }
            // A new connection: whatever was in flight is lost.
            ServerMsg::Hello { .. } => {
                self.phase = Phase::Failed("the connection was lost".to_string())
            }
            _ => {}
        }
    }

    /// The connection dropped.
    pub fn abort(&mut self, why: &str) {
        if !self.finished() {
            self.phase = Phase::Failed(why.to_string());
        }
    }
}

#[cfg(test)]
mod tests;
