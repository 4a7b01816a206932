//! The host-side stage of the init helper: sets up what must be done from outside, clones the
//! container's first process into its namespaces, then stays as its monitor (like conmon or a
//! containerd shim): it relays `Start` and signals, notices the end, and tears everything down.
//!
//! If the launcher goes away without `Detach` (a killed `isolab run`, a restarted server), the
//! monitor kills the container and cleans up, so nothing is left behind.

use std::fs::{self, File};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::chown;

use nix::mount::{mount, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{pipe, Pid};

use oci_spec::runtime::LinuxNamespaceType;

use super::protocol::{CreateConfig, ExitStatus, Failure, FromInit, Launch, StageMsg};
use super::watch::Watch;
use super::{container, Step};
use super::{idmap, namespaces};
use crate::runtime::channel::Channel;
use crate::runtime::state::{ContainerState, Status};
use crate::runtime::{cgroups, cleanup, sys};

/// `isolab init` for a new container. Returns the helper's exit code.
pub fn run_create(launcher: Channel, cfg: CreateConfig, stdio: Vec<OwnedFd>) -> i32 {
    // Our overlay's mount point (an OCI bundle's own rootfs is never unmounted by us).
    let rootfs = cfg
        .rootfs
        .as_ref()
        .filter(|l| l.overlay)
        .map(|l| l.target.as_path());
    // Only teardown needs the cgroup manager: find it once the container is on its way,
    // unless the launch joins another container's mount namespace (then this process's
    // `/proc/self/mountinfo` is no longer the host's).
    let early = joins_mount_namespace(&cfg).then(|| cgroups::detect_at(&cfg.paths.cgroup_root));
    let result = match &cfg.peer {
        Some(peer) => super::peer::launch(&launcher, &cfg, peer, stdio)
            .map(|(child, starter)| (child, Launched::Peer(starter))),
        None => launch_container(&launcher, &cfg, stdio)
            .map(|(child, stage, status)| (child, Launched::Own(stage, status))),
    };
    let detected = match early {
        Some(found) => found,
        None => cgroups::detect_at(&cfg.paths.cgroup_root),
    };
    let cg = match detected {
        Ok(cg) => cg,
        Err(e) => {
            // Cannot happen where the launcher found them; if it does, the launcher (or
            // `isolab gc`) removes what is left.
            if let Ok((child, ..)) = &result {
                let _ = kill(*child, Signal::SIGKILL);
            }
            let _ = launcher.send(&FromInit::Failed(Failure {
                step: "find cgroups".into(),
                message: e.to_string(),
            }));
            return 1;
        }
    };
    let (child, launched) = match result {
        Ok(parts) => parts,
        Err(failure) => {
            cleanup::teardown_with(&cfg.paths, &cfg.id, cg.as_ref(), rootfs);
            let _ = launcher.send(&FromInit::Failed(failure));
            return 1;
        }
    };
    let (mut watch, status_rd) = match launched {
        Launched::Own(stage, status_rd) => (Watch::new(launcher, stage, child), Some(status_rd)),
        Launched::Peer(starter) => (Watch::with_starter(launcher, child, starter), None),
    };
    if let Some(path) = &cfg.oci_start_fifo {
        // Read-write: the FIFO never reports a hang-up, only a byte from `oci start`.
        match fs::OpenOptions::new().read(true).write(true).open(path) {
            Ok(fifo) => {
                let (paths, id) = (cfg.paths.clone(), cfg.id.clone());
                watch = watch.with_start_fifo(
                    fifo,
                    Box::new(move || set_status(&paths, &id, Status::Running, None)),
                );
            }
            Err(e) => tracing::warn!("open {}: {e}", path.display()),
        }
    }
    let waited = watch.run(|| {
        let _ = cg.kill_all(&cfg.id);
    });
    // The reaper tells the command's own status; without one, PID 1 *is* the command.
    let mut status = status_rd
        .and_then(read_reaper_status)
        .or(waited)
        .unwrap_or(ExitStatus {
            code: 255,
            signal: None,
            oom_killed: false,
        });
    status.oom_killed = cg.stats(&cfg.id).is_ok_and(|s| s.oom_kills > 0);
    if let Some(layers) = cfg.rootfs.as_ref().filter(|l| l.keep_upper.is_some()) {
        keep_upper(&cfg.id, cg.as_ref(), layers);
    }
    if cfg.oci_start_fifo.is_some() {
        // An OCI container stays, stopped, until `oci delete`: its processes and cgroup go
        // now, its state (and name) then.
        let _ = cg.kill_all(&cfg.id);
        let _ = cg.remove(&cfg.id);
        let _ = cg.remove_parent_if_empty();
        set_status(&cfg.paths, &cfg.id, Status::Stopped, Some(status.code));
    } else {
        cleanup::teardown_with(&cfg.paths, &cfg.id, cg.as_ref(), rootfs);
    }
    watch.finish(status);
    0
}

/// Whether the spec joins an existing mount namespace (`--mnt container:NAME`).
fn joins_mount_namespace(cfg: &CreateConfig) -> bool {
    cfg.spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|list| {
            list.iter()
                .any(|n| n.typ() == LinuxNamespaceType::Mount && n.path().is_some())
        })
}

