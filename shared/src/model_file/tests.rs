use burn::prelude::*;

use super::file::{CHECKSUM_LEN, seal};
use super::*;
use crate::backbone::{Backbone, BackboneKind, FaceResTailConfig, Tuned, faceres};
use crate::compact::{self, Precision};
use crate::detect::DetectorConfig;
use crate::mtl::{MtlConfig, MtlHead, TaskSpec};

fn sample() -> (MtlHead, Header) {
    let device = Device::flex();
    let tasks = vec![TaskSpec::gender(), TaskSpec::age(crate::mtl::AgeNorm::ALL_AGES)];
    let head = MtlConfig::new(BackboneKind::Dlib.feature_dim(), vec![2, 1])
        .with_shared(vec![16])
        .with_head_hidden(8)
        .init(&device);
    let header = Header {
        format_version: 0,
        backbone: BackboneKind::Dlib,
        tasks,
        shared: vec![16],
        head_hidden: 8,
        detector: DetectorConfig::default(),
        align: BackboneKind::Dlib.align_config(),
        trained_on: "test".into(),
        metrics: vec![("gender_accuracy".into(), 0.9)],
        backbone_len: None,
        backbone_weights: Precision::Exact,
        head_weights: Precision::Exact,
        test_time_mirror: false,
        tuned_blocks: None,
        calibration: Default::default(),
    };
    (head, header)
}

fn load_dlib(bytes: &[u8]) -> Result<Model, WeightsError> {
    load(bytes, Some(BackboneKind::Dlib), &Device::flex())
}

/// A file of `bytes`'s payload under its header's JSON as edited by `edit`, with a valid
/// checksum: what someone who edits a model file and knows the format would write.
fn resealed(bytes: &[u8], edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
    let len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    let mut json: serde_json::Value = serde_json::from_slice(&bytes[12..12 + len]).unwrap();
    edit(&mut json);
    seal(&serde_json::to_vec(&json).unwrap(), &bytes[12 + len..bytes.len() - CHECKSUM_LEN])
}

#[test]
fn a_model_round_trips_and_predicts_the_same() {
    let (head, header) = sample();
    let device = Device::flex();
    let x = Tensor::<2>::ones([2, 128], &device);
    let before = head.forward(x.clone())[1].clone().into_data();
    let bytes = export(head, None, header.clone()).unwrap();
    let loaded = load_dlib(&bytes).unwrap();
    assert_eq!(loaded.header.metrics, header.metrics);
    assert_eq!(loaded.header.format_version, FORMAT_VERSION);
    assert!(loaded.backbone.is_none());
    assert_eq!(loaded.head.forward(x)[1].clone().into_data(), before);
    assert!(load_dlib(&resealed(&bytes, |_| {})).is_ok(), "resealing an unedited header changes nothing");
}

#[test]
fn a_fine_tuned_backbone_travels_with_its_head() {
    let (head, header) = sample();
    let device = Device::flex();
    let backbone = Backbone::init(BackboneKind::Dlib, &device);
    let crop = Tensor::<4>::ones([1, 3, 150, 150], &device);
    let before = backbone.forward(crop.clone()).into_data();
    let bytes = export(head.clone(), Some(Tuned::Whole(backbone)), header.clone()).unwrap();
    let loaded = load(&bytes, None, &device).unwrap();
    let Some(Tuned::Whole(tuned)) = loaded.backbone else { panic!("a whole backbone") };
    assert_eq!(tuned.forward(crop).into_data(), before);
    let wrong = Tuned::Whole(Backbone::init(BackboneKind::Faceres, &device));
    assert!(matches!(export(head, Some(wrong), header), Err(WeightsError::Backbone { .. })));
}

#[test]
fn tuned_blocks_travel_alone_and_replace_the_stock_ones() {
    let device = Device::flex();
    let (_, header) = sample();
    let header = Header { backbone: BackboneKind::Faceres, align: BackboneKind::Faceres.align_config(), ..header };
    let head = header.mtl_config().init(&device);
    let stock = Backbone::init(BackboneKind::Faceres, &device);
    // A tail that differs from the stock blocks: freshly initialised, not copied.
    let tail = FaceResTailConfig::new(2).init(&device);
    let bytes = export(head, Some(Tuned::Tail(tail.clone())), header).unwrap();
    assert!(bytes.len() < compact::pack(&stock).len() / 2, "two blocks weigh less than half the backbone");
    let loaded = load(&bytes, Some(BackboneKind::Faceres), &device).unwrap();
    assert_eq!(loaded.header.tuned_blocks, Some(2));
    let Some(tuned @ Tuned::Tail(_)) = loaded.backbone else { panic!("tuned blocks") };
    let crop = Tensor::<4>::random([1, 3, 224, 224], burn::tensor::Distribution::Uniform(-100.0, 100.0), &device);
    let Backbone::Faceres(stock_net) = &stock else { unreachable!() };
    let cut = stock_net.blocks(stock_net.stem(crop.clone()), 0..faceres::BLOCK_COUNT - 2);
    let expected = tail.forward(cut).into_data();
    let combined = tuned.onto(&stock).unwrap();
    combined.forward(crop.clone()).into_data().assert_approx_eq::<f32>(&expected, Default::default());
    assert_ne!(stock.forward(crop).into_data(), expected, "the stock blocks were replaced");
    let dlib = Backbone::init(BackboneKind::Dlib, &device);
    assert!(Tuned::Tail(tail).onto(&dlib).is_err());
}

