//! `export` (a run's final model as one versioned file) and `predict` (photos -> JSON lines).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::prelude::*;
use facemtl::backbone::Tuned;
use facemtl::calibration::Calibration;
use facemtl::compact::{self, Precision};
use facemtl::detect::BBox;
use facemtl::model_file::{self, Header};
use facemtl::mtl::{MtlHead, TaskSpec};
use facemtl::pipeline::FacePipeline;
use facemtl::predict::Attributes;
use serde::Serialize;

use crate::cache::Cache;
use crate::calibrate::Outputs;
use crate::cross::Across;
use crate::data::{DataSet, HeldOut, Sample, Source};
use crate::faces::features::extract_seen;
use crate::faces::looks::Look;
use crate::files::{read_bounded, write_atomic};
use crate::models;
use crate::output::JsonLines;
use crate::train::{Evaluation, RunDir, RunResult, Split, TaskSelection, TrainConfig, evaluate};

/// The precisions a model file stores: the pretrained backbone's weights the model runs on
/// (with its tuned blocks), and the head's.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoredWeights {
    pub backbone: Precision,
    pub head: Precision,
}

/// What the app's educator panel shows of a model's training, written beside the model file as
/// `<name>.report.json`: every epoch's metrics row and the test split's group figures.
#[derive(Serialize)]
struct TrainingReport<'a> {
    rows: Vec<crate::train::MetricRow>,
    groups: &'a crate::groups::GroupFigures,
    epochs: usize,
}

/// A finished run's final network (after Early Freeze, each part at its best epoch), rounded to
/// the half precision its model file holds: half the download, the same predictions to a few
/// test faces (the figures are measured again, see [`export`]).
pub struct FinishedRun {
    run: RunDir,
    config: TrainConfig,
    tasks: Vec<TaskSpec>,
    result: RunResult,
    pub head: MtlHead,
    /// What the run tuned of the backbone, if anything.
    pub backbone: Option<Tuned>,
}

impl FinishedRun {
    pub fn read(dir: &Path) -> Result<Self> {
        let run = RunDir { root: dir.to_path_buf() };
        let config: TrainConfig =
            serde_json::from_str(&fs::read_to_string(dir.join("config.json")).context("not a run directory")?)?;
        let result: RunResult =
            serde_json::from_str(&fs::read_to_string(dir.join("result.json")).context("the run has not finished")?)?;
        let tasks = run.tasks(&config)?;
        let model = run.load_model(&config, "last.bpk", &Device::flex())?;
        Ok(FinishedRun {
            run,
            config,
            tasks,
            result,
            head: compact::half(model.head),
            backbone: model.backbone.map(compact::half),
        })
    }

    /// What the model file says it was trained on.
    fn trained_on(&self) -> Result<String> {
        Ok(self.config.source()?.description())
    }

    /// The model file's header for this run, its weights stored as `stored`.
    fn header(&self, stored: StoredWeights, metrics: Vec<(String, f64)>, calibration: Calibration) -> Result<Header> {
        let config = &self.config;
        Ok(Header {
            test_time_mirror: config.mirror,
            head_weights: stored.head,
            calibration,
            ..Header::for_head(
                config.backbone,
                stored.backbone,
                self.tasks.clone(),
                config.settings().widths(),
                self.trained_on()?,
                metrics,
            )
        })
    }

    /// What `predict` would run for this run's model with its backbone stored as `backbone`
    /// (its tuned part included, with the run's test-time mirror).
    fn pipeline(&self, cache: &Cache, backbone: Precision) -> Result<FacePipeline> {
        let pipeline = models::pipeline_at(cache, self.config.backbone, backbone, &Device::flex())?
            .with_mirror(self.config.mirror);
        let Some(tuned) = &self.backbone else { return Ok(pipeline) };
        let tuned = model_file::as_stored(tuned.clone(), backbone);
        let backbone = tuned.onto(pipeline.backbone()).map_err(anyhow::Error::msg)?;
        Ok(pipeline.with_backbone(backbone))
    }

    /// The run's model, as a file stores it exact and uncalibrated, read on `faces` of `set`
    /// (a data set it was not trained on) seen with `look`: its answers scored against the
    /// labels the data set has.
    pub fn across(&self, cache: &Cache, set: &DataSet, faces: &[Sample], look: Look) -> Result<Across> {
        let header = self.header(StoredWeights::default(), Vec::new(), Calibration::default())?;
        answers_across(cache, &self.pipeline(cache, Precision::Exact)?, (&self.head, &header), set, faces, look)
    }

