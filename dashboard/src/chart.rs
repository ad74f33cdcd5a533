//! Server-rendered SVG line charts: numbers only reach the markup, and gaps in
//! the data stay gaps (a missing point is never drawn as zero).

use crate::format;

pub const WIDTH: f64 = 640.0;
pub const HEIGHT: f64 = 200.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 24.0;
/// Most points drawn per series; longer series keep each bucket's maximum.
pub const MAX_POINTS: usize = 240;

/// A line: its legend name, CSS class and polyline segments ("x,y x,y ...").
#[derive(Clone, Debug)]
pub struct Line {
    pub name: String,
    pub class: &'static str,
    pub segments: Vec<String>,
}

/// A horizontal target line.
#[derive(Clone, Debug)]
pub struct Target {
    pub label: String,
    pub class: &'static str,
    pub y: String,
}

/// An axis tick: position and label.
#[derive(Clone, Debug)]
pub struct Tick {
    pub at: String,
    pub label: String,
    /// SVG text-anchor: the first and last time labels stay inside the plot.
    pub anchor: &'static str,
}

#[derive(Clone, Debug)]
pub struct Chart {
    pub id: &'static str,
    pub title: String,
    pub lines: Vec<Line>,
    pub targets: Vec<Target>,
    pub y_ticks: Vec<Tick>,
    pub x_ticks: Vec<Tick>,
    /// No point of any series has a value.
    pub empty: bool,
    pub width: f64,
    pub height: f64,
    pub plot_left: f64,
    pub plot_right: f64,
    pub plot_bottom: f64,
}

/// One series to draw: name, CSS class and (t, value) points.
pub struct Series<'a> {
    pub name: &'a str,
    pub class: &'static str,
    pub points: Vec<(f64, Option<f64>)>,
}

/// Keeps at most `MAX_POINTS` per series, each the largest value of its bucket,
/// so a spike survives; a bucket with no value stays missing.
fn downsample(points: &[(f64, Option<f64>)]) -> Vec<(f64, Option<f64>)> {
    if points.len() <= MAX_POINTS {
        return points.to_vec();
    }
    let per = points.len().div_ceil(MAX_POINTS);
    points
        .chunks(per)
        .map(|c| {
            let t = c[c.len() / 2].0;
            let v = c
                .iter()
                .filter_map(|p| p.1)
                .fold(None, |acc: Option<f64>, v| {
                    Some(acc.map_or(v, |a| a.max(v)))
                });
            (t, v)
        })
        .collect()
}

/// A "nice" step near `span / 4`: 1, 2 or 5 times a power of ten.
fn nice_step(span: f64) -> f64 {
    let raw = (span / 4.0).max(1e-12);
    let mag = 10f64.powf(raw.log10().floor());
    let n = raw / mag;
    mag * if n <= 1.0 {
        1.0
    } else if n <= 2.0 {
        2.0
    } else if n <= 5.0 {
        5.0
    } else {
        10.0
    }
}

/// Builds a chart over [t0, t1]. `scale` converts values to the unit shown on
/// the axis (1000 for milliseconds); `targets` are (label, value) lines.
pub fn build(
    id: &'static str,
    title: &str,
    series: Vec<Series<'_>>,
    targets: &[(String, f64)],
    (t0, t1): (f64, f64),
    scale: f64,
    with_day: bool,
) -> Chart {
    let series: Vec<Series<'_>> = series
        .into_iter()
        .map(|s| clip(s, (t0, t1), scale))
        .collect();
    let (lo, hi, step) = value_axis(&series, targets, scale);
    let empty = series
        .iter()
        .all(|s| s.points.iter().all(|p| p.1.is_none()));
    let span_t = (t1 - t0).max(1.0);
    let (pw, ph) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let x = |t: f64| LEFT + (t - t0) / span_t * pw;
    let y = |v: f64| TOP + ph - (v - lo) / (hi - lo) * ph;
    let lines = series.into_iter().map(|s| line(s, x, y)).collect();
    let targets = targets
        .iter()
        .filter(|t| t.1.is_finite())
        .map(|(label, v)| Target {
            label: label.clone(),
            class: "target",
            y: format!("{:.1}", y(v * scale)),
        })
        .collect();
    Chart {
        id,
        title: title.to_string(),
        lines,
        targets,
        y_ticks: value_ticks((lo, hi, step), y),
        x_ticks: time_ticks(t0, span_t, with_day, x),
        empty,
        width: WIDTH,
        height: HEIGHT,
        plot_left: LEFT,
        plot_right: WIDTH - RIGHT,
        plot_bottom: TOP + ph,
    }
}

