//! `facemtl bench detection`: the share of each data set's images with exactly one face found.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use burn::prelude::*;
use facemtl::detect::Detector;
use serde::Serialize;

use super::sorted_images;
use crate::cache::Cache;
use crate::files::write_json;
use crate::models::{self, DetectorArgs};
use crate::progress::progress;

#[derive(Serialize)]
struct Miss {
    file: String,
    faces: usize,
    scores: Vec<f32>,
    width: u32,
    height: u32,
}

#[derive(Serialize)]
struct DataSetRate {
    dataset: String,
    images: usize,
    exactly_one: usize,
    none: usize,
    several: usize,
    unreadable: usize,
    rate: f64,
    seconds: f64,
    misses: Vec<Miss>,
}

#[derive(Serialize)]
struct DetectionReport {
    backend: String,
    detector: &'static str,
    config: facemtl::detect::DetectorConfig,
    datasets: Vec<DataSetRate>,
}

#[allow(clippy::too_many_arguments)]
pub fn detection(
    cache: &Cache,
    device: &Device,
    backend: &str,
    data: &Path,
    out: &Path,
    batch: usize,
    limit: Option<usize>,
    args: &DetectorArgs,
) -> Result<()> {
    let detector = models::detector(cache, device, args.config())?;
    let mut datasets = Vec::new();
    for (name, dir) in
        [("UTKFace", data.join("utkface/UTKFace")), ("CelebA subset", data.join("celeba/img_align_celeba_89x109"))]
    {
        let mut files = sorted_images(&dir)?;
        files.truncate(limit.unwrap_or(usize::MAX));
        let rate = detection_rate(&detector, device, name, &files, batch);
        eprintln!(
            "{name}: {}/{} exactly one face ({:.2} %), {} none, {} several, {} unreadable, {:.0} s",
            rate.exactly_one,
            rate.images,
            100.0 * rate.rate,
            rate.none,
            rate.several,
            rate.unreadable,
            rate.seconds
        );
        datasets.push(rate);
    }
    let report = DetectionReport {
        backend: backend.into(),
        detector: "BlazeFace full-range 256x256",
        config: detector.config.clone(),
        datasets,
    };
    write_json(out, &report)
}

/// How many of `files` hold exactly one face, none, several, or cannot be read, `batch`
/// photos per forward pass; every photo without exactly one face is listed.
fn detection_rate(detector: &Detector, device: &Device, name: &str, files: &[PathBuf], batch: usize) -> DataSetRate {
    let started = Instant::now();
    let bar = progress(files.len() as u64, name);
    let mut rate = DataSetRate {
        dataset: name.into(),
        images: files.len(),
        exactly_one: 0,
        none: 0,
        several: 0,
        unreadable: 0,
        rate: 0.0,
        seconds: 0.0,
        misses: Vec::new(),
    };
    for chunk in files.chunks(batch.max(1)) {
        let mut decoded = Vec::new();
        for path in chunk {
            match models::read_photo(path) {
                Ok(image) => decoded.push((path, image)),
                Err(_) => rate.unreadable += 1,
            }
        }
        let images: Vec<_> = decoded.iter().map(|(_, i)| i).collect();
        for ((path, image), faces) in decoded.iter().zip(detector.detect_batch(&images, device)) {
            match faces.len() {
                1 => rate.exactly_one += 1,
                0 => rate.none += 1,
                _ => rate.several += 1,
            }
            if faces.len() != 1 {
                rate.misses.push(Miss {
                    file: path.file_name().unwrap_or_default().to_string_lossy().into_owned(),
                    faces: faces.len(),
                    scores: faces.iter().map(|f| f.score).collect(),
                    width: image.width(),
                    height: image.height(),
                });
            }
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish();
    rate.seconds = started.elapsed().as_secs_f64();
    rate.rate = rate.exactly_one as f64 / rate.images.max(1) as f64;
    rate
}
