//! Fitting a calibration on validation faces: the head's probabilities (temperature 1) and the
//! faces' true classes or values.

use super::measure::interval_coverage;
use super::read::{confidence, temper};
use super::settings::{Calibration, INTERVAL_LEVEL, TEMPERATURES};
use crate::mtl::{TaskKind, TaskSpec};

/// The range searched, in log temperature: the temperatures a header may hold.
fn log_range() -> (f64, f64) {
    let (low, high) = TEMPERATURES.into_inner();
    (f64::from(low).ln(), f64::from(high).ln())
}
const STEPS: usize = 60;

/// Faces in the "can't tell" band are right at most this often on validation: little better
/// than a guess, where an answer would mislead more often than it helps.
pub const CANT_TELL_ACCURACY: f64 = 0.7;
/// Fewer validation faces than this in the band say nothing; no band is set.
const CANT_TELL_MIN_FACES: usize = 10;

/// The temperature that minimises the negative log-likelihood of the `truth` classes under the
/// tempered `rows` (which is unimodal in the temperature, so a golden-section search finds it).
pub fn fit_temperature(rows: &[&[f32]], truth: &[usize]) -> f32 {
    let nll = |log_t: f64| -> f64 {
        let t = log_t.exp() as f32;
        rows.iter().zip(truth).map(|(row, &c)| -f64::from(temper(row, t)[c]).max(1e-12).ln()).sum()
    };
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    let (mut a, mut b) = log_range();
    for _ in 0..STEPS {
        let (x1, x2) = (b - ratio * (b - a), a + ratio * (b - a));
        if nll(x1) < nll(x2) { b = x2 } else { a = x1 }
    }
    ((a + b) / 2.0).exp() as f32
}

/// The temperature at which the `level` intervals of the distributions `rows` over `bins`
/// hold `level` of the `truth` values (the share held grows with the temperature).
pub fn fit_interval_temperature(rows: &[&[f32]], bins: &[f32], truth: &[f32], level: f32) -> f32 {
    let held = |log_t: f64| interval_coverage(rows, bins, truth, log_t.exp() as f32, level);
    let (mut a, mut b) = log_range();
    for _ in 0..STEPS / 2 {
        let mid = (a + b) / 2.0;
        if held(mid) < f64::from(level) { a = mid } else { b = mid }
    }
    ((a + b) / 2.0).exp() as f32
}

/// The widest band of calibrated confidences `[0.5, c)` (c on a grid of hundredths) whose
/// validation faces are right at most [`CANT_TELL_ACCURACY`] of the time; `None` when no band
/// holds enough faces to say.
pub fn cant_tell_threshold(confidences: &[f32], correct: &[bool]) -> Option<f32> {
    (51..100).rev().map(|c| c as f32 / 100.0).find(|c| {
        let band: Vec<bool> = confidences.iter().zip(correct).filter(|(p, _)| **p < *c).map(|(_, ok)| *ok).collect();
        let right = band.iter().filter(|ok| **ok).count() as f64;
        band.len() >= CANT_TELL_MIN_FACES && right <= CANT_TELL_ACCURACY * band.len() as f64
    })
}

