//! Reading a head's probabilities through a calibration.

/// `probabilities` (a softmax row) as `softmax(logits / t)`: each raised to `1 / t` and
/// normalised, in logs so that no small probability underflows on the way.
pub fn temper(probabilities: &[f32], t: f32) -> Vec<f32> {
    if t == 1.0 {
        return probabilities.to_vec();
    }
    let logs: Vec<f64> = probabilities.iter().map(|p| f64::from(*p).ln() / f64::from(t)).collect();
    let top = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = logs.iter().map(|l| (l - top).exp()).collect();
    let sum: f64 = weights.iter().sum();
    weights.iter().map(|w| (w / sum) as f32).collect()
}

/// The probability of the likeliest class.
pub fn confidence(probabilities: &[f32]) -> f32 {
    probabilities.iter().copied().fold(0.0, f32::max)
}

/// The central `level` of a distribution over `bins` (whole values, one apart), each bin's mass
/// spread evenly over the unit around it: the `(1 - level) / 2` and `(1 + level) / 2` quantiles.
pub fn interval(bins: &[f32], probabilities: &[f32], level: f32) -> (f32, f32) {
    let tail = f64::from(1.0 - level) / 2.0;
    (quantile(bins, probabilities, tail), quantile(bins, probabilities, 1.0 - tail))
}

fn quantile(bins: &[f32], probabilities: &[f32], q: f64) -> f32 {
    let mut below = 0.0;
    for (bin, p) in bins.iter().zip(probabilities) {
        let p = f64::from(*p);
        if below + p >= q && p > 0.0 {
            return (f64::from(*bin) - 0.5 + (q - below) / p) as f32;
        }
        below += p;
    }
    bins.last().map_or(0.0, |b| b + 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperature_flattens_or_sharpens_without_changing_the_answer() {
        let p = [0.2, 0.7, 0.1];
        assert_eq!(temper(&p, 1.0), p);
        let (flat, sharp) = (temper(&p, 2.0), temper(&p, 0.5));
        assert!(confidence(&flat) < 0.7 && confidence(&sharp) > 0.7);
        for q in [&flat, &sharp] {
            assert!((q.iter().sum::<f32>() - 1.0).abs() < 1e-6);
            assert_eq!(q.iter().position(|v| *v == confidence(q)), Some(1));
        }
        // softmax(logits / 2) by hand: weights sqrt(p).
        let s: f32 = p.iter().map(|v| v.sqrt()).sum();
        assert!((flat[0] - 0.2f32.sqrt() / s).abs() < 1e-6);
        // A probability that is 0 in f32 stays 0, and nothing becomes NaN.
        assert_eq!(temper(&[0.0, 1.0], 3.0), [0.0, 1.0]);
    }

    #[test]
    fn an_interval_holds_its_share_of_the_distribution() {
        let bins: Vec<f32> = (0..10).map(|v| v as f32).collect();
        // All mass on 4: the bin's unit, 3.5..4.5, its 10 % and 90 % points 3.6 and 4.4.
        let mut p = vec![0.0; 10];
        p[4] = 1.0;
        let (low, high) = interval(&bins, &p, 0.8);
        assert!((low - 3.6).abs() < 1e-5 && (high - 4.4).abs() < 1e-5, "{low} {high}");
        // Even over all ten: from 0.5 to 8.5 (10 % of -0.5..9.5 from each end).
        let (low, high) = interval(&bins, &[0.1; 10], 0.8);
        assert!((low - 0.5).abs() < 1e-4 && (high - 8.5).abs() < 1e-4, "{low} {high}");
    }
}
