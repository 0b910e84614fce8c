//! One split of a run as the network reads it: each face's input (cached features, cached
//! activations of both mirror views when the last blocks train too, or an aligned crop when the
//! whole backbone does) and its typed target per task.

use burn::prelude::*;
use facemtl::backbone::BackboneKind;
use facemtl::mtl::TaskSpec;
use facemtl::training::{Examples, Target, examples};

use crate::data::Sample;
use crate::faces::activations::ActivationStore;
use crate::faces::crops::{self, CropStore};
use crate::faces::features::FeatureStore;

/// What the network reads for each face of a split (three exist per run, so the variants'
/// difference in size does not matter).
#[allow(clippy::large_enum_variant)]
pub enum Inputs {
    /// `[n, features]` of the frozen backbone.
    Features(Tensor<2>),
    /// Aligned crops, planar RGB bytes back to back, kept on the host.
    Crops { pixels: Vec<u8>, kind: BackboneKind },
    /// f16 bits of the activations at the tuned blocks' cut, `width` values per view, each face's
    /// upright view then its mirror view; `average_views`: evaluation averages the two views'
    /// features (test-time mirror).
    Activations { values: Vec<u16>, width: usize, average_views: bool },
}

/// Faces at a time when evaluating crops or activations (features go in one pass).
const CHUNK: usize = 32;

impl Inputs {
    /// Rows `indices` as the network's input on `device` (see [`facemtl::mtl::model::forward`]);
    /// crops whose `mirror` flag is set are flipped left to right first.
    pub fn rows(&self, indices: &[i64], mirror: &[bool], device: &Device) -> Tensor<2> {
        match self {
            Inputs::Features(x) => {
                let idx = Tensor::<1, Int>::from_data(TensorData::new(indices.to_vec(), [indices.len()]), &x.device());
                x.clone().select(0, idx).to_device(device)
            }
            Inputs::Crops { pixels, kind } => {
                let (side, width) = (kind.input_size(), 3 * kind.input_size() * kind.input_size());
                let rows: Vec<f32> = indices
                    .iter()
                    .enumerate()
                    .flat_map(|(k, &i)| {
                        let crop = &pixels[i as usize * width..(i as usize + 1) * width];
                        let crop = if mirror.get(k).copied().unwrap_or(false) {
                            crops::mirror(crop, side)
                        } else {
                            crop.to_vec()
                        };
                        kind.normalise(&crop.into_iter().map(f32::from).collect::<Vec<_>>())
                    })
                    .collect();
                Tensor::from_data(TensorData::new(rows, [indices.len(), width]), device)
            }
            Inputs::Activations { values, width, .. } => {
                let rows: Vec<f32> = indices
                    .iter()
                    .enumerate()
                    .flat_map(|(k, &i)| {
                        let view = 2 * i as usize + usize::from(mirror.get(k).copied().unwrap_or(false));
                        values[view * width..(view + 1) * width].iter().map(|b| half::f16::from_bits(*b).to_f32())
                    })
                    .collect();
                Tensor::from_data(TensorData::new(rows, [indices.len(), *width]), device)
            }
        }
    }

    /// Faces per forward pass when evaluating.
    pub fn chunk(&self, n: usize) -> usize {
        match self {
            Inputs::Features(_) => n.max(1),
            Inputs::Crops { .. } | Inputs::Activations { .. } => CHUNK,
        }
    }
}

/// The trained tasks and where each finds its label in a sample (its data set's column).
#[derive(Debug, Clone)]
pub struct TaskSelection {
    pub tasks: Vec<TaskSpec>,
    /// The data set's tasks, whose order the samples' labels follow.
    set_tasks: Vec<TaskSpec>,
    columns: Vec<usize>,
}

impl TaskSelection {
    /// `tasks` (a subset of `set_tasks`), each read from its own column.
    pub fn new(tasks: Vec<TaskSpec>, set_tasks: &[TaskSpec]) -> Self {
        let columns =
            tasks.iter().map(|t| set_tasks.iter().position(|s| s.name == t.name).expect("a data set task")).collect();
        Self { tasks, set_tasks: set_tasks.to_vec(), columns }
    }

