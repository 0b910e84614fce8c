//! Reading a distribution head: the expected value of its softmax over the task's bins.

use burn::prelude::*;
use burn::tensor::activation::softmax;

/// The expectation `[n]` of distributions over `bins` given as logits `[n, bins]`.
pub fn expectation(logits: Tensor<2>, bins: &[f32]) -> Tensor<1> {
    let [n, k] = logits.dims();
    let grid = Tensor::<1>::from_data(TensorData::new(bins.to_vec(), [k]), &logits.device());
    (softmax(logits, 1) * grid.reshape([1, k]).expand([n, k])).sum_dim(1).reshape([n])
}
