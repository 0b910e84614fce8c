//! ReLU6, min(max(v, 0), 6), fused into the layers: forward on a value, and backward
//! from the layer's output.

use super::lanes;

/// ReLU6 of `v` plus the layer's `bias`.
#[inline]
pub fn relu6(v: f32, bias: f32) -> f32 {
    (v + bias).clamp(0.0, 6.0)
}

/// Appends to `passed` the gradient that passes back through ReLU6 given its output `y`: `grad`
/// where 0 < y < 6, zero where the activation was cut (the ties y = 0 or 6 exactly count as
/// cut). Returns the sum of what it appended, a bias gradient's share.
pub fn through_relu6(grad: &[f32], y: &[f32], passed: &mut Vec<f32>) -> f32 {
    let start = passed.len();
    passed.extend(grad.iter().zip(y).map(|(&g, &y)| if y > 0.0 && y < 6.0 { g } else { 0.0 }));
    lanes::sum(&passed[start..])
}

/// One image's output gradient `[channels, pixels]` (of `grad`, with the output `y`, both the
/// image's own slices) passed back through ReLU6 into `passed` (cleared first), each channel's
/// sum added to its `bias_sums`.
pub fn image_through_relu6(grad: &[f32], y: &[f32], pixels: usize, bias_sums: &mut [f32], passed: &mut Vec<f32>) {
    passed.clear();
    for ((bias, grad), y) in bias_sums.iter_mut().zip(grad.chunks_exact(pixels)).zip(y.chunks_exact(pixels)) {
        *bias += through_relu6(grad, y, passed);
    }
}
