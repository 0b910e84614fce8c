//! dlib's face-recognition ResNet-34 (150x150 -> 128-D), from `@vladmandic/face-api`.
//!
//! Each conv is followed by a per-channel affine "scale" layer, folded here into the conv's
//! kernel and bias (exact: both act per output channel).

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::layers;
use crate::tfjs::{TfjsError, TfjsWeights};

pub const INPUT_SIZE: usize = 150;
pub const FEATURES: usize = 128;
/// The means face-api subtracts (RGB) before dividing by 255.
pub const MEAN_RGB: [f32; 3] = [122.782, 117.001, 104.298];

/// Name prefix, input and output channels, and whether the block downsamples.
const BLOCKS: [(&str, usize, usize, bool); 14] = [
    ("conv32_1", 32, 32, false),
    ("conv32_2", 32, 32, false),
    ("conv32_3", 32, 32, false),
    ("conv64_down", 32, 64, true),
    ("conv64_1", 64, 64, false),
    ("conv64_2", 64, 64, false),
    ("conv64_3", 64, 64, false),
    ("conv128_down", 64, 128, true),
    ("conv128_1", 128, 128, false),
    ("conv128_2", 128, 128, false),
    ("conv256_down", 128, 256, true),
    ("conv256_1", 256, 256, false),
    ("conv256_2", 256, 256, false),
    ("conv256_down_out", 256, 256, true),
];

/// Two 3x3 convs plus a shortcut. A downsampling block's first conv has stride 2 without
/// padding; its shortcut is a 2x2 average pool, zero-padded to the new channel count, and the
/// residual branch is zero-padded on the bottom/right when the pool's map is one larger.
#[derive(Module, Debug)]
pub struct ResidualBlock {
    conv1: Conv2d,
    conv2: Conv2d,
    pool: Option<AvgPool2d>,
    extra_channels: usize,
}

impl ResidualBlock {
    /// `[n, c_in, h, w]` -> `[n, c_out, h', w']`
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut out = self.conv2.forward(relu(self.conv1.forward(x.clone())));
        let mut shortcut = match &self.pool {
            Some(pool) => pool.forward(x),
            None => x,
        };
        let [n, _, h, w] = shortcut.dims();
        let [_, c, oh, ow] = out.dims();
        if oh < h || ow < w {
            out = out.pad((0, w - ow, 0, h - oh), burn::tensor::ops::PadMode::Constant(0.0));
        }
        if self.extra_channels > 0 {
            let zeros = Tensor::zeros([n, self.extra_channels, h, w], &shortcut.device());
            shortcut = Tensor::cat(vec![shortcut, zeros], 1);
        }
        debug_assert_eq!(c, shortcut.dims()[1]);
        relu(out + shortcut)
    }
}

#[derive(Module, Debug)]
pub struct DlibResNet {
    stem: Conv2d,
    pool: MaxPool2d,
    blocks: Vec<ResidualBlock>,
    fc: Linear,
}

#[derive(Config, Debug)]
pub struct DlibResNetConfig {}

impl DlibResNetConfig {
    pub fn init(&self, device: &Device) -> DlibResNet {
        let conv = |cin: usize, cout: usize, stride: usize, padding: PaddingConfig2d| {
            Conv2dConfig::new([cin, cout], [3, 3]).with_stride([stride, stride]).with_padding(padding).init(device)
        };
        DlibResNet {
            stem: Conv2dConfig::new([3, 32], [7, 7]).with_stride([2, 2]).init(device),
            pool: MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).init(),
            blocks: BLOCKS
                .iter()
                .map(|&(_, cin, cout, down)| ResidualBlock {
                    conv1: if down {
                        conv(cin, cout, 2, PaddingConfig2d::Valid)
                    } else {
                        conv(cin, cout, 1, PaddingConfig2d::Same)
                    },
                    conv2: conv(cout, cout, 1, PaddingConfig2d::Same),
                    pool: down.then(|| AvgPool2dConfig::new([2, 2]).with_strides([2, 2]).init()),
                    extra_channels: cout - cin,
                })
                .collect(),
            fc: LinearConfig::new(256, FEATURES).with_bias(false).init(device),
        }
    }
}

impl DlibResNet {
    /// `[n, 3, 150, 150]` RGB as `(x - MEAN_RGB) / 255` -> `[n, 128]` descriptors.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = self.pool.forward(relu(self.stem.forward(x)));
        for block in &self.blocks {
            x = block.forward(x);
        }
        let [n, c, _, _] = x.dims();
        self.fc.forward(x.mean_dim(3).mean_dim(2).reshape([n, c]))
    }

    /// Build from `model/face_recognition_model-weights_manifest.json` of `@vladmandic/face-api`.
    pub fn from_tfjs(weights: &TfjsWeights, device: &Device) -> Result<Self, TfjsError> {
        let mut model = DlibResNetConfig::new().init(device);
        model.stem = conv_scale(weights, "conv32_down", [7, 7, 3, 32], 2, PaddingConfig2d::Valid, device)?;
        for (&(prefix, cin, cout, down), block) in BLOCKS.iter().zip(model.blocks.iter_mut()) {
            let (stride, padding) = if down { (2, PaddingConfig2d::Valid) } else { (1, PaddingConfig2d::Same) };
            block.conv1 = conv_scale(weights, &format!("{prefix}/conv1"), [3, 3, cin, cout], stride, padding, device)?;
            block.conv2 =
                conv_scale(weights, &format!("{prefix}/conv2"), [3, 3, cout, cout], 1, PaddingConfig2d::Same, device)?;
        }
        model.fc = layers::linear(weights, "fc", None, 256, FEATURES, device)?;
        Ok(model)
    }
}

/// `conv/filters` + `conv/bias`, then `scale/weights` and `scale/biases` folded in.
fn conv_scale(
    weights: &TfjsWeights,
    prefix: &str,
    shape: [usize; 4],
    stride: usize,
    padding: PaddingConfig2d,
    device: &Device,
) -> Result<Conv2d, TfjsError> {
    let cout = shape[3];
    let mut layer = layers::conv(
        weights,
        &format!("{prefix}/conv/filters"),
        Some(&format!("{prefix}/conv/bias")),
        shape,
        stride,
        padding,
        device,
    )?;
    let scale = weights.get(&format!("{prefix}/scale/weights"), &[cout])?.values.clone();
    let shift = weights.get(&format!("{prefix}/scale/biases"), &[cout])?.values.clone();
    let scale = Tensor::<1>::from_data(TensorData::new(scale, [cout]), device);
    let shift = Tensor::<1>::from_data(TensorData::new(shift, [cout]), device);
    let weight = layer.weight.val() * scale.clone().reshape([cout, 1, 1, 1]);
    let bias = layer.bias.as_ref().expect("conv built with a bias").val() * scale + shift;
    layer.weight = burn::module::Param::from_tensor(weight);
    layer.bias = Some(burn::module::Param::from_tensor(bias));
    Ok(layer)
}
