//! Turning untrusted image bytes into an upright RGB picture, with hard caps on size.
//!
//! The format is sniffed from the content (never from a file name), the EXIF orientation of
//! phone photos is applied, and every colour model (grayscale, CMYK JPEG, 16-bit PNG, alpha)
//! ends as 8-bit RGB. Width, height and decoder memory are capped before any pixel is
//! allocated, so a decompression bomb is refused instead of exhausting memory.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};

/// Caps applied while decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DecodeLimits {
    /// Longest accepted side in pixels.
    pub max_side: u32,
    /// Largest accepted width x height.
    pub max_pixels: u64,
    /// Most memory the decoder may allocate, in bytes.
    pub max_alloc: u64,
}

impl Default for DecodeLimits {
    /// Room for any phone or DSLR photo (a 48-megapixel sensor is 8000 x 6000).
    fn default() -> Self {
        Self { max_side: 12_000, max_pixels: 50_000_000, max_alloc: 512 * 1024 * 1024 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is not an image in a supported format (JPEG, PNG, WebP, GIF, BMP)")]
    NotAnImage,
    #[error("the image is {width}x{height} pixels, over the limit of {max_side} px a side or {max_pixels} pixels; scale it down first")]
    TooLarge { width: u32, height: u32, max_side: u32, max_pixels: u64 },
    #[error("the image is corrupt or truncated: {0}")]
    Corrupt(String),
    #[error("the image has no pixels")]
    NoPixels,
}

/// Decode `bytes` into an upright 8-bit RGB image.
pub fn decode(bytes: &[u8], limits: DecodeLimits) -> Result<RgbImage, PhotoError> {
    if bytes.is_empty() {
        return Err(PhotoError::Empty);
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| PhotoError::Corrupt(e.to_string()))?;
    if reader.format().is_none() {
        return Err(PhotoError::NotAnImage);
    }
    let mut decoder = reader.into_decoder().map_err(|e| classify(e, &limits))?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(PhotoError::NoPixels);
    }
    if width.max(height) > limits.max_side || u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(PhotoError::TooLarge { width, height, max_side: limits.max_side, max_pixels: limits.max_pixels });
    }
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(limits.max_side);
    image_limits.max_image_height = Some(limits.max_side);
    image_limits.max_alloc = Some(limits.max_alloc);
    decoder.set_limits(image_limits).map_err(|e| classify(e, &limits))?;
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut picture = DynamicImage::from_decoder(decoder).map_err(|e| classify(e, &limits))?;
    picture.apply_orientation(orientation);
    Ok(picture.into_rgb8())
}

fn classify(error: image::ImageError, limits: &DecodeLimits) -> PhotoError {
    match error {
        image::ImageError::Unsupported(_) => PhotoError::NotAnImage,
        // Reached when a frame inside the file is larger than its header said.
        image::ImageError::Limits(_) => PhotoError::TooLarge {
            width: 0,
            height: 0,
            max_side: limits.max_side,
            max_pixels: limits.max_pixels,
        },
        other => PhotoError::Corrupt(other.to_string()),
    }
}
