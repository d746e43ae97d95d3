//! The systemd cgroup driver (`--systemd-cgroup`): the container's cgroup
//! is a transient unit of systemd's (a scope, or a slice when cgroupsPath
//! names one), created over D-Bus with the container's init in it, its
//! resources as unit properties where systemd has one, and
//! `Delegate=yes` so rrun writes the rest into the unit's cgroup files as
//! with its own cgroups.
//!
//! This module is the pure part: reading `slice:prefix:name`, the unit
//! name, the slice's cgroup path, and the unit properties for a set of
//! cgroup writes. `bus` talks to systemd. A unit is stopped only if rrun
//! made it (the state records that), never one found existing.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::resources::{self, Write};

pub mod bus;

#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    #[error(
        "linux.cgroupsPath {0:?}: {1} (--systemd-cgroup takes \"slice:prefix:name\", e.g. \"system.slice:rrun:ID\")"
    )]
    BadPath(String, String),
    #[error("cgroups: --systemd-cgroup: systemd is not reachable on the {bus} bus ({addr}): {why}")]
    Unreachable {
        bus: &'static str,
        addr: String,
        why: String,
    },
    #[error(
        "cgroups: --systemd-cgroup: unit {0} already exists (another container or service has it): \
         pick another cgroupsPath or id"
    )]
    UnitExists(String),
    #[error("cgroups: --systemd-cgroup: {what} {unit}: {why}")]
    Call {
        what: &'static str,
        unit: String,
        why: String,
    },
    #[error("cgroups: --systemd-cgroup: systemd's job to {what} {unit} ended with {result:?}")]
    Job {
        what: &'static str,
        unit: String,
        result: String,
    },
    #[error("cgroups: --systemd-cgroup: systemd did not {what} {unit} within {secs} s")]
    Timeout {
        what: &'static str,
        unit: String,
        secs: u64,
    },
    #[error("cgroups: --systemd-cgroup: linux.resources.{0}: {1}")]
    Resource(&'static str, String),
}

/// The unit a container's cgroup is, read from its cgroupsPath.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitPlan {
    /// e.g. `rrun-ID.scope`, or `x.slice`.
    pub unit: String,
    /// The parent slice (`Slice=` of a scope, `Wants=` of a slice).
    pub slice: String,
    /// The unit's cgroup relative to the manager's root cgroup, as
    /// systemd will place it (e.g. `/system.slice/rrun-ID.scope`).
    pub cgroup: String,
}

impl UnitPlan {
    pub fn is_slice(&self) -> bool {
        self.unit.ends_with(".slice")
    }
}

/// The default cgroupsPath under `--systemd-cgroup`: runc's `:runc:<id>`,
/// with rrun's own name as the prefix.
pub const DEFAULT_PREFIX: &str = "rrun";

/// Reads a cgroupsPath as runc's systemd driver does: `slice:prefix:name`,
/// an empty slice meaning `system.slice` (`user.slice` for a rootless
/// container on cgroup v2), an absent or empty path meaning
/// `:rrun:<id>`; the unit is `prefix-name.scope`, or `name` itself when
/// it ends in `.slice`.
pub fn plan_unit(
    cgroups_path: Option<&str>,
    id: &str,
    user_slice: bool,
) -> Result<UnitPlan, SystemdError> {
    let given = cgroups_path.filter(|p| !p.is_empty());
    let default = format!(":{DEFAULT_PREFIX}:{id}");
    let path = given.unwrap_or(&default);
    let bad = |why: &str| SystemdError::BadPath(path.to_string(), why.to_string());
    let parts: Vec<&str> = path.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(bad("not three ':'-separated parts"));
    };
    let slice = if slice.is_empty() {
        if user_slice {
            "user.slice"
        } else {
            "system.slice"
        }
    } else {
        slice
    };
    let slice_path = expand_slice(slice).map_err(|e| bad(&format!("slice {slice:?}: {e}")))?;
    if name.is_empty() {
        return Err(bad("the name part is empty"));
    }
    if SYSTEMD_OWN.contains(&name) {
        return Err(bad(&format!(
            "{name} is systemd's own unit, never a container's"
        )));
    }
    let (unit, cgroup) = if name.ends_with(".slice") {
        // A slice sits where its own name puts it, whatever the first part.
        let own = expand_slice(name).map_err(|e| bad(&format!("slice {name:?}: {e}")))?;
        (name.to_string(), own)
    } else {
        let unit = format!("{prefix}-{name}.scope");
        check_unit_name(&unit).map_err(|e| bad(&format!("unit name {unit:?}: {e}")))?;
        let cg = format!("{}/{unit}", slice_path.trim_end_matches('/'));
        (unit, cg)
    };
    Ok(UnitPlan {
        unit,
        slice: slice.to_string(),
        cgroup,
    })
}

