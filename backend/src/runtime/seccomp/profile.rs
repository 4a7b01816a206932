//! Docker's default seccomp profile, as data, resolved the way docker resolves it.
//!
//! The groups below follow moby's `DefaultProfile` (today in the `moby/profiles` module,
//! `seccomp/default_linux.go`): an allowlist under a default of `EPERM`, then groups that apply
//! only with some capability in the container's bounding set, only without one, or only on some
//! architectures. Docker keeps a group when the host is `amd64` and the capabilities fit, and
//! drops its conditions; [`profile_for`] does the same, for an x86_64 host whose kernel is at
//! least 4.8 (the one version condition in the profile: `ptrace` and `process_vm_*`).
//!
//! Not in any group, so refused with `EPERM` whatever the capabilities: `keyctl`, `add_key`,
//! `request_key`, `userfaultfd`, `io_uring_*` (removed from docker's allowlist in moby#46762),
//! `kexec_*`, `pivot_root`, `swapon`/`swapoff`, `uselib`, `nfsservctl`, `open_tree_attr`, …

use oci_spec::runtime::{
    Arch, Capabilities, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg,
    LinuxSeccompArgBuilder, LinuxSeccompOperator, LinuxSyscall,
};

use crate::runtime::spec::default_capabilities;

/// `EPERM`: what docker's profile answers for everything it does not name.
const EPERM: u32 = libc::EPERM as u32;
/// The namespace flags of `clone`: a `clone` with any of them is refused without
/// `CAP_SYS_ADMIN` (`unshare` and `setns` are refused altogether).
pub const CLONE_NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

/// The system calls every container may make (docker's first group).
#[rustfmt::skip]
const ALLOW: &[&str] = &[
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget",
    "capset", "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64",
    "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat", "dup",
    "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
    "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat",
    "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate",
    "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat",
    "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr",
    "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate",
    "ftruncate64", "futex", "futex_requeue", "futex_time64", "futex_wait", "futex_waitv",
    "futex_wake", "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32",
    "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getitimer",
    "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom",
    "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list",
    "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday",
    "getuid", "getuid32", "getxattr", "getxattrat", "inotify_add_watch", "inotify_init",
    "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup", "io_submit",
    "ipc", "kill", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self",
    "lchown", "lchown32", "lgetxattr", "link", "linkat", "listen", "listmount", "listxattr",
    "listxattrat", "llistxattr", "_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat",
    "lstat64", "madvise", "map_shadow_stack", "membarrier", "memfd_create", "memfd_secret",
    "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap",
    "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
    "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap", "mseal",
    "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap",
    "name_to_handle_at", "nanosleep", "newfstatat", "_newselect", "open", "openat", "openat2",
    "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free",
    "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2",
    "prlimit64", "process_mrelease", "pselect6", "pselect6_time64", "pwrite64", "pwritev",
    "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom",
    "recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "removexattrat",
    "rename", "renameat", "renameat2", "restart_syscall", "riscv_hwprobe", "rmdir", "rseq",
    "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
    "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo",
    "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max",
    "sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval",
    "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr", "sched_setparam",
    "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget", "semop",
    "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg", "sendmsg",
    "sendto", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups",
    "setgroups32", "setitimer", "setpgid", "setpriority", "setregid", "setregid32", "setresgid",
    "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit",
    "set_robust_list", "setsid", "setsockopt", "set_thread_area", "set_tid_address", "setuid",
    "setuid32", "setxattr", "setxattrat", "shmat", "shmctl", "shmdt", "shmget", "shutdown",
    "sigaltstack", "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair",
    "splice", "stat", "stat64", "statfs", "statfs64", "statmount", "statx", "symlink", "symlinkat",
    "sync", "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create",
    "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime",
    "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
    "timerfd_settime64", "times", "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname",
    "unlink", "unlinkat", "uretprobe", "utime", "utimensat", "utimensat_time64", "utimes", "vfork",
    "vmsplice", "wait4", "waitid", "waitpid", "write", "writev",
];

