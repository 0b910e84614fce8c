//! faceres: MobileNet-v1 (width 1.0, 224x224) trained on VGGFace2 for identity (HSE FaceRec,
//! Savchenko), with its upstream age and gender heads, from `@vladmandic/human`.
//!
//! Batch norms are folded: the pointwise convs carry them in their kernels and biases, the
//! depthwise convs as a per-channel multiplier that [`layers::depthwise`] folds in.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{sigmoid, softmax};

use super::blocks::BLOCKS;
use crate::tfjs::{TfjsError, TfjsWeights};
use crate::{kernels, layers};

pub const INPUT_SIZE: usize = 224;
pub const FEATURES: usize = 1024;
/// The peer age head is a softmax over ages 1..=100.
pub const AGE_BINS: usize = 100;

#[derive(Module, Debug)]
pub struct SeparableBlock {
    depthwise: Conv2d,
    pointwise: Conv2d,
}

impl SeparableBlock {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        pointwise_relu6(&self.pointwise, depthwise_relu6(&self.depthwise, x))
    }
}

/// The last blocks of faceres on their own: what partial fine-tuning trains, on activations of
/// the frozen blocks before them (cached once per face).
#[derive(Module, Debug)]
pub struct FaceResTail {
    blocks: Vec<SeparableBlock>,
}

impl FaceResTail {
    /// How many blocks it holds (the `K` of partial fine-tuning).
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// `[n, c, h, w]` activations at the cut ([`cut_shape`]) -> `[n, 1024]` features.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        pool(self.blocks.iter().fold(x, |x, block| block.forward(x)))
    }
}

/// The last `tuned` blocks, freshly initialised (ready for [`Module::load_record`]).
#[derive(Config, Debug)]
pub struct FaceResTailConfig {
    pub tuned: usize,
}

impl FaceResTailConfig {
    pub fn init(&self, device: &Device) -> FaceResTail {
        FaceResConfig::new().init(device).tail(self.tuned)
    }
}

/// Channels, height and width of the activations that enter the last `tuned` blocks.
pub fn cut_shape(tuned: usize) -> [usize; 3] {
    match block_shapes().get(BLOCK_COUNT - tuned) {
        Some(b) => [b.channels, b.side, b.side],
        None => [FEATURES, 7, 7],
    }
}

/// A depthwise-separable block's shape: the channels and side of the activations entering it,
/// its depthwise stride and the channels it gives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockShape {
    pub channels: usize,
    pub side: usize,
    pub stride: usize,
    pub out: usize,
}

/// The blocks' shapes, first to last, after the stem's `[32, 112, 112]`.
pub fn block_shapes() -> Vec<BlockShape> {
    let (mut channels, mut side) = (32, INPUT_SIZE / 2);
    BLOCKS
        .iter()
        .map(|&(out, stride)| {
            let shape = BlockShape { channels, side, stride, out };
            (channels, side) = (out, side.div_ceil(stride));
            shape
        })
        .collect()
}

/// The first layer: a 3x3 convolution of stride 2, 3 -> 32 channels.
pub fn stem_config() -> Conv2dConfig {
    Conv2dConfig::new([3, 32], [3, 3]).with_stride([2, 2]).with_padding(PaddingConfig2d::Same)
}

/// A block's 3x3 depthwise convolution (one kernel per channel).
pub fn depthwise_config(block: &BlockShape) -> Conv2dConfig {
    Conv2dConfig::new([block.channels, block.channels], [3, 3])
        .with_stride([block.stride, block.stride])
        .with_groups(block.channels)
        .with_padding(PaddingConfig2d::Same)
}

/// A block's 1x1 (pointwise) convolution.
pub fn pointwise_config(block: &BlockShape) -> Conv2dConfig {
    Conv2dConfig::new([block.channels, block.out], [1, 1])
}

#[derive(Module, Debug)]
pub struct FaceRes {
    stem: Conv2d,
    blocks: Vec<SeparableBlock>,
    feats: Linear,
    gender: Linear,
    age: Linear,
}

