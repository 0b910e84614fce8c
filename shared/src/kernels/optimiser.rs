//! Adam's step ([`super::adam`]) as a backend extension on Flex, on tensors as the optimiser holds
//! them: the parameter and its gradient read where they lie, the moments updated in their own
//! buffers. Taken out with `Tensor::into_data` instead, a parameter the module still shares is
//! copied whole on the calling thread first.

use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::prelude::*;

use super::adam::{self, Step};
use super::ops::values;

#[backend_extension(Flex)]
pub trait OptimiserOps: Backend {
    /// Adam's step: the parameter's new values, then the first and second moments after it, each
    /// shaped as `param`.
    fn adam_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: Step,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

impl OptimiserOps for Flex {
    fn adam_step(
        param: FlexTensor,
        grad: FlexTensor,
        moment_1: FlexTensor,
        moment_2: FlexTensor,
        step: Step,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (mut moment_1, mut moment_2) = (owned(moment_1), owned(moment_2));
        let new = adam::step(&values(&param), &values(&grad), moment_1.storage_mut(), moment_2.storage_mut(), step);
        (FlexTensor::from_data(TensorData::new(new, param.shape())), moment_1, moment_2)
    }
}

/// `tensor` holding its own buffer of exactly its values in order: as it is when it already does
/// (the moments a step left), copied otherwise.
fn owned(tensor: FlexTensor) -> FlexTensor {
    FlexTensor::from_data(tensor.into_data())
}

/// Adam's step on f32 tensors on Flex (where [`super::f32_on_flex`] holds): the parameter's new
/// values and both moments after it.
pub fn adam_step<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    moment_1: Tensor<D>,
    moment_2: Tensor<D>,
    step: Step,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let [param, grad, moment_1, moment_2] = [param, grad, moment_1, moment_2].map(Tensor::into_dispatch);
    let (param, moment_1, moment_2) = <Dispatch as OptimiserOps>::adam_step(param, grad, moment_1, moment_2, step);
    (Tensor::from_dispatch(param), Tensor::from_dispatch(moment_1), Tensor::from_dispatch(moment_2))
}
