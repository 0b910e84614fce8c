//! One bilinear sampler for every geometric step: letterboxing for the detector, and the
//! similarity transform that aligns a face for a backbone.
//!
//! Sampling follows TF's `resizeBilinear` (no corner alignment, no half-pixel offset) so that
//! a pure scale reproduces the reference runtime's resize exactly: pixels outside the source
//! read as black (what TF's zero padding gives), and reads past the edge of the canvas that TF
//! resized (the padded square) are clamped to it, as TF clamps them.

use image::RgbImage;

/// An affine map from output pixel `(x, y)` to source position:
/// `src = (a * x + b * y + c, d * x + e * y + f)`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Affine {
    pub a: f32,
    pub b: f32,
    pub c: f32,
    pub d: f32,
    pub e: f32,
    pub f: f32,
}

impl Affine {
    /// Output pixel -> source: scale then shift.
    pub fn scale_shift(scale: f32, shift_x: f32, shift_y: f32) -> Self {
        Self { a: scale, b: 0.0, c: shift_x, d: 0.0, e: scale, f: shift_y }
    }

    pub fn apply(&self, x: f32, y: f32) -> (f32, f32) {
        (self.a * x + self.b * y + self.c, self.d * x + self.e * y + self.f)
    }
}

/// The source rectangle `[x0, x1) x [y0, y1)` that reads are clamped to; it may extend past
/// the image (letterbox padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Canvas {
    pub x0: i64,
    pub y0: i64,
    pub x1: i64,
    pub y1: i64,
}

impl Canvas {
    pub fn of(image: &RgbImage) -> Self {
        Self { x0: 0, y0: 0, x1: image.width() as i64, y1: image.height() as i64 }
    }
}

/// Sample `size.0 x size.1` pixels of `image` through `map`, as planar RGB `[3, h, w]`
/// floats on 0..=255. Without a canvas, everything outside the image is black.
pub fn sample_planar(image: &RgbImage, map: &Affine, size: (usize, usize), canvas: Option<Canvas>) -> Vec<f32> {
    let (out_w, out_h) = size;
    let (w, h) = (image.width() as i64, image.height() as i64);
    let raw = image.as_raw();
    let plane = out_w * out_h;
    let mut out = vec![0.0f32; 3 * plane];
    let clamp = |x: i64, y: i64| match canvas {
        Some(k) => (x.clamp(k.x0, k.x1 - 1), y.clamp(k.y0, k.y1 - 1)),
        None => (x, y),
    };
    let row = (w * 3) as usize;
    let at = |x: i64, y: i64| ((y * w + x) * 3) as usize;
    let rgb = |i: usize| [raw[i] as f32, raw[i + 1] as f32, raw[i + 2] as f32];
    // A source pixel's three channels (black outside the image), looked up once for all three.
    let pixel = |x: i64, y: i64| -> [f32; 3] {
        let (x, y) = clamp(x, y);
        if x < 0 || y < 0 || x >= w || y >= h { [0.0; 3] } else { rgb(at(x, y)) }
    };
    // Where all four neighbours lie inside both the image and the canvas, no clamp moves them
    // and none is black: they are read directly (the same values, most of a detector view).
    let k = canvas.unwrap_or(Canvas::of(image));
    let (first_x, first_y) = (k.x0.max(0), k.y0.max(0));
    let (last_x, last_y) = (k.x1.min(w) - 1, k.y1.min(h) - 1);
    for oy in 0..out_h {
        for ox in 0..out_w {
            let (sx, sy) = map.apply(ox as f32, oy as f32);
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            let [p00, p10, p01, p11] = if x0 >= first_x && y0 >= first_y && x0 < last_x && y0 < last_y {
                let i = at(x0, y0);
                [rgb(i), rgb(i + 3), rgb(i + row), rgb(i + row + 3)]
            } else {
                [pixel(x0, y0), pixel(x0 + 1, y0), pixel(x0, y0 + 1), pixel(x0 + 1, y0 + 1)]
            };
            for c in 0..3 {
                let top = p00[c] + (p10[c] - p00[c]) * fx;
                let bottom = p01[c] + (p11[c] - p01[c]) * fx;
                out[c * plane + oy * out_w + ox] = top + (bottom - top) * fy;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_map_reproduces_pixels_and_outside_is_black() {
        let image = RgbImage::from_fn(4, 3, |x, y| image::Rgb([x as u8 * 10, y as u8 * 20, 7]));
        let out = sample_planar(&image, &Affine::scale_shift(1.0, 0.0, 0.0), (4, 3), None);
        assert_eq!(out[2 * 4 + 3], 30.0, "R at (3, 2)");
        assert_eq!(out[12 + 2 * 4 + 3], 40.0, "G at (3, 2)");
        let shifted = sample_planar(&image, &Affine::scale_shift(1.0, -1.0, 0.0), (4, 3), None);
        assert_eq!(shifted[24], 0.0, "column -1 is outside: black");
    }

    #[test]
    fn upscale_interpolates_and_clamps_like_tf_resize() {
        // TF's legacy resize maps output x to input x * in/out: a 2x upscale of [0, 100] is
        // [0, 50, 100, 100], the last sample reading past the edge and clamped to it.
        let image = RgbImage::from_fn(2, 1, |x, _| image::Rgb([x as u8 * 100, 0, 0]));
        let map = Affine::scale_shift(0.5, 0.0, 0.0);
        let out = sample_planar(&image, &map, (4, 1), Some(Canvas::of(&image)));
        assert_eq!(&out[..4], &[0.0, 50.0, 100.0, 100.0]);
        let unclamped = sample_planar(&image, &map, (4, 1), None);
        assert_eq!(unclamped[3], 50.0, "without a canvas the pixel past the edge is black");
    }
}