    pub fn set_tasks(&self) -> &[TaskSpec] {
        &self.set_tasks
    }

    /// Per task and sample, the true class or value (in its own unit).
    fn truth(&self, samples: &[&Sample]) -> Vec<Vec<f64>> {
        examples::truth(&self.columns, samples)
    }

    /// Per task, the targets of `samples` on the network's scale.
    fn targets(&self, samples: &[&Sample], device: &Device) -> Vec<Target> {
        examples::targets(&self.tasks, &self.columns, samples, device)
    }
}

/// Inputs, targets and true labels of one split's faces (those where a face was found).
pub struct Split {
    pub inputs: Inputs,
    pub targets: Vec<Target>,
    /// Per task and sample, the true class or value in its own unit (what metrics compare).
    pub truth: Vec<Vec<f64>>,
    pub samples: Vec<Sample>,
}

impl Split {
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    fn of(kept: Vec<&Sample>, inputs: Inputs, labels: &TaskSelection, device: &Device) -> Self {
        Split {
            inputs,
            targets: labels.targets(&kept, device),
            truth: labels.truth(&kept),
            samples: kept.into_iter().cloned().collect(),
        }
    }

    /// The samples that have cached features, once per store: a training split also reads its
    /// faces seen other ways (`train --view`), each an example of its own.
    pub fn of_features(samples: &[Sample], stores: &[&FeatureStore], labels: &TaskSelection, device: &Device) -> Self {
        let kept: Vec<(&Sample, &[f32])> =
            stores.iter().flat_map(|store| samples.iter().filter_map(|s| store.get(s).map(|f| (s, f)))).collect();
        let dim = stores.first().map_or(0, |s| s.dim);
        let x: Vec<f32> = kept.iter().flat_map(|(_, f)| f.iter().copied()).collect();
        let inputs = Inputs::Features(Tensor::from_data(TensorData::new(x, [kept.len(), dim]), device));
        Self::of(kept.into_iter().map(|(s, _)| s).collect(), inputs, labels, device)
    }

    /// The samples that have a face crop.
    pub fn of_crops(samples: &[Sample], store: &CropStore, labels: &TaskSelection, device: &Device) -> Self {
        let kept: Vec<(&Sample, &[u8])> = samples.iter().filter_map(|s| store.get(s).map(|c| (s, c))).collect();
        let pixels: Vec<u8> = kept.iter().flat_map(|(_, c)| c.iter().copied()).collect();
        let inputs = Inputs::Crops { pixels, kind: store.kind };
        Self::of(kept.into_iter().map(|(s, _)| s).collect(), inputs, labels, device)
    }
}

impl Split {
    /// The samples that have cached activations; `average_views`: evaluated with test-time
    /// mirror.
    pub fn of_activations(
        samples: &[Sample],
        store: &ActivationStore,
        labels: &TaskSelection,
        average_views: bool,
        device: &Device,
    ) -> anyhow::Result<Self> {
        let (kept, values) = store.read(samples)?;
        let width = crate::faces::activations::view_len(store.tuned);
        Ok(Self::of(kept, Inputs::Activations { values, width, average_views }, labels, device))
    }
}

/// The three splits of a run.
pub struct Splits {
    pub train: Split,
    pub val: Split,
    pub test: Split,
}

impl Examples for Split {
    fn len(&self) -> usize {
        self.samples.len()
    }

    fn rows(&self, indices: &[i64], mirrored: &[bool], device: &Device) -> Tensor<2> {
        self.inputs.rows(indices, mirrored, device)
    }

    fn targets(&self) -> &[Target] {
        &self.targets
    }

    fn truth(&self) -> &[Vec<f64>] {
        &self.truth
    }

    fn chunk(&self) -> usize {
        self.inputs.chunk(self.len())
    }

    fn mirrors(&self) -> bool {
        matches!(self.inputs, Inputs::Crops { .. } | Inputs::Activations { .. })
    }

    fn averages_mirror(&self) -> bool {
        matches!(self.inputs, Inputs::Activations { average_views: true, .. })
    }
}
