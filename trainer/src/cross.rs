//! A model read against the labels of a data set it was not trained on (or trained on with
//! others): the tasks both carry (gender, race, age in years), and Young against the age
//! (under [`YOUNG_BELOW`] years).

use facemtl::mtl::{Metric, TaskSpec};
use facemtl::predict::{Attributes, Verdict};
use serde::{Deserialize, Serialize};

use crate::data::Sample;
use crate::data::celeba::YOUNG_BELOW;

/// A model's answers on the faces of a data set it was not trained on: the photos, the faces
/// found among them, and each answer the data set can score (what `eval` prints).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Across {
    pub data_set: String,
    pub photos: usize,
    pub faces: usize,
    pub cross: Vec<CrossFigure>,
}

impl Across {
    /// The figure of the model's `task` scored against the data set's `against`.
    pub fn figure(&self, task: &str, against: &str) -> Option<&CrossFigure> {
        self.cross.iter().find(|f| f.task == task && f.against == against)
    }

    /// Young read against age, whichever way round the two data sets have them: a model's age
    /// against the data set's Young, or its Young against the data set's age.
    pub fn young_against_age(&self) -> Option<&CrossFigure> {
        let age = age_as_young();
        self.figure(&age, "young").or_else(|| self.figure("young", &age))
    }
}

/// What an age read as young or old is called: under [`YOUNG_BELOW`] years.
fn age_as_young() -> String {
    format!("age < {YOUNG_BELOW}")
}

/// One of a model's answers scored against a data set's label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossFigure {
    /// What the model answers, and the data set's label it is scored against.
    pub task: String,
    pub against: String,
    pub faces: usize,
    /// Accuracy, or the mean absolute error in years for age.
    pub metric: Metric,
    pub value: f64,
    /// Gender, when the model has a "can't tell" band: the share of faces answered, and the
    /// accuracy on them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered: Option<(f64, f64)>,
}

/// A model answer as a class (gender 1 = female, Young 1 = young, race its index).
type Read = fn(&Attributes) -> Option<usize>;

fn female(a: &Attributes) -> Option<usize> {
    a.female_probability.map(|p| usize::from(p > 0.5))
}

fn race(a: &Attributes) -> Option<usize> {
    let race = a.race.as_ref()?;
    (0..race.len()).max_by(|i, j| race[*i].1.total_cmp(&race[*j].1))
}

fn young_by_probability(a: &Attributes) -> Option<usize> {
    a.young_probability.map(|p| usize::from(p > 0.5))
}

fn young_by_age(a: &Attributes) -> Option<usize> {
    a.age.as_ref().map(|age| usize::from(age.years < YOUNG_BELOW))
}

