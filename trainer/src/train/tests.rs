//! The trainer on synthetic features: fine-tuning (whole or the last blocks) moves what it tunes and exports it, Early
//! Freeze never moves frozen parameters, and a damaged checkpoint pointer deletes nothing.

use std::fs;

use burn::module::Module;
use burn::prelude::*;
use clap::Parser;
use facemtl::backbone::{Backbone, BackboneKind, FaceResConfig, Tuned};
use sha2::{Digest, Sha256};

use super::checkpoint::{RunDir, load_module};
use super::split::{Inputs, Split, Splits, TaskSelection};
use super::{TrainConfig, Trainer};
use crate::data::{DataSetId, Label, Sample};
use crate::faces::features::FeatureStore;
use facemtl::training::SessionState;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    config: TrainConfig,
}

fn config(args: &[&str]) -> TrainConfig {
    Cli::parse_from(std::iter::once("train").chain(args.iter().copied())).config
}

fn labels() -> TaskSelection {
    let tasks = DataSetId::UtkfaceCoral.tasks();
    TaskSelection::new(tasks.clone(), &tasks)
}

/// Features where gender is easy (one feature) and age is noisy (learns slowly), so that the
/// tasks converge at different epochs.
fn synthetic(n: usize, dim: usize, seed: u64, device: &Device) -> Split {
    let mut state = seed;
    let mut rand = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as f32 / (1u64 << 31) as f32
    };
    let samples: Vec<Sample> = (0..n)
        .map(|i| Sample {
            file: format!("{i}.jpg").into(),
            key: format!("synthetic/{i}.jpg"),
            labels: vec![Label::Class(i % 2), Label::Value(20.0 + 40.0 * rand()), Label::Class(i % 5)],
        })
        .collect();
    let mut store = FeatureStore { dim, rows: Default::default() };
    for s in &samples {
        let mut row: Vec<f32> = (0..dim).map(|_| rand() - 0.5).collect();
        row[0] = s.class(0).unwrap() as f32 * 2.0 - 1.0;
        row[1] = (s.value(1).unwrap() - 40.0) / 20.0 + rand() - 0.5;
        row[2] = s.class(2).unwrap() as f32 / 4.0;
        store.rows.insert(s.key.clone(), Some(row));
    }
    Split::of_features(&samples, &[&store], &labels(), device)
}

/// A hash of every parameter and running statistic's values, in module order (a record's bytes
/// would also hold parameter ids and training flags, which loading and freezing change).
fn digest<M: Module>(module: M) -> String {
    struct Hasher(Sha256);
    impl burn::module::ModuleVisitor for Hasher {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            for v in param.val().into_data().try_to_vec::<f32>().unwrap() {
                self.0.update(v.to_le_bytes());
            }
        }
    }
    let mut hasher = Hasher(Sha256::new());
    module.visit(&mut hasher);
    hasher.0.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Train one epoch of `flags` on 8 faces of `inputs` from `pretrained`; check that what it
/// tuned moved, is saved, and goes into the model file in half precision. Returns the file's
/// header.
fn check_tuning(flags: &[&str], inputs: impl Fn() -> Inputs, pretrained: Tuned) -> facemtl::model_file::Header {
    let device = Device::flex();
    let config = config(&[flags, &["--max-epochs", "1", "--batch-size", "4", "--lr", "1e-3"]].concat());
    let split = || Split { inputs: inputs(), ..synthetic(8, 128, 3, &device) };
    let before = digest(pretrained.clone());
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("finetune");
    let splits = Splits { train: split(), val: split(), test: split() };
    let result = Trainer::new(&config, labels(), &dir, &device).fit(&splits, Some(pretrained), false).unwrap();
    assert_eq!(result.epochs, 1);
    let run = RunDir { root: dir.clone() };
    let last = run.load_model(&config, "last.bpk", &device).unwrap();
    let tuned = digest(last.backbone.clone().expect("the tuned part is saved"));
    assert_ne!(tuned, before);
    let file = dir.join("model.fmtl");
    let finished = crate::infer::FinishedRun::read(&dir).unwrap();
    let rounded = digest(finished.backbone.clone().expect("the run's tuned part"));
    assert_ne!(rounded, tuned, "the file holds the parameters in half precision");
    assert_eq!(rounded, digest(facemtl::compact::half(last.backbone.unwrap())));
    finished.write(&file, Default::default(), Vec::new(), Default::default()).unwrap();
    let exported = facemtl::model_file::load(&fs::read(&file).unwrap(), None, &device).unwrap();
    assert_eq!(digest(exported.backbone.expect("the model file carries the tuned part")), rounded);
    exported.header
}

