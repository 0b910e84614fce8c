//! faceres's layers as a Burn backend extension on Flex, for training (each with a backward of
//! its own) and for inference (forward alone, without autodiff):
//!
//! - the 3x3 depthwise convolution: Burn differentiates a grouped convolution through its
//!   backend's generic `conv2d_x_backward` / `conv2d_weight_backward`, which on Flex loop over
//!   channels with a convolution call and a slice assignment each (about 4,960 calls a step across
//!   faceres's 13 depthwise layers); here each gradient is one pass per plane
//!   ([`super::depthwise`]);
//! - the 1x1 convolution ([`super::pointwise`]): one matrix product per image on NCHW as it lies,
//!   where a convolution (or a product over the whole batch) needs layout copies, and a weight
//!   gradient summed over the batch in place, where autodiff of a broadcast product builds
//!   `[batch, out, in]` first;
//! - the stem, a full 3x3 convolution ([`super::conv3x3`]): one product per image on its taps laid
//!   out as columns, images spread over the threads;
//! - the global average pool ([`super::pool`]), on the threads.
//!
//! The convolutions add their bias and apply ReLU6 while the output is in cache, and take the
//! gradient through ReLU6 and the bias gradient in one pass ([`super::relu6`]), where separate
//! layers cost three passes forward and four backward.

use std::borrow::Cow;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, DispatchDevice, Flex, TensorMetadata, backend_extension};
use burn::prelude::*;
use burn::tensor::DType;

use super::saved::Saved;
use super::{conv3x3, depthwise, pointwise, pool};

#[backend_extension(Flex, Autodiff)]
pub trait TrainingOps: Backend {
    /// ReLU6 of the depthwise convolution: `x` `[n, c, h, w]`, `kernel` `[c, 1, 3, 3]`, `bias`
    /// `[c]` -> `[n, c, ceil(h / stride), ceil(w / stride)]`, SAME padding, stride 1 or 2.
    fn depthwise3x3_relu6(
        x: FloatTensor<Self>,
        kernel: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: usize,
    ) -> FloatTensor<Self>;

