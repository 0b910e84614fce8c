//! `facemtl bench train`: training throughput on random inputs of the real shapes, for full
//! fine-tuning (the whole faceres from 224x224 crops), its last K blocks (from activations at
//! the cut) and the head alone (from features), with the shipped tasks and the thesis's head;
//! and where one step's time goes. Beside them, the same whole network forward only (the
//! trainer's validation pass, `eval`). The step is the trainer's own (`Session::gradients` and
//! `Session::apply`); the layers are timed alone, each kind summed over the blocks that train.

use std::time::{Duration, Instant};

use anyhow::Result;
use burn::prelude::*;
use burn::tensor::Distribution;
use clap::{Args, ValueEnum};
use facemtl::backbone::faceres::{self, BlockShape, FaceResTailConfig};
use facemtl::backbone::{Backbone, BackboneKind, Tuned};
use facemtl::mtl::{Label, TaskSpec};
use facemtl::training::{Examples, FeatureExamples, RunSettings, Session};
use serde::Serialize;

use crate::data::DataSetId;

/// What trains.
#[derive(Clone, Copy, Debug, PartialEq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrainMode {
    /// The whole backbone and the head, from aligned crops.
    Full,
    /// The last `--tune-blocks` blocks and the head, from activations at the cut.
    Blocks,
    /// The head alone, from features.
    Head,
    /// The whole backbone and the head forward only, without autodiff, from aligned crops: what
    /// the trainer's validation pass and `eval` run.
    Inference,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[arg(long, value_enum, default_value = "full")]
    mode: TrainMode,
    /// Blocks that train with `--mode blocks`.
    #[arg(long = "tune-blocks", default_value_t = 1)]
    tune_blocks: usize,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Untimed steps first (lazily built kernels, allocator warm-up).
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Leave out the layers timed alone (only the steps run: what bench/lavapipe-train.sh counts
    /// the GPU dispatches of).
    #[arg(long)]
    no_layers: bool,
}

/// One kind of layer's time in a step, over every layer of that kind that trains.
#[derive(Serialize)]
struct LayerCost {
    kind: &'static str,
    layers: usize,
    forward_ms: f64,
    backward_ms: f64,
}

#[derive(Serialize)]
struct TrainSpeed {
    mode: TrainMode,
    tune_blocks: Option<usize>,
    batch: usize,
    backend: String,
    threads: usize,
    images_per_second: f64,
    step_ms: f64,
    /// The forward pass, the losses and the backward pass (with `--mode inference`, the forward
    /// pass alone).
    gradients_ms: f64,
    /// Adam's step.
    optimiser_ms: f64,
    /// A batch gathered from examples in memory, with its targets.
    data_ms: f64,
    /// The backbone's layers timed alone; what the step spends beyond them is the head, the
    /// losses and the glue between layers.
    layers: Vec<LayerCost>,
    /// Each step's loss (the tasks' losses added, warm-up steps first): every backend starts
    /// from the same weights and inputs, so two backends' runs can be compared step by step.
    /// With `--mode inference`, the sum of each step's outputs.
    losses: Vec<f64>,
}

