//! Pure translation of `linux.resources` into cgroup file writes, for v1
//! (one file per controller hierarchy) and v2 (the unified files, with the
//! OCI v1-style values converted as runc and crun convert them). No I/O
//! here: `plan_v1`/`plan_v2` return the writes, in the order the kernel
//! needs them, and `apply` in mod.rs performs them.

use oci_spec::runtime::{LinuxResources, LinuxThrottleDevice};

/// One write: `value` into `file` of the hierarchy that has `controller`
/// (v1), or of the unified hierarchy (v2, controller is informational).
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub controller: &'static str,
    pub file: String,
    pub value: String,
    /// Kernel knobs that may be absent (deprecated or config-dependent):
    /// a missing file is a warning, not an error.
    pub optional: bool,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ResourceError {
    #[error("linux.resources.{0}: {1}")]
    Invalid(&'static str, String),
}

fn w(controller: &'static str, file: impl Into<String>, value: impl ToString) -> Write {
    Write {
        controller,
        file: file.into(),
        value: value.to_string(),
        optional: false,
    }
}

fn opt(controller: &'static str, file: impl Into<String>, value: impl ToString) -> Write {
    Write {
        optional: true,
        ..w(controller, file, value)
    }
}

/// -1 (or any negative) means unlimited.
fn limit_v2(v: i64) -> String {
    if v < 0 { "max".into() } else { v.to_string() }
}

fn throttle(list: &Option<Vec<LinuxThrottleDevice>>) -> Vec<(i64, i64, u64)> {
    list.iter()
        .flatten()
        .map(|d| (d.major(), d.minor(), d.rate()))
        .collect()
}

/// runc's reading of the values engines send: 0 means "not set" for every
/// limit, weight, share and period (Docker always sends `"shares": 0` and
/// `"weight": 0`; `update` sends zeros for everything it does not change).
pub fn normalized(r: &LinuxResources) -> LinuxResources {
    let nz_i = |v: Option<i64>| v.filter(|x| *x != 0);
    let nz_u = |v: Option<u64>| v.filter(|x| *x != 0);
    let mut r = r.clone();
    if let Some(mut m) = *r.memory() {
        m.set_limit(nz_i(m.limit()));
        m.set_reservation(nz_i(m.reservation()));
        m.set_swap(nz_i(m.swap()));
        m.set_kernel(nz_i(m.kernel()));
        m.set_kernel_tcp(nz_i(m.kernel_tcp()));
        r.set_memory(Some(m));
    }
    if let Some(mut c) = r.cpu().clone() {
        c.set_shares(nz_u(c.shares()));
        c.set_quota(nz_i(c.quota()));
        c.set_period(nz_u(c.period()));
        c.set_burst(nz_u(c.burst()));
        c.set_realtime_runtime(nz_i(c.realtime_runtime()));
        c.set_realtime_period(nz_u(c.realtime_period()));
        r.set_cpu(Some(c));
    }
    if let Some(mut b) = r.block_io().clone() {
        b.set_weight(b.weight().filter(|w| *w != 0));
        b.set_leaf_weight(b.leaf_weight().filter(|w| *w != 0));
        r.set_block_io(Some(b));
    }
    if r.pids().is_some_and(|p| p.limit() == 0) {
        r.set_pids(None);
    }
    r
}

/// v1 refuses a memory limit above the current memory+swap limit, and a
/// memory+swap limit below the current memory limit (EINVAL). When the new
/// limit is above `current_memsw` (bytes; None: unlimited or unknown), the
/// memsw write has to come first; otherwise the plan's order (limit first)
/// is the one that works. Only a plan that writes both is reordered.
pub fn order_memsw_v1(plan: &mut [Write], current_memsw: Option<u64>) {
    let at = |f: &str| plan.iter().position(|w| w.file == f);
    let (Some(l), Some(s)) = (
        at("memory.limit_in_bytes"),
        at("memory.memsw.limit_in_bytes"),
    ) else {
        return;
    };
    // -1 is unlimited: above any current memsw.
    let new_limit = plan[l]
        .value
        .parse::<i64>()
        .ok()
        .and_then(|v| u64::try_from(v).ok());
    let raises_past = match (new_limit, current_memsw) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(n), Some(c)) => n > c,
    };
    if raises_past && l < s {
        plan[l..=s].rotate_right(s - l);
    }
}

