//! From raw BlazeFace outputs to faces: anchors, box and keypoint decoding, score threshold,
//! weighted non-maximum suppression, and the map back to the original image.

use serde::{Deserialize, Serialize};

use super::model::{INPUT_SIZE, NUM_REGRESSORS};

/// A point in pixels of the original image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

/// An axis-aligned box in pixels of the original image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BBox {
    pub x_min: f32,
    pub y_min: f32,
    pub x_max: f32,
    pub y_max: f32,
}

impl BBox {
    pub fn width(&self) -> f32 {
        self.x_max - self.x_min
    }

    pub fn height(&self) -> f32 {
        self.y_max - self.y_min
    }

    pub fn area(&self) -> f32 {
        self.width().max(0.0) * self.height().max(0.0)
    }

    pub fn iou(&self, other: &BBox) -> f32 {
        let inter = self.intersection(other);
        let union = self.area() + other.area() - inter;
        if union > 0.0 { inter / union } else { 0.0 }
    }

    /// The share of this box's area that lies inside `other`.
    pub fn inside(&self, other: &BBox) -> f32 {
        let area = self.area();
        if area > 0.0 { self.intersection(other) / area } else { 0.0 }
    }

    fn intersection(&self, other: &BBox) -> f32 {
        let inter = BBox {
            x_min: self.x_min.max(other.x_min),
            y_min: self.y_min.max(other.y_min),
            x_max: self.x_max.min(other.x_max),
            y_max: self.y_max.min(other.y_max),
        };
        if inter.width() > 0.0 && inter.height() > 0.0 { inter.area() } else { 0.0 }
    }
}

/// The six BlazeFace keypoints, in the subject's terms: right eye, left eye, nose tip, mouth
/// centre, right ear tragion, left ear tragion. The subject's right eye is on the image's left
/// in an upright, frontal photo.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Keypoints {
    pub right_eye: Point,
    pub left_eye: Point,
    pub nose: Point,
    pub mouth: Point,
    pub right_ear: Point,
    pub left_ear: Point,
}

/// One detected face, in the original image's pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub score: f32,
    pub bbox: BBox,
    pub keypoints: Keypoints,
}

/// Decoding thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DecodeConfig {
    /// Minimum face probability.
    pub min_score: f32,
    /// Boxes overlapping the best one by more than this IoU are merged into it.
    pub iou_threshold: f32,
    /// Boxes lying inside the best one by more than this share of their own area are merged
    /// into it too: a face that fills the frame also excites anchors on its halves, whose
    /// boxes sit inside the whole face's box with a small IoU. 1 disables it.
    pub containment: f32,
    /// Most faces returned per image (highest scores first).
    pub max_faces: usize,
    /// Merge overlapping candidates by score-weighted averaging (MediaPipe) rather than keep
    /// only the best one (classic NMS, what TF's `nonMaxSuppression` does).
    pub weighted: bool,
}

impl Default for DecodeConfig {
    /// MediaPipe's thresholds for this model (score 0.5, suppression 0.3); 100 faces is more
    /// than a 256x256 detector input can resolve.
    fn default() -> Self {
        Self { min_score: 0.5, iou_threshold: 0.3, containment: 0.3, max_faces: 100, weighted: true }
    }
}

/// A square window on the original image that the detector sees as its `input x input` input
/// (256 but for the regions a video follows faces in): a detector pixel `p` is original pixel
/// `p * scale - (pad_x, pad_y)`. Either the whole image centred on a square (its longer side
/// times a zoom-out factor), a tile of a large image, or a region around a followed face.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Letterbox {
    pub scale: f32,
    pub pad_x: f32,
    pub pad_y: f32,
    /// A tile cuts faces at its edges: only faces lying inside it are trusted.
    pub tile: bool,
    /// The side of the detector's input for this window.
    #[serde(default = "full_input")]
    pub input: usize,
}

fn full_input() -> usize {
    INPUT_SIZE
}

impl Letterbox {
    /// Centre a `width x height` image on a square, as the reference does (padding rounded down
    /// on the top/left side).
    pub fn for_size(width: u32, height: u32) -> Self {
        Self::zoomed_out(width, height, 1.0)
    }

