//! How well a calibration holds on test faces: expected calibration error and its reliability
//! bins, the age intervals' coverage, and the accuracy of the answers given beside their share.

use serde::{Deserialize, Serialize};

use super::read::{interval, temper};
use crate::draws::uniform_draws;

/// One reliability bin: faces whose confidence fell in `[low, low + width)`, their mean
/// confidence and how often they were right.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reliability {
    pub low: f64,
    pub count: usize,
    pub confidence: f64,
    pub accuracy: f64,
}

/// Faces per equal-width confidence bin over `[0, 1]` (`bins` of them), empty bins left out.
pub fn reliability(confidences: &[f32], correct: &[bool], bins: usize) -> Vec<Reliability> {
    let mut sums = vec![(0usize, 0.0f64, 0usize); bins];
    for (p, ok) in confidences.iter().zip(correct) {
        let bin = ((f64::from(*p) * bins as f64) as usize).min(bins - 1);
        sums[bin].0 += 1;
        sums[bin].1 += f64::from(*p);
        sums[bin].2 += usize::from(*ok);
    }
    sums.into_iter()
        .enumerate()
        .filter(|(_, (n, _, _))| *n > 0)
        .map(|(b, (n, sum, right))| Reliability {
            low: b as f64 / bins as f64,
            count: n,
            confidence: sum / n as f64,
            accuracy: right as f64 / n as f64,
        })
        .collect()
}

/// Expected calibration error over `bins` equal-width bins: the faces' share-weighted gap
/// between confidence and accuracy.
pub fn ece(confidences: &[f32], correct: &[bool], bins: usize) -> f64 {
    let n = confidences.len().max(1) as f64;
    reliability(confidences, correct, bins).iter().map(|b| b.count as f64 / n * (b.confidence - b.accuracy).abs()).sum()
}

/// The expected calibration error that a model right exactly as often as it says would still
/// show on faces of these `confidences` (over `bins` bins), for want of faces: each face drawn
/// right with its own confidence, [`FLOOR_DRAWS`] times (seeded). A measured error near the
/// mean is sampling noise, not miscalibration; one above the 90th percentile is unlikely to be.
pub fn ece_floor(confidences: &[f32], bins: usize) -> EceFloor {
    let mut draw = uniform_draws(FLOOR_SEED);
    let mut errors: Vec<f64> = (0..FLOOR_DRAWS)
        .map(|_| {
            let correct: Vec<bool> = confidences.iter().map(|p| draw() < f64::from(*p)).collect();
            ece(confidences, &correct, bins)
        })
        .collect();
    errors.sort_by(f64::total_cmp);
    EceFloor { mean: errors.iter().sum::<f64>() / FLOOR_DRAWS as f64, p90: errors[FLOOR_DRAWS * 9 / 10] }
}

/// Draws behind [`ece_floor`]: its mean moves by about 1 % of itself between seeds.
const FLOOR_DRAWS: usize = 400;
const FLOOR_SEED: u64 = 15;

/// [`ece_floor`]'s figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EceFloor {
    pub mean: f64,
    pub p90: f64,
}

/// The share of `truth` values inside the `level` intervals of the distributions `rows` over
/// `bins`, tempered by `t`.
pub fn interval_coverage(rows: &[&[f32]], bins: &[f32], truth: &[f32], t: f32, level: f32) -> f64 {
    let inside = rows.iter().zip(truth).filter(|(row, v)| {
        let (low, high) = interval(bins, &temper(row, t), level);
        (low..=high).contains(v)
    });
    inside.count() as f64 / rows.len().max(1) as f64
}

/// Of faces with these `confidences`, the share answered (confidence at or above
/// `cant_tell_below`) and the accuracy on those answered (`NaN` when none is).
pub fn answered(confidences: &[f32], correct: &[bool], cant_tell_below: Option<f32>) -> (f64, f64) {
    let below = cant_tell_below.unwrap_or(0.0);
    let given: Vec<bool> = confidences.iter().zip(correct).filter(|(p, _)| **p >= below).map(|(_, ok)| *ok).collect();
    let right = given.iter().filter(|ok| **ok).count() as f64;
    (given.len() as f64 / confidences.len().max(1) as f64, right / given.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_right_as_often_as_it_says_has_no_calibration_error() {
        // 10 faces at 0.8, 8 right; 10 at 0.6, 6 right.
        let confidences = [[0.8f32; 10], [0.6; 10]].concat();
        let correct: Vec<bool> = (0..20).map(|i| i % 10 < if i < 10 { 8 } else { 6 }).collect();
        assert!(ece(&confidences, &correct, 15) < 1e-6);
        // Always right at 0.6: a gap of 0.4 over half the faces.
        let sure = [[true; 10], [true; 10]].concat();
        assert!((ece(&confidences, &sure, 15) - 0.3).abs() < 1e-6);
        let bins = reliability(&confidences, &correct, 15);
        assert_eq!(bins.iter().map(|b| b.count).collect::<Vec<_>>(), [10, 10]);
        assert!((bins[1].accuracy - 0.8).abs() < 1e-9);
    }

    #[test]
    fn the_floor_shrinks_with_the_faces_and_a_calibrated_model_sits_on_it() {
        // Confidences spread over [0.5, 1); a model right exactly as often (drawn elsewhere).
        let confidences = |n: usize| (0..n).map(|i| 0.5 + 0.5 * (i as f32 + 0.5) / n as f32).collect::<Vec<_>>();
        let (few, many) = (ece_floor(&confidences(500), 15), ece_floor(&confidences(8000), 15));
        // Sampling noise falls as one over the root of the faces: 16 times the faces, a quarter.
        assert!(few.mean > 3.0 * many.mean && few.mean < 5.0 * many.mean, "{few:?} {many:?}");
        assert!(few.p90 > few.mean);
        let mut draw = uniform_draws(99);
        let faces = confidences(500);
        let calibrated: Vec<bool> = faces.iter().map(|p| draw() < f64::from(*p)).collect();
        assert!(ece(&faces, &calibrated, 15) < 2.0 * few.p90);
        // Always right (an error of 0.25 here): several times the floor.
        assert!(ece(&faces, &vec![true; 500], 15) > 5.0 * few.mean, "{few:?}");
    }

    #[test]
    fn answered_faces_are_counted_apart_from_the_cant_tells() {
        let (share, accuracy) = answered(&[0.55, 0.65, 0.9, 0.99], &[false, true, true, true], Some(0.6));
        assert_eq!((share, accuracy), (0.75, 1.0));
        assert_eq!(answered(&[0.55, 0.9], &[false, true], None), (1.0, 0.5));
    }
}
