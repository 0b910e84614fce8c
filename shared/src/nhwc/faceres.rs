//! The whole of faceres's MobileNet-v1 on NHWC arrays.

use crate::backbone::FaceRes;
use crate::backbone::faceres::{FEATURES, INPUT_SIZE};

use super::layers::{Activation, Depthwise, Pointwise, Stem};
use super::weights::values;

/// faceres packed for the CPU: its stem and its 13 depthwise-separable blocks.
#[derive(Debug, Clone)]
pub struct NhwcFaceRes {
    stem: Stem<8>,
    blocks: Vec<(Depthwise, Pointwise)>,
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
                (depthwise, Pointwise::new(&weight, bias, Activation::Relu6))
            })
            .collect();
        Self { stem, blocks }
    }

    /// `[n, 3, 224, 224]` normalised crops (BGR planes, as [`FaceRes::forward`] takes them) ->
    /// `[n, 1024]` features, the same as [`FaceRes::forward`]'s up to the order of the sums.
    pub fn forward(&self, input: &[f32]) -> Vec<f32> {
        let image = 3 * INPUT_SIZE * INPUT_SIZE;
        assert_eq!(input.len() % image, 0, "crops of 3 x {INPUT_SIZE} x {INPUT_SIZE}");
        let largest = self.largest_activation();
        let (mut a, mut b) = (vec![0.0; largest], vec![0.0; largest]);
        input.chunks_exact(image).flat_map(|crop| self.features(crop, &mut a, &mut b)).collect()
    }

    /// One crop's features, through two buffers that each layer reads from and writes to in turn.
    fn features(&self, crop: &[f32], a: &mut [f32], b: &mut [f32]) -> Vec<f32> {
        let mut side = self.stem.side_out(INPUT_SIZE);
        let mut channels = self.stem.channels_out();
        self.stem.forward(crop, INPUT_SIZE, &mut a[..side * side * channels]);
        for (depthwise, pointwise) in &self.blocks {
            let side_out = depthwise.side_out(side);
            depthwise.forward(&a[..side * side * channels], side, &mut b[..side_out * side_out * channels]);
            side = side_out;
            let pixels = side * side;
            pointwise.forward(&b[..pixels * channels], &mut a[..pixels * pointwise.channels_out()]);
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
    use crate::nhwc::check::agrees;

    #[test]
    fn packed_faceres_gives_burns_features() {
        let net = FaceResConfig::new().init(&Device::flex());
        let packed = NhwcFaceRes::new(&net);
        agrees(
            INPUT_SIZE,
            Distribution::Normal(0.0, 60.0),
            |x| net.forward(x).into_data().try_to_vec::<f32>().unwrap(),
            |input| packed.forward(input),
        );
    }
}