#[derive(Config, Debug)]
pub struct FaceResConfig {}

impl FaceResConfig {
    pub fn init(&self, device: &Device) -> FaceRes {
        let blocks = block_shapes()
            .iter()
            .map(|b| SeparableBlock {
                depthwise: depthwise_config(b).init(device),
                pointwise: pointwise_config(b).init(device),
            })
            .collect();
        FaceRes {
            stem: stem_config().init(device),
            blocks,
            feats: LinearConfig::new(FEATURES, 256).init(device),
            gender: LinearConfig::new(256, 1).init(device),
            age: LinearConfig::new(256, AGE_BINS).init(device),
        }
    }
}

/// A 1x1 convolution `[n, c, h, w]` -> `[n, out, h, w]` where [`kernels`] do not run (the GPU
/// backends). While training it is one matrix product over every pixel of the batch, `[out, c] x
/// [c, n h w]`: the same sums as `Conv2d::forward`, but differentiated as two large matrix
/// products, where Burn's CPU backend has no 1x1 convolution gradient of its own and takes a
/// generic one three times slower (BENCHMARKS.md "Training speed"). Inference keeps `Conv2d`'s
/// own kernel.
pub fn pointwise(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    if !x.device().is_autodiff() {
        return conv.forward(x);
    }
    let [n, c, h, w] = x.dims();
    let weight = conv.weight.val();
    let out = weight.dims()[0];
    let pixels = x.reshape([n, c, h * w]).swap_dims(0, 1).reshape([c, n * h * w]);
    let y = weight.reshape([out, c]).matmul(pixels);
    let y = match &conv.bias {
        Some(bias) => y + bias.val().reshape([out, 1]),
        None => y,
    };
    y.reshape([out, n, h * w]).swap_dims(0, 1).reshape([n, out, h, w])
}

/// ReLU6 of a block's 3x3 depthwise convolution. On the CPU backend it is one fused layer of
/// [`kernels`], with a backward of its own while training; elsewhere `Conv2d`'s own then
/// [`relu6`].
pub fn depthwise_relu6(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    match &conv.bias {
        Some(bias) if kernels::runs_here(&[&x, &conv.weight.val()]) => {
            kernels::depthwise3x3_relu6(x, conv.weight.val(), bias.val(), conv.stride[0])
        }
        _ => relu6(conv.forward(x)),
    }
}

/// ReLU6 of the stem's full 3x3 convolution, fused on the CPU backend as [`depthwise_relu6`] is
/// (Burn's convolution, its separate clamp and generic weight gradient took a fifth of a full
/// fine-tuning step there; BENCHMARKS.md "Training speed"); elsewhere `Conv2d`'s own then
/// [`relu6`].
pub fn stem_relu6(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    match &conv.bias {
        Some(bias) if kernels::runs_here(&[&x, &conv.weight.val()]) => {
            kernels::conv3x3_relu6(x, conv.weight.val(), bias.val(), conv.stride[0])
        }
        _ => relu6(conv.forward(x)),
    }
}

/// ReLU6 of a block's 1x1 convolution, fused on the CPU backend as [`depthwise_relu6`] is;
/// elsewhere [`pointwise`] then [`relu6`].
pub fn pointwise_relu6(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    match &conv.bias {
        Some(bias) if kernels::runs_here(&[&x, &conv.weight.val()]) => {
            kernels::pointwise_relu6(x, conv.weight.val(), bias.val())
        }
        _ => relu6(pointwise(conv, x)),
    }
}

/// The network's activation, min(max(x, 0), 6). While training, Burn's autodiff builds a clamp
/// from two comparisons and two masked fills each way, where ReLU has a kernel and gradient of
/// its own: only the cap at 6 is masked then (the same values; BENCHMARKS.md "Training speed").
pub fn relu6(x: Tensor<4>) -> Tensor<4> {
    if x.device().is_autodiff() { burn::tensor::activation::relu(x).clamp_max(6.0) } else { x.clamp(0.0, 6.0) }
}

