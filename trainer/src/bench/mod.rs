//! `facemtl bench`: the detection rate on the full data sets, the pipeline's speed, the
//! activation caches' build time and size, and training throughput: the figures of
//! BENCHMARKS.md. One module per benchmark; this one only dispatches.

mod activations;
mod detection;
mod speed;
mod train;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::prelude::*;
use clap::Subcommand;

use crate::cache::Cache;
use crate::models::DetectorArgs;

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
        config: Box<crate::train::TrainConfig>,
        #[arg(long, env = "FACEMTL_DATA", default_value = "../shared/data")]
        data_dir: PathBuf,
    },
    /// Training throughput (images per second after warm-up) on random inputs, and where one
    /// step's time goes: a JSON line.
    Train(train::TrainArgs),
}

pub fn run(command: BenchCommand, cache: &Cache, device: &Device, backend: &str) -> Result<()> {
    match command {
        BenchCommand::Detection { data_dir, out, batch, limit, detector } => {
            detection::detection(cache, device, backend, &data_dir, &out, batch, limit, &detector)
        }
        BenchCommand::Speed { data_dir, photos, out } => speed::speed(cache, device, backend, &data_dir, photos, &out),
        BenchCommand::Activations { tuned, config, data_dir } => {
            activations::activations(cache, device, backend, &tuned, &config, &data_dir)
        }
        BenchCommand::Train(args) => train::train(device, backend, &args),
    }
}

/// The JPEG files of `dir`, sorted.
fn sorted_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg")))
        .collect();
    files.sort();
    Ok(files)
}
