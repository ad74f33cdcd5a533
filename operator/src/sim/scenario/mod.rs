//! Scenarios: a load pattern, the service it hits, its starting state and its SLO.

use std::path::Path;

use governor_crds::ServiceLevelObjectiveSpec;

use super::engine::{InitialState, ServiceModel};

/// A load pattern and the service it runs against.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    /// Seconds simulated.
    pub duration: f64,
    /// (seconds, requests per second) points; linear in between, flat after the last.
    pub load: Vec<(f64, f64)>,
    pub model: ServiceModel,
    pub initial: InitialState,
    pub spec: ServiceLevelObjectiveSpec,
}

/// Days of the `month` scenario, and the seconds each is compressed to: an
/// hour of the day in a minute.
pub const MONTH_DAYS: u32 = 30;
pub const MONTH_DAY_SECONDS: f64 = 1440.0;

/// Scenarios run by name only, not with "all": the month takes as long as
/// the rest together.
pub const LONG: [&str; 1] = ["month"];

/// The longest trace `from_trace` accepts, in seconds (30 days): the simulator
/// keeps per-minute schedules, so an absurd timestamp would ask for an absurd
/// allocation.
pub const MAX_TRACE_SECONDS: f64 = 30.0 * 86_400.0;

/// Names of the built-in scenarios.
pub const BUILT_IN: [&str; 12] = [
    "audit",
    "diurnal",
    "flash-crowd",
    "slow-ramp",
    "db-bound",
    "cold-cache",
    "sawtooth",
    "step-down",
    "noisy",
    "slow-dependency",
    "weekly",
    "bad-pod",
];

/// The audit's peak load (requests per second), the scale of the newer scenarios.
const AUDIT_PEAK: f64 = 500.0;

/// Seconds a load switch takes in the step-shaped scenarios.
const SWITCH: f64 = 10.0;

impl Scenario {
    /// Requests per second at `t`.
    pub fn rate(&self, t: f64) -> f64 {
        rate_at(&self.load, t)
    }

    /// The same cycle started `offset` seconds in: what came before `offset`
    /// runs after the rest, so the load still repeats every `duration`.
    pub fn starting_at(&self, offset: f64) -> Self {
        let d = self.duration.max(1.0);
        let offset = offset.rem_euclid(d);
        let mut load = vec![(0.0, self.rate(offset))];
        load.extend(
            self.load
                .iter()
                .filter(|p| p.0 > offset && p.0 < d)
                .map(|&(t, r)| (t - offset, r)),
        );
        load.push((d - offset, self.rate(d)));
        load.extend(
            self.load
                .iter()
                .filter(|p| p.0 <= offset)
                .map(|&(t, r)| (d - offset + t, r)),
        );
        load.push((d, self.rate(offset)));
        Self {
            load,
            ..self.clone()
        }
    }

    pub fn peak_rate(&self) -> f64 {
        self.load.iter().map(|p| p.1).fold(0.0, f64::max)
    }

    /// `days` compressed days of `day_seconds` each, on the audit's service:
    /// a diurnal day (60 to 460 rps), 30 % less on the sixth and seventh day
    /// of each week, 25 % more on every tenth (a sale). The SLO's window is the
    /// whole run, so the error budget at the end is the window's.
    pub fn month(days: u32, day_seconds: f64) -> Self {
        let mut s = Self::built_in("diurnal").expect("diurnal scenario");
        let step = day_seconds / 24.0;
        let mut load = Vec::new();
        for d in 0..days {
            let start = f64::from(d) * day_seconds;
            let scale = match (d % 7, d % 10) {
                (_, 9) => 1.25,
                (5 | 6, _) => 0.7,
                _ => 1.0,
            };
            for h in 0..24 {
                let phase = f64::from(h) / 24.0 * std::f64::consts::TAU;
                load.push((
                    start + f64::from(h) * step,
                    scale * (260.0 - 200.0 * phase.cos()),
                ));
            }
        }
        let duration = f64::from(days) * day_seconds;
        load.push((duration, s.rate(0.0)));
        s.name = "month".into();
        s.duration = duration;
        s.load = load;
        s.spec.objectives.window = governor_crds::Duration::from_secs(duration as u64);
        s
    }

