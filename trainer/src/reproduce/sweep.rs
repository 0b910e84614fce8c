//! What a sweep measured: each configuration's finished runs, the face counts, the time it took,
//! and the averages over seeds that the report reads.

use std::collections::BTreeMap;

use facemtl::mtl::TaskSpec;
use serde::{Deserialize, Serialize};

use super::experiments::Experiment;
use crate::cross::Across;
use crate::data::DataSetId;
use crate::faces::looks::Look;
use crate::groups::{GroupFigures, GroupTable};
use crate::train::RunResult;

/// A finished run as the report reads it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finished {
    pub seed: u64,
    pub tasks: Vec<TaskSpec>,
    pub result: RunResult,
    /// The run's model on the other data set's validation faces (the last section's runs).
    #[serde(default)]
    pub across: Vec<Seen>,
}

/// A run's model on the other data set's validation faces, seen one way (`reproduce::across`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    pub look: Look,
    pub across: Across,
}

/// Counts of faces per split of one data set (after face detection).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SplitCounts {
    pub train: usize,
    pub val: usize,
    pub test: usize,
    pub no_face: usize,
}

/// What `reproduce` measured, for the report and the app.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Sweep {
    pub runs: Vec<(Experiment, Vec<Finished>)>,
    pub counts: BTreeMap<DataSetId, SplitCounts>,
    /// Wall time of every invocation so far, this one last (`invocations.json` in the runs
    /// directory), so that a resumed sweep still reports what the whole took.
    pub invocations: Vec<f64>,
    pub hardware: String,
    pub backend: String,
    pub seeds: u64,
}

impl Sweep {
    /// Wall time of this invocation.
    pub fn wall_seconds(&self) -> f64 {
        self.invocations.last().copied().unwrap_or_default()
    }
}

/// Mean and sample standard deviation.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 { values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, var.sqrt())
}

impl Finished {
    /// The test metric of the task named as `task` (accuracy, or MAE in years, whatever form its
    /// head takes), if this run has the task.
    pub fn metric(&self, task: &TaskSpec) -> Option<f64> {
        self.tasks.iter().position(|t| t.name == task.name).map(|i| self.result.test.metrics[i])
    }

    pub fn groups(&self) -> &GroupFigures {
        &self.result.test_groups
    }
}

/// The seeds' group tables averaged group by group (the split, hence the groups, is shared).
pub fn mean_tables(runs: &[Finished]) -> Vec<GroupTable> {
    let Some(first) = runs.first() else { return Vec::new() };
    first
        .groups()
        .tables
        .iter()
        .enumerate()
        .map(|(t, table)| {
            let mut table = table.clone();
            for (g, group) in table.groups.iter_mut().enumerate() {
                let values: Vec<f64> =
                    runs.iter().filter_map(|r| r.groups().tables.get(t)?.groups.get(g).map(|x| x.value)).collect();
                group.value = mean_std(&values).0;
            }
            table
        })
        .collect()
}
