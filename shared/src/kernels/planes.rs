//! A 3x3 depthwise convolution over one `[h, w]` plane at a time (one image's channel), SAME
//! padding as Burn and TensorFlow pad it, stride 1 or 2: forward, input gradient, and kernel and
//! bias gradients, on plain `f32` slices in NCHW order.
//!
//! The forward applies ReLU6 to each row while it is in cache; the backward takes the gradient
//! that already passed back through it ([`super::relu6`]).
//!
//! Each plane is first copied into a zero-bordered scratch plane, so that every inner loop runs
//! over whole rows without a bounds test and the compiler vectorises it.

use super::lanes::dot;

/// Where a plane's taps fall: its input and output sizes and the padded plane around the input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    pub h: usize,
    pub w: usize,
    pub stride: usize,
    pub oh: usize,
    pub ow: usize,
    /// Zero rows above and columns left of the input in the padded plane.
    top: usize,
    left: usize,
    /// The padded plane's width and height: exactly what the last output's taps reach.
    pw: usize,
    ph: usize,
}

impl Geometry {
    pub fn new(h: usize, w: usize, stride: usize) -> Self {
        assert!(stride == 1 || stride == 2, "depthwise stride {stride}: only 1 and 2");
        let (oh, ow) = (h.div_ceil(stride), w.div_ceil(stride));
        // SAME: the taps of the last output reach (o - 1) * stride + 3 rows, the padding is split
        // with the odd one at the end (Burn's `calculate_same_padding`, TensorFlow's rule).
        let (ph, pw) = ((oh - 1) * stride + 3, (ow - 1) * stride + 3);
        Geometry { h, w, stride, oh, ow, top: (ph - h) / 2, left: (pw - w) / 2, pw, ph }
    }

    pub fn input_len(&self) -> usize {
        self.h * self.w
    }

    pub fn output_len(&self) -> usize {
        self.oh * self.ow
    }

    fn padded_len(&self) -> usize {
        self.ph * self.pw
    }

    /// `plane` into `padded` (resized as needed), zeros around it.
    fn pad(&self, plane: &[f32], padded: &mut Vec<f32>) {
        padded.clear();
        padded.resize(self.padded_len(), 0.0);
        for (y, row) in plane.chunks_exact(self.w).enumerate() {
            let at = (y + self.top) * self.pw + self.left;
            padded[at..at + self.w].copy_from_slice(row);
        }
    }