    /// The same with a square `zoom` times larger than the image's longer side.
    pub fn zoomed_out(width: u32, height: u32, zoom: f32) -> Self {
        let side = (width.max(height) as f32 * zoom.max(1.0)).round() as u32;
        Self {
            scale: side as f32 / INPUT_SIZE as f32,
            pad_x: ((side - width) / 2) as f32,
            pad_y: ((side - height) / 2) as f32,
            tile: false,
            input: INPUT_SIZE,
        }
    }

    /// The square of side `side` whose top-left corner is original pixel `(x, y)`.
    pub fn tile(x: f32, y: f32, side: f32) -> Self {
        Self { scale: side / INPUT_SIZE as f32, pad_x: -x, pad_y: -y, tile: true, input: INPUT_SIZE }
    }

    /// The square `zoom` times the longer side of `face`, centred on it, seen at `input x input`
    /// (a multiple of 32, the coarser grid's stride). Only faces lying inside it are trusted,
    /// as in a tile.
    pub fn around(face: &BBox, zoom: f32, input: usize) -> Self {
        let side = face.width().max(face.height()).max(1.0) * zoom;
        let (cx, cy) = ((face.x_min + face.x_max) / 2.0, (face.y_min + face.y_max) / 2.0);
        Self { scale: side / input as f32, pad_x: side / 2.0 - cx, pad_y: side / 2.0 - cy, tile: true, input }
    }

    /// The window in original pixels.
    pub fn window(&self) -> BBox {
        let side = self.side();
        BBox { x_min: -self.pad_x, y_min: -self.pad_y, x_max: side - self.pad_x, y_max: side - self.pad_y }
    }

    /// Side of the square in original pixels.
    pub fn side(&self) -> f32 {
        self.scale * self.input as f32
    }

    /// How many values the detector gives for this window: 17 per anchor.
    pub fn outputs(&self) -> usize {
        anchor_count(self.input) * (1 + NUM_REGRESSORS)
    }

    fn to_original(self, x: f32, y: f32) -> Point {
        Point { x: x * self.scale - self.pad_x, y: y * self.scale - self.pad_y }
    }
}

/// The two grids of anchors: stride and anchors per cell.
const GRIDS: [(usize, usize); 2] = [(16, 2), (32, 6)];

/// How many anchors an `input x input` input has (896 at 256).
pub fn anchor_count(input: usize) -> usize {
    GRIDS.iter().map(|&(stride, per_cell)| (input / stride).pow(2) * per_cell).sum()
}

/// Anchor centres in detector pixels of an `input x input` input: the grid of stride 16 (two
/// per cell, 16x16 at 256) then the grid of stride 32 (six per cell), cell-major.
pub fn anchors(input: usize) -> Vec<Point> {
    let mut out = Vec::with_capacity(anchor_count(input));
    for (stride, per_cell) in GRIDS {
        let cells = input / stride;
        for gy in 0..cells {
            for gx in 0..cells {
                let centre = Point { x: stride as f32 * (gx as f32 + 0.5), y: stride as f32 * (gy as f32 + 0.5) };
                out.extend(std::iter::repeat_n(centre, per_cell));
            }
        }
    }
    out
}

/// Share of a box that must lie inside a tile for the tile's detection to count.
const TRUSTED_INSIDE_TILE: f32 = 0.95;

fn sigmoid(x: f32) -> f32 {
    // MediaPipe clips logits to +-100 before the sigmoid.
    1.0 / (1.0 + (-x.clamp(-100.0, 100.0)).exp())
}

/// A candidate in original-image pixels: box corners then the six keypoints.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    score: f32,
    coords: [f32; 16],
}

impl Candidate {
    fn bbox(&self) -> BBox {
        BBox { x_min: self.coords[0], y_min: self.coords[1], x_max: self.coords[2], y_max: self.coords[3] }
    }
}

