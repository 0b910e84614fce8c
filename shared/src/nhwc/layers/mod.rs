//! The layers, on plain slices (no Burn): what `bench/wasm-layers` times under V8 as it is.

mod activation;
mod depthwise;
mod grid_pointwise;
mod lanes;
mod padding;
mod pointwise;
mod shortcut;
mod stem;

pub use activation::Activation;
pub use depthwise::Depthwise;
pub use grid_pointwise::{Codes, GridPointwise};
pub use pointwise::Pointwise;
pub use shortcut::add_shortcut;
pub use stem::Stem;
