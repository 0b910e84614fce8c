//! A network's losses, metrics and predictions on one split. It takes the network alone (the
//! head, and a fine-tuned backbone): evaluation needs nothing of training's loss weighting.

use burn::prelude::*;
use facemtl::backbone::Backbone;
use facemtl::mtl::{Metric, MtlHead, TaskKind, TaskSpec, model};
use facemtl::predict::expectation;
use serde::{Deserialize, Serialize};

use super::split::Split;

/// Per-task loss and metric (accuracy, or MAE in the value's unit) on one split.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub losses: Vec<f64>,
    pub metrics: Vec<f64>,
    /// Per task and sample: the predicted class, or the predicted value in its own unit.
    pub predictions: Vec<Vec<f64>>,
}

pub fn scalar(t: Tensor<1>) -> f64 {
    t.into_data().convert::<f32>().try_to_vec::<f32>().map(|v| f64::from(v[0])).unwrap_or(f64::NAN)
}

fn floats<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().expect("float outputs").into_iter().map(f64::from).collect()
}

/// `head` (after `backbone` when it has one) on every face of `split`.
pub fn evaluate(head: &MtlHead, backbone: Option<&Backbone>, split: &Split, tasks: &[TaskSpec]) -> Evaluation {
    let Some(device) = split.targets.first().map(|t| t.device()) else { return Evaluation::default() };
    let order: Vec<i64> = (0..split.len() as i64).collect();
    let chunks: Vec<Vec<Tensor<2>>> = order
        .chunks(split.inputs.chunk(split.len()))
        .map(|chunk| model::forward(head, backbone, split.inputs.rows(chunk, &[], &device)))
        .collect();
    let outputs: Vec<Tensor<2>> =
        (0..tasks.len()).map(|t| Tensor::cat(chunks.iter().map(|c| c[t].clone()).collect(), 0)).collect();
    let mut evaluation = Evaluation::default();
    for (((task, output), target), truth) in tasks.iter().zip(outputs).zip(&split.targets).zip(&split.truth) {
        evaluation.losses.push(scalar(target.loss(output.clone())));
        let predicted: Vec<f64> = match &task.kind {
            TaskKind::Regression { norm } => floats(output.reshape([split.len()]))
                .into_iter()
                .map(|p| p * f64::from(norm.scale) + f64::from(norm.offset))
                .collect(),
            TaskKind::Class { .. } => floats(output.argmax(1).float()),
            TaskKind::Distribution { .. } => floats(expectation(output, &task.bins())),
        };
        let n = truth.len().max(1) as f64;
        evaluation.metrics.push(match task.metric() {
            Metric::Mae => predicted.iter().zip(truth).map(|(p, t)| (p - t).abs()).sum::<f64>() / n,
            Metric::Accuracy => predicted.iter().zip(truth).filter(|(p, t)| p == t).count() as f64 / n,
        });
        evaluation.predictions.push(predicted);
    }
    evaluation
}
