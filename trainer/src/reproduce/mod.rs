//! `facemtl reproduce`: the thesis's experiments, each with several seeds, for each backbone;
//! then `results/REPORT.md` beside the thesis's own figures.

pub mod across;
pub mod experiments;
pub mod report;
pub mod runner;
pub mod sweep;
pub mod thesis;

pub use runner::{ReproduceArgs, run};
