//! The latency quantiles an objective can hold: one type from the spec to the
//! dashboard, so a quantile is never a float to compare, an index or a string.

use std::fmt;
use std::str::FromStr;

/// A latency quantile Governor knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Quantile {
    P50,
    P90,
    P95,
    P99,
    P999,
}

impl Quantile {
    /// Every quantile, lowest first.
    pub const ALL: [Quantile; 5] = [
        Quantile::P50,
        Quantile::P90,
        Quantile::P95,
        Quantile::P99,
        Quantile::P999,
    ];

    /// As a fraction: 0.5, 0.9, 0.95, 0.99, 0.999.
    pub const fn value(self) -> f64 {
        match self {
            Quantile::P50 => 0.5,
            Quantile::P90 => 0.9,
            Quantile::P95 => 0.95,
            Quantile::P99 => 0.99,
            Quantile::P999 => 0.999,
        }
    }

    /// The spec's field name: `p50`, `p90`, `p95`, `p99`, `p999`.
    pub const fn name(self) -> &'static str {
        match self {
            Quantile::P50 => "p50",
            Quantile::P90 => "p90",
            Quantile::P95 => "p95",
            Quantile::P99 => "p99",
            Quantile::P999 => "p999",
        }
    }

    /// Its place in [`Quantile::ALL`], for per-quantile arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The share of requests allowed to be slower: 1 - value.
    pub fn allowed_share(self) -> f64 {
        1.0 - self.value()
    }
}

impl fmt::Display for Quantile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Quantile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Quantile::ALL
            .into_iter()
            .find(|q| q.name() == s)
            .ok_or_else(|| format!("unknown quantile {s:?}; one of p50, p90, p95, p99, p999"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_values_and_indices_agree() {
        for (i, q) in Quantile::ALL.into_iter().enumerate() {
            assert_eq!(q.index(), i);
            assert_eq!(q.name().parse::<Quantile>(), Ok(q));
            assert!(q.value() > 0.0 && q.value() < 1.0);
        }
        assert!(
            Quantile::ALL
                .windows(2)
                .all(|w| w[0].value() < w[1].value())
        );
        assert!("p98".parse::<Quantile>().is_err());
    }
}
