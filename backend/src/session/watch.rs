//! The live view's side of a session: which targets the connection watches, and a pass of the
//! observer on the blocking pool (its result comes back as a session event).

use isolab_shared::protocol::{codes, Ref, ViewTarget};

use super::{Event, Session};
use crate::observe::Subject;

impl Session {
    /// A container target by its user-facing name (the client may give the id).
    pub(super) fn view_target(&self, target: ViewTarget) -> ViewTarget {
        match target {
            ViewTarget::Container(name) => match self.find(&name) {
                Some(info) => ViewTarget::Container(info.name.clone()),
                None => ViewTarget::Container(name),
            },
            host => host,
        }
    }

    pub(super) async fn watch(&mut self, reference: Option<Ref>, target: ViewTarget) {
        let target = self.view_target(target);
        if let ViewTarget::Container(name) = &target {
            if !self.subjects.contains_key(name) {
                let message = format!("no container {name:?} in this session");
                return self
                    .error(reference, codes::UNKNOWN_CONTAINER, message)
                    .await;
            }
        }
        self.fresh.insert(target.clone());
        self.watched.insert(target);
    }

    /// Start a pass of the observer on the blocking pool, unless one runs.
    pub(super) fn observe(&mut self) {
        let Some(mut observer) = self.observer.take() else {
            return;
        };
        let subjects: Vec<Subject> = self.subjects.values().cloned().collect();
        let watched = self.watched.clone();
        let fresh = std::mem::take(&mut self.fresh);
        let network = self
            .network
            .clone()
            .map(|plan| crate::observe::SessionNetwork {
                plan,
                members: self
                    .members
                    .iter()
                    .map(|(name, m)| {
                        let ports = self
                            .containers
                            .get(name)
                            .map(|c| c.ports.clone())
                            .unwrap_or_default();
                        (name.clone(), m.ip.clone(), ports)
                    })
                    .collect(),
            });
        let rt = self.state.runtime.clone();
        let events = self.events.clone();
        tokio::task::spawn_blocking(move || {
            let updates = observer.observe(
                rt.cgroups.as_ref(),
                &subjects,
                &watched,
                &fresh,
                network.as_ref(),
            );
            let _ = events.send(Event::Observed { observer, updates });
        });
    }
}
