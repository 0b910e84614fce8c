//! From the head's raw outputs to what a person reads: probabilities, years, a distribution.

use burn::prelude::*;
use burn::tensor::activation::softmax;
use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::calibration::{Calibration, interval, temper};
use crate::model_file::Header;
use crate::mtl::{MtlHead, TaskKind, TaskSpec};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Age {
    /// The central value: the distribution's mean, or the regression's output.
    pub years: f32,
    /// The interval holding the header's share (80 %) of this face's calibrated age
    /// distribution; absent for a model without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<f32>,
    /// Without an interval: the model's mean absolute error on its test set, a typical miss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plus_minus: Option<f32>,
}

/// The gender answer as a person reads it: the likelier class, or "can't tell" when its
/// calibrated probability lies in the model's band (chosen on validation faces).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    #[serde(rename = "female")]
    Female,
    #[serde(rename = "male")]
    Male,
    #[serde(rename = "can't tell")]
    CantTell,
}

impl Verdict {
    fn of(female_probability: f32, calibration: &Calibration) -> Self {
        match female_probability.max(1.0 - female_probability) {
            p if calibration.cant_tell_below.is_some_and(|below| p < below) => Verdict::CantTell,
            _ if female_probability > 0.5 => Verdict::Female,
            _ => Verdict::Male,
        }
    }
}

/// A prediction of a task other than the built-in four (a user's own data set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Other {
    /// The probability of each label.
    Class(Vec<(String, f32)>),
    /// The value, and the model's test MAE as its typical miss.
    Value { value: f32, plus_minus: f32 },
}

/// The predicted attributes of one face; a field is absent when the model has no such task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Attributes {
    /// Calibrated, as every probability here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub female_probability: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gender: Option<Verdict>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age: Option<Age>,
    /// Probability of each of White, Black, Asian, Indian, Others.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub race: Option<Vec<(String, f32)>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub young_probability: Option<f32>,
    /// Other tasks, by name.
    #[serde(flatten)]
    pub other: BTreeMap<String, Other>,
}

/// One task's answer for one face, named by its task, in a shape that does not depend on the
/// task: what the page shows in the task's column, in the order of the model's tasks.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Answer {
    /// The probability of each label, in the task's label order; `cant_tell` when the
    /// likeliest one's lies in the model's "can't tell" band.
    Class {
        task: String,
        probabilities: Vec<(String, f32)>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        cant_tell: bool,
    },
    /// The value, with its interval or the model's test MAE as its typical miss.
    Value {
        task: String,
        value: f32,
        #[serde(skip_serializing_if = "Option::is_none")]
        low: Option<f32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        high: Option<f32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        plus_minus: Option<f32>,
    },
}

impl Attributes {
    /// The answers to `tasks` (the model's, in its order), each read from its field.
    pub fn answers(&self, tasks: &[TaskSpec]) -> Vec<Answer> {
        let (gender, young) = (TaskSpec::gender(), TaskSpec::young());
        let class = |task: &TaskSpec, probabilities, cant_tell| Answer::Class {
            task: task.name.clone(),
            probabilities,
            cant_tell,
        };
        let binary = |task: &TaskSpec, p: f32, cant_tell| {
            class(task, task.labels().iter().cloned().zip([1.0 - p, p]).collect(), cant_tell)
        };
        let value = |task: &TaskSpec, value, (low, high), plus_minus| Answer::Value {
            task: task.name.clone(),
            value,
            low,
            high,
            plus_minus,
        };
        let cant_tell = self.gender == Some(Verdict::CantTell);
        tasks
            .iter()
            .filter_map(|task| match (&self.female_probability, &self.young_probability, &self.age, &self.race) {
                (Some(p), _, _, _) if *task == gender => Some(binary(task, *p, cant_tell)),
                (_, Some(p), _, _) if *task == young => Some(binary(task, *p, false)),
                (_, _, Some(age), _) if task.name == "age" => {
                    Some(value(task, age.years, (age.low, age.high), age.plus_minus))
                }
                (_, _, _, Some(race)) if *task == TaskSpec::race() => Some(class(task, race.clone(), false)),
                _ => match self.other.get(&task.name)? {
                    Other::Class(probabilities) => Some(class(task, probabilities.clone(), false)),
                    Other::Value { value: v, plus_minus } => Some(value(task, *v, (None, None), Some(*plus_minus))),
                },
            })
            .collect()
    }
}

