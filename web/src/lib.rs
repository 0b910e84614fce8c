//! The JavaScript boundary of the browser app: pick a backend (WebGPU through wgpu, else the
//! CPU backend in WebAssembly), load the detector, the backbone and an exported model, and
//! predict every face of a photo or a video frame with the same code as the native `predict`.
//! Tensors are read back asynchronously: a WebGPU device cannot block the page.

use std::cell::RefCell;
use std::rc::Rc;

use burn::prelude::*;
use facemtl::backbone::{Backbone, BackboneKind, Tuned};
use facemtl::detect::{BlazeFace, Detection};
use facemtl::model_file::{self, Header};
use facemtl::mtl::{MtlHead, TaskOverview};
use facemtl::photo::{self, DecodeLimits};
use facemtl::pipeline::FacePipeline;
use facemtl::predict::{Answer, Attributes};
use facemtl::pretrained;
use facemtl::track::FaceTracker;
use image::RgbImage;
use js_sys::Promise;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

#[cfg(feature = "lab")]
mod lab;

#[cfg(feature = "lab")]
pub use lab::Lab;

/// Faces predicted per photo; more are reported but not analysed.
const MAX_FACES: usize = 20;

/// A loaded model with the pipelines it was trained with, for photos and for video frames.
/// A prediction holds its own `Rc` from start to end, so that a model loaded while it awaits a
/// read-back cannot pair one model's outputs with another's header.
struct Model {
    header: Header,
    head: MtlHead,
    /// The tiles only where the zoom views found no large face.
    photo: FacePipeline,
    /// No tiles, and the zoom-out view only when the first view holds no large face.
    video: FacePipeline,
    /// The webcam's faces, followed from frame to frame so that each goes through the backbone
    /// only now and then.
    tracker: RefCell<FaceTracker>,
}

/// The networks as they arrive; a model needs the detector and, unless it carries a
/// fine-tuned one, the pretrained backbone.
#[derive(Default)]
struct State {
    detector: Option<BlazeFace>,
    backbone: Option<Backbone>,
    model: Option<Rc<Model>>,
}

/// The app's networks on one device.
#[wasm_bindgen]
pub struct App {
    device: Device,
    backend: String,
    state: RefCell<State>,
}

/// A face as `facemtl predict` writes it, and its answers in the model's task order, which the
/// page shows without knowing the fields.
#[derive(Serialize)]
struct Face {
    #[serde(flatten)]
    detection: Detection,
    #[serde(flatten)]
    attributes: Attributes,
    answers: Vec<Answer>,
}

/// A loaded model: its header, and its tasks as the page shows them.
#[derive(Serialize)]
struct LoadedModel<'a> {
    header: &'a Header,
    tasks: Vec<TaskOverview>,
}

#[derive(Serialize)]
struct Prediction {
    width: u32,
    height: u32,
    /// Faces found, best first; only the first `MAX_FACES` are analysed.
    found: usize,
    faces: Vec<Face>,
    milliseconds: f64,
    /// Where the time went: decoding, then the pipeline's stages.
    stages: Stages,
}

#[derive(Serialize)]
struct Stages {
    decode_ms: f64,
    #[serde(flatten)]
    pipeline: facemtl::pipeline::Stages,
}

