//! MediaPipe BlazeFace, back-camera (full-range) variant: 256x256 input, 896 anchors.
//!
//! Stem conv 5x5/2 (3 -> 24), four stages of seven or eight BlazeBlocks (depthwise 3x3 then
//! pointwise, added to the input), a score and a regression head on the 16x16 grid, one more
//! strided block, and the same heads on the 8x8 grid.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::plan::block_plan;
use crate::layers;
use crate::tfjs::{TfjsError, TfjsWeights};

pub const INPUT_SIZE: usize = 256;
/// Anchors on the 16x16 grid (2 per cell) then on the 8x8 grid (6 per cell).
pub const ANCHORS_16: usize = 16 * 16 * 2;
pub const ANCHORS_8: usize = 8 * 8 * 6;
pub const NUM_ANCHORS: usize = ANCHORS_16 + ANCHORS_8;
/// Per anchor: box centre offset (2), box size (2), six keypoints (12).
pub const NUM_REGRESSORS: usize = 16;

/// Depthwise 3x3 then pointwise 1x1, added to the (pooled, zero-padded) input.
#[derive(Module, Debug)]
pub struct BlazeBlock {
    pub(crate) depthwise: Conv2d,
    pub(crate) pointwise: Conv2d,
    pool: Option<MaxPool2d>,
    extra_channels: usize,
}

impl BlazeBlock {
    fn new(channels_in: usize, channels_out: usize, stride: usize, device: &Device) -> Self {
        Self {
            depthwise: Conv2dConfig::new([channels_in, channels_in], [3, 3])
                .with_stride([stride, stride])
                .with_groups(channels_in)
                .with_padding(PaddingConfig2d::Same)
                .with_bias(false)
                .init(device),
            pointwise: Conv2dConfig::new([channels_in, channels_out], [1, 1]).init(device),
            pool: (stride == 2).then(|| MaxPool2dConfig::new([2, 2]).init()),
            extra_channels: channels_out - channels_in,
        }
    }

    /// `[n, c_in, h, w]` -> `[n, c_out, h / stride, w / stride]`
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let branch = self.pointwise.forward(self.depthwise.forward(x.clone()));
        let mut shortcut = match &self.pool {
            Some(pool) => pool.forward(x),
            None => x,
        };
        if self.extra_channels > 0 {
            let [n, _, h, w] = shortcut.dims();
            let zeros = Tensor::zeros([n, self.extra_channels, h, w], &shortcut.device());
            shortcut = Tensor::cat(vec![shortcut, zeros], 1);
        }
        relu(branch + shortcut)
    }
}

#[derive(Module, Debug)]
pub struct BlazeFace {
    pub(crate) stem: Conv2d,
    pub(crate) blocks: Vec<BlazeBlock>,
    pub(crate) scores_16: Conv2d,
    pub(crate) boxes_16: Conv2d,
    pub(crate) tail: BlazeBlockNoSkip,
    pub(crate) scores_8: Conv2d,
    pub(crate) boxes_8: Conv2d,
}

/// The last strided block has no shortcut.
#[derive(Module, Debug)]
pub struct BlazeBlockNoSkip {
    pub(crate) depthwise: Conv2d,
    pub(crate) pointwise: Conv2d,
}

#[derive(Config, Debug)]
pub struct BlazeFaceConfig {}

impl BlazeFaceConfig {
    pub fn init(&self, device: &Device) -> BlazeFace {
        let head = |out: usize| Conv2dConfig::new([96, out], [1, 1]).init(device);
        BlazeFace {
            stem: Conv2dConfig::new([3, 24], [5, 5])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Same)
                .init(device),
            blocks: block_plan().into_iter().map(|(i, o, s)| BlazeBlock::new(i, o, s, device)).collect(),
            scores_16: head(2),
            boxes_16: head(2 * NUM_REGRESSORS),
            tail: BlazeBlockNoSkip {
                depthwise: Conv2dConfig::new([96, 96], [3, 3])
                    .with_stride([2, 2])
                    .with_groups(96)
                    .with_padding(PaddingConfig2d::Same)
                    .with_bias(false)
                    .init(device),
                pointwise: Conv2dConfig::new([96, 96], [1, 1]).init(device),
            },
            scores_8: head(6),
            boxes_8: head(6 * NUM_REGRESSORS),
        }
    }
}

