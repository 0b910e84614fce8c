//! facemtl's shared library: from photo bytes to aligned faces and pretrained features, and
//! (later) the multi-task head. No file or network I/O: bytes in, structs out, on native
//! targets and wasm32 alike.

pub mod align;
pub mod backbone;
pub mod detect;
pub mod early_freeze;
mod layers;
pub mod mtl;
pub mod photo;
pub mod pipeline;
pub mod pretrained;
pub mod tfjs;
pub mod warp;
