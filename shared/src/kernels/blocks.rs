//! A 3x3 depthwise convolution onto small planes (faceres's 28 -> 14 and 14 -> 7 layers at
//! stride 2, and its last, 7x7 at stride 1), eight channels of one image at a time with the
//! channels innermost: forward, input gradient and kernel gradient, with ReLU6 fused in as
//! [`super::planes`] fuses it.
//!
//! Rows of 7 or 14 outputs are too short for the plane loops: each tap runs over so short a row
//! that the plane's padding, copies and per-row sums cost more than its products. Here a block of
//! eight planes is copied once into a zero-bordered plane of eight-lane pixels, and every step is
//! one operation on eight lanes: no short rows, no sums across lanes, each channel's kernel
//! gradient kept in its lane until the image is done. The copies between the layouts read and
//! write memory in order, lane by lane. The forward and the stride-1 input gradient sum their taps
//! in the plane loops' order, to the same bits. 14x14 planes at stride 1 stay with the plane
//! loops' whole-plane runs, which are faster there (BENCHMARKS.md, stop 44).

use std::ops::Range;

use super::planes::Geometry;
use super::relu6::relu6;

/// Channels a block holds: one lane each.
pub const LANES: usize = 8;

/// Eight channels' values at one pixel.
type Lanes = [f32; LANES];

/// A worker's buffers for one block: a padded plane of pixels, and the output's pixels.
#[derive(Debug, Default)]
pub struct Scratch {
    padded: Vec<Lanes>,
    pixels: Vec<Lanes>,
}

/// Whether the planes of `g` go through blocks: outputs narrower than 8, or at stride 2 than 16.
pub fn takes(g: &Geometry) -> bool {
    g.ow < 8 || (g.stride == 2 && g.ow < 16)
}

/// The channels of each block of `channels`.
pub fn of(channels: usize) -> impl Iterator<Item = Range<usize>> {
    (0..channels).step_by(LANES).map(move |first| first..(first + LANES).min(channels))
}

fn add_product(sum: &mut Lanes, a: &Lanes, b: &Lanes) {
    for ((s, a), b) in sum.iter_mut().zip(a).zip(b) {
        *s += a * b;
    }
}

/// The block's `[3, 3]` kernels as nine taps of eight lanes (zeros past the last channel).
fn kernel_taps(kernel: &[f32], channels: Range<usize>) -> [Lanes; 9] {
    let mut taps = [[0.0; LANES]; 9];
    for (lane, channel) in channels.enumerate() {
        for (tap, &k) in taps.iter_mut().zip(&kernel[channel * 9..][..9]) {
            tap[lane] = k;
        }
    }
    taps
}

/// Each of the block's channels, lane by lane, from `pixels` into its plane of `out` (planes as
/// long as `pixels`), each value through `finish(value, channel)`.
fn unpack(pixels: &[Lanes], channels: Range<usize>, out: &mut [f32], finish: impl Fn(f32, usize) -> f32) {
    let len = pixels.len();
    for (lane, channel) in channels.enumerate() {
        let plane = &mut out[channel * len..][..len];
        plane.iter_mut().zip(pixels).for_each(|(o, pixel)| *o = finish(pixel[lane], channel));
    }
}

impl Geometry {
    /// Where output `(oy, ox)`'s tap `tap` reads in the padded plane.
    fn reads(&self, oy: usize, ox: usize, tap: usize) -> usize {
        (oy * self.stride + tap / 3) * self.pw + ox * self.stride + tap % 3
    }

    /// The block's planes of `image` (`[c, h, w]`) into `padded`, zeros around them.
    fn pad_block(&self, image: &[f32], channels: Range<usize>, padded: &mut Vec<Lanes>) {
        padded.clear();
        padded.resize(self.ph * self.pw, [0.0; LANES]);
        let len = self.input_len();
        for (lane, channel) in channels.enumerate() {
            let plane = &image[channel * len..][..len];
            for (y, row) in plane.chunks_exact(self.w).enumerate() {
                let stored = &mut padded[(y + self.top) * self.pw + self.left..][..self.w];
                stored.iter_mut().zip(row).for_each(|(pixel, &v)| pixel[lane] = v);
            }
        }
    }

    /// One image's output `[c, oh, ow]` into `out` for the block's channels: ReLU6 of
    /// `bias + Σ kernel · input`, the taps summed in the order [`Geometry::forward_relu6`] sums
    /// them (the same values to the bit).
    pub fn forward_block_relu6(
        &self,
        image: &[f32],
        (kernel, bias): (&[f32], &[f32]),
        channels: Range<usize>,
        out: &mut [f32],
        scratch: &mut Scratch,
    ) {
        let Scratch { padded, pixels } = scratch;
        self.pad_block(image, channels.clone(), padded);
        self.correlate_block(padded, &kernel_taps(kernel, channels.clone()), pixels);
        unpack(pixels, channels, out, |v, channel| relu6(v, bias[channel]));
    }

