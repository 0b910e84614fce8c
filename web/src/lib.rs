//! The JavaScript boundary of the browser app: pick a backend (WebGPU through wgpu, else the
//! CPU backend in WebAssembly), load the detector, the backbone and an exported model, and
//! predict every face of a photo or a video frame with the same code as the native `predict`.
//! Tensors are read back asynchronously: a WebGPU device cannot block the page.

use std::cell::RefCell;
use std::rc::Rc;

use burn::prelude::*;
use facemtl::backbone::{Backbone, BackboneKind};
use facemtl::detect::{Detection, Detector, DetectorConfig};
use facemtl::mtl::MtlHead;
use facemtl::photo::{self, DecodeLimits};
use facemtl::pipeline::backbone_input;
use facemtl::predict::{Attributes, attributes, output_tensors};
use facemtl::weights::{self, Header};
use facemtl::{compact, pretrained};
use image::RgbImage;
use js_sys::Promise;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

/// Faces predicted per photo; more are reported but not analysed.
const MAX_FACES: usize = 20;

struct Model {
    header: Header,
    head: MtlHead,
    /// A fine-tuned backbone shipped inside the model file.
    backbone: Option<Rc<Backbone>>,
}

/// The loaded networks. Each is behind an `Rc`: a prediction takes its own handles when it
/// starts, so that a model loaded while it awaits a read-back cannot pair one model's outputs
/// with another's header.
#[derive(Default)]
struct State {
    detector: Option<Rc<Detector>>,
    /// For video frames: no tiles (faces in front of a webcam are large), a third of the work.
    video_detector: Option<Rc<Detector>>,
    backbone: Option<Rc<Backbone>>,
    model: Option<Rc<Model>>,
}

/// What one prediction uses from start to end.
struct Networks {
    detector: Rc<Detector>,
    backbone: Rc<Backbone>,
    model: Rc<Model>,
}

impl State {
    fn networks(&self, video: bool) -> Result<Networks, JsValue> {
        let detector = if video { &self.video_detector } else { &self.detector };
        let detector = detector.clone().ok_or_else(|| js_error("the detector is not loaded yet"))?;
        let model = self.model.clone().ok_or_else(|| js_error("the model is not loaded yet"))?;
        let backbone = model
            .backbone
            .clone()
            .or_else(|| self.backbone.clone())
            .ok_or_else(|| js_error("the backbone is not loaded yet"))?;
        Ok(Networks { detector, backbone, model })
    }
}

/// The app's networks on one device.
#[wasm_bindgen]
pub struct App {
    device: Device,
    backend: String,
    state: Rc<RefCell<State>>,
}

#[derive(Serialize)]
struct Face {
    score: f32,
    #[serde(flatten)]
    detection: Detection,
    #[serde(flatten)]
    attributes: Attributes,
}

#[derive(Serialize)]
struct Prediction {
    width: u32,
    height: u32,
    /// Faces found, best first; only the first `MAX_FACES` are analysed.
    found: usize,
    faces: Vec<Face>,
    milliseconds: f64,
}

fn js_error(e: impl std::fmt::Display) -> JsValue {
    JsError::new(&e.to_string()).into()
}

fn now() -> f64 {
    js_sys::Date::now()
}

async fn read<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>, JsValue> {
    let data = tensor.into_data_async().await.map_err(|e| js_error(format!("{e:?}")))?;
    data.try_to_vec::<f32>().map_err(|e| js_error(format!("{e:?}")))
}

#[wasm_bindgen]
impl App {
    /// WebGPU when the browser offers an adapter (unless `force` is "cpu"), else the CPU.
    /// `force = "webgpu"` fails instead of falling back, for tests and comparisons.
    pub async fn create(force: Option<String>) -> Result<App, JsError> {
        let want = force.as_deref().unwrap_or("auto");
        let state = Rc::new(RefCell::new(State::default()));
        if want != "cpu" {
            match Device::wgpu_options().init_async().await {
                Ok(device) => return Ok(App { device, backend: "webgpu".into(), state }),
                Err(why) if want == "webgpu" => return Err(JsError::new(&format!("WebGPU is not available: {why}"))),
                Err(_) => {}
            }
        }
        Ok(App { device: Device::flex(), backend: "cpu".into(), state })
    }

