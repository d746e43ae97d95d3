//! `/metrics`: the apps in Prometheus' text exposition format (0.0.4),
//! rendered from the rows `ls` shows plus the cgroup counters a row has
//! no field for. Pure.

use std::fmt::Write;

use serde_json::Value;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The health states a check can be in, as the init names them.
const HEALTH: [&str; 4] = ["healthy", "unhealthy", "starting", "none"];

/// What a row does not hold: the container's counters (None: no container).
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    pub cpu_ns: Option<u64>,
    pub oom_kills: Option<u64>,
}

/// An app's samples of one family: (extra labels, value).
type Samples<'a> = &'a dyn Fn(&Value, &Counters) -> Vec<(String, f64)>;

/// A label value escaped as the format asks (\\, \", \n).
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o
}

/// Renders every family, one sample per app (apps without the value are
/// left out of that family: no container, no CPU seconds).
pub fn render(rows: &[(Value, Counters)]) -> String {
    let mut o = String::new();
    let name = |v: &Value| esc(v["name"].as_str().unwrap_or(""));
    let family = |o: &mut String, metric: &str, kind: &str, help: &str, value: Samples| {
        let _ = writeln!(o, "# HELP {metric} {help}");
        let _ = writeln!(o, "# TYPE {metric} {kind}");
        for (v, c) in rows {
            for (labels, x) in value(v, c) {
                let _ = writeln!(o, "{metric}{{app=\"{}\"{labels}}} {x}", name(v));
            }
        }
    };
    family(
        &mut o,
        "rrun_app_up",
        "gauge",
        "Whether the app's container runs (1) or not (0).",
        &|v, _| vec![(String::new(), f64::from(u8::from(v["state"] == "running")))],
    );
    family(
        &mut o,
        "rrun_app_health",
        "gauge",
        "The app's health check state: 1 for the state it is in, 0 for the others.",
        &|v, _| {
            let h = v["health"].as_str().unwrap_or("none");
            HEALTH
                .iter()
                .map(|s| (format!(",state=\"{s}\""), f64::from(u8::from(h == *s))))
                .collect()
        },
    );
    family(
        &mut o,
        "rrun_app_restarts_total",
        "counter",
        "Restarts of the app's program since it was last started.",
        &|v, _| vec![(String::new(), v["restarts"].as_u64().unwrap_or(0) as f64)],
    );
    family(
        &mut o,
        "rrun_app_last_exit_code",
        "gauge",
        "The exit status of the app's last run (128+N for signal N).",
        &|v, _| {
            v["exitStatus"]
                .as_i64()
                .map(|x| (String::new(), x as f64))
                .into_iter()
                .collect()
        },
    );
    family(
        &mut o,
        "rrun_app_cpu_seconds_total",
        "counter",
        "CPU time used by the app's current container, in seconds.",
        &|_, c| {
            c.cpu_ns
                .map(|ns| (String::new(), ns as f64 / 1e9))
                .into_iter()
                .collect()
        },
    );
    family(
        &mut o,
        "rrun_app_memory_bytes",
        "gauge",
        "Memory used by the app's running container, in bytes.",
        &|v, _| {
            v["memoryBytes"]
                .as_u64()
                .map(|b| (String::new(), b as f64))
                .into_iter()
                .collect()
        },
    );
    family(
        &mut o,
        "rrun_app_oom_kills_total",
        "counter",
        "Processes of the app's current container killed for want of memory.",
        &|_, c| {
            c.oom_kills
                .map(|k| (String::new(), k as f64))
                .into_iter()
                .collect()
        },
    );
    family(
        &mut o,
        "rrun_app_info",
        "gauge",
        "The app's state and image (always 1).",
        &|v, _| {
            vec![(
                format!(
                    ",state=\"{}\",image=\"{}\",digest=\"{}\"",
                    esc(v["state"].as_str().unwrap_or("")),
                    esc(v["image"]["source"].as_str().unwrap_or("")),
                    esc(v["image"]["digest"].as_str().unwrap_or(""))
                ),
                1.0,
            )]
        },
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn families_and_samples() {
        let rows = vec![
            (
                json!({"name": "web", "state": "running", "health": "healthy", "restarts": 3,
                       "memoryBytes": 4096, "exitStatus": null,
                       "image": {"source": "oci:/x\"y\\z\nw", "digest": "sha256:ab"}}),
                Counters {
                    cpu_ns: Some(1_500_000_000),
                    oom_kills: Some(0),
                },
            ),
            (
                json!({"name": "db", "state": "exited", "health": "none", "restarts": 0,
                       "memoryBytes": null, "exitStatus": 137, "image": {}}),
                Counters::default(),
            ),
        ];
        let t = render(&rows);
        assert!(t.contains("# TYPE rrun_app_up gauge\n"));
        assert!(t.contains("rrun_app_up{app=\"web\"} 1\n"));
        assert!(t.contains("rrun_app_up{app=\"db\"} 0\n"));
        assert!(t.contains("rrun_app_health{app=\"web\",state=\"healthy\"} 1\n"));
        assert!(t.contains("rrun_app_health{app=\"web\",state=\"unhealthy\"} 0\n"));
        assert!(t.contains("rrun_app_restarts_total{app=\"web\"} 3\n"));
        assert!(t.contains("rrun_app_last_exit_code{app=\"db\"} 137\n"));
        assert!(!t.contains("rrun_app_last_exit_code{app=\"web\"}"));
        assert!(t.contains("rrun_app_cpu_seconds_total{app=\"web\"} 1.5\n"));
        assert!(t.contains("rrun_app_memory_bytes{app=\"web\"} 4096\n"));
        assert!(t.contains("rrun_app_oom_kills_total{app=\"web\"} 0\n"));
        assert!(t.contains(r#"image="oci:/x\"y\\z\nw""#), "{t}");
        assert!(t.lines().all(|l| !l.is_empty()));
    }
}
