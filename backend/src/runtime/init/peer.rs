//! The monitor with a peer runtime (runc or crun, the spec's `runtime`): instead of cloning the
//! container itself, it runs the peer on the bundle it was given, and stays its monitor as for
//! our own containers.
//!
//! 1. The overlay root is mounted at the bundle's `rootfs` on the host side, where the peer
//!    binds it. With a user namespace it is made over idmapped layers as ours is (`idmap`), with
//!    a namespace of the same mapping that a short-lived child holds while the layers are
//!    idmapped (the peer makes the container's own later; a mapping is all an idmap needs).
//! 2. The monitor becomes a child subreaper, then runs `PEER --root <state>/peer-NAME create
//!    --bundle B --pid-file F [--console-socket S] ID`. When `create` returns, the container's
//!    first process (waiting for `start`) has lost its parents and is ours: we wait for it and
//!    report its status as for any container.
//! 3. With a terminal the peer sends the pty master over the console socket (`SCM_RIGHTS`, as
//!    `isolab oci` sends it), and it goes to the launcher with `Created`.
//! 4. `Start` runs `PEER start ID`. Removal (`cleanup::teardown`) runs `PEER delete -f ID`.
//!
//! The cgroup is isolab's: runc gets `linux.cgroupsPath` = `/isolab/<id>`, the folder isolab
//! made and limited, so the limits, the live view and removal find it where they look; crun
//! (`--cgroup-manager=disabled`, it refuses hybrid hosts) is started inside that cgroup, in a
//! mount namespace of its own without the hybrid host's cgroup2 mount.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::LinuxNamespaceType;

use super::monitor::{mount_overlay, open_procs, root_ids, write_id_maps};
use super::protocol::{CreateConfig, Failure, FromInit, RootfsLayers};
use super::watch::Starter;
use super::{idmap, namespaces, Step};
use crate::runtime::channel::Channel;
use crate::runtime::peer::Peer;
use crate::runtime::sys;

/// How long the peer has to send the pty master once `create` returned.
const CONSOLE_WAIT: Duration = Duration::from_secs(10);

