//! ReLU6 of a full 3x3 convolution with bias (faceres's stem: 3 -> 32 channels, stride 2) on
//! NCHW slices, forward and gradients, images spread over the threads.
//!
//! Each image's taps are laid out as columns, `[c * 9, oh * ow]`, one row per input channel and
//! tap, read from the padded planes of [`super::planes`] (at stride 2 a tap's inputs along a row
//! are one contiguous run there). The convolution is then one product, `[out, c * 9]` x the
//! columns, and its weight gradient the gradient through ReLU6 times the columns' transpose.
//! On Burn's CPU backend the convolution, ReLU6's separate passes and the generic weight
//! gradient held the threads waiting for a fifth of a full fine-tuning step (BENCHMARKS.md
//! "Training speed").

use super::matmul::{Threads, View, matmul};
use super::parallel::{Scratch, each_chunk, each_summing};
use super::planes::Geometry;
use super::relu6::{image_through_relu6, relu6};
use super::saved::{Gradients, Saved};

/// The sizes of a 3x3 convolution: `[n, c, h, w]` in, `out` channels, stride 1 or 2.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub input: [usize; 4],
    pub out: usize,
    pub stride: usize,
}

impl Shape {
    fn geometry(&self) -> Geometry {
        Geometry::new(self.input[2], self.input[3], self.stride)
    }

    /// Rows of an image's columns: one per input channel and tap.
    fn taps(&self) -> usize {
        self.input[1] * 9
    }
}

/// `[n, out, oh, ow]` = ReLU6(conv3x3(`x` `[n, c, h, w]`, `weight` `[out, c, 3, 3]`) + bias),
/// SAME padding.
pub fn forward(x: &[f32], weight: &[f32], bias: &[f32], s: Shape) -> Vec<f32> {
    let g = s.geometry();
    let weight = View::rows(weight, s.out, s.taps());
    each_chunk(s.input[0], s.out * g.output_len(), |image, out, scratch| {
        columns(x, image, s, scratch);
        let columns = View::rows(&scratch.columns, s.taps(), g.output_len());
        matmul(out, weight, columns, false, Threads::One);
        for (row, &b) in out.chunks_exact_mut(g.output_len()).zip(bias) {
            row.iter_mut().for_each(|v| *v = relu6(*v, b));
        }
    })
}

/// The input's gradient `[n, c, h, w]` (when wanted), the weight's `[out, c, 3, 3]` and the
/// bias's `[out]`. Image by image: the gradient through ReLU6 (bias sums on the way), its product
/// with the columns added into each worker's weight sum, then, when wanted, the columns'
/// gradient spread back over the input's padded planes.
pub fn gradients(saved: &Saved, s: Shape) -> Gradients {
    let (g, [n, c, h, w]) = (s.geometry(), s.input);
    let (image_out, weight_len) = (s.out * g.output_len(), s.out * s.taps());
    let image_len = if saved.input_wanted { c * h * w } else { 0 };
    let weight = View::rows(saved.weight, s.out, s.taps());
    let (input, sums) = each_summing(n, image_len, weight_len + s.out, |image, input, sums, scratch| {
        let (weight_sum, bias_sum) = sums.split_at_mut(weight_len);
        let planes = image * image_out..(image + 1) * image_out;
        let (grad, y) = (&saved.grad[planes.clone()], &saved.y[planes]);
        image_through_relu6(grad, y, g.output_len(), bias_sum, &mut scratch.passed);
        columns(saved.x, image, s, scratch);
        let passed = View::rows(&scratch.passed, s.out, g.output_len());
        matmul(
            weight_sum,
            passed,
            View::rows(&scratch.columns, s.taps(), g.output_len()).transposed(),
            true,
            Threads::One,
        );
        if saved.input_wanted {
            // The columns are read; their buffer takes their gradient.
            matmul(&mut scratch.columns, weight.transposed(), passed, false, Threads::One);
            for (channel, input) in input.chunks_exact_mut(h * w).enumerate() {
                let rows = &scratch.columns[channel * 9 * g.output_len()..][..9 * g.output_len()];
                g.spread_taps(rows, input, &mut scratch.plane);
            }
        }
    });
    let (weight_grad, bias) = sums.split_at(weight_len);
    (saved.input_wanted.then_some(input), weight_grad.to_vec(), bias.to_vec())
}

/// Image `image`'s columns `[c * 9, oh * ow]` into `scratch.columns`.
fn columns(x: &[f32], image: usize, s: Shape, scratch: &mut Scratch) {
    let ([_, c, h, w], g) = (s.input, s.geometry());
    scratch.columns.clear();
    for plane in x[image * c * h * w..][..c * h * w].chunks_exact(h * w) {
        g.gather_taps(plane, &mut scratch.columns, &mut scratch.plane);
    }
}
