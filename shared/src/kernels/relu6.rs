//! ReLU6, min(max(v, 0), 6), fused into the training layers: forward on a value, and backward
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
