//! How numbers read on the page. Missing is a dash, never zero.

use k8s_openapi::jiff::Timestamp;

pub const MISSING: &str = "—";

/// Seconds as "450 ms", "8.5 ms" or "1.20 s".
pub fn latency(s: Option<f64>) -> String {
    match s.filter(|v| v.is_finite() && *v >= 0.0) {
        None => MISSING.into(),
        Some(v) if v >= 1.0 => format!("{v:.2} s"),
        Some(v) if v < 0.01 => format!("{:.1} ms", v * 1e3),
        Some(v) => format!("{:.0} ms", v * 1e3),
    }
}

/// A ratio as a percentage: "42 %", "0.15 %".
pub fn percent(r: Option<f64>) -> String {
    match r.filter(|v| v.is_finite()) {
        None => MISSING.into(),
        Some(v) if v != 0.0 && v.abs() < 0.01 => format!("{:.2} %", v * 100.0),
        Some(v) if v.abs() < 0.1 => format!("{:.1} %", v * 100.0),
        // One decimal when it shows something: 99.7 %, not 100 %.
        Some(v) if ((v * 100.0) - (v * 100.0).round()).abs() >= 0.05 => {
            format!("{:.1} %", v * 100.0)
        }
        Some(v) => format!("{:.0} %", v * 100.0),
    }
}

/// Requests per second: "142 rps", "12.5 rps", "1.2k rps".
pub fn rate(r: Option<f64>) -> String {
    match r.filter(|v| v.is_finite() && *v >= 0.0) {
        None => MISSING.into(),
        Some(v) if v >= 10_000.0 => format!("{:.0}k rps", v / 1e3),
        Some(v) if v >= 1_000.0 => format!("{:.1}k rps", v / 1e3),
        Some(v) if v >= 10.0 => format!("{v:.0} rps"),
        Some(v) => format!("{v:.1} rps"),
    }
}

/// A burn-rate multiple: "14.4×".
pub fn burn(b: Option<f64>) -> String {
    match b.filter(|v| v.is_finite() && *v >= 0.0) {
        None => MISSING.into(),
        Some(v) if v >= 100.0 => format!("{v:.0}×"),
        Some(v) => format!("{v:.1}×"),
    }
}

/// A plain number for axis labels.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        MISSING.into()
    } else if v.abs() >= 1000.0 {
        format!("{:.1}k", v / 1e3)
    } else if v.fract() == 0.0 || v.abs() >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Unix seconds as UTC "HH:MM", or "Mon 14:00" when `with_day`.
pub fn clock(t: f64, with_day: bool) -> String {
    match Timestamp::from_second(t.floor() as i64) {
        Ok(ts) => ts
            .strftime(if with_day { "%a %H:%M" } else { "%H:%M" })
            .to_string(),
        Err(_) => MISSING.into(),
    }
}

/// Unix seconds as RFC 3339 UTC, to the second.
pub fn timestamp(t: f64) -> String {
    match Timestamp::from_second(t.floor() as i64) {
        Ok(ts) => ts.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        Err(_) => MISSING.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_reads_as_a_dash_not_zero() {
        assert_eq!(latency(None), MISSING);
        assert_eq!(latency(Some(f64::NAN)), MISSING);
        assert_eq!(percent(Some(f64::INFINITY)), MISSING);
        assert_eq!(rate(Some(-1.0)), MISSING);
        assert_eq!(burn(None), MISSING);
    }

    #[test]
    fn values_read_in_their_units() {
        assert_eq!(latency(Some(0.45)), "450 ms");
        assert_eq!(latency(Some(0.0085)), "8.5 ms");
        assert_eq!(latency(Some(1.2)), "1.20 s");
        assert_eq!(percent(Some(0.42)), "42 %");
        assert_eq!(percent(Some(0.0015)), "0.15 %");
        assert_eq!(percent(Some(0.997)), "99.7 %");
        assert_eq!(percent(Some(0.9999)), "100 %");
        assert_eq!(rate(Some(142.0)), "142 rps");
        assert_eq!(rate(Some(1500.0)), "1.5k rps");
        assert_eq!(burn(Some(14.4)), "14.4×");
        assert_eq!(clock(0.0, false), "00:00");
        assert_eq!(timestamp(86_400.0), "1970-01-02 00:00:00 UTC");
    }
}
