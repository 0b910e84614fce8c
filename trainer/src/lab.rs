//! The browser Lab's data, built from the data sets (`facemtl lab build`), and read back as a
//! run's splits (`facemtl train --lab FILE`), so that a Lab run in the browser and a native run
//! train on the very same numbers.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Result;
use burn::prelude::*;
use burn::tensor::read_sync;
use clap::builder::TypedValueParser as _;
use facemtl::backbone::BackboneKind;
use facemtl::compact::Precision;
use facemtl::lab::{self, LabHeader, LabSet, LabSetInfo, LabSplit};
use facemtl::training::{RunSettings, Session};
use serde::Serialize;

use crate::cache::Cache;
use crate::data::{DataSet, DataSetId, Sample, Source};
use crate::faces::features::{self, FeatureStore};
use crate::files::write_atomic;
use crate::models;
use crate::train::{Splits, TaskSelection, evaluate};

/// The data sets' terms, as the Lab and the README state them.
pub const LICENCE: &str = "Features derived from UTKFace (Zhang, Song and Qi, 2017) and CelebA (Liu, Luo, Wang and \
     Tang, 2015), under their authors' terms: non-commercial research use only; image copyright stays with the \
     original owners.";

/// Which faces the Lab holds, and how finely.
#[derive(Debug, Clone, clap::Args)]
pub struct LabFaces {
    /// Bits per feature (4 or 8).
    #[arg(long, default_value_t = 4, value_parser = clap::builder::PossibleValuesParser::new(["4", "8"]).map(|b| b.parse::<u8>().expect("4 or 8")))]
    pub bits: u8,
    /// UTKFace (all ages) faces in train, validation and test.
    #[arg(long, value_delimiter = ',', num_args = 3, default_values_t = [2000, 500, 500])]
    pub utkface: Vec<usize>,
    /// CelebA faces in train, validation and test.
    #[arg(long, value_delimiter = ',', num_args = 3, default_values_t = [1000, 250, 250])]
    pub celeba: Vec<usize>,
    #[arg(long, env = "FACEMTL_DATA", default_value = "../shared/data")]
    pub data_dir: PathBuf,
}

/// The Lab's backbone: the browser's (faceres on its int8 weights), so that a head trained in
/// the Lab is measured on the features the page computes.
const BACKBONE: BackboneKind = BackboneKind::Faceres;
const WEIGHTS: Precision = Precision::Int8;

/// The first `counts` faces (with a face found) of each split of `set`, with their features.
fn lab_set(set: &DataSet, store: &FeatureStore, counts: &[usize]) -> LabSet {
    let split = |samples: &[Sample], count: usize| {
        let mut out = LabSplit::default();
        for (sample, row) in samples.iter().filter_map(|s| store.get(s).map(|f| (s, f))).take(count) {
            out.features.extend_from_slice(row);
            out.labels.push(sample.labels.clone());
        }
        out
    };
    let info = LabSetInfo {
        name: set.id.name().into(),
        title: set.id.title().into(),
        description: set.id.description().into(),
        tasks: set.tasks.clone(),
        splits: [0; 3],
    };
    LabSet { info, splits: [split(&set.train, counts[0]), split(&set.val, counts[1]), split(&set.test, counts[2])] }
}

/// The Lab's sets with their exact features: the first faces of each split (where a face was
/// found), extracted (or read from the feature cache) with the browser's backbone.
fn exact_sets(cache: &Cache, device: &Device, args: &LabFaces) -> Result<Vec<LabSet>> {
    let pipeline = models::pipeline_at(cache, BACKBONE, WEIGHTS, device)?;
    let mut sets = Vec::new();
    for (id, counts) in [(DataSetId::UtkfaceAllAges, &args.utkface), (DataSetId::Celeba, &args.celeba)] {
        let set = DataSet::load(&Source::BuiltIn(id), &args.data_dir, 42)?;
        // A few more than asked, for the faces where no face is found.
        let wanted: Vec<&Sample> = [&set.train, &set.val, &set.test]
            .iter()
            .zip(counts.iter())
            .flat_map(|(split, &n)| split.iter().take(n + n / 20 + 5))
            .collect();
        let store = features::extract(cache, &pipeline, &wanted)?;
        sets.push(lab_set(&set, &store, counts));
    }
    Ok(sets)
}

fn header(bits: u8) -> LabHeader {
    LabHeader::new(BACKBONE, WEIGHTS, bits, LICENCE)
}

/// Write the Lab file to `out`: [`exact_sets`], quantised to `args.bits`.
pub fn build(cache: &Cache, device: &Device, args: &LabFaces, out: &Path) -> Result<()> {
    let sets = exact_sets(cache, device, args)?;
    let bytes = lab::encode(header(args.bits), &sets);
    if let Some(parent) = out.parent() {
        fs::create_dir_all(parent)?;
    }
    write_atomic(out, &bytes)?;
    for set in &sets {
        let [train, val, test] = [0, 1, 2].map(|i| set.splits[i].len());
        eprintln!("{}: {train} train, {val} validation, {test} test faces", set.info.name);
    }
    eprintln!("wrote {} ({} bytes, {} bits per feature)", out.display(), bytes.len(), args.bits);
    Ok(())
}

/// What the quantisation costs: the same faces' exact and quantised features, one head trained
/// on each with the same seed and settings.
#[derive(Debug, Serialize)]
pub struct QuantisationEffect {
    pub set: String,
    pub bits: u8,
    pub tasks: Vec<String>,
    pub exact_val: Vec<f64>,
    pub quantised_val: Vec<f64>,
    pub exact_test: Vec<f64>,
    pub quantised_test: Vec<f64>,
}

/// [`QuantisationEffect`] for each set of the Lab: heads trained with the Lab's starting
/// settings ([`lab::demo_settings`]).
pub fn quantisation_effect(cache: &Cache, device: &Device, args: &LabFaces) -> Result<Vec<QuantisationEffect>> {
    let exact = exact_sets(cache, device, args)?;
    let quantised = lab::decode(&lab::encode(header(args.bits), &exact))?.sets;
    let dim = BACKBONE.feature_dim();
    let settings = lab::demo_settings();
    let mut effects = Vec::new();
    for (exact, quantised) in exact.iter().zip(&quantised) {
        let [exact_val, exact_test] = train_head(exact, dim, &settings, device)?;
        let [quantised_val, quantised_test] = train_head(quantised, dim, &settings, device)?;
        effects.push(QuantisationEffect {
            set: exact.info.name.clone(),
            bits: args.bits,
            tasks: exact.info.tasks.iter().map(|t| t.metric_name()).collect(),
            exact_val,
            quantised_val,
            exact_test,
            quantised_test,
        });
    }
    Ok(effects)
}

/// A head trained on `set` with `settings` (no files): its validation and test metrics.
fn train_head(set: &LabSet, dim: usize, settings: &RunSettings, device: &Device) -> Result<[Vec<f64>; 2]> {
    let tasks = set.info.tasks.clone();
    let splits = Splits::of_lab(set, dim, &TaskSelection::new(tasks.clone(), &tasks), device);
    let autodiff = device.clone().autodiff();
    let model = settings.model(dim, &tasks, &autodiff);
    let mut session = Session::new(settings.clone(), tasks.clone(), model, &autodiff);
    let targets: Vec<_> = splits.train.targets.iter().map(|t| t.to_device(&autodiff)).collect();
    while !session.is_finished() {
        read_sync(session.epoch(&splits.train, &targets, &splits.val))?;
    }
    let valid = session.model.valid();
    Ok([&splits.val, &splits.test].map(|split| evaluate(&valid.head, None, split, &tasks).metrics))
}