/// A container on its way: cloned by us (its stage channel, and the pipe on which a reaper
/// reports the command's status), or created by a peer runtime (what starts it).
enum Launched {
    Own(Channel, File),
    Peer(super::watch::Starter),
}

/// Record a new status in the container's state (best effort: the state folder may be gone).
fn set_status(paths: &crate::runtime::Paths, id: &str, status: Status, code: Option<i32>) {
    let _ = ContainerState::update(paths, id, |st| {
        st.status = status;
        if code.is_some() {
            st.exit_code = code;
        }
    });
}

/// Move the upper folder out of the way of teardown: every process stopped, the overlay
/// unmounted, then renamed (a failure leaves it to be removed with the rest, and the build that
/// asked finds no folder).
fn keep_upper(id: &str, cg: &dyn cgroups::CgroupManager, layers: &super::protocol::RootfsLayers) {
    let Some(dest) = &layers.keep_upper else {
        return;
    };
    let _ = cg.kill_all(id);
    let _ = nix::mount::umount2(layers.target.as_path(), nix::mount::MntFlags::MNT_DETACH);
    let _ = std::fs::rename(&layers.upper, dest);
}

/// Everything up to the container's `Ready`: returns its pid, its stage channel and the pipe on
/// which a reaper reports the command's status.
fn launch_container(
    launcher: &Channel,
    cfg: &CreateConfig,
    stdio: Vec<OwnedFd>,
) -> Result<(Pid, Channel, File), Failure> {
    // The monitor itself stays out of the container's cgroup, so that killing the cgroup never
    // kills the one process that cleans up after it.
    sys::set_not_dumpable().step("prctl dumpable")?;
    if let Some(process) = cfg.spec.process() {
        super::process::raise_hard_limits(process);
    }
    // 1. Open the namespaces to join while the host's /proc is still ours.
    let plan = namespaces::plan_for_spec(&cfg.spec)?;
    let new_user = plan.is_new(LinuxNamespaceType::User);
    // 2. The overlay root, mounted on the host side so the bundle also runs under runc. With a
    //    new user namespace it is made once that namespace exists, over idmapped layers, and
    //    handed to the container (`idmap`).
    //    A container that joins another's user namespace gets its overlay now, while we are
    //    still the host's root.
    let joined_user = plan.joined(LinuxNamespaceType::User);
    let mut root = None;
    // The spec's idmapped binds (named volumes) are made alongside, with the same namespace.
    let idmapped = idmap::idmapped_binds(&cfg.spec).count();
    if idmapped > 0 && !new_user && joined_user.is_none() {
        return Err(Failure {
            step: "idmapped mounts".into(),
            message: "an idmapped mount needs a user namespace of the container's own (not \
                      the host's)"
                .into(),
        });
    }
    let mut binds = match joined_user {
        Some(userns) => idmap::binds(&cfg.spec, userns, false)?,
        None => Vec::new(),
    };
    if let Some(layers) = cfg.rootfs.as_ref().filter(|l| l.overlay) {
        let owner = match namespaces::join_path(&cfg.spec, LinuxNamespaceType::User) {
            Some(path) if joined_user.is_some() => Some(namespaces::root_ids_of(&path)),
            _ => new_user.then(|| root_ids(&cfg.spec)),
        };
        if let Some((uid, gid)) = owner {
            for dir in [&layers.upper, &layers.work] {
                chown(dir, Some(uid), Some(gid)).step("chown writable layer")?;
            }
        }
        if let Some(userns) = joined_user {
            root = Some(idmap::overlay(layers, userns)?);
        }
    }
    if let Some(layers) = cfg
        .rootfs
        .as_ref()
        .filter(|l| l.overlay && !new_user && joined_user.is_none())
    {
        mount_overlay(layers)?;
    }
    // 3. Join shared namespaces (time, …, mount last: see `namespaces::JOIN_ORDER`), but not a
    //    user namespace: the monitor stays the host's root, to tear down. The container's first
    //    process is then cloned by an intermediate process that joins it, and the PID
    //    namespace, so that the pid it reports is the host's (`clone_in_userns`).
    //    Nor a mount namespace: the monitor's paths (state, cgroups, the layers) are the
    //    host's; the container's first process joins it itself, right after the clone.
    let (user, pid, mnt) = (
        LinuxNamespaceType::User,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Mount,
    );
    match joined_user {
        Some(_) => namespaces::join_except(&plan, &[user, pid, mnt])?,
        None => namespaces::join_except(&plan, &[mnt])?,
    }
    // 4. The channel and status pipe to the container stage.
    let (ours, theirs) = Channel::pair().step("socketpair")?;
    let (status_rd, status_wr) = pipe().step("pipe")?;
    sys::set_cloexec(status_rd.as_raw_fd(), true).step("cloexec")?;
    sys::set_cloexec(status_wr.as_raw_fd(), true).step("cloexec")?;
    // 5. A new time namespace can only be made for our children, by unshare.
    if plan.new_time {
        unshare(namespaces::clone_flag(LinuxNamespaceType::Time)).step("unshare time namespace")?;
    }
    // 6. One clone makes the container's first process inside every new namespace but the
    //    cgroup one, which it makes itself once it stands in its cgroup (as runc does).
    let flags = plan.clone_flags - namespaces::clone_flag(LinuxNamespaceType::Cgroup);
    let forked = match joined_user {
        None => sys::clone_into(flags).step("clone into new namespaces")?,
        Some(userns) => clone_in_userns(userns, plan.joined(pid), flags)?,
    };
    let child = match forked {
        sys::Forked::Child => {
            drop(ours);
            drop(status_rd);
            if let Some(ns) = plan.joined(mnt) {
                if let Err(e) = setns(ns, CloneFlags::CLONE_NEWNS) {
                    let failure = Failure {
                        step: "setns mnt".into(),
                        message: e.to_string(),
                    };
                    let _ = theirs.send(&StageMsg::Failed(failure));
                    sys::exit_now(1)
                }
            }
            container::run(theirs, cfg, stdio, status_wr)
        }
        sys::Forked::Parent(pid) => pid,
    };
    drop(theirs);
    drop(status_wr);
    drop(stdio);
    // 7. Put it in its cgroup, map its ids (only the parent side may write them), then let it
    //    go on.
    let started = (|| {
        join_cgroup(&open_procs(&cfg.cgroup_procs)?, child)?;
        if new_user {
            write_id_maps(child, &cfg.spec)?;
            let overlay = cfg.rootfs.as_ref().filter(|l| l.overlay);
            if overlay.is_some() || idmapped > 0 {
                let userns = File::open(format!("/proc/{child}/ns/user"))
                    .step("open the container's user namespace")?;
                if let Some(layers) = overlay {
                    root = Some(idmap::overlay(layers, &userns)?);
                }
                binds = idmap::binds(&cfg.spec, &userns, true)?;
            }
        }
        // The root's mount first, if the container is to attach it, then the idmapped binds.
        let fds: Vec<_> = root.iter().chain(&binds).map(|m| m.as_raw_fd()).collect();
        ours.send_with(&StageMsg::Go, &fds)
            .step("signal container")?;
        drop(root.take());
        binds.clear();
        wait_ready(launcher, &ours, child)
    })();
    if let Err(f) = started {
        let _ = kill(child, Signal::SIGKILL);
        let _ = waitpid(child, None);
        return Err(f);
    }
    Ok((child, ours, File::from(status_rd)))
}

