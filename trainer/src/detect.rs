//! `facemtl detect`: every face found in the given photos, as JSON lines.

use std::path::PathBuf;

use anyhow::Result;
use burn::prelude::*;
use facemtl::detect::Detection;
use serde::Serialize;

use crate::cache::Cache;
use crate::models::{self, DetectorArgs};
use crate::output::JsonLines;

#[derive(Serialize)]
struct FaceLine<'a> {
    file: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    faces: Vec<Detection>,
}

/// One line per photo: its faces, or why it could not be read.
pub fn detect_files(cache: &Cache, device: &Device, images: &[PathBuf], args: &DetectorArgs) -> Result<()> {
    let detector = models::detector(cache, device, args.config())?;
    let mut out = JsonLines::stdout();
    for path in images {
        let file = path.display().to_string();
        let line = match models::read_photo(path) {
            Ok(image) => {
                FaceLine { file: &file, error: None, faces: detector.detect_batch(&[&image], device).remove(0) }
            }
            Err(error) => FaceLine { file: &file, error: Some(error), faces: Vec::new() },
        };
        if !out.write(&line)? {
            break;
        }
    }
    Ok(())
}
