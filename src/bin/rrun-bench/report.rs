//! The report: a text table (median and p10–p90 per runtime, ratios of rrun
//! to each peer), the same as JSON, and an SVG bar chart of the ratios.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::bench::{InitRow, Results, UnpackResult};
use crate::stats::{Stats, stats};
use crate::targets::{self, Target};

pub struct Figure {
    pub key: &'static str,
    pub label: &'static str,
    pub unit: &'static str,
}

const fn fig(key: &'static str, label: &'static str, unit: &'static str) -> Figure {
    Figure { key, label, unit }
}

/// The figures in report order. "count" figures are totals, not timings.
pub const FIGURES: &[Figure] = &[
    fig("run", "run /bin/true (foreground)", "ms"),
    fig("create", "create", "ms"),
    fig("start", "start", "ms"),
    fig("delete", "delete", "ms"),
    fig("csd", "create+start+delete (sum)", "ms"),
    fig("exec", "exec /bin/true", "ms"),
    fig("create_rss", "create peak RSS (ru_maxrss)", "MiB"),
    fig("create_cpu", "create CPU user+sys", "ms"),
    fig("run_nosec", "run, no seccomp", "ms"),
    fig("run_sec", "run, podman seccomp profile", "ms"),
    fig(
        "seccomp_run_cost",
        "seccomp cost in run (paired diff)",
        "ms",
    ),
    fig("create_nosec", "create, no seccomp", "ms"),
    fig("create_sec", "create, podman seccomp profile", "ms"),
    fig(
        "seccomp_create_cost",
        "seccomp cost in create (paired diff)",
        "ms",
    ),
    fig("par_wall", "parallel N create/start/delete", "s"),
    fig("parlim_wall", "parallel N, pids+memory limits", "s"),
    fig("par_failures", "parallel failures (must be 0)", "count"),
    fig("par_leftovers", "parallel leftovers (must be 0)", "count"),
    fig(
        "parlim_failures",
        "parallel+limits failures (must be 0)",
        "count",
    ),
    fig(
        "parlim_leftovers",
        "parallel+limits leftovers (must be 0)",
        "count",
    ),
];

/// rrun column / peer column: the comparisons we report.
pub const PAIRS: &[(&str, &str)] = &[
    ("rrun", "runc"),
    ("rrun (wrapped)", "crun (wrapped)"),
    ("rrun", "youki"),
];

fn pair_label(a: &str, b: &str) -> String {
    let short = |s: &str| s.replace(" (wrapped)", "(w)");
    format!("{}/{}", short(a), short(b))
}

fn num(v: f64, unit: &str) -> String {
    match unit {
        "s" => format!("{v:.2}"),
        "count" => format!("{v:.0}"),
        _ if v.abs() >= 100.0 => format!("{v:.0}"),
        _ => format!("{v:.1}"),
    }
}

fn cell(s: &Stats, unit: &str) -> String {
    format!(
        "{} ({}–{})",
        num(s.median, unit),
        num(s.p10, unit),
        num(s.p90, unit)
    )
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0 && a >= 0.0).then(|| a / b)
}

pub struct Report<'a> {
    pub machine: Value,
    pub runtimes: Vec<(String, String)>,
    pub res: &'a Results,
    pub mode: &'static str,
    pub parallel: usize,
}

