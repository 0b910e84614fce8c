//! Face detection with MediaPipe BlazeFace (full-range, 256x256).

mod decode;
mod model;

pub use decode::{BBox, DecodeConfig, Detection, Keypoints, Letterbox, Point, anchors, decode};
pub use model::{BlazeFace, BlazeFaceConfig, INPUT_SIZE, NUM_ANCHORS, NUM_REGRESSORS};

use burn::prelude::*;
use image::RgbImage;

use crate::warp::{Affine, Canvas, sample_planar};

/// The detector's input for one image: the image centred on a black square, resized to
/// 256x256, as planar RGB on [-1, 1]; and how to map results back.
pub fn detector_input(image: &RgbImage) -> (Vec<f32>, Letterbox) {
    let letterbox = Letterbox::for_size(image.width(), image.height());
    let side = image.width().max(image.height()) as i64;
    let canvas = Canvas {
        x0: -(letterbox.pad_x as i64),
        y0: -(letterbox.pad_y as i64),
        x1: side - letterbox.pad_x as i64,
        y1: side - letterbox.pad_y as i64,
    };
    let map = Affine::scale_shift(letterbox.scale, -letterbox.pad_x, -letterbox.pad_y);
    let mut pixels = sample_planar(image, &map, (INPUT_SIZE, INPUT_SIZE), Some(canvas));
    for v in &mut pixels {
        *v = *v / 127.5 - 1.0;
    }
    (pixels, letterbox)
}

/// BlazeFace with its anchors and thresholds.
#[derive(Debug)]
pub struct Detector {
    pub model: BlazeFace,
    pub config: DecodeConfig,
    anchors: Vec<Point>,
}

impl Detector {
    pub fn new(model: BlazeFace, config: DecodeConfig) -> Self {
        Self {
            model,
            config,
            anchors: anchors(),
        }
    }

    /// Batch the detector inputs of several images: `[n, 3, 256, 256]`.
    pub fn batch(inputs: &[Vec<f32>], device: &Device) -> Tensor<4> {
        let flat: Vec<f32> = inputs.iter().flatten().copied().collect();
        Tensor::from_data(
            TensorData::new(flat, [inputs.len(), 3, INPUT_SIZE, INPUT_SIZE]),
            device,
        )
    }

    /// Decode the raw `[n * 896 * 17]` output of [`BlazeFace::forward`] for image `index`.
    pub fn decode(&self, raw: &[f32], index: usize, letterbox: &Letterbox) -> Vec<Detection> {
        let per_image = NUM_ANCHORS * (1 + NUM_REGRESSORS);
        decode(
            &raw[index * per_image..(index + 1) * per_image],
            &self.anchors,
            letterbox,
            &self.config,
        )
    }

    /// Detect every face of each image (a native, blocking read of the device).
    pub fn detect_batch(&self, images: &[&RgbImage], device: &Device) -> Vec<Vec<Detection>> {
        if images.is_empty() {
            return Vec::new();
        }
        let (inputs, boxes): (Vec<_>, Vec<_>) = images.iter().map(|i| detector_input(i)).unzip();
        let raw = self.model.forward(Self::batch(&inputs, device)).into_data();
        let raw = raw.as_slice::<f32>().expect("the detector outputs f32");
        boxes
            .iter()
            .enumerate()
            .map(|(i, b)| self.decode(raw, i, b))
            .collect()
    }
}
