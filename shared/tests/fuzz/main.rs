//! Structure-aware fuzzing of every reader of untrusted bytes in the shared crate: model files,
//! compact weight files, TF.js manifests with their shards, photos, and the Lab (its file and
//! the runs a worker's messages ask for, in `lab.rs`). Inputs start from
//! valid files (generated here) and are then mutated, in their structure (header fields, shapes,
//! dtypes, image dimensions) and as bytes (flips, cuts, insertions). The property everywhere:
//! an error or a result, never a panic, and never an allocation beyond `CAP` bytes.
//!
//! CI runs `PROPTEST_CASES` cases per target (default 256); `bench/fuzz.sh` runs many more
//! (BENCHMARKS.md). A failure proptest finds is kept beside this file, in `fuzz.regressions`,
//! and replayed first on every later run.

use burn::prelude::*;
use facemtl::backbone::BackboneKind;
use facemtl::compact;
use facemtl::detect::DetectorConfig;
use facemtl::model_file::{self, Header};
use facemtl::mtl::{AgeNorm, MtlConfig, TaskSpec};
use facemtl::photo::{self, DecodeLimits};
use facemtl::tfjs::TfjsWeights;
use image::{ImageEncoder, Rgb, RgbImage};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use sha2::{Digest, Sha256};

mod cap;
mod lab;

/// Cases per target: proptest's 256, or `PROPTEST_CASES`; failures are kept beside this file
/// (`fuzz.regressions`) and replayed first on every later run.
fn config() -> Config {
    Config {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..Config::default()
    }
}

/// A byte-level mutation of a file.
#[derive(Debug, Clone)]
enum Mutation {
    Flip {
        at: usize,
        bits: u8,
    },
    Cut {
        at: usize,
    },
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
    /// A 32-bit little- or big-endian word overwritten with an extreme value.
    Word {
        at: usize,
        value: u32,
        big_endian: bool,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let extreme =
        prop_oneof![Just(0u32), Just(1), Just(u32::MAX), Just(0x7fff_ffff), Just(65_535), Just(20_000), any::<u32>()];
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, bits)| Mutation::Flip { at, bits }),
        any::<usize>().prop_map(|at| Mutation::Cut { at }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), extreme, any::<bool>()).prop_map(|(at, value, big_endian)| Mutation::Word {
            at,
            value,
            big_endian
        }),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        if bytes.is_empty() {
            break;
        }
        let n = bytes.len();
        match m {
            Mutation::Flip { at, bits } => bytes[at % n] ^= bits,
            Mutation::Cut { at } => bytes.truncate(at % n),
            Mutation::Insert { at, bytes: extra } => {
                let at = at % n;
                bytes.splice(at..at, extra.iter().copied());
            }
            Mutation::Word { at, value, big_endian } => {
                let at = at % n;
                let word = if *big_endian { value.to_be_bytes() } else { value.to_le_bytes() };
                for (i, b) in word.iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(at + i) {
                        *slot = *b;
                    }
                }
            }
        }
    }
    bytes
}

// ---- model files ----

fn header(tasks: Vec<TaskSpec>, shared: Vec<usize>, head_hidden: usize) -> Header {
    Header {
        format_version: model_file::FORMAT_VERSION,
        backbone: BackboneKind::Dlib,
        tasks,
        shared,
        head_hidden,
        detector: DetectorConfig::default(),
        align: BackboneKind::Dlib.align_config(),
        trained_on: "fuzz".into(),
        metrics: vec![("age_mae".into(), 5.0)],
        backbone_len: None,
        backbone_weights: Default::default(),
        head_weights: Default::default(),
        test_time_mirror: false,
        tuned_blocks: None,
        calibration: Default::default(),
    }
}

fn small_network() -> impl Strategy<Value = (Vec<TaskSpec>, Vec<usize>, usize)> {
    let all = vec![TaskSpec::gender(), TaskSpec::age(AgeNorm::CORAL), TaskSpec::race(), TaskSpec::young()];
    let tasks = prop::sample::subsequence(all, 1..=4);
    (tasks, prop::collection::vec(1usize..24, 0..3), 0usize..12)
}

