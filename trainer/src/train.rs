//! Training the multi-task network, either on cached features of the frozen backbone (the
//! head trains in seconds per epoch on a CPU) or fine-tuning the backbone too (a GPU job): Adam,
//! learning rate divided by 10 when the total validation loss plateaus, Early Freeze (or the early-stop ablation), one of
//! four loss weightings. Every epoch ends with an atomic checkpoint, so a killed run resumes
//! where it was and, on the CPU, ends with the same figures as an uninterrupted one.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, OptimizerRecord, decay::WeightDecayConfig};
use burn::prelude::*;
use burn::store::ModuleRecord;
use facemtl::backbone::{Backbone, BackboneKind};
use facemtl::early_freeze::{EarlyFreeze, FreezeEvent, FreezeMode};
use facemtl::mtl::{LossWeighting, MtlConfig, MtlModel, Target, Task, TaskSet, WeightingKind, task_loss};
use serde::{Deserialize, Serialize};

use crate::cache::Cache;
use crate::crops::{self, CropStore};
use crate::data::{self, Sample, Splits, utkface::Protocol};
use crate::features::{self, FeatureStore};
use crate::files::write_atomic;
use crate::groups::{self, GroupFigures};
use crate::models;
use crate::plots;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetName {
    Utkface,
    Celeba,
}

/// Everything that defines a run; saved as `config.json` in its directory.
#[derive(Debug, Clone, Serialize, Deserialize, clap::Args)]
pub struct TrainConfig {
    #[arg(long, value_enum, default_value_t = DatasetName::Utkface)]
    pub dataset: DatasetName,
    /// UTKFace protocol.
    #[arg(long, value_enum, default_value_t = Protocol::Coral)]
    pub protocol: Protocol,
    /// faceres (1024-D) or dlib (128-D).
    #[arg(long, default_value = "faceres")]
    pub backbone: BackboneKind,
    /// Train the backbone with the head (a GPU job) instead of the head on cached features of
    /// the frozen backbone (`--freeze-backbone`, the default).
    #[arg(long, conflicts_with = "freeze_backbone")]
    #[serde(default)]
    pub fine_tune: bool,
    /// The default: extract features once, cache them, train the head on them.
    #[arg(long)]
    #[serde(skip)]
    pub freeze_backbone: bool,
    /// average, learned, uncertainty or dwa.
    #[arg(long, default_value = "learned")]
    pub weighting: WeightingKind,
    /// Weight of the Loss Weight Layer's penalty lambda ||w||^2.
    #[arg(long, default_value_t = 0.1)]
    pub lambda: f64,
    /// early-freeze (the thesis) or early-stop (ablation).
    #[arg(long, default_value = "early-freeze")]
    pub freeze_mode: FreezeMode,
    /// Epochs without validation improvement before a task converges.
    #[arg(long, default_value_t = 5)]
    pub patience: usize,
    #[arg(long, default_value_t = 3e-5)]
    pub lr: f64,
    #[arg(long, default_value_t = 1e-5)]
    pub weight_decay: f64,
    /// Epochs without total validation improvement before the learning rate is divided by 10.
    #[arg(long, default_value_t = 3)]
    pub lr_patience: usize,
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 100)]
    pub max_epochs: usize,
    /// Stop after the epoch that ends past this many seconds of training, with a checkpoint and
    /// the results so far (a machine lent for a fixed time); `--resume` carries on.
    #[arg(long)]
    #[serde(skip)]
    pub time_limit_s: Option<u64>,
    /// Seeds initialisation, dropout and batch order.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Seeds the train/validation(/test) split, so that several seeds share one split.
    #[arg(long, default_value_t = 42)]
    pub split_seed: u64,
    /// Train one task alone (the single-task network) instead of all the data set's tasks.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only: Option<Task>,
    /// No progress bar or epoch lines (runs trained side by side).
    #[arg(skip)]
    #[serde(skip)]
    pub quiet: bool,
    /// Use only the first N samples of each split (quick runs and tests).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Widths of the shared layers (comma-separated; none with a bare `--shared`).
    #[arg(long, value_delimiter = ',', num_args = 0.., default_value = "512")]
    pub shared: Vec<usize>,
    #[arg(long, default_value_t = 128)]
    pub head_hidden: usize,
    #[arg(long, default_value_t = 0.5)]
    pub dropout: f64,
}