/// The one way an error crosses to JavaScript: an `Error` with the message.
fn js_error(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// `value` as a plain JavaScript value (objects, arrays, numbers), built by the engine's JSON
/// parser from serde_json's text in one call. Built object by object through serde-wasm-bindgen
/// instead, one webcam frame's prediction took 185 ms against 1 ms (BENCHMARKS.md).
fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsError> {
    let text = serde_json::to_string(value).map_err(js_error)?;
    js_sys::JSON::parse(&text).map_err(|_| js_error("an answer could not be handed to the page"))
}

unsafe extern "C" {
    /// wasm-ld's constructors (the `inventory` registrations of a dependency of Burn's GPU
    /// compiler). When the module never calls them itself, wasm-ld runs them at the start of
    /// every call into it: 1.5 ms of a 35 ms webcam frame in Chromium's profiler.
    fn __wasm_call_ctors();
}

/// Runs the constructors once, when the module is instantiated (so wasm-ld wraps no export).
#[wasm_bindgen(start)]
fn run_constructors_once() {
    // SAFETY: the start function runs once, before any export is called.
    unsafe { __wasm_call_ctors() }
}

#[wasm_bindgen]
extern "C" {
    /// The page's clock in milliseconds, sub-millisecond where the browser allows.
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn now() -> f64;
}

/// WebGPU when the browser offers an adapter (unless `force` is "cpu"), else the CPU; with its
/// name. `force = "webgpu"` fails instead of falling back, for tests and comparisons.
async fn pick_device(force: Option<&str>) -> Result<(Device, String), JsError> {
    let want = force.unwrap_or("auto");
    if want != "cpu" {
        match webgpu().await {
            Ok(device) => return Ok((device, "webgpu".into())),
            Err(why) if want == "webgpu" => return Err(js_error(format_args!("WebGPU is not available: {why}"))),
            Err(_) => {}
        }
    }
    Ok((Device::flex(), "cpu".into()))
}

#[cfg(feature = "webgpu")]
async fn webgpu() -> Result<Device, String> {
    Device::wgpu_options().init_async().await.map_err(|why| why.to_string())
}

/// The CPU module (the page loads it where the browser offers no WebGPU adapter) leaves wgpu
/// out: 0.61 MB served against the full module's 2.31 MB.
#[cfg(not(feature = "webgpu"))]
async fn webgpu() -> Result<Device, String> {
    Err("this is the CPU build of the app".into())
}

#[wasm_bindgen]
impl App {
    /// The app on [`pick_device`]'s device.
    pub async fn create(force: Option<String>) -> Result<App, JsError> {
        let (device, backend) = pick_device(force.as_deref()).await?;
        Ok(App { device, backend, state: RefCell::new(State::default()) })
    }

    /// `webgpu` or `cpu`.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.clone()
    }

    /// The BlazeFace weights: the compact file `facemtl setup` writes for the browser
    /// (`blazeface.fmh`), or a burnpack record (`blazeface.bpk`).
    pub fn load_detector(&self, bytes: &[u8]) -> Result<(), JsError> {
        let model = pretrained::load_detector(bytes, &self.device).map_err(js_error)?;
        self.state.borrow_mut().detector = Some(model);
        Ok(())
    }

    /// A pretrained backbone's weights: the compact file `facemtl setup` writes for the browser
    /// (`faceres.fmh`), or a burnpack record (`faceres.bpk`).
    pub fn load_backbone(&self, kind: &str, bytes: &[u8]) -> Result<(), JsError> {
        let kind = kind.parse::<BackboneKind>().map_err(js_error)?;
        let backbone = pretrained::load_backbone(kind, bytes, &self.device).map_err(js_error)?;
        self.state.borrow_mut().backbone = Some(backbone);
        Ok(())
    }

    /// The largest model file `load_model` accepts, for the page to check before it reads one.
    pub fn max_model_bytes() -> usize {
        model_file::MAX_MODEL_BYTES
    }

    /// The largest photo file the app reads (the native `predict`'s limit too).
    pub fn max_photo_bytes() -> usize {
        photo::MAX_PHOTO_BYTES
    }

    /// The size of the module's linear memory (which grows and never shrinks), for soak tests.
    pub fn memory_bytes() -> f64 {
        let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
        memory.buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length() as f64
    }

    /// Load an exported model (after the detector and backbone), refused unless its format,
    /// checksum and sizes hold: its header, and its tasks with their test figures. Its header's
    /// detector and alignment settings
    /// are used from then on. A prediction already under way finishes with the model it
    /// started with.
    pub fn load_model(&self, bytes: &[u8]) -> Result<JsValue, JsError> {
        let loaded = model_file::load(bytes, None, &self.device).map_err(js_error)?;
        let mut state = self.state.borrow_mut();
        let detector = state.detector.clone().ok_or_else(|| js_error("the detector is not loaded yet"))?;
        let backbone = match (loaded.backbone, &state.backbone) {
            (Some(Tuned::Whole(tuned)), _) => tuned,
            (_, Some(pretrained)) if pretrained.kind() != loaded.header.backbone => {
                return Err(js_error(format_args!(
                    "this model reads {} features, but the app's backbone is {}",
                    loaded.header.backbone,
                    pretrained.kind()
                )));
            }
            // Tuned last blocks go in place of the stock ones, which the app downloaded once.
            (Some(tail), Some(pretrained)) => tail.onto(pretrained).map_err(js_error)?,
            (None, Some(pretrained)) => pretrained.clone(),
            (_, None) => return Err(js_error("the backbone is not loaded yet")),
        };
        let answer = to_js(&LoadedModel { header: &loaded.header, tasks: loaded.header.task_overviews() })?;
        let settings = &loaded.header.detector;
        let pipeline = FacePipeline::for_model(detector, backbone, &loaded.header, &self.device).with_nhwc_kernels();
        let photo = pipeline.with_detector_config(settings.clone().answering_photos());
        let video = pipeline.with_detector_config(settings.clone().answering_video());
        let tracker = RefCell::new(FaceTracker::default());
        state.model = Some(Rc::new(Model { header: loaded.header, head: loaded.head, photo, video, tracker }));
        Ok(answer)
    }

    /// Predict every face of an encoded photo (JPEG, PNG, WebP, GIF, BMP; EXIF orientation
    /// applied): a promise of the prediction.
    pub fn predict_photo(&self, bytes: Vec<u8>) -> Promise {
        let model = self.state.borrow().model.clone();
        future_to_promise(async move {
            let started = now();
            let image = photo::decode(&bytes, DecodeLimits::default()).map_err(js_error)?;
            predict(model, image, false, now() - started).await
        })
    }

    /// Predict every face of a video frame (RGBA pixels, as a canvas gives them).
    pub fn predict_rgba(&self, rgba: Vec<u8>, width: u32, height: u32) -> Promise {
        let model = self.state.borrow().model.clone();
        future_to_promise(async move {
            // Filled in place, pixel by pixel: collecting a flat_map does not know its length,
            // and extending a vector checks its capacity at every pixel (1.7 ms of a 36 ms
            // webcam frame in Chromium's profiler).
            let mut rgb = vec![0; rgba.len() / 4 * 3];
            for (to, from) in rgb.chunks_exact_mut(3).zip(rgba.chunks_exact(4)) {
                to.copy_from_slice(&from[..3]);
            }
            let image = RgbImage::from_raw(width, height, rgb)
                .ok_or_else(|| js_error("the frame's size does not match its pixels"))?;
            predict(model, image, true, 0.0).await
        })
    }
}