    /// ReLU6 of the 1x1 convolution: `x` `[n, c, h, w]`, `weight` `[out, c, 1, 1]`, `bias`
    /// `[out]` -> `[n, out, h, w]`.
    fn pointwise_relu6(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The mean of each plane: `x` `[n, c, h, w]` -> `[n, c]`.
    fn mean_pool(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// ReLU6 of a full 3x3 convolution: `x` `[n, c, h, w]`, `weight` `[out, c, 3, 3]`, `bias`
    /// `[out]` -> `[n, out, ceil(h / stride), ceil(w / stride)]`, SAME padding, stride 1 or 2.
    fn conv3x3_relu6(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: usize,
    ) -> FloatTensor<Self>;
}

/// Whether these kernels run for a layer on these operands (its input, then its weights if it
/// has any): f32 on the Flex backend, training or not. Inference takes them too: the trainer's
/// validation pass, `eval` and feature extraction read faceres forward only, about three times
/// as fast as through Burn's layers (BENCHMARKS.md "Training speed"), to within float rounding
/// of Burn's values. Elsewhere Burn's own layers are used (the GPU backends have kernels of
/// their own).
pub fn runs_here(operands: &[&Tensor<4>]) -> bool {
    operands.iter().all(|t| f32_on_flex(t))
}

/// A layer's input, weight and bias as the extension takes them: all lifted into autodiff where
/// the layer trains (any of them carries autodiff), as they are otherwise. A layer trains when
/// its weights do, whatever its input: the first layer of a tuned tail reads activations that
/// need no gradient, and may get them without autodiff (a tensor moved with `to_device` keeps
/// the context it had).
fn layer_operands(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Tensor<1>,
) -> (FloatTensor<Dispatch>, FloatTensor<Dispatch>, FloatTensor<Dispatch>) {
    if x.is_autodiff() || weight.is_autodiff() || bias.is_autodiff() {
        (x.autodiff().into_dispatch(), weight.autodiff().into_dispatch(), bias.autodiff().into_dispatch())
    } else {
        (x.into_dispatch(), weight.into_dispatch(), bias.into_dispatch())
    }
}

/// Whether `tensor` holds f32 values on the Flex backend, where these kernels' slices apply.
pub fn f32_on_flex<const D: usize>(tensor: &Tensor<D>) -> bool {
    tensor.dtype() == DType::F32 && matches!(tensor.device().inner().as_dispatch(), DispatchDevice::Flex(_))
}

/// ReLU6 of a `Conv2d` with `groups = c`, a 3x3 kernel `[c, 1, 3, 3]`, bias `[c]`, SAME padding
/// and this stride (1 or 2), on `x` `[n, c, h, w]`. Only where [`runs_here`] holds.
pub fn depthwise3x3_relu6(x: Tensor<4>, kernel: Tensor<4>, bias: Tensor<1>, stride: usize) -> Tensor<4> {
    let (x, kernel, bias) = layer_operands(x, kernel, bias);
    Tensor::from_dispatch(<Dispatch as TrainingOps>::depthwise3x3_relu6(x, kernel, bias, stride))
}

/// ReLU6 of a 1x1 `Conv2d` with `weight` `[out, c, 1, 1]` and bias `[out]` on `x` `[n, c, h, w]`.
/// Only where [`runs_here`] holds.
pub fn pointwise_relu6(x: Tensor<4>, weight: Tensor<4>, bias: Tensor<1>) -> Tensor<4> {
    let (x, weight, bias) = layer_operands(x, weight, bias);
    Tensor::from_dispatch(<Dispatch as TrainingOps>::pointwise_relu6(x, weight, bias))
}

/// ReLU6 of a `Conv2d` with a 3x3 kernel `weight` `[out, c, 3, 3]`, bias `[out]`, SAME padding
/// and this stride (1 or 2), on `x` `[n, c, h, w]`. Only where [`runs_here`] holds.
pub fn conv3x3_relu6(x: Tensor<4>, weight: Tensor<4>, bias: Tensor<1>, stride: usize) -> Tensor<4> {
    let (x, weight, bias) = layer_operands(x, weight, bias);
    Tensor::from_dispatch(<Dispatch as TrainingOps>::conv3x3_relu6(x, weight, bias, stride))
}

/// The mean of each `[h, w]` plane of `x` `[n, c, h, w]` -> `[n, c]`. Only where [`runs_here`]
/// holds.
pub fn mean_pool(x: Tensor<4>) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as TrainingOps>::mean_pool(x.into_dispatch()))
}

/// A tensor's values in order, copied only where its layout is not already contiguous.
pub(super) fn values(t: &FlexTensor) -> Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(values) => values.into(),
        None => t.to_contiguous().as_slice::<f32>().expect("f32 tensors").to_vec().into(),
    }
}

fn dims4(t: &FlexTensor) -> [usize; 4] {
    let shape = t.shape();
    [shape[0], shape[1], shape[2], shape[3]]
}

fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

impl TrainingOps for Flex {
    fn depthwise3x3_relu6(x: FlexTensor, kernel: FlexTensor, bias: FlexTensor, stride: usize) -> FlexTensor {
        let [n, c, h, w] = dims4(&x);
        let out = depthwise::forward(&values(&x), &values(&kernel), &values(&bias), [n, c, h, w], stride);
        tensor(out, [n, c, h.div_ceil(stride), w.div_ceil(stride)])
    }

    fn pointwise_relu6(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        let shape = pointwise_shape(&x, &weight);
        let out = pointwise::forward(&values(&x), &values(&weight), &values(&bias), shape);
        let [n, _, h, w] = dims4(&x);
        tensor(out, [n, shape.out, h, w])
    }

    fn mean_pool(x: FlexTensor) -> FlexTensor {
        let [n, c, h, w] = dims4(&x);
        tensor(pool::forward(&values(&x), [n, c, h, w]), [n, c])
    }

    fn conv3x3_relu6(x: FlexTensor, weight: FlexTensor, bias: FlexTensor, stride: usize) -> FlexTensor {
        let shape = conv3x3_shape(&x, &weight, stride);
        let out = conv3x3::forward(&values(&x), &values(&weight), &values(&bias), shape);
        let [n, _, h, w] = shape.input;
        tensor(out, [n, shape.out, h.div_ceil(stride), w.div_ceil(stride)])
    }
}

fn conv3x3_shape(x: &FlexTensor, weight: &FlexTensor, stride: usize) -> conv3x3::Shape {
    conv3x3::Shape { input: dims4(x), out: dims4(weight)[0], stride }
}