pub fn train(device: &Device, backend: &str, args: &TrainArgs) -> Result<()> {
    let autodiff = device.clone().autodiff();
    let ([gradients, optimiser, data], losses) = time_steps(args, device, &autodiff)?;
    let per_step = |d: Duration| 1e3 * d.as_secs_f64() / args.steps.max(1) as f64;
    let step_ms = per_step(gradients + optimiser + data);
    let report = TrainSpeed {
        mode: args.mode,
        tune_blocks: (args.mode == TrainMode::Blocks).then_some(args.tune_blocks),
        batch: args.batch,
        backend: backend.into(),
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        images_per_second: args.batch as f64 / step_ms * 1e3,
        step_ms,
        gradients_ms: per_step(gradients),
        optimiser_ms: per_step(optimiser),
        data_ms: per_step(data),
        layers: if args.no_layers || args.mode == TrainMode::Inference {
            Vec::new()
        } else {
            layer_costs(args, &autodiff)?
        },
        losses,
    };
    eprintln!(
        "{:?} batch {}: {:.1} img/s ({:.0} ms a step: gradients {:.0}, optimiser {:.0}, data {:.0})",
        args.mode,
        args.batch,
        report.images_per_second,
        step_ms,
        report.gradients_ms,
        report.optimiser_ms,
        report.data_ms
    );
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// The seed of the weights and inputs, drawn on the CPU whatever the backend, so that every
/// backend trains the same model on the same batches.
const SEED: u64 = 28;

/// A session of the shipped tasks that trains what `args` asks for, on `autodiff`.
fn session(args: &TrainArgs, autodiff: &Device) -> Result<Session> {
    let tasks = DataSetId::UtkfaceAllAges.tasks();
    let settings = RunSettings { batch_size: args.batch, ..RunSettings::default() };
    settings.check().map_err(anyhow::Error::msg)?;
    let cpu = Device::flex();
    let build = || {
        let mut model = settings.model(faceres::FEATURES, &tasks, &cpu);
        model.backbone = match args.mode {
            TrainMode::Full | TrainMode::Inference => Some(Tuned::Whole(Backbone::init(BackboneKind::Faceres, &cpu))),
            TrainMode::Blocks => Some(Tuned::Tail(FaceResTailConfig::new(args.tune_blocks).init(&cpu))),
            TrainMode::Head => None,
        };
        model
    };
    // Burn initialises a weight when it is first read, on the device it is on by then: taking
    // the record draws every weight here, on the CPU, from the seed.
    cpu.seed(SEED);
    let drawn = build().into_record();
    let model = build().load_record(drawn).to_device(&autodiff.clone().inner()).train();
    Ok(Session::new(settings, tasks, model, autodiff))
}

/// The time the timed steps spent on their gradients, on Adam's step and on gathering their
/// batch (two batches in memory, taken in turn), each part waited for on the device; and every
/// step's loss, read after its timing.
fn time_steps(args: &TrainArgs, device: &Device, autodiff: &Device) -> Result<([Duration; 3], Vec<f64>)> {
    if args.mode == TrainMode::Inference {
        return time_forward(args, device, autodiff);
    }
    let mut session = session(args, autodiff)?;
    let examples = random_examples(&session.tasks, input_width(args), 2 * args.batch, device);
    let (first, second) = two_batches(args.batch);
    let batch = |rows: &[i64]| {
        let indices = Tensor::<1, Int>::from_data(TensorData::new(rows.to_vec(), [rows.len()]), autodiff);
        let targets: Vec<_> =
            examples.targets().iter().map(|t| t.to_device(autodiff).select(indices.clone())).collect();
        (examples.rows(rows, &vec![false; rows.len()], autodiff), targets)
    };
    let keep = session.dropout_keep(0, 0, args.batch);
    let active = vec![true; session.tasks.len()];
    let (mut spent, mut losses) = ([Duration::ZERO; 3], Vec::new());
    for step in 0..args.warmup + args.steps {
        let started = Instant::now();
        let (x, targets) = batch(if step % 2 == 0 { &first } else { &second });
        autodiff.sync()?;
        let prepared = Instant::now();
        let (task_losses, grads) = session.gradients(x, &targets, &keep, &active);
        autodiff.sync()?;
        let backward = Instant::now();
        session.apply(grads);
        autodiff.sync()?;
        if step >= args.warmup {
            spent[0] += backward - prepared;
            spent[1] += backward.elapsed();
            spent[2] += prepared - started;
        }
        losses.push(task_losses.into_iter().map(|l| l.into_scalar::<f32>() as f64).sum());
    }
    Ok((spent, losses))
}

/// The time the timed batches spent forward, without autodiff, and on gathering their batch, as
/// [`time_steps`] counts them (no optimiser); and the sum of each batch's outputs.
fn time_forward(args: &TrainArgs, device: &Device, autodiff: &Device) -> Result<([Duration; 3], Vec<f64>)> {
    let session = session(args, autodiff)?;
    let model = session.model.valid();
    let examples = random_examples(&session.tasks, input_width(args), 2 * args.batch, device);
    let (first, second) = two_batches(args.batch);
    let (mut spent, mut sums) = ([Duration::ZERO; 3], Vec::new());
    for step in 0..args.warmup + args.steps {
        let started = Instant::now();
        let rows = if step % 2 == 0 { &first } else { &second };
        let x = examples.rows(rows, &vec![false; rows.len()], device);
        device.sync()?;
        let prepared = Instant::now();
        let outputs = model.forward(x, &[]);
        device.sync()?;
        if step >= args.warmup {
            spent[0] += prepared.elapsed();
            spent[2] += prepared - started;
        }
        sums.push(outputs.into_iter().map(|o| o.sum().into_scalar::<f32>() as f64).sum());
    }
    Ok((spent, sums))
}

/// The rows of the two batches in memory that the timed steps take in turn.
fn two_batches(batch: usize) -> (Vec<i64>, Vec<i64>) {
    (0..2 * batch as i64).partition(|i| *i < batch as i64)
}

/// A training row's width: a crop, the activations at the cut, or the features.
fn input_width(args: &TrainArgs) -> usize {
    match args.mode {
        TrainMode::Full | TrainMode::Inference => 3 * faceres::INPUT_SIZE * faceres::INPUT_SIZE,
        TrainMode::Blocks => faceres::cut_shape(args.tune_blocks).iter().product(),
        TrainMode::Head => faceres::FEATURES,
    }
}

/// `n` examples of random inputs `width` wide (drawn on the CPU, see [`SEED`]), with labels
/// drawn for every task.
fn random_examples(tasks: &[TaskSpec], width: usize, n: usize, device: &Device) -> FeatureExamples {
    let cpu = Device::flex();
    cpu.seed(SEED + 1);
    let features = Tensor::<2>::random([n, width], Distribution::Normal(0.0, 1.0), &cpu);
    let features = features.into_data().try_to_vec::<f32>().expect("f32 inputs");
    let label = |task: &TaskSpec, i: usize| match task.labels().len() {
        0 => Label::Value(1.0 + (i * 37 % 90) as f32),
        classes => Label::Class(i % classes),
    };
    let faces: Vec<Vec<Label>> = (0..n).map(|i| tasks.iter().map(|t| label(t, i)).collect()).collect();
    let columns: Vec<usize> = (0..tasks.len()).collect();
    FeatureExamples::new(features, width, &faces, tasks, &columns, device)
}

/// The blocks that train (all of them, after the stem, for full fine-tuning).
fn trained_blocks(args: &TrainArgs) -> Vec<BlockShape> {
    let blocks = faceres::block_shapes();
    match args.mode {
        TrainMode::Full => blocks,
        TrainMode::Blocks => blocks[faceres::BLOCK_COUNT - args.tune_blocks.min(faceres::BLOCK_COUNT)..].to_vec(),
        TrainMode::Head | TrainMode::Inference => Vec::new(),
    }
}

/// Each kind of backbone layer that trains, timed alone on its real input shapes at the
/// batch size: forward, then backward (from the sum of its output) to its weights, and to its
/// input where the step wants that too: not for the first layer that trains (the stem reads the
/// photo, a tuned tail's first layer the cached activations).
fn layer_costs(args: &TrainArgs, device: &Device) -> Result<Vec<LayerCost>> {
    let n = args.batch;
    let blocks = trained_blocks(args);
    // ReLU6 is timed inside each convolution: on the CPU backend each is one fused layer
    // (facemtl::kernels).
    let mut costs = vec![
        LayerCost { kind: "3x3 depthwise conv + ReLU6", layers: 0, forward_ms: 0.0, backward_ms: 0.0 },
        LayerCost { kind: "1x1 conv + ReLU6", layers: 0, forward_ms: 0.0, backward_ms: 0.0 },
        LayerCost { kind: "3x3 stem conv + ReLU6", layers: 0, forward_ms: 0.0, backward_ms: 0.0 },
    ];
    let time = |layer: &dyn Fn(Tensor<4>) -> Tensor<4>, shape, input_gradient| {
        time_layer(layer, Input { shape, gradient: input_gradient }, args.steps, device)
    };
    if args.mode == TrainMode::Full {
        let stem = faceres::stem_config().init(device);
        let side = faceres::INPUT_SIZE;
        add(&mut costs[2], time(&|x| faceres::stem_relu6(&stem, x), [n, 3, side, side], false)?);
    }
    for (i, block) in blocks.iter().enumerate() {
        let depthwise = faceres::depthwise_config(block).init(device);
        let pointwise = faceres::pointwise_config(block).init(device);
        let out = block.side.div_ceil(block.stride);
        let shape = |channels: usize, side: usize| [n, channels, side, side];
        let first = i == 0 && args.mode == TrainMode::Blocks;
        let dw = |x| faceres::depthwise_relu6(&depthwise, x);
        add(&mut costs[0], time(&dw, shape(block.channels, block.side), !first)?);
        let pw = |x| faceres::pointwise_relu6(&pointwise, x);
        add(&mut costs[1], time(&pw, shape(block.channels, out), true)?);
    }
    costs.retain(|c| c.layers > 0);
    Ok(costs)
}

fn add(cost: &mut LayerCost, (forward_ms, backward_ms): (f64, f64)) {
    cost.layers += 1;
    cost.forward_ms += forward_ms;
    cost.backward_ms += backward_ms;
}

/// A layer's input as a step gives it: its shape, and whether its gradient is wanted.
struct Input {
    shape: [usize; 4],
    gradient: bool,
}

/// Mean forward and backward milliseconds of `layer` on a random `input`, after one untimed run.
fn time_layer(
    layer: impl Fn(Tensor<4>) -> Tensor<4>,
    input: Input,
    runs: usize,
    device: &Device,
) -> Result<(f64, f64)> {
    let (mut forward, mut backward) = (Duration::ZERO, Duration::ZERO);
    for run in 0..=runs.max(1) {
        let x = Tensor::<4>::random(input.shape, Distribution::Normal(0.0, 1.0), device);
        let x = if input.gradient { x.require_grad() } else { x };
        device.sync()?;
        let started = Instant::now();
        let y = layer(x);
        device.sync()?;
        let forwarded = Instant::now();
        let _grads = y.sum().backward();
        device.sync()?;
        if run > 0 {
            forward += forwarded - started;
            backward += forwarded.elapsed();
        }
    }
    let ms = |d: Duration| 1e3 * d.as_secs_f64() / runs.max(1) as f64;
    Ok((ms(forward), ms(backward)))
}
