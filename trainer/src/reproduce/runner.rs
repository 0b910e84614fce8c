//! Running the sweep: each configuration's seeds trained on cached features (side by side as far
//! as memory allows), then `results/REPORT.md`, `results/report.json` and the plots. Runs that
//! finished are read back, runs that were killed resume from their checkpoint, so the command
//! can be stopped and started again at any point.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::prelude::*;
use facemtl::backbone::{Backbone, BackboneKind};
use indicatif::ProgressBar;

use super::across;
use super::experiments::{Experiment, experiments};
use super::report;
use super::sweep::{Finished, SplitCounts, Sweep};
use crate::cache::Cache;
use crate::data::{DataSet, DataSetId, Sample};
use crate::faces::activations::{self, ActivationStore};
use crate::faces::crops::{self, CropStore};
use crate::faces::features::{self, FeatureStore};
use crate::models;
use crate::train::{RunResult, Split, Splits, TaskSelection, TrainConfig, Trainer};

#[derive(Debug, Clone, clap::Args)]
pub struct ReproduceArgs {
    #[arg(long, env = "FACEMTL_DATA", default_value = "../shared/data")]
    pub data_dir: PathBuf,
    /// Where each run keeps its directory (resumable).
    #[arg(long, default_value = "runs/reproduce")]
    pub runs_dir: PathBuf,
    /// Where the report, its JSON and its plots are written.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Seeds per configuration (initialisation, dropout, batch order; the split stays fixed).
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    #[arg(long, value_delimiter = ',', default_value = "faceres,dlib")]
    pub backbones: Vec<BackboneKind>,
    /// Runs trained side by side.
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    /// Also fine-tune faceres whole (`--recipe whole`) on UTKFace, CORAL and all ages, for the
    /// report's last section: about 1 and 2 hours a run on 2 CPU cores, so not by default.
    #[arg(long)]
    pub whole_backbone: bool,
}

struct Job<'a> {
    experiment: &'a Experiment,
    seed: u64,
}

/// What the runs of one group read: the frozen backbone's features, activations where the last
/// blocks are tuned, or aligned crops where the whole backbone is.
enum Store {
    Features(FeatureStore),
    Activations(ActivationStore),
    Crops(CropStore),
}

/// Which kind of [`Store`] a run reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inputs {
    Features,
    /// Activations before the last `K` blocks.
    Activations(usize),
    Crops,
}

impl Inputs {
    fn of(config: &TrainConfig) -> Self {
        match (config.fine_tune, config.tune_blocks) {
            (true, _) => Inputs::Crops,
            (false, Some(k)) => Inputs::Activations(k),
            (false, None) => Inputs::Features,
        }
    }
}

impl Store {
    fn has(&self, sample: &Sample) -> bool {
        match self {
            Store::Features(store) => store.get(sample).is_some(),
            Store::Activations(store) => store.has(sample),
            Store::Crops(store) => store.get(sample).is_some(),
        }
    }

    /// What one run holds of this store in memory for `faces` faces: tuned runs keep both
    /// views of every face's cut (f16); features are small beside that and count as nothing.
    fn bytes_per_run(&self, faces: usize) -> u64 {
        match self {
            Store::Features(_) | Store::Crops(_) => 0,
            Store::Activations(store) => (faces * 2 * activations::view_len(store.tuned) * 2) as u64,
        }
    }

    /// How many of `jobs` runs train side by side on this store for `faces` faces. A whole
    /// backbone's products already take every core, so its runs go one at a time.
    fn runs_at_once(&self, jobs: usize, faces: usize) -> usize {
        match self {
            Store::Crops(_) => 1,
            _ => side_by_side(jobs, self.bytes_per_run(faces), available_memory()),
        }
    }

    fn splits(&self, set: &DataSet, labels: &TaskSelection, config: &TrainConfig, device: &Device) -> Result<Splits> {
        let of = |s: &[Sample]| match self {
            Store::Features(store) => Ok(Split::of_features(s, &[store], labels, device)),
            Store::Activations(store) => Split::of_activations(s, store, labels, config.mirror, device),
            Store::Crops(store) => Ok(Split::of_crops(s, store, labels, device)),
        };
        Ok(Splits { train: of(&set.train)?, val: of(&set.val)?, test: of(&set.test)? })
    }
}

/// One run of `job` (or its result, if it has finished) on `store`'s inputs; a run that tunes
/// blocks starts them from `backbone`'s.
fn train_one(
    job: &Job,
    runs: &Path,
    (set, store): (&DataSet, &Store),
    backbone: &Backbone,
    device: &Device,
) -> Result<Finished> {
    let mut config = TrainConfig::from_flags(&job.experiment.train_flags(job.seed))?;
    config.quiet = true;
    let tasks = config.tasks(&set.tasks)?;
    let dir = job.experiment.run_dir(runs, job.seed);
    let result: RunResult = match fs::read_to_string(dir.join("result.json")) {
        Ok(text) => serde_json::from_str(&text)?,
        Err(_) => {
            let labels = TaskSelection::new(tasks.clone(), &set.tasks);
            let splits = store.splits(set, &labels, &config, device)?;
            let resume = dir.join("checkpoint-latest").exists();
            let pretrained = config.tuned_part(backbone)?;
            Trainer::new(&config, labels.clone(), &dir, device).fit(&splits, pretrained, resume)?
        }
    };
    Ok(Finished { seed: job.seed, tasks, result, across: Vec::new() })
}

