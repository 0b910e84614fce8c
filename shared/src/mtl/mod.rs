//! The multi-task part: which tasks, the network on top of backbone features, the losses and
//! how they are weighted.

pub mod loss;
pub mod model;
pub mod tasks;

pub use loss::{LossWeighting, Target, WeightingKind, task_loss};
pub use model::{MtlConfig, MtlHead, MtlModel};
pub use tasks::{RACES, Task, TaskSet};
