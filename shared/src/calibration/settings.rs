//! What a model header stores of its calibration, and the bounds it must keep.

use serde::{Deserialize, Serialize};

/// The share of the age distribution an answer's interval holds.
pub const INTERVAL_LEVEL: f32 = 0.8;

/// Temperatures outside this range are not a calibration of ours (a crafted header).
pub(super) const TEMPERATURES: std::ops::RangeInclusive<f32> = 0.05..=20.0;

/// A model's calibration, fitted on validation faces; the default changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// One per task, in the header's task order: a class task's probabilities are read as
    /// `softmax(logits / t)`; a distribution's `t` widens or narrows its interval only, so that
    /// its central value (and the test MAE measured of it) stays the one trained. 1 for a
    /// regression task. Empty: no temperature.
    pub temperatures: Vec<f32>,
    /// A gender answer whose calibrated probability of the likelier class lies below this is
    /// "can't tell" (chosen on validation faces, see [`super::cant_tell_threshold`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cant_tell_below: Option<f32>,
    /// The share of the age distribution the answer's interval holds; absent: no interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<f32>,
}

impl Calibration {
    pub fn is_none(&self) -> bool {
        *self == Calibration::default()
    }

    /// Task `t`'s temperature (1 when the model has none).
    pub fn temperature(&self, t: usize) -> f32 {
        self.temperatures.get(t).copied().unwrap_or(1.0)
    }

    /// `Err(why)` unless every number is one a fit of ours can give, for a model of `tasks`
    /// tasks.
    pub fn check(&self, tasks: usize) -> Result<(), String> {
        if !self.temperatures.is_empty() && self.temperatures.len() != tasks {
            return Err(format!("{} temperatures for {tasks} tasks", self.temperatures.len()));
        }
        if let Some(t) = self.temperatures.iter().find(|t| !TEMPERATURES.contains(t)) {
            return Err(format!("a temperature of {t}"));
        }
        if let Some(c) = self.cant_tell_below.filter(|c| !(0.5..=1.0).contains(c)) {
            return Err(format!("a can't-tell threshold of {c}"));
        }
        if let Some(level) = self.interval.filter(|l| !(*l > 0.0 && *l < 1.0)) {
            return Err(format!("an interval holding {level} of the distribution"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_no_fit_gives_are_refused() {
        let good = Calibration { temperatures: vec![1.3, 0.9], cant_tell_below: Some(0.7), interval: Some(0.8) };
        assert_eq!(good.check(2), Ok(()));
        assert!(good.check(3).is_err());
        for bad in [
            Calibration { temperatures: vec![f32::NAN, 1.0], ..good.clone() },
            Calibration { temperatures: vec![0.0, 1.0], ..good.clone() },
            Calibration { cant_tell_below: Some(0.3), ..good.clone() },
            Calibration { interval: Some(1.0), ..good.clone() },
            Calibration { interval: Some(f32::NAN), ..good.clone() },
        ] {
            assert!(bad.check(2).is_err(), "{bad:?}");
        }
        assert!(Calibration::default().is_none() && Calibration::default().check(5).is_ok());
    }
}
