//! `results/REPORT.md`, `results/report.json` and `results/plots/` from a finished sweep: the
//! thesis's tables side by side with ours, per-group figures, plots and a verdict per claim.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::Result;
use facemtl::backbone::BackboneKind;
use facemtl::mtl::TaskSpec;
use serde::Serialize;

use crate::data::DataSetId;
use crate::files::write_atomic;
use crate::groups::{Confusion, GroupTable};
use crate::reproduce::{Experiment, Finished, Sweep, mean_std, mean_tables};
use crate::thesis;
use crate::train::config::Recipe;

/// A task's figure in the unit people read: accuracy in %, MAE in its own unit.
fn scale(task: &TaskSpec, value: f64) -> f64 {
    if task.is_regression() { value } else { 100.0 * value }
}

fn header(task: &TaskSpec) -> String {
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
    fn of(runs: &[Finished], task: &TaskSpec) -> Option<Stat> {
        let values: Vec<f64> = runs.iter().filter_map(|r| r.metric(task)).map(|v| scale(task, v)).collect();
        if values.is_empty() {
            return None;
        }
        let (mean, std) = mean_std(&values);
        Some(Stat { mean, std, n: values.len() })
    }

    fn cell(stat: Option<Stat>) -> String {
        stat.map_or("—".into(), |s| format!("{:.2} ± {:.2}", s.mean, s.std))
    }
}

/// The sweep, looked up by data set, backbone and experiment name.
struct Index<'a> {
    sweep: &'a Sweep,
}

impl<'a> Index<'a> {
    fn runs(&self, data: DataSetId, backbone: BackboneKind, name: &str) -> Option<&'a (Experiment, Vec<Finished>)> {
        self.sweep.runs.iter().find(|(e, _)| e.data == data && e.backbone == backbone && e.name == name)
    }

    fn stat(&self, data: DataSetId, backbone: BackboneKind, name: &str, task: &TaskSpec) -> Option<Stat> {
        self.runs(data, backbone, name).and_then(|(_, runs)| Stat::of(runs, task))
    }

    /// A single-task row takes each task from that task's own runs.
    fn row_stat(&self, data: DataSetId, backbone: BackboneKind, row: &str, task: &TaskSpec) -> Option<Stat> {
        match row {
            "baseline" | "single-net" => self.stat(data, backbone, &format!("{row}-{}", task.name), task),
            name => self.stat(data, backbone, name, task),
        }
    }

    fn backbones(&self) -> Vec<BackboneKind> {
        let mut list: Vec<BackboneKind> = Vec::new();
        for (e, _) in &self.sweep.runs {
            if !list.contains(&e.backbone) {
                list.push(e.backbone);
            }
        }
        list
    }
}

/// Who the thesis's rows are: its headline backbone, fine-tuned, on `data`'s own test set.
fn thesis_source(data: DataSetId) -> String {
    let test = if data == DataSetId::Celeba { ", official test set" } else { "" };
    format!("thesis ({}, fine-tuned{test})", thesis::HEADLINE)
}

fn thesis_cell(value: Option<f64>) -> String {
    value.map_or("—".into(), |v| format!("{v:.2}"))
}

