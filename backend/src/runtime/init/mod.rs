//! The init helper: our own binary re-executed as `isolab init` (as `runc init` is), from a sealed
//! in-memory copy, single-threaded, with a message channel to the launcher on its stdin.
//!
//! It runs in two stages. The **monitor** ([`monitor`]) stays on the host side: it joins the
//! cgroup, mounts the overlay root, joins shared namespaces and clones the container's first
//! process straight into the new ones; then it writes the uid/gid maps, relays `Start` and
//! signals ([`watch`]), waits for the end and tears the container down. The **container** stage
//! ([`container`]) sets the hostname, builds the root ([`rootfs`]), opens the pty, and either
//! `exec`s the command or stays as a reaping PID 1 ([`reaper`]) above it. [`exec`] enters a
//! running container instead. [`process`] is the last step of both: credentials, capabilities,
//! `no_new_privs`, `execve`.

pub mod container;
pub mod exec;
pub mod idmap;
pub mod monitor;
pub mod namespaces;
pub mod peer;
pub mod process;
pub mod protocol;
pub mod reaper;
pub mod rootfs;
pub mod watch;

use std::os::fd::{FromRawFd, OwnedFd};

use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};

use super::channel::Channel;
use protocol::{Failure, FromInit, ToInit};

/// Attach a step name to any error, giving the [`Failure`] the launcher reports.
pub trait Step<T> {
    fn step(self, step: &str) -> Result<T, Failure>;
}

impl<T, E: std::fmt::Display> Step<T> for Result<T, E> {
    fn step(self, step: &str) -> Result<T, Failure> {
        self.map_err(|e| Failure {
            step: step.to_string(),
            message: e.to_string(),
        })
    }
}

/// Entry point of `isolab init`. Never returns.
pub fn main() -> ! {
    // A clean signal mask: the launcher may have blocked signals for its own handling.
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // Nothing the launcher's caller left open reaches a container (an inherited directory
    // would be a way out of its root: CVE-2024-21626's kind). We keep the channel (0) and our
    // diagnostics (1, 2); the container's own streams arrive over the channel.
    super::sys::close_from(3, false);
    // SAFETY: the launcher gives us the channel as fd 0 and nothing else in this fresh process
    // owns it.
    let chan = Channel::from_fd(unsafe { OwnedFd::from_raw_fd(0) });
    let code = match chan.recv_with::<ToInit>() {
        Ok(Some((ToInit::Create(cfg), fds))) => monitor::run_create(chan, *cfg, fds),
        Ok(Some((ToInit::Exec(cfg), fds))) => exec::run_exec(chan, *cfg, fds),
        Ok(Some(_)) => {
            let _ = chan.send(&FromInit::Failed(Failure {
                step: "init".into(),
                message: "expected Create or Exec first".into(),
            }));
            2
        }
        Ok(None) => 2,
        Err(e) => {
            eprintln!("isolab init: {e}");
            2
        }
    };
    super::sys::exit_now(code)
}
