//! Where a veth's other end is, and the session's network as the host sees it. A veth reports
//! its peer's index and, when the peer is in another namespace, that namespace's id as the
//! veth's own namespace numbers it (`IFLA_LINK_NETNSID`); asking the same namespace for the
//! id of each candidate namespace (`RTM_GETNSID`) tells which one it is.

use std::fs::File;
use std::os::fd::AsFd;

use isolab_shared::protocol::view::{AttachmentView, InterfaceView, NetworkView};

use crate::network::netlink::{self, Link};
use crate::network::plan::NetworkPlan;

/// A namespace a peer may be in: its label (`on the host`, `in alpha`), and its handle.
pub struct Candidate {
    pub label: String,
    /// `None` for the host: its interfaces are listed by the server's own threads.
    pub container: Option<String>,
    pub netns: File,
}

/// A veth whose peer was found in another namespace: resolved to a name once every
/// namespace's interfaces have been read.
#[derive(Debug, Clone)]
pub struct PendingPeer {
    pub interface: String,
    pub peer_index: u32,
    /// The candidate's container (None: the host).
    pub container: Option<String>,
    pub label: String,
}

/// The namespaces a veth's peer may be in, each asked for its id (the calling thread's
/// namespace numbers it) at most once.
pub struct Candidates<'a> {
    list: Vec<&'a Candidate>,
    ids: Vec<Option<Option<i32>>>,
}

impl<'a> Candidates<'a> {
    pub fn new(list: Vec<&'a Candidate>) -> Candidates<'a> {
        let ids = vec![None; list.len()];
        Candidates { list, ids }
    }

    /// The first candidate the calling thread's namespace numbers `id`.
    fn find(&mut self, id: i32) -> Option<&'a Candidate> {
        (0..self.list.len())
            .find(|&i| self.id(i) == Some(id))
            .map(|i| self.list[i])
    }

    /// The id of the namespace of `container`'s candidate (None: not a candidate).
    pub fn id_of(&mut self, container: &str) -> Option<Option<i32>> {
        let i = self
            .list
            .iter()
            .position(|c| c.container.as_deref() == Some(container))?;
        Some(self.id(i))
    }

    fn id(&mut self, i: usize) -> Option<i32> {
        *self.ids[i]
            .get_or_insert_with(|| netlink::netns_id(self.list[i].netns.as_fd()).ok().flatten())
    }
}

/// In the calling thread's namespace: each interface's kind, and for veths the namespace their
/// peer is in (or the peer's name, when it is in the same namespace). `links` are that
/// namespace's, when already listed in this pass (the host's).
pub fn kinds_and_peers(
    interfaces: &mut [InterfaceView],
    candidates: &mut Candidates<'_>,
    links: Option<&[Link]>,
) -> Vec<PendingPeer> {
    let listed;
    let links = match links {
        Some(l) => l,
        None => match netlink::links() {
            Ok(l) => {
                listed = l;
                &listed[..]
            }
            Err(_) => return Vec::new(),
        },
    };
    let mut pending = Vec::new();
    for iface in interfaces.iter_mut() {
        let Some(link) = links.iter().find(|l| l.index == iface.index) else {
            continue;
        };
        iface.kind = link.kind.clone();
        if link.kind.as_deref() != Some("veth") {
            continue;
        }
        let Some(peer_index) = link.link else {
            continue;
        };
        match link.link_netnsid {
            None => {
                iface.peer = links
                    .iter()
                    .find(|l| l.index == peer_index)
                    .map(|l| format!("{} here", l.name));
            }
            Some(id) => {
                if let Some(c) = candidates.find(id) {
                    pending.push(PendingPeer {
                        interface: iface.name.clone(),
                        peer_index,
                        container: c.container.clone(),
                        label: c.label.clone(),
                    });
                }
            }
        }
    }
    pending
}

/// The session's network from the host: the bridge, and which host veth leads to which
/// container (`members`: name, address, published ports, host pid). `candidates` are the
/// host's (their ids are asked once for this and the host's veths).
pub fn network_view(
    plan: &NetworkPlan,
    members: &[(String, String, Vec<String>, i32)],
    host_links: &[Link],
    candidates: &mut Candidates<'_>,
) -> NetworkView {
    let bridge = host_links.iter().find(|l| l.name == plan.bridge);
    let ids: Vec<(String, Option<i32>)> = members
        .iter()
        .map(|(name, _, _, pid)| {
            let id = candidates.id_of(name).unwrap_or_else(|| {
                File::open(format!("/proc/{pid}/ns/net"))
                    .ok()
                    .and_then(|f| netlink::netns_id(f.as_fd()).ok().flatten())
            });
            (name.clone(), id)
        })
        .collect();
    let attachments = members
        .iter()
        .map(|(name, address, ports, _)| {
            let id = ids.iter().find(|(n, _)| n == name).and_then(|(_, id)| *id);
            let host_veth = bridge.and_then(|b| {
                host_links
                    .iter()
                    .find(|l| l.master == Some(b.index) && id.is_some() && l.link_netnsid == id)
                    .map(|l| l.name.clone())
            });
            AttachmentView {
                container: name.clone(),
                address: address.clone(),
                host_veth,
                ports: ports.clone(),
            }
        })
        .collect();
    NetworkView {
        name: plan.name.clone(),
        bridge: plan.bridge.clone(),
        up: bridge.is_some_and(|b| b.up),
        subnet: format!("{}/24", plan.subnet()),
        gateway: plan.gateway().to_string(),
        egress: plan.egress,
        attachments,
    }
}