/// Units systemd itself keeps, whose cgroups hold the host's processes:
/// refused by name before anything else (the bus check refuses any other
/// unit that is already active).
const SYSTEMD_OWN: &[&str] = &["-.slice", "system.slice", "user.slice", "machine.slice"];

/// The characters systemd accepts in a unit name (plus its length limit).
fn check_unit_name(unit: &str) -> Result<(), &'static str> {
    if unit.len() > 255 {
        return Err("longer than the 255 characters systemd allows");
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c);
    if !unit.chars().all(ok) {
        return Err("systemd unit names hold only ASCII letters, digits and \":-_.\\@\"");
    }
    Ok(())
}

/// A slice's cgroup path, as systemd nests slices by their dashes:
/// `a-b-c.slice` is `/a.slice/a-b.slice/a-b-c.slice`; `-.slice` is the root.
pub fn expand_slice(slice: &str) -> Result<String, &'static str> {
    let Some(base) = slice.strip_suffix(".slice") else {
        return Err("a slice name ends in \".slice\"");
    };
    check_unit_name(slice)?;
    if base == "-" {
        return Ok("/".into());
    }
    if base.is_empty() {
        return Err("a slice name needs a name before \".slice\"");
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in base.split('-') {
        if part.is_empty() {
            return Err("empty part between dashes (a leading, trailing or doubled '-')");
        }
        path.push('/');
        path.push_str(&prefix);
        path.push_str(part);
        path.push_str(".slice");
        prefix.push_str(part);
        prefix.push('-');
    }
    Ok(path)
}

/// The unit's cgroup directory in each hierarchy (one per hierarchy, in
/// their order), from the unit's ControlGroup (an absolute cgroup path).
pub fn unit_dirs(hierarchies: &[super::Hierarchy], control_group: &str) -> Vec<PathBuf> {
    let rel = Path::new(control_group.trim_start_matches('/'));
    hierarchies.iter().map(|h| h.mount.join(rel)).collect()
}

/// The hierarchies (indices into `hierarchies`) in which a process is not
/// in the cgroup `control_group`, from its /proc/<pid>/cgroup: on v1,
/// systemd places a scope's process only in the hierarchies it manages
/// (not cpuset, freezer, net_cls, ...), and nowhere for a slice.
pub fn misplaced(
    proc_cgroup: &str,
    hierarchies: &[super::Hierarchy],
    control_group: &str,
) -> Vec<usize> {
    let want = control_group.trim_end_matches('/');
    let want = if want.is_empty() { "/" } else { want };
    hierarchies
        .iter()
        .enumerate()
        .filter(|(_, h)| {
            let at = proc_cgroup.lines().find_map(|l| {
                let mut it = l.splitn(3, ':');
                let (_, ctrl, path) = (it.next()?, it.next()?, it.next()?);
                let ctrls: Vec<&str> = ctrl.split(',').filter(|c| !c.is_empty()).collect();
                let same = if h.unified {
                    ctrls.is_empty()
                } else {
                    !ctrls.is_empty()
                        && ctrls.len() == h.controllers.len()
                        && h.controllers.iter().all(|c| ctrls.contains(&c.as_str()))
                };
                same.then_some(path)
            });
            at != Some(want)
        })
        .map(|(i, _)| i)
        .collect()
}

/// One unit property's value, in the D-Bus types systemd expects.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    U64(u64),
    Str(String),
    Strs(Vec<String>),
    U32s(Vec<u32>),
    Bytes(Vec<u8>),
    /// DeviceAllow's (path, access) pairs.
    Pairs(Vec<(String, String)>),
}

