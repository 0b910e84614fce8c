//! Face alignment: one similarity transform (rotation, uniform scale, shift) that puts the two
//! eyes of a detection at fixed places of a square crop. Training and inference both call
//! [`align`], so the network always sees faces framed the same way.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::detect::{Keypoints, Point};
use crate::warp::{Affine, sample_planar};

/// Where the eyes land in the crop, as fractions of its side.
///
/// The margin is what the crop shows around the eyes: with the defaults the eyes are 0.30 of
/// the side apart, centred horizontally, 0.42 of the side from the top, so the crop spans about
/// 3.3 inter-eye distances: the whole head, hair and chin included. (UTKFace's own crops are
/// tighter, eyes about 0.40 of the side apart and 0.27 from the top.)
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AlignConfig {
    /// Crop side in pixels (the backbone's input size).
    pub size: usize,
    /// Distance between the eye centres, as a fraction of the side.
    pub eye_distance: f32,
    /// Height of the eye line from the top, as a fraction of the side.
    pub eye_line: f32,
}

impl AlignConfig {
    pub fn with_size(size: usize) -> Self {
        Self { size, eye_distance: 0.30, eye_line: 0.42 }
    }

    /// The map from crop pixels to image pixels that takes the canonical eye positions to the
    /// detected eyes (the subject's right eye is on the crop's left).
    pub fn transform(&self, keypoints: &Keypoints) -> Affine {
        let side = self.size as f32;
        let dst_right = Point { x: (0.5 - self.eye_distance / 2.0) * side, y: self.eye_line * side };
        let span = self.eye_distance * side;
        let (vx, vy) = (keypoints.left_eye.x - keypoints.right_eye.x, keypoints.left_eye.y - keypoints.right_eye.y);
        // The canonical eye vector is (span, 0): the similarity [a -b; b a] is v / span.
        let (a, b) = (vx / span, vy / span);
        let c = keypoints.right_eye.x - (a * dst_right.x - b * dst_right.y);
        let f = keypoints.right_eye.y - (b * dst_right.x + a * dst_right.y);
        Affine { a, b: -b, c, d: b, e: a, f }
    }
}

/// The aligned crop of one face as planar RGB `[3, size, size]` on 0..=255; outside the image
/// is black.
pub fn align(image: &RgbImage, keypoints: &Keypoints, config: &AlignConfig) -> Vec<f32> {
    sample_planar(image, &config.transform(keypoints), (config.size, config.size), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eyes(right: (f32, f32), left: (f32, f32)) -> Keypoints {
        let p = |(x, y): (f32, f32)| Point { x, y };
        let o = p((0.0, 0.0));
        Keypoints { right_eye: p(right), left_eye: p(left), nose: o, mouth: o, right_ear: o, left_ear: o }
    }

    #[test]
    fn canonical_eye_positions_map_onto_the_detected_eyes() {
        let config = AlignConfig::with_size(100);
        // A face tilted by 90 degrees: the left eye straight below the right one.
        let k = eyes((50.0, 20.0), (50.0, 80.0));
        let t = config.transform(&k);
        let (rx, ry) = t.apply(35.0, 42.0);
        let (lx, ly) = t.apply(65.0, 42.0);
        assert!((rx - 50.0).abs() < 1e-4 && (ry - 20.0).abs() < 1e-4);
        assert!((lx - 50.0).abs() < 1e-4 && (ly - 80.0).abs() < 1e-4);
    }

    #[test]
    fn an_upright_face_is_scaled_without_rotation() {
        let config = AlignConfig::with_size(150);
        let t = config.transform(&eyes((70.0, 90.0), (130.0, 90.0)));
        assert!(t.b.abs() < 1e-6 && t.d.abs() < 1e-6);
        assert!((t.a - 60.0 / 45.0).abs() < 1e-6);
    }
}
