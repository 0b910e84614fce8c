//! faceres's and BlazeFace's forward passes for the browser's CPU fallback: activations kept
//! pixel by pixel (NHWC), weights packed once when the model loads, bias and activation fused
//! into each layer, and inner loops over vectors of four channels that are WebAssembly SIMD in
//! the browser ([`layers`], on plain slices). faceres's 1x1 layers, when their kernels are the
//! int8 backbone's, sum in integers (`layers::GridPointwise`): twice the multiply-adds an
//! instruction.
//!
//! Burn's CPU backend ran faceres at half this speed in the browser, and BlazeFace at 0.6 of it
//! (BENCHMARKS.md "Packed kernels for the CPU fallback"). Training and native inference keep
//! Burn's kernels.

mod blazeface;
#[cfg(test)]
mod check;
mod faceres;
mod layers;
mod weights;

pub use blazeface::NhwcBlazeFace;
pub use faceres::NhwcFaceRes;
