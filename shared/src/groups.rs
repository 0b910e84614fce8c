//! Figures per group of faces on a test split: confusion matrices, age error per age band,
//! gender accuracy per race and per age band, Young/Old accuracy per class. A model that is
//! good on average can still fail one group; each table names its worst.

use serde::{Deserialize, Serialize};

use crate::mtl::{Label, Metric, TaskSpec};

/// The class in column `c` of a face's labels.
fn class(labels: &[Label], c: usize) -> Option<usize> {
    match labels.get(c)? {
        Label::Class(class) => Some(*class),
        _ => None,
    }
}

/// The value in column `c` of a face's labels.
fn value(labels: &[Label], c: usize) -> Option<f32> {
    match labels.get(c)? {
        Label::Value(value) => Some(*value),
        _ => None,
    }
}

/// One group's size and figure (accuracy, or MAE in years).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub label: String,
    pub count: usize,
    pub value: f64,
}

/// A table of groups and what its figure is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupTable {
    pub title: String,
    pub figure: Metric,
    pub groups: Vec<Group>,
}

impl GroupTable {
    /// The group with the worst figure (empty groups aside).
    pub fn worst(&self) -> Option<&Group> {
        let groups = self.groups.iter().filter(|g| g.count > 0);
        if self.figure == Metric::Mae {
            groups.max_by(|a, b| a.value.total_cmp(&b.value))
        } else {
            groups.min_by(|a, b| a.value.total_cmp(&b.value))
        }
    }
}

/// Counts of (true class, predicted class).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    pub task: String,
    pub labels: Vec<String>,
    /// `counts[truth][predicted]`.
    pub counts: Vec<Vec<usize>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupFigures {
    pub confusions: Vec<Confusion>,
    pub tables: Vec<GroupTable>,
}

/// Decades, with everyone from 70 on in one band (few faces are that old).
pub fn age_band(years: f32) -> String {
    match years as u32 {
        y if y >= 70 => "70+".into(),
        y => format!("{}-{}", y / 10 * 10, y / 10 * 10 + 9),
    }
}

fn table<K: Ord>(
    title: &str,
    figure: Metric,
    items: impl Iterator<Item = (K, f64)>,
    order: impl Fn(&K) -> String,
) -> GroupTable {
    let mut sums: std::collections::BTreeMap<K, (usize, f64)> = Default::default();
    for (key, value) in items {
        let entry = sums.entry(key).or_default();
        entry.0 += 1;
        entry.1 += value;
    }
    GroupTable {
        title: title.into(),
        figure,
        groups: sums
            .into_iter()
            .map(|(key, (count, sum))| Group { label: order(&key), count, value: sum / count as f64 })
            .collect(),
    }
}

/// Accuracy of one classification task's `predicted` classes against `truth`, per group `key`.
fn accuracy_table<K: Ord>(
    title: &str,
    faces: &[&[Label]],
    predicted: &[f64],
    truth: impl Fn(&[Label]) -> Option<usize>,
    key: impl Fn(&[Label]) -> Option<K>,
    label: impl Fn(&K) -> String,
) -> GroupTable {
    let items =
        faces.iter().zip(predicted).filter_map(|(s, p)| Some((key(s)?, f64::from(u8::from(*p as usize == truth(s)?)))));
    table(title, Metric::Accuracy, items, label)
}

/// Group figures of one model's `predictions` (per trained task and face: the class, or the
/// value in its own unit) on faces with these `labels`, which follow `columns` (their data
/// set's tasks).
pub fn compute<L: AsRef<[Label]>>(
    columns: &[TaskSpec],
    trained: &[TaskSpec],
    labels: &[L],
    predictions: &[Vec<f64>],
) -> GroupFigures {
    let samples: Vec<&[Label]> = labels.iter().map(AsRef::as_ref).collect();
    GroupFigures {
        confusions: confusions(columns, trained, &samples, predictions),
        tables: tables(columns, trained, &samples, predictions),
    }
}

/// The confusion matrix of each trained classification task the data set labels.
fn confusions(
    columns: &[TaskSpec],
    trained: &[TaskSpec],
    samples: &[&[Label]],
    predictions: &[Vec<f64>],
) -> Vec<Confusion> {
    let mut confusions = Vec::new();
    for (task, predicted) in trained.iter().zip(predictions) {
        let (labels, Some(c)) = (task.labels(), columns.iter().position(|s| s == task)) else { continue };
        if labels.is_empty() {
            continue;
        }
        let mut counts = vec![vec![0; labels.len()]; labels.len()];
        for (sample, p) in samples.iter().zip(predicted) {
            if let Some(truth) = class(sample, c) {
                counts[truth][(*p as usize).min(labels.len() - 1)] += 1;
            }
        }
        confusions.push(Confusion { task: task.name.clone(), labels: labels.to_vec(), counts });
    }
    confusions
}