/// Runs that read the same inputs: data set, backbone and what of the backbone they read.
type GroupKey = (DataSetId, BackboneKind, Inputs);

/// Run (or read back) every run of the sweep, then write the report.
pub fn run(cache: &Cache, device: &Device, backend: &str, args: &ReproduceArgs) -> Result<Sweep> {
    let ledger = Ledger::open(&args.runs_dir);
    let experiments: Vec<Experiment> =
        args.backbones.iter().flat_map(|b| experiments(*b, args.whole_backbone)).collect();
    let mut sweep = Sweep { seeds: args.seeds, backend: backend.into(), hardware: hardware(), ..Sweep::default() };
    let finished = Mutex::default();
    let bar = crate::progress::progress(experiments.len() as u64 * args.seeds, "runs");
    let sweep_run =
        SweepRun { cache, device, args, experiments: &experiments, ledger: &ledger, finished: &finished, bar: &bar };
    for (key, indices) in groups(&experiments)? {
        let counts = sweep_run.run_group(key, &indices)?;
        sweep.counts.insert(key.0, counts);
    }
    bar.finish();
    let mut finished = finished.into_inner().unwrap();
    for (i, experiment) in experiments.into_iter().enumerate() {
        let runs = (0..args.seeds).filter_map(|seed| finished.remove(&(i, seed))).collect();
        sweep.runs.push((experiment, runs));
    }
    across::read_sweep(cache, &args.data_dir, &args.runs_dir, &mut sweep)?;
    sweep.invocations = ledger.record()?;
    report::write(&sweep, &args.runs_dir, &args.out).context("writing the report")?;
    Ok(sweep)
}

/// The experiments' indices by data set, backbone and cut, in order: a group's features (or
/// activations) are read once and shared by its runs.
fn groups(experiments: &[Experiment]) -> Result<Vec<(GroupKey, Vec<usize>)>> {
    let mut groups: Vec<(GroupKey, Vec<usize>)> = Vec::new();
    for (i, e) in experiments.iter().enumerate() {
        let key = (e.data, e.backbone, Inputs::of(&TrainConfig::from_flags(&e.train_flags(0))?));
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, indices)) => indices.push(i),
            None => groups.push((key, vec![i])),
        }
    }
    Ok(groups)
}

/// What every group of the sweep shares: where it runs, its experiments, and where finished
/// runs and the progress go.
struct SweepRun<'a> {
    cache: &'a Cache,
    device: &'a Device,
    args: &'a ReproduceArgs,
    experiments: &'a [Experiment],
    ledger: &'a Ledger,
    finished: &'a Mutex<BTreeMap<(usize, u64), Finished>>,
    bar: &'a ProgressBar,
}

