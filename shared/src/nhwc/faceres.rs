//! The whole of faceres's MobileNet-v1 on NHWC arrays.

use crate::backbone::FaceRes;
use crate::backbone::faceres::{FEATURES, INPUT_SIZE};

use super::layers::{Activation, Codes, Depthwise, GridPointwise, Pointwise, Stem};
use super::weights::values;

/// faceres packed for the CPU: its stem and its 13 depthwise-separable blocks.
#[derive(Debug, Clone)]
pub struct NhwcFaceRes {
    stem: Stem<8>,
    blocks: Vec<(Depthwise, Mixing)>,
}

/// A block's 1x1 convolution: summed in integers where its kernels are 8-bit (the int8 backbone
/// the page downloads: twice the multiply-adds an instruction, BENCHMARKS.md), in f32 where they
/// are exact.
#[derive(Debug, Clone)]
enum Mixing {
    Grid(GridPointwise),
    Float(Pointwise),
}

impl Mixing {
    fn new(weight: &[f32], bias: Vec<f32>) -> Self {
        match GridPointwise::new(weight, bias.clone(), Activation::Relu6) {
            Some(grid) => Mixing::Grid(grid),
            None => Mixing::Float(Pointwise::new(weight, bias, Activation::Relu6)),
        }
    }

    fn channels_out(&self) -> usize {
        match self {
            Mixing::Grid(grid) => grid.channels_out(),
            Mixing::Float(float) => float.channels_out(),
        }
    }

    fn forward(&self, x: &[f32], codes: &mut Codes, out: &mut [f32]) {
        match self {
            Mixing::Grid(grid) => grid.forward(x, codes, out),
            Mixing::Float(float) => float.forward(x, out),
        }
    }
}

impl NhwcFaceRes {
    /// Packs `net`'s weights (the tuned last blocks included, when it carries them).
    pub fn new(net: &FaceRes) -> Self {
        let (stem, blocks) = net.convolutions();
        let (weight, bias) = values(stem);
        let stem = Stem::new(&weight, bias, 3, stem.stride[0], Activation::Relu6);
        let blocks = blocks
            .map(|(depthwise, pointwise)| {
                let (weight, bias) = values(depthwise);
                let depthwise = Depthwise::new(&weight, bias, depthwise.stride[0], Activation::Relu6);
                let (weight, bias) = values(pointwise);
                (depthwise, Mixing::new(&weight, bias))
            })
            .collect();
        Self { stem, blocks }
    }

    /// `[n, 3, 224, 224]` normalised crops (BGR planes, as [`FaceRes::forward`] takes them) ->
    /// `[n, 1024]` features, the same as [`FaceRes::forward`]'s up to the order of the sums and,
    /// for int8 kernels, the rounding of their inputs (by half a code).
    pub fn forward(&self, input: &[f32]) -> Vec<f32> {
        let image = 3 * INPUT_SIZE * INPUT_SIZE;
        assert_eq!(input.len() % image, 0, "crops of 3 x {INPUT_SIZE} x {INPUT_SIZE}");
        let largest = self.largest_activation();
        let (mut a, mut b) = (vec![0.0; largest], vec![0.0; largest]);
        let mut codes = Codes::default();
        input.chunks_exact(image).flat_map(|crop| self.features(crop, [&mut a, &mut b], &mut codes)).collect()
    }

    /// One crop's features, through two buffers that each layer reads from and writes to in turn.
    fn features(&self, crop: &[f32], [a, b]: [&mut [f32]; 2], codes: &mut Codes) -> Vec<f32> {
        let mut side = self.stem.side_out(INPUT_SIZE);
        let mut channels = self.stem.channels_out();
        self.stem.forward(crop, INPUT_SIZE, &mut a[..side * side * channels]);
        for (depthwise, pointwise) in &self.blocks {
            let side_out = depthwise.side_out(side);
            depthwise.forward(&a[..side * side * channels], side, &mut b[..side_out * side_out * channels]);
            side = side_out;
            let pixels = side * side;
            pointwise.forward(&b[..pixels * channels], codes, &mut a[..pixels * pointwise.channels_out()]);
            channels = pointwise.channels_out();
        }
        global_mean(&a[..side * side * channels], channels)
    }

    /// The most floats any layer's output holds.
    fn largest_activation(&self) -> usize {
        let mut side = self.stem.side_out(INPUT_SIZE);
        let mut largest = side * side * self.stem.channels_out();
        let mut channels = self.stem.channels_out();
        for (depthwise, pointwise) in &self.blocks {
            side = depthwise.side_out(side);
            largest = largest.max(side * side * channels.max(pointwise.channels_out()));
            channels = pointwise.channels_out();
        }
        largest
    }
}

/// The mean of each channel over the pixels of `[pixels, channels]`.
fn global_mean(x: &[f32], channels: usize) -> Vec<f32> {
    debug_assert_eq!(channels, FEATURES);
    let mut sum = vec![0.0f32; channels];
    for pixel in x.chunks_exact(channels) {
        for (s, v) in sum.iter_mut().zip(pixel) {
            *s += v;
        }
    }
    let pixels = (x.len() / channels) as f32;
    sum.into_iter().map(|s| s / pixels).collect()
}

#[cfg(test)]
mod tests {
    use burn::prelude::*;
    use burn::tensor::Distribution;

    use super::*;
    use crate::backbone::FaceResConfig;
    use crate::compact::{Precision, at_precision};
    use crate::nhwc::check::{SUM_ORDER, agrees};

    #[test]
    fn packed_faceres_gives_burns_features() {
        let net = FaceResConfig::new().init(&Device::flex());
        let packed = NhwcFaceRes::new(&net);
        agrees(
            INPUT_SIZE,
            Distribution::Normal(0.0, 60.0),
            SUM_ORDER,
            |x| net.forward(x).into_data().try_to_vec::<f32>().unwrap(),
            |input| packed.forward(input),
        );
        assert!(packed.blocks.iter().all(|(_, m)| matches!(m, Mixing::Float(_))), "exact kernels stay in f32");
    }

    #[test]
    fn packed_int8_faceres_sums_in_integers_and_gives_burns_features() {
        let net = at_precision(FaceResConfig::new().init(&Device::flex()), Precision::Int8);
        let packed = NhwcFaceRes::new(&net);
        assert!(packed.blocks.iter().all(|(_, m)| matches!(m, Mixing::Grid(_))), "int8 kernels sum in integers");
        // Measured: 1.8e-4 of the largest output. Random weights keep the activations near
        // 0.3, where a code's width (6/32,767 or more) weighs most; a code paired with the
        // wrong kernel moves the outputs by their own size.
        agrees(
            INPUT_SIZE,
            Distribution::Normal(0.0, 60.0),
            1e-3,
            |x| net.forward(x).into_data().try_to_vec::<f32>().unwrap(),
            |input| packed.forward(input),
        );
    }
}