pub type Property = (&'static str, Value);

/// The properties every unit rrun starts has, as runc sets them: its
/// place, delegation (a scope only), the init's pid, accounting on, and no
/// default dependencies (a container must not be ordered after
/// basic.target nor stopped at shutdown before its engine).
/// The Description rrun gives the unit of container `id`: with the
/// InvocationID, how rrun knows a unit is its own.
pub fn description(id: &str) -> String {
    format!("rrun container {id}")
}

pub fn base_properties(plan: &UnitPlan, id: &str, pid: Option<u32>, v2: bool) -> Vec<Property> {
    let mut p = vec![("Description", Value::Str(description(id)))];
    if plan.is_slice() {
        p.push(("Wants", Value::Strs(vec![plan.slice.clone()])));
    } else {
        p.push(("Slice", Value::Str(plan.slice.clone())));
        p.push(("Delegate", Value::Bool(true)));
    }
    // A slice holds no PIDs property: rrun moves the init into its cgroup.
    if let Some(pid) = pid.filter(|_| !plan.is_slice()) {
        p.push(("PIDs", Value::U32s(vec![pid])));
    }
    p.push(("MemoryAccounting", Value::Bool(true)));
    p.push(("CPUAccounting", Value::Bool(true)));
    p.push((
        if v2 {
            "IOAccounting"
        } else {
            "BlockIOAccounting"
        },
        Value::Bool(true),
    ));
    p.push(("TasksAccounting", Value::Bool(true)));
    p.push(("DefaultDependencies", Value::Bool(false)));
    p
}

/// systemd's "infinity" for limits.
const INFINITY: u64 = u64::MAX;

fn limit(v: &str) -> Option<u64> {
    match v.trim() {
        "max" | "-1" => Some(INFINITY),
        s => s.parse().ok(),
    }
}

/// A cpuset list ("0-2,4") as systemd's AllowedCPUs/AllowedMemoryNodes
/// bitmask: bit n of byte n/8 is cpu (node) n.
pub fn cpuset_bits(list: &str) -> Result<Vec<u8>, String> {
    let mut out: Vec<u8> = Vec::new();
    let mut set = |n: u32| {
        let byte = (n / 8) as usize;
        if out.len() <= byte {
            out.resize(byte + 1, 0);
        }
        out[byte] |= 1 << (n % 8);
    };
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |s: &str| {
            s.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n < 1 << 16)
                .ok_or_else(|| format!("{list:?}: {s:?} is not a cpu or node number"))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("{list:?}: range {part:?} runs backwards"));
                }
                (a..=b).for_each(&mut set);
            }
            None => set(num(part)?),
        }
    }
    if out.is_empty() {
        return Err(format!("{list:?} names no cpu or node"));
    }
    Ok(out)
}

/// Rounds a cpu quota up to what systemd can hold: it keeps
/// CPUQuotaPerSecUSec in 10 ms steps (1% of a cpu), so a quota that is
/// not a whole percent is raised to the next one, and the same value is
/// then written to cpu.max / cpu.cfs_quota_us (as runc does) so the two
/// agree.
pub fn round_quota(r: &mut LinuxResources) {
    let Some(cpu) = r.cpu().clone() else { return };
    let Some(q) = cpu.quota().filter(|q| *q > 0) else {
        return;
    };
    let period = cpu.period().filter(|p| *p > 0).unwrap_or(100_000);
    let per_sec = q as u128 * 1_000_000 / period as u128;
    if per_sec.is_multiple_of(10_000) {
        return;
    }
    let per_sec = (per_sec / 10_000 + 1) * 10_000;
    let q2 = (per_sec * period as u128 / 1_000_000) as i64;
    let mut cpu = cpu;
    cpu.set_quota(Some(q2));
    r.set_cpu(Some(cpu));
}