/// The overlay root of a container without a user namespace of its own, mounted at its target
/// on the host side (the layers as they are).
pub(super) fn mount_overlay(layers: &super::protocol::RootfsLayers) -> Result<(), Failure> {
    let lower = layers
        .lower
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    // volatile: no syncs to the upper layer, which is thrown away with the container
    // anyway; without it, unmounting syncs the host file system (0.7 ms per container).
    // redirect_dir and metacopy off (most kernels' defaults): an upper folder must be
    // writable as an OCI layer (a build's RUN, `isolab diff`), which cannot express them.
    let data = format!(
        "lowerdir={lower},upperdir={},workdir={},volatile,redirect_dir=off,metacopy=off",
        layers.upper.display(),
        layers.work.display()
    );
    // nodev: an image can never carry a usable device node; /dev is a tmpfs of its own.
    mount(
        Some("overlay"),
        &layers.target,
        Some("overlay"),
        MsFlags::MS_NODEV,
        Some(data.as_str()),
    )
    .step("mount overlay root")
}

/// `clone_into(flags)` from inside the user namespace `userns` (another container's), so that
/// the new namespaces belong to it, as runc's nsexec does: an intermediate child joins it (and
/// the PID namespace `pidns`, which then holds only its children), clones the container's
/// first process and exits. That process becomes ours again (we are a child subreaper), and
/// its pid, as the host sees it, comes back through a pipe.
fn clone_in_userns(
    userns: &File,
    pidns: Option<&File>,
    flags: nix::sched::CloneFlags,
) -> Result<sys::Forked, Failure> {
    use nix::sched::{setns, CloneFlags};
    use std::io::Write;
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).step("pipe")?;
    sys::set_child_subreaper().step("prctl child subreaper")?;
    match sys::fork_single_threaded().step("fork")? {
        sys::Forked::Child => {
            drop(rd);
            let cloned = setns(userns, CloneFlags::CLONE_NEWUSER)
                .and_then(|()| pidns.map_or(Ok(()), |p| setns(p, CloneFlags::CLONE_NEWPID)))
                .map_err(|e| format!("setns: {e}"))
                .and_then(|()| sys::clone_into(flags).map_err(|e| e.to_string()));
            match cloned {
                Ok(sys::Forked::Child) => {
                    drop(wr);
                    Ok(sys::Forked::Child)
                }
                Ok(sys::Forked::Parent(pid)) => {
                    let _ = File::from(wr).write_all(&pid.as_raw().to_le_bytes());
                    sys::exit_now(0)
                }
                Err(e) => {
                    let _ = File::from(wr).write_all(e.as_bytes());
                    sys::exit_now(1)
                }
            }
        }
        sys::Forked::Parent(mid) => {
            drop(wr);
            let mut answer = Vec::new();
            let _ = File::from(rd).read_to_end(&mut answer);
            let _ = waitpid(mid, None);
            match <[u8; 4]>::try_from(answer.as_slice()) {
                // Ours now; never act on a pid that is not (it goes into a cgroup next).
                Ok(b) => {
                    let pid = Pid::from_raw(i32::from_le_bytes(b));
                    if sys::parent_of(pid.as_raw()) != Some(std::process::id() as i32) {
                        let _ = kill(pid, Signal::SIGKILL);
                        return Err(Failure {
                            step: "clone in the joined user namespace".into(),
                            message: format!("pid {pid} is not our child"),
                        });
                    }
                    Ok(sys::Forked::Parent(pid))
                }
                Err(_) => Err(Failure {
                    step: "clone in the joined user namespace".into(),
                    message: String::from_utf8_lossy(&answer).into_owned(),
                }),
            }
        }
    }
}

