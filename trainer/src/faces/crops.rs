//! Aligned face crops held in memory for fine-tuning, where the backbone trains with the head:
//! the face pipeline runs once per image when a run starts, and every batch is normalised (and,
//! while training, randomly mirrored) from these bytes.

use std::collections::HashMap;

use facemtl::backbone::BackboneKind;
use facemtl::pipeline::FacePipeline;

use super::looks::Look;
use super::{batch_size, best_face_crops};
use crate::data::Sample;
use crate::progress::progress;

/// Planar RGB bytes (`3 * side * side`) by sample key; `None` where no face was found.
pub struct CropStore {
    pub kind: BackboneKind,
    rows: HashMap<String, Option<Vec<u8>>>,
}

impl CropStore {
    pub fn get(&self, sample: &Sample) -> Option<&[u8]> {
        self.rows.get(&sample.key).and_then(|r| r.as_deref())
    }
}

pub fn collect(pipeline: &FacePipeline, samples: &[&Sample]) -> CropStore {
    let kind = pipeline.kind();
    let bar = progress(samples.len() as u64, &format!("{kind} face crops"));
    let mut rows = HashMap::with_capacity(samples.len());
    for chunk in samples.chunks(batch_size(pipeline.device())) {
        for (sample, crop) in chunk.iter().zip(best_face_crops(pipeline, chunk, Look::Clean)) {
            let bytes = crop.map(|c| c.iter().map(|v| v.round().clamp(0.0, 255.0) as u8).collect());
            rows.insert(sample.key.clone(), bytes);
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish();
    CropStore { kind, rows }
}

/// `side x side` planar crop mirrored left to right.
pub fn mirror(planar: &[u8], side: usize) -> Vec<u8> {
    planar.chunks_exact(side).flat_map(|row| row.iter().rev().copied()).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn mirroring_reverses_each_row_of_each_plane() {
        let planar: Vec<u8> = (0..12).collect(); // 3 planes of 2x2
        assert_eq!(super::mirror(&planar, 2), vec![1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10]);
    }
}
