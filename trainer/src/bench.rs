//! `facemtl bench`: the detection rate on the full data sets, the pipeline's speed, and the
//! activation caches' build time and size: the figures of BENCHMARKS.md.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use burn::prelude::*;
use clap::Subcommand;
use facemtl::backbone::BackboneKind;
use facemtl::detect::Detector;
use facemtl::photo::{self, DecodeLimits};
use facemtl::pipeline::FacePipeline;
use serde::Serialize;

use crate::cache::Cache;
use crate::files::write_json;
use crate::models::{self, DetectorArgs};
use crate::progress::progress;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Share of all UTKFace and CelebA-subset images with exactly one face found and aligned.
    Detection {
        #[arg(long, env = "FACEMTL_DATA", default_value = "../shared/data")]
        data_dir: PathBuf,
        /// Where to write the JSON report (counts and every miss).
        #[arg(long, default_value = "bench/detection.json")]
        out: PathBuf,
        /// Images per forward pass.
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Use only the first N images of each data set (all by default).
        #[arg(long)]
        limit: Option<usize>,
        #[command(flatten)]
        detector: DetectorArgs,
    },
    /// Photos per second for decode + detect + align + backbone, per backbone.
    Speed {
        #[arg(long, env = "FACEMTL_DATA", default_value = "../shared/data")]
        data_dir: PathBuf,
        /// How many UTKFace photos to time.
        #[arg(long, default_value_t = 256)]
        photos: usize,
        #[arg(long, default_value = "bench/speed.json")]
        out: PathBuf,
    },
    /// Build the activation caches of partial fine-tuning for every K asked, in one pass over
    /// the data set's faces: a JSON line of the build time and of each cache's size on disk.
    Activations {
        /// Tuned blocks (repeat the flag for several).
        #[arg(long = "tune-blocks", value_name = "K", required = true)]
        tuned: Vec<usize>,
        /// The data set (and `--limit`) as `train` takes it.
        #[command(flatten)]
        config: crate::train::TrainConfig,
        #[arg(long, env = "FACEMTL_DATA", default_value = "../shared/data")]
        data_dir: PathBuf,
    },
}

pub fn run(command: BenchCommand, cache: &Cache, device: &Device, backend: &str) -> Result<()> {
    match command {
        BenchCommand::Detection { data_dir, out, batch, limit, detector } => {
            detection(cache, device, backend, &data_dir, &out, batch, limit, &detector)
        }
        BenchCommand::Speed { data_dir, photos, out } => speed(cache, device, backend, &data_dir, photos, &out),
        BenchCommand::Activations { tuned, config, data_dir } => {
            activations(cache, device, backend, &tuned, &config, &data_dir)
        }
    }
}

/// See [`BenchCommand::Activations`].
fn activations(
    cache: &Cache,
    device: &Device,
    backend: &str,
    tuned: &[usize],
    config: &crate::train::TrainConfig,
    data_dir: &Path,
) -> Result<()> {
    let set = config.load(data_dir)?;
    let samples: Vec<&crate::data::Sample> = set.all().collect();
    let pipeline = crate::models::pipeline(cache, config.backbone, device)?;
    let started = std::time::Instant::now();
    let stores = crate::faces::activations::extract_many(cache, &pipeline, &samples, tuned)?;
    let line = serde_json::json!({
        "data_set": set.name,
        "images": samples.len(),
        "faces": samples.iter().filter(|s| stores[0].has(s)).count(),
        "backend": backend,
        "seconds": started.elapsed().as_secs_f64(),
        "caches": stores.iter().map(|s| serde_json::json!({ "tuned_blocks": s.tuned, "bytes": s.size() })).collect::<Vec<_>>(),
    });
    println!("{line}");
    Ok(())
}

fn sorted_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg")))
        .collect();
    files.sort();
    Ok(files)
}

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
fn detection(
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

fn speed(cache: &Cache, device: &Device, backend: &str, data: &Path, count: usize, out: &Path) -> Result<()> {
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
