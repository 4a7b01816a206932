//! Start the init helper: our own binary as `isolab init`, with a message channel on its stdin.
//! `std::process::Command` does the fork and exec, so the calling process (the CLI or the tokio
//! server) never runs Rust code in a forked child.
//!
//! When a process of the helper can be seen from inside a container (it enters a running one
//! for `exec`, joins a shared PID namespace, or stays as the reaping PID 1), it runs from a
//! sealed in-memory copy of the binary, so `/proc/PID/exe` never leads to a writable host file
//! (runc's answer to CVE-2019-5736). A plain container with its own PID namespace never shows
//! the helper inside: its first process `exec`s the user's command before anything else exists
//! there, so it runs the binary as it is and skips the copy (3.5 ms for the CLI).

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use super::channel::{Channel, ChannelError};
use super::init::protocol::{FromInit, ToInit};
use super::sys;

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot make a sealed copy of the isolab binary: {0}")]
    SealedCopy(std::io::Error),
    #[error("cannot start the init helper: {0}")]
    Spawn(std::io::Error),
    #[error("init helper channel: {0}")]
    Channel(#[from] ChannelError),
    #[error("the init helper ended without an answer")]
    Gone,
}

/// The sealed copy, made once per process (a server starts many containers from one copy).
fn sealed_exe() -> Result<RawFd, LaunchError> {
    static EXE: OnceLock<OwnedFd> = OnceLock::new();
    if let Some(fd) = EXE.get() {
        return Ok(fd.as_raw_fd());
    }
    let fd = sys::sealed_self_copy().map_err(LaunchError::SealedCopy)?;
    Ok(EXE.get_or_init(|| fd).as_raw_fd())
}

/// A running init helper and our end of its channel.
#[derive(Debug)]
pub struct InitProcess {
    child: Child,
    chan: Channel,
}

impl InitProcess {
    /// `sealed`: run from the sealed copy (see the module's comment for when that is needed).
    pub fn spawn(sealed: bool) -> Result<InitProcess, LaunchError> {
        let (ours, theirs) = Channel::pair()?;
        // The memfd is close-on-exec; the path is resolved by execve before descriptors close.
        let program = match sealed {
            true => format!("/proc/self/fd/{}", sealed_exe()?),
            false => "/proc/self/exe".to_string(),
        };
        let mut cmd = Command::new(program);
        // Its own process group: a Ctrl-C at the caller's terminal is the caller's to forward,
        // and must not kill the helper directly.
        cmd.arg("init")
            .process_group(0)
            .stdin(Stdio::from(theirs.into_fd()))
            // No inherited stdout or stderr: a detached container's helper must not keep the
            // caller's pipes open (`$(isolab run -d …)` would never return).
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .env_clear();
        if let Ok(log) = std::env::var("RUST_LOG") {
            cmd.env("RUST_LOG", log);
        }
        let child = cmd.spawn().map_err(LaunchError::Spawn)?;
        Ok(InitProcess { child, chan: ours })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn send(&self, msg: &ToInit, fds: &[RawFd]) -> Result<(), LaunchError> {
        Ok(self.chan.send_with(msg, fds)?)
    }

    /// The next message, or `Gone` when the helper has closed the channel.
    pub fn recv(&self) -> Result<(FromInit, Vec<OwnedFd>), LaunchError> {
        self.chan.recv_with()?.ok_or(LaunchError::Gone)
    }

    /// A second handle on the channel, for a thread that forwards signals.
    pub fn channel_clone(&self) -> std::io::Result<Channel> {
        Ok(Channel::from_fd(self.chan.as_fd_owned()?))
    }

    /// Close our end without waiting: the helper goes on alone (after `Detach`).
    pub fn reap_detached(self) {
        drop(self.chan);
    }

    /// Close our end and reap the helper.
    pub fn reap(mut self) {
        drop(self.chan);
        let _ = self.child.wait();
    }
}

impl Channel {
    fn as_fd_owned(&self) -> std::io::Result<OwnedFd> {
        std::os::fd::AsFd::as_fd(self).try_clone_to_owned()
    }
}