impl Report<'_> {
    fn names(&self) -> Vec<&str> {
        self.runtimes.iter().map(|(n, _)| n.as_str()).collect()
    }

    fn pairs(&self) -> Vec<(&'static str, &'static str)> {
        let names = self.names();
        PAIRS
            .iter()
            .filter(|(a, b)| names.contains(a) && names.contains(b))
            .copied()
            .collect()
    }

    fn stat(&self, key: &str, rt: &str) -> Option<Stats> {
        stats(self.res.samples.get(key)?.get(rt)?)
    }

    fn total(&self, key: &str, rt: &str) -> Option<f64> {
        Some(self.res.samples.get(key)?.get(rt)?.iter().sum())
    }

    /// (figure, pair label, ratio) for every timed figure both sides have.
    pub fn ratios(&self) -> Vec<(&'static Figure, String, f64)> {
        let mut out = Vec::new();
        for f in FIGURES.iter().filter(|f| f.unit != "count") {
            for (a, b) in self.pairs() {
                if let (Some(x), Some(y)) = (self.stat(f.key, a), self.stat(f.key, b))
                    && let Some(r) = ratio(x.median, y.median)
                {
                    out.push((f, pair_label(a, b), r));
                }
            }
        }
        out
    }

    pub fn targets(&self) -> Vec<Target> {
        targets::judge(self.res, self.parallel)
    }

    fn unshare_median(&self) -> Option<f64> {
        stats(&self.res.baselines.get("unshare")?.1).map(|s| s.median)
    }

    /// Each runtime's `run` median over the unshare baseline's.
    fn unshare_ratios(&self) -> Vec<(String, f64)> {
        let Some(base) = self.unshare_median() else {
            return Vec::new();
        };
        self.names()
            .into_iter()
            .filter_map(|n| Some((n.to_owned(), ratio(self.stat("run", n)?.median, base)?)))
            .collect()
    }

    /// The table row under `run`: run / unshare baseline per runtime.
    fn baseline_row(&self, names: &[&str], npairs: usize) -> Option<Vec<String>> {
        let ratios = self.unshare_ratios();
        if ratios.is_empty() {
            return None;
        }
        let mut row = vec!["  ÷ unshare baseline (below)".to_string(), "×".into()];
        for n in names {
            row.push(
                ratios
                    .iter()
                    .find(|(m, _)| m == n)
                    .map(|(_, r)| format!("{r:.2}"))
                    .unwrap_or("–".into()),
            );
        }
        row.extend((0..npairs).map(|_| "–".to_string()));
        Some(row)
    }

    fn baselines_text(&self) -> String {
        let mut o = String::new();
        if self.res.baselines.is_empty() {
            return o;
        }
        let _ = writeln!(
            o,
            "\nbaselines, timed in the same rotation as `run` (no runtime involved):"
        );
        let mut rows = vec![vec!["baseline".to_string(), "ms".into()]];
        for (label, samples) in self.res.baselines.values() {
            rows.push(vec![
                label.clone(),
                stats(samples).map(|s| cell(&s, "ms")).unwrap_or("–".into()),
            ]);
        }
        o.push_str(&table(&rows));
        o
    }

    pub fn text(&self) -> String {
        let mut o = String::new();
        let m = &self.machine;
        let _ = writeln!(
            o,
            "machine: {} | {} cores | Linux {} | {:.1} GiB | cgroups: {} | /run (state roots): {}",
            m["cpu"].as_str().unwrap_or("?"),
            m["cores"],
            m["kernel"].as_str().unwrap_or("?"),
            m["mem_gib"].as_f64().unwrap_or(0.0),
            m["cgroups"].as_str().unwrap_or("?"),
            m["state_fs"].as_str().unwrap_or("?")
        );
        let _ = writeln!(
            o,
            "mode: {} (N = {} for the parallel figures)",
            self.mode, self.parallel
        );
        for (n, v) in &self.runtimes {
            let _ = writeln!(o, "  {n}: {v}");
        }
        let _ = writeln!(
            o,
            "cells: median (p10–p90); ratios: median of rrun / median of the peer (< 1: rrun better)\n"
        );

        let names = self.names();
        let pairs = self.pairs();
        let mut header: Vec<String> = vec!["figure".into(), "unit".into()];
        header.extend(names.iter().map(|s| s.to_string()));
        header.extend(pairs.iter().map(|(a, b)| pair_label(a, b)));
        let mut rows = vec![header];
        for f in FIGURES {
            if !self.res.samples.contains_key(f.key) {
                continue;
            }
            let mut row = vec![f.label.to_string(), f.unit.to_string()];
            for n in &names {
                row.push(if f.unit == "count" {
                    self.total(f.key, n)
                        .map(|t| num(t, "count"))
                        .unwrap_or("–".into())
                } else {
                    self.stat(f.key, n)
                        .map(|s| cell(&s, f.unit))
                        .unwrap_or("–".into())
                });
            }
            for (a, b) in &pairs {
                let r = match (self.stat(f.key, a), self.stat(f.key, b)) {
                    (Some(x), Some(y)) if f.unit != "count" => ratio(x.median, y.median),
                    _ => None,
                };
                row.push(r.map(|r| format!("{r:.2}")).unwrap_or("–".into()));
            }
            rows.push(row);
            if f.key == "run"
                && let Some(row) = self.baseline_row(&names, pairs.len())
            {
                rows.push(row);
            }
        }
        o.push_str(&table(&rows));
        o.push_str(&self.baselines_text());

        if !self.res.init.is_empty() {
            let _ = writeln!(
                o,
                "\nPID 1 idle (same `sleep` supervised, started by rrun):"
            );
            let mut rows = vec![vec![
                "init".to_string(),
                "PID 1 exe".into(),
                "PSS KiB".into(),
                "RSS KiB".into(),
                "idle CPU ticks".into(),
            ]];
            for r in &self.res.init {
                rows.push(init_row(r));
            }
            o.push_str(&table(&rows));
        }
        if !self.res.monitor.is_empty() {
            o.push_str(&monitor_text(&self.res.monitor));
        }
        if let Some(u) = &self.res.unpack {
            o.push_str(&unpack_text(u));
        }
        o.push_str(&targets_text(&self.targets(), self.mode));
        let _ = writeln!(o);
        for (rt, (n, why)) in &self.res.failures {
            let _ = writeln!(o, "failures: {rt}: {n} ({})", why.join("; "));
        }
        for (rt, n) in &self.res.leftovers {
            if *n > 0 {
                let _ = writeln!(o, "leftovers: {rt}: {n}");
            }
        }
        for note in &self.res.notes {
            let _ = writeln!(o, "note: {note}");
        }
        o
    }

    pub fn json(&self) -> Value {
        let names = self.names();
        let figures: Vec<Value> = FIGURES
            .iter()
            .filter(|f| self.res.samples.contains_key(f.key))
            .map(|f| {
                let per: serde_json::Map<String, Value> = names
                    .iter()
                    .filter_map(|n| {
                        let v = if f.unit == "count" {
                            json!({"total": self.total(f.key, n)?})
                        } else {
                            serde_json::to_value(self.stat(f.key, n)?).ok()?
                        };
                        Some((n.to_string(), v))
                    })
                    .collect();
                let ratios: serde_json::Map<String, Value> = self
                    .ratios()
                    .into_iter()
                    .filter(|(g, _, _)| g.key == f.key)
                    .map(|(_, p, r)| (p, json!(r)))
                    .collect();
                json!({"key": f.key, "label": f.label, "unit": f.unit, "runtimes": per, "ratios": ratios})
            })
            .collect();
        let unpack = self.res.unpack.as_ref().map(|u| {
            json!({
                "image_bytes": u.image_bytes,
                "image_src": u.image_src,
                "rrun_unpack": if u.rrun_supported { json!(true) } else { json!("n/a (no `rrun unpack` subcommand)") },
                "umoci_s": stats(&u.umoci_s),
                "umoci_rss_mib": stats(&u.umoci_rss_mib),
                "rrun_s": stats(&u.rrun_s),
                "rrun_rss_mib": stats(&u.rrun_rss_mib),
                "ratio_rrun_umoci": match (stats(&u.rrun_s), stats(&u.umoci_s)) {
                    (Some(a), Some(b)) => ratio(a.median, b.median),
                    _ => None,
                },
            })
        });
        let failures: serde_json::Map<String, Value> = self
            .res
            .failures
            .iter()
            .map(|(k, (n, why))| (k.clone(), json!({"count": n, "first": why})))
            .collect();
        json!({
            "mode": self.mode,
            "parallel": self.parallel,
            "machine": self.machine,
            "runtimes": self.runtimes.iter().map(|(n, v)| json!({"name": n, "version": v})).collect::<Vec<_>>(),
            "figures": figures,
            "baselines": self.baselines_json(),
            "targets": self.targets().iter().map(|t| {
                let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
                v["status"] = json!(t.status());
                v
            }).collect::<Vec<_>>(),
            "init": self.res.init,
            "monitor": self.res.monitor,
            "unpack": unpack,
            "failures": failures,
            "leftovers": self.res.leftovers,
            "notes": self.res.notes,
        })
    }

    /// Each baseline's samples; the unshare one with every runtime's
    /// `run` median over its median.
    fn baselines_json(&self) -> Value {
        let mut out = serde_json::Map::new();
        for (key, (label, samples)) in &self.res.baselines {
            let mut v = json!({"label": label, "ms": stats(samples)});
            if *key == "unshare" {
                let r: serde_json::Map<String, Value> = self
                    .unshare_ratios()
                    .into_iter()
                    .map(|(n, r)| (n, json!(r)))
                    .collect();
                v["run_ratio"] = Value::Object(r);
            }
            out.insert(key.to_string(), v);
        }
        Value::Object(out)
    }

    /// Horizontal bars of rrun/peer ratios, one group per figure, a line at 1.
    pub fn svg(&self) -> String {
        let ratios = self.ratios();
        let mut extra: Vec<(String, String, f64)> = Vec::new();
        if let Some(u) = &self.res.unpack
            && let (Some(a), Some(b)) = (stats(&u.rrun_s), stats(&u.umoci_s))
            && let Some(r) = ratio(a.median, b.median)
        {
            extra.push(("image unpack".into(), "rrun/umoci".into(), r));
        }
        let bars: Vec<(String, String, f64)> = ratios
            .into_iter()
            .map(|(f, p, r)| (f.label.to_string(), p, r))
            .chain(extra)
            .collect();
        let colors = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1"];
        let pair_names: Vec<String> = {
            let mut v: Vec<String> = bars.iter().map(|b| b.1.clone()).collect();
            v.dedup();
            let mut seen = Vec::new();
            for p in v {
                if !seen.contains(&p) {
                    seen.push(p);
                }
            }
            seen
        };
        let max = bars.iter().map(|b| b.2).fold(1.5_f64, f64::max).min(4.0);
        let (left, width, bar_h, gap) = (300.0, 520.0, 14.0, 2.0);
        let scale = |r: f64| width * r.min(max) / max;
        let mut y = 60.0;
        let mut body = String::new();
        let mut last_label = String::new();
        for (label, pair, r) in &bars {
            if *label != last_label {
                y += 8.0;
                let _ = writeln!(
                    body,
                    r#"<text x="{}" y="{}" text-anchor="end" font-size="12">{}</text>"#,
                    left - 8.0,
                    y + bar_h - 3.0,
                    esc(label)
                );
                last_label = label.clone();
            }
            let ci = pair_names.iter().position(|p| p == pair).unwrap_or(0) % colors.len();
            let _ = writeln!(
                body,
                r#"<rect x="{left}" y="{y}" width="{:.1}" height="{bar_h}" fill="{}"><title>{} {}: {:.2}</title></rect>"#,
                scale(*r),
                colors[ci],
                esc(label),
                esc(pair),
                r
            );
            let _ = writeln!(
                body,
                r#"<text x="{:.1}" y="{}" font-size="11">{:.2}{}</text>"#,
                left + scale(*r) + 4.0,
                y + bar_h - 3.0,
                r,
                if *r > max { " (clipped)" } else { "" }
            );
            y += bar_h + gap;
        }
        let height = y + 40.0;
        let total_w = left + width + 80.0;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{height}" font-family="sans-serif">"#
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="10" y="22" font-size="15" font-weight="bold">rrun / peer, median ratio (&lt; 1: rrun faster or smaller)</text>"#
        );
        let mut lx = 10.0;
        for (i, p) in pair_names.iter().enumerate() {
            let _ = writeln!(
                s,
                r#"<rect x="{lx}" y="34" width="12" height="12" fill="{}"/><text x="{}" y="45" font-size="12">{}</text>"#,
                colors[i % colors.len()],
                lx + 16.0,
                esc(p)
            );
            lx += 30.0 + 8.0 * p.len() as f64;
        }
        s.push_str(&body);
        let one = left + scale(1.0);
        let _ = writeln!(
            s,
            r#"<line x1="{one:.1}" y1="52" x2="{one:.1}" y2="{:.1}" stroke="black" stroke-dasharray="4 3"/><text x="{one:.1}" y="{:.1}" font-size="11" text-anchor="middle">1.0</text>"#,
            y + 4.0,
            y + 18.0
        );
        s.push_str("</svg>\n");
        s
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn init_row(r: &InitRow) -> Vec<String> {
    if !r.implemented {
        let why = if r.name == "rrun init" {
            "n/a (not implemented)".to_string()
        } else {
            format!("n/a (PID 1 is {})", r.pid1_exe)
        };
        return vec![
            r.name.clone(),
            r.pid1_exe.clone(),
            why,
            "–".into(),
            "–".into(),
        ];
    }
    let opt = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or("?".into());
    vec![
        r.name.clone(),
        r.pid1_exe.clone(),
        opt(r.pss_kib),
        opt(r.rss_kib),
        format!("{} in {} s", opt(r.idle_cpu_ticks), r.idle_secs),
    ]
}

