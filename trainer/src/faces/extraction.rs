//! What every per-face cache shares: the name of the pipeline that made it, how many faces go
//! through it at once, and the aligned crop of each photo's best face.

use anyhow::Result;
use facemtl::compact;
use facemtl::pipeline::FacePipeline;
use sha2::{Digest, Sha256};

use super::looks::Look;
use crate::data::Sample;

/// The cache format's version: part of every cache key.
const FORMAT: &str = "facemtl-features-v3";

/// Images per forward pass: the CPU backend is fastest one image at a time (BENCHMARKS.md),
/// GPUs want batches.
pub fn batch_size(device: &burn::prelude::Device) -> usize {
    if *device == burn::prelude::Device::flex() { 1 } else { 32 }
}

/// A key naming the preprocessing of a pipeline, for cache file names. The networks enter by
/// their parameters' values (their compact files), not their weight files' bytes, which change
/// with every conversion.
pub fn cache_key(pipeline: &FacePipeline) -> Result<String> {
    let kind = pipeline.kind();
    let mut hash = Sha256::new();
    hash.update(FORMAT);
    hash.update(compact::pack(pipeline.backbone()));
    hash.update(compact::pack(pipeline.detector_model()));
    hash.update(serde_json::to_vec(pipeline.detector_config())?);
    hash.update(serde_json::to_vec(pipeline.align_config())?);
    // Only when set, so that the caches of upright features from Burn's kernels keep their names.
    if pipeline.mirrors() {
        hash.update("test-time mirror");
    }
    if pipeline.embeds_packed() {
        hash.update("packed kernels");
    }
    let digest: String = hash.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect();
    Ok(format!("{}-{digest}", kind.name()))
}

/// The aligned crop (planar RGB on 0..=255 at the backbone's input size) of the best-scoring
/// face of each sample, its photo seen with `look`; `None` where the image is unreadable or has
/// no face.
pub fn best_face_crops(pipeline: &FacePipeline, samples: &[&Sample], look: Look) -> Vec<Option<Vec<f32>>> {
    let decoded: Vec<Option<image::RgbImage>> =
        samples.iter().map(|s| crate::models::read_photo(&s.file).ok().map(|i| look.apply(pipeline, i))).collect();
    let images: Vec<&image::RgbImage> = decoded.iter().flatten().collect();
    let mut detections = pipeline.detect(&images).into_iter().zip(&images);
    decoded
        .iter()
        .map(|image| {
            image.as_ref()?;
            let (faces, img) = detections.next()?;
            pipeline.align(img, &faces[..faces.len().min(1)]).pop()
        })
        .collect()
}
