//! `facemtl train --lab FILE`: a run's splits read from the browser Lab's file, so that a Lab run
//! in the page and a native run train on the very same numbers.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::prelude::*;
use facemtl::lab::{self, LabHeader, LabSet};

use super::split::{Split, Splits, TaskSelection};
use crate::data::{DataSetId, Sample};
use crate::faces::features::FeatureStore;
use crate::files::read_bounded;

/// The Lab file's set for the data set `id`, read from `path`.
pub fn read_set(path: &Path, id: DataSetId) -> Result<(LabHeader, LabSet)> {
    let bytes = read_bounded(path, lab::MAX_LAB_BYTES).context("cannot read the Lab file")?;
    let data = lab::decode(&bytes).with_context(|| path.display().to_string())?;
    let names: Vec<&str> = data.sets.iter().map(|s| s.info.name.as_str()).collect();
    let set = data
        .set(id.name())
        .with_context(|| format!("{} holds {}, not {}", path.display(), names.join(" and "), id.name()))?
        .clone();
    Ok((data.header, set))
}

impl Splits {
    /// A Lab set's three splits as a run's, each face named `lab/SET/SPLIT/INDEX`.
    pub fn of_lab(set: &LabSet, dim: usize, labels: &TaskSelection, device: &Device) -> Splits {
        let split = |which: usize, name: &str| {
            let lab = &set.splits[which];
            let samples: Vec<Sample> = lab
                .labels
                .iter()
                .enumerate()
                .map(|(i, l)| Sample {
                    file: PathBuf::new(),
                    key: format!("lab/{}/{name}/{i}", set.info.name),
                    labels: l.clone(),
                })
                .collect();
            let store = FeatureStore {
                dim,
                rows: samples
                    .iter()
                    .zip(lab.features.chunks_exact(dim))
                    .map(|(s, f)| (s.key.clone(), Some(f.to_vec())))
                    .collect(),
            };
            Split::of_features(&samples, &[&store], labels, device)
        };
        Splits { train: split(0, "train"), val: split(1, "val"), test: split(2, "test") }
    }
}
