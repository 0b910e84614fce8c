//! The model file's bytes: writing a head (and what was tuned of its backbone) with its header
//! and checksum, and reading one back with every check before anything is built.

use burn::prelude::*;
use sha2::{Digest, Sha256};

use super::error::WeightsError;
use super::header::Header;
use crate::backbone::{Backbone, BackboneKind, FaceResTailConfig, Tuned};
use crate::calibration::Calibration;
use crate::compact::{self, Precision};
use crate::mtl::MtlHead;

pub const MAGIC: &[u8; 4] = b"FMTL";
pub const FORMAT_VERSION: u32 = 3;
/// The largest model file accepted: a head with a fine-tuned dlib backbone is about 45 MB in
/// f16; anything larger is not ours.
pub const MAX_MODEL_BYTES: usize = 64 << 20;
const MAX_HEADER_BYTES: usize = 64 << 10;
pub(super) const CHECKSUM_LEN: usize = 32;

fn sha256(bytes: &[u8]) -> [u8; CHECKSUM_LEN] {
    Sha256::digest(bytes).into()
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

/// The model file `bytes` with its calibration replaced by `calibration` (fitted after export,
/// by `facemtl calibrate`): the same network, payload and test figures.
pub fn with_calibration(bytes: &[u8], calibration: Calibration) -> Result<Vec<u8>, WeightsError> {
    let (header, payload) = read_header(bytes)?;
    let header = Header { calibration, ..header };
    header.check(payload.len())?;
    let json = serde_json::to_vec(&header).map_err(|e| WeightsError::Header(e.to_string()))?;
    Ok(seal(&json, payload))
}

/// The file of a header's JSON and a payload, checksum appended.
pub(super) fn seal(json: &[u8], payload: &[u8]) -> Vec<u8> {
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
