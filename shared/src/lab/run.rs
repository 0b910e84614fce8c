//! A run of the Lab as the page's worker asks for it: a data set of the Lab file, some of its
//! tasks, and the native trainer's settings, checked and put on a device.

use burn::prelude::*;
use serde::Deserialize;

use super::file::{LabData, LabSet, LabSplit};
use crate::compact;
use crate::mtl::{Label, MtlHead, TaskSpec};
use crate::training::{Diverged, EpochReport, FeatureExamples, RunSettings, Session, Target};

/// Where the Lab's controls start: the thesis's settings, except a learning rate (3e-4) that
/// lets a class see a whole run in seconds, and at most 30 epochs. Chosen on the Lab's
/// validation faces: the three tasks then converge at clearly different epochs (docs/teaching.md).
pub fn demo_settings() -> RunSettings {
    RunSettings { lr: 3e-4, patience: 5, max_epochs: 30, ..Default::default() }
}

/// What a run trains on and with.
#[derive(Debug, Clone, Deserialize)]
pub struct RunRequest {
    /// The Lab set's name (`utkface-all-ages`, `celeba`).
    pub set: String,
    /// The tasks trained, by name; the others are left out (a single-task network with one).
    pub tasks: Vec<String>,
    pub settings: RunSettings,
}

/// A run in progress: its session and its data on the Lab's device.
pub struct LabRun {
    pub set: String,
    pub session: Session,
    pub train: FeatureExamples,
    pub train_targets: Vec<Target>,
    pub val: FeatureExamples,
    pub test: FeatureExamples,
    /// The test faces on the CPU, where a model file's network is measured.
    pub test_on_host: FeatureExamples,
    /// The set's tasks (whose order the labels follow) and the test faces' labels, for the
    /// group tables.
    pub set_tasks: Vec<TaskSpec>,
    pub test_labels: Vec<Vec<Label>>,
    /// Training faces.
    pub faces: usize,
    /// Where the run's losses stopped being numbers, if they did: its network is then of no use.
    pub diverged: Option<Diverged>,
}

/// `split`'s faces as examples of `tasks`, each read from its column of the set's labels.
fn examples(split: &LabSplit, dim: usize, tasks: &[TaskSpec], columns: &[usize], device: &Device) -> FeatureExamples {
    FeatureExamples::new(split.features.clone(), dim, &split.labels, tasks, columns, device)
}

impl LabRun {
    /// The run `request` asks for on `data`, on `device`; refused when its settings are not
    /// ones a run can train with, its set is not in the file, or it names none of its tasks.
    pub fn new(data: &LabData, request: RunRequest, device: &Device) -> Result<Self, String> {
        request.settings.check()?;
        let set: &LabSet = data.set(&request.set).ok_or_else(|| format!("the Lab has no data set {}", request.set))?;
        let (columns, tasks): (Vec<usize>, Vec<TaskSpec>) = set
            .info
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| request.tasks.contains(&t.name))
            .map(|(c, t)| (c, t.clone()))
            .unzip();
        if columns.is_empty() {
            return Err("choose at least one task".into());
        }
        let dim = data.header.dim;
        let [train, val, test] = [0, 1, 2].map(|i| examples(&set.splits[i], dim, &tasks, &columns, device));
        let test_on_host = examples(&set.splits[2], dim, &tasks, &columns, &Device::flex());
        let autodiff = device.clone().autodiff();
        let model = request.settings.model(dim, &tasks, &autodiff);
        let train_targets = train.targets.iter().map(|t| t.to_device(&autodiff)).collect();
        Ok(LabRun {
            set: request.set,
            session: Session::new(request.settings, tasks, model, &autodiff),
            faces: train.truth.first().map_or(0, Vec::len),
            train,
            train_targets,
            val,
            test,
            test_on_host,
            set_tasks: set.info.tasks.clone(),
            test_labels: set.splits[2].labels.clone(),
            diverged: None,
        })
    }

    /// One epoch of the run; a divergence is kept, and the run has no network to give after it.
    pub async fn epoch(&mut self) -> Result<EpochReport, Diverged> {
        if let Some(diverged) = &self.diverged {
            return Err(diverged.clone());
        }
        let report = self.session.epoch(&self.train, &self.train_targets, &self.val).await;
        if let Err(diverged) = &report {
            self.diverged = Some(diverged.clone());
        }
        report
    }

    /// Ok when the run's network can be measured or saved: it has not diverged.
    pub fn usable(&self) -> Result<(), String> {
        match &self.diverged {
            Some(diverged) => Err(format!("{diverged}: this run has no usable network; train again")),
            None => Ok(()),
        }
    }

    /// The trained network's head on the CPU, rounded as its model file stores it.
    pub async fn head(&self) -> Result<MtlHead, String> {
        Ok(compact::half(compact::to_host(self.session.model.valid().head).await?))
    }
}
