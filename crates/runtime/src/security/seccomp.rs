//! Compiles an OCI `linux.seccomp` profile into a classic BPF program, in pure Rust.
//!
//! Layout of the program:
//!
//! ```text
//!   ld  arch            ; foreign architecture -> default action
//!   jeq AUDIT_ARCH, +1
//!   ret default
//!   ld  nr              ; x32 system calls -> default action
//!   jge 0x40000000, 0, +1
//!   ret default
//!   for each rule (in profile order; first match wins):
//!     jeq nr, 0, fail   ; + per-argument checks (64-bit, as hi/lo words) jumping to fail
//!     ret action
//!   fail: [ld nr]       ; only after rules whose checks overwrote the accumulator
//!   ret default
//! ```
//!
//! Rules naming system calls unknown on this architecture are skipped, as libseccomp does.

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompOperator};

use super::syscalls;
use crate::process::message::SetupError;

/// One BPF instruction (`struct sock_filter`).
pub type Instruction = libc::sock_filter;

const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JGT_K: u16 = 0x25;
const JGE_K: u16 = 0x35;
const AND_K: u16 = 0x54;
const RET_K: u16 = 0x06;

const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// The kernel's limit on filter length.
const MAX_INSTRUCTIONS: usize = 4096;

/// Where a conditional jump goes, resolved to a relative offset once a block is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The next instruction.
    Next,
    /// The end of the current argument check (it passed).
    CheckPassed,
    /// The rule does not match: go to the next rule.
    RuleFailed,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    code: u16,
    jt: Target,
    jf: Target,
    k: u32,
}

fn stmt(code: u16, k: u32) -> Pending {
    Pending {
        code,
        jt: Target::Next,
        jf: Target::Next,
        k,
    }
}

fn jump(code: u16, k: u32, jt: Target, jf: Target) -> Pending {
    Pending { code, jt, jf, k }
}

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> Instruction {
    Instruction { code, jt, jf, k }
}

fn profile_error(reason: impl Into<String>) -> SetupError {
    SetupError::SeccompProfile {
        reason: reason.into(),
    }
}

/// The instructions checking one argument condition; leaves the rule on failure.
fn arg_check(arg: &LinuxSeccompArg) -> Result<Vec<Pending>, SetupError> {
    use Target::{CheckPassed as Pass, Next, RuleFailed as Fail};
    if arg.index() > 5 {
        return Err(profile_error(format!(
            "argument index {} out of range",
            arg.index()
        )));
    }
    let lo_off = OFF_ARGS + 8 * arg.index() as u32;
    let hi_off = lo_off + 4;
    let v = arg.value();
    let (hi, lo) = ((v >> 32) as u32, v as u32);
    let ld_hi = stmt(LD_W_ABS, hi_off);
    let ld_lo = stmt(LD_W_ABS, lo_off);
    let seq = match arg.op() {
        LinuxSeccompOperator::ScmpCmpEq => vec![
            ld_hi,
            jump(JEQ_K, hi, Next, Fail),
            ld_lo,
            jump(JEQ_K, lo, Next, Fail),
        ],
        LinuxSeccompOperator::ScmpCmpNe => vec![
            ld_hi,
            jump(JEQ_K, hi, Next, Pass),
            ld_lo,
            jump(JEQ_K, lo, Fail, Next),
        ],
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            let d = arg.value_two().unwrap_or(0);
            vec![
                ld_hi,
                stmt(AND_K, hi),
                jump(JEQ_K, (d >> 32) as u32, Next, Fail),
                ld_lo,
                stmt(AND_K, lo),
                jump(JEQ_K, d as u32, Next, Fail),
            ]
        }
        LinuxSeccompOperator::ScmpCmpGt | LinuxSeccompOperator::ScmpCmpGe => {
            let last = if arg.op() == LinuxSeccompOperator::ScmpCmpGt {
                JGT_K
            } else {
                JGE_K
            };
            vec![
                ld_hi,
                jump(JGT_K, hi, Pass, Next),
                jump(JEQ_K, hi, Next, Fail),
                ld_lo,
                jump(last, lo, Next, Fail),
            ]
        }
        LinuxSeccompOperator::ScmpCmpLt | LinuxSeccompOperator::ScmpCmpLe => {
            // a < v  <=>  !(a >= v);  a <= v  <=>  !(a > v)
            let last = if arg.op() == LinuxSeccompOperator::ScmpCmpLt {
                JGE_K
            } else {
                JGT_K
            };
            vec![
                ld_hi,
                jump(JGE_K, hi, Next, Pass),
                jump(JEQ_K, hi, Next, Fail),
                ld_lo,
                jump(last, lo, Fail, Next),
            ]
        }
    };
    Ok(seq)
}

