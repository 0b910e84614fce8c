//! A 1x1 convolution with its bias and activation: one matrix product `[pixels, in] x [in, out]`.

use super::activation::Activation;
use super::lanes::{F32x4, quads, quads_mut};

/// Output channels computed together: two vectors of four.
const NR: usize = 8;
/// Pixels computed together: with `NR`, eight accumulators, two weight vectors and one
/// broadcast input stay in the sixteen SIMD registers.
const MR: usize = 4;
/// Inputs of the pixels in flight (floats): small enough to stay in the L2 cache while every
/// block of output channels passes over them.
const CHUNK_FLOATS: usize = 32 * 1024;

#[derive(Debug, Clone)]
pub struct Pointwise {
    channels_in: usize,
    channels_out: usize,
    /// `[out / NR][in][NR]`: each block of output channels reads its weights in order.
    packed: Vec<f32>,
    bias: Vec<f32>,
    activation: Activation,
}

impl Pointwise {
    /// From a 1x1 convolution's kernels `[out, in]` and biases `[out]`. The outputs are padded
    /// with zeros to a multiple of 8 (BlazeFace's heads give 2 and 6 channels).
    pub fn new(weight: &[f32], mut bias: Vec<f32>, activation: Activation) -> Self {
        let real_out = bias.len();
        let channels_in = weight.len() / real_out;
        assert_eq!(weight.len(), channels_in * real_out, "1x1 kernels of {real_out} outputs");
        let channels_out = real_out.next_multiple_of(NR);
        bias.resize(channels_out, 0.0);
        let mut packed = Vec::with_capacity(channels_in * channels_out);
        for block in 0..channels_out / NR {
            for i in 0..channels_in {
                let kernel = |o: usize| if o < real_out { weight[o * channels_in + i] } else { 0.0 };
                packed.extend((0..NR).map(|j| kernel(block * NR + j)));
            }
        }
        Self { channels_in, channels_out, packed, bias, activation }
    }

    pub fn channels_in(&self) -> usize {
        self.channels_in
    }

    /// Output channels, padding included.
    pub fn channels_out(&self) -> usize {
        self.channels_out
    }

    /// `x` `[pixels, in]` -> `out` `[pixels, out]`.
    pub fn forward(&self, x: &[f32], out: &mut [f32]) {
        let (cin, cout) = (self.channels_in, self.channels_out);
        let pixels = x.len() / cin;
        assert_eq!(out.len(), pixels * cout);
        let chunk = ((CHUNK_FLOATS / cin).max(MR) / MR) * MR;
        for start in (0..pixels).step_by(chunk) {
            let end = (start + chunk).min(pixels);
            for (block, (weights, bias)) in
                self.packed.chunks_exact(cin * NR).zip(self.bias.chunks_exact(NR)).enumerate()
            {
                let bias: &[f32; NR] = bias.try_into().expect("NR biases");
                let mut p = start;
                while p + MR <= end {
                    let out = &mut out[p * cout + block * NR..];
                    tile::<MR>(&x[p * cin..(p + MR) * cin], weights, bias, self.activation, out, cout);
                    p += MR;
                }
                for p in p..end {
                    let out = &mut out[p * cout + block * NR..];
                    tile::<1>(&x[p * cin..(p + 1) * cin], weights, bias, self.activation, out, cout);
                }
            }
        }
    }
}

/// `M` pixels' `NR` outputs: `x` `[M, in]`, `weights` `[in][NR]`; row `r` goes to
/// `out[r * stride..][..NR]`.
#[inline(always)]
fn tile<const M: usize>(
    x: &[f32],
    weights: &[f32],
    bias: &[f32; NR],
    activation: Activation,
    out: &mut [f32],
    stride: usize,
) {
    let cin = weights.len() / NR;
    let rows: [&[f32]; M] = std::array::from_fn(|r| &x[r * cin..(r + 1) * cin]);
    let bias = [F32x4::load(&quads(bias)[0]), F32x4::load(&quads(bias)[1])];
    let mut acc = [bias; M];
    for (k, w) in quads(weights).chunks_exact(2).enumerate() {
        let w = [F32x4::load(&w[0]), F32x4::load(&w[1])];
        for r in 0..M {
            let v = F32x4::splat(rows[r][k]);
            acc[r][0] = acc[r][0].mul_add(v, w[0]);
            acc[r][1] = acc[r][1].mul_add(v, w[1]);
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        let out = quads_mut(&mut out[r * stride..r * stride + NR]);
        activation.apply(acc[0]).store(&mut out[0]);
        activation.apply(acc[1]).store(&mut out[1]);
    }
}
