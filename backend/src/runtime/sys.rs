//! The syscall seam: the few calls `nix` does not wrap, each behind a small safe function.
//!
//! Most `unsafe` in the runtime lives here, each block with the reason it is sound.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::Pid;

/// What `clone` returned to the caller.
pub enum Forked {
    Parent(Pid),
    Child,
}

/// `clone(2)` with fork semantics (no new stack: the child continues on a copy of ours) and the
/// given namespace flags, so the child is born inside every new namespace at once and all of them
/// are owned by the new user namespace when one is asked for.
///
/// Only call this from the single-threaded init helper: like `fork`, the child of a threaded
/// process could inherit locks held by other threads.
pub fn clone_into(flags: CloneFlags) -> nix::Result<Forked> {
    let raw = flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: with a null stack pointer clone behaves as fork: the child gets a copy-on-write copy
    // of our memory and continues from this call. The init helper is single-threaded (it is a
    // fresh exec of our binary that never starts threads), so no other thread's lock can be held
    // in the child. The remaining pointer arguments are null, which clone accepts.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            raw,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
    }
}

/// Plain `fork(2)` for the single-threaded init helper (the reaper forks the user's command).
pub fn fork_single_threaded() -> nix::Result<Forked> {
    clone_into(CloneFlags::empty())
}

/// `pidfd_open(2)`: a descriptor that becomes readable when the process exits.
pub fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; no memory is
    // shared with the kernel.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// A sealed, in-memory copy of our own executable (runc's answer to CVE-2019-5736): the init