#[test]
fn fine_tuning_trains_the_backbone_and_exports_it() {
    let width = 3 * 150 * 150;
    let crops =
        || Inputs::Crops { pixels: (0..8 * width).map(|i| (i * 7919 % 251) as u8).collect(), kind: BackboneKind::Dlib };
    let pretrained = Tuned::Whole(Backbone::init(BackboneKind::Dlib, &Device::flex()));
    let header = check_tuning(&["--backbone", "dlib", "--fine-tune"], crops, pretrained);
    assert_eq!(header.tuned_blocks, None);
}

#[test]
fn partial_fine_tuning_trains_the_last_blocks_on_activations_and_exports_them_alone() {
    let width = crate::faces::activations::view_len(1);
    let activations = || Inputs::Activations {
        values: (0..8 * 2 * width).map(|i| half::f16::from_f32((i * 7919 % 251) as f32 / 100.0).to_bits()).collect(),
        width,
        average_views: true,
    };
    let stock = FaceResConfig::new().init(&Device::flex());
    let header = check_tuning(&["--tune-blocks", "1", "--mirror"], activations, Tuned::Tail(stock.tail(1)));
    assert_eq!(header.tuned_blocks, Some(1));
    assert!(header.test_time_mirror);
}

#[test]
fn early_freeze_freezes_the_tuned_blocks_with_the_shared_layers() {
    let device = Device::flex();
    let config =
        config(&["--tune-blocks", "1", "--lr", "1e-2", "--patience", "1", "--max-epochs", "8", "--batch-size", "8"]);
    let width = crate::faces::activations::view_len(1);
    let split = |n: usize, seed: usize| Split {
        inputs: Inputs::Activations {
            values: (0..n * 2 * width)
                .map(|i| half::f16::from_f32(((i * 7919 + seed * 104729) % 251) as f32 / 100.0).to_bits())
                .collect(),
            width,
            average_views: false,
        },
        ..synthetic(n, 128, seed as u64, &device)
    };
    let splits = Splits { train: split(16, 1), val: split(8, 2), test: split(8, 3) };
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("freeze-tail");
    let stock = FaceResConfig::new().init(&device);
    Trainer::new(&config, labels(), &dir, &device).fit(&splits, Some(Tuned::Tail(stock.tail(1))), false).unwrap();
    let checkpoint = RunDir { root: dir.clone() }.latest_checkpoint().unwrap();
    let state: SessionState =
        serde_json::from_str(&fs::read_to_string(checkpoint.join("state.json")).unwrap()).unwrap();
    assert!(state.early.shared_frozen, "a task converged within {} epochs", state.epoch);
    let first =
        (0..3).filter(|&t| state.early.is_converged(t)).min_by_key(|&t| state.early.tasks[t].converged_at).unwrap();
    let tasks = labels().tasks;
    let fresh = || config.model(&tasks, &device);
    let last = load_module(fresh(), &dir.join("last.bpk")).unwrap();
    let snapshot = load_module(fresh(), &checkpoint.join(format!("best-task{first}.bpk"))).unwrap();
    assert_eq!(digest(last.backbone.clone().unwrap()), digest(snapshot.backbone.unwrap()), "the tuned blocks");
    assert_ne!(digest(last.backbone.unwrap()), digest(Tuned::Tail(stock.tail(1))), "they did train first");
}

