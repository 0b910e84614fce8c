//! The Lab's untrusted inputs: its file (`lab::decode`, which the page and `facemtl train
//! --lab` read) and the run a worker's `start` message asks for (`LabRun::new` and its first
//! epoch, the page's own path). Files start valid and are edited in their header or damaged as
//! bytes; requests carry settings set to extremes. The property: an error, or a run that trains
//! an epoch (or stops as diverged), never a panic or an allocation beyond `CAP`.

use burn::prelude::*;
use burn::tensor::read_sync;
use facemtl::backbone::BackboneKind;
use facemtl::compact::Precision;
use facemtl::lab::{self, LabData, LabError, LabHeader, LabRun, LabSet, LabSetInfo, LabSplit, RunRequest};
use facemtl::mtl::{AgeNorm, Label, TaskSpec};
use facemtl::training::RunSettings;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::{config, mutate, mutation, with_json_header};

/// dlib's feature width, the smallest backbone's.
const DIM: usize = 128;

fn task_set() -> impl Strategy<Value = Vec<TaskSpec>> {
    let age = TaskSpec::age(AgeNorm::ALL_AGES);
    let ages = prop::sample::select(vec![age.clone(), age.as_distribution(0.0, 100.0)]);
    let classes = prop::sample::subsequence(vec![TaskSpec::gender(), TaskSpec::race(), TaskSpec::young()], 0..=3);
    (classes, prop::option::of(ages)).prop_map(|(mut tasks, age)| {
        tasks.extend(age);
        if tasks.is_empty() {
            tasks.push(TaskSpec::gender());
        }
        tasks
    })
}

fn label(task: &TaskSpec, i: usize) -> Label {
    if task.is_regression() { Label::Value((i * 7 % 90) as f32 + 1.0) } else { Label::Class(i % task.outputs()) }
}

/// A valid Lab file of one set of `tasks` with `splits` faces, `bits` per feature.
fn lab_file(tasks: Vec<TaskSpec>, splits: [usize; 3], bits: u8) -> Vec<u8> {
    let split = |n: usize, shift: usize| LabSplit {
        features: (0..n * DIM).map(|i| ((i + shift) * 37 % 101) as f32 / 50.0 - 1.0).collect(),
        labels: (0..n).map(|i| tasks.iter().map(|t| label(t, i + shift)).collect()).collect(),
    };
    let info = LabSetInfo {
        name: "faces".into(),
        title: "Faces".into(),
        description: "fuzz".into(),
        tasks: tasks.clone(),
        splits: [0; 3],
    };
    let header = LabHeader::new(BackboneKind::Dlib, Precision::Exact, bits, "fuzz");
    let splits = [split(splits[0], 0), split(splits[1], 1), split(splits[2], 2)];
    lab::encode(header, &[LabSet { info, splits }])
}

fn small_lab() -> impl Strategy<Value = Vec<u8>> {
    (task_set(), 2usize..24, 1usize..8, 1usize..8, prop::sample::select(vec![4u8, 8]))
        .prop_map(|(tasks, train, val, test, bits)| lab_file(tasks, [train, val, test], bits))
}

/// A place in the Lab header and a value a crafted file might put there.
fn lab_edit() -> impl Strategy<Value = (Vec<&'static str>, Value)> {
    let place = prop::sample::select(vec![
        vec!["dim"],
        vec!["bits"],
        vec!["backbone"],
        vec!["sets"],
        vec!["sets", "0", "name"],
        vec!["sets", "0", "splits"],
        vec!["sets", "0", "tasks"],
        vec!["sets", "0", "tasks", "0", "name"],
        vec!["sets", "0", "tasks", "0", "kind"],
    ]);
    let value = prop_oneof![
        Just(json!(0)),
        Just(json!(3)),
        Just(json!(200_000_000)),
        Just(json!(-1)),
        Just(json!(1e39)),
        Just(json!("score")),
        Just(json!("")),
        Just(json!([])),
        Just(json!(null)),
        Just(json!([0, 0, 0])),
        Just(json!([2, 0, 1])),
        Just(json!([1_000_000_000u64, 1, 1])),
        Just(json!({"distribution": {"low": 0.0, "high": 1e9, "sigma": 2.0}})),
        Just(json!({"distribution": {"low": 0.0, "high": 3e38, "sigma": 0.0}})),
        Just(json!({"regression": {"norm": {"offset": 0.0, "scale": 0.0}}})),
        Just(json!({"class": {"labels": ["male", "male"]}})),
        Just(json!({"class": {"labels": ["a"]}})),
        Just(
            json!([{"name": "age", "kind": {"regression": {"norm": {"offset": 0.0, "scale": 40.0}}}}, {"name": "age", "kind": {"regression": {"norm": {"offset": 0.0, "scale": 40.0}}}}])
        ),
        any::<u64>().prop_map(|v| json!(v)),
        any::<f64>().prop_map(|v| json!(v)),
    ];
    (place, value)
}

/// `bytes` with the header value at `place` replaced by `value` (when the place exists).
fn edit_lab_header(bytes: &[u8], place: &[&str], value: Value) -> Vec<u8> {
    with_json_header(bytes, |json| {
        let mut at = json;
        for key in place {
            let next = match key.parse::<usize>() {
                Ok(i) => at.get_mut(i),
                Err(_) => at.get_mut(*key),
            };
            match next {
                Some(next) => at = next,
                None => return,
            }
        }
        *at = value;
    })
}

/// Small settings, so that a case trains in milliseconds.
fn quick() -> RunSettings {
    RunSettings { shared: vec![8], head_hidden: 4, batch_size: 4, max_epochs: 1, ..lab::demo_settings() }
}

