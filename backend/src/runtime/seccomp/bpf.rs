//! A small classic-BPF assembler: the handful of instructions a seccomp filter needs, with
//! labels instead of offsets.
//!
//! Classic BPF jumps only forward, and a conditional jump reaches at most 255 instructions
//! ahead. [`Asm::assemble`] lays the program out, finds the conditional jumps whose target is
//! too far, rewrites each as a short test in front of an unconditional `ja` (32-bit offset), and
//! repeats until nothing moves (lengths only grow, so it ends).

use libc::sock_filter;

// Instruction classes and fields, from <linux/bpf_common.h>.
const BPF_LD: u16 = 0x00;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_AND: u16 = 0x50;
const BPF_K: u16 = 0x00;
const BPF_JA: u16 = 0x00;
const BPF_JEQ: u16 = 0x10;
const BPF_JGT: u16 = 0x20;
const BPF_JGE: u16 = 0x30;

/// `ld [k]`: a 32-bit word of `struct seccomp_data`.
pub const LD_ABS: u16 = BPF_LD | BPF_W | BPF_ABS;
/// `and #k`.
pub const AND_K: u16 = BPF_ALU | BPF_AND | BPF_K;
/// `ja +k`.
pub const JA: u16 = BPF_JMP | BPF_JA;
/// `ret #k`.
pub const RET_K: u16 = BPF_RET | BPF_K;

/// The kernel refuses longer programs (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

/// A place in the program, fixed once [`Asm::mark`]ed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label(usize);

/// What a conditional jump compares the accumulator with (an unsigned 32-bit comparison).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    Eq,
    Gt,
    Ge,
}

impl Cond {
    fn code(self) -> u16 {
        BPF_JMP
            | BPF_K
            | match self {
                Cond::Eq => BPF_JEQ,
                Cond::Gt => BPF_JGT,
                Cond::Ge => BPF_JGE,
            }
    }

    /// The comparison on known values (for words known in advance, such as the upper half of
    /// an argument on a 32-bit ABI).
    pub fn holds(self, a: u32, k: u32) -> bool {
        match self {
            Cond::Eq => a == k,
            Cond::Gt => a > k,
            Cond::Ge => a >= k,
        }
    }

    /// Decode a conditional jump's opcode (for the interpreter in the tests).
    #[cfg(test)]
    pub fn from_code(code: u16) -> Option<Cond> {
        [Cond::Eq, Cond::Gt, Cond::Ge]
            .into_iter()
            .find(|c| c.code() == code)
    }
}

#[derive(Debug)]
enum Item {
    Stmt(u16, u32),
    Jump {
        cond: Cond,
        k: u32,
        jt: Label,
        jf: Label,
    },
    Goto(Label),
    Mark(Label),
}

/// Why a program could not be laid out (a bug in the compiler, or a program too long).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AsmError {
    #[error("label {0} is used but never placed")]
    Unplaced(usize),
    #[error("label {0} is placed twice")]
    PlacedTwice(usize),
    #[error("a jump goes backwards to label {0}")]
    Backwards(usize),
    #[error("the program has {0} instructions, more than the kernel's {MAX_INSNS}")]
    TooLong(usize),
}

/// The program being written: items in order, labels to be resolved.
#[derive(Debug, Default)]
pub struct Asm {
    items: Vec<Item>,
    labels: usize,
}

impl Asm {
    pub fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    /// Place `label` here: jumps to it land on the next instruction written.
    pub fn mark(&mut self, label: Label) {
        self.items.push(Item::Mark(label));
    }

    pub fn load(&mut self, offset: u32) {
        self.items.push(Item::Stmt(LD_ABS, offset));
    }

    pub fn and(&mut self, k: u32) {
        self.items.push(Item::Stmt(AND_K, k));
    }

    pub fn ret(&mut self, k: u32) {
        self.items.push(Item::Stmt(RET_K, k));
    }

