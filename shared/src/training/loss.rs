//! Per-task losses as in the thesis, and the ways of combining them into one.
//!
//! Cross-entropy for the classification tasks, `0.5 (y - p)^2` for age on the normalised scale
//! (or, for an age predicted as a distribution, DLDL-v2's loss: see [`Target::Distribution`]).
//! Combination, selectable by name:
//! - `average`: every task weighs 1/T (the thesis's baseline);
//! - `learned`: the thesis's Loss Weight Layer, weights `w = softmax(v)` (positive, summing
//!   to one) learned with the network, total `sum w_i L_i + lambda ||w||^2`. Minimising this over
//!   `w` moves weight towards the task whose loss is smallest (the gradient for `w_i` is
//!   `L_i + 2 lambda w_i`), which lambda only tempers; the run logs show what it does on real
//!   data;
//! - `uncertainty`: Kendall, Gal and Cipolla (2018), `sum exp(-s_i) L_i + s_i` with learned
//!   log-variances `s_i`;
//! - `dwa`: Dynamic Weight Average (Liu, Johns and Davison 2019): weights from how fast each
//!   task's training loss fell over the last two epochs (temperature 2), normalised here to
//!   sum to 1 like the others.

use burn::module::Param;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};
use serde::{Deserialize, Serialize};

/// One task's target for a batch; its kind decides the loss, so no task can be scored with
/// the other kind's.
#[derive(Debug, Clone)]
pub enum Target {
    /// Class indices `[n]`: cross-entropy.
    Class(Tensor<1, Int>),
    /// Normalised values `[n]`: the thesis's `0.5 (y - p)^2`.
    Value(Tensor<1>),
    /// Values in their own unit `[n]`, for a distribution over `bins` `[k]`: DLDL-v2's
    /// cross-entropy against a Gaussian label distribution of width `sigma`, plus the absolute
    /// error of the distribution's expectation in units of `sigma`.
    Distribution { values: Tensor<1>, bins: Vec<f32>, sigma: f32 },
    /// A task only some faces are labelled for (two data sets trained at once, a CSV's empty
    /// cells): `labelled` `[n]` is 1 for a face with a label, 0 for one without. The loss is
    /// the mean of `target`'s over the labelled faces (0 for a batch without any).
    Partial { target: Box<Target>, labelled: Tensor<1> },
    /// A value task some of whose faces carry only a range ([`Ranges`]): `exact`'s loss for
    /// the others, and for these the loss of predicting outside the range (see
    /// [`Target::outside`]).
    Censored { exact: Box<Target>, ranges: Box<Ranges> },
}

/// Which faces of a batch carry only a range `low..high`, in the target's scale: `bounded` `[n]`
/// is 1 for those, `low` and `high` `[n]` their bounds (anything for the others).
#[derive(Debug, Clone)]
pub struct Ranges {
    pub bounded: Tensor<1>,
    pub low: Tensor<1>,
    pub high: Tensor<1>,
}

impl Ranges {
    fn map(&self, f: impl Fn(Tensor<1>) -> Tensor<1>) -> Box<Self> {
        Box::new(Ranges { bounded: f(self.bounded.clone()), low: f(self.low.clone()), high: f(self.high.clone()) })
    }
}

impl Target {
    /// The thesis's loss of `[n, outputs]` predictions against these targets -> `[1]`.
    pub fn loss(&self, output: Tensor<2>) -> Tensor<1> {
        match self {
            Target::Value(y) => {
                let [n, _] = output.dims();
                (output.reshape([n]) - y.clone()).powf_scalar(2.0).mean().mul_scalar(0.5)
            }
            Target::Class(classes) => {
                CrossEntropyLossConfig::new().init(&output.device()).forward(output, classes.clone())
            }
            Target::Distribution { values, bins, sigma } => {
                let (cross_entropy, error) = distribution_terms(output, values, bins, *sigma);
                cross_entropy.mean() + error.mean().div_scalar(*sigma)
            }
            Target::Partial { target, labelled } => {
                let faces = labelled.clone().sum().clamp_min(1.0);
                (target.per_face(output) * labelled.clone()).sum() / faces
            }
            Target::Censored { .. } => self.per_face(output).mean(),
        }
    }

