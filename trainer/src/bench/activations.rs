//! `facemtl bench activations`: the activation caches' build time and size.

use std::path::Path;

use anyhow::Result;
use burn::prelude::*;

use crate::cache::Cache;

/// See [`BenchCommand::Activations`].
pub fn activations(
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