impl TrainConfig {
    /// A configuration from `facemtl train`'s flags (defaults for the rest).
    pub fn from_flags(flags: &[String]) -> Result<Self> {
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            config: TrainConfig,
        }
        use clap::Parser;
        Ok(Flags::try_parse_from(std::iter::once("train").chain(flags.iter().map(String::as_str)))?.config)
    }

    pub fn tasks(&self) -> &'static [Task] {
        let all = match self.dataset {
            DatasetName::Utkface => TaskSet::Utkface.tasks(),
            DatasetName::Celeba => TaskSet::Celeba.tasks(),
        };
        match self.only.and_then(|task| all.iter().position(|t| *t == task)) {
            Some(i) => &all[i..=i],
            None => all,
        }
    }

    /// Years added to the age output times 40 (the CORAL labels start at 21).
    pub fn age_offset(&self) -> f64 {
        match (self.dataset, self.protocol) {
            (DatasetName::Utkface, Protocol::Coral) => 21.0,
            _ => 0.0,
        }
    }

    pub fn load_splits(&self, data_dir: &Path) -> Result<Splits> {
        let mut splits = match self.dataset {
            DatasetName::Utkface => data::utkface::load(data_dir, self.protocol, self.split_seed)?,
            DatasetName::Celeba => data::celeba::load(data_dir, self.split_seed)?,
        };
        if let Some(limit) = self.limit {
            for split in [&mut splits.train, &mut splits.val, &mut splits.test] {
                split.truncate(limit);
            }
        }
        Ok(splits)
    }

    fn model(&self, device: &Device) -> MtlModel {
        let head = MtlConfig::new(self.backbone.feature_dim(), self.tasks().to_vec())
            .with_shared(self.shared.clone())
            .with_head_hidden(self.head_hidden)
            .with_dropout(self.dropout)
            .init(device);
        // A fine-tuned model's backbone starts as the pretrained one (`train` puts it in) or is
        // read from a record.
        let backbone = self.fine_tune.then(|| Backbone::init(self.backbone, device));
        let weighting = LossWeighting::new(self.weighting, self.tasks().len(), self.lambda, device);
        MtlModel { head, weighting, backbone }
    }
}

/// What the network reads for each face of a split (three exist per run, so the variants'
/// difference in size does not matter).
#[allow(clippy::large_enum_variant)]
pub enum Inputs {
    /// `[n, features]` of the frozen backbone.
    Features(Tensor<2>),
    /// Aligned crops, planar RGB bytes back to back, kept on the host.
    Crops { pixels: Vec<u8>, kind: BackboneKind },
}

/// Faces at a time when evaluating crops (features go in one pass).
const CROP_CHUNK: usize = 32;

impl Inputs {
    /// Rows `indices` as the network's input on `device` (see [`MtlModel::forward`]); crops
    /// whose `mirror` flag is set are flipped left to right first.
    fn rows(&self, indices: &[i64], mirror: &[bool], device: &Device) -> Tensor<2> {
        match self {
            Inputs::Features(x) => {
                let idx = Tensor::<1, Int>::from_data(TensorData::new(indices.to_vec(), [indices.len()]), &x.device());
                x.clone().select(0, idx).to_device(device)
            }
            Inputs::Crops { pixels, kind } => {
                let (side, width) = (kind.input_size(), 3 * kind.input_size() * kind.input_size());
                let rows: Vec<f32> = indices
                    .iter()
                    .enumerate()
                    .flat_map(|(k, &i)| {
                        let crop = &pixels[i as usize * width..(i as usize + 1) * width];
                        let crop = if mirror.get(k).copied().unwrap_or(false) {
                            crops::mirror(crop, side)
                        } else {
                            crop.to_vec()
                        };
                        kind.normalise(&crop.into_iter().map(f32::from).collect::<Vec<_>>())
                    })
                    .collect();
                Tensor::from_data(TensorData::new(rows, [indices.len(), width]), device)
            }
        }
    }

    fn chunk(&self, n: usize) -> usize {
        match self {
            Inputs::Features(_) => n.max(1),
            Inputs::Crops { .. } => CROP_CHUNK,
        }
    }
}

