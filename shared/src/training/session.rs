//! A training run without files: its settings, the model and optimiser, Early Freeze and the
//! learning-rate schedule, stepped one epoch at a time. The native trainer wraps it with
//! checkpoints and a run directory; the browser's Lab steps it in a Web Worker. Tensors are read
//! back asynchronously (a WebGPU device cannot block); the native trainer blocks on them.

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::adam::FusedAdam;
use super::evaluation::{evaluate, read};
use super::order::{self, mirror_flag};
use super::{EarlyFreeze, Examples, FreezeEvent, RunSettings, Target, TrainingModel};
use crate::mtl::TaskSpec;

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

/// A run whose losses stopped being numbers: from there it can only produce NaN, so it stops
/// and says where, instead of finishing with "MAE NaN".
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("training diverged at epoch {epoch}: the {task} {split} loss is {value} (try a lower learning rate)")]
pub struct Diverged {
    pub epoch: usize,
    pub task: String,
    pub split: &'static str,
    pub value: f64,
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
        Self { optim: Self::adam(&settings), settings, tasks, state, model, snapshots, device: device.clone() }
    }

    /// The thesis's optimiser: Adam with weight decay.
    pub fn adam(settings: &RunSettings) -> ModuleOptimizer {
        FusedAdam::new(settings.weight_decay as f32).init()
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
    /// A loss that is not a finite number stops the run before Early Freeze sees it.
    pub async fn epoch(
        &mut self,
        train: &dyn Examples,
        train_targets: &[Target],
        val: &dyn Examples,
    ) -> Result<EpochReport, Diverged> {
        let epoch = self.state.epoch;
        if let [.., before, last] = self.state.train_history.as_slice() {
            self.model.weighting.update_dwa(last, before);
        }
        let active: Vec<bool> = (0..self.tasks.len()).map(|t| !self.state.early.is_converged(t)).collect();
        let train_losses = self.train_pass(epoch, &active, train, train_targets).await;
        self.state.train_history.push(train_losses.clone());
        let valid = self.model.valid();
        let evaluation = evaluate(&valid.head, valid.backbone.as_ref(), val, &self.tasks).await;
        self.check_finite(epoch, &train_losses, &evaluation.losses)?;
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
        Ok(EpochReport { rows, events, best_total })
    }

    /// [`Diverged`] at the first loss of `epoch` that is not a finite number.
    fn check_finite(&self, epoch: usize, train: &[f64], val: &[f64]) -> Result<(), Diverged> {
        let splits = [("training", train), ("validation", val)];
        for (split, losses) in splits {
            if let Some((t, &value)) = losses.iter().enumerate().find(|(_, l)| !l.is_finite()) {
                return Err(Diverged { epoch, task: self.tasks[t].name.clone(), split, value });
            }
        }
        Ok(())
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
        let order = order::epoch_order(seed, epoch, train.len());
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
            let batch_targets: Vec<Target> = targets.iter().map(|t| t.select(rows.clone())).collect();
            let (losses, grads) = self.gradients(x, &batch_targets, &keep, active);
            self.apply(grads);
            sums = Some(match sums {
                None => losses,
                Some(sums) => sums.into_iter().zip(losses).map(|(s, l)| s + l).collect(),
            });
            batches += 1;
        }
        let Some(sums) = sums else { return vec![f64::NAN; active.len()] };
        let mut means = Vec::with_capacity(sums.len());
        for sum in sums {
            means.push(read(sum).await.first().copied().unwrap_or(f64::NAN) / batches as f64);
        }
        means
    }

    /// The first half of a training step: the forward pass on a batch `x` `[n, inputs]` with
    /// its `targets` (one per task, the batch's rows) and dropout's `keep` masks, each task's
    /// loss, their weighted total (converged tasks, `active` false, left out), and its
    /// gradients. Returns the tasks' losses (detached, on the device) and the gradients.
    pub fn gradients(
        &self,
        x: Tensor<2>,
        targets: &[Target],
        keep: &[Tensor<2>],
        active: &[bool],
    ) -> (Vec<Tensor<1>>, GradientsParams) {
        let losses: Vec<Tensor<1>> =
            self.model.forward(x, keep).into_iter().zip(targets).map(|(output, target)| target.loss(output)).collect();
        let total = self.model.weighting.combine(&losses, active);
        let grads = GradientsParams::from_grads(total.backward(), &self.model);
        (losses.into_iter().map(Tensor::inner).collect(), grads)
    }

    /// The second half of a training step: Adam's step with `grads` at the current rate.
    pub fn apply(&mut self, grads: GradientsParams) {
        self.model = self.optim.step(self.state.lr, self.model.clone(), grads);
    }

    /// Dropout's masks for the `rows` faces of batch `batch` (see [`order::dropout_keep`]):
    /// one per head, none without dropout or hidden layers.
    pub fn dropout_keep(&self, epoch: usize, batch: usize, rows: usize) -> Vec<Tensor<2>> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mtl::{AgeNorm, Label};
    use crate::training::FeatureExamples;
    use burn::tensor::read_sync;

    /// A session on `n` faces of 4 features each, `scale` times a simple pattern.
    fn session_on(scale: f32, n: usize) -> (Session, FeatureExamples, Vec<Target>) {
        let tasks = vec![TaskSpec::gender(), TaskSpec::age(AgeNorm::ALL_AGES)];
        let faces: Vec<Vec<Label>> = (0..n).map(|i| vec![Label::Class(i % 2), Label::Value(20.0 + i as f32)]).collect();
        let features = (0..n * 4).map(|i| scale * ((i % 7) as f32 - 3.0)).collect();
        let device = Device::flex().autodiff();
        let examples = FeatureExamples::new(features, 4, &faces, &tasks, &[0, 1], &device);
        let settings = RunSettings { shared: vec![8], head_hidden: 4, batch_size: 4, ..Default::default() };
        let model = settings.model(4, &tasks, &device);
        let targets = examples.targets.clone();
        (Session::new(settings, tasks, model, &device), examples, targets)
    }

    #[test]
    fn a_run_whose_losses_stop_being_numbers_stops_and_says_where() {
        let (mut session, examples, targets) = session_on(1.0, 16);
        assert!(read_sync(session.epoch(&examples, &targets, &examples)).is_ok());
        // Features near f32's largest value overflow the first layer: every loss is infinite.
        let (mut session, examples, targets) = session_on(1e38, 16);
        let diverged = read_sync(session.epoch(&examples, &targets, &examples)).unwrap_err();
        assert_eq!((diverged.epoch, diverged.task.as_str(), diverged.split), (0, "gender", "training"));
        assert!(diverged.to_string().starts_with("training diverged at epoch 0"), "{diverged}");
        assert!(session.state.rows.is_empty(), "no NaN row was recorded");
    }
}