/// The calibration of a model of `tasks` fitted on validation faces: per task, the head's
/// `outputs` (probabilities at temperature 1, `task.outputs()` per face) and the `truth`
/// (class index, or value in the task's unit; NaN for a face without a label, left out).
pub fn fit(tasks: &[TaskSpec], outputs: &[Vec<f32>], truth: &[Vec<f64>]) -> Calibration {
    let mut calibration = Calibration::default();
    for ((task, out), truth) in tasks.iter().zip(outputs).zip(truth) {
        let (rows, truth): (Vec<&[f32]>, Vec<f64>) =
            out.chunks_exact(task.outputs()).zip(truth).filter(|(_, t)| !t.is_nan()).map(|(r, t)| (r, *t)).unzip();
        let t = match task.kind {
            // No validation face to fit on: the task keeps its probabilities as trained.
            _ if rows.is_empty() => 1.0,
            TaskKind::Class { .. } => {
                let classes: Vec<usize> = truth.iter().map(|c| *c as usize).collect();
                let t = fit_temperature(&rows, &classes);
                if *task == TaskSpec::gender() {
                    let tempered: Vec<Vec<f32>> = rows.iter().map(|r| temper(r, t)).collect();
                    let confidences: Vec<f32> = tempered.iter().map(|r| confidence(r)).collect();
                    let correct: Vec<bool> =
                        tempered.iter().zip(&classes).map(|(r, c)| r[*c] == confidence(r)).collect();
                    calibration.cant_tell_below = cant_tell_threshold(&confidences, &correct);
                }
                t
            }
            TaskKind::Distribution { .. } => {
                let values: Vec<f32> = truth.iter().map(|v| *v as f32).collect();
                calibration.interval = Some(INTERVAL_LEVEL);
                fit_interval_temperature(&rows, &task.bins(), &values, INTERVAL_LEVEL)
            }
            TaskKind::Regression { .. } => 1.0,
        };
        calibration.temperatures.push(t);
    }
    calibration
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calibration::interval;

    /// A tiny deterministic generator, so the tests need no crate.
    fn uniform(state: &mut u64) -> f64 {
        *state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (*state >> 11) as f64 / (1u64 << 53) as f64
    }

    #[test]
    fn an_overconfident_model_is_tempered_back_to_its_true_odds() {
        // Each face's true odds p, told as p^3 (sharpened as by a temperature of 1/3).
        let mut s = 7;
        let (mut rows, mut truth) = (Vec::new(), Vec::new());
        for _ in 0..4000 {
            let p = 0.5 + 0.5 * uniform(&mut s);
            let female = uniform(&mut s) < p;
            let told = temper(&[(1.0 - p) as f32, p as f32], 1.0 / 3.0);
            rows.push(told);
            truth.push(usize::from(female));
        }
        let rows: Vec<&[f32]> = rows.iter().map(|r| r.as_slice()).collect();
        let t = fit_temperature(&rows, &truth);
        assert!((t - 3.0).abs() < 0.35, "{t}");
    }

    #[test]
    fn a_too_narrow_distribution_is_widened_until_its_interval_holds_its_share() {
        // Values spread ±6 around each face's centre, told as a distribution of spread ±2.
        let bins: Vec<f32> = (0..100).map(|v| v as f32).collect();
        let mut s = 3;
        let (mut rows, mut truth) = (Vec::new(), Vec::new());
        for _ in 0..2000 {
            let centre = 30.0 + 40.0 * uniform(&mut s) as f32;
            let told: Vec<f32> = bins.iter().map(|b| (-((b - centre) / 2.0).powi(2) / 2.0).exp()).collect();
            let sum: f32 = told.iter().sum();
            rows.push(told.iter().map(|p| p / sum).collect::<Vec<f32>>());
            truth.push(centre + 12.0 * (uniform(&mut s) as f32 - 0.5) * 1.7);
        }
        let rows: Vec<&[f32]> = rows.iter().map(|r| r.as_slice()).collect();
        let t = fit_interval_temperature(&rows, &bins, &truth, 0.8);
        let held = rows
            .iter()
            .zip(&truth)
            .filter(|(r, v)| {
                let (low, high) = interval(&bins, &temper(r, t), 0.8);
                (low..=high).contains(v)
            })
            .count() as f64
            / rows.len() as f64;
        assert!(t > 2.0, "{t}");
        assert!((held - 0.8).abs() < 0.02, "{held}");
    }

    #[test]
    fn the_cant_tell_band_holds_the_guesses_and_needs_enough_faces() {
        // 40 faces below 0.6 right half the time, 100 above right always.
        let mut confidences = vec![0.55; 40];
        let mut correct: Vec<bool> = (0..40).map(|i| i % 2 == 0).collect();
        confidences.extend([0.95; 100]);
        correct.extend([true; 100]);
        let c = cant_tell_threshold(&confidences, &correct).unwrap();
        assert!((0.56..=0.95).contains(&c), "{c}");
        // The band ends where adding the sure faces would lift it over 70 %: at most 0.95.
        assert!(confidences.iter().zip(&correct).filter(|(p, _)| **p < c).all(|(p, _)| *p == 0.55));
        assert_eq!(cant_tell_threshold(&confidences[..5], &correct[..5]), None);
        assert_eq!(cant_tell_threshold(&[0.99; 50], &[true; 50]), None);
    }

    #[test]
    fn a_task_without_validation_faces_keeps_its_probabilities_and_gets_no_interval() {
        let age = TaskSpec::age(crate::mtl::AgeNorm::ALL_AGES).as_distribution(0.0, 3.0);
        let calibration =
            fit(&[TaskSpec::gender(), age], &[vec![0.3, 0.7], vec![0.25; 4]], &[vec![f64::NAN], vec![f64::NAN]]);
        assert_eq!(calibration, Calibration { temperatures: vec![1.0, 1.0], ..Default::default() });
    }

    #[test]
    fn faces_without_a_label_are_left_out_of_the_fit() {
        let rows = vec![0.3, 0.7, 0.6, 0.4, 0.2, 0.8, 0.9, 0.1];
        let labelled = fit(&[TaskSpec::gender()], &[rows[..6].to_vec()], &[vec![1.0, 1.0, 1.0]]);
        let with_unlabelled = fit(&[TaskSpec::gender()], &[rows], &[vec![1.0, 1.0, 1.0, f64::NAN]]);
        assert_eq!(labelled, with_unlabelled);
    }

    #[test]
    fn a_fit_at_the_edge_of_the_range_is_a_temperature_a_header_takes() {
        // Always wrong with full confidence: the flattest temperature there is.
        let rows = vec![0.99, 0.01, 0.98, 0.02];
        let calibration = fit(&[TaskSpec::gender()], &[rows], &[vec![1.0, 1.0]]);
        assert!(calibration.temperatures[0] > 19.0, "{calibration:?}");
        assert_eq!(calibration.check(1), Ok(()));
    }
}
