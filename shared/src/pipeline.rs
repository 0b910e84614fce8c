//! The one path from a photo to what a model says of its faces: detect -> align -> embed ->
//! head. Training's feature extraction and fine-tuning crops, `predict`, `eval`, the
//! benchmarks and the browser all go through a [`FacePipeline`], built with the preprocessing
//! settings of the model it serves (a model file's header carries them), so that a model never
//! sees faces found or framed otherwise than it was trained on.

use std::sync::Arc;

use burn::backend::DispatchDevice;
use burn::prelude::*;
use image::RgbImage;

use crate::align::{AlignConfig, align};
use crate::backbone::{Backbone, BackboneKind};
use crate::detect::{BlazeFace, Detection, Detector, DetectorConfig, Letterbox, input_side};
use crate::model_file::Header;
use crate::mtl::MtlHead;
use crate::nhwc::{NhwcBlazeFace, NhwcFaceRes};
use crate::predict::{Attributes, NonFiniteOutput, attributes, output_tensors, raw_outputs};
use crate::track::FaceTracker;

/// One face of a photo and what the model predicts of it.
#[derive(Debug, Clone)]
pub struct Face {
    pub detection: Detection,
    pub attributes: Attributes,
}

/// The networks packed for the CPU: BlazeFace, and faceres when it is the backbone.
#[derive(Debug)]
struct Nhwc {
    detector: NhwcBlazeFace,
    backbone: Option<NhwcFaceRes>,
}

/// Detector, alignment and backbone on one device.
#[derive(Debug, Clone)]
pub struct FacePipeline {
    detector: Detector,
    align: AlignConfig,
    backbone: Backbone,
    /// Each face's features are the mean of its own and its mirror image's (test-time mirror).
    mirror: bool,
    /// The detector and faceres packed for the CPU, which then run in their place
    /// ([`Self::with_nhwc_kernels`]).
    nhwc: Option<Arc<Nhwc>>,
    device: Device,
}

impl FacePipeline {
    pub fn new(
        detector: BlazeFace,
        detector_config: DetectorConfig,
        backbone: Backbone,
        align: AlignConfig,
        device: &Device,
    ) -> Self {
        Self {
            detector: Detector::new(detector, detector_config),
            align,
            backbone,
            mirror: false,
            nhwc: None,
            device: device.clone(),
        }
    }

    /// The pipeline a model was trained with: its header's detector and alignment settings,
    /// around `backbone` (the model's own fine-tuned one when it has one, else the pretrained).
    pub fn for_model(detector: BlazeFace, backbone: Backbone, header: &Header, device: &Device) -> Self {
        Self::new(detector, header.detector.clone(), backbone, header.align, device)
            .with_mirror(header.test_time_mirror)
    }

    /// The same pipeline with each face's features averaged with its mirror image's, or not.
    pub fn with_mirror(self, mirror: bool) -> Self {
        Self { mirror, ..self }
    }

    /// The same pipeline around another backbone (a model's tuned one).
    pub fn with_backbone(self, backbone: Backbone) -> Self {
        let packed = self.nhwc.is_some();
        let pipeline = Self { backbone, nhwc: None, ..self };
        if packed { pipeline.with_nhwc_kernels() } else { pipeline }
    }

    /// On the CPU backend, BlazeFace and faceres run as [`NhwcBlazeFace`] and [`NhwcFaceRes`]
    /// (the browser's CPU fallback: nearly twice as fast there as Burn's kernels,
    /// BENCHMARKS.md) when the photo's faces are searched without blocking
    /// ([`Self::detect_async`]) and embedded; elsewhere nothing changes. Their outputs equal
    /// Burn's up to the order of the sums.
    pub fn with_nhwc_kernels(self) -> Self {
        let on_cpu =
            matches!(self.device.clone().inner().as_dispatch(), DispatchDevice::Flex(_)) && !self.device.is_autodiff();
        let nhwc = on_cpu.then(|| {
            Arc::new(Nhwc {
                detector: NhwcBlazeFace::new(&self.detector.model),
                backbone: self.backbone.faceres().map(NhwcFaceRes::new),
            })
        });
        Self { nhwc, ..self }
    }

