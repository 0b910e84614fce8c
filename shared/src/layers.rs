//! Building Burn layers from TF.js tensors: layout permutations and batch-norm folding.
//!
//! TF stores conv kernels as HWIO and depthwise kernels as `[kh, kw, C, 1]`; Burn wants
//! `[out, in / groups, kh, kw]`. Dense kernels are `[in, out]` in both.

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;

use crate::tfjs::{TfTensor, TfjsError, TfjsWeights};

/// HWIO -> OIHW.
fn hwio_to_oihw(t: &TfTensor) -> (Vec<f32>, [usize; 4]) {
    let [h, w, i, o] = [t.shape[0], t.shape[1], t.shape[2], t.shape[3]];
    let mut out = vec![0.0; t.values.len()];
    for hh in 0..h {
        for ww in 0..w {
            for ii in 0..i {
                for oo in 0..o {
                    out[((oo * i + ii) * h + hh) * w + ww] = t.values[((hh * w + ww) * i + ii) * o + oo];
                }
            }
        }
    }
    (out, [o, i, h, w])
}

fn param<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Param<Tensor<D>> {
    Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), device))
}

/// A dense convolution from a TF kernel and optional bias.
pub fn conv(
    weights: &TfjsWeights,
    kernel: &str,
    bias: Option<&str>,
    shape: [usize; 4],
    stride: usize,
    padding: PaddingConfig2d,
    device: &Device,
) -> Result<Conv2d, TfjsError> {
    let [kh, kw, cin, cout] = shape;
    let mut layer = Conv2dConfig::new([cin, cout], [kh, kw])
        .with_stride([stride, stride])
        .with_padding(padding)
        .with_bias(bias.is_some())
        .init(device);
    let (values, oihw) = hwio_to_oihw(weights.get(kernel, &shape)?);
    layer.weight = param(values, oihw, device);
    if let Some(bias) = bias {
        layer.bias = Some(param(weights.get(bias, &[cout])?.values.clone(), [cout], device));
    }
    Ok(layer)
}

/// A 3x3 depthwise convolution (groups = channels), SAME-padded. When `scale` is given, the
/// per-channel multiplier of a folded batch norm is multiplied into the kernel, which is exact
/// because each output channel sees only its own kernel.
pub fn depthwise(
    weights: &TfjsWeights,
    kernel: &str,
    scale: Option<&str>,
    bias: Option<&str>,
    channels: usize,
    stride: usize,
    device: &Device,
) -> Result<Conv2d, TfjsError> {
    let kernel_size = 3;
    let k = weights.get(kernel, &[kernel_size, kernel_size, channels, 1])?;
    let scale = match scale {
        Some(name) => weights.get(name, &[channels])?.values.clone(),
        None => vec![1.0; channels],
    };
    let mut values = vec![0.0; k.values.len()];
    for y in 0..kernel_size {
        for x in 0..kernel_size {
            for c in 0..channels {
                values[(c * kernel_size + y) * kernel_size + x] =
                    k.values[(y * kernel_size + x) * channels + c] * scale[c];
            }
        }
    }
    let mut layer = Conv2dConfig::new([channels, channels], [kernel_size, kernel_size])
        .with_stride([stride, stride])
        .with_groups(channels)
        .with_padding(PaddingConfig2d::Same)
        .with_bias(bias.is_some())
        .init(device);
    layer.weight = param(values, [channels, 1, kernel_size, kernel_size], device);
    if let Some(bias) = bias {
        layer.bias = Some(param(weights.get(bias, &[channels])?.values.clone(), [channels], device));
    }
    Ok(layer)
}

/// A dense layer from a TF `[in, out]` kernel and optional bias.
pub fn linear(
    weights: &TfjsWeights,
    kernel: &str,
    bias: Option<&str>,
    d_in: usize,
    d_out: usize,
    device: &Device,
) -> Result<Linear, TfjsError> {
    let mut layer = LinearConfig::new(d_in, d_out).with_bias(bias.is_some()).init(device);
    layer.weight = param(weights.get(kernel, &[d_in, d_out])?.values.clone(), [d_in, d_out], device);
    if let Some(bias) = bias {
        layer.bias = Some(param(weights.get(bias, &[d_out])?.values.clone(), [d_out], device));
    }
    Ok(layer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hwio_permutation_puts_each_tap_in_place() {
        // kernel[h][w][i][o] = 1000h + 100w + 10i + o
        let (h, w, i, o) = (2, 3, 2, 4);
        let mut values = Vec::new();
        for hh in 0..h {
            for ww in 0..w {
                for ii in 0..i {
                    for oo in 0..o {
                        values.push((1000 * hh + 100 * ww + 10 * ii + oo) as f32);
                    }
                }
            }
        }
        let (out, shape) = hwio_to_oihw(&TfTensor { shape: vec![h, w, i, o], values });
        assert_eq!(shape, [4, 2, 2, 3]);
        let at = |oo: usize, ii: usize, hh: usize, ww: usize| out[((oo * i + ii) * h + hh) * w + ww];
        assert_eq!(at(3, 1, 1, 2), 1213.0);
        assert_eq!(at(0, 0, 0, 1), 100.0);
    }
}
