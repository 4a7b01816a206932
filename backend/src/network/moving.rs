//! Moving a network interface from one container's namespace to another's: the seed's point
//! that every interface belongs to exactly one namespace and can move. When the source has no
//! such interface, one is made there first, of the kind asked for: a veth pair (one end moves,
//! so the move leaves a cable between the two), or a dummy (which moves whole).

use std::fs::File;
use std::os::fd::AsFd;

use isolab_shared::protocol::InterfaceKind;
use nix::errno::Errno;

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
    /// The kernel has no driver for the kind asked for (a dummy without `CONFIG_DUMMY`).
    #[error("this kernel cannot make a {0} interface (no driver for it): {1}")]
    Unsupported(InterfaceKind, NetlinkError),
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
}

/// What a move did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    /// What was made in the source first; `None` when it had the interface already (which then
    /// moved whatever its kind).
    pub created: Option<InterfaceKind>,
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

/// The other end of the veth pair made for `name`.
pub fn peer_name(name: &str) -> String {
    format!("{name}p")
}

/// Make `name` of `kind` in the calling thread's network namespace (down; a veth's peer,
/// [`peer_name`], up).
fn create(name: &str, kind: InterfaceKind) -> Result<(), MoveError> {
    let made = match kind {
        InterfaceKind::Veth => {
            let peer = peer_name(name);
            netlink::add_veth(name, &peer).and_then(|()| {
                netlink::set_up(&peer, true).inspect_err(|_| {
                    // Deleting one end deletes the pair.
                    let _ = netlink::delete_link(name);
                })
            })
        }
        InterfaceKind::Dummy => netlink::add_dummy(name),
    };
    made.map_err(|e| match e {
        // "Unknown device type": the kernel has no such driver.
        NetlinkError::Kernel {
            op: "RTM_NEWLINK",
            errno: Errno::EOPNOTSUPP,
            ..
        } => MoveError::Unsupported(kind, e),
        e => MoveError::Netlink(e),
    })
}

/// Move `name` from the network namespace of `from_pid` to that of `to_pid` (`from`, `to`:
/// the containers' names, for messages); when the source has no `name`, one of `kind` is made
/// there first.
pub fn move_interface(
    name: &str,
    kind: InterfaceKind,
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
    let created = netlink::in_netns_fd(source.as_fd(), || -> Result<bool, MoveError> {
        let created = match netlink::link(name)? {
            Some(_) => false,
            None => {
                create(name, kind)?;
                true
            }
        };
        if let Err(e) = netlink::move_to_netns(name, target.as_fd()) {
            // What this call made does not stay behind (a veth takes its peer with it).
            if created {
                if let Err(e) = netlink::delete_link(name) {
                    tracing::warn!(interface = name, "removing it after a failed move: {e}");
                }
            }
            return Err(e.into());
        }
        Ok(created)
    })
    .map_err(|_| in_ns(&source, from))??;
    netlink::in_netns_fd(target.as_fd(), || netlink::set_up(name, true))
        .map_err(|_| in_ns(&target, to))??;
    let created = created.then_some(kind);
    Ok(Moved {
        created,
        created_peer: (created == Some(InterfaceKind::Veth)).then(|| peer_name(name)),
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

    /// A process in a network namespace of its own (`unshare -n sleep 30`), killed on drop:
    /// its namespace, and what was moved into it, go with it.
    struct Netns(std::process::Child);

    impl Netns {
        fn start() -> Netns {
            let child = std::process::Command::new("unshare")
                .args(["-n", "sleep", "30"])
                .stdin(std::process::Stdio::null())
                .spawn()
                .expect("run unshare -n sleep 30");
            let ns = Netns(child);
            let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
            for _ in 0..200 {
                let pid = ns.pid();
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok();
                if comm.trim() == "sleep" && theirs.is_some_and(|t| t != ours) {
                    return ns;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            panic!("unshare -n sleep 30 did not start");
        }

        fn pid(&self) -> i32 {
            self.0.id() as i32
        }

        /// `(name, kind)` of each of its links but `lo`.
        fn links(&self) -> Vec<(String, Option<String>)> {
            netlink::in_netns(self.pid(), netlink::links)
                .unwrap()
                .unwrap()
                .into_iter()
                .filter(|l| l.name != "lo")
                .map(|l| (l.name, l.kind))
                .collect()
        }
    }

    impl Drop for Netns {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn link(name: &str, kind: &str) -> (String, Option<String>) {
        (name.to_string(), Some(kind.to_string()))
    }

    #[test]
    fn a_veth_leaves_its_peer_and_a_dummy_moves_whole() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping: needs root (network namespaces, links)");
            return;
        }
        let (a, b) = (Netns::start(), Netns::start());
        let (from, to) = (("a", a.pid()), ("b", b.pid()));

        let moved = move_interface("cable0", InterfaceKind::Veth, from, to).unwrap();
        assert_eq!(moved.created, Some(InterfaceKind::Veth));
        assert_eq!(moved.created_peer.as_deref(), Some("cable0p"));
        assert_eq!(a.links(), [link("cable0p", "veth")]);
        assert_eq!(b.links(), [link("cable0", "veth")]);

        match move_interface("dummy0", InterfaceKind::Dummy, from, to) {
            Ok(moved) => {
                assert_eq!(moved.created, Some(InterfaceKind::Dummy));
                assert_eq!(moved.created_peer, None, "a dummy has no peer");
                assert_eq!(a.links(), [link("cable0p", "veth")]);
                assert!(
                    b.links().contains(&link("dummy0", "dummy")),
                    "{:?}",
                    b.links()
                );
            }
            Err(MoveError::Unsupported(InterfaceKind::Dummy, e)) => {
                // Some kernels (this one included, at the time of writing) lack CONFIG_DUMMY.
                eprintln!("no dummy driver in this kernel ({e}); only the refusal was checked");
                assert_eq!(a.links(), [link("cable0p", "veth")], "nothing left behind");
                assert_eq!(b.links(), [link("cable0", "veth")]);
            }
            Err(e) => panic!("{e}"),
        }

        // An interface the source has moves whatever the kind asked for: nothing is made.
        let moved = move_interface("cable0p", InterfaceKind::Dummy, from, to).unwrap();
        assert_eq!(moved.created, None);
        assert_eq!(moved.created_peer, None);
        assert!(a.links().is_empty(), "{:?}", a.links());
        assert!(b.links().contains(&link("cable0p", "veth")));

        // A name the target has is refused before anything is made.
        for kind in InterfaceKind::ALL {
            let e = move_interface("cable0", kind, from, to).unwrap_err();
            assert!(matches!(e, MoveError::Exists(..)), "{e}");
        }
        assert!(a.links().is_empty(), "{:?}", a.links());
    }
}
