//! Reading TF.js weight manifests (`*-weights_manifest.json`, or the `weightsManifest` of a
//! graph `model.json`) and their binary shards into named float tensors.
//!
//! Shards are concatenated and tensors lie back to back in manifest order. Quantised tensors
//! decode as `q * scale + min` (uint8/uint16) or from IEEE half (float16). Every byte of the
//! shards must be consumed: a manifest that does not account for all of them is refused,
//! since that means the weights and the manifest are not from the same model.

use std::collections::HashMap;

use serde::Deserialize;

/// One weights group of a manifest: its shard files and the tensors stored in them.
#[derive(Debug, Clone, Deserialize)]
pub struct ManifestGroup {
    pub paths: Vec<String>,
    pub weights: Vec<WeightEntry>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WeightEntry {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: String,
    pub quantization: Option<Quantization>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Quantization {
    pub dtype: String,
    pub scale: Option<f64>,
    pub min: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum TfjsError {
    #[error("the weights manifest is not valid JSON of the TF.js format: {0}")]
    Manifest(#[from] serde_json::Error),
    #[error("shard file `{0}` named by the manifest was not provided")]
    MissingShard(String),
    #[error("tensor `{name}` needs {needed} bytes at offset {offset}, but the shards hold only {total}")]
    Truncated { name: String, offset: usize, needed: usize, total: usize },
    #[error("the shards hold {total} bytes but the manifest accounts for {used}: weights and manifest do not match")]
    TrailingBytes { used: usize, total: usize },
    #[error("tensor `{name}` has unsupported dtype `{dtype}`")]
    UnsupportedDtype { name: String, dtype: String },
    #[error("quantised tensor `{0}` lacks its scale or min")]
    MissingQuantParams(String),
    #[error("tensor `{0}` is not in the weights")]
    MissingTensor(String),
    #[error("tensor `{name}` holds {found}, where the model expects {expected}")]
    Value { name: String, expected: String, found: String },
    #[error("tensor `{name}` has shape {found:?}, expected {expected:?}")]
    Shape { name: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("tensor `{name}` has shape {shape:?}, more values than any file can hold")]
    ImpossibleShape { name: String, shape: Vec<usize> },
    #[error("shard file `{0}` is named twice by the manifest")]
    RepeatedShard(String),
    #[error("the shards add up to more than {MAX_SHARD_BYTES} bytes")]
    TooLarge,
}

/// The most shard bytes a manifest may name: the largest network we read is under 30 MB.
pub const MAX_SHARD_BYTES: usize = 512 << 20;

/// A tensor read from TF.js weights, always as f32, in TF's layout.
#[derive(Debug, Clone)]
pub struct TfTensor {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// All float tensors of a TF.js model, by name. Int32 tensors (graph shape constants) are read
/// and counted but not kept: the hand-written modules know their shapes.
#[derive(Debug, Default)]
pub struct TfjsWeights {
    tensors: HashMap<String, TfTensor>,
}

impl TfjsWeights {
    /// Parse a manifest, given either a bare list of groups (face-api) or a graph
    /// `model.json` holding `weightsManifest` (human), with a lookup for the shard bytes.
    pub fn parse<'a>(manifest_json: &str, shard: impl Fn(&str) -> Option<&'a [u8]>) -> Result<Self, TfjsError> {
        let groups = parse_groups(manifest_json)?;
        let mut tensors = HashMap::new();
        let mut named = std::collections::HashSet::new();
        let mut total = 0usize;
        for group in groups {
            let mut shards = Vec::with_capacity(group.paths.len());
            for path in &group.paths {
                // A shard named twice would be read twice: a few bytes of file could then
                // stand for any amount of weights.
                if !named.insert(path.clone()) {
                    return Err(TfjsError::RepeatedShard(path.clone()));
                }
                let data = shard(path).ok_or_else(|| TfjsError::MissingShard(path.clone()))?;
                total = total.saturating_add(data.len());
                if total > MAX_SHARD_BYTES {
                    return Err(TfjsError::TooLarge);
                }
                shards.push(data);
            }
            let bytes = shards.concat();
            let mut offset = 0;
            for entry in &group.weights {
                let (values, used) = decode_entry(entry, &bytes[offset.min(bytes.len())..], offset, bytes.len())?;
                offset += used;
                if let Some(values) = values {
                    tensors.insert(entry.name.clone(), TfTensor { shape: entry.shape.clone(), values });
                }
            }
            if offset != bytes.len() {
                return Err(TfjsError::TrailingBytes { used: offset, total: bytes.len() });
            }
        }
        Ok(Self { tensors })
    }

    /// The tensor `name`, checked against the expected TF shape.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<&TfTensor, TfjsError> {
        let t = self.tensors.get(name).ok_or_else(|| TfjsError::MissingTensor(name.to_string()))?;
        if t.shape != shape {
            return Err(TfjsError::Shape { name: name.to_string(), expected: shape.to_vec(), found: t.shape.clone() });
        }
        Ok(t)
    }

    /// A scalar tensor (shape `[]`).
    pub fn scalar(&self, name: &str) -> Result<f32, TfjsError> {
        Ok(self.get(name, &[])?.values[0])
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }
}

fn parse_groups(manifest_json: &str) -> Result<Vec<ManifestGroup>, TfjsError> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Manifest {
        Bare(Vec<ManifestGroup>),
        Graph {
            #[serde(rename = "weightsManifest")]
            weights_manifest: Vec<ManifestGroup>,
        },
    }
    Ok(match serde_json::from_str::<Manifest>(manifest_json)? {
        Manifest::Bare(groups) => groups,
        Manifest::Graph { weights_manifest } => weights_manifest,
    })
}

/// Decode one entry from the start of `rest`; returns its f32 values (None for int tensors)
/// and the number of bytes it occupied.
fn decode_entry(
    entry: &WeightEntry,
    rest: &[u8],
    offset: usize,
    total: usize,
) -> Result<(Option<Vec<f32>>, usize), TfjsError> {
    let impossible = || TfjsError::ImpossibleShape { name: entry.name.clone(), shape: entry.shape.clone() };
    let count = entry.shape.iter().try_fold(1usize, |n, d| n.checked_mul(*d)).ok_or_else(impossible)?;
    let stored = entry.quantization.as_ref().map_or(entry.dtype.as_str(), |q| q.dtype.as_str());
    let width = match stored {
        "float32" | "int32" => 4,
        "float16" | "uint16" => 2,
        "uint8" => 1,
        other => {
            return Err(TfjsError::UnsupportedDtype { name: entry.name.clone(), dtype: other.to_string() });
        }
    };
    let needed = count.checked_mul(width).ok_or_else(impossible)?;
    if rest.len() < needed {
        return Err(TfjsError::Truncated { name: entry.name.clone(), offset, needed, total });
    }
    let raw = &rest[..needed];
    // Integer codes mean nothing without the affine map back to floats.
    let affine = || -> Result<(f32, f32), TfjsError> {
        match entry.quantization.as_ref().map(|q| (q.scale, q.min)) {
            Some((Some(s), Some(m))) => Ok((s as f32, m as f32)),
            _ => Err(TfjsError::MissingQuantParams(entry.name.clone())),
        }
    };
    let values = match (stored, entry.dtype.as_str()) {
        ("int32", _) | (_, "int32") => None,
        ("float32", _) => Some(raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()),
        ("float16", _) => Some(raw.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()),
        ("uint8", _) => {
            let (scale, min) = affine()?;
            Some(raw.iter().map(|&q| q as f32 * scale + min).collect())
        }
        ("uint16", _) => {
            let (scale, min) = affine()?;
            Some(raw.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]]) as f32 * scale + min).collect())
        }
        _ => unreachable!("width match above covers every stored dtype"),
    };
    Ok((values, needed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(weights: &str) -> String {
        format!(r#"[{{"paths": ["a.bin"], "weights": [{weights}]}}]"#)
    }

    #[test]
    fn decodes_every_dtype() {
        let json = manifest(
            r#"{"name": "f", "shape": [2], "dtype": "float32"},
               {"name": "h", "shape": [1], "dtype": "float32", "quantization": {"dtype": "float16", "original_dtype": "float32"}},
               {"name": "q8", "shape": [2], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0}},
               {"name": "q16", "shape": [1], "dtype": "float32", "quantization": {"dtype": "uint16", "scale": 0.25, "min": 2.0}},
               {"name": "shape", "shape": [1], "dtype": "int32"}"#,
        );
        let mut bin = Vec::new();
        bin.extend_from_slice(&1.5f32.to_le_bytes());
        bin.extend_from_slice(&(-2.0f32).to_le_bytes());
        bin.extend_from_slice(&half::f16::from_f32(0.75).to_le_bytes());
        bin.extend_from_slice(&[0u8, 6]);
        bin.extend_from_slice(&8u16.to_le_bytes());
        bin.extend_from_slice(&7i32.to_le_bytes());
        let w = TfjsWeights::parse(&json, |p| (p == "a.bin").then_some(bin.as_slice())).unwrap();
        assert_eq!(w.get("f", &[2]).unwrap().values, vec![1.5, -2.0]);
        assert_eq!(w.get("h", &[1]).unwrap().values, vec![0.75]);
        assert_eq!(w.get("q8", &[2]).unwrap().values, vec![-1.0, 2.0]);
        assert_eq!(w.get("q16", &[1]).unwrap().values, vec![4.0]);
        assert_eq!(w.len(), 4, "int32 tensors are consumed but not kept");
        assert!(matches!(w.get("f", &[3]), Err(TfjsError::Shape { .. })));
    }

    #[test]
    fn refuses_short_long_and_missing_shards() {
        let json = manifest(r#"{"name": "f", "shape": [2], "dtype": "float32"}"#);
        let short = [0u8; 7];
        assert!(matches!(TfjsWeights::parse(&json, |_| Some(&short[..])), Err(TfjsError::Truncated { .. })));
        let long = [0u8; 9];
        assert!(matches!(TfjsWeights::parse(&json, |_| Some(&long[..])), Err(TfjsError::TrailingBytes { .. })));
        assert!(matches!(TfjsWeights::parse(&json, |_| None), Err(TfjsError::MissingShard(_))));
        assert!(matches!(TfjsWeights::parse("{", |_| None), Err(TfjsError::Manifest(_))));
    }

    #[test]
    fn hostile_manifests_are_errors_not_panics_or_wrapped_sizes() {
        let four = [0u8; 4];
        let parse = |json: &str| TfjsWeights::parse(json, |_| Some(&four[..]));
        // Integer codes without their quantisation: once a panic.
        let bare = manifest(r#"{"name": "q", "shape": [4], "dtype": "uint8"}"#);
        assert!(matches!(parse(&bare), Err(TfjsError::MissingQuantParams(_))));
        // 2^62 x 4 values: once wrapped to 0 bytes and accepted.
        let huge = manifest(r#"{"name": "h", "shape": [4611686018427387904, 4], "dtype": "float32"}"#);
        assert!(matches!(parse(&huge), Err(TfjsError::ImpossibleShape { .. })));
        let wraps = manifest(r#"{"name": "h", "shape": [4611686018427387904], "dtype": "float32"}"#);
        assert!(matches!(parse(&wraps), Err(TfjsError::ImpossibleShape { .. })));
        // One 4-byte shard named 200,000 times: once read into an 800 KB buffer.
        let paths = vec!["\"a.bin\""; 200_000].join(",");
        let repeated =
            format!(r#"[{{"paths": [{paths}], "weights": [{{"name": "f", "shape": [200000], "dtype": "float32"}}]}}]"#);
        assert!(matches!(parse(&repeated), Err(TfjsError::RepeatedShard(_))));
        let across_groups = r#"[{"paths": ["a.bin"], "weights": [{"name": "f", "shape": [1], "dtype": "float32"}]},
                                {"paths": ["a.bin"], "weights": [{"name": "g", "shape": [1], "dtype": "float32"}]}]"#;
        assert!(matches!(parse(across_groups), Err(TfjsError::RepeatedShard(_))));
    }
}
