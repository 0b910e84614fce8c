//! Training-side logic that needs no files, shared by the native trainer and the browser: the
//! losses and their weighting, the model that training optimises, Early Freeze, a run's
//! settings, its examples, the session that steps it and the evaluation of a split.

pub mod adam;
pub mod early_freeze;
pub mod evaluation;
pub mod examples;
pub mod loss;
pub mod model;
pub mod order;
pub mod session;
pub mod settings;

pub use early_freeze::{EarlyFreeze, FreezeEvent, FreezeMode};
pub use evaluation::{Evaluation, evaluate};
pub use examples::{Examples, FeatureExamples};
pub use loss::{LossWeighting, Ranges, Target, WeightingKind};
pub use model::TrainingModel;
pub use session::{Diverged, EpochReport, MetricRow, Session, SessionState};
pub use settings::RunSettings;
