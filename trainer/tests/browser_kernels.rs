//! The browser's own forms of the networks against the native ones: the compact and int8
//! weight files, and the packed CPU kernels (`facemtl::nhwc`), on real faces and photos.

mod common;

use std::fs;

use burn::prelude::*;
use common::load;
use facemtl::backbone::BackboneKind;
use facemtl::compact::Precision;
use facemtl::detect::{DetectorConfig, INPUT_SIZE, input_side};
use facemtl::nhwc::NhwcBlazeFace;

const FACE: &str = "30_1_0_20170103180631960.jpg.chip.jpg";

#[test]
fn the_browsers_compact_backbone_computes_exactly_as_the_f32_one() {
    let cache = common::cache();
    let kind = BackboneKind::Faceres;
    if !common::present(&cache.compact_backbone_weights(kind, Precision::Exact), "compact backbone weights") {
        return;
    }
    let device = Device::flex();
    let f32_net =
        facemtl::pretrained::load_backbone(kind, &std::fs::read(cache.backbone_weights(kind)).unwrap(), &device)
            .unwrap();
    let compact = std::fs::read(cache.compact_backbone_weights(kind, Precision::Exact)).unwrap();
    let net = facemtl::compact::unpack(facemtl::backbone::Backbone::init(kind, &device), &compact).unwrap();
    let x = Tensor::<4>::random([2, 3, 224, 224], burn::tensor::Distribution::Uniform(-120.0, 120.0), &device);
    assert_eq!(net.forward(x.clone()).into_data(), f32_net.forward(x).into_data());
    // Half the bytes: the pretrained weights came as float16.
    assert!(compact.len() * 19 < std::fs::metadata(cache.backbone_weights(kind)).unwrap().len() as usize * 10);
}

#[test]
fn the_browsers_compact_detector_computes_exactly_as_the_burnpack_one() {
    let cache = common::cache();
    if !common::present(&cache.compact_detector_weights(), "compact detector weights") {
        return;
    }
    let device = Device::flex();
    let read =
        |path: std::path::PathBuf| facemtl::pretrained::load_detector(&fs::read(path).unwrap(), &device).unwrap();
    let (burnpack, compact) = (read(cache.detector_weights()), read(cache.compact_detector_weights()));
    let x = Tensor::<4>::random([2, 3, 256, 256], burn::tensor::Distribution::Uniform(-1.0, 1.0), &device);
    assert_eq!(compact.forward(x.clone()).into_data(), burnpack.forward(x).into_data());
}

#[test]
fn the_browsers_int8_backbone_gives_nearly_the_features_of_the_exact_one_on_real_faces() {
    let cache = common::cache();
    let kind = BackboneKind::Faceres;
    let dir = common::data_dir().join("utkface/UTKFace");
    let Some(exact) = common::pipeline(kind) else { return };
    if !common::present(&cache.compact_backbone_weights(kind, Precision::Int8), "int8 backbone weights")
        || !common::present(&dir, "UTKFace")
    {
        return;
    }
    let int8 = facemtl_trainer::models::pipeline_at(&cache, kind, Precision::Int8, &Device::flex()).unwrap();
    let mut names: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    let mut similarities = Vec::new();
    for path in names.iter().step_by(1000) {
        let image = load(path);
        let Some(face) = exact.detect(&[&image]).remove(0).into_iter().next() else { continue };
        let crop = exact.align(&image, std::slice::from_ref(&face));
        let [a, b] = [&exact, &int8].map(|p| p.embed(&crop).into_data().try_to_vec::<f32>().unwrap());
        assert_ne!(a, b, "the int8 weights are not the exact ones");
        let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
        similarities.push(dot(&a, &b) / (dot(&a, &a) * dot(&b, &b)).sqrt());
    }
    assert!(similarities.len() >= 20, "{} faces", similarities.len());
    let worst = similarities.iter().copied().fold(1.0, f32::min);
    eprintln!(
        "int8 against exact backbone features, cosine similarity: worst {worst:.4} over {} faces",
        similarities.len()
    );
    // Measured: 0.987 at worst; the model's test figures on these features are in RESULTS.md.
    assert!(worst > 0.98, "int8 features drift from the exact ones: cosine {worst}");
}

/// How far the packed faceres's features of real faces (24 UTKFace photos' best faces, with
/// their mirror images) lie from `burn`'s: the largest gap, and the largest feature.
fn packed_gap(burn: facemtl::pipeline::FacePipeline) -> Option<(f32, f32)> {
    let dir = common::data_dir().join("utkface/UTKFace");
    if !common::present(&dir, "UTKFace") {
        return None;
    }
    let burn = burn.with_mirror(true);
    let packed = burn.clone().with_nhwc_kernels();
    let mut names: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    let crops: Vec<Vec<f32>> = names
        .iter()
        .step_by(1000)
        .flat_map(|path| {
            let image = load(path);
            let faces = burn.detect(&[&image]).remove(0);
            burn.align(&image, &faces[..faces.len().min(1)])
        })
        .collect();
    assert!(crops.len() >= 20, "{} faces", crops.len());
    let [a, b] = [&burn, &packed].map(|p| p.embed(&crops).into_data().try_to_vec::<f32>().unwrap());
    let scale = a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    eprintln!(
        "packed against Burn's faceres, {} faces with their mirror images: off by {worst} at most, features up to {scale}",
        crops.len()
    );
    Some((worst, scale))
}

