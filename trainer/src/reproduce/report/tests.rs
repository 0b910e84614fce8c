use facemtl::backbone::BackboneKind;
use facemtl::mtl::TaskSpec;

use super::index::{Index, Stat};
use super::sections::{ablation_sections, beyond_section, bias_section, single_task_sections};
use super::tables::comparison;
use super::verdicts::{bias_word, compare, verdict, verdict_word};
use crate::data::DataSetId;
use crate::reproduce::experiments::Experiment;
use crate::reproduce::sweep::{Finished, Sweep};
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
    Finished { seed, tasks, result, across: Vec::new() }
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
            (experiment(DataSetId::UtkfaceCoral, "mtl-learned"), vec![run(0, tasks.clone(), vec![0.978, 4.9, 0.862])]),
            (experiment(DataSetId::UtkfaceCoral, "best"), vec![run(0, best_tasks.clone(), vec![0.9805, 4.29, 0.8654])]),
            (experiment(DataSetId::UtkfaceCoral, "whole"), vec![run(0, best_tasks, vec![0.9656, 4.37, 0.8524])]),
        ],
        ..Sweep::default()
    };
    let mut md = String::new();
    beyond_section(&mut md, &Index { sweep: &sweep });
    assert!(md.contains("## 11. Beyond the thesis") && md.contains("--tune-blocks 2"), "{md}");
    assert!(md.contains("| faceres | our best recipe | 98.05 ± 0.00 | 4.29 ± 0.00 | 86.54 ± 0.00 |"), "{md}");
    let whole = "| faceres | the whole backbone fine-tuned | 96.56 ± 0.00 | 4.37 ± 0.00 | 85.24 ± 0.00 |";
    assert!(md.contains(whole) && md.contains("--fine-tune --age-head distribution --lr 3e-5"), "{md}");
    assert!(
        md.contains("| thesis (SE-ResNet-50-128D, fine-tuned) | MTL, the thesis's settings | 98.47 | 4.68 | 87.56 |"),
        "{md}"
    );
    assert!(!md.contains("| our best recipe | 98.47"), "the thesis has no row of our recipe");
}

/// A run read on the other data set: gender as photos are and in black and white, and Young
/// against age as `young` scores it.
fn read_across(mut run: Finished, gender: (f64, f64), young: (&str, &str, f64)) -> Finished {
    use crate::cross::{Across, CrossFigure};
    use crate::faces::looks::Look;
    use crate::reproduce::sweep::Seen;
    let figure = |task: &str, against: &str, value| CrossFigure {
        task: task.into(),
        against: against.into(),
        faces: 1000,
        metric: facemtl::mtl::Metric::Accuracy,
        value,
        answered: None,
    };
    let seen =
        |look, cross| Seen { look, across: Across { data_set: "other".into(), photos: 1000, faces: 1000, cross } };
    run.across = vec![
        seen(Look::Clean, vec![figure("gender", "gender", gender.0), figure(young.0, young.1, young.2)]),
        seen(Look::Bw, vec![figure("gender", "gender", gender.1)]),
    ];
    run
}

#[test]
fn the_beyond_section_reads_each_row_on_the_data_set_it_did_not_train_on() {
    let utk = DataSetId::UtkfaceAllAges.tasks();
    let young = ("age < 30", "young", 0.80);
    let sweep = Sweep {
        runs: vec![
            (
                experiment(DataSetId::UtkfaceAllAges, "best"),
                vec![
                    read_across(run(0, utk.clone(), vec![0.94, 4.6, 0.87]), (0.96, 0.955), young),
                    read_across(run(1, utk.clone(), vec![0.94, 4.6, 0.87]), (0.97, 0.955), young),
                    run(2, utk.clone(), vec![0.94, 4.6, 0.87]),
                ],
            ),
            (
                experiment(DataSetId::Celeba, "mtl-learned"),
                vec![read_across(
                    run(0, DataSetId::Celeba.tasks(), vec![0.98, 0.87]),
                    (0.90, 0.89),
                    ("young", "age < 30", 0.7),
                )],
            ),
            (experiment(DataSetId::UtkfaceCoral, "whole"), vec![run(0, utk, vec![0.96, 4.4, 0.85])]),
        ],
        ..Sweep::default()
    };
    let mut md = String::new();
    beyond_section(&mut md, &Index { sweep: &sweep });
    let row = "| UTKFace, all ages | faceres | our best recipe | CelebA subset, validation faces | \
               96.50 ± 0.71 (2) | 95.50 ± 0.00 (2) | 1.00 ± 0.71 (2) | 80.00 ± 0.00 (2) |";
    assert!(md.contains(row), "two of three seeds were read: {md}");
    let celeba = "| CelebA subset | faceres | MTL, the thesis's settings | UTKFace, all ages, validation faces | \
                  90.00 ± 0.00 (1) | 89.00 ± 0.00 (1) | 1.00 ± 0.00 (1) | 70.00 ± 0.00 (1) |";
    assert!(md.contains(celeba), "{md}");
    assert!(
        !md.contains("| UTKFace, CORAL protocol | faceres | the whole backbone"),
        "a run not read has no row: {md}"
    );
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
    assert!(md.contains("| thesis (SE-ResNet-50-128D, fine-tuned) | lambda 0.001 | 98.31 | 4.76 | 86.83 |"), "{md}");
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