/// Inputs and targets of one split.
pub struct Batch {
    pub inputs: Inputs,
    pub targets: Vec<Target>,
    pub samples: Vec<Sample>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

fn targets(kept: &[&Sample], tasks: &[Task], device: &Device) -> Vec<Target> {
    let n = kept.len();
    tasks
        .iter()
        .map(|&task| match task {
            Task::Age => Target::Value(Tensor::from_data(
                TensorData::new(kept.iter().map(|s| s.age_target.unwrap_or(0.0)).collect(), [n]),
                device,
            )),
            _ => Target::Class(Tensor::from_data(
                TensorData::new(kept.iter().map(|s| i64::from(s.class(task).unwrap_or(0))).collect(), [n]),
                device,
            )),
        })
        .collect()
}

/// The split's samples that have features (a face was found), as tensors.
pub fn batch(samples: &[Sample], store: &FeatureStore, tasks: &[Task], device: &Device) -> Batch {
    let kept: Vec<(&Sample, &[f32])> = samples.iter().filter_map(|s| store.get(s).map(|f| (s, f))).collect();
    let x: Vec<f32> = kept.iter().flat_map(|(_, f)| f.iter().copied()).collect();
    let kept: Vec<&Sample> = kept.into_iter().map(|(s, _)| s).collect();
    Batch {
        inputs: Inputs::Features(Tensor::from_data(TensorData::new(x, [kept.len(), store.dim]), device)),
        targets: targets(&kept, tasks, device),
        samples: kept.into_iter().cloned().collect(),
    }
}

/// The split's samples that have a face crop.
pub fn crop_batch(samples: &[Sample], store: &CropStore, tasks: &[Task], device: &Device) -> Batch {
    let kept: Vec<(&Sample, &[u8])> = samples.iter().filter_map(|s| store.get(s).map(|c| (s, c))).collect();
    let pixels: Vec<u8> = kept.iter().flat_map(|(_, c)| c.iter().copied()).collect();
    let kept: Vec<&Sample> = kept.into_iter().map(|(s, _)| s).collect();
    Batch {
        inputs: Inputs::Crops { pixels, kind: store.kind },
        targets: targets(&kept, tasks, device),
        samples: kept.into_iter().cloned().collect(),
    }
}

fn select_targets(targets: &[Target], indices: &[i64], device: &Device) -> Vec<Target> {
    let idx = Tensor::<1, Int>::from_data(TensorData::new(indices.to_vec(), [indices.len()]), device);
    targets
        .iter()
        .map(|t| match t {
            Target::Class(c) => Target::Class(c.clone().select(0, idx.clone())),
            Target::Value(v) => Target::Value(v.clone().select(0, idx.clone())),
        })
        .collect()
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_data().try_to_vec::<f32>().map(|v| f64::from(v[0])).unwrap_or(f64::NAN)
}

/// Per-task loss and metric (accuracy for classes, MAE in years for age) on one split.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub losses: Vec<f64>,
    pub metrics: Vec<f64>,
    /// Per task and sample: the predicted class, or the predicted age in years.
    pub predictions: Vec<Vec<f64>>,
}

pub fn evaluate(model: &MtlModel, batch: &Batch, tasks: &[Task]) -> Evaluation {
    let model = model.valid();
    let device = match &batch.targets[0] {
        Target::Class(c) => c.device(),
        Target::Value(v) => v.device(),
    };
    let order: Vec<i64> = (0..batch.len() as i64).collect();
    let chunks: Vec<Vec<Tensor<2>>> = order
        .chunks(batch.inputs.chunk(batch.len()))
        .map(|chunk| model.forward(batch.inputs.rows(chunk, &[], &device)))
        .collect();
    let outputs: Vec<Tensor<2>> =
        (0..tasks.len()).map(|t| Tensor::cat(chunks.iter().map(|c| c[t].clone()).collect(), 0)).collect();
    let mut evaluation = Evaluation::default();
    for ((&task, output), target) in tasks.iter().zip(outputs).zip(&batch.targets) {
        evaluation.losses.push(scalar(task_loss(task, output.clone(), target)));
        let (predicted, truth): (Vec<f64>, Vec<f64>) = match target {
            Target::Value(y) => (
                output
                    .reshape([batch.samples.len()])
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap()
                    .iter()
                    .map(|p| f64::from(*p) * 40.0)
                    .collect(),
                y.clone().into_data().try_to_vec::<f32>().unwrap().iter().map(|v| f64::from(*v) * 40.0).collect(),
            ),
            Target::Class(c) => (
                output
                    .argmax(1)
                    .into_data()
                    .convert::<i64>()
                    .try_to_vec::<i64>()
                    .unwrap()
                    .iter()
                    .map(|v| *v as f64)
                    .collect(),
                c.clone().into_data().convert::<i64>().try_to_vec::<i64>().unwrap().iter().map(|v| *v as f64).collect(),
            ),
        };
        let n = truth.len().max(1) as f64;
        evaluation.metrics.push(if task.is_regression() {
            predicted.iter().zip(&truth).map(|(p, t)| (p - t).abs()).sum::<f64>() / n
        } else {
            predicted.iter().zip(&truth).filter(|(p, t)| p == t).count() as f64 / n
        });
        evaluation.predictions.push(predicted);
    }
    evaluation
}

/// One line of `metrics.csv`.
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

