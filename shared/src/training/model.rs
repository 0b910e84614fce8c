//! What training optimises: the head, the loss weighting (whose learned weights, when it has
//! any, train with the network) and, when fine-tuning, the backbone. Inference needs none of
//! the weighting: it uses the head (and a fine-tuned backbone) alone.

use burn::prelude::*;

use super::loss::LossWeighting;
use crate::backbone::Tuned;
use crate::mtl::{MtlHead, model};

#[derive(Module, Debug)]
pub struct TrainingModel {
    pub head: MtlHead,
    pub weighting: LossWeighting,
    /// The part of the backbone that trains too; `None` when the head trains on cached
    /// features of a frozen backbone.
    pub backbone: Option<Tuned>,
}

impl TrainingModel {
    /// See [`model::forward`].
    pub fn forward(&self, x: Tensor<2>, keep: &[Tensor<2>]) -> Vec<Tensor<2>> {
        model::forward(&self.head, self.backbone.as_ref(), x, keep)
    }
}
