//! Cost against quality: each policy as a point (replica-minutes, minutes with
//! P99 over target) per scenario, the HPA settings that are at least as good as
//! Governor on both, and the chart of it as SVG text.

use std::fmt::Write as _;

use super::bench::Figures;
use super::policy::HpaSetting;

/// CPU targets (percent) and P99 thresholds (fractions of the target) swept.
pub const CPU_TARGETS: [u32; 7] = [30, 40, 50, 60, 70, 80, 90];
pub const LATENCY_FRACTIONS: [f64; 6] = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

/// The policies of a sweep: Governor, the oracle and every HPA setting.
pub fn sweep_policies() -> Vec<String> {
    let mut out = vec!["governor".to_string(), "oracle".to_string()];
    out.extend(
        CPU_TARGETS
            .iter()
            .map(|t| HpaSetting::Cpu(f64::from(*t)).to_string()),
    );
    out.extend(
        LATENCY_FRACTIONS
            .iter()
            .map(|f| HpaSetting::Latency(*f).to_string()),
    );
    out
}

/// One policy on one scenario, averaged over seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub policy: String,
    pub replica_minutes: f64,
    pub p99_minutes: f64,
}

impl Point {
    /// At least as good as `other` on both cost and minutes over target.
    pub fn at_least_as_good_as(&self, other: &Point) -> bool {
        self.replica_minutes <= other.replica_minutes && self.p99_minutes <= other.p99_minutes
    }

    fn setting(&self) -> Option<HpaSetting> {
        HpaSetting::parse(&self.policy).ok().flatten()
    }
}

/// A scenario's points, and the HPA settings at least as good as Governor.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub scenario: String,
    pub seeds: u32,
    pub points: Vec<Point>,
    /// HPA settings at least as good as Governor on cost and on minutes over
    /// target (empty without a Governor point).
    pub dominated_by: Vec<String>,
}

impl Comparison {
    pub fn point(&self, policy: &str) -> Option<&Point> {
        self.points.iter().find(|p| p.policy == policy)
    }
}

/// The figures grouped by scenario, in their order.
pub fn compare(figures: &[Figures]) -> Vec<Comparison> {
    let mut out: Vec<Comparison> = Vec::new();
    for f in figures {
        let point = Point {
            policy: f.policy.clone(),
            replica_minutes: f.replica_minutes,
            p99_minutes: f.p99_violation_minutes,
        };
        match out.iter_mut().find(|c| c.scenario == f.scenario) {
            Some(c) => c.points.push(point),
            None => out.push(Comparison {
                scenario: f.scenario.clone(),
                seeds: f.seeds,
                points: vec![point],
                dominated_by: Vec::new(),
            }),
        }
    }
    for c in &mut out {
        if let Some(governor) = c.point("governor").cloned() {
            c.dominated_by = c
                .points
                .iter()
                .filter(|p| p.setting().is_some() && p.at_least_as_good_as(&governor))
                .map(|p| p.policy.clone())
                .collect();
        }
    }
    out
}

/// The Pareto table: Governor's and the oracle's points, and what dominates Governor.
pub fn write_table(all: &[Comparison], out: &mut impl std::io::Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<16} {:>14} {:>14} {:>14} {:>14}  dominated by",
        "scenario", "governor cost", "governor p99>", "oracle cost", "oracle p99>"
    )?;
    let cell = |p: Option<&Point>, pick: fn(&Point) -> f64| {
        p.map_or("-".to_string(), |p| format!("{:.1}", pick(p)))
    };
    for c in all {
        let (g, o) = (c.point("governor"), c.point("oracle"));
        let dominated = if g.is_none() {
            "-".to_string()
        } else if c.dominated_by.is_empty() {
            "none".to_string()
        } else {
            c.dominated_by.join(", ")
        };
        writeln!(
            out,
            "{:<16} {:>14} {:>14} {:>14} {:>14}  {dominated}",
            c.scenario,
            cell(g, |p| p.replica_minutes),
            cell(g, |p| p.p99_minutes),
            cell(o, |p| p.replica_minutes),
            cell(o, |p| p.p99_minutes),
        )?;
    }
    Ok(())
}

