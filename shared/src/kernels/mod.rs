//! Kernels of our own for the Flex (CPU) backend, where Burn takes a generic or single-threaded
//! path: faceres's stem, depthwise and pointwise convolutions with their bias and ReLU6 fused in,
//! and its global average pool, forward (training and inference) and each with a backward of its
//! own; and Adam's step over a parameter's values (BENCHMARKS.md "Training speed"; the upstream
//! write-up is docs/upstream-cpu-training.md). The GPU backends run Burn's own kernels.

mod adam;
mod blocks;
mod conv3x3;
mod depthwise;
mod lanes;
mod matmul;
mod ops;
mod optimiser;
mod parallel;
mod planes;
mod pointwise;
mod pool;
mod relu6;
mod saved;

pub use adam::Step as AdamStep;
pub use ops::{conv3x3_relu6, depthwise3x3_relu6, f32_on_flex, mean_pool, pointwise_relu6, runs_here};
pub use optimiser::adam_step;
