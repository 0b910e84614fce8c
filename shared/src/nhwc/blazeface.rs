//! BlazeFace on NHWC arrays: the detector's views searched as [`BlazeFace::forward`] does.

use burn::nn::conv::Conv2d;

use super::layers::{Activation, Depthwise, Pointwise, Stem, add_shortcut};
use super::weights::values;
use crate::detect::{BlazeFace, NUM_REGRESSORS, anchor_count};

/// Per anchor: its score logit, then its regressors.
const ROW: usize = 1 + NUM_REGRESSORS;

/// A BlazeBlock: depthwise then pointwise, added to its input (max-pooled 2x2 where the block
/// halves the side, zero-padded where it widens), then ReLU.
#[derive(Debug, Clone)]
struct Block {
    depthwise: Depthwise,
    pointwise: Pointwise,
}

/// The score and regression heads of one grid as one 1x1 convolution: per pixel the `anchors`
/// scores, then their regressors (zero-padded to a multiple of 8).
#[derive(Debug, Clone)]
struct Heads {
    both: Pointwise,
    anchors: usize,
}

#[derive(Debug, Clone)]
pub struct NhwcBlazeFace {
    stem: Stem<6>,
    blocks: Vec<Block>,
    heads_16: Heads,
    tail: (Depthwise, Pointwise),
    heads_8: Heads,
}

impl NhwcBlazeFace {
    pub fn new(net: &BlazeFace) -> Self {
        let (weight, bias) = values(&net.stem);
        let stem = Stem::new(&weight, bias, 5, net.stem.stride[0], Activation::Relu);
        let blocks = net
            .blocks
            .iter()
            .map(|b| Block {
                depthwise: depthwise(&b.depthwise),
                pointwise: pointwise(&b.pointwise, Activation::Linear),
            })
            .collect();
        Self {
            stem,
            blocks,
            heads_16: Heads::new(&net.scores_16, &net.boxes_16),
            tail: (depthwise(&net.tail.depthwise), pointwise(&net.tail.pointwise, Activation::Relu)),
            heads_8: Heads::new(&net.scores_8, &net.boxes_8),
        }
    }

    /// `[views, 3, side, side]` RGB planes on [-1, 1] (`side` a multiple of 32) ->
    /// `[views, anchors, 17]`, as [`BlazeFace::forward`] gives them up to the order of the sums.
    pub fn forward(&self, input: &[f32], side: usize) -> Vec<f32> {
        let image = 3 * side * side;
        assert_eq!(input.len() % image, 0, "views of 3 x {side} x {side}");
        let stem_side = self.stem.side_out(side);
        let largest = stem_side * stem_side * self.stem.channels_out();
        let mut buffers = [vec![0.0; largest], vec![0.0; largest], vec![0.0; largest]];
        input.chunks_exact(image).flat_map(|view| self.view(view, side, &mut buffers)).collect()
    }

    /// One view's `[anchors, 17]`.
    fn view(&self, planes: &[f32], input: usize, [x, branch, y]: &mut [Vec<f32>; 3]) -> Vec<f32> {
        let mut side = self.stem.side_out(input);
        let mut channels = self.stem.channels_out();
        self.stem.forward(planes, input, &mut x[..side * side * channels]);
        for block in &self.blocks {
            let side_out = block.depthwise.side_out(side);
            let (pixels, out) = (side_out * side_out, block.pointwise.channels_out());
            block.depthwise.forward(&x[..side * side * channels], side, &mut branch[..pixels * channels]);
            block.pointwise.forward(&branch[..pixels * channels], &mut y[..pixels * out]);
            add_shortcut(&x[..side * side * channels], side, channels, &mut y[..pixels * out], side_out, out);
            std::mem::swap(x, y);
            (side, channels) = (side_out, out);
        }
        let mut rows = Vec::with_capacity(anchor_count(input) * ROW);
        self.heads_16.rows(&x[..side * side * channels], branch, &mut rows);
        let (depthwise, pointwise) = &self.tail;
        let side_out = depthwise.side_out(side);
        let pixels = side_out * side_out;
        depthwise.forward(&x[..side * side * channels], side, &mut branch[..pixels * channels]);
        pointwise.forward(&branch[..pixels * channels], &mut y[..pixels * pointwise.channels_out()]);
        self.heads_8.rows(&y[..pixels * pointwise.channels_out()], branch, &mut rows);
        rows
    }
}

impl Heads {
    fn new(scores: &Conv2d, boxes: &Conv2d) -> Self {
        let (mut weight, mut bias) = values(scores);
        let (boxes_weight, boxes_bias) = values(boxes);
        let anchors = bias.len();
        weight.extend(boxes_weight);
        bias.extend(boxes_bias);
        Self { both: Pointwise::new(&weight, bias, Activation::Linear), anchors }
    }

    /// Appends each pixel's anchors of `x` `[pixels, c]` to `rows`, `scratch` holding the
    /// convolution's output.
    fn rows(&self, x: &[f32], scratch: &mut [f32], rows: &mut Vec<f32>) {
        let width = self.both.channels_out();
        let pixels = x.len() / self.both.channels_in();
        let out = &mut scratch[..pixels * width];
        self.both.forward(x, out);
        for pixel in out.chunks_exact(width) {
            let (scores, boxes) = pixel.split_at(self.anchors);
            for (a, score) in scores.iter().enumerate() {
                rows.push(*score);
                rows.extend_from_slice(&boxes[a * NUM_REGRESSORS..(a + 1) * NUM_REGRESSORS]);
            }
        }
    }
}

fn depthwise(conv: &Conv2d) -> Depthwise {
    let (weight, bias) = values(conv);
    Depthwise::new(&weight, bias, conv.stride[0], Activation::Linear)
}

fn pointwise(conv: &Conv2d, activation: Activation) -> Pointwise {
    let (weight, bias) = values(conv);
    Pointwise::new(&weight, bias, activation)
}

#[cfg(test)]
mod tests {
    use burn::prelude::*;
    use burn::tensor::Distribution;

    use super::*;
    use crate::detect::{BlazeFaceConfig, INPUT_SIZE, REGION_INPUT};
    use crate::nhwc::check::{SUM_ORDER, agrees};

    #[test]
    fn packed_blazeface_gives_burns_outputs_at_the_full_and_a_followed_face_s_input() {
        let net = BlazeFaceConfig::new().init(&Device::flex());
        let packed = NhwcBlazeFace::new(&net);
        for side in [INPUT_SIZE, REGION_INPUT] {
            agrees(
                side,
                Distribution::Uniform(-1.0, 1.0),
                SUM_ORDER,
                |x| net.forward(x).into_data().try_to_vec::<f32>().unwrap(),
                |input| {
                    let out = packed.forward(input, side);
                    assert_eq!(out.len(), 2 * anchor_count(side) * ROW);
                    out
                },
            );
        }
    }
}
