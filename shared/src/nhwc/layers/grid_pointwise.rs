//! A 1x1 convolution whose kernels lie on a grid of 256 steps per output channel (the int8
//! weights the page downloads), summed in integers. Each input is rounded to an integer code of
//! up to 15 bits and every multiply takes two inputs at once (WebAssembly SIMD's
//! `i32x4.dot_i16x8_s`), so an instruction does twice the multiply-adds of the f32 kernel
//! ([`super::Pointwise`]) on the very same weights.
//!
//! A kernel is `base + step * c` (`c` from -128 to 127) and an input `x` about `alpha * q` (`q`
//! from 0 to `top`), so `sum(w * x)` is about `alpha * (base * sum(q) + step * sum(c * q))`.
//! `top` is chosen per layer so that no sum of `c * q` can leave i32. Only the inputs are
//! rounded, by at most half a code: a 65,534th of their range where all 15 bits are kept, as on
//! every layer of faceres.

use super::activation::Activation;
use super::lanes::{F32x4, I16x8, I32x4, quads, quads_mut};

/// Output channels computed together: two vectors of four.
const NR: usize = 8;
/// Pixels computed together: eight accumulators, two weight vectors and one broadcast input pair.
const MR: usize = 4;
/// Input words (two codes each) of the pixels in flight: they stay in the L2 cache while every
/// block of output channels passes over them.
const CHUNK_WORDS: usize = 16 * 1024;
/// A row's grid: codes 0 to 255 from its lowest value, as compact files store int8 kernels.
const STEPS: f32 = 255.0;
/// The inputs' range: they follow a ReLU6.
const INPUT_MAX: f32 = 6.0;

#[derive(Debug, Clone)]
pub struct GridPointwise {
    channels_in: usize,
    channels_out: usize,
    /// `[out / NR][in / 2][NR][2]`: each block of output channels reads its codes in order, the
    /// two inputs of a pair side by side.
    packed: Vec<i16>,
    /// Per block of output channels: bias, `alpha * base` and `alpha * step`.
    scales: Vec<[[f32; NR]; 3]>,
    /// `1 / alpha`: an input times this, rounded, is its code.
    input_scale: f32,
    activation: Activation,
}

/// The codes of a layer's inputs (two to a word) and each pixel's sum of codes: scratch that
/// layer after layer reuses.
#[derive(Debug, Default)]
pub struct Codes {
    words: Vec<u32>,
    sums: Vec<f32>,
}

/// One output channel's kernels as codes on their grid.
struct Row {
    base: f32,
    step: f32,
    codes: Vec<i16>,
}

impl Row {
    /// `None` unless every value lies on the row's grid (within a thousandth of a step: the
    /// float rounding of `lowest + code * step`).
    fn on_grid(row: &[f32]) -> Option<Self> {
        let lowest = row.iter().copied().fold(f32::INFINITY, f32::min);
        let highest = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let step = (highest - lowest) / STEPS;
        if !step.is_finite() {
            return None;
        }
        let mut codes = Vec::with_capacity(row.len());
        for &v in row {
            let code = if step > 0.0 { ((v - lowest) / step).round() } else { 0.0 };
            if (lowest + code * step - v).abs() > 1e-3 * step {
                return None;
            }
            codes.push(code as i16 - 128);
        }
        Some(Self { base: lowest + 128.0 * step, step, codes })
    }
}

impl GridPointwise {
    /// From a 1x1 convolution's kernels `[out, in]` and biases `[out]` whose inputs follow a
    /// ReLU6. `None` unless each row of kernels lies on a grid of 256 steps from its lowest value
    /// to its highest, `in` is a multiple of 8 and `out` of 8 (faceres's int8 layers all are).
    pub fn new(weight: &[f32], bias: Vec<f32>, activation: Activation) -> Option<Self> {
        let channels_out = bias.len();
        let channels_in = weight.len() / channels_out.max(1);
        if channels_out == 0 || !channels_in.is_multiple_of(8) || !channels_out.is_multiple_of(NR) {
            return None;
        }
        let rows: Vec<Row> = weight.chunks_exact(channels_in).map(Row::on_grid).collect::<Option<_>>()?;
        // The largest code an input may take: no output's sum of |c| * top exceeds i32.
        let largest = rows.iter().map(|r| r.codes.iter().map(|c| c.unsigned_abs() as i64).sum::<i64>()).max()?;
        let top = (i32::MAX as i64 / largest.max(1)).min(i16::MAX as i64) as f32;
        let alpha = INPUT_MAX / top;
        let mut packed = Vec::with_capacity(channels_in * channels_out);
        let mut scales = Vec::with_capacity(channels_out / NR);
        for (block, rows) in rows.chunks_exact(NR).enumerate() {
            for pair in 0..channels_in / 2 {
                packed.extend(rows.iter().flat_map(|r| [r.codes[2 * pair], r.codes[2 * pair + 1]]));
            }
            let bias: [f32; NR] = bias[block * NR..][..NR].try_into().expect("NR biases");
            let offset = std::array::from_fn(|j| alpha * rows[j].base);
            scales.push([bias, offset, std::array::from_fn(|j| alpha * rows[j].step)]);
        }
        Some(Self { channels_in, channels_out, packed, scales, input_scale: top / INPUT_MAX, activation })
    }