    pub fn mirrors(&self) -> bool {
        self.mirror
    }

    /// Whether faces are embedded by the packed faceres ([`Self::with_nhwc_kernels`]), whose
    /// int8 layers sum in integers: features a cache must keep apart from Burn's.
    pub fn embeds_packed(&self) -> bool {
        self.nhwc.as_ref().is_some_and(|nhwc| nhwc.backbone.is_some())
    }

    /// The same networks with other detector settings (the browser's webcam searches no tiles).
    pub fn with_detector_config(&self, config: DetectorConfig) -> Self {
        Self { detector: Detector::new(self.detector.model.clone(), config), ..self.clone() }
    }

    pub fn kind(&self) -> BackboneKind {
        self.backbone.kind()
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn backbone(&self) -> &Backbone {
        &self.backbone
    }

    pub fn detector_config(&self) -> &DetectorConfig {
        &self.detector.config
    }

    pub fn align_config(&self) -> &AlignConfig {
        &self.align
    }

    pub fn detector_model(&self) -> &BlazeFace {
        &self.detector.model
    }

    /// Every face of each image, best score first (a blocking read of the device).
    pub fn detect(&self, images: &[&RgbImage]) -> Vec<Vec<Detection>> {
        self.detector.detect_batch(images, &self.device)
    }

    /// Every face of `image`, read back without blocking (WebGPU cannot block the page), in the
    /// detector's staged passes (`Detector::pass_ends`).
    pub async fn detect_async(&self, image: &RgbImage) -> Result<Vec<Detection>, String> {
        Ok(self.searched_async(image).await?.0)
    }

    /// [`Self::detect_async`], and how many views it searched.
    async fn searched_async(&self, image: &RgbImage) -> Result<(Vec<Detection>, usize), String> {
        let detector = &self.detector;
        let views = detector.config.views(image.width(), image.height());
        let mut raw = Vec::new();
        let mut start = 0;
        for end in detector.pass_ends(&views) {
            raw.extend(self.detector_outputs(image, &views[start..end]).await?);
            if let Some(found) = detector.answer_after(&raw, &views, end, image.width(), image.height()) {
                return Ok((found, end));
            }
            start = end;
        }
        unreachable!("the last pass ends at the last view")
    }

    /// The faces of a video frame: searched only in the regions around the faces `tracker`
    /// follows when it allows, they cost less than a whole view ([`Detector::regions`]) and
    /// they hold those faces and no other; else in the whole frame ([`Self::searched_async`]).
    /// Also how many regions and whole-frame views were searched.
    async fn searched_frame(
        &self,
        image: &RgbImage,
        tracker: &FaceTracker,
    ) -> Result<(Vec<Detection>, Searched), String> {
        let mut searched = Searched::default();
        if let Some(views) = tracker.regions().and_then(|faces| self.detector.regions(&faces)) {
            let raw = self.detector_outputs(image, &views).await?;
            let found = self.detector.decode_views(&raw, &views);
            searched.regions = views.len();
            if tracker.holds_just_the_followed(&found) {
                return Ok((found, searched));
            }
        }
        let (found, views) = self.searched_async(image).await?;
        searched.views = views;
        Ok((found, searched))
    }

    /// The detector's raw outputs for `views` of `image`, read back without blocking.
    async fn detector_outputs(&self, image: &RgbImage, views: &[Letterbox]) -> Result<Vec<f32>, String> {
        let detector = &self.detector;
        match &self.nhwc {
            Some(nhwc) => Ok(nhwc.detector.forward(&detector.view_values(image, views), input_side(views))),
            None => read_async(detector.model.forward(detector.view_inputs(image, views, &self.device))).await,
        }
    }

    /// The aligned crop of each detection: planar RGB `[3, s, s]` on 0..=255.
    pub fn align(&self, image: &RgbImage, detections: &[Detection]) -> Vec<Vec<f32>> {
        detections.iter().map(|d| align(image, &d.keypoints, &self.align)).collect()
    }

    /// The backbone's embeddings `[n, features]` of aligned crops, left on the device; with
    /// [`Self::with_mirror`], each the mean of the crop's and its mirror image's (one batch of
    /// `2n`).
    pub fn embed(&self, crops: &[Vec<f32>]) -> Tensor<2> {
        let n = crops.len();
        if let Some(net) = self.nhwc.as_ref().and_then(|nhwc| nhwc.backbone.as_ref()) {
            return self.embed_nhwc(net, crops);
        }
        let x = self.input(crops);
        if !self.mirror {
            return self.backbone.forward(x);
        }
        let both = self.backbone.forward(Tensor::cat(vec![x.clone(), x.flip([3])], 0));
        (both.clone().narrow(0, 0, n) + both.narrow(0, n, n)).div_scalar(2.0)
    }

    /// [`Self::embed`] through the packed faceres, on the host: the crops, then their mirror
    /// images, in one pass.
    fn embed_nhwc(&self, net: &NhwcFaceRes, crops: &[Vec<f32>]) -> Tensor<2> {
        let (kind, n) = (self.kind(), crops.len());
        let mut input: Vec<f32> = crops.iter().flat_map(|c| kind.normalise(c)).collect();
        if self.mirror {
            let side = kind.input_size();
            let mirrored: Vec<f32> = input.chunks_exact(side).flat_map(|row| row.iter().rev().copied()).collect();
            input.extend(mirrored);
        }
        let mut features = net.forward(&input);
        if self.mirror {
            let (own, mirrored) = features.split_at(n * kind.feature_dim());
            features = own.iter().zip(mirrored).map(|(f, m)| (f + m) / 2.0).collect();
        }
        Tensor::from_data(TensorData::new(features, [n, kind.feature_dim()]), &self.device)
    }

    /// Aligned crops as the backbone's input `[n, 3, s, s]`, normalised, on the device.
    pub fn input<C: AsRef<[f32]>>(&self, crops: &[C]) -> Tensor<4> {
        let kind = self.kind();
        let (n, side) = (crops.len(), kind.input_size());
        let input: Vec<f32> = crops.iter().flat_map(|c| kind.normalise(c.as_ref())).collect();
        Tensor::from_data(TensorData::new(input, [n, 3, side, side]), &self.device)
    }

    /// [`Self::embed`] read back, one vector per crop.
    pub fn features(&self, crops: &[Vec<f32>]) -> Vec<Vec<f32>> {
        if crops.is_empty() {
            return Vec::new();
        }
        let out =
            self.embed(crops).into_data().convert::<f32>().try_into_vec::<f32>().expect("the backbone outputs floats");
        out.chunks_exact(self.kind().feature_dim()).map(<[f32]>::to_vec).collect()
    }

    /// Every face of `image` (at most `max_faces`, the most certain) with what `head` predicts,
    /// and how many faces were found in all.
    pub fn predict(
        &self,
        head: &MtlHead,
        header: &Header,
        image: &RgbImage,
        max_faces: usize,
    ) -> Result<(usize, Vec<Face>), NonFiniteOutput> {
        let (found, kept) = keep(self.detect(&[image]).remove(0), max_faces);
        if kept.is_empty() {
            return Ok((found, Vec::new()));
        }
        let raw = raw_outputs(head, self.embed(&self.align(image, &kept)));
        let predicted = attributes(header, &raw, kept.len())?;
        Ok((found, faces(kept, predicted)))
    }

    /// [`Self::predict`] with every read-back awaited, and where its time went by `now` (a
    /// clock in milliseconds: the shared crate has none that runs in a browser). With a
    /// `tracker` (a video's frames), faces it follows keep what was said of them, and only the
    /// others go through the backbone.
    pub async fn predict_async(
        &self,
        (head, header): (&MtlHead, &Header),
        image: &RgbImage,
        max_faces: usize,
        tracker: Option<&mut FaceTracker>,
        now: &dyn Fn() -> f64,
    ) -> Result<(usize, Vec<Face>, Stages), String> {
        let mut stages = Stages::default();
        let mut lap = {
            let mut last = now();
            move || {
                let t = now();
                let ms = t - last;
                last = t;
                ms
            }
        };
        let (detections, searched) = match &tracker {
            Some(tracker) => self.searched_frame(image, tracker).await?,
            None => {
                let (found, views) = self.searched_async(image).await?;
                (found, Searched { views, regions: 0 })
            }
        };
        let (found, kept) = keep(detections, max_faces);
        stages.detect_ms = lap();
        stages.detector_views = searched.views;
        stages.detector_regions = searched.regions;
        let plan = match &tracker {
            Some(tracker) => tracker.plan(&kept),
            None => vec![None; kept.len()],
        };
        let todo: Vec<Detection> = kept.iter().zip(&plan).filter(|(_, p)| p.is_none()).map(|(d, _)| *d).collect();
        stages.faces_computed = todo.len();
        let mut computed = Vec::new();
        if !todo.is_empty() {
            let crops = self.align(image, &todo);
            stages.align_ms = lap();
            let features = self.embed(&crops);
            stages.backbone_ms = lap();
            let outputs = output_tensors(head, features);
            stages.head_ms = lap();
            let mut raw = Vec::new();
            for out in outputs {
                raw.push(read_async(out).await?);
            }
            stages.read_back_ms = lap();
            computed = attributes(header, &raw, todo.len()).map_err(|e| e.to_string())?;
        }
        let mut computed = computed.into_iter();
        let said: Vec<(Attributes, u32)> =
            plan.into_iter().map(|p| p.unwrap_or_else(|| (computed.next().expect("one per face"), 0))).collect();
        if let Some(tracker) = tracker {
            let faces = kept.iter().zip(&said).map(|(d, (a, age))| (d.bbox, a.clone(), *age));
            tracker.update(faces, searched.views > 0);
        }
        Ok((found, faces(kept, said.into_iter().map(|(a, _)| a).collect()), stages))
    }
}

/// Where a prediction's time went, in milliseconds. On a CPU backend each stage computes as it
/// is called; on a GPU the work is queued, and the read-back waits for what is left of it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Stages {
    /// Detection, its output read back.
    pub detect_ms: f64,
    /// How many views of the whole photo or frame the detector searched (zoom levels and
    /// tiles).
    pub detector_views: usize,
    /// How many regions around a video's followed faces it searched (a quarter of a view's
    /// pixels each).
    pub detector_regions: usize,
    pub align_ms: f64,
    pub backbone_ms: f64,
    pub head_ms: f64,
    pub read_back_ms: f64,
    /// Faces that went through the backbone (the others kept what was said of them in an
    /// earlier video frame).
    pub faces_computed: usize,
}

/// What the detector searched: whole-frame views, and regions around followed faces.
#[derive(Debug, Clone, Copy, Default)]
struct Searched {
    views: usize,
    regions: usize,
}

/// How many detections there are, and the first `max_faces` of them.
fn keep(mut detections: Vec<Detection>, max_faces: usize) -> (usize, Vec<Detection>) {
    let found = detections.len();
    detections.truncate(max_faces);
    (found, detections)
}

fn faces(detections: Vec<Detection>, attributes: Vec<Attributes>) -> Vec<Face> {
    detections.into_iter().zip(attributes).map(|(detection, attributes)| Face { detection, attributes }).collect()
}

async fn read_async<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>, String> {
    let data = tensor.into_data_async().await.map_err(|e| format!("{e:?}"))?;
    data.convert::<f32>().try_into_vec::<f32>().map_err(|e| format!("{e:?}"))
}
