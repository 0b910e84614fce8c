//! The Lab file: its header, and its faces' features quantised per feature to a few bits.
//!
//! Layout: `FMTLLAB1`, a little-endian u32 header length, the JSON [`LabHeader`], then per
//! feature its lowest value and step (f32 each), then per set and split (train, validation,
//! test), per face: its labels (f32 each, a class index or a value, in the set's task order)
//! and its features' codes, `bits` each, packed low bits first into whole bytes per face.

use serde::{Deserialize, Serialize};

use crate::backbone::BackboneKind;
use crate::compact::Precision;
use crate::mtl::{Label, TaskKind, TaskSpec, check_tasks};

const MAGIC: &[u8; 8] = b"FMTLLAB1";

/// Above this a header is not ours.
const MAX_HEADER_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LabError {
    #[error("not a facemtl Lab file")]
    NotLab,
    #[error("the Lab file is damaged: {0}")]
    Damaged(String),
}

/// One data set of the Lab: what it is and how many faces each split holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabSetInfo {
    /// `utkface` or `celeba`: what `facemtl train --lab` and the Lab's picker call it.
    pub name: String,
    pub title: String,
    /// What a model trained on it says it was trained on.
    pub description: String,
    pub tasks: Vec<TaskSpec>,
    /// Faces in train, validation and test.
    pub splits: [usize; 3],
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabHeader {
    /// The backbone the features come from, and the weights it ran with.
    pub backbone: BackboneKind,
    pub backbone_weights: Precision,
    pub dim: usize,
    /// Bits per feature: 4 or 8.
    pub bits: u8,
    /// The data sets' terms of use, shown wherever the data is.
    pub licence: String,
    pub sets: Vec<LabSetInfo>,
}

/// One split's faces: features `[n, dim]` row-major, and per face its labels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabSplit {
    pub features: Vec<f32>,
    pub labels: Vec<Vec<Label>>,
}

