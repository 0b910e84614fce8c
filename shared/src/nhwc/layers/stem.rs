//! A network's first layer: a square convolution of RGB planes with its bias and activation
//! (faceres: 3x3, stride 2, 32 channels, ReLU6; BlazeFace: 5x5, stride 2, 24 channels, ReLU).

use super::activation::Activation;
use super::lanes::{F32x4, quads, quads_mut};
use super::padding::same_padding_before;

const IN: usize = 3;

/// `V` vectors of four output channels.
#[derive(Debug, Clone)]
pub struct Stem<const V: usize> {
    kernel: usize,
    stride: usize,
    /// `[k][k][in][out]`: each input value meets its kernels side by side.
    taps: Vec<f32>,
    bias: Vec<f32>,
    activation: Activation,
}

impl<const V: usize> Stem<V> {
    /// From the kernels `[4 V, 3, k, k]` and biases `[4 V]`.
    pub fn new(weight: &[f32], bias: Vec<f32>, kernel: usize, stride: usize, activation: Activation) -> Self {
        let out = 4 * V;
        assert!(bias.len() == out && weight.len() == out * IN * kernel * kernel, "a stem of {} weights", weight.len());
        let mut taps = Vec::with_capacity(weight.len());
        for t in 0..kernel * kernel {
            for i in 0..IN {
                taps.extend((0..out).map(|o| weight[(o * IN + i) * kernel * kernel + t]));
            }
        }
        Self { kernel, stride, taps, bias, activation }
    }

    pub fn channels_out(&self) -> usize {
        4 * V
    }

    pub fn side_out(&self, side: usize) -> usize {
        side.div_ceil(self.stride)
    }

    /// One image's channel planes `[3, side, side]` -> `out` `[side_out, side_out, 4 V]`.
    pub fn forward(&self, planes: &[f32], side: usize, out: &mut [f32]) {
        let plane = side * side;
        assert_eq!(planes.len(), IN * plane);
        let pixels: Vec<[f32; IN]> =
            (0..plane).map(|p| [planes[p], planes[plane + p], planes[2 * plane + p]]).collect();
        let (k, stride, side_out) = (self.kernel as isize, self.stride as isize, self.side_out(side));
        assert_eq!(out.len(), side_out * side_out * 4 * V);
        let pad = same_padding_before(self.kernel, self.stride, side) as isize;
        let inside = |v: isize| (0..side as isize).contains(&v);
        let (bias, taps) = (quads(&self.bias), quads(&self.taps));
        for (p, o) in quads_mut(out).chunks_exact_mut(V).enumerate() {
            let (oy, ox) = ((p / side_out) as isize, (p % side_out) as isize);
            let mut acc: [F32x4; V] = std::array::from_fn(|j| F32x4::load(&bias[j]));
            for ky in 0..k {
                let iy = oy * stride + ky - pad;
                for kx in 0..k {
                    let ix = ox * stride + kx - pad;
                    if !(inside(iy) && inside(ix)) {
                        continue;
                    }
                    let input = &pixels[iy as usize * side + ix as usize];
                    let tap = (ky * k + kx) as usize * IN * V;
                    // One bounds check per tap, none per vector.
                    for (&v, kernels) in input.iter().zip(taps[tap..tap + IN * V].chunks_exact(V)) {
                        let v = F32x4::splat(v);
                        for (acc, w) in acc.iter_mut().zip(kernels) {
                            *acc = acc.mul_add(v, F32x4::load(w));
                        }
                    }
                }
            }
            for (o, acc) in o.iter_mut().zip(acc) {
                self.activation.apply(acc).store(o);
            }
        }
    }
}
