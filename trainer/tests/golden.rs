//! Burn's networks against the reference runtime (TF.js): golden outputs made once by
//! `tests/golden/make_golden.sh` from the same npm packages, committed in
//! `tests/golden/golden.json`.

mod common;

use std::fs;
use std::path::PathBuf;

use burn::prelude::*;
use facemtl::backbone::BackboneKind;
use facemtl::detect::{BBox, DecodeConfig, Detector, DetectorConfig};
use facemtl::photo::{self, DecodeLimits};
use facemtl::warp::{Affine, Canvas, sample_planar};
use serde::Deserialize;

/// The images: four UTKFace faces (varied age, gender, race), two CelebA faces, and the six
/// group photos shipped in face-api's demo folder.
fn golden_images() -> Vec<(String, PathBuf, bool)> {
    let data = common::data_dir();
    let utk =
        ["30_1_0_20170103180631960", "45_0_1_20170111170148435", "8_1_2_20161219153017828", "62_0_3_20170104212109387"];
    let mut images: Vec<(String, PathBuf, bool)> = utk
        .iter()
        .map(|n| (format!("utk-{n}"), data.join(format!("utkface/UTKFace/{n}.jpg.chip.jpg")), true))
        .collect();
    for n in ["000001", "000002"] {
        images.push((format!("celeba-{n}"), data.join(format!("celeba/img_align_celeba_89x109/{n}.jpg")), true));
    }
    let demo = common::cache().package_dir("@vladmandic/face-api").join("demo");
    for i in 1..=6 {
        images.push((format!("faceapi-sample{i}"), demo.join(format!("sample{i}.jpg")), false));
    }
    images
}

#[derive(Deserialize)]
struct Golden {
    images: Vec<GoldenImage>,
}

#[derive(Deserialize)]
struct GoldenImage {
    name: String,
    logits: Vec<f32>,
    detections: Vec<GoldenDetection>,
    faceres: Option<Vec<f32>>,
    faceres_deep: Option<Vec<f32>>,
    dlib: Option<Vec<f32>>,
}

#[derive(Deserialize)]
struct GoldenDetection {
    #[serde(rename = "box")]
    bbox: [f32; 4],
}

fn load_golden() -> Golden {
    let text =
        fs::read_to_string(common::repo_root().join("tests/golden/golden.json")).expect("golden.json is committed");
    serde_json::from_str(&text).expect("golden.json parses")
}

fn decode(path: &PathBuf) -> image::RgbImage {
    photo::decode(&fs::read(path).expect("golden image readable"), DecodeLimits::default())
        .expect("golden image decodes")
}

/// TF's resize of the whole image to `size`, as the reference fed the backbones.
fn tf_resize(image: &image::RgbImage, size: usize) -> Vec<f32> {
    let map = Affine {
        a: image.width() as f32 / size as f32,
        b: 0.0,
        c: 0.0,
        d: 0.0,
        e: image.height() as f32 / size as f32,
        f: 0.0,
    };
    sample_planar(image, &map, (size, size), Some(Canvas::of(image)))
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Largest difference relative to the reference's magnitude (at least 1): logits reach the
/// hundreds, where f32 sums in another order differ in the fourth decimal.
fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs() / y.abs().max(1.0)).fold(0.0, f32::max)
}

/// The network's scores must match everywhere; the decoding with classic NMS (the
/// reference's) must give the same faces; MediaPipe's weighted NMS, the default, the same count.
/// The reference sees each image once, filling the square: so do these detectors.
#[test]
fn detector_matches_tfjs() {
    let Some(default) = common::detector() else { return };
    // One view and no containment rule: what the reference does.
    let reference_nms = DecodeConfig { containment: 1.0, ..default.config.decode };
    let single = DetectorConfig { zooms: vec![1.0], tiles: false, decode: reference_nms, ..Default::default() };
    let weighted = Detector::new(default.model, single.clone());
    let hard = DetectorConfig { decode: DecodeConfig { weighted: false, ..single.decode }, ..single };
    let hard = Detector::new(common::detector().unwrap().model, hard);
    let golden = load_golden();
    let device = Device::flex();
    let mut worst_logit = 0.0f32;
    let mut worst_iou = 1.0f32;
    for (name, path, _) in golden_images() {
        if !common::present(&path, "golden image") {
            return;
        }
        let reference = golden.images.iter().find(|g| g.name == name).expect("every golden image has a reference");
        let image = decode(&path);
        let batch = hard.inputs(&[&image], &device);
        let raw = hard.model.forward(batch.input).into_data().try_to_vec::<f32>().unwrap();
        let logits: Vec<f32> = raw.chunks_exact(17).map(|r| r[0]).collect();
        let diff = max_rel_diff(&logits, &reference.logits);
        assert!(diff < 1e-4, "{name}: score logits differ from TF.js by {diff} (relative)");
        worst_logit = worst_logit.max(diff);

        let ours = hard.decode(&raw, &batch.views).remove(0);
        assert_eq!(ours.len(), reference.detections.len(), "{name}: face count differs from TF.js");
        let merged = weighted.decode(&raw, &batch.views).remove(0);
        assert_eq!(merged.len(), ours.len(), "{name}: weighted NMS changes the face count");
        for reference in &reference.detections {
            let [x_min, y_min, x_max, y_max] = reference.bbox;
            let theirs = BBox { x_min, y_min, x_max, y_max };
            let best = ours.iter().map(|d| d.bbox.iou(&theirs)).fold(0.0, f32::max);
            assert!(best >= 0.95, "{name}: a TF.js face has IoU {best} with ours");
            worst_iou = worst_iou.min(best);
        }
    }
    eprintln!("detector vs TF.js: max relative logit diff {worst_logit:.2e}, min IoU {worst_iou:.4}");
}

#[test]
fn backbones_match_tfjs() {
    let golden = load_golden();
    for kind in BackboneKind::ALL {
        let Some(pipeline) = common::pipeline(kind) else {
            return;
        };
        let mut worst = 0.0f32;
        for (name, path, with_backbones) in golden_images() {
            if !with_backbones || !common::present(&path, "golden image") {
                continue;
            }
            let reference = golden.images.iter().find(|g| g.name == name).unwrap();
            let expected = match kind {
                BackboneKind::Faceres => reference.faceres.as_ref(),
                BackboneKind::Dlib => reference.dlib.as_ref(),
                BackboneKind::FaceresDeep => reference.faceres_deep.as_ref(),
            }
            .expect("reference features present");
            let ours = pipeline.features(&[tf_resize(&decode(&path), kind.input_size())]).remove(0);
            let diff = max_abs_diff(&ours, expected);
            assert!(diff < 1e-3, "{name}: {kind} features differ from TF.js by {diff}");
            worst = worst.max(diff);
        }
        eprintln!("{kind} vs TF.js: max |feature diff| {worst:.2e}");
    }
}

/// Writes the decoded golden images as lossless PNGs for `make_golden.mjs`.
#[test]
#[ignore = "run by tests/golden/make_golden.sh"]
fn write_golden_inputs() {
    let dir = PathBuf::from(std::env::var("GOLDEN_INPUTS").expect("GOLDEN_INPUTS names the output folder"));
    fs::create_dir_all(&dir).unwrap();
    let mut entries = Vec::new();
    for (name, path, backbones) in golden_images() {
        let png = format!("{name}.png");
        decode(&path).save(dir.join(&png)).unwrap();
        entries.push(serde_json::json!({ "name": name, "png": png, "backbones": backbones }));
    }
    fs::write(dir.join("inputs.json"), serde_json::to_string_pretty(&entries).unwrap()).unwrap();
}
