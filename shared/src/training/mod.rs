//! Training-side logic that needs no files, shared by the native trainer and the browser: the
//! losses and their weighting, the model that training optimises, and Early Freeze.

pub mod early_freeze;
pub mod loss;
pub mod model;
pub mod order;
pub mod session;

pub use early_freeze::{EarlyFreeze, FreezeEvent, FreezeMode};
pub use loss::{LossWeighting, Target, WeightingKind};
pub use model::TrainingModel;
pub use session::{EpochReport, Evaluation, Examples, FeatureExamples, MetricRow, RunSettings, Session, SessionState};
