//! The pages, one module each with its handler and view model, and the view
//! helpers they share. Every number is formatted here; templates only place text.

use governor_crds::{CurrentDesired, Decision, Knob};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::format;

pub mod api;
pub mod detail;
pub mod overview;

/// What every page needs from the server's configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Seconds between automatic reloads; 0 turns them off.
    pub refresh_seconds: u32,
    /// Base URL of the Jaeger UI, for trace links (e.g. http://jaeger:16686).
    pub jaeger_ui: Option<String>,
    /// Rows per overview page.
    pub page_size: usize,
    /// A note shown under the title (e.g. "demo: simulated services").
    pub banner: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            refresh_seconds: 15,
            jaeger_ui: None,
            page_size: 50,
            banner: None,
        }
    }
}

/// What stays unescaped in a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_');

/// The detail page of an SLO.
pub fn detail_href(namespace: &str, name: &str) -> String {
    format!(
        "/slos/{}/{}",
        utf8_percent_encode(namespace, SEGMENT),
        utf8_percent_encode(name, SEGMENT)
    )
}

/// `path` with the non-empty `pairs` as its query.
fn query_href(path: &str, pairs: &[(&str, &str)]) -> String {
    let pairs: Vec<&(&str, &str)> = pairs.iter().filter(|(_, v)| !v.is_empty()).collect();
    if pairs.is_empty() {
        return path.to_string();
    }
    format!(
        "{path}?{}",
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    )
}

/// A measured value, its target and the CSS class of how it stands.
pub struct Cell {
    pub text: String,
    pub target: String,
    pub class: &'static str,
}

impl Cell {
    /// One latency quantile against its target.
    pub fn latency(l: &crate::read::LatencyView) -> Self {
        Cell {
            text: format::latency(l.observed),
            target: l
                .target
                .map_or_else(|| "no target".into(), |t| format::latency(Some(t))),
            class: l.standing.css(),
        }
    }
}

fn budget_class(b: Option<f64>) -> &'static str {
    match b {
        None => "unknown",
        Some(b) if b <= 0.0 => "breached",
        Some(b) if b < 0.25 => "at-risk",
        Some(_) => "met",
    }
}

fn burn_class(b: Option<f64>) -> &'static str {
    match b {
        None => "unknown",
        Some(b) if b >= 6.0 => "breached",
        Some(b) if b > 1.0 => "at-risk",
        Some(_) => "met",
    }
}

fn current_desired(cd: Option<CurrentDesired>) -> String {
    match cd {
        None => format::MISSING.into(),
        Some(c) if c.current == c.desired => c.current.to_string(),
        Some(c) => format!("{} → {}", c.current, c.desired),
    }
}

fn decision_text(d: &Decision) -> String {
    let what = match d.knob {
        k @ Knob::CacheWarmUp => k.label().to_string(),
        k => format!("{} {} → {}", k.label(), d.from, d.to),
    };
    if d.dry_run {
        format!("{what} (dry run)")
    } else {
        what
    }
}
