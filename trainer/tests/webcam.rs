//! The browser's webcam path, natively: a video's frames through the shipped model's pipeline
//! with its faces followed (`FacePipeline::predict_async` with a `FaceTracker`), as
//! `web/src/lib.rs` runs it on the page's CPU fallback.

mod common;

use std::fs;
use std::future::Future;
use std::task::{Context, Poll, Waker};

use burn::prelude::*;
use common::load;
use facemtl::compact::Precision;
use facemtl::detect::BBox;
use facemtl::pipeline::{Face, FacePipeline, Stages};
use facemtl::track::FaceTracker;
use image::{GenericImage, RgbImage};

const FACE: &str = "30_1_0_20170103180631960.jpg.chip.jpg";
const OTHER_FACE: &str = "10_0_3_20170105175322885.jpg.chip.jpg";

/// On the CPU nothing the pipeline awaits is ever pending: poll it to the end.
fn finish<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut context) {
            return out;
        }
    }
}

/// A 640x480 webcam frame with `faces` (photo, left edge, side) pasted on grey.
fn frame(faces: &[(&RgbImage, u32, u32)]) -> RgbImage {
    let mut frame = RgbImage::from_pixel(640, 480, image::Rgb([90, 90, 90]));
    for (face, x, side) in faces {
        let scaled = image::imageops::resize(*face, *side, *side, image::imageops::FilterType::Triangle);
        frame.copy_from(&scaled, *x, 40).unwrap();
    }
    frame
}

#[test]
fn a_followed_face_is_searched_in_its_region_and_its_attributes_come_from_whole_frame_boxes() {
    let cache = common::cache();
    let (face, other) = (common::utk(FACE), common::utk(OTHER_FACE));
    if common::pipeline(facemtl::backbone::BackboneKind::Faceres).is_none()
        || !common::present(&face, "UTKFace")
        || !common::present(
            &cache.compact_backbone_weights(facemtl::backbone::BackboneKind::Faceres, Precision::Int8),
            "int8 backbone weights",
        )
    {
        return;
    }
    let device = Device::flex();
    let bytes = fs::read(common::repo_root().join("models/utkface-celeba-faceres.fmtl")).unwrap();
    let model = facemtl::model_file::load(&bytes, None, &device).unwrap();
    // As web/src/lib.rs builds the webcam's pipeline.
    let video = facemtl_trainer::models::model_pipeline(&cache, &model.header, model.backbone, &device)
        .unwrap()
        .with_nhwc_kernels();
    let video = video.with_detector_config(model.header.detector.clone().answering_video());
    let (face, other) = (load(&face), load(&other));
    let mut tracker = FaceTracker::default();
    let predict = |pipeline: &FacePipeline, image: &RgbImage, tracker: Option<&mut FaceTracker>| {
        let (_, faces, stages) =
            finish(pipeline.predict_async((&model.head, &model.header), image, 8, tracker, &|| 0.0)).unwrap();
        (faces, stages)
    };
    let mut whole_frames = Vec::new();
    for i in 0..14u32 {
        // The face moves 3 px a frame; a second face comes into view at the fourth frame.
        let mut faces = vec![(&face, 60 + 3 * i, 300)];
        if i >= 3 {
            faces.push((&other, 420, 200));
        }
        let image = frame(&faces);
        let (found, stages) = predict(&video, &image, Some(&mut tracker));
        let (whole, _) = predict(&video, &image, None);
        eprintln!("frame {i}: {stages:?}, {} faces", found.len());
        let Stages { detector_views, detector_regions, faces_computed, .. } = stages;
        if detector_views > 0 {
            whole_frames.push(i);
            assert_eq!(boxes(&found), boxes(&whole), "frame {i}: searched whole, the whole frame's faces");
        } else {
            assert!(
                detector_regions >= 1 && faces_computed == 0,
                "frame {i}: only regions, nothing computed: {stages:?}"
            );
            // The region's box follows the face as the whole frame's does: measured here, an
            // intersection over union of 0.83-0.92; 0.75 is a box off by a seventh of its side.
            for a in boxes(&found) {
                let iou = boxes(&whole).iter().map(|b| a.iou(b)).fold(0.0, f32::max);
                eprintln!("frame {i}: region box against the whole frame's: intersection over union {iou:.3}");
                assert!(iou > 0.75, "frame {i}: region box {a:?} against {:?}", boxes(&whole));
            }
        }
        if faces_computed > 0 {
            assert!(detector_views > 0, "frame {i}: attributes computed on a region's box");
        }
    }
    // The first frame, and the eleventh, where the face's attributes are due: the newcomer of
    // the fourth frame is found there, and both are followed in their regions after it.
    assert_eq!(whole_frames, [0, 10], "frames searched whole");
}

fn boxes(faces: &[Face]) -> Vec<BBox> {
    faces.iter().map(|f| f.detection.bbox).collect()
}
