//! The data sets, read in their authors' layouts (or a user's CSV), as labelled samples split
//! into train, validation and test. A [`DataSet`] is the one home of a data set's identity: its
//! typed id, name, title, tasks and the thesis's figures for it. Malformed rows and missing
//! images are skipped and counted, never fatal.

pub mod celeba;
pub mod csv;
pub mod utkface;

use std::path::{Path, PathBuf};

use anyhow::Result;
use facemtl::mtl::{AgeNorm, TaskSpec};
use serde::{Deserialize, Serialize};

/// Which data set: the built-in three, or a user's CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataSetId {
    /// UTKFace on the CORAL protocol (ages 21-60), as the thesis.
    UtkfaceCoral,
    /// All of UTKFace, ages 1-116: the shipped model's UTKFace faces.
    UtkfaceAllAges,
    /// The CelebA subset.
    Celeba,
    /// A user's labelled faces.
    Csv,
}

impl DataSetId {
    pub const BUILT_IN: [DataSetId; 3] = [DataSetId::UtkfaceCoral, DataSetId::UtkfaceAllAges, DataSetId::Celeba];

    pub fn name(&self) -> &'static str {
        match self {
            DataSetId::UtkfaceCoral => "utkface-coral",
            DataSetId::UtkfaceAllAges => "utkface-all-ages",
            DataSetId::Celeba => "celeba",
            DataSetId::Csv => "csv",
        }
    }

    /// The ages the protocol covers, in years (for an age head that predicts a distribution
    /// over them); none for CelebA (no age) and a CSV data set.
    pub fn age_range(&self) -> Option<(f32, f32)> {
        match self {
            DataSetId::UtkfaceCoral => Some((21.0, 60.0)),
            DataSetId::UtkfaceAllAges => Some((1.0, 116.0)),
            DataSetId::Celeba | DataSetId::Csv => None,
        }
    }

    pub fn title(&self) -> &'static str {
        match self {
            DataSetId::UtkfaceCoral => "UTKFace, CORAL protocol",
            DataSetId::UtkfaceAllAges => "UTKFace, all ages",
            DataSetId::Celeba => "CelebA subset",
            DataSetId::Csv => "a CSV data set",
        }
    }

    /// What a model trained on this data set says it was trained on.
    pub fn description(&self) -> &'static str {
        match self {
            DataSetId::UtkfaceCoral => "UTKFace, CORAL protocol (ages 21-60)",
            DataSetId::UtkfaceAllAges => "UTKFace, all 23,707 faces (ages 1-116), seeded 80/10/10 split",
            DataSetId::Celeba => celeba::CAVEAT,
            DataSetId::Csv => "a CSV data set",
        }
    }

    /// The tasks of a built-in data set (a CSV declares its own).
    pub fn tasks(&self) -> Vec<TaskSpec> {
        match self {
            DataSetId::UtkfaceCoral => vec![TaskSpec::gender(), TaskSpec::age(AgeNorm::CORAL), TaskSpec::race()],
            DataSetId::UtkfaceAllAges => vec![TaskSpec::gender(), TaskSpec::age(AgeNorm::ALL_AGES), TaskSpec::race()],
            DataSetId::Celeba => vec![TaskSpec::gender(), TaskSpec::young()],
            DataSetId::Csv => Vec::new(),
        }
    }
}

impl std::fmt::Display for DataSetId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

pub use facemtl::mtl::Label;

/// One face image with its label for each task of its data set, in the data set's task order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub file: PathBuf,
    /// The data set's namespace and the image's path within it: what the caches key it by.
    pub key: String,
    pub labels: Vec<Label>,
}

impl AsRef<[Label]> for Sample {
    fn as_ref(&self) -> &[Label] {
        &self.labels
    }
}

impl Sample {
    pub fn class(&self, column: usize) -> Option<usize> {
        match self.labels.get(column)? {
            Label::Class(c) => Some(*c),
            _ => None,
        }
    }