/// A file name for a scenario's chart: its name with anything but letters,
/// digits, '-', '_' and '.' replaced, and `.svg`.
pub fn file_name(scenario: &str) -> String {
    let stem: String = scenario
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{}.svg", stem.trim_start_matches('.'))
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 440.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 190.0;
const TOP: f64 = 44.0;
const BOTTOM: f64 = 56.0;

const CPU_COLOUR: &str = "#1f77b4";
const LATENCY_COLOUR: &str = "#ff7f0e";
const GOVERNOR_COLOUR: &str = "#d62728";
const ORACLE_COLOUR: &str = "#2ca02c";
const OTHER_COLOUR: &str = "#7f7f7f";

/// How a point is drawn.
#[derive(Clone, Copy, PartialEq)]
enum Mark {
    Cpu,
    Latency,
    Governor,
    Oracle,
    Other,
}

impl Mark {
    fn of(p: &Point) -> Self {
        match (p.policy.as_str(), p.setting()) {
            ("governor", _) => Self::Governor,
            ("oracle", _) => Self::Oracle,
            (_, Some(HpaSetting::Cpu(_))) => Self::Cpu,
            (_, Some(HpaSetting::Latency(_))) => Self::Latency,
            _ => Self::Other,
        }
    }

    fn colour(self) -> &'static str {
        match self {
            Self::Cpu => CPU_COLOUR,
            Self::Latency => LATENCY_COLOUR,
            Self::Governor => GOVERNOR_COLOUR,
            Self::Oracle => ORACLE_COLOUR,
            Self::Other => OTHER_COLOUR,
        }
    }

    /// The marker's shape at (x, y).
    fn shape(self, x: f64, y: f64) -> String {
        let c = self.colour();
        match self {
            Self::Cpu | Self::Other => {
                format!(r#"<circle cx="{x:.1}" cy="{y:.1}" r="4.5" fill="{c}"/>"#)
            }
            Self::Latency => format!(
                r#"<rect x="{:.1}" y="{:.1}" width="9" height="9" fill="{c}"/>"#,
                x - 4.5,
                y - 4.5
            ),
            Self::Governor => format!(
                r#"<polygon points="{:.1},{:.1} {:.1},{:.1} {:.1},{:.1} {:.1},{:.1}" fill="{c}" stroke="black" stroke-width="1"/>"#,
                x,
                y - 9.0,
                x + 9.0,
                y,
                x,
                y + 9.0,
                x - 9.0,
                y
            ),
            Self::Oracle => format!(
                r#"<polygon points="{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}" fill="{c}" stroke="black" stroke-width="1"/>"#,
                x,
                y - 9.0,
                x + 8.5,
                y + 6.0,
                x - 8.5,
                y + 6.0
            ),
        }
    }

    fn label(self, p: &Point) -> String {
        match (self, p.setting()) {
            (Self::Governor, _) => "Governor".into(),
            (Self::Oracle, _) => "oracle".into(),
            (_, Some(HpaSetting::Cpu(t))) => format!("{t}"),
            (_, Some(HpaSetting::Latency(f))) => format!("{f}"),
            _ => p.policy.clone(),
        }
    }
}

/// A step of 1, 2 or 5 times a power of ten giving about `ticks` intervals up to `max`.
fn tick_step(max: f64, ticks: f64) -> f64 {
    let raw = (max / ticks).max(1e-9);
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power);
    step.max(f64::MIN_POSITIVE)
}

/// An axis from 0: its step and end (a whole number of steps at or past `max`).
fn axis(max: f64) -> (f64, f64) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let step = tick_step(max, 5.0);
    (step, step * (max / step).ceil().max(1.0))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A tick label: no float noise (`0.6`, not `0.6000000000000001`).
fn number(v: f64) -> String {
    format!("{}", (v * 1e6).round() / 1e6)
}

/// Where the chart's values land: the plot area and the axes' ends.
#[derive(Clone, Copy)]
struct Plot {
    x_end: f64,
    y_end: f64,
    plot_w: f64,
    plot_h: f64,
}

impl Plot {
    fn x(&self, v: f64) -> f64 {
        LEFT + v / self.x_end * self.plot_w
    }

    fn y(&self, v: f64) -> f64 {
        TOP + self.plot_h - v / self.y_end * self.plot_h
    }
}

/// The chart of one scenario: replica-minutes (x) against minutes with P99
/// over target (y), one marked point per policy, each HPA family joined in
/// order of its setting, Governor and the oracle drawn larger.
pub fn svg(c: &Comparison) -> String {
    let points: Vec<&Point> = c
        .points
        .iter()
        .filter(|p| p.replica_minutes.is_finite() && p.p99_minutes.is_finite())
        .collect();
    let (x_step, x_end) = axis(points.iter().map(|p| p.replica_minutes).fold(0.0, f64::max) * 1.05);
    let (y_step, y_end) = axis(points.iter().map(|p| p.p99_minutes).fold(0.0, f64::max) * 1.05);
    let plot = Plot {
        x_end,
        y_end,
        plot_w: WIDTH - LEFT - RIGHT,
        plot_h: HEIGHT - TOP - BOTTOM,
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="24" font-size="15" font-weight="bold">{}: cost against minutes over the P99 target ({} seed{})</text>"#,
        escape(&c.scenario),
        c.seeds,
        if c.seeds == 1 { "" } else { "s" }
    );
    grid(&mut s, &plot, x_step, y_step);
    axes(&mut s, &plot);
    families(&mut s, &plot, &points);
    marks(&mut s, &plot, &points);
    legend(&mut s, &plot, &points);
    s.push_str("</svg>\n");
    s
}

