//! linux.seccomp to BPF, with seccompiler's compiler, and the hand-off of
//! a user-notification listener to `listenerPath`.
//!
//! seccompiler gives each filter one match action, while an OCI profile
//! gives each rule its own. rrun therefore compiles one filter per distinct
//! non-default action (its rules -> that action, anything else -> allow)
//! plus one default filter (every rule's syscall -> allow, anything else ->
//! defaultAction) and loads them all. The kernel runs every loaded filter
//! and takes the most restrictive answer (kill, then trap, errno, notify,
//! trace, log, allow), which is the profile's meaning for the profiles
//! engines ship. Unknown syscall names are skipped with a warning, as runc
//! does.
//!
//! Architectures: seccompiler knows only x86_64's table and builds one
//! architecture's filter, so rrun takes from it the rule chains only, one
//! per architecture (numbers from the `syscalls` crate's x86_64 and i386
//! tables), and puts its own small dispatch in front ([`assemble`]): the
//! architecture first, then, on x86_64, the x32 bit (x32 numbers are
//! x86_64 numbers | 0x40000000: killed unless SCMP_ARCH_X32 is listed,
//! then matched by the x86_64 rules), then in the default filter the
//! ENOSYS boundary (a syscall newer than every one the profile names gets
//! ENOSYS, as with runc, so libc falls back). i386 (int 0x80, 32-bit
//! programs) has its own section when SCMP_ARCH_X86 is listed; any other
//! architecture is killed.
//!
//! SCMP_ACT_NOTIFY: every notify rule (or a notify defaultAction) lands in
//! one filter, because a process may load only one filter with a listener.
//! seccompiler 0.5 cannot express SECCOMP_RET_USER_NOTIF, so that filter is
//! compiled with a stand-in action whose return instructions are then
//! rewritten ([`rewrite_notify_returns`]). It is loaded on its own with
//! SECCOMP_FILTER_FLAG_NEW_LISTENER ([`load_listener`]); the process
//! module hands the listener to the rrun parent, which sends it to
//! `listenerPath` with the container process state ([`send_to_listener`]).

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use seccompiler::{BpfProgram, TargetArch};
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("linux.seccomp: {0}")]
    Unsupported(String),
    #[error("linux.seccomp: compiling the filter: {0}")]
    Compile(String),
    #[error("linux.seccomp: a filter has {0} instructions, over the kernel's limit of 4096")]
    TooLarge(usize),
    #[error("linux.seccomp.listenerPath {path}: {msg}")]
    Listener { path: String, msg: String },
}

/// Compiled filters, in load order, and the seccomp(2) flags.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub programs: Vec<BpfProgram>,
    pub flags: u32,
    /// Index in `programs` of the filter that answers SCMP_ACT_NOTIFY
    /// (SECCOMP_RET_USER_NOTIF): loaded by [`load_listener`], never by
    /// [`load`].
    pub listener: Option<usize>,
}

const EPERM: u32 = 1;

const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
const SECCOMP_RET_TRACE: u32 = 0x7ff0_0000;
const BPF_RET_K: u16 = 0x06; // BPF_RET | BPF_K
/// The data of the stand-in action the notify filter is compiled with
/// (seccompiler's `trace`). Only that filter is rewritten, and its only
/// other returns are allow, the default action and the prefix's kill and
/// ENOSYS, so the value cannot be mistaken for a profile's own
/// SCMP_ACT_TRACE.
const NOTIFY_STANDIN_DATA: u32 = 0x4e54;
const NOTIFY_STANDIN: u32 = SECCOMP_RET_TRACE | NOTIFY_STANDIN_DATA;

const FLAG_TSYNC: u32 = 1;
const FLAG_LOG: u32 = 2;
const FLAG_SPEC_ALLOW: u32 = 4;
const FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;

/// A rule's action: seccompiler JSON, or notify, which seccompiler cannot
/// express (and which must never be confused with a real trace action).
#[derive(Debug, Clone, PartialEq)]
enum Action {
    Compiler(Value),
    Notify,
}

impl Action {
    fn to_json(&self) -> Value {
        match self {
            Action::Compiler(v) => v.clone(),
            Action::Notify => json!({"trace": NOTIFY_STANDIN_DATA}),
        }
    }

    fn key(&self) -> String {
        match self {
            Action::Compiler(v) => v.to_string(),
            Action::Notify => "notify".into(),
        }
    }

