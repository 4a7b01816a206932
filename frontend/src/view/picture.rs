//! The session's network as a picture (issue 6): the host with the session's bridge, a line
//! per container from the bridge through its veth pair (host end on the bridge, `eth0` inside)
//! to the container, its address and published ports, and the extra veth cables between
//! containers that moved interfaces made.
//!
//! [`picture`] merges what the page knows — the host column's `network` section, each
//! container's `ContainerInfo` (address, ports) and its own `interfaces` (`peer` says where a
//! veth's other end is) — into a [`Picture`]; [`layout`] places it in an SVG box. Both plain
//! Rust, tested on the host; the component only draws.

pub mod layout;

use isolab_shared::protocol::view::{InterfaceView, NetworkView, NsView};
use isolab_shared::protocol::ContainerInfo;

use super::Views;
use crate::network::Port;

/// The session's bridge, as the host's view reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridge {
    /// The bridge interface on the host.
    pub name: String,
    /// The CNI network's name.
    pub network: String,
    pub up: bool,
    pub subnet: String,
    pub gateway: String,
    pub egress: bool,
}

/// A container in the picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    /// Plugged into the session's bridge (its veth pair is there).
    pub attached: bool,
    /// Its IPv4 on the session's network, without a prefix length.
    pub address: Option<String>,
    /// Its end of the pair (`eth0`).
    pub eth: String,
    /// The pair's host end, on the bridge.
    pub host_veth: Option<String>,
    pub ports: Vec<Port>,
    /// Whose network namespace it is in, when not its own (`alpha`, or `host`).
    pub shares_net_with: Option<String>,
}

/// A veth pair whose ends are in two containers: `from_iface` in `from`, `to_iface` in `to`.
/// For a cable the move control made (`NAME` moved, `NAMEp` left behind), `from` is where it
/// was made and `to` where it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cable {
    pub from: String,
    pub from_iface: String,
    pub to: String,
    pub to_iface: String,
}

/// Everything the picture draws.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Picture {
    /// `None` until the host's view reports a network (or when the server runs without one).
    pub bridge: Option<Bridge>,
    pub nodes: Vec<Node>,
    pub cables: Vec<Cable>,
}

/// Where a veth's other end is, as an interface's `peer` says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// `cable0p in alpha`.
    Container(String),
    /// `veth1a2b on the host`.
    Host,
    /// Anything else the server may say (`in another namespace`).
    Elsewhere,
}

/// An interface's `peer`: the other end's name and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub interface: String,
    pub place: Place,
}

/// `cable0p in alpha` → (`cable0p`, alpha); `veth1a2b on the host` → (`veth1a2b`, host).
pub fn parse_peer(text: &str) -> Option<Peer> {
    let (interface, rest) = text.trim().split_once(' ')?;
    let rest = rest.trim();
    let place = match rest.strip_prefix("in ") {
        Some(container) if !container.trim().is_empty() && !container.contains(' ') => {
            Place::Container(container.trim().to_string())
        }
        _ if rest == "on the host" => Place::Host,
        _ => Place::Elsewhere,
    };
    Some(Peer {
        interface: interface.to_string(),
        place,
    })
}

fn peer_of(interface: &InterfaceView) -> Option<Peer> {
    interface.peer.as_deref().and_then(parse_peer)
}

/// An address without its prefix length (`10.88.0.2/24` → `10.88.0.2`).
pub fn bare_address(address: &str) -> &str {
    address.split('/').next().unwrap_or(address)
}

