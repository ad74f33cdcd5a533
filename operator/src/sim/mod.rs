//! The simulator: a discrete-event service model behind the same observation and
//! actuation shapes the operator uses, and the policy benchmark built on it.

pub mod bench;
pub mod demo;
pub mod engine;
pub mod live;
pub mod native;
pub mod oracle;
pub mod pareto;
pub mod policy;
pub mod scenario;

pub use engine::{InitialState, ServiceModel, Simulation};
pub use scenario::Scenario;
