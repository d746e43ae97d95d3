//! The built-in init's decisions, as pure code: the annotations that turn
//! it on and configure it, the restart policy, the backoff and the start
//! limit. Shared verbatim by rrun (which validates the annotations at
//! create) and the rrun-init binary (which acts on them). No I/O here.

// core/alloc only: the init is built without std.
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

/// Why the program's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    /// As a shell reports it: the code, or 128+N for signal N.
    pub fn status(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s,
        }
    }
}

/// systemd's Restart= values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    No,
    Always,
    OnSuccess,
    OnFailure,
    OnAbnormal,
    OnAbort,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub policy: Policy,
    /// Docker's on-failure:N: at most N restarts in all.
    pub max_restarts: Option<u32>,
    pub delay: Duration,
    pub max_delay: Duration,
    pub reset_after: Duration,
    pub multiplier: f64,
    /// systemd's StartLimitBurst / StartLimitIntervalSec.
    pub limit: Option<(u32, Duration)>,
    pub success_exit: Vec<i32>,
    pub prevent_exit: Vec<i32>,
    pub stop_timeout: Duration,
    pub signal_group: bool,
    pub health: Option<Health>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    pub cmd: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub start_period: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            policy: Policy::No,
            max_restarts: None,
            delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
            reset_after: Duration::from_secs(10),
            multiplier: 2.0,
            limit: None,
            success_exit: Vec::new(),
            prevent_exit: Vec::new(),
            stop_timeout: Duration::from_secs(10),
            signal_group: false,
            health: None,
        }
    }
}

/// A Go/systemd-style duration: 100ms, 30s, 2m, 1h, 1.5s.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?} (e.g. 100ms, 30s, 2m)");
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .ok_or_else(bad)?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_codes(key: &str, s: &str) -> Result<Vec<i32>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| {
            x.parse::<i32>()
                .ok()
                .filter(|c| (0..=255).contains(c))
                .ok_or_else(|| format!("{key}: {x:?} is not an exit code (0-255)"))
        })
        .collect()
}

pub const PREFIX: &str = "rrun.";

/// Whether `key` is one of rrun's own annotations (the `rrun.` prefix).
pub fn is_rrun_key(key: &str) -> bool {
    key.starts_with(PREFIX)
}

/// Whether the annotations turn the init on (`rrun.init: "true"`, or any
/// restart/health/stop key).
pub fn enabled(ann: &BTreeMap<String, String>) -> bool {
    ann.get("rrun.init").is_some_and(|v| v == "true")
        || ann.keys().any(|k| {
            k.starts_with("rrun.restart")
                || k.starts_with("rrun.health")
                || k == "rrun.stop-timeout"
        })
}

/// Parses and validates every `rrun.*` annotation. Unknown `rrun.` keys
/// are errors too: a misspelt key silently ignored would be a restart
/// policy the user believes in and does not have.
pub fn parse(ann: &BTreeMap<String, String>) -> Result<Config, String> {
    let mut c = Config::default();
    let mut health_cmd: Option<Vec<String>> = None;
    let mut h = Health {
        cmd: Vec::new(),
        interval: Duration::from_secs(30),
        timeout: Duration::from_secs(30),
        retries: 3,
        start_period: Duration::ZERO,
    };
    for (k, v) in ann.iter().filter(|(k, _)| k.starts_with(PREFIX)) {
        let err = |m: String| format!("annotation {k}: {m}");
        let dur = || parse_duration(v).map_err(err);
        match k.as_str() {
            "rrun.init" => {
                if v != "true" && v != "false" {
                    return Err(err(format!("{v:?} is not true or false")));
                }
            }
            "rrun.restart" => {
                let (name, n) = match v.split_once(':') {
                    Some((p, n)) => (p, Some(n)),
                    None => (v.as_str(), None),
                };
                c.policy = match name {
                    "no" => Policy::No,
                    "always" => Policy::Always,
                    "on-success" => Policy::OnSuccess,
                    "on-failure" => Policy::OnFailure,
                    "on-abnormal" => Policy::OnAbnormal,
                    "on-abort" => Policy::OnAbort,
                    _ => {
                        return Err(err(format!(
                            "unknown policy {v:?} (no, always, on-success, on-failure[:N], on-abnormal, on-abort)"
                        )));
                    }
                };
                if let Some(n) = n {
                    if c.policy != Policy::OnFailure {
                        return Err(err(
                            "only on-failure takes a retry count (on-failure:N)".into()
                        ));
                    }
                    c.max_restarts = Some(
                        n.parse()
                            .map_err(|_| err(format!("{n:?} is not a count")))?,
                    );
                }
            }
            "rrun.restart.delay" => c.delay = dur()?,
            "rrun.restart.max-delay" => c.max_delay = dur()?,
            "rrun.restart.reset-after" => c.reset_after = dur()?,
            "rrun.restart.multiplier" => {
                c.multiplier = v
                    .parse()
                    .ok()
                    .filter(|m: &f64| m.is_finite() && *m >= 1.0)
                    .ok_or_else(|| err(format!("{v:?} is not a number >= 1")))?;
            }
            "rrun.restart.limit" => {
                let (b, i) = v
                    .split_once('/')
                    .ok_or_else(|| err(format!("{v:?} is not BURST/INTERVAL (e.g. 5/10s)")))?;
                let burst: u32 = b
                    .parse()
                    .ok()
                    .filter(|b| *b > 0)
                    .ok_or_else(|| err(format!("{b:?} is not a positive count")))?;
                c.limit = Some((burst, parse_duration(i).map_err(err)?));
            }
            "rrun.restart.success-exit" => c.success_exit = parse_codes(k, v)?,
            "rrun.restart.prevent-exit" => c.prevent_exit = parse_codes(k, v)?,
            "rrun.stop-timeout" => c.stop_timeout = dur()?,
            "rrun.signal-group" => {
                c.signal_group = match v.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(err(format!("{v:?} is not true or false"))),
                }
            }
            "rrun.health.cmd" => {
                let cmd: Vec<String> = serde_json::from_str(v)
                    .map_err(|e| err(format!("not a JSON array of strings: {e}")))?;
                if cmd.is_empty() || cmd[0].is_empty() {
                    return Err(err("empty command".into()));
                }
                health_cmd = Some(cmd);
            }
            "rrun.health.interval" => h.interval = dur()?,
            "rrun.health.timeout" => h.timeout = dur()?,
            "rrun.health.retries" => {
                h.retries = v
                    .parse()
                    .ok()
                    .filter(|r| *r > 0)
                    .ok_or_else(|| err(format!("{v:?} is not a positive count")))?;
            }
            "rrun.health.start-period" => h.start_period = dur()?,
            _ => return Err(err("unknown rrun annotation".into())),
        }
    }
    if c.max_delay < c.delay {
        return Err(format!(
            "annotation rrun.restart.max-delay: {:?} is below rrun.restart.delay {:?}",
            c.max_delay, c.delay
        ));
    }
    match health_cmd {
        Some(cmd) => {
            if h.interval.is_zero() || h.timeout.is_zero() {
                return Err("annotation rrun.health.interval/timeout: must be above zero".into());
            }
            h.cmd = cmd;
            c.health = Some(h);
        }
        None if ann.keys().any(|k| k.starts_with("rrun.health.")) => {
            return Err("annotation rrun.health.*: given without rrun.health.cmd".into());
        }
        None => {}
    }
    Ok(c)
}

