//! `export` (a run's final model as one versioned file) and `predict` (photos -> JSON lines).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::prelude::*;
use facemtl::backbone::BackboneKind;
use facemtl::compact;
use facemtl::detect::{BBox, DetectorConfig};
use facemtl::mtl::{LossWeighting, MtlHead, MtlModel, WeightingKind};
use facemtl::pipeline::{Face, FacePipeline};
use facemtl::predict::{Attributes, attributes, raw_outputs};
use facemtl::weights::{self, Header};
use serde::Serialize;

use crate::cache::Cache;
use crate::data::utkface::Protocol;
use crate::files::write_atomic;
use crate::models;
use crate::output::JsonLines;
use crate::train::{DatasetName, Evaluation, RunResult, TrainConfig};

/// What the app's educator panel shows of a model's training, written beside the model file as
/// `<name>.report.json`: every epoch's metrics row and the test split's group figures.
#[derive(Serialize)]
struct TrainingReport<'a> {
    rows: Vec<crate::train::MetricRow>,
    groups: &'a crate::groups::GroupFigures,
    epochs: usize,
}

/// A finished run's final model (after Early Freeze, each part at its best epoch), rounded to
/// the half precision its model file holds: half the download, the same predictions to a few
/// test faces (the figures are measured again, see [`export`]).
pub struct FinishedRun {
    dir: PathBuf,
    config: TrainConfig,
    result: RunResult,
    pub model: MtlModel,
}

impl FinishedRun {
    pub fn read(dir: &Path) -> Result<Self> {
        let config: TrainConfig =
            serde_json::from_str(&fs::read_to_string(dir.join("config.json")).context("not a run directory")?)?;
        let result: RunResult =
            serde_json::from_str(&fs::read_to_string(dir.join("result.json")).context("the run has not finished")?)?;
        let model = crate::train::load_model(&config, &dir.join("last.bpk"), &Device::flex())?;
        let model = MtlModel { head: compact::half(model.head), backbone: model.backbone.map(compact::half), ..model };
        Ok(FinishedRun { dir: dir.to_path_buf(), config, result, model })
    }

    /// Write the model file with its test `metrics`, and its training report beside it.
    pub fn write(self, out: &Path, metrics: Vec<(String, f64)>) -> Result<Header> {
        let config = &self.config;
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
            backbone_len: None,
        };
        let bytes = weights::export(self.model.head, self.model.backbone, header)?;
        if let Some(parent) = out.parent() {
            fs::create_dir_all(parent)?;
        }
        write_atomic(out, &bytes)?;
        let report = TrainingReport {
            rows: crate::train::read_metrics(&self.dir.join("metrics.csv"))?,
            groups: &self.result.test_groups,
            epochs: self.result.epochs,
        };
        write_atomic(&out.with_extension("report.json"), serde_json::to_string(&report)?.as_bytes())?;
        Ok(weights::read_header(&bytes)?.0)
    }
}

/// Write the final model of `run_dir` and its training report, with the test figures of the
/// file's half-precision parameters on the run's test split in `data_dir`.
pub fn export(cache: &Cache, run_dir: &Path, out: &Path, data_dir: &Path) -> Result<Header> {
    let run = FinishedRun::read(run_dir)?;
    let (evaluation, _) =
        evaluate_on_test(cache, &Device::flex(), &run.model, run.config.backbone, &run.config, data_dir)?;
    let metrics: Vec<(String, f64)> = run
        .config
        .tasks()
        .iter()
        .zip(&evaluation.metrics)
        .map(|(t, m)| (if t.is_regression() { "age_mae".to_string() } else { format!("{}_accuracy", t.name()) }, *m))
        .collect();
    for ((name, half), full) in metrics.iter().zip(&run.result.test.metrics) {
        eprintln!("test {name}: {half:.4} in half precision ({full:.4} as trained)");
    }
    run.write(out, metrics)
}

/// `model`'s losses and metrics on the test split of `config`'s data set, and the faces counted.
fn evaluate_on_test(
    cache: &Cache,
    device: &Device,
    model: &MtlModel,
    backbone: BackboneKind,
    config: &TrainConfig,
    data_dir: &Path,
) -> Result<(Evaluation, usize)> {
    let splits = config.load_splits(data_dir)?;
    let pipeline = models::pipeline(cache, backbone, device)?;
    let test: Vec<&crate::data::Sample> = splits.test.iter().collect();
    let tasks = config.tasks();
    // Cached features belong to the pretrained backbone; a fine-tuned one reads crops.
    let batch = if model.backbone.is_some() {
        crate::train::crop_batch(&splits.test, &crate::crops::collect(&pipeline, &test), tasks, device)
    } else {
        crate::train::batch(&splits.test, &crate::features::extract(cache, &pipeline, &test)?, tasks, device)
    };
    Ok((crate::train::evaluate(model, &batch, tasks), batch.len()))
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
    let weighting = LossWeighting::new(WeightingKind::Average, header.tasks.len(), 0.0, device);
    let model = MtlModel { head, weighting, backbone };
    let (evaluation, faces) = evaluate_on_test(cache, device, &model, header.backbone, config, data_dir)?;
    let report: Vec<_> = header
        .tasks
        .iter()
        .zip(evaluation.losses.iter().zip(&evaluation.metrics))
        .map(|(t, (loss, metric))| serde_json::json!({ "task": t.name(), "loss": loss, "metric": metric, "faces": faces }))
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

/// Print one JSON line per face (or per unreadable file / file without a face); stops quietly
/// when the reader closes the pipe.
pub fn predict(cache: &Cache, device: &Device, model_file: &Path, inputs: &[PathBuf]) -> Result<()> {
    let bytes = fs::read(model_file).with_context(|| format!("cannot read the model {}", model_file.display()))?;
    let weights::Model { header, head, backbone } = weights::load(&bytes, None, device)?;
    let mut pipeline = models::pipeline(cache, header.backbone, device)?;
    if let Some(backbone) = backbone {
        pipeline.backbone = backbone;
    }
    let mut out = JsonLines::stdout();
    for path in expand(inputs) {
        let file = path.display().to_string();
        let faces = match predict_photo(&pipeline, &header, &head, &path) {
            Ok(faces) => faces,
            Err(error) => {
                if !out.write(&ErrorLine { file: &file, error })? {
                    return Ok(());
                }
                continue;
            }
        };
        for (i, (face, attributes)) in faces.into_iter().enumerate() {
            let line =
                FaceLine { file: &file, face: i, score: face.detection.score, bbox: face.detection.bbox, attributes };
            if !out.write(&line)? {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Every face of the photo at `path` with its attributes, or why there are none.
fn predict_photo(
    pipeline: &FacePipeline,
    header: &Header,
    head: &MtlHead,
    path: &Path,
) -> Result<Vec<(Face, Attributes)>, String> {
    let image = models::read_photo(path)?;
    let faces = pipeline.faces(&image);
    if faces.is_empty() {
        return Err("no face found".into());
    }
    let flat: Vec<f32> = faces.iter().flat_map(|f| f.features.iter().copied()).collect();
    let features =
        Tensor::from_data(TensorData::new(flat, [faces.len(), header.backbone.feature_dim()]), &pipeline.device);
    let predicted = attributes(header, &raw_outputs(head, features), faces.len()).map_err(|e| e.to_string())?;
    Ok(faces.into_iter().zip(predicted).collect())
}