/// The rows of a run's `metrics.csv`.
pub fn read_metrics(path: &Path) -> Result<Vec<MetricRow>> {
    let text = fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let number = |i: usize| -> Result<f64> {
                f.get(i).context("short metrics row")?.parse().with_context(|| format!("bad number in `{line}`"))
            };
            Ok(MetricRow {
                epoch: number(0)? as usize,
                task: f.get(1).context("short metrics row")?.to_string(),
                train_loss: number(2)?,
                val_loss: number(3)?,
                val_metric: number(4)?,
                loss_weight: number(5)?,
                lr: number(6)?,
                event: f.get(7).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

/// What a checkpoint holds besides the weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainState {
    /// The next epoch to run.
    epoch: usize,
    lr: f64,
    best_total: f64,
    epochs_since_best_total: usize,
    early: EarlyFreeze,
    rows: Vec<MetricRow>,
    /// Per-epoch mean training loss per task (DWA reads the last two).
    train_history: Vec<Vec<f64>>,
}

/// Where a run keeps its files.
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    fn latest(&self) -> PathBuf {
        self.root.join("checkpoint-latest")
    }

    fn checkpoint(&self, epoch: usize) -> PathBuf {
        self.root.join(format!("checkpoint-{epoch:04}"))
    }

    /// The checkpoint `checkpoint-latest` points at. The pointer is a file anyone can edit, and
    /// its name decides what is deleted, so only a name of [`Self::checkpoint`]'s form is
    /// followed; when it is damaged, the newest complete checkpoint directory is used instead.
    fn latest_checkpoint(&self) -> Option<PathBuf> {
        let pointed = fs::read_to_string(self.latest()).ok()?;
        if let Some(name) = checkpoint_name(&pointed) {
            return Some(self.root.join(name));
        }
        let newest = fs::read_dir(&self.root)
            .ok()?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| checkpoint_name(name).is_some() && self.root.join(name).join("state.json").is_file())
            .max()?;
        eprintln!("warning: {} names no checkpoint ({pointed:?}); using {newest}", self.latest().display());
        Some(self.root.join(newest))
    }

    /// Point `checkpoint-latest` at `dir` and delete the checkpoint it pointed at before.
    fn advance_latest(&self, dir: &Path) -> Result<()> {
        let previous = fs::read_to_string(self.latest()).ok();
        let name = dir.file_name().context("a checkpoint directory")?.to_string_lossy().into_owned();
        write_atomic(&self.latest(), name.as_bytes())?;
        if let Some(previous) = previous.as_deref().and_then(checkpoint_name).filter(|p| *p != name) {
            let _ = fs::remove_dir_all(self.root.join(previous));
        }
        Ok(())
    }

    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.csv")
    }
}

/// `text` as a checkpoint directory's name (`checkpoint-` and digits), or `None`.
fn checkpoint_name(text: &str) -> Option<&str> {
    let name = text.trim();
    let digits = name.strip_prefix("checkpoint-")?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(name)
}

fn record_bytes<M: Module>(module: M) -> Result<Vec<u8>> {
    Ok(module.into_record().into_bytes().map_err(|e| anyhow::anyhow!("{e}"))?.to_vec())
}

/// A run's model from one of its weight files (`best.bpk`, `last.bpk`).
pub fn load_model(config: &TrainConfig, path: &Path, device: &Device) -> Result<MtlModel> {
    load_module(config.model(device), path)
}