impl Config {
    fn is_success(&self, e: Exit) -> bool {
        matches!(e, Exit::Code(0)) || matches!(e, Exit::Code(c) if self.success_exit.contains(&c))
    }

    /// Whether the policy restarts after `e` (`unhealthy`: the init killed
    /// it for failing its health check). `restarts` made so far count
    /// against on-failure:N.
    pub fn should_restart(&self, e: Exit, unhealthy: bool, restarts: u32) -> bool {
        if let Exit::Code(c) = e
            && self.prevent_exit.contains(&c)
        {
            return false;
        }
        if self.max_restarts.is_some_and(|m| restarts >= m) {
            return false;
        }
        let success = self.is_success(e) && !unhealthy;
        let signal = matches!(e, Exit::Signal(_));
        match self.policy {
            Policy::No => false,
            Policy::Always => true,
            Policy::OnSuccess => success,
            Policy::OnFailure => !success,
            Policy::OnAbnormal => unhealthy || (signal && !self.is_clean_signal(e)),
            Policy::OnAbort => !unhealthy && signal && !self.is_clean_signal(e),
        }
    }

    /// systemd treats SIGHUP, SIGINT, SIGTERM and SIGPIPE as clean exits.
    fn is_clean_signal(&self, e: Exit) -> bool {
        matches!(
            e,
            Exit::Signal(1) | Exit::Signal(2) | Exit::Signal(13) | Exit::Signal(15)
        )
    }
}

/// Backoff between restarts plus the start limit, in milliseconds of a
/// monotonic clock supplied by the caller (so tests need no sleeping).
#[derive(Debug, Clone)]
pub struct Backoff {
    next_delay: Duration,
    starts: Vec<u64>,
}

impl Backoff {
    pub fn new(c: &Config) -> Self {
        Backoff {
            next_delay: c.delay,
            starts: Vec::new(),
        }
    }

    /// Records a start at `now_ms`.
    pub fn started(&mut self, now_ms: u64) {
        self.starts.push(now_ms);
    }