/// Wait for the child's `Ready` and pass `Created` (with the pty master, if any) to the launcher.
pub(super) fn wait_ready(launcher: &Channel, stage: &Channel, child: Pid) -> Result<(), Failure> {
    match stage
        .recv_with::<StageMsg>()
        .step("wait for container setup")?
    {
        Some((StageMsg::Ready, fds)) => {
            let raw: Vec<_> = fds.iter().map(|f| f.as_raw_fd()).collect();
            launcher
                .send_with(
                    &FromInit::Created {
                        pid: child.as_raw(),
                    },
                    &raw,
                )
                .step("report created")
        }
        Some((StageMsg::Failed(f), _)) => Err(f),
        Some((other, _)) => Err(Failure {
            step: "setup".into(),
            message: format!("unexpected message {other:?}"),
        }),
        None => Err(Failure {
            step: "setup".into(),
            message: "the process died during setup".into(),
        }),
    }
}

/// Block until the monitor says `Start`.
pub fn wait_start(stage: &Channel) -> Result<Launch, Failure> {
    match stage.recv::<StageMsg>().step("wait for start")? {
        Some(StageMsg::Start(launch)) => Ok(launch),
        Some(other) => Err(Failure {
            step: "wait for start".into(),
            message: format!("unexpected message {other:?}"),
        }),
        None => Err(Failure {
            step: "wait for start".into(),
            message: "the monitor went away".into(),
        }),
    }
}