impl BlazeFace {
    /// `[n, 3, s, s]` RGB on [-1, 1] (`s` a multiple of 32: 256 for whole images, 128 for the
    /// regions a video follows faces in) -> `[n, anchors, 17]` (896 anchors at 256): per anchor
    /// the score logit, then the 16 regressors, anchors ordered as in [`super::anchors`].
    pub fn forward(&self, x: Tensor<4>) -> Tensor<3> {
        let mut x = relu(self.stem.forward(x));
        for block in &self.blocks {
            x = block.forward(x);
        }
        let grid_16 = per_anchor(self.scores_16.forward(x.clone()), self.boxes_16.forward(x.clone()));
        let x = relu(self.tail.pointwise.forward(self.tail.depthwise.forward(x)));
        let grid_8 = per_anchor(self.scores_8.forward(x.clone()), self.boxes_8.forward(x));
        Tensor::cat(vec![grid_16, grid_8], 1)
    }

    /// Build from the TF.js graph model of `@vladmandic/human` (`models/blazeface.json`),
    /// whose tensors are named `unknown_N` in graph order.
    pub fn from_tfjs(weights: &TfjsWeights, device: &Device) -> Result<Self, TfjsError> {
        let mut model = BlazeFaceConfig::new().init(device);
        let name = |i: usize| {
            if i == 0 { "unknown".to_string() } else { format!("unknown_{i}") }
        };
        model.stem =
            layers::conv(weights, "unknown", Some("unknown_0"), [5, 5, 3, 24], 2, PaddingConfig2d::Same, device)?;
        // Each block owns four consecutive numbers: depthwise kernel, one not in the file,
        // pointwise kernel and bias. The depthwise convs have no bias in the graph.
        for (index, ((cin, cout, stride), block)) in block_plan().into_iter().zip(model.blocks.iter_mut()).enumerate() {
            let base = 1 + 4 * index;
            block.depthwise = layers::depthwise(weights, &name(base), None, None, cin, stride, device)?;
            block.pointwise = layers::conv(
                weights,
                &name(base + 2),
                Some(&name(base + 3)),
                [1, 1, cin, cout],
                1,
                PaddingConfig2d::Valid,
                device,
            )?;
        }
        model.tail.depthwise = layers::depthwise(weights, &name(125), None, None, 96, 2, device)?;
        model.tail.pointwise =
            layers::conv(weights, &name(127), Some(&name(128)), [1, 1, 96, 96], 1, PaddingConfig2d::Valid, device)?;
        let head = |k: usize, out: usize| {
            layers::conv(weights, &name(k), Some(&name(k + 1)), [1, 1, 96, out], 1, PaddingConfig2d::Valid, device)
        };
        model.boxes_8 = head(129, 6 * NUM_REGRESSORS)?;
        model.boxes_16 = head(131, 2 * NUM_REGRESSORS)?;
        model.scores_8 = head(133, 6)?;
        model.scores_16 = head(135, 2)?;
        Ok(model)
    }
}

/// Scores `[n, a, h, w]` and boxes `[n, a * 16, h, w]` -> `[n, h * w * a, 17]`, cell-major
/// like TF's NHWC reshape.
fn per_anchor(scores: Tensor<4>, boxes: Tensor<4>) -> Tensor<3> {
    let [n, a, h, w] = scores.dims();
    let scores = scores.permute([0, 2, 3, 1]).reshape([n, h * w * a, 1]);
    let boxes = boxes.permute([0, 2, 3, 1]).reshape([n, h * w * a, NUM_REGRESSORS]);
    Tensor::cat(vec![scores, boxes], 2)
}
