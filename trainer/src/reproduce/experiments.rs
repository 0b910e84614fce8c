//! The sweep's configurations: the thesis's experiments, each run with several seeds, per
//! backbone.

use std::path::{Path, PathBuf};

use facemtl::backbone::BackboneKind;
use serde::{Deserialize, Serialize};

use crate::data::DataSetId;

/// One configuration of the sweep (its seeds are separate runs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Experiment {
    pub data: DataSetId,
    pub backbone: BackboneKind,
    /// Directory-safe name, e.g. `mtl-learned`, `single-net-gender`.
    pub name: String,
    /// What the thesis calls it.
    pub label: String,
    /// `facemtl train` flags without backbone, data and seed.
    pub flags: Vec<String>,
}

impl Experiment {
    fn data_flags(&self) -> Vec<String> {
        let flags: &[&str] = match self.data {
            DataSetId::UtkfaceCoral => &["--dataset", "utkface", "--protocol", "coral"],
            DataSetId::UtkfaceAllAges => &["--dataset", "utkface", "--protocol", "all-ages"],
            DataSetId::Celeba | DataSetId::Csv => &["--dataset", "celeba"],
        };
        flags.iter().map(|s| s.to_string()).collect()
    }

    /// The full `facemtl train` flags of seed `seed`.
    pub fn train_flags(&self, seed: u64) -> Vec<String> {
        let mut flags = self.data_flags();
        flags.extend(["--backbone".into(), self.backbone.name().into(), "--seed".into(), seed.to_string()]);
        flags.extend(self.flags.iter().cloned());
        flags
    }

    pub fn run_dir(&self, runs: &Path, seed: u64) -> PathBuf {
        runs.join(self.data.name()).join(self.backbone.name()).join(format!("{}-seed{seed}", self.name))
    }
}

fn flags(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The sweep for one backbone: the analogues of the thesis's Tables 4.6-4.15 and 5.1-5.5.
pub fn experiments(backbone: BackboneKind) -> Vec<Experiment> {
    let mut list = Vec::new();
    let mut add = |data: DataSetId, name: String, label: String, f: Vec<String>| {
        list.push(Experiment { data, backbone, name, label, flags: f })
    };
    for data in [DataSetId::UtkfaceCoral, DataSetId::Celeba] {
        for task in data.tasks() {
            let t = task.name.as_str();
            add(
                data,
                format!("baseline-{t}"),
                format!("single-task baseline ({t})"),
                flags(&["--only", t, "--shared", "--head-hidden", "0"]),
            );
            add(data, format!("single-net-{t}"), format!("single-task network ({t})"), flags(&["--only", t]));
        }
        add(data, "mtl-learned".into(), "MTL, learned loss, Early Freeze (the thesis)".into(), Vec::new());
        add(data, "mtl-average".into(), "MTL, average loss".into(), flags(&["--weighting", "average"]));
        add(
            data,
            "mtl-early-stop".into(),
            "MTL, early stopping of converged tasks".into(),
            flags(&["--freeze-mode", "early-stop"]),
        );
        for lambda in ["0.001", "0.01", "1"] {
            add(
                data,
                format!("mtl-lambda-{lambda}"),
                format!("MTL, learned loss, lambda {lambda}"),
                flags(&["--lambda", lambda]),
            );
        }
        add(
            data,
            "mtl-uncertainty".into(),
            "MTL, uncertainty weighting".into(),
            flags(&["--weighting", "uncertainty"]),
        );
        add(data, "mtl-dwa".into(), "MTL, dynamic weight averaging".into(), flags(&["--weighting", "dwa"]));
    }
    // Beyond the thesis: our best recipe (chosen on validation splits), faceres only, as it
    // tunes faceres blocks. On all ages it tunes one block, as the shipped model does: two
    // blocks' activations of every UTKFace face take 9.5 GB per run, one at a time.
    if backbone == BackboneKind::Faceres {
        for data in [DataSetId::UtkfaceCoral, DataSetId::Celeba] {
            add(data, "best".into(), "our best recipe (`--recipe best`)".into(), flags(&["--recipe", "best"]));
        }
        add(
            DataSetId::UtkfaceAllAges,
            "best".into(),
            "our best recipe, one tuned block (`--recipe best --tune-blocks 1`, the shipped model)".into(),
            flags(&["--recipe", "best", "--tune-blocks", "1"]),
        );
    }
    // The shipped protocol: children and the old too (under-10s and over-70s in the groups); for
    // the shipped backbone only, as dlib's features of the whole of UTKFace would take 20 minutes.
    if backbone == BackboneKind::Faceres {
        add(
            DataSetId::UtkfaceAllAges,
            "mtl-learned".into(),
            "MTL, learned loss, Early Freeze (the thesis)".into(),
            Vec::new(),
        );
    }
    list
}
