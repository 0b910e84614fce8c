//! ReLU6 of a 3x3 depthwise convolution with bias on NCHW slices, forward and gradients, plane
//! by plane ([`super::planes`]), planes spread over the threads; at stride 2 onto small planes,
//! eight channels of an image at a time ([`super::blocks`]), images spread over the threads.

use super::blocks;
use super::parallel::{each_chunk, each_summing};
use super::planes::Geometry;
use super::relu6::through_relu6;
use super::saved::{Gradients, Saved};

/// `[n, c, ceil(h / stride), ceil(w / stride)]` = ReLU6(depthwise(`x` `[n, c, h, w]`, `kernel`
/// `[c, 3, 3]`) + bias).
pub fn forward(x: &[f32], kernel: &[f32], bias: &[f32], [n, c, h, w]: [usize; 4], stride: usize) -> Vec<f32> {
    let g = Geometry::new(h, w, stride);
    if blocks::takes(&g) {
        let (in_len, out_len) = (c * g.input_len(), c * g.output_len());
        return each_chunk(n, out_len, |image, out, scratch| {
            let input = &x[image * in_len..][..in_len];
            for channels in blocks::of(c) {
                g.forward_block_relu6(input, (kernel, bias), channels, out, &mut scratch.block);
            }
        });
    }
    each_chunk(n * c, g.output_len(), |plane, out, scratch| {
        let channel = plane % c;
        let input = &x[plane * g.input_len()..][..g.input_len()];
        g.forward_relu6(input, &kernel[channel * 9..][..9], bias[channel], out, &mut scratch.plane);
    })
}

/// The input's gradient `[n, c, h, w]` (when wanted), the kernel's `[c, 3, 3]` and the bias's
/// `[c]`. Image by image, plane by plane: the plane's gradient through ReLU6 (kept in cache),
/// then its input gradient and its share of the kernel and bias sums (ten a channel, per worker).
pub fn gradients(saved: &Saved, [n, c, h, w]: [usize; 4], stride: usize) -> Gradients {
    let g = Geometry::new(h, w, stride);
    let (in_len, out_len) = (g.input_len(), g.output_len());
    let image_len = if saved.input_wanted { c * in_len } else { 0 };
    let in_blocks = blocks::takes(&g);
    let (input, sums) = each_summing(n, image_len, c * 10, |image, input, sums, scratch| {
        if in_blocks {
            let x = &saved.x[image * c * in_len..][..c * in_len];
            let outputs = image * c * out_len..(image + 1) * c * out_len;
            let (y, grad) = (&saved.y[outputs.clone()], &saved.grad[outputs]);
            for channels in blocks::of(c) {
                let input = saved.input_wanted.then_some(&mut *input);
                g.gradients_block((x, grad, y), saved.weight, channels, input, sums, &mut scratch.block);
            }
            return;
        }
        for (channel, sums) in sums.chunks_exact_mut(10).enumerate() {
            let plane = image * c + channel;
            let out = plane * out_len..(plane + 1) * out_len;
            scratch.passed.clear();
            sums[9] += through_relu6(&saved.grad[out.clone()], &saved.y[out], &mut scratch.passed);
            let kernel = &saved.weight[channel * 9..][..9];
            if saved.input_wanted {
                let input = &mut input[channel * in_len..][..in_len];
                g.input_gradient(&scratch.passed, kernel, input, &mut scratch.plane);
            }
            let x = &saved.x[plane * in_len..][..in_len];
            g.add_kernel_gradient(x, &scratch.passed, &mut sums[..9], &mut scratch.plane);
        }
    });
    let kernel = sums.chunks_exact(10).flat_map(|s| s[..9].to_vec()).collect();
    let bias = sums.chunks_exact(10).map(|s| s[9]).collect();
    (saved.input_wanted.then_some(input), kernel, bias)
}
