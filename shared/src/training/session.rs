//! A training run without files: its settings, the model and optimiser, Early Freeze and the
//! learning-rate schedule, stepped one epoch at a time. The native trainer wraps it with
//! checkpoints and a run directory; the browser's Lab steps it in a Web Worker. Tensors are read
//! back asynchronously (a WebGPU device cannot block); the native trainer blocks on them.

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, decay::WeightDecayConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::order::{self, mirror_flag, shuffle};
use super::{EarlyFreeze, FreezeEvent, FreezeMode, LossWeighting, Target, TrainingModel, WeightingKind};
use crate::backbone::Tuned;
use crate::mtl::{Label, Metric, MtlConfig, MtlHead, TaskKind, TaskSpec, model};
use crate::predict::expectation;

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
    /// Settings a run can train with, or what is wrong with them.
    pub fn check(&self) -> Result<(), String> {
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("dropout is a probability below 1, not {}", self.dropout));
        }
        if self.batch_size < 2 {
            return Err(format!("a batch needs at least 2 faces (batch norm), not {}", self.batch_size));
        }
        Ok(())
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
        host.seed(self.seed);
        init(device).load_record(init(&host).into_record())
    }
}

/// Labelled examples as the network reads them: one split of a run.
pub trait Examples {
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rows `indices` as the network's input on `device` (see [`model::forward`]); a row whose
    /// `mirrored` flag is set is seen mirrored.
    fn rows(&self, indices: &[i64], mirrored: &[bool], device: &Device) -> Tensor<2>;

    /// One target per task, on the device the examples live on.
    fn targets(&self) -> &[Target];

    /// Per task and example, the true class or value in its own unit (what metrics compare).
    fn truth(&self) -> &[Vec<f64>];

    /// Examples per forward pass when evaluating.
    fn chunk(&self) -> usize {
        self.len().max(1)
    }

    /// Whether training sees mirror views (crops and cached activations can be mirrored,
    /// features cannot).
    fn mirrors(&self) -> bool {
        false
    }

    /// Whether evaluation reads each example as the mean of its own and its mirror view's
    /// features (test-time mirror, as the exported model predicts).
    fn averages_mirror(&self) -> bool {
        false
    }
}

/// Cached backbone features `[n, d]` with their targets: the examples of a head trained on a
/// frozen backbone.
pub struct FeatureExamples {
    pub features: Tensor<2>,
    pub targets: Vec<Target>,
    pub truth: Vec<Vec<f64>>,
}

impl FeatureExamples {
    /// `[n, dim]` features (row-major) of faces with these labels, for `tasks`, each read from
    /// its column of the labels.
    pub fn new<L: AsRef<[Label]>>(
        features: Vec<f32>,
        dim: usize,
        faces: &[L],
        tasks: &[TaskSpec],
        columns: &[usize],
        device: &Device,
    ) -> Self {
        let n = faces.len();
        Self {
            features: Tensor::from_data(TensorData::new(features, [n, dim]), device),
            targets: targets(tasks, columns, faces, device),
            truth: truth(columns, faces),
        }
    }
}

/// Per task and face, the true class or value in its own unit (what metrics compare), from
/// the task's column of the faces' labels.
pub fn truth<L: AsRef<[Label]>>(columns: &[usize], faces: &[L]) -> Vec<Vec<f64>> {
    columns
        .iter()
        .map(|&c| {
            faces
                .iter()
                .map(|f| match f.as_ref()[c] {
                    Label::Class(class) => class as f64,
                    Label::Value(value) => f64::from(value),
                })
                .collect()
        })
        .collect()
}

/// Per task, the faces' targets on the network's scale, from the task's column of their labels.
pub fn targets<L: AsRef<[Label]>>(tasks: &[TaskSpec], columns: &[usize], faces: &[L], device: &Device) -> Vec<Target> {
    let n = faces.len();
    let value = |f: &L, c: usize| match f.as_ref().get(c) {
        Some(Label::Value(v)) => Some(*v),
        _ => None,
    };
    let class = |f: &L, c: usize| match f.as_ref().get(c) {
        Some(Label::Class(k)) => Some(*k),
        _ => None,
    };
    tasks
        .iter()
        .zip(columns)
        .map(|(task, &c)| match &task.kind {
            TaskKind::Regression { norm } => {
                let values = faces.iter().map(|f| norm.normalise(value(f, c).unwrap_or(norm.offset))).collect();
                Target::Value(Tensor::from_data(TensorData::new(values, [n]), device))
            }
            TaskKind::Class { .. } => {
                let classes = faces.iter().map(|f| class(f, c).unwrap_or(0) as i64).collect();
                Target::Class(Tensor::from_data(TensorData::new(classes, [n]), device))
            }
            TaskKind::Distribution { low, sigma, .. } => {
                let values = faces.iter().map(|f| value(f, c).unwrap_or(*low)).collect();
                Target::Distribution {
                    values: Tensor::from_data(TensorData::new(values, [n]), device),
                    bins: task.bins(),
                    sigma: *sigma,
                }
            }
        })
        .collect()
}

