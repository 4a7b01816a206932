//! The cgroup v2 device controller: an eBPF program of type `BPF_PROG_TYPE_CGROUP_DEVICE`
//! attached to the container's cgroup (`BPF_CGROUP_DEVICE`). cgroup v2 has no
//! `devices.allow`/`devices.deny`; the kernel runs this program on every open, mknod (and
//! `access(2)`-style check) of a device node by a process of the cgroup.
//!
//! [`program`] compiles a [`DeviceRule`] list into instructions, [`attach`] loads them and
//! attaches them to a cgroup directory.
//!
//! # Semantics
//!
//! Rules apply in order and a later rule overrides an earlier one for the devices *and access
//! bits* both cover: each requested access bit (`r`, `w`, `m`) is decided by the last rule
//! that matches the device and names that bit; the request is allowed when every requested bit
//! is decided "allow", and denied as soon as one is decided "deny" or no rule decides it. So
//! `deny c 1:3 w` after `allow c 1:3 rwm` denies an `O_RDWR` open (which the kernel checks as
//! one `rw` request) while `r` alone stays allowed, as on cgroup v1. A request with no access
//! bit at all (the kernel asks with 0 for e.g. `access(X_OK)`) is allowed when an allow rule
//! matches the device.
//!
//! The program walks the rules from the last to the first with a register holding the still
//! undecided bits: a matching deny rule that names one of them returns 0; a matching allow rule
//! clears the bits it names and returns 1 once none is left; the end returns 0.
//!
//! Needs Linux 5.1 or later (32-bit jumps, `BPF_JMP32`).

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::DeviceRule;

// ---- the instruction set (the subset we emit) ----

/// One eBPF instruction, as the kernel reads it (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Opcode: class | operation | source.
    pub code: u8,
    /// Destination register in the low nibble, source register in the high one.
    pub regs: u8,
    /// Jump offset (in instructions, from the next one) or memory offset.
    pub off: i16,
    /// Immediate operand.
    pub imm: i32,
}

const _: () = assert!(std::mem::size_of::<Insn>() == 8);

// Opcodes: class (low 3 bits) | operation | source (BPF_K = immediate, BPF_X = register).
/// `dst = *(u32 *)(src + off)` (BPF_LDX | BPF_MEM | BPF_W).
const LDX_MEM_W: u8 = 0x61;
/// `(u32) dst &= imm` (BPF_ALU | BPF_AND | BPF_K).
const ALU32_AND_K: u8 = 0x54;
/// `(u32) dst >>= imm` (BPF_ALU | BPF_RSH | BPF_K).
const ALU32_RSH_K: u8 = 0x74;
/// `(u32) dst = (u32) src` (BPF_ALU | BPF_MOV | BPF_X).
const ALU32_MOV_X: u8 = 0xbc;
/// `dst = (s64) imm` (BPF_ALU64 | BPF_MOV | BPF_K).
const ALU64_MOV_K: u8 = 0xb7;
/// `if (u32) dst == imm goto +off` (BPF_JMP32 | BPF_JEQ | BPF_K).
const JMP32_JEQ_K: u8 = 0x16;
/// `if (u32) dst != imm goto +off` (BPF_JMP32 | BPF_JNE | BPF_K).
const JMP32_JNE_K: u8 = 0x56;
/// `return r0` (BPF_JMP | BPF_EXIT).
const EXIT: u8 = 0x95;

// Registers: r1 is the context pointer on entry, r0 the return value.
const R0: u8 = 0;
const R_CTX: u8 = 1;
/// Scratch, once the context is read.
const R_TMP: u8 = 1;
/// Device type: BPF_DEVCG_DEV_BLOCK or BPF_DEVCG_DEV_CHAR.
const R_TYPE: u8 = 2;
/// The requested access bits that no rule has decided yet.
const R_ACCESS: u8 = 3;
const R_MAJOR: u8 = 4;
const R_MINOR: u8 = 5;

// struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
const CTX_ACCESS_TYPE: i16 = 0;
const CTX_MAJOR: i16 = 4;
const CTX_MINOR: i16 = 8;

