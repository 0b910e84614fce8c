//! Training the multi-task network, either on cached features of the frozen backbone (the
//! head trains in seconds per epoch on a CPU) or fine-tuning the backbone too (a GPU job): Adam,
//! learning rate divided by 10 when the total validation loss plateaus, Early Freeze (or the
//! early-stop ablation), one of four loss weightings: the shared crate's [`Session`] (which the
//! browser's Lab steps too), with files. Every epoch ends with an atomic checkpoint, so a killed
//! run resumes where it was and, on the CPU, ends with the same figures as an uninterrupted one.
//!
//! The parts: [`config`] (what defines a run), [`split`] (what the network reads of each
//! split), [`checkpoint`] (the run's directory), and here the [`Trainer`] that steps the
//! session and writes its files.

pub mod checkpoint;
pub mod config;
pub mod lab_input;
pub mod mixing;
pub mod plots;
pub mod split;

use std::fs;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::optim::OptimizerRecord;
use burn::prelude::*;
use burn::tensor::read_sync;
use facemtl::backbone::Tuned;
use facemtl::mtl::{MtlHead, TaskSpec};
use facemtl::training::{Session, Target};
use serde::{Deserialize, Serialize};

pub use checkpoint::{RunDir, read_metrics};
pub use config::{DataSetName, TrainConfig};
pub use facemtl::training::{Evaluation, MetricRow};
pub use split::{Split, Splits, TaskSelection};

use crate::cache::Cache;
use crate::data::Sample;
use crate::faces::features::{self, FeatureStore};
use crate::faces::{activations, crops};
use crate::files::write_atomic;
use crate::groups::{self, GroupFigures};
use crate::models;

use checkpoint::{load_module, record_bytes, save_checkpoint, write_metrics};

/// The result of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub epochs: usize,
    pub val: Evaluation,
    pub test: Evaluation,
    /// Per-group figures on the test split.
    #[serde(default)]
    pub test_groups: GroupFigures,
    /// Training time: the epochs of every process that trained the run (a resumed run counts
    /// its earlier part too) and the final evaluation.
    pub seconds: f64,
}

/// `head` (after the tuned part of the backbone when it has one) on every face of `split` (a
/// blocking read).
pub fn evaluate(head: &MtlHead, backbone: Option<&Tuned>, split: &Split, tasks: &[TaskSpec]) -> Evaluation {
    read_sync(facemtl::training::evaluate(head, backbone, split, tasks))
}

/// One run: its configuration, the tasks it trains (with the columns of the data set they read)
/// and its directory.
pub struct Trainer<'a> {
    config: &'a TrainConfig,
    labels: TaskSelection,
    run: RunDir,
    /// The autodiff device training runs on.
    device: Device,
}

impl<'a> Trainer<'a> {
    pub fn new(config: &'a TrainConfig, labels: TaskSelection, run_dir: &Path, device: &Device) -> Self {
        Self { config, labels, run: RunDir { root: run_dir.to_path_buf() }, device: device.clone().autodiff() }
    }

    fn tasks(&self) -> &[TaskSpec] {
        &self.labels.tasks
    }