#[test]
fn activation_rows_pick_the_view_each_face_is_seen_in() {
    let device = Device::flex();
    // Two faces of 3 values per view: the views' values tell them apart.
    let values = [1.0f32, 1.0, 1.0, -1.0, -1.0, -1.0, 2.0, 2.0, 2.0, -2.0, -2.0, -2.0];
    let inputs = Inputs::Activations {
        values: values.iter().map(|v| half::f16::from_f32(*v).to_bits()).collect(),
        width: 3,
        average_views: false,
    };
    let rows = inputs.rows(&[1, 0, 1], &[true, false, false], &device).into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(rows, vec![-2.0, -2.0, -2.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
}

#[test]
fn a_damaged_checkpoint_pointer_deletes_nothing_and_resumes_from_the_newest_checkpoint() {
    let temp = tempfile::tempdir().unwrap();
    let scratch = temp.path().join("pointer");
    let run = RunDir { root: scratch.join("run") };
    let outside = scratch.join("x");
    for dir in [run.checkpoint(3), run.checkpoint(4), outside.clone()] {
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("state.json"), "{}").unwrap();
    }
    fs::write(run.root.join("metrics.csv"), "kept").unwrap();
    for pointer in ["", "../x", ".", "checkpoint-latest", "/tmp", "checkpoint-../../x"] {
        fs::write(run.latest(), pointer).unwrap();
        assert_eq!(run.latest_checkpoint(), Some(run.checkpoint(4)), "{pointer:?}");
        run.advance_latest(&run.checkpoint(5)).unwrap();
        assert!(run.root.join("metrics.csv").is_file() && outside.is_dir(), "{pointer:?} deleted something");
        assert!(run.checkpoint(3).is_dir() && run.checkpoint(4).is_dir());
    }
    fs::write(run.latest(), "checkpoint-0003\n").unwrap();
    assert_eq!(run.latest_checkpoint(), Some(run.checkpoint(3)));
    run.advance_latest(&run.checkpoint(4)).unwrap();
    assert!(!run.checkpoint(3).exists(), "the previous checkpoint is removed");
    assert_eq!(fs::read_to_string(run.latest()).unwrap(), "checkpoint-0004");
}

#[test]
fn frozen_parameters_never_change_after_early_freeze() {
    let device = Device::flex();
    let config = config(&[
        "--backbone",
        "dlib",
        "--lr",
        "3e-3",
        "--patience",
        "2",
        "--max-epochs",
        "40",
        "--shared",
        "32",
        "--head-hidden",
        "16",
    ]);
    let splits = Splits {
        train: synthetic(256, 128, 1, &device),
        val: synthetic(128, 128, 2, &device),
        test: synthetic(128, 128, 2, &device),
    };
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("freeze");
    Trainer::new(&config, labels(), &dir, &device).fit(&splits, None, false).unwrap();

    let run = RunDir { root: dir.clone() };
    let checkpoint = run.latest_checkpoint().unwrap();
    let state: SessionState =
        serde_json::from_str(&fs::read_to_string(checkpoint.join("state.json")).unwrap()).unwrap();
    let first =
        (0..3).filter(|&t| state.early.is_converged(t)).min_by_key(|&t| state.early.tasks[t].converged_at).unwrap();
    assert!(state.early.shared_frozen);
    let tasks = labels().tasks;
    let fresh = || config.model(&tasks, &device);
    let last = load_module(fresh(), &dir.join("last.bpk")).unwrap();
    let snapshot = load_module(fresh(), &checkpoint.join(format!("best-task{first}.bpk"))).unwrap();
    // Shared layers: restored to the first converged task's best epoch, then never moved.
    assert_eq!(digest(last.head.shared.clone()), digest(snapshot.head.shared.clone()));
    for (task, progress) in state.early.tasks.iter().enumerate() {
        if progress.converged_at.is_some() {
            let best = load_module(fresh(), &checkpoint.join(format!("best-task{task}.bpk"))).unwrap();
            assert_eq!(digest(last.head.heads[task].clone()), digest(best.head.heads[task].clone()), "head {task}");
        }
    }
    // One loss panel per task, and a confusion matrix per classification task.
    let loss = image::open(dir.join("plots/loss.png")).unwrap();
    assert_eq!((loss.width(), loss.height()), (3 * 420, 340));
    assert!(dir.join("plots/confusion-race.png").is_file() && dir.join("plots/loss-weights.png").is_file());
    // And the run did train: the shared layers are not at their initial values.
    assert_ne!(digest(config.model(&tasks, &device.clone().autodiff()).head.shared), digest(last.head.shared));
}

#[test]
fn train_s_default_flags_are_the_shared_crate_s_default_settings() {
    // The browser's Lab starts from `RunSettings::default()`: the same run as a bare `train`.
    assert_eq!(config(&[]).settings(), facemtl::training::RunSettings::default());
}

#[test]
fn a_recipe_sets_its_flags_and_flags_given_beside_it_win() {
    let parse =
        |args: &[&str]| TrainConfig::from_flags(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    let best = parse(&["--recipe", "best", "--lr", "3e-4"]);
    assert_eq!(best.lr, 3e-4, "the flag given wins");
    assert_eq!(best.tune_blocks, Some(2));
    assert!(best.mirror);
    assert_eq!(best.age_head, super::config::AgeHead::Distribution);
    let thesis = parse(&["--recipe=thesis"]);
    let defaults = parse(&[]);
    assert_eq!(thesis.settings(), defaults.settings());
    assert_eq!((thesis.tune_blocks, thesis.mirror, thesis.age_head), (None, false, defaults.age_head));
    let whole = parse(&["--recipe", "whole"]);
    assert!(whole.fine_tune && whole.tune_blocks.is_none());
    assert_eq!((whole.lr, whole.max_epochs, whole.age_head), (3e-5, 10, super::config::AgeHead::Distribution));
    assert!(TrainConfig::from_flags(&["--recipe".into(), "fastest".into()]).is_err());
    // On a data set without age the recipe's age head has nothing to change.
    let celeba = parse(&["--recipe", "best", "--dataset", "celeba"]);
    assert_eq!(celeba.tasks(&DataSetId::Celeba.tasks()).unwrap(), DataSetId::Celeba.tasks());
}

#[test]
fn a_second_run_into_a_run_folder_in_use_is_refused_until_the_first_ends() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("run");
    let first = RunDir::lock(&dir).unwrap();
    let err = RunDir::lock(&dir).unwrap_err().to_string();
    assert!(err.contains("in use by another facemtl run"), "{err}");
    // `train` itself takes the lock before it reads any data.
    let cache = crate::cache::Cache::new(temp.path().join("cache"));
    let config = config(&["--dataset", "utkface"]);
    let refused = super::run(&cache, &Device::flex(), &config, temp.path(), &dir, false).unwrap_err();
    assert!(refused.to_string().contains("in use"), "{refused}");
    drop(first);
    assert!(RunDir::lock(&dir).is_ok(), "free again once the first run has ended");
}

#[test]
fn a_view_adds_each_face_seen_that_way_as_an_example_of_its_own() {
    let device = Device::flex();
    let samples: Vec<Sample> = (0..3)
        .map(|i| Sample {
            file: format!("{i}.jpg").into(),
            key: format!("view/{i}.jpg"),
            labels: vec![Label::Class(i % 2), Label::Value(30.0 + i as f32), Label::Class(i)],
        })
        .collect();
    let store = |offset: f32, found: &[usize]| FeatureStore {
        dim: 2,
        rows: samples
            .iter()
            .enumerate()
            .map(|(i, s)| (s.key.clone(), found.contains(&i).then(|| vec![offset + i as f32; 2])))
            .collect(),
    };
    // The view finds no face in the last photo: that face is read clean only.
    let (clean, seen) = (store(0.0, &[0, 1, 2]), store(10.0, &[0, 1]));
    let split = Split::of_features(&samples, &[&clean, &seen], &labels(), &device);
    let keys: Vec<&str> = split.samples.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["view/0.jpg", "view/1.jpg", "view/2.jpg", "view/0.jpg", "view/1.jpg"]);
    let Inputs::Features(x) = &split.inputs else { panic!("features") };
    let firsts: Vec<f32> = x.clone().slice([0..5, 0..1]).into_data().try_to_vec().unwrap();
    assert_eq!(firsts, [0.0, 1.0, 2.0, 10.0, 11.0]);
    assert_eq!(split.truth[1], [30.0, 31.0, 32.0, 30.0, 31.0], "each view keeps its face's labels");
    // The flag parses, repeatable, and stays off partial fine-tuning.
    assert_eq!(config(&["--view", "bw", "--view", "small"]).views.len(), 2);
    let refused = Cli::try_parse_from(["train", "--view", "bw", "--tune-blocks", "1", "--run-dir", "x"]);
    assert!(refused.is_err());
}
