//! The progress bar of long passes over faces, runs and epochs.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over `len` items of `what`, with its rate and the time left.
pub fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len).with_message(what.to_string());
    bar.set_style(
        ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} [{elapsed_precise} < {eta_precise}] {per_sec}")
            .expect("valid template"),
    );
    bar
}