/// The head's outputs for `[n, features]`: class probabilities, or the bare regression output.
pub fn output_tensors(head: &MtlHead, features: Tensor<2>) -> Vec<Tensor<2>> {
    head.forward(features).into_iter().map(|out| if out.dims()[1] > 1 { softmax(out, 1) } else { out }).collect()
}

/// [`output_tensors`] read back as plain numbers per task (a native, blocking read).
pub fn raw_outputs(head: &MtlHead, features: Tensor<2>) -> Vec<Vec<f32>> {
    output_tensors(head, features)
        .into_iter()
        .map(|out| out.into_data().try_to_vec::<f32>().expect("float outputs"))
        .collect()
}

/// A prediction that is not a number: JSON would carry it as `null`, which reads as a
/// confident answer ("male 100 %") or breaks the page, so it is an error instead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the model's {task} output is not a finite number: this model file cannot be used")]
pub struct NonFiniteOutput {
    pub task: String,
}

/// The attributes of `n` faces from [`raw_outputs`], read through the header's calibration.
pub fn attributes(header: &Header, raw: &[Vec<f32>], n: usize) -> Result<Vec<Attributes>, NonFiniteOutput> {
    // The header's figures are checked finite when the file is read.
    let mae = |task: &TaskSpec| header.test_figure(task).unwrap_or(0.0) as f32;
    let calibration = &header.calibration;
    let (gender, race, young) = (TaskSpec::gender(), TaskSpec::race(), TaskSpec::young());
    (0..n)
        .map(|i| {
            let mut a = Attributes::default();
            for (t, (task, values)) in header.tasks.iter().zip(raw).enumerate() {
                let width = task.outputs();
                let row = &values[i * width..(i + 1) * width];
                let non_finite = || NonFiniteOutput { task: task.name.clone() };
                let finite = |v: f32| Some(v).filter(|v| v.is_finite()).ok_or_else(non_finite);
                if row.iter().any(|v| !v.is_finite()) {
                    return Err(non_finite());
                }
                let tempered = || temper(row, calibration.temperature(t));
                let probabilities = || task.labels().iter().cloned().zip(tempered()).collect();
                match &task.kind {
                    _ if *task == gender => {
                        let p = tempered()[1];
                        a.female_probability = Some(p);
                        a.gender = Some(Verdict::of(p, calibration));
                    }
                    _ if *task == young => a.young_probability = Some(tempered()[1]),
                    _ if *task == race => a.race = Some(probabilities()),
                    TaskKind::Regression { norm } if task.name == "age" => {
                        let years = finite(norm.value(row[0]))?;
                        a.age = Some(Age { years, low: None, high: None, plus_minus: Some(mae(task)) })
                    }
                    TaskKind::Regression { norm } => {
                        let value = finite(norm.value(row[0]))?;
                        a.other.insert(task.name.clone(), Other::Value { value, plus_minus: mae(task) });
                    }
                    TaskKind::Class { .. } => {
                        a.other.insert(task.name.clone(), Other::Class(probabilities()));
                    }
                    // The head's softmax (`output_tensors`) over the values, read as its mean (as
                    // trained: the temperature only sizes the interval).
                    TaskKind::Distribution { .. } => {
                        let bins = task.bins();
                        let value = finite(bins.iter().zip(row).map(|(b, p)| b * p).sum())?;
                        if task.name == "age" {
                            let (low, high) = match calibration.interval {
                                Some(level) => {
                                    let (low, high) = interval(&bins, &tempered(), level);
                                    (Some(low), Some(high))
                                }
                                None => (None, None),
                            };
                            let plus_minus = Some(mae(task)).filter(|_| low.is_none());
                            a.age = Some(Age { years: value, low, high, plus_minus });
                        } else {
                            a.other.insert(task.name.clone(), Other::Value { value, plus_minus: mae(task) });
                        }
                    }
                }
            }
            Ok(a)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbone::BackboneKind;
    use crate::detect::DetectorConfig;
    use crate::mtl::AgeNorm;

    fn header(tasks: Vec<TaskSpec>) -> Header {
        Header {
            format_version: crate::model_file::FORMAT_VERSION,
            backbone: BackboneKind::Faceres,
            tasks,
            shared: vec![512],
            head_hidden: 128,
            detector: DetectorConfig::default(),
            align: BackboneKind::Faceres.align_config(),
            trained_on: "test".into(),
            metrics: vec![("age_mae".into(), 5.0), ("weight_mae".into(), 3.0)],
            backbone_len: None,
            backbone_weights: Default::default(),
            head_weights: Default::default(),
            test_time_mirror: false,
            tuned_blocks: None,
            calibration: Default::default(),
        }
    }

    fn utkface() -> Header {
        header(vec![TaskSpec::gender(), TaskSpec::age(AgeNorm::ALL_AGES), TaskSpec::race()])
    }

    #[test]
    fn outputs_become_probabilities_and_years() {
        let raw = vec![vec![0.25, 0.75], vec![0.5], vec![0.1, 0.2, 0.3, 0.2, 0.2]];
        let faces = attributes(&utkface(), &raw, 1).unwrap();
        assert_eq!(faces[0].female_probability, Some(0.75));
        assert_eq!(faces[0].age, Some(Age { years: 20.0, low: None, high: None, plus_minus: Some(5.0) }));
        assert_eq!(faces[0].gender, Some(Verdict::Female));
        assert_eq!(faces[0].race.as_ref().unwrap()[2], ("Asian".to_string(), 0.3));
        let json = serde_json::to_value(&faces[0]).unwrap();
        assert_eq!(json["age"]["years"], 20.0);
        assert_eq!(json["gender"], "female");
        assert_eq!(json.as_object().unwrap().len(), 4, "{json}");
    }

    #[test]
    fn a_users_own_tasks_are_named_in_the_answer() {
        let band = TaskSpec::parse("band:class:child,adult", AgeNorm::ALL_AGES).unwrap();
        let weight = TaskSpec::parse("weight:regression", AgeNorm { offset: 70.0, scale: 10.0 }).unwrap();
        let raw = vec![vec![0.2, 0.8], vec![0.5]];
        let faces = attributes(&header(vec![band, weight]), &raw, 1).unwrap();
        let json = serde_json::to_value(&faces[0]).unwrap();
        assert_eq!(json["band"], serde_json::json!([["child", 0.2f32], ["adult", 0.8f32]]));
        assert_eq!(json["weight"], serde_json::json!({"value": 75.0, "plus_minus": 3.0}));
    }

    #[test]
    fn every_task_answers_in_the_models_order_whatever_its_field() {
        let band = TaskSpec::parse("band:class:child,adult", AgeNorm::ALL_AGES).unwrap();
        let weight = TaskSpec::parse("weight:regression", AgeNorm { offset: 70.0, scale: 10.0 }).unwrap();
        let mut h = utkface();
        h.tasks.extend([band, weight, TaskSpec::young()]);
        let raw =
            vec![vec![0.25, 0.75], vec![0.5], vec![0.1, 0.2, 0.3, 0.2, 0.2], vec![0.2, 0.8], vec![0.5], vec![0.5, 0.5]];
        let answers = attributes(&h, &raw, 1).unwrap()[0].answers(&h.tasks);
        let names: Vec<_> = answers.iter().map(|a| serde_json::to_value(a).unwrap()["task"].clone()).collect();
        assert_eq!(names, ["gender", "age", "race", "band", "weight", "young"]);
        let json = |i: usize| serde_json::to_value(&answers[i]).unwrap();
        assert_eq!(
            json(0),
            serde_json::json!({"kind": "class", "task": "gender", "probabilities": [["male", 0.25], ["female", 0.75]]})
        );
        assert_eq!(json(1), serde_json::json!({"kind": "value", "task": "age", "value": 20.0, "plus_minus": 5.0}));
        assert_eq!(json(2)["probabilities"][2], serde_json::json!(["Asian", 0.3f32]));
        assert_eq!(json(3)["probabilities"][1], serde_json::json!(["adult", 0.8f32]));
        assert_eq!(json(4), serde_json::json!({"kind": "value", "task": "weight", "value": 75.0, "plus_minus": 3.0}));
        assert_eq!(json(5)["probabilities"], serde_json::json!([["old", 0.5f32], ["young", 0.5f32]]));
    }

    #[test]
    fn a_calibrated_model_tempers_its_probabilities_says_cant_tell_and_gives_an_age_interval() {
        let age = TaskSpec::age(AgeNorm::ALL_AGES).as_distribution(0.0, 9.0);
        let mut h = header(vec![TaskSpec::gender(), age]);
        h.calibration = Calibration { temperatures: vec![2.0, 1.0], cant_tell_below: Some(0.6), interval: Some(0.8) };
        // Ages 3, 4, 5 at 0.25, 0.5, 0.25.
        let ages = [0.0, 0.0, 0.0, 0.25, 0.5, 0.25, 0.0, 0.0, 0.0, 0.0];
        let raw = vec![vec![0.2, 0.8, 0.45, 0.55], [ages, ages].concat()];
        let faces = attributes(&h, &raw, 2).unwrap();
        // 0.8 at a temperature of 2: 2 / (1 + 2) (weights sqrt(0.8) and sqrt(0.2)).
        assert!((faces[0].female_probability.unwrap() - 2.0 / 3.0).abs() < 1e-6);
        assert_eq!(faces[0].gender, Some(Verdict::Female));
        assert_eq!(faces[1].gender, Some(Verdict::CantTell));
        let years = faces[0].age.as_ref().unwrap();
        assert_eq!((years.years, years.plus_minus), (4.0, None));
        // The 10 % point lies 0.4 into bin 3 (2.5..3.5, holding 0.25); the 90 % point 0.6 into bin 5.
        assert!((years.low.unwrap() - 2.9).abs() < 1e-5 && (years.high.unwrap() - 5.1).abs() < 1e-5, "{years:?}");
        let answers = faces[1].answers(&h.tasks);
        let json = serde_json::to_value(&answers).unwrap();
        assert_eq!(json[0]["cant_tell"], true);
        assert_eq!(json[1]["low"], serde_json::to_value(years.low).unwrap());
        assert!(json[1].get("plus_minus").is_none(), "{json}");
        assert_eq!(serde_json::to_value(&faces[1]).unwrap()["gender"], "can't tell");
    }

    #[test]
    fn a_non_finite_output_is_an_error_not_a_null() {
        let ok = vec![vec![0.25, 0.75], vec![0.5], vec![0.2; 5]];
        for (task, value) in [(0, f32::NAN), (1, f32::INFINITY), (2, f32::NEG_INFINITY)] {
            let mut raw = ok.clone();
            raw[task][0] = value;
            assert_eq!(
                attributes(&utkface(), &raw, 1),
                Err(NonFiniteOutput { task: utkface().tasks[task].name.clone() })
            );
        }
        // Finite output, infinite years.
        let mut raw = ok.clone();
        raw[1][0] = f32::MAX;
        assert!(attributes(&utkface(), &raw, 1).is_err());
    }
}
