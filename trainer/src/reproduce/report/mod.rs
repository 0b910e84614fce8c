//! `results/REPORT.md`, `results/report.json` and `results/plots/` from a finished sweep: the
//! thesis's tables side by side with ours, per-group figures, plots and a verdict per claim.

mod index;
mod sections;
mod tables;
mod verdicts;
mod write;

pub use write::write;

#[cfg(test)]
mod tests;
