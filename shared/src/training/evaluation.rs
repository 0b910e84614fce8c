//! A network measured on one split: per-task losses, metrics and predictions, read back
//! without blocking (a WebGPU device cannot block).

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::Examples;
use crate::backbone::Tuned;
use crate::mtl::{Metric, MtlHead, TaskKind, TaskSpec, expectation, model};

/// Per-task loss and metric (accuracy, or MAE in the value's unit) on one split.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub losses: Vec<f64>,
    pub metrics: Vec<f64>,
    /// Per task and example: the predicted class, or the predicted value in its own unit.
    pub predictions: Vec<Vec<f64>>,
}

/// A tensor's values as `f64`, read back without blocking.
pub(super) async fn read<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    match t.into_data_async().await {
        Ok(data) => data.convert::<f32>().try_to_vec::<f32>().unwrap_or_default().into_iter().map(f64::from).collect(),
        Err(_) => Vec::new(),
    }
}

/// `head` (after the tuned part of the backbone when it has one) on every example of `examples`: per-task losses,
/// metrics and predictions.
pub async fn evaluate(
    head: &MtlHead,
    backbone: Option<&Tuned>,
    examples: &dyn Examples,
    tasks: &[TaskSpec],
) -> Evaluation {
    let Some(device) = examples.targets().first().map(|t| t.device()) else { return Evaluation::default() };
    let n = examples.len();
    let order: Vec<i64> = (0..n as i64).collect();
    let chunks: Vec<Vec<Tensor<2>>> = order
        .chunks(examples.chunk())
        .map(|chunk| {
            let features =
                |mirrored: bool| model::features(backbone, examples.rows(chunk, &vec![mirrored; chunk.len()], &device));
            head.forward(match examples.averages_mirror() {
                true => (features(false) + features(true)).div_scalar(2.0),
                false => features(false),
            })
        })
        .collect();
    let outputs: Vec<Tensor<2>> =
        (0..tasks.len()).map(|t| Tensor::cat(chunks.iter().map(|c| c[t].clone()).collect(), 0)).collect();
    let mut evaluation = Evaluation::default();
    for (((task, output), target), truth) in tasks.iter().zip(outputs).zip(examples.targets()).zip(examples.truth()) {
        evaluation.losses.push(read(target.loss(output.clone())).await.first().copied().unwrap_or(f64::NAN));
        let predicted: Vec<f64> = match &task.kind {
            TaskKind::Regression { norm } => read(output.reshape([n]))
                .await
                .into_iter()
                .map(|p| p * f64::from(norm.scale) + f64::from(norm.offset))
                .collect(),
            TaskKind::Class { .. } => read(output.argmax(1).float()).await,
            TaskKind::Distribution { .. } => read(expectation(output, &task.bins())).await,
        };
        // Faces without a label for the task (NaN truth) are left out of its metric.
        let labelled = || predicted.iter().zip(truth).filter(|(_, t)| !t.is_nan());
        let count = labelled().count().max(1) as f64;
        evaluation.metrics.push(match task.metric() {
            Metric::Mae => labelled().map(|(p, t)| (p - t).abs()).sum::<f64>() / count,
            Metric::Accuracy => labelled().filter(|(p, t)| p == t).count() as f64 / count,
        });
        evaluation.predictions.push(predicted);
    }
    evaluation
}