const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: u32 = 1;
const ACC_READ: u32 = 2;
const ACC_WRITE: u32 = 4;
const ACC_ALL: u32 = ACC_MKNOD | ACC_READ | ACC_WRITE;

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        Insn {
            code,
            regs: (src << 4) | (dst & 0x0f),
            off,
            imm,
        }
    }

    /// Destination register.
    pub fn dst(&self) -> u8 {
        self.regs & 0x0f
    }

    /// Source register.
    pub fn src(&self) -> u8 {
        self.regs >> 4
    }

    fn load_u32(dst: u8, src: u8, off: i16) -> Self {
        Self::new(LDX_MEM_W, dst, src, off, 0)
    }

    fn and32(dst: u8, imm: u32) -> Self {
        // The kernel uses the immediate's 32 bits as they are: reinterpret, do not convert.
        Self::new(ALU32_AND_K, dst, 0, 0, imm as i32)
    }

    fn rsh32(dst: u8, bits: i32) -> Self {
        Self::new(ALU32_RSH_K, dst, 0, 0, bits)
    }

    fn mov32_reg(dst: u8, src: u8) -> Self {
        Self::new(ALU32_MOV_X, dst, src, 0, 0)
    }

    fn mov64_imm(dst: u8, imm: i32) -> Self {
        Self::new(ALU64_MOV_K, dst, 0, 0, imm)
    }

    /// `if (u32) dst == imm` jump; the offset is patched once the target is known.
    fn jeq32(dst: u8, imm: u32) -> Self {
        Self::new(JMP32_JEQ_K, dst, 0, 0, imm as i32)
    }

    /// `if (u32) dst != imm` jump; the offset is patched once the target is known.
    fn jne32(dst: u8, imm: u32) -> Self {
        Self::new(JMP32_JNE_K, dst, 0, 0, imm as i32)
    }

    fn exit() -> Self {
        Self::new(EXIT, 0, 0, 0, 0)
    }
}

// ---- the compiler ----

/// A rule reduced to what the program tests.
struct Compiled {
    allow: bool,
    dev_type: Option<i32>,
    major: Option<u32>,
    minor: Option<u32>,
    access: u32,
}

impl Compiled {
    /// None for a rule that can decide nothing: no access bit, or an allow rule for a device
    /// kind we do not know (an unknown kind in a deny rule is taken as every kind).
    fn new(rule: &DeviceRule) -> Option<Self> {
        let access = rule.access.chars().fold(0, |acc, c| {
            acc | match c {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                'm' => ACC_MKNOD,
                _ => 0,
            }
        });
        if access == 0 {
            return None;
        }
        let dev_type = match rule.kind {
            Some('c') => Some(DEV_CHAR),
            Some('b') => Some(DEV_BLOCK),
            None | Some('a') => None,
            Some(_) if rule.allow => return None,
            Some(_) => None,
        };
        Some(Compiled {
            allow: rule.allow,
            dev_type,
            major: rule.major,
            minor: rule.minor,
            access,
        })
    }
}

/// The eBPF device filter for `rules` (see the module docs for the semantics). Returns 1 to
/// allow, 0 to deny. Every instruction is reachable (the verifier refuses dead code) and every
/// jump goes forward.
pub fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut p = vec![
        Insn::load_u32(R_TYPE, R_CTX, CTX_ACCESS_TYPE),
        Insn::and32(R_TYPE, 0xffff),
        Insn::load_u32(R_ACCESS, R_CTX, CTX_ACCESS_TYPE),
        Insn::rsh32(R_ACCESS, 16),
        Insn::and32(R_ACCESS, ACC_ALL),
        Insn::load_u32(R_MAJOR, R_CTX, CTX_MAJOR),
        Insn::load_u32(R_MINOR, R_CTX, CTX_MINOR),
    ];
    for rule in rules.iter().rev().filter_map(Compiled::new) {
        // Jumps to the next rule's block, patched at the end of this one.
        let mut to_next = Vec::new();
        let mut jump_if = |p: &mut Vec<Insn>, insn: Insn| {
            to_next.push(p.len());
            p.push(insn);
        };
        if let Some(t) = rule.dev_type {
            jump_if(&mut p, Insn::jne32(R_TYPE, t as u32));
        }
        if let Some(major) = rule.major {
            jump_if(&mut p, Insn::jne32(R_MAJOR, major));
        }
        if let Some(minor) = rule.minor {
            jump_if(&mut p, Insn::jne32(R_MINOR, minor));
        }
        match (rule.allow, rule.access == ACC_ALL) {
            // Every bit still undecided is allowed.
            (true, true) => {}
            (true, false) => {
                p.push(Insn::and32(R_ACCESS, !rule.access));
                jump_if(&mut p, Insn::jne32(R_ACCESS, 0));
            }
            // Denied if any bit is still undecided (an empty request is not denied).
            (false, true) => jump_if(&mut p, Insn::jeq32(R_ACCESS, 0)),
            (false, false) => {
                p.push(Insn::mov32_reg(R_TMP, R_ACCESS));
                p.push(Insn::and32(R_TMP, rule.access));
                jump_if(&mut p, Insn::jeq32(R_TMP, 0));
            }
        }
        p.push(Insn::mov64_imm(R0, i32::from(rule.allow)));
        p.push(Insn::exit());
        let next = p.len();
        for &j in &to_next {
            // A block is at most 8 instructions long: the offset always fits.
            p[j].off = (next - j - 1) as i16;
        }
        if to_next.is_empty() {
            // `allow a *:* rwm`: decides everything; what would follow is unreachable.
            return p;
        }
    }
    p.push(Insn::mov64_imm(R0, 0));
    p.push(Insn::exit());
    p
}

