//! An OCI `linux.seccomp` section compiled to a classic BPF program for `seccomp(2)`, with the
//! semantics runc gives it through libseccomp:
//!
//! - the architecture is checked first: x86_64, and i386 and x32 when the profile lists them
//!   (`SCMP_ARCH_X86`, `SCMP_ARCH_X32`); any other, or an x32 number when x32 is not listed,
//!   kills the process (libseccomp's bad-arch action);
//! - names are looked up per ABI; a name an ABI lacks is left out there (docker's list names
//!   32-bit calls such as `chown32`, and other architectures' calls such as `riscv_hwprobe`);
//! - a system call's rules are tried in the profile's order and the first whose every argument
//!   condition holds decides; none: the default action;
//! - argument comparisons are 64-bit on x86_64 and x32, and on the low 32 bits on i386 (the
//!   kernel hands a compat call only those, whatever a process left in the upper halves);
//! - numbers above the highest one the profile names on an ABI fail with `ENOSYS`, not the
//!   default `EPERM` (runc's "-ENOSYS stub"), so that a libc newer than the profile falls back
//!   to an older call instead of failing.
//!
//! The numbers are dispatched by a binary search over ranges (about nine comparisons per call),
//! not a linear scan of 400 entries.

use std::collections::BTreeMap;
use std::fmt;

use libc::sock_filter;
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator,
};

use super::bpf::{Asm, Cond, Label};
use super::syscalls::{NO, TABLE};
use super::SeccompError;

/// `struct seccomp_data`: `nr` at 0, `arch` at 4, `args[6]` (64-bit each) from 16.
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARGS: u32 = 16;
/// <linux/audit.h>: EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE, and EM_386 | LE.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// x32 calls come with x86_64's audit arch and this bit set in the number.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// What a foreign architecture gets (libseccomp's default bad-arch action kills too).
pub const BAD_ARCH: u32 = libc::SECCOMP_RET_KILL_PROCESS;
const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

/// A compiled filter, ready for [`Program::install`].
pub struct Program {
    pub(super) instructions: Vec<sock_filter>,
    /// `SECCOMP_FILTER_FLAG_*` from the profile's `flags`.
    pub(super) flags: libc::c_ulong,
}

impl Program {
    pub fn instructions(&self) -> &[sock_filter] {
        &self.instructions
    }
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Program")
            .field("instructions", &self.instructions.len())
            .field("flags", &self.flags)
            .finish()
    }
}

/// The three ABIs an x86_64 process can make calls with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Abi {
    X86_64,
    I386,
    X32,
}

impl Abi {
    /// Its column in [`TABLE`].
    fn column(self) -> usize {
        self as usize
    }

    /// Whether its arguments are compared on 64 bits.
    fn wide(self) -> bool {
        self != Abi::I386
    }

    fn number(self, name: &str) -> Option<u32> {
        let i = TABLE.binary_search_by(|(n, _)| n.cmp(&name)).ok()?;
        let nr = TABLE[i].1[self.column()];
        (nr != NO).then(|| {
            let base = if self == Abi::X32 { X32_SYSCALL_BIT } else { 0 };
            base | u32::from(nr)
        })
    }
}

/// One rule as it applies to one number: its action and its argument conditions.
#[derive(Debug, Clone)]
struct Rule {
    ret: u32,
    args: Vec<LinuxSeccompArg>,
}

