//! A smaller file for a network's weights, for the browser download, with no loss: a parameter
//! whose values all survive the round trip through half precision is stored as f16, any other
//! as f32. The pretrained backbones come as float16 in their TF.js packages, so only the
//! tensors changed by batch-norm folding stay f32; the network computes exactly as from f32.
//!
//! Layout: `FMH1`, u32 parameter count, then per float parameter in module order: u8 rank, u32
//! dims, u8 kind (0 f32, 1 f16), the values. All little-endian.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use half::f16;

const MAGIC: &[u8; 4] = b"FMH1";

#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error("not a compact weight file (bad magic)")]
    NotCompact,
    #[error("the compact weight file is truncated")]
    Truncated,
    #[error("the compact weight file does not fit the network: {0}")]
    Mismatch(String),
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
            values.iter().for_each(|v| self.out.extend(f16::from_f32(*v).to_le_bytes()));
        } else {
            self.out.push(0);
            values.iter().for_each(|v| self.out.extend(v.to_le_bytes()));
        }
    }
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
        Ok(match self.take(1)?[0] {
            0 => self.take(4 * len)?.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect(),
            1 => self
                .take(2 * len)?
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes(b.try_into().unwrap()).to_f32())
                .collect(),
            kind => return Err(CompactError::Mismatch(format!("unknown value kind {kind}"))),
        })
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
        // One parameter rounded to f16 (as the pretrained weights are), the others as initialised.
        let rounded = Backbone::init(BackboneKind::Dlib, &device).map(&mut Round { done: false });
        let bytes = pack(&rounded);
        let back = unpack(Backbone::init(BackboneKind::Dlib, &device), &bytes).unwrap();
        assert_eq!(values(&back), values(&rounded));
        let f32_bytes = 4 * values(&rounded).len();
        assert!(bytes.len() < f32_bytes, "{} vs {f32_bytes}", bytes.len());
    }

    /// Rounds the first parameter's values to half precision.
    struct Round {
        done: bool,
    }

    impl ModuleMapper for Round {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            if std::mem::replace(&mut self.done, true) {
                return param;
            }
            param.map(|t| {
                let dims = t.dims();
                let v: Vec<f32> = t.clone().into_data().try_to_vec::<f32>().unwrap();
                let r: Vec<f32> = v.iter().map(|x| f16::from_f32(*x).to_f32()).collect();
                Tensor::from_data(TensorData::new(r, dims), &t.device())
            })
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
