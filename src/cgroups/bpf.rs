//! The cgroup v2 device allowlist: a BPF_PROG_TYPE_CGROUP_DEVICE program
//! generated from the same rule list as v1's devices.allow/deny (config
//! rules, then rrun's defaults). v1 semantics are kept: the last matching
//! rule decides, so the program tests the rules in reverse order and
//! returns the first match; no match denies. Generation is pure; loading
//! and attaching are in sys/.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

/// One eBPF instruction (struct bpf_insn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND_K: u8 = 0x57; // BPF_ALU64 | BPF_AND | BPF_K
const RSH_K: u8 = 0x77; // BPF_ALU64 | BPF_RSH | BPF_K
const MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const MOV_X: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0xf),
        off,
        imm,
    }
}

/// A rule in matcher form: None means "any".
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub allow: bool,
    pub typ: Option<i32>,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub access: i32,
}

fn access_bits(s: &str) -> i32 {
    s.chars().fold(0, |acc, c| {
        acc | match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => 0,
        }
    })
}

/// The rules to enforce: the config's, then the defaults every container
/// gets (the same list as v1 in cgroups/mod.rs).
pub fn rules(config: &[LinuxDeviceCgroup]) -> Vec<Rule> {
    let mut out = Vec::new();
    for r in config {
        let typ = match r.typ() {
            None | Some(LinuxDeviceType::A) => None,
            Some(LinuxDeviceType::B) => Some(DEV_BLOCK),
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => Some(DEV_CHAR),
            Some(LinuxDeviceType::P) => continue,
        };
        out.push(Rule {
            allow: r.allow(),
            typ,
            major: r.major().filter(|m| *m >= 0),
            minor: r.minor().filter(|m| *m >= 0),
            access: access_bits(r.access().as_deref().unwrap_or("rwm")),
        });
    }
    for d in super::DEFAULT_ALLOWED {
        // "c 1:3 rwm" / "c *:* m"
        let parts: Vec<&str> = d.split(' ').collect();
        let (maj, min) = parts[1]
            .split_once(':')
            .expect("default rules are well-formed");
        out.push(Rule {
            allow: true,
            typ: Some(if parts[0] == "b" { DEV_BLOCK } else { DEV_CHAR }),
            major: maj.parse().ok(),
            minor: min.parse().ok(),
            access: access_bits(parts[2]),
        });
    }
    out
}

/// The program. Registers: r1 = ctx (access_type, major, minor as u32s),
/// r2 = type, r3 = access, r4 = major, r5 = minor, r6 = scratch.
pub fn program(rules: &[Rule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for r in rules.iter().rev() {
        let mut checks: Vec<Vec<Insn>> = Vec::new();
        if let Some(t) = r.typ {
            checks.push(vec![insn(JNE_K, 2, 0, 0, t)]);
        }
        if r.access != (ACC_READ | ACC_WRITE | ACC_MKNOD) {
            // Every requested access bit must be in the rule's.
            checks.push(vec![
                insn(MOV_X, 6, 3, 0, 0),
                insn(AND_K, 6, 0, 0, !r.access & 7),
                insn(JNE_K, 6, 0, 0, 0),
            ]);
        }
        if let Some(m) = r.major {
            checks.push(vec![insn(JNE_K, 4, 0, 0, m as i32)]);
        }
        if let Some(m) = r.minor {
            checks.push(vec![insn(JNE_K, 5, 0, 0, m as i32)]);
        }
        let catch_all = checks.is_empty();
        let body: Vec<Insn> = checks.into_iter().flatten().collect();
        let len = body.len() + 2;
        // Each conditional jump skips to the end of this rule's block.
        for (i, mut ins) in body.into_iter().enumerate() {
            if ins.code == JNE_K {
                ins.off = (len - i - 1) as i16;
            }
            p.push(ins);
        }
        p.push(insn(MOV_K, 0, 0, 0, r.allow as i32));
        p.push(insn(EXIT, 0, 0, 0, 0));
        // A rule that matches everything decides for all that is left: the
        // kernel's verifier rejects the unreachable code after it.
        if catch_all {
            return p;
        }
    }
    p.push(insn(MOV_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny interpreter for the instructions we emit, to check the
    /// program's decisions without a kernel.
    fn run(p: &[Insn], typ: i32, access: i32, major: i64, minor: i64) -> i32 {
        let mut r = [0i64; 11];
        let ctx = [((access << 16) | typ) as i64, major, minor];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_W => r[dst] = ctx[i.off as usize / 4],
                AND_K => r[dst] &= i.imm as i64,
                RSH_K => r[dst] >>= i.imm,
                MOV_K => r[dst] = i.imm as i64,
                MOV_X => r[dst] = r[src],
                JNE_K => {
                    if r[dst] != i.imm as i64 {
                        pc += i.off as usize;
                    }
                }
                EXIT => return r[0] as i32,
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    fn cfg(j: &str) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_str(j).unwrap()
    }

    #[test]
    fn deny_all_then_defaults() {
        let p = program(&rules(&cfg(r#"[{"allow":false,"access":"rwm"}]"#)));
        assert_eq!(
            run(&p, DEV_CHAR, ACC_READ | ACC_WRITE, 1, 3),
            1,
            "/dev/null"
        );
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 136, 7), 1, "pts");
        assert_eq!(run(&p, DEV_BLOCK, ACC_READ, 8, 0), 0, "sda read");
        assert_eq!(run(&p, DEV_BLOCK, ACC_MKNOD, 8, 0), 1, "mknod allowed");
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 1), 0, "/dev/mem");
    }

    /// The kernel verifier rejects unreachable instructions: every
    /// instruction must be reachable by some jump or fall-through.
    fn all_reachable(p: &[Insn]) -> bool {
        let mut seen = vec![false; p.len()];
        let mut stack = vec![0usize];
        while let Some(pc) = stack.pop() {
            if pc >= p.len() || seen[pc] {
                continue;
            }
            seen[pc] = true;
            match p[pc].code {
                EXIT => {}
                JNE_K => {
                    stack.push(pc + 1);
                    stack.push(pc + 1 + p[pc].off as usize);
                }
                _ => stack.push(pc + 1),
            }
        }
        seen.iter().all(|s| *s)
    }

    #[test]
    fn catch_all_rules_leave_no_dead_code() {
        for cfg_json in [
            r#"[{"allow":false,"access":"rwm"}]"#,
            r#"[{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},{"allow":true,"access":"rwm"}]"#,
            r#"[]"#,
        ] {
            let p = program(&rules(&cfg(cfg_json)));
            assert!(all_reachable(&p), "unreachable code for {cfg_json}");
        }
        let p = program(&rules(&cfg(
            r#"[{"allow":false,"type":"c","major":1,"minor":3,"access":"rwm"},{"allow":true,"access":"rwm"}]"#,
        )));
        assert_eq!(
            run(&p, DEV_BLOCK, ACC_READ, 8, 0),
            1,
            "allow-all after a deny"
        );
    }

    #[test]
    fn later_rules_win() {
        let p = program(&rules(&cfg(
            r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"b","major":8,"minor":0,"access":"r"},
                {"allow":false,"type":"c","major":1,"minor":3,"access":"w"}]"#,
        )));
        assert_eq!(run(&p, DEV_BLOCK, ACC_READ, 8, 0), 1);
        assert_eq!(run(&p, DEV_BLOCK, ACC_WRITE, 8, 0), 0);
        // The default allow for /dev/null comes after the config's deny.
        assert_eq!(run(&p, DEV_CHAR, ACC_WRITE, 1, 3), 1);
    }
}