pub fn plan_v1(r: &LinuxResources) -> Result<Vec<Write>, ResourceError> {
    let r = &normalized(r);
    let mut out = Vec::new();
    if let Some(m) = r.memory() {
        // memsw must never be below the memory limit. This writes the limit
        // first (right for a fresh cgroup, whose memsw is unlimited, and
        // when lowering); `order_memsw_v1` swaps the two for an update that
        // raises the limit above the current memsw.
        if let Some(l) = m.limit() {
            out.push(w("memory", "memory.limit_in_bytes", l));
        }
        if let Some(s) = m.swap() {
            out.push(opt("memory", "memory.memsw.limit_in_bytes", s));
        }
        if let Some(res) = m.reservation() {
            out.push(w("memory", "memory.soft_limit_in_bytes", res));
        }
        if let Some(k) = m.kernel() {
            out.push(opt("memory", "memory.kmem.limit_in_bytes", k));
        }
        if let Some(k) = m.kernel_tcp() {
            out.push(opt("memory", "memory.kmem.tcp.limit_in_bytes", k));
        }
        if let Some(s) = m.swappiness() {
            if s > 100 {
                return Err(ResourceError::Invalid(
                    "memory.swappiness",
                    format!("{s} is over 100"),
                ));
            }
            out.push(w("memory", "memory.swappiness", s));
        }
        if m.disable_oom_killer() == Some(true) {
            out.push(w("memory", "memory.oom_control", 1));
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares() {
            out.push(w("cpu", "cpu.shares", s));
        }
        if let Some(p) = c.period() {
            out.push(w("cpu", "cpu.cfs_period_us", p));
        }
        if let Some(q) = c.quota() {
            out.push(w("cpu", "cpu.cfs_quota_us", q));
        }
        if let Some(b) = c.burst() {
            out.push(w("cpu", "cpu.cfs_burst_us", b));
        }
        if let Some(p) = c.realtime_period() {
            out.push(w("cpu", "cpu.rt_period_us", p));
        }
        if let Some(rt) = c.realtime_runtime() {
            out.push(w("cpu", "cpu.rt_runtime_us", rt));
        }
        if let Some(i) = c.idle() {
            out.push(w("cpu", "cpu.idle", i));
        }
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            out.push(w("cpuset", "cpuset.cpus", cpus));
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            out.push(w("cpuset", "cpuset.mems", mems));
        }
    }
    if let Some(p) = r.pids() {
        out.push(w("pids", "pids.max", limit_v2(p.limit())));
    }
    if let Some(b) = r.block_io() {
        if let Some(wt) = b.weight() {
            out.push(w("blkio", "blkio.weight", wt));
        }
        if let Some(wt) = b.leaf_weight() {
            out.push(opt("blkio", "blkio.leaf_weight", wt));
        }
        for d in b.weight_device().iter().flatten() {
            if let Some(wt) = d.weight() {
                out.push(w(
                    "blkio",
                    "blkio.weight_device",
                    format!("{}:{} {}", d.major(), d.minor(), wt),
                ));
            }
        }
        for (file, list) in [
            (
                "blkio.throttle.read_bps_device",
                b.throttle_read_bps_device(),
            ),
            (
                "blkio.throttle.write_bps_device",
                b.throttle_write_bps_device(),
            ),
            (
                "blkio.throttle.read_iops_device",
                b.throttle_read_iops_device(),
            ),
            (
                "blkio.throttle.write_iops_device",
                b.throttle_write_iops_device(),
            ),
        ] {
            for (maj, min, rate) in throttle(list) {
                out.push(w("blkio", file, format!("{maj}:{min} {rate}")));
            }
        }
    }
    for h in r.hugepage_limits().iter().flatten() {
        out.push(w(
            "hugetlb",
            format!("hugetlb.{}.limit_in_bytes", h.page_size()),
            h.limit(),
        ));
    }
    if let Some(n) = r.network() {
        if let Some(id) = n.class_id() {
            out.push(w("net_cls", "net_cls.classid", id));
        }
        for p in n.priorities().iter().flatten() {
            out.push(w(
                "net_prio",
                "net_prio.ifpriomap",
                format!("{} {}", p.name(), p.priority()),
            ));
        }
    }
    out.extend(rdma(r));
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(ResourceError::Invalid(
            "unified",
            "cgroup v2 settings on a cgroup v1 host".into(),
        ));
    }
    Ok(out)
}

