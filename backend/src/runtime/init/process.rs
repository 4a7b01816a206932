//! The last steps before the user's command runs, shared by `run` and `exec`: its terminal or
//! pipes, resource limits, credentials, capabilities, `no_new_privs`, the seccomp filter, and
//! `execve`.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use nix::unistd::{chdir, execve, setgid, setgroups, setsid, setuid, Gid, Uid};
use oci_spec::runtime::{LinuxCapabilities, LinuxSeccomp, PosixRlimitType, Process};

use super::protocol::{Failure, StageMsg};
use super::Step;
use crate::runtime::channel::Channel;
use crate::runtime::{seccomp, sys};

/// The command's standard streams.
pub enum ProcStdio {
    /// The pty's slave side: stdin, stdout, stderr and the controlling terminal.
    Pty(OwnedFd),
    /// Three descriptors from the launcher.
    Fds(Vec<OwnedFd>),
}

/// Open a pty inside the container's own devpts (so `tty` there says `/dev/pts/0`), or keep the
/// launcher's descriptors. Returns the stdio and, with a tty, the master to hand back.
pub fn prepare_stdio(
    fds: Vec<OwnedFd>,
    tty: bool,
) -> Result<(ProcStdio, Option<OwnedFd>), Failure> {
    if !tty {
        if fds.len() != 3 {
            return Err(Failure {
                step: "stdio".into(),
                message: format!("expected 3 descriptors, got {}", fds.len()),
            });
        }
        return Ok((ProcStdio::Fds(fds), None));
    }
    let master =
        posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).step("open /dev/ptmx")?;
    grantpt(&master).step("grantpt")?;
    unlockpt(&master).step("unlockpt")?;
    let name = ptsname_r(&master).step("ptsname")?;
    let slave: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(&name)
        .step(&format!("open {name}"))?
        .into();
    let _ = sys::set_winsize(slave.as_raw_fd(), 24, 80);
    Ok((ProcStdio::Pty(slave), Some(OwnedFd::from(master))))
}

/// Tell the monitor that setup is done, handing it the pty master if there is one.
pub fn report_ready(stage: &Channel, master: Option<OwnedFd>) -> Result<(), Failure> {
    let raw: Vec<_> = master.iter().map(|m| m.as_raw_fd()).collect();
    stage.send_with(&StageMsg::Ready, &raw).step("report ready")
}

/// Apply the spec's rlimits to this process (and so to what it forks).
pub fn set_rlimits(process: &Process) -> Result<(), Failure> {
    for r in process.rlimits().iter().flatten() {
        let resource = rlimit_resource(r.typ());
        let step = format!("setrlimit {:?}", r.typ());
        match setrlimit(resource, r.soft(), r.hard()) {
            // A hard limit above the one we inherited, which no one here may raise (see
            // `raise_hard_limits`): keep the inherited one rather than fail the container.
            Err(nix::Error::EPERM) => {
                let (_, hard) = nix::sys::resource::getrlimit(resource).step(&step)?;
                setrlimit(resource, r.soft().min(hard), hard).step(&step)?;
            }
            other => other.step(&step)?,
        }
    }
    Ok(())
}

/// Raise our own hard limits to the spec's where they are lower (the monitor, still the host's
/// root, before the clone): inside a user namespace the container cannot raise a hard limit
/// above what it inherits, so a server started with `ulimit -n 64` could otherwise give its
/// containers no more. Best effort: without `CAP_SYS_RESOURCE` (some sandboxes drop it) the
/// container keeps the inherited limit ([`set_rlimits`]).
pub fn raise_hard_limits(process: &Process) {
    for r in process.rlimits().iter().flatten() {
        let resource = rlimit_resource(r.typ());
        if let Ok((soft, hard)) = nix::sys::resource::getrlimit(resource) {
            if r.hard() > hard {
                let _ = setrlimit(resource, soft, r.hard());
            }
        }
    }
}

