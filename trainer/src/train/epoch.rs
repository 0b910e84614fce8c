//! One epoch of training: a seeded shuffle of the training split, then for each batch the
//! forward pass, each task's loss, their weighted total (converged tasks left out), the
//! backward pass and an Adam step. Then Early Freeze's verdict is applied to the model.

use anyhow::Result;
use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::store::ModuleRecord;
use facemtl::training::{FreezeEvent, Target, TrainingModel};

use super::config::TrainConfig;
use super::evaluation::scalar;
use super::split::Split;
use crate::data;

/// Train `model` for `epoch` over `split` (whose `targets` are already on the autodiff
/// device); returns the model and the mean training loss of each task.
#[allow(clippy::too_many_arguments)]
pub fn train_epoch(
    config: &TrainConfig,
    epoch: usize,
    lr: f64,
    active: &[bool],
    mut model: TrainingModel,
    optim: &mut ModuleOptimizer,
    split: &Split,
    targets: &[Target],
) -> (TrainingModel, Vec<f64>) {
    let device = targets[0].device();
    let mut order: Vec<i64> = (0..split.len() as i64).collect();
    data::shuffle(&mut order, config.seed.wrapping_mul(1000).wrapping_add(epoch as u64));
    let mut sums = vec![0.0; active.len()];
    let mut batches = 0;
    for chunk in order.chunks(config.batch_size) {
        if chunk.len() < 2 {
            continue; // batch norm needs two samples
        }
        let mirror: Vec<bool> =
            chunk.iter().map(|&i| config.fine_tune && mirror_flag(config.seed, epoch, i as u64)).collect();
        let x = split.inputs.rows(chunk, &mirror, &device);
        let rows = Tensor::<1, Int>::from_data(TensorData::new(chunk.to_vec(), [chunk.len()]), &device);
        let losses: Vec<Tensor<1>> = model
            .forward(x)
            .into_iter()
            .zip(targets)
            .map(|(output, target)| target.select(rows.clone()).loss(output))
            .collect();
        for (sum, loss) in sums.iter_mut().zip(&losses) {
            *sum += scalar(loss.clone().inner());
        }
        let total = model.weighting.combine(&losses, active);
        let grads = GradientsParams::from_grads(total.backward(), &model);
        model = optim.step(lr, model, grads);
        batches += 1;
    }
    (model, sums.iter().map(|s| s / batches.max(1) as f64).collect())
}

/// Whether training sample `index` is seen mirrored in `epoch` (fine-tuning's one augmentation).
fn mirror_flag(seed: u64, epoch: usize, index: u64) -> bool {
    let mut x = seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    (x >> 40) & 1 == 1
}

/// Early Freeze's events applied: a task that improved is snapshotted; a task that converged
/// gets its head back from its best epoch, frozen, and with `freeze_shared` the shared layers
/// (and a fine-tuned backbone) too.
pub fn apply_events(
    mut model: TrainingModel,
    events: &[FreezeEvent],
    snapshots: &mut [Option<Vec<u8>>],
    fresh: impl Fn() -> TrainingModel,
) -> Result<TrainingModel> {
    for event in events {
        match *event {
            FreezeEvent::Improved { task, .. } => {
                snapshots[task] = Some(super::checkpoint::record_bytes(model.clone())?)
            }
            FreezeEvent::Converged { task, freeze_shared, .. } => {
                let best = match snapshots[task].as_deref() {
                    Some(bytes) => {
                        let record = ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes.to_vec()))
                            .map_err(|e| anyhow::anyhow!("{e}"))?;
                        fresh().try_load_record(record).map_err(|e| anyhow::anyhow!("{e}"))?
                    }
                    None => model.clone(),
                };
                model.head.heads[task] = best.head.heads[task].clone().freeze();
                if freeze_shared {
                    model.head.shared = best.head.shared.into_iter().map(Module::freeze).collect();
                    model.backbone = best.backbone.map(Module::freeze);
                }
            }
            FreezeEvent::Finished => {}
        }
    }
    Ok(model)
}