/// One epoch of `request` on `data`: it trains, or stops as diverged (and then says so again,
/// with no network to give).
fn one_epoch(data: &LabData, request: RunRequest) -> Result<(), String> {
    let mut run = LabRun::new(data, request, &Device::flex())?;
    match read_sync(run.epoch()) {
        Ok(_) => Ok(()),
        Err(diverged) => {
            assert!(read_sync(run.epoch()).is_err() && run.usable().is_err(), "a diverged run trained on");
            Err(diverged.to_string())
        }
    }
}

/// Decoding fails, or gives sets that every run of all their tasks can start on and train.
fn decode_and_train(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(data) = lab::decode(bytes) {
        for set in &data.sets {
            let tasks = set.info.tasks.iter().map(|t| t.name.clone()).collect();
            let request = RunRequest { set: set.info.name.clone(), tasks, settings: quick() };
            let started = LabRun::new(&data, request.clone(), &Device::flex()).map(|_| ());
            prop_assert!(started.is_ok(), "a decoded set starts no run: {started:?}");
            let _ = one_epoch(&data, request);
        }
    }
    Ok(())
}

/// The settings of a worker's `start` message, one field set to an extreme.
fn settings_message() -> impl Strategy<Value = Value> {
    let field = prop::sample::select(vec![
        "weighting",
        "lambda",
        "freeze_mode",
        "patience",
        "lr",
        "weight_decay",
        "lr_patience",
        "batch_size",
        "max_epochs",
        "seed",
        "shared",
        "head_hidden",
        "dropout",
    ]);
    let value = prop_oneof![
        Just(json!(0)),
        Just(json!(1)),
        Just(json!(-1)),
        Just(json!(1e30)),
        Just(json!(200_000_000)),
        Just(json!(u64::MAX)),
        Just(json!([200_000_000])),
        Just(json!([0])),
        Just(json!([1, 1, 1, 1, 1])),
        Just(json!([4096])),
        Just(json!("learned")),
        Just(json!("dwa")),
        Just(json!("bogus")),
        Just(json!(null)),
        any::<f64>().prop_map(|v| json!(v)),
    ];
    (field, value).prop_map(|(field, value)| {
        let mut settings = serde_json::to_value(quick()).unwrap();
        settings[field] = value;
        settings
    })
}

/// Headers a crafted Lab file might carry, each refused before anything is sized from it (the
/// findings of issue 30, kept here beside the fuzz targets that generalise them).
#[test]
fn a_header_no_network_of_ours_could_train_from_is_refused_before_anything_is_sized() {
    let refused = |edit: &dyn Fn(&mut Value), why: &str| {
        let file = lab_file(vec![TaskSpec::gender(), TaskSpec::age(AgeNorm::ALL_AGES)], [40, 7, 5], 4);
        let err = lab::decode(&with_json_header(&file, edit)).expect_err(why);
        assert!(matches!(err, LabError::Damaged(_)), "{why}: {err}");
    };
    // A distribution over a billion values (7.8 GB before it aborted), or up to 3e38.
    refused(
        &|h| h["sets"][0]["tasks"][1]["kind"] = json!({"distribution": {"low": 0.0, "high": 1e9, "sigma": 2.0}}),
        "1e9 bins",
    );
    refused(
        &|h| h["sets"][0]["tasks"][1]["kind"] = json!({"distribution": {"low": 0.0, "high": 3e38, "sigma": 2.0}}),
        "3e38",
    );
    refused(&|h| h["sets"][0]["tasks"][1]["kind"]["regression"]["norm"]["scale"] = 0.0.into(), "scale 0");
    refused(&|h| h["sets"][0]["tasks"][0]["name"] = "score".into(), "a reserved name");
    refused(&|h| h["sets"][0]["tasks"][0]["kind"]["class"]["labels"] = json!(["male", "male"]), "repeated labels");
    // Features narrower than the backbone's (the head then panicked on their shape).
    refused(&|h| h["dim"] = 3.into(), "3 features for a 128-wide backbone");
    // Splits a run cannot use (training panicked on an empty concatenation).
    refused(&|h| h["sets"][0]["splits"] = json!([40, 0, 12]), "no validation faces");
    refused(&|h| h["sets"][0]["splits"] = json!([1, 7, 44]), "one training face");
    refused(&|h| h["sets"] = json!([]), "no data set");
    refused(
        &|h| {
            let set = h["sets"][0].clone();
            h["sets"].as_array_mut().unwrap().push(set)
        },
        "a set twice",
    );
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn lab_files_with_edited_headers_never_panic(file in small_lab(), (place, value) in lab_edit()) {
        decode_and_train(&edit_lab_header(&file, &place, value))?;
    }

    #[test]
    fn lab_files_with_damaged_bytes_never_panic(file in small_lab(), mutations in prop::collection::vec(mutation(), 1..4)) {
        decode_and_train(&mutate(file, &mutations))?;
    }

    #[test]
    fn worker_start_messages_never_panic(
        file in small_lab(),
        set in prop_oneof![3 => Just("faces"), 1 => prop::sample::select(vec!["celeba", ""])],
        tasks in prop::sample::subsequence(vec!["gender", "age", "race", "young", "score"], 0..=5),
        settings in settings_message(),
    ) {
        let data = lab::decode(&file).unwrap();
        let message = json!({ "set": set, "tasks": tasks, "settings": settings });
        if let Ok(request) = serde_json::from_value::<RunRequest>(message) {
            let _ = one_epoch(&data, request);
        }
    }
}
