//! A 3x3 depthwise convolution (one kernel per channel) with its bias and activation, SAME-padded.

use super::activation::Activation;
use super::lanes::{F32x4, quads, quads_mut};
use super::padding::same_padding_before;

/// Vectors of four channels computed together (the channels left over go one vector at a time).
const VECTORS: usize = 4;

#[derive(Debug, Clone)]
pub struct Depthwise {
    channels: usize,
    stride: usize,
    /// `[3][3][channels]`: a tap's kernels lie side by side, as the pixels' channels do.
    taps: Vec<f32>,
    bias: Vec<f32>,
    activation: Activation,
}

impl Depthwise {
    /// From a depthwise convolution's kernels `[c, 3, 3]` and biases `[c]`; `c` must be a
    /// multiple of 4, as faceres's and BlazeFace's are.
    pub fn new(weight: &[f32], bias: Vec<f32>, stride: usize, activation: Activation) -> Self {
        let channels = bias.len();
        assert!(
            channels.is_multiple_of(4) && weight.len() == channels * 9,
            "depthwise kernels of {channels} channels are not packed"
        );
        let taps = (0..9).flat_map(|t| (0..channels).map(move |c| (t, c))).map(|(t, c)| weight[c * 9 + t]).collect();
        Self { channels, stride, taps, bias, activation }
    }

    /// The side of the output of a `side` x `side` input.
    pub fn side_out(&self, side: usize) -> usize {
        side.div_ceil(self.stride)
    }

    /// `x` `[side, side, c]` -> `out` `[side_out, side_out, c]`.
    pub fn forward(&self, x: &[f32], side: usize, out: &mut [f32]) {
        let (c, stride) = (self.channels, self.stride as isize);
        let side_out = self.side_out(side);
        assert_eq!(x.len(), side * side * c);
        assert_eq!(out.len(), side_out * side_out * c);
        let vectors = c / 4;
        let pad = same_padding_before(3, self.stride, side) as isize;
        let inside = |v: isize| (0..side as isize).contains(&v);
        // (input, kernel) offsets in vectors of the nine taps, from the window's top-left pixel:
        // every pixel but those of the border takes them as they are.
        let window: [(usize, usize); 9] = std::array::from_fn(|t| (((t / 3) * side + t % 3) * vectors, t * vectors));
        let mut taps = [(0usize, 0usize); 9];
        let (x, out) = (quads(x), quads_mut(out));
        for (p, pixel) in out.chunks_exact_mut(vectors).enumerate() {
            let (top, left) = ((p / side_out) as isize * stride - pad, (p % side_out) as isize * stride - pad);
            let count = if inside(top) && inside(left) && inside(top + 2) && inside(left + 2) {
                let start = (top as usize * side + left as usize) * vectors;
                for (tap, &(xi, wi)) in taps.iter_mut().zip(&window) {
                    *tap = (start + xi, wi);
                }
                9
            } else {
                let mut count = 0;
                for t in 0..9 {
                    let (iy, ix) = (top + (t / 3) as isize, left + (t % 3) as isize);
                    if inside(iy) && inside(ix) {
                        taps[count] = ((iy as usize * side + ix as usize) * vectors, t * vectors);
                        count += 1;
                    }
                }
                count
            };
            self.pixel(x, &taps[..count], pixel);
        }
    }

    /// One output pixel's vectors from its `taps`: four at a time, then what is left.
    #[inline(always)]
    fn pixel(&self, x: &[[f32; 4]], taps: &[(usize, usize)], out: &mut [[f32; 4]]) {
        // BlazeFace's 24 channels in one pass over the taps.
        if out.len() == 6 {
            return self.lanes::<6>(x, taps, 0, out);
        }
        let (blocks, rest) = out.split_at_mut(out.len() / VECTORS * VECTORS);
        for (block, o) in blocks.chunks_exact_mut(VECTORS).enumerate() {
            self.lanes::<VECTORS>(x, taps, block * VECTORS, o);
        }
        let lane = blocks.len();
        match rest.len() {
            0 => {}
            1 => self.lanes::<1>(x, taps, lane, rest),
            2 => self.lanes::<2>(x, taps, lane, rest),
            _ => self.lanes::<3>(x, taps, lane, rest),
        }
    }

    /// `V` vectors of one output pixel from vector `lane` on.
    #[inline(always)]
    fn lanes<const V: usize>(&self, x: &[[f32; 4]], taps: &[(usize, usize)], lane: usize, out: &mut [[f32; 4]]) {
        let kernels = quads(&self.taps);
        let mut acc: [F32x4; V] = std::array::from_fn(|j| F32x4::load(&quads(&self.bias)[lane + j]));
        for &(xi, wi) in taps {
            // One bounds check per tap, none per vector.
            let (x, kernels) = (&x[xi + lane..xi + lane + V], &kernels[wi + lane..wi + lane + V]);
            for (j, acc) in acc.iter_mut().enumerate() {
                *acc = acc.mul_add(F32x4::load(&x[j]), F32x4::load(&kernels[j]));
            }
        }
        for (o, acc) in out.iter_mut().zip(acc) {
            self.activation.apply(acc).store(o);
        }
    }
}
