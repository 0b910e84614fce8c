//! The multi-task network: which tasks, and the network on top of backbone features.

pub mod check;
pub mod distribution;
pub mod model;
pub mod tasks;

pub use check::{MAX_SHARED_LAYERS, MAX_TASKS, MAX_VALUE, MAX_WIDTH, check_tasks, check_widths};
pub use distribution::expectation;
pub use model::{MtlConfig, MtlHead};
pub use tasks::{AgeNorm, Label, Metric, RACES, TaskKind, TaskOverview, TaskSpec};
