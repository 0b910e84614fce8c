//! The native side of facemtl: fetching and converting pretrained weights, data sets,
//! training, evaluation and benchmarks. `main.rs` is the command line over these modules.

pub mod activations;
pub mod bench;
pub mod cache;
pub mod crops;
pub mod data;
pub mod device;
pub mod features;
pub mod files;
pub use facemtl::groups;
pub mod infer;
pub mod lab;
pub mod models;
pub mod output;
pub mod plots;
pub mod report;
pub mod reproduce;
pub mod setup;
pub mod thesis;
pub mod train;
