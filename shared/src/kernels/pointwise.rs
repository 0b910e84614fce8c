//! ReLU6 of a 1x1 convolution with bias on NCHW slices, forward and gradients: matrix products on
//! the images as they lie, and the gradient through ReLU6 taken on the way (one pass).
//!
//! Two ways to lay the products out, by the images' size:
//! - large images (from 28x28 pixels up): one product per image, `[out, c] x [c, pixels]`, images
//!   spread over the threads, and each worker adding its images' share of the weight gradient in
//!   place;
//! - small ones (the last blocks, 7x7 and 14x14): an image's product is too thin for gemm's tiles
//!   (7x7 is 49 columns), so the batch's images are first laid side by side, `[c, n * pixels]`,
//!   for one product over the whole batch, threaded inside gemm; the copies cost little there.

use super::matmul::{Threads, View, matmul, product};
use super::parallel::{each_chunk, each_summing};
use super::relu6::{image_through_relu6, relu6, through_relu6};
use super::saved::{Gradients, Saved};

/// Images with fewer pixels than this are multiplied side by side. At 28x28 one product per
/// image is faster, forward and backward (BENCHMARKS.md, stop 42); at 14x14 the two ways are level.
const SIDE_BY_SIDE_BELOW: usize = 28 * 28;

/// The sizes of a pointwise layer: images, input and output channels, pixels an image.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub n: usize,
    pub c: usize,
    pub out: usize,
    pub pixels: usize,
}

impl Shape {
    fn side_by_side(&self) -> bool {
        self.pixels < SIDE_BY_SIDE_BELOW
    }
}

/// `[n, out, pixels]` = ReLU6(weight `[out, c]` x `x` `[n, c, pixels]` + bias).
pub fn forward(x: &[f32], weight: &[f32], bias: &[f32], s: Shape) -> Vec<f32> {
    let weight = View::rows(weight, s.out, s.c);
    if s.side_by_side() {
        let inputs = side_by_side(x, s.n, s.c, s.pixels);
        let product = product(weight, View::rows(&inputs, s.c, s.n * s.pixels), Threads::All);
        return one_by_one(&product, s.n, s.out, s.pixels, |channel, v| relu6(v, bias[channel]));
    }
    each_chunk(s.n, s.out * s.pixels, |image, out, _| {
        matmul(out, weight, View::rows(&x[image * s.c * s.pixels..], s.c, s.pixels), false, Threads::One);
        for (row, &b) in out.chunks_exact_mut(s.pixels).zip(bias) {
            row.iter_mut().for_each(|v| *v = relu6(*v, b));
        }
    })
}

/// The input's gradient `[n, c, pixels]` (when wanted), the weight's `[out, c]` and the bias's
/// `[out]`.
pub fn gradients(saved: &Saved, shape: Shape) -> Gradients {
    let backward = Backward { saved, shape };
    if shape.side_by_side() { backward.batch_gradients() } else { backward.image_gradients() }
}

/// A layer's saved values with its sizes.
struct Backward<'a> {
    saved: &'a Saved<'a>,
    shape: Shape,
}

impl Backward<'_> {
    /// Image by image: its gradient through ReLU6 (bias sums on the way), then its input
    /// gradient and its share of the weight gradient, added in place into each worker's sum.
    fn image_gradients(&self) -> Gradients {
        let (s, Saved { x, y, grad, weight, input_wanted }) = (self.shape, self.saved);
        let weight_t = View::rows(weight, s.out, s.c).transposed();
        let (image_out, weight_len) = (s.out * s.pixels, s.out * s.c);
        let image_len = if *input_wanted { s.c * s.pixels } else { 0 };
        let (input, sums) = each_summing(s.n, image_len, weight_len + s.out, |image, input, sums, scratch| {
            let (weight_sum, bias_sum) = sums.split_at_mut(weight_len);
            let planes = image * image_out..(image + 1) * image_out;
            image_through_relu6(&grad[planes.clone()], &y[planes], s.pixels, bias_sum, &mut scratch.passed);
            let passed = View::rows(&scratch.passed, s.out, s.pixels);
            if *input_wanted {
                matmul(input, weight_t, passed, false, Threads::One);
            }
            let x = View::rows(&x[image * s.c * s.pixels..], s.c, s.pixels).transposed();
            matmul(weight_sum, passed, x, true, Threads::One);
        });
        let (weight_grad, bias) = sums.split_at(weight_len);
        (input_wanted.then_some(input), weight_grad.to_vec(), bias.to_vec())
    }

    /// The batch side by side: its gradient through ReLU6 laid out `[out, n * pixels]` (bias
    /// sums on the way), then one product for the weight gradient and one for the input's.
    fn batch_gradients(&self) -> Gradients {
        let (s, Saved { x, y, grad, weight, input_wanted }) = (self.shape, self.saved);
        let row_len = s.n * s.pixels;
        let (passed, bias) = each_summing(s.out, row_len, s.out, |channel, row, sums, scratch| {
            scratch.passed.clear();
            for image in 0..s.n {
                let at = (image * s.out + channel) * s.pixels..(image * s.out + channel + 1) * s.pixels;
                sums[channel] += through_relu6(&grad[at.clone()], &y[at], &mut scratch.passed);
            }
            row.copy_from_slice(&scratch.passed);
        });
        let passed = View::rows(&passed, s.out, row_len);
        let x = side_by_side(x, s.n, s.c, s.pixels);
        let weight_grad = product(passed, View::rows(&x, s.c, row_len).transposed(), Threads::All);
        let input = input_wanted.then(|| {
            let input = product(View::rows(weight, s.out, s.c).transposed(), passed, Threads::All);
            one_by_one(&input, s.n, s.c, s.pixels, |_, v| v)
        });
        (input, weight_grad, bias)
    }
}

/// `[n, channels, pixels]` -> `[channels, n * pixels]`: the batch's images side by side.
fn side_by_side(values: &[f32], n: usize, channels: usize, pixels: usize) -> Vec<f32> {
    each_chunk(channels, n * pixels, |channel, row, _| {
        for (image, part) in row.chunks_exact_mut(pixels).enumerate() {
            part.copy_from_slice(&values[(image * channels + channel) * pixels..][..pixels]);
        }
    })
}

/// `[channels, n * pixels]` -> `[n, channels, pixels]`, `f(channel, value)` applied on the way.
fn one_by_one(
    values: &[f32],
    n: usize,
    channels: usize,
    pixels: usize,
    f: impl Fn(usize, f32) -> f32 + Send + Sync,
) -> Vec<f32> {
    each_chunk(n, channels * pixels, |image, out, _| {
        for (channel, part) in out.chunks_exact_mut(pixels).enumerate() {
            let source = &values[(channel * n + image) * pixels..][..pixels];
            part.iter_mut().zip(source).for_each(|(o, &v)| *o = f(channel, v));
        }
    })
}