/// The socket domains `socket(2)` may make, as docker lists them (every one the kernel has,
/// less those it leaves out on purpose): AF_DECnet 12, AF_ECONET 19, AF_ATMSVC 20, AF_IRDA 23,
/// AF_WANPIPE 25, AF_ISDN 34 and AF_CAIF 37 are gone from the kernel; AF_ALG 38 (the kernel's
/// crypto API, no use in a container) and AF_VSOCK 40 (host/guest sockets, not namespaced by
/// default) are refused.
const SOCKET_DOMAINS: &[u64] = &[
    1,  // AF_UNIX
    2,  // AF_INET
    3,  // AF_AX25
    4,  // AF_IPX
    5,  // AF_APPLETALK
    6,  // AF_NETROM
    7,  // AF_BRIDGE
    8,  // AF_ATMPVC
    9,  // AF_X25
    10, // AF_INET6
    11, // AF_ROSE
    13, // AF_NETBEUI
    14, // AF_SECURITY
    15, // AF_KEY
    16, // AF_NETLINK
    17, // AF_PACKET
    18, // AF_ASH
    21, // AF_RDS
    22, // AF_SNA
    24, // AF_PPPOX
    26, // AF_LLC
    27, // AF_IB
    28, // AF_MPLS
    29, // AF_CAN
    30, // AF_TIPC
    31, // AF_BLUETOOTH
    32, // AF_IUCV
    33, // AF_RXRPC
    35, // AF_PHONET
    36, // AF_IEEE802154
    39, // AF_NFC
    41, // AF_KCM
    42, // AF_QIPCRTR
    43, // AF_SMC
    44, // AF_XDP
    45, // AF_MCTP
];

/// `personality(2)` values a container may set (or read, `0xffffffff`): `PER_LINUX`,
/// `PER_LINUX32`, `UNAME26`, `PER_LINUX32 | UNAME26`.
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// One group of the profile and docker's conditions on it.
#[derive(Clone, Copy)]
struct Group {
    names: &'static [&'static str],
    /// `None`: allow; `Some(errno)`: fail with it.
    errno: Option<u32>,
    /// A `SCMP_CMP_MASKED_EQ` on `clone`'s flags (argument 0 on x86).
    clone_flags_clear: bool,
    /// Kept only with all of these in the bounding set.
    needs: &'static [Capability],
    /// Dropped with any of these in the bounding set.
    unless: &'static [Capability],
    /// Kept only on these GOARCH values (empty: everywhere).
    arches: &'static [&'static str],
}

const fn allow(names: &'static [&'static str]) -> Group {
    Group {
        names,
        errno: None,
        clone_flags_clear: false,
        needs: &[],
        unless: &[],
        arches: &[],
    }
}