    /// A scenario from a CSV trace of `seconds,rps` lines, on the audit's service.
    pub fn from_trace(path: &Path) -> Result<Self, crate::Error> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| crate::Error::ReadFile {
            path: shown.clone(),
            source,
        })?;
        let bad = |line: usize, message: String| crate::Error::Trace {
            path: shown.clone(),
            line,
            message,
        };
        let mut load = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split(',');
            let (Some(t), Some(r)) = (parts.next(), parts.next()) else {
                return Err(bad(i + 1, "expected `seconds,rps`".into()));
            };
            let (t_text, r_text) = (t.trim(), r.trim());
            let (Ok(t), Ok(r)) = (t_text.parse::<f64>(), r_text.parse::<f64>()) else {
                if i == 0 {
                    continue; // a header line
                }
                return Err(bad(i + 1, format!("expected two numbers, found {line:?}")));
            };
            for (field, v, raw) in [("seconds", t, t_text), ("rps", r, r_text)] {
                if !v.is_finite() || v < 0.0 {
                    return Err(bad(
                        i + 1,
                        format!("{field} must be a finite number >= 0, found {raw:?}"),
                    ));
                }
            }
            if t > MAX_TRACE_SECONDS {
                return Err(bad(
                    i + 1,
                    format!(
                        "seconds {t_text} is past the longest trace this simulator runs \
                     ({MAX_TRACE_SECONDS} s, 30 days)"
                    ),
                ));
            }
            if load.last().is_some_and(|&(last, _)| t <= last) {
                return Err(bad(i + 1, "seconds must increase".into()));
            }
            if r > 100_000.0 {
                return Err(bad(
                    i + 1,
                    format!("rps {r_text} is more than this simulator handles (100000)"),
                ));
            }
            load.push((t, r));
        }
        let Some(&(end, _)) = load.last() else {
            return Err(crate::Error::Usage(format!(
                "{shown}: no `seconds,rps` lines"
            )));
        };
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("trace")
            .to_string();
        let mut s = Self::built_in("audit").expect("audit scenario");
        s.name = name;
        s.duration = end.max(60.0);
        s.load = load;
        s.initial = InitialState {
            replicas: 2,
            pool_size: 40,
            served: 30_000.0,
        };
        Ok(s)
    }
}

/// Seconds in one compressed day of the `weekly` scenario.
const DAY: f64 = 600.0;

/// Load switching between `low` and `high` every `half` seconds, starting low.
fn sawtooth(low: f64, high: f64, half: f64, duration: f64) -> Vec<(f64, f64)> {
    let mut points = vec![(0.0, low)];
    let mut t = half;
    let mut level = low;
    while t < duration {
        let next = if level == low { high } else { low };
        points.push((t, level));
        points.push((t + SWITCH, next));
        level = next;
        t += half;
    }
    points.push((duration, level));
    points
}

/// `base` times a heavy-tailed multiplier held for each `interval`.
fn noisy(base: f64, interval: f64, duration: f64, seed: u64) -> Vec<(f64, f64)> {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Pareto};
    let shape = 2.5;
    // Mean of Pareto(scale, shape) is scale * shape / (shape - 1): scale so it is 1.
    let multiplier = Pareto::<f64>::new((shape - 1.0) / shape, shape).expect("a valid Pareto");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut points = Vec::new();
    let mut t = 0.0;
    while t < duration {
        let rate = base * multiplier.sample(&mut rng).min(3.0);
        points.push((t, rate));
        points.push(((t + interval - 1.0).min(duration), rate));
        t += interval;
    }
    points
}

/// Seven compressed days: a weekday and a weekend shape, lowest at midnight.
fn weekly() -> Vec<(f64, f64)> {
    let mut points = Vec::new();
    for day in 0..7 {
        let (mid, swing) = if day < 5 {
            (260.0, 200.0)
        } else {
            (120.0, 80.0)
        };
        for i in 0..20 {
            let into = f64::from(i) * DAY / 20.0;
            let phase = into / DAY * std::f64::consts::TAU;
            points.push((f64::from(day) * DAY + into, mid - swing * phase.cos()));
        }
    }
    points.push((7.0 * DAY, 40.0));
    points
}