/// Grid, ticks and tick labels.
fn grid(s: &mut String, plot: &Plot, x_step: f64, y_step: f64) {
    let Plot {
        x_end,
        y_end,
        plot_w,
        plot_h,
    } = *plot;
    let (x, y) = (|v| plot.x(v), |v| plot.y(v));
    for i in 0..=(x_end / x_step).round() as u32 {
        let v = f64::from(i) * x_step;
        let px = x(v);
        let _ = writeln!(
            s,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#e5e5e5"/><line x1="{px:.1}" y1="{:.1}" x2="{px:.1}" y2="{:.1}" stroke="black"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            TOP + plot_h,
            TOP + plot_h,
            TOP + plot_h + 5.0,
            TOP + plot_h + 19.0,
            number(v)
        );
    }
    for i in 0..=(y_end / y_step).round() as u32 {
        let v = f64::from(i) * y_step;
        let py = y(v);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#e5e5e5"/><line x1="{:.1}" y1="{py:.1}" x2="{LEFT}" y2="{py:.1}" stroke="black"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 5.0,
            LEFT - 8.0,
            py + 4.0,
            number(v)
        );
    }
}

/// Axes and their labels.
fn axes(s: &mut String, plot: &Plot) {
    let (plot_w, plot_h) = (plot.plot_w, plot.plot_h);
    let _ = writeln!(
        s,
        r#"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{:.1}" stroke="black"/><line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="black"/>"#,
        TOP + plot_h,
        TOP + plot_h,
        LEFT + plot_w,
        TOP + plot_h
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">replica-minutes (cost)</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 14.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">minutes with P99 over target</text>"#,
        TOP + plot_h / 2.0
    );
}

/// Each HPA family joined in order of its setting.
fn families(s: &mut String, plot: &Plot, points: &[&Point]) {
    let (x, y) = (|v| plot.x(v), |v| plot.y(v));
    for family in [Mark::Cpu, Mark::Latency] {
        let mut line: Vec<(f64, &Point)> = points
            .iter()
            .filter(|p| Mark::of(p) == family)
            .filter_map(|p| match p.setting() {
                Some(HpaSetting::Cpu(v) | HpaSetting::Latency(v)) => Some((v, *p)),
                None => None,
            })
            .collect();
        line.sort_by(|a, b| a.0.total_cmp(&b.0));
        if line.len() > 1 {
            let path: Vec<String> = line
                .iter()
                .map(|(_, p)| format!("{:.1},{:.1}", x(p.replica_minutes), y(p.p99_minutes)))
                .collect();
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="1" stroke-opacity="0.6"/>"#,
                path.join(" "),
                family.colour()
            );
        }
    }
}

