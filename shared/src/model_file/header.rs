//! The model file's header: what the head is and was trained on, and the bounds a header must
//! keep before any of its numbers sizes an allocation.

use serde::{Deserialize, Serialize};

use super::FORMAT_VERSION;
use super::error::WeightsError;
use crate::align::AlignConfig;
use crate::backbone::{BackboneKind, faceres};
use crate::calibration::Calibration;
use crate::compact::Precision;
use crate::detect::DetectorConfig;
use crate::mtl::{MtlConfig, TaskOverview, TaskSpec, check_tasks, check_widths};

/// Everything needed to use the head, and to know what it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub format_version: u32,
    pub backbone: BackboneKind,
    /// What each head predicts (a regression's normalisation included).
    pub tasks: Vec<TaskSpec>,
    pub shared: Vec<usize>,
    pub head_hidden: usize,
    pub detector: DetectorConfig,
    pub align: AlignConfig,
    /// The training data and protocol, in words.
    pub trained_on: String,
    /// Test figures by name (e.g. `gender_accuracy`, `age_mae`).
    pub metrics: Vec<(String, f64)>,
    /// Length of the fine-tuned backbone's record at the payload's end; absent when the
    /// pretrained backbone is used as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backbone_len: Option<usize>,
    /// The precision of the pretrained backbone's weights the model runs on, and was measured
    /// with: `int8` for the browser's smaller file; absent means exact.
    #[serde(default, skip_serializing_if = "Precision::is_exact")]
    pub backbone_weights: Precision,
    /// How the head's weight matrices are stored: `int8` takes half the bytes of f16 (the
    /// header's figures are measured as stored); absent means exact.
    #[serde(default, skip_serializing_if = "Precision::is_exact")]
    pub head_weights: Precision,
    /// The features of each face are the mean of its own and its mirror image's, as in
    /// training (test-time mirror); absent means no mirror.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test_time_mirror: bool,
    /// With `backbone_len`: the record is the last this many blocks of faceres (partial
    /// fine-tuning), not a whole backbone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuned_blocks: Option<usize>,
    /// Temperatures, the gender "can't tell" band and the age interval, fitted on validation
    /// faces; absent: the head's probabilities as trained, no band, no interval.
    #[serde(default, skip_serializing_if = "Calibration::is_none")]
    pub calibration: Calibration,
}

impl Header {
    /// The header of a head trained on `backbone` features (the pretrained weights at
    /// `backbone_weights`), with its `shared` layers' and heads' hidden widths, the default
    /// detector and the backbone's alignment: what `export` and the browser's Lab write.
    pub fn for_head(
        backbone: BackboneKind,
        backbone_weights: Precision,
        tasks: Vec<TaskSpec>,
        (shared, head_hidden): (Vec<usize>, usize),
        trained_on: String,
        metrics: Vec<(String, f64)>,
    ) -> Self {
        Header {
            format_version: FORMAT_VERSION,
            backbone,
            tasks,
            shared,
            head_hidden,
            detector: DetectorConfig::default(),
            align: backbone.align_config(),
            trained_on,
            metrics,
            backbone_len: None,
            backbone_weights,
            head_weights: Precision::Exact,
            test_time_mirror: false,
            tuned_blocks: None,
            calibration: Calibration::default(),
        }
    }

    /// `task`'s figure on the model's test set (accuracy, or MAE in the task's unit), if the
    /// file records one.
    pub fn test_figure(&self, task: &TaskSpec) -> Option<f64> {
        let name = task.metric_name();
        self.metrics.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }

    /// The model's tasks as a page shows them, each with its test figure.
    pub fn task_overviews(&self) -> Vec<TaskOverview> {
        self.tasks.iter().map(|t| t.overview(self.test_figure(t))).collect()
    }
}

/// `Err(Header(why))` unless `ok`.
fn require(ok: bool, why: impl FnOnce() -> String) -> Result<(), WeightsError> {
    if ok { Ok(()) } else { Err(WeightsError::Header(why())) }
}

fn within(value: f64, low: f64, high: f64) -> bool {
    value.is_finite() && (low..=high).contains(&value)
}

impl Header {
    pub fn mtl_config(&self) -> MtlConfig {
        MtlConfig::new(self.backbone.feature_dim(), self.tasks.iter().map(TaskSpec::outputs).collect())
            .with_shared(self.shared.clone())
            .with_head_hidden(self.head_hidden)
    }

    /// Refuse a header whose numbers no model of ours has, before any of them sizes an
    /// allocation: a crafted header could otherwise ask for a layer of 10^8 units.
    pub(super) fn check(&self, payload_len: usize) -> Result<(), WeightsError> {
        self.check_tasks()?;
        self.check_network()?;
        self.check_preprocessing()?;
        self.check_payload(payload_len)
    }

    /// A few tasks, each named once, with sizes and normalisations of ours (`mtl::check`).
    fn check_tasks(&self) -> Result<(), WeightsError> {
        check_tasks(&self.tasks).map_err(WeightsError::Header)
    }

    /// Layer widths within bounds, test figures that are numbers, and a calibration of ours.
    fn check_network(&self) -> Result<(), WeightsError> {
        check_widths(&self.shared, self.head_hidden).map_err(WeightsError::Header)?;
        require(self.metrics.iter().all(|(_, v)| v.is_finite()), || "a test figure is not a number".into())?;
        self.calibration.check(self.tasks.len()).map_err(WeightsError::Header)
    }

    /// The detector's views and thresholds, the alignment, and the tuned blocks.
    fn check_preprocessing(&self) -> Result<(), WeightsError> {
        let d = &self.detector;
        require(
            !d.zooms.is_empty() && d.zooms.len() <= 4 && d.zooms.iter().all(|z| within((*z).into(), 1.0, 8.0)),
            || format!("detector zooms {:?}", d.zooms),
        )?;
        let fraction = |v: f32| within(v.into(), 0.0, 1.0);
        require(
            fraction(d.decode.min_score)
                && fraction(d.decode.iou_threshold)
                && fraction(d.decode.containment)
                && (1..=1000).contains(&d.decode.max_faces),
            || format!("detector thresholds {:?}", d.decode),
        )?;
        let a = &self.align;
        require(a.size == self.backbone.input_size() && fraction(a.eye_distance) && fraction(a.eye_line), || {
            format!("alignment {a:?} for a {} backbone", self.backbone)
        })?;
        if let Some(tuned) = self.tuned_blocks {
            require(self.backbone.is_faceres() && (1..=faceres::BLOCK_COUNT).contains(&tuned), || {
                format!("{tuned} tuned blocks of a {} backbone", self.backbone)
            })?;
            require(self.backbone_len.is_some(), || "tuned blocks without their record".into())?;
        }
        Ok(())
    }

    /// A payload large enough for the network the header describes.
    fn check_payload(&self, payload_len: usize) -> Result<(), WeightsError> {
        let backbone_len = self.backbone_len.unwrap_or(0);
        let head_len = payload_len.checked_sub(backbone_len).ok_or_else(|| {
            WeightsError::Payload(format!("a backbone of {backbone_len} bytes in a payload of {payload_len}"))
        })?;
        // Every weight takes at least two bytes (half precision), or one on a grid: a header whose
        // network needs more than the file holds is refused without building it.
        let bytes_per_weight = if self.head_weights.is_exact() { 2 } else { 1 };
        let needed = bytes_per_weight * self.mtl_config().linear_parameters();
        if needed > head_len {
            return Err(WeightsError::Payload(format!(
                "the header's network needs {needed} bytes, the file has {head_len}"
            )));
        }
        Ok(())
    }
}
