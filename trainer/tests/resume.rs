//! A training run killed with SIGKILL and resumed ends with exactly the figures of an
//! uninterrupted run (CPU backend), and frozen parameters never move after Early Freeze.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn train(run_dir: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_facemtl"));
    command
        .args(["train", "--backend", "cpu", "--dataset", "celeba", "--limit", "2000", "--lr", "1e-3"])
        .args(["--max-epochs", "14", "--patience", "3", "--run-dir"])
        .arg(run_dir)
        .args(extra)
        .env("FACEMTL_DATA", common::data_dir())
        .env("FACEMTL_CACHE", common::cache().root)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

#[test]
fn a_killed_run_resumes_to_the_same_result() {
    let cache = common::cache();
    if !common::present(&cache.detector_weights(), "detector weights")
        || !common::present(&common::data_dir().join("celeba"), "CelebA")
    {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let scratch = temp.path().join("resume");
    let (whole, killed) = (scratch.join("whole"), scratch.join("killed"));
    assert!(train(&whole, &[]).status().unwrap().success(), "uninterrupted run");

    kill_after_its_fourth_checkpoint(&killed);
    let read = |dir: &Path, file: &str| fs::read_to_string(dir.join(file)).unwrap();
    let json = |dir: &Path, file: &str| serde_json::from_str::<serde_json::Value>(&read(dir, file)).unwrap();
    let checkpoint = killed.join(read(&killed, "checkpoint-latest").trim());
    let before_kill = json(&checkpoint, "state.json")["seconds"].as_f64().unwrap();
    assert!(before_kill > 0.0, "the checkpoint keeps the time its epochs took");
    assert!(train(&killed, &["--resume"]).status().unwrap().success(), "resumed run");
    let seconds = json(&killed, "result.json")["seconds"].as_f64().unwrap();
    assert!(seconds > before_kill, "the run's time counts the part before the kill: {seconds} s");

    assert_eq!(read(&whole, "metrics.csv"), read(&killed, "metrics.csv"));
    let test = |dir: &Path| json(dir, "result.json")["test"].clone();
    assert_eq!(test(&whole), test(&killed));

    export_and_predict(&whole, &scratch.join("celeba.fmtl"));
}

/// A run into `run_dir`, killed (SIGKILL) once its fourth epoch's checkpoint is written.
fn kill_after_its_fourth_checkpoint(run_dir: &Path) {
    let mut child = train(run_dir, &[]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let latest = fs::read_to_string(run_dir.join("checkpoint-latest")).unwrap_or_default();
        if latest.trim() >= "checkpoint-0003" {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        assert!(Instant::now() < deadline, "no checkpoint in time");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(!run_dir.join("result.json").exists(), "the run was killed before the end");
}

/// The finished run in `whole` exports to `model`, a file whose test figures are the run's
/// within a few faces and that `predict` uses on a real photo (and refuses a non-image).
fn export_and_predict(whole: &Path, model: &Path) {
    let json = |file: &Path| serde_json::from_str::<serde_json::Value>(&fs::read_to_string(file).unwrap()).unwrap();
    let cli = |args: &[&std::ffi::OsStr]| {
        let out = Command::new(env!("CARGO_BIN_EXE_facemtl"))
            .args(args)
            .env("FACEMTL_CACHE", common::cache().root)
            .env("FACEMTL_DATA", common::data_dir())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    cli(&["export".as_ref(), "--run-dir".as_ref(), whole.as_os_str(), "--out".as_ref(), model.as_os_str()]);
    // Half precision in the file moves the test figures by a few faces at most.
    let (header, _) = facemtl::model_file::read_header(&fs::read(model).unwrap()).unwrap();
    let trained = json(&whole.join("result.json"))["test"]["metrics"].as_array().unwrap().clone();
    assert_eq!(header.metrics.len(), trained.len());
    for ((name, half), full) in header.metrics.iter().zip(&trained) {
        assert!((half - full.as_f64().unwrap()).abs() <= 0.005, "{name}: {half} in the file, {full} as trained");
    }
    let face = common::data_dir().join("celeba/img_align_celeba_89x109/000003.jpg");
    let not_an_image = common::repo_root().join("Cargo.toml");
    let lines = cli(&[
        "predict".as_ref(),
        "--backend".as_ref(),
        "cpu".as_ref(),
        "--model".as_ref(),
        model.as_os_str(),
        face.as_os_str(),
        not_an_image.as_os_str(),
    ]);
    let lines: Vec<serde_json::Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "one face, one error: {lines:?}");
    for key in ["female_probability", "young_probability"] {
        let p = lines[0][key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p), "{key} {p}");
    }
    assert!(lines[1]["error"].as_str().unwrap().contains("not an image"));
}
