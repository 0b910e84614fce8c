//! The ledger of converted weight files (`converted.json` in the weights folder): what `setup`
//! wrote, so that a damaged file is converted again and loading refuses one that does not match.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use super::Cache;
use crate::files::{read, sha256_hex, write_atomic};

/// The sha256 of each converted weight file and of the sources it was converted from, kept in
/// the weights directory: a damaged file, or one converted from other sources, is converted
/// again, and loading refuses a file that does not match.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Converted {
    /// File name -> (sha256 of the file, sha256 of its sources).
    files: BTreeMap<String, (String, String)>,
}

const CONVERTED: &str = "converted.json";

impl Converted {
    pub fn read(cache: &Cache) -> Self {
        fs::read(cache.weights_dir().join(CONVERTED))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn write(&self, cache: &Cache) -> Result<()> {
        write_atomic(&cache.weights_dir().join(CONVERTED), &serde_json::to_vec_pretty(self)?)
    }

    pub fn holds(&self, path: &Path, sources: &str) -> bool {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        self.files.get(name.as_ref()).is_some_and(|(file, from)| {
            from == sources && fs::read(path).is_ok_and(|bytes| sha256_hex(&bytes) == *file)
        })
    }

    pub fn record(&mut self, path: &Path, bytes: &[u8], sources: &str) -> Result<()> {
        write_atomic(path, bytes)?;
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        self.files.insert(name, (sha256_hex(bytes), sources.to_string()));
        Ok(())
    }
}

/// A converted weight file's bytes, refused unless they match what `setup` wrote.
pub fn read_weights(cache: &Cache, path: &Path) -> Result<Vec<u8>> {
    let bytes = read(path)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    match Converted::read(cache).files.get(name.as_ref()) {
        Some((sha256, _)) if *sha256 == sha256_hex(&bytes) => Ok(bytes),
        _ => bail!("{} is damaged or was not written by `facemtl setup`: run `facemtl setup` again", path.display()),
    }
}