// ---- the bpf(2) system call ----

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
#[cfg(test)]
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
#[cfg(test)]
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Bytes of verifier log kept when a load is refused (the tail: the reason is at the end).
const LOG_SIZE: usize = 1 << 20;
const LOG_TAIL_LINES: usize = 30;
const LICENSE: &CStr = c"Apache-2.0";
/// Shows in `bpftool prog` (at most 15 bytes; letters, digits, `_`, `.`).
const PROG_NAME: &[u8] = b"isolab_devices";

/// `union bpf_attr` with the members we use, at the size of the union in the 6.2 uapi
/// headers (144 bytes). Always built zeroed ([`BpfAttr::zeroed`]): the kernel refuses nonzero
/// bytes past the fields a command knows, copies at most the size we give it (newer kernels
/// zero-fill the rest), and for some commands writes results back into it (BPF_PROG_QUERY
/// writes `revision` at offset 56, past the part we read), so the whole buffer must be ours.
#[repr(C)]
union BpfAttr {
    prog_load: ProgLoadAttr,
    prog_attach: ProgAttachAttr,
    #[cfg(test)]
    prog_query: ProgQueryAttr,
    #[cfg(test)]
    get_id: GetIdAttr,
    raw: [u64; 18],
}

const _: () = assert!(std::mem::size_of::<BpfAttr>() == 144);

/// The BPF_PROG_LOAD part (no padding: 72 bytes, fields at their uapi offsets).
#[repr(C)]
#[derive(Clone, Copy)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

const _: () = {
    assert!(std::mem::size_of::<ProgLoadAttr>() == 72);
    assert!(std::mem::offset_of!(ProgLoadAttr, insns) == 8);
    assert!(std::mem::offset_of!(ProgLoadAttr, log_buf) == 32);
    assert!(std::mem::offset_of!(ProgLoadAttr, prog_name) == 48);
    assert!(std::mem::offset_of!(ProgLoadAttr, expected_attach_type) == 68);
};

/// The BPF_PROG_ATTACH / BPF_PROG_DETACH part.
#[repr(C)]
#[derive(Clone, Copy)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// The BPF_PROG_QUERY part.
#[cfg(test)]
#[repr(C)]
#[derive(Clone, Copy)]
struct ProgQueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

/// The BPF_PROG_GET_FD_BY_ID part.
#[cfg(test)]
#[repr(C)]
#[derive(Clone, Copy)]
struct GetIdAttr {
    id: u32,
    next_id: u32,
    open_flags: u32,
}

impl BpfAttr {
    fn zeroed() -> Self {
        BpfAttr { raw: [0; 18] }
    }
}

