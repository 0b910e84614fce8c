//! The exported model file read by `predict` and the browser app.
//!
//! Layout (format 3): the magic `FMTL`, a little-endian u32 format version, a u32 header
//! length, the header (JSON: backbone, tasks, network sizes, preprocessing constants, training
//! data and protocol, metrics), the payload, and the sha256 of every byte before it. The
//! payload is the multi-task head's parameters in the compact format (`compact.rs`: half
//! precision where the values allow it, which the trainer's export ensures, or one byte per
//! weight when the header's `head_weights` is `int8`), followed, for a
//! model whose backbone was fine-tuned, by the backbone's own (its length in the header), or,
//! for partial fine-tuning, by the tuned last blocks alone (their count in the header, their
//! weights at the precision of the stock backbone's that the model runs on): the stock
//! backbone, which the app downloads once, supplies the rest.
//!
//! A model file is untrusted input (the app loads any file a visitor picks), so loading checks,
//! in this order and before anything is allocated from the header's numbers: the file's size,
//! the magic and version, the checksum (which covers the header too: an edited age offset or
//! forged test figures are refused like a damaged payload), the header's sizes against fixed
//! bounds and against the payload's length, and finally every parameter's shape and finiteness.
//! The checksum detects damage and editing; it is not a signature (see the README's security
//! section).

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::align::AlignConfig;
use crate::backbone::{Backbone, BackboneKind, FaceResTailConfig, Tuned, faceres};
use crate::compact::{self, Precision};
use crate::detect::DetectorConfig;
use crate::mtl::{MtlConfig, MtlHead, TaskKind, TaskSpec};

pub const MAGIC: &[u8; 4] = b"FMTL";
pub const FORMAT_VERSION: u32 = 3;
/// The largest model file accepted: a head with a fine-tuned dlib backbone is about 45 MB in
/// f16; anything larger is not ours.
pub const MAX_MODEL_BYTES: usize = 64 << 20;
const MAX_HEADER_BYTES: usize = 64 << 10;
/// Widest layer a header may ask for, and most shared layers.
const MAX_WIDTH: usize = 4096;
const MAX_SHARED_LAYERS: usize = 4;
const MAX_TASKS: usize = 16;
const CHECKSUM_LEN: usize = 32;

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
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("not a facemtl model file (bad magic)")]
    NotAModel,
    #[error("the model file is truncated")]
    Truncated,
    #[error("the model file is {0} bytes; model files are at most {MAX_MODEL_BYTES} bytes")]
    TooLarge(usize),
    #[error(
        "this model file is in format version {found} of an older facemtl, whose checksum did not cover its header; \
         re-export it from its run directory with `facemtl export --run-dir RUN --out FILE`"
    )]
    Outdated { found: u32 },
    #[error("model format version {found} is newer than this build reads (version {FORMAT_VERSION}): update facemtl")]
    Version { found: u32 },
    #[error("the model header is not valid: {0}")]
    Header(String),
    #[error("the model file does not match its checksum: it is damaged, truncated or was edited")]
    Checksum,
    #[error("the model was trained on {found} features, but {expected} was asked for")]
    Backbone { expected: BackboneKind, found: BackboneKind },
    #[error("the model payload does not fit its header: {0}")]
    Payload(String),
}

