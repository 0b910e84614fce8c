//! The JavaScript boundary of the browser app: pick a backend (WebGPU through wgpu, else the
//! CPU backend in WebAssembly) and run the shared face pipeline on photo bytes.

use burn::prelude::*;
use facemtl::photo::{self, DecodeLimits};
use wasm_bindgen::prelude::*;

/// The device the app computes on, and its name for the page.
#[wasm_bindgen]
pub struct Backend {
    device: Device,
    name: String,
}

#[wasm_bindgen]
impl Backend {
    /// WebGPU when the browser offers an adapter (unless `force` is "cpu"), else the CPU.
    /// `force = "webgpu"` fails instead of falling back, for tests and comparisons.
    pub async fn create(force: Option<String>) -> Result<Backend, JsError> {
        let want = force.as_deref().unwrap_or("auto");
        if want != "cpu" {
            match Device::wgpu_options().init_async().await {
                Ok(device) => return Ok(Backend { device, name: "webgpu".into() }),
                Err(why) if want == "webgpu" => return Err(JsError::new(&format!("WebGPU is not available: {why}"))),
                Err(_) => {}
            }
        }
        Ok(Backend { device: Device::flex(), name: "cpu".into() })
    }

    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// Whether tensors run on the GPU.
    #[wasm_bindgen(getter)]
    pub fn is_gpu(&self) -> bool {
        self.device != Device::flex()
    }
}

/// Decode a photo as the native side does: `[width, height]`, or a clear error for a
/// non-image, a corrupt or truncated file, or one too large to decode safely.
#[wasm_bindgen]
pub fn photo_size(bytes: &[u8]) -> Result<Vec<u32>, JsError> {
    let image = photo::decode(bytes, DecodeLimits::default()).map_err(|e| JsError::new(&e.to_string()))?;
    Ok(vec![image.width(), image.height()])
}
