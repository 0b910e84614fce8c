//! The exported model file read by `predict` and the browser app.
//!
//! Layout: the magic `FMTL`, a little-endian u32 format version, a u32 header length, the header
//! (JSON: backbone, tasks, network sizes, preprocessing constants, training data and protocol,
//! metrics, and the sha256 and length of the payload), then the payload: the multi-task head's
//! parameters in the compact format (`compact.rs`: half precision where the values allow it,
//! which the trainer's export ensures), followed, for a model whose backbone was fine-tuned, by
//! the backbone's own (its length in the header). Loading refuses a file that is truncated, has trailing
//! bytes, was altered (checksum), is of another format version, or was trained on another
//! backbone than the one it is loaded with.

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::align::AlignConfig;
use crate::backbone::{Backbone, BackboneKind};
use crate::compact;
use crate::detect::DetectorConfig;
use crate::mtl::{MtlConfig, MtlHead, Task};

pub const MAGIC: &[u8; 4] = b"FMTL";
pub const FORMAT_VERSION: u32 = 2;

/// Everything needed to use the head, and to know what it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub format_version: u32,
    pub backbone: BackboneKind,
    pub tasks: Vec<Task>,
    pub shared: Vec<usize>,
    pub head_hidden: usize,
    /// Age predictions are `output * age_scale + age_offset` years.
    pub age_scale: f32,
    pub age_offset: f32,
    pub detector: DetectorConfig,
    pub align: AlignConfig,
    /// The training data and protocol, in words.
    pub trained_on: String,
    /// Test figures by name (e.g. `gender_accuracy`, `age_mae`).
    pub metrics: Vec<(String, f64)>,
    pub payload_sha256: String,
    pub payload_len: usize,
    /// Length of the fine-tuned backbone's record at the payload's end; absent when the
    /// pretrained backbone is used as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backbone_len: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("not a facemtl model file (bad magic)")]
    NotAModel,
    #[error("the model file is truncated")]
    Truncated,
    #[error("the model file has {0} unexpected bytes after its payload")]
    TrailingBytes(usize),
    #[error("model format version {found} is not supported (this build reads version {FORMAT_VERSION})")]
    Version { found: u32 },
    #[error("the model header is not valid: {0}")]
    Header(String),
    #[error("the model payload does not match its checksum: the file was altered or damaged")]
    Checksum,
    #[error("the model was trained on {found} features, but {expected} was asked for")]
    Backbone { expected: BackboneKind, found: BackboneKind },
    #[error("the model payload does not fit its header: {0}")]
    Payload(String),
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

impl Header {
    pub fn mtl_config(&self) -> MtlConfig {
        MtlConfig::new(self.backbone.feature_dim(), self.tasks.clone())
            .with_shared(self.shared.clone())
            .with_head_hidden(self.head_hidden)
    }
}

/// A loaded model file.
#[derive(Debug)]
pub struct Model {
    pub header: Header,
    pub head: MtlHead,
    /// The fine-tuned backbone, when the file has one.
    pub backbone: Option<Backbone>,
}