impl Examples for FeatureExamples {
    fn len(&self) -> usize {
        self.features.dims()[0]
    }

    fn rows(&self, indices: &[i64], _: &[bool], device: &Device) -> Tensor<2> {
        let idx =
            Tensor::<1, Int>::from_data(TensorData::new(indices.to_vec(), [indices.len()]), &self.features.device());
        self.features.clone().select(0, idx).to_device(device)
    }

    fn targets(&self) -> &[Target] {
        &self.targets
    }

    fn truth(&self) -> &[Vec<f64>] {
        &self.truth
    }
}

/// Per-task loss and metric (accuracy, or MAE in the value's unit) on one split.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub losses: Vec<f64>,
    pub metrics: Vec<f64>,
    /// Per task and example: the predicted class, or the predicted value in its own unit.
    pub predictions: Vec<Vec<f64>>,
}

/// One task's figures after one epoch (a line of a run's `metrics.csv`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRow {
    pub epoch: usize,
    pub task: String,
    pub train_loss: f64,
    pub val_loss: f64,
    /// Accuracy, or MAE in years for age.
    pub val_metric: f64,
    pub loss_weight: f64,
    pub lr: f64,
    /// `converged` in the epoch the task converged, `frozen` after.
    pub event: String,
}

/// Where a run stands besides its weights: what a checkpoint must hold to resume exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionState {
    /// The next epoch to run.
    pub epoch: usize,
    pub lr: f64,
    pub best_total: f64,
    pub epochs_since_best_total: usize,
    pub early: EarlyFreeze,
    pub rows: Vec<MetricRow>,
    /// Per-epoch mean training loss per task (DWA reads the last two).
    pub train_history: Vec<Vec<f64>>,
    /// Wall seconds of the epochs so far, over every process that trained the run (the caller
    /// times its epochs: this crate reads no clock, as it also runs in the browser).
    #[serde(default)]
    pub seconds: f64,
}

/// What one epoch did.
#[derive(Debug, Clone, Serialize)]
pub struct EpochReport {
    /// One row per task.
    pub rows: Vec<MetricRow>,
    pub events: Vec<FreezeEvent>,
    /// The total validation loss of the tasks still training reached a new best.
    pub best_total: bool,
}

/// A run in progress: settings, tasks, model, optimiser and each task's best model so far.
pub struct Session {
    pub settings: RunSettings,
    pub tasks: Vec<TaskSpec>,
    pub state: SessionState,
    pub model: TrainingModel,
    pub optim: ModuleOptimizer,
    /// Each task's model at its best validation loss (Early Freeze restores from it), as an
    /// inference copy: a clone would share its batch norm statistics with the model in
    /// training, which go on moving.
    pub snapshots: Vec<Option<TrainingModel>>,
    /// The autodiff device training runs on.
    device: Device,
}

impl Session {
    /// A new run of `model` (on an autodiff `device`) on `tasks`.
    pub fn new(settings: RunSettings, tasks: Vec<TaskSpec>, model: TrainingModel, device: &Device) -> Self {
        let state = SessionState {
            epoch: 0,
            lr: settings.lr,
            best_total: f64::INFINITY,
            epochs_since_best_total: 0,
            early: EarlyFreeze::new(tasks.len(), settings.patience, settings.freeze_mode),
            rows: Vec::new(),
            train_history: Vec::new(),
            seconds: 0.0,
        };
        let snapshots = vec![None; tasks.len()];
        Self { optim: Self::adam(&settings).init(), settings, tasks, state, model, snapshots, device: device.clone() }
    }

