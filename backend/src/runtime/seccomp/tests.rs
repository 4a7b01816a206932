//! The compiled program run through a small BPF interpreter (every answer checked without
//! loading anything), and once for real: a forked child loads docker's profile and tries the
//! calls it must be refused.

use libc::sock_filter;
use oci_spec::runtime::{
    Arch, Capabilities, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder,
    LinuxSeccompOperator, LinuxSyscall,
};

use super::bpf::{Cond, AND_K, JA, LD_ABS, MAX_INSNS, RET_K};
use super::compile::{AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, BAD_ARCH, X32_SYSCALL_BIT};
use super::profile::CLONE_NAMESPACE_FLAGS;
use super::syscalls::{NO, TABLE};
use super::*;

const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;

/// Run `prog` as the kernel would on one system call.
fn run(prog: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let word = |offset: u32| -> u32 {
        assert!(offset & 3 == 0 && offset < 64, "load at {offset}");
        match offset {
            0 => nr,
            4 => arch,
            8 | 12 => 0, // instruction pointer
            _ => {
                let arg = args[(offset as usize - 16) / 8];
                if offset & 4 == 0 {
                    arg as u32
                } else {
                    (arg >> 32) as u32
                }
            }
        }
    };
    let (mut pc, mut a) = (0usize, 0u32);
    loop {
        let i = prog[pc];
        pc += 1;
        match i.code {
            LD_ABS => a = word(i.k),
            AND_K => a &= i.k,
            JA => pc += i.k as usize,
            RET_K => return i.k,
            code => {
                let cond = Cond::from_code(code).unwrap_or_else(|| panic!("opcode {code:#x}"));
                pc += if cond.holds(a, i.k) { i.jt } else { i.jf } as usize;
            }
        }
        assert!(pc < prog.len(), "ran off the end");
    }
}

fn nr(name: &str, column: usize) -> u32 {
    let i = TABLE
        .binary_search_by(|(n, _)| n.cmp(&name))
        .unwrap_or_else(|_| panic!("{name} is not in the table"));
    let n = TABLE[i].1[column];
    assert_ne!(n, NO, "{name} has no number in column {column}");
    u32::from(n)
}

/// The answer for a call by name on x86_64.
fn x64(prog: &[sock_filter], name: &str, args: [u64; 6]) -> u32 {
    run(prog, AUDIT_ARCH_X86_64, nr(name, 0), args)
}

fn default_program() -> Vec<sock_filter> {
    compile(&default_profile()).unwrap().instructions().to_vec()
}

#[test]
fn the_table_is_sorted_and_has_no_duplicates() {
    assert!(TABLE.windows(2).all(|w| w[0].0 < w[1].0));
    for column in 0..3 {
        let mut numbers: Vec<u16> = TABLE.iter().map(|(_, n)| n[column]).collect();
        numbers.retain(|n| *n != NO);
        let count = numbers.len();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), count, "column {column}");
    }
    assert_eq!(nr("getpid", 0), libc::SYS_getpid as u32);
    assert_eq!(nr("clone3", 0), libc::SYS_clone3 as u32);
    assert_eq!(nr("mseal", 0), 462);
}

#[test]
fn dockers_default_profile_compiles_to_a_short_program() {
    let prog = default_program();
    // About a thousand: most of it the socket and personality rules, for three ABIs.
    assert!(prog.len() < MAX_INSNS / 2, "{} instructions", prog.len());
    // Every jump lands inside the program, forwards, and it ends in a return.
    for (pc, i) in prog.iter().enumerate() {
        let reach = match i.code {
            JA => vec![i.k as usize],
            LD_ABS | AND_K | RET_K => vec![],
            _ => vec![i.jt as usize, i.jf as usize],
        };
        assert!(reach.iter().all(|r| pc + 1 + r < prog.len()), "at {pc}");
    }
    assert_eq!(prog.last().unwrap().code, RET_K);
}