/// bpf(2). Returns the (non-negative) result or the errno.
///
/// # Safety
///
/// Every pointer stored in `attr` for `cmd` must be valid for what the kernel does with it
/// during the call (read `insn_cnt` instructions at `insns`, a NUL-terminated `license`, write
/// `log_size` bytes at `log_buf`, write `prog_cnt` ids at `prog_ids`...).
unsafe fn sys_bpf(cmd: libc::c_long, attr: &mut BpfAttr) -> io::Result<libc::c_long> {
    let size = std::mem::size_of::<BpfAttr>() as libc::c_long;
    // SAFETY: `attr` is a live, exclusively borrowed buffer of `size` bytes, which is all the
    // kernel reads or writes of it; the pointers inside are valid per this function's contract.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut BpfAttr, size) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Errors of [`attach`].
#[derive(Debug, thiserror::Error)]
pub enum DeviceFilterError {
    #[error("open cgroup {path}: {source}")]
    OpenCgroup {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("load the device filter ({insns} instructions): {source}{}", verifier_log(.log))]
    Load {
        insns: usize,
        #[source]
        source: io::Error,
        /// The end of the verifier's log, if it said anything.
        log: String,
    },
    #[error("attach the device filter to {path}: {source}")]
    Attach {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn verifier_log(log: &str) -> String {
    if log.is_empty() {
        String::new()
    } else {
        format!("; verifier log:\n{log}")
    }
}

/// Compile `rules` ([`program`]), load the program and attach it to the cgroup at
/// `cgroup_dir` as its only device program (flags 0: it replaces a program we attached
/// before, and sub-cgroups cannot add their own). The cgroup holds the program: it stays after
/// this returns and goes away with the cgroup.
pub fn attach(cgroup_dir: &Path, rules: &[DeviceRule]) -> Result<(), DeviceFilterError> {
    let cgroup = open_cgroup(cgroup_dir)?;
    let prog = load(&program(rules))?;
    let mut attr = BpfAttr::zeroed();
    attr.prog_attach = ProgAttachAttr {
        target_fd: fd_u32(&cgroup),
        attach_bpf_fd: fd_u32(&prog),
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: 0,
        replace_bpf_fd: 0,
    };
    // SAFETY: BPF_PROG_ATTACH takes only descriptors (both open until the end of this
    // function), no pointer.
    unsafe { sys_bpf(BPF_PROG_ATTACH, &mut attr) }.map_err(|source| DeviceFilterError::Attach {
        path: cgroup_dir.to_path_buf(),
        source,
    })?;
    Ok(())
}

fn open_cgroup(dir: &Path) -> Result<File, DeviceFilterError> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|source| DeviceFilterError::OpenCgroup {
            path: dir.to_path_buf(),
            source,
        })
}

fn fd_u32(fd: &impl AsRawFd) -> u32 {
    // Open descriptors are never negative.
    fd.as_raw_fd() as u32
}

/// Load `insns` as a cgroup device program. On refusal, load again with a verifier log to
/// say why (the log is only asked for then: a successful load does not need it, and a log
/// too small for a big program would itself fail the load on older kernels).
fn load(insns: &[Insn]) -> Result<OwnedFd, DeviceFilterError> {
    let source = match load_with_log(insns, None) {
        Ok(fd) => return Ok(fd),
        Err(e) => e,
    };
    let mut buf = vec![0u8; LOG_SIZE];
    match load_with_log(insns, Some(&mut buf)) {
        // A transient failure: fine now.
        Ok(fd) => Ok(fd),
        Err(_) => {
            let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            let text = String::from_utf8_lossy(&buf[..len]);
            let lines: Vec<&str> = text.trim_end().lines().collect();
            let log = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
            Err(DeviceFilterError::Load {
                insns: insns.len(),
                source,
                log,
            })
        }
    }
}

fn load_with_log(insns: &[Insn], log: Option<&mut [u8]>) -> io::Result<OwnedFd> {
    let mut prog_name = [0u8; 16];
    prog_name[..PROG_NAME.len()].copy_from_slice(PROG_NAME);
    let (log_level, log_size, log_buf) = match log {
        Some(buf) => (1, buf.len() as u32, buf.as_mut_ptr() as u64),
        None => (0, 0, 0),
    };
    let mut attr = BpfAttr::zeroed();
    attr.prog_load = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        log_level,
        log_size,
        log_buf,
        kern_version: 0,
        prog_flags: 0,
        prog_name,
        prog_ifindex: 0,
        expected_attach_type: 0,
    };
    // The verifier may be interrupted (EAGAIN): retry a few times, as libbpf does.
    let mut tries = 0;
    loop {
        // SAFETY: `insns` (insn_cnt repr(C) instructions laid out as struct bpf_insn),
        // LICENSE (a static NUL-terminated string) and the log buffer (log_size writable bytes,
        // exclusively borrowed) all outlive the call.
        match unsafe { sys_bpf(BPF_PROG_LOAD, &mut attr) } {
            Ok(fd) => {
                // SAFETY: a successful BPF_PROG_LOAD returns a new descriptor (O_CLOEXEC)
                // that nothing else owns.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
            }
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && tries < 5 => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // ---- a tiny interpreter for exactly the instructions `program` emits ----

    /// Run `prog` on `struct bpf_cgroup_dev_ctx` as the kernel fills it. Panics (like the
    /// verifier would refuse) on an unknown opcode, a read of an unset register, a context
    /// access other than an aligned u32 field, a backward or out-of-range jump, falling off
    /// the end, or a return value other than 0 and 1.
    fn run(prog: &[Insn], dev_type: i32, major: u32, minor: u32, access: u32) -> bool {
        let ctx = [(access << 16) | dev_type as u32, major, minor];
        let mut reg: [Option<u64>; 11] = [None; 11];
        let mut is_ctx = [false; 11];
        reg[1] = Some(0);
        is_ctx[1] = true;
        let scalar = |reg: &[Option<u64>; 11], is_ctx: &[bool; 11], r: u8, pc: usize| {
            let r = usize::from(r);
            assert!(!is_ctx[r], "insn {pc}: r{r} is the context pointer");
            reg[r].unwrap_or_else(|| panic!("insn {pc}: r{r} read before it is set"))
        };
        let mut pc = 0;
        // Jumps only go forward: at most one pass.
        for _ in 0..prog.len() {
            let insn = prog[pc];
            let (d, s) = (usize::from(insn.dst()), usize::from(insn.src()));
            let here = pc;
            pc += 1;
            let mut jump = |taken: bool| {
                if taken {
                    assert!(insn.off >= 0, "insn {here}: backward jump");
                    pc += insn.off as usize;
                }
                assert!(pc < prog.len(), "insn {here}: jump out of the program");
            };
            match insn.code {
                LDX_MEM_W => {
                    assert!(is_ctx[s], "insn {here}: load from a non-context register");
                    assert!(matches!(insn.off, 0 | 4 | 8), "insn {here}: bad ctx offset");
                    reg[d] = Some(u64::from(ctx[insn.off as usize / 4]));
                    is_ctx[d] = false;
                }
                ALU32_AND_K => {
                    let v = scalar(&reg, &is_ctx, insn.dst(), here) as u32 & insn.imm as u32;
                    reg[d] = Some(u64::from(v));
                }
                ALU32_RSH_K => {
                    assert!((0..32).contains(&insn.imm), "insn {here}: bad shift");
                    let v = scalar(&reg, &is_ctx, insn.dst(), here) as u32 >> insn.imm;
                    reg[d] = Some(u64::from(v));
                }
                ALU32_MOV_X => {
                    let v = scalar(&reg, &is_ctx, insn.src(), here) as u32;
                    reg[d] = Some(u64::from(v));
                    is_ctx[d] = false;
                }
                ALU64_MOV_K => {
                    reg[d] = Some(i64::from(insn.imm) as u64);
                    is_ctx[d] = false;
                }
                JMP32_JEQ_K => {
                    let v = scalar(&reg, &is_ctx, insn.dst(), here) as u32;
                    jump(v == insn.imm as u32);
                }
                JMP32_JNE_K => {
                    let v = scalar(&reg, &is_ctx, insn.dst(), here) as u32;
                    jump(v != insn.imm as u32);
                }
                EXIT => {
                    let r0 = scalar(&reg, &is_ctx, R0, here);
                    assert!(r0 <= 1, "insn {here}: returns {r0}");
                    return r0 == 1;
                }
                c => panic!("insn {here}: opcode {c:#04x} not in the subset"),
            }
            assert!(pc < prog.len(), "fell off the end after insn {here}");
        }
        panic!("no exit reached");
    }

    /// What the verifier's CFG pass checks: jumps in range and forward, no falling off the
    /// end, every instruction reachable.
    fn check_cfg(prog: &[Insn]) {
        let mut seen = vec![false; prog.len()];
        let mut todo = vec![0usize];
        while let Some(pc) = todo.pop() {
            if std::mem::replace(&mut seen[pc], true) {
                continue;
            }
            let insn = prog[pc];
            let mut next = Vec::new();
            match insn.code {
                EXIT => {}
                JMP32_JEQ_K | JMP32_JNE_K => {
                    assert!(insn.off >= 0, "insn {pc}: backward jump");
                    next.push(pc + 1);
                    next.push(pc + 1 + insn.off as usize);
                }
                _ => next.push(pc + 1),
            }
            for n in next {
                assert!(n < prog.len(), "insn {pc}: goes past the end");
                todo.push(n);
            }
        }
        if let Some(pc) = seen.iter().position(|s| !s) {
            panic!("insn {pc} is unreachable");
        }
    }

    /// The semantics, written directly on the rules.
    fn reference(rules: &[DeviceRule], dev_type: i32, major: u32, minor: u32, access: u32) -> bool {
        let mut undecided = access;
        for r in rules.iter().rev() {
            let kind_ok = match r.kind {
                Some('c') => dev_type == DEV_CHAR,
                Some('b') => dev_type == DEV_BLOCK,
                _ => true,
            };
            if !kind_ok
                || r.major.is_some_and(|m| m != major)
                || r.minor.is_some_and(|m| m != minor)
            {
                continue;
            }
            let bits = bits(&r.access);
            if bits == 0 {
                continue;
            }
            if r.allow {
                undecided &= !bits;
                if undecided == 0 {
                    return true;
                }
            } else if undecided & bits != 0 {
                return false;
            }
        }
        false
    }

    fn bits(access: &str) -> u32 {
        let mut b = 0;
        for c in access.chars() {
            b |= match c {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                'm' => ACC_MKNOD,
                _ => panic!("access {access:?}"),
            };
        }
        b
    }

    /// A rule from the v1 syntax: `c 1:3 rwm`, `a *:* m`; `!` in front for deny.
    fn rule(s: &str) -> DeviceRule {
        let (allow, s) = match s.strip_prefix('!') {
            Some(rest) => (false, rest),
            None => (true, s),
        };
        let mut it = s.split_whitespace();
        let kind = it.next().unwrap().chars().next().unwrap();
        let (major, minor) = it.next().unwrap().split_once(':').unwrap();
        let num = |n: &str| (n != "*").then(|| n.parse().unwrap());
        DeviceRule {
            allow,
            kind: (kind != 'a').then_some(kind),
            major: num(major),
            minor: num(minor),
            access: it.next().unwrap().to_string(),
        }
    }

    fn rules(list: &[&str]) -> Vec<DeviceRule> {
        list.iter().map(|s| rule(s)).collect()
    }

    /// The default device list of docker (and of our containers).
    fn docker_default() -> Vec<DeviceRule> {
        rules(&[
            "!a *:* rwm",
            "c *:* m",
            "b *:* m",
            "c 1:3 rwm",
            "c 1:5 rwm",
            "c 1:7 rwm",
            "c 1:8 rwm",
            "c 1:9 rwm",
            "c 5:0 rwm",
            "c 5:1 rwm",
            "c 5:2 rwm",
            "c 136:* rwm",
            "c 10:200 rwm",
        ])
    }

    /// Check `(request, allowed)` pairs, request like `c 1:3 rw`, against the program (run
    /// by the interpreter) and the reference.
    fn check(rules: &[DeviceRule], table: &[(&str, bool)]) {
        let prog = program(rules);
        check_cfg(&prog);
        for &(req, want) in table {
            let r = rule(req);
            let dev_type = if r.kind == Some('b') {
                DEV_BLOCK
            } else {
                DEV_CHAR
            };
            let (major, minor) = (r.major.unwrap(), r.minor.unwrap());
            let access = bits(&r.access);
            assert_eq!(
                run(&prog, dev_type, major, minor, access),
                want,
                "program on {req}"
            );
            assert_eq!(
                reference(rules, dev_type, major, minor, access),
                want,
                "reference on {req}"
            );
        }
    }

    #[test]
    fn device_filter_docker_default() {
        check(
            &docker_default(),
            &[
                ("c 1:3 r", true), // /dev/null
                ("c 1:3 w", true),
                ("c 1:3 rw", true),
                ("c 1:3 rwm", true),
                ("c 1:5 r", true), // /dev/zero
                ("b 254:0 r", false),
                ("b 254:0 rw", false),
                ("b 254:0 m", true), // mknod of any block node
                ("c 1:1 r", false),  // /dev/mem
                ("c 1:1 w", false),
                ("c 1:1 rm", false),
                ("c 1:1 m", true), // mknod of any char node
                ("c 136:4 rw", true),
                ("c 136:0 r", true),
                ("c 10:200 rw", true),
                ("c 10:229 rw", false), // /dev/fuse
                ("c 5:1 rw", true),
                ("c 4:1 r", false),
                ("c 1:2 r", false),
            ],
        );
    }

    #[test]
    fn device_filter_later_deny_overrides() {
        let mut list = docker_default();
        list.push(rule("!c 1:3 rwm"));
        list.push(rule("!c 136:* w"));
        check(
            &list,
            &[
                ("c 1:3 r", false),
                ("c 1:3 m", false), // the deny also covers m, after `c *:* m`
                ("c 1:5 r", true),
                ("c 1:1 m", true),
                ("c 136:2 r", true),
                ("c 136:2 w", false),
                ("c 136:2 rw", false), // O_RDWR asks for rw at once
                ("c 136:2 m", true),
            ],
        );
        // And an allow after that deny wins again.
        list.push(rule("c 1:3 r"));
        check(&list, &[("c 1:3 r", true), ("c 1:3 rw", false)]);
    }

    #[test]
    fn device_filter_empty_list_denies_everything() {
        let prog = program(&[]);
        check_cfg(&prog);
        for dev_type in [DEV_BLOCK, DEV_CHAR] {
            for access in 0..=ACC_ALL {
                assert!(!run(&prog, dev_type, 1, 3, access));
            }
        }
        // Rules that cannot match anything compile to the same program.
        let noop = vec![rule("c 1:3 r"), rule("!a *:* m")]
            .into_iter()
            .map(|mut r| {
                r.access.clear();
                r
            })
            .collect::<Vec<_>>();
        assert_eq!(program(&noop), prog);
    }

    #[test]
    fn device_filter_allow_all_and_shortcut() {
        let prog = program(&rules(&["!c 1:1 rwm", "a *:* rwm"]));
        check_cfg(&prog);
        // Prologue + the allow-all block; the deny before it is never reached, so not emitted.
        assert_eq!(prog.len(), 7 + 2, "{prog:?}");
        assert!(run(&prog, DEV_CHAR, 1, 1, ACC_READ));
        check(
            &rules(&["a *:* rwm", "!b *:* rwm", "!c 1:1 w"]),
            &[
                ("c 1:1 r", true),
                ("c 1:1 rw", false),
                ("c 1:3 rw", true),
                ("b 8:0 r", false),
                ("b 8:0 m", false),
            ],
        );
    }

    #[test]
    fn device_filter_access_bits_add_up() {
        // Two allows for separate bits of the same device allow both at once, as on v1.
        check(
            &rules(&["!a *:* rwm", "c 1:3 r", "c 1:3 w", "c 1:5 rw", "!c 1:5 r"]),
            &[
                ("c 1:3 rw", true),
                ("c 1:3 m", false),
                ("c 1:3 rwm", false),
                ("c 1:5 w", true),
                ("c 1:5 r", false),
                ("c 1:5 rw", false),
            ],
        );
    }

    #[test]
    fn device_filter_instruction_encoding() {
        let i = Insn::jne32(R_MAJOR, 0xffff_fff0);
        assert_eq!(i.dst(), 4);
        assert_eq!(i.src(), 0);
        assert_eq!(i.imm as u32, 0xffff_fff0);
        let m = Insn::mov32_reg(R_TMP, R_ACCESS);
        assert_eq!((m.dst(), m.src(), m.regs), (1, 3, 0x31));
        // Little-endian bpf_insn bytes of `r2 = *(u32 *)(r1 + 0)`.
        let l = Insn::load_u32(R_TYPE, R_CTX, 4);
        assert_eq!((l.code, l.regs, l.off), (0x61, 0x12, 4));
        // Majors and minors past i32::MAX still compare as their 32 bits.
        let prog = program(&rules(&["c 4294967295:0 r"]));
        assert!(run(&prog, DEV_CHAR, u32::MAX, 0, ACC_READ));
        assert!(!run(&prog, DEV_CHAR, u32::MAX - 1, 0, ACC_READ));
    }

    /// Random rule lists: the program agrees with the reference on every request over a small
    /// device space, and always passes the CFG check.
    #[test]
    fn device_filter_matches_reference_on_random_lists() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let majors = [1u32, 5, 9];
        let minors = [3u32, 7, 8];
        for _ in 0..2000 {
            let len = next(9);
            let list: Vec<DeviceRule> = (0..len)
                .map(|_| DeviceRule {
                    allow: next(2) == 0,
                    kind: [None, Some('c'), Some('b')][next(3) as usize],
                    major: [None, Some(1), Some(5)][next(3) as usize],
                    minor: [None, Some(3), Some(7)][next(3) as usize],
                    access: ["r", "w", "m"]
                        .into_iter()
                        .filter(|_| next(2) == 0)
                        .collect(),
                })
                .collect();
            let prog = program(&list);
            check_cfg(&prog);
            for dev_type in [DEV_BLOCK, DEV_CHAR] {
                for major in majors {
                    for minor in minors {
                        for access in 0..=ACC_ALL {
                            assert_eq!(
                                run(&prog, dev_type, major, minor, access),
                                reference(&list, dev_type, major, minor, access),
                                "{list:?} on type {dev_type} {major}:{minor} access {access}"
                            );
                        }
                    }
                }
            }
        }
    }

    // ---- on the real kernel ----

    const UNIFIED: &str = "/sys/fs/cgroup/unified";

    /// (attach flags, program ids) attached to the cgroup itself for BPF_CGROUP_DEVICE.
    fn query(cgroup: &Path) -> (u32, Vec<u32>) {
        let dir = open_cgroup(cgroup).unwrap();
        let mut ids = [0u32; 16];
        let mut attr = BpfAttr::zeroed();
        attr.prog_query = ProgQueryAttr {
            target_fd: fd_u32(&dir),
            attach_type: BPF_CGROUP_DEVICE,
            query_flags: 0,
            attach_flags: 0,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: ids.len() as u32,
            _pad: 0,
        };
        // SAFETY: prog_ids points to `prog_cnt` writable u32s that outlive the call.
        unsafe { sys_bpf(BPF_PROG_QUERY, &mut attr) }.unwrap();
        // SAFETY: the kernel filled the query member; any bit pattern is a valid u32.
        let (flags, cnt) = unsafe { (attr.prog_query.attach_flags, attr.prog_query.prog_cnt) };
        (flags, ids[..cnt as usize].to_vec())
    }

    /// Whether a program with this id still exists.
    fn prog_exists(id: u32) -> bool {
        let mut attr = BpfAttr::zeroed();
        attr.get_id = GetIdAttr {
            id,
            next_id: 0,
            open_flags: 0,
        };
        // SAFETY: BPF_PROG_GET_FD_BY_ID takes only integers.
        match unsafe { sys_bpf(BPF_PROG_GET_FD_BY_ID, &mut attr) } {
            Ok(fd) => {
                // SAFETY: a new descriptor that nothing else owns; closed right away.
                drop(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
                true
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => false,
            Err(e) => panic!("BPF_PROG_GET_FD_BY_ID {id}: {e}"),
        }
    }

    /// Kills whatever is in the cgroup and removes it on drop (also on panic).
    struct TestCgroup(PathBuf);

    impl Drop for TestCgroup {
        fn drop(&mut self) {
            for _ in 0..100 {
                let procs =
                    std::fs::read_to_string(self.0.join("cgroup.procs")).unwrap_or_default();
                for pid in procs
                    .split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok())
                {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                match std::fs::remove_dir(&self.0) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        std::thread::sleep(std::time::Duration::from_millis(20))
                    }
                    _ => return,
                }
            }
        }
    }

    /// A block device that we can open from outside the test cgroup: the first of
    /// /proc/partitions if it opens, else the first of /sys/block that does (on this VM
    /// something outside the device cgroup refuses root an open of /dev/vda; unbound
    /// /dev/loopN open fine and read 0 bytes).
    fn openable_block_device() -> PathBuf {
        use std::os::unix::fs::FileTypeExt;
        let partitions = std::fs::read_to_string("/proc/partitions").unwrap();
        let mut names: Vec<String> = partitions
            .lines()
            .skip(2)
            .filter_map(|l| l.split_whitespace().nth(3).map(str::to_string))
            .collect();
        let mut sys: Vec<String> = std::fs::read_dir("/sys/block")
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        sys.sort();
        names.extend(sys);
        names
            .into_iter()
            .map(|n| PathBuf::from("/dev").join(n))
            .find(|p| {
                let is_block = std::fs::metadata(p).is_ok_and(|m| m.file_type().is_block_device());
                let opens = std::fs::File::open(p).is_ok();
                if is_block && !opens {
                    eprintln!(
                        "{}: not openable outside the cgroup either, skipped",
                        p.display()
                    );
                }
                is_block && opens
            })
            .expect("no block device we can open")
    }

    #[test]
    #[ignore = "needs root on a hybrid host; attaches a BPF device program to a cgroup in /sys/fs/cgroup/unified"]
    fn device_filter_real_kernel() {
        assert!(nix::unistd::geteuid().is_root(), "needs root");
        let name = format!("isolab-devtest-{}", std::process::id());
        let cg = TestCgroup(Path::new(UNIFIED).join(&name));
        std::fs::create_dir(&cg.0).unwrap();

        attach(&cg.0, &docker_default()).unwrap();
        let (flags, ids) = query(&cg.0);
        assert_eq!((flags, ids.len()), (0, 1), "{ids:?}");
        let first = ids[0];
        // Flags 0: a second attach replaces the program instead of adding one or failing.
        attach(&cg.0, &docker_default()).unwrap();
        let (flags, ids) = query(&cg.0);
        assert_eq!((flags, ids.len()), (0, 1), "{ids:?}");
        assert_ne!(ids[0], first, "not replaced");
        let second = ids[0];
        // The replaced one is freed once nothing holds it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while prog_exists(first) {
            assert!(
                std::time::Instant::now() < deadline,
                "old program {first} lingers"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }

        // Outside the cgroup, the disk opens: the denial below is the filter's.
        let disk = openable_block_device();
        eprintln!("block device: {}", disk.display());

        let tmp = tempfile::tempdir().unwrap();
        let script = r#"
            echo 0 > "$1/cgroup.procs" || exit 90
            grep '^0::' /proc/self/cgroup
            echo "zero: $(head -c1 /dev/zero | wc -c)"
            echo x > /dev/null && echo "null: written"
            head -c1 "$2" > /dev/null 2>"$3/err"; echo "disk: $? $(cat "$3/err")"
            mknod "$3/mem" c 1 1 && echo "mknod c: ok"
            head -c1 "$3/mem" > /dev/null 2>"$3/err"; echo "mem: $? $(cat "$3/err")"
            mknod "$3/disk" b 254 0 2>"$3/err"; echo "mknod b: $? $(cat "$3/err")"
        "#;
        let out = std::process::Command::new("sh")
            .args(["-c", script, "sh"])
            .arg(&cg.0)
            .arg(&disk)
            .arg(tmp.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!("child stdout:\n{stdout}child stderr:\n{stderr}");
        assert!(out.status.success(), "{:?}", out.status);
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines[0], format!("0::/{name}"));
        assert_eq!(lines[1], "zero: 1");
        assert_eq!(lines[2], "null: written");
        assert!(lines[3].starts_with("disk: 1 "), "{}", lines[3]);
        assert!(lines[3].contains("Operation not permitted"), "{}", lines[3]);
        // mknod of any char node is allowed (`c *:* m`), opening /dev/mem's node is not.
        assert_eq!(lines[4], "mknod c: ok");
        assert!(lines[5].starts_with("mem: 1 "), "{}", lines[5]);
        assert!(lines[5].contains("Operation not permitted"), "{}", lines[5]);
        // `b *:* m` allows mknod of block nodes too.
        assert_eq!(lines[6], "mknod b: 0 ");

        // The program goes away with the cgroup.
        drop(cg);
        assert!(!Path::new(UNIFIED).join(&name).exists());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while prog_exists(second) {
            assert!(
                std::time::Instant::now() < deadline,
                "program {second} outlives its cgroup"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    #[test]
    #[ignore = "needs root; loads BPF programs"]
    fn device_filter_real_kernel_verifier_log() {
        // Returns 2: the verifier refuses it and says why.
        let bad = [Insn::mov64_imm(R0, 2), Insn::exit()];
        let err = load(&bad).unwrap_err();
        let msg = err.to_string();
        eprintln!("{msg}");
        assert!(
            matches!(&err, DeviceFilterError::Load { log, .. } if log.contains("R0")),
            "{msg}"
        );
        // A missing cgroup is a clear error.
        let err = attach(Path::new("/sys/fs/cgroup/unified/isolab-no-such"), &[]).unwrap_err();
        assert!(matches!(err, DeviceFilterError::OpenCgroup { .. }), "{err}");
        // Every program we generate for these lists passes the real verifier.
        for list in [
            Vec::new(),
            docker_default(),
            rules(&["a *:* rwm"]),
            rules(&["!a *:* rwm", "c 1:3 r", "!c 1:3 w"]),
        ] {
            load(&program(&list)).unwrap_or_else(|e| panic!("{list:?}: {e}"));
        }
    }
}