/// The unit properties for the cgroup writes of `linux.resources` (the
/// plan `resources::plan_v1`/`plan_v2` made, so the properties and the
/// files say the same), for systemd `version`: what systemd has a
/// property for; everything else is written to the files only. On v2
/// that is memory.{max,low,high,min,swap.max}, cpu.weight, cpu.max,
/// cpuset.{cpus,mems} (systemd 244+), pids.max and the default io.weight;
/// on v1 the memory limit, cpu.shares, the cfs quota, blkio.weight,
/// pids.max and cpusets.
pub fn resource_properties(
    writes: &[Write],
    v2: bool,
    version: u32,
) -> Result<Vec<Property>, SystemdError> {
    let mut p: Vec<Property> = Vec::new();
    let num = |w: &Write| {
        limit(&w.value).ok_or_else(|| {
            SystemdError::Resource(
                "unified",
                format!("{}: {:?} is not a number or \"max\"", w.file, w.value),
            )
        })
    };
    let mut quota: Option<(Option<u64>, Option<u64>)> = None;
    for w in writes {
        let prop = match (v2, w.file.as_str()) {
            (true, "memory.max") => Some("MemoryMax"),
            (true, "memory.low") => Some("MemoryLow"),
            (true, "memory.high") => Some("MemoryHigh"),
            (true, "memory.min") => Some("MemoryMin"),
            (true, "memory.swap.max") => Some("MemorySwapMax"),
            (false, "memory.limit_in_bytes") => Some("MemoryLimit"),
            (true, "cpu.weight") => Some("CPUWeight"),
            (false, "cpu.shares") => Some("CPUShares"),
            (false, "blkio.weight") => Some("BlockIOWeight"),
            // The default weight only: per-device weights are files.
            (true, "io.weight") if !w.value.contains(':') && !w.value.contains(' ') => {
                Some("IOWeight")
            }
            (_, "pids.max") => {
                // systemd refuses TasksMax=0; runc asks for 1.
                let n = num(w)?.max(1);
                p.push(("TasksMax", Value::U64(n)));
                None
            }
            (_, "cpuset.cpus" | "cpuset.mems") if version >= 244 => {
                let bits = cpuset_bits(&w.value)
                    .map_err(|e| SystemdError::Resource("cpu", format!("{}: {e}", w.file)))?;
                let name = if w.file == "cpuset.cpus" {
                    "AllowedCPUs"
                } else {
                    "AllowedMemoryNodes"
                };
                p.push((name, Value::Bytes(bits)));
                None
            }
            (true, "cpu.max") => {
                let mut it = w.value.split_whitespace();
                let q = it.next().unwrap_or("max");
                let q = if q == "max" {
                    None
                } else {
                    Some(num(&Write {
                        value: q.to_string(),
                        ..w.clone()
                    })?)
                };
                let per = it.next().and_then(|s| s.parse().ok());
                quota = Some((q, per));
                None
            }
            (false, "cpu.cfs_quota_us") => {
                let q = w.value.trim().parse::<i64>().ok().filter(|q| *q > 0);
                let per = quota.and_then(|(_, p)| p);
                quota = Some((q.map(|q| q as u64), per));
                None
            }
            (false, "cpu.cfs_period_us") => {
                let per = w.value.trim().parse().ok();
                let q = quota.and_then(|(q, _)| q);
                quota = Some((q, per));
                None
            }
            _ => None,
        };
        if let Some(name) = prop {
            // A later write of one file (the unified map) wins, as in the
            // files themselves.
            let v = Value::U64(num(w)?);
            p.retain(|(n, _)| *n != name);
            p.push((name, v));
        }
    }
    if let Some((q, per)) = quota {
        let period = per.unwrap_or(100_000).max(1);
        if per.is_some() && version >= 242 {
            p.push(("CPUQuotaPeriodUSec", Value::U64(period)));
        }
        let per_sec = match q {
            Some(q) => {
                let v = q as u128 * 1_000_000 / period as u128;
                // The 1% steps systemd keeps (see round_quota).
                (v.div_ceil(10_000) * 10_000).min(INFINITY as u128) as u64
            }
            None => INFINITY,
        };
        p.push(("CPUQuotaPerSecUSec", Value::U64(per_sec)));
    }
    Ok(p)
}

/// The properties for `r` on this host: the plan of writes, then the
/// properties for it.
pub fn properties_for(
    r: &LinuxResources,
    v2: bool,
    version: u32,
) -> Result<Vec<Property>, super::CgroupError> {
    let writes = if v2 {
        resources::plan_v2(r)?
    } else {
        resources::plan_v1(r)?
    };
    Ok(resource_properties(&writes, v2, version)?)
}

