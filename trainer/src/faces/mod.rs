//! The per-face caches training reads: backbone features, the activations at a cut of the
//! backbone (partial fine-tuning), and aligned crops (whole fine-tuning).

pub mod activations;
pub mod crops;
mod extraction;
pub mod features;
pub mod looks;

pub use extraction::{batch_size, best_face_crops, cache_key};
