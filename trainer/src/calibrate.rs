//! `facemtl calibrate`: a model's calibration fitted on its data set's validation faces, and what
//! it does on test faces: each classification task's expected calibration error before and
//! after, the gender answers' accuracy and coverage (overall, per age band and per race), and
//! the age intervals' coverage. `export` fits the same calibration into every model it writes.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use facemtl::calibration::{self, Calibration, EceFloor, Reliability, confidence, temper};
use facemtl::groups::age_band;
use facemtl::model_file;
use facemtl::mtl::{MtlHead, RACES, TaskKind, TaskSpec};
use facemtl::pipeline::FacePipeline;
use facemtl::predict;
use serde::Serialize;

use crate::cache::Cache;
use crate::data::{DataSet, Sample};
use crate::faces::features::extract_seen;
use crate::faces::looks::Look;
use crate::files::{read_bounded, write_atomic};
use crate::models;
use crate::train::split::Inputs;
use crate::train::{Split, TaskSelection, TrainConfig, plots};

/// Reliability and calibration error over this many equal-width confidence bins.
pub const ECE_BINS: usize = 15;

/// One split's faces through a model: per task, the head's probabilities at temperature 1
/// (`task.outputs()` per face) and the truth (class index or value); the faces themselves.
pub struct Outputs {
    tasks: Vec<TaskSpec>,
    probabilities: Vec<Vec<f32>>,
    truth: Vec<Vec<f64>>,
    samples: Vec<Sample>,
    set_tasks: Vec<TaskSpec>,
}

impl Outputs {
    /// The faces of `samples` (those where one is found), their photos seen with `look`,
    /// through `pipeline` and `head`.
    pub fn of(
        cache: &Cache,
        pipeline: &FacePipeline,
        head: &MtlHead,
        tasks: &[TaskSpec],
        set: &DataSet,
        samples: &[Sample],
        look: Look,
    ) -> Result<Self> {
        let labels = TaskSelection::new(tasks.to_vec(), &set.tasks);
        let store = extract_seen(cache, pipeline, &samples.iter().collect::<Vec<_>>(), look)?;
        Ok(Self::of_split(head, tasks, Split::of_features(samples, &[&store], &labels, pipeline.device()), set))
    }

    /// The faces of a split of cached features (of `set`) through `head`.
    pub fn of_split(head: &MtlHead, tasks: &[TaskSpec], split: Split, set: &DataSet) -> Self {
        let Inputs::Features(features) = split.inputs else { unreachable!("a split of features") };
        Outputs {
            tasks: tasks.to_vec(),
            probabilities: predict::raw_outputs(head, features),
            truth: split.truth,
            samples: split.samples,
            set_tasks: set.tasks.clone(),
        }
    }

    pub fn fit(&self) -> Calibration {
        calibration::fit(&self.tasks, &self.probabilities, &self.truth)
    }

    /// The faces labelled for task `t` (all but those of another data set trained with it):
    /// each one's probabilities, true class or value, and sample.
    fn labelled(&self, t: usize) -> impl Iterator<Item = (&[f32], f64, &Sample)> {
        let rows = self.probabilities[t].chunks_exact(self.tasks[t].outputs());
        rows.zip(&self.truth[t])
            .zip(&self.samples)
            .filter(|((_, truth), _)| !truth.is_nan())
            .map(|((r, t), s)| (r, *t, s))
    }

    /// Task `t`'s calibrated confidences on its labelled faces, and whether each face's
    /// likeliest class is right.
    fn answers(&self, t: usize, temperature: f32) -> (Vec<f32>, Vec<bool>) {
        self.labelled(t)
            .map(|(row, truth, _)| {
                let row = temper(row, temperature);
                let p = confidence(&row);
                (p, row[truth as usize] == p)
            })
            .unzip()
    }

    /// The group of each face labelled for task `t`, by the data set's column `name` (`None`
    /// where the set has no such column, or the face no label in it).
    fn groups(&self, t: usize, name: &str) -> Option<Vec<Option<String>>> {
        let column = self.set_tasks.iter().position(|t| t.name == name)?;
        Some(
            self.labelled(t)
                .map(|(_, _, s)| match name {
                    "age" => s.value(column).map(age_band),
                    _ => s.class(column).map(|c| RACES.get(c).map_or(c.to_string(), |r| r.to_string())),
                })
                .collect(),
        )
    }