    fn is_allow(&self) -> bool {
        *self == Action::Compiler(json!("allow"))
    }
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Action {
    use LinuxSeccompAction as A;
    Action::Compiler(match a {
        A::ScmpActKill | A::ScmpActKillThread => json!("kill_thread"),
        A::ScmpActKillProcess => json!("kill_process"),
        A::ScmpActTrap => json!("trap"),
        A::ScmpActErrno => json!({"errno": errno.unwrap_or(EPERM)}),
        A::ScmpActTrace => json!({"trace": errno.unwrap_or(EPERM)}),
        A::ScmpActLog => json!("log"),
        A::ScmpActAllow => json!("allow"),
        A::ScmpActNotify => return Action::Notify,
    })
}

/// Whether the profile uses SCMP_ACT_NOTIFY (as defaultAction or in a rule).
pub fn uses_notify(s: &LinuxSeccomp) -> bool {
    s.default_action() == LinuxSeccompAction::ScmpActNotify
        || s.syscalls()
            .iter()
            .flatten()
            .any(|sc| sc.action() == LinuxSeccompAction::ScmpActNotify)
}

fn condition(index: usize, op: LinuxSeccompOperator, value: u64, value_two: Option<u64>) -> Value {
    use LinuxSeccompOperator as O;
    let (op, val) = match op {
        O::ScmpCmpNe => (json!("ne"), value),
        O::ScmpCmpLt => (json!("lt"), value),
        O::ScmpCmpLe => (json!("le"), value),
        O::ScmpCmpEq => (json!("eq"), value),
        O::ScmpCmpGe => (json!("ge"), value),
        O::ScmpCmpGt => (json!("gt"), value),
        // libseccomp's MASKED_EQ: (arg & value) == valueTwo.
        O::ScmpCmpMaskedEq => (json!({"masked_eq": value}), value_two.unwrap_or(0)),
    };
    json!({"index": index, "type": "qword", "op": op, "val": val})
}

/// seccompiler's JSON for one filter per action (see the module comment).
/// The one filter that notifies, if any, is the one whose name ends in
/// `-notify`.
pub fn filters_json(s: &LinuxSeccomp, skip: &[String]) -> Result<Value, SeccompError> {
    let default = action(s.default_action(), s.default_errno_ret());
    let mut groups: BTreeMap<String, (Action, Vec<Value>)> = BTreeMap::new();
    let mut all = Vec::new();
    for sc in s.syscalls().as_deref().unwrap_or_default() {
        let act = action(sc.action(), sc.errno_ret());
        if act == default {
            continue;
        }
        let args = sc.args().as_deref().unwrap_or_default();
        for a in args {
            if a.index() > 5 {
                return Err(SeccompError::Unsupported(format!(
                    "argument index {} is over 5",
                    a.index()
                )));
            }
        }
        // Conditions on distinct arguments are ANDed in one rule; several
        // conditions on the same argument become one rule each (ORed), as
        // runc translates them for libseccomp.
        let mut idx: Vec<usize> = args.iter().map(|a| a.index()).collect();
        idx.sort_unstable();
        let repeated = idx.windows(2).any(|w| w[0] == w[1]);
        let conds: Vec<Value> = args
            .iter()
            .map(|a| condition(a.index(), a.op(), a.value(), a.value_two()))
            .collect();
        let cond_sets: Vec<Vec<Value>> = if repeated {
            conds.into_iter().map(|c| vec![c]).collect()
        } else {
            vec![conds]
        };
        for name in sc.names() {
            if skip.contains(name) {
                continue;
            }
            for cs in &cond_sets {
                let rule = if cs.is_empty() {
                    json!({"syscall": name})
                } else {
                    json!({"syscall": name, "args": cs})
                };
                all.push(rule.clone());
                groups
                    .entry(act.key())
                    .or_insert_with(|| (act.clone(), Vec::new()))
                    .1
                    .push(rule);
            }
        }
    }
    let suffix = |a: &Action| {
        if *a == Action::Notify { "-notify" } else { "" }
    };
    let mut out = serde_json::Map::new();
    for (i, (_, (act, rules))) in groups.into_iter().enumerate() {
        if act.is_allow() {
            continue;
        }
        out.insert(
            format!("{i:03}-action{}", suffix(&act)),
            json!({"mismatch_action": "allow", "match_action": act.to_json(), "filter": rules}),
        );
    }
    if !default.is_allow() {
        out.insert(
            format!("999-default{}", suffix(&default)),
            json!({"mismatch_action": default.to_json(), "match_action": "allow", "filter": all}),
        );
    }
    Ok(Value::Object(out))
}

/// Turns the stand-in returns of the notify filter into
/// SECCOMP_RET_USER_NOTIF. Only `ret #k` instructions whose k is exactly
/// the stand-in change: a jump comparing an argument with the same number
/// has another opcode and is left alone. Returns how many were rewritten.
pub fn rewrite_notify_returns(prog: &mut [seccompiler::sock_filter]) -> usize {
    let mut n = 0;
    for insn in prog.iter_mut() {
        if insn.code == BPF_RET_K && insn.k == NOTIFY_STANDIN {
            insn.k = SECCOMP_RET_USER_NOTIF;
            n += 1;
        }
    }
    n
}

fn flags(s: &LinuxSeccomp) -> u32 {
    s.flags()
        .iter()
        .flatten()
        .map(|f| match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            // Applies to the notify filter only (see load_listener).
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => FLAG_WAIT_KILLABLE_RECV,
        })
        .fold(0, |a, b| a | b)
}

/// An architecture a filter has a section for. x32 has none of its own:
/// it enters the x86_64 table with [`X32_SYSCALL_BIT`] set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arch {
    X86_64,
    I386,
}

/// `AUDIT_ARCH_*` of linux/audit.h: EM_X86_64 | 64BIT | LE, EM_386 | LE.
const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;
/// x32 syscalls are x86_64 syscalls with this bit in the number
/// (arch/x86/include/uapi/asm/unistd.h).
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const ENOSYS: u32 = 38;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
/// The kernel's limit on one filter (BPF_MAXINSNS).
const MAX_INSNS: usize = 4096;

impl Arch {
    fn audit(self) -> u32 {
        match self {
            Arch::X86_64 => AUDIT_ARCH_X86_64,
            Arch::I386 => AUDIT_ARCH_I386,
        }
    }

    /// The syscall number of `name` in this architecture's table.
    fn number(self, name: &str) -> Option<u32> {
        use std::str::FromStr;
        match self {
            Arch::X86_64 => syscalls::x86_64::Sysno::from_str(name).ok().map(|n| n.id()),
            Arch::I386 => syscalls::x86::Sysno::from_str(name).ok().map(|n| n.id()),
        }
        .and_then(|n| u32::try_from(n).ok())
    }
}

/// Which architectures the filters accept: the native one always (as
/// libseccomp does), i386 and x32 when the profile lists them. Anything
/// else, and x32 numbers when x32 is not listed, is killed: a filter keyed
/// on x86_64 numbers must never see another table's numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Arches {
    sections: Vec<Arch>,
    x32: bool,
}

impl Arches {
    fn of(s: &LinuxSeccomp) -> Arches {
        use oci_spec::runtime::Arch as A;
        let listed = s.architectures().as_deref().unwrap_or_default();
        let mut sections = vec![Arch::X86_64];
        if listed.contains(&A::ScmpArchX86) {
            sections.push(Arch::I386);
        }
        Arches {
            sections,
            x32: listed.contains(&A::ScmpArchX32),
        }
    }
}

/// Syscall names of the profile the native table does not have. Engines'
/// profiles list every architecture's names (dozens unknown on x86_64);
/// they are skipped and reported at debug level, as runc does.
fn log_unknown_names(s: &LinuxSeccomp) {
    let mut names: Vec<&String> = s
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|sc| sc.names())
        .filter(|n| Arch::X86_64.number(n).is_none())
        .collect();
    names.sort();
    names.dedup();
    for n in names {
        crate::log::debug(&format!("seccomp: unknown syscall {n:?} skipped"));
    }
}

/// The highest syscall number of `arch` that the profile names, in any
/// rule: a syscall above it is newer than the profile (or no syscall at
/// all) and gets ENOSYS instead of the default action, so that libc and
/// Go fall back to an older call (clone3 -> clone, openat2 -> openat), as
/// runc does since 1.0.
fn newest_named(s: &LinuxSeccomp, arch: Arch) -> Option<u32> {
    s.syscalls()
        .iter()
        .flatten()
        .flat_map(|sc| sc.names())
        .filter_map(|n| arch.number(n))
        .max()
}