fn rate_at(points: &[(f64, f64)], t: f64) -> f64 {
    match points.iter().position(|p| p.0 > t) {
        None => points.last().map_or(0.0, |p| p.1),
        Some(0) => points[0].1,
        Some(i) => {
            let (t0, r0) = points[i - 1];
            let (t1, r1) = points[i];
            r0 + (r1 - r0) * (t - t0) / (t1 - t0)
        }
    }
}

/// The audit's SLO as the simulator runs it.
pub fn audit_spec() -> ServiceLevelObjectiveSpec {
    let yaml = r#"
service: roadtrip-api
targetRef: {name: roadtrip-api}
objectives:
  latency: {p50: 100ms, p90: 100ms, p99: 100ms}
  errorRate: 0.001
scaling:
  minReplicas: 2
  maxReplicas: 20
  podStartupTime: 30s
connectionPool:
  configMap: {name: roadtrip-api-db, key: pool_size}
  minSize: 2
  maxSize: 50
  database: {maxConnections: 100, budgetRatio: 0.8}
cache:
  hitRateTarget: 0.8
  cooldown: 10m
  warmBeforeScaleUp: true
  warmUp:
    http: {service: roadtrip-api, port: 8080, paths: [/api/stories/popular]}
"#;
    serde_yaml_ng::from_str(yaml).expect("the built-in audit SLO parses")
}

