//! What defines a training run: `facemtl train`'s flags, saved as `config.json` in the run's
//! directory (a resumed run must be given the same ones).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::prelude::*;
use facemtl::backbone::{Backbone, BackboneKind, FaceResTailConfig, Tuned};
use facemtl::mtl::TaskSpec;
use facemtl::training::{FreezeMode, RunSettings, TrainingModel, WeightingKind};
use serde::{Deserialize, Serialize};

use crate::data::utkface::Protocol;
use crate::data::{DataSet, DataSetId, Source};
use crate::faces::looks::Look;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DataSetName {
    Utkface,
    Celeba,
    /// A CSV of your own labelled faces (`--csv`, `--task`).
    Csv,
}

/// Everything that defines a run; saved as `config.json` in its directory.
#[derive(Debug, Clone, Serialize, Deserialize, clap::Args)]
pub struct TrainConfig {
    /// The data set; named twice or more (`--dataset utkface --dataset celeba`), the run trains
    /// on all at once, each task on the faces labelled for it.
    #[arg(long = "dataset", id = "dataset", value_enum, default_value = "utkface", action = clap::ArgAction::Append)]
    #[serde(rename = "dataset", with = "one_or_more")]
    pub datasets: Vec<DataSetName>,
    /// UTKFace protocol.
    #[arg(long, value_enum, default_value_t = Protocol::Coral)]
    pub protocol: Protocol,
    /// With `--dataset csv`: the CSV file (columns `image`, one per task, optional `split`).
    #[arg(long, required_if_eq("dataset", "csv"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<PathBuf>,
    /// With `--dataset csv`, once per task: `NAME:class:LABEL,LABEL,...` or `NAME:regression`.
    #[arg(long = "task", value_name = "DECLARATION")]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<String>,
    /// Train on the browser Lab's features of the data set (`facemtl lab build`) instead of
    /// the data set's photos: the run a Lab run in the browser is compared with.
    #[arg(long, conflicts_with = "fine_tune")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lab: Option<PathBuf>,
    /// faceres (1024-D), faceres-deep (the same network trained further, 1024-D) or dlib (128-D).
    #[arg(long, default_value = "faceres")]
    pub backbone: BackboneKind,
    /// Train the backbone with the head (a GPU job) instead of the head on cached features of
    /// the frozen backbone (`--freeze-backbone`, the default).
    #[arg(long, conflicts_with = "freeze_backbone")]
    #[serde(default)]
    pub fine_tune: bool,
    /// Partial fine-tuning: train the last K blocks of faceres with the head, on activations of
    /// the blocks before them, computed once per face and its mirror image and cached (f16)
    /// under the cache directory. Training sees both mirror views.
    #[arg(long, value_name = "K", conflicts_with_all = ["fine_tune", "lab"], value_parser = tuned_blocks)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tune_blocks: Option<usize>,
    /// The default: extract features once, cache them, train the head on them.
    #[arg(long)]
    #[serde(skip)]
    pub freeze_backbone: bool,
    /// average, learned, uncertainty or dwa.
    #[arg(long, default_value = "learned")]
    pub weighting: WeightingKind,
    /// Weight of the Loss Weight Layer's penalty lambda ||w||^2.
    #[arg(long, default_value_t = 0.1)]
    pub lambda: f64,
    /// early-freeze (the thesis) or early-stop (ablation).
    #[arg(long, default_value = "early-freeze")]
    pub freeze_mode: FreezeMode,
    /// Epochs without validation improvement before a task converges.
    #[arg(long, default_value_t = 5)]
    pub patience: usize,
    #[arg(long, default_value_t = 3e-5)]
    pub lr: f64,
    #[arg(long, default_value_t = 1e-5)]
    pub weight_decay: f64,
    /// Epochs without total validation improvement before the learning rate is divided by 10.
    #[arg(long, default_value_t = 3)]
    pub lr_patience: usize,
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 100)]
    pub max_epochs: usize,
    /// Stop after the epoch that ends past this many seconds of training, with a checkpoint and
    /// the results so far (a machine lent for a fixed time); `--resume` carries on.
    #[arg(long)]
    #[serde(skip)]
    pub time_limit_s: Option<u64>,
    /// Seeds initialisation, dropout and batch order.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Seeds the train/validation(/test) split, so that several seeds share one split.
    #[arg(long, default_value_t = 42)]
    pub split_seed: u64,
    /// Train one task alone (the single-task network) instead of all the data set's tasks.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only: Option<String>,
    /// No progress bar or epoch lines (runs trained side by side).
    #[arg(skip)]
    #[serde(skip)]
    pub quiet: bool,
    /// Use only the first N samples of each split (quick runs and tests).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Widths of the shared layers (comma-separated; none with a bare `--shared`).
    #[arg(long, value_delimiter = ',', num_args = 0.., default_value = "512")]
    pub shared: Vec<usize>,
    #[arg(long, default_value_t = 128)]
    pub head_hidden: usize,
    #[arg(long, default_value_t = 0.5)]
    pub dropout: f64,
    /// Each face's features are the mean of its own and its mirror image's, in training and in
    /// every prediction of the exported model (its header says so): test-time mirror.
    #[arg(long, conflicts_with = "fine_tune")]
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mirror: bool,
    /// Train on each training face seen this way too (`bw`, `small`, `jpeg`, `dark`, `bright`;
    /// repeatable), as an example of its own: augmentation that survives the feature cache,
    /// each view's features extracted once and cached. Frozen features only.
    #[arg(long = "view", value_enum, conflicts_with_all = ["fine_tune", "tune_blocks", "lab"])]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub views: Vec<Look>,
    /// How age is predicted: `regression` (the thesis: one output, squared error) or
    /// `distribution` (a softmax over every year of the protocol's range, DLDL-v2).
    #[arg(long, default_value = "regression")]
    #[serde(default)]
    pub age_head: AgeHead,
    /// A named set of the flags above: `thesis` (the defaults: the thesis's settings), `best`
    /// (ours, chosen on validation splits; see RESULTS.md) or `whole` (the whole backbone
    /// fine-tuned with the head, at the thesis's learning rate). Flags given beside it win.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<Recipe>,
}