/// Whether the default action denies (kill, trap, errno): only then do
/// syscalls newer than the profile get ENOSYS instead, as with runc.
fn enosys_boundary(s: &LinuxSeccomp) -> bool {
    use LinuxSeccompAction as A;
    matches!(
        s.default_action(),
        A::ScmpActKill
            | A::ScmpActKillThread
            | A::ScmpActKillProcess
            | A::ScmpActTrap
            | A::ScmpActErrno
    )
}

fn seccompiler_action(v: &Value) -> Result<seccompiler::SeccompAction, SeccompError> {
    use seccompiler::SeccompAction as S;
    let bad = || SeccompError::Compile(format!("unexpected action {v}"));
    let num = |k: &str| {
        v.get(k)
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    };
    Ok(match v.as_str() {
        Some("allow") => S::Allow,
        Some("kill_thread") => S::KillThread,
        Some("kill_process") => S::KillProcess,
        Some("trap") => S::Trap,
        Some("log") => S::Log,
        Some(_) => return Err(bad()),
        None => match (num("errno"), num("trace")) {
            (Some(e), None) => S::Errno(e),
            (None, Some(t)) => S::Trace(t),
            _ => return Err(bad()),
        },
    })
}

fn seccompiler_condition(
    v: &Value,
    arch: Arch,
) -> Result<seccompiler::SeccompCondition, SeccompError> {
    use seccompiler::{SeccompCmpArgLen as L, SeccompCmpOp as O};
    let bad = || SeccompError::Compile(format!("unexpected condition {v}"));
    let index = v["index"].as_u64().ok_or_else(bad)? as u8;
    let val = v["val"].as_u64().ok_or_else(bad)?;
    let op = match &v["op"] {
        Value::String(o) => match o.as_str() {
            "ne" => O::Ne,
            "lt" => O::Lt,
            "le" => O::Le,
            "eq" => O::Eq,
            "ge" => O::Ge,
            "gt" => O::Gt,
            _ => return Err(bad()),
        },
        o => O::MaskedEq(o["masked_eq"].as_u64().ok_or_else(bad)?),
    };
    // i386 arguments are 32 bits wide (the kernel zero-extends them), so
    // only the low half is compared, as libseccomp does for 32-bit arches.
    let (len, val, op) = match (arch, op) {
        (Arch::X86_64, op) => (L::Qword, val, op),
        (Arch::I386, O::MaskedEq(m)) => (L::Dword, val & 0xffff_ffff, O::MaskedEq(m & 0xffff_ffff)),
        (Arch::I386, op) => (L::Dword, val & 0xffff_ffff, op),
    };
    seccompiler::SeccompCondition::new(index, len, op, val)
        .map_err(|e| SeccompError::Compile(e.to_string()))
}

/// One filter of [`filters_json`] for one architecture: its instructions
/// after the syscall number is loaded (seccompiler's own architecture
/// check and load are left out: [`assemble`] does both). Names this
/// architecture does not have are skipped.
fn section_body(f: &Value, arch: Arch) -> Result<Vec<seccompiler::sock_filter>, SeccompError> {
    let err = |e: seccompiler::BackendError| SeccompError::Compile(e.to_string());
    let mut rules: BTreeMap<i64, Vec<seccompiler::SeccompRule>> = BTreeMap::new();
    let mut unconditional = std::collections::BTreeSet::new();
    for r in f["filter"].as_array().into_iter().flatten() {
        let Some(nr) = r["syscall"].as_str().and_then(|n| arch.number(n)) else {
            continue;
        };
        let conds = r["args"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| seccompiler_condition(c, arch))
            .collect::<Result<Vec<_>, _>>()?;
        // No condition: the syscall matches whatever its arguments, which
        // seccompiler spells as an empty chain; another rule for the same
        // syscall with conditions then adds nothing.
        if conds.is_empty() {
            unconditional.insert(nr);
        }
        let chain = rules.entry(i64::from(nr)).or_default();
        if unconditional.contains(&nr) {
            chain.clear();
        } else {
            chain.push(seccompiler::SeccompRule::new(conds).map_err(err)?);
        }
    }
    let filter = seccompiler::SeccompFilter::new(
        rules,
        seccompiler_action(&f["mismatch_action"])?,
        seccompiler_action(&f["match_action"])?,
        TargetArch::x86_64,
    )
    .map_err(err)?;
    let prog: BpfProgram = filter.try_into().map_err(err)?;
    // [ld arch; jeq; ret kill] then, unless there are no rules, [ld nr].
    let mut body = prog[3..].to_vec();
    if body.first().is_some_and(|i| *i == ld(DATA_NR)) {
        body.remove(0);
    }
    Ok(body)
}

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JA: u16 = 0x05;
const BPF_JMP_JEQ_K: u16 = 0x15;
const BPF_JMP_JGT_K: u16 = 0x25;
const BPF_JMP_JSET_K: u16 = 0x45;
const BPF_ALU_AND_K: u16 = 0x54;
/// Offsets in struct seccomp_data.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> seccompiler::sock_filter {
    seccompiler::sock_filter { code, jt, jf, k }
}

fn ld(offset: u32) -> seccompiler::sock_filter {
    insn(BPF_LD_W_ABS, 0, 0, offset)
}

fn ret(k: u32) -> seccompiler::sock_filter {
    insn(BPF_RET_K, 0, 0, k)
}

/// One filter for every architecture the profile accepts:
///
/// ```text
///     ld arch; for each section: jeq AUDIT_ARCH_x, then ja to it
///     ret KILL_PROCESS                      (an architecture not listed)
/// x86_64: ld nr
///     jset X32_BIT: ret KILL_PROCESS       (x32 not listed), or
///     and ~X32_BIT                          (x32 listed: the same rules)
///     [jgt newest: ret ERRNO(ENOSYS)]       (the default filter only)
///     body
/// i386: ld nr; [jgt newest: ret ERRNO(ENOSYS)]; body
/// ```
///
/// The architecture is checked before anything looks at the number: the
/// same number is another syscall in another table.
fn assemble(
    sections: &[(Arch, Vec<seccompiler::sock_filter>, Option<u32>)],
    x32: bool,
) -> Result<BpfProgram, SeccompError> {
    let mut prefixes = Vec::new();
    for (arch, _, newest) in sections {
        let mut p = vec![ld(DATA_NR)];
        if *arch == Arch::X86_64 {
            if x32 {
                p.push(insn(BPF_ALU_AND_K, 0, 0, !X32_SYSCALL_BIT));
            } else {
                p.push(insn(BPF_JMP_JSET_K, 0, 1, X32_SYSCALL_BIT));
                p.push(ret(SECCOMP_RET_KILL_PROCESS));
            }
        }
        if let Some(n) = newest {
            p.push(insn(BPF_JMP_JGT_K, 0, 1, *n));
            p.push(ret(SECCOMP_RET_ERRNO | ENOSYS));
        }
        prefixes.push(p);
    }
    let dispatch_len = 1 + 2 * sections.len() + 1;
    let mut out = vec![ld(DATA_ARCH)];
    let mut start = dispatch_len;
    for (i, (arch, body, _)) in sections.iter().enumerate() {
        out.push(insn(BPF_JMP_JEQ_K, 0, 1, arch.audit()));
        let ja_at = out.len();
        out.push(insn(BPF_JMP_JA, 0, 0, (start - ja_at - 1) as u32));
        start += prefixes[i].len() + body.len();
    }
    out.push(ret(SECCOMP_RET_KILL_PROCESS));
    for (p, (_, body, _)) in prefixes.into_iter().zip(sections) {
        out.extend(p);
        out.extend_from_slice(body);
    }
    if out.len() >= MAX_INSNS {
        return Err(SeccompError::TooLarge(out.len()));
    }
    Ok(out)
}