fn outputs(tasks: &[TaskSpec]) -> Vec<usize> {
    tasks.iter().map(TaskSpec::outputs).collect()
}

fn model_file(tasks: &[TaskSpec], shared: &[usize], head_hidden: usize) -> Vec<u8> {
    let device = Device::flex();
    let head =
        MtlConfig::new(128, outputs(tasks)).with_shared(shared.to_vec()).with_head_hidden(head_hidden).init(&device);
    model_file::export(compact::half(head), None, header(tasks.to_vec(), shared.to_vec(), head_hidden)).unwrap()
}

/// The file with its checksum made whole again, as a deliberate editor would.
fn reseal(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.len() < 44 {
        return bytes;
    }
    bytes.truncate(bytes.len() - 32);
    let digest = Sha256::digest(&bytes);
    bytes.extend_from_slice(&digest);
    bytes
}

/// A header field set to a value a crafted file might carry.
fn header_edit() -> impl Strategy<Value = (String, serde_json::Value)> {
    use serde_json::json;
    let field = prop::sample::select(vec![
        "shared",
        "head_hidden",
        "age_scale",
        "age_offset",
        "tasks",
        "backbone",
        "backbone_len",
        "head_weights",
        "metrics",
        "format_version",
        "detector",
        "align",
    ]);
    let value = prop_oneof![
        Just(json!(0)),
        Just(json!(200_000_000)),
        Just(json!(-1)),
        Just(json!(1e39)),
        Just(json!([0])),
        Just(json!([200_000_000])),
        Just(json!([4096, 4096, 4096])),
        Just(json!([])),
        Just(json!([{"name": "gender", "kind": {"class": {"labels": ["a"]}}}])),
        Just(json!([{"name": "age", "kind": {"regression": {"norm": {"offset": 0.0, "scale": 0.0}}}}])),
        Just(
            json!([{"name": "x", "kind": {"class": {"labels": ["a", "b"]}}}, {"name": "x", "kind": {"class": {"labels": ["a", "b"]}}}])
        ),
        Just(json!("faceres")),
        Just(json!("int8")),
        Just(json!(null)),
        Just(json!({"zooms": [], "tiles": true})),
        Just(json!([["age_mae", 1e300]])),
        (0u64..=u64::MAX).prop_map(|v| json!(v)),
        any::<f64>().prop_map(|v| json!(v)),
    ];
    (field.prop_map(str::to_string), value)
}

fn edit_header(bytes: &[u8], field: &str, value: serde_json::Value) -> Vec<u8> {
    reseal(with_json_header(bytes, |json| json[field] = value))
}

/// A file laid out as 8 magic bytes, a little-endian u32 length and a JSON header (a model
/// file, a Lab file), with its header edited by `edit`; what follows is left as it was.
fn with_json_header(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    let mut json: serde_json::Value = serde_json::from_slice(&bytes[12..12 + len]).unwrap();
    edit(&mut json);
    let json = serde_json::to_vec(&json).unwrap();
    let mut out = bytes[..8].to_vec();
    out.extend((json.len() as u32).to_le_bytes());
    out.extend(json);
    out.extend_from_slice(&bytes[12 + len..]);
    out
}