    /// After an exit at `now_ms` of a run that started at `started_ms`:
    /// the delay before the next start, or None when the start limit is
    /// reached (give up).
    pub fn next(&mut self, c: &Config, started_ms: u64, now_ms: u64) -> Option<Duration> {
        if now_ms.saturating_sub(started_ms) >= c.reset_after.as_millis() as u64 {
            self.next_delay = c.delay;
        }
        if let Some((burst, interval)) = c.limit {
            let from = now_ms.saturating_sub(interval.as_millis() as u64);
            let recent = self.starts.iter().filter(|s| **s >= from).count() as u32;
            if recent >= burst {
                return None;
            }
        }
        let d = self.next_delay;
        let grown = d.as_secs_f64() * c.multiplier;
        self.next_delay = Duration::from_secs_f64(grown.min(c.max_delay.as_secs_f64()));
        Some(d.min(c.max_delay))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        for bad in ["", "-1s", "10", "5y", "s", "1e400s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn enabling() {
        assert!(enabled(&ann(&[("rrun.init", "true")])));
        assert!(enabled(&ann(&[("rrun.restart", "always")])));
        assert!(enabled(&ann(&[("rrun.health.cmd", "[\"true\"]")])));
        assert!(!enabled(&ann(&[("rrun.init", "false")])));
        assert!(!enabled(&ann(&[("other", "x")])));
    }

    #[test]
    fn bad_annotations() {
        for (k, v) in [
            ("rrun.restart", "sometimes"),
            ("rrun.restart", "always:3"),
            ("rrun.restart.delay", "-1s"),
            ("rrun.restart.delay", "soon"),
            ("rrun.restart.multiplier", "0.5"),
            ("rrun.restart.limit", "5"),
            ("rrun.restart.limit", "0/10s"),
            ("rrun.restart.success-exit", "1,x"),
            ("rrun.health.retries", "0"),
            ("rrun.health.cmd", "true"),
            ("rrun.restrat", "always"),
        ] {
            assert!(parse(&ann(&[(k, v)])).is_err(), "{k}={v} accepted");
        }
        assert!(parse(&ann(&[("rrun.health.interval", "1s")])).is_err());
        assert!(
            parse(&ann(&[
                ("rrun.restart.delay", "1m"),
                ("rrun.restart.max-delay", "1s")
            ]))
            .is_err()
        );
    }

    #[test]
    fn full_config() {
        let c = parse(&ann(&[
            ("rrun.restart", "on-failure:3"),
            ("rrun.restart.delay", "50ms"),
            ("rrun.restart.limit", "5/10s"),
            ("rrun.restart.prevent-exit", "42"),
            ("rrun.health.cmd", "[\"sh\",\"-c\",\"true\"]"),
            ("rrun.health.interval", "1s"),
        ]))
        .unwrap();
        assert_eq!(c.policy, Policy::OnFailure);
        assert_eq!(c.max_restarts, Some(3));
        assert_eq!(c.limit, Some((5, Duration::from_secs(10))));
        assert_eq!(c.health.as_ref().unwrap().retries, 3);
    }

    #[test]
    fn policies() {
        let mk = |p| Config {
            policy: p,
            ..Config::default()
        };
        let ok = Exit::Code(0);
        let fail = Exit::Code(1);
        let segv = Exit::Signal(11);
        let term = Exit::Signal(15);
        let table = [
            (Policy::No, [false, false, false, false, false]),
            (Policy::Always, [true, true, true, true, true]),
            (Policy::OnSuccess, [true, false, false, false, false]),
            (Policy::OnFailure, [false, true, true, true, true]),
            (Policy::OnAbnormal, [false, false, true, false, true]),
            (Policy::OnAbort, [false, false, true, false, false]),
        ];
        for (p, want) in table {
            let c = mk(p);
            let got = [
                c.should_restart(ok, false, 0),
                c.should_restart(fail, false, 0),
                c.should_restart(segv, false, 0),
                c.should_restart(term, false, 0),
                c.should_restart(ok, true, 0),
            ];
            assert_eq!(got, want, "{p:?}");
        }
        let c = Config {
            policy: Policy::OnFailure,
            max_restarts: Some(2),
            prevent_exit: vec![42],
            success_exit: vec![3],
            ..Config::default()
        };
        assert!(c.should_restart(fail, false, 1));
        assert!(!c.should_restart(fail, false, 2));
        assert!(!c.should_restart(Exit::Code(42), false, 0));
        assert!(!c.should_restart(Exit::Code(3), false, 0));
    }

    #[test]
    fn backoff_grows_caps_and_resets() {
        let c = Config {
            delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
            reset_after: Duration::from_secs(10),
            ..Config::default()
        };
        let mut b = Backoff::new(&c);
        let mut t = 0;
        let mut delays = vec![];
        for _ in 0..4 {
            b.started(t);
            t += 10;
            delays.push(b.next(&c, t - 10, t).unwrap().as_millis());
        }
        assert_eq!(delays, vec![100, 200, 350, 350]);
        b.started(t);
        t += 20_000;
        assert_eq!(b.next(&c, t - 20_000, t).unwrap().as_millis(), 100);
    }

    #[test]
    fn start_limit_gives_up() {
        let c = Config {
            limit: Some((3, Duration::from_secs(10))),
            ..Config::default()
        };
        let mut b = Backoff::new(&c);
        for i in 0..2 {
            b.started(i * 100);
            assert!(b.next(&c, i * 100, i * 100 + 50).is_some());
        }
        b.started(200);
        assert!(b.next(&c, 200, 250).is_none());
        // Starts older than the interval no longer count.
        let mut b = Backoff::new(&c);
        for i in 0..3 {
            b.started(i * 6000);
        }
        assert!(b.next(&c, 12_000, 17_000).is_some());
    }
}
