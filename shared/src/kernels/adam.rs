//! Adam's step with weight decay over a parameter's values, in one pass spread over the threads:
//! the same arithmetic, operation for operation, as burn-optim's `Adam` with `WeightDecay`, so
//! the same values, where Flex runs that as a dozen tensor passes a parameter on the calling
//! thread while the pool waits (about 8 ms of a 93 ms step of the last block, perf).

use std::mem::MaybeUninit;

/// One step's settings and factors.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    pub lr: f32,
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
    /// Weight decay: the parameter's share added to its gradient.
    pub penalty: f32,
    /// The step's number, from 1 (the moments start from the gradient alone at 1).
    pub time: usize,
}

/// The parameter's new values from `param` and `grad`, the moments updated in place; all of one
/// length. The parameter is read where it lies, not updated in place: the module still shares its
/// buffer when the step runs, and owning it first cost a copy of every parameter on the calling
/// thread (4.3 ms of a 310 ms full fine-tuning step of 16, BENCHMARKS.md stop 45).
pub fn step(param: &[f32], grad: &[f32], moment_1: &mut [f32], moment_2: &mut [f32], s: Step) -> Vec<f32> {
    let len = param.len();
    assert!(grad.len() == len && moment_1.len() == len && moment_2.len() == len);
    let time = s.time as i32;
    let bias_correction2_sqrt = (1.0 - s.beta_2.powi(time)).sqrt();
    let factor = bias_correction2_sqrt / (1.0 - s.beta_1.powi(time));
    let epsilon = s.epsilon * bias_correction2_sqrt;
    let (keep_1, keep_2) = (1.0 - s.beta_1, 1.0 - s.beta_2);
    let first = s.time == 1;
    let update = |new: &mut [MaybeUninit<f32>], param: &[f32], m: &mut [f32], v: &mut [f32], grad: &[f32]| {
        for ((((new, &p), m), v), &g) in new.iter_mut().zip(param).zip(m).zip(v).zip(grad) {
            let g = p * s.penalty + g;
            *m = if first { g * keep_1 } else { *m * s.beta_1 + g * keep_1 };
            *v = if first { g * g * keep_2 } else { *v * s.beta_2 + g * g * keep_2 };
            new.write(p - *m * factor / (v.sqrt() + epsilon) * s.lr);
        }
    };
    let mut new = Vec::with_capacity(len);
    let out = &mut new.spare_capacity_mut()[..len];
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        /// Values a worker updates at a time.
        const CHUNK: usize = 16 * 1024;
        out.par_chunks_mut(CHUNK)
            .zip(param.par_chunks(CHUNK))
            .zip(moment_1.par_chunks_mut(CHUNK))
            .zip(moment_2.par_chunks_mut(CHUNK))
            .zip(grad.par_chunks(CHUNK))
            .for_each(|((((new, p), m), v), g)| update(new, p, m, v, g));
    }
    #[cfg(not(feature = "rayon"))]
    update(out, param, moment_1, moment_2, grad);
    // SAFETY: `update` wrote each of the first `len` values above.
    unsafe { new.set_len(len) };
    new
}
