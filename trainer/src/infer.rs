//! `export` (a run's final model as one versioned file) and `predict` (photos -> JSON lines).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::prelude::*;
use facemtl::detect::{BBox, DetectorConfig};
use facemtl::predict::{Attributes, attributes, raw_outputs};
use facemtl::weights::{self, Header};
use serde::Serialize;

use crate::cache::Cache;
use crate::data::utkface::Protocol;
use crate::models;
use crate::setup::write_atomic;
use crate::train::{DatasetName, RunResult, TrainConfig};

/// What the app's educator panel shows of a model's training, written beside the model file as
/// `<name>.report.json`: every epoch's metrics row and the test split's group figures.
#[derive(Serialize)]
struct TrainingReport<'a> {
    rows: Vec<crate::train::MetricRow>,
    groups: &'a crate::groups::GroupFigures,
    epochs: usize,
}

/// Write the final model of `run_dir` (after Early Freeze, each part at its best epoch), and
/// its training report beside it.
pub fn export(run_dir: &Path, out: &Path) -> Result<Header> {
    let config: TrainConfig =
        serde_json::from_str(&fs::read_to_string(run_dir.join("config.json")).context("not a run directory")?)?;
    let result: RunResult =
        serde_json::from_str(&fs::read_to_string(run_dir.join("result.json")).context("the run has not finished")?)?;
    let device = Device::flex();
    let model = crate::train::load_model(&config, &run_dir.join("last.bpk"), &device)?;
    let metrics = config
        .tasks()
        .iter()
        .zip(&result.test.metrics)
        .map(|(t, m)| (if t.is_regression() { "age_mae".to_string() } else { format!("{}_accuracy", t.name()) }, *m))
        .collect();
    let trained_on = match (config.dataset, config.protocol) {
        (DatasetName::Utkface, Protocol::Coral) => "UTKFace, CORAL protocol (ages 21-60)".to_string(),
        (DatasetName::Utkface, Protocol::AllAges) => {
            "UTKFace, all 23,707 faces (ages 1-116), seeded 80/10/10 split".into()
        }
        (DatasetName::Celeba, _) => crate::data::celeba::CAVEAT.to_string(),
    };
    let header = Header {
        format_version: weights::FORMAT_VERSION,
        backbone: config.backbone,
        tasks: config.tasks().to_vec(),
        shared: config.shared.clone(),
        head_hidden: config.head_hidden,
        age_scale: 40.0,
        age_offset: config.age_offset() as f32,
        detector: DetectorConfig::default(),
        align: config.backbone.align_config(),
        trained_on,
        metrics,
        payload_sha256: String::new(),
        payload_len: 0,
        backbone_len: None,
    };
    let bytes = weights::export(model.head, model.backbone, header)?;
    if let Some(parent) = out.parent() {
        fs::create_dir_all(parent)?;
    }
    write_atomic(out, &bytes)?;
    let report = TrainingReport {
        rows: crate::train::read_metrics(&run_dir.join("metrics.csv"))?,
        groups: &result.test_groups,
        epochs: result.epochs,
    };
    write_atomic(&out.with_extension("report.json"), serde_json::to_string(&report)?.as_bytes())?;
    Ok(weights::read_header(&bytes)?.0)
}

/// Evaluate a model file on the test split of the data set its tasks belong to, as configured
/// by `config` (data set, protocol, seed): per-task loss and metric, printed as JSON.
pub fn evaluate(
    cache: &Cache,
    device: &Device,
    model_file: &Path,
    config: &TrainConfig,
    data_dir: &Path,
) -> Result<()> {
    let bytes = fs::read(model_file).with_context(|| format!("cannot read the model {}", model_file.display()))?;
    let weights::Model { header, head, backbone } = weights::load(&bytes, None, device)?;
    if header.tasks != config.tasks() {
        anyhow::bail!("the model predicts {:?}, the data set {:?}", header.tasks, config.tasks());
    }
    let splits = config.load_splits(data_dir)?;
    let pipeline = models::pipeline(cache, header.backbone, device)?;
    let test: Vec<&crate::data::Sample> = splits.test.iter().collect();
    // Cached features belong to the pretrained backbone; a fine-tuned one reads crops.
    let batch = if backbone.is_some() {
        crate::train::crop_batch(&splits.test, &crate::crops::collect(&pipeline, &test), &header.tasks, device)
    } else {
        crate::train::batch(&splits.test, &crate::features::extract(cache, &pipeline, &test)?, &header.tasks, device)
    };
    let model = facemtl::mtl::MtlModel {
        head,
        weighting: facemtl::mtl::LossWeighting::new(
            facemtl::mtl::WeightingKind::Average,
            header.tasks.len(),
            0.0,
            device,
        ),
        backbone,
    };
    let evaluation = crate::train::evaluate(&model, &batch, &header.tasks);
    let report: Vec<_> = header
        .tasks
        .iter()
        .zip(evaluation.losses.iter().zip(&evaluation.metrics))
        .map(|(t, (loss, metric))| serde_json::json!({ "task": t.name(), "loss": loss, "metric": metric, "faces": batch.len() }))
        .collect();
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

#[derive(Serialize)]
struct FaceLine<'a> {
    file: &'a str,
    face: usize,
    score: f32,
    bbox: BBox,
    #[serde(flatten)]
    attributes: Attributes,
}

#[derive(Serialize)]
struct ErrorLine<'a> {
    file: &'a str,
    error: String,
}

/// Files named, and the images inside folders named.
fn expand(inputs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut files: Vec<PathBuf> = fs::read_dir(input)
                .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect())
                .unwrap_or_default();
            files.sort();
            out.extend(files);
        } else {
            out.push(input.clone());
        }
    }
    out
}

/// Print one JSON line per face (or per unreadable file / file without a face).
pub fn predict(cache: &Cache, device: &Device, model_file: &Path, inputs: &[PathBuf]) -> Result<()> {
    let bytes = fs::read(model_file).with_context(|| format!("cannot read the model {}", model_file.display()))?;
    let weights::Model { header, head, backbone } = weights::load(&bytes, None, device)?;
    let mut pipeline = models::pipeline(cache, header.backbone, device)?;
    if let Some(backbone) = backbone {
        pipeline.backbone = backbone;
    }
    for path in expand(inputs) {
        let file = path.display().to_string();
        let image = match models::read_photo(&path) {
            Ok(image) => image,
            Err(error) => {
                println!("{}", serde_json::to_string(&ErrorLine { file: &file, error })?);
                continue;
            }
        };
        let faces = pipeline.faces(&image);
        if faces.is_empty() {
            println!("{}", serde_json::to_string(&ErrorLine { file: &file, error: "no face found".into() })?);
            continue;
        }
        let dim = header.backbone.feature_dim();
        let flat: Vec<f32> = faces.iter().flat_map(|f| f.features.iter().copied()).collect();
        let features = Tensor::from_data(TensorData::new(flat, [faces.len(), dim]), device);
        let predicted = attributes(&header, &raw_outputs(&head, features), faces.len());
        for (i, (face, attributes)) in faces.iter().zip(predicted).enumerate() {
            let line =
                FaceLine { file: &file, face: i, score: face.detection.score, bbox: face.detection.bbox, attributes };
            println!("{}", serde_json::to_string(&line)?);
        }
    }
    Ok(())
}