    /// Each face's loss `[n]`, whose mean is [`Target::loss`] (Partial's: unlabelled faces 0).
    fn per_face(&self, output: Tensor<2>) -> Tensor<1> {
        let [n, _] = output.dims();
        match self {
            Target::Value(y) => (output.reshape([n]) - y.clone()).powf_scalar(2.0).mul_scalar(0.5),
            Target::Class(classes) => {
                log_softmax(output, 1).gather(1, classes.clone().reshape([n, 1])).reshape([n]).neg()
            }
            Target::Distribution { values, bins, sigma } => {
                let (cross_entropy, error) = distribution_terms(output, values, bins, *sigma);
                cross_entropy + error.div_scalar(*sigma)
            }
            Target::Partial { target, labelled } => target.per_face(output) * labelled.clone(),
            Target::Censored { exact, ranges } => {
                let Ranges { bounded, low, high } = ranges.as_ref();
                let outside = exact.outside(output.clone(), low, high);
                exact.per_face(output) * bounded.clone().neg().add_scalar(1.0) + outside * bounded.clone()
            }
        }
    }

    /// Each face's loss `[n]` for a prediction that should lie in `low..high` `[n]`: for a
    /// distribution, minus the log of its probability inside the range (bins from `low` up to,
    /// not including, `high`); for a value, `0.5 d^2` with `d` its distance from the range.
    /// Classes have no ranges (no face of a class task is ever bounded): zero.
    fn outside(&self, output: Tensor<2>, low: &Tensor<1>, high: &Tensor<1>) -> Tensor<1> {
        let [n, k] = output.dims();
        match self {
            Target::Distribution { bins, .. } => {
                let grid = Tensor::<1>::from_data(TensorData::new(bins.clone(), [k]), &output.device())
                    .reshape([1, k])
                    .expand([n, k]);
                let above_low = grid.clone().greater_equal(low.clone().reshape([n, 1]).expand([n, k])).float();
                let below_high = grid.lower(high.clone().reshape([n, 1]).expand([n, k])).float();
                let inside = (softmax(output, 1) * above_low * below_high).sum_dim(1).reshape([n]);
                inside.clamp_min(MIN_PROBABILITY).log().neg()
            }
            Target::Value(_) => {
                let p = output.reshape([n]);
                let under = (low.clone() - p.clone()).clamp_min(0.0);
                let over = (p - high.clone()).clamp_min(0.0);
                (under.powf_scalar(2.0) + over.powf_scalar(2.0)).mul_scalar(0.5)
            }
            Target::Class(_) | Target::Partial { .. } | Target::Censored { .. } => Tensor::zeros([n], &output.device()),
        }
    }

    pub fn device(&self) -> Device {
        match self {
            Target::Class(c) => c.device(),
            Target::Value(v) | Target::Distribution { values: v, .. } => v.device(),
            Target::Partial { labelled, .. } => labelled.device(),
            Target::Censored { ranges, .. } => ranges.bounded.device(),
        }
    }

    /// Rows `indices` of the targets.
    pub fn select(&self, indices: Tensor<1, Int>) -> Self {
        match self {
            Target::Class(c) => Target::Class(c.clone().select(0, indices)),
            Target::Value(v) => Target::Value(v.clone().select(0, indices)),
            Target::Distribution { values, bins, sigma } => {
                Target::Distribution { values: values.clone().select(0, indices), bins: bins.clone(), sigma: *sigma }
            }
            Target::Partial { target, labelled } => Target::Partial {
                target: Box::new(target.select(indices.clone())),
                labelled: labelled.clone().select(0, indices),
            },
            Target::Censored { exact, ranges } => Target::Censored {
                exact: Box::new(exact.select(indices.clone())),
                ranges: ranges.map(|t| t.select(0, indices.clone())),
            },
        }
    }

