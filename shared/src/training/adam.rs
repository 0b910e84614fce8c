//! The thesis's optimiser, Adam with weight decay, as burn-optim's `Adam` computes it, with its
//! step over each parameter's values done in one pass spread over the threads on the CPU backend
//! ([`kernels::adam_step`], which reads the parameter where it lies). Its state is burn-optim's
//! own (`AdamState`), so a checkpoint's optimiser record reads and writes as before; elsewhere
//! (the GPU backends) Burn's step runs.

use burn::optim::decay::WeightDecayConfig;
use burn::optim::{Adam, AdamConfig, AdamState, AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer};
use burn::prelude::*;

use crate::kernels::{self, AdamStep};

/// burn-optim's defaults, spelled out because the fused step needs them.
const BETA_1: f32 = 0.9;
const BETA_2: f32 = 0.999;
const EPSILON: f32 = 1e-5;

/// Adam with weight decay `penalty`.
#[derive(Clone)]
pub struct FusedAdam {
    burn: Adam,
    penalty: f32,
}

impl FusedAdam {
    pub fn new(penalty: f32) -> Self {
        let config = AdamConfig::new()
            .with_beta_1(BETA_1)
            .with_beta_2(BETA_2)
            .with_epsilon(EPSILON)
            .with_weight_decay(Some(WeightDecayConfig::new(penalty)));
        Self { burn: config.build(), penalty }
    }

    /// A module optimiser that steps every parameter this way.
    pub fn init(self) -> ModuleOptimizer {
        ModuleOptimizer::from(self)
    }
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        if !kernels::f32_on_flex(&tensor) {
            return self.burn.step(lr, tensor, grad, state);
        }
        let (time, moment_1, moment_2) = match state {
            Some(AdamState { momentum }) => (momentum.time + 1, momentum.moment_1, momentum.moment_2),
            None => (1, tensor.zeros_like(), tensor.zeros_like()),
        };
        let s =
            AdamStep { lr: lr as f32, beta_1: BETA_1, beta_2: BETA_2, epsilon: EPSILON, penalty: self.penalty, time };
        let (tensor, moment_1, moment_2) = kernels::adam_step(tensor, grad, moment_1, moment_2, s);
        (tensor, Some(AdamState::new(AdaptiveMomentumState::new(time, moment_1, moment_2))))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        Adam::to_device(state, device)
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;

    use super::*;

    /// Three steps of ours and of burn-optim's `Adam` from the same parameter and gradients: the
    /// same operations in the same order on each value, so the same values (the gap allowed is
    /// one f32 rounding of the largest value, were a compiler to reorder one of them).
    #[test]
    fn the_fused_step_gives_burns_adam_values() {
        let device = Device::flex();
        let ours = FusedAdam::new(1e-2);
        let burns = ours.burn.clone();
        for len in [7, 3 * 16 * 1024 + 5] {
            let start = Tensor::<1>::random([len], Distribution::Normal(0.0, 1.0), &device);
            let (mut mine, mut theirs) = (start.clone(), start);
            let (mut my_state, mut their_state) = (None, None);
            for step in 0..3 {
                let grad = Tensor::<1>::random([len], Distribution::Normal(0.0, 0.1), &device);
                (mine, my_state) = ours.step(1e-3, mine, grad.clone(), my_state);
                (theirs, their_state) = burns.step(1e-3, theirs, grad, their_state);
                let gap = (mine.clone() - theirs.clone()).abs().max().into_scalar::<f32>();
                let scale = theirs.clone().abs().max().into_scalar::<f32>();
                assert!(gap <= scale * f32::EPSILON, "{len} values, step {step}: off by {gap}");
            }
            let (mine, theirs) = (my_state.unwrap().momentum, their_state.unwrap().momentum);
            assert_eq!(mine.time, theirs.time);
            assert!((mine.moment_2 - theirs.moment_2).abs().max().into_scalar::<f32>() <= f32::EPSILON);
        }
    }
}
