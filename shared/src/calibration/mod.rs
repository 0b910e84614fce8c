//! Answers a visitor can trust: each classification task's probabilities tempered to match how
//! often the model is right (temperature scaling), a "can't tell" band for gender, and the age
//! as an interval read from the distribution head. Everything is fitted on validation faces
//! (`fit`), stored in the model header (`Calibration`), applied to the head's probabilities
//! (`read`) by `predict` and the page alike, and measured on test faces (`measure`).

mod fit;
mod measure;
mod read;
mod settings;

pub use fit::{CANT_TELL_ACCURACY, cant_tell_threshold, fit, fit_interval_temperature, fit_temperature};
pub use measure::{EceFloor, Reliability, answered, ece, ece_floor, interval_coverage, reliability};
pub use read::{confidence, interval, temper};
pub use settings::{Calibration, INTERVAL_LEVEL};
