//! The multi-task network on top of backbone features, as in the thesis: shared fully
//! connected layers (Linear, LeakyReLU, then BatchNorm), then one head per task (Linear,
//! Dropout, LeakyReLU, and a bare Linear output).

use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, LeakyRelu, LeakyReluConfig, Linear, LinearConfig};
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
    #[config(default = 0.5)]
    pub dropout: f64,
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
    dropout: Dropout,
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
                dropout: DropoutConfig::new(self.dropout).init(),
                activation: activation.init(),
                output: LinearConfig::new(if self.head_hidden > 0 { self.head_hidden } else { width }, outputs)
                    .init(device),
            })
            .collect();
        MtlHead { shared, heads }
    }
}

impl MtlHead {
    /// `[n, features]` -> one `[n, outputs]` tensor per task, in task order.
    pub fn forward(&self, features: Tensor<2>) -> Vec<Tensor<2>> {
        let mut x = features;
        for layer in &self.shared {
            x = layer.norm.forward(layer.activation.forward(layer.linear.forward(x)));
        }
        self.heads
            .iter()
            .map(|head| {
                let hidden = match &head.hidden {
                    Some(hidden) => head.activation.forward(head.dropout.forward(hidden.forward(x.clone()))),
                    None => x.clone(),
                };
                head.output.forward(hidden)
            })
            .collect()
    }
}

/// `[n, features]` backbone features through `head`; with a `tuned` part of the backbone, its
/// input rows ([`Tuned::forward`]) through both -> one `[n, outputs]` tensor per task.
pub fn forward(head: &MtlHead, tuned: Option<&Tuned>, x: Tensor<2>) -> Vec<Tensor<2>> {
    head.forward(features(tuned, x))
}

/// The features a head reads: `x` itself, or what the `tuned` part makes of it.
pub fn features(tuned: Option<&Tuned>, x: Tensor<2>) -> Tensor<2> {
    match tuned {
        Some(tuned) => tuned.forward(x),
        None => x,
    }
}
