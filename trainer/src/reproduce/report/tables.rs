//! The report's tables: our figures beside the thesis's, and the per-group tables of each
//! configuration.

use std::fmt::Write as _;

use facemtl::backbone::BackboneKind;
use facemtl::mtl::{Metric, TaskSpec};

use super::index::{Index, Stat, header};
use crate::cross::{Across, CrossFigure};
use crate::data::DataSetId;
use crate::faces::looks::Look;
use crate::groups::{Confusion, GroupTable};
use crate::reproduce::across::other;
use crate::reproduce::experiments::Experiment;
use crate::reproduce::sweep::{Finished, mean_tables};
use crate::reproduce::thesis;

/// Who the thesis's rows are: its headline backbone, fine-tuned, on `data`'s own test set.
pub(super) fn thesis_source(data: DataSetId) -> String {
    let test = if data == DataSetId::Celeba { ", official test set" } else { "" };
    format!("thesis ({}, fine-tuned{test})", thesis::HEADLINE)
}

pub(super) fn thesis_cell(value: Option<f64>) -> String {
    value.map_or("—".into(), |v| format!("{v:.2}"))
}

/// A comparison table: rows of (label, experiment or row name) per backbone, one column per task,
/// then the thesis's figures of the rows it ran.
pub(super) fn comparison(out: &mut String, index: &Index, data: DataSetId, rows: &[(&str, &str)]) {
    let tasks = data.tasks();
    let _ = write!(out, "| backbone | model |");
    for t in &tasks {
        let _ = write!(out, " {} |", header(t));
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "|---|---|{}", "---|".repeat(tasks.len()));
    for backbone in index.backbones() {
        for (label, row) in rows {
            if tasks.iter().all(|t| index.row_stat(data, backbone, row, t).is_none()) {
                continue;
            }
            let _ = write!(out, "| {backbone} | {label} |");
            for t in &tasks {
                let _ = write!(out, " {} |", Stat::cell(index.row_stat(data, backbone, row, t)));
            }
            let _ = writeln!(out);
        }
    }
    for (label, row) in rows {
        if tasks.iter().all(|t| thesis::figure(data, row, &t.name).is_none()) {
            continue;
        }
        let _ = write!(out, "| {} | {label} |", thesis_source(data));
        for t in &tasks {
            let _ = write!(out, " {} |", thesis_cell(thesis::figure(data, row, &t.name)));
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out);
}

/// The rows' runs on the other data set's validation faces (`reproduce::across`): gender as
/// photos are and in black and white, the drop between them, and Young against age (or age
/// against Young), each as mean and spread over the seeds that were read.
pub(super) fn across_table(out: &mut String, index: &Index, rows: &[(&str, &str)]) {
    let _ = writeln!(
        out,
        "| trained on | backbone | model | read on | gender (%) | gender, black and white (%) | drop (points) | \
         young against age (%) |\n|---|---|---|---|---|---|---|---|"
    );
    for data in DataSetId::BUILT_IN {
        let Some(read_on) = other(data) else { continue };
        for backbone in index.backbones() {
            for (label, row) in rows {
                let Some((_, runs)) = index.runs(data, backbone, row) else { continue };
                let gender = |look| seed_values(runs, |r| across_value(r, look, |a| a.figure("gender", "gender")));
                let (clean, bw) = (gender(Look::Clean), gender(Look::Bw));
                if clean.is_empty() {
                    continue;
                }
                let drop = seed_values(runs, |r| {
                    let figure = |look| across_value(r, look, |a| a.figure("gender", "gender"));
                    Some(figure(Look::Clean)? - figure(Look::Bw)?)
                });
                let young = seed_values(runs, |r| across_value(r, Look::Clean, Across::young_against_age));
                let cells = [clean, bw, drop, young].map(|v| spread_cell(&v));
                let _ = writeln!(
                    out,
                    "| {} | {backbone} | {label} | {}, validation faces | {} |",
                    data.title(),
                    read_on.title(),
                    cells.join(" | ")
                );
            }
        }
    }
    let _ = writeln!(out);
}

/// `run`'s figure that `pick` takes from its reading of the other data set seen with `look`, in
/// percent.
fn across_value(run: &Finished, look: Look, pick: impl Fn(&Across) -> Option<&CrossFigure>) -> Option<f64> {
    let seen = run.across.iter().find(|s| s.look == look)?;
    pick(&seen.across).map(|f| 100.0 * f.value)
}

fn seed_values(runs: &[Finished], value: impl Fn(&Finished) -> Option<f64>) -> Vec<f64> {
    runs.iter().filter_map(value).collect()
}

/// Mean ± spread of `values` with how many seeds they come from; a dash for none.
fn spread_cell(values: &[f64]) -> String {
    let stat = Stat::of_values(values);
    stat.map_or("—".into(), |s| format!("{} ({})", Stat::cell(stat), s.n))
}

/// Tables 4.6-4.15 as the thesis published them: every backbone it fine-tuned.
pub(super) fn thesis_backbones(out: &mut String, data: DataSetId) {
    let tasks = data.tasks();
    let _ = writeln!(out, "The thesis's own table, every backbone it fine-tuned ({}):\n", data.title());
    let _ = write!(out, "| thesis backbone | model |");
    for t in &tasks {
        let _ = write!(out, " {} |", header(t));
    }
    let _ = writeln!(out, "\n|---|---|{}", "---|".repeat(tasks.len()));
    let models = ["single-task baseline", "single-task network", "MTL"];
    for (backbone, rows) in thesis::backbones(data) {
        for (model, figures) in models.iter().zip(rows) {
            let _ = write!(out, "| {backbone} | {model} |");
            for t in &tasks {
                let _ = write!(out, " {} |", thesis_cell(thesis::value(figures, &t.name)));
            }
            let _ = writeln!(out);
        }
    }
    let _ = writeln!(out);
}

/// One data set and backbone's group tables, averaged over seeds, one row per configuration;
/// then, for UTKFace, each race's recall.
pub(super) fn group_section(out: &mut String, index: &Index, data: DataSetId, backbone: BackboneKind) {
    let experiments: Vec<&(Experiment, Vec<Finished>)> =
        index.sweep.runs.iter().filter(|(e, r)| e.data == data && e.backbone == backbone && !r.is_empty()).collect();
    let Some((_, first_runs)) = experiments.first() else { return };
    mean_group_tables(out, &experiments, first_runs, data, backbone);
    if data != DataSetId::Celeba {
        race_recall_table(out, &experiments, data, backbone);
    }
}

/// Every group table any configuration has, its groups' figures averaged over the seeds.
fn mean_group_tables(
    out: &mut String,
    experiments: &[&(Experiment, Vec<Finished>)],
    first_runs: &[Finished],
    data: DataSetId,
    backbone: BackboneKind,
) {
    let titles: Vec<String> = mean_tables(first_runs).iter().map(|t| t.title.clone()).collect();
    let mut all_titles = titles.clone();
    for (_, runs) in experiments {
        for t in mean_tables(runs) {
            if !all_titles.contains(&t.title) {
                all_titles.push(t.title);
            }
        }
    }
    for title in all_titles {
        let tables: Vec<(&Experiment, GroupTable)> = experiments
            .iter()
            .filter_map(|(e, runs)| mean_tables(runs).into_iter().find(|t| t.title == title).map(|t| (e, t)))
            .collect();
        let Some((_, reference)) = tables.first() else { continue };
        let unit = if reference.figure == Metric::Mae { "years" } else { "%" };
        let _ = writeln!(out, "**{title}** ({}, {backbone}; {unit}; faces per group in brackets)\n", data.title());
        let _ = write!(out, "| model |");
        for g in &reference.groups {
            let _ = write!(out, " {} ({}) |", g.label, g.count);
        }
        let _ = writeln!(out, " worst |\n|---|{}---|", "---|".repeat(reference.groups.len()));
        for (e, table) in &tables {
            let _ = write!(out, "| {} |", e.label);
            let show =
                |v: f64| if table.figure == Metric::Mae { format!("{v:.2}") } else { format!("{:.1}", 100.0 * v) };
            for g in &table.groups {
                let _ = write!(out, " {} |", show(g.value));
            }
            let worst = table.worst().map_or("—".into(), |w| format!("{} ({})", w.label, show(w.value)));
            let _ = writeln!(out, " {worst} |");
        }
        let _ = writeln!(out);
    }
}

/// Per-class recall of race from the confusion matrices (summed over seeds), worst class named.
fn race_recall_table(
    out: &mut String,
    experiments: &[&(Experiment, Vec<Finished>)],
    data: DataSetId,
    backbone: BackboneKind,
) {
    let recall = |runs: &[Finished], task: &str| -> Option<Confusion> {
        let mut sum: Option<Confusion> = None;
        for r in runs {
            let c = r.groups().confusions.iter().find(|c| c.task == task)?;
            match &mut sum {
                None => sum = Some(c.clone()),
                Some(s) => {
                    for (row, add) in s.counts.iter_mut().zip(&c.counts) {
                        for (x, y) in row.iter_mut().zip(add) {
                            *x += y;
                        }
                    }
                }
            }
        }
        sum
    };
    let _ = writeln!(out, "**Race recall per class** ({}, {backbone}; %, from the confusion matrices)\n", data.title());
    let race = TaskSpec::race();
    let labels = race.labels();
    let _ = writeln!(out, "| model | {} | worst |\n|---|{}---|", labels.join(" | "), "---|".repeat(labels.len()));
    for (e, runs) in experiments {
        if let Some(c) = recall(runs, "race") {
            let recalls: Vec<f64> = c
                .counts
                .iter()
                .enumerate()
                .map(|(i, row)| 100.0 * row[i] as f64 / row.iter().sum::<usize>().max(1) as f64)
                .collect();
            let worst = recalls
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, v)| format!("{} ({v:.1})", labels[i]));
            let cells: Vec<String> = recalls.iter().map(|v| format!("{v:.1}")).collect();
            let _ = writeln!(out, "| {} | {} | {} |", e.label, cells.join(" | "), worst.unwrap_or_default());
        }
    }
    let _ = writeln!(out);
}
