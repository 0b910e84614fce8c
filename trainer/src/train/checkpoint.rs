//! A run's directory: its configuration and tasks, `metrics.csv`, weight files, and the
//! checkpoint written after every epoch (in its own directory, then pointed at), from which a
//! killed run resumes.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::prelude::*;
use burn::store::ModuleRecord;
use facemtl::mtl::TaskSpec;
use facemtl::training::{MetricRow, Session, TrainingModel};

use super::config::TrainConfig;
use crate::data::Source;
use crate::files::write_atomic;

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

/// Where a run keeps its files.
pub struct RunDir {
    pub root: PathBuf,
}

/// The file a run holds locked in its directory while it trains (not the lock `write_atomic`
/// takes for a moment around each rename).
const RUN_LOCK: &str = ".facemtl-run.lock";

impl RunDir {
    /// `root` made and held by this process for as long as the returned file is open (the
    /// system lets go of it when the process dies, even killed): a second run into the same
    /// folder is refused, instead of deleting the first one's checkpoints under it.
    pub fn lock(root: &Path) -> Result<fs::File> {
        fs::create_dir_all(root).with_context(|| format!("cannot make {}", root.display()))?;
        let path = root.join(RUN_LOCK);
        let file = fs::File::options().create(true).truncate(false).write(true).open(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(fs::TryLockError::WouldBlock) => bail!(
                "{} is in use by another facemtl run; give this run its own --run-dir, or wait for that one",
                root.display()
            ),
            Err(fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("cannot lock {}", path.display())),
        }
    }

    pub fn latest(&self) -> PathBuf {
        self.root.join("checkpoint-latest")
    }

    pub fn checkpoint(&self, epoch: usize) -> PathBuf {
        self.root.join(format!("checkpoint-{epoch:04}"))
    }

    /// The checkpoint `checkpoint-latest` points at. The pointer is a file anyone can edit, and
    /// its name decides what is deleted, so only a name of [`Self::checkpoint`]'s form is
    /// followed; when it is damaged, the newest complete checkpoint directory is used instead.
    pub fn latest_checkpoint(&self) -> Option<PathBuf> {
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
    pub fn advance_latest(&self, dir: &Path) -> Result<()> {
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

    /// The run's tasks as trained (a regression's normalisation included), written when the
    /// run starts: a CSV data set's normalisation comes from its data.
    fn tasks_file(&self) -> PathBuf {
        self.root.join("tasks.json")
    }

    pub fn write_tasks(&self, tasks: &[TaskSpec]) -> Result<()> {
        write_atomic(&self.tasks_file(), serde_json::to_string_pretty(tasks)?.as_bytes())
    }

    /// The tasks the run trained; a run of an older version, which wrote none, trained its
    /// built-in data set's.
    pub fn tasks(&self, config: &TrainConfig) -> Result<Vec<TaskSpec>> {
        match fs::read(self.tasks_file()) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes)?),
            Err(_) => match config.source()? {
                Source::BuiltIn(id) => config.tasks(&id.tasks()),
                Source::Csv { .. } | Source::Together(_) => {
                    anyhow::bail!("{} is missing", self.tasks_file().display())
                }
            },
        }
    }

    /// A model of the run from one of its weight files (`best.bpk`, `last.bpk`).
    pub fn load_model(&self, config: &TrainConfig, file: &str, device: &Device) -> Result<TrainingModel> {
        load_module(config.model(&self.tasks(config)?, device), &self.root.join(file))
    }
}

/// `text` as a checkpoint directory's name (`checkpoint-` and digits), or `None`.
fn checkpoint_name(text: &str) -> Option<&str> {
    let name = text.trim();
    let digits = name.strip_prefix("checkpoint-")?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(name)
}

pub fn record_bytes<M: Module>(module: M) -> Result<Vec<u8>> {
    Ok(module.into_record().into_bytes().map_err(|e| anyhow::anyhow!("{e}"))?.to_vec())
}

pub fn load_module<M: Module>(module: M, path: &Path) -> Result<M> {
    let record = ModuleRecord::load(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    module.try_load_record(record).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Write a complete checkpoint of `session` in its own directory, then point
/// `checkpoint-latest` at it: a kill at any moment leaves the previous checkpoint intact.
pub fn save_checkpoint(run: &RunDir, session: &Session) -> Result<()> {
    let dir = run.checkpoint(session.state.epoch);
    fs::create_dir_all(&dir)?;
    write_atomic(&dir.join("model.bpk"), &record_bytes(session.model.clone())?)?;
    let optim = session.optim.to_record().into_bytes().map_err(|e| anyhow::anyhow!("{e}"))?;
    write_atomic(&dir.join("optim.bpk"), &optim)?;
    for (task, snapshot) in session.snapshots.iter().enumerate() {
        if let Some(model) = snapshot {
            write_atomic(&dir.join(format!("best-task{task}.bpk")), &record_bytes(model.clone())?)?;
        }
    }
    write_atomic(&dir.join("state.json"), serde_json::to_string(&session.state)?.as_bytes())?;
    run.advance_latest(&dir)
}

/// Figures are written in full (the shortest text that reads back to the same `f64`): runs on
/// two machines, or in the browser and natively, part in the last bits, and comparing them needs
/// those bits.
pub fn write_metrics(run: &RunDir, rows: &[MetricRow]) -> Result<()> {
    let mut csv = String::from("epoch,task,train_loss,val_loss,val_metric,loss_weight,lr,event\n");
    for r in rows {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{:e},{}\n",
            r.epoch, r.task, r.train_loss, r.val_loss, r.val_metric, r.loss_weight, r.lr, r.event
        ));
    }
    write_atomic(&run.metrics(), csv.as_bytes())
}
