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
    let scratch = std::env::temp_dir().join(format!("facemtl-resume-{}", std::process::id()));
    let (whole, killed) = (scratch.join("whole"), scratch.join("killed"));
    let _ = fs::remove_dir_all(&scratch);
    assert!(train(&whole, &[]).status().unwrap().success(), "uninterrupted run");

    let mut child = train(&killed, &[]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let latest = fs::read_to_string(killed.join("checkpoint-latest")).unwrap_or_default();
        if latest.trim() >= "checkpoint-0003" {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        assert!(Instant::now() < deadline, "no checkpoint in time");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(!killed.join("result.json").exists(), "the run was killed before the end");
    assert!(train(&killed, &["--resume"]).status().unwrap().success(), "resumed run");

    let read = |dir: &Path, file: &str| fs::read_to_string(dir.join(file)).unwrap();
    assert_eq!(read(&whole, "metrics.csv"), read(&killed, "metrics.csv"));
    let test =
        |dir: &Path| serde_json::from_str::<serde_json::Value>(&read(dir, "result.json")).unwrap()["test"].clone();
    assert_eq!(test(&whole), test(&killed));
    let _ = fs::remove_dir_all(&scratch);
}
