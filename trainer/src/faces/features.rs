//! Backbone features of every face image, extracted once and cached on disk. The cache key
//! covers everything that changes a feature: the backbone and its weights, the detector's
//! weights and settings, the alignment, and this file's format version. Extraction is
//! incremental and checkpointed, so a killed run keeps what it had computed.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use facemtl::pipeline::FacePipeline;

use super::looks::Look;
use super::{batch_size, best_face_crops, cache_key};
use crate::cache::Cache;
use crate::data::Sample;
use crate::files::{checked, with_checksum, write_atomic};
use crate::progress::progress;

/// Save progress every so many images.
const CHECKPOINT_EVERY: usize = 1024;

/// Features by sample key (data set and path within it); `None` where no face was found or
/// the image is unreadable.
#[derive(Debug, Default)]
pub struct FeatureStore {
    pub dim: usize,
    pub rows: HashMap<String, Option<Vec<f32>>>,
}

impl FeatureStore {
    /// The cache at `path`; empty when there is none yet, or when it fails its checksum
    /// (features are recomputed rather than trusted).
    fn load(path: &Path, dim: usize) -> Result<Self> {
        let empty = FeatureStore { dim, rows: HashMap::new() };
        let Ok(bytes) = fs::read(path) else { return Ok(empty) };
        let Some(body) = checked(&bytes) else {
            eprintln!(
                "warning: the feature cache {} is damaged (checksum); computing its features again",
                path.display()
            );
            return Ok(empty);
        };
        Self::parse(body, dim)
    }

    fn parse(bytes: &[u8], dim: usize) -> Result<Self> {
        let mut store = FeatureStore { dim, rows: HashMap::new() };
        let mut at = 0;
        let mut take = |n: usize| -> Result<&[u8]> {
            let slice = bytes.get(at..at + n).context("feature cache truncated")?;
            at += n;
            Ok(slice)
        };
        let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if word(take(4)?) != dim {
            bail!("the feature cache holds features of another width");
        }
        for _ in 0..word(take(4)?) {
            let len = u16::from_le_bytes(take(2)?.try_into()?) as usize;
            let name = String::from_utf8(take(len)?.to_vec())?;
            let row = match take(1)?[0] {
                0 => None,
                _ => Some(take(4 * dim)?.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()),
            };
            store.rows.insert(name, row);
        }
        Ok(store)
    }

    fn save(&self, path: &Path) -> Result<()> {
        let mut out = Vec::with_capacity(self.rows.len() * (4 * self.dim + 40));
        out.extend((self.dim as u32).to_le_bytes());
        out.extend((self.rows.len() as u32).to_le_bytes());
        let mut names: Vec<_> = self.rows.keys().collect();
        names.sort();
        for name in names {
            out.extend((name.len() as u16).to_le_bytes());
            out.extend(name.as_bytes());
            match &self.rows[name] {
                None => out.push(0),
                Some(row) => {
                    out.push(1);
                    row.iter().for_each(|v| out.extend(v.to_le_bytes()));
                }
            }
        }
        write_atomic(path, &with_checksum(out))
    }

    /// The features of `sample`, if a face was found in it.
    pub fn get(&self, sample: &Sample) -> Option<&[f32]> {
        self.rows.get(&sample.key).and_then(|r| r.as_deref())
    }
}

/// The features of every sample, computing only those not cached yet.
pub fn extract(cache: &Cache, pipeline: &FacePipeline, samples: &[&Sample]) -> Result<FeatureStore> {
    extract_seen(cache, pipeline, samples, Look::Clean)
}

/// [`extract`] of the samples' photos seen with `look` (a cache of its own).
pub fn extract_seen(cache: &Cache, pipeline: &FacePipeline, samples: &[&Sample], look: Look) -> Result<FeatureStore> {
    let dir = cache.root.join("features");
    fs::create_dir_all(&dir)?;
    let path: PathBuf = dir.join(format!("{}{}.bin", cache_key(pipeline)?, look.suffix()));
    let mut store = FeatureStore::load(&path, pipeline.kind().feature_dim())
        .with_context(|| format!("reading the feature cache {}; delete it to rebuild", path.display()))?;
    let todo: Vec<&Sample> = samples.iter().copied().filter(|s| !store.rows.contains_key(&s.key)).collect();
    if todo.is_empty() {
        return Ok(store);
    }
    let kind = pipeline.kind();
    let bar = progress(todo.len() as u64, &format!("{kind} features{}", look.suffix()));
    let mut since_save = 0;
    for chunk in todo.chunks(batch_size(pipeline.device())) {
        let crops = best_face_crops(pipeline, chunk, look);
        let found: Vec<Vec<f32>> = crops.iter().flatten().cloned().collect();
        let mut features = pipeline.features(&found).into_iter();
        for (sample, crop) in chunk.iter().zip(&crops) {
            store.rows.insert(sample.key.clone(), crop.as_ref().and_then(|_| features.next()));
        }
        bar.inc(chunk.len() as u64);
        since_save += chunk.len();
        if since_save >= CHECKPOINT_EVERY {
            store.save(&path)?;
            since_save = 0;
        }
    }
    bar.finish();
    store.save(&path)?;
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_feature_cache_is_recomputed_not_trusted() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("features.bin");
        let mut store = FeatureStore { dim: 3, rows: HashMap::new() };
        store.rows.insert("a.jpg".into(), Some(vec![1.0, 2.0, 3.0]));
        store.rows.insert("b.jpg".into(), None);
        store.save(&path).unwrap();
        let back = FeatureStore::load(&path, 3).unwrap();
        assert_eq!(back.rows, store.rows);
        // One flipped bit in a value: without the checksum it would load as another number.
        let mut bytes = fs::read(&path).unwrap();
        let at = bytes.windows(4).position(|w| w == 2.0f32.to_le_bytes()).unwrap();
        bytes[at + 3] ^= 0x01;
        fs::write(&path, &bytes).unwrap();
        assert!(FeatureStore::load(&path, 3).unwrap().rows.is_empty());
    }
}