mod built_in;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{ServiceModel, Simulation};

    #[test]
    fn a_shifted_cycle_is_the_same_load_started_later() {
        let audit = Scenario::built_in("audit").unwrap();
        for offset in [0.0, 960.0, 3599.0] {
            let shifted = audit.starting_at(offset);
            for i in 0..720 {
                let t = f64::from(i) * 5.0 + 0.5;
                let want = audit.rate((t + offset) % audit.duration);
                let got = shifted.rate(t);
                assert!(
                    (want - got).abs() < 1e-6,
                    "offset {offset}, t {t}: {got} != {want}"
                );
            }
        }
    }

    fn scenario(name: &str) -> Scenario {
        Scenario::built_in(name).unwrap()
    }

    #[test]
    fn every_built_in_scenario_exists_and_is_short_enough() {
        for name in BUILT_IN {
            let s = scenario(name);
            assert_eq!(s.name, name);
            assert!(s.duration <= 7.0 * 600.0, "{name}: {} s", s.duration);
            for (t, r) in &s.load {
                assert!(
                    t.is_finite() && r.is_finite() && *r >= 0.0,
                    "{name}: {t} {r}"
                );
            }
            assert!(s.load.windows(2).all(|w| w[0].0 < w[1].0), "{name}");
        }
    }

    #[test]
    fn sawtooth_alternates_between_a_fifth_of_the_peak_and_the_peak() {
        let s = scenario("sawtooth");
        let halves: Vec<f64> = (0..8)
            .map(|i| s.rate(f64::from(i) * 300.0 + 150.0))
            .collect();
        assert_eq!(
            halves,
            [100.0, 500.0, 100.0, 500.0, 100.0, 500.0, 100.0, 500.0]
        );
        // Each switch takes at most SWITCH seconds.
        assert_eq!(s.rate(300.0 + SWITCH), 500.0);
        assert_eq!(s.rate(600.0 + SWITCH), 100.0);
    }

    #[test]
    fn step_down_halves_and_stays_there() {
        let s = scenario("step-down");
        let before = s.rate(10.0);
        assert!((0..900).all(|t| s.rate(f64::from(t)) == before));
        assert!((910..2400).all(|t| s.rate(f64::from(t)) == before / 2.0));
    }

    #[test]
    fn noisy_is_heavy_tailed_and_the_same_every_time() {
        let s = scenario("noisy");
        assert_eq!(s.load, scenario("noisy").load);
        let rates: Vec<f64> = (0..80)
            .map(|i| s.rate(f64::from(i) * 30.0 + 10.0))
            .collect();
        let mean = rates.iter().sum::<f64>() / rates.len() as f64;
        let sd =
            (rates.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / rates.len() as f64).sqrt();
        assert!((160.0..=250.0).contains(&mean), "mean {mean}");
        assert!(sd / mean > 0.3, "coefficient of variation {}", sd / mean);
        // Bursts past twice the base, never past the 3x cap.
        assert!(rates.iter().any(|r| *r > 400.0), "{rates:?}");
        assert!(
            rates
                .iter()
                .all(|r| *r <= 600.0 && *r >= 200.0 * 0.6 - 1e-9),
            "{rates:?}"
        );
    }

    #[test]
    fn weekly_has_five_busy_days_and_a_quiet_weekend() {
        let s = scenario("weekly");
        assert_eq!(s.duration, 7.0 * DAY);
        let peak = |day: u32| {
            (0..600)
                .map(|t| s.rate(f64::from(day) * DAY + f64::from(t)))
                .fold(0.0, f64::max)
        };
        for day in 0..5 {
            assert!(peak(day) > 440.0, "day {day}: {}", peak(day));
            // Lowest at midnight, highest at noon.
            assert!(s.rate(f64::from(day) * DAY) < 100.0);
        }
        for day in 5..7 {
            assert!(
                (180.0..=200.0).contains(&peak(day)),
                "day {day}: {}",
                peak(day)
            );
        }
    }

    #[test]
    fn slow_dependency_slows_the_database_for_ten_minutes() {
        let s = scenario("slow-dependency");
        let factor = |t: f64| s.model.db_factor(t);
        assert_eq!(
            [
                factor(0.0),
                factor(599.9),
                factor(600.0),
                factor(1199.9),
                factor(1200.0)
            ],
            [1.0, 1.0, 3.0, 3.0, 1.0]
        );
        // The simulated P99 (misses reach the database) rises in the window only.
        let mut sim = Simulation::new(s.model.clone(), &s.initial, s.peak_rate() + 1.0, 3);
        sim.run_until(1800.0, &|t| s.rate(t));
        let p99 = |minutes: std::ops::Range<usize>| {
            let n = minutes.len() as f64;
            sim.minutes[minutes].iter().map(|m| m.p99).sum::<f64>() / n
        };
        let (before, during, after) = (p99(2..10), p99(11..20), p99(22..30));
        assert!(
            during > 1.8 * before && during > 1.8 * after,
            "{before} {during} {after}"
        );
    }

    #[test]
    fn bad_pod_makes_exactly_one_replica_slower_and_the_observation_shows_it() {
        let s = scenario("bad-pod");
        let run = |model: ServiceModel| {
            let mut sim = Simulation::new(model, &s.initial, s.peak_rate() + 1.0, 5);
            sim.run_until(300.0, &|_| 60.0);
            sim
        };
        let bad = run(s.model.clone());
        let mut healthy_model = s.model.clone();
        healthy_model.replica_slowdown.clear();
        let healthy = run(healthy_model);
        let means: Vec<f64> = bad.per_replica.iter().map(|r| r.mean().unwrap()).collect();
        assert_eq!(means.len(), 3);
        let fine = healthy.per_replica[0].mean().unwrap();
        assert!(means[0] > 3.0 * fine, "{means:?} against {fine}");
        for m in &means[1..] {
            assert!((m / fine - 1.0).abs() < 0.25, "{means:?} against {fine}");
        }
        // The policies see it in the one shared histogram.
        let (seen, normal) = (bad.observe().latency.p99, healthy.observe().latency.p99);
        assert!(seen.unwrap() > 2.0 * normal.unwrap(), "{seen:?} {normal:?}");
        // A replica added later runs at normal speed.
        let mut grown = run(s.model.clone());
        grown.set_replicas(4);
        // Ready after its startup, then warmed with the others.
        grown.run_until(300.0 + s.model.startup + 1.0, &|_| 60.0);
        grown.warm_up();
        grown.run_until(600.0, &|_| 60.0);
        let added = grown.per_replica[3].mean().unwrap();
        assert!((added / fine - 1.0).abs() < 0.25, "{added} against {fine}");
    }
}