/// Compiles the profile. Unknown syscall names are dropped (debug log).
pub fn compile(s: &LinuxSeccomp) -> Result<Compiled, SeccompError> {
    log_unknown_names(s);
    let doc = filters_json(s, &[])?;
    let arches = Arches::of(s);
    let mut keys: Vec<&String> = doc
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    keys.sort();
    let mut programs = Vec::new();
    let mut listener = None;
    for k in keys {
        let f = &doc[k];
        // Only the default filter denies what the profile does not name,
        // and only a denying default gets the ENOSYS boundary: a log,
        // trace or notify default hands a new syscall to whoever watches
        // (a tracer or agent emulates it, or answers ENOSYS itself).
        let is_default = k.starts_with("999-default") && enosys_boundary(s);
        let sections = arches
            .sections
            .iter()
            .map(|a| {
                let newest = if is_default {
                    newest_named(s, *a)
                } else {
                    None
                };
                Ok((*a, section_body(f, *a)?, newest))
            })
            .collect::<Result<Vec<_>, SeccompError>>()?;
        let notify = k.ends_with("-notify");
        let mut p = match assemble(&sections, arches.x32) {
            // Two architectures' rules may not fit in one filter: then one
            // filter per architecture, each allowing the other's syscalls
            // (the other filter decides them). Not the notify filter: a
            // process gets one listener.
            Err(SeccompError::TooLarge(_)) if sections.len() > 1 && !notify => {
                for i in 0..sections.len() {
                    let own: Vec<_> = sections
                        .iter()
                        .enumerate()
                        .map(|(j, sec)| {
                            if i == j {
                                sec.clone()
                            } else {
                                (sec.0, vec![ret(SECCOMP_RET_ALLOW)], None)
                            }
                        })
                        .collect();
                    programs.push(assemble(&own, arches.x32)?);
                }
                continue;
            }
            other => other?,
        };
        if notify {
            if rewrite_notify_returns(&mut p) == 0 {
                return Err(SeccompError::Compile(
                    "the notify filter has no notify return".into(),
                ));
            }
            listener = Some(programs.len());
        }
        programs.push(p);
    }
    Ok(Compiled {
        programs,
        flags: flags(s),
        listener,
    })
}

/// Loads the compiled filters into the calling process, all but the notify
/// filter, which [`load_listener`] loads.
pub fn load(c: &Compiled) -> Result<(), nix::Error> {
    for (i, p) in c.programs.iter().enumerate() {
        if Some(i) == c.listener {
            continue;
        }
        // The kernel refuses WAIT_KILLABLE_RECV without a listener.
        crate::sys::seccomp_load(p, c.flags & !FLAG_WAIT_KILLABLE_RECV)?;
    }
    Ok(())
}

/// Loads the notify filter with a listener and returns the listener fd;
/// None when the profile does not notify. TSYNC is dropped for it: with a
/// listener the kernel takes TSYNC only with TSYNC_ESRCH, and the process
/// loading it is single-threaded, so there is no thread to synchronise.
pub fn load_listener(c: &Compiled) -> Result<Option<OwnedFd>, nix::Error> {
    let Some(p) = c.listener.and_then(|i| c.programs.get(i)) else {
        return Ok(None);
    };
    crate::sys::seccomp_load_listener(p, c.flags & !FLAG_TSYNC).map(Some)
}

/// The container process state of config-linux.md ("The Container Process
/// State") for a listener fd sent as the only SCM_RIGHTS fd.
pub fn process_state(s: &LinuxSeccomp, pid: i32, state: Value) -> Value {
    let mut v = json!({
        "ociVersion": crate::spec::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "state": state,
    });
    if let Some(m) = s.listener_metadata() {
        v["metadata"] = json!(m);
    }
    v
}

/// How long connecting to and sending on `listenerPath` may block (an
/// agent that does not accept, a full socket buffer).
const LISTENER_TIMEOUT_SECS: i64 = 10;

/// True for a seccomp user-notification fd (the kernel names its anon
/// inode "seccomp notify").
fn is_notify_fd(fd: &impl AsFd) -> bool {
    let link = format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd());
    std::fs::read_link(link).is_ok_and(|t| t.as_os_str() == "anon_inode:seccomp notify")
}

/// Sends the listener `fd` of process `pid` to `linux.seccomp.listenerPath`
/// with the container process state: one connection, one state, closed
/// after sending, as the spec asks. `state` is the container's state JSON.
pub fn send_to_listener(
    s: &LinuxSeccomp,
    pid: i32,
    state: Value,
    fd: &impl AsFd,
) -> Result<(), SeccompError> {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, UnixAddr, connect, setsockopt, socket, sockopt,
    };
    let path = s.listener_path().as_deref().unwrap_or(Path::new(""));
    let err = |what: &str, e: nix::Error| SeccompError::Listener {
        path: path.display().to_string(),
        msg: format!("{what}: {}", e.desc()),
    };
    let data = serde_json::to_vec(&process_state(s, pid, state))
        .expect("the container process state serialises: plain JSON");
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| err("socket", e))?;
    // SO_SNDTIMEO also bounds a unix connect waiting for backlog room.
    let t = nix::sys::time::TimeVal::new(LISTENER_TIMEOUT_SECS, 0);
    setsockopt(&sock, sockopt::SendTimeout, &t).map_err(|e| err("SO_SNDTIMEO", e))?;
    let addr = UnixAddr::new(path).map_err(|e| err("address", e))?;
    connect(sock.as_raw_fd(), &addr).map_err(|e| err("connect", e))?;
    // The fd came over the sync channel from a process in the container:
    // whatever reached the parent, the agent only ever gets a listener.
    if !is_notify_fd(fd) {
        return Err(SeccompError::Listener {
            path: path.display().to_string(),
            msg: "the fd handed over is not a seccomp listener".into(),
        });
    }
    // The fd goes with the first bytes; a stream may take the rest in
    // further sends (the spec allows several, fds in the first only).
    let mut sent = crate::sys::send_with_fd(&sock, &data, fd).map_err(|e| err("sendmsg", e))?;
    while sent < data.len() {
        match nix::sys::socket::send(
            sock.as_raw_fd(),
            &data[sent..],
            nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
        ) {
            Ok(n) => sent += n,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(err("send", e)),
        }
    }
    Ok(())
}

