//! The container's seccomp filter: docker's default profile, compiled to BPF by us.
//!
//! [`profile`] holds docker's default profile as data and resolves it for a container's
//! capabilities into the OCI `linux.seccomp` section that `config.json` carries (so runc, given
//! the same bundle, applies the same profile). [`compile()`] turns any such section into a classic
//! BPF program (`bpf` is its little assembler, `syscalls` the x86 system call numbers), and
//! [`install`] loads it: the init helper's very last step before `execve`, after
//! `no_new_privs` (see `init/process.rs`).
//!
//! Why our own compiler rather than libseccomp (a C library, and a build dependency) or
//! Firecracker's `seccompiler`: seccompiler gives every rule of a filter the same action, so an
//! allowlist with `clone3` answering `ENOSYS` would take two stacked filters, and it knows
//! neither i386 nor x32, which docker's profile covers on x86_64. What a container runtime needs
//! is small (an architecture check, a number dispatch, 64-bit argument comparisons), and a
//! program we lay out ourselves can be checked instruction by instruction in the tests.

mod bpf;
pub mod compile;
pub mod profile;
mod syscalls;
#[cfg(test)]
mod tests;

use oci_spec::runtime::LinuxSeccomp;

pub use compile::{compile, Program};
pub use profile::{default_profile, profile_for};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp filters are compiled for x86_64 hosts only, not {0}")]
    UnsupportedHost(&'static str),
    #[error("seccomp action {0} is not supported (isolab runs no seccomp agent)")]
    UnsupportedAction(String),
    #[error("seccomp rule for {syscall}: argument {index} does not exist (they are 0 to 5)")]
    ArgIndex { syscall: String, index: usize },
    #[error("seccomp: errno {errno} for {what} does not fit in the 16 bits the kernel returns")]
    BadErrno { what: String, errno: u32 },
    #[error("seccomp: laying out the filter: {0}")]
    Assemble(#[from] bpf::AsmError),
    #[error("seccomp(SECCOMP_SET_MODE_FILTER): {source}{hint}")]
    Install {
        source: nix::Error,
        hint: &'static str,
    },
    #[error("seccomp(SECCOMP_SET_MODE_FILTER): thread {0} could not be synchronised")]
    Tsync(i64),
}

/// Compile `seccomp` and load it into the calling thread (and, with `SECCOMP_FILTER_FLAG_TSYNC`
/// in its flags, every thread of the process). From then on every system call of this thread
/// and of whatever it `execve`s or forks is filtered, irrevocably.
pub fn install(seccomp: &LinuxSeccomp) -> Result<(), SeccompError> {
    compile(seccomp)?.install()
}

impl Program {
    /// Load this filter (see [`install`]). Needs `no_new_privs` or `CAP_SYS_ADMIN`.
    pub fn install(&self) -> Result<(), SeccompError> {
        let prog = libc::sock_fprog {
            // compile() refuses programs longer than BPF_MAXINSNS (4096).
            len: self.instructions.len() as u16,
            filter: self.instructions.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: `prog` points at `self.instructions`, which outlives the call; the kernel
        // copies the program before returning and writes nothing through the pointer.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                self.flags,
                &prog as *const libc::sock_fprog,
            )
        };
        match r {
            0 => Ok(()),
            tid if tid > 0 => Err(SeccompError::Tsync(tid)),
            _ => {
                let source = nix::Error::last();
                let hint = match source {
                    nix::Error::EACCES => " (needs no_new_privs or CAP_SYS_ADMIN)",
                    nix::Error::EINVAL => " (a flag or action this kernel does not know)",
                    _ => "",
                };
                Err(SeccompError::Install { source, hint })
            }
        }
    }
}
