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
    #[error(
        "the image is {width}x{height} pixels, over the limit of {max_side} px a side or {max_pixels} pixels; scale it down first"
    )]
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
    let reader =
        ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| PhotoError::Corrupt(e.to_string()))?;
    match reader.format() {
        None => return Err(PhotoError::NotAnImage),
        Some(image::ImageFormat::Jpeg) if !jpeg_is_complete(bytes) => {
            return Err(PhotoError::Corrupt("the JPEG ends before its image data does (truncated file)".into()));
        }
        Some(_) => {}
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

/// The JPEG decoder fills a truncated file's missing rows with grey instead of failing, so
/// check for the end-of-image marker after the last start-of-scan. Inside scan data every 0xFF
/// byte is escaped, so the marker cannot appear there by chance; an EXIF thumbnail's own
/// markers come before the main image's scan.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let marker = |m: u8| bytes.windows(2).rposition(|w| w == [0xFF, m]);
    match (marker(0xDA), marker(0xD9)) {
        (Some(scan), Some(end)) => end > scan,
        _ => false,
    }
}

fn classify(error: image::ImageError, limits: &DecodeLimits) -> PhotoError {
    match error {
        image::ImageError::Unsupported(_) => PhotoError::NotAnImage,
        // Reached when a frame inside the file is larger than its header said.
        image::ImageError::Limits(_) => {
            PhotoError::TooLarge { width: 0, height: 0, max_side: limits.max_side, max_pixels: limits.max_pixels }
        }
        other => PhotoError::Corrupt(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, Rgb, codecs::png::PngEncoder};

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(name)).unwrap()
    }

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let image = RgbImage::from_fn(width, height, |x, y| Rgb([(x * 7) as u8, (y * 5) as u8, ((x + y) * 3) as u8]));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(&image).unwrap();
        out
    }

    fn png_rgb(width: u32, height: u32) -> Vec<u8> {
        let image = RgbImage::from_fn(width, height, |x, y| Rgb([x as u8, y as u8, 9]));
        let mut out = Vec::new();
        PngEncoder::new(&mut out).write_image(image.as_raw(), width, height, image::ExtendedColorType::Rgb8).unwrap();
        out
    }

    #[test]
    fn empty_and_non_image_bytes_are_refused() {
        assert!(matches!(decode(&[], DecodeLimits::default()), Err(PhotoError::Empty)));
        let text = b"name,age\nalice,30\n".repeat(20);
        assert!(matches!(decode(&text, DecodeLimits::default()), Err(PhotoError::NotAnImage)));
    }

    #[test]
    fn truncated_jpeg_and_corrupt_png_are_reported_as_corrupt() {
        let whole = jpeg(64, 64);
        let truncated = &whole[..whole.len() / 3];
        assert!(matches!(decode(truncated, DecodeLimits::default()), Err(PhotoError::Corrupt(_))));
        assert!(decode(&whole, DecodeLimits::default()).is_ok());

        let mut png = png_rgb(32, 32);
        let idat = png.windows(4).position(|w| w == b"IDAT").unwrap();
        for b in &mut png[idat + 8..idat + 24] {
            *b ^= 0x5a;
        }
        assert!(matches!(decode(&png, DecodeLimits::default()), Err(PhotoError::Corrupt(_))));
    }

    #[test]
    fn a_decompression_bomb_is_refused_from_its_header() {
        // A 20000 x 20000 PNG header: refused before a pixel is allocated.
        let mut png = png_rgb(1, 1);
        png[16..20].copy_from_slice(&20_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&20_000u32.to_be_bytes());
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        match decode(&png, DecodeLimits::default()) {
            Err(PhotoError::TooLarge { width: 20_000, height: 20_000, .. }) => {}
            other => panic!("expected TooLarge, got {other:?}"),
        }
        let small = DecodeLimits { max_side: 32, ..DecodeLimits::default() };
        assert!(matches!(decode(&jpeg(64, 16), small), Err(PhotoError::TooLarge { width: 64, height: 16, .. })));
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    #[test]
    fn grayscale_cmyk_and_16_bit_images_become_8_bit_rgb() {
        let gray = decode(&fixture("grayscale.jpg"), DecodeLimits::default()).unwrap();
        assert!(gray.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));

        // A face in CMYK: decoded to RGB with skin tones (red above blue), not inverted.
        let cmyk = decode(&fixture("cmyk.jpg"), DecodeLimits::default()).unwrap();
        let centre = (80..120).flat_map(|y| (80..120).map(move |x| (x, y)));
        let (r, b) = centre.fold((0u32, 0u32), |(r, b), (x, y)| {
            (r + u32::from(cmyk.get_pixel(x, y)[0]), b + u32::from(cmyk.get_pixel(x, y)[2]))
        });
        assert!(r > b + 1600 * 20, "skin should be redder than blue: R {r} B {b}");

        let deep = image::ImageBuffer::<Rgb<u16>, Vec<u16>>::from_fn(8, 4, |x, _| Rgb([65_535, 257 * x as u16, 0]));
        let mut png = Vec::new();
        // The encoder takes 16-bit samples as native-endian bytes.
        let samples: Vec<u8> = deep.as_raw().iter().flat_map(|v| v.to_ne_bytes()).collect();
        PngEncoder::new(&mut png).write_image(&samples, 8, 4, image::ExtendedColorType::Rgb16).unwrap();
        let decoded = decode(&png, DecodeLimits::default()).unwrap();
        assert_eq!(decoded.get_pixel(5, 2).0, [255, 5, 0]);
    }

    #[test]
    fn exif_orientation_is_applied() {
        // Stored 160 wide and 200 high with orientation 6: shown 200 wide and 160 high.
        let upright = decode(&fixture("exif_rotated.jpg"), DecodeLimits::default()).unwrap();
        assert_eq!(upright.dimensions(), (200, 160));
    }
}