#[test]
fn tuned_blocks_for_the_int8_backbone_are_stored_in_int8_and_load_as_measured() {
    let device = Device::flex();
    let (_, header) = sample();
    let header = Header { backbone: BackboneKind::Faceres, align: BackboneKind::Faceres.align_config(), ..header };
    let tail = Tuned::Tail(compact::half(FaceResTailConfig::new(1).init(&device)));
    let file = |weights: Precision| {
        let head = header.mtl_config().init(&device);
        export(head, Some(tail.clone()), Header { backbone_weights: weights, ..header.clone() }).unwrap()
    };
    let (exact, int8) = (file(Precision::Exact), file(Precision::Int8));
    assert!(int8.len() * 10 < exact.len() * 6, "a byte per weight instead of two: {} vs {}", int8.len(), exact.len());
    let values = |bytes: &[u8]| {
        let loaded = load(bytes, Some(BackboneKind::Faceres), &device).unwrap();
        compact::tests::values(&loaded.backbone.expect("the tuned block"))
    };
    assert_eq!(values(&exact), compact::tests::values(&tail), "half-precision blocks travel as they are");
    assert_eq!(values(&int8), compact::tests::values(&as_stored(tail.clone(), Precision::Int8)));
    assert_ne!(values(&int8), values(&exact));
}

#[test]
fn an_int8_head_takes_about_half_the_bytes_and_loads_as_measured() {
    let (_, header) = sample();
    let header = Header { shared: vec![256], head_hidden: 64, ..header };
    let device = Device::flex();
    let head = compact::half(header.mtl_config().init(&device));
    let exact = export(head.clone(), None, header.clone()).unwrap();
    let int8 = export(head.clone(), None, Header { head_weights: Precision::Int8, ..header }).unwrap();
    let payload = |bytes: &[u8]| read_header(bytes).unwrap().1.len();
    assert!(payload(&int8) * 10 < payload(&exact) * 6, "{} vs {} bytes", payload(&int8), payload(&exact));
    let loaded = load_dlib(&int8).unwrap();
    assert_eq!(loaded.header.head_weights, Precision::Int8);
    let x = Tensor::<2>::ones([2, 128], &device);
    let as_measured = compact::at_precision(head.clone(), Precision::Int8).forward(x.clone())[1].clone();
    assert_eq!(loaded.head.forward(x.clone())[1].clone().into_data(), as_measured.clone().into_data());
    assert_ne!(head.forward(x)[1].clone().into_data(), as_measured.into_data(), "int8 rounds the weights");
}

#[test]
fn truncated_tampered_and_mismatched_files_are_refused() {
    let (head, header) = sample();
    let bytes = export(head, None, header).unwrap();
    assert!(matches!(load_dlib(&bytes[..bytes.len() - 10]), Err(WeightsError::Checksum)));
    assert!(matches!(load_dlib(&bytes[..20]), Err(WeightsError::Truncated)));
    let mut tampered = bytes.clone();
    let last = tampered.len() - 100;
    tampered[last] ^= 1;
    assert!(matches!(load_dlib(&tampered), Err(WeightsError::Checksum)));
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(load_dlib(&longer), Err(WeightsError::Checksum)));
    assert!(load_dlib(&bytes).is_ok());
    assert!(matches!(load(&bytes, Some(BackboneKind::Faceres), &Device::flex()), Err(WeightsError::Backbone { .. })));
    let mut future = bytes.clone();
    future[4] = 9;
    assert!(matches!(load_dlib(&future), Err(WeightsError::Version { found: 9 })));
    assert!(matches!(load_dlib(b"GIF89a...."), Err(WeightsError::NotAModel)));
}

#[test]
fn an_edited_header_is_refused_like_a_damaged_payload() {
    let (head, header) = sample();
    let bytes = export(head, None, header).unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    // The same length, so that only the checksum can tell: age offset 0 -> 9, and a forged
    // test figure.
    for (from, to) in [("\"offset\":0.0", "\"offset\":9.0"), ("0.9]", "1.0]")] {
        assert!(text.contains(from), "{from}");
        let edited = text.replacen(from, to, 1);
        let edited: Vec<u8> =
            bytes.iter().zip(edited.bytes()).map(|(a, b)| if a.is_ascii() { b } else { *a }).collect();
        assert_ne!(edited, bytes);
        assert!(matches!(load_dlib(&edited), Err(WeightsError::Checksum)), "{to}");
    }
}

