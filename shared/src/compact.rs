//! A smaller file for a network's weights, for the browser download. With [`Precision::Exact`]
//! nothing is lost: a parameter whose values all survive the round trip through half precision
//! is stored as f16, any other as f32. The pretrained backbones come as float16 in their TF.js
//! packages, so only the tensors changed by batch-norm folding stay f32; the network computes
//! exactly as from f32. With [`Precision::Int8`] every weight matrix and kernel takes one byte
//! per value (half of f16), each row (a convolution's output channel) on its own grid of 256
//! steps; biases stay exact. [`Precision::Int6`] and [`Precision::Int4`] keep that layout with
//! grids of 64 and 16 steps: the bits a code leaves unused are taken away by brotli or gzip,
//! which the download goes through anyway, so the reader needs no second format. Native code
//! and the browser load the very same file, so they compute with the very same values.
//!
//! Layout: `FMH2`, u32 parameter count, then per float parameter in module order: u8 rank, u32
//! dims, u8 kind, then the values:
//! - kind 0 (f32) and 1 (f16): the values' little-endian bytes in planes: the first byte of
//!   every value, then the second, and so on. Signs and exponents then sit together, apart from
//!   the noisy low mantissa bytes, which lets gzip or brotli shrink the file by a further 6-7 %.
//! - kind 2 (8-bit rows): per row (the first dimension) its f32 lowest value and f32 step, then
//!   one u8 code per value, row after row; a value is `lowest + code * step`.
//!
//! All little-endian.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use half::f16;

const MAGIC: &[u8; 4] = b"FMH2";

/// How [`pack_with`] stores parameters of rank 2 and more (weights; biases are always exact).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Every value as it is.
    #[default]
    Exact,
    /// One byte per value, on a grid of 256 steps per row.
    Int8,
    /// On a grid of 64 steps per row, stored as `Int8` is: about 6 bits a value once compressed.
    Int6,
    /// On a grid of 16 steps per row, stored as `Int8` is: about 4 bits a value once compressed.
    Int4,
}

impl Precision {
    pub fn is_exact(&self) -> bool {
        *self == Precision::Exact
    }