/// Compiles a profile to BPF for this architecture.
pub fn compile(profile: &LinuxSeccomp) -> Result<Vec<Instruction>, SetupError> {
    let default = action_value(profile.default_action(), profile.default_errno_ret())?;
    let mut prog = vec![
        insn(LD_W_ABS, 0, 0, OFF_ARCH),
        insn(JEQ_K, 1, 0, syscalls::AUDIT_ARCH),
        insn(RET_K, 0, 0, default),
        insn(LD_W_ABS, 0, 0, OFF_NR),
        insn(JGE_K, 0, 1, X32_SYSCALL_BIT),
        insn(RET_K, 0, 0, default),
    ];
    for rule in profile.syscalls().iter().flatten() {
        let action = action_value(rule.action(), rule.errno_ret())?;
        if action == default && rule.args().as_ref().is_none_or(|a| a.is_empty()) {
            continue;
        }
        for name in rule.names() {
            let Some(nr) = syscalls::number(name) else {
                continue;
            };
            prog.extend(rule_block(
                nr,
                action,
                rule.args().as_deref().unwrap_or_default(),
            )?);
        }
    }
    prog.push(insn(RET_K, 0, 0, default));
    if prog.len() > MAX_INSTRUCTIONS {
        return Err(profile_error(format!(
            "{} BPF instructions exceed the kernel's limit of {MAX_INSTRUCTIONS}",
            prog.len()
        )));
    }
    Ok(prog)
}

/// One rule: `jeq nr`, its argument checks, `ret action`, and (if the checks overwrote the
/// accumulator) a reload of the system call number where failures land.
fn rule_block(
    nr: u32,
    action: u32,
    args: &[LinuxSeccompArg],
) -> Result<Vec<Instruction>, SetupError> {
    let mut block: Vec<(Pending, usize)> =
        vec![(jump(JEQ_K, nr, Target::Next, Target::RuleFailed), 0)];
    for arg in args {
        let seq = arg_check(arg)?;
        let len = seq.len();
        // Remember, for each instruction, how far the end of its check is.
        block.extend(seq.into_iter().enumerate().map(|(i, p)| (p, len - i - 1)));
    }
    block.push((stmt(RET_K, action), 0));
    let reload = !args.is_empty();
    if reload {
        block.push((stmt(LD_W_ABS, OFF_NR), 0));
    }
    let fail_at = if reload { block.len() - 1 } else { block.len() };
    let mut out = Vec::with_capacity(block.len());
    for (i, (p, to_check_end)) in block.iter().enumerate() {
        let resolve = |t: Target| -> Result<u8, SetupError> {
            let off = match t {
                Target::Next => 0,
                Target::CheckPassed => *to_check_end,
                Target::RuleFailed => fail_at - i - 1,
            };
            u8::try_from(off).map_err(|_| profile_error("rule too long for a BPF jump"))
        };
        out.push(insn(p.code, resolve(p.jt)?, resolve(p.jf)?, p.k));
    }
    Ok(out)
}

/// The `SECCOMP_RET_*` value of an action.
fn action_value(action: LinuxSeccompAction, errno: Option<u32>) -> Result<u32, SetupError> {
    match action {
        LinuxSeccompAction::ScmpActNotify => Err(profile_error(
            "SCMP_ACT_NOTIFY needs a listener, which berth does not provide",
        )),
        a => Ok(a.as_u32(errno.map(|e| e & 0xffff))),
    }
}