    pub fn to_device(&self, device: &Device) -> Self {
        match self {
            Target::Class(c) => Target::Class(c.clone().to_device(device)),
            Target::Value(v) => Target::Value(v.clone().to_device(device)),
            Target::Distribution { values, bins, sigma } => {
                Target::Distribution { values: values.clone().to_device(device), bins: bins.clone(), sigma: *sigma }
            }
            Target::Partial { target, labelled } => Target::Partial {
                target: Box::new(target.to_device(device)),
                labelled: labelled.clone().to_device(device),
            },
            Target::Censored { exact, ranges } => Target::Censored {
                exact: Box::new(exact.to_device(device)),
                ranges: ranges.map(|t| t.to_device(device)),
            },
        }
    }
}

/// The least probability a range is given credit for: a distribution with none there costs
/// `-ln(1e-6)` (about 14) instead of infinity.
const MIN_PROBABILITY: f32 = 1e-6;

/// DLDL-v2's two terms per face `[n]` for logits `[n, k]` over `bins`: the cross-entropy against
/// a Gaussian label distribution of width `sigma` around each value, and the absolute error of
/// the distribution's expectation, in the values' unit.
fn distribution_terms(output: Tensor<2>, values: &Tensor<1>, bins: &[f32], sigma: f32) -> (Tensor<1>, Tensor<1>) {
    let [n, k] = output.dims();
    let bins = Tensor::<1>::from_data(TensorData::new(bins.to_vec(), [k]), &output.device());
    let log_p = log_softmax(output, 1);
    let grid = bins.reshape([1, k]).expand([n, k]);
    let offsets = grid.clone() - values.clone().reshape([n, 1]).expand([n, k]);
    let weights = offsets.powf_scalar(2.0).div_scalar(-2.0 * sigma * sigma).exp();
    let labels = weights.clone() / weights.sum_dim(1).expand([n, k]);
    let cross_entropy = (labels * log_p.clone()).sum_dim(1).reshape([n]).neg();
    let expectation = (log_p.exp() * grid).sum_dim(1).reshape([n]);
    (cross_entropy, (expectation - values.clone()).abs())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WeightingKind {
    Average,
    Learned,
    Uncertainty,
    Dwa,
}

impl std::str::FromStr for WeightingKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "average" => Ok(Self::Average),
            "learned" => Ok(Self::Learned),
            "uncertainty" => Ok(Self::Uncertainty),
            "dwa" => Ok(Self::Dwa),
            other => Err(format!("unknown loss weighting `{other}` (average, learned, uncertainty, dwa)")),
        }
    }
}

/// Weights fixed within an epoch (average, DWA).
#[derive(Module, Debug)]
pub struct FixedWeights {
    weights: Vec<f64>,
}

/// The thesis's Loss Weight Layer.
#[derive(Module, Debug)]
pub struct LearnedWeights {
    logits: Param<Tensor<1>>,
    lambda: f64,
}

/// Kendall et al.'s homoscedastic uncertainty weighting.
#[derive(Module, Debug)]
pub struct UncertaintyWeights {
    log_vars: Param<Tensor<1>>,
}

#[derive(Module, Debug)]
pub enum LossWeighting {
    Average(FixedWeights),
    Learned(LearnedWeights),
    Uncertainty(UncertaintyWeights),
    Dwa(FixedWeights),
}

/// DWA's temperature (Liu et al.).
const DWA_TEMPERATURE: f64 = 2.0;

impl LossWeighting {
    pub fn new(kind: WeightingKind, tasks: usize, lambda: f64, device: &Device) -> Self {
        let even = vec![1.0 / tasks as f64; tasks];
        match kind {
            WeightingKind::Average => Self::Average(FixedWeights { weights: even }),
            WeightingKind::Dwa => Self::Dwa(FixedWeights { weights: even }),
            WeightingKind::Learned => {
                Self::Learned(LearnedWeights { logits: Param::from_tensor(Tensor::zeros([tasks], device)), lambda })
            }
            WeightingKind::Uncertainty => {
                Self::Uncertainty(UncertaintyWeights { log_vars: Param::from_tensor(Tensor::zeros([tasks], device)) })
            }
        }
    }