    pub fn channels_out(&self) -> usize {
        self.channels_out
    }

    /// `x` `[pixels, in]` (ReLU6 outputs; others are clamped to 0..=6) -> `out` `[pixels, out]`.
    pub fn forward(&self, x: &[f32], codes: &mut Codes, out: &mut [f32]) {
        let (cin, cout, half) = (self.channels_in, self.channels_out, self.channels_in / 2);
        let pixels = x.len() / cin;
        assert_eq!(out.len(), pixels * cout);
        codes.words.resize(pixels * half, 0);
        codes.sums.resize(pixels, 0.0);
        self.encode(x, codes);
        let (words, sums) = (&codes.words[..], &codes.sums[..]);
        let chunk = ((CHUNK_WORDS / half).max(MR) / MR) * MR;
        for start in (0..pixels).step_by(chunk) {
            let end = (start + chunk).min(pixels);
            for (block, (weights, scales)) in self.packed.chunks_exact(cin * NR).zip(&self.scales).enumerate() {
                let mut p = start;
                while p + MR <= end {
                    let out = &mut out[p * cout + block * NR..];
                    let rows = (&words[p * half..(p + MR) * half], &sums[p..p + MR]);
                    tile::<MR>(rows, weights, scales, self.activation, out, cout);
                    p += MR;
                }
                for p in p..end {
                    let out = &mut out[p * cout + block * NR..];
                    tile::<1>(
                        (&words[p * half..(p + 1) * half], &sums[p..p + 1]),
                        weights,
                        scales,
                        self.activation,
                        out,
                        cout,
                    );
                }
            }
        }
    }

    /// Each input's code, two to a word, and each pixel's sum of codes.
    fn encode(&self, x: &[f32], codes: &mut Codes) {
        let half = self.channels_in / 2;
        let pixels = x.chunks_exact(self.channels_in).zip(codes.words.chunks_exact_mut(half));
        for ((pixel, words), sum) in pixels.zip(&mut codes.sums) {
            let mut total = I32x4::zero();
            for (eight, words) in quads(pixel).chunks_exact(2).zip(words.as_chunks_mut::<4>().0) {
                let [a, b] = [0, 1].map(|h| F32x4::load(&eight[h]).relu6().rounded(self.input_scale));
                total = total.add(a).add(b);
                I16x8::narrow(a, b).store_words(words);
            }
            *sum = total.sum() as f32;
        }
    }
}

