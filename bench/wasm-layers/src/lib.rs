//! faceres's and BlazeFace's layer shapes through the browser's packed kernels, timed with the
//! host's clock (`env.now`, milliseconds): `run(network, repeats)` returns a checksum of the
//! last output, and `time(kind)` the mean time per image of each layer kind.

// The networks' code reads sizes this harness already knows.
#[allow(dead_code)]
#[path = "../../../shared/src/nhwc/layers/mod.rs"]
mod layers;

#[path = "../../../shared/src/backbone/blocks.rs"]
mod blocks;

#[path = "../../../shared/src/detect/plan.rs"]
mod plan;

use layers::{Activation, Codes, Depthwise, GridPointwise, Pointwise, Stem, add_shortcut};

unsafe extern "C" {
    fn now() -> f64;
}

/// Stem, depthwise, pointwise, shortcut: milliseconds per image of the last `run`.
static mut TIMES: [f64; 4] = [0.0; 4];

#[unsafe(no_mangle)]
pub extern "C" fn time(kind: u32) -> f64 {
    // SAFETY: wasm32 without threads: nothing else touches it.
    unsafe { TIMES[kind as usize] }
}

/// Weights drawn from a fixed seed: the same network on every run.
struct Draw(u64);

impl Draw {
    fn values(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|_| {
                self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale
            })
            .collect()
    }
}

/// A depthwise-separable block: `(in, out, stride)`.
type Block = (usize, usize, usize);

fn faceres() -> Vec<Block> {
    let mut c = 32;
    blocks::BLOCKS.iter().map(|&(out, stride)| ((c, out, stride), c = out).0).collect()
}

fn clock() -> f64 {
    // SAFETY: an imported function of no argument.
    unsafe { now() }
}

/// Each row of `[rows, n]` on its own grid of 256 steps, as the page's int8 backbone holds it.
fn on_grids(weight: Vec<f32>, n: usize) -> Vec<f32> {
    let row = |row: &[f32]| {
        let lowest = row.iter().copied().fold(f32::INFINITY, f32::min);
        let step = (row.iter().copied().fold(f32::NEG_INFINITY, f32::max) - lowest) / 255.0;
        row.iter().map(|v| lowest + ((v - lowest) / step).round() * step).collect::<Vec<_>>()
    };
    weight.chunks_exact(n).flat_map(row).collect()
}

/// A block's 1x1 convolution in f32, or summed in integers (network 2).
enum Mixing {
    Float(Pointwise),
    Grid(GridPointwise),
}

/// Network 0: faceres (224x224, ReLU6 everywhere); 1: BlazeFace's blocks (256x256, linear
/// depthwise, the shortcut then ReLU); 2: faceres with 8-bit 1x1 kernels summed in integers, as
/// the page runs its int8 backbone.
#[unsafe(no_mangle)]
pub extern "C" fn run(network: u32, repeats: u32) -> f64 {
    let blaze = network == 1;
    let grid = network == 2;
    let mut draw = Draw(7);
    let (side_in, kernel, stem_out) = if blaze { (256, 5, 24) } else { (224, 3, 32) };
    let (act, dw_act, pw_act) = if blaze {
        (Activation::Relu, Activation::Linear, Activation::Linear)
    } else {
        (Activation::Relu6, Activation::Relu6, Activation::Relu6)
    };
    let stem_weights = draw.values(stem_out * 3 * kernel * kernel, 0.1);
    let stem_bias = draw.values(stem_out, 0.1);
    let plan = if blaze { plan::block_plan() } else { faceres() };
    let blocks: Vec<(Depthwise, Mixing, Block)> = plan
        .iter()
        .map(|&(c, out, stride)| {
            let dw = Depthwise::new(&draw.values(c * 9, 0.5), draw.values(c, 0.1), stride, dw_act);
            let (weight, bias) = (draw.values(out * c, 2.0 / (c as f32).sqrt()), draw.values(out, 0.1));
            let pw = if grid {
                Mixing::Grid(GridPointwise::new(&on_grids(weight, c), bias, pw_act).expect("kernels on grids"))
            } else {
                Mixing::Float(Pointwise::new(&weight, bias, pw_act))
            };
            (dw, pw, (c, out, stride))
        })
        .collect();
    let mut codes = Codes::default();
    let input = draw.values(3 * side_in * side_in, 2.0);
    let largest = (side_in / 2) * (side_in / 2) * 64;
    let (mut x, mut branch, mut y) = (vec![0.0f32; largest], vec![0.0f32; largest], vec![0.0f32; largest]);
    let mut times = [0.0f64; 4];
    let mut checksum = 0.0;
    macro_rules! stem {
        ($v:literal) => {{
            let stem = Stem::<$v>::new(&stem_weights, stem_bias.clone(), kernel, 2, act);
            let side = stem.side_out(side_in);
            let t = clock();
            stem.forward(&input, side_in, &mut x[..side * side * stem_out]);
            times[0] += clock() - t;
            side
        }};
    }
    for _ in 0..repeats {
        let mut side = if blaze { stem!(6) } else { stem!(8) };
        let mut c = stem_out;
        for (dw, pw, (_, out, _)) in &blocks {
            let side_out = dw.side_out(side);
            let pixels = side_out * side_out;
            let t = clock();
            dw.forward(&x[..side * side * c], side, &mut branch[..pixels * c]);
            let t1 = clock();
            match pw {
                Mixing::Float(pw) => pw.forward(&branch[..pixels * c], &mut y[..pixels * out]),
                Mixing::Grid(pw) => pw.forward(&branch[..pixels * c], &mut codes, &mut y[..pixels * out]),
            }
            let t2 = clock();
            if blaze {
                add_shortcut(&x[..side * side * c], side, c, &mut y[..pixels * out], side_out, *out);
            }
            times[1] += t1 - t;
            times[2] += t2 - t1;
            times[3] += clock() - t2;
            std::mem::swap(&mut x, &mut y);
            (side, c) = (side_out, *out);
        }
        checksum = x[..side * side * c].iter().map(|&v| v as f64).sum();
    }
    // SAFETY: as in `time`.
    unsafe { TIMES = times.map(|t| t / repeats as f64) };
    checksum
}