    /// `webgpu` or `cpu`.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.clone()
    }

    /// The BlazeFace weights (`blazeface.bpk`).
    pub fn load_detector(&self, bytes: &[u8]) -> Result<(), JsError> {
        let model = pretrained::load_detector(bytes, &self.device).map_err(|e| JsError::new(&e.to_string()))?;
        let video = DetectorConfig { tiles: false, ..DetectorConfig::default() };
        let mut state = self.state.borrow_mut();
        state.video_detector = Some(Rc::new(Detector::new(model.clone(), video)));
        state.detector = Some(Rc::new(Detector::new(model, DetectorConfig::default())));
        Ok(())
    }

    /// A pretrained backbone's weights: the compact file `facemtl setup` writes for the browser
    /// (`faceres.fmh`), or a burnpack record (`faceres.bpk`).
    pub fn load_backbone(&self, kind: &str, bytes: &[u8]) -> Result<(), JsError> {
        let kind: BackboneKind = kind.parse().map_err(|e: String| JsError::new(&e))?;
        let backbone = if compact::is_compact(bytes) {
            compact::unpack(Backbone::init(kind, &self.device), bytes).map_err(|e| JsError::new(&e.to_string()))?
        } else {
            pretrained::load_backbone(kind, bytes, &self.device).map_err(|e| JsError::new(&e.to_string()))?
        };
        self.state.borrow_mut().backbone = Some(Rc::new(backbone));
        Ok(())
    }

    /// The largest model file `load_model` accepts, for the page to check before it reads one.
    pub fn max_model_bytes() -> usize {
        weights::MAX_MODEL_BYTES
    }

    /// The size of the module's linear memory (which grows and never shrinks), for soak tests.
    pub fn memory_bytes() -> f64 {
        let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
        memory.buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length() as f64
    }

    /// Load an exported model, refused unless its format, checksum and sizes hold; its header
    /// as JSON. A prediction already under way finishes with the model it started with.
    pub fn load_model(&self, bytes: &[u8]) -> Result<String, JsError> {
        let loaded = weights::load(bytes, None, &self.device).map_err(|e| JsError::new(&e.to_string()))?;
        let mut state = self.state.borrow_mut();
        let pretrained = state.backbone.as_ref().map(Backbone::kind);
        if loaded.backbone.is_none() && pretrained.is_some_and(|k| k != loaded.header.backbone) {
            return Err(JsError::new(&format!(
                "this model reads {} features, but the app's backbone is {}",
                loaded.header.backbone,
                pretrained.unwrap()
            )));
        }
        let json = serde_json::to_string(&loaded.header).map_err(|e| JsError::new(&e.to_string()))?;
        state.model =
            Some(Rc::new(Model { header: loaded.header, head: loaded.head, backbone: loaded.backbone.map(Rc::new) }));
        Ok(json)
    }

    /// Predict every face of an encoded photo (JPEG, PNG, WebP, GIF, BMP; EXIF orientation
    /// applied): a promise of the prediction as JSON.
    pub fn predict_photo(&self, bytes: Vec<u8>) -> Promise {
        let (state, device) = (self.state.clone(), self.device.clone());
        future_to_promise(async move {
            let image = photo::decode(&bytes, DecodeLimits::default()).map_err(js_error)?;
            predict(&state, &device, image, false).await
        })
    }

    /// Predict every face of a video frame (RGBA pixels, as a canvas gives them).
    pub fn predict_rgba(&self, rgba: Vec<u8>, width: u32, height: u32) -> Promise {
        let (state, device) = (self.state.clone(), self.device.clone());
        future_to_promise(async move {
            let rgb: Vec<u8> = rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
            let image = RgbImage::from_raw(width, height, rgb)
                .ok_or_else(|| js_error("the frame's size does not match its pixels"))?;
            predict(&state, &device, image, true).await
        })
    }
}

async fn predict(
    state: &Rc<RefCell<State>>,
    device: &Device,
    image: RgbImage,
    video: bool,
) -> Result<JsValue, JsValue> {
    let started = now();
    let networks = state.borrow().networks(video)?;
    let Networks { detector, backbone, model } = &networks;
    let batch = detector.inputs(&[&image], device);
    let raw = read(detector.model.forward(batch.input)).await?;
    let detections = detector.decode(&raw, &batch.views).remove(0);
    let found = detections.len();
    let kept: Vec<Detection> = detections.into_iter().take(MAX_FACES).collect();
    let mut faces = Vec::new();
    if !kept.is_empty() {
        let kind = backbone.kind();
        let size = kind.input_size();
        let crops = backbone_input(kind, &image, &kept);
        let input = Tensor::from_data(TensorData::new(crops, [kept.len(), 3, size, size]), device);
        let mut raw = Vec::new();
        for out in output_tensors(&model.head, backbone.forward(input)) {
            raw.push(read(out).await?);
        }
        let n = kept.len();
        for (detection, attributes) in kept.into_iter().zip(attributes(&model.header, &raw, n).map_err(js_error)?) {
            faces.push(Face { score: detection.score, detection, attributes });
        }
    }
    let prediction =
        Prediction { width: image.width(), height: image.height(), found, faces, milliseconds: now() - started };
    Ok(JsValue::from_str(&serde_json::to_string(&prediction).map_err(js_error)?))
}