/// Age MAE per age band, gender accuracy per race and per age band, and Young/Old accuracy per
/// class, each where the model and the data set have what it needs.
fn tables(
    columns: &[TaskSpec],
    trained: &[TaskSpec],
    samples: &[&[Label]],
    predictions: &[Vec<f64>],
) -> Vec<GroupTable> {
    let mut tables = Vec::new();
    let column = |spec: &TaskSpec| columns.iter().position(|c| c == spec);
    let trained_index = |spec: &TaskSpec| trained.iter().position(|t| t == spec);
    let age = columns.iter().position(|c| c.name == "age" && c.is_regression());
    let years = |s: &[Label]| age.and_then(|a| value(s, a));
    // Matched by name: the model may predict age in another form (a distribution) than the
    // data set's regression column.
    let trained_age = trained.iter().position(|t| t.name == "age" && t.is_regression());
    if let Some(a) = age.and(trained_age) {
        tables.push(table(
            "Age MAE (years) per age band",
            Metric::Mae,
            samples
                .iter()
                .zip(&predictions[a])
                .filter_map(|(s, p)| years(s).map(|y| (band_key(y), (p - f64::from(y)).abs()))),
            |k| k.1.clone(),
        ));
    }
    let (gender, race, young) = (TaskSpec::gender(), TaskSpec::race(), TaskSpec::young());
    if let (Some(g), Some(gc)) = (trained_index(&gender), column(&gender)) {
        let truth = |s: &[Label]| class(s, gc);
        if let Some(rc) = column(&race) {
            tables.push(accuracy_table(
                "Gender accuracy per race",
                samples,
                &predictions[g],
                truth,
                |s| class(s, rc),
                |r| race.labels()[*r].clone(),
            ));
        }
        if age.is_some() {
            tables.push(accuracy_table(
                "Gender accuracy per age band",
                samples,
                &predictions[g],
                truth,
                |s| years(s).map(band_key),
                |k| k.1.clone(),
            ));
        }
    }
    if let (Some(y), Some(yc)) = (trained_index(&young), column(&young)) {
        tables.push(young_table(&young, samples, &predictions[y], yc));
    }
    tables
}

/// Age bands sort by their first year, so "70+" after "60-69" and "0-9" before "10-19".
fn band_key(years: f32) -> (u32, String) {
    ((years as u32).min(70) / 10, age_band(years))
}

/// Young/Old accuracy per true class (`column` of the labels).
fn young_table(young: &TaskSpec, samples: &[&[Label]], predicted: &[f64], column: usize) -> GroupTable {
    accuracy_table(
        "Young/Old accuracy per class",
        samples,
        predicted,
        |s| class(s, column),
        |s| class(s, column),
        |c| young.labels()[*c].clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::mtl::AgeNorm;

    fn face(gender: usize, age: f32, race: usize) -> Vec<Label> {
        vec![Label::Class(gender), Label::Value(age), Label::Class(race)]
    }

    #[test]
    fn groups_count_and_name_the_worst() {
        let samples = vec![face(0, 5.0, 0), face(1, 35.0, 1), face(1, 38.0, 1), face(0, 75.0, 2)];
        let tasks = vec![TaskSpec::gender(), TaskSpec::age(AgeNorm::ALL_AGES), TaskSpec::race()];
        // Gender wrong on the 35-year-old only; ages off by 1, 2, 3, 10 years; race all right.
        let predictions = vec![vec![0.0, 0.0, 1.0, 0.0], vec![6.0, 37.0, 41.0, 65.0], vec![0.0, 1.0, 1.0, 2.0]];
        let figures = compute(&tasks, &tasks, &samples, &predictions);
        let gender = &figures.confusions[0];
        assert_eq!(gender.counts, vec![vec![2, 0], vec![1, 1]]);
        let age = &figures.tables[0];
        let labels: Vec<&str> = age.groups.iter().map(|g| g.label.as_str()).collect();
        assert_eq!(labels, ["0-9", "30-39", "70+"]);
        assert_eq!(age.groups[1].value, 2.5);
        assert_eq!(age.worst().unwrap().label, "70+");
        let by_race = &figures.tables[1];
        assert_eq!(by_race.worst().unwrap().label, "Black");
        assert_eq!(by_race.worst().unwrap().value, 0.5);
        assert_eq!(figures.confusions[1].counts[1][1], 2);
    }

    #[test]
    fn celeba_models_get_gender_and_young_old_confusions_and_young_old_accuracy_per_class() {
        let samples = vec![
            vec![Label::Class(0), Label::Class(0)],
            vec![Label::Class(1), Label::Class(0)],
            vec![Label::Class(1), Label::Class(1)],
            vec![Label::Class(0), Label::Class(1)],
        ];
        let tasks = vec![TaskSpec::gender(), TaskSpec::young()];
        // Young wrong on the last face only.
        let predictions = vec![vec![0.0, 1.0, 1.0, 0.0], vec![0.0, 0.0, 1.0, 0.0]];
        let figures = compute(&tasks, &tasks, &samples, &predictions);
        assert_eq!(figures.confusions.len(), 2);
        assert_eq!(figures.confusions[1].counts, vec![vec![2, 0], vec![1, 1]]);
        let titles: Vec<&str> = figures.tables.iter().map(|t| t.title.as_str()).collect();
        assert_eq!(titles, ["Young/Old accuracy per class"], "no race or age column: no other table");
        let young = &figures.tables[0];
        assert_eq!(young.groups.iter().map(|g| (g.count, g.value)).collect::<Vec<_>>(), [(2, 1.0), (2, 0.5)]);
    }
}