/// The per-app monitors' idle table and rrun-monitor's PSS ratio to each
/// peer's.
fn monitor_text(rows: &[InitRow]) -> String {
    let mut o =
        String::from("\nPer-app monitor idle (one each; the shim holds no task: a lower bound):\n");
    let mut t = vec![vec![
        "monitor".to_string(),
        "exe".into(),
        "PSS KiB".into(),
        "RSS KiB".into(),
        "idle CPU ticks".into(),
    ]];
    t.extend(rows.iter().map(init_row));
    o.push_str(&table(&t));
    let pss = |name: &str| rows.iter().find(|r| r.name == name).and_then(|r| r.pss_kib);
    if let Some(me) = pss("rrun-monitor") {
        for peer in ["conmon", "containerd-shim-runc-v2"] {
            if let Some(r) = pss(peer).and_then(|p| ratio(me as f64, p as f64)) {
                let _ = writeln!(
                    o,
                    "rrun-monitor PSS / {peer}'s: {r:.3} ({me} / {} KiB)",
                    pss(peer).unwrap_or(0)
                );
            }
        }
    }
    o
}

fn targets_text(ts: &[Target], mode: &str) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "\ntargets (judged on the figures above; vs crun: the wrapped columns, vs unshare: plain rrun):"
    );
    if mode == "smoke" {
        let _ = writeln!(
            o,
            "(smoke mode: few repetitions, tiny image, usually a debug build: not a verdict)"
        );
    }
    let mut rows = vec![vec![
        "target".to_string(),
        "measured".into(),
        "goal".into(),
        "status".into(),
        "figure used; note".into(),
    ]];
    let met = ts.iter().filter(|t| t.met == Some(true)).count();
    for t in ts {
        let mut fig = t.figure.clone();
        if !t.note.is_empty() {
            fig.push_str("; ");
            fig.push_str(&t.note);
        }
        rows.push(vec![
            t.target.to_string(),
            t.shown.clone(),
            t.goal.text(),
            t.status().to_string(),
            fig,
        ]);
    }
    o.push_str(&table(&rows));
    let _ = writeln!(o, "{met} of {} targets met", ts.len());
    o
}

