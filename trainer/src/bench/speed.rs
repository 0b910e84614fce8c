//! `facemtl bench speed`: photos per second through the whole face pipeline.

use std::fs;
use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use burn::prelude::*;
use facemtl::backbone::BackboneKind;
use facemtl::photo::{self, DecodeLimits};
use facemtl::pipeline::FacePipeline;
use serde::Serialize;

use super::sorted_images;
use crate::cache::Cache;
use crate::files::write_json;
use crate::models;

#[derive(Serialize)]
struct SpeedRow {
    backbone: BackboneKind,
    batch: usize,
    photos: usize,
    faces: usize,
    seconds: f64,
    photos_per_second: f64,
}

#[derive(Serialize)]
struct SpeedReport {
    backend: String,
    method: &'static str,
    rows: Vec<SpeedRow>,
}

pub fn speed(cache: &Cache, device: &Device, backend: &str, data: &Path, count: usize, out: &Path) -> Result<()> {
    let files: Vec<_> = sorted_images(&data.join("utkface/UTKFace"))?.into_iter().take(count).collect();
    let bytes: Vec<Vec<u8>> = files.iter().map(fs::read).collect::<Result<_, _>>()?;
    let mut rows = Vec::new();
    // faceres-deep is faceres's network with other weights: the same speed.
    for kind in [BackboneKind::Faceres, BackboneKind::Dlib] {
        let pipeline = models::pipeline(cache, kind, device)?;
        for batch in [1usize, 16] {
            // One untimed batch warms caches and lazily initialised kernels.
            run_pipeline(&pipeline, &bytes[..batch.min(bytes.len())], batch)?;
            let started = Instant::now();
            let faces = run_pipeline(&pipeline, &bytes, batch)?;
            let seconds = started.elapsed().as_secs_f64();
            let row = SpeedRow {
                backbone: kind,
                batch,
                photos: bytes.len(),
                faces,
                seconds,
                photos_per_second: bytes.len() as f64 / seconds,
            };
            eprintln!("{kind} batch {batch}: {:.1} photos/s ({} faces)", row.photos_per_second, faces);
            rows.push(row);
        }
    }
    let method = "release build; decode JPEG + detect (BlazeFace 256) + align + backbone forward, \
                  photos in memory, one untimed warm-up batch, wall time over all photos";
    write_json(out, &SpeedReport { backend: backend.into(), method, rows })
}

/// Decode, detect, align and embed `photos` in batches; returns the number of faces.
fn run_pipeline(pipeline: &FacePipeline, photos: &[Vec<u8>], batch: usize) -> Result<usize> {
    let mut faces = 0;
    for chunk in photos.chunks(batch) {
        let images: Vec<_> =
            chunk.iter().map(|b| photo::decode(b, DecodeLimits::default())).collect::<Result<_, _>>()?;
        let refs: Vec<_> = images.iter().collect();
        let crops: Vec<Vec<f32>> = images
            .iter()
            .zip(pipeline.detect(&refs))
            .flat_map(|(image, found)| pipeline.align(image, &found))
            .collect();
        faces += pipeline.features(&crops).len();
    }
    Ok(faces)
}
