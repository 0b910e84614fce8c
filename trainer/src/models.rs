//! Loading the converted pretrained networks from the cache.

use anyhow::{Context, Result};
use burn::prelude::*;
use facemtl::backbone::BackboneKind;
use facemtl::detect::{DecodeConfig, Detector};
use facemtl::pipeline::FacePipeline;
use facemtl::pretrained;

use crate::cache::Cache;
use crate::setup::read;

pub fn detector(cache: &Cache, device: &Device) -> Result<Detector> {
    let bytes = read(&cache.detector_weights())?;
    let model =
        pretrained::load_detector(&bytes, device).context("loading the detector weights")?;
    Ok(Detector::new(model, DecodeConfig::default()))
}

pub fn pipeline(cache: &Cache, kind: BackboneKind, device: &Device) -> Result<FacePipeline> {
    let bytes = read(&cache.backbone_weights(kind))?;
    let backbone = pretrained::load_backbone(kind, &bytes, device)
        .with_context(|| format!("loading the {kind} weights"))?;
    Ok(FacePipeline {
        detector: detector(cache, device)?,
        backbone,
        device: device.clone(),
    })
}