impl LabSplit {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// A data set's three splits.
#[derive(Debug, Clone, PartialEq)]
pub struct LabSet {
    pub info: LabSetInfo,
    pub splits: [LabSplit; 3],
}

#[derive(Debug, Clone, PartialEq)]
pub struct LabData {
    pub header: LabHeader,
    pub sets: Vec<LabSet>,
}

impl LabData {
    pub fn set(&self, name: &str) -> Option<&LabSet> {
        self.sets.iter().find(|s| s.info.name == name)
    }
}

/// Per feature, the lowest code's value and the step between codes: the range between the
/// 0.5th and 99.5th percentile of the feature over all faces (rare extremes are clipped, so
/// that they do not cost every other face its resolution).
fn scales(sets: &[LabSet], dim: usize, bits: u8) -> (Vec<f32>, Vec<f32>) {
    let levels = ((1u32 << bits) - 1) as f32;
    let rows: Vec<&[f32]> =
        sets.iter().flat_map(|s| s.splits.iter()).flat_map(|split| split.features.chunks_exact(dim)).collect();
    (0..dim)
        .map(|d| {
            let mut column: Vec<f32> = rows.iter().map(|r| r[d]).collect();
            column.sort_by(f32::total_cmp);
            let at = |q: f64| column.get(((column.len() - 1) as f64 * q).round() as usize).copied().unwrap_or(0.0);
            let (low, high) = (at(0.005), at(0.995));
            (low, ((high - low) / levels).max(f32::MIN_POSITIVE))
        })
        .unzip()
}

/// A label as the Lab file stores it; a missing one as NaN, which reading refuses: the Lab's
/// sets are built from faces labelled for every task.
fn label_value(label: &Label) -> f32 {
    match *label {
        Label::Class(c) => c as f32,
        Label::Value(v) => v,
        Label::Bounded { .. } | Label::Missing => f32::NAN,
    }
}

/// The Lab file of `sets` (their `splits` counts are set here), features quantised to `bits`.
pub fn encode(mut header: LabHeader, sets: &[LabSet]) -> Vec<u8> {
    assert!(header.bits == 4 || header.bits == 8, "4 or 8 bits per feature");
    header.sets =
        sets.iter().map(|s| LabSetInfo { splits: [0, 1, 2].map(|i| s.splits[i].len()), ..s.info.clone() }).collect();
    let (dim, bits) = (header.dim, header.bits);
    let (low, step) = scales(sets, dim, bits);
    let json = serde_json::to_vec(&header).expect("a header serialises");
    let mut out = MAGIC.to_vec();
    out.extend((json.len() as u32).to_le_bytes());
    out.extend(json);
    low.iter().chain(&step).for_each(|v| out.extend(v.to_le_bytes()));
    let max = ((1u32 << bits) - 1) as f32;
    for split in sets.iter().flat_map(|s| s.splits.iter()) {
        for (row, labels) in split.features.chunks_exact(dim).zip(&split.labels) {
            labels.iter().for_each(|l| out.extend(label_value(l).to_le_bytes()));
            let codes = row.iter().enumerate().map(|(d, v)| ((v - low[d]) / step[d]).round().clamp(0.0, max) as u8);
            if bits == 8 {
                out.extend(codes);
            } else {
                let codes: Vec<u8> = codes.collect();
                out.extend(codes.chunks(2).map(|p| p[0] | p.get(1).map_or(0, |h| h << 4)));
            }
        }
    }
    out
}

/// Reads [`encode`]'s bytes back (features as the values their codes stand for); every length
/// is checked, so a damaged file is an error, never a panic.
pub fn decode(bytes: &[u8]) -> Result<LabData, LabError> {
    let damaged = |what: &str| LabError::Damaged(what.to_string());
    if bytes.get(..8) != Some(MAGIC.as_slice()) {
        return Err(LabError::NotLab);
    }
    let mut at: usize = 8;
    let mut take = |n: usize| -> Result<&[u8], LabError> {
        let slice = at.checked_add(n).and_then(|end| bytes.get(at..end)).ok_or_else(|| damaged("truncated"))?;
        at += n;
        Ok(slice)
    };
    let length = u32::from_le_bytes(take(4)?.try_into().expect("four bytes")) as usize;
    if length > MAX_HEADER_BYTES {
        return Err(damaged("header too long"));
    }
    let header: LabHeader = serde_json::from_slice(take(length)?).map_err(|e| LabError::Damaged(e.to_string()))?;
    header.check().map_err(LabError::Damaged)?;
    let (dim, bits) = (header.dim, header.bits);
    let floats =
        |b: &[u8]| -> Vec<f32> { b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect() };
    let low = floats(take(4 * dim)?);
    let step = floats(take(4 * dim)?);
    let row_bytes = (dim * bits as usize).div_ceil(8);
    let mut sets = Vec::new();
    for info in &header.sets {
        let mut splits: [LabSplit; 3] = Default::default();
        for (split, &count) in splits.iter_mut().zip(&info.splits) {
            let labels_bytes = 4 * info.tasks.len();
            let needed = count.checked_mul(labels_bytes + row_bytes).ok_or_else(|| damaged("counts"))?;
            let block = take(needed)?;
            split.features.reserve(count * dim);
            for face in block.chunks_exact(labels_bytes + row_bytes) {
                let (labels, codes) = face.split_at(labels_bytes);
                let labels = floats(labels).into_iter().zip(&info.tasks).map(|(v, task)| label(v, task));
                split.labels.push(labels.collect::<Result<_, _>>()?);
                let code = |d: usize| match bits {
                    8 => codes[d],
                    _ => (codes[d / 2] >> (4 * (d % 2))) & 0x0f,
                };
                split.features.extend((0..dim).map(|d| low[d] + step[d] * f32::from(code(d))));
            }
        }
        sets.push(LabSet { info: info.clone(), splits });
    }
    if at != bytes.len() {
        return Err(damaged("trailing bytes"));
    }
    Ok(LabData { header, sets })
}

/// The largest Lab file read (the shipped one is 2.4 MB; this holds about a million faces).
pub const MAX_LAB_BYTES: usize = 256 << 20;

/// Most data sets in one Lab file.
const MAX_SETS: usize = 16;

impl LabHeader {
    /// The header of `backbone`'s features (as wide as it gives them, run with
    /// `backbone_weights`), quantised to `bits`, under `licence`; `encode` fills in the sets.
    pub fn new(backbone: BackboneKind, backbone_weights: Precision, bits: u8, licence: &str) -> Self {
        LabHeader {
            backbone,
            backbone_weights,
            dim: backbone.feature_dim(),
            bits,
            licence: licence.into(),
            sets: Vec::new(),
        }
    }

