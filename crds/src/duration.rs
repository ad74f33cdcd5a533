//! Durations as users write them ("100ms", "1.5s", "30d") and as the API stores them.
//!
//! Two types: [`Latency`] accepts only Go duration units (ns, us, ms, s, m, h) so the
//! API server's CEL `duration()` can compare latency targets; [`Duration`] also
//! accepts days and weeks, for SLO windows.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::time::Duration as StdDuration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Regex (OpenAPI `pattern`) for a latency: Go duration units only.
pub const LATENCY_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$";
/// Regex (OpenAPI `pattern`) for a duration that may use days and weeks.
pub const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h|d|w))+$";

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("invalid duration {0:?}: expected a number and a unit, like 100ms, 1.5s, 5m or 30d")]
    Malformed(String),
    #[error("invalid duration {0:?}: unit {1:?} is not allowed here (use ns, us, ms, s, m or h)")]
    UnitNotAllowed(String, String),
    #[error("invalid duration {0:?}: too large")]
    Overflow(String),
}

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        "w" => 604_800_000_000_000,
        _ => return None,
    })
}

/// Parses "1h30m", "1.5s", "100ms". `long_units` allows d and w.
fn parse(input: &str, long_units: bool) -> Result<StdDuration, DurationError> {
    if input.is_empty() {
        return Err(DurationError::Empty);
    }
    let malformed = || DurationError::Malformed(input.to_string());
    let mut rest = input;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(malformed)?;
        let (num, tail) = rest.split_at(num_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let per = unit_nanos(unit).ok_or_else(malformed)?;
        if !long_units && matches!(unit, "d" | "w") {
            return Err(DurationError::UnitNotAllowed(
                input.to_string(),
                unit.to_string(),
            ));
        }
        let (int, frac) = match num.split_once('.') {
            Some((i, f)) => (i, f),
            None => (num, ""),
        };
        if int.is_empty() || num.matches('.').count() > 1 || (num.contains('.') && frac.is_empty())
        {
            return Err(malformed());
        }
        let overflow = || DurationError::Overflow(input.to_string());
        let int: u128 = int.parse().map_err(|_| overflow())?;
        let mut part = int.checked_mul(per).ok_or_else(overflow)?;
        // Fractions: at most nine digits matter at nanosecond precision. Every
        // step is checked: a huge integer part plus its fraction must not wrap.
        let mut scale = per;
        for digit in frac.chars().take(18) {
            scale /= 10;
            let digit = u128::from(digit.to_digit(10).ok_or_else(malformed)?);
            let add = digit.checked_mul(scale).ok_or_else(overflow)?;
            part = part.checked_add(add).ok_or_else(overflow)?;
        }
        total = total.checked_add(part).ok_or_else(overflow)?;
        rest = tail;
    }
    let secs = u64::try_from(total / 1_000_000_000)
        .map_err(|_| DurationError::Overflow(input.to_string()))?;
    Ok(StdDuration::new(secs, (total % 1_000_000_000) as u32))
}

/// Formats a duration with the largest units that divide it, e.g. "450ms", "1m30s", "30d".
fn format(d: StdDuration, long_units: bool) -> String {
    let mut nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    // Weeks are accepted on input but never written: "30d" reads better than "4w2d".
    let units: &[(&str, u128)] = &[
        ("d", 86_400_000_000_000),
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ];
    let mut out = String::new();
    for (name, size) in units {
        if !long_units && *name == "d" {
            continue;
        }
        if nanos >= *size {
            // Below a second, one unit with a fraction reads better than "1ms500us".
            if *size <= 1_000_000 && !nanos.is_multiple_of(*size) && *name != "ns" {
                let value = nanos as f64 / *size as f64;
                out.push_str(&format!("{}{}", trim_float(value), name));
                return out;
            }
            out.push_str(&format!("{}{}", nanos / size, name));
            nanos %= size;
        }
    }
    out
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

macro_rules! duration_type {
    ($name:ident, $long:expr, $pattern:expr, $example:expr, $doc:expr) => {
        #[doc = $doc]
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub StdDuration);

        impl $name {
            pub const fn from_millis(ms: u64) -> Self {
                Self(StdDuration::from_millis(ms))
            }
            pub const fn from_secs(s: u64) -> Self {
                Self(StdDuration::from_secs(s))
            }
            pub fn as_secs_f64(&self) -> f64 {
                self.0.as_secs_f64()
            }
            pub fn std(&self) -> StdDuration {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = DurationError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse(s, $long).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&format(self.0, $long))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl From<StdDuration> for $name {
            fn from(d: StdDuration) -> Self {
                Self(d)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                raw.parse().map_err(serde::de::Error::custom)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn inline_schema() -> bool {
                true
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "pattern": $pattern,
                    "maxLength": 32,
                    "example": $example,
                })
            }
        }
    };
}