    pub fn value(&self, column: usize) -> Option<f32> {
        match self.labels.get(column)? {
            Label::Value(v) => Some(*v),
            _ => None,
        }
    }
}

/// A data set split three ways, with its tasks and what was skipped while reading it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataSet {
    pub id: DataSetId,
    /// The id's name, or the CSV file's name.
    pub name: String,
    /// What a model trained on it says it was trained on.
    pub description: String,
    pub tasks: Vec<TaskSpec>,
    pub train: Vec<Sample>,
    pub val: Vec<Sample>,
    pub test: Vec<Sample>,
    pub skipped: Vec<Skipped>,
}

/// A split no training step reads: model choices are made on validation, figures reported on test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HeldOut {
    Validation,
    Test,
}

/// An entry of a data set's list that was left out, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    pub entry: String,
    pub reason: String,
}

/// The most characters of an entry or a reason a message repeats: a row's path may be a
/// gigabyte long.
const MAX_MESSAGE_CHARS: usize = 120;

/// `text` cut to [`MAX_MESSAGE_CHARS`], marked where it was cut.
fn shortened(text: &str) -> String {
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((at, _)) => format!("{}… ({} bytes in all)", &text[..at], text.len()),
        None => text.to_string(),
    }
}

impl Skipped {
    /// `entry` skipped for `reason`, both cut short for the messages that repeat them.
    pub fn new(entry: &str, reason: impl AsRef<str>) -> Self {
        Skipped { entry: shortened(entry), reason: shortened(reason.as_ref()) }
    }
}

/// Where a data set comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    BuiltIn(DataSetId),
    /// A CSV of image paths and labels, with its tasks declared (`gender:class:male,female`).
    Csv {
        path: PathBuf,
        tasks: Vec<String>,
    },
    /// Several data sets trained at once (`DataSet::together`).
    Together(Vec<Source>),
}

impl Source {
    /// What a model trained on it says it was trained on.
    pub fn description(&self) -> String {
        match self {
            Source::BuiltIn(id) => id.description().to_string(),
            Source::Csv { path, .. } => format!("the CSV data set {}", path.display()),
            Source::Together(sources) => {
                let each: Vec<String> = sources.iter().map(Source::description).collect();
                format!("these data sets together, each task on the faces labelled for it: {}", each.join("; "))
            }
        }
    }

    /// The ages a distribution age head covers: the first of its data sets that has them.
    pub fn age_range(&self) -> Option<(f32, f32)> {
        match self {
            Source::BuiltIn(id) => id.age_range(),
            Source::Csv { .. } => None,
            Source::Together(sources) => sources.iter().find_map(Source::age_range),
        }
    }
}

impl DataSet {
    /// Read and split the data set; built-in ones from `data_dir`.
    pub fn load(source: &Source, data_dir: &Path, split_seed: u64) -> Result<DataSet> {
        match source {
            Source::BuiltIn(DataSetId::UtkfaceCoral) => utkface::load(data_dir, utkface::Protocol::Coral, split_seed),
            Source::BuiltIn(DataSetId::UtkfaceAllAges) => {
                utkface::load(data_dir, utkface::Protocol::AllAges, split_seed)
            }
            Source::BuiltIn(DataSetId::Celeba) => celeba::load(data_dir, split_seed),
            Source::BuiltIn(DataSetId::Csv) => anyhow::bail!("a CSV data set needs its file and tasks"),
            Source::Csv { path, tasks } => csv::load(path, tasks, split_seed),
            Source::Together(sources) => {
                let sets = sources.iter().map(|s| DataSet::load(s, data_dir, split_seed)).collect::<Result<_>>()?;
                DataSet::together(sets)
            }
        }
    }

