//! Why a model file is refused.

use super::{FORMAT_VERSION, MAX_MODEL_BYTES};
use crate::backbone::BackboneKind;

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
