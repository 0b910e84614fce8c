//! The same detector on wgpu (a real GPU, or a software one such as llvmpipe) and on the CPU
//! backend gives the same faces; with no adapter at all the test says so and skips.

mod common;

use burn::prelude::*;
use facemtl_trainer::device::{Backend, select};
use facemtl_trainer::models;

#[test]
fn wgpu_and_cpu_backends_agree() {
    let cache = common::cache();
    let path = common::utk("30_1_0_20170103180631960.jpg.chip.jpg");
    if !common::present(&cache.detector_weights(), "detector weights") || !common::present(&path, "UTKFace") {
        return;
    }
    let (gpu, name) = match select(Backend::Wgpu) {
        Ok(found) => found,
        Err(why) => {
            eprintln!("SKIP: {why}");
            return;
        }
    };
    eprintln!("comparing {name} with the CPU backend");
    let image = models::read_photo(&path).unwrap();
    let on = |device: &Device| {
        models::detector(&cache, device, Default::default()).unwrap().detect_batch(&[&image], device).remove(0)
    };
    let (a, b) = (on(&gpu), on(&Device::flex()));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert!((x.score - y.score).abs() < 1e-4, "{} vs {}", x.score, y.score);
        assert!(x.bbox.iou(&y.bbox) > 0.999);
    }
}