duration_type!(
    Latency,
    false,
    LATENCY_PATTERN,
    "100ms",
    "A latency such as \"100ms\" or \"1.5s\" (Go duration units: ns, us, ms, s, m, h)."
);
duration_type!(
    Duration,
    true,
    DURATION_PATTERN,
    "30d",
    "A duration such as \"15s\", \"5m\" or \"30d\" (units ns, us, ms, s, m, h, d, w)."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(
            "100ms".parse::<Latency>().unwrap(),
            Latency::from_millis(100)
        );
        assert_eq!(
            "1.5s".parse::<Latency>().unwrap(),
            Latency::from_millis(1500)
        );
        assert_eq!(
            "1h30m".parse::<Duration>().unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(
            "30d".parse::<Duration>().unwrap(),
            Duration::from_secs(30 * 86400)
        );
        assert_eq!(
            "250us".parse::<Latency>().unwrap().0,
            StdDuration::from_micros(250)
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "", "100", "ms", "1..5s", "1.s", "-1s", "1x", "1 s", "s1", "1.5.5s",
        ] {
            assert!(
                bad.parse::<Duration>().is_err(),
                "{bad:?} should be refused"
            );
        }
        assert_eq!(
            "1d".parse::<Latency>().unwrap_err(),
            DurationError::UnitNotAllowed("1d".into(), "d".into())
        );
        assert!(matches!(
            "99999999999999999999999w".parse::<Duration>(),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn a_fraction_cannot_wrap_a_huge_value() {
        for huge in [
            "562636188692027882710606.9999w",
            "562636188692027882710606w",
            "340282366920938463463374607431768211455ns",
            "340282366920938463463374607431768211455.9ns",
            "18446744073709551616s",
            "18446744073709551615.5s1h",
        ] {
            assert!(
                matches!(huge.parse::<Duration>(), Err(DurationError::Overflow(_))),
                "{huge:?} should be refused as too large, got {:?}",
                huge.parse::<Duration>()
            );
        }
        assert_eq!(
            "562636188692027882710606.9999w"
                .parse::<Duration>()
                .unwrap_err()
                .to_string(),
            "invalid duration \"562636188692027882710606.9999w\": too large"
        );
        // The largest value that fits still parses.
        let max = format!("{}s", u64::MAX);
        assert_eq!(max.parse::<Duration>().unwrap().0.as_secs(), u64::MAX);
    }

    #[test]
    fn formats_round_trip() {
        for s in [
            "100ms", "1.5ms", "450ms", "1m30s", "30d", "15s", "1h", "14d",
        ] {
            let d: Duration = s.parse().unwrap();
            assert_eq!(d.to_string(), s);
        }
        assert_eq!(Latency::from_secs(86400).to_string(), "24h");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = s.parse::<Duration>();
            let _ = s.parse::<Latency>();
        }

        #[test]
        fn never_panics_on_huge_numbers(
            int in "[0-9]{1,45}",
            frac in proptest::option::of("[0-9]{1,25}"),
            unit in proptest::sample::select(vec!["ns", "us", "ms", "s", "m", "h", "d", "w"]),
            more in proptest::option::of("[0-9]{1,30}(\\.[0-9]{1,5})?(s|h|w)"),
        ) {
            let text = match &frac {
                Some(f) => format!("{int}.{f}{unit}"),
                None => format!("{int}{unit}"),
            };
            let text = format!("{text}{}", more.unwrap_or_default());
            let _ = text.parse::<Latency>();
            if let Ok(d) = text.parse::<Duration>() {
                // Never less than the integer part it read: nothing wrapped.
                let floor = int
                    .parse::<u128>()
                    .unwrap()
                    .checked_mul(unit_nanos(unit).unwrap())
                    .unwrap();
                proptest::prop_assert!(d.0.as_nanos() >= floor, "{text} read as {d:?}");
            }
        }

        #[test]
        fn display_parses_back(ms in 0u64..10_000_000_000) {
            let d = Duration::from_millis(ms);
            proptest::prop_assert_eq!(d.to_string().parse::<Duration>().unwrap(), d);
            let l = Latency::from_millis(ms);
            proptest::prop_assert_eq!(l.to_string().parse::<Latency>().unwrap(), l);
        }
    }
}