/// The points, Governor and the oracle last so they are drawn on top.
fn marks(s: &mut String, plot: &Plot, points: &[&Point]) {
    let (x, y) = (|v| plot.x(v), |v| plot.y(v));
    let mut ordered = points.to_vec();
    ordered.sort_by_key(|p| matches!(Mark::of(p), Mark::Governor | Mark::Oracle));
    for p in ordered {
        let mark = Mark::of(p);
        let (px, py) = (x(p.replica_minutes), y(p.p99_minutes));
        let big = matches!(mark, Mark::Governor | Mark::Oracle);
        let _ = writeln!(
            s,
            r#"<g class="point" data-policy="{policy}" data-replica-minutes="{:.2}" data-p99-minutes="{:.2}"><title>{policy}: {:.1} replica-minutes, {:.1} minutes over target</title>{}<text x="{:.1}" y="{:.1}" font-size="{}"{}>{}</text></g>"#,
            p.replica_minutes,
            p.p99_minutes,
            p.replica_minutes,
            p.p99_minutes,
            mark.shape(px, py),
            px + if big { 11.0 } else { 7.0 },
            py - if big { 6.0 } else { 4.0 },
            if big { 13 } else { 10 },
            if big { r#" font-weight="bold""# } else { "" },
            escape(&mark.label(p)),
            policy = escape(&p.policy),
        );
    }
}

/// The legend, with "other" when a policy has no mark of its own.
fn legend(s: &mut String, plot: &Plot, points: &[&Point]) {
    let plot_w = plot.plot_w;
    let lx = LEFT + plot_w + 22.0;
    let entries = [
        (Mark::Governor, "Governor"),
        (Mark::Oracle, "oracle"),
        (Mark::Cpu, "hpa-cpu:T (CPU %)"),
        (Mark::Latency, "hpa-latency:F (x target)"),
    ];
    let _ = writeln!(s, r#"<g class="legend">"#);
    for (i, (mark, text)) in entries.iter().enumerate() {
        let ly = TOP + 14.0 + 24.0 * i as f64;
        let _ = writeln!(
            s,
            r#"{}<text x="{:.1}" y="{:.1}">{}</text>"#,
            mark.shape(lx, ly),
            lx + 14.0,
            ly + 4.0,
            escape(text)
        );
    }
    if points.iter().any(|p| Mark::of(p) == Mark::Other) {
        let ly = TOP + 14.0 + 24.0 * entries.len() as f64;
        let _ = writeln!(
            s,
            r#"{}<text x="{:.1}" y="{:.1}">other</text>"#,
            Mark::Other.shape(lx, ly),
            lx + 14.0,
            ly + 4.0
        );
    }
    let _ = writeln!(s, "</g>");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(scenario: &str, policy: &str, cost: f64, minutes: f64) -> Figures {
        Figures {
            scenario: scenario.into(),
            policy: policy.into(),
            seeds: 5,
            replica_minutes: cost,
            p99_violation_minutes: minutes,
            ..Figures::default()
        }
    }

    #[test]
    fn the_sweep_spells_every_setting() {
        let all = sweep_policies();
        assert_eq!(all.len(), 2 + 7 + 6);
        assert!(all.contains(&"hpa-cpu:30".to_string()));
        assert!(all.contains(&"hpa-latency:0.5".to_string()));
        assert!(all.contains(&"hpa-latency:1".to_string()));
    }

    #[test]
    fn settings_at_least_as_good_on_both_dominate_governor() {
        let all = compare(&[
            figures("a", "governor", 100.0, 2.0),
            figures("a", "oracle", 90.0, 0.0),
            figures("a", "hpa-cpu:50", 100.0, 2.0),
            figures("a", "hpa-cpu:90", 60.0, 9.0),
            figures("a", "hpa-latency:0.5", 300.0, 1.0),
            figures("a", "static", 50.0, 1.0),
            figures("b", "governor", 10.0, 0.0),
            figures("b", "hpa-cpu:70", 20.0, 0.0),
        ]);
        assert_eq!(all.len(), 2);
        // Equal on both counts as at least as good; the oracle and static are
        // not baseline settings.
        assert_eq!(all[0].dominated_by, vec!["hpa-cpu:50".to_string()]);
        assert!(all[1].dominated_by.is_empty());
        let mut table = Vec::new();
        write_table(&all, &mut table).unwrap();
        let table = String::from_utf8(table).unwrap();
        assert!(table.contains("hpa-cpu:50"), "{table}");
        assert!(table.lines().nth(2).unwrap().ends_with("none"), "{table}");
    }

    #[test]
    fn the_chart_has_one_point_per_policy_inside_the_axes() {
        let all = compare(&[
            figures("x<&>", "governor", 123.0, 4.5),
            figures("x<&>", "oracle", 100.0, 0.0),
            figures("x<&>", "hpa-cpu:30", 400.0, 0.0),
            figures("x<&>", "hpa-cpu:90", 90.0, 20.0),
            figures("x<&>", "hpa-latency:0.8", 200.0, 3.0),
        ]);
        let svg = svg(&all[0]);
        assert_eq!(svg.matches(r#"class="point""#).count(), 5, "{svg}");
        assert!(svg.contains("x&lt;&amp;&gt;"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        assert_eq!(file_name("x<&>"), "x___.svg");
        assert_eq!(file_name("../up"), "_up.svg");
    }

    #[test]
    fn axes_end_on_a_round_tick_past_the_data() {
        assert_eq!(axis(0.0), (0.2, 1.0));
        assert_eq!(axis(7.0), (2.0, 8.0));
        assert_eq!(axis(433.0), (100.0, 500.0));
        assert_eq!(axis(1234.5), (500.0, 1500.0));
        assert_eq!(number(3.0 * 0.2), "0.6");
    }
}