fn load_module<M: Module>(module: M, path: &Path) -> Result<M> {
    let record = ModuleRecord::load(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    module.try_load_record(record).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Write a complete checkpoint in its own directory, then point `checkpoint-latest` at it:
/// a kill at any moment leaves the previous checkpoint intact.
fn save_checkpoint(
    run: &RunDir,
    state: &TrainState,
    model: &MtlModel,
    optim: &ModuleOptimizer,
    snapshots: &[Option<Vec<u8>>],
) -> Result<()> {
    let dir = run.checkpoint(state.epoch);
    fs::create_dir_all(&dir)?;
    write_atomic(&dir.join("model.bpk"), &record_bytes(model.clone())?)?;
    write_atomic(&dir.join("optim.bpk"), &optim.to_record().into_bytes().map_err(|e| anyhow::anyhow!("{e}"))?)?;
    for (task, snapshot) in snapshots.iter().enumerate() {
        if let Some(bytes) = snapshot {
            write_atomic(&dir.join(format!("best-task{task}.bpk")), bytes)?;
        }
    }
    write_atomic(&dir.join("state.json"), serde_json::to_string(state)?.as_bytes())?;
    run.advance_latest(&dir)
}

fn write_metrics(run: &RunDir, rows: &[MetricRow]) -> Result<()> {
    let mut csv = String::from("epoch,task,train_loss,val_loss,val_metric,loss_weight,lr,event\n");
    for r in rows {
        csv.push_str(&format!(
            "{},{},{:.6},{:.6},{:.6},{:.6},{:e},{}\n",
            r.epoch, r.task, r.train_loss, r.val_loss, r.val_metric, r.loss_weight, r.lr, r.event
        ));
    }
    write_atomic(&run.metrics(), csv.as_bytes())
}

/// Re-apply what Early Freeze froze (a resumed model comes back unfrozen).
fn apply_freezes(mut model: MtlModel, early: &EarlyFreeze) -> MtlModel {
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

/// The result of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub epochs: usize,
    pub val: Evaluation,
    pub test: Evaluation,
    /// Per-group figures on the test split.
    #[serde(default)]
    pub test_groups: GroupFigures,
    pub seconds: f64,
}

/// `plots/` of a run: loss curves with freeze points, loss weights, confusion matrices and
/// group tables.
pub fn write_plots(run_dir: &Path, rows: &[MetricRow], groups: &GroupFigures) -> Result<()> {
    let dir = run_dir.join("plots");
    plots::loss_curves(rows, &dir.join("loss.png"))?;
    plots::loss_weights(rows, &dir.join("loss-weights.png"))?;
    for matrix in &groups.confusions {
        plots::confusion(matrix, &dir.join(format!("confusion-{}.png", matrix.task)))?;
    }
    for table in &groups.tables {
        let slug: String = table
            .title
            .to_lowercase()
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join("-");
        plots::group_bars(table, &dir.join(format!("{slug}.png")))?;
    }
    Ok(())
}

/// Train (or resume) the run in `run_dir`; a fine-tuning run starts from `pretrained`.
#[allow(clippy::too_many_arguments)]
pub fn train(
    config: &TrainConfig,
    run_dir: &Path,
    train: &Batch,
    val: &Batch,
    test: &Batch,
    device: &Device,
    pretrained: Option<Backbone>,
    resume: bool,
) -> Result<RunResult> {
    let started = std::time::Instant::now();
    let run = RunDir { root: run_dir.to_path_buf() };
    fs::create_dir_all(&run.root)?;
    let config_path = run.root.join("config.json");
    if resume {
        let saved: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&config_path).context("no run to resume")?)?;
        if saved != serde_json::to_value(config)? {
            bail!("--resume with another configuration than {}", config_path.display());
        }
    } else {
        write_atomic(&config_path, serde_json::to_string_pretty(config)?.as_bytes())?;
    }
    let tasks = config.tasks();
    let autodiff = device.clone().autodiff();
    autodiff.seed(config.seed);
    let mut model = config.model(&autodiff);
    if config.fine_tune {
        model.backbone = Some(pretrained.context("fine-tuning needs the pretrained backbone")?.train());
    }
    let adam = AdamConfig::new().with_weight_decay(Some(WeightDecayConfig::new(config.weight_decay as f32)));
    let mut optim = adam.init();
    let mut snapshots: Vec<Option<Vec<u8>>> = vec![None; tasks.len()];
    let mut state = TrainState {
        epoch: 0,
        lr: config.lr,
        best_total: f64::INFINITY,
        epochs_since_best_total: 0,
        early: EarlyFreeze::new(tasks.len(), config.patience, config.freeze_mode),
        rows: Vec::new(),
        train_history: Vec::new(),
    };
    if resume && let Some(dir) = run.latest_checkpoint() {
        state = serde_json::from_str(&fs::read_to_string(dir.join("state.json"))?)?;
        model = apply_freezes(load_module(model, &dir.join("model.bpk"))?, &state.early);
        optim = optim.load_record(OptimizerRecord::load(dir.join("optim.bpk")).map_err(|e| anyhow::anyhow!("{e}"))?);
        for (task, snapshot) in snapshots.iter_mut().enumerate() {
            *snapshot = fs::read(dir.join(format!("best-task{task}.bpk"))).ok();
        }
        eprintln!("resuming at epoch {}", state.epoch);
    }
    let train_targets = retarget(&train.targets, &autodiff);
    let n = train.len();
    let bar = crate::bench::progress(config.max_epochs as u64, "epochs");
    if config.quiet {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_position(state.epoch as u64);
    while state.epoch < config.max_epochs && !state.early.is_finished() {
        let epoch = state.epoch;
        let epoch_started = std::time::Instant::now();
        autodiff.seed(config.seed.wrapping_add(epoch as u64 + 1));
        if state.train_history.len() >= 2 {
            let h = &state.train_history;
            model.weighting.update_dwa(&h[h.len() - 1], &h[h.len() - 2]);
        }
        let active: Vec<bool> = (0..tasks.len()).map(|t| !state.early.is_converged(t)).collect();
        let mut order: Vec<i64> = (0..n as i64).collect();
        data::shuffle(&mut order, config.seed.wrapping_mul(1000).wrapping_add(epoch as u64));
        let mut sums = vec![0.0; tasks.len()];
        let mut batches = 0;
        for chunk in order.chunks(config.batch_size) {
            if chunk.len() < 2 {
                continue; // batch norm needs two samples
            }
            let mirror: Vec<bool> =
                chunk.iter().map(|&i| mirror_flag(config.seed, epoch, i as u64) && config.fine_tune).collect();
            let x = train.inputs.rows(chunk, &mirror, &autodiff);
            let targets = select_targets(&train_targets, chunk, &autodiff);
            let outputs = model.forward(x);
            let losses: Vec<Tensor<1>> =
                tasks.iter().zip(outputs).zip(&targets).map(|((&t, o), y)| task_loss(t, o, y)).collect();
            for (sum, loss) in sums.iter_mut().zip(&losses) {
                *sum += scalar(loss.clone().inner());
            }
            let total = model.weighting.combine(&losses, &active);
            let grads = GradientsParams::from_grads(total.backward(), &model);
            model = optim.step(state.lr, model, grads);
            batches += 1;
        }
        let train_losses: Vec<f64> = sums.iter().map(|s| s / batches.max(1) as f64).collect();
        state.train_history.push(train_losses.clone());
        let evaluation = evaluate(&model, val, tasks);
        let weights = model.weighting.weights();
        let events = state.early.observe(epoch, &evaluation.losses);
        for event in &events {
            match *event {
                FreezeEvent::Improved { task, .. } => snapshots[task] = Some(record_bytes(model.clone())?),
                FreezeEvent::Converged { task, freeze_shared, .. } => {
                    let best =
                        load_snapshot(config, &autodiff, snapshots[task].as_deref())?.unwrap_or_else(|| model.clone());
                    model.head.heads[task] = best.head.heads[task].clone().freeze();
                    if freeze_shared {
                        model.head.shared = best.head.shared.into_iter().map(Module::freeze).collect();
                        model.backbone = best.backbone.map(Module::freeze);
                    }
                }
                FreezeEvent::Finished => {}
            }
        }
        for (t, task) in tasks.iter().enumerate() {
            let converged_now = events.iter().any(|e| matches!(e, FreezeEvent::Converged { task: c, .. } if *c == t));
            state.rows.push(MetricRow {
                epoch,
                task: task.name().into(),
                train_loss: train_losses[t],
                val_loss: evaluation.losses[t],
                val_metric: evaluation.metrics[t],
                loss_weight: weights.get(t).copied().unwrap_or(f64::NAN),
                lr: state.lr,
                event: if converged_now {
                    "converged".into()
                } else if !active[t] {
                    "frozen".into()
                } else {
                    String::new()
                },
            });
        }
        let summary: Vec<String> = tasks
            .iter()
            .zip(evaluation.losses.iter().zip(&evaluation.metrics))
            .map(|(t, (loss, metric))| format!("{} {loss:.4}/{metric:.4}", t.name()))
            .collect();
        let line = format!(
            "epoch {epoch} ({:.1} s): val loss/metric {}",
            epoch_started.elapsed().as_secs_f64(),
            summary.join(", ")
        );
        if config.quiet {
        } else if bar.is_hidden() {
            eprintln!("{line}")
        } else {
            bar.println(line)
        }
        let total: f64 = evaluation.losses.iter().zip(&active).filter(|(_, a)| **a).map(|(l, _)| l).sum();
        if total < state.best_total {
            state.best_total = total;
            state.epochs_since_best_total = 0;
            write_atomic(&run.root.join("best.bpk"), &record_bytes(model.clone())?)?;
        } else {
            state.epochs_since_best_total += 1;
            if state.epochs_since_best_total >= config.lr_patience {
                state.lr /= 10.0;
                state.epochs_since_best_total = 0;
            }
        }
        state.epoch += 1;
        save_checkpoint(&run, &state, &model, &optim, &snapshots)?;
        write_metrics(&run, &state.rows)?;
        bar.set_position(state.epoch as u64);
        if config.time_limit_s.is_some_and(|limit| started.elapsed().as_secs() >= limit) {
            eprintln!("time limit reached after epoch {epoch}; resume with --resume");
            break;
        }
    }
    bar.finish();
    write_atomic(&run.root.join("last.bpk"), &record_bytes(model.clone())?)?;
    let test_evaluation = evaluate(&model, test, tasks);
    let result = RunResult {
        epochs: state.epoch,
        val: evaluate(&model, val, tasks),
        test_groups: groups::compute(tasks, &test.samples, &test_evaluation.predictions, config.age_offset()),
        test: test_evaluation,
        seconds: started.elapsed().as_secs_f64(),
    };
    write_plots(&run.root, &state.rows, &result.test_groups)?;
    write_atomic(&run.root.join("result.json"), serde_json::to_string_pretty(&result)?.as_bytes())?;
    Ok(result)
}

/// Whether training sample `index` is seen mirrored in `epoch` (fine-tuning's one augmentation).
fn mirror_flag(seed: u64, epoch: usize, index: u64) -> bool {
    let mut x = seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    (x >> 40) & 1 == 1
}

fn retarget(targets: &[Target], device: &Device) -> Vec<Target> {
    targets
        .iter()
        .map(|t| match t {
            Target::Class(c) => Target::Class(c.clone().to_device(device)),
            Target::Value(v) => Target::Value(v.clone().to_device(device)),
        })
        .collect()
}

fn load_snapshot(config: &TrainConfig, device: &Device, bytes: Option<&[u8]>) -> Result<Option<MtlModel>> {
    let Some(bytes) = bytes else { return Ok(None) };
    let record = ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes.to_vec()))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Some(config.model(device).try_load_record(record).map_err(|e| anyhow::anyhow!("{e}"))?))
}

