//! Training the multi-task network, either on cached features of the frozen backbone (the
//! head trains in seconds per epoch on a CPU) or fine-tuning the backbone too (a GPU job): Adam,
//! learning rate divided by 10 when the total validation loss plateaus, Early Freeze (or the
//! early-stop ablation), one of four loss weightings. Every epoch ends with an atomic
//! checkpoint, so a killed run resumes where it was and, on the CPU, ends with the same figures
//! as an uninterrupted one.
//!
//! The parts: [`config`] (what defines a run), [`split`] (what the network reads of each
//! split), [`epoch`] (one pass of training and Early Freeze's verdict), [`checkpoint`] (the run's
//! directory), [`evaluation`] (losses and metrics of a split), and here the [`Trainer`] that
//! runs them in turn.

pub mod checkpoint;
pub mod config;
pub mod epoch;
pub mod evaluation;
pub mod split;

use std::fs;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::optim::{AdamConfig, ModuleOptimizer, OptimizerRecord, decay::WeightDecayConfig};
use burn::prelude::*;
use facemtl::backbone::Backbone;
use facemtl::mtl::TaskSpec;
use facemtl::training::{EarlyFreeze, FreezeEvent, TrainingModel};
use serde::{Deserialize, Serialize};

pub use checkpoint::{MetricRow, RunDir, read_metrics};
pub use config::{DatasetName, TrainConfig};
pub use evaluation::{Evaluation, evaluate};
pub use split::{Labels, Split, Splits};

use crate::cache::Cache;
use crate::data::Sample;
use crate::files::write_atomic;
use crate::groups::{self, GroupFigures};
use crate::{crops, features, models, plots};
use checkpoint::{TrainState, apply_freezes, load_module, record_bytes, save_checkpoint, write_metrics};

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

/// Where a run stands: its model, optimiser, Early Freeze and the best snapshot of each task.
struct Progress {
    state: TrainState,
    model: TrainingModel,
    optim: ModuleOptimizer,
    snapshots: Vec<Option<Vec<u8>>>,
}

/// One run: its configuration, the tasks it trains (with the columns of the data set they read)
/// and its directory.
pub struct Trainer<'a> {
    config: &'a TrainConfig,
    labels: Labels,
    run: RunDir,
    /// The autodiff device training runs on.
    device: Device,
}

impl<'a> Trainer<'a> {
    pub fn new(config: &'a TrainConfig, labels: Labels, run_dir: &Path, device: &Device) -> Self {
        Self { config, labels, run: RunDir { root: run_dir.to_path_buf() }, device: device.clone().autodiff() }
    }

    fn tasks(&self) -> &[TaskSpec] {
        &self.labels.tasks
    }