/// Where compiled filters are cached: a root-only system cache (FHS
/// /var/cache), shared by every state root. None for unprivileged users,
/// who compile every time.
pub fn cache_dir() -> Option<std::path::PathBuf> {
    nix::unistd::geteuid()
        .is_root()
        .then(|| std::path::PathBuf::from("/var/cache/rrun/seccomp"))
}

/// [`compile`] through the cache, when there is one.
pub fn compile_with_cache(s: &LinuxSeccomp) -> Result<Compiled, SeccompError> {
    match cache_dir() {
        Some(dir) => compile_cached(s, &dir),
        None => compile(s),
    }
}

/// A cache entry: the programs as raw instructions, the flags, the index
/// of the notify filter.
type CacheEntry = (Vec<Vec<(u16, u8, u8, u32)>>, u32, Option<usize>);
const CACHE_FORMAT: &[u8] = b"rrun-seccomp-cache-3\n";

/// [`compile`] through a cache of compiled filters in `dir`, keyed by the
/// SHA-256 of the profile: engines pass the same profile on every create
/// and exec, and compiling podman's takes tens of milliseconds. A missing,
/// unreadable or corrupt entry is simply compiled again.
pub fn compile_cached(s: &LinuxSeccomp, dir: &std::path::Path) -> Result<Compiled, SeccompError> {
    use sha2::{Digest, Sha256};
    // The entry format is part of the key: a binary that stores another
    // shape never reads (and rewrites) this one's entries.
    let mut key = CACHE_FORMAT.to_vec();
    // So are the syscall tables: a profile's newest named syscall (the
    // ENOSYS boundary) and which names are skipped depend on them.
    key.extend(
        format!(
            "x86_64={} i386={}\n",
            syscalls::x86_64::Sysno::last().id(),
            syscalls::x86::Sysno::last().id()
        )
        .as_bytes(),
    );
    key.extend(serde_json::to_vec(s).map_err(|e| SeccompError::Compile(e.to_string()))?);
    let hash: String = Sha256::digest(&key)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = dir.join(format!("{hash}.json"));
    if let Ok(data) = std::fs::read(&path)
        && let Ok((programs, flags, listener)) = serde_json::from_slice::<CacheEntry>(&data)
        && listener.is_none_or(|i| i < programs.len())
    {
        let programs = programs
            .into_iter()
            .map(|p| {
                p.into_iter()
                    .map(|(code, jt, jf, k)| seccompiler::sock_filter { code, jt, jf, k })
                    .collect()
            })
            .collect();
        return Ok(Compiled {
            programs,
            flags,
            listener,
        });
    }
    let c = compile(s)?;
    let raw: Vec<Vec<(u16, u8, u8, u32)>> = c
        .programs
        .iter()
        .map(|p| p.iter().map(|f| (f.code, f.jt, f.jf, f.k)).collect())
        .collect();
    if std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .is_ok()
        && let Ok(data) = serde_json::to_vec(&(raw, c.flags, c.listener))
    {
        let _ = crate::state::write_atomic(&path, &data);
    }
    Ok(c)
}

/// The filter flags rrun passes on, by their OCI names.
const KNOWN_FLAGS: [(&str, u32); 4] = [
    ("SECCOMP_FILTER_FLAG_TSYNC", FLAG_TSYNC),
    ("SECCOMP_FILTER_FLAG_LOG", FLAG_LOG),
    ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", FLAG_SPEC_ALLOW),
    (
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        FLAG_WAIT_KILLABLE_RECV,
    ),
];

