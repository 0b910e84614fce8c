//! A 3x3 depthwise convolution over one `[h, w]` plane at a time (one image's channel), SAME
//! padding as Burn and TensorFlow pad it, stride 1 or 2: forward, input gradient and kernel
//! gradient, on plain `f32` slices in NCHW order; and a plane's taps laid out as the columns of
//! a full 3x3 convolution ([`super::conv3x3`]), and their gradients spread back.
//!
//! The forward applies ReLU6 to each row while it is in cache; the backward takes the gradient
//! that already passed back through it ([`super::relu6`]).
//!
//! Row by row at stride 1, each output row reads the three input rows where they lie, a row of
//! zeros standing for those beyond the plane: every inner loop runs along a row without a bounds
//! test and the compiler vectorises it, and only the two edge columns are summed one by one.
//! Otherwise each plane is first copied into a zero-bordered scratch plane, so that the inner
//! loops run the same way over it. At stride 2 each padded row is stored split by column parity,
//! even columns then odd ones: a tap then reads every other input as one contiguous run too,
//! where a strided read would leave the loop scalar.
//!
//! Small planes at stride 1 (7x7, 14x14 and 28x28) have rows too short to vectorise well, so each
//! tap runs over the whole plane at once instead: outputs laid out at the padded plane's row
//! pitch (`pw`), the two columns between rows computed and dropped (or, for the gradients, held
//! at zero), one loop of `(oh - 1) * pw + ow` values, nine taps summed a value (a kernel
//! gradient: one loop a tap).

use super::lanes::dot;
use super::relu6::relu6;

/// A worker's buffers for one plane: the padded input (or input gradient), a whole-plane run's
/// values at the padded row pitch, and a row of zeros.
#[derive(Debug, Default)]
pub struct Scratch {
    pub padded: Vec<f32>,
    pub pitch: Vec<f32>,
    pub zeros: Vec<f32>,
}

/// Where a plane's taps fall: its input and output sizes and the padded plane around the input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    pub h: usize,
    pub w: usize,
    pub stride: usize,
    pub oh: usize,
    pub ow: usize,
    /// Zero rows above and columns left of the input in the padded plane.
    pub(super) top: usize,
    pub(super) left: usize,
    /// The padded plane's width and height: exactly what the last output's taps reach.
    pub(super) pw: usize,
    pub(super) ph: usize,
}