/// `M` pixels' `NR` outputs: `words` `[M, in / 2]` and `sums` `[M]` (their codes), `weights`
/// `[in / 2][NR][2]`; row `r` goes to `out[r * stride..][..NR]`.
#[inline(always)]
fn tile<const M: usize>(
    (words, sums): (&[u32], &[f32]),
    weights: &[i16],
    scales: &[[f32; NR]; 3],
    activation: Activation,
    out: &mut [f32],
    stride: usize,
) {
    let half = weights.len() / (2 * NR);
    let rows: [&[u32]; M] = std::array::from_fn(|r| &words[r * half..(r + 1) * half]);
    let mut acc = [[I32x4::zero(); 2]; M];
    for (k, w) in weights.as_chunks::<8>().0.chunks_exact(2).enumerate() {
        let w = [I16x8::load(&w[0]), I16x8::load(&w[1])];
        for r in 0..M {
            let v = I16x8::splat_pair(rows[r][k]);
            acc[r][0] = acc[r][0].dot_add(w[0], v);
            acc[r][1] = acc[r][1].dot_add(w[1], v);
        }
    }
    let [bias, offset, step] = scales.each_ref().map(|s| [F32x4::load(&quads(s)[0]), F32x4::load(&quads(s)[1])]);
    for (r, acc) in acc.iter().enumerate() {
        let out = quads_mut(&mut out[r * stride..r * stride + NR]);
        let sum = F32x4::splat(sums[r]);
        for h in 0..2 {
            let y = bias[h].mul_add(offset[h], sum).mul_add(step[h], acc[h].to_f32());
            activation.apply(y).store(&mut out[h]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Pointwise;
    use super::*;

    /// Values from a fixed seed, uniform in `[low, high)`.
    fn draw(seed: &mut u64, n: usize, low: f32, high: f32) -> Vec<f32> {
        (0..n)
            .map(|_| {
                *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                low + (high - low) * ((*seed >> 40) as f32 / (1u64 << 24) as f32)
            })
            .collect()
    }

    /// Each row of `[rows, n]` put on its grid of 256 steps, as compact files store int8.
    fn on_grids(weight: &[f32], n: usize) -> Vec<f32> {
        weight
            .chunks_exact(n)
            .flat_map(|row| {
                let lowest = row.iter().copied().fold(f32::INFINITY, f32::min);
                let highest = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let step = (highest - lowest) / STEPS;
                row.iter().map(move |v| lowest + ((v - lowest) / step).round() * step).collect::<Vec<_>>()
            })
            .collect()
    }

    /// The largest distance between the outputs of the f32 kernel and the integer one, and
    /// the bound that input rounding allows: half a code's width times each row's sum of |w|.
    fn gap(weight: &[f32], bias: &[f32], x: &[f32], cin: usize) -> (f32, f32) {
        let cout = bias.len();
        let pixels = x.len() / cin;
        let float = Pointwise::new(weight, bias.to_vec(), Activation::Linear);
        let grid = GridPointwise::new(weight, bias.to_vec(), Activation::Linear).expect("kernels on grids");
        let (mut a, mut b) = (vec![0.0; pixels * cout], vec![0.0; pixels * cout]);
        float.forward(x, &mut a);
        grid.forward(x, &mut Codes::default(), &mut b);
        let worst = a.iter().zip(&b).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max);
        let half_code = 0.5 / grid.input_scale;
        let rows = weight.chunks_exact(cin).map(|r| r.iter().map(|w| w.abs()).sum::<f32>());
        // The f32 kernel's own rounding, over sums of this size, is far below this slack.
        (worst, rows.fold(0.0, f32::max) * half_code * 1.01 + 1e-4)
    }

    #[test]
    fn integer_sums_give_the_float_kernels_outputs_within_the_inputs_rounding() {
        let mut seed = 11;
        for (cin, cout, pixels) in [(32, 64, 13), (256, 16, 9), (1024, 8, 7)] {
            let weight = on_grids(&draw(&mut seed, cin * cout, -0.3, 0.3), cin);
            let bias = draw(&mut seed, cout, -1.0, 1.0);
            let x = draw(&mut seed, pixels * cin, 0.0, 6.0);
            let (worst, bound) = gap(&weight, &bias, &x, cin);
            assert!(worst <= bound, "{cin} -> {cout}: off by {worst}, input rounding allows {bound}");
        }
    }

    #[test]
    fn the_largest_sums_do_not_overflow() {
        // Rows whose codes are all -128 (a constant row) or all but one 127, every input at its
        // largest: the sums the layer's `top` must keep inside i32.
        let cin = 1024;
        let kernel = |row: usize, col: usize| if row.is_multiple_of(2) || col == 0 { -1.0 } else { 1.0 };
        let weight: Vec<f32> = (0..8 * cin).map(|i| kernel(i / cin, i % cin)).collect();
        let x = vec![6.0; 5 * cin];
        let (worst, bound) = gap(&weight, &[0.5; 8], &x, cin);
        assert!(worst <= bound, "off by {worst}, input rounding allows {bound}");
        let grid = GridPointwise::new(&weight, vec![0.0; 8], Activation::Linear).unwrap();
        assert!(grid.input_scale * INPUT_MAX < 32767.0, "the codes were not narrowed for the largest sums");
    }

    #[test]
    fn kernels_off_any_grid_and_odd_shapes_are_left_to_the_float_kernel() {
        let mut seed = 5;
        let exact = draw(&mut seed, 16 * 64, -0.3, 0.3);
        assert!(GridPointwise::new(&exact, vec![0.0; 16], Activation::Relu6).is_none());
        let gridded = on_grids(&exact, 64);
        assert!(GridPointwise::new(&gridded, vec![0.0; 16], Activation::Relu6).is_some());
        assert!(GridPointwise::new(&gridded[..6 * 64], vec![0.0; 6], Activation::Relu6).is_none(), "6 outputs");
        let constant = vec![0.25; 8 * 64];
        assert!(
            GridPointwise::new(&constant, vec![0.0; 8], Activation::Relu6).is_some(),
            "a constant row is on a grid"
        );
    }

    #[test]
    fn inputs_outside_relu6s_range_are_clamped_not_wrapped() {
        let mut seed = 3;
        let weight = on_grids(&draw(&mut seed, 8 * 32, -0.3, 0.3), 32);
        let grid = GridPointwise::new(&weight, vec![0.0; 8], Activation::Linear).unwrap();
        let wild: Vec<f32> = draw(&mut seed, 32, -50.0, 50.0);
        let clamped: Vec<f32> = wild.iter().map(|v| v.clamp(0.0, 6.0)).collect();
        let [a, b] = [&wild, &clamped].map(|x| {
            let mut out = vec![0.0; 8];
            grid.forward(x, &mut Codes::default(), &mut out);
            out
        });
        assert_eq!(a, b);
    }
}