/// Open the container's `cgroup.procs` files (every v1 hierarchy, or the one v2 folder).
pub(super) fn open_procs(paths: &[std::path::PathBuf]) -> Result<Vec<(String, File)>, Failure> {
    paths
        .iter()
        .map(|p| {
            let name = p.display().to_string();
            let file = fs::OpenOptions::new()
                .write(true)
                .open(p)
                .step(&format!("open {name}"))?;
            Ok((name, file))
        })
        .collect()
}

/// Move `pid` into the container's cgroup.
pub(super) fn join_cgroup(procs: &[(String, File)], pid: Pid) -> Result<(), Failure> {
    use std::io::Write;
    for (name, file) in procs {
        (&*file)
            .write_all(pid.to_string().as_bytes())
            .step(&format!("join cgroup {name}"))?;
    }
    Ok(())
}

pub(super) fn root_ids(spec: &oci_spec::runtime::Spec) -> (u32, u32) {
    let linux = spec.linux().as_ref();
    let map0 = |maps: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| {
        maps.and_then(|m| m.iter().find(|m| m.container_id() == 0))
            .map(|m| m.host_id())
            .unwrap_or(0)
    };
    (
        map0(linux.and_then(|l| l.uid_mappings().as_ref())),
        map0(linux.and_then(|l| l.gid_mappings().as_ref())),
    )
}

pub(super) fn write_id_maps(child: Pid, spec: &oci_spec::runtime::Spec) -> Result<(), Failure> {
    let linux = spec.linux().as_ref();
    let render = |maps: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| {
        maps.map(|m| {
            m.iter()
                .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
                .collect::<String>()
        })
        .unwrap_or_default()
    };
    let uid = render(linux.and_then(|l| l.uid_mappings().as_ref()));
    let gid = render(linux.and_then(|l| l.gid_mappings().as_ref()));
    fs::write(format!("/proc/{child}/uid_map"), uid).step("write uid_map")?;
    fs::write(format!("/proc/{child}/gid_map"), gid).step("write gid_map")?;
    Ok(())
}

/// The reaper writes the command's (code, signal) as 8 bytes before it exits; without a reaper
/// the pipe just closes.
fn read_reaper_status(mut rd: File) -> Option<ExitStatus> {
    let mut buf = [0u8; 8];
    rd.read_exact(&mut buf).ok()?;
    let code = i32::from_le_bytes(buf[..4].try_into().ok()?);
    let signal = i32::from_le_bytes(buf[4..].try_into().ok()?);
    Some(ExitStatus {
        code,
        signal: (signal != 0).then_some(signal),
        oom_killed: false,
    })
}