/// Planes narrower than this, at stride 1, run a tap over the whole plane at once. At 28x28 that
/// halves the kernel gradient and takes a fifth off the forward (BENCHMARKS.md, stop 45); at
/// 56x56 the input gradient loses what the forward and kernel gradient gain, and at 112x112 a
/// run no longer fits in L1.
const WHOLE_PLANE_BELOW: usize = 32;

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

    /// Where padded column `x` is stored within its row: in place at stride 1; at stride 2 the
    /// even columns come first, then the odd ones.
    fn column(&self, x: usize) -> usize {
        match self.stride {
            1 => x,
            _ => x / 2 + (x % 2) * self.pw.div_ceil(2),
        }
    }

    /// The stored run of the `ow` inputs that kernel column `kx` meets along padded row `row`.
    fn tap(&self, row: usize, kx: usize) -> std::ops::Range<usize> {
        let start = row * self.pw + self.column(kx);
        start..start + self.ow
    }

    /// `plane` into `padded` (resized as needed), zeros around it.
    fn pad(&self, plane: &[f32], padded: &mut Vec<f32>) {
        padded.clear();
        padded.resize(self.padded_len(), 0.0);
        for (y, row) in plane.chunks_exact(self.w).enumerate() {
            let stored = &mut padded[(y + self.top) * self.pw..][..self.pw];
            match self.stride {
                1 => stored[self.left..self.left + self.w].copy_from_slice(row),
                _ => self.split_by_parity(row, stored),
            }
        }
    }

    /// How a row's inputs lie in a padded row stored by column parity (stride 2): the length of
    /// its first half (the even columns; the odd ones follow), whether the first input falls on
    /// an odd column, and the index in each half where the inputs' pairs (even column, odd
    /// column) begin.
    fn parity_layout(&self) -> (usize, bool, usize) {
        (self.pw.div_ceil(2), self.left % 2 == 1, self.left.div_ceil(2))
    }

    /// `row` into `stored` by column parity, two inputs at a time: a loop without division
    /// that vectorises, where placing each input by [`Self::column`] did not.
    fn split_by_parity(&self, row: &[f32], stored: &mut [f32]) {
        let (half, leading_odd, at) = self.parity_layout();
        let (evens, odds) = stored.split_at_mut(half);
        let row = if leading_odd {
            odds[self.left / 2] = row[0];
            &row[1..]
        } else {
            row
        };
        let pairs = row.chunks_exact(2);
        if let [last] = pairs.remainder() {
            evens[at + row.len() / 2] = *last;
        }
        for ((even, odd), pair) in evens[at..].iter_mut().zip(&mut odds[at..]).zip(pairs) {
            (*even, *odd) = (pair[0], pair[1]);
        }
    }

    /// The inverse of [`Self::split_by_parity`]: `row` from `stored`.
    fn join_by_parity(&self, stored: &[f32], row: &mut [f32]) {
        let (half, leading_odd, at) = self.parity_layout();
        let (evens, odds) = stored.split_at(half);
        let row = if leading_odd {
            row[0] = odds[self.left / 2];
            &mut row[1..]
        } else {
            row
        };
        let len = row.len();
        let mut pairs = row.chunks_exact_mut(2);
        for ((even, odd), pair) in evens[at..].iter().zip(&odds[at..]).zip(&mut pairs) {
            (pair[0], pair[1]) = (*even, *odd);
        }
        if let [last] = pairs.into_remainder() {
            *last = evens[at + len / 2];
        }
    }

    /// The input's place in a padded plane, copied out.
    fn crop(&self, padded: &[f32], out: &mut [f32]) {
        for (y, row) in out.chunks_exact_mut(self.w).enumerate() {
            let stored = &padded[(y + self.top) * self.pw..][..self.pw];
            match self.stride {
                1 => row.copy_from_slice(&stored[self.left..self.left + self.w]),
                _ => self.join_by_parity(stored, row),
            }
        }
    }

    /// Whether a tap runs over the whole plane at once (see the module's notes).
    fn whole_plane(&self) -> bool {
        self.stride == 1 && self.ow < WHOLE_PLANE_BELOW
    }

    /// The length of a whole-plane run: every output at the padded row pitch.
    fn span(&self) -> usize {
        (self.oh - 1) * self.pw + self.ow
    }

    /// Where tap (ky, kx) starts in the padded plane for a whole-plane run.
    fn tap_start(&self, tap: usize) -> usize {
        (tap / 3) * self.pw + tap % 3
    }

    /// `grad` `[oh, ow]` at the padded row pitch in `at_pitch`, zeros between the rows.
    fn at_pitch(&self, grad: &[f32], at_pitch: &mut Vec<f32>) {
        at_pitch.clear();
        at_pitch.resize(self.span(), 0.0);
        for (oy, row) in grad.chunks_exact(self.ow).enumerate() {
            at_pitch[oy * self.pw..][..self.ow].copy_from_slice(row);
        }
    }

    /// Appends the plane's nine tap rows `[9, oh * ow]`, tap (ky, kx) at row `ky * 3 + kx`: for
    /// each output, the input that tap reads (zero in the padding). A full convolution's columns.
    pub fn gather_taps(&self, plane: &[f32], rows: &mut Vec<f32>, scratch: &mut Scratch) {
        self.pad(plane, &mut scratch.padded);
        for tap in 0..9 {
            for oy in 0..self.oh {
                rows.extend_from_slice(&scratch.padded[self.tap(oy * self.stride + tap / 3, tap % 3)]);
            }
        }
    }

    /// The plane's input gradient into `out` from its nine tap rows' gradients (laid out as
    /// [`Self::gather_taps`] lays out the values): each added back into the input it was read from.
    pub fn spread_taps(&self, rows: &[f32], out: &mut [f32], scratch: &mut Scratch) {
        let padded = &mut scratch.padded;
        padded.clear();
        padded.resize(self.padded_len(), 0.0);
        for (tap, row) in rows.chunks_exact(self.output_len()).enumerate() {
            for (oy, grads) in row.chunks_exact(self.ow).enumerate() {
                let inputs = &mut padded[self.tap(oy * self.stride + tap / 3, tap % 3)];
                inputs.iter_mut().zip(grads).for_each(|(t, &g)| *t += g);
            }
        }
        self.crop(padded, out);
    }

    /// One plane's output: ReLU6 of `bias + Σ kernel[ky][kx] · input[oy·s + ky - top][ox·s + kx - left]`.
    /// `scratch`: the padded plane, and the outputs at the row pitch for a whole-plane run.
    pub fn forward_relu6(&self, plane: &[f32], kernel: &[f32], bias: f32, out: &mut [f32], scratch: &mut Scratch) {
        self.correlate(plane, kernel, out, scratch, |v| relu6(v, bias));
    }

    /// `finish(Σ kernel[ky][kx] · input[oy·s + ky - top][ox·s + kx - left])` for each output, the
    /// taps summed in order. Row by row, each output's nine taps are summed before it is stored
    /// (one store an output, where a pass a tap over the row stores nine).
    fn correlate(
        &self,
        plane: &[f32],
        kernel: &[f32],
        out: &mut [f32],
        scratch: &mut Scratch,
        finish: impl Fn(f32) -> f32,
    ) {
        let kernel: &[f32; 9] = kernel.try_into().expect("a 3x3 kernel");
        if self.reads_rows_in_place() {
            return self.correlate_rows(plane, kernel, out, &mut scratch.zeros, finish);
        }
        let Scratch { padded: scratch, pitch, .. } = scratch;
        self.pad(plane, scratch);
        if self.whole_plane() {
            let span = self.span();
            let taps: [&[f32]; 9] = std::array::from_fn(|tap| &scratch[self.tap_start(tap)..][..span]);
            pitch.clear();
            pitch.resize(span, 0.0);
            for (e, o) in pitch.iter_mut().enumerate() {
                *o = tap_sum(&taps, kernel, e);
            }
            for (oy, row) in out.chunks_exact_mut(self.ow).enumerate() {
                let sums = &pitch[oy * self.pw..][..self.ow];
                row.iter_mut().zip(sums).for_each(|(o, &v)| *o = finish(v));
            }
            return;
        }
        for (oy, row) in out.chunks_exact_mut(self.ow).enumerate() {
            let taps: [&[f32]; 9] = std::array::from_fn(|tap| &scratch[self.tap(oy * self.stride + tap / 3, tap % 3)]);
            for (x, o) in row.iter_mut().enumerate() {
                *o = finish(tap_sum(&taps, kernel, x));
            }
        }
    }

    /// Whether each output row reads its input rows where they lie: row by row at stride 1
    /// (copying them into a padded plane first took a fifth of the forward at 112x112, BENCHMARKS.md
    /// stop 45).
    fn reads_rows_in_place(&self) -> bool {
        self.stride == 1 && !self.whole_plane()
    }

    /// At stride 1, the plane's row that padded row `y` holds (its row `y - 1`), if any.
    fn plane_row(&self, y: usize) -> Option<usize> {
        y.checked_sub(1).filter(|&y| y < self.h)
    }

    /// Padded row `y` at stride 1: the plane's row it holds, or `zeros` above and below the plane.
    fn row_or_zeros<'a>(&self, plane: &'a [f32], y: usize, zeros: &'a [f32]) -> &'a [f32] {
        match self.plane_row(y) {
            Some(y) => &plane[y * self.w..][..self.w],
            None => zeros,
        }
    }

    /// [`Self::correlate`] at stride 1 row by row, on the rows where they lie: the outputs
    /// between the edges from whole rows, the two edge columns one by one with zeros beyond the
    /// plane. The same terms in the same order as over a padded copy, so the same values.
    fn correlate_rows(
        &self,
        plane: &[f32],
        kernel: &[f32; 9],
        out: &mut [f32],
        zeros: &mut Vec<f32>,
        finish: impl Fn(f32) -> f32,
    ) {
        let w = self.w;
        zeros.clear();
        zeros.resize(w, 0.0);
        for (oy, out_row) in out.chunks_exact_mut(w).enumerate() {
            let rows: [&[f32]; 3] = std::array::from_fn(|ky| self.row_or_zeros(plane, oy + ky, zeros));
            let taps: [&[f32]; 9] = std::array::from_fn(|tap| &rows[tap / 3][tap % 3..][..w - 2]);
            for (x, o) in out_row[1..w - 1].iter_mut().enumerate() {
                *o = finish(tap_sum(&taps, kernel, x));
            }
            for x in [0, w - 1] {
                let sum = kernel.iter().enumerate().fold(0.0, |sum, (tap, &k)| {
                    let column = (x + tap % 3).wrapping_sub(1);
                    sum + k * rows[tap / 3].get(column).copied().unwrap_or(0.0)
                });
                out_row[x] = finish(sum);
            }
        }
    }

    /// One plane's input gradient from its output gradient. At stride 1 it is the output
    /// gradient correlated with the kernel turned by 180 degrees (the same SAME geometry); at
    /// stride 2 each output's gradient is spread back over the nine inputs it read, then the
    /// padding is cut off.
    pub fn input_gradient(&self, grad: &[f32], kernel: &[f32], out: &mut [f32], scratch: &mut Scratch) {
        if self.stride == 1 {
            let turned: [f32; 9] = std::array::from_fn(|tap| kernel[8 - tap]);
            return self.correlate(grad, &turned, out, scratch, |v| v);
        }
        let padded = &mut scratch.padded;
        padded.clear();
        padded.resize(self.padded_len(), 0.0);
        for (oy, grad_row) in grad.chunks_exact(self.ow).enumerate() {
            for ky in 0..3 {
                for kx in 0..3 {
                    let k = kernel[ky * 3 + kx];
                    let inputs = &mut padded[self.tap(oy * self.stride + ky, kx)];
                    inputs.iter_mut().zip(grad_row).for_each(|(t, &g)| *t += k * g);
                }
            }
        }
        self.crop(padded, out);
    }

    /// Adds one plane's share of its channel's kernel gradient into `sums` (nine taps).
    pub fn add_kernel_gradient(&self, plane: &[f32], grad: &[f32], sums: &mut [f32], scratch: &mut Scratch) {
        if self.reads_rows_in_place() {
            return self.add_kernel_gradient_rows(plane, grad, sums);
        }
        let Scratch { padded: scratch, pitch, .. } = scratch;
        self.pad(plane, scratch);
        if self.whole_plane() {
            self.at_pitch(grad, pitch);
            for (tap, sum) in sums.iter_mut().enumerate() {
                *sum += dot(pitch, &scratch[self.tap_start(tap)..][..pitch.len()]);
            }
            return;
        }
        // Row by row in f64: a 112x112 plane adds 12,544 products a tap.
        let mut plane_sums = [0.0f64; 9];
        for (oy, grad_row) in grad.chunks_exact(self.ow).enumerate() {
            for (tap, sum) in plane_sums.iter_mut().enumerate() {
                let inputs = &scratch[self.tap(oy * self.stride + tap / 3, tap % 3)];
                *sum += f64::from(dot(grad_row, inputs));
            }
        }
        for (sum, plane_sum) in sums.iter_mut().zip(plane_sums) {
            *sum += plane_sum as f32;
        }
    }

    /// [`Self::add_kernel_gradient`] at stride 1 row by row, on the rows where they lie: each
    /// tap's dot with an output row runs over the inputs it meets inside the plane.
    fn add_kernel_gradient_rows(&self, plane: &[f32], grad: &[f32], sums: &mut [f32]) {
        let w = self.w;
        // Row by row in f64, as over a padded copy.
        let mut plane_sums = [0.0f64; 9];
        for (oy, grad_row) in grad.chunks_exact(w).enumerate() {
            for (ky, tap_sums) in plane_sums.chunks_exact_mut(3).enumerate() {
                let Some(y) = self.plane_row(oy + ky) else { continue };
                let inputs = &plane[y * w..][..w];
                tap_sums[0] += f64::from(dot(&grad_row[1..], &inputs[..w - 1]));
                tap_sums[1] += f64::from(dot(grad_row, inputs));
                tap_sums[2] += f64::from(dot(&grad_row[..w - 1], &inputs[1..]));
            }
        }
        for (sum, plane_sum) in sums.iter_mut().zip(plane_sums) {
            *sum += plane_sum as f32;
        }
    }
}