    /// A header the Lab can train from, checked before any of its numbers sizes an allocation:
    /// features as wide as its backbone's, 4 or 8 bits each, and sets whose tasks a model file
    /// could hold (`mtl::check`), each named once with faces in every split (two at least to
    /// train on: batch norm).
    fn check(&self) -> Result<(), String> {
        if self.bits != 4 && self.bits != 8 {
            return Err(format!("{} bits per feature (4 or 8)", self.bits));
        }
        if self.dim != self.backbone.feature_dim() {
            return Err(format!(
                "{} features per face, but a {} backbone gives {}",
                self.dim,
                self.backbone,
                self.backbone.feature_dim()
            ));
        }
        if self.sets.is_empty() || self.sets.len() > MAX_SETS {
            return Err(format!("{} data sets (1 to {MAX_SETS})", self.sets.len()));
        }
        for (i, set) in self.sets.iter().enumerate() {
            if self.sets[..i].iter().any(|s| s.name == set.name) {
                return Err(format!("the data set {} is there twice", set.name));
            }
            check_tasks(&set.tasks).map_err(|why| format!("{}: {why}", set.name))?;
            let [train, val, test] = set.splits;
            if train < 2 || val == 0 || test == 0 {
                return Err(format!("{}: {train} training, {val} validation and {test} test faces", set.name));
            }
        }
        Ok(())
    }
}

/// A stored label as its task's kind reads it; a class out of range, or a value no task of
/// ours could learn from (`TaskSpec::check_label`), is damage.
fn label(value: f32, task: &TaskSpec) -> Result<Label, LabError> {
    let label = match &task.kind {
        TaskKind::Class { .. } if value >= 0.0 && value.fract() == 0.0 => Label::Class(value as usize),
        TaskKind::Class { .. } => {
            return Err(LabError::Damaged(format!("class {value} out of range for {}", task.name)));
        }
        TaskKind::Regression { .. } | TaskKind::Distribution { .. } => Label::Value(value),
    };
    task.check_label(&label).map_err(LabError::Damaged)?;
    Ok(label)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mtl::AgeNorm;

    const DIM: usize = 128;

    fn data(bits: u8) -> (LabHeader, Vec<LabSet>) {
        let tasks = vec![TaskSpec::gender(), TaskSpec::age(AgeNorm::ALL_AGES)];
        let split = |n: usize, shift: f32| LabSplit {
            features: (0..n * DIM).map(|i| (i as f32 * 0.37 + shift).sin()).collect(),
            labels: (0..n).map(|i| vec![Label::Class(i % 2), Label::Value(20.0 + i as f32)]).collect(),
        };
        let info = LabSetInfo {
            name: "faces".into(),
            title: "Faces".into(),
            description: "synthetic".into(),
            tasks,
            splits: [0; 3],
        };
        let header = LabHeader::new(BackboneKind::Dlib, Precision::Int8, bits, "research only");
        (header, vec![LabSet { info, splits: [split(40, 0.0), split(7, 1.0), split(5, 2.0)] }])
    }

    #[test]
    fn features_come_back_within_half_a_step_and_labels_exactly() {
        for bits in [4, 8] {
            let (header, sets) = data(bits);
            let bytes = encode(header, &sets);
            let back = decode(&bytes).unwrap();
            let set = back.set("faces").unwrap();
            assert_eq!(set.info.splits, [40, 7, 5]);
            let tolerance = 2.0 / ((1 << bits) - 1) as f32 * 0.5 + 1e-5;
            for (a, b) in sets[0].splits.iter().zip(&set.splits) {
                assert_eq!(a.labels, b.labels);
                for (x, y) in a.features.iter().zip(&b.features) {
                    // The percentile range clips the most extreme values only.
                    assert!((x - y).abs() <= tolerance || x.abs() > 0.99, "{bits} bits: {x} came back as {y}");
                }
            }
        }
    }

    #[test]
    fn a_damaged_file_is_an_error_not_a_panic() {
        let (header, sets) = data(4);
        let bytes = encode(header, &sets);
        assert_eq!(decode(b"something else"), Err(LabError::NotLab));
        for cut in [9, 20, bytes.len() / 2, bytes.len() - 1] {
            assert!(matches!(decode(&bytes[..cut]), Err(LabError::Damaged(_))), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
        // A class label beyond the task's classes.
        let mut bad = bytes.clone();
        let first_face = bytes.len() - (5 + 7 + 40) * (8 + DIM / 2);
        bad[first_face..first_face + 4].copy_from_slice(&7.0f32.to_le_bytes());
        assert!(matches!(decode(&bad), Err(LabError::Damaged(_))));
    }

    #[test]
    fn a_value_no_task_could_learn_from_is_damage() {
        let (header, mut sets) = data(8);
        sets[0].splits[0].labels[3][1] = Label::Value(3e38);
        assert!(matches!(decode(&encode(header, &sets)), Err(LabError::Damaged(_))));
    }
}