fn rdma(r: &LinuxResources) -> Vec<Write> {
    let mut out = Vec::new();
    let mut devs: Vec<_> = r.rdma().iter().flatten().collect();
    devs.sort_by(|a, b| a.0.cmp(b.0));
    for (dev, l) in devs {
        let mut parts = vec![dev.clone()];
        if let Some(h) = l.hca_handles() {
            parts.push(format!("hca_handle={h}"));
        }
        if let Some(o) = l.hca_objects() {
            parts.push(format!("hca_object={o}"));
        }
        out.push(w("rdma", "rdma.max", parts.join(" ")));
    }
    out
}

/// cpu.shares (2..262144) to cpu.weight (1..10000), as runc and crun map it.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

/// blkio.weight (10..1000) to io.weight (1..10000).
pub fn blkio_to_io_weight(w: u16) -> u64 {
    let w = (w as u64).clamp(10, 1000);
    1 + ((w - 10) * 9999) / 990
}

pub fn plan_v2(r: &LinuxResources) -> Result<Vec<Write>, ResourceError> {
    let r = &normalized(r);
    let mut out = Vec::new();
    if let Some(m) = r.memory() {
        if let Some(res) = m.reservation() {
            out.push(w("memory", "memory.low", limit_v2(res)));
        }
        if let Some(l) = m.limit() {
            out.push(w("memory", "memory.max", limit_v2(l)));
        }
        // OCI swap is memory+swap (v1 memsw); v2's memory.swap.max is swap
        // alone: the difference, as runc converts it.
        if let Some(s) = m.swap() {
            let v = match (s, m.limit()) {
                (s, _) if s < 0 => "max".to_string(),
                (s, Some(l)) if l >= 0 => {
                    if s < l {
                        return Err(ResourceError::Invalid(
                            "memory.swap",
                            format!("{s} is below memory.limit {l} (swap is memory+swap)"),
                        ));
                    }
                    (s - l).to_string()
                }
                _ => {
                    return Err(ResourceError::Invalid(
                        "memory.swap",
                        "needs memory.limit on cgroup v2".into(),
                    ));
                }
            };
            out.push(w("memory", "memory.swap.max", v));
        }
        if m.disable_oom_killer() == Some(true) {
            return Err(ResourceError::Invalid(
                "memory.disableOOMKiller",
                "not supported on cgroup v2".into(),
            ));
        }
        // kernel, kernelTCP and swappiness have no v2 files; runc ignores them.
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares().filter(|s| *s > 0) {
            out.push(w("cpu", "cpu.weight", shares_to_weight(s)));
        }
        if c.quota().is_some() || c.period().is_some() {
            let quota = c.quota().map_or("max".to_string(), limit_v2);
            let period = c.period().unwrap_or(100_000);
            out.push(w("cpu", "cpu.max", format!("{quota} {period}")));
        }
        if let Some(b) = c.burst() {
            out.push(w("cpu", "cpu.max.burst", b));
        }
        if let Some(i) = c.idle() {
            out.push(w("cpu", "cpu.idle", i));
        }
        if c.realtime_runtime().is_some() || c.realtime_period().is_some() {
            return Err(ResourceError::Invalid(
                "cpu.realtimeRuntime",
                "realtime scheduling limits are not supported on cgroup v2".into(),
            ));
        }
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            out.push(w("cpuset", "cpuset.cpus", cpus));
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            out.push(w("cpuset", "cpuset.mems", mems));
        }
    }
    if let Some(p) = r.pids() {
        out.push(w("pids", "pids.max", limit_v2(p.limit())));
    }
    if let Some(b) = r.block_io() {
        if let Some(wt) = b.weight() {
            out.push(w("io", "io.weight", blkio_to_io_weight(wt)));
        }
        for d in b.weight_device().iter().flatten() {
            if let Some(wt) = d.weight() {
                out.push(w(
                    "io",
                    "io.weight",
                    format!("{}:{} {}", d.major(), d.minor(), blkio_to_io_weight(wt)),
                ));
            }
        }
        for (key, list) in [
            ("rbps", b.throttle_read_bps_device()),
            ("wbps", b.throttle_write_bps_device()),
            ("riops", b.throttle_read_iops_device()),
            ("wiops", b.throttle_write_iops_device()),
        ] {
            for (maj, min, rate) in throttle(list) {
                out.push(w("io", "io.max", format!("{maj}:{min} {key}={rate}")));
            }
        }
    }
    for h in r.hugepage_limits().iter().flatten() {
        out.push(w(
            "hugetlb",
            format!("hugetlb.{}.max", h.page_size()),
            h.limit(),
        ));
    }
    out.extend(rdma(r));
    if let Some(u) = r.unified() {
        let mut keys: Vec<_> = u.iter().collect();
        keys.sort();
        for (k, v) in keys {
            if k.contains('/') || k.starts_with('.') || !k.contains('.') {
                return Err(ResourceError::Invalid(
                    "unified",
                    format!("{k:?} is not a cgroup file name"),
                ));
            }
            let controller = controller_of_file(k);
            out.push(w(controller, k.clone(), v));
        }
    }
    Ok(out)
}

