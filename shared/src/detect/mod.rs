//! Face detection with MediaPipe BlazeFace (full-range, 256x256).

mod decode;
mod model;
mod plan;

pub use decode::{BBox, DecodeConfig, Detection, Keypoints, Letterbox, Point, anchor_count, anchors, decode};
pub use model::{BlazeFace, BlazeFaceConfig, INPUT_SIZE, NUM_ANCHORS, NUM_REGRESSORS};

use burn::prelude::*;
use image::RgbImage;

use crate::warp::{Affine, Canvas, sample_planar};

/// The detector's input for one view of an image: the window resized to the view's input
/// (256x256 but for a followed face's region; black outside the image), as planar RGB on
/// [-1, 1].
pub fn detector_input(image: &RgbImage, view: &Letterbox) -> Vec<f32> {
    let window = view.window();
    let canvas = Canvas {
        x0: window.x_min.round() as i64,
        y0: window.y_min.round() as i64,
        x1: window.x_max.round() as i64,
        y1: window.y_max.round() as i64,
    };
    let map = Affine::scale_shift(view.scale, -view.pad_x, -view.pad_y);
    let mut pixels = sample_planar(image, &map, (view.input, view.input), Some(canvas));
    for v in &mut pixels {
        *v = *v / 127.5 - 1.0;
    }
    pixels
}

/// Detector settings: decoding thresholds and the zoom-out levels each image is seen at.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DetectorConfig {
    pub decode: DecodeConfig,
    /// Each image is searched centred on a square this many times its longer side.
    /// BlazeFace full-range misses faces that fill the frame (close-ups, selfies, the
    /// pre-cropped faces of UTKFace and CelebA); seen zoomed out, they are ordinary faces.
    pub zooms: Vec<f32>,
    /// Images whose longer side is at least twice the detector's input are also searched in
    /// up to four overlapping tiles, each 0.6 of the longer side: small faces of group photos
    /// come out larger there.
    pub tiles: bool,
    /// Search the other views only when the first one (zoom 1) holds no confident face of at
    /// least a quarter of the frame: such a face is what the zoom-out view is there to find,
    /// and in front of a webcam it is the rule. Off for photos, whose faces must not depend on
    /// it (the views' boxes are averaged together; see [`Self::answering_photos`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub first_view_suffices: bool,
    /// Search the tiles only when the zoom views hold no confident face of at least a quarter
    /// of the frame: tiles are there for the small faces of group photos, and in a portrait
    /// they cost three times the rest of the search.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tiles_only_without_large_face: bool,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            decode: DecodeConfig::default(),
            zooms: vec![1.0, 2.0],
            tiles: true,
            first_view_suffices: false,
            tiles_only_without_large_face: false,
        }
    }
}

/// A followed face's region is searched at this input side (a quarter of the whole frame's
/// pixels) ...
pub const REGION_INPUT: usize = 128;
/// ... on a square this many times the face's longer side, so that the face spans about 50
/// of its 128 pixels: the size of a large face in the whole frame's 256 (`SUFFICING_SIZE`),
/// well inside what the full-range model finds.
pub const REGION_ZOOM: f32 = 2.5;

/// A face this confident in the first view ...
const SUFFICING_SCORE: f32 = 0.75;
/// ... and at least this share of the frame's longer side makes the other views unnecessary.
const SUFFICING_SIZE: f32 = 0.25;

impl DetectorConfig {
    /// These settings as photos are answered (`predict`, the browser): the tiles only when the
    /// zoom views hold no large face. Training and evaluation keep searching every view. (The
    /// zoom-out view only when the first view holds no large face, as video frames are
    /// answered, was measured with `eval --as-answered` and not kept: UTKFace's test gender
    /// 93.92 -> 93.37 %, race 86.66 -> 86.03 %, age MAE 4.64 -> 4.76, beyond a seed's spread.)
    pub fn answering_photos(self) -> Self {
        Self { tiles_only_without_large_face: true, ..self }
    }

    /// These settings as video frames are answered: no tiles, and the zoom-out view only when
    /// the first view holds no large face (faces in front of a webcam are large).
    pub fn answering_video(self) -> Self {
        Self { tiles: false, first_view_suffices: true, ..self }
    }

