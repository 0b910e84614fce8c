//! Activations of faceres where its last K blocks begin, for partial fine-tuning: the frozen
//! blocks before the cut run once per aligned face and once per its mirror image, and the
//! tuned blocks then train on these numbers on the CPU, for every epoch, without them.
//!
//! Stored as f16 under `$FACEMTL_CACHE/features`, named like the feature cache (the same key:
//! weights, detector, alignment) plus K: `<key>-tail<K>.act` holds fixed-size rows (both views
//! of one face back to back), `<key>-tail<K>.idx` (JSON with a checksum, written atomically)
//! which row belongs to which sample. The build is incremental and checkpointed: rows past the
//! index's count, left by a killed run, are cut off when it resumes.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use facemtl::backbone::faceres;
use facemtl::pipeline::FacePipeline;
use half::f16;
use serde::{Deserialize, Serialize};

use super::looks::Look;
use super::{batch_size, best_face_crops, cache_key};
use crate::cache::Cache;
use crate::data::Sample;
use crate::files::{checked, with_checksum, write_atomic};
use crate::progress::progress;

const FORMAT: &str = "facemtl-activations-v1";
/// Save progress every so many images.
const CHECKPOINT_EVERY: usize = 512;

/// Which row of the data file holds each sample's activations; `None` where no face was found.
#[derive(Debug, Serialize, Deserialize)]
struct Index {
    format: String,
    tuned: usize,
    shape: [usize; 3],
    count: usize,
    rows: HashMap<String, Option<usize>>,
}

/// The cached activations at the cut before the last `tuned` blocks.
pub struct ActivationStore {
    pub tuned: usize,
    data: PathBuf,
    index: Index,
}

/// Values of one view of one face at the cut.
pub fn view_len(tuned: usize) -> usize {
    faceres::cut_shape(tuned).iter().product()
}

impl ActivationStore {
    fn paths(cache: &Cache, pipeline: &FacePipeline, tuned: usize) -> Result<(PathBuf, PathBuf)> {
        let dir = cache.root.join("features");
        fs::create_dir_all(&dir)?;
        // Mirror views are always stored, so the key is that of the upright pipeline.
        let stem = format!("{}-tail{tuned}", cache_key(&pipeline.clone().with_mirror(false))?);
        Ok((dir.join(format!("{stem}.act")), dir.join(format!("{stem}.idx"))))
    }

    fn empty_index(tuned: usize) -> Index {
        Index { format: FORMAT.into(), tuned, shape: faceres::cut_shape(tuned), count: 0, rows: HashMap::new() }
    }

    /// The index at `path`; empty when there is none, or when it fails its checksum or does not
    /// describe these activations (they are computed again rather than trusted).
    fn load_index(path: &Path, tuned: usize) -> Index {
        let Ok(bytes) = fs::read(path) else { return Self::empty_index(tuned) };
        let parsed = checked(&bytes).and_then(|body| serde_json::from_slice::<Index>(body).ok());
        match parsed {
            Some(index)
                if index.format == FORMAT && index.tuned == tuned && index.shape == faceres::cut_shape(tuned) =>
            {
                index
            }
            _ => {
                eprintln!(
                    "warning: the activation index {} is damaged; computing its activations again",
                    path.display()
                );
                Self::empty_index(tuned)
            }
        }
    }

    /// Bytes of one row: both views in f16.
    fn row_bytes(&self) -> u64 {
        (2 * 2 * view_len(self.tuned)) as u64
    }

    /// Bytes on disk.
    pub fn size(&self) -> u64 {
        self.index.count as u64 * self.row_bytes()
    }

    pub fn has(&self, sample: &Sample) -> bool {
        matches!(self.index.rows.get(&sample.key), Some(Some(_)))
    }

    /// The f16 bits of both views of each sample that has a face, in order, with those samples.
    pub fn read<'a>(&self, samples: &'a [Sample]) -> Result<(Vec<&'a Sample>, Vec<u16>)> {
        let mut file = File::open(&self.data).with_context(|| format!("opening {}", self.data.display()))?;
        let row_bytes = self.row_bytes() as usize;
        let kept: Vec<(&Sample, usize)> =
            samples.iter().filter_map(|s| self.index.rows.get(&s.key).copied().flatten().map(|r| (s, r))).collect();
        let mut values = Vec::with_capacity(kept.len() * row_bytes / 2);
        let mut buffer = vec![0u8; row_bytes];
        for &(_, row) in &kept {
            file.seek(SeekFrom::Start(row as u64 * row_bytes as u64))?;
            file.read_exact(&mut buffer).context("the activation cache is shorter than its index")?;
            values.extend(buffer.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])));
        }
        Ok((kept.into_iter().map(|(s, _)| s).collect(), values))
    }
}

/// The activations of every sample before the last `tuned` blocks of `pipeline`'s faceres,
/// computing only those not cached yet.
pub fn extract(cache: &Cache, pipeline: &FacePipeline, samples: &[&Sample], tuned: usize) -> Result<ActivationStore> {
    Ok(extract_many(cache, pipeline, samples, &[tuned])?.remove(0))
}

/// One cut's cache being built: its store, its index file and its data file open for appending.
type Build = (ActivationStore, PathBuf, BufWriter<File>);

