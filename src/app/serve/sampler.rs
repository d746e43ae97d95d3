//! CPU and memory over the last minutes, for the page's sparklines:
//! sampled when a request asks for the apps (the page asks every few
//! seconds while it is open; nothing samples when nobody looks), at most
//! one sample per app per SAMPLE_EVERY whatever the number of clients.
//! Memory only, bounded: HISTORY samples per app, apps that are gone
//! dropped at the next sample.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::app::show::CpuWindow;

/// The least time between two samples of an app.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(2);
/// Samples kept per app: five minutes at SAMPLE_EVERY.
pub const HISTORY: usize = 150;

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Sample {
    /// Seconds since the Unix epoch.
    pub t: u64,
    /// CPU % since the sample before (100 = one CPU busy).
    pub cpu: Option<f64>,
    pub mem: Option<u64>,
}

#[derive(Default)]
struct History {
    /// CPU time (ns) when last sampled, and when.
    anchor: Option<(u64, Instant)>,
    samples: VecDeque<Sample>,
}

#[derive(Default)]
pub struct Sampler {
    apps: Mutex<HashMap<String, History>>,
}

impl Sampler {
    /// Each app's last sampled CPU time: the start of the window a row's
    /// cpuPercent is measured over (None for an app sampled too recently
    /// to measure anything: under 1/4 of SAMPLE_EVERY).
    pub fn window(&self) -> CpuWindow {
        let apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        apps.iter()
            .filter_map(|(n, h)| {
                let (ns, at) = h.anchor?;
                (at.elapsed() >= SAMPLE_EVERY / 4).then(|| (n.clone(), (ns, at)))
            })
            .collect()
    }

    /// Records a sample of every app in `now` (name -> CPU ns, memory
    /// bytes) due one; forgets apps not in it.
    pub fn record(&self, now: &HashMap<String, (Option<u64>, Option<u64>)>, unix: u64) {
        let mut apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        apps.retain(|n, _| now.contains_key(n));
        let at = Instant::now();
        for (name, (cpu_ns, mem)) in now {
            let h = apps.entry(name.clone()).or_default();
            if h.anchor
                .is_some_and(|(_, t)| at.duration_since(t) < SAMPLE_EVERY)
            {
                continue;
            }
            let cpu = match (h.anchor, cpu_ns) {
                (Some((before, t)), Some(ns)) => {
                    let dt = at.duration_since(t).as_nanos().max(1) as f64;
                    Some((ns.saturating_sub(before) as f64 / dt * 1000.0).round() / 10.0)
                }
                _ => None,
            };
            // No container: nothing to measure the next one from.
            h.anchor = cpu_ns.map(|ns| (ns, at));
            // A first sample has no CPU % yet: shown once there is one.
            if cpu.is_some() || mem.is_some() {
                h.samples.push_back(Sample {
                    t: unix,
                    cpu,
                    mem: *mem,
                });
            }
            while h.samples.len() > HISTORY {
                h.samples.pop_front();
            }
        }
    }

    /// An app's samples, oldest first.
    pub fn history(&self, name: &str) -> Vec<Sample> {
        let apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        apps.get(name)
            .map(|h| h.samples.iter().copied().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_spaced_bounded_and_forgotten() {
        let s = Sampler::default();
        let mut now = HashMap::new();
        now.insert("a".to_string(), (Some(1_000u64), Some(10u64)));
        now.insert("b".to_string(), (None, None));
        s.record(&now, 1);
        // The first one: memory, no CPU % yet.
        assert_eq!(s.history("a").len(), 1);
        assert_eq!(s.history("a")[0].cpu, None);
        assert!(s.history("b").is_empty());
        // Too soon: no new sample however many clients ask.
        for _ in 0..100 {
            s.record(&now, 1);
        }
        assert_eq!(s.history("a").len(), 1);
        assert!(s.window().is_empty(), "under a quarter of the period");
        now.remove("a");
        s.record(&now, 2);
        assert!(s.history("a").is_empty(), "a removed app is forgotten");
    }

    #[test]
    fn history_is_bounded() {
        let s = Sampler::default();
        {
            let mut apps = s.apps.lock().unwrap();
            let h = apps.entry("a".into()).or_default();
            for t in 0..(HISTORY as u64 + 20) {
                h.samples.push_back(Sample {
                    t,
                    cpu: Some(1.0),
                    mem: None,
                });
            }
            h.anchor = Some((0, Instant::now() - SAMPLE_EVERY * 2));
        }
        let mut now = HashMap::new();
        now.insert("a".to_string(), (Some(2_000_000_000u64), Some(1u64)));
        s.record(&now, 1000);
        let h = s.history("a");
        assert_eq!(h.len(), HISTORY);
        let last = h.last().unwrap();
        assert_eq!(last.t, 1000);
        // 2 s of CPU over ~4 s: about 50 %.
        assert!(
            last.cpu.unwrap() > 20.0 && last.cpu.unwrap() < 60.0,
            "{last:?}"
        );
    }
}