    /// How file names tell the precisions apart: `""`, `"-int8"`, ...
    pub fn suffix(&self) -> &'static str {
        match self {
            Precision::Exact => "",
            Precision::Int8 => "-int8",
            Precision::Int6 => "-int6",
            Precision::Int4 => "-int4",
        }
    }

    /// The steps of a row's grid (its highest code), or `None` for exact values.
    fn grid_steps(&self) -> Option<u8> {
        match self {
            Precision::Exact => None,
            Precision::Int8 => Some(255),
            Precision::Int6 => Some(63),
            Precision::Int4 => Some(15),
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "exact" => Ok(Precision::Exact),
            "int8" => Ok(Precision::Int8),
            "int6" => Ok(Precision::Int6),
            "int4" => Ok(Precision::Int4),
            other => Err(format!("unknown weight precision {other:?} (exact, int8, int6 or int4)")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error("not a compact weight file (bad magic)")]
    NotCompact,
    #[error("the compact weight file is truncated")]
    Truncated,
    #[error("the compact weight file does not fit the network: {0}")]
    Mismatch(String),
    #[error("the weight file holds a value that is not a finite number")]
    NonFinite,
}

/// Whether `bytes` starts like a file written by [`pack`].
pub fn is_compact(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

struct Packer {
    out: Vec<u8>,
    count: u32,
    precision: Precision,
}

impl ModuleVisitor for Packer {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        let dims = tensor.dims();
        let values = tensor.into_data().convert::<f32>().try_to_vec::<f32>().expect("float parameters");
        self.count += 1;
        self.out.push(D as u8);
        dims.iter().for_each(|d| self.out.extend((*d as u32).to_le_bytes()));
        if let Some(steps) = self.precision.grid_steps().filter(|_| D >= 2 && !values.is_empty()) {
            self.out.push(2);
            push_rows(&mut self.out, &values, dims[0], steps);
        } else if values.iter().all(|v| f16::from_f32(*v).to_f32() == *v) {
            self.out.push(1);
            push_planes(&mut self.out, values.iter().map(|v| f16::from_f32(*v).to_le_bytes()));
        } else {
            self.out.push(0);
            push_planes(&mut self.out, values.iter().map(|v| v.to_le_bytes()));
        }
    }
}

fn push_planes<const W: usize>(out: &mut Vec<u8>, values: impl Iterator<Item = [u8; W]>) {
    let values: Vec<[u8; W]> = values.collect();
    (0..W).for_each(|plane| out.extend(values.iter().map(|v| v[plane])));
}

/// `values` as `rows` rows of 8-bit codes from 0 to `steps`, each row with its lowest value and
/// step first.
fn push_rows(out: &mut Vec<u8>, values: &[f32], rows: usize, steps: u8) {
    let row_len = values.len() / rows;
    let mut codes = Vec::with_capacity(values.len());
    for row in values.chunks(row_len) {
        let (lowest, step) = row_grid(row, steps);
        out.extend(lowest.to_le_bytes());
        out.extend(step.to_le_bytes());
        codes.extend(row.iter().map(|v| grid_code(*v, lowest, step, steps)));
    }
    out.extend(codes);
}

fn grid_code(v: f32, lowest: f32, step: f32, steps: u8) -> u8 {
    if step > 0.0 { ((v - lowest) / step).round().clamp(0.0, steps as f32) as u8 } else { 0 }
}

/// A row's grid: `steps` steps from its lowest to its highest value. (Narrower grids that clip
/// outliers were tried on the backbone in int8: they bring the features no closer to the exact
/// ones.)
fn row_grid(row: &[f32], steps: u8) -> (f32, f32) {
    let lowest = row.iter().copied().fold(f32::INFINITY, f32::min);
    let highest = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    (lowest, (highest - lowest) / steps as f32)
}

/// The values of `rows` rows of `len` values in all, written by [`push_rows`].
fn from_rows(grids: &[u8], codes: &[u8], rows: usize) -> Vec<f32> {
    let row_len = codes.len() / rows;
    let word = |at: usize| f32::from_le_bytes(grids[at..at + 4].try_into().unwrap());
    codes
        .chunks(row_len)
        .enumerate()
        .flat_map(|(row, codes)| {
            let (lowest, step) = (word(8 * row), word(8 * row + 4));
            codes.iter().map(move |c| lowest + *c as f32 * step)
        })
        .collect()
}

/// The `len` values of `W` bytes each whose planes are `bytes`.
fn from_planes<const W: usize>(bytes: &[u8], len: usize) -> impl Iterator<Item = [u8; W]> + '_ {
    (0..len).map(move |i| std::array::from_fn(|plane| bytes[plane * len + i]))
}

/// The compact file of `module`'s parameters, with nothing lost.
pub fn pack<M: Module>(module: &M) -> Vec<u8> {
    pack_with(module, Precision::Exact)
}

/// The compact file of `module`'s parameters at `precision`.
pub fn pack_with<M: Module>(module: &M, precision: Precision) -> Vec<u8> {
    let mut packer = Packer { out: Vec::new(), count: 0, precision };
    module.visit(&mut packer);
    let mut bytes = MAGIC.to_vec();
    bytes.extend(packer.count.to_le_bytes());
    bytes.extend(packer.out);
    bytes
}

/// Rounds every parameter to half precision, so that [`pack`] stores it in half the bytes; a
/// parameter with a value beyond f16's range stays as it is.
struct Half;

impl ModuleMapper for Half {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|t| {
            let dims = t.dims();
            let values = t.clone().into_data().convert::<f32>().try_to_vec::<f32>().expect("float parameters");
            if values.iter().any(|v| f16::from_f32(*v).is_infinite() && v.is_finite()) {
                return t;
            }
            let rounded: Vec<f32> = values.iter().map(|v| f16::from_f32(*v).to_f32()).collect();
            Tensor::from_data(TensorData::new(rounded, dims), &t.device())
        })
    }
}

/// Puts the values read by [`to_host`] back, in the same order, on the CPU device.
struct Replace(std::vec::IntoIter<TensorData>);

impl ModuleMapper for Replace {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let data = self.0.next().expect("one value per tensor");
        param.map(|t| Tensor::<1>::from_data(data, &Device::flex()).reshape(t.dims()))
    }
}

/// `module` on the CPU device, its values read back without blocking (a WebGPU device in a
/// browser cannot block): what writing a model file from a network trained on a GPU needs.
pub async fn to_host<M: Module>(module: M) -> Result<M, String> {
    /// Every float tensor (parameters and running statistics), in visiting order.
    struct Collect(Vec<Tensor<1>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.val().flatten(0, D - 1));
        }
    }
    let mut collected = Collect(Vec::new());
    module.visit(&mut collected);
    let mut values = Vec::with_capacity(collected.0.len());
    for tensor in collected.0 {
        values.push(tensor.into_data_async().await.map_err(|e| format!("{e:?}"))?);
    }
    Ok(module.map(&mut Replace(values.into_iter())))
}