    pub fn kind(&self) -> WeightingKind {
        match self {
            Self::Average(_) => WeightingKind::Average,
            Self::Learned(_) => WeightingKind::Learned,
            Self::Uncertainty(_) => WeightingKind::Uncertainty,
            Self::Dwa(_) => WeightingKind::Dwa,
        }
    }

    /// The total loss `[1]` from each task's loss `[1]`; tasks not `active` (converged under
    /// Early Freeze) do not contribute.
    pub fn combine(&self, losses: &[Tensor<1>], active: &[bool]) -> Tensor<1> {
        assert_eq!(losses.len(), active.len());
        let device = losses[0].device();
        let stacked = Tensor::cat(losses.to_vec(), 0);
        let mask = Tensor::<1>::from_data(
            TensorData::new(active.iter().map(|&a| if a { 1.0f32 } else { 0.0 }).collect(), [active.len()]),
            &device,
        );
        match self {
            Self::Average(fixed) | Self::Dwa(fixed) => {
                let w = Tensor::<1>::from_data(
                    TensorData::new(fixed.weights.iter().map(|&w| w as f32).collect(), [fixed.weights.len()]),
                    &device,
                );
                (stacked * w * mask).sum()
            }
            Self::Learned(learned) => {
                let w = softmax(learned.logits.val(), 0);
                let penalty = w.clone().powf_scalar(2.0).sum().mul_scalar(learned.lambda);
                (stacked * w * mask).sum() + penalty
            }
            Self::Uncertainty(u) => {
                let s = u.log_vars.val();
                ((stacked * s.clone().neg().exp() + s) * mask).sum()
            }
        }
    }

    /// The weight each task's loss gets now (for the logs), read back without blocking.
    pub async fn weights(&self) -> Vec<f64> {
        let learned = match self {
            Self::Average(fixed) | Self::Dwa(fixed) => return fixed.weights.clone(),
            Self::Learned(learned) => softmax(learned.logits.val(), 0),
            Self::Uncertainty(u) => u.log_vars.val().neg().exp(),
        };
        match learned.into_data_async().await {
            Ok(data) => {
                data.convert::<f32>().try_to_vec::<f32>().unwrap_or_default().into_iter().map(f64::from).collect()
            }
            Err(_) => Vec::new(),
        }
    }