#[test]
fn the_browsers_packed_cpu_backbone_gives_burns_features_on_real_faces_and_their_mirror_images() {
    let Some(burn) = common::pipeline(BackboneKind::Faceres) else { return };
    let Some((worst, scale)) = packed_gap(burn) else { return };
    // Measured here: 2.2e-6 of the largest feature (the same sums in another order). A kernel
    // tap or mirror image out of place moves features by orders of magnitude more.
    assert!(worst <= 1e-5 * scale, "packed features leave Burn's: off by {worst}, features up to {scale}");
}

#[test]
fn the_browsers_integer_sums_on_the_int8_backbone_give_burns_features_on_real_faces() {
    let cache = common::cache();
    let kind = BackboneKind::Faceres;
    if !common::present(&cache.compact_backbone_weights(kind, Precision::Int8), "int8 backbone weights") {
        return;
    }
    let int8 = facemtl_trainer::models::pipeline_at(&cache, kind, Precision::Int8, &Device::flex()).unwrap();
    let Some((worst, scale)) = packed_gap(int8) else { return };
    // The 1x1 layers sum in integers, their inputs rounded to codes of 1/32,767 of ReLU6's
    // range. Measured here: 1.1e-4 of the largest feature. The int8 weights themselves move
    // features far more (cosine 0.987, the test above), and a code paired with the wrong kernel
    // by their own size.
    assert!(worst <= 5e-4 * scale, "integer sums leave Burn's features: off by {worst}, features up to {scale}");
}

#[test]
fn the_browsers_packed_cpu_detector_gives_burns_outputs_on_every_view_of_real_photos() {
    let Some(pipeline) = common::pipeline(BackboneKind::Faceres) else { return };
    let utk = common::utk(FACE);
    if !common::present(&utk, "UTKFace") {
        return;
    }
    let model = pipeline.detector_model();
    let packed = NhwcBlazeFace::new(model);
    let detector = facemtl::detect::Detector::new(model.clone(), DetectorConfig::default());
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let mut compared = 0;
    let mut regions = 0;
    for path in [utk, fixtures.join("exif_rotated.jpg"), fixtures.join("grayscale.jpg")] {
        let image = load(&path);
        // The whole photo's views, then the regions a video would search around its faces.
        let mut searches = vec![detector.config.views(image.width(), image.height())];
        while let Some(views) = searches.pop() {
            let burn = model.forward(detector.view_inputs(&image, &views, &Device::flex())).into_data();
            let burn = burn.try_to_vec::<f32>().unwrap();
            let ours = packed.forward(&detector.view_values(&image, &views), input_side(&views));
            let scale = burn.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let worst = burn.iter().zip(&ours).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
            let [theirs, found] = [&burn, &ours].map(|raw| detector.decode_views(raw, &views));
            let corners = |d: &facemtl::detect::Detection| [d.bbox.x_min, d.bbox.y_min, d.bbox.x_max, d.bbox.y_max];
            let moved = theirs
                .iter()
                .zip(&found)
                .flat_map(|(a, b)| corners(a).into_iter().zip(corners(b)).map(|(p, q)| (p - q).abs()))
                .fold(0.0f32, f32::max);
            eprintln!(
                "{}: {} views at {}, outputs off by {worst} at most (up to {scale}), {} faces, boxes moved {moved} px",
                path.display(),
                views.len(),
                input_side(&views),
                found.len()
            );
            // Measured here: 3.5e-7 of the largest output at most (the same sums in another order;
            // box regressors reach 10^4), and boxes within 1e-4 pixels.
            assert!(
                worst <= 1e-5 * scale,
                "{}: packed outputs leave Burn's by {worst} (scale {scale})",
                path.display()
            );
            assert_eq!(theirs.len(), found.len(), "{}: other faces found", path.display());
            assert!(moved < 0.01, "{}: boxes moved {moved} px", path.display());
            compared += views.len();
            if input_side(&views) == INPUT_SIZE && !found.is_empty() {
                let boxes: Vec<_> = found.iter().map(|d| d.bbox).collect();
                searches.push(detector.regions(&boxes).expect("a face or two a photo"));
                regions += boxes.len();
            }
        }
    }
    assert!(regions >= 3, "{regions} regions");
    assert!(compared >= 6, "{compared} views");
}