const fn with(caps: &'static [Capability], names: &'static [&'static str]) -> Group {
    Group {
        needs: caps,
        ..allow(names)
    }
}

/// Docker's `includes: minKernel 4.8` group (before 4.8 a tracer could get round seccomp).
const PTRACE: &[&str] = &["process_vm_readv", "process_vm_writev", "ptrace"];

/// Docker's groups after the allowlist, in its order (sockets and `personality` are built in
/// [`profile_for`]; arm, ppc64le, s390 and riscv64 groups never apply on x86_64 and are left
/// out).
const GROUPS: &[Group] = &[
    Group {
        arches: &["amd64", "x32"],
        ..allow(&["arch_prctl"])
    },
    Group {
        arches: &["amd64", "x32", "x86"],
        ..allow(&["modify_ldt"])
    },
    with(&[Capability::DacReadSearch], &["open_by_handle_at"]),
    with(
        &[Capability::SysAdmin],
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "lsm_get_self_attr",
            "lsm_list_modules",
            "lsm_set_self_attr",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    Group {
        clone_flags_clear: true,
        unless: &[Capability::SysAdmin],
        ..allow(&["clone"])
    },
    // ENOSYS, not EPERM: glibc then falls back to clone, whose flags the rule above can see
    // (clone3's are behind a pointer).
    Group {
        errno: Some(libc::ENOSYS as u32),
        unless: &[Capability::SysAdmin],
        ..allow(&["clone3"])
    },
    with(&[Capability::SysBoot], &["reboot"]),
    with(&[Capability::SysChroot], &["chroot"]),
    with(
        &[Capability::SysModule],
        &["delete_module", "init_module", "finit_module"],
    ),
    with(&[Capability::SysPacct], &["acct"]),
    with(
        &[Capability::SysPtrace],
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    with(&[Capability::SysRawio], &["iopl", "ioperm"]),
    with(
        &[Capability::SysTime],
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    with(&[Capability::SysTtyConfig], &["vhangup"]),
    with(
        &[Capability::SysNice],
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    with(&[Capability::Syslog], &["syslog"]),
    with(&[Capability::Bpf], &["bpf"]),
    with(&[Capability::Perfmon], &["perf_event_open"]),
];

/// Docker's default profile for docker's default capabilities (the 14 of
/// [`default_capabilities`]): no `mount`, `unshare`, `setns`, namespace flags on `clone`, …
pub fn default_profile() -> LinuxSeccomp {
    profile_for(
        &default_capabilities()
            .bounding()
            .clone()
            .unwrap_or_default(),
    )
}

/// Docker's default profile for a container whose bounding set is `bounding`: `--cap-add
/// SYS_ADMIN` brings `mount`, `unshare`, `sethostname` and namespace flags on `clone` back, as
/// with docker (`sethostname` inside a private user namespace is what the UTS preset shows).
pub fn profile_for(bounding: &Capabilities) -> LinuxSeccomp {
    let applies = |g: &&Group| {
        g.needs.iter().all(|c| bounding.contains(c))
            && !g.unless.iter().any(|c| bounding.contains(c))
            && (g.arches.is_empty() || g.arches.contains(&"amd64"))
    };
    // Docker's order: the allowlist, ptrace, sockets, personality, the conditional groups.
    let mut syscalls = vec![
        rule(ALLOW, None, Vec::new()),
        rule(PTRACE, None, Vec::new()),
    ];
    syscalls.extend(socket_rules());
    for &value in PERSONALITIES {
        let arg = arg(0, value, LinuxSeccompOperator::ScmpCmpEq);
        syscalls.push(rule(&["personality"], None, vec![arg]));
    }
    syscalls.extend(GROUPS.iter().filter(applies).map(to_rule));

    let mut profile = LinuxSeccomp::default();
    profile
        .set_default_action(LinuxSeccompAction::ScmpActErrno)
        .set_default_errno_ret(Some(EPERM))
        .set_architectures(Some(vec![
            Arch::ScmpArchX86_64,
            Arch::ScmpArchX86,
            Arch::ScmpArchX32,
        ]))
        .set_syscalls(Some(syscalls));
    profile
}

/// `socket` for [`SOCKET_DOMAINS`] as moby writes it: one `<` for the run from AF_UNIX (runc
/// ORs comparisons within one rule, so a bounded range cannot be one rule), then one `==` each.
fn socket_rules() -> Vec<LinuxSyscall> {
    let run = SOCKET_DOMAINS
        .iter()
        .zip(1..)
        .take_while(|(domain, n)| **domain == *n)
        .count();
    let below = rule(
        &["socket"],
        None,
        vec![arg(0, run as u64 + 1, LinuxSeccompOperator::ScmpCmpLt)],
    );
    let each = SOCKET_DOMAINS[run..].iter().map(|&d| {
        rule(
            &["socket"],
            None,
            vec![arg(0, d, LinuxSeccompOperator::ScmpCmpEq)],
        )
    });
    std::iter::once(below).chain(each).collect()
}

fn to_rule(g: &Group) -> LinuxSyscall {
    let args = if g.clone_flags_clear {
        // (flags & CLONE_NAMESPACE_FLAGS) == 0
        let clear = LinuxSeccompArgBuilder::default()
            .index(0usize)
            .value(CLONE_NAMESPACE_FLAGS)
            .value_two(0u64)
            .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
            .build()
            .expect("every field of the argument is set");
        vec![clear]
    } else {
        Vec::new()
    };
    rule(g.names, g.errno, args)
}

fn rule(names: &[&str], errno: Option<u32>, args: Vec<LinuxSeccompArg>) -> LinuxSyscall {
    let mut r = LinuxSyscall::default();
    r.set_names(names.iter().map(|n| n.to_string()).collect());
    match errno {
        None => r.set_action(LinuxSeccompAction::ScmpActAllow),
        Some(e) => r
            .set_action(LinuxSeccompAction::ScmpActErrno)
            .set_errno_ret(Some(e)),
    };
    if !args.is_empty() {
        r.set_args(Some(args));
    }
    r
}

fn arg(index: usize, value: u64, op: LinuxSeccompOperator) -> LinuxSeccompArg {
    LinuxSeccompArgBuilder::default()
        .index(index)
        .value(value)
        .op(op)
        .build()
        .expect("every field of the argument is set")
}