    /// Write the model file with its test `metrics` and `calibration`, and its training report
    /// beside it.
    pub fn write(
        self,
        out: &Path,
        stored: StoredWeights,
        metrics: Vec<(String, f64)>,
        calibration: Calibration,
    ) -> Result<Header> {
        let header = self.header(stored, metrics, calibration)?;
        let bytes = model_file::export(self.head, self.backbone, header)?;
        if let Some(parent) = out.parent() {
            fs::create_dir_all(parent)?;
        }
        write_atomic(out, &bytes)?;
        let report = TrainingReport {
            rows: crate::train::read_metrics(&self.run.metrics())?,
            groups: &self.result.test_groups,
            epochs: self.result.epochs,
        };
        write_atomic(&out.with_extension("report.json"), serde_json::to_string(&report)?.as_bytes())?;
        Ok(model_file::read_header(&bytes)?.0)
    }
}

/// Write the final model of `run_dir` and its training report, with the test figures of the
/// parameters as the file stores them (`stored`), on the run's test split in `data_dir`, and
/// their calibration fitted on its validation split.
pub fn export(cache: &Cache, run_dir: &Path, out: &Path, stored: StoredWeights, data_dir: &Path) -> Result<Header> {
    if !matches!(stored.backbone, Precision::Exact | Precision::Int8) {
        anyhow::bail!("the pretrained backbone comes exact or in int8 (the two files `facemtl setup` writes)");
    }
    let run = FinishedRun::read(run_dir)?;
    let pipeline = run.pipeline(cache, stored.backbone)?;
    let head = compact::at_precision(run.head.clone(), stored.head);
    let set = run.config.load(data_dir)?;
    let (evaluation, _) = evaluate_on(cache, &pipeline, (&head, &run.tasks), &set, &set.test, Look::Clean)?;
    let calibration = Outputs::of(cache, &pipeline, &head, &run.tasks, &set, &set.val, Look::Clean)?.fit();
    let metrics: Vec<(String, f64)> =
        run.tasks.iter().zip(&evaluation.metrics).map(|(t, m)| (t.metric_name(), *m)).collect();
    for ((name, half), full) in metrics.iter().zip(&run.result.test.metrics) {
        eprintln!("test {name}: {half:.4} as exported ({full:.4} as trained)");
    }
    run.write(out, stored, metrics, calibration)
}

/// A head (with its tasks) on the features `pipeline` (the model's, tuned backbone and
/// test-time mirror included: what `predict` and the app compute) makes of `faces` of `set`,
/// their photos seen with `look`: per-task losses and metrics, and the split of features they
/// were measured on.
fn evaluate_on(
    cache: &Cache,
    pipeline: &FacePipeline,
    (head, tasks): (&MtlHead, &[TaskSpec]),
    set: &DataSet,
    faces: &[Sample],
    look: Look,
) -> Result<(Evaluation, Split)> {
    let labels = TaskSelection::new(tasks.to_vec(), &set.tasks);
    let photos: Vec<&Sample> = faces.iter().collect();
    let features = extract_seen(cache, pipeline, &photos, look)?;
    let split = Split::of_features(faces, &[&features], &labels, pipeline.device());
    Ok((evaluate(head, None, &split, tasks), split))
}

/// How `eval` reads a data set: which held-out split, each photo seen how, and test-time mirror
/// on or off against the model header's choice (`None` keeps it).
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    pub split: HeldOut,
    pub look: Look,
    pub mirror: Option<bool>,
    /// Detect as photos are answered (`predict`, the browser: a staged search) instead of
    /// searching every view as training did.
    pub as_answered: bool,
    /// Embed with the browser's packed CPU kernels ([`FacePipeline::with_nhwc_kernels`]).
    pub packed_kernels: bool,
}

