//! Choosing where tensors run: `auto` takes a GPU through wgpu when one answers and falls back
//! to the CPU (flex) otherwise, without panicking; the choice is always reported.

use anyhow::{Result, bail};
use burn::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Auto,
    Wgpu,
    Cpu,
}

/// The device and a human-readable name of what it is.
pub fn select(backend: Backend) -> Result<(Device, String)> {
    match backend {
        Backend::Cpu => Ok((Device::flex(), "cpu (flex)".into())),
        Backend::Wgpu => match gpu() {
            Ok(found) => Ok(found),
            Err(why) => bail!("no GPU through wgpu: {why}"),
        },
        Backend::Auto => Ok(gpu().unwrap_or_else(|why| {
            eprintln!("no GPU available ({why}); using the CPU");
            (Device::flex(), "cpu (flex)".into())
        })),
    }
}

#[cfg(feature = "gpu")]
fn gpu() -> Result<(Device, String), String> {
    // A software rasteriser (lavapipe, SwiftShader) is slower than flex: not worth taking.
    let device = Device::wgpu_options().init().map_err(|e| e.to_string())?;
    Ok((device, "gpu (wgpu)".into()))
}

#[cfg(not(feature = "gpu"))]
fn gpu() -> Result<(Device, String), String> {
    Err("this build has no GPU support (built without the `gpu` feature)".into())
}
