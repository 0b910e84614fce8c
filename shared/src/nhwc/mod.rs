//! faceres's and BlazeFace's forward passes for the browser's CPU fallback: activations kept pixel by pixel
//! (NHWC), weights packed once when the model loads, bias and ReLU6 fused into each layer, and
//! inner loops over channel lanes that compile to WebAssembly SIMD.
//!
//! Burn's CPU backend runs the same network about twice as slowly in the browser: it keeps
//! channel planes (NCHW), converts layouts and packs its matrices on every call
//! (BENCHMARKS.md "Beside the peers"). Training and native inference keep Burn's kernels.

mod blazeface;
mod depthwise;
mod faceres;
mod lanes;
mod pointwise;
mod shortcut;
mod stem;

pub use blazeface::NhwcBlazeFace;
pub use faceres::NhwcFaceRes;

use burn::nn::conv::Conv2d;
use burn::prelude::*;
use lanes::F32x4;

/// What follows a layer's sums.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// Nothing (BlazeFace's depthwise convolutions, and layers whose shortcut is added first).
    Linear,
    Relu,
    /// min(max(x, 0), 6): faceres's.
    Relu6,
}

impl Activation {
    #[inline(always)]
    fn apply(self, v: F32x4) -> F32x4 {
        match self {
            Activation::Linear => v,
            Activation::Relu => v.relu(),
            Activation::Relu6 => v.relu6(),
        }
    }
}

/// The padding before the first row (or column) of a SAME convolution, as Burn places it:
/// half of what is needed, rounded down, the rest after the last.
fn same_padding_before(kernel: usize, stride: usize, side: usize) -> usize {
    let needed = (side.div_ceil(stride) - 1) * stride + kernel;
    needed.saturating_sub(side) / 2
}

/// A convolution's kernels, flat as Burn holds them (`[out, in, kh, kw]`), and its biases
/// (zeros where it has none).
fn values(conv: &Conv2d) -> (Vec<f32>, Vec<f32>) {
    let flat = |t: Tensor<1>| t.into_data().convert::<f32>().try_to_vec::<f32>().expect("weights are floats");
    let weight = conv.weight.val();
    let out = weight.dims()[0];
    let count = weight.shape().num_elements();
    let bias = conv.bias.as_ref().map(|b| flat(b.val())).unwrap_or_else(|| vec![0.0; out]);
    (flat(weight.reshape([count])), bias)
}
