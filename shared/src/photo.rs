//! Turning untrusted image bytes into an upright RGB picture, with hard caps on size.
//!
//! The format is sniffed from the content (never from a file name), the EXIF orientation of
//! phone photos is applied, and every colour model (grayscale, CMYK JPEG, 16-bit PNG, alpha)
//! ends as 8-bit RGB. Width, height and decoder memory are capped before any pixel is
//! allocated, so a decompression bomb is refused instead of exhausting memory.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};

/// The largest photo file read: a 48-megapixel JPEG is about 20 MB. Checked before a file is
/// read, so that a huge file costs nothing.
pub const MAX_PHOTO_BYTES: usize = 40_000_000;

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
    #[error("a frame inside the image is larger than the image itself says it is (a damaged or crafted file)")]
    FrameTooLarge,
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
    // The size its header states, read without a decoder: a decoder may refuse a huge image
    // with a vaguer error first (in WebAssembly's 32-bit memory, "not an image" or no size).
    if let Ok(size) = imagesize::blob_size(bytes) {
        let side = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        check_size(side(size.width), side(size.height), &limits)?;
    }
    let mut decoder = reader.into_decoder().map_err(classify)?;
    let (width, height) = decoder.dimensions();
    check_size(width, height, &limits)?;
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(limits.max_side);
    image_limits.max_image_height = Some(limits.max_side);
    image_limits.max_alloc = Some(limits.max_alloc);
    decoder.set_limits(image_limits).map_err(classify)?;
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut picture = DynamicImage::from_decoder(decoder).map_err(classify)?;
    picture.apply_orientation(orientation);
    Ok(picture.into_rgb8())
}

/// The JPEG decoder fills a truncated file's missing rows with grey instead of failing, so
/// walk the file's segments from its start to its end-of-image marker: a file that ends first
/// is truncated. What follows the end marker is not the image's (phones append the video of a
/// "motion photo" there) and is not read, even when it holds bytes that look like markers.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    const SOS: u8 = 0xDA;
    const EOI: u8 = 0xD9;
    let standalone = |m: u8| (0xD0..=0xD8).contains(&m) || m == 0x01;
    let mut at = 2; // after the start-of-image marker
    loop {
        // Bytes between segments are tolerated, as libjpeg does; markers may be padded by 0xFF.
        let Some(skip) = bytes.get(at..).and_then(|rest| rest.iter().position(|b| *b == 0xFF)) else { return false };
        at += skip;
        while bytes.get(at) == Some(&0xFF) {
            at += 1;
        }
        let Some(&marker) = bytes.get(at) else { return false };
        at += 1;
        match marker {
            EOI => return true,
            m if standalone(m) => continue,
            _ => {}
        }
        let Some(len) = bytes.get(at..at + 2).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))) else {
            return false;
        };
        at += len;
        if marker == SOS {
            // Entropy-coded data: 0xFF is escaped as FF 00, and restart markers sit inside it;
            // any other marker ends it.
            loop {
                let Some(next) = bytes.get(at..).and_then(|rest| rest.iter().position(|b| *b == 0xFF)) else {
                    return false;
                };
                at += next;
                match bytes.get(at + 1) {
                    None => return false,
                    Some(0x00) | Some(0xD0..=0xD7) => at += 2,
                    Some(_) => break,
                }
            }
        }
    }
}

fn classify(error: image::ImageError) -> PhotoError {
    match error {
        image::ImageError::Unsupported(_) => PhotoError::NotAnImage,
        // The image's own size has been checked: only a frame larger than it gets here.
        image::ImageError::Limits(_) => PhotoError::FrameTooLarge,
        other => PhotoError::Corrupt(other.to_string()),
    }
}

/// An image of `width` x `height` pixels within `limits`.
fn check_size(width: u32, height: u32, limits: &DecodeLimits) -> Result<(), PhotoError> {
    if width == 0 || height == 0 {
        return Err(PhotoError::NoPixels);
    }
    if width.max(height) > limits.max_side || u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(PhotoError::TooLarge { width, height, max_side: limits.max_side, max_pixels: limits.max_pixels });
    }
    Ok(())
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
    fn a_complete_jpeg_with_data_after_its_end_marker_is_accepted() {
        // As phones write "motion photos": the video follows the picture's end marker, and its
        // bytes may hold anything, marker-like pairs included.
        let whole = jpeg(48, 40);
        let mut state = 7u64;
        let mut random = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as u8
        };
        for trial in 0..200 {
            let mut file = whole.clone();
            let len = 1 + (trial * 37) % 3000;
            file.extend((0..len).map(|i| match i % 97 {
                0 => 0xFF,
                1 => [0xDA, 0xD9, 0xD8, 0x00][trial % 4],
                _ => random(),
            }));
            let decoded = decode(&file, DecodeLimits::default()).unwrap_or_else(|e| panic!("trial {trial}: {e}"));
            assert_eq!(decoded.dimensions(), (48, 40));
        }
        // Cut anywhere before its end marker, it is still refused.
        for cut in (4..whole.len() - 1).step_by(13) {
            assert!(
                matches!(decode(&whole[..cut], DecodeLimits::default()), Err(PhotoError::Corrupt(_))),
                "cut at {cut}"
            );
        }
        let phone = fixture("exif_rotated.jpg");
        let mut motion = phone.clone();
        motion.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 2, 3, 4, 5, 6, 0xFF]);
        assert_eq!(decode(&motion, DecodeLimits::default()).unwrap().dimensions(), (200, 160));
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

    /// A 2x2 picture in `format`.
    fn encoded(format: image::ImageFormat) -> Vec<u8> {
        let image = RgbImage::from_fn(2, 2, |x, y| Rgb([x as u8, y as u8, 9]));
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn an_image_too_large_is_named_by_its_size_in_every_format() {
        let too_large = |bytes: &[u8], side: u32, what: &str| match decode(bytes, DecodeLimits::default()) {
            Err(e @ PhotoError::TooLarge { width, height, .. }) if (width, height) == (side, side) => {
                assert!(e.to_string().contains(&format!("{side}x{side}")), "{what}: {e}")
            }
            other => panic!("{what}: expected {side}x{side} too large, got {other:?}"),
        };
        let mut bmp = encoded(image::ImageFormat::Bmp);
        bmp[18..22].copy_from_slice(&60_000i32.to_le_bytes());
        bmp[22..26].copy_from_slice(&60_000i32.to_le_bytes());
        too_large(&bmp, 60_000, "BMP");
        // A lossless WebP's 14-bit width and height, 16384 each: its decoder says "no pixels".
        let mut webp = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
            .write_image(&[7; 12], 2, 2, image::ExtendedColorType::Rgb8)
            .unwrap();
        let bits = u32::from_le_bytes(webp[21..25].try_into().unwrap());
        webp[21..25].copy_from_slice(&((bits & 0xF000_0000) | 16_383 | (16_383 << 14)).to_le_bytes());
        too_large(&webp, 16_384, "WebP");
    }

    #[test]
    fn a_gif_frame_larger_than_its_screen_is_named_as_such() {
        let mut gif = encoded(image::ImageFormat::Gif);
        let frame = gif.iter().position(|b| *b == 0x2C).unwrap();
        gif[frame + 5..frame + 7].copy_from_slice(&20_000u16.to_le_bytes());
        gif[frame + 7..frame + 9].copy_from_slice(&20_000u16.to_le_bytes());
        let err = decode(&gif, DecodeLimits::default()).unwrap_err();
        assert!(matches!(err, PhotoError::FrameTooLarge), "{err:?}");
        assert!(!err.to_string().contains("0x0"), "{err}");
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
