//! The actuation port: where a plan meets the world. The operator implements it
//! over the Kubernetes API (`controller::act`), `governor demo` and `governor
//! simulate` over the simulator (`sim::engine::SimPort`); the order of changes
//! that keeps the connection budget, and the plan's translation into changes,
//! live here only.

use std::future::Future;

use governor_crds::Knob;

use crate::decide::Plan;

/// What the plan asks, in applicable form.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub replicas: Option<u32>,
    pub pool_size: Option<u32>,
    pub warm_up: bool,
}

impl Request {
    /// The changes `plan` asks for; nothing for a DryRun plan.
    pub fn from_plan(plan: &Plan) -> Self {
        if plan.dry_run {
            return Self::default();
        }
        Self {
            replicas: plan.replicas.as_ref().map(|c| c.to),
            pool_size: plan.pool_size.as_ref().map(|c| c.to),
            warm_up: plan.warm_up.is_some(),
        }
    }
}

/// A target Governor can change. Each method is one change; `apply` orders them.
pub trait Port {
    type Error: std::fmt::Display;
    /// The per-replica pool size in effect, when Governor manages one.
    fn pool_size(&self) -> Option<u32>;
    /// Sets the replicas; returns the count actually set (a driven HPA may cap it).
    fn set_replicas(
        &mut self,
        replicas: u32,
    ) -> impl Future<Output = Result<u32, Self::Error>> + Send;
    fn set_pool_size(&mut self, size: u32) -> impl Future<Output = Result<(), Self::Error>> + Send;
    fn warm_up(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// One change, in the order it must be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    PoolSize(u32),
    Replicas(u32),
    WarmUp,
}

impl Step {
    pub fn knob(self) -> Knob {
        match self {
            Step::PoolSize(_) => Knob::PoolSize,
            Step::Replicas(_) => Knob::Replicas,
            Step::WarmUp => Knob::CacheWarmUp,
        }
    }
}

/// The steps of `req` in the order that keeps replicas x pool within the budget
/// at every step: a smaller pool before more replicas, a larger pool after fewer.
pub fn steps(req: Request, current_pool: Option<u32>) -> Vec<Step> {
    let mut out = Vec::new();
    let shrink = req
        .pool_size
        .filter(|p| current_pool.is_none_or(|c| *p < c));
    if let Some(p) = shrink {
        out.push(Step::PoolSize(p));
    }
    if let Some(n) = req.replicas {
        out.push(Step::Replicas(n));
    }
    if let Some(p) = req
        .pool_size
        .filter(|p| shrink.is_none() && current_pool != Some(*p))
    {
        out.push(Step::PoolSize(p));
    }
    if req.warm_up {
        out.push(Step::WarmUp);
    }
    out
}

/// What `apply` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Replicas asked and the fewer actually set, when the target capped them.
    pub capped: Option<(u32, u32)>,
}

/// The step that failed, and why; the steps after it did not run.
#[derive(Debug, thiserror::Error)]
#[error("{}: {error}", knob.as_str())]
pub struct Failed<E: std::fmt::Display> {
    pub knob: Knob,
    pub error: E,
}

/// Applies `req` through `port` step by step; stops at the first error, so a
/// later step never runs on a failed earlier one.
pub async fn apply<P: Port>(port: &mut P, req: Request) -> Result<Applied, Failed<P::Error>> {
    let mut applied = Applied::default();
    for step in steps(req, port.pool_size()) {
        let failed = |error| Failed {
            knob: step.knob(),
            error,
        };
        match step {
            Step::PoolSize(p) => port.set_pool_size(p).await.map_err(failed)?,
            Step::Replicas(n) => {
                let set = port.set_replicas(n).await.map_err(failed)?;
                if set != n {
                    applied.capped = Some((n, set));
                }
            }
            Step::WarmUp => port.warm_up().await.map_err(failed)?,
        }
    }
    Ok(applied)
}

/// `apply` for a port whose changes complete at once (the simulator).
pub fn apply_now<P: Port>(port: &mut P, req: Request) -> Result<Applied, Failed<P::Error>> {
    futures::executor::block_on(apply(port, req))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder {
        pool: Option<u32>,
        calls: Vec<String>,
        fail_on: Option<&'static str>,
        cap: Option<u32>,
    }

    impl Port for Recorder {
        type Error = String;
        fn pool_size(&self) -> Option<u32> {
            self.pool
        }
        async fn set_replicas(&mut self, n: u32) -> Result<u32, String> {
            if self.fail_on == Some("replicas") {
                return Err("scale refused".into());
            }
            self.calls.push(format!("replicas {n}"));
            Ok(self.cap.map_or(n, |c| n.min(c)))
        }
        async fn set_pool_size(&mut self, n: u32) -> Result<(), String> {
            self.calls.push(format!("pool {n}"));
            self.pool = Some(n);
            Ok(())
        }
        async fn warm_up(&mut self) -> Result<(), String> {
            self.calls.push("warm".into());
            Ok(())
        }
    }

    fn request(replicas: u32, pool: u32, warm_up: bool) -> Request {
        Request {
            replicas: Some(replicas),
            pool_size: Some(pool),
            warm_up,
        }
    }

    #[test]
    fn pools_shrink_before_scale_up_and_grow_after_scale_down() {
        let mut r = Recorder {
            pool: Some(50),
            ..Default::default()
        };
        apply_now(&mut r, request(6, 13, true)).unwrap();
        assert_eq!(r.calls, ["pool 13", "replicas 6", "warm"]);
        let mut r = Recorder {
            pool: Some(13),
            ..Default::default()
        };
        apply_now(&mut r, request(3, 26, false)).unwrap();
        assert_eq!(r.calls, ["replicas 3", "pool 26"]);
    }

    #[test]
    fn a_failed_step_stops_the_rest_and_names_its_knob() {
        let mut r = Recorder {
            pool: Some(10),
            fail_on: Some("replicas"),
            ..Default::default()
        };
        let err = apply_now(&mut r, request(3, 26, true)).unwrap_err();
        assert_eq!(err.knob, Knob::Replicas);
        assert_eq!(err.to_string(), "replicas: scale refused");
        assert!(
            r.calls.is_empty(),
            "the pool did not grow after a failed scale: {:?}",
            r.calls
        );
    }

    #[test]
    fn a_capped_scale_is_reported() {
        let mut r = Recorder {
            pool: Some(10),
            cap: Some(4),
            ..Default::default()
        };
        let applied = apply_now(&mut r, request(6, 10, false)).unwrap();
        assert_eq!(applied.capped, Some((6, 4)));
    }

    #[test]
    fn a_dry_run_plan_asks_for_nothing() {
        let change = crate::decide::Change {
            from: 2,
            to: 3,
            reason: String::new(),
        };
        let mut plan = Plan {
            replicas: Some(change),
            warm_up: Some("cold".into()),
            dry_run: true,
            ..Plan::default()
        };
        assert_eq!(Request::from_plan(&plan), Request::default());
        plan.dry_run = false;
        assert_eq!(
            Request::from_plan(&plan),
            Request {
                replicas: Some(3),
                pool_size: None,
                warm_up: true
            }
        );
    }
}