/// helper is executed from it, so no process that ever enters a container has a writable host
/// binary behind `/proc/PID/exe`.
pub fn sealed_self_copy() -> io::Result<OwnedFd> {
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    use nix::sys::memfd::{memfd_create, MFdFlags};
    use std::io::{Read, Write};

    let name = c"isolab-init";
    let memfd = memfd_create(name, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)?;
    let mut exe = File::open("/proc/self/exe")?;
    let mut dst = File::from(memfd);
    // Through a buffer, not `io::copy`: its in-kernel copy (sendfile, splice) can leave the
    // memfd's pages referenced for a moment, and the write seal is then refused with EBUSY
    // (seen once in CI under load).
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match exe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        dst.write_all(&buf[..n])?;
    }
    let seals = SealFlag::F_SEAL_SEAL
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE;
    // Pages still pinned by someone (the kernel waits a while, then says EBUSY): try again.
    let mut tries = 0;
    loop {
        match fcntl(&dst, FcntlArg::F_ADD_SEALS(seals)) {
            Ok(_) => break,
            Err(nix::errno::Errno::EBUSY) if tries < 20 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(OwnedFd::from(dst))
}

/// Set or clear `FD_CLOEXEC`.
pub fn set_cloexec(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFD/F_SETFD only read and write the descriptor's flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let new = if on {
        flags | libc::FD_CLOEXEC
    } else {
        flags & !libc::FD_CLOEXEC
    };
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, new) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `dup2` onto a fixed descriptor number (0, 1, 2), clearing close-on-exec on the copy.
pub fn dup_onto(fd: &impl AsRawFd, target: RawFd) -> io::Result<()> {
    if fd.as_raw_fd() == target {
        return set_cloexec(target, false);
    }
    // SAFETY: dup2 takes two descriptor numbers; the target is one of ours (0..=2) that we mean
    // to replace.
    if unsafe { libc::dup2(fd.as_raw_fd(), target) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Make `fd` the controlling terminal of the calling session leader.
pub fn set_controlling_tty(fd: RawFd) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal) and no pointer.
    if unsafe { libc::ioctl(fd, libc::TIOCSCTTY as _, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Set a terminal's window size.
pub fn set_winsize(fd: RawFd, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a `winsize` from the pointer, which points at a live local.
    if unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Read a terminal's window size, if `fd` is a terminal.
pub fn get_winsize(fd: RawFd) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a `winsize` into the pointer, which points at a live local.
    let ok = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

/// `prctl(PR_SET_NO_NEW_PRIVS, 1)`.
pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `prctl(PR_SET_KEEPCAPS, on)`: keep permitted capabilities across a uid change.
pub fn set_keep_caps(on: bool) -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, on as libc::c_ulong, 0, 0, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `prctl(PR_SET_PDEATHSIG, sig)`: get `sig` when the parent dies.
pub fn set_parent_death_signal(sig: libc::c_int) -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The parent-death signal set by [`set_parent_death_signal`] (0 when none).
pub fn parent_death_signal() -> libc::c_int {
    let mut sig: libc::c_int = 0;
    // SAFETY: PR_GET_PDEATHSIG writes one int through the pointer, which is live and aligned.
    let rc = unsafe {
        libc::prctl(
            libc::PR_GET_PDEATHSIG,
            &mut sig as *mut libc::c_int,
            0,
            0,
            0,
        )
    };
    if rc < 0 {
        0
    } else {
        sig
    }
}

/// The parent pid of `pid` (from `/proc/PID/stat`), if it is alive.
pub fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields follow its last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// `prctl(PR_SET_CHILD_SUBREAPER)`: orphaned descendants become our children, not PID 1's.
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `prctl(PR_SET_DUMPABLE, 0)`: no ptrace and no `/proc/PID` access by others while we hold
/// host resources, as runc init does.
pub fn set_not_dumpable() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Bring the loopback interface of the current network namespace up (a new one starts down),
/// as docker does: `ioctl(SIOCSIFFLAGS)` on a datagram socket, no netlink needed.
pub fn loopback_up() -> io::Result<()> {
    // SAFETY: socket takes integer arguments and returns a new descriptor or -1.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor and nothing else owns it.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `ifreq` is plain data; all-zero is a valid value for it.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name from and writes the flags into `req`, a live local.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: reading and writing the flags member of the union SIOCGIFFLAGS just filled.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads `req`, a live local.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Close every descriptor from `first` up (`cloexec`: only mark them close-on-exec, so they
/// stay usable until a successful `execve`). Falls back to walking `/proc/self/fd` on kernels
/// without `close_range` (before 5.9/5.11).
pub fn close_from(first: i32, cloexec: bool) {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    let flags = if cloexec { CLOSE_RANGE_CLOEXEC } else { 0 };
    // SAFETY: close_range takes two descriptor numbers and flags; it touches only this
    // process's descriptor table, and the caller owns none of the ones it closes.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            flags,
        )
    };
    if rc == 0 {
        return;
    }
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    for fd in fds.into_iter().filter(|&fd| fd >= first) {
        // SAFETY: as above, on one descriptor (the directory walk's own is gone by now, and a
        // failing call on it is harmless).
        unsafe {
            if cloexec {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            } else {
                libc::close(fd);
            }
        }
    }
}

/// Exit at once without running destructors or atexit handlers (used in forked children).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// The boot-relative start time of a process (field 22 of `/proc/PID/stat`), used to tell a
/// live process from a recycled pid.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Convert a Rust string to a C string, refusing interior NULs.
pub fn cstring(s: &str) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte"))
}

/// True when the kernel has time namespaces.
pub fn have_time_namespace() -> bool {
    std::path::Path::new("/proc/self/ns/time").exists()
}

/// The soft limit on open descriptors (`RLIMIT_NOFILE`).
pub fn nofile_limit() -> Option<u64> {
    use nix::sys::resource::{getrlimit, Resource};
    getrlimit(Resource::RLIMIT_NOFILE)
        .ok()
        .map(|(soft, _)| soft)
}

/// Raise the soft descriptor limit to the hard one (as Go's runtime and systemd's services
/// do): a server holds a pty master and a socket per container, and 1024 runs out near 300
/// containers. Containers do not inherit it: their rlimits come from their spec. Returns the
/// new soft limit.
pub fn raise_nofile_limit() -> io::Result<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(hard)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_of_self_is_stable() {
        let me = std::process::id() as i32;
        let a = process_start_time(me).expect("own start time");
        assert_eq!(Some(a), process_start_time(me));
    }

    #[test]
    fn sealed_copy_cannot_be_written() {
        let fd = sealed_self_copy().expect("memfd copy");
        let mut f = File::from(fd);
        use std::io::Write;
        assert!(
            f.write_all(b"x").is_err(),
            "a sealed copy must refuse writes"
        );
        let len = f.metadata().unwrap().len();
        assert_eq!(len, std::fs::metadata("/proc/self/exe").unwrap().len());
    }
}