/// DevicePolicy and DeviceAllow for the container's device rules (the
/// config's, then the default allowlist: `super::device_rules`), so that
/// systemd, which rewrites a unit's device cgroup from its properties
/// (v1: on every daemon-reload; v2: its own BPF program beside rrun's),
/// never allows more than rrun does: `strict` with the allowed devices,
/// as runc sets them. What systemd cannot say is left out, which only
/// narrows systemd's list (rrun's own rules still hold): a `*:MINOR`
/// rule, and a `MAJOR:*` rule before systemd 240. A deny list (default
/// allow) gets no properties: systemd's default policy allows every
/// device, and rrun's rules deny the exceptions.
pub fn device_properties(rules: &[(bool, String)], version: u32) -> Vec<Property> {
    let Ok(devices) = super::devices_v1::Devices::from_rules(rules) else {
        return Vec::new();
    };
    let Some(allowed) = devices.allowed() else {
        return Vec::new();
    };
    let mut list = Vec::new();
    for (typ, major, minor, access) in allowed {
        let group = if typ == 'b' { "block" } else { "char" };
        let path = match (major, minor) {
            (None, None) => format!("{group}-*"),
            (Some(maj), None) if version >= 240 => format!("{group}-{maj}"),
            (Some(maj), Some(min)) => format!("/dev/{group}/{maj}:{min}"),
            _ => continue,
        };
        list.push((path, access));
    }
    vec![
        ("DevicePolicy", Value::Str("strict".into())),
        ("DeviceAllow", Value::Pairs(list)),
    ]
}