#[test]
fn files_of_the_previous_formats_are_refused_with_the_way_to_re_export_them() {
    let (head, header) = sample();
    let mut old = export(head, None, header).unwrap();
    old[4] = 2;
    let error = load_dlib(&old).unwrap_err();
    assert!(matches!(error, WeightsError::Outdated { found: 2 }));
    assert!(error.to_string().contains("facemtl export --run-dir"), "{error}");
}

#[test]
fn impossible_sizes_in_the_header_are_refused_before_anything_is_allocated() {
    let (head, header) = sample();
    let bytes = export(head, None, header).unwrap();
    let refused = |edit: &dyn Fn(&mut serde_json::Value)| load_dlib(&resealed(&bytes, edit)).unwrap_err();
    use serde_json::json;
    // Each of these once reached Burn: 819 GB asked of the allocator, or a panic.
    assert!(matches!(refused(&|h| h["shared"] = json!([200_000_000])), WeightsError::Header(_)));
    assert!(matches!(refused(&|h| h["head_hidden"] = json!(100_000_000)), WeightsError::Header(_)));
    assert!(matches!(refused(&|h| h["shared"] = json!([0])), WeightsError::Header(_)));
    // Within the bounds, but more than the file holds.
    assert!(matches!(refused(&|h| h["shared"] = json!([4096, 4096])), WeightsError::Payload(_)));
    assert!(matches!(refused(&|h| h["backbone_len"] = json!(1u64 << 40)), WeightsError::Payload(_)));
    assert!(matches!(
        refused(&|h| h["tasks"][1]["kind"]["regression"]["norm"]["scale"] = json!(1e39)),
        WeightsError::Header(_)
    ));
    assert!(matches!(
        refused(&|h| h["tasks"][1]["kind"]["regression"]["norm"]["offset"] = json!(-5e9)),
        WeightsError::Header(_)
    ));
    assert!(matches!(refused(&|h| h["tasks"] = json!([])), WeightsError::Header(_)));
    let gender = serde_json::to_value(TaskSpec::gender()).unwrap();
    assert!(matches!(refused(&|h| h["tasks"] = json!([gender, gender])), WeightsError::Header(_)));
    assert!(matches!(refused(&|h| h["tasks"][0]["kind"]["class"]["labels"] = json!(["one"])), WeightsError::Header(_)));
    assert!(matches!(refused(&|h| h["detector"]["zooms"] = json!([1e9])), WeightsError::Header(_)));
    assert!(matches!(refused(&|h| h["align"]["size"] = json!(100_000)), WeightsError::Header(_)));
    assert!(matches!(refused(&|h| h["format_version"] = json!(2)), WeightsError::Header(_)));
    let huge = vec![0u8; MAX_MODEL_BYTES + 1];
    assert!(matches!(load_dlib(&huge), Err(WeightsError::TooLarge(_))));
}

#[test]
fn a_non_finite_parameter_is_refused() {
    let (head, header) = sample();
    let bytes = export(compact::half(head), None, header.clone()).unwrap();
    let len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    let mut payload = bytes[12 + len..bytes.len() - CHECKSUM_LEN].to_vec();
    // The last parameter is the age head's output bias: one f16 value, in its two planes.
    let n = payload.len();
    payload[n - 2..].copy_from_slice(&half::f16::NAN.to_le_bytes());
    let json = serde_json::to_vec(&Header { format_version: FORMAT_VERSION, ..header }).unwrap();
    assert!(matches!(load_dlib(&seal(&json, &payload)), Err(WeightsError::Payload(_))));
}

#[test]
fn a_calibration_replaces_only_itself_and_a_crafted_one_is_refused() {
    let (head, header) = sample();
    let bytes = export(head, None, header.clone()).unwrap();
    let calibration =
        crate::calibration::Calibration { temperatures: vec![1.5, 1.0], cant_tell_below: Some(0.7), interval: None };
    let calibrated = with_calibration(&bytes, calibration.clone()).unwrap();
    let (read, payload) = read_header(&calibrated).unwrap();
    assert_eq!(read.calibration, calibration);
    assert_eq!(Header { calibration: Default::default(), ..read }, read_header(&bytes).unwrap().0);
    assert_eq!(payload, read_header(&bytes).unwrap().1);
    // Too few temperatures for its tasks, or a temperature of 0, is not a fit of ours.
    let bad = resealed(&calibrated, |json| json["calibration"]["temperatures"] = serde_json::json!([0.0, 1.0]));
    assert!(matches!(load_dlib(&bad), Err(WeightsError::Header(_))));
    let bad = resealed(&calibrated, |json| json["calibration"]["temperatures"] = serde_json::json!([1.0]));
    assert!(matches!(load_dlib(&bad), Err(WeightsError::Header(_))));
    assert!(
        with_calibration(&bytes, crate::calibration::Calibration { temperatures: vec![1.0], ..calibration }).is_err()
    );
}