fn pointwise_shape(x: &FlexTensor, weight: &FlexTensor) -> pointwise::Shape {
    let [n, c, h, w] = dims4(x);
    pointwise::Shape { n, c, out: dims4(weight)[0], pixels: h * w }
}

/// The gradients of a layer from its output's `grad`, given its input `x`, weight (or kernel)
/// and output `y`: input (when asked for), weight and bias, in the layer's own shapes.
fn gradients(
    layer: Layer,
    x: &FlexTensor,
    weight: &FlexTensor,
    y: &FlexTensor,
    grad: &FlexTensor,
    input_wanted: bool,
) -> [Option<FlexTensor>; 3] {
    let (x_values, weight_values, y_values, grad_values) = (values(x), values(weight), values(y), values(grad));
    let saved = Saved { x: &x_values, weight: &weight_values, y: &y_values, grad: &grad_values, input_wanted };
    let (input, weight_grad, bias) = match layer {
        Layer::Depthwise { stride } => depthwise::gradients(&saved, dims4(x), stride),
        Layer::Pointwise => pointwise::gradients(&saved, pointwise_shape(x, weight)),
        Layer::Full3x3 { stride } => conv3x3::gradients(&saved, conv3x3_shape(x, weight, stride)),
    };
    let out_channels = dims4(weight)[0];
    let weight_grad = tensor(weight_grad, dims4(weight));
    [input.map(|input| tensor(input, dims4(x))), Some(weight_grad), Some(tensor(bias, [out_channels]))]
}

/// Registers a layer's three gradients with the parents that want them.
fn register(grads: &mut Gradients, parents: [Option<NodeId>; 3], gradients: [Option<FlexTensor>; 3]) {
    for (node, grad) in parents.into_iter().zip(gradients) {
        if let (Some(node), Some(grad)) = (node, grad) {
            grads.register::<Flex>(node, grad);
        }
    }
}

/// Which layer a backward step belongs to.
#[derive(Debug, Clone, Copy)]
enum Layer {
    Depthwise { stride: usize },
    Pointwise,
    Full3x3 { stride: usize },
}

#[derive(Debug)]
struct ConvBackward(Layer);

impl Backward<Flex, 3> for ConvBackward {
    /// The input's and weight's checkpoints and the layer's output (ReLU6's backward reads it).
    type State = (NodeId, NodeId, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let parents = ops.parents.map(|node| node.map(|node| node.id));
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_state, weight_state, y) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
        let weight = checkpointer.retrieve_node_output::<FlexTensor>(weight_state);
        register(grads, parents, gradients(self.0, &x, &weight, &y, &grad, parents[0].is_some()));
    }
}

/// The pool's backward: each plane gets its share of its mean's gradient.
#[derive(Debug)]
struct PoolBackward;

impl Backward<Flex, 1> for PoolBackward {
    /// The input's shape.
    type State = [usize; 4];

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        if let [Some(parent)] = ops.parents {
            grads.register::<Flex>(parent.id, tensor(pool::gradient(&values(&grad), ops.state), ops.state));
        }
    }
}

/// Runs `layer` on Flex, recording its backward where any input is tracked.
fn tracked<C: CheckpointStrategy>(
    layer: Layer,
    x: FloatTensor<Autodiff<Flex, C>>,
    weight: FloatTensor<Autodiff<Flex, C>>,
    bias: FloatTensor<Autodiff<Flex, C>>,
) -> FloatTensor<Autodiff<Flex, C>> {
    let forward = |x, weight, bias| match layer {
        Layer::Depthwise { stride } => Flex::depthwise3x3_relu6(x, weight, bias, stride),
        Layer::Pointwise => Flex::pointwise_relu6(x, weight, bias),
        Layer::Full3x3 { stride } => Flex::conv3x3_relu6(x, weight, bias, stride),
    };
    match ConvBackward(layer).prepare::<C>([x.node(), weight.node(), bias.node()]).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let (x_state, weight_state) = (prep.checkpoint(&x), prep.checkpoint(&weight));
            let y = forward(x.into_primitive(), weight.into_primitive(), bias.into_primitive());
            prep.finish((x_state, weight_state, y.clone()), y)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(forward(x.into_primitive(), weight.into_primitive(), bias.into_primitive()))
        }
    }
}