fn rlimit_resource(t: PosixRlimitType) -> Resource {
    match t {
        PosixRlimitType::RlimitCpu => Resource::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => Resource::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => Resource::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => Resource::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => Resource::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => Resource::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => Resource::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => Resource::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => Resource::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => Resource::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => Resource::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

/// The seccomp filter (`linux.seccomp`) compiled: done before `Ready`, so that `Start` (which
/// a pooled container waits for) has only the last steps left.
pub fn compile_seccomp(
    seccomp: Option<&LinuxSeccomp>,
) -> Result<Option<seccomp::Program>, Failure> {
    seccomp.map(seccomp::compile).transpose().step("seccomp")
}

/// Become the user's command: new session, stdio, working directory, credentials, capabilities,
/// `no_new_privs`, the seccomp filter (from [`compile_seccomp`]), then `execve`. Returns only
/// on failure.
pub fn exec(
    process: &Process,
    filter: Option<seccomp::Program>,
    stdio: ProcStdio,
) -> Result<Infallible, Failure> {
    setsid().step("setsid")?;
    match &stdio {
        ProcStdio::Pty(slave) => {
            for target in 0..3 {
                sys::dup_onto(slave, target).step("attach terminal")?;
            }
            sys::set_controlling_tty(0).step("set controlling terminal")?;
        }
        ProcStdio::Fds(fds) => {
            // Move them above 2 first so that dup2 onto 0..2 never clobbers a source.
            let high: Vec<OwnedFd> = fds
                .iter()
                .map(|f| f.try_clone())
                .collect::<Result<_, _>>()
                .step("dup stdio")?;
            for (target, fd) in high.iter().enumerate() {
                sys::dup_onto(fd, target as i32).step("attach stdio")?;
            }
        }
    }
    drop(stdio);
    let env: Vec<String> = process.env().clone().unwrap_or_default();
    let cwd = process.cwd();
    // A WORKDIR the image names but does not have is made, as docker does.
    if chdir(cwd) == Err(nix::Error::ENOENT) {
        std::fs::create_dir_all(cwd).step(&format!("mkdir {}", cwd.display()))?;
    }
    chdir(cwd).step(&format!("chdir {}", cwd.display()))?;
    let args = process.args().clone().unwrap_or_default();
    let Some(arg0) = args.first() else {
        return Err(Failure {
            step: "exec".into(),
            message: "empty command".into(),
        });
    };
    let path = resolve(arg0, &env).ok_or_else(|| Failure {
        step: "exec".into(),
        message: format!("{arg0}: executable file not found in $PATH"),
    })?;
    let no_new_privs = process.no_new_privileges().unwrap_or(false);
    if let (Some(filter), false) = (&filter, no_new_privs) {
        // Without no_new_privs, loading a filter takes CAP_SYS_ADMIN, about to be dropped: load
        // it now, as runc does (everything after is allowed by docker's profile).
        filter.install().step("seccomp")?;
    }
    // A change of user clears the parent-death signal; it must outlive it (if the monitor
    // dies, so does the container).
    let (pdeath, parent) = (sys::parent_death_signal(), nix::unistd::getppid());
    set_user_and_caps(process)?;
    if pdeath != 0 {
        sys::set_parent_death_signal(pdeath).step("prctl pdeathsig")?;
        if nix::unistd::getppid() != parent {
            sys::exit_now(1); // the parent died in between
        }
    }
    if no_new_privs {
        sys::set_no_new_privs().step("no_new_privs")?;
    }
    let c_args = to_cstrings(&args)?;
    let c_env = to_cstrings(&env)?;
    let c_path = CString::new(path.as_os_str().as_encoded_bytes()).step("exec path")?;
    // The reaper runs with signals blocked; the command starts with none blocked, and with no
    // signal ignored: an ignored disposition survives execve, and the Rust runtime ignores
    // SIGPIPE (`yes | head` would print "Broken pipe" instead of ending quietly).
    reset_signal_dispositions();
    // Whatever the init still holds above the command's streams goes at execve (and only then:
    // the channel reports a failed execve).
    crate::runtime::sys::close_from(3, true);
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // Last, so that nothing of ours runs under the filter: from here on only execve.
    if let (Some(filter), true) = (&filter, no_new_privs) {
        filter.install().step("seccomp")?;
    }
    let err = execve(&c_path, &c_args, &c_env).unwrap_err();
    Err(Failure {
        step: "exec".into(),
        message: format!("{}: {err}", path.display()),
    })
}

fn to_cstrings(items: &[String]) -> Result<Vec<CString>, Failure> {
    items
        .iter()
        .map(|s| CString::new(s.as_str()))
        .collect::<Result<_, _>>()
        .step("NUL byte in command or environment")
}

/// Find a command like a shell does, in the container's `PATH`.
pub fn resolve(cmd: &str, env: &[String]) -> Option<PathBuf> {
    let is_exec = |p: &Path| {
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if cmd.contains('/') {
        let p = PathBuf::from(cmd);
        return is_exec(&p).then_some(p);
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(cmd))
        .find(|p| is_exec(p))
}

/// The capabilities of a list that the running kernel knows (`--cap-add ALL` on an older
/// kernel names some it does not).
/// Every catchable signal back to its default disposition, as a freshly started process has.
fn reset_signal_dispositions() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: SIG_DFL installs no handler; this process is single-threaded and about to
        // execve, so nothing observes the change in between.
        let _ = unsafe { signal(sig, SigHandler::SigDfl) };
    }
    // The real-time signals, through the system call: glibc refuses to touch 32 and 33 (its
    // own), which the process that started us left ignored.
    let default_action = [0u64; 4]; // the kernel's struct sigaction: SIG_DFL, no flags, no mask
    for sig in 32..=64 {
        // SAFETY: a valid pointer to a zeroed kernel `struct sigaction` (handler SIG_DFL), no
        // old action wanted, the kernel's sigset size (8 bytes); a bad number only fails.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                default_action.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        };
    }
}

fn cap_set(list: &Option<oci_spec::runtime::Capabilities>) -> Result<CapsHashSet, Failure> {
    let supported = caps::runtime::thread_all_supported();
    let mut set = CapsHashSet::new();
    for cap in list.iter().flatten() {
        let name = serde_json::to_value(cap).step("capability name")?;
        let name = name.as_str().unwrap_or_default();
        let cap = Capability::from_str(name).step(&format!("capability {name}"))?;
        if supported.contains(&cap) {
            set.insert(cap);
        }
    }
    Ok(set)
}

fn set_user_and_caps(process: &Process) -> Result<(), Failure> {
    let default = LinuxCapabilities::default();
    let caps = process.capabilities().as_ref().unwrap_or(&default);
    let bounding = cap_set(caps.bounding())?;
    // Dropping from the bounding set needs CAP_SETPCAP, which we hold until the end.
    for cap in caps::runtime::thread_all_supported() {
        if !bounding.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap).step("drop bounding capability")?;
        }
    }
    let user = process.user();
    let (uid, gid) = (user.uid(), user.gid());
    if uid != 0 {
        sys::set_keep_caps(true).step("keep capabilities")?;
    }
    let groups: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    setgroups(&groups).step("setgroups")?;
    setgid(Gid::from_raw(gid)).step("setgid")?;
    setuid(Uid::from_raw(uid)).step("setuid")?;
    // Effective before permitted: each capset must keep effective within permitted.
    caps::set(None, CapSet::Effective, &cap_set(caps.effective())?)
        .step("set effective capabilities")?;
    caps::set(None, CapSet::Permitted, &cap_set(caps.permitted())?)
        .step("set permitted capabilities")?;
    caps::set(None, CapSet::Inheritable, &cap_set(caps.inheritable())?)
        .step("set inheritable capabilities")?;
    // The kernel keeps an ambient capability only while it is permitted and inheritable;
    // others are skipped, as runc skips them (`runc spec` lists ambient capabilities and no
    // inheritable ones since CVE-2022-29162).
    let (permitted, inheritable) = (cap_set(caps.permitted())?, cap_set(caps.inheritable())?);
    for cap in cap_set(caps.ambient())? {
        if permitted.contains(&cap) && inheritable.contains(&cap) {
            caps::raise(None, CapSet::Ambient, cap).step("raise ambient capability")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_searches_the_given_path() {
        let env = vec!["PATH=/nonexistent:/bin:/usr/bin".to_string()];
        assert!(resolve("sh", &env).is_some());
        assert!(resolve("no-such-command-here", &env).is_none());
        assert_eq!(resolve("/bin/sh", &[]), Some(PathBuf::from("/bin/sh")));
    }
}