fn sha256(bytes: &[u8]) -> [u8; CHECKSUM_LEN] {
    Sha256::digest(bytes).into()
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
    fn check(&self, payload_len: usize) -> Result<(), WeightsError> {
        let tasks = &self.tasks;
        require(!tasks.is_empty() && tasks.len() <= MAX_TASKS, || format!("{} tasks", tasks.len()))?;
        require(tasks.iter().enumerate().all(|(i, t)| tasks[..i].iter().all(|o| o.name != t.name)), || {
            "a task is repeated".into()
        })?;
        for task in tasks {
            match &task.kind {
                TaskKind::Class { labels } => require((2..=MAX_WIDTH).contains(&labels.len()), || {
                    format!("task {} with {} labels", task.name, labels.len())
                })?,
                TaskKind::Regression { norm } => {
                    require(within(norm.scale.into(), 1e-3, 1e6) && within(norm.offset.into(), -1e6, 1e6), || {
                        format!("task {} normalised by {norm:?}", task.name)
                    })?
                }
                TaskKind::Distribution { low, high, sigma } => {
                    let (low, high) = (f64::from(*low), f64::from(*high));
                    require(
                        within(low, -1e6, 1e6)
                            && within(high - low, 1.0, (MAX_WIDTH - 1) as f64)
                            && within((*sigma).into(), 1e-3, 1e3),
                        || format!("task {} as a distribution over {low}..={high}, width {sigma}", task.name),
                    )?
                }
            }
        }
        require(self.shared.len() <= MAX_SHARED_LAYERS, || format!("{} shared layers", self.shared.len()))?;
        require(self.shared.iter().all(|w| (1..=MAX_WIDTH).contains(w)), || {
            format!("shared layer widths {:?} (1 to {MAX_WIDTH})", self.shared)
        })?;
        require(self.head_hidden <= MAX_WIDTH, || format!("head width {} (at most {MAX_WIDTH})", self.head_hidden))?;
        require(self.metrics.iter().all(|(_, v)| v.is_finite()), || "a test figure is not a number".into())?;
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
        let backbone_len = self.backbone_len.unwrap_or(0);
        let head_len = payload_len.checked_sub(backbone_len).ok_or_else(|| {
            WeightsError::Payload(format!("a backbone of {backbone_len} bytes in a payload of {payload_len}"))
        })?;
        // Every weight takes at least two bytes (half precision), or one in int8: a header whose
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

/// A loaded model file.
#[derive(Debug)]
pub struct Model {
    pub header: Header,
    pub head: MtlHead,
    /// What the model tuned of its backbone, when the file has it.
    pub backbone: Option<Tuned>,
}

/// The bytes a model file keeps of `tuned`: tuned last blocks at the precision of the stock
/// backbone weights they join (int8 halves their share of the download again), a whole
/// fine-tuned backbone without loss.
fn tuned_record(tuned: &Tuned, backbone_weights: Precision) -> Vec<u8> {
    match tuned {
        Tuned::Whole(backbone) => compact::pack(backbone),
        Tuned::Tail(tail) => compact::pack_with(tail, backbone_weights),
    }
}

/// `tuned` as a model file written for `backbone_weights` gives it back: what `predict` and the
/// app compute with.
pub fn as_stored(tuned: Tuned, backbone_weights: Precision) -> Tuned {
    let bytes = tuned_record(&tuned, backbone_weights);
    compact::unpack(tuned, &bytes).expect("a record just packed from the same network")
}

/// Write `head` (at the header's `head_weights`, and what was tuned of the backbone) with
/// `header`, whose version, backbone length and tuned block count are filled in here.
pub fn export(head: MtlHead, tuned: Option<Tuned>, mut header: Header) -> Result<Vec<u8>, WeightsError> {
    let mut payload = compact::pack_with(&head, header.head_weights);
    header.backbone_len = None;
    header.tuned_blocks = None;
    let record = match tuned {
        None => None,
        Some(Tuned::Whole(backbone)) if backbone.kind() != header.backbone => {
            return Err(WeightsError::Backbone { expected: header.backbone, found: backbone.kind() });
        }
        Some(tuned) => {
            if let Tuned::Tail(tail) = &tuned {
                header.tuned_blocks = Some(tail.len());
            }
            Some(tuned_record(&tuned, header.backbone_weights))
        }
    };
    if let Some(bytes) = record {
        header.backbone_len = Some(bytes.len());
        payload.extend(bytes);
    }
    header.format_version = FORMAT_VERSION;
    header.check(payload.len())?;
    let json = serde_json::to_vec(&header).map_err(|e| WeightsError::Header(e.to_string()))?;
    let out = seal(&json, &payload);
    if out.len() > MAX_MODEL_BYTES {
        return Err(WeightsError::TooLarge(out.len()));
    }
    Ok(out)
}

/// The file of a header's JSON and a payload, checksum appended.
fn seal(json: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + json.len() + payload.len() + CHECKSUM_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(json);
    out.extend_from_slice(payload);
    let checksum = sha256(&out);
    out.extend_from_slice(&checksum);
    out
}

/// Read and check the header alone (what the browser shows before loading), and the payload.
pub fn read_header(bytes: &[u8]) -> Result<(Header, &[u8]), WeightsError> {
    if bytes.len() > MAX_MODEL_BYTES {
        return Err(WeightsError::TooLarge(bytes.len()));
    }
    if bytes.len() < 4 || &bytes[..4] != MAGIC {
        return Err(WeightsError::NotAModel);
    }
    let word = |at: usize| -> Result<usize, WeightsError> {
        let b = bytes.get(at..at + 4).ok_or(WeightsError::Truncated)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    match word(4)? as u32 {
        FORMAT_VERSION => {}
        found @ 0..FORMAT_VERSION => return Err(WeightsError::Outdated { found }),
        found => return Err(WeightsError::Version { found }),
    }
    let header_len = word(8)?;
    if bytes.len() < 12 + CHECKSUM_LEN {
        return Err(WeightsError::Truncated);
    }
    let (body, checksum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
    if sha256(body) != checksum {
        return Err(WeightsError::Checksum);
    }
    if header_len > MAX_HEADER_BYTES || 12 + header_len > body.len() {
        return Err(WeightsError::Header(format!("a header of {header_len} bytes")));
    }
    let (json, payload) = body[12..].split_at(header_len);
    let header: Header = serde_json::from_slice(json).map_err(|e| WeightsError::Header(e.to_string()))?;
    if header.format_version != FORMAT_VERSION {
        return Err(WeightsError::Header(format!(
            "version {} inside a version {FORMAT_VERSION} file",
            header.format_version
        )));
    }
    header.check(payload.len())?;
    Ok((header, payload))
}

fn unpack<M: Module>(module: M, bytes: &[u8]) -> Result<M, WeightsError> {
    compact::unpack(module, bytes).map_err(|e| WeightsError::Payload(e.to_string()))
}

/// Load a model file; with `backbone`, refuse one trained on another backbone's features.
pub fn load(bytes: &[u8], backbone: Option<BackboneKind>, device: &Device) -> Result<Model, WeightsError> {
    let (header, payload) = read_header(bytes)?;
    if let Some(expected) = backbone.filter(|b| *b != header.backbone) {
        return Err(WeightsError::Backbone { expected, found: header.backbone });
    }
    // `check` has made sure the backbone fits in the payload.
    let split = payload.len() - header.backbone_len.unwrap_or(0);
    let head = unpack(header.mtl_config().init(device), &payload[..split])?;
    let record = &payload[split..];
    let backbone = match (header.backbone_len, header.tuned_blocks) {
        (None, _) => None,
        (Some(_), None) => Some(Tuned::Whole(unpack(Backbone::init(header.backbone, device), record)?)),
        (Some(_), Some(tuned)) => Some(Tuned::Tail(unpack(FaceResTailConfig::new(tuned).init(device), record)?)),
    };
    Ok(Model { header, head, backbone })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (MtlHead, Header) {
        let device = Device::flex();
        let tasks = vec![TaskSpec::gender(), TaskSpec::age(crate::mtl::AgeNorm::ALL_AGES)];
        let head = MtlConfig::new(BackboneKind::Dlib.feature_dim(), vec![2, 1])
            .with_shared(vec![16])
            .with_head_hidden(8)
            .init(&device);
        let header = Header {
            format_version: 0,
            backbone: BackboneKind::Dlib,
            tasks,
            shared: vec![16],
            head_hidden: 8,
            detector: DetectorConfig::default(),
            align: BackboneKind::Dlib.align_config(),
            trained_on: "test".into(),
            metrics: vec![("gender_accuracy".into(), 0.9)],
            backbone_len: None,
            backbone_weights: Precision::Exact,
            head_weights: Precision::Exact,
            test_time_mirror: false,
            tuned_blocks: None,
        };
        (head, header)
    }

    fn load_dlib(bytes: &[u8]) -> Result<Model, WeightsError> {
        load(bytes, Some(BackboneKind::Dlib), &Device::flex())
    }

    /// A file of `bytes`'s payload under its header's JSON as edited by `edit`, with a valid
    /// checksum: what someone who edits a model file and knows the format would write.
    fn resealed(bytes: &[u8], edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
        let len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
        let mut json: serde_json::Value = serde_json::from_slice(&bytes[12..12 + len]).unwrap();
        edit(&mut json);
        seal(&serde_json::to_vec(&json).unwrap(), &bytes[12 + len..bytes.len() - CHECKSUM_LEN])
    }

    #[test]
    fn a_model_round_trips_and_predicts_the_same() {
        let (head, header) = sample();
        let device = Device::flex();
        let x = Tensor::<2>::ones([2, 128], &device);
        let before = head.forward(x.clone())[1].clone().into_data();
        let bytes = export(head, None, header.clone()).unwrap();
        let loaded = load_dlib(&bytes).unwrap();
        assert_eq!(loaded.header.metrics, header.metrics);
        assert_eq!(loaded.header.format_version, FORMAT_VERSION);
        assert!(loaded.backbone.is_none());
        assert_eq!(loaded.head.forward(x)[1].clone().into_data(), before);
        assert!(load_dlib(&resealed(&bytes, |_| {})).is_ok(), "resealing an unedited header changes nothing");
    }

    #[test]
    fn a_fine_tuned_backbone_travels_with_its_head() {
        let (head, header) = sample();
        let device = Device::flex();
        let backbone = Backbone::init(BackboneKind::Dlib, &device);
        let crop = Tensor::<4>::ones([1, 3, 150, 150], &device);
        let before = backbone.forward(crop.clone()).into_data();
        let bytes = export(head.clone(), Some(Tuned::Whole(backbone)), header.clone()).unwrap();
        let loaded = load(&bytes, None, &device).unwrap();
        let Some(Tuned::Whole(tuned)) = loaded.backbone else { panic!("a whole backbone") };
        assert_eq!(tuned.forward(crop).into_data(), before);
        let wrong = Tuned::Whole(Backbone::init(BackboneKind::Faceres, &device));
        assert!(matches!(export(head, Some(wrong), header), Err(WeightsError::Backbone { .. })));
    }

    #[test]
    fn tuned_blocks_travel_alone_and_replace_the_stock_ones() {
        let device = Device::flex();
        let (_, header) = sample();
        let header = Header { backbone: BackboneKind::Faceres, align: BackboneKind::Faceres.align_config(), ..header };
        let head = header.mtl_config().init(&device);
        let stock = Backbone::init(BackboneKind::Faceres, &device);
        // A tail that differs from the stock blocks: freshly initialised, not copied.
        let tail = FaceResTailConfig::new(2).init(&device);
        let bytes = export(head, Some(Tuned::Tail(tail.clone())), header).unwrap();
        assert!(bytes.len() < compact::pack(&stock).len() / 2, "two blocks weigh less than half the backbone");
        let loaded = load(&bytes, Some(BackboneKind::Faceres), &device).unwrap();
        assert_eq!(loaded.header.tuned_blocks, Some(2));
        let Some(tuned @ Tuned::Tail(_)) = loaded.backbone else { panic!("tuned blocks") };
        let crop = Tensor::<4>::random([1, 3, 224, 224], burn::tensor::Distribution::Uniform(-100.0, 100.0), &device);
        let Backbone::Faceres(stock_net) = &stock else { unreachable!() };
        let cut = stock_net.blocks(stock_net.stem(crop.clone()), 0..faceres::BLOCK_COUNT - 2);
        let expected = tail.forward(cut).into_data();
        let combined = tuned.onto(&stock).unwrap();
        combined.forward(crop.clone()).into_data().assert_approx_eq::<f32>(&expected, Default::default());
        assert_ne!(stock.forward(crop).into_data(), expected, "the stock blocks were replaced");
        let dlib = Backbone::init(BackboneKind::Dlib, &device);
        assert!(Tuned::Tail(tail).onto(&dlib).is_err());
    }

    #[test]
    fn tuned_blocks_for_the_int8_backbone_are_stored_in_int8_and_load_as_measured() {
        let device = Device::flex();
        let (_, header) = sample();
        let header = Header { backbone: BackboneKind::Faceres, align: BackboneKind::Faceres.align_config(), ..header };
        let tail = Tuned::Tail(compact::half(FaceResTailConfig::new(1).init(&device)));
        let file = |weights: Precision| {
            let head = header.mtl_config().init(&device);
            export(head, Some(tail.clone()), Header { backbone_weights: weights, ..header.clone() }).unwrap()
        };
        let (exact, int8) = (file(Precision::Exact), file(Precision::Int8));
        assert!(
            int8.len() * 10 < exact.len() * 6,
            "a byte per weight instead of two: {} vs {}",
            int8.len(),
            exact.len()
        );
        let values = |bytes: &[u8]| {
            let loaded = load(bytes, Some(BackboneKind::Faceres), &device).unwrap();
            compact::tests::values(&loaded.backbone.expect("the tuned block"))
        };
        assert_eq!(values(&exact), compact::tests::values(&tail), "half-precision blocks travel as they are");
        assert_eq!(values(&int8), compact::tests::values(&as_stored(tail.clone(), Precision::Int8)));
        assert_ne!(values(&int8), values(&exact));
    }

    #[test]
    fn an_int8_head_takes_about_half_the_bytes_and_loads_as_measured() {
        let (_, header) = sample();
        let header = Header { shared: vec![256], head_hidden: 64, ..header };
        let device = Device::flex();
        let head = compact::half(header.mtl_config().init(&device));
        let exact = export(head.clone(), None, header.clone()).unwrap();
        let int8 = export(head.clone(), None, Header { head_weights: Precision::Int8, ..header }).unwrap();
        let payload = |bytes: &[u8]| read_header(bytes).unwrap().1.len();
        assert!(payload(&int8) * 10 < payload(&exact) * 6, "{} vs {} bytes", payload(&int8), payload(&exact));
        let loaded = load_dlib(&int8).unwrap();
        assert_eq!(loaded.header.head_weights, Precision::Int8);
        let x = Tensor::<2>::ones([2, 128], &device);
        let as_measured = compact::at_precision(head.clone(), Precision::Int8).forward(x.clone())[1].clone();
        assert_eq!(loaded.head.forward(x.clone())[1].clone().into_data(), as_measured.clone().into_data());
        assert_ne!(head.forward(x)[1].clone().into_data(), as_measured.into_data(), "int8 rounds the weights");
    }

    #[test]
    fn truncated_tampered_and_mismatched_files_are_refused() {
        let (head, header) = sample();
        let bytes = export(head, None, header).unwrap();
        assert!(matches!(load_dlib(&bytes[..bytes.len() - 10]), Err(WeightsError::Checksum)));
        assert!(matches!(load_dlib(&bytes[..20]), Err(WeightsError::Truncated)));
        let mut tampered = bytes.clone();
        let last = tampered.len() - 100;
        tampered[last] ^= 1;
        assert!(matches!(load_dlib(&tampered), Err(WeightsError::Checksum)));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(load_dlib(&longer), Err(WeightsError::Checksum)));
        assert!(load_dlib(&bytes).is_ok());
        assert!(matches!(
            load(&bytes, Some(BackboneKind::Faceres), &Device::flex()),
            Err(WeightsError::Backbone { .. })
        ));
        let mut future = bytes.clone();
        future[4] = 9;
        assert!(matches!(load_dlib(&future), Err(WeightsError::Version { found: 9 })));
        assert!(matches!(load_dlib(b"GIF89a...."), Err(WeightsError::NotAModel)));
    }

    #[test]
    fn an_edited_header_is_refused_like_a_damaged_payload() {
        let (head, header) = sample();
        let bytes = export(head, None, header).unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        // The same length, so that only the checksum can tell: age offset 0 -> 9, and a forged
        // test figure.
        for (from, to) in [("\"offset\":0.0", "\"offset\":9.0"), ("0.9]", "1.0]")] {
            assert!(text.contains(from), "{from}");
            let edited = text.replacen(from, to, 1);
            let edited: Vec<u8> =
                bytes.iter().zip(edited.bytes()).map(|(a, b)| if a.is_ascii() { b } else { *a }).collect();
            assert_ne!(edited, bytes);
            assert!(matches!(load_dlib(&edited), Err(WeightsError::Checksum)), "{to}");
        }
    }

    #[test]
    fn files_of_the_previous_formats_are_refused_with_the_way_to_re_export_them() {
        let (head, header) = sample();
        let mut old = export(head, None, header).unwrap();
        old[4] = 2;
        let error = load_dlib(&old).unwrap_err();
        assert!(matches!(error, WeightsError::Outdated { found: 2 }));
        assert!(error.to_string().contains("facemtl export --run-dir"), "{error}");
    }

    #[test]
    fn impossible_sizes_in_the_header_are_refused_before_anything_is_allocated() {
        let (head, header) = sample();
        let bytes = export(head, None, header).unwrap();
        let refused = |edit: &dyn Fn(&mut serde_json::Value)| load_dlib(&resealed(&bytes, edit)).unwrap_err();
        use serde_json::json;
        // Each of these once reached Burn: 819 GB asked of the allocator, or a panic.
        assert!(matches!(refused(&|h| h["shared"] = json!([200_000_000])), WeightsError::Header(_)));
        assert!(matches!(refused(&|h| h["head_hidden"] = json!(100_000_000)), WeightsError::Header(_)));
        assert!(matches!(refused(&|h| h["shared"] = json!([0])), WeightsError::Header(_)));
        // Within the bounds, but more than the file holds.
        assert!(matches!(refused(&|h| h["shared"] = json!([4096, 4096])), WeightsError::Payload(_)));
        assert!(matches!(refused(&|h| h["backbone_len"] = json!(1u64 << 40)), WeightsError::Payload(_)));
        assert!(matches!(
            refused(&|h| h["tasks"][1]["kind"]["regression"]["norm"]["scale"] = json!(1e39)),
            WeightsError::Header(_)
        ));
        assert!(matches!(
            refused(&|h| h["tasks"][1]["kind"]["regression"]["norm"]["offset"] = json!(-5e9)),
            WeightsError::Header(_)
        ));
        assert!(matches!(refused(&|h| h["tasks"] = json!([])), WeightsError::Header(_)));
        let gender = serde_json::to_value(TaskSpec::gender()).unwrap();
        assert!(matches!(refused(&|h| h["tasks"] = json!([gender, gender])), WeightsError::Header(_)));
        assert!(matches!(
            refused(&|h| h["tasks"][0]["kind"]["class"]["labels"] = json!(["one"])),
            WeightsError::Header(_)
        ));
        assert!(matches!(refused(&|h| h["detector"]["zooms"] = json!([1e9])), WeightsError::Header(_)));
        assert!(matches!(refused(&|h| h["align"]["size"] = json!(100_000)), WeightsError::Header(_)));
        assert!(matches!(refused(&|h| h["format_version"] = json!(2)), WeightsError::Header(_)));
        let huge = vec![0u8; MAX_MODEL_BYTES + 1];
        assert!(matches!(load_dlib(&huge), Err(WeightsError::TooLarge(_))));
    }

    #[test]
    fn a_non_finite_parameter_is_refused() {
        let (head, header) = sample();
        let bytes = export(compact::half(head), None, header.clone()).unwrap();
        let len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
        let mut payload = bytes[12 + len..bytes.len() - CHECKSUM_LEN].to_vec();
        // The last parameter is the age head's output bias: one f16 value, in its two planes.
        let n = payload.len();
        payload[n - 2..].copy_from_slice(&half::f16::NAN.to_le_bytes());
        let json = serde_json::to_vec(&Header { format_version: FORMAT_VERSION, ..header }).unwrap();
        assert!(matches!(load_dlib(&seal(&json, &payload)), Err(WeightsError::Payload(_))));
    }
}