/// The prediction of `image` (decoded in `decode_ms` before this call).
async fn predict(model: Option<Rc<Model>>, image: RgbImage, video: bool, decode_ms: f64) -> Result<JsValue, JsValue> {
    let started = now() - decode_ms;
    let model = model.ok_or_else(|| js_error("the model is not loaded yet"))?;
    let network = (&model.head, &model.header);
    let (found, faces, stages) = if video {
        // Taken out while the frame is computed: a frame that starts meanwhile follows no faces,
        // and no borrow is held across a read-back.
        let mut tracker = model.tracker.take();
        let result = model.video.predict_async(network, &image, MAX_FACES, Some(&mut tracker), &now).await;
        model.tracker.replace(tracker);
        result
    } else {
        model.photo.predict_async(network, &image, MAX_FACES, None, &now).await
    }
    .map_err(js_error)?;
    let faces = faces
        .into_iter()
        .map(|f| Face {
            answers: f.attributes.answers(&model.header.tasks),
            detection: f.detection,
            attributes: f.attributes,
        })
        .collect();
    let prediction = Prediction {
        width: image.width(),
        height: image.height(),
        found,
        faces,
        milliseconds: now() - started,
        stages: Stages { decode_ms, pipeline: stages },
    };
    Ok(to_js(&prediction)?)
}
