//! The face pipeline on real photos: orientation, many faces, no face, and alignment.

mod common;

use std::fs;

use burn::prelude::*;
use facemtl::align::align;
use facemtl::backbone::BackboneKind;
use facemtl::compact::Precision;
use facemtl::detect::DetectorConfig;
use image::{GenericImage, RgbImage};

use common::load;

const FACE: &str = "30_1_0_20170103180631960.jpg.chip.jpg";

/// The faceres pipeline and the UTKFace photo `FACE`, when the weights and data are here.
fn faceres_and_face() -> Option<(facemtl::pipeline::FacePipeline, RgbImage)> {
    let pipeline = common::pipeline(BackboneKind::Faceres)?;
    let path = common::utk(FACE);
    common::present(&path, "UTKFace").then(|| (pipeline, load(&path)))
}

#[test]
fn an_upright_face_has_its_right_eye_on_the_image_left() {
    let Some(detector) = common::detector() else {
        return;
    };
    let path = common::utk(FACE);
    if !common::present(&path, "UTKFace") {
        return;
    }
    let faces = detector.detect_batch(&[&load(&path)], &Device::flex()).remove(0);
    assert_eq!(faces.len(), 1);
    let k = faces[0].keypoints;
    assert!(k.right_eye.x < k.nose.x && k.nose.x < k.left_eye.x, "{k:?}");
    assert!(k.right_eye.y < k.mouth.y && k.left_eye.y < k.mouth.y);
}

#[test]
fn exif_rotated_phone_photo_is_detected_upright() {
    let Some(detector) = common::detector() else {
        return;
    };
    let image = load(&common::fixture("exif_rotated.jpg"));
    let faces = detector.detect_batch(&[&image], &Device::flex()).remove(0);
    assert_eq!(faces.len(), 1, "one face in the rotated photo");
    let k = faces[0].keypoints;
    let (dx, dy) = (k.left_eye.x - k.right_eye.x, k.left_eye.y - k.right_eye.y);
    assert!(dx > 0.0 && dy.abs() < 0.25 * dx, "eyes level after EXIF rotation: dx {dx}, dy {dy}");
}

#[test]
fn a_photo_without_a_face_gives_no_detection() {
    let Some(detector) = common::detector() else {
        return;
    };
    // A sky-to-grass landscape with a low sun: structure, but nothing face-like.
    let landscape = RgbImage::from_fn(640, 480, |x, y| {
        let sun = ((x as f32 - 480.0).powi(2) + (y as f32 - 150.0).powi(2)).sqrt() < 40.0;
        if sun {
            image::Rgb([250, 220, 120])
        } else if y < 300 {
            image::Rgb([90 + (y / 6) as u8, 140 + (y / 5) as u8, 230])
        } else {
            image::Rgb([40 + (x % 17) as u8, 120 + (y % 23) as u8, 40])
        }
    });
    assert!(detector.detect_batch(&[&landscape], &Device::flex()).remove(0).is_empty());
}

#[test]
fn a_group_of_thirty_faces_gives_thirty_detections() {
    let Some(detector) = common::detector() else {
        return;
    };
    let dir = common::data_dir().join("utkface/UTKFace");
    if !common::present(&dir, "UTKFace") {
        return;
    }
    let mut names: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    // Adults of every race, spread over the alphabetical listing.
    let faces: Vec<RgbImage> = names
        .iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("3"))
        .step_by(97)
        .take(30)
        .map(|p| load(p))
        .collect();
    assert_eq!(faces.len(), 30);
    let mut group = RgbImage::new(6 * 200, 5 * 200);
    for (i, face) in faces.iter().enumerate() {
        group.copy_from(face, (i % 6) as u32 * 200, (i / 6) as u32 * 200).unwrap();
    }
    let found = detector.detect_batch(&[&group], &Device::flex()).remove(0);
    assert_eq!(found.len(), 30, "every tile holds one face");
    for d in &found {
        let (cx, cy) = ((d.bbox.x_min + d.bbox.x_max) / 2.0, (d.bbox.y_min + d.bbox.y_max) / 2.0);
        let (tx, ty) = ((cx / 200.0).floor(), (cy / 200.0).floor());
        assert!(
            (cx - (tx * 200.0 + 100.0)).abs() < 40.0 && (cy - (ty * 200.0 + 100.0)).abs() < 50.0,
            "box centred in its tile: {cx},{cy}"
        );
    }
}

