//! What the packed networks' tests share: a random input through Burn's network and ours.

use burn::prelude::*;
use burn::tensor::Distribution;

/// The same sums in another order: outputs within 1e-4 of the largest (random weights, so an
/// exact figure is not kept).
pub const SUM_ORDER: f32 = 1e-4;

/// Runs `[2, 3, side, side]` random values (drawn from `values`) through `burn` and `ours`, and
/// asserts that their outputs agree within `tolerance` times the largest.
pub fn agrees(
    side: usize,
    values: Distribution,
    tolerance: f32,
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
    assert!(worst <= tolerance * scale, "off by {worst} where outputs reach {scale}");
}