/// Σ kernel[tap] · taps[tap][at], the nine taps summed in order: every path sums them this way,
/// so each gives the same values as the others.
#[inline]
fn tap_sum(taps: &[&[f32]; 9], kernel: &[f32; 9], at: usize) -> f32 {
    taps.iter().zip(kernel).fold(0.0, |sum, (inputs, &k)| sum + k * inputs[at])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, tap by tap with bounds tests: what the row loops must equal.
    fn reference(g: &Geometry, plane: &[f32], kernel: &[f32], bias: f32) -> Vec<f32> {
        let mut out = vec![0.0; g.output_len()];
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
        out.iter_mut().for_each(|v| *v = relu6(*v, bias));
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
        // Whole-plane runs (stride 1, narrower than 32), rows read in place (stride 1, wider) and
        // rows of a padded copy (stride 2).
        for (h, w, stride) in [
            (5, 7, 1),
            (6, 6, 2),
            (7, 5, 2),
            (1, 1, 1),
            (2, 3, 2),
            (19, 21, 1),
            (7, 7, 1),
            (14, 14, 1),
            (28, 28, 1),
            (33, 34, 1),
            (2, 40, 1),
        ] {
            let g = Geometry::new(h, w, stride);
            let plane: Vec<f32> = (0..h * w).map(|i| ((i * 37) % 11) as f32 - 5.0).collect();
            let mut out = vec![0.0; g.output_len()];
            g.forward_relu6(&plane, &kernel, 0.25, &mut out, &mut Scratch::default());
            assert_eq!(out, reference(&g, &plane, &kernel, 0.25), "{h}x{w} stride {stride}");
        }
    }
}
