//! Moving a network interface from one container's namespace to another's: the seed's point
//! that every interface belongs to exactly one namespace and can move. When the source has no
//! such interface, a veth pair is made there first, so the move leaves a cable between the two.

use std::fs::File;
use std::os::fd::AsFd;

use super::netlink::{self, NetlinkError};

/// Why an interface could not be moved.
#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error("{0:?} is not an interface name isolab moves (1 to 14 letters, digits, '-', '_' or '.'; not lo or eth0)")]
    InvalidName(String),
    #[error("the two containers share one network namespace: there is nowhere to move {0:?} to")]
    SameNamespace(String),
    #[error("{0} already has an interface named {1:?}")]
    Exists(String, String),
    #[error("{what}: {source}")]
    Netns {
        what: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
}

/// What a move did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    /// A veth pair was made in the source first; its other end (`NAMEp`) stayed there.
    pub created_peer: Option<String>,
}

/// Names isolab moves: not the loopback and not CNI's `eth0` (the container's network).
pub fn valid_name(name: &str) -> bool {
    (1..=14).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !matches!(name, "lo" | "eth0")
}

/// Move `name` from the network namespace of `from_pid` to that of `to_pid` (`from`, `to`:
/// the containers' names, for messages).
pub fn move_interface(
    name: &str,
    (from, from_pid): (&str, i32),
    (to, to_pid): (&str, i32),
) -> Result<Moved, MoveError> {
    if !valid_name(name) {
        return Err(MoveError::InvalidName(name.to_string()));
    }
    let open = |pid: i32, who: &str| {
        File::open(format!("/proc/{pid}/ns/net")).map_err(|source| MoveError::Netns {
            what: format!("the network namespace of {who}"),
            source,
        })
    };
    let target = open(to_pid, to)?;
    let source = open(from_pid, from)?;
    let same = |a: &File, b: &File| -> bool {
        use std::os::unix::fs::MetadataExt;
        matches!((a.metadata(), b.metadata()), (Ok(x), Ok(y)) if x.ino() == y.ino() && x.dev() == y.dev())
    };
    if same(&source, &target) {
        return Err(MoveError::SameNamespace(name.to_string()));
    }
    let in_ns = |f: &File, what: &str| MoveError::Netns {
        what: format!("entering the network namespace of {what}"),
        source: std::io::Error::other(format!("{f:?}")),
    };
    let exists_there = netlink::in_netns_fd(target.as_fd(), || netlink::link(name))
        .map_err(|_| in_ns(&target, to))??;
    if exists_there.is_some() {
        return Err(MoveError::Exists(to.to_string(), name.to_string()));
    }
    let peer = format!("{name}p");
    let created = netlink::in_netns_fd(source.as_fd(), || -> Result<bool, NetlinkError> {
        let created = match netlink::link(name)? {
            Some(_) => false,
            None => {
                netlink::add_veth(name, &peer)?;
                netlink::set_up(&peer, true)?;
                true
            }
        };
        netlink::move_to_netns(name, target.as_fd())?;
        Ok(created)
    })
    .map_err(|_| in_ns(&source, from))??;
    netlink::in_netns_fd(target.as_fd(), || netlink::set_up(name, true))
        .map_err(|_| in_ns(&target, to))??;
    Ok(Moved {
        created_peer: created.then_some(peer),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_isolab_moves() {
        for ok in ["cable0", "veth-a", "x.y_z", "a"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "lo", "eth0", "fifteen-chars-x", "sp ace", "a/b", "ü"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