/// Everything up to `Created`: the container's first process, and what starts its command.
pub(super) fn launch(
    launcher: &Channel,
    cfg: &CreateConfig,
    peer: &Peer,
    stdio: Vec<OwnedFd>,
) -> Result<(Pid, Starter), Failure> {
    sys::set_not_dumpable().step("prctl dumpable")?;
    if let Some(process) = cfg.spec.process() {
        super::process::raise_hard_limits(process);
    }
    sys::set_child_subreaper().step("prctl child subreaper")?;
    if let Some(layers) = cfg.rootfs.as_ref().filter(|l| l.overlay) {
        mount_root(cfg, layers)?;
    }
    let dir = cfg.paths.container(&cfg.id);
    let log = dir.join("peer.log");
    let pid_file = dir.join("peer.pid");
    let terminal = cfg
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let console_path = dir.join("console.sock");
    let console = terminal
        .then(|| UnixListener::bind(&console_path))
        .transpose()
        .step("console socket")?;
    let bundle = dir.display().to_string();
    let pid_arg = pid_file.display().to_string();
    let console_arg = console_path.display().to_string();
    let mut args = vec!["create", "--bundle", &bundle, "--pid-file", &pid_arg];
    if terminal {
        args.extend(["--console-socket", console_arg.as_str()]);
    }
    args.push(&cfg.id);
    let mut cmd = peer.command(&log, &args);
    // Without a terminal the container's streams are the peer's, which it passes on.
    let mut stdio = stdio.into_iter().map(Stdio::from);
    cmd.stdin(stdio.next().unwrap_or_else(Stdio::null))
        .stdout(stdio.next().unwrap_or_else(Stdio::null))
        .stderr(stdio.next().unwrap_or_else(Stdio::null));
    if peer.name == "crun" {
        in_cgroup_without_cgroup2(&mut cmd, cfg)?;
    }
    let step = format!("{} create", peer.name);
    let status = cmd.status().step(&step)?;
    if !status.success() {
        return Err(Failure {
            step,
            message: log_tail(&log, status),
        });
    }
    let pid = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
        .ok_or_else(|| Failure {
            step: step.clone(),
            message: format!("no pid in {}", pid_file.display()),
        })?;
    // Ours now that `create` has returned; never act on a pid that is not.
    if sys::parent_of(pid) != Some(std::process::id() as i32) {
        return Err(Failure {
            step,
            message: format!("the container's process {pid} is not the monitor's child"),
        });
    }
    let master = console.map(|l| receive_console(&l)).transpose()?;
    let fds: Vec<_> = master.iter().map(|m| m.as_raw_fd()).collect();
    launcher
        .send_with(&FromInit::Created { pid }, &fds)
        .step("report created")?;
    let (peer, id) = (peer.clone(), cfg.id.clone());
    let starter: Starter = Box::new(move || {
        let step = format!("{} start", peer.name);
        let status = peer
            .command(&log, &["start", &id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .step(&step)?;
        match status.success() {
            true => Ok(()),
            false => Err(Failure {
                step,
                message: log_tail(&log, status),
            }),
        }
    });
    Ok((Pid::from_raw(pid), starter))
}

/// The overlay root at the bundle's `rootfs`, on the host side.
fn mount_root(cfg: &CreateConfig, layers: &RootfsLayers) -> Result<(), Failure> {
    let joined = namespaces::join_path(&cfg.spec, LinuxNamespaceType::User);
    let new_user = namespaces::new_kinds(&cfg.spec).contains(&LinuxNamespaceType::User);
    let userns = match &joined {
        Some(path) => Some(File::open(path).step("open the joined user namespace")?),
        None if new_user => Some(same_mapping(&cfg.spec)?),
        None => None,
    };
    let Some(userns) = userns else {
        return mount_overlay(layers);
    };
    let (uid, gid) = match &joined {
        Some(path) => namespaces::root_ids_of(path),
        None => root_ids(&cfg.spec),
    };
    for dir in [&layers.upper, &layers.work] {
        std::os::unix::fs::chown(dir, Some(uid), Some(gid)).step("chown writable layer")?;
    }
    let root = idmap::overlay(layers, &userns)?;
    idmap::attach(&root, &layers.target)
}

/// A user namespace with the spec's mapping, for idmapping the layers before the peer makes
/// the container's: a child is cloned into a new one, its maps written, the namespace opened,
/// and the child let go (the open namespace outlives it).
fn same_mapping(spec: &oci_spec::runtime::Spec) -> Result<File, Failure> {
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).step("pipe")?;
    let child = match sys::clone_into(nix::sched::CloneFlags::CLONE_NEWUSER)
        .step("clone a user namespace")?
    {
        sys::Forked::Child => {
            drop(wr);
            // Hold the namespace until the monitor closes its end.
            let _ = File::from(rd).read(&mut [0u8; 1]);
            sys::exit_now(0)
        }
        sys::Forked::Parent(pid) => pid,
    };
    drop(rd);
    let userns = write_id_maps(child, spec).and_then(|()| {
        File::open(format!("/proc/{child}/ns/user")).step("open the mapping's user namespace")
    });
    let _ = File::from(wr).write_all(b"x");
    let _ = waitpid(child, None);
    userns
}

/// crun, which refuses hybrid hosts and is told to make no cgroup: started inside the
/// container's cgroup (so the container is born there), in a mount namespace of its own where
/// the hybrid host's cgroup2 mount is gone (so it sees a cgroup v1 host).
fn in_cgroup_without_cgroup2(cmd: &mut Command, cfg: &CreateConfig) -> Result<(), Failure> {
    let procs: Vec<File> = open_procs(&cfg.cgroup_procs)?
        .into_iter()
        .map(|(_, f)| f)
        .collect();
    let unified: PathBuf = cfg.paths.cgroup_root.join("unified");
    // SAFETY: the closure runs in the forked child before exec. The monitor is single-threaded,
    // so no lock (of the allocator or anything else) can be held by a thread that vanished in
    // the fork; it writes to descriptors and paths it owns and makes syscalls only.
    unsafe {
        cmd.pre_exec(move || {
            let pid = std::process::id().to_string();
            for mut f in &procs {
                f.write_all(pid.as_bytes())?;
            }
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_SLAVE,
                None::<&str>,
            )?;
            match umount2(&unified, MntFlags::MNT_DETACH) {
                Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
                Err(e) => Err(e.into()),
            }
        });
    }
    Ok(())
}

/// The pty master the peer sends on the console socket (one `SCM_RIGHTS` descriptor).
fn receive_console(listener: &UnixListener) -> Result<OwnedFd, Failure> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let step = "receive the terminal from the console socket";
    let timeout = PollTimeout::try_from(CONSOLE_WAIT).unwrap_or(PollTimeout::MAX);
    let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
    if poll(&mut fds, timeout).step(step)? == 0 {
        return Err(Failure {
            step: step.into(),
            message: "the runtime sent no terminal".into(),
        });
    }
    let (conn, _) = listener.accept().step(step)?;
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .step(step)?;
    for c in msg.cmsgs().step(step)? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just gave us this descriptor in SCM_RIGHTS; nothing else
                // owns it (any others in the message are not used, and close with the process).
                return Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
            }
        }
    }
    Err(Failure {
        step: step.into(),
        message: "the message held no descriptor".into(),
    })
}

/// What the peer logged last (its error), else how it ended.
fn log_tail(log: &Path, status: std::process::ExitStatus) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    match lines.len() {
        0 => format!("it ended with {status}"),
        n => lines[n.saturating_sub(2)..].join("; "),
    }
}
