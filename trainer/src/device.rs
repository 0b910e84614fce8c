//! Choosing where tensors run: `auto` takes a GPU through wgpu when one answers and falls back
//! to the CPU (flex) otherwise, without panicking; the choice is always reported.

use anyhow::{Result, bail};
use burn::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Auto,
    Wgpu,
    /// CUDA (builds with the `cuda` feature only).
    Cuda,
    Cpu,
}

/// The device and a human-readable name of what it is.
pub fn select(backend: Backend) -> Result<(Device, String)> {
    match backend {
        Backend::Cpu => Ok((Device::flex(), "cpu (flex)".into())),
        Backend::Wgpu => match gpu() {
            Ok((device, name, _)) => Ok((device, name)),
            Err(why) => bail!("no GPU through wgpu: {why}"),
        },
        Backend::Cuda => cuda(),
        Backend::Auto => match gpu() {
            Ok((device, name, false)) => Ok((device, name)),
            Ok((_, name, true)) => {
                eprintln!("only a software GPU answers ({name}), slower than the CPU backend; using the CPU");
                Ok((Device::flex(), "cpu (flex)".into()))
            }
            Err(why) => {
                eprintln!("no GPU available ({why}); using the CPU");
                Ok((Device::flex(), "cpu (flex)".into()))
            }
        },
    }
}

/// The wgpu device, its description, and whether it is a software rasteriser (lavapipe,
/// llvmpipe, SwiftShader: correct but far slower than the CPU backend).
#[cfg(feature = "gpu")]
fn gpu() -> Result<(Device, String, bool), String> {
    let (device, setup) = Device::wgpu_options().init_with_setup().map_err(|e| e.to_string())?;
    let info = setup.adapter.get_info();
    let software = info.device_type == burn::tensor::wgpu::wgpu::DeviceType::Cpu;
    Ok((device, format!("gpu (wgpu: {} on {:?})", info.name, info.backend), software))
}

#[cfg(not(feature = "gpu"))]
fn gpu() -> Result<(Device, String, bool), String> {
    Err("this build has no GPU support (built without the `gpu` feature)".into())
}

#[cfg(feature = "cuda")]
fn cuda() -> Result<(Device, String)> {
    Ok((Device::cuda(0), "gpu (cuda:0)".into()))
}

#[cfg(not(feature = "cuda"))]
fn cuda() -> Result<(Device, String)> {
    bail!(
        "this build has no CUDA support: rebuild with `--features cuda` on a machine that can build it, or use --backend wgpu"
    )
}

/// Keeps memory the process frees for its next allocations instead of handing it back to the
/// system. A CPU training step allocates and frees hundreds of MB of activations and gradients;
/// glibc maps every block over 32 MB afresh and unmaps it when freed, so each step page-faults
/// all of them in again, zeroed by the kernel. Taking every block from the heap and never
/// trimming it took a full fine-tuning step of 32 from 1,450 to 1,150 ms on this project's
/// 2-core machine (BENCHMARKS.md "Training speed"). The process's peak memory is unchanged; its
/// resident memory no longer falls back between steps.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before any other thread
    // exists, and glibc applies each change under its own lock.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
    }
}
