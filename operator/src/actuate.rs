//! The actuation port: where a plan meets the world. The operator implements it
//! over the Kubernetes API, `governor demo` and `governor simulate` over the
//! simulator; the order of changes that keeps the connection budget lives here.

/// What the plan asks, in applicable form.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub replicas: Option<u32>,
    pub pool_size: Option<u32>,
    pub warm_up: bool,
}

/// A target Governor can change.
pub trait Port {
    type Error;
    /// The per-replica pool size in effect, when Governor manages one.
    fn pool_size(&self) -> Option<u32>;
    fn set_replicas(&mut self, replicas: u32) -> Result<(), Self::Error>;
    fn set_pool_size(&mut self, size: u32) -> Result<(), Self::Error>;
    fn warm_up(&mut self) -> Result<(), Self::Error>;
}

/// One change, in the order it must be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    PoolSize(u32),
    Replicas(u32),
    WarmUp,
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

/// Applies `req` through `port` step by step; stops at the first error, so a
/// later step never runs on a failed earlier one.
pub fn apply<P: Port>(port: &mut P, req: Request) -> Result<(), P::Error> {
    for step in steps(req, port.pool_size()) {
        match step {
            Step::PoolSize(p) => port.set_pool_size(p)?,
            Step::Replicas(n) => port.set_replicas(n)?,
            Step::WarmUp => port.warm_up()?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder {
        pool: Option<u32>,
        calls: Vec<String>,
        fail_on: Option<&'static str>,
    }

    impl Port for Recorder {
        type Error = String;
        fn pool_size(&self) -> Option<u32> {
            self.pool
        }
        fn set_replicas(&mut self, n: u32) -> Result<(), String> {
            if self.fail_on == Some("replicas") {
                return Err("scale refused".into());
            }
            self.calls.push(format!("replicas {n}"));
            Ok(())
        }
        fn set_pool_size(&mut self, n: u32) -> Result<(), String> {
            self.calls.push(format!("pool {n}"));
            self.pool = Some(n);
            Ok(())
        }
        fn warm_up(&mut self) -> Result<(), String> {
            self.calls.push("warm".into());
            Ok(())
        }
    }

    #[test]
    fn pools_shrink_before_scale_up_and_grow_after_scale_down() {
        let mut r = Recorder {
            pool: Some(50),
            ..Default::default()
        };
        apply(
            &mut r,
            Request {
                replicas: Some(6),
                pool_size: Some(13),
                warm_up: true,
            },
        )
        .unwrap();
        assert_eq!(r.calls, ["pool 13", "replicas 6", "warm"]);
        let mut r = Recorder {
            pool: Some(13),
            ..Default::default()
        };
        apply(
            &mut r,
            Request {
                replicas: Some(3),
                pool_size: Some(26),
                warm_up: false,
            },
        )
        .unwrap();
        assert_eq!(r.calls, ["replicas 3", "pool 26"]);
    }

    #[test]
    fn a_failed_step_stops_the_rest() {
        let mut r = Recorder {
            pool: Some(10),
            fail_on: Some("replicas"),
            ..Default::default()
        };
        let err = apply(
            &mut r,
            Request {
                replicas: Some(3),
                pool_size: Some(26),
                warm_up: true,
            },
        );
        assert_eq!(err, Err("scale refused".to_string()));
        assert!(
            r.calls.is_empty(),
            "the pool did not grow after a failed scale: {:?}",
            r.calls
        );
    }
}
