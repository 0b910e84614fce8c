//! The activation cache of partial fine-tuning on real photos: the tuned blocks on its cached
//! numbers give the backbone's own features (upright and mirror-averaged), and a build killed
//! after its last checkpoint resumes without trusting what it wrote since.

mod common;

use std::fs;

use burn::prelude::*;
use facemtl::backbone::{Backbone, faceres};
use facemtl_trainer::cache::Cache;
use facemtl_trainer::data::Sample;
use facemtl_trainer::faces::activations::{extract, extract_many, view_len};

const FACES: [&str; 2] = ["30_1_0_20170103180631960.jpg.chip.jpg", "10_0_3_20170105175322885.jpg.chip.jpg"];

fn sample(name: &str) -> Sample {
    Sample { file: common::utk(name), key: format!("utkface/{name}"), labels: Vec::new() }
}

fn largest_gap(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn the_tuned_blocks_on_cached_activations_give_the_backbones_features_and_a_killed_build_resumes() {
    let Some(pipeline) = common::pipeline(facemtl::backbone::BackboneKind::Faceres) else {
        return;
    };
    if !FACES.iter().all(|f| common::present(&common::utk(f), "UTKFace")) {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let scratch = temp.path().join("activations");
    let cache = Cache::new(scratch.clone());
    let samples: Vec<Sample> = FACES.iter().map(|f| sample(f)).collect();
    let first: Vec<&Sample> = samples[..1].iter().collect();
    let stores = extract_many(&cache, &pipeline, &first, &[1, 2]).unwrap();
    let Backbone::Faceres(net) = pipeline.backbone() else { unreachable!() };
    let device = Device::flex();
    let crop = facemtl_trainer::faces::best_face_crops(&pipeline, &first, facemtl_trainer::faces::looks::Look::Clean)
        .remove(0)
        .expect("a face");
    let upright = &pipeline.features(std::slice::from_ref(&crop))[0];
    let mirrored = &pipeline.clone().with_mirror(true).features(std::slice::from_ref(&crop))[0];
    for store in &stores {
        let k = store.tuned;
        assert_eq!(store.size(), 2 * 2 * view_len(k) as u64, "one row: both views in f16");
        let (kept, bits) = store.read(&samples[..1]).unwrap();
        assert_eq!(kept.len(), 1);
        let values: Vec<f32> = bits.iter().map(|b| half::f16::from_bits(*b).to_f32()).collect();
        let [c, h, w] = faceres::cut_shape(k);
        let x = Tensor::<4>::from_data(TensorData::new(values, [2, c, h, w]), &device);
        let features = net.tail(k).forward(x).into_data().try_to_vec::<f32>().unwrap();
        let (view, mirror_view) = features.split_at(1024);
        let scale = upright.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(largest_gap(view, upright) < 0.01 * scale, "K={k}: {}", largest_gap(view, upright));
        let mean: Vec<f32> = view.iter().zip(mirror_view).map(|(a, b)| (a + b) / 2.0).collect();
        assert!(largest_gap(&mean, mirrored) < 0.01 * scale, "K={k} mirror: {}", largest_gap(&mean, mirrored));
    }
    // A kill after the checkpoint: bytes past the index's rows are cut off, not read as a face.
    let data = fs::read_dir(scratch.join("features"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-tail1.act"))
        .unwrap();
    let mut bytes = fs::read(&data).unwrap();
    bytes.extend(vec![0x55; 1000]);
    fs::write(&data, bytes).unwrap();
    let all: Vec<&Sample> = samples.iter().collect();
    let store = extract(&cache, &pipeline, &all, 1).unwrap();
    assert_eq!(store.size(), 2 * 2 * 2 * view_len(1) as u64, "two faces, nothing else");
    assert_eq!(fs::metadata(&data).unwrap().len(), store.size());
    let (_, both) = store.read(&samples).unwrap();
    let (_, second) = extract(&cache, &pipeline, &all[1..], 1).unwrap().read(&samples[1..]).unwrap();
    assert_eq!(&both[both.len() / 2..], &second[..], "the second face's row follows the first's");
}
