//! facemtl's shared library: from photo bytes to aligned faces, pretrained features and the
//! multi-task head's predictions, with the training-side logic (losses, loss weighting, Early
//! Freeze) that does not need files. No file or network I/O: bytes in, structs out, on native
//! targets and wasm32 alike.

pub mod align;
pub mod backbone;
pub mod calibration;
pub mod compact;
pub mod detect;
pub mod draws;
pub mod groups;
pub mod kernels;
pub mod lab;
mod layers;
pub mod model_file;
pub mod mtl;
pub mod nhwc;
pub mod photo;
pub mod pipeline;
pub mod predict;
pub mod pretrained;
pub mod tfjs;
pub mod track;
pub mod training;
pub mod warp;
