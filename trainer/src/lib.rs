//! The native side of facemtl: fetching and converting pretrained weights, data sets,
//! training, evaluation and benchmarks. `main.rs` is the command line over these modules.

pub mod bench;
pub mod cache;
pub mod data;
pub mod detect;
pub mod device;
pub mod faces;
pub mod files;
pub use facemtl::groups;
pub mod calibrate;
pub mod cross;
pub mod infer;
pub mod lab;
pub mod models;
pub mod output;
pub mod progress;
pub mod reproduce;
pub mod setup;
pub mod train;
