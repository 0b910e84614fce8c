//! What defines a run's training apart from its data and backbone: the thesis's settings, the
//! checks a run needs, and the seeded initial network.

use burn::module::Module;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::{FreezeMode, LossWeighting, TrainingModel, WeightingKind};
use crate::mtl::{MtlConfig, TaskSpec, check_widths};

/// The most faces in a batch, and epochs in a run.
const MAX_BATCH: usize = 1 << 16;
const MAX_EPOCHS: usize = 100_000;

/// What defines a run's training, apart from its data and backbone. The defaults are the
/// thesis's (and `facemtl train`'s).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunSettings {
    pub weighting: WeightingKind,
    /// Weight of the Loss Weight Layer's penalty lambda ||w||^2.
    pub lambda: f64,
    pub freeze_mode: FreezeMode,
    /// Epochs without validation improvement before a task converges.
    pub patience: usize,
    pub lr: f64,
    pub weight_decay: f64,
    /// Epochs without total validation improvement before the learning rate is divided by 10.
    pub lr_patience: usize,
    pub batch_size: usize,
    pub max_epochs: usize,
    /// Seeds initialisation, dropout and batch order.
    pub seed: u64,
    /// Widths of the shared layers.
    pub shared: Vec<usize>,
    pub head_hidden: usize,
    pub dropout: f64,
}

impl Default for RunSettings {
    fn default() -> Self {
        Self {
            weighting: WeightingKind::Learned,
            lambda: 0.1,
            freeze_mode: FreezeMode::EarlyFreeze,
            patience: 5,
            lr: 3e-5,
            weight_decay: 1e-5,
            lr_patience: 3,
            batch_size: 64,
            max_epochs: 100,
            seed: 42,
            shared: vec![512],
            head_hidden: 128,
            dropout: 0.5,
        }
    }
}

impl RunSettings {
    /// Settings a run can train with, or what is wrong with them: checked before anything is
    /// sized from them (a width of 10^8 would take gigabytes before failing) or trained with
    /// (a learning rate of 10^30 turns every figure into NaN).
    pub fn check(&self) -> Result<(), String> {
        let within = |value: f64, low: f64, high: f64| value.is_finite() && (low..=high).contains(&value);
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("dropout is a probability below 1, not {}", self.dropout));
        }
        if !(2..=MAX_BATCH).contains(&self.batch_size) {
            return Err(format!("a batch holds 2 (batch norm) to {MAX_BATCH} faces, not {}", self.batch_size));
        }
        if !(self.lr > 0.0 && within(self.lr, 0.0, 1.0)) {
            return Err(format!("the learning rate is above 0 and at most 1, not {}", self.lr));
        }
        if !within(self.weight_decay, 0.0, 1.0) || !within(self.lambda, 0.0, 1e3) {
            return Err(format!(
                "weight decay is within 0..=1 and λ within 0..=1000, not {} and {}",
                self.weight_decay, self.lambda
            ));
        }
        if self.patience == 0 || self.lr_patience == 0 || !(1..=MAX_EPOCHS).contains(&self.max_epochs) {
            return Err(format!(
                "patience is at least 1 epoch and a run 1 to {MAX_EPOCHS} epochs, not patience {}, lr patience {}, \
                 {} epochs",
                self.patience, self.lr_patience, self.max_epochs
            ));
        }
        check_widths(&self.shared, self.head_hidden)
    }

    /// The widths of the shared layers and of each head's hidden layer (what a model file's
    /// header records).
    pub fn widths(&self) -> (Vec<usize>, usize) {
        (self.shared.clone(), self.head_hidden)
    }

    /// A freshly initialised head and loss weighting for `tasks` on `features`-wide inputs (no
    /// backbone: a fine-tuning run puts its own in). The weights are drawn on the CPU from the
    /// seed and then loaded onto `device`: a seed starts the same network on every backend.
    pub fn model(&self, features: usize, tasks: &[TaskSpec], device: &Device) -> TrainingModel {
        let init = |device: &Device| {
            let head = MtlConfig::new(features, tasks.iter().map(TaskSpec::outputs).collect())
                .with_shared(self.shared.clone())
                .with_head_hidden(self.head_hidden)
                .init(device);
            let weighting = LossWeighting::new(self.weighting, tasks.len(), self.lambda, device);
            TrainingModel { head, weighting, backbone: None }
        };
        let host = Device::flex();
        let drawn = {
            // Seeding and drawing are two calls on a generator the whole process shares: runs
            // started side by side (`reproduce`'s threads) would draw from each other's streams.
            let _drawing = DRAWING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            host.seed(self.seed);
            init(&host)
        };
        init(device).load_record(drawn.into_record())
    }
}

/// Held while a network is seeded and drawn on the host (see [`RunSettings::model`]).
static DRAWING: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compact::tests::values;
    use crate::mtl::AgeNorm;

    #[test]
    fn a_seed_starts_the_same_network_whatever_the_device_drew_before() {
        let tasks = [TaskSpec::gender(), TaskSpec::age(AgeNorm::CORAL), TaskSpec::race()];
        let settings = RunSettings { shared: vec![16], head_hidden: 8, ..Default::default() };
        let autodiff = Device::flex().autodiff();
        let first = values(&settings.model(12, &tasks, &autodiff).head);
        // Random numbers drawn on the training device in between change nothing.
        {
            let _drawing = DRAWING.lock().unwrap();
            autodiff.seed(1234);
            let _ = Tensor::<2>::random([4, 4], burn::tensor::Distribution::Default, &autodiff);
        }
        assert_eq!(values(&settings.model(12, &tasks, &autodiff).head), first);
        let reseeded = RunSettings { seed: 43, ..settings.clone() };
        assert_ne!(values(&reseeded.model(12, &tasks, &autodiff).head), first);
    }

    #[test]
    fn settings_a_run_cannot_train_with_are_refused() {
        assert!(RunSettings::default().check().is_ok());
        for bad in [
            RunSettings { dropout: 1.0, ..Default::default() },
            RunSettings { dropout: -0.1, ..Default::default() },
            RunSettings { dropout: f64::NAN, ..Default::default() },
            RunSettings { batch_size: 1, ..Default::default() },
            RunSettings { shared: vec![200_000_000], ..Default::default() },
            RunSettings { head_hidden: 200_000_000, ..Default::default() },
            RunSettings { lr: 1e30, ..Default::default() },
            RunSettings { lr: 0.0, ..Default::default() },
            RunSettings { lr: f64::NAN, ..Default::default() },
            RunSettings { lambda: f64::INFINITY, ..Default::default() },
            RunSettings { weight_decay: -1.0, ..Default::default() },
            RunSettings { patience: 0, ..Default::default() },
            RunSettings { max_epochs: 0, ..Default::default() },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }
}
