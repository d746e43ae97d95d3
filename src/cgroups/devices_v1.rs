//! The v1 device controller's state, emulated, so that rules are applied as
//! the smallest set of `devices.allow` / `devices.deny` writes from what the
//! cgroup has now to what the config asks for.
//!
//! Why not "deny all, then allow each rule" every time: on `update` that
//! briefly denies every device to a running container, and a rule that only
//! restates what the kernel already has must not be written at all (a deny
//! of a device the parent never allowed, an allow the parent refuses that is
//! already in place).
//!
//! The kernel's model (Documentation/admin-guide/cgroup-v1/devices.rst): a
//! cgroup has a default (allow or deny) and a list of exceptions keyed by
//! type, major and minor (each possibly `*`), each with an access set of
//! r/w/m. An `a` rule switches the default and clears the exceptions; any
//! other rule adds access bits to, or removes them from, the exception with
//! exactly its key. `devices.list` shows the exceptions of a default-deny
//! cgroup, and only `a *:* rwm` for a default-allow one (its exceptions are
//! not shown).

use std::collections::BTreeMap;

/// r, w, m as bits.
type Access = u8;
const R: Access = 1;
const W: Access = 2;
const M: Access = 4;

/// (type, major, minor); None is `*`.
type Key = (char, Option<u32>, Option<u32>);

