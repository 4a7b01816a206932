//! The container stage of the init helper: the first process inside the new namespaces.
//!
//! Its steps, in order (runc's `standard_init_linux.go` and youki's `process/init` run the same
//! order): wait for the id maps; become root of the user namespace; set the hostname; build the
//! root and `pivot_root` into it; open the pty inside the container's devpts; apply rlimits;
//! report ready and wait for `Start`; then exec the command, or fork it and stay as a reaping
//! PID 1.

use std::os::fd::OwnedFd;

use nix::sched::unshare;
use nix::sys::stat::{umask, Mode};
use nix::unistd::{sethostname, setresgid, setresuid, Gid, Pid, Uid};
use oci_spec::runtime::LinuxNamespaceType;

use super::monitor::wait_start;
use super::protocol::{CreateConfig, Failure, StageMsg};
use super::{namespaces, process, reaper, rootfs, Step};
use crate::runtime::channel::Channel;
use crate::runtime::sys;

/// Runs in the cloned child. Never returns: it execs, becomes the reaper, or exits with a
/// failure reported on `stage`.
pub fn run(stage: Channel, cfg: &CreateConfig, stdio: Vec<OwnedFd>, status: OwnedFd) -> ! {
    match setup_and_exec(&stage, cfg, stdio, status) {
        Ok((child, status)) => {
            // Our end of the stage channel must close, so the monitor sees EOF once the command
            // has exec'd; and PID 1 keeps no terminal or pipe of the command's open.
            drop(stage);
            quiet_stdio();
            reaper::run(child, status)
        }
        Err(failure) => {
            let _ = stage.send(&StageMsg::Failed(failure));
            sys::exit_now(1)
        }
    }
}

fn setup_and_exec(
    stage: &Channel,
    cfg: &CreateConfig,
    stdio: Vec<OwnedFd>,
    status: OwnedFd,
) -> Result<(Pid, OwnedFd), Failure> {
    umask(Mode::from_bits_truncate(0o022));
    // With a user namespace, `Go` carries the overlay root, made over idmapped layers, then
    // the spec's idmapped binds, in the spec's order.
    let (root_mount, binds) = match stage.recv_with::<StageMsg>().step("wait for id maps")? {
        Some((StageMsg::Go, mut fds)) => {
            let n = super::idmap::idmapped_binds(&cfg.spec).count();
            let binds = fds.split_off(fds.len().saturating_sub(n));
            (fds.pop(), binds)
        }
        _ => sys::exit_now(1),
    };
    let plan = namespaces::new_kinds(&cfg.spec);
    // The monitor has moved us into our cgroup: a cgroup namespace made now is rooted there.
    if plan.contains(&LinuxNamespaceType::Cgroup) {
        unshare(namespaces::clone_flag(LinuxNamespaceType::Cgroup)).step("unshare cgroup")?;
    }
    // Root of the user namespace, a new one or the one joined (setns leaves our ids as they
    // were: the host's root, which is no one in there).
    let joins_user = namespaces::join_path(&cfg.spec, LinuxNamespaceType::User).is_some();
    if plan.contains(&LinuxNamespaceType::User) || joins_user {
        setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0)).step("setresgid 0")?;
        setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).step("setresuid 0")?;
    }
    // If the monitor dies, so does the container: nothing runs unwatched. Set only now: a
    // change of ids clears it, and a container that joins another's user namespace was cloned
    // by an intermediate process that has exited since (`Go` comes once we are the
    // monitor's). Had the monitor died before this line, the stage channel fails at the next
    // message and we stop.
    sys::set_parent_death_signal(libc::SIGKILL).step("prctl pdeathsig")?;
    if plan.contains(&LinuxNamespaceType::Network) {
        sys::loopback_up().step("bring lo up")?;
    }
    if plan.contains(&LinuxNamespaceType::Uts) {
        if let Some(name) = cfg.spec.hostname() {
            sethostname(name).step("sethostname")?;
        }
    }
    if let Some(layers) = &cfg.rootfs {
        rootfs::setup(cfg, layers, root_mount, binds)?;
    }
    let proc_spec = cfg.spec.process().as_ref().ok_or_else(|| Failure {
        step: "spec".into(),
        message: "the spec has no process".into(),
    })?;
    let (stdio, master) = process::prepare_stdio(stdio, proc_spec.terminal().unwrap_or(false))?;
    process::set_rlimits(proc_spec)?;
    let seccomp = cfg.spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let filter = process::compile_seccomp(seccomp)?;
    process::report_ready(stage, master)?;
    let launch = wait_start(stage)?;
    // A pooled container learns its hostname only now; it has a UTS namespace of its own (the
    // pool makes only those).
    if let (Some(name), true) = (&launch.hostname, plan.contains(&LinuxNamespaceType::Uts)) {
        sethostname(name).step("sethostname")?;
    }
    if !cfg.reaper {
        drop(status);
        match process::exec(proc_spec, filter, stdio)? {}
    }
    reaper::block_signals().step("block signals")?;
    match sys::fork_single_threaded().step("fork the command")? {
        sys::Forked::Child => {
            drop(status);
            let err = match process::exec(proc_spec, filter, stdio) {
                Err(f) => f,
                Ok(never) => match never {},
            };
            let _ = stage.send(&StageMsg::Failed(err));
            sys::exit_now(127)
        }
        sys::Forked::Parent(child) => Ok((child, status)),
    }
}

/// PID 1 keeps no terminal or pipe open: the command's streams must close when it ends.
fn quiet_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in 0..3 {
            let _ = sys::dup_onto(&null, fd);
        }
    }
}