/// What `rrun features` reports. supportedFlags are the known flags this
/// kernel accepts (WAIT_KILLABLE_RECV needs Linux 6.0, and is probed with
/// the listener flag it requires).
pub fn features() -> Value {
    const NEW_LISTENER: u32 = 1 << 3;
    let supported: Vec<&str> = KNOWN_FLAGS
        .iter()
        .filter(|(_, f)| {
            let probe = if *f == FLAG_WAIT_KILLABLE_RECV {
                f | NEW_LISTENER
            } else {
                *f
            };
            crate::sys::seccomp_flags_supported(probe)
        })
        .map(|(n, _)| *n)
        .collect();
    json!({
        "enabled": true,
        "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
                    "SCMP_ACT_TRAP"],
        "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                      "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
        "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
        "knownFlags": KNOWN_FLAGS.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        "supportedFlags": supported,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(j: &str) -> LinuxSeccomp {
        serde_json::from_str(j).unwrap()
    }

    #[test]
    fn allowlist_profile() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
                {"names":["read","write"],"action":"SCMP_ACT_ALLOW"},
                {"names":["clone3"],"action":"SCMP_ACT_ERRNO","errnoRet":38},
                {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"}]},
                {"names":["no_such_syscall"],"action":"SCMP_ACT_ALLOW"}]}"#,
        );
        let j = filters_json(&p, &[]).unwrap();
        let def = &j["999-default"];
        assert_eq!(def["mismatch_action"], json!({"errno": 1}));
        assert_eq!(def["filter"].as_array().unwrap().len(), 5);
        assert_eq!(j.as_object().unwrap().len(), 2, "default + errno 38");
        let c = compile(&p).unwrap();
        assert_eq!(c.programs.len(), 2);
    }

    #[test]
    fn blocklist_and_masked_eq() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG"],"syscalls":[
                {"names":["mkdir"],"action":"SCMP_ACT_ERRNO"},
                {"names":["clone"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":2080505856,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#,
        );
        let j = filters_json(&p, &[]).unwrap();
        assert!(j.get("999-default").is_none());
        let rules = j.as_object().unwrap().values().next().unwrap()["filter"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(
            rules[1]["args"][0]["op"],
            json!({"masked_eq": 2080505856u64})
        );
        let c = compile(&p).unwrap();
        assert_eq!((c.programs.len(), c.flags), (1, 2));
    }

    #[test]
    fn cache_returns_the_same_programs() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"}]}"#,
        );
        let tmp = tempfile::tempdir().unwrap();
        let a = compile_cached(&p, tmp.path()).unwrap();
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
        let b = compile_cached(&p, tmp.path()).unwrap();
        assert_eq!(a.programs, b.programs);
        assert_eq!(a.flags, b.flags);
        // A corrupt entry is recompiled, not trusted.
        let entry = std::fs::read_dir(tmp.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        std::fs::write(&entry, b"garbage").unwrap();
        assert_eq!(compile_cached(&p, tmp.path()).unwrap().programs, a.programs);
    }

    /// The notify profile of the tests below: notify rules (one comparing
    /// an argument with the stand-in's own number), a trace rule whose
    /// data is the stand-in's, and rules of other actions.
    fn notify_profile() -> LinuxSeccomp {
        profile(&format!(
            r#"{{"defaultAction":"SCMP_ACT_ERRNO","flags":["SECCOMP_FILTER_FLAG_TSYNC","SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "listenerPath":"/run/agent.sock","syscalls":[
                {{"names":["read","write","sendmsg"],"action":"SCMP_ACT_ALLOW"}},
                {{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_NOTIFY"}},
                {{"names":["chmod"],"action":"SCMP_ACT_NOTIFY","args":[{{"index":1,"value":{NOTIFY_STANDIN},"op":"SCMP_CMP_EQ"}}]}},
                {{"names":["getcwd"],"action":"SCMP_ACT_TRACE","errnoRet":{NOTIFY_STANDIN_DATA}}},
                {{"names":["uname"],"action":"SCMP_ACT_ERRNO","errnoRet":5}}]}}"#
        ))
    }

    fn rets(p: &[seccompiler::sock_filter], k: u32) -> usize {
        p.iter().filter(|i| i.code == BPF_RET_K && i.k == k).count()
    }

    #[test]
    fn notify_rules_compile_into_one_listener_filter() {
        let c = compile(&notify_profile()).unwrap();
        // errno(5), notify, trace, default (errno EPERM).
        assert_eq!(c.programs.len(), 4);
        let l = c.listener.expect("a notify filter");
        for (i, p) in c.programs.iter().enumerate() {
            assert_eq!(rets(p, SECCOMP_RET_USER_NOTIF) > 0, i == l, "filter {i}");
        }
        assert_eq!(rets(&c.programs[l], NOTIFY_STANDIN), 0, "all rewritten");
        // getcwd's own SCMP_ACT_TRACE with the stand-in's data is a real
        // trace, in another filter, and stays one.
        let traced: Vec<usize> = (0..c.programs.len())
            .filter(|i| rets(&c.programs[*i], NOTIFY_STANDIN) > 0)
            .collect();
        assert_eq!(traced.len(), 1, "{traced:?}");
        assert_ne!(traced[0], l);
        // mkdir, mkdirat and chmod (with its argument) each return notify.
        assert!(rets(&c.programs[l], SECCOMP_RET_USER_NOTIF) >= 3);
        assert_eq!(
            c.flags,
            FLAG_TSYNC | FLAG_WAIT_KILLABLE_RECV,
            "flags kept; load/load_listener pick per filter"
        );
    }

    #[test]
    fn rewrite_changes_every_notify_return_and_nothing_else() {
        let j = filters_json(&notify_profile(), &[]).unwrap();
        let key = j
            .as_object()
            .unwrap()
            .keys()
            .find(|k| k.ends_with("-notify"))
            .expect("one notify filter")
            .clone();
        assert_eq!(
            j.as_object()
                .unwrap()
                .keys()
                .filter(|k| k.ends_with("-notify"))
                .count(),
            1
        );
        let one = json!({ &key: j[&key] });
        let mut map =
            seccompiler::compile_from_json(one.to_string().as_bytes(), TargetArch::x86_64).unwrap();
        let before = map.remove(&key).unwrap();
        let mut after = before.clone();
        let n = rewrite_notify_returns(&mut after);
        assert_eq!(n, rets(&before, NOTIFY_STANDIN));
        assert!(n >= 3, "mkdir, mkdirat, chmod: {n}");
        assert_eq!(before.len(), after.len());
        for (b, a) in before.iter().zip(&after) {
            if b.code == BPF_RET_K && b.k == NOTIFY_STANDIN {
                assert_eq!(
                    (a.code, a.jt, a.jf, a.k),
                    (b.code, b.jt, b.jf, SECCOMP_RET_USER_NOTIF)
                );
            } else {
                assert_eq!((a.code, a.jt, a.jf, a.k), (b.code, b.jt, b.jf, b.k));
            }
        }
        assert_eq!(rets(&after, NOTIFY_STANDIN), 0);
        // chmod's argument comparison carries the same number, untouched.
        assert!(
            after
                .iter()
                .any(|i| i.code != BPF_RET_K && i.k == NOTIFY_STANDIN),
            "the argument comparison is not a return"
        );
        // A second pass finds nothing left to rewrite.
        assert_eq!(rewrite_notify_returns(&mut after), 0);
    }

    #[test]
    fn notify_default_action_is_the_listener_filter() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_NOTIFY","listenerPath":"/run/a.sock","syscalls":[
                {"names":["sendmsg","read"],"action":"SCMP_ACT_ALLOW"},
                {"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"},
                {"names":["uname"],"action":"SCMP_ACT_ERRNO"}]}"#,
        );
        let j = filters_json(&p, &[]).unwrap();
        let keys: Vec<&String> = j.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert!(
            keys.contains(&&"999-default-notify".to_string()),
            "{keys:?}"
        );
        // mkdir's rule is the default's own action: not a rule of its own.
        assert_eq!(
            j["999-default-notify"]["filter"].as_array().unwrap().len(),
            3
        );
        let c = compile(&p).unwrap();
        assert_eq!(c.listener, Some(1));
        assert!(rets(&c.programs[1], SECCOMP_RET_USER_NOTIF) >= 1);
        assert_eq!(rets(&c.programs[0], SECCOMP_RET_USER_NOTIF), 0);
    }

    #[test]
    fn profiles_without_notify_have_no_listener() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getcwd"],"action":"SCMP_ACT_TRACE","errnoRet":19956}]}"#,
        );
        let c = compile(&p).unwrap();
        assert_eq!(c.listener, None);
        assert!(!uses_notify(&p));
        assert!(uses_notify(&notify_profile()));
        assert!(
            c.programs
                .iter()
                .all(|p| rets(p, SECCOMP_RET_USER_NOTIF) == 0)
        );
    }

    #[test]
    fn cache_keeps_the_listener_index() {
        let tmp = tempfile::tempdir().unwrap();
        let a = compile_cached(&notify_profile(), tmp.path()).unwrap();
        let b = compile_cached(&notify_profile(), tmp.path()).unwrap();
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
        assert_eq!((a.programs, a.listener), (b.programs, b.listener));
        assert!(b.listener.is_some());
    }

    #[test]
    fn container_process_state_shape() {
        let state = json!({"ociVersion": "1.2.1", "id": "c1", "status": "creating", "pid": 42});
        let with = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/a","listenerMetadata":"m=1"}"#,
        );
        let v = process_state(&with, 42, state.clone());
        assert_eq!(v["fds"], json!(["seccompFd"]));
        assert_eq!(
            (v["pid"].clone(), v["metadata"].clone()),
            (json!(42), json!("m=1"))
        );
        assert_eq!(v["state"], state);
        assert_eq!(v["ociVersion"], json!(crate::spec::OCI_VERSION));
        let without = profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/a"}"#);
        assert!(process_state(&without, 42, state).get("metadata").is_none());
    }

    #[test]
    fn listener_errors_name_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("nobody.sock");
        let p = profile(&format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"{}"}}"#,
            path.display()
        ));
        let fd = std::fs::File::open("/dev/null").unwrap();
        let e = send_to_listener(&p, 1, json!({}), &fd)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&path.display().to_string()) && e.contains("connect"),
            "{e}"
        );
        assert_eq!(e.lines().count(), 1, "{e}");
    }

    #[test]
    fn only_a_seccomp_listener_reaches_the_agent() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("agent.sock");
        let agent = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let p = profile(&format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"{}"}}"#,
            path.display()
        ));
        let fd = std::fs::File::open("/dev/null").unwrap();
        let e = send_to_listener(&p, 1, json!({}), &fd)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a seccomp listener"), "{e}");
        // Connected, then closed with nothing sent.
        let (mut conn, _) = agent.accept().unwrap();
        let mut got = Vec::new();
        std::io::Read::read_to_end(&mut conn, &mut got).unwrap();
        assert!(got.is_empty(), "the agent got {got:?}");
    }

    /// What the kernel's classic BPF interpreter would return for one
    /// syscall (the subset of opcodes rrun's filters use).
    fn run(p: &[seccompiler::sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let word = |off: u32| -> u32 {
            match off {
                0 => nr,
                4 => arch,
                8 | 12 => 0, // instruction pointer
                o => {
                    let a = args[((o - 16) / 8) as usize];
                    if (o - 16) % 8 == 0 {
                        a as u32
                    } else {
                        (a >> 32) as u32
                    }
                }
            }
        };
        let (mut pc, mut a) = (0usize, 0u32);
        loop {
            let i = &p[pc];
            pc += 1;
            let jump = |c: bool| if c { i.jt as usize } else { i.jf as usize };
            match i.code {
                0x20 => a = word(i.k),
                0x54 => a &= i.k,
                0x05 => pc += i.k as usize,
                0x15 => pc += jump(a == i.k),
                0x25 => pc += jump(a > i.k),
                0x35 => pc += jump(a >= i.k),
                0x45 => pc += jump(a & i.k != 0),
                0x06 => return i.k,
                c => panic!("opcode {c:#x} at {}", pc - 1),
            }
        }
    }

    /// The most restrictive answer of all filters, as the kernel picks it.
    fn verdict(c: &Compiled, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        c.programs
            .iter()
            .map(|p| run(p, arch, nr, args))
            .min_by_key(|r| {
                // KILL_PROCESS sorts first, then by action (lower is stricter).
                if r & 0xffff_0000 == SECCOMP_RET_KILL_PROCESS {
                    0
                } else {
                    1 + (r & 0x7fff_0000) as u64
                }
            })
            .expect("at least one filter")
    }

    const I386: u32 = AUDIT_ARCH_I386;
    const X64: u32 = AUDIT_ARCH_X86_64;
    const ALLOW: u32 = 0x7fff_0000;
    const KILL: u32 = SECCOMP_RET_KILL_PROCESS;
    const fn errno(e: u32) -> u32 {
        SECCOMP_RET_ERRNO | e
    }

    fn arch_profile(arches: &str) -> LinuxSeccomp {
        profile(&format!(
            r#"{{"defaultAction":"SCMP_ACT_ERRNO","architectures":[{arches}],"syscalls":[
                {{"names":["read","write","getpid","close"],"action":"SCMP_ACT_ALLOW"}},
                {{"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{{"index":0,"value":8,"op":"SCMP_CMP_EQ"}}]}},
                {{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":18}}]}}"#
        ))
    }

    #[test]
    fn native_only_kills_i386_and_x32() {
        let c = compile(&arch_profile(r#""SCMP_ARCH_X86_64""#)).unwrap();
        let z = [0; 6];
        assert_eq!(verdict(&c, X64, 39, z), ALLOW, "getpid");
        assert_eq!(verdict(&c, X64, 83, z), errno(18), "mkdir");
        assert_eq!(verdict(&c, X64, 57, z), errno(EPERM), "fork: default");
        assert_eq!(verdict(&c, I386, 20, z), KILL, "i386 getpid");
        // x32 getpid, and x32 mkdir: never the x86_64 rule's answer.
        assert_eq!(verdict(&c, X64, 39 | X32_SYSCALL_BIT, z), KILL);
        assert_eq!(verdict(&c, X64, 83 | X32_SYSCALL_BIT, z), KILL);
        // No architectures at all: the native one.
        let c = compile(&profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#)).unwrap();
        assert_eq!(verdict(&c, X64, 83, z), errno(EPERM));
        assert_eq!(
            verdict(&c, X64, 83 | X32_SYSCALL_BIT, z),
            KILL,
            "blocklist bypass via x32"
        );
        assert_eq!(verdict(&c, I386, 39, z), KILL, "i386 mkdir is 39");
    }

    #[test]
    fn listed_i386_gets_its_own_numbers() {
        let c = compile(&arch_profile(r#""SCMP_ARCH_X86_64","SCMP_ARCH_X86""#)).unwrap();
        let z = [0; 6];
        // i386: getpid 20, mkdir 39, fork 2, personality 136.
        assert_eq!(verdict(&c, I386, 20, z), ALLOW);
        assert_eq!(verdict(&c, I386, 39, z), errno(18));
        assert_eq!(verdict(&c, I386, 2, z), errno(EPERM));
        assert_eq!(verdict(&c, I386, 136, [8, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(verdict(&c, I386, 136, [0, 0, 0, 0, 0, 0]), errno(EPERM));
        // x86_64's 39 is getpid, and stays allowed.
        assert_eq!(verdict(&c, X64, 39, z), ALLOW);
        assert_eq!(
            verdict(&c, X64, 39 | X32_SYSCALL_BIT, z),
            KILL,
            "x32 still off"
        );
        let c = compile(&arch_profile(r#""SCMP_ARCH_X86_64","SCMP_ARCH_X32""#)).unwrap();
        assert_eq!(
            verdict(&c, X64, 39 | X32_SYSCALL_BIT, z),
            ALLOW,
            "x32 getpid"
        );
        assert_eq!(
            verdict(&c, X64, 83 | X32_SYSCALL_BIT, z),
            errno(18),
            "x32 mkdir"
        );
        assert_eq!(verdict(&c, I386, 20, z), KILL, "i386 not listed");
        // Architectures the host cannot run are accepted and mean nothing.
        let c = compile(&arch_profile(r#""SCMP_ARCH_AARCH64","SCMP_ARCH_ARM""#)).unwrap();
        assert_eq!(verdict(&c, X64, 39, z), ALLOW);
        assert_eq!(verdict(&c, I386, 20, z), KILL);
    }

    #[test]
    fn syscalls_newer_than_the_profile_get_enosys() {
        let c = compile(&arch_profile(
            r#""SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32""#,
        ))
        .unwrap();
        let z = [0; 6];
        // The newest name is personality (135 on x86_64, 136 on i386).
        assert_eq!(verdict(&c, X64, 135, [8, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(verdict(&c, X64, 135, z), errno(EPERM), "named: default");
        assert_eq!(verdict(&c, X64, 134, z), errno(EPERM), "older: default");
        for nr in [136, 435, 437, 1000, X32_SYSCALL_BIT - 1] {
            assert_eq!(verdict(&c, X64, nr, z), errno(ENOSYS), "x86_64 {nr}");
        }
        assert_eq!(
            verdict(&c, X64, 437 | X32_SYSCALL_BIT, z),
            errno(ENOSYS),
            "x32 openat2"
        );
        assert_eq!(verdict(&c, I386, 137, z), errno(ENOSYS), "i386");
        assert_eq!(verdict(&c, I386, 135, z), errno(EPERM), "i386 older");
        // A rule that names a new syscall moves the boundary: the profile
        // knows it, so it gets the profile's answer.
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_KILL_PROCESS","syscalls":[
                {"names":["read"],"action":"SCMP_ACT_ALLOW"},
                {"names":["openat2"],"action":"SCMP_ACT_KILL_PROCESS"}]}"#,
        );
        let c = compile(&p).unwrap();
        assert_eq!(verdict(&c, X64, 437, z), KILL);
        assert_eq!(
            verdict(&c, X64, 436, z),
            KILL,
            "close_range: older than openat2"
        );
        assert_eq!(verdict(&c, X64, 439, z), errno(ENOSYS), "faccessat2");
        // A notify, trace or log default leaves new syscalls to the agent.
        for def in ["SCMP_ACT_NOTIFY", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"] {
            let p = profile(&format!(
                r#"{{"defaultAction":"{def}","listenerPath":"/a","syscalls":[{{"names":["sendmsg"],"action":"SCMP_ACT_ALLOW"}}]}}"#
            ));
            let c = compile(&p).unwrap();
            assert_ne!(verdict(&c, X64, 47, z), errno(ENOSYS), "{def}: recvmsg");
            assert_ne!(verdict(&c, X64, 1000, z), errno(ENOSYS), "{def}");
        }
        // A blocklist allows what it does not name, new or not.
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#,
        );
        assert_eq!(verdict(&compile(&p).unwrap(), X64, 437, z), ALLOW);
    }

    #[test]
    fn too_large_for_one_filter_splits_by_architecture() {
        // Every x86_64 name, allowed only with its first argument 7: about
        // ten instructions a syscall, too many for both architectures in
        // one filter.
        let names: Vec<&str> = syscalls::x86_64::Sysno::iter().map(|n| n.name()).collect();
        let p = profile(&format!(
            r#"{{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
                "syscalls":[{{"names":{},"action":"SCMP_ACT_ALLOW","args":[{{"index":0,"value":7,"op":"SCMP_CMP_EQ"}}]}}]}}"#,
            serde_json::to_string(&names).unwrap()
        ));
        let c = compile(&p).unwrap();
        assert_eq!(c.programs.len(), 2, "one per architecture");
        assert!(c.programs.iter().all(|p| p.len() < MAX_INSNS));
        let seven = [7, 0, 0, 0, 0, 0];
        assert_eq!(verdict(&c, X64, 39, seven), ALLOW);
        assert_eq!(verdict(&c, X64, 39, [0; 6]), errno(EPERM));
        assert_eq!(verdict(&c, I386, 20, seven), ALLOW);
        assert_eq!(verdict(&c, I386, 20, [0; 6]), errno(EPERM));
        assert_eq!(verdict(&c, X64, 39 | X32_SYSCALL_BIT, seven), KILL);
        assert_eq!(verdict(&c, X64, 1000, seven), errno(ENOSYS));
        assert_eq!(
            verdict(&c, 0xdead, 1, seven),
            KILL,
            "an unknown architecture"
        );
    }

    #[test]
    fn cache_key_covers_the_architectures() {
        let tmp = tempfile::tempdir().unwrap();
        let a = compile_cached(&arch_profile(r#""SCMP_ARCH_X86_64""#), tmp.path()).unwrap();
        let b = compile_cached(
            &arch_profile(r#""SCMP_ARCH_X86_64","SCMP_ARCH_X86""#),
            tmp.path(),
        )
        .unwrap();
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 2);
        assert_ne!(a.programs, b.programs);
        assert_eq!(verdict(&b, I386, 20, [0; 6]), ALLOW);
    }

    #[test]
    fn features_list_notify_and_probe_flags() {
        let f = features();
        assert!(
            f["actions"]
                .as_array()
                .unwrap()
                .contains(&json!("SCMP_ACT_NOTIFY"))
        );
        let known = f["knownFlags"].as_array().unwrap();
        for s in f["supportedFlags"].as_array().unwrap() {
            assert!(known.contains(s), "{s} supported but not known");
        }
        // The probe tells a flag the kernel does not know from one it does.
        assert!(crate::sys::seccomp_flags_supported(FLAG_LOG));
        assert!(!crate::sys::seccomp_flags_supported(1 << 30));
    }
}
