//! Labelled examples as the network reads them: one split of a run, whatever its inputs
//! (cached features, activations at a cut of the backbone, or crops).

use burn::prelude::*;

use super::{Ranges, Target};
use crate::mtl::{Label, TaskKind, TaskSpec};

/// Labelled examples as the network reads them: one split of a run.
pub trait Examples {
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rows `indices` as the network's input on `device` (see [`model::forward`]); a row whose
    /// `mirrored` flag is set is seen mirrored.
    fn rows(&self, indices: &[i64], mirrored: &[bool], device: &Device) -> Tensor<2>;

    /// One target per task, on the device the examples live on.
    fn targets(&self) -> &[Target];

    /// Per task and example, the true class or value in its own unit (what metrics compare).
    fn truth(&self) -> &[Vec<f64>];

    /// Examples per forward pass when evaluating.
    fn chunk(&self) -> usize {
        self.len().max(1)
    }

    /// Whether training sees mirror views (crops and cached activations can be mirrored,
    /// features cannot).
    fn mirrors(&self) -> bool {
        false
    }

    /// Whether evaluation reads each example as the mean of its own and its mirror view's
    /// features (test-time mirror, as the exported model predicts).
    fn averages_mirror(&self) -> bool {
        false
    }
}

/// Cached backbone features `[n, d]` with their targets: the examples of a head trained on a
/// frozen backbone.
pub struct FeatureExamples {
    pub features: Tensor<2>,
    pub targets: Vec<Target>,
    pub truth: Vec<Vec<f64>>,
}

impl FeatureExamples {
    /// `[n, dim]` features (row-major) of faces with these labels, for `tasks`, each read from
    /// its column of the labels.
    pub fn new<L: AsRef<[Label]>>(
        features: Vec<f32>,
        dim: usize,
        faces: &[L],
        tasks: &[TaskSpec],
        columns: &[usize],
        device: &Device,
    ) -> Self {
        let n = faces.len();
        Self {
            features: Tensor::from_data(TensorData::new(features, [n, dim]), device),
            targets: targets(tasks, columns, faces, device),
            truth: truth(columns, faces),
        }
    }
}

/// Per task and face, the true class or value in its own unit (what metrics compare), from
/// the task's column of the faces' labels; NaN for a face without one.
pub fn truth<L: AsRef<[Label]>>(columns: &[usize], faces: &[L]) -> Vec<Vec<f64>> {
    columns
        .iter()
        .map(|&c| {
            faces
                .iter()
                .map(|f| match f.as_ref()[c] {
                    Label::Class(class) => class as f64,
                    Label::Value(value) => f64::from(value),
                    Label::Bounded { .. } | Label::Missing => f64::NAN,
                })
                .collect()
        })
        .collect()
}

/// Per task, the faces' targets on the network's scale, from the task's column of their labels;
/// a value task some faces carry only a range for gets a [`Target::Censored`], and a task some
/// faces have no label for a [`Target::Partial`] that leaves them out.
pub fn targets<L: AsRef<[Label]>>(tasks: &[TaskSpec], columns: &[usize], faces: &[L], device: &Device) -> Vec<Target> {
    let n = faces.len();
    let value = |f: &L, c: usize| match f.as_ref().get(c) {
        Some(Label::Value(v)) => Some(*v),
        _ => None,
    };
    let class = |f: &L, c: usize| match f.as_ref().get(c) {
        Some(Label::Class(k)) => Some(*k),
        _ => None,
    };
    let partial = |target: Target, c: usize| {
        let labelled: Vec<f32> = faces
            .iter()
            .map(|f| if matches!(f.as_ref().get(c), Some(Label::Missing) | None) { 0.0 } else { 1.0 })
            .collect();
        if labelled.iter().all(|l| *l == 1.0) {
            return target;
        }
        Target::Partial {
            target: Box::new(target),
            labelled: Tensor::from_data(TensorData::new(labelled, [n]), device),
        }
    };
    tasks
        .iter()
        .zip(columns)
        .map(|(task, &c)| {
            let target = match &task.kind {
                TaskKind::Regression { norm } => {
                    let values = faces.iter().map(|f| norm.normalise(value(f, c).unwrap_or(norm.offset))).collect();
                    Target::Value(Tensor::from_data(TensorData::new(values, [n]), device))
                }
                TaskKind::Class { .. } => {
                    let classes = faces.iter().map(|f| class(f, c).unwrap_or(0) as i64).collect();
                    Target::Class(Tensor::from_data(TensorData::new(classes, [n]), device))
                }
                TaskKind::Distribution { low, sigma, .. } => {
                    let values = faces.iter().map(|f| value(f, c).unwrap_or(*low)).collect();
                    Target::Distribution {
                        values: Tensor::from_data(TensorData::new(values, [n]), device),
                        bins: task.bins(),
                        sigma: *sigma,
                    }
                }
            };
            partial(censored(target, &task.kind, c, faces), c)
        })
        .collect()
}

/// `target` as a [`Target::Censored`] when some faces' labels in column `c` are ranges, with
/// the ranges on the target's scale (a regression's normalised values, a distribution's years).
fn censored<L: AsRef<[Label]>>(target: Target, kind: &TaskKind, c: usize, faces: &[L]) -> Target {
    let ranges: Vec<Option<(f32, f32)>> = faces
        .iter()
        .map(|f| match f.as_ref().get(c) {
            Some(Label::Bounded { low, high }) => Some((*low, *high)),
            _ => None,
        })
        .collect();
    if ranges.iter().all(Option::is_none) {
        return target;
    }
    let scale = |v: f32| match kind {
        TaskKind::Regression { norm } => norm.normalise(v),
        _ => v,
    };
    let n = faces.len();
    let column = |pick: fn(&(f32, f32)) -> f32| {
        let values = ranges.iter().map(|r| r.as_ref().map_or(0.0, |r| scale(pick(r)))).collect();
        Tensor::<1>::from_data(TensorData::new(values, [n]), &target.device())
    };
    let bounded = ranges.iter().map(|r| if r.is_some() { 1.0 } else { 0.0 }).collect();
    let ranges = Ranges {
        bounded: Tensor::from_data(TensorData::new(bounded, [n]), &target.device()),
        low: column(|r| r.0),
        high: column(|r| r.1),
    };
    Target::Censored { exact: Box::new(target), ranges: Box::new(ranges) }
}

impl Examples for FeatureExamples {
    fn len(&self) -> usize {
        self.features.dims()[0]
    }

    fn rows(&self, indices: &[i64], _: &[bool], device: &Device) -> Tensor<2> {
        let idx =
            Tensor::<1, Int>::from_data(TensorData::new(indices.to_vec(), [indices.len()]), &self.features.device());
        self.features.clone().select(0, idx).to_device(device)
    }

    fn targets(&self) -> &[Target] {
        &self.targets
    }

    fn truth(&self) -> &[Vec<f64>] {
        &self.truth
    }
}