    /// Train (or resume) the run; a fine-tuning run starts from `pretrained`.
    pub fn fit(&self, splits: &Splits, pretrained: Option<Backbone>, resume: bool) -> Result<RunResult> {
        let started = Instant::now();
        self.prepare(resume)?;
        let mut progress = self.start(pretrained, resume)?;
        let targets: Vec<_> = splits.train.targets.iter().map(|t| t.to_device(&self.device)).collect();
        let bar = crate::bench::progress(self.config.max_epochs as u64, "epochs");
        if self.config.quiet {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        bar.set_position(progress.state.epoch as u64);
        while progress.state.epoch < self.config.max_epochs && !progress.state.early.is_finished() {
            let line = self.epoch(&mut progress, splits, &targets)?;
            if !self.config.quiet {
                if bar.is_hidden() { eprintln!("{line}") } else { bar.println(line) }
            }
            bar.set_position(progress.state.epoch as u64);
            if self.config.time_limit_s.is_some_and(|limit| started.elapsed().as_secs() >= limit) {
                eprintln!("time limit reached after epoch {}; resume with --resume", progress.state.epoch - 1);
                break;
            }
        }
        bar.finish();
        self.finish(&progress, splits, started)
    }

    /// The run's directory: its configuration written, or checked against the saved one.
    fn prepare(&self, resume: bool) -> Result<()> {
        fs::create_dir_all(&self.run.root)?;
        let config_path = self.run.root.join("config.json");
        if resume {
            let saved: serde_json::Value =
                serde_json::from_str(&fs::read_to_string(&config_path).context("no run to resume")?)?;
            if saved != serde_json::to_value(self.config)? {
                bail!("--resume with another configuration than {}", config_path.display());
            }
        } else {
            write_atomic(&config_path, serde_json::to_string_pretty(self.config)?.as_bytes())?;
        }
        self.run.write_tasks(self.tasks())
    }

    /// A fresh model on the training device.
    fn fresh(&self) -> TrainingModel {
        self.config.model(self.tasks(), &self.device)
    }

    /// A new run's starting point, or a resumed run's last checkpoint.
    fn start(&self, pretrained: Option<Backbone>, resume: bool) -> Result<Progress> {
        let config = self.config;
        self.device.seed(config.seed);
        let mut model = self.fresh();
        if config.fine_tune {
            model.backbone = Some(pretrained.context("fine-tuning needs the pretrained backbone")?.train());
        }
        let adam = AdamConfig::new().with_weight_decay(Some(WeightDecayConfig::new(config.weight_decay as f32)));
        let tasks = self.tasks().len();
        let mut progress = Progress {
            state: TrainState {
                epoch: 0,
                lr: config.lr,
                best_total: f64::INFINITY,
                epochs_since_best_total: 0,
                early: EarlyFreeze::new(tasks, config.patience, config.freeze_mode),
                rows: Vec::new(),
                train_history: Vec::new(),
            },
            model,
            optim: adam.init(),
            snapshots: vec![None; tasks],
        };
        if resume && let Some(dir) = self.run.latest_checkpoint() {
            let p = &mut progress;
            p.state = serde_json::from_str(&fs::read_to_string(dir.join("state.json"))?)?;
            p.model = apply_freezes(load_module(p.model.clone(), &dir.join("model.bpk"))?, &p.state.early);
            let record = OptimizerRecord::load(dir.join("optim.bpk")).map_err(|e| anyhow::anyhow!("{e}"))?;
            p.optim = std::mem::replace(&mut p.optim, adam.init()).load_record(record);
            for (task, snapshot) in p.snapshots.iter_mut().enumerate() {
                *snapshot = fs::read(dir.join(format!("best-task{task}.bpk"))).ok();
            }
            eprintln!("resuming at epoch {}", p.state.epoch);
        }
        Ok(progress)
    }

    /// One epoch: train, evaluate on validation, let Early Freeze decide, adjust the learning
    /// rate, write the checkpoint and metrics. Returns the epoch's line for the log.
    fn epoch(&self, p: &mut Progress, splits: &Splits, targets: &[facemtl::training::Target]) -> Result<String> {
        let (config, tasks) = (self.config, self.tasks());
        let epoch = p.state.epoch;
        let epoch_started = Instant::now();
        self.device.seed(config.seed.wrapping_add(epoch as u64 + 1));
        if let [.., before, last] = p.state.train_history.as_slice() {
            p.model.weighting.update_dwa(last, before);
        }
        let active: Vec<bool> = (0..tasks.len()).map(|t| !p.state.early.is_converged(t)).collect();
        let model = p.model.clone();
        let (model, train_losses) =
            epoch::train_epoch(config, epoch, p.state.lr, &active, model, &mut p.optim, &splits.train, targets);
        p.state.train_history.push(train_losses.clone());
        let valid = model.valid();
        let evaluation = evaluate(&valid.head, valid.backbone.as_ref(), &splits.val, tasks);
        let weights = model.weighting.weights();
        let events = p.state.early.observe(epoch, &evaluation.losses);
        p.model = epoch::apply_events(model, &events, &mut p.snapshots, || self.fresh())?;
        for (t, task) in tasks.iter().enumerate() {
            let converged_now = events.iter().any(|e| matches!(e, FreezeEvent::Converged { task: c, .. } if *c == t));
            p.state.rows.push(MetricRow {
                epoch,
                task: task.name.clone(),
                train_loss: train_losses[t],
                val_loss: evaluation.losses[t],
                val_metric: evaluation.metrics[t],
                loss_weight: weights.get(t).copied().unwrap_or(f64::NAN),
                lr: p.state.lr,
                event: match (converged_now, active[t]) {
                    (true, _) => "converged".into(),
                    (false, false) => "frozen".into(),
                    (false, true) => String::new(),
                },
            });
        }
        let total: f64 = evaluation.losses.iter().zip(&active).filter(|(_, a)| **a).map(|(l, _)| l).sum();
        if total < p.state.best_total {
            p.state.best_total = total;
            p.state.epochs_since_best_total = 0;
            write_atomic(&self.run.root.join("best.bpk"), &record_bytes(p.model.clone())?)?;
        } else {
            p.state.epochs_since_best_total += 1;
            if p.state.epochs_since_best_total >= config.lr_patience {
                p.state.lr /= 10.0;
                p.state.epochs_since_best_total = 0;
            }
        }
        p.state.epoch += 1;
        save_checkpoint(&self.run, &p.state, &p.model, &p.optim, &p.snapshots)?;
        write_metrics(&self.run, &p.state.rows)?;
        let summary: Vec<String> = tasks
            .iter()
            .zip(evaluation.losses.iter().zip(&evaluation.metrics))
            .map(|(t, (loss, metric))| format!("{} {loss:.4}/{metric:.4}", t.name))
            .collect();
        Ok(format!(
            "epoch {epoch} ({:.1} s): val loss/metric {}",
            epoch_started.elapsed().as_secs_f64(),
            summary.join(", ")
        ))
    }

    /// The final model's weights, test figures, group tables and plots.
    fn finish(&self, p: &Progress, splits: &Splits, started: Instant) -> Result<RunResult> {
        let tasks = self.tasks();
        write_atomic(&self.run.root.join("last.bpk"), &record_bytes(p.model.clone())?)?;
        let valid = p.model.valid();
        let evaluate = |split: &Split| evaluate(&valid.head, valid.backbone.as_ref(), split, tasks);
        let test = evaluate(&splits.test);
        let result = RunResult {
            epochs: p.state.epoch,
            val: evaluate(&splits.val),
            test_groups: groups::compute(self.labels.set_tasks(), tasks, &splits.test.samples, &test.predictions),
            test,
            seconds: started.elapsed().as_secs_f64(),
        };
        write_plots(&self.run.root, &p.state.rows, &result.test_groups)?;
        write_atomic(&self.run.root.join("result.json"), serde_json::to_string_pretty(&result)?.as_bytes())?;
        Ok(result)
    }
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

/// `facemtl train`: load the data set, extract (or read cached) features or collect crops,
/// train.
pub fn run(
    cache: &Cache,
    device: &Device,
    config: &TrainConfig,
    data_dir: &Path,
    run_dir: &Path,
    resume: bool,
) -> Result<RunResult> {
    let set = config.load(data_dir)?;
    set.warn_skipped();
    let labels = Labels::new(config.tasks(&set.tasks)?, &set.tasks);
    let pipeline = models::pipeline(cache, config.backbone, device)?;
    let all: Vec<&Sample> = set.all().collect();
    let splits = if config.fine_tune {
        let store = crops::collect(&pipeline, &all);
        let of = |s: &[Sample]| Split::of_crops(s, &store, &labels, device);
        Splits { train: of(&set.train), val: of(&set.val), test: of(&set.test) }
    } else {
        let store = features::extract(cache, &pipeline, &all)?;
        let of = |s: &[Sample]| Split::of_features(s, &store, &labels, device);
        Splits { train: of(&set.train), val: of(&set.val), test: of(&set.test) }
    };
    let missing = all.len() - splits.train.len() - splits.val.len() - splits.test.len();
    if missing > 0 {
        eprintln!("warning: {missing} of {} images had no face or could not be read; they are left out", all.len());
    }
    eprintln!(
        "{}: {} train, {} validation, {} test faces",
        set.name,
        splits.train.len(),
        splits.val.len(),
        splits.test.len()
    );
    let pretrained = config.fine_tune.then(|| pipeline.backbone().clone());
    Trainer::new(config, labels, run_dir, device).fit(&splits, pretrained, resume)
}

#[cfg(test)]
mod tests;
