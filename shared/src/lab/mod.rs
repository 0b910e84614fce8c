//! The Lab's data: backbone features of a few thousand labelled faces per data set, quantised
//! per feature to a few bits, so that a browser can train the multi-task head without the
//! photos (and without downloading megabytes of floats). `facemtl lab build` writes the file;
//! the browser's Lab and `facemtl train --lab` read it. A run of the Lab, as the page's worker
//! asks for it, is built here too, so that native tests and fuzzing exercise the page's path.

pub mod file;
pub mod run;

pub use file::{LabData, LabError, LabHeader, LabSet, LabSetInfo, LabSplit, MAX_LAB_BYTES, decode, encode};
pub use run::{LabRun, RunRequest, demo_settings};
