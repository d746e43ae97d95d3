//! The targets for rrun, each judged on a figure the report shows
//! (never a separate measurement): pure functions of the results, so the
//! judgement is tested apart from any runtime.
//!
//! Which columns: against crun, the wrapped rrun column (both pay the same
//! mount namespace and umount per command); against unshare(1), which runs
//! unwrapped, plain rrun; parallel failures count every rrun column.

use serde::Serialize;

use crate::bench::Results;
use crate::stats::stats;

/// How the target asks the value to compare with its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    /// No failure and no leftover, at the N.
    NoFailures,
    AtMost(f64),
    Below(f64),
    AtLeast(f64),
}

impl Goal {
    fn holds(self, v: f64) -> bool {
        match self {
            Goal::NoFailures => v == 0.0,
            Goal::AtMost(t) => v <= t,
            Goal::Below(t) => v < t,
            Goal::AtLeast(t) => v >= t,
        }
    }

    pub fn text(self) -> String {
        match self {
            Goal::NoFailures => format!("0 at N ≥ {PARALLEL_GOAL}"),
            Goal::AtMost(t) => format!("≤ {t}"),
            Goal::Below(t) => format!("< {t}"),
            Goal::AtLeast(t) => format!("≥ {t}"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// The wording.
    pub target: &'static str,
    /// The figure and the columns it is judged on.
    pub figure: String,
    /// The compared number (a ratio, or a count for the parallel target).
    pub value: Option<f64>,
    /// The value with what it was computed from.
    pub shown: String,
    pub goal: Goal,
    /// None: not measured in this run (see `note`).
    pub met: Option<bool>,
    pub note: String,
}

impl Target {
    pub fn status(&self) -> &'static str {
        match self.met {
            Some(true) => "met",
            Some(false) => "not met",
            None => "n/a",
        }
    }
}

pub const RRUN: &str = "rrun";
pub const RRUN_W: &str = "rrun (wrapped)";
pub const CRUN_W: &str = "crun (wrapped)";

/// The parallel target is for this many containers at once.
pub const PARALLEL_GOAL: usize = 100;

fn median(res: &Results, key: &str, rt: &str) -> Option<f64> {
    stats(res.samples.get(key)?.get(rt)?).map(|s| s.median)
}

fn baseline_median(res: &Results, key: &str) -> Option<f64> {
    stats(&res.baselines.get(key)?.1).map(|s| s.median)
}

/// A target whose value is `a / b` of two medians.
fn ratio_target(
    target: &'static str,
    figure: String,
    goal: Goal,
    a: Option<f64>,
    b: Option<f64>,
    unit: &str,
    missing: &str,
) -> Target {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => {
            let r = a / b;
            let digits = match unit {
                "s" => 2,
                "KiB" => 0,
                _ => 1,
            };
            Target {
                target,
                figure,
                value: Some(r),
                shown: format!("{r:.2} ({a:.digits$} / {b:.digits$} {unit})"),
                goal,
                met: Some(goal.holds(r)),
                note: String::new(),
            }
        }
        _ => Target {
            target,
            figure,
            value: None,
            shown: "–".into(),
            goal,
            met: None,
            note: missing.into(),
        },
    }
}

/// Every target of the issue, in its order. `parallel` is this run's N.
pub fn judge(res: &Results, parallel: usize) -> Vec<Target> {
    let mut out = Vec::new();

    let mut t = ratio_target(
        "full lifecycle ≤ 0.6× crun's median (aim for 0.5×)",
        format!("run /bin/true, {RRUN_W} / {CRUN_W}"),
        Goal::AtMost(0.6),
        median(res, "run", RRUN_W),
        median(res, "run", CRUN_W),
        "ms",
        "crun (wrapped) or rrun (wrapped) not measured",
    );
    if let Some(r) = t.value {
        t.note = format!("aim 0.5×: {}", if r <= 0.5 { "met" } else { "not met" });
        // Both wrapped columns pay the same wrapper (timed alone in the same
        // rotation): what the runtimes themselves compare to without it.
        if let (Some(a), Some(b), Some(w)) = (
            median(res, "run", RRUN_W),
            median(res, "run", CRUN_W),
            baseline_median(res, "wrapper"),
        ) && b > w
        {
            t.note.push_str(&format!(
                "; net of the wrapper alone ({w:.1} ms): {:.2}",
                (a - w).max(0.0) / (b - w)
            ));
        }
    }
    out.push(t);

    out.push(ratio_target(
        "within 2.5× of `unshare --pid --fork --mount --net --uts --ipc --cgroup true`",
        format!("run /bin/true, {RRUN} / unshare baseline (both unwrapped)"),
        Goal::AtMost(2.5),
        median(res, "run", RRUN),
        baseline_median(res, "unshare"),
        "ms",
        "unshare baseline not measured",
    ));

    out.push(ratio_target(
        "peak RSS below crun's",
        format!("create peak RSS, {RRUN_W} / {CRUN_W}"),
        Goal::Below(1.0),
        median(res, "create_rss", RRUN_W),
        median(res, "create_rss", CRUN_W),
        "MiB",
        "crun (wrapped) or rrun (wrapped) not measured",
    ));

    let pss = |name: &str| {
        res.init
            .iter()
            .find(|r| r.name == name && r.implemented)
            .and_then(|r| r.pss_kib)
            .map(|v| v as f64)
    };
    out.push(ratio_target(
        "init PSS below catatonit's",
        "PID 1 idle PSS, rrun init / catatonit".into(),
        Goal::Below(1.0),
        pss("rrun init"),
        pss("catatonit"),
        "KiB",
        "rrun init or catatonit not measured",
    ));

    // The aim for `rrun app`'s per-app monitor (conmon's and the
    // shim's figures are beside it in the report).
    let mon = res
        .monitor
        .iter()
        .find(|r| r.name == "rrun-monitor")
        .and_then(|r| r.pss_kib)
        .map(|v| v as f64);
    let goal = Goal::Below(300.0);
    out.push(Target {
        target: "per-app monitor idle PSS under 300 KiB",
        figure: "per-app monitor idle PSS, rrun-monitor alone (no sharing)".into(),
        value: mon,
        shown: mon.map(|v| format!("{v:.0} KiB")).unwrap_or_default(),
        goal,
        met: mon.map(|v| goal.holds(v)),
        note: if mon.is_some() {
            String::new()
        } else {
            "monitor phase not run".into()
        },
    });

    // Throughput of the same image: umoci's time over rrun's.
    let unpack = res.unpack.as_ref().filter(|u| u.rrun_supported);
    let um = unpack.and_then(|u| stats(&u.umoci_s)).map(|s| s.median);
    let rr = unpack.and_then(|u| stats(&u.rrun_s)).map(|s| s.median);
    let mut t = ratio_target(
        "unpack at least 2× umoci's throughput",
        "image unpack wall time, umoci / rrun (= rrun's throughput ÷ umoci's)".into(),
        Goal::AtLeast(2.0),
        um,
        rr,
        "s",
        "unpack not measured (umoci or `rrun unpack` missing)",
    );
    if let Some(u) = unpack {
        t.note = format!(
            "image: {:.0} MiB",
            u.image_bytes as f64 / (1u64 << 20) as f64
        );
    }
    out.push(t);

    out.push(parallel_target(res, parallel));
    out
}

fn parallel_target(res: &Results, parallel: usize) -> Target {
    let mut fails = 0.0;
    let mut left = 0.0;
    let mut batches = 0;
    let mut cols = Vec::new();
    for rt in [RRUN, RRUN_W] {
        let mut seen = false;
        for key in [
            "par_failures",
            "parlim_failures",
            "par_leftovers",
            "parlim_leftovers",
        ] {
            if let Some(v) = res.samples.get(key).and_then(|m| m.get(rt)) {
                let n: f64 = v.iter().sum();
                if key.ends_with("failures") {
                    fails += n;
                    batches += v.len();
                } else {
                    left += n;
                }
                seen = true;
            }
        }
        if seen {
            cols.push(rt);
        }
    }
    let figure = format!(
        "parallel N create/start/delete, plain and with limits, {}",
        if cols.is_empty() {
            "rrun".to_owned()
        } else {
            cols.join(" + ")
        }
    );
    let goal = Goal::NoFailures;
    if batches == 0 {
        return Target {
            target: "100 parallel lifecycles with 0 failures",
            figure,
            value: None,
            shown: "–".into(),
            goal,
            met: None,
            note: "parallel phase not run".into(),
        };
    }
    let bad = fails + left;
    let met = if !goal.holds(bad) {
        Some(false)
    } else if parallel >= PARALLEL_GOAL {
        Some(true)
    } else {
        None
    };
    Target {
        target: "100 parallel lifecycles with 0 failures",
        figure,
        value: Some(bad),
        shown: format!(
            "{fails:.0} failures, {left:.0} leftovers in {} lifecycles (N = {parallel})",
            batches * parallel
        ),
        goal,
        met,
        note: if met.is_none() {
            format!("needs N ≥ {PARALLEL_GOAL}; this run had N = {parallel}")
        } else {
            String::new()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{InitRow, UnpackResult};

    fn with(samples: &[(&'static str, &str, &[f64])]) -> Results {
        let mut r = Results::default();
        for (k, rt, v) in samples {
            for x in *v {
                r.add(k, rt, *x);
            }
        }
        r
    }

    fn find(ts: &[Target], prefix: &str) -> Target {
        ts.iter()
            .find(|t| t.target.starts_with(prefix))
            .unwrap()
            .clone()
    }

    #[test]
    fn lifecycle_uses_the_wrapped_columns() {
        let r = with(&[
            ("run", RRUN, &[100.0]),
            ("run", RRUN_W, &[11.0, 12.0, 13.0]),
            ("run", CRUN_W, &[20.0]),
        ]);
        let t = find(&judge(&r, 100), "full lifecycle");
        assert_eq!(t.value, Some(0.6));
        assert_eq!(t.met, Some(true));
        assert_eq!(t.note, "aim 0.5×: not met");
        let mut r = with(&[("run", RRUN_W, &[12.0]), ("run", CRUN_W, &[20.0])]);
        r.baselines.insert("wrapper", ("w".into(), vec![4.0]));
        let t = find(&judge(&r, 100), "full lifecycle");
        assert_eq!(t.value, Some(0.6));
        assert!(
            t.note.ends_with("net of the wrapper alone (4.0 ms): 0.50"),
            "{}",
            t.note
        );
        let r = with(&[("run", RRUN_W, &[13.0]), ("run", CRUN_W, &[20.0])]);
        assert_eq!(find(&judge(&r, 100), "full lifecycle").met, Some(false));
    }

    #[test]
    fn missing_figures_are_not_judged() {
        let ts = judge(&Results::default(), 100);
        assert_eq!(ts.len(), 7);
        assert!(ts.iter().all(|t| t.met.is_none() && t.status() == "n/a"));
    }

    #[test]
    fn monitor_pss_is_judged_alone_against_300_kib() {
        use crate::bench::InitRow;
        let row = |name: &str, pss| InitRow {
            name: name.into(),
            implemented: true,
            pid1_exe: name.into(),
            pss_kib: Some(pss),
            rss_kib: None,
            idle_cpu_ticks: None,
            idle_secs: 1,
        };
        let mut r = Results {
            monitor: vec![row("conmon", 1000), row("rrun-monitor", 299)],
            ..Default::default()
        };
        let t = find(&judge(&r, 100), "per-app monitor");
        assert_eq!((t.value, t.met), (Some(299.0), Some(true)));
        r.monitor[1].pss_kib = Some(300);
        assert_eq!(find(&judge(&r, 100), "per-app monitor").met, Some(false));
    }

    #[test]
    fn unshare_ratio_uses_plain_rrun() {
        let mut r = with(&[("run", RRUN, &[10.0]), ("run", RRUN_W, &[99.0])]);
        r.baselines.insert("unshare", ("u".into(), vec![4.0, 4.0]));
        let t = find(&judge(&r, 100), "within 2.5×");
        assert_eq!(t.value, Some(2.5));
        assert_eq!(t.met, Some(true));
    }

    #[test]
    fn rss_and_pss_must_be_strictly_below() {
        let mut r = with(&[
            ("create_rss", RRUN_W, &[3.3]),
            ("create_rss", CRUN_W, &[3.3]),
        ]);
        for (name, pss) in [("catatonit", 700), ("rrun init", 650)] {
            r.init.push(InitRow {
                name: name.into(),
                implemented: true,
                pid1_exe: name.into(),
                pss_kib: Some(pss),
                rss_kib: None,
                idle_cpu_ticks: None,
                idle_secs: 1,
            });
        }
        let ts = judge(&r, 100);
        assert_eq!(find(&ts, "peak RSS").met, Some(false));
        assert_eq!(find(&ts, "init PSS").met, Some(true));
    }

    #[test]
    fn unpack_is_a_throughput_ratio() {
        let r = Results {
            unpack: Some(UnpackResult {
                image_bytes: 1 << 20,
                image_src: "x".into(),
                rrun_supported: true,
                umoci_s: vec![10.0],
                umoci_rss_mib: vec![],
                rrun_s: vec![5.0],
                rrun_rss_mib: vec![],
            }),
            ..Default::default()
        };
        let t = find(&judge(&r, 100), "unpack");
        assert_eq!(t.value, Some(2.0));
        assert_eq!(t.met, Some(true));
    }

    #[test]
    fn parallel_needs_n_100_and_no_failure_in_any_rrun_column() {
        let r = with(&[
            ("par_failures", RRUN, &[0.0, 0.0]),
            ("parlim_failures", RRUN, &[0.0, 0.0]),
            ("par_failures", RRUN_W, &[0.0, 0.0]),
            ("parlim_failures", RRUN_W, &[0.0, 1.0]),
            ("par_leftovers", RRUN, &[0.0, 0.0]),
        ]);
        let t = find(&judge(&r, 100), "100 parallel");
        assert_eq!(t.met, Some(false));
        assert!(t.shown.starts_with("1 failures, 0 leftovers in 800"));
        let r = with(&[
            ("par_failures", RRUN, &[0.0]),
            ("par_failures", "runc", &[5.0]),
        ]);
        assert_eq!(find(&judge(&r, 100), "100 parallel").met, Some(true));
        let t = judge(&r, 10);
        assert_eq!(find(&t, "100 parallel").met, None);
    }
}