/// `facemtl train`: load data, extract (or read cached) features, train.
pub fn run(
    cache: &Cache,
    device: &Device,
    config: &TrainConfig,
    data_dir: &Path,
    run_dir: &Path,
    resume: bool,
) -> Result<RunResult> {
    if let Some(task) = config.only.filter(|t| config.tasks() != [*t]) {
        bail!("the {:?} data set has no {} task", config.dataset, task.name());
    }
    let splits = config.load_splits(data_dir)?;
    let name = format!("{:?}", config.dataset).to_lowercase();
    splits.warn_skipped(&name);
    let pipeline = models::pipeline(cache, config.backbone, device)?;
    let all: Vec<&Sample> = splits.train.iter().chain(&splits.val).chain(&splits.test).collect();
    let tasks = config.tasks();
    let split_batches =
        |make: &dyn Fn(&[Sample]) -> Batch| (make(&splits.train), make(&splits.val), make(&splits.test));
    let (train_b, val_b, test_b) = if config.fine_tune {
        let store = crops::collect(&pipeline, &all);
        split_batches(&|s| crop_batch(s, &store, tasks, device))
    } else {
        let store = features::extract(cache, &pipeline, &all)?;
        split_batches(&|s| batch(s, &store, tasks, device))
    };
    let missing = all.len() - train_b.len() - val_b.len() - test_b.len();
    if missing > 0 {
        eprintln!("warning: {missing} of {} images had no face or could not be read; they are left out", all.len());
    }
    let pretrained = config.fine_tune.then(|| pipeline.backbone.clone());
    eprintln!(
        "{name}: {} train, {} validation, {} test faces",
        train_b.samples.len(),
        val_b.samples.len(),
        test_b.samples.len()
    );
    train(config, run_dir, &train_b, &val_b, &test_b, device, pretrained, resume)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use sha2::{Digest, Sha256};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: TrainConfig,
    }

    fn config(args: &[&str]) -> TrainConfig {
        Cli::parse_from(std::iter::once("train").chain(args.iter().copied())).config
    }

    /// Features where gender is easy (one feature) and age is noisy (learns slowly), so that
    /// the tasks converge at different epochs.
    fn synthetic(n: usize, dim: usize, seed: u64, device: &Device) -> Batch {
        let mut state = seed;
        let mut rand = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as f32 / (1u64 << 31) as f32
        };
        let samples: Vec<Sample> = (0..n)
            .map(|i| Sample {
                file: format!("{i}.jpg").into(),
                gender: (i % 2) as u8,
                age_years: Some(20.0 + 40.0 * rand()),
                age_target: None,
                race: Some((i % 5) as u8),
                young: None,
            })
            .collect();
        let mut store = FeatureStore { dim, rows: Default::default() };
        for s in &samples {
            let mut row: Vec<f32> = (0..dim).map(|_| rand() - 0.5).collect();
            row[0] = s.gender as f32 * 2.0 - 1.0;
            row[1] = (s.age_years.unwrap() - 40.0) / 20.0 + rand() - 0.5;
            row[2] = f32::from(s.race.unwrap()) / 4.0;
            store.rows.insert(s.file.to_string_lossy().into_owned(), Some(row));
        }
        let samples: Vec<Sample> = samples
            .into_iter()
            .map(|s| Sample { age_target: Some((s.age_years.unwrap() - 21.0) / 40.0), ..s })
            .collect();
        batch(&samples, &store, TaskSet::Utkface.tasks(), device)
    }

    /// A hash of every parameter and running statistic's values, in module order (a record's
    /// bytes would also hold parameter ids and training flags, which loading and freezing change).
    fn digest<M: Module>(module: M) -> String {
        struct Hasher(Sha256);
        impl burn::module::ModuleVisitor for Hasher {
            fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
                for v in param.val().into_data().try_to_vec::<f32>().unwrap() {
                    self.0.update(v.to_le_bytes());
                }
            }
        }
        let mut hasher = Hasher(Sha256::new());
        module.visit(&mut hasher);
        hasher.0.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn fine_tuning_trains_the_backbone_and_exports_it() {
        let device = Device::flex();
        let config =
            config(&["--backbone", "dlib", "--fine-tune", "--max-epochs", "1", "--batch-size", "4", "--lr", "1e-3"]);
        let mut batch = synthetic(8, 128, 3, &device);
        let width = 3 * 150 * 150;
        batch.inputs = Inputs::Crops {
            pixels: (0..8 * width).map(|i| (i * 7919 % 251) as u8).collect(),
            kind: BackboneKind::Dlib,
        };
        let pretrained = Backbone::init(BackboneKind::Dlib, &device);
        let before = digest(pretrained.clone());
        let dir = std::env::temp_dir().join(format!("facemtl-finetune-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let result = train(&config, &dir, &batch, &batch, &batch, &device, Some(pretrained), false).unwrap();
        assert_eq!(result.epochs, 1);
        let last = load_model(&config, &dir.join("last.bpk"), &device).unwrap();
        let tuned = digest(last.backbone.clone().expect("the fine-tuned backbone is saved"));
        assert_ne!(tuned, before);
        let file = dir.join("model.fmtl");
        let run = crate::infer::FinishedRun::read(&dir).unwrap();
        let rounded = digest(run.model.backbone.clone().expect("the run's backbone"));
        assert_ne!(rounded, tuned, "the file holds the parameters in half precision");
        assert_eq!(rounded, digest(facemtl::compact::half(last.backbone.unwrap())));
        run.write(&file, Vec::new()).unwrap();
        let exported = facemtl::weights::load(&fs::read(&file).unwrap(), None, &device).unwrap();
        assert_eq!(digest(exported.backbone.expect("the model file carries the backbone")), rounded);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_checkpoint_pointer_deletes_nothing_and_resumes_from_the_newest_checkpoint() {
        let scratch = std::env::temp_dir().join(format!("facemtl-pointer-{}", std::process::id()));
        let _ = fs::remove_dir_all(&scratch);
        let run = RunDir { root: scratch.join("run") };
        let outside = scratch.join("x");
        for dir in [run.checkpoint(3), run.checkpoint(4), outside.clone()] {
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("state.json"), "{}").unwrap();
        }
        fs::write(run.root.join("metrics.csv"), "kept").unwrap();
        for pointer in ["", "../x", ".", "checkpoint-latest", "/tmp", "checkpoint-../../x"] {
            fs::write(run.latest(), pointer).unwrap();
            assert_eq!(run.latest_checkpoint(), Some(run.checkpoint(4)), "{pointer:?}");
            run.advance_latest(&run.checkpoint(5)).unwrap();
            assert!(run.root.join("metrics.csv").is_file() && outside.is_dir(), "{pointer:?} deleted something");
            assert!(run.checkpoint(3).is_dir() && run.checkpoint(4).is_dir());
        }
        fs::write(run.latest(), "checkpoint-0003\n").unwrap();
        assert_eq!(run.latest_checkpoint(), Some(run.checkpoint(3)));
        run.advance_latest(&run.checkpoint(4)).unwrap();
        assert!(!run.checkpoint(3).exists(), "the previous checkpoint is removed");
        assert_eq!(fs::read_to_string(run.latest()).unwrap(), "checkpoint-0004");
        fs::remove_dir_all(&scratch).unwrap();
    }

    #[test]
    fn frozen_parameters_never_change_after_early_freeze() {
        let device = Device::flex();
        let config = config(&[
            "--backbone",
            "dlib",
            "--lr",
            "3e-3",
            "--patience",
            "2",
            "--max-epochs",
            "40",
            "--shared",
            "32",
            "--head-hidden",
            "16",
        ]);
        let (train_b, val_b) = (synthetic(256, 128, 1, &device), synthetic(128, 128, 2, &device));
        let dir = std::env::temp_dir().join(format!("facemtl-freeze-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        train(&config, &dir, &train_b, &val_b, &val_b, &device, None, false).unwrap();

        let run = RunDir { root: dir.clone() };
        let checkpoint = dir.join(fs::read_to_string(run.latest()).unwrap().trim());
        let state: TrainState =
            serde_json::from_str(&fs::read_to_string(checkpoint.join("state.json")).unwrap()).unwrap();
        let first =
            (0..3).filter(|&t| state.early.is_converged(t)).min_by_key(|&t| state.early.tasks[t].converged_at).unwrap();
        assert!(state.early.shared_frozen);
        let last = load_module(config.model(&device), &dir.join("last.bpk")).unwrap();
        let snapshot = load_module(config.model(&device), &checkpoint.join(format!("best-task{first}.bpk"))).unwrap();
        // Shared layers: restored to the first converged task's best epoch, then never moved.
        assert_eq!(digest(last.head.shared.clone()), digest(snapshot.head.shared.clone()));
        for (task, progress) in state.early.tasks.iter().enumerate() {
            if progress.converged_at.is_some() {
                let best =
                    load_module(config.model(&device), &checkpoint.join(format!("best-task{task}.bpk"))).unwrap();
                assert_eq!(digest(last.head.heads[task].clone()), digest(best.head.heads[task].clone()), "head {task}");
            }
        }
        // One loss panel per task, and a confusion matrix per classification task.
        let loss = image::open(dir.join("plots/loss.png")).unwrap();
        assert_eq!((loss.width(), loss.height()), (3 * 420, 340));
        assert!(dir.join("plots/confusion-race.png").is_file() && dir.join("plots/loss-weights.png").is_file());
        // And the run did train: the shared layers are not at their initial values.
        device.clone().autodiff().seed(config.seed);
        assert_ne!(digest(config.model(&device.clone().autodiff()).head.shared), digest(last.head.shared));
        let _ = fs::remove_dir_all(&dir);
    }
}