/// The cache of the cut before the last `tuned` blocks, opened to go on where it stopped.
fn open_build(cache: &Cache, pipeline: &FacePipeline, tuned: usize) -> Result<Build> {
    let (data, index_path) = ActivationStore::paths(cache, pipeline, tuned)?;
    let store = ActivationStore { tuned, index: ActivationStore::load_index(&index_path, tuned), data };
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(&store.data)?;
    // Rows a killed build wrote after its last index are not trusted.
    file.set_len(store.size())?;
    let mut out = BufWriter::new(file);
    out.seek(SeekFrom::End(0))?;
    Ok((store, index_path, out))
}

/// `rows` (one per found crop of `chunk`, in order) appended to the build, each sample not
/// cached yet indexed by its row, or by `None` where no face was found.
fn append(build: &mut Build, chunk: &[&Sample], crops: &[Option<Vec<f32>>], rows: Vec<Vec<u16>>) -> Result<()> {
    let (store, _, out) = build;
    let mut rows = rows.into_iter();
    for (sample, crop) in chunk.iter().zip(crops) {
        let row = crop.as_ref().map(|_| rows.next().expect("one row per crop"));
        if store.index.rows.contains_key(&sample.key) {
            continue;
        }
        let at = match row {
            None => None,
            Some(bits) => {
                out.write_all(&bits.iter().flat_map(|b| b.to_le_bytes()).collect::<Vec<u8>>())?;
                store.index.count += 1;
                Some(store.index.count - 1)
            }
        };
        store.index.rows.insert(sample.key.clone(), at);
    }
    Ok(())
}

/// [`extract`] for several cuts at once: the detector and the frozen blocks run once per face
/// for all of them.
pub fn extract_many(
    cache: &Cache,
    pipeline: &FacePipeline,
    samples: &[&Sample],
    tuned: &[usize],
) -> Result<Vec<ActivationStore>> {
    let Some(net) = pipeline.backbone().faceres() else {
        bail!("partial fine-tuning tunes faceres blocks, not {}", pipeline.kind())
    };
    let mut builds: Vec<Build> = tuned.iter().map(|&k| open_build(cache, pipeline, k)).collect::<Result<_>>()?;
    let missing =
        |s: &Sample, builds: &[Build]| builds.iter().any(|(store, ..)| !store.index.rows.contains_key(&s.key));
    let todo: Vec<&Sample> = samples.iter().copied().filter(|s| missing(s, &builds)).collect();
    if !todo.is_empty() {
        let bar = progress(todo.len() as u64, &format!("faceres activations before the last {tuned:?} blocks"));
        let mut since_save = 0;
        for chunk in todo.chunks(batch_size(pipeline.device())) {
            let crops = best_face_crops(pipeline, chunk, Look::Clean);
            let found: Vec<&Vec<f32>> = crops.iter().flatten().collect();
            let per_cut = views(net, pipeline, &found, tuned);
            for (build, rows) in builds.iter_mut().zip(per_cut) {
                append(build, chunk, &crops, rows)?;
            }
            bar.inc(chunk.len() as u64);
            since_save += chunk.len();
            if since_save >= CHECKPOINT_EVERY {
                builds.iter_mut().try_for_each(|(store, path, out)| save(out, store, path))?;
                since_save = 0;
            }
        }
        bar.finish();
        builds.iter_mut().try_for_each(|(store, path, out)| save(out, store, path))?;
    }
    Ok(builds.into_iter().map(|(store, ..)| store).collect())
}

/// The data on disk first, then the index that points into it.
fn save(out: &mut BufWriter<File>, store: &ActivationStore, index_path: &Path) -> Result<()> {
    out.flush()?;
    out.get_ref().sync_data()?;
    write_atomic(index_path, &with_checksum(serde_json::to_vec(&store.index)?))
}

/// Per cut (in `tuned`'s order) and crop, the f16 bits of its activations at the cut and then
/// its mirror image's. The frozen blocks run once, stopping at each cut on the way.
fn views(net: &faceres::FaceRes, pipeline: &FacePipeline, crops: &[&Vec<f32>], tuned: &[usize]) -> Vec<Vec<Vec<u16>>> {
    if crops.is_empty() {
        return vec![Vec::new(); tuned.len()];
    }
    let n = crops.len();
    let x = pipeline.input(crops);
    let mut cuts: Vec<usize> = tuned.iter().map(|k| faceres::BLOCK_COUNT - k).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let (mut at, mut x) = (0, net.stem(Tensor::cat(vec![x.clone(), x.flip([3])], 0)));
    let mut by_cut = HashMap::new();
    for cut in cuts {
        x = net.blocks(x, at..cut);
        at = cut;
        by_cut
            .insert(cut, x.clone().into_data().convert::<f32>().try_into_vec::<f32>().expect("activations are floats"));
    }
    tuned
        .iter()
        .map(|k| {
            let values = &by_cut[&(faceres::BLOCK_COUNT - k)];
            let width = view_len(*k);
            let view = |i: usize| values[i * width..(i + 1) * width].iter().map(|v| f16::from_f32(*v).to_bits());
            (0..n).map(|i| view(i).chain(view(n + i)).collect()).collect()
        })
        .collect()
}