/// `--dataset` as `config.json` keeps it: one name as a string (as runs always wrote it), several
/// as a list.
mod one_or_more {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::DataSetName;

    pub fn serialize<S: Serializer>(names: &[DataSetName], s: S) -> Result<S::Ok, S::Error> {
        match names {
            [one] => one.serialize(s),
            many => many.serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<DataSetName>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMore {
            One(DataSetName),
            More(Vec<DataSetName>),
        }
        Ok(match OneOrMore::deserialize(d)? {
            OneOrMore::One(name) => vec![name],
            OneOrMore::More(names) => names,
        })
    }
}

/// A named set of `train` flags (see [`TrainConfig::recipe`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Recipe {
    Thesis,
    Best,
    Whole,
}

impl Recipe {
    /// Its flags, each with its value.
    pub fn flags(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Recipe::Thesis => &[],
            Recipe::Best => &BEST,
            Recipe::Whole => &WHOLE,
        }
    }
}

/// Our best recipe, each choice made on validation splits (RESULTS.md, "Beyond the thesis"): the
/// last two blocks of faceres tuned (better than one on CORAL's validation split), the age as a
/// distribution, every face read with its mirror image, a learning rate ten times the thesis's
/// (whose head needs 50-60 epochs), 12 epochs (a tuned epoch takes minutes on a CPU).
const BEST: [(&str, &str); 5] = [
    ("--tune-blocks", "2"),
    ("--age-head", "distribution"),
    ("--mirror", ""),
    ("--lr", "1e-4"),
    ("--max-epochs", "12"),
];

/// The whole backbone fine-tuned with the head, as the thesis does: at its learning rate 3e-5
/// (`best`'s 1e-4 is too high for the whole network: RESULTS.md), with `best`'s age head, for
/// 10 epochs (about 50 minutes on CORAL on 2 CPU cores). Each batch is mirrored at random, so
/// `--mirror` (cached views) does not apply.
const WHOLE: [(&str, &str); 4] =
    [("--fine-tune", ""), ("--age-head", "distribution"), ("--lr", "3e-5"), ("--max-epochs", "10")];

/// Command-line arguments with each `--recipe NAME` followed by its flags, except those the
/// arguments give themselves (which win).
pub fn expand_recipe(args: Vec<String>) -> Result<Vec<String>> {
    let given = |flag: &str| args.iter().any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    let mut out = Vec::with_capacity(args.len());
    let mut args_iter = args.iter();
    while let Some(arg) = args_iter.next() {
        out.push(arg.clone());
        let name = match arg.strip_prefix("--recipe=") {
            Some(name) => name.to_string(),
            None if arg == "--recipe" => match args_iter.next() {
                Some(name) => {
                    out.push(name.clone());
                    name.clone()
                }
                None => continue, // clap reports the missing value
            },
            None => continue,
        };
        let recipe =
            <Recipe as clap::ValueEnum>::from_str(&name, false).map_err(|e| anyhow::anyhow!("--recipe {e}"))?;
        for (flag, value) in recipe.flags() {
            if !given(flag) {
                out.push(flag.to_string());
                if !value.is_empty() {
                    out.push(value.to_string());
                }
            }
        }
    }
    Ok(out)
}

fn tuned_blocks(text: &str) -> Result<usize, String> {
    let most = facemtl::backbone::faceres::BLOCK_COUNT;
    match text.parse::<usize>() {
        Ok(k) if (1..=most).contains(&k) => Ok(k),
        _ => Err(format!("`{text}`: a number of blocks from 1 to {most}")),
    }
}

/// The age head's form (see [`TrainConfig::age_head`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum AgeHead {
    #[default]
    Regression,
    Distribution,
}