/// systemd's version from its Version property ("252.36-1~deb12u1",
/// "v245.4-1.fc32"): the leading number, 0 if there is none.
pub fn parse_version(s: &str) -> u32 {
    let s = s.trim().trim_start_matches(['"', 'v']);
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(p: Option<&str>, user: bool) -> Result<UnitPlan, SystemdError> {
        plan_unit(p, "c1", user)
    }

    #[test]
    fn cgroups_path_and_defaults() {
        let u = plan(None, false).unwrap();
        assert_eq!(u.unit, "rrun-c1.scope");
        assert_eq!(u.slice, "system.slice");
        assert_eq!(u.cgroup, "/system.slice/rrun-c1.scope");
        assert!(!u.is_slice());
        assert_eq!(plan(Some(""), false).unwrap(), u);
        let u = plan(None, true).unwrap();
        assert_eq!(u.cgroup, "/user.slice/rrun-c1.scope");
        let u = plan(Some("machine.slice:libpod:abc"), false).unwrap();
        assert_eq!(u.unit, "libpod-abc.scope");
        assert_eq!(u.cgroup, "/machine.slice/libpod-abc.scope");
        let u = plan(
            Some("kubepods-besteffort-pod1.slice:cri-containerd:x"),
            false,
        )
        .unwrap();
        assert_eq!(
            u.cgroup,
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-x.scope"
        );
        // runc keeps an empty prefix as "-name.scope".
        assert_eq!(plan(Some("::x"), false).unwrap().unit, "-x.scope");
        let u = plan(Some("-.slice:p:x"), false).unwrap();
        assert_eq!(u.cgroup, "/p-x.scope");
        // A slice as the name: the unit is the slice, placed by its name.
        let u = plan(Some("system.slice:ignored:a-b.slice"), false).unwrap();
        assert!(u.is_slice());
        assert_eq!(u.unit, "a-b.slice");
        assert_eq!(u.cgroup, "/a.slice/a-b.slice");
    }

    #[test]
    fn bad_paths_are_one_clear_line() {
        for bad in [
            "a/b",
            "system.slice:x",
            "a:b:c:d",
            "x:p:n",
            "a/b.slice:p:n",
            "a--b.slice:p:n",
            "-a.slice:p:n",
            "a-.slice:p:n",
            ".slice:p:n",
            "system.slice:p:",
            "system.slice:p:a/b",
            "system.slice:p:a b",
            "system.slice:p:x--y.slice",
            "::system.slice",
            "::-.slice",
            "user.slice:p:user.slice",
            "system.slice:rrun:machine.slice",
        ] {
            let e = plan(Some(bad), false).unwrap_err().to_string();
            assert!(
                e.starts_with("linux.cgroupsPath") && !e.contains('\n'),
                "{bad:?}: {e}"
            );
        }
        let long = format!("system.slice:p:{}", "x".repeat(300));
        assert!(plan(Some(&long), false).is_err());
    }

    #[test]
    fn slices_nest_by_dashes() {
        assert_eq!(expand_slice("a.slice").unwrap(), "/a.slice");
        assert_eq!(
            expand_slice("a-b-c.slice").unwrap(),
            "/a.slice/a-b.slice/a-b-c.slice"
        );
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        assert!(expand_slice("a").is_err());
        assert!(expand_slice("a.scope").is_err());
    }

    #[test]
    fn cpuset_bitmasks() {
        assert_eq!(cpuset_bits("0").unwrap(), vec![1]);
        assert_eq!(cpuset_bits("0-2,4").unwrap(), vec![0b10111]);
        assert_eq!(cpuset_bits("9").unwrap(), vec![0, 2]);
        assert_eq!(cpuset_bits(" 1 , 3-3 ,").unwrap(), vec![0b1010]);
        for bad in ["", "3-1", "x", "1-", "70000"] {
            assert!(cpuset_bits(bad).is_err(), "{bad:?}");
        }
    }

    fn res(j: &str) -> LinuxResources {
        serde_json::from_str(j).unwrap()
    }

    fn get<'a>(p: &'a [Property], name: &str) -> Option<&'a Value> {
        p.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    #[test]
    fn v2_properties_match_the_files() {
        let r = res(
            r#"{"memory":{"limit":67108864,"reservation":33554432,"swap":134217728},
            "cpu":{"shares":1024,"quota":50000,"period":100000,"cpus":"0-1","mems":"0"},
            "pids":{"limit":5},"blockIO":{"weight":500}}"#,
        );
        let p = properties_for(&r, true, 252).unwrap();
        assert_eq!(get(&p, "MemoryMax"), Some(&Value::U64(64 << 20)));
        assert_eq!(get(&p, "MemoryLow"), Some(&Value::U64(32 << 20)));
        assert_eq!(get(&p, "MemorySwapMax"), Some(&Value::U64(64 << 20)));
        assert_eq!(get(&p, "CPUWeight"), Some(&Value::U64(39)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(500_000)));
        assert_eq!(get(&p, "CPUQuotaPeriodUSec"), Some(&Value::U64(100_000)));
        assert_eq!(get(&p, "AllowedCPUs"), Some(&Value::Bytes(vec![3])));
        assert_eq!(get(&p, "AllowedMemoryNodes"), Some(&Value::Bytes(vec![1])));
        assert_eq!(get(&p, "TasksMax"), Some(&Value::U64(5)));
        assert_eq!(get(&p, "IOWeight"), Some(&Value::U64(4950)));
        // Older systemd: no cpusets, no period.
        let p = properties_for(&r, true, 241).unwrap();
        assert!(get(&p, "AllowedCPUs").is_none() && get(&p, "CPUQuotaPeriodUSec").is_none());
        assert!(get(&p, "CPUQuotaPerSecUSec").is_some());
        // Unlimited.
        let p = properties_for(
            &res(r#"{"memory":{"limit":-1},"pids":{"limit":-1}}"#),
            true,
            252,
        )
        .unwrap();
        assert_eq!(get(&p, "MemoryMax"), Some(&Value::U64(u64::MAX)));
        assert_eq!(get(&p, "TasksMax"), Some(&Value::U64(u64::MAX)));
        // The unified map: a later write of the same file wins.
        let p = properties_for(
            &res(r#"{"memory":{"limit":1048576},"unified":{"memory.max":"2097152","memory.high":"max","cpu.max":"max 50000","pids.max":"0"}}"#),
            true,
            252,
        )
        .unwrap();
        assert_eq!(get(&p, "MemoryMax"), Some(&Value::U64(2 << 20)));
        assert_eq!(get(&p, "MemoryHigh"), Some(&Value::U64(u64::MAX)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(u64::MAX)));
        assert_eq!(get(&p, "CPUQuotaPeriodUSec"), Some(&Value::U64(50_000)));
        // systemd refuses TasksMax=0.
        assert_eq!(get(&p, "TasksMax"), Some(&Value::U64(1)));
        assert!(properties_for(&res(r#"{"unified":{"memory.max":"lots"}}"#), true, 252).is_err());
    }

    #[test]
    fn v1_properties() {
        let r = res(
            r#"{"memory":{"limit":67108864},"cpu":{"shares":512,"quota":20000,"period":50000},
            "pids":{"limit":10},"blockIO":{"weight":300}}"#,
        );
        let p = properties_for(&r, false, 252).unwrap();
        assert_eq!(get(&p, "MemoryLimit"), Some(&Value::U64(64 << 20)));
        assert_eq!(get(&p, "CPUShares"), Some(&Value::U64(512)));
        assert_eq!(get(&p, "BlockIOWeight"), Some(&Value::U64(300)));
        assert_eq!(get(&p, "TasksMax"), Some(&Value::U64(10)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(400_000)));
        assert_eq!(get(&p, "CPUQuotaPeriodUSec"), Some(&Value::U64(50_000)));
        assert!(get(&p, "MemoryMax").is_none());
    }

    #[test]
    fn quota_rounds_up_to_whole_percent() {
        let mut r = res(r#"{"cpu":{"quota":12345,"period":100000}}"#);
        round_quota(&mut r);
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(13000));
        let mut r = res(r#"{"cpu":{"quota":50000}}"#);
        round_quota(&mut r);
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(50000));
        let p = properties_for(
            &res(r#"{"cpu":{"quota":12345,"period":100000}}"#),
            true,
            252,
        )
        .unwrap();
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(130_000)));
    }

    #[test]
    fn base_properties_of_a_scope_and_a_slice() {
        let scope = plan(None, false).unwrap();
        let p = base_properties(&scope, "c1", Some(42), true);
        assert_eq!(get(&p, "Slice"), Some(&Value::Str("system.slice".into())));
        assert_eq!(get(&p, "Delegate"), Some(&Value::Bool(true)));
        assert_eq!(get(&p, "PIDs"), Some(&Value::U32s(vec![42])));
        assert_eq!(get(&p, "DefaultDependencies"), Some(&Value::Bool(false)));
        assert!(get(&p, "IOAccounting").is_some());
        let slice = plan(Some("system.slice::x.slice"), false).unwrap();
        let p = base_properties(&slice, "c1", Some(42), false);
        assert!(get(&p, "PIDs").is_none());
        assert!(get(&p, "Delegate").is_none() && get(&p, "Slice").is_none());
        assert_eq!(
            get(&p, "Wants"),
            Some(&Value::Strs(vec!["system.slice".into()]))
        );
        assert!(get(&p, "BlockIOAccounting").is_some());
    }

    #[test]
    fn misplaced_hierarchies() {
        let h = |ctrls: &[&str], unified: bool| super::super::Hierarchy {
            mount: PathBuf::from("/sys/fs/cgroup/x"),
            own_dir: PathBuf::from("/sys/fs/cgroup/x"),
            controllers: ctrls.iter().map(|c| c.to_string()).collect(),
            unified,
        };
        let hs = vec![
            h(&["memory"], false),
            h(&["cpuset"], false),
            h(&["cpu", "cpuacct"], false),
            h(&[], true),
        ];
        let procs = "5:cpuset:/\n4:memory:/system.slice/r-x.scope\n3:cpuacct,cpu:/system.slice/r-x.scope\n0::/system.slice/r-x.scope\n";
        assert_eq!(misplaced(procs, &hs, "/system.slice/r-x.scope"), vec![1]);
        assert_eq!(misplaced(procs, &hs, "/other"), vec![0, 1, 2, 3]);
        assert_eq!(misplaced("0::/a\n", &hs[3..], "/a"), Vec::<usize>::new());
    }

    #[test]
    fn device_allow_lists() {
        let rules = |v: &[(bool, &str)]| -> Vec<(bool, String)> {
            v.iter().map(|(a, r)| (*a, r.to_string())).collect()
        };
        let p = device_properties(
            &rules(&[
                (false, "a"),
                (true, "c 1:3 rwm"),
                (true, "c 136:* rw"),
                (true, "b *:* m"),
                (true, "c *:5 r"),
            ]),
            252,
        );
        assert_eq!(get(&p, "DevicePolicy"), Some(&Value::Str("strict".into())));
        let Some(Value::Pairs(l)) = get(&p, "DeviceAllow") else {
            panic!("{p:?}")
        };
        let l: Vec<(&str, &str)> = l.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert!(l.contains(&("/dev/char/1:3", "rwm")), "{l:?}");
        assert!(l.contains(&("char-136", "rw")), "{l:?}");
        assert!(l.contains(&("block-*", "m")), "{l:?}");
        assert_eq!(l.len(), 3, "*:5 has no systemd form: {l:?}");
        let p = device_properties(&rules(&[(false, "a"), (true, "c 136:* rw")]), 239);
        assert_eq!(get(&p, "DeviceAllow"), Some(&Value::Pairs(vec![])));
        // A deny list: nothing for systemd.
        assert!(device_properties(&rules(&[(true, "a"), (false, "c 1:3 rwm")]), 252).is_empty());
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("252.36-1~deb12u1"), 252);
        assert_eq!(parse_version("\"v245.4-1.fc32\""), 245);
        assert_eq!(parse_version("x"), 0);
    }
}