    /// Several data sets as one: their tasks, each once in the order first met (a task two sets
    /// name must be the same task); each face labelled for its own set's tasks and
    /// [`Label::Missing`] for the others, except a CelebA face's age, which its Young label
    /// bounds ([`celeba::bound_ages_by_young`]); each split the sets' splits one after the
    /// other (training shuffles them together). The first set gives the id.
    pub fn together(sets: Vec<DataSet>) -> Result<DataSet> {
        let mut tasks: Vec<TaskSpec> = Vec::new();
        for task in sets.iter().flat_map(|s| &s.tasks) {
            match tasks.iter().find(|t| t.name == task.name) {
                Some(t) if t != task => anyhow::bail!("the data sets' {} tasks differ: {t:?} and {task:?}", task.name),
                Some(_) => {}
                None => tasks.push(task.clone()),
            }
        }
        let first = sets.first().ok_or_else(|| anyhow::anyhow!("no data set to train on"))?;
        let mut out = DataSet {
            id: first.id,
            name: sets.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join("+"),
            description: sets.iter().map(|s| s.description.as_str()).collect::<Vec<_>>().join("; "),
            tasks: tasks.clone(),
            ..DataSet::built_in(first.id)
        };
        for set in sets {
            let columns: Vec<Option<usize>> = tasks.iter().map(|t| set.column(&t.name)).collect();
            let relabel = |samples: Vec<Sample>| {
                samples.into_iter().map(|s| Sample {
                    labels: columns.iter().map(|c| c.map_or(Label::Missing, |c| s.labels[c])).collect(),
                    ..s
                })
            };
            out.train.extend(relabel(set.train));
            out.val.extend(relabel(set.val));
            out.test.extend(relabel(set.test));
            out.skipped.extend(set.skipped);
        }
        celeba::bound_ages_by_young(&mut out);
        Ok(out)
    }

    fn built_in(id: DataSetId) -> DataSet {
        DataSet {
            id,
            name: id.name().into(),
            description: id.description().into(),
            tasks: id.tasks(),
            train: Vec::new(),
            val: Vec::new(),
            test: Vec::new(),
            skipped: Vec::new(),
        }
    }

    /// The column of the task called `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.tasks.iter().position(|t| t.name == name)
    }

    /// The faces of one of the held-out splits.
    pub fn held_out(&self, part: HeldOut) -> &[Sample] {
        match part {
            HeldOut::Validation => &self.val,
            HeldOut::Test => &self.test,
        }
    }

    pub fn all(&self) -> impl Iterator<Item = &Sample> {
        self.train.iter().chain(&self.val).chain(&self.test)
    }

    /// Keep the first `limit` samples of each split (quick runs and tests).
    pub fn truncate(&mut self, limit: usize) {
        for split in [&mut self.train, &mut self.val, &mut self.test] {
            split.truncate(limit);
        }
    }

    /// Print the one warning line a run shows about skipped entries.
    pub fn warn_skipped(&self) {
        if let Some(summary) = self.skipped_summary() {
            eprintln!("warning: {}: {summary}", self.name);
        }
    }

    /// How many entries were skipped, for which reasons most often, with a few examples.
    pub fn skipped_summary(&self) -> Option<String> {
        if self.skipped.is_empty() {
            return None;
        }
        let mut counts: std::collections::HashMap<&str, usize> = Default::default();
        for s in &self.skipped {
            *counts.entry(&s.reason).or_default() += 1;
        }
        let mut reasons: Vec<(&str, usize)> = counts.into_iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let counts: Vec<_> = reasons.iter().take(3).map(|(r, n)| format!("{n} {r}")).collect();
        let examples: Vec<_> = self.skipped.iter().take(3).map(|s| format!("{} ({})", s.entry, s.reason)).collect();
        Some(format!("skipped {} entries ({}), e.g. {}", self.skipped.len(), counts.join(", "), examples.join(", ")))
    }
}

pub use facemtl::training::order::shuffle;