    /// DWA: set this epoch's weights from the mean training losses of the two previous epochs.
    /// Other kinds ignore it.
    pub fn update_dwa(&mut self, previous: &[f64], before_previous: &[f64]) {
        if let Self::Dwa(fixed) = self {
            let rates: Vec<f64> = previous
                .iter()
                .zip(before_previous)
                .map(|(a, b)| (a / b.max(f64::MIN_POSITIVE)) / DWA_TEMPERATURE)
                .collect();
            let max = rates.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let exp: Vec<f64> = rates.iter().map(|r| (r - max).exp()).collect();
            let sum: f64 = exp.iter().sum();
            fixed.weights = exp.iter().map(|e| e / sum).collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(v: f32, device: &Device) -> Tensor<1> {
        Tensor::from_data(TensorData::new(vec![v], [1]), device)
    }

    fn value(t: Tensor<1>) -> f32 {
        t.into_data().try_to_vec::<f32>().unwrap()[0]
    }

    #[test]
    fn a_distribution_is_scored_by_its_closeness_to_the_true_age_not_to_the_mean() {
        let device = Device::flex();
        let bins: Vec<f32> = (0..=100).map(|a| a as f32).collect();
        // One face aged 70: a distribution peaked at 70, at 35 (a typical age), and flat.
        let logits = |peak: Option<f32>| {
            let row: Vec<f32> = bins.iter().map(|b| peak.map_or(0.0, |p| -((b - p) / 2.0).powi(2))).collect();
            Tensor::<2>::from_data(TensorData::new(row, [1, 101]), &device)
        };
        let target = Target::Distribution { values: scalar(70.0, &device), bins: bins.clone(), sigma: 2.0 };
        let [right, mean, flat] = [Some(70.0), Some(35.0), None].map(|p| value(target.loss(logits(p))));
        assert!(right < flat && flat < mean, "right {right}, flat {flat}, at the mean {mean}");
        // The expectation of the distribution peaked at 70 is 70.
        let expected = crate::mtl::expectation(logits(Some(70.0)), &bins);
        assert!((value(expected) - 70.0).abs() < 1e-3);
        // Two faces: the loss is their mean, and rows are selected with their values.
        let both = Target::Distribution {
            values: Tensor::from_data(TensorData::new(vec![70.0, 20.0], [2]), &device),
            bins: bins.clone(),
            sigma: 2.0,
        };
        let second = both.select(Tensor::from_data(TensorData::new(vec![1i64], [1]), &device));
        assert!((value(second.loss(logits(Some(20.0)))) - right).abs() < 1e-4);
    }

    #[test]
    fn every_weighting_combines_as_documented() {
        let device = Device::flex();
        let losses = [scalar(1.0, &device), scalar(3.0, &device)];
        let all = [true, true];
        let average = LossWeighting::new(WeightingKind::Average, 2, 0.1, &device);
        assert!((value(average.combine(&losses, &all)) - 2.0).abs() < 1e-6);
        assert!((value(average.combine(&losses, &[true, false])) - 0.5).abs() < 1e-6);
        // Learned starts even: 0.5 * 1 + 0.5 * 3 + 0.1 * (0.25 + 0.25).
        let learned = LossWeighting::new(WeightingKind::Learned, 2, 0.1, &device);
        assert!((value(learned.combine(&losses, &all)) - 2.05).abs() < 1e-6);
        assert_eq!(burn::tensor::read_sync(learned.weights()), vec![0.5, 0.5]);
        // Uncertainty starts at s = 0: plain sum.
        let uncertainty = LossWeighting::new(WeightingKind::Uncertainty, 2, 0.1, &device);
        assert!((value(uncertainty.combine(&losses, &all)) - 4.0).abs() < 1e-6);
    }

    #[test]
    fn dwa_favours_the_task_whose_loss_fell_least() {
        let mut dwa = LossWeighting::new(WeightingKind::Dwa, 2, 0.1, &Device::flex());
        dwa.update_dwa(&[0.5, 0.9], &[1.0, 1.0]);
        let w = burn::tensor::read_sync(dwa.weights());
        assert!(w[1] > w[0] && (w[0] + w[1] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn task_losses_match_their_formulas() {
        let device = Device::flex();
        let age = Tensor::<2>::from_data(TensorData::new(vec![0.5f32, 1.0], [2, 1]), &device);
        let target = Target::Value(Tensor::from_data(TensorData::new(vec![0.0f32, 1.0], [2]), &device));
        assert!((value(target.loss(age)) - 0.0625).abs() < 1e-6);
        let logits = Tensor::<2>::from_data(TensorData::new(vec![0.0f32, 0.0], [1, 2]), &device);
        let class = Target::Class(Tensor::from_data(TensorData::new(vec![1i64], [1]), &device));
        assert!((value(class.loss(logits)) - std::f32::consts::LN_2).abs() < 1e-6);
    }

    #[test]
    fn a_partial_task_is_the_mean_over_its_labelled_faces_alone() {
        let device = Device::flex();
        let rows =
            |v: Vec<f32>, k: usize| Tensor::<2>::from_data(TensorData::new(v.clone(), [v.len() / k, k]), &device);
        let ints = |v: Vec<i64>| Tensor::<1, Int>::from_data(TensorData::new(v.clone(), [v.len()]), &device);
        let floats = |v: Vec<f32>| Tensor::<1>::from_data(TensorData::new(v.clone(), [v.len()]), &device);
        let bins: Vec<f32> = (0..5).map(|b| b as f32).collect();
        let logits = vec![0.3, -1.0, 2.0, 0.1, 0.0, 0.7, -0.2, 1.5, 0.4, 0.9, -0.6, 0.2, 1.1, 0.0, -0.3];
        // Three faces, the middle one unlabelled: its targets are the placeholders `targets` fills in.
        let cases = [
            (Target::Class(ints(vec![2, 0, 1])), Target::Class(ints(vec![2, 1])), 5),
            (Target::Value(floats(vec![0.5, 0.0, -0.5])), Target::Value(floats(vec![0.5, -0.5])), 1),
            (
                Target::Distribution { values: floats(vec![1.0, 0.0, 3.5]), bins: bins.clone(), sigma: 2.0 },
                Target::Distribution { values: floats(vec![1.0, 3.5]), bins: bins.clone(), sigma: 2.0 },
                5,
            ),
        ];
        for (all, labelled, k) in cases {
            let output: Vec<f32> = logits[..3 * k].to_vec();
            let kept: Vec<f32> = [&output[..k], &output[2 * k..]].concat();
            let partial = Target::Partial { target: Box::new(all), labelled: floats(vec![1.0, 0.0, 1.0]) };
            let (got, want) = (value(partial.loss(rows(output, k))), value(labelled.loss(rows(kept, k))));
            assert!((got - want).abs() < 1e-5, "{got} against {want}");
            // A batch with no labelled face costs nothing, and is no NaN.
            let none = Target::Partial { target: Box::new(labelled.clone()), labelled: floats(vec![0.0, 0.0]) };
            let output: Vec<f32> = logits[..2 * k].to_vec();
            assert_eq!(value(none.loss(rows(output, k))), 0.0);
        }
    }

    #[test]
    fn a_bounded_face_costs_the_probability_or_the_distance_outside_its_range() {
        let device = Device::flex();
        let floats = |v: Vec<f32>| Tensor::<1>::from_data(TensorData::new(v.clone(), [v.len()]), &device);
        let bins: Vec<f32> = (0..4).map(|b| b as f32).collect();
        // Two faces: the first aged 1 exactly, the second known to lie in 2..infinity.
        let logits: Vec<f32> = vec![0.5, 1.0, -0.5, 0.2, 0.1, 0.3, 1.2, -0.4];
        let output = Tensor::<2>::from_data(TensorData::new(logits.clone(), [2, 4]), &device);
        let exact = Target::Distribution { values: floats(vec![1.0, 0.0]), bins: bins.clone(), sigma: 1.0 };
        let ranges = Ranges {
            bounded: floats(vec![0.0, 1.0]),
            low: floats(vec![0.0, 2.0]),
            high: floats(vec![0.0, f32::INFINITY]),
        };
        let censored = Target::Censored { exact: Box::new(exact), ranges: Box::new(ranges) };
        let first = Target::Distribution { values: floats(vec![1.0]), bins, sigma: 1.0 };
        let first = value(first.loss(Tensor::from_data(TensorData::new(logits[..4].to_vec(), [1, 4]), &device)));
        let e: Vec<f32> = logits[4..].iter().map(|l| l.exp()).collect();
        let inside = (e[2] + e[3]) / e.iter().sum::<f32>();
        let want = (first - inside.ln()) / 2.0;
        let got = value(censored.loss(output));
        assert!((got - want).abs() < 1e-5, "{got} against {want}");

        // A value: nothing inside the range, half the squared distance outside it.
        let ranges = Ranges {
            bounded: floats(vec![1.0, 1.0, 1.0]),
            low: floats(vec![-1.0, 0.5, f32::NEG_INFINITY]),
            high: floats(vec![1.0, f32::INFINITY, -0.5]),
        };
        let censored =
            Target::Censored { exact: Box::new(Target::Value(floats(vec![0.0, 0.0, 0.0]))), ranges: Box::new(ranges) };
        let output = Tensor::<2>::from_data(TensorData::new(vec![0.3, 0.1, 0.5], [3, 1]), &device);
        let want = (0.0 + 0.5 * 0.4f32.powi(2) + 0.5 * 1.0f32.powi(2)) / 3.0;
        let got = value(censored.loss(output));
        assert!((got - want).abs() < 1e-6, "{got} against {want}");
    }
}