/// Global average of a feature map: `[n, c, h, w]` -> `[n, c]`. On the CPU backend, a layer of
/// [`kernels`] spread over the threads.
fn pool(x: Tensor<4>) -> Tensor<2> {
    if kernels::runs_here(&[&x]) {
        return kernels::mean_pool(x);
    }
    let [n, c, _, _] = x.dims();
    x.mean_dim(3).mean_dim(2).reshape([n, c])
}

/// How many depthwise-separable blocks faceres has (at most this many can be tuned).
pub const BLOCK_COUNT: usize = BLOCKS.len();

impl FaceRes {
    /// `[n, 3, 224, 224]` BGR on 0..255 minus the VGGFace means -> `[n, 1024]` features
    /// (global average of the last feature map).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        pool(self.blocks(self.stem(x), 0..BLOCK_COUNT))
    }

    /// The first layer: `[n, 3, 224, 224]` -> `[n, 32, 112, 112]`.
    pub fn stem(&self, x: Tensor<4>) -> Tensor<4> {
        stem_relu6(&self.stem, x)
    }

    /// Blocks `range` on the activations that enter the first of them.
    pub fn blocks(&self, x: Tensor<4>, range: std::ops::Range<usize>) -> Tensor<4> {
        self.blocks[range].iter().fold(x, |x, block| block.forward(x))
    }

    /// The stem, then each block's depthwise and pointwise convolutions (to pack them elsewhere).
    pub fn convolutions(&self) -> (&Conv2d, impl Iterator<Item = (&Conv2d, &Conv2d)>) {
        (&self.stem, self.blocks.iter().map(|b| (&b.depthwise, &b.pointwise)))
    }

    /// A copy of the last `tuned` blocks, where partial fine-tuning starts.
    pub fn tail(&self, tuned: usize) -> FaceResTail {
        FaceResTail { blocks: self.blocks[BLOCK_COUNT - tuned..].to_vec() }
    }

    /// This network with its last blocks replaced by tuned ones.
    pub fn with_tail(mut self, tail: FaceResTail) -> Self {
        let first = BLOCK_COUNT - tail.len();
        self.blocks.truncate(first);
        self.blocks.extend(tail.blocks);
        self
    }

    /// The upstream heads on `[n, 1024]` features: (P(male) `[n]`, age distribution over
    /// 1..=100 `[n, 100]`).
    pub fn peer(&self, features: Tensor<2>) -> (Tensor<1>, Tensor<2>) {
        let hidden = burn::tensor::activation::relu(self.feats.forward(features));
        let [n, _] = hidden.dims();
        let male = sigmoid(self.gender.forward(hidden.clone())).reshape([n]);
        (male, softmax(self.age.forward(hidden), 1))
    }

    /// Build from `models/faceres.json` of `@vladmandic/human`.
    pub fn from_tfjs(weights: &TfjsWeights, device: &Device) -> Result<Self, TfjsError> {
        let mut model = FaceResConfig::new().init(device);
        // The graph applies ReLU6 as min(x, Cast) then max(_, Const_1): make sure they are
        // the 6 and 0 this module hard-codes.
        for name in ["conv1_relu", "conv_dw_1_relu", "conv_pw_13_relu"] {
            let (hi, lo) = (weights.scalar(&format!("{name}/Cast"))?, weights.scalar(&format!("{name}/Const_1"))?);
            if (hi, lo) != (6.0, 0.0) {
                return Err(TfjsError::Value {
                    name: format!("{name} clip bounds"),
                    expected: "[0, 6]".into(),
                    found: format!("[{lo}, {hi}]"),
                });
            }
        }
        model.stem = layers::conv(
            weights,
            "conv1/convolution/merged_input",
            Some("conv1_bn/batchnorm_1/sub"),
            [3, 3, 3, 32],
            2,
            PaddingConfig2d::Same,
            device,
        )?;
        let mut channels = 32;
        for (i, (&(out, stride), block)) in BLOCKS.iter().zip(model.blocks.iter_mut()).enumerate() {
            let k = i + 1;
            block.depthwise = layers::depthwise(
                weights,
                &format!("conv_dw_{k}/depthwise_kernel"),
                Some(&format!("conv_dw_{k}_bn/batchnorm_1/mul")),
                Some(&format!("conv_dw_{k}_bn/batchnorm_1/sub")),
                channels,
                stride,
                device,
            )?;
            block.pointwise = layers::conv(
                weights,
                &format!("conv_pw_{k}/convolution/merged_input"),
                Some(&format!("conv_pw_{k}_bn/batchnorm_1/sub")),
                [1, 1, channels, out],
                1,
                PaddingConfig2d::Same,
                device,
            )?;
            channels = out;
        }
        model.feats = layers::linear(weights, "feats/kernel", Some("feats/bias"), FEATURES, 256, device)?;
        model.gender = layers::linear(weights, "gender_pred/kernel", Some("gender_pred/bias"), 256, 1, device)?;
        model.age = layers::linear(weights, "age_pred/kernel", Some("age_pred/bias"), 256, AGE_BINS, device)?;
        Ok(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn close(a: Tensor<4>, b: Tensor<4>, what: &str) {
        let (a, b) = (a.into_data().try_to_vec::<f32>().unwrap(), b.into_data().try_to_vec::<f32>().unwrap());
        let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs() / (1.0 + y.abs())).fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "{what}: off by {worst} (relative)");
    }

    #[test]
    fn a_pointwise_convolution_as_matrix_products_is_conv2d_forward_and_backward() {
        let device = Device::flex().autodiff();
        let block = BlockShape { channels: 24, side: 7, stride: 1, out: 40 };
        let conv = pointwise_config(&block).init(&device);
        let x = Tensor::<4>::random([3, 24, 7, 7], Distribution::Normal(0.0, 1.0), &device).require_grad();
        let (ours, theirs) = (pointwise(&conv, x.clone()), conv.forward(x.clone()));
        close(ours.clone().inner(), theirs.clone().inner(), "forward");
        // The same loss through each: the gradients of the input, the kernel and the bias agree.
        let weights = Tensor::<4>::random([3, 40, 7, 7], Distribution::Normal(0.0, 1.0), &device);
        let (g_ours, g_theirs) = ((ours * weights.clone()).sum().backward(), (theirs * weights).sum().backward());
        close(x.grad(&g_ours).unwrap(), x.grad(&g_theirs).unwrap(), "input gradient");
        close(conv.weight.grad(&g_ours).unwrap(), conv.weight.grad(&g_theirs).unwrap(), "kernel gradient");
        let bias = |g| conv.bias.as_ref().unwrap().grad(g).unwrap().reshape([1, 40, 1, 1]);
        close(bias(&g_ours), bias(&g_theirs), "bias gradient");
    }

    #[test]
    fn relu6_trains_with_the_values_and_gradient_of_a_clamp() {
        let device = Device::flex().autodiff();
        let values: Vec<f32> = (-40..=40).map(|i| i as f32 * 0.25 + 0.125).collect();
        let x = Tensor::<4>::from_data(TensorData::new(values.clone(), [1, 1, 9, 9]), &device).require_grad();
        let y = relu6(x.clone());
        let clamped: Vec<f32> = values.iter().map(|v| v.clamp(0.0, 6.0)).collect();
        assert_eq!(y.clone().inner().into_data().try_to_vec::<f32>().unwrap(), clamped);
        assert_eq!(relu6(x.clone().inner()).into_data().try_to_vec::<f32>().unwrap(), clamped);
        let grad = x.grad(&y.sum().backward()).unwrap().into_data().try_to_vec::<f32>().unwrap();
        let inside: Vec<f32> = values.iter().map(|v| if (0.0..=6.0).contains(v) { 1.0 } else { 0.0 }).collect();
        assert_eq!(grad, inside);
    }
}
