//! Burn's convolutions read out for packing.

use burn::nn::conv::Conv2d;
use burn::prelude::*;

/// A convolution's kernels, flat as Burn holds them (`[out, in, kh, kw]`), and its biases
/// (zeros where it has none).
pub fn values(conv: &Conv2d) -> (Vec<f32>, Vec<f32>) {
    let flat = |t: Tensor<1>| t.into_data().convert::<f32>().try_to_vec::<f32>().expect("weights are floats");
    let weight = conv.weight.val();
    let out = weight.dims()[0];
    let count = weight.shape().num_elements();
    let bias = conv.bias.as_ref().map(|b| flat(b.val())).unwrap_or_else(|| vec![0.0; out]);
    (flat(weight.reshape([count])), bias)
}
