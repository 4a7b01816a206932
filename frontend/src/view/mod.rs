//! The live view (issue 4), as the page keeps it: for each watched target — the host and each
//! container, by name — the latest of every section the server sent (a `view` carries only
//! the sections that changed), a short history of the cgroup numbers for the sparklines, and
//! when the hostname last changed, so that its badge can flash.
//!
//! Plain Rust, unit-tested on the host. `AppState` holds one [`Views`]: it merges `view`
//! messages into it, drops the views of containers that are gone, and samples the history on
//! the page's one-second tick. [`watches_for`] says which `watch` requests a server message
//! calls for; the socket owner sends them. The other modules turn a view into what the
//! components draw: [`matrix`] (the namespace matrix and its colours), [`tree`] (the process
//! tree), [`chart`] (sparkline geometry), [`picture`] (the session's network, drawn) and
//! [`format`] (numbers as text).

pub mod chart;
pub mod colour;
pub mod format;
pub mod history;
pub mod matrix;
pub mod picture;
pub mod tree;

use isolab_shared::protocol::{ServerMsg, ViewTarget, ViewUpdate};

pub use history::{History, Ring, HISTORY_POINTS};

/// One target's view.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetView {
    /// The latest of each section; one not received yet is `None`.
    pub latest: ViewUpdate,
    /// How many `view` messages were merged.
    pub updates: u32,
    /// The update (its number in `updates`) that changed the hostname, if one did since the
    /// first view: the badge flashes each time this changes.
    pub hostname_changed_at: Option<u32>,
    /// Memory, CPU and pids, one point a second.
    pub history: History,
    /// Why the server refused to watch it.
    pub error: Option<String>,
}

impl TargetView {
    /// Merges one `view` message: a section present replaces the one kept, a missing one is
    /// unchanged.
    pub fn merge(&mut self, update: ViewUpdate) {
        self.updates += 1;
        self.error = None;
        let ViewUpdate {
            namespaces,
            processes,
            uts,
            interfaces,
            mounts,
            id_maps,
            cgroup,
            kernel,
            network,
        } = update;
        if let Some(uts) = uts {
            let changed = self
                .latest
                .uts
                .as_ref()
                .is_some_and(|old| old.hostname != uts.hostname);
            if changed {
                self.hostname_changed_at = Some(self.updates);
            }
            self.latest.uts = Some(uts);
        }
        replace(&mut self.latest.namespaces, namespaces);
        replace(&mut self.latest.processes, processes);
        replace(&mut self.latest.interfaces, interfaces);
        replace(&mut self.latest.mounts, mounts);
        replace(&mut self.latest.id_maps, id_maps);
        replace(&mut self.latest.cgroup, cgroup);
        replace(&mut self.latest.kernel, kernel);
        replace(&mut self.latest.network, network);
    }

    /// The hostname the target's `uname` returns, once known.
    pub fn hostname(&self) -> Option<&str> {
        self.latest.uts.as_ref().map(|u| u.hostname.as_str())
    }

    /// One point of history from the latest cgroup numbers (none for the host, nor before the
    /// first view).
    pub fn sample(&mut self) {
        if let Some(cgroup) = &self.latest.cgroup {
            self.history.push(cgroup);
        }
    }
}

fn replace<T>(kept: &mut Option<T>, new: Option<T>) {
    if new.is_some() {
        *kept = new;
    }
}

/// Every target's view.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Views {
    pub host: TargetView,
    /// By container name, in the order their first view came (a handful: a list, not a map).
    pub containers: Vec<(String, TargetView)>,
}

impl Views {
    pub fn get(&self, target: &ViewTarget) -> Option<&TargetView> {
        match target {
            ViewTarget::Host => Some(&self.host),
            ViewTarget::Container(name) => self.container(name),
        }
    }

    pub fn container(&self, name: &str) -> Option<&TargetView> {
        self.containers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, view)| view)
    }

    fn slot(&mut self, target: ViewTarget) -> &mut TargetView {
        let name = match target {
            ViewTarget::Host => return &mut self.host,
            ViewTarget::Container(name) => name,
        };
        let at = match self.containers.iter().position(|(n, _)| *n == name) {
            Some(at) => at,
            None => {
                self.containers.push((name, TargetView::default()));
                self.containers.len() - 1
            }
        };
        &mut self.containers[at].1
    }

    /// A `view` message.
    pub fn received(&mut self, target: ViewTarget, update: ViewUpdate) {
        self.slot(target).merge(update);
    }

    /// The server refused to watch `target`.
    pub fn failed(&mut self, target: ViewTarget, message: String) {
        self.slot(target).error = Some(message);
    }

    /// Keeps the host's view and those of the containers `alive` says yes to.
    pub fn keep(&mut self, alive: impl Fn(&str) -> bool) {
        self.containers.retain(|(name, _)| alive(name));
    }

    /// The one-second tick: a point of history for every container.
    pub fn sample(&mut self) {
        for (_, view) in &mut self.containers {
            view.sample();
        }
    }
}

/// The targets to `watch` because of `msg`: on `hello` (a new connection watches nothing
/// yet) the host and every container listed; on `created` for a container's main process, that
/// container (a shell `exec`'d into it changes nothing).
pub fn watches_for(msg: &ServerMsg) -> Vec<ViewTarget> {
    match msg {
        ServerMsg::Hello { containers, .. } => std::iter::once(ViewTarget::Host)
            .chain(
                containers
                    .iter()
                    .map(|c| ViewTarget::Container(c.name.clone())),
            )
            .collect(),
        ServerMsg::Created {
            container, handle, ..
        } if container.handles.first() == Some(handle) => {
            vec![ViewTarget::Container(container.name.clone())]
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests;