impl<C: CheckpointStrategy> TrainingOps for Autodiff<Flex, C> {
    fn depthwise3x3_relu6(
        x: FloatTensor<Self>,
        kernel: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: usize,
    ) -> FloatTensor<Self> {
        tracked::<C>(Layer::Depthwise { stride }, x, kernel, bias)
    }

    fn pointwise_relu6(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        tracked::<C>(Layer::Pointwise, x, weight, bias)
    }

    fn conv3x3_relu6(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: usize,
    ) -> FloatTensor<Self> {
        tracked::<C>(Layer::Full3x3 { stride }, x, weight, bias)
    }

    fn mean_pool(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match PoolBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let shape = x.shape();
                prep.finish([shape[0], shape[1], shape[2], shape[3]], Flex::mean_pool(x.into_primitive()))
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::mean_pool(x.into_primitive())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::{Conv2d, Conv2dConfig};
    use burn::tensor::Distribution;

    /// The largest gap between `a` and Burn's `b`, relative to `b`'s largest value: a gradient
    /// of a weight sums hundreds of f32 products, whose rounding depends on the order of the sum
    /// (ours goes by worker, in parallel), so a gap is measured against the size of the sums.
    fn worst(a: Tensor<4>, b: Tensor<4>) -> f32 {
        let (a, b) = (a.into_data().try_to_vec::<f32>().unwrap(), b.into_data().try_to_vec::<f32>().unwrap());
        let scale = 1.0 + b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max) / scale
    }

    /// Our layer against Burn's `Conv2d` then a clamp, forward and every gradient, on the same
    /// random loss; inputs spread so that ReLU6 cuts at both ends.
    fn agrees_with_burn(conv: &Conv2d, ours: impl Fn(Tensor<4>) -> Tensor<4>, x_shape: [usize; 4], case: &str) {
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::random(x_shape, Distribution::Normal(0.0, 4.0), &device).require_grad();
        assert!(runs_here(&[&x, &conv.weight.val()]));
        let (ours, theirs) = (ours(x.clone()), conv.forward(x.clone()).clamp(0.0, 6.0));
        assert_eq!(ours.dims(), theirs.dims(), "{case}");
        assert!(worst(ours.clone().inner(), theirs.clone().inner()) < 1e-5, "{case}: forward");
        let mix = Tensor::<4>::random(theirs.dims(), Distribution::Normal(0.0, 1.0), &device);
        let (g_ours, g_theirs) = ((ours * mix.clone()).sum().backward(), (theirs * mix).sum().backward());
        assert!(worst(x.grad(&g_ours).unwrap(), x.grad(&g_theirs).unwrap()) < 1e-5, "{case}: input gradient");
        let kernel_gap = worst(conv.weight.grad(&g_ours).unwrap(), conv.weight.grad(&g_theirs).unwrap());
        assert!(kernel_gap < 1e-5, "{case}: kernel gradient off by {kernel_gap}");
        let bias = conv.bias.as_ref().unwrap();
        let bias_grad = |g| bias.grad(g).unwrap().reshape([1, 1, 1, bias.dims()[0]]);
        assert!(worst(bias_grad(&g_ours), bias_grad(&g_theirs)) < 1e-5, "{case}: bias gradient");
    }

    #[test]
    fn the_depthwise_layer_agrees_with_burns_grouped_convolution_and_clamp() {
        let device = Device::flex().autodiff();
        for (n, c, h, w, stride) in [
            (3, 5, 9, 9, 1),
            (2, 4, 10, 10, 2),
            (2, 3, 7, 6, 2),
            (2, 3, 6, 7, 2),
            (1, 2, 5, 1, 2),
            (1, 2, 1, 1, 1),
            (4, 8, 14, 14, 1),
            (3, 4, 7, 7, 1),
            // Stride 2 onto small planes runs eight channels at a time: a block and a part.
            (2, 11, 14, 14, 2),
            (1, 16, 27, 28, 2),
            // Outputs 16 wide or more run row by row: even and odd widths.
            (2, 2, 33, 34, 2),
            (1, 2, 32, 35, 2),
            (1, 2, 17, 18, 1),
            // At stride 1, planes under 32 wide run whole, wider ones row by row.
            (2, 3, 28, 28, 1),
            (1, 2, 30, 33, 1),
        ] {
            let conv = Conv2dConfig::new([c, c], [3, 3])
                .with_stride([stride, stride])
                .with_groups(c)
                .with_padding(PaddingConfig2d::Same)
                .init(&device);
            let ours = |x| depthwise3x3_relu6(x, conv.weight.val(), conv.bias.as_ref().unwrap().val(), stride);
            agrees_with_burn(&conv, ours, [n, c, h, w], &format!("{n}x{c}x{h}x{w} stride {stride}"));
        }
    }