impl SweepRun<'_> {
    /// One group's runs (`indices` of the experiments, every seed), side by side as far as their
    /// inputs fit in memory: the data set's face counts.
    fn run_group(&self, (data, backbone, inputs): GroupKey, indices: &[usize]) -> Result<SplitCounts> {
        let first = &self.experiments[indices[0]];
        let set = TrainConfig::from_flags(&first.train_flags(0))?.load(&self.args.data_dir)?;
        set.warn_skipped();
        let pipeline = models::pipeline(self.cache, backbone, self.device)?;
        let all: Vec<&Sample> = set.all().collect();
        let store = match inputs {
            Inputs::Features => Store::Features(features::extract(self.cache, &pipeline, &all)?),
            Inputs::Activations(k) => Store::Activations(activations::extract(self.cache, &pipeline, &all, k)?),
            Inputs::Crops => Store::Crops(crops::collect(&pipeline, &all)),
        };
        let with_face = |s: &[Sample]| s.iter().filter(|x| store.has(x)).count();
        let (train, val, test) = (with_face(&set.train), with_face(&set.val), with_face(&set.test));
        let faces = train + val + test;
        let parallel = store.runs_at_once(self.args.jobs, faces);
        if parallel < self.args.jobs && !matches!(store, Store::Crops(_)) {
            eprintln!(
                "{data}/{backbone}: {parallel} run(s) at a time, as each holds {:.1} GB of activations",
                store.bytes_per_run(faces) as f64 / 1e9
            );
        }
        let jobs: Vec<(usize, Job)> = indices
            .iter()
            .flat_map(|&i| (0..self.args.seeds).map(move |seed| (i, seed)))
            .map(|(i, seed)| (i, Job { experiment: &self.experiments[i], seed }))
            .rev()
            .collect();
        self.train_jobs(jobs, parallel, (&set, &store), pipeline.backbone())?;
        Ok(SplitCounts { train, val, test, no_face: all.len() - faces })
    }

    /// `jobs` trained on `parallel` threads, each finished run recorded; the first error.
    fn train_jobs(
        &self,
        jobs: Vec<(usize, Job)>,
        parallel: usize,
        inputs: (&DataSet, &Store),
        backbone: &Backbone,
    ) -> Result<()> {
        let jobs = Mutex::new(jobs);
        let errors: Mutex<Vec<anyhow::Error>> = Mutex::default();
        std::thread::scope(|scope| {
            for _ in 0..parallel {
                scope.spawn(|| {
                    loop {
                        let Some((i, job)) = jobs.lock().unwrap().pop() else { break };
                        let e = job.experiment;
                        let what = format!("{}/{}/{} seed {}", e.data, e.backbone, e.name, job.seed);
                        match train_one(&job, &self.args.runs_dir, inputs, backbone, self.device) {
                            Ok(done) => {
                                self.finished.lock().unwrap().insert((i, job.seed), done);
                                if let Err(e) = self.ledger.record() {
                                    errors.lock().unwrap().push(e.context("timing the sweep"));
                                }
                            }
                            Err(e) => errors.lock().unwrap().push(e.context(what)),
                        }
                        self.bar.inc(1);
                    }
                });
            }
        });
        match errors.into_inner().unwrap().into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// The wall time of every invocation of the sweep in a runs directory (`invocations.json`).
/// This invocation's entry is rewritten each time a run finishes, so that one stopped part way
/// (a session's end, a kill) still counts up to its last finished run.
struct Ledger {
    path: PathBuf,
    earlier: Vec<f64>,
    started: Instant,
}

impl Ledger {
    fn open(runs_dir: &Path) -> Self {
        let path = runs_dir.join("invocations.json");
        let earlier = match fs::read_to_string(&path).map(|text| serde_json::from_str(&text)) {
            Ok(Ok(times)) => times,
            Ok(Err(e)) => {
                // Only the report's wall-time sentence depends on it: not worth stopping a sweep.
                eprintln!("warning: {} is damaged ({e}); the report counts invocations from this one", path.display());
                Vec::new()
            }
            Err(_) => Vec::new(),
        };
        Self { path, earlier, started: Instant::now() }
    }

    /// Write the ledger with this invocation's time so far; returns every entry.
    fn record(&self) -> Result<Vec<f64>> {
        let mut all = self.earlier.clone();
        all.push(self.started.elapsed().as_secs_f64());
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        crate::files::write_atomic(&self.path, serde_json::to_string(&all)?.as_bytes())?;
        Ok(all)
    }
}

/// How many of `jobs` runs that each hold `per_run` bytes train side by side within `available`
/// bytes of memory (four fifths of it, leaving room for the networks and the process); at least
/// one, and all of them where the memory is unknown.
fn side_by_side(jobs: usize, per_run: u64, available: Option<u64>) -> usize {
    let fit = match (available, per_run) {
        (Some(bytes), per_run) if per_run > 0 => (bytes / 5 * 4 / per_run) as usize,
        _ => usize::MAX,
    };
    jobs.min(fit).max(1)
}

/// The memory the system can still give (Linux's `MemAvailable`), in bytes.
fn available_memory() -> Option<u64> {
    let info = fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn hardware() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    format!("{cpu}, {cores} cores available")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_side_by_side_fit_their_activations_in_memory() {
        const GB: u64 = 1_000_000_000;
        // Every UTKFace face's K = 2 cut, both views, f16: 9.5 GB; CORAL's faces: 6.6 GB.
        let (all_ages, coral) = (23_686 * 401_408, 16_423 * 401_408);
        assert_eq!(side_by_side(2, all_ages, Some(21 * GB)), 1, "two copies would not fit");
        assert_eq!(side_by_side(2, coral, Some(21 * GB)), 2);
        assert_eq!(side_by_side(2, all_ages, Some(4 * GB)), 1, "one run always trains");
        assert_eq!(side_by_side(2, 0, Some(GB)), 2, "features take no say");
        assert_eq!(side_by_side(3, all_ages, None), 3, "unknown memory leaves the choice to --jobs");
        assert_eq!(side_by_side(0, 0, None), 1);
    }

    #[test]
    fn an_invocation_stopped_part_way_keeps_its_time() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("ledger");
        let first = Ledger::open(&dir);
        first.record().unwrap();
        let after_one_run = first.record().unwrap();
        assert_eq!(after_one_run.len(), 1, "a run's end rewrites this invocation's entry");
        drop(first); // stopped here, before the sweep's end
        let second = Ledger::open(&dir);
        assert_eq!(second.earlier, after_one_run);
        let all = second.record().unwrap();
        assert_eq!(all.len(), 2);
        assert!(all[1] >= 0.0 && all[0] == after_one_run[0]);
        fs::write(dir.join("invocations.json"), "not json").unwrap();
        assert!(Ledger::open(&dir).earlier.is_empty(), "a damaged ledger restarts rather than stopping the sweep");
    }
}