#[test]
fn alignment_puts_the_eyes_where_the_config_says() {
    let Some((pipeline, image)) = faceres_and_face() else {
        return;
    };
    let detection = pipeline.detect(&[&image]).remove(0)[0];
    let config = BackboneKind::Faceres.align_config();
    let crop = align(&image, &detection.keypoints, &config);
    // Back to an image, and detect again: the eyes must sit at the canonical places.
    let size = config.size as u32;
    let plane = (size * size) as usize;
    let crop_image = RgbImage::from_fn(size, size, |x, y| {
        let i = (y * size + x) as usize;
        image::Rgb([crop[i] as u8, crop[plane + i] as u8, crop[2 * plane + i] as u8])
    });
    let again = pipeline.detect(&[&crop_image]).remove(0);
    assert_eq!(again.len(), 1);
    let k = again[0].keypoints;
    let side = config.size as f32;
    let expect_right = ((0.5 - config.eye_distance / 2.0) * side, config.eye_line * side);
    let expect_left = ((0.5 + config.eye_distance / 2.0) * side, config.eye_line * side);
    for ((x, y), (ex, ey)) in
        [((k.right_eye.x, k.right_eye.y), expect_right), ((k.left_eye.x, k.left_eye.y), expect_left)]
    {
        // BlazeFace's eye keypoints are coarse (a few per cent of the face's size): the
        // transform itself is exact (see align's unit tests), the re-detection is not.
        let tolerance = 0.06 * side;
        assert!((x - ex).abs() < tolerance && (y - ey).abs() < tolerance, "eye at ({x}, {y}), expected ({ex}, {ey})");
    }
}

#[test]
fn faceres_peer_heads_read_gender_and_age_from_the_features() {
    let Some(pipeline) = common::pipeline(BackboneKind::Faceres) else { return };
    let facemtl::backbone::Backbone::Faceres(faceres) = pipeline.backbone() else { unreachable!() };
    let dir = common::data_dir().join("utkface/UTKFace");
    if !common::present(&dir, "UTKFace") {
        return;
    }
    // Every 500th face of UTKFace (all ages): gender and age from the names.
    let mut names: Vec<String> =
        fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    let mut right = 0;
    let mut age_error = 0.0;
    let mut count = 0;
    for name in names.iter().step_by(500) {
        let Ok((age, gender, _)) = facemtl_trainer::data::utkface::parse_name(name) else { continue };
        let image = load(&dir.join(name));
        let faces = pipeline.detect(&[&image]).remove(0);
        let Some(face) = faces.first() else { continue };
        let features = pipeline.embed(&pipeline.align(&image, std::slice::from_ref(face)));
        let (male, ages) = faceres.peer(features);
        let male = male.into_data().try_to_vec::<f32>().unwrap()[0];
        let ages = ages.into_data().try_to_vec::<f32>().unwrap();
        let expected: f32 = ages.iter().enumerate().map(|(i, p)| (i + 1) as f32 * p).sum();
        right += usize::from((male > 0.5) == (gender == 0));
        age_error += (expected - age as f32).abs();
        count += 1;
    }
    let (accuracy, mae) = (right as f32 / count as f32, age_error / count as f32);
    eprintln!("faceres peer on {count} UTKFace faces: gender {accuracy:.3}, age MAE {mae:.1}");
    assert!(count >= 40);
    assert!(accuracy > 0.8 && mae < 12.0, "the peer heads must read the features: gender {accuracy}, MAE {mae}");
}