/// Loading either fails or gives a model whose predictions for any features are finite
/// numbers or an error, never a panic.
fn load_and_use(bytes: &[u8]) {
    let device = Device::flex();
    if let Ok(model) = model_file::load(bytes, None, &device) {
        let features = Tensor::<2>::ones([2, model.header.backbone.feature_dim()], &device);
        let raw = facemtl::predict::raw_outputs(&model.head, features);
        let _ = facemtl::predict::attributes(&model.header, &raw, 2);
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn model_files_with_edited_headers_never_panic((tasks, shared, hidden) in small_network(), (field, value) in header_edit()) {
        let file = model_file(&tasks, &shared, hidden);
        load_and_use(&edit_header(&file, &field, value));
    }

    #[test]
    fn model_files_with_damaged_bytes_never_panic(
        (tasks, shared, hidden) in small_network(),
        mutations in prop::collection::vec(mutation(), 1..4),
        resealed in any::<bool>(),
    ) {
        let file = mutate(model_file(&tasks, &shared, hidden), &mutations);
        load_and_use(&if resealed { reseal(file) } else { file });
    }

    #[test]
    fn arbitrary_bytes_are_never_a_model(bytes in prop::collection::vec(any::<u8>(), 0..256), magic in any::<bool>()) {
        let mut bytes = bytes;
        if magic && bytes.len() >= 12 {
            bytes[..4].copy_from_slice(b"FMTL");
            bytes[4..8].copy_from_slice(&model_file::FORMAT_VERSION.to_le_bytes());
        }
        prop_assert!(model_file::load(&reseal(bytes), None, &Device::flex()).is_err());
    }

    // ---- compact weight files ----

    #[test]
    fn compact_files_read_back_or_fail_cleanly(
        (tasks, shared, hidden) in small_network(),
        (other_tasks, other_shared, other_hidden) in small_network(),
        mutations in prop::collection::vec(mutation(), 0..4),
    ) {
        let device = Device::flex();
        let init = |t: &[TaskSpec], s: &[usize], h: usize| {
            MtlConfig::new(16, outputs(t)).with_shared(s.to_vec()).with_head_hidden(h).init(&device)
        };
        let bytes = compact::pack(&init(&tasks, &shared, hidden));
        let damaged = mutate(bytes.clone(), &mutations);
        let into_same = compact::unpack(init(&tasks, &shared, hidden), &damaged);
        if mutations.is_empty() {
            prop_assert!(into_same.is_ok());
        }
        let _ = compact::unpack(init(&other_tasks, &other_shared, other_hidden), &damaged);
    }

    // ---- TF.js manifests and shards ----

    #[test]
    fn tfjs_manifests_never_panic_or_invent_values(groups in prop::collection::vec(manifest_group(), 1..3), extra in 0usize..9) {
        let json = serde_json::json!(groups.iter().map(|g| g.json()).collect::<Vec<_>>()).to_string();
        let shards: Vec<(String, Vec<u8>)> = groups
            .iter()
            .flat_map(|g| g.paths.iter().map(|p| (p.clone(), vec![0x3c; g.bytes / g.paths.len().max(1) + extra])))
            .collect();
        let lookup = |path: &str| shards.iter().find(|(p, _)| p == path).map(|(_, b)| b.as_slice());
        if let Ok(weights) = TfjsWeights::parse(&json, lookup) {
            for group in &groups {
                for w in group.weights.iter().filter(|w| w.dtype != "int32" && w.stored.as_deref() != Some("int32")) {
                    if let Ok(t) = weights.get(&w.name, &w.shape) {
                        prop_assert_eq!(t.values.len(), w.shape.iter().product::<usize>());
                    }
                }
            }
        }
    }

    #[test]
    fn tfjs_manifest_text_never_panics(text in "[\\[\\]{}\":,a-z0-9 .-]{0,200}") {
        let _ = TfjsWeights::parse(&text, |_| Some(&[0u8; 16][..]));
    }

    // ---- photos ----

    #[test]
    fn photos_with_damaged_headers_and_bytes_never_panic(
        format in 0usize..5,
        (width, height) in (1u32..48, 1u32..48),
        mutations in prop::collection::vec(mutation(), 0..4),
        exif in any::<bool>(),
    ) {
        let mut bytes = encode(format, width, height);
        if exif && format == 0 {
            bytes = with_exif_orientation(bytes, 1 + (width % 9) as u16);
        }
        let limits = DecodeLimits { max_side: 4096, max_pixels: 4_000_000, max_alloc: 256 << 20 };
        let damaged = mutate(bytes, &mutations);
        if let Ok(image) = photo::decode(&damaged, limits) {
            prop_assert!(image.width().max(image.height()) <= limits.max_side);
        }
        let _ = photo::decode(&damaged, DecodeLimits::default());
    }
}

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    shape: Vec<usize>,
    dtype: String,
    /// The quantisation's dtype, with its scale and min present or not.
    stored: Option<String>,
    affine: bool,
}

#[derive(Debug, Clone)]
struct Group {
    paths: Vec<String>,
    weights: Vec<Entry>,
    /// Shard bytes the entries need as declared (when it fits in memory).
    bytes: usize,
}

