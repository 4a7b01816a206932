//! A session's network: the first container with a private network namespace gets the session
//! a bridge and a subnet; each such container is attached through CNI before it starts, and
//! every container's `/etc/hosts` names all of them; published ports are reserved server-wide.

use isolab_shared::protocol::{codes, InterfaceKind, Ref};
use isolab_shared::spec::{ContainerSpec, NsMode, PortMapping};
use serde_json::json;

use super::Session;
use crate::network::plan::hosts_file;
use crate::runtime::cni::{Attachment, IFNAME};

/// What a container's creation needs from the session's network.
pub(super) struct Joining {
    /// To ADD once the container exists (its id set then).
    pub attachment: Attachment,
    /// The other containers' `(ip, name, hostname)`, for its `/etc/hosts`.
    pub others: Vec<(String, String, String)>,
    pub ports: Vec<(u16, &'static str)>,
}

/// A networked container of the session.
#[derive(Debug, Clone)]
pub(super) struct Member {
    pub id: String,
    pub ip: String,
    pub hostname: String,
    pub ports: Vec<(u16, &'static str)>,
}

impl Session {
    /// Whether a container of this spec joins the session's network: a private network
    /// namespace, unless the spec says `network: none`.
    pub(super) fn networked(&self, spec: &ContainerSpec) -> bool {
        self.state.networks.config.enabled
            && spec.namespaces.net == NsMode::Private
            && !spec.network_none()
    }

    /// Reserve what a new container needs (the session's network, its ports); an error has
    /// been sent when this returns None.
    pub(super) async fn join_network(
        &mut self,
        reference: Option<Ref>,
        spec: &ContainerSpec,
    ) -> Option<Option<Joining>> {
        let ports: Vec<(u16, &'static str)> = spec
            .publish
            .iter()
            .filter_map(|p| PortMapping::parse(p))
            .map(|p| (p.host_port, p.protocol))
            .collect();
        if !self.networked(spec) {
            if !ports.is_empty() {
                let message = "ports can only be published on the server's network, which is off";
                self.spec_error(reference, "conflicting_options", "publish", message)
                    .await;
                return None;
            }
            return Some(None);
        }
        if self.network.is_none() {
            self.network = self.state.networks.allocate(&self.tag);
        }
        let Some(plan) = self.network.clone() else {
            let message = "the server could not give this session a network (no free subnet, or its firewall rules could not be installed: see its log)";
            self.error(reference, codes::LIMIT_REACHED, message).await;
            return None;
        };
        if let Err(port) = self.state.networks.reserve_ports(&ports) {
            let message = format!("port {port} of the host is taken");
            self.spec_error(reference, "port_in_use", "publish", &message)
                .await;
            return None;
        }
        let mappings: Vec<serde_json::Value> = spec
            .publish
            .iter()
            .filter_map(|p| PortMapping::parse(p))
            .map(|p| {
                json!({"hostPort": p.host_port, "containerPort": p.container_port,
                       "protocol": p.protocol, "hostIP": "127.0.0.1"})
            })
            .collect();
        let config = &self.state.networks.config;
        let conflist = match config.conflist(&plan, !mappings.is_empty()) {
            Ok(c) => c,
            Err(e) => {
                self.state.networks.release_ports(&ports);
                self.error(reference, codes::RUNTIME, e).await;
                return None;
            }
        };
        Some(Some(Joining {
            attachment: Attachment {
                conflist,
                container_id: String::new(),
                ifname: IFNAME.to_string(),
                runtime_config: json!({"portMappings": mappings}),
                plugin_dirs: config.plugin_dirs.clone(),
                result: None,
            },
            others: self.hosts_entries(),
            ports,
        }))
    }

    /// Every networked container's `(ip, name, hostname)`.
    pub(super) fn hosts_entries(&self) -> Vec<(String, String, String)> {
        self.members
            .iter()
            .map(|(name, m)| (m.ip.clone(), name.clone(), m.hostname.clone()))
            .collect()
    }

    /// Rewrite every networked container's `/etc/hosts` (a container came or went).
    pub(super) async fn refresh_hosts(&self) {
        let text = hosts_file(&self.hosts_entries());
        let ids: Vec<String> = self.members.values().map(|m| m.id.clone()).collect();
        let rt = self.state.runtime.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for id in ids {
                if let Err(e) = rt.write_hosts(&id, &text) {
                    tracing::debug!(container = %id, "hosts: {e}");
                }
            }
        })
        .await;
    }

    /// A container left: its ports are free again.
    pub(super) fn leave_network(&mut self, name: &str) -> bool {
        match self.members.remove(name) {
            Some(m) => {
                self.state.networks.release_ports(&m.ports);
                true
            }
            None => false,
        }
    }

    /// `move_interface` (the protocol's, or a lesson's, which makes veths): between two of the
    /// session's containers, each with a network namespace of its own (never the host's); when
    /// `from` has no such interface, one of `kind` is made there first.
    pub(super) async fn move_interface(
        &mut self,
        reference: Option<Ref>,
        interface: &str,
        kind: InterfaceKind,
        from: &str,
        to: &str,
    ) -> bool {
        let (Some(a), Some(b)) = (
            self.require(reference, from).await,
            self.require(reference, to).await,
        ) else {
            return false;
        };
        let pid = |name: &str| self.subjects.get(name).map(|s| s.pid);
        let (Some(a_pid), Some(b_pid)) = (pid(&a.name), pid(&b.name)) else {
            self.error(
                reference,
                codes::UNKNOWN_CONTAINER,
                "the container is not running",
            )
            .await;
            return false;
        };
        let host = crate::observe::host_net_inode();
        for (name, p) in [(&a.name, a_pid), (&b.name, b_pid)] {
            if crate::observe::net_inode(p) == host {
                let message = format!("{name} uses the host's network namespace: isolab does not move the host's interfaces");
                self.error(reference, "host_interface", message).await;
                return false;
            }
        }
        let (iface, an, bn) = (interface.to_string(), a.name.clone(), b.name.clone());
        let moved = tokio::task::spawn_blocking(move || {
            crate::network::moving::move_interface(&iface, kind, (&an, a_pid), (&bn, b_pid))
        })
        .await;
        match moved {
            Ok(Ok(_)) => {
                self.lesson_touched();
                self.send_state(reference).await;
                return true;
            }
            Ok(Err(e)) => {
                let code = match e {
                    crate::network::moving::MoveError::InvalidName(_) => "invalid_interface",
                    crate::network::moving::MoveError::Exists(..) => "interface_exists",
                    crate::network::moving::MoveError::SameNamespace(_) => "same_namespace",
                    _ => codes::RUNTIME,
                };
                self.error(reference, code, e.to_string()).await
            }
            Err(e) => self.error(reference, codes::RUNTIME, e.to_string()).await,
        }
        false
    }

    /// The session ended (its containers are removed): its bridge and subnet go.
    pub(super) async fn drop_network(&mut self) {
        if let Some(plan) = self.network.take() {
            let networks = self.state.networks.clone();
            let _ = tokio::task::spawn_blocking(move || networks.release(&plan)).await;
        }
    }
}