fn unpack_text(u: &UnpackResult) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "\nimage unpack ({:.0} MiB of blobs from {}):",
        u.image_bytes as f64 / (1u64 << 20) as f64,
        u.image_src
    );
    let mut rows = vec![vec![
        "tool".to_string(),
        "wall s".into(),
        "peak RSS MiB".into(),
        "rrun/umoci".into(),
    ]];
    let s = |v: &[f64], unit: &str| stats(v).map(|x| cell(&x, unit)).unwrap_or("–".into());
    rows.push(vec![
        "umoci unpack".into(),
        s(&u.umoci_s, "s"),
        s(&u.umoci_rss_mib, "MiB"),
        String::new(),
    ]);
    if u.rrun_supported {
        let r = match (stats(&u.rrun_s), stats(&u.umoci_s)) {
            (Some(a), Some(b)) => ratio(a.median, b.median).map(|r| format!("{r:.2}")),
            _ => None,
        };
        rows.push(vec![
            "rrun unpack".into(),
            s(&u.rrun_s, "s"),
            s(&u.rrun_rss_mib, "MiB"),
            r.unwrap_or("–".into()),
        ]);
    } else {
        rows.push(vec![
            "rrun unpack".into(),
            "n/a (no `rrun unpack` subcommand yet)".into(),
            "–".into(),
            "–".into(),
        ]);
    }
    o.push_str(&table(&rows));
    o
}

/// Left-aligned columns, a rule under the header.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut o = String::new();
    for (i, r) in rows.iter().enumerate() {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, s)| format!("{s}{}", " ".repeat(widths[c] - s.chars().count())))
            .collect();
        let _ = writeln!(o, "{}", line.join("  ").trim_end());
        if i == 0 {
            let _ = writeln!(
                o,
                "{}",
                widths
                    .iter()
                    .map(|w| "-".repeat(*w))
                    .collect::<Vec<_>>()
                    .join("  ")
            );
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(&[
            vec!["a".into(), "bb".into()],
            vec!["ccc".into(), "d".into()],
        ]);
        assert_eq!(t, "a    bb\n---  --\nccc  d\n");
    }

    #[test]
    fn ratio_needs_a_positive_denominator() {
        assert_eq!(ratio(1.0, 2.0), Some(0.5));
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(ratio(-1.0, 2.0), None);
    }
}