/// Shuffle with `seed` and cut at the given fractions: (first, second, rest).
pub fn split3<T>(mut items: Vec<T>, seed: u64, first: f64, second: f64) -> (Vec<T>, Vec<T>, Vec<T>) {
    shuffle(&mut items, seed);
    let n = items.len();
    let a = (n as f64 * first).round() as usize;
    let b = ((n as f64 * (first + second)).round() as usize).min(n);
    let rest = items.split_off(b);
    let second = items.split_off(a);
    (items, second, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_always_gives_the_same_split_and_loses_nothing() {
        let (a, b, c) = split3((0..100).collect::<Vec<_>>(), 7, 0.8, 0.1);
        assert_eq!((a.len(), b.len(), c.len()), (80, 10, 10));
        let (a2, ..) = split3((0..100).collect::<Vec<_>>(), 7, 0.8, 0.1);
        assert_eq!(a, a2);
        let mut all: Vec<_> = a.iter().chain(&b).chain(&c).copied().collect();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        let (other, ..) = split3((0..100).collect::<Vec<_>>(), 8, 0.8, 0.1);
        assert_ne!(a, other);
    }

    fn set(id: DataSetId, faces: Vec<Vec<Label>>) -> DataSet {
        let sample = |(i, labels)| Sample { file: format!("{i}.jpg").into(), key: format!("{id}/{i}"), labels };
        DataSet { train: faces.into_iter().enumerate().map(sample).collect(), ..DataSet::built_in(id) }
    }

    #[test]
    fn two_data_sets_train_together_each_face_unlabelled_for_the_others_tasks() {
        let utk = set(DataSetId::UtkfaceAllAges, vec![vec![Label::Class(1), Label::Value(30.0), Label::Class(2)]]);
        let celeba = set(DataSetId::Celeba, vec![vec![Label::Class(0), Label::Class(1)]]);
        let both = DataSet::together(vec![utk, celeba]).unwrap();
        let names: Vec<&str> = both.tasks.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["gender", "age", "race", "young"]);
        assert_eq!(both.train[0].labels, [Label::Class(1), Label::Value(30.0), Label::Class(2), Label::Missing]);
        let young = Label::Bounded { low: 0.0, high: celeba::YOUNG_BELOW };
        assert_eq!(both.train[1].labels, [Label::Class(0), young, Label::Missing, Label::Class(1)]);
        assert_eq!(both.name, "utkface-all-ages+celeba");
        // The CORAL and all-ages age tasks are normalised differently: one name, two tasks.
        let coral = set(DataSetId::UtkfaceCoral, Vec::new());
        let all_ages = set(DataSetId::UtkfaceAllAges, Vec::new());
        assert!(DataSet::together(vec![coral, all_ages]).unwrap_err().to_string().contains("age tasks differ"));
    }

    #[test]
    fn celeba_faces_trained_with_utkface_get_their_age_bounded_by_their_young_label() {
        let utk = set(DataSetId::UtkfaceAllAges, vec![vec![Label::Class(1), Label::Value(45.0), Label::Class(2)]]);
        let young_and_old = vec![vec![Label::Class(0), Label::Class(1)], vec![Label::Class(1), Label::Class(0)]];
        let both = DataSet::together(vec![utk, set(DataSetId::Celeba, young_and_old)]).unwrap();
        let ages: Vec<Label> = both.train.iter().map(|s| s.labels[1]).collect();
        let old = Label::Bounded { low: celeba::YOUNG_BELOW, high: f32::INFINITY };
        assert_eq!(ages, [Label::Value(45.0), Label::Bounded { low: 0.0, high: celeba::YOUNG_BELOW }, old]);
        for (sample, age) in both.train.iter().zip(&ages) {
            assert_eq!(both.tasks[1].check_label(age), Ok(()), "{}", sample.key);
        }
        // CelebA alone has no age to bound.
        let mut alone = set(DataSetId::Celeba, vec![vec![Label::Class(0), Label::Class(1)]]);
        celeba::bound_ages_by_young(&mut alone);
        assert_eq!(alone.train[0].labels, [Label::Class(0), Label::Class(1)]);
    }
}