/// Decode one image's raw outputs, one slice per view (`[anchors * 17]`: score logit then 16
/// regressors per anchor) with its letterbox, into faces in original-image pixels. Candidates of
/// every view go through one suppression, so a face seen in two views is reported once.
pub fn decode(raws: &[&[f32]], letterboxes: &[Letterbox], config: &DecodeConfig) -> Vec<Detection> {
    let stride = 1 + NUM_REGRESSORS;
    let mut candidates = Vec::new();
    for (raw, letterbox) in raws.iter().zip(letterboxes) {
        let anchors = anchors(letterbox.input);
        assert_eq!(raw.len(), anchors.len() * stride, "raw output does not match the anchors");
        candidates.extend(raw.chunks_exact(stride).zip(&anchors).filter_map(|(r, a)| {
            let score = sigmoid(r[0]);
            if score < config.min_score || !score.is_finite() {
                return None;
            }
            let (cx, cy, w, h) = (a.x + r[1], a.y + r[2], r[3], r[4]);
            let mut coords = [0.0; 16];
            coords[..4].copy_from_slice(&[cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]);
            for k in 0..6 {
                coords[4 + 2 * k] = a.x + r[5 + 2 * k];
                coords[5 + 2 * k] = a.y + r[6 + 2 * k];
            }
            for point in coords.chunks_exact_mut(2) {
                let p = letterbox.to_original(point[0], point[1]);
                (point[0], point[1]) = (p.x, p.y);
            }
            let candidate = Candidate { score, coords };
            if letterbox.tile && candidate.bbox().inside(&letterbox.window()) < TRUSTED_INSIDE_TILE {
                return None;
            }
            Some(candidate)
        }));
    }
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    weighted_nms(candidates, config).iter().map(to_detection).collect()
}

/// Non-maximum suppression, by default MediaPipe's weighted variant: the best remaining candidate absorbs every candidate that overlaps
/// it by more than the threshold, and the merged face is their score-weighted average (keeping
/// the best score). Averaging many anchors gives steadier boxes and keypoints than hard NMS.
fn weighted_nms(mut remaining: Vec<Candidate>, config: &DecodeConfig) -> Vec<Candidate> {
    let mut kept = Vec::new();
    while let Some(best) = remaining.first().copied() {
        if kept.len() == config.max_faces {
            break;
        }
        let best_box = best.bbox();
        let (overlapping, rest): (Vec<_>, Vec<_>) =
            remaining.into_iter().partition(|c| c.bbox().iou(&best_box) > config.iou_threshold);
        remaining = rest.into_iter().filter(|c| c.bbox().inside(&best_box) <= config.containment).collect();
        if !config.weighted {
            kept.push(best);
            continue;
        }
        let total: f32 = overlapping.iter().map(|c| c.score).sum();
        let mut merged = Candidate { score: best.score, coords: [0.0; 16] };
        for c in &overlapping {
            for (m, v) in merged.coords.iter_mut().zip(c.coords) {
                *m += v * c.score / total;
            }
        }
        kept.push(merged);
    }
    kept
}