/// Compile `seccomp` for this (x86_64) host.
pub fn compile(seccomp: &LinuxSeccomp) -> Result<Program, SeccompError> {
    if !cfg!(target_arch = "x86_64") {
        return Err(SeccompError::UnsupportedHost(std::env::consts::ARCH));
    }
    let default = action_value(
        seccomp.default_action(),
        seccomp.default_errno_ret(),
        "the default action",
    )?;
    let listed = |a: Arch| seccomp.architectures().iter().flatten().any(|x| *x == a);
    let mut abis = vec![Abi::X86_64];
    if listed(Arch::ScmpArchX86) {
        abis.push(Abi::I386);
    }
    if listed(Arch::ScmpArchX32) {
        abis.push(Abi::X32);
    }

    let mut rules: BTreeMap<(Abi, u32), Vec<Rule>> = BTreeMap::new();
    for syscall in seccomp.syscalls().iter().flatten() {
        let what = syscall.names().join(", ");
        let ret = action_value(syscall.action(), syscall.errno_ret(), &what)?;
        let args = syscall.args().clone().unwrap_or_default();
        if let Some(bad) = args.iter().find(|a| a.index() > 5) {
            return Err(SeccompError::ArgIndex {
                syscall: what,
                index: bad.index(),
            });
        }
        for name in syscall.names() {
            for &abi in &abis {
                if let Some(nr) = abi.number(name) {
                    let rule = Rule {
                        ret,
                        args: args.clone(),
                    };
                    rules.entry((abi, nr)).or_default().push(rule);
                }
            }
        }
    }
    // runc's stub: unless everything is allowed anyway, or the default already says ENOSYS.
    let allowing = [libc::SECCOMP_RET_ALLOW, libc::SECCOMP_RET_LOG].contains(&default);
    let stub = !allowing && default != ENOSYS;

    let mut c = Compiler {
        asm: Asm::default(),
        rets: BTreeMap::new(),
        blocks: Vec::new(),
    };
    c.asm.load(ARCH);
    let bad = c.ret(BAD_ARCH);
    let x86_64 = c.asm.label();
    let i386 = abis.contains(&Abi::I386).then(|| c.asm.label());
    match i386 {
        Some(i386) => {
            let next = c.asm.label();
            c.asm.jump(Cond::Eq, AUDIT_ARCH_X86_64, x86_64, next);
            c.asm.mark(next);
            c.asm.jump(Cond::Eq, AUDIT_ARCH_I386, i386, bad);
        }
        None => c.asm.jump(Cond::Eq, AUDIT_ARCH_X86_64, x86_64, bad),
    }
    // x86_64's audit arch: its own numbers below the x32 bit, x32's (or a kill) above.
    c.asm.mark(x86_64);
    c.asm.load(NR);
    let mut ranges = c.ranges(Abi::X86_64, 0, X32_SYSCALL_BIT - 1, &rules, default, stub);
    if abis.contains(&Abi::X32) {
        let x32 = c.ranges(Abi::X32, X32_SYSCALL_BIT, u32::MAX, &rules, default, stub);
        ranges.extend(x32);
    } else {
        ranges.push((X32_SYSCALL_BIT, bad));
    }
    c.tree(&merge(ranges));
    if let Some(i386) = i386 {
        c.asm.mark(i386);
        c.asm.load(NR);
        let ranges = c.ranges(Abi::I386, 0, u32::MAX, &rules, default, stub);
        c.tree(&ranges);
    }
    c.emit_blocks(default);
    for (value, label) in std::mem::take(&mut c.rets) {
        c.asm.mark(label);
        c.asm.ret(value);
    }
    Ok(Program {
        instructions: c.asm.assemble()?,
        flags: filter_flags(seccomp.flags().as_deref().unwrap_or_default()),
    })
}

/// What the kernel is to return for an action (`SECCOMP_RET_*` with its data).
fn action_value(
    action: LinuxSeccompAction,
    errno: Option<u32>,
    what: &str,
) -> Result<u32, SeccompError> {
    let data = || -> Result<u32, SeccompError> {
        let errno = errno.unwrap_or(libc::EPERM as u32);
        if errno > libc::SECCOMP_RET_DATA {
            return Err(SeccompError::BadErrno {
                what: what.to_string(),
                errno,
            });
        }
        Ok(errno)
    };
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            libc::SECCOMP_RET_KILL_THREAD
        }
        LinuxSeccompAction::ScmpActKillProcess => libc::SECCOMP_RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => libc::SECCOMP_RET_TRAP,
        LinuxSeccompAction::ScmpActErrno => libc::SECCOMP_RET_ERRNO | data()?,
        LinuxSeccompAction::ScmpActTrace => libc::SECCOMP_RET_TRACE | data()?,
        LinuxSeccompAction::ScmpActLog => libc::SECCOMP_RET_LOG,
        LinuxSeccompAction::ScmpActAllow => libc::SECCOMP_RET_ALLOW,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(SeccompError::UnsupportedAction(action.to_string()))
        }
    })
}