    /// Every view the detector takes of a `width x height` image.
    pub fn views(&self, width: u32, height: u32) -> Vec<Letterbox> {
        let mut views: Vec<Letterbox> = self.zooms.iter().map(|&z| Letterbox::zoomed_out(width, height, z)).collect();
        let long = width.max(height) as f32;
        if self.tiles && long >= 2.0 * INPUT_SIZE as f32 {
            let side = (TILE_SHARE * long).round();
            // Along each axis: both ends when the image is longer than a tile, else centred.
            let starts = |n: f32| if n > side { vec![0.0, n - side] } else { vec![((n - side) / 2.0).floor()] };
            for y in starts(height as f32) {
                for x in starts(width as f32) {
                    views.push(Letterbox::tile(x, y, side));
                }
            }
        }
        views
    }
}

const TILE_SHARE: f32 = 0.6;

/// The input side shared by `views` (a batch of the detector has one shape).
pub fn input_side(views: &[Letterbox]) -> usize {
    let side = views.first().map_or(INPUT_SIZE, |v| v.input);
    assert!(views.iter().all(|v| v.input == side), "views of one batch share their input side");
    side
}

/// BlazeFace with its settings.
#[derive(Debug, Clone)]
pub struct Detector {
    pub model: BlazeFace,
    pub config: DetectorConfig,
}

/// The detector inputs of a batch of images (every view of each), ready for
/// [`BlazeFace::forward`], and what [`Detector::decode`] needs afterwards.
pub struct DetectorBatch {
    pub input: Tensor<4>,
    /// The views of each image, in input order.
    pub views: Vec<Vec<Letterbox>>,
}

impl Detector {
    pub fn new(model: BlazeFace, config: DetectorConfig) -> Self {
        Self { model, config }
    }

    /// `[total views, 3, 256, 256]` for `images`, the views of an image adjacent.
    pub fn inputs(&self, images: &[&RgbImage], device: &Device) -> DetectorBatch {
        let views: Vec<Vec<Letterbox>> = images.iter().map(|i| self.config.views(i.width(), i.height())).collect();
        let count: usize = views.iter().map(Vec::len).sum();
        let mut flat = Vec::with_capacity(count * 3 * INPUT_SIZE * INPUT_SIZE);
        for (image, views) in images.iter().zip(&views) {
            for view in views {
                flat.extend(detector_input(image, view));
            }
        }
        let input = Tensor::from_data(TensorData::new(flat, [count, 3, INPUT_SIZE, INPUT_SIZE]), device);
        DetectorBatch { input, views }
    }

    /// `[views, 3, s, s]`: the given views of one image, all of one input side `s`.
    pub fn view_inputs(&self, image: &RgbImage, views: &[Letterbox], device: &Device) -> Tensor<4> {
        let side = input_side(views);
        let shape = [views.len(), 3, side, side];
        Tensor::from_data(TensorData::new(self.view_values(image, views), shape), device)
    }

    /// [`Self::view_inputs`] on the host, flat.
    pub fn view_values(&self, image: &RgbImage, views: &[Letterbox]) -> Vec<f32> {
        views.iter().flat_map(|view| detector_input(image, view)).collect()
    }

    /// Where each pass of a staged search ends in `views`, the last at the end: one pass over
    /// them all; with [`DetectorConfig::first_view_suffices`] the first view first; with
    /// [`DetectorConfig::tiles_only_without_large_face`] the zoom views before the tiles.
    pub fn pass_ends(&self, views: &[Letterbox]) -> Vec<usize> {
        let config = &self.config;
        let mut ends = Vec::with_capacity(3);
        if config.first_view_suffices {
            ends.push(1);
        }
        if config.tiles_only_without_large_face {
            ends.push(config.zooms.len());
        }
        ends.push(views.len());
        ends.retain(|&end| end <= views.len());
        ends.dedup();
        ends
    }

    /// The faces of a staged search after the pass that ended at `end` (`raw`, the output of
    /// `views[..end]`), when it needs no other: it searched every view, or its faces
    /// [`Self::suffices`]. `None`: search on.
    pub fn answer_after(
        &self,
        raw: &[f32],
        views: &[Letterbox],
        end: usize,
        width: u32,
        height: u32,
    ) -> Option<Vec<Detection>> {
        let found = self.decode_views(raw, &views[..end]);
        (end == views.len() || self.suffices(&found, width, height)).then_some(found)
    }

    /// The views that search only the regions around `faces` (a video's faces of the frame
    /// before), each at [`REGION_INPUT`]; `None` when they would hold as many pixels as a whole
    /// view or more (four faces or more), which then costs less.
    pub fn regions(&self, faces: &[BBox]) -> Option<Vec<Letterbox>> {
        (faces.len() * REGION_INPUT.pow(2) < INPUT_SIZE.pow(2))
            .then(|| faces.iter().map(|face| Letterbox::around(face, REGION_ZOOM, REGION_INPUT)).collect())
    }