    /// What `calibration` does on these faces, per task.
    pub fn measure(&self, calibration: &Calibration) -> Vec<TaskCalibration> {
        self.tasks
            .iter()
            .enumerate()
            .map(|(t, task)| {
                let temperature = calibration.temperature(t);
                let mut out = TaskCalibration { task: task.name.clone(), temperature, ..Default::default() };
                match task.kind {
                    TaskKind::Class { .. } => {
                        let (raw, raw_ok) = self.answers(t, 1.0);
                        let (calibrated, ok) = self.answers(t, temperature);
                        out.ece = Some(Change {
                            before: calibration::ece(&raw, &raw_ok, ECE_BINS),
                            after: calibration::ece(&calibrated, &ok, ECE_BINS),
                        });
                        out.ece_floor = Some(calibration::ece_floor(&calibrated, ECE_BINS));
                        out.reliability = calibration::reliability(&calibrated, &ok, ECE_BINS);
                        out.reliability_before = calibration::reliability(&raw, &raw_ok, ECE_BINS);
                        if *task == TaskSpec::gender() {
                            out.answered = Some(self.answered(t, (&calibrated, &ok), calibration.cant_tell_below));
                        }
                    }
                    TaskKind::Distribution { .. } => {
                        let level = calibration.interval.unwrap_or(calibration::INTERVAL_LEVEL);
                        let (rows, values): (Vec<&[f32]>, Vec<f32>) =
                            self.labelled(t).map(|(row, value, _)| (row, value as f32)).unzip();
                        let covered = |t_: f32| calibration::interval_coverage(&rows, &task.bins(), &values, t_, level);
                        out.interval = Some(IntervalCoverage {
                            level,
                            coverage: Change { before: covered(1.0), after: covered(temperature) },
                        });
                    }
                    TaskKind::Regression { .. } => {}
                }
                out
            })
            .collect()
    }

    /// Task `t`'s answers (`confidences` and whether each is `correct`, on its labelled faces)
    /// given and right, overall and per group.
    fn answered(&self, t: usize, (confidences, correct): (&[f32], &[bool]), below: Option<f32>) -> Answered {
        // Age bands ("0-9" to "70+") and race names both read in order as text.
        let by = |name: &str| -> Vec<(String, Coverage)> {
            let mut groups: BTreeMap<String, (Vec<f32>, Vec<bool>)> = BTreeMap::new();
            for ((group, p), ok) in self.groups(t, name).unwrap_or_default().into_iter().zip(confidences).zip(correct) {
                if let Some(group) = group {
                    let entry = groups.entry(group).or_default();
                    entry.0.push(*p);
                    entry.1.push(*ok);
                }
            }
            groups.into_iter().map(|(group, (p, ok))| (group, Coverage::of(&p, &ok, below))).collect()
        };
        Answered {
            cant_tell_below: below,
            all: Coverage::of(confidences, correct, below),
            by_age_band: by("age"),
            by_race: by("race"),
        }
    }
}

/// A figure before calibration and after.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Change {
    pub before: f64,
    pub after: f64,
}

/// The answers given to a group of faces: their share, and how often they are right, beside
/// the accuracy had every face been answered.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Coverage {
    pub faces: usize,
    pub answered: f64,
    pub accuracy_answered: f64,
    pub accuracy_all: f64,
}

impl Coverage {
    fn of(confidences: &[f32], correct: &[bool], below: Option<f32>) -> Self {
        let (answered, accuracy_answered) = calibration::answered(confidences, correct, below);
        let accuracy_all = calibration::answered(confidences, correct, None).1;
        Coverage { faces: confidences.len(), answered, accuracy_answered, accuracy_all }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Answered {
    pub cant_tell_below: Option<f32>,
    pub all: Coverage,
    pub by_age_band: Vec<(String, Coverage)>,
    pub by_race: Vec<(String, Coverage)>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct IntervalCoverage {
    pub level: f32,
    pub coverage: Change,
}

/// What a calibration does on one task's test faces.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TaskCalibration {
    pub task: String,
    pub temperature: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ece: Option<Change>,
    /// The error a model right exactly as often as its calibrated answers say would show on
    /// the same faces: the sampling floor beneath `ece.after`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ece_floor: Option<EceFloor>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reliability: Vec<Reliability>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reliability_before: Vec<Reliability>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered: Option<Answered>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<IntervalCoverage>,
}

/// `facemtl calibrate`: fit the model file's calibration on the validation faces of `config`'s
/// data set, write the model with it to `out`, and print what it does on the test faces (JSON),
/// with a reliability plot per classification task in `plots` when given.
pub fn calibrate_file(
    cache: &Cache,
    device: &burn::prelude::Device,
    model: &Path,
    config: &TrainConfig,
    data_dir: &Path,
    out: &Path,
    plots_dir: Option<&Path>,
) -> Result<()> {
    let bytes = read_bounded(model, model_file::MAX_MODEL_BYTES).context("cannot read the model")?;
    let model_file::Model { header, head, backbone } = model_file::load(&bytes, None, device)?;
    let pipeline = models::model_pipeline(cache, &header, backbone, device)?;
    let set = config.load(data_dir)?;
    let calibration = Outputs::of(cache, &pipeline, &head, &header.tasks, &set, &set.val, Look::Clean)?.fit();
    write_atomic(out, &model_file::with_calibration(&bytes, calibration.clone())?)?;
    let figures =
        Outputs::of(cache, &pipeline, &head, &header.tasks, &set, &set.test, Look::Clean)?.measure(&calibration);
    if let Some(dir) = plots_dir {
        for task in figures.iter().filter(|f| !f.reliability.is_empty()) {
            plots::reliability(
                &task.task,
                &task.reliability_before,
                &task.reliability,
                &dir.join(format!("reliability-{}.png", task.task)),
            )?;
        }
    }
    println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "calibration": calibration, "test": figures }))?);
    Ok(())
}
