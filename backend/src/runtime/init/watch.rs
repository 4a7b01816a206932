//! The helper's event loop while its child runs: the launcher's requests (`Start`, signals,
//! `Detach`), the child's start result, and its end. Shared by `run` and `exec`.

use std::os::fd::AsFd;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::protocol::{ExitStatus, FromInit, Launch, StageMsg};
use crate::runtime::channel::Channel;
use crate::runtime::sys;

/// The monitor's event loop: the launcher's requests, the stage's start result, the child's end.
pub(super) struct Watch {
    launcher: Channel,
    launcher_gone: bool,
    detached: bool,
    /// The stage channel while `Start` is pending or its outcome unknown.
    stage: Option<Channel>,
    child: Pid,
    /// A FIFO whose first byte also means `Start` (`isolab oci start`, from another process).
    start_fifo: Option<std::fs::File>,
    /// Called once the command has been exec'd.
    on_running: Option<Box<dyn Fn()>>,
    /// Starts the command instead of the stage (a peer runtime's `start`).
    starter: Option<Starter>,
}

/// Runs a created container's command (`runc start`), and says whether it did.
pub(super) type Starter = Box<dyn FnMut() -> Result<(), super::protocol::Failure>>;

impl Watch {
    pub(super) fn new(launcher: Channel, stage: Channel, child: Pid) -> Watch {
        Watch::make(launcher, Some(stage), child, None)
    }

    /// A container a peer runtime created: `starter` runs its command on `Start`.
    pub(super) fn with_starter(launcher: Channel, child: Pid, starter: Starter) -> Watch {
        Watch::make(launcher, None, child, Some(starter))
    }

    fn make(
        launcher: Channel,
        stage: Option<Channel>,
        child: Pid,
        starter: Option<Starter>,
    ) -> Watch {
        Watch {
            launcher,
            launcher_gone: false,
            detached: false,
            stage,
            child,
            start_fifo: None,
            on_running: None,
            starter,
        }
    }

    /// Also take `Start` from `fifo` (opened read-write, so that it never reports a hang-up),
    /// and call `on_running` once the command runs.
    pub(super) fn with_start_fifo(
        mut self,
        fifo: std::fs::File,
        on_running: Box<dyn Fn()>,
    ) -> Self {
        self.start_fifo = Some(fifo);
        self.on_running = Some(on_running);
        self
    }

    /// Run until the child exits; `abandon` ends the container when the launcher goes away
    /// without detaching.
    pub(super) fn run(&mut self, abandon: impl Fn()) -> Option<ExitStatus> {
        use super::protocol::ToInit;
        let pidfd = match sys::pidfd_open(self.child) {
            Ok(fd) => fd,
            Err(_) => return wait_blocking(self.child),
        };
        let mut start_sent = false;
        loop {
            let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
            let launcher_at = (!self.launcher_gone).then(|| {
                fds.push(PollFd::new(self.launcher.as_fd(), PollFlags::POLLIN));
                fds.len() - 1
            });
            let stage_at = match (&self.stage, start_sent) {
                (Some(stage), true) => {
                    fds.push(PollFd::new(stage.as_fd(), PollFlags::POLLIN));
                    Some(fds.len() - 1)
                }
                _ => None,
            };
            let fifo_at = match (&self.start_fifo, start_sent) {
                (Some(fifo), false) => {
                    fds.push(PollFd::new(fifo.as_fd(), PollFlags::POLLIN));
                    Some(fds.len() - 1)
                }
                _ => None,
            };
            match poll(&mut fds, PollTimeout::NONE) {
                Err(nix::Error::EINTR) => continue,
                Err(_) => return wait_blocking(self.child),
                Ok(_) => {}
            }
            let ready = |i: Option<usize>| {
                i.and_then(|i| fds[i].revents())
                    .is_some_and(|r| !r.is_empty())
            };
            let (launcher_ready, stage_ready, child_done) =
                (ready(launcher_at), ready(stage_at), ready(Some(0)));
            let fifo_ready = ready(fifo_at);
            drop(fds);
            if fifo_ready {
                if let Some(fifo) = self.start_fifo.take() {
                    let mut byte = [0u8; 1];
                    let _ = std::io::Read::read(&mut &fifo, &mut byte);
                    start_sent = true;
                    self.start(Launch::default());
                }
            }
            if stage_ready {
                let stage = self.stage.take().expect("polled stage");
                match stage.recv::<StageMsg>() {
                    Ok(Some(StageMsg::Failed(f))) => {
                        self.send(&FromInit::Failed(f));
                        let _ = kill(self.child, Signal::SIGKILL);
                    }
                    // EOF: the last holder of the stage's end has exec'd the command.
                    _ => {
                        self.send(&FromInit::Started);
                        if let Some(hook) = &self.on_running {
                            hook();
                        }
                    }
                }
            }
            if launcher_ready {
                match self.launcher.recv::<ToInit>() {
                    Ok(Some(ToInit::Start)) if !start_sent => {
                        start_sent = true;
                        self.start_fifo = None;
                        self.start(Launch::default());
                    }
                    Ok(Some(ToInit::StartAs(launch))) if !start_sent => {
                        start_sent = true;
                        self.start_fifo = None;
                        self.start(launch);
                    }
                    Ok(Some(ToInit::Signal(sig))) => {
                        if let Ok(sig) = Signal::try_from(sig) {
                            let _ = kill(self.child, sig);
                        }
                    }
                    Ok(Some(ToInit::Detach)) => self.detached = true,
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => {
                        self.launcher_gone = true;
                        if !self.detached {
                            abandon();
                        }
                    }
                }
            }
            if child_done {
                return match waitpid(self.child, None) {
                    Ok(status) => ExitStatus::from_wait(status),
                    Err(_) => None,
                };
            }
        }
    }

    /// `Start`: told to the container's stage, or done by the starter (whose outcome is known
    /// at once).
    fn start(&mut self, launch: Launch) {
        if let Some(stage) = &self.stage {
            let _ = stage.send(&StageMsg::Start(launch));
        }
        let Some(starter) = self.starter.as_mut() else {
            return;
        };
        match starter() {
            Ok(()) => {
                self.send(&FromInit::Started);
                if let Some(hook) = &self.on_running {
                    hook();
                }
            }
            Err(f) => {
                self.send(&FromInit::Failed(f));
                let _ = kill(self.child, Signal::SIGKILL);
            }
        }
    }

    fn send(&mut self, msg: &FromInit) {
        if !self.launcher_gone && self.launcher.send(msg).is_err() {
            self.launcher_gone = true;
        }
    }

    pub(super) fn finish(mut self, status: ExitStatus) {
        self.send(&FromInit::Exited(status));
    }
}

fn wait_blocking(child: Pid) -> Option<ExitStatus> {
    loop {
        match waitpid(child, None) {
            Ok(status) => {
                if let Some(s) = ExitStatus::from_wait(status) {
                    return Some(s);
                }
            }
            Err(nix::Error::EINTR) => continue,
            Err(_) => return None,
        }
    }
}
