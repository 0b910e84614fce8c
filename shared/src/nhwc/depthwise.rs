//! A 3x3 depthwise convolution (one kernel per channel) with bias and ReLU6, SAME-padded.

use super::lanes::{F32x4, quads, quads_mut};
use super::same_padding_before;

/// Vectors of four channels computed together.
const VECTORS: usize = 4;
const LANES: usize = 4 * VECTORS;

#[derive(Debug, Clone)]
pub struct Depthwise {
    channels: usize,
    stride: usize,
    /// `[3][3][channels]`: a tap's kernels lie side by side, as the pixels' channels do.
    taps: Vec<f32>,
    bias: Vec<f32>,
}

impl Depthwise {
    /// From a depthwise convolution's kernels `[c, 3, 3]` and biases `[c]`; `c` must be a
    /// multiple of 16, as faceres's are.
    pub fn new(weight: &[f32], bias: Vec<f32>, stride: usize) -> Self {
        let channels = bias.len();
        assert!(
            channels.is_multiple_of(LANES) && weight.len() == channels * 9,
            "depthwise kernels of {channels} channels are not packed"
        );
        let taps = (0..9).flat_map(|t| (0..channels).map(move |c| (t, c))).map(|(t, c)| weight[c * 9 + t]).collect();
        Self { channels, stride, taps, bias }
    }

    /// The side of the output of a `side` x `side` input.
    pub fn side_out(&self, side: usize) -> usize {
        side.div_ceil(self.stride)
    }

    /// `x` `[side, side, c]` -> `out` `[side_out, side_out, c]`.
    pub fn forward(&self, x: &[f32], side: usize, out: &mut [f32]) {
        let (c, stride) = (self.channels, self.stride);
        let side_out = self.side_out(side);
        assert_eq!(x.len(), side * side * c);
        assert_eq!(out.len(), side_out * side_out * c);
        let pad = same_padding_before(3, stride, side) as isize;
        let inside = |v: isize| (0..side as isize).contains(&v);
        // (input offset, kernel offset) of the taps that fall inside the image.
        let mut taps = [(0usize, 0usize); 9];
        for (p, pixel) in out.chunks_exact_mut(c).enumerate() {
            let (oy, ox) = ((p / side_out) as isize, (p % side_out) as isize);
            let mut count = 0;
            for ky in 0..3 {
                let iy = oy * stride as isize + ky - pad;
                for kx in 0..3 {
                    let ix = ox * stride as isize + kx - pad;
                    if inside(iy) && inside(ix) {
                        taps[count] = ((iy as usize * side + ix as usize) * c, (ky * 3 + kx) as usize * c);
                        count += 1;
                    }
                }
            }
            let taps = &taps[..count];
            let (bias, taps_w, x) = (quads(&self.bias), quads(&self.taps), quads(x));
            for (block, o) in quads_mut(pixel).chunks_exact_mut(VECTORS).enumerate() {
                let lane = block * VECTORS;
                let mut acc: [F32x4; VECTORS] = std::array::from_fn(|j| F32x4::load(&bias[lane + j]));
                for &(xi, wi) in taps {
                    let (xi, wi) = (xi / 4 + lane, wi / 4 + lane);
                    for (j, acc) in acc.iter_mut().enumerate() {
                        *acc = acc.mul_add(F32x4::load(&x[xi + j]), F32x4::load(&taps_w[wi + j]));
                    }
                }
                for (o, acc) in o.iter_mut().zip(acc) {
                    acc.relu6().store(o);
                }
            }
        }
    }
}
