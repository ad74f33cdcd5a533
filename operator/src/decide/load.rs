//! Load: the request rate now and over the forecast horizon, with the model
//! updated from this observation.

use std::collections::VecDeque;

use super::{Pass, secs};
use crate::estimate::Estimate;

/// After a scale-up the observation window shows the old state until the new
/// pods are ready and one more rate window (60 s) has passed.
const SETTLE_AFTER_STARTUP_S: f64 = 60.0;

pub(super) struct Load {
    /// Replicas serving now, at least one.
    pub ready: u32,
    /// The last scale-up is not yet visible in the observation window.
    pub settling: bool,
    /// Requests per second now.
    pub rate: f64,
    /// Requests per second expected once a new pod could serve, never under `rate`.
    pub forecast: f64,
}

impl Load {
    /// Reads the load and feeds the observation to the model (`history`: the
    /// replica counts in effect, to know whether a scale-up is still settling).
    pub fn update(pass: &Pass, model: &mut Estimate, history: &VecDeque<(f64, u32)>) -> Self {
        let cur = pass.cur();
        let ready = pass.obs.ready_replicas.unwrap_or(cur).max(1);
        let startup = secs(pass.spec.scaling.pod_startup_time);
        let settle = startup + SETTLE_AFTER_STARTUP_S;
        let settling = cur > ready
            || history
                .iter()
                .zip(history.iter().skip(1))
                .any(|(a, b)| b.1 > a.1 && b.0 > pass.now - settle);
        model.update(&pass.obs, ready, pass.now, settling);
        let rate = pass.obs.request_rate.unwrap_or(0.0);
        let horizon = startup + pass.interval;
        let forecast = model.forecast(horizon).unwrap_or(rate).max(rate);
        Self {
            ready,
            settling,
            rate,
            forecast,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::testing::{SpecBuilder, healthy};

    #[test]
    fn a_recent_scale_up_or_unready_pods_settle() {
        let spec = SpecBuilder::new().p99("100ms").pod_startup("30s").build();
        let obs = healthy(1000.0); // 4 ready
        let pass = Pass::at(&spec, &obs, 4, None, 1000.0);
        let steady = VecDeque::from([(0.0, 2), (500.0, 4)]);
        let load = Load::update(&pass, &mut Estimate::default(), &steady);
        assert!(!load.settling, "the scale-up was 500 s ago");
        assert_eq!((load.ready, load.rate), (4, 100.0));
        assert!(load.forecast >= load.rate);

        let recent = VecDeque::from([(0.0, 2), (950.0, 4)]);
        let load = Load::update(&pass, &mut Estimate::default(), &recent);
        assert!(load.settling, "50 s ago, within startup + 60 s");

        let unready = Pass::at(&spec, &obs, 6, None, 1000.0);
        let load = Load::update(&unready, &mut Estimate::default(), &steady);
        assert!(load.settling, "6 replicas, 4 ready");
    }
}