/// "memory.high" -> "memory"; core files (cgroup.*) have no controller.
fn controller_of_file(file: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "memory", "cpu", "cpuset", "io", "pids", "hugetlb", "rdma", "misc", "cgroup",
    ];
    let prefix = file.split('.').next().unwrap_or("");
    KNOWN
        .iter()
        .find(|k| **k == prefix)
        .copied()
        .unwrap_or("cgroup")
}

/// The v2 controllers a plan needs enabled in the parents' subtree_control.
pub fn controllers_needed(plan: &[Write]) -> Vec<&'static str> {
    let mut c: Vec<&'static str> = plan
        .iter()
        .map(|w| w.controller)
        .filter(|c| *c != "cgroup")
        .collect();
    c.sort();
    c.dedup();
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(j: &str) -> LinuxResources {
        serde_json::from_str(j).unwrap()
    }

    #[test]
    fn weights() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
        assert_eq!(blkio_to_io_weight(500), 4950);
    }

    #[test]
    fn v2_memory_and_cpu() {
        let r = res(
            r#"{"memory":{"limit":1048576,"swap":2097152,"reservation":524288},
                        "cpu":{"shares":1024,"quota":50000,"period":100000},"pids":{"limit":-1}}"#,
        );
        let p = plan_v2(&r).unwrap();
        let get = |f: &str| p.iter().find(|w| w.file == f).map(|w| w.value.clone());
        assert_eq!(get("memory.max").unwrap(), "1048576");
        assert_eq!(get("memory.swap.max").unwrap(), "1048576");
        assert_eq!(get("memory.low").unwrap(), "524288");
        assert_eq!(get("cpu.weight").unwrap(), "39");
        assert_eq!(get("cpu.max").unwrap(), "50000 100000");
        assert_eq!(get("pids.max").unwrap(), "max");
        assert_eq!(controllers_needed(&p), vec!["cpu", "memory", "pids"]);
    }

    #[test]
    fn zeros_mean_unset_as_engines_send_them() {
        let r = res(
            r#"{"memory":{"limit":134217728,"reservation":0,"swap":0,"kernel":0},
                        "cpu":{"shares":0,"quota":0,"period":0},"blockIO":{"weight":0},"pids":{"limit":0}}"#,
        );
        let p = plan_v1(&r).unwrap();
        let files: Vec<&str> = p.iter().map(|w| w.file.as_str()).collect();
        assert_eq!(files, vec!["memory.limit_in_bytes"]);
        let p = plan_v2(&r).unwrap();
        let files: Vec<&str> = p.iter().map(|w| w.file.as_str()).collect();
        assert_eq!(files, vec!["memory.max"]);
    }

    #[test]
    fn v2_rejects_what_it_cannot_do() {
        assert!(plan_v2(&res(r#"{"memory":{"limit":10,"swap":5}}"#)).is_err());
        assert!(plan_v2(&res(r#"{"memory":{"disableOOMKiller":true}}"#)).is_err());
        assert!(plan_v2(&res(r#"{"unified":{"../etc/passwd":"x"}}"#)).is_err());
        assert!(plan_v2(&res(r#"{"cpu":{"realtimeRuntime":10}}"#)).is_err());
        let p = plan_v2(&res(r#"{"unified":{"memory.high":"123"}}"#)).unwrap();
        assert_eq!(p[0].controller, "memory");
    }

    #[test]
    fn v1_files() {
        let r = res(
            r#"{"memory":{"limit":1048576,"swappiness":10},"cpu":{"quota":1000,"period":2000,"cpus":"0"},
                        "blockIO":{"weight":500,"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":100}]},
                        "hugepageLimits":[{"pageSize":"2MB","limit":4194304}],"pids":{"limit":10}}"#,
        );
        let p = plan_v1(&r).unwrap();
        let files: Vec<&str> = p.iter().map(|w| w.file.as_str()).collect();
        assert!(files.contains(&"memory.limit_in_bytes"));
        let period = files
            .iter()
            .position(|f| *f == "cpu.cfs_period_us")
            .unwrap();
        let quota = files.iter().position(|f| *f == "cpu.cfs_quota_us").unwrap();
        assert!(period < quota, "period must be set before quota");
        assert!(
            p.iter()
                .any(|w| w.file == "blkio.throttle.read_bps_device" && w.value == "8:0 100")
        );
        assert!(p.iter().any(|w| w.file == "hugetlb.2MB.limit_in_bytes"));
        assert!(p.iter().any(|w| w.file == "pids.max" && w.value == "10"));
        assert!(plan_v1(&res(r#"{"memory":{"swappiness":101}}"#)).is_err());
    }

    #[test]
    fn memsw_goes_first_only_when_the_limit_rises_past_it() {
        let files = |p: &[Write]| p.iter().map(|w| w.file.clone()).collect::<Vec<_>>();
        let both = r#"{"memory":{"limit":268435456,"swap":536870912}}"#;
        let base = plan_v1(&res(both)).unwrap();
        assert_eq!(
            files(&base)[..2],
            ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
        );
        // Current memsw 128 MiB, new limit 256 MiB: memsw first.
        let mut p = base.clone();
        order_memsw_v1(&mut p, Some(128 << 20));
        assert_eq!(
            files(&p)[..2],
            ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
        );
        // Lowering, or an unlimited memsw now: the limit first.
        for cur in [Some(1 << 30), None] {
            let mut p = base.clone();
            order_memsw_v1(&mut p, cur);
            assert_eq!(p, base);
        }
        // An unlimited new limit is above any current memsw.
        let mut p = plan_v1(&res(r#"{"memory":{"limit":-1,"swap":-1}}"#)).unwrap();
        order_memsw_v1(&mut p, Some(128 << 20));
        assert_eq!(p[0].file, "memory.memsw.limit_in_bytes");
        assert!(plan_v1(&res(r#"{"unified":{"memory.high":"1"}}"#)).is_err());
    }
}
