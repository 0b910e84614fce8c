//! REPORT.md's sections, one function each, in the order they appear.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::Result;
use facemtl::backbone::BackboneKind;

use super::index::Index;
use super::tables::{across_table, comparison, group_section, thesis_backbones};
use super::verdicts::{bias_word, verdict};
use crate::data::DataSetId;
use crate::reproduce::experiments::BEYOND;
use crate::reproduce::sweep::{Sweep, mean_std};
use crate::reproduce::thesis;
use crate::train::config::Recipe;

/// The Young-minus-Old accuracy gap (mean, std) of one backbone and configuration.
pub(super) type Gap = (BackboneKind, &'static str, (f64, f64));

/// What the sweep was: runs, wall time, hardware, method, seeds.
pub(super) fn intro(md: &mut String, sweep: &Sweep) {
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
pub(super) fn data_section(md: &mut String, sweep: &Sweep) {
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
pub(super) fn single_task_sections(md: &mut String, index: &Index) {
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
pub(super) fn ablation_sections(md: &mut String, index: &Index) {
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
pub(super) fn bias_section(md: &mut String, index: &Index) -> Vec<Gap> {
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
pub(super) fn group_sections(md: &mut String, index: &Index) {
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
pub(super) fn plot_section(md: &mut String, sweep: &Sweep, runs_dir: &Path, out: &Path) -> Result<()> {
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
pub(super) fn claims_section(md: &mut String, index: &Index, gaps: &[Gap]) {
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
pub(super) fn beyond_section(md: &mut String, index: &Index) {
    let recipe = flag_words(Recipe::Best);
    let _ = writeln!(
        md,
        "## 11. Beyond the thesis

Our best recipe, `--recipe best` (`{}`), each choice made on the validation splits, against \
         the thesis's settings on the same faces and the thesis's figures. The age column of the recipe \
         is its distribution head's expectation. On all ages it tunes one block \
         (`--tune-blocks 1`), the configuration of the model shipped until issue 29: two blocks' activations of every \
         UTKFace face would hold 9.5 GB per run. Faceres fine-tuned whole, as the thesis fine-tunes its backbones \
         (`--recipe whole`: `{}`), is shown where it ran (`facemtl reproduce --whole-backbone`: hours a run on a CPU).
",
        recipe.join(" "),
        flag_words(Recipe::Whole).join(" ")
    );
    for data in [DataSetId::UtkfaceCoral, DataSetId::Celeba, DataSetId::UtkfaceAllAges] {
        let _ = writeln!(md, "**{}**\n", data.title());
        comparison(md, index, data, &BEYOND);
    }
    let _ = writeln!(
        md,
        "**Across data sets.** The same runs' models (exact weights, no calibration, each with its test-time \
         mirror) on the validation faces of the data set they did not train on, as photos are and in black and \
         white: the view models are chosen on. The figures above are each data set's own test faces. Young is \
         read against an age under 30. Each cell is the mean ± spread over the seeds read (their number).\n"
    );
    across_table(md, index, &BEYOND);
    let _ = writeln!(md, "Earlier work the thesis compares with: {}\n", thesis::EARLIER_WORK);
}

/// A recipe's flags, each with its value, as words of a command line.
fn flag_words(recipe: Recipe) -> Vec<String> {
    recipe.flags().iter().map(|(flag, value)| format!("{flag} {value}").trim().to_string()).collect()
}

/// Every run with its epochs and training time.
pub(super) fn runs_section(md: &mut String, sweep: &Sweep) {
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
