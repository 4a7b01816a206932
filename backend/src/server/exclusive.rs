//! What a server must not share with another one, claimed at start-up and held until it exits
//! (the kernel lets go when the process ends, however it ends):
//! - its state root: a second server on it would take the first one's containers for what a
//!   crashed run left, and remove them (`flock` on `<state_root>/serve.lock`);
//! - with session networks, its network namespace: two servers there would replace each other's
//!   firewall table (and its egress setting) and remove each other's `isl-` bridges at
//!   start-up. The claim is an abstract unix socket, which belongs to the network namespace it
//!   is bound in, so servers in other namespaces (a node per namespace) do not collide.

use std::fs::File;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// The abstract socket name of "a server with session networks runs in this namespace".
const NETWORK_CLAIM: &[u8] = b"isolab-serve-network";

/// Held for the server's life.
#[derive(Debug)]
pub struct Claims {
    _state_root: Flock<File>,
    _network: Option<UnixListener>,
}

/// Claim the state root, and the network namespace when `networks` is on; a clear error when
/// another server holds either.
pub fn claim(state_root: &Path, networks: bool) -> Result<Claims> {
    std::fs::create_dir_all(state_root)
        .with_context(|| format!("create the state root {}", state_root.display()))?;
    let path = state_root.join("serve.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?;
    let state = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((_, Errno::EWOULDBLOCK)) => bail!(
            "another `isolab serve` uses the state root {}: it would take that server's \
             containers for a crashed run's and remove them (give each server its own \
             --state-root)",
            state_root.display()
        ),
        Err((_, e)) => return Err(e).with_context(|| format!("lock {}", path.display())),
    };
    let network = if networks {
        let addr = SocketAddr::from_abstract_name(NETWORK_CLAIM).context("an abstract name")?;
        match UnixListener::bind_addr(&addr) {
            Ok(l) => Some(l),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => bail!(
                "another `isolab serve` with session networks runs in this network namespace: \
                 the two would replace each other's firewall rules and remove each other's \
                 bridges (stop it, or run this one with --no-network or in a network \
                 namespace of its own)"
            ),
            Err(e) => return Err(e).context("claim the network namespace"),
        }
    } else {
        None
    };
    Ok(Claims {
        _state_root: state,
        _network: network,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_root_is_claimed_once_and_free_again_after() {
        let dir = tempfile::tempdir().unwrap();
        let first = claim(dir.path(), false).unwrap();
        let e = claim(dir.path(), false).unwrap_err().to_string();
        assert!(e.contains("uses the state root"), "{e}");
        drop(first);
        claim(dir.path(), false).expect("free once the first is gone");
    }
}
