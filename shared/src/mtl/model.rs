//! The multi-task network on top of backbone features, as in the thesis: shared fully
//! connected layers (Linear, LeakyReLU, then BatchNorm), then one head per task (Linear,
//! Dropout, LeakyReLU, and a bare Linear output). Dropout takes its masks from the caller
//! (training draws them from its seed, [`crate::training::order::dropout_keep`]) so that a
//! seed drops the same units on every backend.

use burn::nn::{BatchNorm, BatchNormConfig, LeakyRelu, LeakyReluConfig, Linear, LinearConfig};
use burn::prelude::*;

use crate::backbone::Tuned;

#[derive(Config, Debug)]
pub struct MtlConfig {
    /// Width of the backbone's feature vector.
    pub features: usize,
    /// Width of each task head's output, in task order ([`crate::mtl::TaskSpec::outputs`]).
    pub outputs: Vec<usize>,
    /// Widths of the shared layers.
    #[config(default = "vec![512]")]
    pub shared: Vec<usize>,
    /// Width of each head's hidden layer (the thesis's penultimate width); 0 for none, which
    /// with no shared layers is the single-task baseline: one output layer on the features.
    #[config(default = 128)]
    pub head_hidden: usize,
    #[config(default = 0.01)]
    pub negative_slope: f64,
}

#[derive(Module, Debug)]
pub struct SharedLayer {
    linear: Linear,
    activation: LeakyRelu,
    norm: BatchNorm,
}

#[derive(Module, Debug)]
pub struct TaskHead {
    hidden: Option<Linear>,
    activation: LeakyRelu,
    output: Linear,
}

#[derive(Module, Debug)]
pub struct MtlHead {
    pub shared: Vec<SharedLayer>,
    pub heads: Vec<TaskHead>,
}

impl MtlConfig {
    /// How many weights and biases the linear layers of [`Self::init`]'s network hold (what a
    /// model file must at least store), without building it.
    pub fn linear_parameters(&self) -> usize {
        let linear = |inputs: usize, outputs: usize| inputs.saturating_mul(outputs).saturating_add(outputs);
        let mut width = self.features;
        let mut total = 0usize;
        for &out in &self.shared {
            total = total.saturating_add(linear(width, out));
            width = out;
        }
        for &outputs in &self.outputs {
            let (hidden, into_output) = match self.head_hidden {
                0 => (0, width),
                h => (linear(width, h), h),
            };
            total = total.saturating_add(hidden).saturating_add(linear(into_output, outputs));
        }
        total
    }

    pub fn init(&self, device: &Device) -> MtlHead {
        let activation = LeakyReluConfig::new().with_negative_slope(self.negative_slope);
        let mut width = self.features;
        let shared = self
            .shared
            .iter()
            .map(|&out| {
                let layer = SharedLayer {
                    linear: LinearConfig::new(width, out).init(device),
                    activation: activation.init(),
                    norm: BatchNormConfig::new(out).init(device),
                };
                width = out;
                layer
            })
            .collect();
        let heads = self
            .outputs
            .iter()
            .map(|&outputs| TaskHead {
                hidden: (self.head_hidden > 0).then(|| LinearConfig::new(width, self.head_hidden).init(device)),
                activation: activation.init(),
                output: LinearConfig::new(if self.head_hidden > 0 { self.head_hidden } else { width }, outputs)
                    .init(device),
            })
            .collect();
        MtlHead { shared, heads }
    }
}

impl MtlHead {
    /// `[n, features]` -> one `[n, outputs]` tensor per task, in task order (inference: no
    /// dropout).
    pub fn forward(&self, features: Tensor<2>) -> Vec<Tensor<2>> {
        self.forward_dropped(features, &[])
    }

    /// [`Self::forward`] with dropout: `keep` holds one `[n, head_hidden]` mask per head, 0 for
    /// a dropped unit and `1 / (1 - p)` for a kept one (inverted dropout); heads without a mask
    /// (an empty `keep`, or no hidden layer) drop nothing.
    pub fn forward_dropped(&self, features: Tensor<2>, keep: &[Tensor<2>]) -> Vec<Tensor<2>> {
        let mut x = features;
        for layer in &self.shared {
            x = layer.norm.forward(layer.activation.forward(layer.linear.forward(x)));
        }
        self.heads
            .iter()
            .enumerate()
            .map(|(i, head)| {
                let hidden = match (&head.hidden, keep.get(i)) {
                    (Some(hidden), Some(keep)) => head.activation.forward(hidden.forward(x.clone()) * keep.clone()),
                    (Some(hidden), None) => head.activation.forward(hidden.forward(x.clone())),
                    (None, _) => x.clone(),
                };
                head.output.forward(hidden)
            })
            .collect()
    }
}

/// `[n, features]` backbone features through `head` with dropout masks `keep` (see
/// [`MtlHead::forward_dropped`]); with a `tuned` part of the backbone, its input rows
/// ([`Tuned::forward`]) through both -> one `[n, outputs]` tensor per task.
pub fn forward(head: &MtlHead, tuned: Option<&Tuned>, x: Tensor<2>, keep: &[Tensor<2>]) -> Vec<Tensor<2>> {
    head.forward_dropped(features(tuned, x), keep)
}

/// The features a head reads: `x` itself, or what the `tuned` part makes of it.
pub fn features(tuned: Option<&Tuned>, x: Tensor<2>) -> Tensor<2> {
    match tuned {
        Some(tuned) => tuned.forward(x),
        None => x,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tolerance};

    #[test]
    fn a_dropped_unit_contributes_nothing_and_a_kept_one_is_scaled() {
        let device = Device::flex();
        let head = MtlConfig::new(6, vec![2, 1]).with_shared(vec![]).with_head_hidden(4).init(&device);
        let x = Tensor::<2>::random([3, 6], Distribution::Default, &device);
        let masks = |value: f32| vec![Tensor::<2>::full([3, 4], value, &device); 2];
        let [plain, dropped, doubled] = [None, Some(0.0), Some(2.0)].map(|value| match value {
            None => head.forward(x.clone()),
            Some(value) => head.forward_dropped(x.clone(), &masks(value)),
        });
        for task in 0..2 {
            // Every hidden unit dropped: the output is the output layer's bias, whatever the input.
            let rows = dropped[task].clone();
            rows.clone()
                .into_data()
                .assert_approx_eq::<f32>(&rows.narrow(0, 0, 1).repeat_dim(0, 3).into_data(), Tolerance::default());
            // LeakyReLU is positively homogeneous: units kept at scale 2 move the output twice as far.
            let twice = (plain[task].clone() - dropped[task].clone()).mul_scalar(2.0);
            (doubled[task].clone() - dropped[task].clone())
                .into_data()
                .assert_approx_eq::<f32>(&twice.into_data(), Tolerance::default());
        }
    }
}
