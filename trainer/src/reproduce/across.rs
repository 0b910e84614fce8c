//! The report's last section read outside each run's training data: every run of its rows on the
//! other data set's validation faces, as photos are and in black and white. These are the
//! figures models are chosen on (issue 29), beside the in-distribution ones.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fs;
use std::path::Path;

use anyhow::Result;

use super::experiments::{BEYOND, data_flags};
use super::sweep::{Seen, Sweep};
use crate::cache::Cache;
use crate::data::{DataSet, DataSetId};
use crate::faces::looks::Look;
use crate::files::write_atomic;
use crate::infer::FinishedRun;
use crate::train::TrainConfig;

/// How the other data set's faces are seen.
pub const LOOKS: [Look; 2] = [Look::Clean, Look::Bw];

/// Where a model trained on `data` is read: CelebA for UTKFace's protocols, all of UTKFace for
/// CelebA; nowhere for a CSV data set.
pub fn other(data: DataSetId) -> Option<DataSetId> {
    match data {
        DataSetId::UtkfaceCoral | DataSetId::UtkfaceAllAges => Some(DataSetId::Celeba),
        DataSetId::Celeba => Some(DataSetId::UtkfaceAllAges),
        DataSetId::Csv => None,
    }
}

/// Every finished run of the last section's rows read on its other data set. A run that cannot
/// be read is reported and left without the figures: the rest of the report still stands.
pub fn read_sweep(cache: &Cache, data_dir: &Path, runs_dir: &Path, sweep: &mut Sweep) -> Result<()> {
    let mut sets: BTreeMap<DataSetId, DataSet> = BTreeMap::new();
    for (experiment, runs) in &mut sweep.runs {
        let Some(other) = other(experiment.data) else { continue };
        if runs.is_empty() || !BEYOND.iter().any(|(_, name)| *name == experiment.name) {
            continue;
        }
        let set = match sets.entry(other) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(new) => new.insert(TrainConfig::from_flags(&data_flags(other))?.load(data_dir)?),
        };
        for run in runs.iter_mut() {
            let dir = experiment.run_dir(runs_dir, run.seed);
            match read_run(cache, &dir, set) {
                Ok(seen) => run.across = seen,
                Err(e) => eprintln!("warning: {} not read on {other}: {e:#}", dir.display()),
            }
        }
    }
    Ok(())
}

/// The finished run in `dir` on `set`'s validation faces in every look, kept in the run's
/// directory (`across.json`) so that a resumed sweep reads them back.
fn read_run(cache: &Cache, dir: &Path, set: &DataSet) -> Result<Vec<Seen>> {
    let path = dir.join("across.json");
    if let Some(seen) = fs::read_to_string(&path).ok().and_then(|text| serde_json::from_str(&text).ok()) {
        return Ok(seen);
    }
    let run = FinishedRun::read(dir)?;
    let seen = LOOKS
        .iter()
        .map(|&look| Ok(Seen { look, across: run.across(cache, set, &set.val, look)? }))
        .collect::<Result<Vec<_>>>()?;
    write_atomic(&path, serde_json::to_string_pretty(&seen)?.as_bytes())?;
    Ok(seen)
}
