//! The whole path for a photo: decode -> detect -> align -> backbone features, one face at a
//! time or in batches. The trainer, `predict` and the browser all go through here.

use burn::prelude::*;
use image::RgbImage;

use crate::align::align;
use crate::backbone::{Backbone, BackboneKind};
use crate::detect::{Detection, Detector};

/// The input of a `kind` backbone for every detection of `image`: `[k, 3, s, s]`, aligned and
/// normalised (the browser, which holds its networks apart, calls this directly).
pub fn backbone_input(kind: BackboneKind, image: &RgbImage, detections: &[Detection]) -> Vec<f32> {
    let config = kind.align_config();
    detections.iter().flat_map(|d| kind.normalise(&align(image, &d.keypoints, &config))).collect()
}

/// One face found in a photo, with its backbone features.
#[derive(Debug, Clone)]
pub struct Face {
    pub detection: Detection,
    pub features: Vec<f32>,
}

/// Detector and backbone on one device.
#[derive(Debug)]
pub struct FacePipeline {
    pub detector: Detector,
    pub backbone: Backbone,
    pub device: Device,
}

impl FacePipeline {
    pub fn kind(&self) -> BackboneKind {
        self.backbone.kind()
    }

    /// The backbone's input for every detection of `image`: `[k, 3, s, s]`, normalised.
    pub fn crops(&self, image: &RgbImage, detections: &[Detection]) -> Vec<f32> {
        backbone_input(self.kind(), image, detections)
    }

    /// Features of `count` crops laid out back to back as [`Self::crops`] returns them.
    pub fn features(&self, crops: Vec<f32>, count: usize) -> Vec<Vec<f32>> {
        if count == 0 {
            return Vec::new();
        }
        let size = self.kind().input_size();
        let input = Tensor::from_data(TensorData::new(crops, [count, 3, size, size]), &self.device);
        let out = self.backbone.forward(input).into_data().try_to_vec::<f32>().expect("the backbone outputs floats");
        out.chunks_exact(self.kind().feature_dim()).map(<[f32]>::to_vec).collect()
    }

    /// Every face of `image`, best score first.
    pub fn faces(&self, image: &RgbImage) -> Vec<Face> {
        let detections = self.detector.detect_batch(&[image], &self.device).remove(0);
        let features = self.features(self.crops(image, &detections), detections.len());
        detections.into_iter().zip(features).map(|(detection, features)| Face { detection, features }).collect()
    }
}