    /// Train (or resume) the run; a fine-tuning run starts from the `pretrained` part it tunes.
    pub fn fit(&self, splits: &Splits, pretrained: Option<Tuned>, resume: bool) -> Result<RunResult> {
        let started = Instant::now();
        self.prepare(resume)?;
        let mut session = self.start(pretrained, resume)?;
        let targets: Vec<_> = splits.train.targets.iter().map(|t| t.to_device(&self.device)).collect();
        let bar = crate::progress::progress(self.config.max_epochs as u64, "epochs");
        if self.config.quiet {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        bar.set_position(session.state.epoch as u64);
        while !session.is_finished() {
            let line = self.epoch(&mut session, splits, &targets)?;
            if !self.config.quiet {
                if bar.is_hidden() { eprintln!("{line}") } else { bar.println(line) }
            }
            bar.set_position(session.state.epoch as u64);
            if self.config.time_limit_s.is_some_and(|limit| started.elapsed().as_secs() >= limit) {
                eprintln!("time limit reached after epoch {}; resume with --resume", session.state.epoch - 1);
                break;
            }
        }
        bar.finish();
        self.finish(&session, splits)
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
    fn fresh(&self) -> facemtl::training::TrainingModel {
        self.config.model(self.tasks(), &self.device)
    }

    /// A new run's starting point, or a resumed run's last checkpoint.
    fn start(&self, pretrained: Option<Tuned>, resume: bool) -> Result<Session> {
        let config = self.config;
        let mut model = self.fresh();
        if model.backbone.is_some() {
            model.backbone = Some(pretrained.context("fine-tuning needs the pretrained backbone")?.train());
        }
        let mut session = Session::new(config.settings(), self.tasks().to_vec(), model, &self.device);
        if resume && let Some(dir) = self.run.latest_checkpoint() {
            session.state = serde_json::from_str(&fs::read_to_string(dir.join("state.json"))?)?;
            session.model = session.refreeze(load_module(self.fresh(), &dir.join("model.bpk"))?);
            let record = OptimizerRecord::load(dir.join("optim.bpk")).map_err(|e| anyhow::anyhow!("{e}"))?;
            session.optim = Session::adam(&session.settings).load_record(record);
            for (task, snapshot) in session.snapshots.iter_mut().enumerate() {
                let path = dir.join(format!("best-task{task}.bpk"));
                *snapshot = path.is_file().then(|| load_module(self.fresh(), &path).map(|m| m.valid())).transpose()?;
            }
            eprintln!("resuming at epoch {}", session.state.epoch);
        }
        Ok(session)
    }

    /// One epoch of the session, then the best model, the checkpoint and the metrics written.
    /// Returns the epoch's line for the log.
    fn epoch(&self, session: &mut Session, splits: &Splits, targets: &[Target]) -> Result<String> {
        let epoch_started = Instant::now();
        let report = read_sync(session.epoch(&splits.train, targets, &splits.val))?;
        session.state.seconds += epoch_started.elapsed().as_secs_f64();
        if report.best_total {
            write_atomic(&self.run.root.join("best.bpk"), &record_bytes(session.model.clone())?)?;
        }
        save_checkpoint(&self.run, session)?;
        write_metrics(&self.run, &session.state.rows)?;
        let summary: Vec<String> =
            report.rows.iter().map(|r| format!("{} {:.4}/{:.4}", r.task, r.val_loss, r.val_metric)).collect();
        Ok(format!(
            "epoch {} ({:.1} s): val loss/metric {}",
            session.state.epoch - 1,
            epoch_started.elapsed().as_secs_f64(),
            summary.join(", ")
        ))
    }

    /// The final model's weights, test figures, group tables and plots.
    fn finish(&self, session: &Session, splits: &Splits) -> Result<RunResult> {
        let started = Instant::now();
        let tasks = self.tasks();
        write_atomic(&self.run.root.join("last.bpk"), &record_bytes(session.model.clone())?)?;
        let valid = session.model.valid();
        let evaluate = |split: &Split| evaluate(&valid.head, valid.backbone.as_ref(), split, tasks);
        let test = evaluate(&splits.test);
        let result = RunResult {
            epochs: session.state.epoch,
            val: evaluate(&splits.val),
            test_groups: groups::compute(self.labels.set_tasks(), tasks, &splits.test.samples, &test.predictions),
            test,
            seconds: session.state.seconds + started.elapsed().as_secs_f64(),
        };
        write_plots(&self.run.root, &session.state.rows, &result.test_groups)?;
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
    config.settings().check().map_err(anyhow::Error::msg)?;
    let _held = RunDir::lock(run_dir)?;
    if let Some(path) = &config.lab {
        return fit_lab(device, config, path, run_dir, resume);
    }
    let set = config.load(data_dir)?;
    set.warn_skipped();
    let labels = TaskSelection::new(config.tasks(&set.tasks)?, &set.tasks);
    let pipeline = models::pipeline(cache, config.backbone, device)?.with_mirror(config.mirror);
    let all: Vec<&Sample> = set.all().collect();
    let splits = if config.fine_tune {
        let store = crops::collect(&pipeline, &all);
        let of = |s: &[Sample]| Split::of_crops(s, &store, &labels, device);
        Splits { train: of(&set.train), val: of(&set.val), test: of(&set.test) }
    } else if let Some(tuned) = config.tune_blocks {
        let store = activations::extract(cache, &pipeline, &all, tuned)?;
        eprintln!("activations before the last {tuned} blocks: {:.2} GB cached", store.size() as f64 / 1e9);
        let of = |s: &[Sample]| Split::of_activations(s, &store, &labels, config.mirror, device);
        Splits { train: of(&set.train)?, val: of(&set.val)?, test: of(&set.test)? }
    } else {
        let store = features::extract(cache, &pipeline, &all)?;
        let training: Vec<&Sample> = set.train.iter().collect();
        let views: Vec<_> = config
            .views
            .iter()
            .map(|look| features::extract_seen(cache, &pipeline, &training, *look))
            .collect::<Result<_>>()?;
        let seen: Vec<&FeatureStore> = std::iter::once(&store).chain(&views).collect();
        let of = |s: &[Sample]| Split::of_features(s, &[&store], &labels, device);
        Splits { train: Split::of_features(&set.train, &seen, &labels, device), val: of(&set.val), test: of(&set.test) }
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
    for m in mixing::of(&splits.train.samples, config.seed, config.batch_size) {
        eprintln!(
            "batches: {} {:.1} % of the training faces; per batch of {} (epoch 0) {:.1} ± {:.1}, {} to {}",
            m.source,
            100.0 * m.share,
            config.batch_size,
            m.mean,
            m.sd,
            m.fewest,
            m.most
        );
    }
    let pretrained = config.tuned_part(pipeline.backbone())?;
    Trainer::new(config, labels, run_dir, device).fit(&splits, pretrained, resume)
}

/// `facemtl train --lab FILE`: the data set's faces and features as the browser's Lab has them.
fn fit_lab(device: &Device, config: &TrainConfig, path: &Path, run_dir: &Path, resume: bool) -> Result<RunResult> {
    let crate::data::Source::BuiltIn(id) = config.source()? else { bail!("--lab reads UTKFace or CelebA") };
    let (header, set) = lab_input::read_set(path, id)?;
    if header.backbone != config.backbone {
        bail!("{} holds {} features, not {}", path.display(), header.backbone, config.backbone);
    }
    let labels = TaskSelection::new(config.tasks(&set.info.tasks)?, &set.info.tasks);
    let splits = Splits::of_lab(&set, header.dim, &labels, device);
    eprintln!(
        "{} (the Lab's): {} train, {} validation, {} test faces",
        set.info.name,
        splits.train.len(),
        splits.val.len(),
        splits.test.len()
    );
    Trainer::new(config, labels, run_dir, device).fit(&splits, None, resume)
}

#[cfg(test)]
mod tests;