/// `SECCOMP_FILTER_FLAG_*`. `WAIT_KILLABLE_RECV` only means something with a listener (and the
/// kernel refuses it without one), which isolab never asks for: it is left out.
fn filter_flags(flags: &[LinuxSeccompFilterFlag]) -> libc::c_ulong {
    flags
        .iter()
        .map(|f| match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 0,
        })
        .fold(0, |a, b| a | b)
}

/// The program being written, with the labels it shares.
struct Compiler {
    asm: Asm,
    /// One `ret` per distinct value, at the end.
    rets: BTreeMap<u32, Label>,
    /// Rule chains still to write: their label, ABI and rules.
    blocks: Vec<(Label, Abi, Vec<Rule>)>,
}

impl Compiler {
    fn ret(&mut self, value: u32) -> Label {
        if let Some(l) = self.rets.get(&value) {
            return *l;
        }
        let l = self.asm.label();
        self.rets.insert(value, l);
        l
    }

    /// `[lo, hi]` cut into ranges of numbers that lead to the same place: the rules of a
    /// number, the default between them, `ENOSYS` above the last one (with the stub).
    fn ranges(
        &mut self,
        abi: Abi,
        lo: u32,
        hi: u32,
        rules: &BTreeMap<(Abi, u32), Vec<Rule>>,
        default: u32,
        stub: bool,
    ) -> Vec<(u32, Label)> {
        let mine: Vec<(u32, &Vec<Rule>)> = rules
            .range((abi, lo)..=(abi, hi))
            .map(|((_, nr), r)| (*nr, r))
            .collect();
        let gap = self.ret(default);
        let mut out = vec![(lo, gap)];
        for (nr, r) in &mine {
            let target = self.target(abi, r);
            out.push((*nr, target));
            if *nr < hi {
                out.push((nr + 1, gap));
            }
        }
        if let Some((last, _)) = mine.last() {
            if stub && *last < hi {
                let enosys = self.ret(ENOSYS);
                out.pop();
                out.push((last + 1, enosys));
            }
        }
        merge(out)
    }

    /// Where a number's rules lead: straight to a `ret` when the first one has no condition.
    fn target(&mut self, abi: Abi, rules: &[Rule]) -> Label {
        match rules.iter().position(|r| r.args.is_empty()) {
            Some(0) => self.ret(rules[0].ret),
            first_plain => {
                // Rules after an unconditional one are never reached.
                let end = first_plain.map_or(rules.len(), |i| i + 1);
                let label = self.asm.label();
                self.blocks.push((label, abi, rules[..end].to_vec()));
                label
            }
        }
    }

    /// A binary search over `ranges` (sorted starts, each up to the next start) on the number
    /// in the accumulator.
    fn tree(&mut self, ranges: &[(u32, Label)]) {
        if let [(_, only)] = ranges {
            self.asm.goto(*only);
            return;
        }
        let (left, right) = ranges.split_at(ranges.len() / 2);
        let jt = if right.len() == 1 {
            right[0].1
        } else {
            self.asm.label()
        };
        let jf = if left.len() == 1 {
            left[0].1
        } else {
            self.asm.label()
        };
        self.asm.jump(Cond::Ge, right[0].0, jt, jf);
        if left.len() > 1 {
            self.asm.mark(jf);
            self.tree(left);
        }
        if right.len() > 1 {
            self.asm.mark(jt);
            self.tree(right);
        }
    }

    /// The rule chains: each rule's conditions in turn, the first that all hold decides.
    fn emit_blocks(&mut self, default: u32) {
        for (label, abi, rules) in std::mem::take(&mut self.blocks) {
            self.asm.mark(label);
            for rule in rules {
                let next = self.asm.label();
                for arg in &rule.args {
                    self.condition(abi.wide(), arg, next);
                }
                let ret = self.ret(rule.ret);
                self.asm.goto(ret);
                self.asm.mark(next);
            }
            let ret = self.ret(default);
            self.asm.goto(ret);
        }
    }

