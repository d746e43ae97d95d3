//! The `rrun.*` annotations that `rrun unpack` writes for the built-in init
//! (restart policy, health check, stop timeout). Pure: options in, a map
//! out. Every value is validated here with the grammar the init parses at
//! create, so a typo (`--restart-delay 5x`) fails at unpack time instead of
//! in a bundle that looks fine until it is run. The flag checks give
//! flag-named messages; the init's own parser then checks the result, so
//! the two can never disagree about what is valid.

use std::collections::BTreeMap;

use thiserror::Error;

use crate::init::policy::{self, parse_duration};

#[derive(Debug, Error, PartialEq)]
pub enum AnnotationError {
    #[error("--{flag}: {msg}")]
    Invalid { flag: &'static str, msg: String },
    #[error("--no-init conflicts with --{0} (restart, health and stop options need the init)")]
    NoInitConflict(&'static str),
    #[error("{0}")]
    Init(String),
}

/// The init options as given on the command line (raw strings; `None` =
/// not given, so the init's own default applies).
#[derive(Debug, Default, Clone)]
pub struct InitOptions {
    pub no_init: bool,
    pub restart: Option<String>,
    pub restart_delay: Option<String>,
    pub restart_max_delay: Option<String>,
    pub restart_reset_after: Option<String>,
    pub restart_multiplier: Option<String>,
    pub restart_limit: Option<String>,
    pub restart_success_exit: Option<String>,
    pub restart_prevent_exit: Option<String>,
    pub stop_timeout: Option<String>,
    pub health_cmd: Option<String>,
    pub health_interval: Option<String>,
    pub health_timeout: Option<String>,
    pub health_retries: Option<String>,
    pub health_start_period: Option<String>,
}

/// The restart policies (systemd's Restart= names, plus Docker's
/// `on-failure:N`).
const POLICIES: &[&str] = &[
    "no",
    "always",
    "on-success",
    "on-failure",
    "on-abnormal",
    "on-abort",
];

fn check_policy(v: &str) -> Result<(), String> {
    let (name, count) = match v.split_once(':') {
        Some((p, n)) => (p, Some(n)),
        None => (v, None),
    };
    if !POLICIES.contains(&name) {
        return Err(format!(
            "unknown policy {v:?} (no, always, on-success, on-failure[:N], on-abnormal, on-abort)"
        ));
    }
    if let Some(n) = count {
        if name != "on-failure" {
            return Err("only on-failure takes a retry count (on-failure:N)".into());
        }
        n.parse::<u32>()
            .map_err(|_| format!("{n:?} is not a count"))?;
    }
    Ok(())
}

fn check_multiplier(v: &str) -> Result<(), String> {
    v.parse::<f64>()
        .ok()
        .filter(|m| m.is_finite() && *m >= 1.0)
        .map(|_| ())
        .ok_or_else(|| format!("{v:?} is not a number >= 1"))
}

fn check_limit(v: &str) -> Result<(), String> {
    let (b, i) = v
        .split_once('/')
        .ok_or_else(|| format!("{v:?} is not BURST/INTERVAL (e.g. 5/10s)"))?;
    b.parse::<u32>()
        .ok()
        .filter(|b| *b > 0)
        .ok_or_else(|| format!("{b:?} is not a positive count"))?;
    parse_duration(i).map(|_| ())
}

fn check_codes(v: &str) -> Result<(), String> {
    let codes: Vec<&str> = v.split(',').map(str::trim).collect();
    if codes.iter().all(|c| c.is_empty()) {
        return Err("no exit codes given (e.g. 0,3)".into());
    }
    for c in codes.into_iter().filter(|c| !c.is_empty()) {
        c.parse::<i32>()
            .ok()
            .filter(|c| (0..=255).contains(c))
            .ok_or_else(|| format!("{c:?} is not an exit code (0-255)"))?;
    }
    Ok(())
}

fn check_health_cmd(v: &str) -> Result<(), String> {
    let cmd: Vec<String> = serde_json::from_str(v).map_err(|e| {
        format!("not a JSON array of strings (e.g. '[\"curl\",\"-f\",\"localhost\"]'): {e}")
    })?;
    if cmd.first().is_none_or(|c| c.is_empty()) {
        return Err("empty command".into());
    }
    Ok(())
}

fn check_retries(v: &str) -> Result<(), String> {
    v.parse::<u32>()
        .ok()
        .filter(|r| *r > 0)
        .map(|_| ())
        .ok_or_else(|| format!("{v:?} is not a positive count"))
}

fn check_positive_duration(v: &str) -> Result<(), String> {
    if parse_duration(v)?.is_zero() {
        return Err("must be above zero".into());
    }
    Ok(())
}

fn check_duration(v: &str) -> Result<(), String> {
    parse_duration(v).map(|_| ())
}

type Check = fn(&str) -> Result<(), String>;

/// Validates the options and returns the annotations they stand for.
pub fn init_annotations(o: &InitOptions) -> Result<BTreeMap<String, String>, AnnotationError> {
    let table: [(&'static str, &'static str, &Option<String>, Check); 14] = [
        ("restart", "rrun.restart", &o.restart, check_policy),
        (
            "restart-delay",
            "rrun.restart.delay",
            &o.restart_delay,
            check_duration,
        ),
        (
            "restart-max-delay",
            "rrun.restart.max-delay",
            &o.restart_max_delay,
            check_duration,
        ),
        (
            "restart-reset-after",
            "rrun.restart.reset-after",
            &o.restart_reset_after,
            check_duration,
        ),
        (
            "restart-multiplier",
            "rrun.restart.multiplier",
            &o.restart_multiplier,
            check_multiplier,
        ),
        (
            "restart-limit",
            "rrun.restart.limit",
            &o.restart_limit,
            check_limit,
        ),
        (
            "restart-success-exit",
            "rrun.restart.success-exit",
            &o.restart_success_exit,
            check_codes,
        ),
        (
            "restart-prevent-exit",
            "rrun.restart.prevent-exit",
            &o.restart_prevent_exit,
            check_codes,
        ),
        (
            "stop-timeout",
            "rrun.stop-timeout",
            &o.stop_timeout,
            check_duration,
        ),
        (
            "health-cmd",
            "rrun.health.cmd",
            &o.health_cmd,
            check_health_cmd,
        ),
        (
            "health-interval",
            "rrun.health.interval",
            &o.health_interval,
            check_positive_duration,
        ),
        (
            "health-timeout",
            "rrun.health.timeout",
            &o.health_timeout,
            check_positive_duration,
        ),
        (
            "health-retries",
            "rrun.health.retries",
            &o.health_retries,
            check_retries,
        ),
        (
            "health-start-period",
            "rrun.health.start-period",
            &o.health_start_period,
            check_duration,
        ),
    ];
    let mut out = BTreeMap::new();
    for (flag, key, value, check) in table {
        let Some(v) = value else { continue };
        if o.no_init {
            return Err(AnnotationError::NoInitConflict(flag));
        }
        check(v).map_err(|msg| AnnotationError::Invalid { flag, msg })?;
        out.insert(key.to_string(), v.clone());
    }
    if o.health_cmd.is_none()
        && let Some((flag, _)) = [
            ("health-interval", &o.health_interval),
            ("health-timeout", &o.health_timeout),
            ("health-retries", &o.health_retries),
            ("health-start-period", &o.health_start_period),
        ]
        .into_iter()
        .find(|(_, v)| v.is_some())
    {
        return Err(AnnotationError::Invalid {
            flag,
            msg: "given without --health-cmd".into(),
        });
    }
    if !o.no_init {
        out.insert("rrun.init".into(), "true".into());
    }
    policy::parse(&out).map_err(AnnotationError::Init)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(f: impl FnOnce(&mut InitOptions)) -> InitOptions {
        let mut o = InitOptions::default();
        f(&mut o);
        o
    }

    #[test]
    fn defaults_to_init_only() {
        let a = init_annotations(&InitOptions::default()).unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a["rrun.init"], "true");
        let a = init_annotations(&opts(|o| o.no_init = true)).unwrap();
        assert!(a.is_empty());
    }

    #[test]
    fn every_option_becomes_its_annotation() {
        let o = opts(|o| {
            o.restart = Some("on-failure:3".into());
            o.restart_delay = Some("50ms".into());
            o.restart_max_delay = Some("10s".into());
            o.restart_reset_after = Some("1m".into());
            o.restart_multiplier = Some("1.5".into());
            o.restart_limit = Some("5/10s".into());
            o.restart_success_exit = Some("0,3".into());
            o.restart_prevent_exit = Some("42".into());
            o.stop_timeout = Some("20s".into());
            o.health_cmd = Some(r#"["sh","-c","true"]"#.into());
            o.health_interval = Some("1s".into());
            o.health_timeout = Some("2s".into());
            o.health_retries = Some("4".into());
            o.health_start_period = Some("0s".into());
        });
        let a = init_annotations(&o).unwrap();
        assert_eq!(a.len(), 15);
        assert_eq!(a["rrun.restart"], "on-failure:3");
        assert_eq!(a["rrun.restart.limit"], "5/10s");
        assert_eq!(a["rrun.health.cmd"], r#"["sh","-c","true"]"#);
        assert_eq!(a["rrun.stop-timeout"], "20s");
        assert_eq!(a["rrun.init"], "true");
    }

    #[test]
    fn typos_fail_naming_the_flag() {
        let cases: Vec<(InitOptions, &str)> = vec![
            (opts(|o| o.restart = Some("sometimes".into())), "restart"),
            (opts(|o| o.restart = Some("always:3".into())), "restart"),
            (
                opts(|o| o.restart_delay = Some("5x".into())),
                "restart-delay",
            ),
            (
                opts(|o| o.restart_multiplier = Some("0.5".into())),
                "restart-multiplier",
            ),
            (
                opts(|o| o.restart_limit = Some("5".into())),
                "restart-limit",
            ),
            (
                opts(|o| o.restart_limit = Some("0/10s".into())),
                "restart-limit",
            ),
            (
                opts(|o| o.restart_success_exit = Some("1,x".into())),
                "restart-success-exit",
            ),
            (
                opts(|o| o.restart_prevent_exit = Some("256".into())),
                "restart-prevent-exit",
            ),
            (opts(|o| o.stop_timeout = Some("10".into())), "stop-timeout"),
            (opts(|o| o.health_cmd = Some("true".into())), "health-cmd"),
            (opts(|o| o.health_cmd = Some("[]".into())), "health-cmd"),
            (
                opts(|o| {
                    o.health_cmd = Some(r#"["true"]"#.into());
                    o.health_retries = Some("0".into());
                }),
                "health-retries",
            ),
            (
                opts(|o| {
                    o.health_cmd = Some(r#"["true"]"#.into());
                    o.health_interval = Some("0s".into());
                }),
                "health-interval",
            ),
            (
                opts(|o| o.health_interval = Some("1s".into())),
                "health-interval",
            ),
        ];
        for (o, flag) in cases {
            let e = init_annotations(&o).unwrap_err();
            assert!(
                e.to_string().starts_with(&format!("--{flag}:")),
                "{flag}: {e}"
            );
        }
    }

    #[test]
    fn the_init_parser_has_the_last_word() {
        // Each value is fine alone; together the init refuses them.
        let e = init_annotations(&opts(|o| o.restart_delay = Some("1m".into()))).unwrap_err();
        assert!(matches!(e, AnnotationError::Init(_)), "{e}");
        assert!(e.to_string().contains("rrun.restart.max-delay"), "{e}");
    }

    #[test]
    fn no_init_conflicts_with_init_options() {
        let o = opts(|o| {
            o.no_init = true;
            o.restart = Some("always".into());
        });
        assert_eq!(
            init_annotations(&o),
            Err(AnnotationError::NoInitConflict("restart"))
        );
    }
}