    #[test]
    fn a_depthwise_layer_whose_input_needs_no_gradient_still_trains_its_kernel_and_bias() {
        // A tuned tail's first layer reads cached activations: only its own gradients are wanted.
        let device = Device::flex().autodiff();
        for (c, h, stride) in [(11, 14, 2), (5, 7, 1), (3, 20, 2)] {
            let conv = Conv2dConfig::new([c, c], [3, 3])
                .with_stride([stride, stride])
                .with_groups(c)
                .with_padding(PaddingConfig2d::Same)
                .init(&device);
            let x = Tensor::<4>::random([2, c, h, h], Distribution::Normal(0.0, 4.0), &device);
            let bias = conv.bias.as_ref().unwrap();
            let ours = depthwise3x3_relu6(x.clone(), conv.weight.val(), bias.val(), stride);
            let theirs = conv.forward(x).clamp(0.0, 6.0);
            let mix = Tensor::<4>::random(theirs.dims(), Distribution::Normal(0.0, 1.0), &device);
            let (g_ours, g_theirs) = ((ours * mix.clone()).sum().backward(), (theirs * mix).sum().backward());
            let gap = worst(conv.weight.grad(&g_ours).unwrap(), conv.weight.grad(&g_theirs).unwrap());
            assert!(gap < 1e-5, "{c}x{h}x{h} stride {stride}: kernel gradient off by {gap}");
            let bias_grad = |g| bias.grad(g).unwrap().reshape([1, 1, 1, c]);
            assert!(worst(bias_grad(&g_ours), bias_grad(&g_theirs)) < 1e-5, "{c}x{h}x{h} stride {stride}: bias");
        }
    }

