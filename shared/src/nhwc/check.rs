//! What the packed networks' tests share: a random input through Burn's network and ours.

use burn::prelude::*;
use burn::tensor::Distribution;

/// Runs `[2, 3, side, side]` random values (drawn from `values`) through `burn` and `ours`, and
/// asserts that their outputs agree within 1e-4 of the largest (the same sums in another order;
/// random weights, so an exact figure is not kept).
pub fn agrees(
    side: usize,
    values: Distribution,
    burn: impl Fn(Tensor<4>) -> Vec<f32>,
    ours: impl Fn(&[f32]) -> Vec<f32>,
) {
    let x = Tensor::<4>::random([2, 3, side, side], values, &Device::flex());
    let input = x.clone().into_data().try_to_vec::<f32>().unwrap();
    let (theirs, ours) = (burn(x), ours(&input));
    assert_eq!(ours.len(), theirs.len());
    let scale = theirs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(scale > 0.0, "the outputs are not all zero");
    let worst = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst <= 1e-4 * scale, "off by {worst} where outputs reach {scale}");
}