    /// The `ow` inputs a kernel column `kx` meets along padded row `row`.
    fn taps<'a>(&self, padded: &'a [f32], row: usize, kx: usize) -> impl Iterator<Item = &'a f32> {
        padded[row * self.pw + kx..].iter().step_by(self.stride).take(self.ow)
    }

    /// One plane's output: ReLU6 of `bias + Σ kernel[ky][kx] · input[oy·s + ky - top][ox·s + kx - left]`.
    pub fn forward_relu6(&self, plane: &[f32], kernel: &[f32], bias: f32, out: &mut [f32], scratch: &mut Vec<f32>) {
        self.pad(plane, scratch);
        for (oy, row) in out.chunks_exact_mut(self.ow).enumerate() {
            row.fill(bias);
            for ky in 0..3 {
                for kx in 0..3 {
                    let k = kernel[ky * 3 + kx];
                    let padded_row = oy * self.stride + ky;
                    if self.stride == 1 {
                        let start = padded_row * self.pw + kx;
                        for (o, &x) in row.iter_mut().zip(&scratch[start..start + self.ow]) {
                            *o += k * x;
                        }
                    } else {
                        for (o, &x) in row.iter_mut().zip(self.taps(scratch, padded_row, kx)) {
                            *o += k * x;
                        }
                    }
                }
            }
            row.iter_mut().for_each(|o| *o = o.clamp(0.0, 6.0));
        }
    }

    /// One plane's input gradient from its output gradient: each output's gradient is spread
    /// back over the nine inputs it read, then the padding is cut off.
    pub fn input_gradient(&self, grad: &[f32], kernel: &[f32], out: &mut [f32], scratch: &mut Vec<f32>) {
        scratch.clear();
        scratch.resize(self.padded_len(), 0.0);
        for (oy, grad_row) in grad.chunks_exact(self.ow).enumerate() {
            for ky in 0..3 {
                let start = (oy * self.stride + ky) * self.pw;
                for kx in 0..3 {
                    let k = kernel[ky * 3 + kx];
                    let target = &mut scratch[start + kx..];
                    if self.stride == 1 {
                        for (t, &g) in target[..self.ow].iter_mut().zip(grad_row) {
                            *t += k * g;
                        }
                    } else {
                        for (t, &g) in target.iter_mut().step_by(self.stride).zip(grad_row) {
                            *t += k * g;
                        }
                    }
                }
            }
        }
        for (y, row) in out.chunks_exact_mut(self.w).enumerate() {
            let at = (y + self.top) * self.pw + self.left;
            row.copy_from_slice(&scratch[at..at + self.w]);
        }
    }

    /// Adds one plane's share of its channel's kernel gradient into `sums` (nine taps).
    pub fn add_kernel_gradient(&self, plane: &[f32], grad: &[f32], sums: &mut [f32], scratch: &mut Vec<f32>) {
        self.pad(plane, scratch);
        // Row by row in f64: a 112x112 plane adds 12,544 products a tap.
        let mut plane_sums = [0.0f64; 9];
        for (oy, grad_row) in grad.chunks_exact(self.ow).enumerate() {
            for ky in 0..3 {
                let padded_row = oy * self.stride + ky;
                for kx in 0..3 {
                    let product = if self.stride == 1 {
                        let start = padded_row * self.pw + kx;
                        dot(grad_row, &scratch[start..start + self.ow])
                    } else {
                        grad_row.iter().zip(self.taps(scratch, padded_row, kx)).map(|(g, x)| g * x).sum()
                    };
                    plane_sums[ky * 3 + kx] += f64::from(product);
                }
            }
        }
        for (sum, plane_sum) in sums.iter_mut().zip(plane_sums) {
            *sum += plane_sum as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, tap by tap with bounds tests: what the row loops must equal.
    fn reference(g: &Geometry, plane: &[f32], kernel: &[f32], bias: f32) -> Vec<f32> {
        let mut out = vec![bias; g.output_len()];
        let relu6 = |v: &mut f32| *v = v.clamp(0.0, 6.0);
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                for ky in 0..3 {
                    for kx in 0..3 {
                        let (y, x) = (
                            (oy * g.stride + ky) as isize - g.top as isize,
                            (ox * g.stride + kx) as isize - g.left as isize,
                        );
                        if (0..g.h as isize).contains(&y) && (0..g.w as isize).contains(&x) {
                            out[oy * g.ow + ox] += kernel[ky * 3 + kx] * plane[y as usize * g.w + x as usize];
                        }
                    }
                }
            }
        }
        out.iter_mut().for_each(relu6);
        out
    }

    #[test]
    fn same_padding_is_split_with_the_odd_row_at_the_end() {
        // Burn's `calculate_same_padding`: total (o - 1) s + k - i, start = total / 2.
        assert_eq!((Geometry::new(112, 112, 2).top, Geometry::new(112, 112, 2).ph), (0, 113));
        assert_eq!((Geometry::new(7, 7, 2).top, Geometry::new(7, 7, 2).ph), (1, 9));
        assert_eq!((Geometry::new(14, 14, 1).top, Geometry::new(14, 14, 1).oh), (1, 14));
    }

    #[test]
    fn the_row_loops_compute_the_definition() {
        let kernel: Vec<f32> = (0..9).map(|i| i as f32 * 0.25 - 1.0).collect();
        for (h, w, stride) in [(5, 7, 1), (6, 6, 2), (7, 5, 2), (1, 1, 1), (2, 3, 2), (19, 21, 1)] {
            let g = Geometry::new(h, w, stride);
            let plane: Vec<f32> = (0..h * w).map(|i| ((i * 37) % 11) as f32 - 5.0).collect();
            let mut out = vec![0.0; g.output_len()];
            g.forward_relu6(&plane, &kernel, 0.25, &mut out, &mut Vec::new());
            assert_eq!(out, reference(&g, &plane, &kernel, 0.25), "{h}x{w} stride {stride}");
        }
    }
}