/// The picture of the session's network: `network` is the host view's section, `containers`
/// the running containers in the page's order, `views` their live views.
pub fn picture(
    network: Option<&NetworkView>,
    containers: &[&ContainerInfo],
    views: &Views,
) -> Picture {
    let bridge = network.map(|n| Bridge {
        name: n.bridge.clone(),
        network: n.name.clone(),
        up: n.up,
        subnet: n.subnet.clone(),
        gateway: n.gateway.clone(),
        egress: n.egress,
    });
    let interfaces_of = |name: &str| {
        views
            .container(name)
            .and_then(|v| v.latest.interfaces.as_deref())
            .unwrap_or_default()
    };
    let nodes = containers
        .iter()
        .map(|info| {
            let attachment =
                network.and_then(|n| n.attachments.iter().find(|a| a.container == info.name));
            let view = views.container(&info.name);
            let namespaces = view.and_then(|v| v.latest.namespaces.as_deref());
            node(
                info,
                attachment,
                interfaces_of(&info.name),
                net_shared_with(namespaces),
            )
        })
        .collect::<Vec<_>>();
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    // A container in another's network namespace sees that namespace's interfaces: only the
    // first of them in the list speaks for it.
    let speakers: Vec<(&str, &[InterfaceView])> = nodes
        .iter()
        .filter(|n| {
            n.shares_net_with.as_ref().is_none_or(|other| {
                !names
                    .iter()
                    .take_while(|m| **m != n.name)
                    .any(|m| m == other)
            })
        })
        .map(|n| (n.name.as_str(), interfaces_of(&n.name)))
        .collect();
    Picture {
        bridge,
        cables: cables(&names, &speakers),
        nodes,
    }
}

fn node(
    info: &ContainerInfo,
    attachment: Option<&isolab_shared::protocol::view::AttachmentView>,
    interfaces: &[InterfaceView],
    shares_net_with: Option<String>,
) -> Node {
    // Its end of the pair to the bridge: the interface whose peer is on the host.
    let eth = interfaces
        .iter()
        .find(|i| peer_of(i).is_some_and(|p| p.place == Place::Host));
    let eth_address = eth.and_then(|i| i.addresses.iter().find(|a| !a.contains(':')));
    let address = attachment
        .map(|a| a.address.as_str())
        .or(info.address.as_deref())
        .or(eth_address.map(String::as_str))
        .map(|a| bare_address(a).to_string());
    let host_veth = attachment
        .and_then(|a| a.host_veth.clone())
        .or_else(|| eth.and_then(peer_of).map(|p| p.interface));
    let ports = match attachment {
        Some(a) if !a.ports.is_empty() => Port::all(&a.ports),
        _ => Port::all(&info.ports),
    };
    Node {
        name: info.name.clone(),
        attached: attachment.is_some() || info.address.is_some(),
        address,
        eth: eth.map_or_else(|| "eth0".to_string(), |i| i.name.clone()),
        host_veth,
        ports,
        shares_net_with,
    }
}

/// Whose network namespace a container is in, from its `namespaces` section (`None`: its own,
/// or not known yet).
fn net_shared_with(namespaces: Option<&[NsView]>) -> Option<String> {
    namespaces?
        .iter()
        .find(|ns| ns.kind == "net")?
        .shared_with
        .first()
        .cloned()
}

/// The veth cables between the containers `names`, from each one's interfaces: an interface
/// whose peer is `… in OTHER`, OTHER one of `names`. A pair is drawn once, whichever of its
/// two ends was seen (the other container's view may not have caught up yet).
pub fn cables(names: &[String], interfaces: &[(&str, &[InterfaceView])]) -> Vec<Cable> {
    let position = |name: &str| names.iter().position(|n| n == name);
    let mut out: Vec<Cable> = Vec::new();
    for (here, list) in interfaces {
        for interface in *list {
            let Some(Peer {
                interface: other_end,
                place: Place::Container(there),
            }) = peer_of(interface)
            else {
                continue;
            };
            let (Some(a), Some(b)) = (position(here), position(&there)) else {
                continue;
            };
            if a == b {
                continue;
            }
            let mine = (here.to_string(), interface.name.clone());
            let theirs = (there, other_end);
            // Where a cable was made its `NAMEp` end stayed: that is `from`. Otherwise the
            // page's order.
            let made_here = mine.1 == format!("{}p", theirs.1);
            let made_there = theirs.1 == format!("{}p", mine.1);
            let ((from, from_iface), (to, to_iface)) = if made_here || (!made_there && a < b) {
                (mine, theirs)
            } else {
                (theirs, mine)
            };
            let cable = Cable {
                from,
                from_iface,
                to,
                to_iface,
            };
            if !out.contains(&cable) {
                out.push(cable);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