/// `module` with its parameters rounded to half precision (see [`Half`]).
pub fn half<M: Module>(module: M) -> M {
    module.map(&mut Half)
}

/// `module` with the values a file written at `precision` gives back: what a network loaded from
/// that file computes with.
pub fn at_precision<M: Module>(module: M, precision: Precision) -> M {
    let bytes = pack_with(&module, precision);
    unpack(module, &bytes).expect("a file just packed from the same network")
}

struct Unpacker<'a> {
    bytes: &'a [u8],
    at: usize,
    error: Option<CompactError>,
}

impl<'a> Unpacker<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CompactError> {
        let slice = self.bytes.get(self.at..self.at + n).ok_or(CompactError::Truncated)?;
        self.at += n;
        Ok(slice)
    }

    fn values(&mut self, expected: &[usize]) -> Result<Vec<f32>, CompactError> {
        let rank = self.take(1)?[0] as usize;
        let dims: Vec<usize> = (0..rank)
            .map(|_| self.take(4).map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize))
            .collect::<Result<_, _>>()?;
        if dims != expected {
            return Err(CompactError::Mismatch(format!(
                "a parameter of shape {dims:?} where {expected:?} was expected"
            )));
        }
        let len: usize = dims.iter().product();
        let values: Vec<f32> = match self.take(1)?[0] {
            0 => from_planes(self.take(4 * len)?, len).map(f32::from_le_bytes).collect(),
            1 => from_planes(self.take(2 * len)?, len).map(|b| f16::from_le_bytes(b).to_f32()).collect(),
            2 if rank >= 2 && len > 0 => {
                let rows = dims[0];
                let grids = self.take(8 * rows)?;
                from_rows(grids, self.take(len)?, rows)
            }
            kind => return Err(CompactError::Mismatch(format!("unknown value kind {kind}"))),
        };
        // A NaN or infinite weight would surface as a NaN prediction far from its cause.
        if values.iter().any(|v| !v.is_finite()) {
            return Err(CompactError::NonFinite);
        }
        Ok(values)
    }
}

impl ModuleMapper for Unpacker<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if self.error.is_some() {
            return param;
        }
        let dims = param.val().dims();
        match self.values(&dims) {
            Ok(values) => param.map(|t| Tensor::from_data(TensorData::new(values, dims), &t.device())),
            Err(e) => {
                self.error = Some(e);
                param
            }
        }
    }
}