/// The points inside [t0, t1], non-finite values missing, scaled and downsampled.
fn clip<'a>(s: Series<'a>, (t0, t1): (f64, f64), scale: f64) -> Series<'a> {
    let clean: Vec<(f64, Option<f64>)> = s
        .points
        .iter()
        .filter(|(t, _)| t.is_finite() && *t >= t0 && *t <= t1)
        .map(|&(t, v)| (t, v.filter(|x| x.is_finite()).map(|x| x * scale)))
        .collect();
    Series {
        name: s.name,
        class: s.class,
        points: downsample(&clean),
    }
}

/// The value axis as (low, high, step): from zero or below, up to a whole step
/// over the largest value or target.
fn value_axis(series: &[Series<'_>], targets: &[(String, f64)], scale: f64) -> (f64, f64, f64) {
    let values = series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|p| p.1))
        .chain(
            targets
                .iter()
                .map(|t| t.1 * scale)
                .filter(|v| v.is_finite()),
        );
    let (mut lo, mut hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() || !hi.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    lo = lo.min(0.0);
    if hi - lo < 1e-9 {
        hi = lo + 1.0;
    }
    let step = nice_step(hi - lo);
    hi = (hi / step).ceil() * step;
    (lo, hi, step)
}

/// A series as polyline segments: a missing value ends one.
fn line(s: Series<'_>, x: impl Fn(f64) -> f64, y: impl Fn(f64) -> f64) -> Line {
    let mut segments = Vec::new();
    let mut current = String::new();
    for (t, v) in s.points {
        match v {
            Some(v) => {
                if !current.is_empty() {
                    current.push(' ');
                }
                current.push_str(&format!("{:.1},{:.1}", x(t), y(v)));
            }
            None if !current.is_empty() => segments.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        segments.push(current);
    }
    Line {
        name: s.name.to_string(),
        class: s.class,
        segments,
    }
}

/// A tick per step from `lo` to `hi`, at most twelve.
fn value_ticks((lo, hi, step): (f64, f64, f64), y: impl Fn(f64) -> f64) -> Vec<Tick> {
    let mut ticks = Vec::new();
    let mut v = lo;
    while v <= hi + step * 0.01 && ticks.len() < 12 {
        ticks.push(Tick {
            at: format!("{:.1}", y(v)),
            label: format::number(v),
            anchor: "end",
        });
        v += step;
    }
    ticks
}

/// Five time labels across the span, the outer ones kept inside the plot.
fn time_ticks(t0: f64, span_t: f64, with_day: bool, x: impl Fn(f64) -> f64) -> Vec<Tick> {
    (0..=4)
        .map(|i| {
            let t = t0 + span_t * f64::from(i) / 4.0;
            Tick {
                at: format!("{:.1}", x(t)),
                label: format::clock(t, with_day),
                anchor: match i {
                    0 => "start",
                    4 => "end",
                    _ => "middle",
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(points: Vec<(f64, Option<f64>)>) -> Chart {
        build(
            "c",
            "t",
            vec![Series {
                name: "p99",
                class: "p99",
                points,
            }],
            &[("target".into(), 0.1)],
            (0.0, 100.0),
            1000.0,
            false,
        )
    }

    #[test]
    fn a_gap_splits_the_line_instead_of_dropping_to_zero() {
        let c = line(vec![
            (0.0, Some(0.05)),
            (10.0, Some(0.06)),
            (20.0, None),
            (30.0, Some(f64::NAN)),
            (40.0, Some(0.07)),
            (50.0, Some(0.08)),
        ]);
        assert_eq!(c.lines[0].segments.len(), 2, "{:?}", c.lines[0].segments);
        assert!(!c.empty);
    }

    #[test]
    fn no_data_is_empty_and_long_series_are_bounded() {
        assert!(line(vec![(0.0, None), (1.0, None)]).empty);
        let many = (0..10_000)
            .map(|i| (f64::from(i) / 100.0, Some(f64::from(i % 7))))
            .collect();
        let c = line(many);
        let drawn = c.lines[0].segments[0].split(' ').count();
        assert!(drawn <= MAX_POINTS, "{drawn}");
        // The spike of each bucket survives: 6 is the largest value, scaled to ms.
        assert!(
            c.y_ticks.iter().any(|t| t.label == "6.0k"),
            "{:?}",
            c.y_ticks
        );
    }
}
