//! The sweep looked up by data set, backbone and configuration, and each task's figure as
//! mean and spread over the seeds, in the unit people read.

use facemtl::backbone::BackboneKind;
use facemtl::mtl::TaskSpec;
use serde::Serialize;

use crate::data::DataSetId;
use crate::reproduce::experiments::Experiment;
use crate::reproduce::sweep::{Finished, Sweep, mean_std};

/// A task's figure in the unit people read: accuracy in %, MAE in its own unit.
pub(super) fn scale(task: &TaskSpec, value: f64) -> f64 {
    if task.is_regression() { value } else { 100.0 * value }
}

pub(super) fn header(task: &TaskSpec) -> String {
    match (task.is_regression(), task.name.as_str()) {
        (true, "age") => "age MAE (years)".into(),
        (true, name) => format!("{name} MAE"),
        (false, name) => format!("{name} acc. (%)"),
    }
}

/// Mean and standard deviation of one task over an experiment's seeds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Stat {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

impl Stat {
    pub(super) fn of(runs: &[Finished], task: &TaskSpec) -> Option<Stat> {
        let values: Vec<f64> = runs.iter().filter_map(|r| r.metric(task)).map(|v| scale(task, v)).collect();
        Stat::of_values(&values)
    }

    /// Mean and standard deviation of `values`; none for no values.
    pub(super) fn of_values(values: &[f64]) -> Option<Stat> {
        if values.is_empty() {
            return None;
        }
        let (mean, std) = mean_std(values);
        Some(Stat { mean, std, n: values.len() })
    }

    pub(super) fn cell(stat: Option<Stat>) -> String {
        stat.map_or("—".into(), |s| format!("{:.2} ± {:.2}", s.mean, s.std))
    }
}

/// The sweep, looked up by data set, backbone and experiment name.
pub(super) struct Index<'a> {
    pub(super) sweep: &'a Sweep,
}

impl<'a> Index<'a> {
    pub(super) fn runs(
        &self,
        data: DataSetId,
        backbone: BackboneKind,
        name: &str,
    ) -> Option<&'a (Experiment, Vec<Finished>)> {
        self.sweep.runs.iter().find(|(e, _)| e.data == data && e.backbone == backbone && e.name == name)
    }

    pub(super) fn stat(&self, data: DataSetId, backbone: BackboneKind, name: &str, task: &TaskSpec) -> Option<Stat> {
        self.runs(data, backbone, name).and_then(|(_, runs)| Stat::of(runs, task))
    }

    /// A single-task row takes each task from that task's own runs.
    pub(super) fn row_stat(&self, data: DataSetId, backbone: BackboneKind, row: &str, task: &TaskSpec) -> Option<Stat> {
        match row {
            "baseline" | "single-net" => self.stat(data, backbone, &format!("{row}-{}", task.name), task),
            name => self.stat(data, backbone, name, task),
        }
    }

    pub(super) fn backbones(&self) -> Vec<BackboneKind> {
        let mut list: Vec<BackboneKind> = Vec::new();
        for (e, _) in &self.sweep.runs {
            if !list.contains(&e.backbone) {
                list.push(e.backbone);
            }
        }
        list
    }
}