    /// Fall through when `arg` holds, jump to `fail` when not. A 64-bit comparison is one on
    /// the upper words and, when they are equal, one on the lower words; on a 32-bit ABI the
    /// upper word counts as 0 and its comparisons are decided here.
    fn condition(&mut self, wide: bool, arg: &LinuxSeccompArg, fail: Label) {
        use LinuxSeccompOperator as Op;
        let lo_at = ARGS + 8 * arg.index() as u32;
        let split = |v: u64| ((v >> 32) as u32, v as u32);
        let (v_hi, v_lo) = split(arg.value());
        let (pass, lo) = (self.asm.label(), self.asm.label());
        if wide {
            self.asm.load(lo_at + 4);
        }
        // The upper words, then what to do with the lower ones: (mask, test, k, true, false).
        let (mask, cond, k, yes, no) = match arg.op() {
            Op::ScmpCmpEq => {
                self.hi(wide, Cond::Eq, v_hi, lo, fail);
                (None, Cond::Eq, v_lo, pass, fail)
            }
            Op::ScmpCmpNe => {
                self.hi(wide, Cond::Eq, v_hi, lo, pass);
                (None, Cond::Eq, v_lo, fail, pass)
            }
            Op::ScmpCmpGt => {
                self.hi_order(wide, v_hi, lo, pass, fail);
                (None, Cond::Gt, v_lo, pass, fail)
            }
            Op::ScmpCmpGe => {
                self.hi_order(wide, v_hi, lo, pass, fail);
                (None, Cond::Ge, v_lo, pass, fail)
            }
            // Not (>=) is <, not (>) is <=.
            Op::ScmpCmpLt => {
                self.hi_order(wide, v_hi, lo, fail, pass);
                (None, Cond::Ge, v_lo, fail, pass)
            }
            Op::ScmpCmpLe => {
                self.hi_order(wide, v_hi, lo, fail, pass);
                (None, Cond::Gt, v_lo, fail, pass)
            }
            Op::ScmpCmpMaskedEq => {
                // `value` is the mask, `valueTwo` what the masked argument must equal.
                let (m_hi, m_lo) = (v_hi, v_lo);
                let (d_hi, d_lo) = split(arg.value_two().unwrap_or(0));
                if wide {
                    self.asm.and(m_hi);
                }
                // On a 32-bit ABI the upper word is 0, and so is 0 & mask.
                self.hi(wide, Cond::Eq, d_hi, lo, fail);
                (Some(m_lo), Cond::Eq, d_lo, pass, fail)
            }
        };
        self.asm.mark(lo);
        self.asm.load(lo_at);
        if let Some(m) = mask {
            self.asm.and(m);
        }
        self.asm.jump(cond, k, yes, no);
        self.asm.mark(pass);
    }

    /// A jump on the upper word of an argument (in the accumulator), or on 0 when the ABI has
    /// none.
    fn hi(&mut self, wide: bool, cond: Cond, k: u32, jt: Label, jf: Label) {
        if wide {
            self.asm.jump(cond, k, jt, jf);
        } else {
            self.asm.goto(if cond.holds(0, k) { jt } else { jf });
        }
    }

    /// The upper word against `k`: greater goes to `above`, less to `below`, equal to `equal`.
    fn hi_order(&mut self, wide: bool, k: u32, equal: Label, above: Label, below: Label) {
        let same = self.asm.label();
        self.hi(wide, Cond::Gt, k, above, same);
        self.asm.mark(same);
        self.hi(wide, Cond::Eq, k, equal, below);
    }
}

/// Ranges sorted by start, a later one replacing an earlier one of the same start, and
/// neighbours with the same target made one.
fn merge(ranges: Vec<(u32, Label)>) -> Vec<(u32, Label)> {
    let mut starts: Vec<(u32, Label)> = Vec::with_capacity(ranges.len());
    for (start, target) in ranges {
        match starts.last_mut() {
            Some(last) if last.0 == start => last.1 = target,
            _ => starts.push((start, target)),
        }
    }
    starts.dedup_by(|next, kept| next.1 == kept.1);
    starts
}