/// Write `head` (and a fine-tuned `backbone`) with `header`, whose checksum and length fields
/// are filled in here.
pub fn export(head: MtlHead, backbone: Option<Backbone>, mut header: Header) -> Result<Vec<u8>, WeightsError> {
    let mut payload = compact::pack(&head);
    header.backbone_len = None;
    if let Some(backbone) = backbone {
        if backbone.kind() != header.backbone {
            return Err(WeightsError::Backbone { expected: header.backbone, found: backbone.kind() });
        }
        let bytes = compact::pack(&backbone);
        header.backbone_len = Some(bytes.len());
        payload.extend(bytes);
    }
    header.format_version = FORMAT_VERSION;
    header.payload_sha256 = sha256_hex(&payload);
    header.payload_len = payload.len();
    let json = serde_json::to_vec(&header).map_err(|e| WeightsError::Header(e.to_string()))?;
    let mut out = Vec::with_capacity(12 + json.len() + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Read and check the header alone (what the browser shows before loading).
pub fn read_header(bytes: &[u8]) -> Result<(Header, &[u8]), WeightsError> {
    if bytes.len() < 4 || &bytes[..4] != MAGIC {
        return Err(WeightsError::NotAModel);
    }
    let word = |at: usize| -> Result<u32, WeightsError> {
        bytes.get(at..at + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap())).ok_or(WeightsError::Truncated)
    };
    let version = word(4)?;
    if version != FORMAT_VERSION {
        return Err(WeightsError::Version { found: version });
    }
    let len = word(8)? as usize;
    let json = bytes.get(12..12 + len).ok_or(WeightsError::Truncated)?;
    let header: Header = serde_json::from_slice(json).map_err(|e| WeightsError::Header(e.to_string()))?;
    let rest = &bytes[12 + len..];
    match rest.len().cmp(&header.payload_len) {
        std::cmp::Ordering::Less => return Err(WeightsError::Truncated),
        std::cmp::Ordering::Greater => return Err(WeightsError::TrailingBytes(rest.len() - header.payload_len)),
        std::cmp::Ordering::Equal => {}
    }
    if sha256_hex(rest) != header.payload_sha256 {
        return Err(WeightsError::Checksum);
    }
    Ok((header, rest))
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
    let split = payload
        .len()
        .checked_sub(header.backbone_len.unwrap_or(0))
        .ok_or_else(|| WeightsError::Payload("the backbone is longer than the payload".into()))?;
    let head = unpack(header.mtl_config().init(device), &payload[..split])?;
    let backbone = match header.backbone_len {
        Some(_) => Some(unpack(Backbone::init(header.backbone, device), &payload[split..])?),
        None => None,
    };
    Ok(Model { header, head, backbone })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (MtlHead, Header) {
        let device = Device::flex();
        let tasks = vec![Task::Gender, Task::Age];
        let head = MtlConfig::new(BackboneKind::Dlib.feature_dim(), tasks.clone())
            .with_shared(vec![16])
            .with_head_hidden(8)
            .init(&device);
        let header = Header {
            format_version: 0,
            backbone: BackboneKind::Dlib,
            tasks,
            shared: vec![16],
            head_hidden: 8,
            age_scale: 40.0,
            age_offset: 0.0,
            detector: DetectorConfig::default(),
            align: BackboneKind::Dlib.align_config(),
            trained_on: "test".into(),
            metrics: vec![("gender_accuracy".into(), 0.9)],
            payload_sha256: String::new(),
            payload_len: 0,
            backbone_len: None,
        };
        (head, header)
    }

    #[test]
    fn a_model_round_trips_and_predicts_the_same() {
        let (head, header) = sample();
        let device = Device::flex();
        let x = Tensor::<2>::ones([2, 128], &device);
        let before = head.forward(x.clone())[1].clone().into_data();
        let bytes = export(head, None, header.clone()).unwrap();
        let loaded = load(&bytes, Some(BackboneKind::Dlib), &device).unwrap();
        assert_eq!(loaded.header.metrics, header.metrics);
        assert_eq!(loaded.header.format_version, FORMAT_VERSION);
        assert!(loaded.backbone.is_none());
        assert_eq!(loaded.head.forward(x)[1].clone().into_data(), before);
    }

    #[test]
    fn a_fine_tuned_backbone_travels_with_its_head() {
        let (head, header) = sample();
        let device = Device::flex();
        let backbone = Backbone::init(BackboneKind::Dlib, &device);
        let crop = Tensor::<4>::ones([1, 3, 150, 150], &device);
        let before = backbone.forward(crop.clone()).into_data();
        let bytes = export(head.clone(), Some(backbone), header.clone()).unwrap();
        let loaded = load(&bytes, None, &device).unwrap();
        assert_eq!(loaded.backbone.expect("a backbone").forward(crop).into_data(), before);
        let wrong = Backbone::init(BackboneKind::Faceres, &device);
        assert!(matches!(export(head, Some(wrong), header), Err(WeightsError::Backbone { .. })));
    }

    #[test]
    fn truncated_tampered_and_mismatched_files_are_refused() {
        let (head, header) = sample();
        let device = Device::flex();
        let bytes = export(head, None, header).unwrap();
        assert!(matches!(
            load(&bytes[..bytes.len() - 10], Some(BackboneKind::Dlib), &device),
            Err(WeightsError::Truncated)
        ));
        assert!(matches!(load(&bytes[..20], Some(BackboneKind::Dlib), &device), Err(WeightsError::Truncated)));
        let mut tampered = bytes.clone();
        let last = tampered.len() - 100;
        tampered[last] ^= 1;
        assert!(matches!(load(&tampered, Some(BackboneKind::Dlib), &device), Err(WeightsError::Checksum)));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(load(&longer, Some(BackboneKind::Dlib), &device), Err(WeightsError::TrailingBytes(1))));
        assert!(matches!(load(&bytes, Some(BackboneKind::Faceres), &device), Err(WeightsError::Backbone { .. })));
        let mut future = bytes.clone();
        future[4] = 9;
        assert!(matches!(load(&future, Some(BackboneKind::Dlib), &device), Err(WeightsError::Version { found: 9 })));
        assert!(matches!(load(b"GIF89a....", Some(BackboneKind::Dlib), &device), Err(WeightsError::NotAModel)));
    }
}