/// Evaluate a model file on a held-out split of the data set `config` names (data set,
/// protocol, split seed), read as `reading` says, printed as JSON: per task, the loss, the
/// metric and what the header's calibration does; or, on a data set of other tasks, the
/// model's answers scored against the labels it has (`cross`).
pub fn evaluate_file(
    cache: &Cache,
    device: &Device,
    model_file: &Path,
    config: &TrainConfig,
    data_dir: &Path,
    reading: Reading,
) -> Result<()> {
    let Reading { split: part, look, mirror, as_answered, packed_kernels } = reading;
    let model_file::Model { header, head, backbone } = load_model(model_file, device)?;
    let set = config.load(data_dir)?;
    let mut pipeline = models::model_pipeline(cache, &header, backbone, device)?;
    if as_answered {
        pipeline = pipeline.with_detector_config(header.detector.clone().answering_photos());
    }
    if packed_kernels {
        pipeline = pipeline.with_nhwc_kernels();
    }
    let mirror = mirror.unwrap_or(pipeline.mirrors());
    let pipeline = pipeline.with_mirror(mirror);
    let names = |tasks: &[TaskSpec]| tasks.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
    let same_tasks = match config.source()? {
        Source::BuiltIn(_) => names(&header.tasks) == names(&config.tasks(&set.tasks)?),
        Source::Csv { .. } | Source::Together(_) => names(&header.tasks) == names(&set.tasks),
    };
    if !same_tasks {
        return evaluate_across(cache, &pipeline, (&head, &header), &set, set.held_out(part), look);
    }
    let (evaluation, split) = evaluate_on(cache, &pipeline, (&head, &header.tasks), &set, set.held_out(part), look)?;
    let faces = split.len();
    let calibrated = Outputs::of_split(&head, &header.tasks, split, &set).measure(&header.calibration);
    let report: Vec<_> = header
        .tasks
        .iter()
        .zip(evaluation.losses.iter().zip(&evaluation.metrics))
        .zip(calibrated)
        .map(|((t, (loss, metric)), calibration)| {
            serde_json::json!({ "task": t.name, "loss": loss, "metric": metric, "faces": faces, "calibration": calibration })
        })
        .collect();
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// A model's answers on a data set of other tasks, printed as JSON.
fn evaluate_across(
    cache: &Cache,
    pipeline: &FacePipeline,
    model: (&MtlHead, &Header),
    set: &DataSet,
    faces: &[Sample],
    look: Look,
) -> Result<()> {
    let across = answers_across(cache, pipeline, model, set, faces, look)?;
    println!("{}", serde_json::to_string_pretty(&across)?);
    Ok(())
}

/// A model's answers on `faces` of a data set of other tasks, scored against the labels it has
/// (`cross::figures`), with the photos and the faces found among them.
fn answers_across(
    cache: &Cache,
    pipeline: &FacePipeline,
    (head, header): (&MtlHead, &Header),
    set: &DataSet,
    faces: &[Sample],
    look: Look,
) -> Result<Across> {
    let photos: Vec<&Sample> = faces.iter().collect();
    let store = extract_seen(cache, pipeline, &photos, look)?;
    let (faces, rows): (Vec<&Sample>, Vec<&[f32]>) = photos.iter().filter_map(|s| Some((*s, store.get(s)?))).unzip();
    let features = Tensor::from_data(TensorData::new(rows.concat(), [faces.len(), store.dim]), pipeline.device());
    let attributes = facemtl::predict::attributes(header, &facemtl::predict::raw_outputs(head, features), faces.len())?;
    let cross = crate::cross::figures(&attributes, &faces, &set.tasks);
    if cross.is_empty() {
        anyhow::bail!(
            "the model predicts {:?}; the data set {} labels none of it",
            header.tasks.iter().map(|t| &t.name).collect::<Vec<_>>(),
            set.name
        );
    }
    Ok(Across { data_set: set.name.clone(), photos: photos.len(), faces: faces.len(), cross })
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
#[serde(untagged)]
enum Line<'a> {
    Face(FaceLine<'a>),
    Error(ErrorLine<'a>),
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

/// The model file at `path` (at most `MAX_MODEL_BYTES`, checked before it is read), loaded.
fn load_model(path: &Path, device: &Device) -> Result<model_file::Model> {
    let bytes = read_bounded(path, model_file::MAX_MODEL_BYTES).context("cannot read the model")?;
    Ok(model_file::load(&bytes, None, device)?)
}

/// Print one JSON line per face (or per unreadable file / file without a face); stops quietly
/// when the reader closes the pipe.
/// `mirror`: test-time mirror on or off against the header's choice (`None` keeps it).
pub fn predict(
    cache: &Cache,
    device: &Device,
    model_file: &Path,
    inputs: &[PathBuf],
    mirror: Option<bool>,
) -> Result<()> {
    let model_file::Model { header, head, backbone } = load_model(model_file, device)?;
    let pipeline = models::model_pipeline(cache, &header, backbone, device)?
        .with_detector_config(header.detector.clone().answering_photos())
        .with_mirror(mirror.unwrap_or(header.test_time_mirror));
    let mut out = JsonLines::stdout();
    for path in expand(inputs) {
        let file = path.display().to_string();
        let faces = models::read_photo(&path)
            .and_then(|image| pipeline.predict(&head, &header, &image, usize::MAX).map_err(|e| e.to_string()))
            .and_then(|(_, faces)| if faces.is_empty() { Err("no face found".to_string()) } else { Ok(faces) });
        let lines: Vec<Line> = match faces {
            Ok(faces) => faces
                .into_iter()
                .enumerate()
                .map(|(face, f)| {
                    let (score, bbox) = (f.detection.score, f.detection.bbox);
                    Line::Face(FaceLine { file: &file, face, score, bbox, attributes: f.attributes })
                })
                .collect(),
            Err(error) => vec![Line::Error(ErrorLine { file: &file, error })],
        };
        for line in lines {
            if !out.write(&line)? {
                return Ok(());
            }
        }
    }
    Ok(())
}