    /// The thesis's optimiser: Adam with weight decay.
    pub fn adam(settings: &RunSettings) -> AdamConfig {
        AdamConfig::new().with_weight_decay(Some(WeightDecayConfig::new(settings.weight_decay as f32)))
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Every epoch has run, or every task has converged.
    pub fn is_finished(&self) -> bool {
        self.state.epoch >= self.settings.max_epochs || self.state.early.is_finished()
    }

    /// One epoch: train on `train` (its targets already on the autodiff device in
    /// `train_targets`), evaluate on `val`, let Early Freeze decide, adjust the learning rate.
    pub async fn epoch(&mut self, train: &dyn Examples, train_targets: &[Target], val: &dyn Examples) -> EpochReport {
        let epoch = self.state.epoch;
        if let [.., before, last] = self.state.train_history.as_slice() {
            self.model.weighting.update_dwa(last, before);
        }
        let active: Vec<bool> = (0..self.tasks.len()).map(|t| !self.state.early.is_converged(t)).collect();
        let train_losses = self.train_pass(epoch, &active, train, train_targets).await;
        self.state.train_history.push(train_losses.clone());
        let valid = self.model.valid();
        let evaluation = evaluate(&valid.head, valid.backbone.as_ref(), val, &self.tasks).await;
        let weights = self.model.weighting.weights().await;
        let events = self.state.early.observe(epoch, &evaluation.losses);
        self.apply_events(&events);
        let rows: Vec<MetricRow> = self
            .tasks
            .iter()
            .enumerate()
            .map(|(t, task)| {
                let converged_now =
                    events.iter().any(|e| matches!(e, FreezeEvent::Converged { task: c, .. } if *c == t));
                MetricRow {
                    epoch,
                    task: task.name.clone(),
                    train_loss: train_losses[t],
                    val_loss: evaluation.losses[t],
                    val_metric: evaluation.metrics[t],
                    loss_weight: weights.get(t).copied().unwrap_or(f64::NAN),
                    lr: self.state.lr,
                    event: match (converged_now, active[t]) {
                        (true, _) => "converged".into(),
                        (false, false) => "frozen".into(),
                        (false, true) => String::new(),
                    },
                }
            })
            .collect();
        self.state.rows.extend(rows.iter().cloned());
        let total: f64 = evaluation.losses.iter().zip(&active).filter(|(_, a)| **a).map(|(l, _)| l).sum();
        let best_total = total < self.state.best_total;
        if best_total {
            self.state.best_total = total;
            self.state.epochs_since_best_total = 0;
        } else {
            self.state.epochs_since_best_total += 1;
            if self.state.epochs_since_best_total >= self.settings.lr_patience {
                self.state.lr /= 10.0;
                self.state.epochs_since_best_total = 0;
            }
        }
        self.state.epoch += 1;
        EpochReport { rows, events, best_total }
    }

    /// A seeded shuffle of `train`, then for each batch the forward pass, each task's loss,
    /// their weighted total (converged tasks left out), the backward pass and an Adam step.
    /// Returns the mean training loss of each task.
    async fn train_pass(
        &mut self,
        epoch: usize,
        active: &[bool],
        train: &dyn Examples,
        targets: &[Target],
    ) -> Vec<f64> {
        let seed = self.settings.seed;
        let mut order: Vec<i64> = (0..train.len() as i64).collect();
        shuffle(&mut order, seed.wrapping_mul(1000).wrapping_add(epoch as u64));
        // Summed on the device and read once: a read-back per batch would stall a GPU.
        let mut sums: Option<Vec<Tensor<1>>> = None;
        let mut batches = 0;
        for chunk in order.chunks(self.settings.batch_size) {
            if chunk.len() < 2 {
                continue; // batch norm needs two samples
            }
            let mirror: Vec<bool> =
                chunk.iter().map(|&i| train.mirrors() && mirror_flag(seed, epoch, i as u64)).collect();
            let x = train.rows(chunk, &mirror, &self.device);
            let keep = self.dropout_keep(epoch, batches, chunk.len());
            let rows = Tensor::<1, Int>::from_data(TensorData::new(chunk.to_vec(), [chunk.len()]), &self.device);
            let losses: Vec<Tensor<1>> = self
                .model
                .forward(x, &keep)
                .into_iter()
                .zip(targets)
                .map(|(output, target)| target.select(rows.clone()).loss(output))
                .collect();
            let detached = losses.iter().map(|l| l.clone().inner());
            sums = Some(match sums {
                None => detached.collect(),
                Some(sums) => sums.into_iter().zip(detached).map(|(s, l)| s + l).collect(),
            });
            let total = self.model.weighting.combine(&losses, active);
            let grads = GradientsParams::from_grads(total.backward(), &self.model);
            self.model = self.optim.step(self.state.lr, self.model.clone(), grads);
            batches += 1;
        }
        let Some(sums) = sums else { return vec![f64::NAN; active.len()] };
        let mut means = Vec::with_capacity(sums.len());
        for sum in sums {
            means.push(read(sum).await.first().copied().unwrap_or(f64::NAN) / batches as f64);
        }
        means
    }

    /// Dropout's masks for the `rows` faces of batch `batch` (see [`order::dropout_keep`]):
    /// one per head, none without dropout or hidden layers.
    fn dropout_keep(&self, epoch: usize, batch: usize, rows: usize) -> Vec<Tensor<2>> {
        let (width, p) = (self.settings.head_hidden, self.settings.dropout);
        if width == 0 || p == 0.0 {
            return Vec::new();
        }
        (0..self.tasks.len())
            .map(|head| {
                let keep = order::dropout_keep(self.settings.seed, epoch, batch, head, rows * width, p);
                Tensor::from_data(TensorData::new(keep, [rows, width]), &self.device)
            })
            .collect()
    }

    /// Early Freeze's events applied: a task that improved is snapshotted; a task that
    /// converged gets its head back from its best epoch, frozen, and with `freeze_shared` the
    /// shared layers (and a fine-tuned backbone) too.
    fn apply_events(&mut self, events: &[FreezeEvent]) {
        for event in events {
            match *event {
                FreezeEvent::Improved { task, .. } => self.snapshots[task] = Some(self.model.valid()),
                FreezeEvent::Converged { task, freeze_shared, .. } => {
                    let best = match &self.snapshots[task] {
                        Some(snapshot) => snapshot.clone().train(),
                        None => self.model.clone(),
                    };
                    self.model.head.heads[task] = best.head.heads[task].clone().freeze();
                    if freeze_shared {
                        self.model.head.shared = best.head.shared.into_iter().map(Module::freeze).collect();
                        self.model.backbone = best.backbone.map(Module::freeze);
                    }
                }
                FreezeEvent::Finished => {}
            }
        }
    }

    /// Re-apply what Early Freeze froze to a model loaded from a record (which comes back
    /// unfrozen).
    pub fn refreeze(&self, mut model: TrainingModel) -> TrainingModel {
        let early = &self.state.early;
        if early.shared_frozen {
            model.head.shared = model.head.shared.into_iter().map(Module::freeze).collect();
            model.backbone = model.backbone.map(Module::freeze);
        }
        model.head.heads = model
            .head
            .heads
            .into_iter()
            .enumerate()
            .map(|(task, head)| if early.is_converged(task) { head.freeze() } else { head })
            .collect();
        model
    }
}

/// A tensor's values as `f64`, read back without blocking.
async fn read<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    match t.into_data_async().await {
        Ok(data) => data.convert::<f32>().try_to_vec::<f32>().unwrap_or_default().into_iter().map(f64::from).collect(),
        Err(_) => Vec::new(),
    }
}