    /// Whether the faces of the first pass over a `width x height` image make the other views
    /// unnecessary.
    pub fn suffices(&self, faces: &[Detection], width: u32, height: u32) -> bool {
        let long = width.max(height) as f32;
        faces.iter().any(|f| f.score >= SUFFICING_SCORE && f.bbox.width().max(f.bbox.height()) >= SUFFICING_SIZE * long)
    }

    /// Faces of every image of the batch from the raw output, each view's `[anchors * 17]`
    /// after the other.
    pub fn decode(&self, raw: &[f32], views: &[Vec<Letterbox>]) -> Vec<Vec<Detection>> {
        let mut rest = raw;
        views
            .iter()
            .map(|image_views| {
                let raws: Vec<&[f32]> = image_views
                    .iter()
                    .map(|view| {
                        let (own, after) = rest.split_at(view.outputs());
                        rest = after;
                        own
                    })
                    .collect();
                decode(&raws, image_views, &self.config.decode)
            })
            .collect()
    }

    /// Faces of one image from the raw output of `views`.
    pub fn decode_views(&self, raw: &[f32], views: &[Letterbox]) -> Vec<Detection> {
        self.decode(raw, &[views.to_vec()]).remove(0)
    }

    /// Detect every face of each image (a native, blocking read of the device).
    pub fn detect_batch(&self, images: &[&RgbImage], device: &Device) -> Vec<Vec<Detection>> {
        if images.is_empty() {
            return Vec::new();
        }
        if self.config.first_view_suffices || self.config.tiles_only_without_large_face {
            return images.iter().map(|image| self.detect_staged(image, device)).collect();
        }
        let batch = self.inputs(images, device);
        self.decode(&read(self.model.forward(batch.input)), &batch.views)
    }
}

fn read(output: Tensor<3>) -> Vec<f32> {
    output.into_data().convert::<f32>().try_into_vec::<f32>().expect("the detector outputs floats")
}

impl Detector {
    /// A staged search ([`Self::pass_ends`]): the first views, then the next ones if need be.
    fn detect_staged(&self, image: &RgbImage, device: &Device) -> Vec<Detection> {
        let views = self.config.views(image.width(), image.height());
        let mut raw = Vec::new();
        let mut start = 0;
        for end in self.pass_ends(&views) {
            raw.extend(read(self.model.forward(self.view_inputs(image, &views[start..end], device))));
            if let Some(found) = self.answer_after(&raw, &views, end, image.width(), image.height()) {
                return found;
            }
            start = end;
        }
        unreachable!("the last pass ends at the last view")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_staged_search_stops_after_the_first_view_the_zoom_views_or_at_the_end() {
        let device = Device::flex();
        let ends = |config: DetectorConfig, width: u32| {
            let detector = Detector::new(BlazeFaceConfig::new().init(&device), config);
            detector.pass_ends(&detector.config.views(width, width))
        };
        // 1,200 pixels wide: two zoom views and four tiles.
        let all = DetectorConfig::default();
        assert_eq!(ends(all.clone(), 1200), [6]);
        assert_eq!(ends(all.clone().answering_photos(), 1200), [2, 6]);
        assert_eq!(ends(all.clone().answering_video(), 1200), [1, 2]);
        assert_eq!(
            ends(DetectorConfig { first_view_suffices: true, ..all.clone().answering_photos() }, 1200),
            [1, 2, 6]
        );
        // A small photo has no tiles: the zoom views are every view.
        assert_eq!(ends(all.answering_photos(), 200), [2]);
    }

    #[test]
    fn regions_are_searched_only_while_they_cost_less_than_a_whole_view() {
        let detector = Detector::new(BlazeFaceConfig::new().init(&Device::flex()), DetectorConfig::default());
        let face = |x: f32| BBox { x_min: x, y_min: 100.0, x_max: x + 40.0, y_max: 150.0 };
        let three = detector.regions(&[face(0.0), face(100.0), face(200.0)]).expect("three regions");
        assert_eq!(three.len(), 3);
        // 2.5 times the longer side (50 px), centred on the face, seen at 128.
        assert_eq!(three[1].window(), BBox { x_min: 57.5, y_min: 62.5, x_max: 182.5, y_max: 187.5 });
        assert_eq!((three[1].input, three[1].tile), (REGION_INPUT, true));
        assert_eq!(detector.regions(&[face(0.0), face(100.0), face(200.0), face(300.0)]), None);
    }
}