    /// `if (A cond k) goto jt; else goto jf;`
    pub fn jump(&mut self, cond: Cond, k: u32, jt: Label, jf: Label) {
        self.items.push(Item::Jump { cond, k, jt, jf });
    }

    pub fn goto(&mut self, target: Label) {
        self.items.push(Item::Goto(target));
    }

    /// Resolve the labels into offsets, widening the jumps that cannot reach.
    pub fn assemble(self) -> Result<Vec<sock_filter>, AsmError> {
        // Per conditional jump: does its true / false side need an unconditional `ja`?
        let mut far = vec![(false, false); self.items.len()];
        let Layout { at, place } = loop {
            let layout = self.layout(&far)?;
            let (at, place) = (&layout.at, &layout.place);
            let mut grew = false;
            for (i, item) in self.items.iter().enumerate() {
                let Item::Jump { jt, jf, .. } = item else {
                    continue;
                };
                let reach =
                    |l: &Label| place[l.0].is_some_and(|t| t.saturating_sub(at[i] + 1) > 255);
                let wanted = (far[i].0 || reach(jt), far[i].1 || reach(jf));
                if wanted != far[i] {
                    far[i] = wanted;
                    grew = true;
                }
            }
            if !grew {
                break layout;
            }
        };
        let offset = |from: usize, to: &Label| -> Result<u32, AsmError> {
            let target = place[to.0].ok_or(AsmError::Unplaced(to.0))?;
            if target < from {
                return Err(AsmError::Backwards(to.0));
            }
            Ok((target - from) as u32)
        };
        let short = |from: usize, to: &Label| -> Result<u8, AsmError> {
            // The layout loop made every short side fit.
            Ok(offset(from, to)? as u8)
        };
        let mut out = Vec::with_capacity(at.last().copied().unwrap_or(0) + 3);
        for (i, item) in self.items.iter().enumerate() {
            let p = at[i];
            match item {
                Item::Stmt(code, k) => out.push(insn(*code, 0, 0, *k)),
                Item::Mark(_) => {}
                Item::Goto(to) => out.push(insn(JA, 0, 0, offset(p + 1, to)?)),
                Item::Jump { cond, k, jt, jf } => match far[i] {
                    (false, false) => {
                        out.push(insn(cond.code(), short(p + 1, jt)?, short(p + 1, jf)?, *k))
                    }
                    (true, false) => {
                        out.push(insn(cond.code(), 0, short(p + 1, jf)?, *k));
                        out.push(insn(JA, 0, 0, offset(p + 2, jt)?));
                    }
                    (false, true) => {
                        out.push(insn(cond.code(), short(p + 1, jt)?, 0, *k));
                        out.push(insn(JA, 0, 0, offset(p + 2, jf)?));
                    }
                    (true, true) => {
                        out.push(insn(cond.code(), 0, 1, *k));
                        out.push(insn(JA, 0, 0, offset(p + 2, jt)?));
                        out.push(insn(JA, 0, 0, offset(p + 3, jf)?));
                    }
                },
            }
        }
        if out.len() > MAX_INSNS {
            return Err(AsmError::TooLong(out.len()));
        }
        Ok(out)
    }

    /// Where each item and each label lands, given which jumps are widened.
    fn layout(&self, far: &[(bool, bool)]) -> Result<Layout, AsmError> {
        let mut at = Vec::with_capacity(self.items.len());
        let mut place = vec![None; self.labels];
        let mut pos = 0;
        for (i, item) in self.items.iter().enumerate() {
            at.push(pos);
            pos += match item {
                Item::Mark(l) => {
                    if place[l.0].replace(pos).is_some() {
                        return Err(AsmError::PlacedTwice(l.0));
                    }
                    0
                }
                Item::Jump { .. } => 1 + far[i].0 as usize + far[i].1 as usize,
                Item::Stmt(..) | Item::Goto(_) => 1,
            };
        }
        Ok(Layout { at, place })
    }
}

/// Where each item starts, and where each label was placed (if it was).
struct Layout {
    at: Vec<usize>,
    place: Vec<Option<usize>>,
}

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}
