//! A photo seen another way before detection, for `eval`'s robustness columns: the kinds of
//! photo the app's visitors bring that the training sets lack.

use facemtl::pipeline::FacePipeline;
use image::imageops::{FilterType, resize};
use image::{Rgb, RgbImage};
use serde::{Deserialize, Serialize};

/// Pixels between the eyes of a face seen small (the "about 32-40").
pub const SMALL_EYE_DISTANCE: f32 = 36.0;
/// Heavy JPEG compression.
pub const JPEG_QUALITY: u8 = 20;
/// Brightness factors of a darker and an over-exposed photo.
pub const DARK: f32 = 0.4;
pub const BRIGHT: f32 = 1.8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Look {
    /// The photo as it is.
    #[default]
    Clean,
    /// Black and white: luma (Rec. 601), kept as three channels.
    Bw,
    /// The photo scaled down until its best face's eyes are 36 pixels apart, and back up.
    Small,
    /// Saved as JPEG at quality 20.
    Jpeg,
    /// Every channel at 40 %.
    Dark,
    /// Every channel at 180 %, clipped: over-exposed.
    Bright,
}

impl Look {
    pub const ALL: [Look; 6] = [Look::Clean, Look::Bw, Look::Small, Look::Jpeg, Look::Dark, Look::Bright];

    /// What a cache of faces seen this way adds to its name; nothing when clean, so that the
    /// existing caches keep theirs.
    pub fn suffix(self) -> &'static str {
        match self {
            Look::Clean => "",
            Look::Bw => "-bw",
            Look::Small => "-small",
            Look::Jpeg => "-jpeg20",
            Look::Dark => "-dark",
            Look::Bright => "-bright",
        }
    }

    /// `image` seen this way (`pipeline` finds the face a small look shrinks).
    pub fn apply(self, pipeline: &FacePipeline, image: RgbImage) -> RgbImage {
        match self {
            Look::Small => small(pipeline, image),
            _ => self.repaint(image),
        }
    }

    /// The looks that need no face: each pixel's colour, or the JPEG codec.
    fn repaint(self, image: RgbImage) -> RgbImage {
        match self {
            Look::Clean | Look::Small => image,
            Look::Bw => map_pixels(image, |[r, g, b]| {
                let y = (0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b)).round() as u8;
                [y, y, y]
            }),
            Look::Jpeg => jpeg(&image).unwrap_or(image),
            Look::Dark => map_pixels(image, |p| p.map(|v| (f32::from(v) * DARK).round() as u8)),
            Look::Bright => map_pixels(image, |p| p.map(|v| (f32::from(v) * BRIGHT).round().min(255.0) as u8)),
        }
    }
}

fn map_pixels(mut image: RgbImage, f: impl Fn([u8; 3]) -> [u8; 3]) -> RgbImage {
    image.pixels_mut().for_each(|p| *p = Rgb(f(p.0)));
    image
}

/// The photo scaled so that its best face's eyes lie [`SMALL_EYE_DISTANCE`] apart and back up
/// to its size: the detail of a small face in a large photo. A photo whose face is already
/// that small, or has none, stays as it is.
fn small(pipeline: &FacePipeline, image: RgbImage) -> RgbImage {
    let Some(face) = pipeline.detect(&[&image]).pop().and_then(|faces| faces.into_iter().next()) else { return image };
    let (right, left) = (face.keypoints.right_eye, face.keypoints.left_eye);
    let eyes = (left.x - right.x).hypot(left.y - right.y);
    let factor = SMALL_EYE_DISTANCE / eyes;
    if factor.is_nan() || factor >= 1.0 {
        return image;
    }
    let (w, h) = image.dimensions();
    let shrunk = |side: u32| ((side as f32 * factor).round() as u32).max(1);
    let down = resize(&image, shrunk(w), shrunk(h), FilterType::Triangle);
    resize(&down, w, h, FilterType::Triangle)
}

fn jpeg(image: &RgbImage) -> Option<RgbImage> {
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY).encode_image(image).ok()?;
    Some(image::load_from_memory(&bytes).ok()?.to_rgb8())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_look_changes_the_pixels_as_it_says() {
        let photo = RgbImage::from_fn(64, 48, |x, y| Rgb([(x * 4) as u8, (y * 5) as u8, 200]));
        let bw = Look::Bw.repaint(photo.clone());
        assert!(bw.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
        assert_eq!(bw.get_pixel(10, 10)[0], (0.299f32 * 40.0 + 0.587 * 50.0 + 0.114 * 200.0).round() as u8);
        assert!(Look::Dark.repaint(photo.clone()).pixels().all(|p| p[2] == 80));
        assert!(Look::Bright.repaint(photo.clone()).pixels().all(|p| p[2] == 255));
        let jpeg = Look::Jpeg.repaint(photo.clone());
        assert_eq!(jpeg.dimensions(), photo.dimensions());
        assert_ne!(jpeg, photo);
        assert_eq!(Look::Clean.repaint(photo.clone()), photo);
        let suffixes: std::collections::HashSet<_> = Look::ALL.iter().map(|l| l.suffix()).collect();
        assert_eq!(suffixes.len(), Look::ALL.len(), "each look has its own cache");
    }
}
