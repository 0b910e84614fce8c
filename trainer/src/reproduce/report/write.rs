//! Writing the report: REPORT.md section by section, and `report.json` with every
//! configuration's figures.

use std::fs;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::index::{Index, Stat};
use super::sections::{
    ablation_sections, beyond_section, bias_section, claims_section, data_section, group_sections, intro, plot_section,
    runs_section, single_task_sections,
};
use crate::files::write_atomic;
use crate::groups::{Confusion, GroupTable};
use crate::reproduce::experiments::Experiment;
use crate::reproduce::sweep::{Sweep, mean_tables};

pub fn write(sweep: &Sweep, runs_dir: &Path, out: &Path) -> Result<()> {
    fs::create_dir_all(out.join("plots"))?;
    let index = Index { sweep };
    let mut md = String::new();
    intro(&mut md, sweep);
    data_section(&mut md, sweep);
    single_task_sections(&mut md, &index);
    ablation_sections(&mut md, &index);
    let gaps = bias_section(&mut md, &index);
    group_sections(&mut md, &index);
    plot_section(&mut md, sweep, runs_dir, out)?;
    claims_section(&mut md, &index, &gaps);
    beyond_section(&mut md, &index);
    runs_section(&mut md, sweep);
    write_atomic(&out.join("REPORT.md"), md.as_bytes())?;
    write_json(sweep, runs_dir, out)
}

/// What `report.json` holds per experiment (no per-face predictions).
#[derive(Serialize)]
pub(super) struct ExperimentSummary<'a> {
    experiment: &'a Experiment,
    seeds: Vec<u64>,
    metrics: Vec<(String, Stat)>,
    per_seed: Vec<Vec<(String, f64)>>,
    epochs: Vec<usize>,
    seconds: Vec<f64>,
    groups: Vec<GroupTable>,
    confusions: Vec<Confusion>,
    /// Loss weight per task and epoch of the first seed (the app's plot).
    loss_weights: Vec<(String, Vec<f64>)>,
}

pub(super) fn loss_weights(runs_dir: &Path, e: &Experiment, seed: u64) -> Vec<(String, Vec<f64>)> {
    let rows = crate::train::read_metrics(&e.run_dir(runs_dir, seed).join("metrics.csv")).unwrap_or_default();
    let mut by_task: Vec<(String, Vec<f64>)> = Vec::new();
    for row in rows {
        match by_task.iter_mut().find(|(t, _)| *t == row.task) {
            Some((_, w)) => w.push(row.loss_weight),
            None => by_task.push((row.task, vec![row.loss_weight])),
        }
    }
    by_task
}

/// `report.json`: every experiment's figures (no per-face predictions).
pub(super) fn write_json(sweep: &Sweep, runs_dir: &Path, out: &Path) -> Result<()> {
    let summaries: Vec<ExperimentSummary> = sweep
        .runs
        .iter()
        .map(|(e, runs)| {
            let confusions = runs.first().map(|r| r.groups().confusions.clone()).unwrap_or_default();
            ExperimentSummary {
                experiment: e,
                seeds: runs.iter().map(|r| r.seed).collect(),
                metrics: e.data.tasks().iter().filter_map(|t| Stat::of(runs, t).map(|s| (t.name.clone(), s))).collect(),
                per_seed: runs
                    .iter()
                    .map(|r| r.tasks.iter().filter_map(|t| r.metric(t).map(|m| (t.name.clone(), m))).collect())
                    .collect(),
                epochs: runs.iter().map(|r| r.result.epochs).collect(),
                seconds: runs.iter().map(|r| r.result.seconds).collect(),
                groups: mean_tables(runs),
                confusions,
                loss_weights: runs.first().map(|r| loss_weights(runs_dir, e, r.seed)).unwrap_or_default(),
            }
        })
        .collect();
    let json = serde_json::json!({
        "hardware": sweep.hardware,
        "backend": sweep.backend,
        "wall_seconds": sweep.wall_seconds(),
        "seeds": sweep.seeds,
        "counts": sweep.counts,
        "experiments": summaries,
    });
    write_atomic(&out.join("report.json"), serde_json::to_string_pretty(&json)?.as_bytes())?;
    Ok(())
}