fn to_detection(c: &Candidate) -> Detection {
    let p = |i: usize| Point { x: c.coords[i], y: c.coords[i + 1] };
    let (min, max) = (p(0), p(2));
    Detection {
        score: c.score,
        bbox: BBox { x_min: min.x, y_min: min.y, x_max: max.x, y_max: max.y },
        keypoints: Keypoints {
            right_eye: p(4),
            left_eye: p(6),
            nose: p(8),
            mouth: p(10),
            right_ear: p(12),
            left_ear: p(14),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_cover_both_grids_in_order() {
        let a = anchors(INPUT_SIZE);
        assert_eq!(a.len(), super::super::NUM_ANCHORS);
        assert_eq!((a[0].x, a[0].y), (8.0, 8.0));
        assert_eq!(a[0], a[1], "two anchors share each 16x16 cell");
        assert_eq!((a[2].x, a[2].y), (24.0, 8.0));
        assert_eq!((a[512].x, a[512].y), (16.0, 16.0));
        assert_eq!((a[895].x, a[895].y), (240.0, 240.0));
    }

    /// Raw output with no face but one at anchor `at`: every logit very negative, regressors 0.
    fn raw_face(anchors: &[Point], at: usize, logit: f32, size: f32, shift: f32) -> Vec<f32> {
        let mut raw = vec![0.0; anchors.len() * 17];
        raw.iter_mut().step_by(17).for_each(|l| *l = -50.0);
        raw[at * 17] = logit;
        raw[at * 17 + 1] = shift;
        raw[at * 17 + 3] = size;
        raw[at * 17 + 4] = size;
        raw
    }

    #[test]
    fn overlapping_candidates_merge_by_score_and_map_to_the_original_image() {
        let a = anchors(INPUT_SIZE);
        let mut raw = raw_face(&a, 100, 3.0, 40.0, 0.0);
        // A second, weaker candidate on the same anchor shifted by 4 px merges into the first.
        let second = raw_face(&a, 101, 1.0, 40.0, 4.0);
        raw[101 * 17..102 * 17].copy_from_slice(&second[101 * 17..102 * 17]);
        // A far-away face stays separate.
        let third = raw_face(&a, 800, 2.0, 60.0, 0.0);
        raw[800 * 17..801 * 17].copy_from_slice(&third[800 * 17..801 * 17]);

        let letterbox = Letterbox::for_size(512, 256);
        assert_eq!((letterbox.scale, letterbox.pad_x, letterbox.pad_y), (2.0, 0.0, 128.0));
        let faces = decode(&[&raw], &[letterbox], &DecodeConfig::default());
        assert_eq!(faces.len(), 2);
        let (s1, s2) = (sigmoid(3.0), sigmoid(1.0));
        let merged_cx = a[100].x + 4.0 * s2 / (s1 + s2);
        let first = &faces[0];
        assert_eq!(first.score, s1);
        assert!((first.bbox.x_min - (merged_cx - 20.0) * 2.0).abs() < 1e-3);
        assert!((first.bbox.y_min - ((a[100].y - 20.0) * 2.0 - 128.0)).abs() < 1e-3);
        assert!((first.bbox.width() - 80.0).abs() < 1e-3);
        assert!(faces[1].score < first.score);
    }

    #[test]
    fn nothing_above_threshold_gives_no_face_and_max_faces_caps() {
        let a = anchors(INPUT_SIZE);
        let none = vec![-10.0; a.len() * 17];
        assert!(decode(&[&none], &[Letterbox::for_size(10, 10)], &DecodeConfig::default()).is_empty());
        let mut raw = vec![-50.0; a.len() * 17];
        for cell in 0..64 {
            raw[(512 + cell * 6) * 17] = 5.0;
            raw[(512 + cell * 6) * 17 + 3] = 8.0;
            raw[(512 + cell * 6) * 17 + 4] = 8.0;
        }
        let config = DecodeConfig { max_faces: 30, ..DecodeConfig::default() };
        assert_eq!(decode(&[&raw], &[Letterbox::for_size(256, 256)], &config).len(), 30);
    }

    #[test]
    fn a_face_seen_at_two_zoom_levels_is_reported_once() {
        let a = anchors(INPUT_SIZE);
        // The same face: 40 px at anchor 100 with the image filling the square, and 20 px on the
        // matching spot of a square twice as large.
        let near = raw_face(&a, 100, 2.0, 40.0, 0.0);
        let letterboxes = [Letterbox::for_size(256, 256), Letterbox::zoomed_out(256, 256, 2.0)];
        assert_eq!(letterboxes[1].pad_x, 128.0);
        let (x, y) = ((a[100].x + 128.0) / 2.0, (a[100].y + 128.0) / 2.0);
        let far_anchor = a[..512].iter().position(|p| (p.x - x).abs() < 8.0 && (p.y - y).abs() < 8.0).unwrap();
        let mut far = raw_face(&a, far_anchor, 1.0, 20.0, 0.0);
        far[far_anchor * 17 + 1] = x - a[far_anchor].x;
        far[far_anchor * 17 + 2] = y - a[far_anchor].y;
        let faces = decode(&[&near, &far], &letterboxes, &DecodeConfig::default());
        assert_eq!(faces.len(), 1);
        assert!((faces[0].bbox.width() - 40.0).abs() < 1e-3);
    }

    #[test]
    fn iou_of_identical_disjoint_and_half_overlapping_boxes() {
        let b = BBox { x_min: 0.0, y_min: 0.0, x_max: 2.0, y_max: 2.0 };
        assert_eq!(b.iou(&b), 1.0);
        assert_eq!(b.iou(&BBox { x_min: 3.0, y_min: 0.0, x_max: 4.0, y_max: 1.0 }), 0.0);
        let half = BBox { x_min: 1.0, y_min: 0.0, x_max: 3.0, y_max: 2.0 };
        assert!((b.iou(&half) - 1.0 / 3.0).abs() < 1e-6);
    }
}
