//! The backward of a fused ReLU6, min(max(v, 0), 6), from the layer's output.

use super::lanes;
use super::parallel::each_pair;

/// The gradient that passes back through ReLU6 given its output `y`: `grad` where 0 < y < 6, zero
/// where the activation was cut (the ties y = 0 or 6 exactly count as cut). Also the sum of each
/// `plane`-long run of it, a bias gradient's share from one image's channel.
pub fn through_relu6(grad: &[f32], y: &[f32], plane: usize) -> (Vec<f32>, Vec<f64>) {
    let mut passed = vec![0.0; grad.len()];
    let mut sums = vec![0.0; grad.len() / plane];
    each_pair(&mut passed, plane, &mut sums, 1, |i, out, sum| {
        let (grad, y) = (&grad[i * plane..][..plane], &y[i * plane..][..plane]);
        for ((o, &g), &y) in out.iter_mut().zip(grad).zip(y) {
            *o = if y > 0.0 && y < 6.0 { g } else { 0.0 };
        }
        sum[0] = f64::from(lanes::sum(out));
    });
    (passed, sums)
}

/// Per-channel bias gradient `[channels]` from the per-plane sums of an NCHW gradient.
pub fn bias_gradient(plane_sums: &[f64], channels: usize) -> Vec<f32> {
    let mut bias = vec![0.0f64; channels];
    for image in plane_sums.chunks_exact(channels) {
        bias.iter_mut().zip(image).for_each(|(b, s)| *b += s);
    }
    bias.into_iter().map(|b| b as f32).collect()
}
