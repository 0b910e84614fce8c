//! From the head's raw outputs to what a person reads: probabilities, years, a distribution.

use burn::prelude::*;
use burn::tensor::activation::softmax;
use serde::{Deserialize, Serialize};

use crate::mtl::{MtlHead, RACES, Task};
use crate::weights::Header;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Age {
    pub years: f32,
    /// The model's mean absolute error on its test set: a typical miss, in years.
    pub plus_minus: f32,
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

/// The attributes of `n` faces from [`raw_outputs`].
pub fn attributes(header: &Header, raw: &[Vec<f32>], n: usize) -> Vec<Attributes> {
    let mae = header.metrics.iter().find(|(k, _)| k == "age_mae").map_or(f32::NAN, |(_, v)| *v as f32);
    (0..n)
        .map(|i| {
            let mut a = Attributes::default();
            for (task, values) in header.tasks.iter().zip(raw) {
                let width = task.outputs();
                let row = &values[i * width..(i + 1) * width];
                match task {
                    Task::Gender => a.female_probability = Some(row[1]),
                    Task::Young => a.young_probability = Some(row[1]),
                    Task::Age => {
                        a.age = Some(Age { years: row[0] * header.age_scale + header.age_offset, plus_minus: mae })
                    }
                    Task::Race => a.race = Some(RACES.iter().map(|r| r.to_string()).zip(row.iter().copied()).collect()),
                }
            }
            a
        })
        .collect()
}