impl TrainConfig {
    /// A configuration from `facemtl train`'s flags (defaults for the rest).
    pub fn from_flags(flags: &[String]) -> Result<Self> {
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            config: TrainConfig,
        }
        use clap::Parser;
        let args = expand_recipe(std::iter::once("train".to_string()).chain(flags.iter().cloned()).collect())?;
        Ok(Flags::try_parse_from(args)?.config)
    }

    pub fn source(&self) -> Result<Source> {
        let one = |name: DataSetName| -> Result<Source> {
            Ok(match (name, self.protocol) {
                (DataSetName::Utkface, Protocol::Coral) => Source::BuiltIn(DataSetId::UtkfaceCoral),
                (DataSetName::Utkface, Protocol::AllAges) => Source::BuiltIn(DataSetId::UtkfaceAllAges),
                (DataSetName::Celeba, _) => Source::BuiltIn(DataSetId::Celeba),
                (DataSetName::Csv, _) => Source::Csv {
                    path: self.csv.clone().context("--dataset csv needs --csv FILE")?,
                    tasks: self.tasks.clone(),
                },
            })
        };
        match self.datasets.as_slice() {
            [] => anyhow::bail!("no --dataset"),
            [name] => one(*name),
            names => {
                if let Some(twice) = names.iter().enumerate().find_map(|(i, n)| names[..i].contains(n).then_some(n)) {
                    anyhow::bail!("--dataset {twice:?} is named twice");
                }
                Ok(Source::Together(names.iter().map(|n| one(*n)).collect::<Result<_>>()?))
            }
        }
    }

    /// The run's data set, cut to `--limit` faces per split (of each data set, when several
    /// train together).
    pub fn load(&self, data_dir: &Path) -> Result<DataSet> {
        let limited = |source: &Source| -> Result<DataSet> {
            let mut set = DataSet::load(source, data_dir, self.split_seed)?;
            if let Some(limit) = self.limit {
                set.truncate(limit);
            }
            Ok(set)
        };
        match self.source()? {
            Source::Together(sources) => DataSet::together(sources.iter().map(limited).collect::<Result<_>>()?),
            source => limited(&source),
        }
    }

    /// The tasks this run trains: all of the data set's, or `--only` the one; age in the
    /// form `--age-head` asks for.
    pub fn tasks(&self, set_tasks: &[TaskSpec]) -> Result<Vec<TaskSpec>> {
        let chosen = match &self.only {
            None => set_tasks.to_vec(),
            Some(name) => {
                let task = set_tasks.iter().find(|t| t.name == *name).with_context(|| {
                    let names: Vec<&str> = set_tasks.iter().map(|t| t.name.as_str()).collect();
                    format!("the data set has no {name} task (it has {})", names.join(", "))
                })?;
                vec![task.clone()]
            }
        };
        // A data set without age (CelebA) has no age head to choose.
        if self.age_head == AgeHead::Regression || chosen.iter().all(|t| t.name != "age") {
            return Ok(chosen);
        }
        let range = self.source()?.age_range();
        let (low, high) = range.context("--age-head distribution needs UTKFace's ages (utkface, either protocol)")?;
        Ok(chosen.into_iter().map(|t| if t.name == "age" { t.as_distribution(low, high) } else { t }).collect())
    }

    /// What the run's flags say of its training (the shared crate's settings, which the
    /// browser's Lab fills from its controls).
    pub fn settings(&self) -> RunSettings {
        RunSettings {
            weighting: self.weighting,
            lambda: self.lambda,
            freeze_mode: self.freeze_mode,
            patience: self.patience,
            lr: self.lr,
            weight_decay: self.weight_decay,
            lr_patience: self.lr_patience,
            batch_size: self.batch_size,
            max_epochs: self.max_epochs,
            seed: self.seed,
            shared: self.shared.clone(),
            head_hidden: self.head_hidden,
            dropout: self.dropout,
        }
    }

    /// A freshly initialised model for `tasks`; what it tunes of the backbone starts as the
    /// pretrained weights (the trainer puts them in) or is read from a record.
    pub fn model(&self, tasks: &[TaskSpec], device: &Device) -> TrainingModel {
        let mut model = self.settings().model(self.backbone.feature_dim(), tasks, device);
        model.backbone = match (self.fine_tune, self.tune_blocks) {
            (true, _) => Some(Tuned::Whole(Backbone::init(self.backbone, device))),
            (false, Some(tuned)) => Some(Tuned::Tail(FaceResTailConfig::new(tuned).init(device))),
            (false, None) => None,
        };
        model
    }

    /// What of `pretrained` this run tunes, as it starts.
    pub fn tuned_part(&self, pretrained: &Backbone) -> Result<Option<Tuned>> {
        Ok(match (self.fine_tune, self.tune_blocks, pretrained.faceres()) {
            (true, _, _) => Some(Tuned::Whole(pretrained.clone())),
            (false, Some(tuned), Some(faceres)) => Some(Tuned::Tail(faceres.tail(tuned))),
            (false, Some(_), None) => anyhow::bail!("--tune-blocks tunes faceres, not {}", pretrained.kind()),
            (false, None, _) => None,
        })
    }
}
