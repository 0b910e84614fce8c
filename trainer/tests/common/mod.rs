//! Shared by the integration tests: where the data, the cache and the fixtures are, and a
//! printed (never silent) skip when something a test needs is absent.

#![allow(dead_code)]

use std::path::PathBuf;

use burn::prelude::*;
use facemtl::backbone::BackboneKind;
use facemtl::detect::Detector;
use facemtl::pipeline::FacePipeline;
use facemtl_trainer::cache::{Cache, default_dir};
use facemtl_trainer::models;

/// A photo decoded as the app decodes it.
pub fn load(path: &std::path::Path) -> image::RgbImage {
    facemtl::photo::decode(&std::fs::read(path).unwrap(), facemtl::photo::DecodeLimits::default()).unwrap()
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `$FACEMTL_DATA`, default `../shared/data` beside the repository.
pub fn data_dir() -> PathBuf {
    std::env::var_os("FACEMTL_DATA").map(PathBuf::from).unwrap_or_else(|| repo_root().join("../shared/data"))
}

pub fn cache() -> Cache {
    Cache::new(default_dir())
}

pub fn fixture(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(name)
}

/// Prints why a test did not run and returns false when `path` is missing; with
/// `FACEMTL_REQUIRE_DATA=1` (CI) a missing input fails the test instead.
pub fn present(path: &std::path::Path, what: &str) -> bool {
    if path.exists() {
        return true;
    }
    let why = format!("{what} not found at {} (run scripts/test.sh, which sets up weights and data)", path.display());
    assert!(std::env::var_os("FACEMTL_REQUIRE_DATA").is_none_or(|v| v != "1"), "FACEMTL_REQUIRE_DATA=1: {why}");
    eprintln!("SKIP: {why}");
    false
}

pub fn detector() -> Option<Detector> {
    let cache = cache();
    present(&cache.detector_weights(), "detector weights")
        .then(|| models::detector(&cache, &Device::flex(), Default::default()).expect("detector loads"))
}

pub fn pipeline(kind: BackboneKind) -> Option<FacePipeline> {
    let cache = cache();
    (present(&cache.detector_weights(), "detector weights")
        && present(&cache.backbone_weights(kind), "backbone weights"))
    .then(|| models::pipeline(&cache, kind, &Device::flex()).expect("pipeline loads"))
}

pub fn utk(name: &str) -> PathBuf {
    data_dir().join("utkface/UTKFace").join(name)
}