    #[test]
    fn the_full_3x3_layer_agrees_with_burns_convolution_and_clamp() {
        let device = Device::flex().autodiff();
        // faceres's stem (3 -> 32 at stride 2) in small, odd and even sizes, and stride 1.
        for (n, c, out, h, w, stride) in
            [(2, 3, 8, 12, 12, 2), (3, 3, 5, 7, 9, 2), (2, 2, 4, 6, 5, 1), (1, 3, 2, 1, 1, 2), (1, 3, 4, 34, 33, 2)]
        {
            let conv = Conv2dConfig::new([c, out], [3, 3])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Same)
                .init(&device);
            let ours = |x| conv3x3_relu6(x, conv.weight.val(), conv.bias.as_ref().unwrap().val(), stride);
            agrees_with_burn(&conv, ours, [n, c, h, w], &format!("{n}x{c}x{h}x{w} -> {out} stride {stride}"));
        }
    }

    #[test]
    fn the_pointwise_layer_agrees_with_burns_convolution_and_clamp() {
        let device = Device::flex().autodiff();
        // Small images go side by side, large ones (from 32x32 pixels) one by one.
        for (n, c, out, h, w) in [(3, 24, 40, 7, 7), (2, 5, 3, 1, 1), (5, 16, 8, 12, 10), (3, 6, 10, 33, 32)] {
            let conv = Conv2dConfig::new([c, out], [1, 1]).init(&device);
            let ours = |x| pointwise_relu6(x, conv.weight.val(), conv.bias.as_ref().unwrap().val());
            agrees_with_burn(&conv, ours, [n, c, h, w], &format!("{n}x{c}->{out} at {h}x{w}"));
        }
    }

    #[test]
    fn a_frozen_input_gets_no_gradient_and_the_layer_still_trains() {
        let device = Device::flex().autodiff();
        let conv = Conv2dConfig::new([4, 6], [1, 1]).init(&device);
        let x = Tensor::<4>::random([2, 4, 3, 3], Distribution::Normal(0.0, 2.0), &device);
        let grads = pointwise_relu6(x.clone(), conv.weight.val(), conv.bias.as_ref().unwrap().val()).sum().backward();
        assert!(x.grad(&grads).is_none());
        assert!(conv.weight.grad(&grads).is_some());
    }

    #[test]
    fn the_pool_agrees_with_burns_means_forward_and_backward() {
        let device = Device::flex().autodiff();
        for shape in [[3, 5, 7, 7], [2, 4, 1, 1], [1, 3, 4, 6]] {
            let x = Tensor::<4>::random(shape, Distribution::Normal(1.0, 3.0), &device).require_grad();
            let [n, c, _, _] = shape;
            let (ours, theirs) = (mean_pool(x.clone()), x.clone().mean_dim(3).mean_dim(2).reshape([n, c]));
            let as_4d = |t: Tensor<2>| t.reshape([1, 1, n, c]);
            assert!(worst(as_4d(ours.clone().inner()), as_4d(theirs.clone().inner())) < 1e-6, "{shape:?}: forward");
            let mix = Tensor::<2>::random([n, c], Distribution::Normal(0.0, 1.0), &device);
            let (g_ours, g_theirs) = ((ours * mix.clone()).sum().backward(), (theirs * mix).sum().backward());
            assert!(worst(x.grad(&g_ours).unwrap(), x.grad(&g_theirs).unwrap()) < 1e-6, "{shape:?}: gradient");
        }
    }

    #[test]
    fn inference_on_the_cpu_backend_takes_these_layers_too_and_stays_without_autodiff() {
        let device = Device::flex();
        let x = Tensor::<4>::random([2, 4, 9, 9], Distribution::Normal(0.0, 4.0), &device);
        let same = |ours: Tensor<4>, theirs: Tensor<4>, layer: &str| {
            assert!(!ours.is_autodiff(), "{layer}: inference gains no autodiff");
            assert!(worst(ours, theirs.clamp(0.0, 6.0)) < 1e-5, "{layer}");
        };
        let pointwise = Conv2dConfig::new([4, 6], [1, 1]).init(&device);
        assert!(runs_here(&[&x, &pointwise.weight.val()]));
        let bias = |conv: &Conv2d| conv.bias.as_ref().unwrap().val();
        let ours = pointwise_relu6(x.clone(), pointwise.weight.val(), bias(&pointwise));
        same(ours, pointwise.forward(x.clone()), "1x1");
        let depthwise = Conv2dConfig::new([4, 4], [3, 3])
            .with_stride([2, 2])
            .with_groups(4)
            .with_padding(PaddingConfig2d::Same)
            .init(&device);
        let ours = depthwise3x3_relu6(x.clone(), depthwise.weight.val(), bias(&depthwise), 2);
        same(ours, depthwise.forward(x.clone()), "depthwise");
        let full = Conv2dConfig::new([4, 5], [3, 3]).with_padding(PaddingConfig2d::Same).init(&device);
        same(conv3x3_relu6(x.clone(), full.weight.val(), bias(&full), 1), full.forward(x.clone()), "3x3");
        assert!(!mean_pool(x).is_autodiff());
    }

    #[test]
    fn a_layer_that_trains_on_an_input_without_autodiff_still_takes_this_path_and_trains() {
        // What a tuned tail's first layer may get: activations moved onto the training device
        // with `to_device`, which keeps their own (inference) context.
        let device = Device::flex().autodiff();
        let conv = Conv2dConfig::new([4, 6], [1, 1]).init(&device);
        let x = Tensor::<4>::random([2, 4, 3, 3], Distribution::Normal(0.0, 2.0), &Device::flex()).to_device(&device);
        assert!(!x.is_autodiff());
        assert!(runs_here(&[&x, &conv.weight.val()]));
        let y = pointwise_relu6(x.clone(), conv.weight.val(), conv.bias.as_ref().unwrap().val());
        let theirs = conv.forward(x.autodiff()).clamp(0.0, 6.0);
        assert!(worst(y.clone().inner(), theirs.clone().inner()) < 1e-5);
        let (ours, theirs) = (y.sum().backward(), theirs.sum().backward());
        let gap = worst(conv.weight.grad(&ours).unwrap(), conv.weight.grad(&theirs).unwrap());
        assert!(gap < 1e-5, "weight gradient off by {gap}");
    }
}
