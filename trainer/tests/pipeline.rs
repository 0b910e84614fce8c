//! The face pipeline on real photos: orientation, many faces, no face, and alignment.

mod common;

use std::fs;

use burn::prelude::*;
use facemtl::align::align;
use facemtl::backbone::BackboneKind;
use facemtl::photo::{self, DecodeLimits};
use image::{GenericImage, RgbImage};

fn load(path: &std::path::Path) -> RgbImage {
    photo::decode(&fs::read(path).unwrap(), DecodeLimits::default()).unwrap()
}

const FACE: &str = "30_1_0_20170103180631960.jpg.chip.jpg";

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
    let Some(pipeline) = common::pipeline(BackboneKind::Faceres) else {
        return;
    };
    let path = common::utk(FACE);
    if !common::present(&path, "UTKFace") {
        return;
    }
    let image = load(&path);
    let device = Device::flex();
    let detection = pipeline.detector.detect_batch(&[&image], &device).remove(0)[0];
    let config = BackboneKind::Faceres.align_config();
    let crop = align(&image, &detection.keypoints, &config);
    // Back to an image, and detect again: the eyes must sit at the canonical places.
    let size = config.size as u32;
    let plane = (size * size) as usize;
    let crop_image = RgbImage::from_fn(size, size, |x, y| {
        let i = (y * size + x) as usize;
        image::Rgb([crop[i] as u8, crop[plane + i] as u8, crop[2 * plane + i] as u8])
    });
    let again = pipeline.detector.detect_batch(&[&crop_image], &device).remove(0);
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
    let facemtl::backbone::Backbone::Faceres(faceres) = &pipeline.backbone else { unreachable!() };
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
        let faces = pipeline.faces(&load(&dir.join(name)));
        let Some(face) = faces.first() else { continue };
        let features = Tensor::<2>::from_data(TensorData::new(face.features.clone(), [1, 1024]), &pipeline.device);
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
fn the_browsers_compact_backbone_computes_exactly_as_the_f32_one() {
    let cache = common::cache();
    let kind = BackboneKind::Faceres;
    if !common::present(&cache.compact_backbone_weights(kind), "compact backbone weights") {
        return;
    }
    let device = Device::flex();
    let f32_net =
        facemtl::pretrained::load_backbone(kind, &std::fs::read(cache.backbone_weights(kind)).unwrap(), &device)
            .unwrap();
    let compact = std::fs::read(cache.compact_backbone_weights(kind)).unwrap();
    let net = facemtl::compact::unpack(facemtl::backbone::Backbone::init(kind, &device), &compact).unwrap();
    let x = Tensor::<4>::random([2, 3, 224, 224], burn::tensor::Distribution::Uniform(-120.0, 120.0), &device);
    assert_eq!(net.forward(x.clone()).into_data(), f32_net.forward(x).into_data());
    // Half the bytes: the pretrained weights came as float16.
    assert!(compact.len() * 19 < std::fs::metadata(cache.backbone_weights(kind)).unwrap().len() as usize * 10);
}
