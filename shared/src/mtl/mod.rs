//! The multi-task network: which tasks, and the network on top of backbone features.

pub mod distribution;
pub mod model;
pub mod tasks;

pub use distribution::expectation;
pub use model::{MtlConfig, MtlHead};
pub use tasks::{AgeNorm, Label, Metric, RACES, TaskKind, TaskOverview, TaskSpec};
