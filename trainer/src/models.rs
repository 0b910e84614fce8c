//! Loading the converted pretrained networks from the cache.

use anyhow::{Context, Result};
use burn::prelude::*;
use facemtl::backbone::{Backbone, BackboneKind, Tuned};
use facemtl::compact::Precision;
use facemtl::detect::{BlazeFace, Detector, DetectorConfig};
use facemtl::model_file::Header;
use facemtl::pipeline::FacePipeline;
use facemtl::{photo, pretrained};

use crate::cache::Cache;
use crate::cache::read_weights;
use crate::files::read_bounded;

/// Detector settings that can be changed from the command line; unset ones keep the defaults.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DetectorArgs {
    /// Zoom-out levels each photo is searched at (comma-separated; default 1,2).
    #[arg(long, value_delimiter = ',')]
    pub zooms: Option<Vec<f32>>,
    /// Minimum face probability (default 0.5).
    #[arg(long)]
    pub min_score: Option<f32>,
    /// Drop boxes lying inside a better face by more than this share (default 0.3; 1 = off).
    #[arg(long)]
    pub containment: Option<f32>,
    /// Do not search large photos tile by tile.
    #[arg(long)]
    pub no_tiles: bool,
}

impl DetectorArgs {
    pub fn config(&self) -> DetectorConfig {
        let mut config = DetectorConfig::default();
        if let Some(zooms) = &self.zooms {
            config.zooms = zooms.clone();
        }
        if let Some(min_score) = self.min_score {
            config.decode.min_score = min_score;
        }
        if let Some(containment) = self.containment {
            config.decode.containment = containment;
        }
        config.tiles &= !self.no_tiles;
        config
    }
}

/// Read and decode a photo file with the default limits; the error says what went wrong.
pub fn read_photo(path: &std::path::Path) -> Result<image::RgbImage, String> {
    let bytes = read_bounded(path, photo::MAX_PHOTO_BYTES).map_err(|e| format!("{e:#}"))?;
    photo::decode(&bytes, photo::DecodeLimits::default()).map_err(|e| e.to_string())
}

fn detector_model(cache: &Cache, device: &Device) -> Result<BlazeFace> {
    let bytes = read_weights(cache, &cache.detector_weights())?;
    pretrained::load_detector(&bytes, device).context("loading the detector weights")
}

pub fn detector(cache: &Cache, device: &Device, config: DetectorConfig) -> Result<Detector> {
    Ok(Detector::new(detector_model(cache, device)?, config))
}

/// The pretrained `kind` backbone with its weights at `precision`: the exact ones, or the very
/// file the browser downloads.
fn pretrained_backbone(cache: &Cache, kind: BackboneKind, precision: Precision, device: &Device) -> Result<Backbone> {
    let path = match precision {
        Precision::Exact => cache.backbone_weights(kind),
        _ => cache.compact_backbone_weights(kind, precision),
    };
    let bytes = read_weights(cache, &path)?;
    pretrained::load_backbone(kind, &bytes, device).with_context(|| format!("loading the {kind} weights"))
}

/// The pretrained `kind` backbone behind the default detector and alignment (what training
/// extracts features with).
pub fn pipeline(cache: &Cache, kind: BackboneKind, device: &Device) -> Result<FacePipeline> {
    pipeline_at(cache, kind, Precision::Exact, device)
}

/// [`pipeline`] with the backbone's weights at `precision`.
pub fn pipeline_at(cache: &Cache, kind: BackboneKind, precision: Precision, device: &Device) -> Result<FacePipeline> {
    let backbone = pretrained_backbone(cache, kind, precision, device)?;
    Ok(FacePipeline::new(
        detector_model(cache, device)?,
        DetectorConfig::default(),
        backbone,
        kind.align_config(),
        device,
    ))
}

/// The pipeline a model file was trained with: its header's detector and alignment settings,
/// and the pretrained backbone with what the model tuned of it, if anything.
pub fn model_pipeline(cache: &Cache, header: &Header, tuned: Option<Tuned>, device: &Device) -> Result<FacePipeline> {
    let backbone = match tuned {
        Some(Tuned::Whole(backbone)) => backbone,
        tail => {
            let stock = pretrained_backbone(cache, header.backbone, header.backbone_weights, device)?;
            match tail {
                Some(tail) => tail.onto(&stock).map_err(anyhow::Error::msg)?,
                None => stock,
            }
        }
    };
    Ok(FacePipeline::for_model(detector_model(cache, device)?, backbone, header, device))
}