/// A comparison table: rows of (label, experiment or row name) per backbone, one column per task,
/// then the thesis's figures of the rows it ran.
fn comparison(out: &mut String, index: &Index, data: DataSetId, rows: &[(&str, &str)]) {
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

/// Tables 4.6-4.15 as the thesis published them: every backbone it fine-tuned.
fn thesis_backbones(out: &mut String, data: DataSetId) {
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

/// better / tie / worse of `a` against `b` for `task`: a difference inside the larger of the
/// two standard deviations is a tie.
fn compare(task: &TaskSpec, a: Stat, b: Stat) -> std::cmp::Ordering {
    let noise = a.std.max(b.std);
    let gain = if task.is_regression() { b.mean - a.mean } else { a.mean - b.mean };
    if gain > noise {
        std::cmp::Ordering::Greater
    } else if gain < -noise {
        std::cmp::Ordering::Less
    } else {
        std::cmp::Ordering::Equal
    }
}

/// A claim "`better` beats `worse`" over every data set, backbone and task: the verdict and the
/// numbers behind it.
fn verdict(index: &Index, better: &str, worse: &str, datasets: &[DataSetId]) -> (String, Vec<String>) {
    let (mut wins, mut ties, mut losses) = (0, 0, 0);
    let mut lines = Vec::new();
    for &data in datasets {
        for backbone in index.backbones() {
            for task in &data.tasks() {
                let (Some(a), Some(b)) =
                    (index.row_stat(data, backbone, better, task), index.row_stat(data, backbone, worse, task))
                else {
                    continue;
                };
                let word = match compare(task, a, b) {
                    std::cmp::Ordering::Greater => {
                        wins += 1;
                        "better"
                    }
                    std::cmp::Ordering::Less => {
                        losses += 1;
                        "worse"
                    }
                    std::cmp::Ordering::Equal => {
                        ties += 1;
                        "within noise"
                    }
                };
                lines.push(format!(
                    "{} {} {}: {:.2} ± {:.2} vs {:.2} ± {:.2} ({word})",
                    data.title(),
                    backbone,
                    header(task),
                    a.mean,
                    a.std,
                    b.mean,
                    b.std
                ));
            }
        }
    }
    let total = wins + ties + losses;
    let word = verdict_word(wins, ties, losses);
    (format!("**{word}**: better in {wins}, within noise in {ties}, worse in {losses} of {total} comparisons"), lines)
}

/// A claim is confirmed when it never loses and wins at least half its comparisons, not
/// confirmed when it never wins, and mixed otherwise.
fn verdict_word(wins: usize, ties: usize, losses: usize) -> &'static str {
    let total = wins + ties + losses;
    if total == 0 {
        "not tested"
    } else if losses == 0 && wins * 2 >= total {
        "confirmed"
    } else if wins == 0 {
        "not confirmed"
    } else {
        "mixed"
    }
}

fn group_section(out: &mut String, index: &Index, data: DataSetId, backbone: BackboneKind) {
    let experiments: Vec<&(Experiment, Vec<Finished>)> =
        index.sweep.runs.iter().filter(|(e, r)| e.data == data && e.backbone == backbone && !r.is_empty()).collect();
    let Some((_, first_runs)) = experiments.first() else { return };
    let titles: Vec<String> = mean_tables(first_runs).iter().map(|t| t.title.clone()).collect();
    let mut all_titles = titles.clone();
    for (_, runs) in &experiments {
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
        let unit = if reference.figure == "mae" { "years" } else { "%" };
        let _ = writeln!(out, "**{title}** ({}, {backbone}; {unit}; faces per group in brackets)\n", data.title());
        let _ = write!(out, "| model |");
        for g in &reference.groups {
            let _ = write!(out, " {} ({}) |", g.label, g.count);
        }
        let _ = writeln!(out, " worst |\n|---|{}---|", "---|".repeat(reference.groups.len()));
        for (e, table) in &tables {
            let _ = write!(out, "| {} |", e.label);
            let show = |v: f64| if table.figure == "mae" { format!("{v:.2}") } else { format!("{:.1}", 100.0 * v) };
            for g in &table.groups {
                let _ = write!(out, " {} |", show(g.value));
            }
            let worst = table.worst().map_or("—".into(), |w| format!("{} ({})", w.label, show(w.value)));
            let _ = writeln!(out, " {worst} |");
        }
        let _ = writeln!(out);
    }
    // Race: per-class recall from the confusion matrix (summed over seeds), worst class named.
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
    if data != DataSetId::Celeba {
        let _ =
            writeln!(out, "**Race recall per class** ({}, {backbone}; %, from the confusion matrices)\n", data.title());
        let race = TaskSpec::race();
        let labels = race.labels();
        let _ = writeln!(out, "| model | {} | worst |\n|---|{}---|", labels.join(" | "), "---|".repeat(labels.len()));
        for (e, runs) in &experiments {
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
}

/// What `report.json` holds per experiment (no per-face predictions).
#[derive(Serialize)]
struct ExperimentSummary<'a> {
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

fn loss_weights(runs_dir: &Path, e: &Experiment, seed: u64) -> Vec<(String, Vec<f64>)> {
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

/// What the sweep was: runs, wall time, hardware, method, seeds.
fn intro(md: &mut String, sweep: &Sweep) {
    let runs: usize = sweep.runs.iter().map(|(_, r)| r.len()).sum();
    let train_seconds: f64 = sweep.runs.iter().flat_map(|(_, r)| r.iter().map(|f| f.result.seconds)).sum();
    let _ = writeln!(md, "# The thesis's experiments, reproduced\n");
    let _ = writeln!(
        md,
        "Written by `facemtl reproduce` (`bash scripts/reproduce.sh`). {runs} runs: {} configurations x {} seeds. \
         Wall time of the sweep: {:.1} min over {} invocation(s) of the command (a stopped one counts up to \
         its last finished run; finished runs are read back, not retrained; the last invocation took {:.1} \
         min); runs train two side by side (one at a time where their activations would not fit in memory \
         twice), and the runs' own training time adds up to {:.1} min.\n",
        sweep.runs.len(),
        sweep.seeds,
        sweep.invocations.iter().sum::<f64>() / 60.0,
        sweep.invocations.len(),
        sweep.wall_seconds() / 60.0,
        train_seconds / 60.0
    );
    let _ = writeln!(md, "- Hardware: {}; backend: {}.", sweep.hardware, sweep.backend);
    let _ = writeln!(
        md,
        "- Method: backbone features extracted once per backbone and cached (the backbone frozen); the heads trained with \
         the thesis's settings: Adam, lr 3e-5 divided by 10 after 3 epochs without total validation improvement, weight \
         decay 1e-5, batch 64, Early Freeze patience 5, at most 100 epochs, shared layer 512, heads 128 with dropout 0.5, \
         lambda 0.1 unless a row says otherwise.\n- Seeds: each configuration runs with seeds 0 to {} (initialisation, \
         dropout, batch order); the data split is the same for all (split seed 42). Figures are mean ± standard \
         deviation over the seeds, on the test split.",
        sweep.seeds - 1
    );
    let _ = writeln!(
        md,
        "- Thesis figures: from its tables (`../shared/docs/thesis-figures.md`), those of its headline backbone, {}, \
         unless a row names another; a configuration the thesis did not run has no thesis row, and a figure it did \
         not publish shows as —. Its backbones were fine-tuned; ours are frozen here (section 11's recipe tunes \
         faceres's last blocks), so the comparison is of methods on top of a backbone, not of backbones.\n",
        thesis::HEADLINE
    );
}

/// The faces of each data set per split.
fn data_section(md: &mut String, sweep: &Sweep) {
    let _ = writeln!(
        md,
        "## Data\n\n| data set | train | validation | test | images without a face (left out) |\n|---|---|---|---|---|"
    );
    for (data, c) in &sweep.counts {
        let _ = writeln!(md, "| {} | {} | {} | {} | {} |", data.title(), c.train, c.val, c.test, c.no_face);
    }
    let _ = writeln!(
        md,
        "\n- UTKFace CORAL: ages 21-60, `utk_train.csv` split 80:20 into train/validation, `utk_test.csv` as test; the age \
         target is (age - 21) / 40.\n- UTKFace all ages: all 23,707 faces (ages 1-116), split 80/10/10.\n- {}\n",
        crate::data::celeba::CAVEAT
    );
}

/// Sections 1-2: single task against multi-task, beside the thesis.
fn single_task_sections(md: &mut String, index: &Index) {
    let _ = writeln!(md, "## 1. Single task vs multi-task, UTKFace CORAL (Tables 4.6-4.10)\n");
    let st_rows = [
        ("single-task baseline (one output layer)", "baseline"),
        ("single-task network", "single-net"),
        ("MTL (learned loss, Early Freeze)", "mtl-learned"),
    ];
    comparison(md, index, DataSetId::UtkfaceCoral, &st_rows);
    thesis_backbones(md, DataSetId::UtkfaceCoral);
    let _ = writeln!(md, "## 2. Single task vs multi-task, CelebA subset (Tables 4.11-4.15)\n");
    comparison(md, index, DataSetId::Celeba, &st_rows);
    thesis_backbones(md, DataSetId::Celeba);
}

/// Sections 3-6: the loss weightings, Early Freeze and lambda.
fn ablation_sections(md: &mut String, index: &Index) {
    let sections: [(&str, &[(&str, &str)]); 4] = [
        (
            "## 3. Average vs learned loss (Tables 5.1-5.3)",
            &[("average loss", "mtl-average"), ("learned loss (Loss Weight Layer)", "mtl-learned")],
        ),
        (
            "## 4. Early stopping vs Early Freeze (Table 5.4)",
            &[("early stopping of converged tasks", "mtl-early-stop"), ("Early Freeze", "mtl-learned")],
        ),
        (
            "## 5. Lambda of the Loss Weight Layer (Table 5.5)",
            &[
                ("lambda 0.001", "mtl-lambda-0.001"),
                ("lambda 0.01", "mtl-lambda-0.01"),
                ("lambda 0.1", "mtl-learned"),
                ("lambda 1", "mtl-lambda-1"),
            ],
        ),
        (
            "## 6. Other loss weightings",
            &[
                ("average", "mtl-average"),
                ("learned (thesis)", "mtl-learned"),
                ("uncertainty (Kendall et al. 2018)", "mtl-uncertainty"),
                ("DWA (Liu et al. 2019)", "mtl-dwa"),
            ],
        ),
    ];
    for (title, rows) in sections {
        let _ = writeln!(md, "{title}\n");
        for data in [DataSetId::UtkfaceCoral, DataSetId::Celeba] {
            let _ = writeln!(md, "{}:\n", data.title());
            comparison(md, index, data, rows);
        }
    }
}

/// Section 7: the Young/Old gap of the single-task network and of MTL; the gaps, for the
/// claims.
fn bias_section(md: &mut String, index: &Index) -> Vec<Gap> {
    let _ = writeln!(
        md,
        "## 7. The Young/Old bias (section 5.3)\n\nClass accuracy (%) on the CelebA test split; the gap is Young minus Old.\n"
    );
    let _ = writeln!(md, "| backbone | model | Old | Young | gap |\n|---|---|---|---|---|");
    let mut gaps = Vec::new();
    for backbone in index.backbones() {
        for (label, name) in [("single-task network", "single-net-young"), ("MTL", "mtl-learned")] {
            let Some((_, runs)) = index.runs(DataSetId::Celeba, backbone, name) else { continue };
            let per_class = |class: &str| -> Vec<f64> {
                runs.iter()
                    .filter_map(|r| {
                        let t = r.groups().tables.iter().find(|t| t.title.starts_with("Young/Old"))?;
                        t.groups.iter().find(|g| g.label == class).map(|g| 100.0 * g.value)
                    })
                    .collect()
            };
            let (old, young) = (mean_std(&per_class("old")), mean_std(&per_class("young")));
            let gap: Vec<f64> = per_class("young").iter().zip(per_class("old")).map(|(y, o)| y - o).collect();
            let gap = mean_std(&gap);
            gaps.push((backbone, name, gap));
            let _ = writeln!(
                md,
                "| {backbone} | {label} | {:.2} ± {:.2} | {:.2} ± {:.2} | {:.2} ± {:.2} |",
                old.0, old.1, young.0, young.1, gap.0, gap.1
            );
        }
    }
    for (label, old, young) in thesis::BIAS {
        let _ = writeln!(
            md,
            "| thesis ({}, fine-tuned, official test set) | {label} | {old:.2} | {young:.2} | {:.2} |",
            thesis::BIAS_BACKBONE,
            young - old
        );
    }
    let _ = writeln!(md);
    gaps
}

/// Section 8: every model's per-group tables.
fn group_sections(md: &mut String, index: &Index) {
    let _ = writeln!(
        md,
        "## 8. Per-group figures of every model\n\nMeans over the seeds; the worst group of each row is named.\n"
    );
    for data in [DataSetId::UtkfaceCoral, DataSetId::Celeba, DataSetId::UtkfaceAllAges] {
        for backbone in index.backbones() {
            group_section(md, index, data, backbone);
        }
    }
}

/// Section 9: the first seed's plots of the thesis's configuration, copied beside the report.
fn plot_section(md: &mut String, sweep: &Sweep, runs_dir: &Path, out: &Path) -> Result<()> {
    let _ = writeln!(
        md,
        "## 9. Plots\n\nFirst seed of the thesis's configuration (learned loss, Early Freeze) per data set and backbone.\n"
    );
    for (e, runs) in &sweep.runs {
        if e.name != "mtl-learned" || runs.is_empty() {
            continue;
        }
        let dir = e.run_dir(runs_dir, runs[0].seed).join("plots");
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        let mut files: Vec<_> =
            entries.filter_map(|f| f.ok()).map(|f| f.file_name().to_string_lossy().into_owned()).collect();
        files.sort();
        let _ = writeln!(md, "### {}, {}\n", e.data.title(), e.backbone);
        for file in files.iter().filter(|f| f.starts_with("loss") || f.starts_with("confusion")) {
            let name = format!("{}-{}-{file}", e.data, e.backbone);
            fs::copy(dir.join(file), out.join("plots").join(&name))?;
            let _ = writeln!(md, "![{name}](plots/{name})");
        }
        let _ = writeln!(md);
    }
    Ok(())
}

/// Section 10: a verdict per claim of the thesis, with the comparisons behind it.
fn claims_section(md: &mut String, index: &Index, gaps: &[Gap]) {
    let _ = writeln!(md, "## 10. The thesis's claims\n");
    let both = [DataSetId::UtkfaceCoral, DataSetId::Celeba];
    let claims = [
        ("MTL beats single-task networks", "mtl-learned", "single-net"),
        ("MTL beats the single-task baseline", "mtl-learned", "baseline"),
        ("The learned loss beats the average", "mtl-learned", "mtl-average"),
        ("Early Freeze beats early stopping", "mtl-learned", "mtl-early-stop"),
        ("lambda 0.1 beats lambda 0.001", "mtl-learned", "mtl-lambda-0.001"),
        ("lambda 0.1 beats lambda 0.01", "mtl-learned", "mtl-lambda-0.01"),
        ("lambda 0.1 beats lambda 1", "mtl-learned", "mtl-lambda-1"),
    ];
    for (claim, better, worse) in claims {
        let (word, lines) = verdict(index, better, worse, &both);
        let _ = writeln!(md, "- {claim}: {word}.");
        for line in lines {
            let _ = writeln!(md, "  - {line}");
        }
    }
    let (mut reduced, mut tested) = (0, 0);
    let mut detail = Vec::new();
    for backbone in index.backbones() {
        let gap = |name: &str| gaps.iter().find(|(b, n, _)| *b == backbone && *n == name).map(|g| g.2);
        if let (Some(single), Some(mtl)) = (gap("single-net-young"), gap("mtl-learned")) {
            tested += 1;
            let word = if single.0.abs() - mtl.0.abs() > single.1.max(mtl.1) {
                reduced += 1;
                "smaller"
            } else if mtl.0.abs() - single.0.abs() > single.1.max(mtl.1) {
                "larger"
            } else {
                "within noise"
            };
            detail.push(format!(
                "{backbone}: gap {:.2} ± {:.2} points with the single-task network, {:.2} ± {:.2} with MTL ({word})",
                single.0, single.1, mtl.0, mtl.1
            ));
        }
    }
    let word = bias_word(reduced, tested);
    let _ = writeln!(md, "- MTL reduces the Young/Old bias: **{word}** ({}).", detail.join("; "));
    let _ = writeln!(
        md,
        "\nA difference inside the larger of the two standard deviations counts as within noise. The learned loss's \
         weights move toward the task with the smallest loss (see the loss-weight plots): minimising sum w_i L_i + \
         lambda ||w||^2 under sum w_i = 1 does exactly that.\n"
    );
}

/// Section 11: our best recipe beside the thesis's settings and the thesis's own figures.
fn beyond_section(md: &mut String, index: &Index) {
    let recipe: Vec<String> =
        Recipe::Best.flags().iter().map(|(flag, value)| format!("{flag} {value}").trim().to_string()).collect();
    let _ = writeln!(
        md,
        "## 11. Beyond the thesis

Our best recipe, `--recipe best` (`{}`), each choice made on the validation splits, against \
         the thesis's settings on the same faces and the thesis's figures. The age column of the recipe \
         is its distribution head's expectation. On all ages it tunes one block \
         (`--tune-blocks 1`), the shipped model's configuration: two blocks' activations of every \
         UTKFace face would hold 9.5 GB per run.
",
        recipe.join(" ")
    );
    let rows = [("MTL, the thesis's settings", "mtl-learned"), ("our best recipe", "best")];
    for data in [DataSetId::UtkfaceCoral, DataSetId::Celeba, DataSetId::UtkfaceAllAges] {
        let _ = writeln!(md, "**{}**\n", data.title());
        comparison(md, index, data, &rows);
    }
    let _ = writeln!(md, "Earlier work the thesis compares with: {}\n", thesis::EARLIER_WORK);
}

/// Every run with its epochs and training time.
fn runs_section(md: &mut String, sweep: &Sweep) {
    let _ = writeln!(
        md,
        "## Runs\n\n| data set | backbone | configuration | seed | epochs | training seconds |\n|---|---|---|---|---|---|"
    );
    for (e, runs) in &sweep.runs {
        for r in runs {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {:.1} |",
                e.data, e.backbone, e.name, r.seed, r.result.epochs, r.result.seconds
            );
        }
    }
    let _ =
        writeln!(md, "\nEach configuration's exact `facemtl train` flags are in `report.json` (`experiment.flags`).");
}

/// `report.json`: every experiment's figures (no per-face predictions).
fn write_json(sweep: &Sweep, runs_dir: &Path, out: &Path) -> Result<()> {
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

/// The bias claim holds when MTL narrows the gap on every backbone tested.
fn bias_word(reduced: usize, tested: usize) -> &'static str {
    if tested == 0 {
        "not tested"
    } else if reduced == tested {
        "confirmed"
    } else if reduced == 0 {
        "not confirmed"
    } else {
        "mixed"
    }
}

/// The Young-minus-Old accuracy gap (mean, std) of one backbone and configuration.
type Gap = (BackboneKind, &'static str, (f64, f64));

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reproduce::Finished;
    use crate::train::{Evaluation, RunResult};

    fn stat(mean: f64, std: f64) -> Stat {
        Stat { mean, std, n: 3 }
    }

    #[test]
    fn a_difference_inside_the_noise_is_a_tie_and_a_lower_error_wins() {
        use std::cmp::Ordering::*;
        let accuracy = TaskSpec::gender();
        let mae = TaskSpec::age(facemtl::mtl::AgeNorm::CORAL);
        assert_eq!(compare(&accuracy, stat(98.0, 0.2), stat(97.0, 0.3)), Greater);
        assert_eq!(compare(&accuracy, stat(97.0, 0.2), stat(98.0, 0.3)), Less);
        assert_eq!(compare(&accuracy, stat(97.2, 0.5), stat(97.0, 0.1)), Equal, "inside the larger std");
        assert_eq!(compare(&mae, stat(4.5, 0.05), stat(5.0, 0.1)), Greater, "lower MAE is better");
        assert_eq!(compare(&mae, stat(5.0, 0.05), stat(4.5, 0.1)), Less);
    }

    #[test]
    fn verdicts_need_no_loss_and_half_the_comparisons_won() {
        assert_eq!(verdict_word(0, 0, 0), "not tested");
        assert_eq!(verdict_word(3, 3, 0), "confirmed");
        assert_eq!(verdict_word(2, 3, 0), "mixed", "fewer than half won");
        assert_eq!(verdict_word(5, 0, 1), "mixed", "one loss");
        assert_eq!(verdict_word(0, 4, 2), "not confirmed");
        assert_eq!(bias_word(2, 2), "confirmed");
        assert_eq!(bias_word(1, 2), "mixed");
        assert_eq!(bias_word(0, 2), "not confirmed");
        assert_eq!(bias_word(0, 0), "not tested");
    }

    /// A finished run of `tasks` whose test metrics are `metrics`.
    fn run(seed: u64, tasks: Vec<TaskSpec>, metrics: Vec<f64>) -> Finished {
        let test = Evaluation { losses: vec![0.0; metrics.len()], metrics, predictions: Vec::new() };
        let result = RunResult { epochs: 1, val: test.clone(), test, test_groups: Default::default(), seconds: 1.0 };
        Finished { seed, tasks, result }
    }

    fn experiment(data: DataSetId, name: &str) -> Experiment {
        Experiment { data, backbone: BackboneKind::Faceres, name: name.into(), label: name.into(), flags: Vec::new() }
    }

    #[test]
    fn a_claim_is_judged_over_every_task_and_single_task_rows_read_each_tasks_own_runs() {
        let tasks = DataSetId::Celeba.tasks();
        let mtl = |seed, g, y| run(seed, tasks.clone(), vec![g, y]);
        let single = |seed, task: &TaskSpec, v| run(seed, vec![task.clone()], vec![v]);
        let sweep = Sweep {
            runs: vec![
                (experiment(DataSetId::Celeba, "mtl-learned"), vec![mtl(0, 0.980, 0.880), mtl(1, 0.982, 0.882)]),
                (
                    experiment(DataSetId::Celeba, "single-net-gender"),
                    vec![single(0, &tasks[0], 0.970), single(1, &tasks[0], 0.971)],
                ),
                (
                    experiment(DataSetId::Celeba, "single-net-young"),
                    vec![single(0, &tasks[1], 0.881), single(1, &tasks[1], 0.880)],
                ),
            ],
            ..Sweep::default()
        };
        let index = Index { sweep: &sweep };
        let gender = index.row_stat(DataSetId::Celeba, BackboneKind::Faceres, "single-net", &tasks[0]).unwrap();
        assert!((gender.mean - 97.05).abs() < 1e-9 && gender.n == 2);
        let (word, lines) = verdict(&index, "mtl-learned", "single-net", &[DataSetId::Celeba, DataSetId::UtkfaceCoral]);
        assert_eq!(lines.len(), 2, "gender and young on CelebA; no UTKFace runs");
        assert!(lines[0].contains("(better)") && lines[1].contains("(within noise)"), "{lines:?}");
        assert_eq!(word, "**confirmed**: better in 1, within noise in 1, worse in 0 of 2 comparisons");
        let mut table = String::new();
        let rows = [("single-task network", "single-net"), ("MTL", "mtl-learned")];
        comparison(&mut table, &index, DataSetId::Celeba, &rows);
        assert!(table.contains("| faceres | single-task network | 97.05 ± 0.07 | 88.05 ± 0.07 |"), "{table}");
        let thesis = "| thesis (SE-ResNet-50-128D, fine-tuned, official test set) |";
        assert!(table.contains(&format!("{thesis} single-task network | 97.23 | 84.75 |")), "{table}");
        assert!(table.contains(&format!("{thesis} MTL | 98.82 | 87.53 |")), "{table}");
    }

    #[test]
    fn the_beyond_section_sets_the_best_recipe_beside_the_thesis_even_with_another_age_head() {
        let tasks = DataSetId::UtkfaceCoral.tasks();
        // The recipe's age is a distribution head: the report matches tasks by name.
        let best_tasks: Vec<TaskSpec> =
            tasks.iter().map(|t| if t.name == "age" { t.as_distribution(21.0, 60.0) } else { t.clone() }).collect();
        let sweep = Sweep {
            runs: vec![
                (
                    experiment(DataSetId::UtkfaceCoral, "mtl-learned"),
                    vec![run(0, tasks.clone(), vec![0.978, 4.9, 0.862])],
                ),
                (experiment(DataSetId::UtkfaceCoral, "best"), vec![run(0, best_tasks, vec![0.9805, 4.29, 0.8654])]),
            ],
            ..Sweep::default()
        };
        let mut md = String::new();
        beyond_section(&mut md, &Index { sweep: &sweep });
        assert!(md.contains("## 11. Beyond the thesis") && md.contains("--tune-blocks 2"), "{md}");
        assert!(md.contains("| faceres | our best recipe | 98.05 ± 0.00 | 4.29 ± 0.00 | 86.54 ± 0.00 |"), "{md}");
        assert!(
            md.contains(
                "| thesis (SE-ResNet-50-128D, fine-tuned) | MTL, the thesis's settings | 98.47 | 4.68 | 87.56 |"
            ),
            "{md}"
        );
        assert!(!md.contains("| our best recipe | 98.47"), "the thesis has no row of our recipe");
    }

    #[test]
    fn ablations_and_the_bias_stand_beside_the_thesis_figures_of_the_same_configuration() {
        let tasks = DataSetId::UtkfaceCoral.tasks();
        let sweep = Sweep {
            runs: vec![(
                experiment(DataSetId::UtkfaceCoral, "mtl-lambda-0.001"),
                vec![run(0, tasks.clone(), vec![0.977, 5.1, 0.861])],
            )],
            ..Sweep::default()
        };
        let mut md = String::new();
        ablation_sections(&mut md, &Index { sweep: &sweep });
        assert!(md.contains("| faceres | lambda 0.001 | 97.70 ± 0.00 | 5.10 ± 0.00 | 86.10 ± 0.00 |"), "{md}");
        assert!(
            md.contains("| thesis (SE-ResNet-50-128D, fine-tuned) | lambda 0.001 | 98.31 | 4.76 | 86.83 |"),
            "{md}"
        );
        assert!(md.contains("| thesis (SE-ResNet-50-128D, fine-tuned) | lambda 1 | 98.23 | 4.82 | 86.79 |"), "{md}");
        assert!(!md.lines().any(|l| l.starts_with("| thesis") && l.contains("DWA")), "the thesis did not run DWA");
        let mut bias = String::new();
        bias_section(&mut bias, &Index { sweep: &sweep });
        assert!(
            bias.contains("| thesis (ResNet-50, fine-tuned, official test set) | MTL | 84.46 | 87.59 | 3.13 |"),
            "{bias}"
        );
        let mut tables = String::new();
        single_task_sections(&mut tables, &Index { sweep: &sweep });
        assert!(tables.contains("| LightCNN | single-task baseline | 91.69 | 7.14 | 73.01 |"), "{tables}");
        assert!(tables.contains("| ResNet-50 | MTL | 98.79 | 86.83 |"), "{tables}");
    }
}