    /// Each output's nine taps of the padded plane weighed by `taps` and summed in order, into
    /// `pixels`.
    fn correlate_block(&self, padded: &[Lanes], taps: &[Lanes; 9], pixels: &mut Vec<Lanes>) {
        pixels.clear();
        for oy in 0..self.oh {
            for ox in 0..self.ow {
                let mut sum = [0.0; LANES];
                for (tap, k) in taps.iter().enumerate() {
                    add_product(&mut sum, k, &padded[self.reads(oy, ox, tap)]);
                }
                pixels.push(sum);
            }
        }
    }

    /// One image's gradients for the block's channels, from its input `x` (`[c, h, w]`), output
    /// `y` and output gradient `grad` (`[c, oh, ow]`): the gradient passed back through ReLU6,
    /// then the kernel and bias sums added into `sums` (ten a channel: nine taps, then the bias),
    /// and the input gradient into `input` (`[c, h, w]`, zeros on entry) when it is wanted.
    pub fn gradients_block(
        &self,
        (x, grad, y): (&[f32], &[f32], &[f32]),
        kernel: &[f32],
        channels: Range<usize>,
        input: Option<&mut [f32]>,
        sums: &mut [f32],
        scratch: &mut Scratch,
    ) {
        let len = self.output_len();
        let Scratch { padded, pixels } = scratch;
        pixels.clear();
        pixels.resize(len, [0.0; LANES]);
        let mut bias = [0.0; LANES];
        for (lane, channel) in channels.clone().enumerate() {
            let plane = channel * len..(channel + 1) * len;
            for ((pixel, &g), &y) in pixels.iter_mut().zip(&grad[plane.clone()]).zip(&y[plane]) {
                pixel[lane] = if y > 0.0 && y < 6.0 { g } else { 0.0 };
                bias[lane] += pixel[lane];
            }
        }
        self.pad_block(x, channels.clone(), padded);
        let mut taps = [[0.0; LANES]; 9];
        for oy in 0..self.oh {
            for ox in 0..self.ow {
                let passed = &pixels[oy * self.ow + ox];
                for (tap, sum) in taps.iter_mut().enumerate() {
                    add_product(sum, passed, &padded[self.reads(oy, ox, tap)]);
                }
            }
        }
        for (lane, channel) in channels.clone().enumerate() {
            let sums = &mut sums[channel * 10..][..10];
            taps.iter().zip(sums.iter_mut()).for_each(|(tap, sum)| *sum += tap[lane]);
            sums[9] += bias[lane];
        }
        if let Some(input) = input {
            self.spread_block(kernel, channels, input, scratch);
        }
    }

    /// The block's input gradient into `input` (`[c, h, w]`) from the gradient passed through
    /// ReLU6 (`scratch.pixels`). At stride 1 it is that gradient correlated with the kernel turned
    /// by 180 degrees, the taps summed in the order of [`Geometry::input_gradient`]: one store an
    /// input. At stride 2 each output's gradient is spread back over the nine inputs it read,
    /// then the padding is cut off.
    fn spread_block(&self, kernel: &[f32], channels: Range<usize>, input: &mut [f32], scratch: &mut Scratch) {
        let Scratch { padded, pixels } = scratch;
        let taps = kernel_taps(kernel, channels.clone());
        padded.clear();
        padded.resize(self.ph * self.pw, [0.0; LANES]);
        let (len, w) = (self.input_len(), self.w);
        if self.stride == 1 {
            // SAME at stride 1: the input's plane has the output's size and padding.
            for (oy, row) in pixels.chunks_exact(self.ow).enumerate() {
                padded[(oy + self.top) * self.pw + self.left..][..self.ow].copy_from_slice(row);
            }
            let turned: [Lanes; 9] = std::array::from_fn(|tap| taps[8 - tap]);
            self.correlate_block(padded, &turned, pixels);
            unpack(pixels, channels, input, |v, _| v);
            return;
        }
        for oy in 0..self.oh {
            for ox in 0..self.ow {
                let passed = &pixels[oy * self.ow + ox];
                for (tap, k) in taps.iter().enumerate() {
                    add_product(&mut padded[self.reads(oy, ox, tap)], k, passed);
                }
            }
        }
        for (lane, channel) in channels.enumerate() {
            let plane = &mut input[channel * len..][..len];
            for (y, row) in plane.chunks_exact_mut(w).enumerate() {
                let stored = &padded[(y + self.top) * self.pw + self.left..][..w];
                row.iter_mut().zip(stored).for_each(|(v, pixel)| *v = pixel[lane]);
            }
        }
    }
}
