//! From the head's raw outputs to what a person reads: probabilities, years, a distribution.

use burn::prelude::*;
use burn::tensor::activation::softmax;
use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::model_file::Header;
use crate::mtl::{MtlHead, TaskKind, TaskSpec};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Age {
    pub years: f32,
    /// The model's mean absolute error on its test set: a typical miss, in years.
    pub plus_minus: f32,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub female_probability: Option<f32>,
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
    /// The probability of each label, in the task's label order.
    Class { task: String, probabilities: Vec<(String, f32)> },
    /// The value, and the model's test MAE as its typical miss.
    Value { task: String, value: f32, plus_minus: f32 },
}

impl Attributes {
    /// The answers to `tasks` (the model's, in its order), each read from its field.
    pub fn answers(&self, tasks: &[TaskSpec]) -> Vec<Answer> {
        let (gender, young) = (TaskSpec::gender(), TaskSpec::young());
        let class = |task: &TaskSpec, probabilities| Answer::Class { task: task.name.clone(), probabilities };
        let binary = |task: &TaskSpec, p: f32| class(task, task.labels().iter().cloned().zip([1.0 - p, p]).collect());
        let value = |task: &TaskSpec, value, plus_minus| Answer::Value { task: task.name.clone(), value, plus_minus };
        tasks
            .iter()
            .filter_map(|task| match (&self.female_probability, &self.young_probability, &self.age, &self.race) {
                (Some(p), _, _, _) if *task == gender => Some(binary(task, *p)),
                (_, Some(p), _, _) if *task == young => Some(binary(task, *p)),
                (_, _, Some(age), _) if task.name == "age" => Some(value(task, age.years, age.plus_minus)),
                (_, _, _, Some(race)) if *task == TaskSpec::race() => Some(class(task, race.clone())),
                _ => match self.other.get(&task.name)? {
                    Other::Class(probabilities) => Some(class(task, probabilities.clone())),
                    Other::Value { value: v, plus_minus } => Some(value(task, *v, *plus_minus)),
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

/// The attributes of `n` faces from [`raw_outputs`].
pub fn attributes(header: &Header, raw: &[Vec<f32>], n: usize) -> Result<Vec<Attributes>, NonFiniteOutput> {
    // The header's figures are checked finite when the file is read.
    let mae = |task: &TaskSpec| header.test_figure(task).unwrap_or(0.0) as f32;
    let (gender, race, young) = (TaskSpec::gender(), TaskSpec::race(), TaskSpec::young());
    (0..n)
        .map(|i| {
            let mut a = Attributes::default();
            for (task, values) in header.tasks.iter().zip(raw) {
                let width = task.outputs();
                let row = &values[i * width..(i + 1) * width];
                let non_finite = || NonFiniteOutput { task: task.name.clone() };
                let finite = |v: f32| Some(v).filter(|v| v.is_finite()).ok_or_else(non_finite);
                if row.iter().any(|v| !v.is_finite()) {
                    return Err(non_finite());
                }
                let probabilities = || task.labels().iter().cloned().zip(row.iter().copied()).collect();
                match &task.kind {
                    _ if *task == gender => a.female_probability = Some(row[1]),
                    _ if *task == young => a.young_probability = Some(row[1]),
                    _ if *task == race => a.race = Some(probabilities()),
                    TaskKind::Regression { norm } if task.name == "age" => {
                        a.age = Some(Age { years: finite(norm.value(row[0]))?, plus_minus: mae(task) })
                    }
                    TaskKind::Regression { norm } => {
                        let value = finite(norm.value(row[0]))?;
                        a.other.insert(task.name.clone(), Other::Value { value, plus_minus: mae(task) });
                    }
                    TaskKind::Class { .. } => {
                        a.other.insert(task.name.clone(), Other::Class(probabilities()));
                    }
                    // The head's softmax (`output_tensors`) over the values, read as its mean.
                    TaskKind::Distribution { .. } => {
                        let value = finite(task.bins().iter().zip(row).map(|(b, p)| b * p).sum())?;
                        if task.name == "age" {
                            a.age = Some(Age { years: value, plus_minus: mae(task) });
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
        assert_eq!(faces[0].age, Some(Age { years: 20.0, plus_minus: 5.0 }));
        assert_eq!(faces[0].race.as_ref().unwrap()[2], ("Asian".to_string(), 0.3));
        let json = serde_json::to_value(&faces[0]).unwrap();
        assert_eq!(json["age"]["years"], 20.0);
        assert_eq!(json.as_object().unwrap().len(), 3, "{json}");
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