/// The figures of `attributes` (one per face of `samples`, whose labels follow `set_tasks`)
/// that the data set can score: each needs the model's answer and the face's label.
pub fn figures(attributes: &[Attributes], samples: &[&Sample], set_tasks: &[TaskSpec]) -> Vec<CrossFigure> {
    let column = |name: &str| set_tasks.iter().position(|t| t.name == name);
    let class = |name: &str| column(name).map(|c| move |s: &Sample| s.class(c));
    let mut out = Vec::new();
    let mut score = |task: &str, against: &str, read: Read, truth: &dyn Fn(&Sample) -> Option<usize>| {
        let pairs: Vec<(&Attributes, bool)> =
            attributes.iter().zip(samples).filter_map(|(a, s)| Some((a, read(a)? == truth(s)?))).collect();
        if pairs.is_empty() {
            return;
        }
        let right = |pairs: &[&(&Attributes, bool)]| pairs.iter().filter(|(_, ok)| *ok).count() as f64;
        let all: Vec<_> = pairs.iter().collect();
        let given: Vec<_> = pairs.iter().filter(|(a, _)| a.gender != Some(Verdict::CantTell)).collect();
        let bands = pairs.iter().any(|(a, _)| a.gender == Some(Verdict::CantTell));
        out.push(CrossFigure {
            task: task.into(),
            against: against.into(),
            faces: pairs.len(),
            metric: Metric::Accuracy,
            value: right(&all) / all.len() as f64,
            answered: (task == "gender" && bands)
                .then(|| (given.len() as f64 / all.len() as f64, right(&given) / given.len().max(1) as f64)),
        });
    };
    if let Some(truth) = class("gender") {
        score("gender", "gender", female, &truth);
    }
    if let Some(truth) = class("race") {
        score("race", "race", race, &truth);
    }
    if let Some(truth) = class("young") {
        score("young", "young", young_by_probability, &truth);
        score(&age_as_young(), "young", young_by_age, &truth);
    }
    if let Some(c) = column("age") {
        let truth = move |s: &Sample| s.value(c).map(|years| usize::from(years < YOUNG_BELOW));
        score("young", &age_as_young(), young_by_probability, &truth);
        let misses: Vec<f64> = attributes
            .iter()
            .zip(samples)
            .filter_map(|(a, s)| Some(f64::from((a.age.as_ref()?.years - s.value(c)?).abs())))
            .collect();
        if !misses.is_empty() {
            let value = misses.iter().sum::<f64>() / misses.len() as f64;
            let faces = misses.len();
            out.push(CrossFigure {
                task: "age".into(),
                against: "age".into(),
                faces,
                metric: Metric::Mae,
                value,
                answered: None,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use facemtl::mtl::{AgeNorm, Label};
    use facemtl::predict::Age;

    fn face(female: f32, years: f32, verdict: Verdict) -> Attributes {
        Attributes {
            female_probability: Some(female),
            gender: Some(verdict),
            age: Some(Age { years, low: None, high: None, plus_minus: Some(5.0) }),
            ..Default::default()
        }
    }

    fn sample(labels: Vec<Label>) -> Sample {
        Sample { file: "x.jpg".into(), key: "x".into(), labels }
    }

    #[test]
    fn a_utkface_model_is_scored_on_celeba_gender_and_young() {
        // CelebA's tasks: gender, young (1 = young).
        let set = vec![TaskSpec::gender(), TaskSpec::young()];
        let faces = [
            face(0.9, 25.0, Verdict::Female),
            face(0.2, 45.0, Verdict::Male),
            face(0.55, 20.0, Verdict::CantTell),
            face(0.6, 35.0, Verdict::Female),
        ];
        let samples: Vec<Sample> = [(1, 1), (0, 0), (0, 1), (0, 1)]
            .into_iter()
            .map(|(g, y)| sample(vec![Label::Class(g), Label::Class(y)]))
            .collect();
        let samples: Vec<&Sample> = samples.iter().collect();
        let figures = figures(&faces, &samples, &set);
        assert_eq!(figures.len(), 2, "{figures:?}");
        let gender = &figures[0];
        assert_eq!((gender.faces, gender.value), (4, 0.5));
        // The can't-tell face (wrong) is left out: 2 of 3 answered faces right.
        assert_eq!(gender.answered, Some((0.75, 2.0 / 3.0)));
        let young = &figures[1];
        assert_eq!((young.task.as_str(), young.against.as_str()), ("age < 30", "young"));
        assert_eq!(young.value, 0.75);
    }

    #[test]
    fn a_data_set_scores_only_what_the_model_answers() {
        // Ages but no gender labels: the age's MAE, no gender figure, and no Young (the model has none).
        let set = vec![TaskSpec::age(AgeNorm::ALL_AGES)];
        let samples = [sample(vec![Label::Value(20.0)]), sample(vec![Label::Missing])];
        let faces = [face(0.9, 25.0, Verdict::Female), face(0.9, 60.0, Verdict::Female)];
        let figures = figures(&faces, &[&samples[0], &samples[1]], &set);
        assert_eq!(figures.len(), 1, "{figures:?}");
        assert_eq!((figures[0].metric, figures[0].value, figures[0].faces), (Metric::Mae, 5.0, 1));
    }
}