/// `module` with the parameters of a file written by [`pack`] for the same network.
pub fn unpack<M: Module>(module: M, bytes: &[u8]) -> Result<M, CompactError> {
    if bytes.len() < 8 || !is_compact(bytes) {
        return Err(CompactError::NotCompact);
    }
    let mut unpacker = Unpacker { bytes, at: 8, error: None };
    let module = module.map(&mut unpacker);
    if let Some(e) = unpacker.error {
        return Err(e);
    }
    if unpacker.at != bytes.len() {
        return Err(CompactError::Mismatch(format!("{} bytes left over", bytes.len() - unpacker.at)));
    }
    Ok(module)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::backbone::{Backbone, BackboneKind};

    struct Values(Vec<f32>);

    impl ModuleVisitor for Values {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.extend(param.val().into_data().try_to_vec::<f32>().unwrap());
        }
    }

    /// Every float parameter of `module`, flattened in visiting order.
    pub(crate) fn values<M: Module>(module: &M) -> Vec<f32> {
        let mut v = Values(Vec::new());
        module.visit(&mut v);
        v.0
    }

    #[test]
    fn parameters_come_back_bit_for_bit_and_half_precision_ones_take_half_the_bytes() {
        let device = Device::flex();
        let fresh = || Backbone::init(BackboneKind::Dlib, &device);
        let full = fresh();
        let full_values = values(&full);
        let f32_bytes = 4 * full_values.len();
        let back = unpack(fresh(), &pack(&full)).unwrap();
        assert_eq!(values(&back), values(&full));
        assert!(pack(&full).len() > f32_bytes, "as initialised, values need f32");

        let rounded = half(full);
        let bytes = pack(&rounded);
        assert_eq!(values(&unpack(fresh(), &bytes).unwrap()), values(&rounded));
        assert!(bytes.len() < f32_bytes / 2 + 4096, "{} vs {f32_bytes}", bytes.len());
        let changed = full_values.iter().zip(values(&rounded)).filter(|(a, b)| **a != *b).count();
        assert!(changed > 0, "rounding changed nothing");
    }

    /// Each parameter's values, in module order.
    struct Parameters(Vec<(Vec<usize>, Vec<f32>)>);

    impl ModuleVisitor for Parameters {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val();
            self.0.push((t.dims().to_vec(), t.into_data().try_to_vec::<f32>().unwrap()));
        }
    }

    fn parameters<M: Module>(module: &M) -> Vec<(Vec<usize>, Vec<f32>)> {
        let mut p = Parameters(Vec::new());
        module.visit(&mut p);
        p.0
    }

    #[test]
    fn grid_files_take_a_byte_per_weight_and_keep_each_row_within_half_a_step() {
        let device = Device::flex();
        let full = half(Backbone::init(BackboneKind::Faceres, &device));
        let exact = pack(&full);
        for (precision, steps) in [(Precision::Int8, 255.0), (Precision::Int6, 63.0), (Precision::Int4, 15.0)] {
            let bytes = pack_with(&full, precision);
            assert!(bytes.len() * 100 < exact.len() * 55, "{precision:?}: {} vs {}", bytes.len(), exact.len());
            let back = unpack(Backbone::init(BackboneKind::Faceres, &device), &bytes).unwrap();
            assert_eq!(values(&back), values(&at_precision(full.clone(), precision)));
            let mut weights = 0;
            for ((dims, before), (_, after)) in parameters(&full).into_iter().zip(parameters(&back)) {
                if dims.len() < 2 {
                    assert_eq!(before, after, "biases and other vectors stay exact");
                    continue;
                }
                weights += 1;
                let row_len = before.len() / dims[0];
                for (row, back_row) in before.chunks(row_len).zip(after.chunks(row_len)) {
                    let (low, high) =
                        row.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), v| (l.min(*v), h.max(*v)));
                    let half_step = (high - low) / steps / 2.0;
                    for (a, b) in row.iter().zip(back_row) {
                        assert!((a - b).abs() <= half_step * 1.001 + 1e-7, "{a} -> {b}, half a step {half_step}");
                    }
                    let levels: std::collections::BTreeSet<u32> = back_row.iter().map(|v| v.to_bits()).collect();
                    assert!(levels.len() <= steps as usize + 1, "{precision:?}: {} levels in a row", levels.len());
                }
            }
            assert!(weights > 20, "only {weights} weight tensors");
            assert_ne!(values(&back), values(&full), "quantising changed nothing");
        }
    }

    #[test]
    fn a_constant_row_and_a_cut_int8_file_are_handled() {
        let device = Device::flex();
        let zeros = Backbone::init(BackboneKind::Dlib, &device).map(&mut Scale(0.0));
        let bytes = pack_with(&zeros, Precision::Int8);
        let fresh = || Backbone::init(BackboneKind::Dlib, &device);
        assert_eq!(values(&unpack(fresh(), &bytes).unwrap()), values(&zeros));
        assert!(matches!(unpack(fresh(), &bytes[..bytes.len() - 1]), Err(CompactError::Truncated)));
    }

    #[test]
    fn values_beyond_half_precision_stay_single_precision() {
        let device = Device::flex();
        let huge = Backbone::init(BackboneKind::Dlib, &device).map(&mut Scale(1e9));
        assert_eq!(values(&half(huge.clone())), values(&huge));
    }

    struct Scale(f32);

    impl ModuleMapper for Scale {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            param.map(|t| t.mul_scalar(self.0))
        }
    }

    #[test]
    fn truncated_or_foreign_files_are_refused() {
        let device = Device::flex();
        let bytes = pack(&Backbone::init(BackboneKind::Dlib, &device));
        let fresh = || Backbone::init(BackboneKind::Dlib, &device);
        assert!(matches!(unpack(fresh(), &bytes[..bytes.len() - 1]), Err(CompactError::Truncated)));
        assert!(matches!(unpack(fresh(), b"FMTL...."), Err(CompactError::NotCompact)));
        let other = pack(&Backbone::init(BackboneKind::Faceres, &device));
        assert!(matches!(unpack(fresh(), &other), Err(CompactError::Mismatch(_))));
    }
}
