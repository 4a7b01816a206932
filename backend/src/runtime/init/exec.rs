//! `isolab init` for `exec`: enter a running container and start one more process in it,
//! like `docker exec`. The helper joins every namespace of the container's first process that
//! differs from its own, forks (the child is born in the container's PID namespace), moves the
//! child into the container's cgroup, and stays as its monitor.

use std::os::fd::OwnedFd;

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::monitor::{join_cgroup, open_procs, wait_ready, wait_start};
use super::namespaces::{self, Plan};
use super::protocol::{ExecConfig, ExitStatus, Failure, FromInit, StageMsg};
use super::watch::Watch;
use super::{process, Step};
use crate::runtime::channel::Channel;
use crate::runtime::sys;

/// `isolab init` for `exec`: enter a running container and start one more process.
pub fn run_exec(launcher: Channel, cfg: ExecConfig, stdio: Vec<OwnedFd>) -> i32 {
    let (pid, stage) = match enter_and_fork(&launcher, &cfg, stdio) {
        Ok(parts) => parts,
        Err(failure) => {
            let _ = launcher.send(&FromInit::Failed(failure));
            return 1;
        }
    };
    let mut watch = Watch::new(launcher, stage, pid);
    // Without the launcher, end the exec'd process group (it is a session leader).
    let status = watch.run(|| {
        let _ = kill(Pid::from_raw(-pid.as_raw()), Signal::SIGKILL);
    });
    watch.finish(status.unwrap_or(ExitStatus {
        code: 255,
        signal: None,
        oom_killed: false,
    }));
    0
}

fn enter_and_fork(
    launcher: &Channel,
    cfg: &ExecConfig,
    stdio: Vec<OwnedFd>,
) -> Result<(Pid, Channel), Failure> {
    sys::set_not_dumpable().step("prctl dumpable")?;
    if sys::process_start_time(cfg.target_pid) != Some(cfg.target_start_time) {
        return Err(Failure {
            step: "find container".into(),
            message: "the container is no longer running".into(),
        });
    }
    let plan: Plan = namespaces::plan_for_exec(cfg.target_pid)?;
    // Open the cgroup files now: once in the container's mount namespace their paths are gone.
    let cgroup_procs = open_procs(&cfg.cgroup_procs)?;
    namespaces::join(&plan)?;
    let (ours, theirs) = Channel::pair().step("socketpair")?;
    // A plain fork: the child is born in the joined PID namespace.
    let child = match sys::fork_single_threaded().step("fork")? {
        sys::Forked::Child => {
            drop(ours);
            let _ = sys::set_parent_death_signal(libc::SIGKILL);
            // Wait until the monitor has put us in the container's cgroup.
            if !matches!(theirs.recv::<StageMsg>(), Ok(Some(StageMsg::Go))) {
                sys::exit_now(1);
            }
            let tty = cfg.process.terminal().unwrap_or(false);
            let r = process::prepare_stdio(stdio, tty).and_then(|(stdio, master)| {
                process::set_rlimits(&cfg.process)?;
                let filter = process::compile_seccomp(cfg.seccomp.as_ref())?;
                process::report_ready(&theirs, master)?;
                wait_start(&theirs)?;
                process::exec(&cfg.process, filter, stdio)
            });
            let Err(f) = r;
            let _ = theirs.send(&StageMsg::Failed(f));
            sys::exit_now(127)
        }
        sys::Forked::Parent(pid) => pid,
    };
    drop(theirs);
    drop(stdio);
    let ready = join_cgroup(&cgroup_procs, child)
        .and_then(|()| ours.send(&StageMsg::Go).step("signal exec process"))
        .and_then(|()| wait_ready(launcher, &ours, child));
    if let Err(f) = ready {
        let _ = kill(child, Signal::SIGKILL);
        let _ = waitpid(child, None);
        return Err(f);
    }
    Ok((child, ours))
}
