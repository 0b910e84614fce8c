//! faceres's forward pass for the browser's CPU fallback: activations kept pixel by pixel
//! (NHWC), weights packed once when the model loads, bias and ReLU6 fused into each layer, and
//! inner loops over channel lanes that compile to WebAssembly SIMD.
//!
//! Burn's CPU backend runs the same network about twice as slowly in the browser: it keeps
//! channel planes (NCHW), converts layouts and packs its matrices on every call
//! (BENCHMARKS.md "Beside the peers"). Training and native inference keep Burn's kernels.

mod depthwise;
mod faceres;
mod lanes;
mod pointwise;
mod stem;

pub use faceres::NhwcFaceRes;

/// The padding before the first row (or column) of a SAME convolution, as Burn places it:
/// half of what is needed, rounded down, the rest after the last.
fn same_padding_before(kernel: usize, stride: usize, side: usize) -> usize {
    let needed = (side.div_ceil(stride) - 1) * stride + kernel;
    needed.saturating_sub(side) / 2
}