/// An allowed device: type, major, minor (None is `*`), access "rwm".
pub type Allowed = (char, Option<u32>, Option<u32>, String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Devices {
    default_allow: bool,
    /// Allowed exceptions (default deny) or denied ones (default allow).
    exceptions: BTreeMap<Key, Access>,
    /// A default-allow state read from `devices.list`: its exceptions are
    /// not shown by the kernel, so they are unknown.
    unknown_exceptions: bool,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("device rule {0:?}: {1}")]
pub struct RuleError(String, &'static str);

/// One parsed rule: `a`, or `TYPE MAJOR:MINOR ACCESS`.
enum Rule {
    All,
    One(Key, Access),
}

fn parse_rule(s: &str) -> Result<Rule, RuleError> {
    let bad = |why| RuleError(s.to_string(), why);
    let mut f = s.split_whitespace();
    let typ = f.next().ok_or(bad("empty"))?;
    if typ == "a" {
        // The kernel reads `a` as "all" whatever follows.
        return Ok(Rule::All);
    }
    let typ = match typ {
        "b" => 'b',
        "c" => 'c',
        _ => return Err(bad("type is not a, b or c")),
    };
    let (maj, min) = f
        .next()
        .and_then(|n| n.split_once(':'))
        .ok_or(bad("no MAJOR:MINOR"))?;
    let num = |n: &str| -> Result<Option<u32>, RuleError> {
        if n == "*" {
            Ok(None)
        } else {
            n.parse().map(Some).map_err(|_| bad("bad device number"))
        }
    };
    let mut access = 0;
    for ch in f.next().unwrap_or("rwm").chars() {
        access |= match ch {
            'r' => R,
            'w' => W,
            'm' => M,
            _ => return Err(bad("access is not made of r, w, m")),
        };
    }
    if f.next().is_some() {
        return Err(bad("trailing words"));
    }
    Ok(Rule::One((typ, num(maj)?, num(min)?), access))
}

fn format_rule(key: &Key, access: Access) -> String {
    let num = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
    let mut a = String::new();
    for (bit, ch) in [(R, 'r'), (W, 'w'), (M, 'm')] {
        if access & bit != 0 {
            a.push(ch);
        }
    }
    format!("{} {}:{} {}", key.0, num(key.1), num(key.2), a)
}

impl Devices {
    /// What a cgroup reports in `devices.list`.
    pub fn from_list(list: &str) -> Result<Devices, RuleError> {
        let mut d = Devices {
            default_allow: false,
            exceptions: BTreeMap::new(),
            unknown_exceptions: false,
        };
        for line in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
            match parse_rule(line)? {
                Rule::All => {
                    d.default_allow = true;
                    d.unknown_exceptions = true;
                }
                Rule::One(k, a) => *d.exceptions.entry(k).or_default() |= a,
            }
        }
        Ok(d)
    }

    /// The state that `rules` (allow?, rule) produce, applied in order to a
    /// default-deny cgroup without exceptions, as the kernel would.
    pub fn from_rules(rules: &[(bool, String)]) -> Result<Devices, RuleError> {
        let mut d = Devices {
            default_allow: false,
            exceptions: BTreeMap::new(),
            unknown_exceptions: false,
        };
        for (allow, r) in rules {
            match parse_rule(r)? {
                Rule::All => {
                    d.default_allow = *allow;
                    d.exceptions.clear();
                }
                Rule::One(k, a) => {
                    // An exception grants in a default-deny cgroup and denies in
                    // a default-allow one.
                    let e = d.exceptions.entry(k).or_default();
                    if *allow != d.default_allow {
                        *e |= a;
                    } else {
                        *e &= !a;
                    }
                }
            }
        }
        d.exceptions.retain(|_, a| *a != 0);
        Ok(d)
    }

    /// For a default-deny state, its allowed devices as (type, major,
    /// minor, access "rwm"), `None` numbers being `*`; `None` for a
    /// default-allow state (a deny list).
    pub fn allowed(&self) -> Option<Vec<Allowed>> {
        if self.default_allow {
            return None;
        }
        Some(
            self.exceptions
                .iter()
                .map(|(k, a)| {
                    let rule = format_rule(k, *a);
                    let access = rule.rsplit(' ').next().unwrap_or("").to_string();
                    (k.0, k.1, k.2, access)
                })
                .collect(),
        )
    }

    /// The writes, in order, that take a cgroup from `self` to `target`:
    /// (true: devices.allow, false: devices.deny, rule).
    ///
    /// Only a change of default writes an `a` rule; then the exceptions are
    /// written after it. Otherwise exceptions are narrowed first and widened
    /// after, so at no moment does the cgroup allow a device that neither
    /// the old nor the new state allows. A default-allow cgroup's hidden
    /// exceptions cannot be diffed: the target's are written again (the
    /// kernel merges them), and a hidden one the target no longer has stays
    /// denied (the safe side) rather than switching the default off and on,
    /// which would allow everything for a moment.
    pub fn transition(&self, target: &Devices) -> Vec<(bool, String)> {
        let mut out = Vec::new();
        let empty = BTreeMap::new();
        let current = if self.default_allow != target.default_allow {
            out.push((target.default_allow, "a".to_string()));
            &empty
        } else {
            &self.exceptions
        };
        // In a default-deny cgroup exceptions grant: adding bits is a
        // devices.allow write and widens. In a default-allow one they deny:
        // adding bits is a devices.deny write and narrows.
        let add_file = !target.default_allow;
        let add_narrows = target.default_allow;
        let hidden = self.unknown_exceptions && self.default_allow == target.default_allow;
        let keys: std::collections::BTreeSet<&Key> =
            current.keys().chain(target.exceptions.keys()).collect();
        let (mut narrowing, mut widening) = (Vec::new(), Vec::new());
        for k in keys {
            let now = current.get(k).copied().unwrap_or(0);
            let want = target.exceptions.get(k).copied().unwrap_or(0);
            let (added, removed) = if hidden {
                (want, 0)
            } else {
                (want & !now, now & !want)
            };
            if added != 0 {
                let w = (add_file, format_rule(k, added));
                if add_narrows {
                    &mut narrowing
                } else {
                    &mut widening
                }
                .push(w);
            }
            if removed != 0 {
                let w = (!add_file, format_rule(k, removed));
                if add_narrows {
                    &mut widening
                } else {
                    &mut narrowing
                }
                .push(w);
            }
        }
        out.extend(narrowing);
        out.extend(widening);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(r: &[(bool, &str)]) -> Vec<(bool, String)> {
        r.iter().map(|(a, s)| (*a, s.to_string())).collect()
    }

    fn apply(mut d: Devices, writes: &[(bool, String)]) -> Devices {
        // What the kernel does with each write, on a known state.
        for (allow, r) in writes {
            let step = Devices::from_rules(&[(*allow, r.clone())]).unwrap();
            match parse_rule(r).unwrap() {
                Rule::All => d = step,
                Rule::One(..) => {
                    let (k, a) = step
                        .exceptions
                        .iter()
                        .next()
                        .map(|(k, a)| (*k, *a))
                        .unwrap_or_else(|| match parse_rule(r).unwrap() {
                            Rule::One(k, a) => (k, a),
                            Rule::All => unreachable!(),
                        });
                    let e = d.exceptions.entry(k).or_default();
                    if *allow != d.default_allow {
                        *e |= a;
                    } else {
                        *e &= !a;
                    }
                    d.exceptions.retain(|_, a| *a != 0);
                }
            }
        }
        d
    }

    #[test]
    fn a_fresh_cgroup_gets_deny_all_then_the_grants() {
        let cur = Devices::from_list("a *:* rwm\n").unwrap();
        let tgt = Devices::from_rules(&rules(&[
            (false, "a"),
            (true, "c 1:3 rwm"),
            (true, "c 1:5 rw"),
        ]))
        .unwrap();
        let w = cur.transition(&tgt);
        assert_eq!(
            w,
            rules(&[(false, "a"), (true, "c 1:3 rwm"), (true, "c 1:5 rw")])
        );
    }

    #[test]
    fn the_same_rules_again_write_nothing() {
        let tgt = Devices::from_rules(&rules(&[
            (false, "a"),
            (true, "c 1:3 rwm"),
            (true, "b *:* m"),
            (false, "c 10:229 rwm"),
        ]))
        .unwrap();
        let list = "c 1:3 rwm\nb *:* m\n";
        let cur = Devices::from_list(list).unwrap();
        assert_eq!(cur, tgt);
        assert!(cur.transition(&tgt).is_empty());
    }

    #[test]
    fn a_deny_of_a_device_never_allowed_is_not_written() {
        let cur = Devices::from_list("a *:* rwm").unwrap();
        let tgt = Devices::from_rules(&rules(&[(false, "a"), (false, "c 10:229 rwm")])).unwrap();
        assert_eq!(cur.transition(&tgt), rules(&[(false, "a")]));
    }

    #[test]
    fn an_update_narrows_first_and_never_switches_the_default() {
        let cur = Devices::from_list("c 1:3 rwm\nc 1:5 rwm\nc 1:9 r\n").unwrap();
        let tgt = Devices::from_rules(&rules(&[
            (false, "a"),
            (true, "c 1:3 rwm"),
            (true, "c 1:5 r"),
            (true, "c 1:9 rw"),
            (true, "b 7:0 r"),
        ]))
        .unwrap();
        let w = cur.transition(&tgt);
        assert!(w.iter().all(|(_, r)| r != "a"), "{w:?}");
        // Denials come before grants.
        let first_allow = w.iter().position(|(a, _)| *a).unwrap();
        assert!(w[first_allow..].iter().all(|(a, _)| *a), "{w:?}");
        assert_eq!(apply(cur, &w), tgt);
    }

    #[test]
    fn default_allow_targets() {
        // deny -> allow with denials: switch, then the denials.
        let cur = Devices::from_list("c 1:3 rwm").unwrap();
        let tgt = Devices::from_rules(&rules(&[(true, "a"), (false, "c 1:1 rwm")])).unwrap();
        let w = cur.transition(&tgt);
        assert_eq!(w, rules(&[(true, "a"), (false, "c 1:1 rwm")]));
        assert_eq!(apply(cur, &w), tgt);
        // allow (hidden exceptions) -> allow: only the target's denials,
        // never an `a` (that would allow everything for a moment).
        let cur = Devices::from_list("a *:* rwm").unwrap();
        let w = cur.transition(&tgt);
        assert_eq!(w, rules(&[(false, "c 1:1 rwm")]));
    }

    #[test]
    fn bad_rules_are_named() {
        for r in ["x 1:3 rwm", "c 1 rwm", "c 1:3 rwz", "c a:3 r", ""] {
            assert!(Devices::from_rules(&rules(&[(true, r)])).is_err(), "{r:?}");
        }
    }
}
