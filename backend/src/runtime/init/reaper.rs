//! A minimal PID 1 (like tini or `docker --init`): forwards signals to the command, reaps every
//! zombie the namespace hands it, and ends with the command's status.

use std::io::Write;
use std::os::fd::OwnedFd;

use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::runtime::sys;

/// Block every signal, so that none is lost between the fork and the wait loop (the command
/// unblocks them before `execve`).
pub fn block_signals() -> nix::Result<()> {
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), None)
}

/// Loop until `child` (the user's command) exits; then report its status on `status` and exit.
/// When PID 1 exits the kernel kills whatever is left in the namespace.
pub fn run(child: Pid, status: OwnedFd) -> ! {
    let all = SigSet::all();
    loop {
        let Ok(sig) = all.wait() else { continue };
        if sig != Signal::SIGCHLD {
            let _ = kill(child, sig);
            continue;
        }
        // Reap everything that has ended: orphans are ours too.
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == child => finish(status, code, 0),
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => {
                    finish(status, 128 + sig as i32, sig as i32)
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    }
}

fn finish(status: OwnedFd, code: i32, signal: i32) -> ! {
    let mut bytes = [0u8; 8];
    bytes[..4].copy_from_slice(&code.to_le_bytes());
    bytes[4..].copy_from_slice(&signal.to_le_bytes());
    let _ = std::fs::File::from(status).write_all(&bytes);
    sys::exit_now(code & 0xff)
}