#[test]
fn the_allowlist_is_allowed_and_the_dangerous_calls_are_refused() {
    let prog = default_program();
    for name in [
        "read",
        "write",
        "openat",
        "execve",
        "getpid",
        "wait4",
        "futex",
        "mmap",
        "ptrace",
        "process_vm_readv",
        "arch_prctl",
        "modify_ldt",
        "chroot",
        "rt_sigaction",
        "seccomp",
        "prctl",
        "uretprobe",
        "removexattrat",
        "capset",
        "setuid",
        "mknodat",
    ] {
        assert_eq!(x64(&prog, name, [0; 6]), ALLOW, "{name}");
    }
    for name in [
        "keyctl",
        "add_key",
        "request_key",
        "bpf",
        "userfaultfd",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "perf_event_open",
        "mount",
        "umount2",
        "pivot_root",
        "unshare",
        "setns",
        "sethostname",
        "setdomainname",
        "open_by_handle_at",
        "reboot",
        "swapon",
        "syslog",
        "acct",
        "iopl",
        "ioperm",
        "settimeofday",
        "clock_settime",
        "kcmp",
        "pidfd_getfd",
        "fsopen",
        "move_mount",
        "open_tree",
        "mbind",
        "lookup_dcookie",
        "lsm_get_self_attr",
        "quotactl",
        "vhangup",
        "fanotify_init",
        "_sysctl",
    ] {
        assert_eq!(x64(&prog, name, [0; 6]), EPERM, "{name}");
    }
}

