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
pub const BUILT_IN: [&str; 6] = [
    "audit",
    "diurnal",
    "flash-crowd",
    "slow-ramp",
    "db-bound",
    "cold-cache",
];

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

    /// A built-in scenario by name.
    pub fn built_in(name: &str) -> Option<Self> {
        let base = |name: &str, duration: f64, load: Vec<(f64, f64)>| Scenario {
            name: name.to_string(),
            duration,
            load,
            model: ServiceModel::audit(),
            initial: InitialState {
                replicas: 2,
                pool_size: 40,
                served: 30_000.0,
            },
            spec: audit_spec(),
        };
        Some(match name {
            // The audit: 142 rps on 2 instances, cache at 42 %, pool 50 per instance
            // against 100 database connections; load ramps to 500 rps.
            "audit" => {
                let mut s = base(
                    name,
                    3600.0,
                    vec![
                        (0.0, 142.0),
                        (300.0, 142.0),
                        (1500.0, 500.0),
                        (3000.0, 500.0),
                        (3600.0, 300.0),
                    ],
                );
                s.initial = InitialState {
                    replicas: 2,
                    pool_size: 50,
                    served: 10_900.0,
                };
                s
            }
            "diurnal" => {
                let mut points = Vec::new();
                for i in 0..=48 {
                    let t = f64::from(i) * 75.0;
                    let phase = (t / 3600.0) * std::f64::consts::TAU;
                    points.push((t, 260.0 - 200.0 * phase.cos()));
                }
                base(name, 3600.0, points)
            }
            "flash-crowd" => base(
                name,
                2400.0,
                vec![
                    (0.0, 100.0),
                    (600.0, 100.0),
                    (660.0, 500.0),
                    (1500.0, 500.0),
                    (1560.0, 100.0),
                    (2400.0, 100.0),
                ],
            ),
            "slow-ramp" => base(
                name,
                3600.0,
                vec![(0.0, 50.0), (3000.0, 450.0), (3600.0, 450.0)],
            ),
            // The database is the bottleneck: few cores, slow queries, cache that
            // cannot warm. More replicas only add connections.
            "db-bound" => {
                let mut s = base(
                    name,
                    2400.0,
                    vec![
                        (0.0, 150.0),
                        (600.0, 150.0),
                        (900.0, 250.0),
                        (2400.0, 250.0),
                    ],
                );
                s.model.workers = 32;
                s.model.db_cores = 8.0;
                s.model.db_time = 0.045;
                s.model.cache_max = 0.3;
                s.initial = InitialState {
                    replicas: 4,
                    pool_size: 20,
                    served: 100_000.0,
                };
                s.spec.cache = None;
                s
            }
            // New replicas start cold, and a miss costs 4x.
            "cold-cache" => {
                let mut s = base(
                    name,
                    2400.0,
                    vec![
                        (0.0, 120.0),
                        (600.0, 120.0),
                        (720.0, 400.0),
                        (2400.0, 400.0),
                    ],
                );
                s.model.miss_penalty = 4.0;
                s.model.cache_max = 0.995;
                s.initial.served = 100_000.0;
                s
            }
            "month" => Self::month(MONTH_DAYS, MONTH_DAY_SECONDS),
            _ => return None,
        })
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
    pub fn from_trace(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut load = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split(',');
            let (Some(t), Some(r)) = (parts.next(), parts.next()) else {
                return Err(format!(
                    "{}:{}: expected `seconds,rps`",
                    path.display(),
                    i + 1
                ));
            };
            let (t_text, r_text) = (t.trim(), r.trim());
            let (Ok(t), Ok(r)) = (t_text.parse::<f64>(), r_text.parse::<f64>()) else {
                if i == 0 {
                    continue; // a header line
                }
                return Err(format!(
                    "{}:{}: expected two numbers, found {line:?}",
                    path.display(),
                    i + 1
                ));
            };
            for (field, v, raw) in [("seconds", t, t_text), ("rps", r, r_text)] {
                if !v.is_finite() || v < 0.0 {
                    return Err(format!(
                        "{}:{}: {field} must be a finite number >= 0, found {raw:?}",
                        path.display(),
                        i + 1
                    ));
                }
            }
            if t > MAX_TRACE_SECONDS {
                return Err(format!(
                    "{}:{}: seconds {t_text} is past the longest trace this simulator runs \
                     ({MAX_TRACE_SECONDS} s, 30 days)",
                    path.display(),
                    i + 1
                ));
            }
            if load.last().is_some_and(|&(last, _)| t <= last) {
                return Err(format!(
                    "{}:{}: seconds must increase",
                    path.display(),
                    i + 1
                ));
            }
            if r > 100_000.0 {
                return Err(format!(
                    "{}:{}: rps {r_text} is more than this simulator handles (100000)",
                    path.display(),
                    i + 1
                ));
            }
            load.push((t, r));
        }
        let Some(&(end, _)) = load.last() else {
            return Err(format!("{}: no `seconds,rps` lines", path.display()));
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