impl Group {
    fn json(&self) -> serde_json::Value {
        let weights: Vec<_> = self
            .weights
            .iter()
            .map(|w| {
                let mut e = serde_json::json!({"name": w.name, "shape": w.shape, "dtype": w.dtype});
                if let Some(stored) = &w.stored {
                    e["quantization"] = if w.affine {
                        serde_json::json!({"dtype": stored, "scale": 0.5, "min": -1.0})
                    } else {
                        serde_json::json!({"dtype": stored})
                    };
                }
                e
            })
            .collect();
        serde_json::json!({"paths": self.paths, "weights": weights})
    }
}

fn manifest_group() -> impl Strategy<Value = Group> {
    let dim = prop_oneof![4 => 0usize..6, 1 => Just(1usize << 62), 1 => Just(usize::MAX), 1 => 1000usize..100_000];
    let dtype = prop::sample::select(vec!["float32", "int32", "uint8", "uint16", "float16", "bool", "complex64"]);
    let stored = prop::option::of(prop::sample::select(vec!["uint8", "uint16", "float16", "float32", "int8"]));
    let entry = ("[a-c]{1,2}", prop::collection::vec(dim, 0..3), dtype, stored, any::<bool>()).prop_map(
        |(name, shape, dtype, stored, affine)| Entry {
            name,
            shape,
            dtype: dtype.into(),
            stored: stored.map(str::to_string),
            affine,
        },
    );
    let paths = prop::collection::vec(prop::sample::select(vec!["a.bin", "b.bin", "c.bin"]), 0..4);
    (paths, prop::collection::vec(entry, 0..5)).prop_map(|(paths, weights)| {
        let width = |e: &Entry| match e.stored.as_deref().unwrap_or(e.dtype.as_str()) {
            "uint8" => 1,
            "uint16" | "float16" => 2,
            _ => 4,
        };
        let bytes = weights
            .iter()
            .map(|e| e.shape.iter().try_fold(width(e), |n: usize, d| n.checked_mul(*d)).unwrap_or(0).min(1 << 20))
            .sum();
        Group { paths: paths.into_iter().map(str::to_string).collect(), weights, bytes }
    })
}

/// A small picture in one of the five formats the app reads.
fn encode(format: usize, width: u32, height: u32) -> Vec<u8> {
    let image = RgbImage::from_fn(width, height, |x, y| Rgb([(x * 9) as u8, (y * 7) as u8, (x ^ y) as u8]));
    let mut out = Vec::new();
    let cursor = std::io::Cursor::new(&mut out);
    let kind = image::ExtendedColorType::Rgb8;
    match format {
        0 => image::codecs::jpeg::JpegEncoder::new_with_quality(cursor, 80).write_image(&image, width, height, kind),
        1 => image::codecs::png::PngEncoder::new(cursor).write_image(&image, width, height, kind),
        2 => image::codecs::bmp::BmpEncoder::new(&mut std::io::Cursor::new(&mut out))
            .write_image(&image, width, height, kind),
        3 => image::codecs::gif::GifEncoder::new(cursor).encode(
            &image::DynamicImage::from(image.clone()).into_rgba8(),
            width,
            height,
            image::ExtendedColorType::Rgba8,
        ),
        _ => image::codecs::webp::WebPEncoder::new_lossless(cursor).write_image(&image, width, height, kind),
    }
    .unwrap();
    out
}

/// The JPEG with an APP1 EXIF segment giving `orientation` (1-8 valid, others not).
fn with_exif_orientation(jpeg: Vec<u8>, orientation: u16) -> Vec<u8> {
    let mut tiff = b"II*\0\x08\0\0\0\x01\0".to_vec();
    tiff.extend([0x12, 0x01, 3, 0, 1, 0, 0, 0]);
    tiff.extend(orientation.to_le_bytes());
    tiff.extend([0, 0, 0, 0, 0, 0]);
    let mut segment = b"Exif\0\0".to_vec();
    segment.extend(tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend([0xFF, 0xE1]);
    out.extend(((segment.len() + 2) as u16).to_be_bytes());
    out.extend(segment);
    out.extend_from_slice(&jpeg[2..]);
    out
}