#[test]
fn clone_is_allowed_without_namespace_flags_and_clone3_says_enosys() {
    let prog = default_program();
    let plain = (libc::CLONE_VM | libc::CLONE_FS | libc::CLONE_THREAD | libc::SIGCHLD) as u64;
    assert_eq!(x64(&prog, "clone", [plain, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(x64(&prog, "clone", [plain | 1 << 40, 0, 0, 0, 0, 0]), ALLOW);
    for bit in 0..32 {
        let flag = 1u64 << bit;
        let want = if CLONE_NAMESPACE_FLAGS & flag != 0 {
            EPERM
        } else {
            ALLOW
        };
        assert_eq!(
            x64(&prog, "clone", [plain | flag, 0, 0, 0, 0, 0]),
            want,
            "{flag:#x}"
        );
    }
    assert_eq!(
        x64(&prog, "clone", [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0]),
        EPERM
    );
    assert_eq!(x64(&prog, "clone3", [0; 6]), ENOSYS);
}

#[test]
fn personality_and_socket_take_only_the_listed_arguments() {
    let prog = default_program();
    for p in [0, 8, 0x20000, 0x20008, 0xffff_ffff] {
        assert_eq!(
            x64(&prog, "personality", [p, 0, 0, 0, 0, 0]),
            ALLOW,
            "{p:#x}"
        );
    }
    for p in [0x0040000, 0x1_0000_0000, 0xffff_ffff_ffff_ffff, 1] {
        assert_eq!(
            x64(&prog, "personality", [p, 0, 0, 0, 0, 0]),
            EPERM,
            "{p:#x}"
        );
    }
    for domain in [0, 1, 2, 10, 11, 16, 17, 39, 41, 45] {
        assert_eq!(
            x64(&prog, "socket", [domain, 1, 0, 0, 0, 0]),
            ALLOW,
            "{domain}"
        );
    }
    // AF_DECnet, AF_ECONET, AF_ALG, AF_VSOCK, beyond AF_MCTP, and AF_INET with upper bits.
    for domain in [12, 19, 38, 40, 46, 0x1_0000_0002] {
        assert_eq!(
            x64(&prog, "socket", [domain, 1, 0, 0, 0, 0]),
            EPERM,
            "{domain}"
        );
    }
}

#[test]
fn numbers_past_the_profile_say_enosys_and_gaps_say_eperm() {
    let prog = default_program();
    for n in [467, 468, 512, 1000, X32_SYSCALL_BIT - 1] {
        assert_eq!(run(&prog, AUDIT_ARCH_X86_64, n, [0; 6]), ENOSYS, "{n}");
    }
    // 336..423 are unused on x86_64, but below the last number the profile names.
    assert_eq!(run(&prog, AUDIT_ARCH_X86_64, 400, [0; 6]), EPERM);
    assert_eq!(run(&prog, AUDIT_ARCH_AARCH64, 0, [0; 6]), BAD_ARCH);
}

#[test]
fn i386_and_x32_calls_get_the_same_profile() {
    let prog = default_program();
    let i386 = |name: &str, args| run(&prog, AUDIT_ARCH_I386, nr(name, 1), args);
    let x32 = |name: &str, args| {
        run(
            &prog,
            AUDIT_ARCH_X86_64,
            X32_SYSCALL_BIT | nr(name, 2),
            args,
        )
    };
    for name in [
        "read",
        "socketcall",
        "chown32",
        "_llseek",
        "clock_gettime64",
        "arch_prctl",
    ] {
        assert_eq!(i386(name, [0; 6]), ALLOW, "i386 {name}");
    }
    for name in ["read", "rt_sigaction", "execve", "pwritev2", "arch_prctl"] {
        assert_eq!(x32(name, [0; 6]), ALLOW, "x32 {name}");
    }
    for name in ["keyctl", "unshare", "mount", "bpf", "io_uring_setup"] {
        assert_eq!(i386(name, [0; 6]), EPERM, "i386 {name}");
        assert_eq!(x32(name, [0; 6]), EPERM, "x32 {name}");
    }
    let newuser = libc::CLONE_NEWUSER as u64 | libc::SIGCHLD as u64;
    assert_eq!(i386("clone", [newuser, 0, 0, 0, 0, 0]), EPERM);
    assert_eq!(x32("clone", [newuser, 0, 0, 0, 0, 0]), EPERM);
    assert_eq!(i386("clone", [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(i386("clone3", [0; 6]), ENOSYS);
    assert_eq!(x32("clone3", [0; 6]), ENOSYS);
    // The kernel gives an i386 call only the low 32 bits of each argument.
    assert_eq!(
        i386("personality", [0xdead_0000_0008, 0, 0, 0, 0, 0]),
        ALLOW
    );
    assert_eq!(run(&prog, AUDIT_ARCH_I386, 1000, [0; 6]), ENOSYS);
    assert_eq!(
        run(&prog, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 1000, [0; 6]),
        ENOSYS
    );
}

#[test]
fn without_x32_an_x32_number_kills() {
    let mut profile = default_profile();
    profile.set_architectures(Some(vec![Arch::ScmpArchX86_64]));
    let prog = compile(&profile).unwrap().instructions().to_vec();
    assert_eq!(
        run(&prog, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT, [0; 6]),
        BAD_ARCH
    );
    assert_eq!(run(&prog, AUDIT_ARCH_I386, 3, [0; 6]), BAD_ARCH);
    assert_eq!(x64(&prog, "read", [0; 6]), ALLOW);
}

#[test]
fn cap_sys_admin_brings_back_what_docker_gives_it() {
    let mut caps = default_capabilities_set();
    caps.insert(Capability::SysAdmin);
    let prog = compile(&profile_for(&caps))
        .unwrap()
        .instructions()
        .to_vec();
    for name in [
        "unshare",
        "mount",
        "sethostname",
        "setns",
        "clone3",
        "umount2",
        "bpf",
    ] {
        assert_eq!(x64(&prog, name, [0; 6]), ALLOW, "{name}");
    }
    let newuser = libc::CLONE_NEWUSER as u64 | libc::SIGCHLD as u64;
    assert_eq!(x64(&prog, "clone", [newuser, 0, 0, 0, 0, 0]), ALLOW);
    for name in [
        "keyctl",
        "kexec_load",
        "init_module",
        "io_uring_setup",
        "ptrace",
    ] {
        let want = if name == "ptrace" { ALLOW } else { EPERM };
        assert_eq!(x64(&prog, name, [0; 6]), want, "{name}");
    }
    // And the plain default is what docker's default capabilities give.
    let default = default_profile();
    assert_eq!(profile_for(&default_capabilities_set()), default);
    assert!(!serde_json::to_string(&default)
        .unwrap()
        .contains("\"unshare\""));
}

fn default_capabilities_set() -> Capabilities {
    crate::runtime::spec::default_capabilities()
        .bounding()
        .clone()
        .unwrap()
}

#[test]
fn the_profile_survives_config_json() {
    let profile = default_profile();
    let json = serde_json::to_value(&profile).unwrap();
    assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(json["defaultErrnoRet"], 1);
    assert_eq!(
        json["architectures"],
        serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
    );
    let back: LinuxSeccomp = serde_json::from_value(json).unwrap();
    assert_eq!(
        compile(&back).unwrap().instructions(),
        default_program().as_slice()
    );
}

/// One rule on `read`'s argument 1, default EPERM.
fn one_rule(op: LinuxSeccompOperator, value: u64, value_two: Option<u64>) -> Vec<sock_filter> {
    let mut arg = LinuxSeccompArgBuilder::default()
        .index(1usize)
        .value(value)
        .op(op);
    if let Some(v) = value_two {
        arg = arg.value_two(v);
    }
    let mut rule = LinuxSyscall::default();
    rule.set_names(vec!["read".into()])
        .set_action(LinuxSeccompAction::ScmpActAllow)
        .set_args(Some(vec![arg.build().unwrap()]));
    let mut profile = LinuxSeccomp::default();
    profile
        .set_default_action(LinuxSeccompAction::ScmpActErrno)
        .set_architectures(Some(vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86]))
        .set_syscalls(Some(vec![rule]));
    compile(&profile).unwrap().instructions().to_vec()
}

#[test]
fn every_comparison_agrees_with_arithmetic_on_64_and_32_bits() {
    use LinuxSeccompOperator as Op;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let ops = [
        Op::ScmpCmpEq,
        Op::ScmpCmpNe,
        Op::ScmpCmpLt,
        Op::ScmpCmpLe,
        Op::ScmpCmpGt,
        Op::ScmpCmpGe,
        Op::ScmpCmpMaskedEq,
    ];
    let holds = |op: Op, x: u64, v: u64, v2: u64| match op {
        Op::ScmpCmpEq => x == v,
        Op::ScmpCmpNe => x != v,
        Op::ScmpCmpLt => x < v,
        Op::ScmpCmpLe => x <= v,
        Op::ScmpCmpGt => x > v,
        Op::ScmpCmpGe => x >= v,
        Op::ScmpCmpMaskedEq => x & v == v2,
    };
    for _ in 0..40 {
        let v = match random() % 3 {
            0 => random(),
            1 => random() & 0xffff_ffff,
            _ => random() % 4,
        };
        let v2 = v & random();
        for op in ops {
            let prog = one_rule(op, v, (op == Op::ScmpCmpMaskedEq).then_some(v2));
            let hi = v & !0xffff_ffff;
            let near = [
                v,
                v.wrapping_add(1),
                v.wrapping_sub(1),
                v ^ 1 << 40,
                hi,
                hi | 0xffff_ffff,
            ];
            for x in near.into_iter().chain((0..8).map(|_| random())) {
                let args = [0, x, 0, 0, 0, 0];
                let want = if holds(op, x, v, v2) { ALLOW } else { EPERM };
                assert_eq!(
                    run(&prog, AUDIT_ARCH_X86_64, 0, args),
                    want,
                    "{op} {v:#x} {x:#x}"
                );
                // i386: only the low words exist, the value's upper word against 0.
                let (x, v, v2) = (x & 0xffff_ffff, v, v2);
                let want = if holds(op, x, v, v2) { ALLOW } else { EPERM };
                assert_eq!(
                    run(&prog, AUDIT_ARCH_I386, 3, args),
                    want,
                    "i386 {op} {v:#x} {x:#x}"
                );
            }
        }
    }
}

#[test]
fn far_targets_are_reached_through_long_jumps() {
    // 300 rules on one call put most of its chain more than 255 instructions away.
    let values: Vec<u64> = (0..300).map(|i| i * 7 + 3).collect();
    let rules: Vec<LinuxSyscall> = values
        .iter()
        .map(|&v| {
            let arg = LinuxSeccompArgBuilder::default()
                .index(0usize)
                .value(v)
                .op(LinuxSeccompOperator::ScmpCmpEq)
                .build()
                .unwrap();
            let mut r = LinuxSyscall::default();
            r.set_names(vec!["write".into(), "getpid".into()])
                .set_action(LinuxSeccompAction::ScmpActErrno)
                .set_errno_ret(Some(v as u32))
                .set_args(Some(vec![arg]));
            r
        })
        .collect();
    let mut profile = LinuxSeccomp::default();
    profile
        .set_default_action(LinuxSeccompAction::ScmpActAllow)
        .set_syscalls(Some(rules));
    let prog = compile(&profile).unwrap().instructions().to_vec();
    assert!(prog.iter().any(|i| i.code == JA && i.k > 255));
    for &v in &values {
        let want = libc::SECCOMP_RET_ERRNO | v as u32;
        assert_eq!(x64(&prog, "write", [v, 0, 0, 0, 0, 0]), want);
        assert_eq!(x64(&prog, "getpid", [v, 0, 0, 0, 0, 0]), want);
        assert_eq!(x64(&prog, "write", [v + 1, 0, 0, 0, 0, 0]), ALLOW);
    }
    // A default of allow has no ENOSYS stub.
    assert_eq!(run(&prog, AUDIT_ARCH_X86_64, 1000, [0; 6]), ALLOW);
}

#[test]
fn bad_profiles_are_refused_with_a_reason() {
    let with_rule = |action, errno: Option<u32>, index: usize| {
        let arg = LinuxSeccompArgBuilder::default()
            .index(index)
            .value(0u64)
            .op(LinuxSeccompOperator::ScmpCmpEq)
            .build()
            .unwrap();
        let mut r = LinuxSyscall::default();
        r.set_names(vec!["read".into(), "no_such_call".into()])
            .set_action(action)
            .set_errno_ret(errno)
            .set_args(Some(vec![arg]));
        let mut profile = default_profile();
        profile.set_syscalls(Some(vec![r]));
        compile(&profile).map(|_| ())
    };
    // A name no ABI has is left out, as runc does.
    assert!(with_rule(LinuxSeccompAction::ScmpActAllow, None, 0).is_ok());
    let err = with_rule(LinuxSeccompAction::ScmpActNotify, None, 0).unwrap_err();
    assert!(err.to_string().contains("SCMP_ACT_NOTIFY"), "{err}");
    let err = with_rule(LinuxSeccompAction::ScmpActAllow, None, 6).unwrap_err();
    assert!(
        matches!(err, SeccompError::ArgIndex { index: 6, .. }),
        "{err}"
    );
    let err = with_rule(LinuxSeccompAction::ScmpActErrno, Some(70_000), 0).unwrap_err();
    assert!(matches!(err, SeccompError::BadErrno { .. }), "{err}");
}

/// What the forked child checks, in order; it exits with the number of the first that fails.
const KERNEL_CHECKS: [&str; 13] = [
    "getpid works",
    "write works",
    "clone without namespace flags works",
    "keyctl is EPERM",
    "unshare(CLONE_NEWUSER) is EPERM",
    "clone(CLONE_NEWUSER) is EPERM",
    "clone3 is ENOSYS",
    "bpf is EPERM",
    "io_uring_setup is EPERM",
    "mount is EPERM",
    "personality(0xffffffff) works",
    "socket(AF_VSOCK) is EPERM",
    "a number past the table is ENOSYS",
];

#[test]
fn a_process_under_the_filter_is_refused_what_docker_refuses() {
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, pipe, ForkResult};
    use std::os::fd::AsRawFd;

    let program = compile(&default_profile()).unwrap();
    let (_rd, wr) = pipe().unwrap();
    // SAFETY: the child makes only raw system calls (no allocation, no lock) and leaves
    // with _exit, so the threads of the test harness it lost cannot matter.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            // SAFETY: prctl with integer arguments; failure shows in install() below.
            unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            if program.install().is_err() {
                // SAFETY: ends this forked child at once.
                unsafe { libc::_exit(100) };
            }
            let code = kernel_checks(wr.as_raw_fd());
            // SAFETY: as above.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => match waitpid(child, None).unwrap() {
            WaitStatus::Exited(_, 0) => {}
            WaitStatus::Exited(_, 100) => panic!("the filter could not be installed"),
            WaitStatus::Exited(_, n) => panic!("failed: {}", KERNEL_CHECKS[n as usize - 1]),
            other => panic!("the child ended with {other:?}"),
        },
    }
}

/// In the forked child: 0 when every check holds, else the (1-based) number of the first that
/// does not.
fn kernel_checks(pipe: i32) -> i32 {
    let errno = || std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    let refused = |r: libc::c_long, e: i32| r == -1 && errno() == e;
    // SAFETY: the calls below pass integers, or pointers to live locals; those the filter
    // refuses do nothing, and the one clone that runs is fork-like (no new stack, no shared
    // memory), its child leaving at once.
    let sys =
        |n: libc::c_long, a: [u64; 5]| unsafe { libc::syscall(n, a[0], a[1], a[2], a[3], a[4]) };
    let byte = 1u8;
    let checks: [&dyn Fn() -> bool; KERNEL_CHECKS.len()] = [
        &|| sys(libc::SYS_getpid, [0; 5]) > 0,
        &|| {
            sys(
                libc::SYS_write,
                [pipe as u64, &byte as *const u8 as u64, 1, 0, 0],
            ) == 1
        },
        &|| {
            let pid = sys(libc::SYS_clone, [libc::SIGCHLD as u64, 0, 0, 0, 0]);
            if pid == 0 {
                // SAFETY: the clone's child leaves at once.
                unsafe { libc::_exit(0) };
            }
            let mut status = 0;
            // SAFETY: waits for the child just made, into a local.
            pid > 0 && unsafe { libc::waitpid(pid as i32, &mut status, 0) } == pid as i32
        },
        &|| refused(sys(libc::SYS_keyctl, [0; 5]), libc::EPERM),
        &|| {
            refused(
                sys(libc::SYS_unshare, [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0]),
                libc::EPERM,
            )
        },
        &|| {
            let flags = (libc::CLONE_NEWUSER | libc::SIGCHLD) as u64;
            refused(sys(libc::SYS_clone, [flags, 0, 0, 0, 0]), libc::EPERM)
        },
        &|| refused(sys(libc::SYS_clone3, [0, 0, 0, 0, 0]), libc::ENOSYS),
        &|| refused(sys(libc::SYS_bpf, [0; 5]), libc::EPERM),
        &|| refused(sys(libc::SYS_io_uring_setup, [1, 0, 0, 0, 0]), libc::EPERM),
        &|| refused(sys(libc::SYS_mount, [0; 5]), libc::EPERM),
        &|| sys(libc::SYS_personality, [0xffff_ffff, 0, 0, 0, 0]) >= 0,
        &|| {
            refused(
                sys(libc::SYS_socket, [libc::AF_VSOCK as u64, 1, 0, 0, 0]),
                libc::EPERM,
            )
        },
        &|| refused(sys(1000, [0; 5]), libc::ENOSYS),
    ];
    for (i, check) in checks.iter().enumerate() {
        if !check() {
            return i as i32 + 1;
        }
    }
    0
}