/// `head` (after the tuned part of the backbone when it has one) on every example of `examples`: per-task losses,
/// metrics and predictions.
pub async fn evaluate(
    head: &MtlHead,
    backbone: Option<&Tuned>,
    examples: &dyn Examples,
    tasks: &[TaskSpec],
) -> Evaluation {
    let Some(device) = examples.targets().first().map(|t| t.device()) else { return Evaluation::default() };
    let n = examples.len();
    let order: Vec<i64> = (0..n as i64).collect();
    let chunks: Vec<Vec<Tensor<2>>> = order
        .chunks(examples.chunk())
        .map(|chunk| {
            let features =
                |mirrored: bool| model::features(backbone, examples.rows(chunk, &vec![mirrored; chunk.len()], &device));
            head.forward(match examples.averages_mirror() {
                true => (features(false) + features(true)).div_scalar(2.0),
                false => features(false),
            })
        })
        .collect();
    let outputs: Vec<Tensor<2>> =
        (0..tasks.len()).map(|t| Tensor::cat(chunks.iter().map(|c| c[t].clone()).collect(), 0)).collect();
    let mut evaluation = Evaluation::default();
    for (((task, output), target), truth) in tasks.iter().zip(outputs).zip(examples.targets()).zip(examples.truth()) {
        evaluation.losses.push(read(target.loss(output.clone())).await.first().copied().unwrap_or(f64::NAN));
        let predicted: Vec<f64> = match &task.kind {
            TaskKind::Regression { norm } => read(output.reshape([n]))
                .await
                .into_iter()
                .map(|p| p * f64::from(norm.scale) + f64::from(norm.offset))
                .collect(),
            TaskKind::Class { .. } => read(output.argmax(1).float()).await,
            TaskKind::Distribution { .. } => read(expectation(output, &task.bins())).await,
        };
        let count = truth.len().max(1) as f64;
        evaluation.metrics.push(match task.metric() {
            Metric::Mae => predicted.iter().zip(truth).map(|(p, t)| (p - t).abs()).sum::<f64>() / count,
            Metric::Accuracy => predicted.iter().zip(truth).filter(|(p, t)| p == t).count() as f64 / count,
        });
        evaluation.predictions.push(predicted);
    }
    evaluation
}

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
        autodiff.seed(1234);
        let _ = Tensor::<2>::random([4, 4], burn::tensor::Distribution::Default, &autodiff);
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
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }
}
