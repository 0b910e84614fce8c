//! A smaller file for a network's weights, for the browser download, with no loss: a parameter
//! whose values all survive the round trip through half precision is stored as f16, any other
//! as f32. The pretrained backbones come as float16 in their TF.js packages, so only the
//! tensors changed by batch-norm folding stay f32; the network computes exactly as from f32.
//!
//! Layout: `FMH2`, u32 parameter count, then per float parameter in module order: u8 rank, u32
//! dims, u8 kind (0 f32, 1 f16), the values' little-endian bytes in planes: the first byte of
//! every value, then the second, and so on. Signs and exponents then sit together, apart from
//! the noisy low mantissa bytes, which lets gzip or brotli shrink the file by a further 6-7 %.
//! All little-endian.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use half::f16;

const MAGIC: &[u8; 4] = b"FMH2";

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
}

impl ModuleVisitor for Packer {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        let dims = tensor.dims();
        let values = tensor.into_data().convert::<f32>().try_to_vec::<f32>().expect("float parameters");
        self.count += 1;
        self.out.push(D as u8);
        dims.iter().for_each(|d| self.out.extend((*d as u32).to_le_bytes()));
        if values.iter().all(|v| f16::from_f32(*v).to_f32() == *v) {
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

/// The `len` values of `W` bytes each whose planes are `bytes`.
fn from_planes<const W: usize>(bytes: &[u8], len: usize) -> impl Iterator<Item = [u8; W]> + '_ {
    (0..len).map(move |i| std::array::from_fn(|plane| bytes[plane * len + i]))
}

/// The compact file of `module`'s parameters.
pub fn pack<M: Module>(module: &M) -> Vec<u8> {
    let mut packer = Packer { out: Vec::new(), count: 0 };
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

/// `module` with its parameters rounded to half precision (see [`Half`]).
pub fn half<M: Module>(module: M) -> M {
    module.map(&mut Half)
}

struct Unpacker<'a> {
    bytes: &'a [u8],
    at: usize,
    error: Option<CompactError>,
}

impl Unpacker<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], CompactError> {
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
mod tests {
    use super::*;
    use crate::backbone::{Backbone, BackboneKind};

    struct Values(Vec<f32>);

    impl ModuleVisitor for Values {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.extend(param.val().into_data().try_to_vec::<f32>().unwrap());
        }
    }

    fn values<M: Module>(module: &M) -> Vec<f32> {
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