#[test]
fn the_shipped_model_runs_natively_on_the_int8_backbone_file_the_browser_downloads() {
    let cache = common::cache();
    let kind = BackboneKind::Faceres;
    if common::pipeline(kind).is_none()
        || !common::present(&cache.compact_backbone_weights(kind, Precision::Int8), "int8 backbone weights")
    {
        return;
    }
    let device = Device::flex();
    let bytes = fs::read(common::repo_root().join("models/utkface-celeba-faceres.fmtl")).unwrap();
    let header = facemtl::model_file::read_header(&bytes).unwrap().0;
    assert_eq!(header.backbone_weights, Precision::Int8);
    let pipeline = facemtl_trainer::models::model_pipeline(&cache, &header, None, &device).unwrap();
    let int8 = facemtl_trainer::models::pipeline_at(&cache, kind, Precision::Int8, &device).unwrap();
    let exact = facemtl_trainer::models::pipeline(&cache, kind, &device).unwrap();
    let values = |p: &facemtl::pipeline::FacePipeline| facemtl::compact::pack(p.backbone());
    assert!(values(&pipeline) == values(&int8), "the model's pipeline is not on the int8 weights");
    assert!(values(&pipeline) != values(&exact));
}

/// `facemtl predict`'s JSON lines for `photo` with the model file `model`.
fn predict_lines(model: &std::path::Path, photo: &std::path::Path) -> Vec<serde_json::Value> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_facemtl"))
        .args(["--backend", "cpu", "predict", "--model"])
        .arg(model)
        .arg(photo)
        .env("FACEMTL_CACHE", common::cache().root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn a_model_files_detector_and_alignment_settings_are_the_ones_used() {
    let shipped = common::repo_root().join("models/utkface-celeba-faceres.fmtl");
    let photo = common::utk(FACE);
    if common::pipeline(BackboneKind::Faceres).is_none() || !common::present(&photo, "UTKFace") {
        return;
    }
    let device = Device::flex();
    let temp = tempfile::tempdir().unwrap();
    let scratch = temp.path().join("settings");
    fs::create_dir_all(&scratch).unwrap();
    // The shipped model again, with one preprocessing setting of its header changed.
    let variant = |name: &str, edit: &dyn Fn(&mut facemtl::model_file::Header)| {
        let model = facemtl::model_file::load(&fs::read(&shipped).unwrap(), None, &device).unwrap();
        let mut header = model.header;
        edit(&mut header);
        let path = scratch.join(name);
        fs::write(&path, facemtl::model_file::export(model.head, model.backbone, header).unwrap()).unwrap();
        predict_lines(&path, &photo)
    };
    let stock = predict_lines(&shipped, &photo);
    assert_eq!(stock.len(), 1);
    assert!(stock[0]["age"]["years"].is_number(), "{:?}", stock[0]);
    // A detector that wants certainty no face reaches finds none.
    let strict = variant("strict.fmtl", &|h| h.detector.decode.min_score = 0.99999);
    assert_eq!(strict[0]["error"], "no face found", "{strict:?}");
    // The same face framed tighter: other features, another age.
    let tight = variant("tight.fmtl", &|h| h.align.eye_distance = 0.45);
    assert_eq!(tight[0]["bbox"], stock[0]["bbox"], "the same face is found");
    assert_ne!(tight[0]["age"]["years"], stock[0]["age"]["years"], "the header's alignment is used");
}

#[test]
fn a_webcam_detector_stops_after_the_first_view_only_when_it_holds_a_large_face() {
    let Some(photos) = common::detector() else { return };
    let path = common::utk(FACE);
    if !common::present(&path, "UTKFace") {
        return;
    }
    let webcam = facemtl::detect::Detector::new(photos.model.clone(), DetectorConfig::default().answering_video());
    let device = Device::flex();
    // A face filling a 640x480 frame: found from the first view alone.
    let face = load(&path);
    let mut frame = RgbImage::from_pixel(640, 480, image::Rgb([90, 90, 90]));
    frame.copy_from(&image::imageops::resize(&face, 400, 400, image::imageops::FilterType::Triangle), 120, 40).unwrap();
    let first = webcam.decode_views(
        &webcam
            .model
            .forward(webcam.view_inputs(&frame, &webcam.config.views(640, 480)[..1], &device))
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap(),
        &webcam.config.views(640, 480)[..1],
    );
    assert!(webcam.suffices(&first, 640, 480), "{first:?}");
    assert_eq!(webcam.detect_batch(&[&frame], &device).remove(0), first);
    // Small faces only (a group): every view is searched, as without the setting.
    let mut group = RgbImage::from_pixel(640, 480, image::Rgb([90, 90, 90]));
    for i in 0..4 {
        group
            .copy_from(
                &image::imageops::resize(&face, 90, 90, image::imageops::FilterType::Triangle),
                40 + 150 * i,
                200,
            )
            .unwrap();
    }
    let all =
        facemtl::detect::Detector::new(photos.model.clone(), DetectorConfig { tiles: false, ..Default::default() });
    let staged = webcam.detect_batch(&[&group], &device).remove(0);
    assert_eq!(staged.len(), 4);
    assert_eq!(staged, all.detect_batch(&[&group], &device).remove(0));
}

#[test]
fn a_photo_is_searched_tile_by_tile_only_when_its_zoom_views_hold_no_large_face() {
    let Some(detector) = common::detector() else { return };
    let path = common::utk(FACE);
    if !common::present(&path, "UTKFace") {
        return;
    }
    let device = Device::flex();
    let answering =
        facemtl::detect::Detector::new(detector.model.clone(), DetectorConfig::default().answering_photos());
    let zooms_only =
        facemtl::detect::Detector::new(detector.model.clone(), DetectorConfig { tiles: false, ..Default::default() });
    let face = load(&path);
    let scaled = |side| image::imageops::resize(&face, side, side, image::imageops::FilterType::Triangle);
    // A portrait, 900x1200, its face half the width: four tiles would add nothing.
    let mut portrait = RgbImage::from_pixel(900, 1200, image::Rgb([120, 110, 100]));
    portrait.copy_from(&scaled(450), 225, 300).unwrap();
    assert_eq!(DetectorConfig::default().views(900, 1200).len(), 6, "two zooms and four tiles");
    let found = answering.detect_batch(&[&portrait], &device).remove(0);
    assert_eq!(found.len(), 1);
    assert_eq!(found, zooms_only.detect_batch(&[&portrait], &device).remove(0), "the zoom views' answer");
    // A group, 1600x1200, of faces too small for the zoom views: the tiles are searched and
    // find what every view finds.
    let mut group = RgbImage::from_pixel(1600, 1200, image::Rgb([120, 110, 100]));
    for i in 0..5 {
        group.copy_from(&scaled(70), 100 + 300 * i, 500 + 40 * (i % 2)).unwrap();
    }
    let staged = answering.detect_batch(&[&group], &device).remove(0);
    assert_eq!(staged, detector.detect_batch(&[&group], &device).remove(0));
    assert!(staged.len() > zooms_only.detect_batch(&[&group], &device).remove(0).len(), "{} faces", staged.len());
}

#[test]
fn under_test_time_mirror_a_face_and_its_mirror_image_get_the_same_features() {
    let Some((pipeline, image)) = faceres_and_face() else {
        return;
    };
    let faces = pipeline.detect(&[&image]).remove(0);
    let crop = pipeline.align(&image, &faces[..1]).remove(0);
    let side = BackboneKind::Faceres.input_size();
    let mirrored: Vec<f32> = crop.chunks_exact(side).flat_map(|row| row.iter().rev().copied()).collect();
    let distance = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    // Without it the two differ (a face is not symmetric); with it each is the mean of both views.
    let upright = pipeline.features(&[crop.clone(), mirrored.clone()]);
    assert!(distance(&upright[0], &upright[1]) > 1e-2, "the mirror image alone gives other features");
    let both = pipeline.clone().with_mirror(true).features(&[crop, mirrored]);
    assert!(distance(&both[0], &both[1]) < 1e-4, "test-time mirror: {}", distance(&both[0], &both[1]));
    let mean: Vec<f32> = upright[0].iter().zip(&upright[1]).map(|(a, b)| (a + b) / 2.0).collect();
    assert!(distance(&both[0], &mean) < 1e-4, "the mean of the two views");
}
