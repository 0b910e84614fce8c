//! faceres's first layer: a 3x3 convolution of stride 2, 3 -> 32 channels, bias and ReLU6.

use super::lanes::{F32x4, quads, quads_mut};
use super::same_padding_before;

const OUT: usize = 32;
const IN: usize = 3;

#[derive(Debug, Clone)]
pub struct Stem {
    /// `[3][3][in][out]`: each input value meets its 32 kernels side by side.
    taps: Vec<f32>,
    bias: [f32; OUT],
    stride: usize,
}

impl Stem {
    /// From the kernels `[32, 3, 3, 3]` and biases `[32]`.
    pub fn new(weight: &[f32], bias: Vec<f32>, stride: usize) -> Self {
        assert_eq!(weight.len(), OUT * IN * 9, "a stem of {} weights is not faceres's", weight.len());
        let mut taps = Vec::with_capacity(weight.len());
        for t in 0..9 {
            for i in 0..IN {
                taps.extend((0..OUT).map(|o| weight[(o * IN + i) * 9 + t]));
            }
        }
        Self { taps, bias: bias.try_into().expect("32 biases"), stride }
    }

    pub fn channels_out(&self) -> usize {
        OUT
    }

    pub fn side_out(&self, side: usize) -> usize {
        side.div_ceil(self.stride)
    }

    /// One image's channel planes `[3, side, side]` -> `out` `[side_out, side_out, 32]`.
    pub fn forward(&self, planes: &[f32], side: usize, out: &mut [f32]) {
        let plane = side * side;
        assert_eq!(planes.len(), IN * plane);
        let pixels: Vec<[f32; IN]> =
            (0..plane).map(|p| [planes[p], planes[plane + p], planes[2 * plane + p]]).collect();
        let (stride, side_out) = (self.stride as isize, self.side_out(side));
        assert_eq!(out.len(), side_out * side_out * OUT);
        let pad = same_padding_before(3, self.stride, side) as isize;
        let inside = |v: isize| (0..side as isize).contains(&v);
        for (p, o) in out.chunks_exact_mut(OUT).enumerate() {
            let (oy, ox) = ((p / side_out) as isize, (p % side_out) as isize);
            let mut acc: [F32x4; OUT / 4] = std::array::from_fn(|j| F32x4::load(&quads(&self.bias)[j]));
            for ky in 0..3 {
                let iy = oy * stride + ky - pad;
                for kx in 0..3 {
                    let ix = ox * stride + kx - pad;
                    if !(inside(iy) && inside(ix)) {
                        continue;
                    }
                    let input = &pixels[iy as usize * side + ix as usize];
                    let tap = (ky * 3 + kx) as usize * IN * OUT;
                    for (i, &v) in input.iter().enumerate() {
                        let w = quads(&self.taps[tap + i * OUT..tap + (i + 1) * OUT]);
                        let v = F32x4::splat(v);
                        for (acc, w) in acc.iter_mut().zip(w) {
                            *acc = acc.mul_add(v, F32x4::load(w));
                        }
                    }
                }
            }
            for (o, acc) in quads_mut(o).iter_mut().zip(acc) {
                acc.relu6().store(o);
            }
        }
    }
}