/// Loads a compiled program on the calling thread.
pub fn load(program: &[Instruction]) -> Result<(), SetupError> {
    crate::sys::install_seccomp(program).map_err(|errno| SetupError::SeccompLoad {
        errno: errno.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxSeccompArgBuilder, LinuxSeccompBuilder, LinuxSyscallBuilder};

    fn arg(op: LinuxSeccompOperator, value: u64, two: Option<u64>) -> LinuxSeccompArg {
        let b = LinuxSeccompArgBuilder::default()
            .index(0usize)
            .value(value)
            .op(op);
        match two {
            Some(t) => b.value_two(t).build().unwrap(),
            None => b.build().unwrap(),
        }
    }

    /// Runs the program over a fake `seccomp_data` (a tiny BPF interpreter for the
    /// instructions we emit), so the compiler is tested without installing anything.
    fn run(prog: &[Instruction], nr: u32, arg0: u64) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_le_bytes());
        data[4..8].copy_from_slice(&syscalls::AUDIT_ARCH.to_le_bytes());
        data[16..24].copy_from_slice(&arg0.to_le_bytes());
        let (mut pc, mut a) = (0usize, 0u32);
        loop {
            let i = prog[pc];
            let jmp = |cond: bool| pc + 1 + if cond { i.jt } else { i.jf } as usize;
            pc = match i.code {
                LD_W_ABS => {
                    let o = i.k as usize;
                    a = u32::from_le_bytes(data[o..o + 4].try_into().unwrap());
                    pc + 1
                }
                AND_K => {
                    a &= i.k;
                    pc + 1
                }
                JEQ_K => jmp(a == i.k),
                JGT_K => jmp(a > i.k),
                JGE_K => jmp(a >= i.k),
                RET_K => return i.k,
                c => panic!("unexpected opcode {c:#x}"),
            };
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn allow_list_with_argument_conditions() {
        use LinuxSeccompOperator::*;
        let rules = vec![
            LinuxSyscallBuilder::default()
                .names(vec!["read".to_owned(), "no_such_call".to_owned()])
                .action(LinuxSeccompAction::ScmpActAllow)
                .build()
                .unwrap(),
            LinuxSyscallBuilder::default()
                .names(vec!["socket".to_owned()])
                .action(LinuxSeccompAction::ScmpActAllow)
                .args(vec![arg(ScmpCmpLt, 38, None)])
                .build()
                .unwrap(),
            LinuxSyscallBuilder::default()
                .names(vec!["socket".to_owned()])
                .action(LinuxSeccompAction::ScmpActAllow)
                .args(vec![arg(ScmpCmpGt, 40, None)])
                .build()
                .unwrap(),
            LinuxSyscallBuilder::default()
                .names(vec!["clone".to_owned()])
                .action(LinuxSeccompAction::ScmpActAllow)
                .args(vec![arg(ScmpCmpMaskedEq, 0x7E02_0000, Some(0))])
                .build()
                .unwrap(),
            LinuxSyscallBuilder::default()
                .names(vec!["personality".to_owned()])
                .action(LinuxSeccompAction::ScmpActAllow)
                .args(vec![arg(ScmpCmpNe, 0xffff_ffff, None)])
                .build()
                .unwrap(),
            LinuxSyscallBuilder::default()
                .names(vec!["clone3".to_owned()])
                .action(LinuxSeccompAction::ScmpActErrno)
                .errno_ret(38u32)
                .build()
                .unwrap(),
        ];
        let profile = LinuxSeccompBuilder::default()
            .default_action(LinuxSeccompAction::ScmpActErrno)
            .default_errno_ret(1u32)
            .syscalls(rules)
            .build()
            .unwrap();
        let prog = compile(&profile).unwrap();
        let (allow, eperm) = (0x7fff_0000, 0x0005_0001);
        assert_eq!(run(&prog, 0, 0), allow); // read
        assert_eq!(run(&prog, 1, 0), eperm); // write: not listed
        assert_eq!(run(&prog, 41, 2), allow); // socket(AF_INET)
        assert_eq!(run(&prog, 41, 40), eperm); // socket(AF_VSOCK)
        assert_eq!(run(&prog, 41, 44), allow);
        assert_eq!(run(&prog, 41, 1 << 32), allow); // high word decides: > 40
        assert_eq!(run(&prog, 56, 0x11), allow); // clone(SIGCHLD)
        assert_eq!(run(&prog, 56, 0x2000_0000), eperm); // clone(CLONE_NEWPID)
        assert_eq!(run(&prog, 135, 0), allow);
        assert_eq!(run(&prog, 135, 0xffff_ffff), eperm);
        assert_eq!(run(&prog, 435, 0), 0x0005_0026); // clone3 -> ENOSYS
        assert_eq!(run(&prog, X32_SYSCALL_BIT, 0), eperm);
    }

    #[test]
    fn notify_is_refused() {
        let profile = LinuxSeccompBuilder::default()
            .default_action(LinuxSeccompAction::ScmpActNotify)
            .build()
            .unwrap();
        assert!(matches!(
            compile(&profile),
            Err(SetupError::SeccompProfile { .. })
        ));
    }
}
