//! `facemtl setup` fails with a clear message, never a panic, when npm is missing or a
//! download does not match its pinned checksum.

use std::fs;
use std::process::Command;

fn setup(cache: &std::path::Path, path_env: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_facemtl"))
        .arg("setup")
        .env("FACEMTL_CACHE", cache)
        .env("PATH", path_env)
        .output()
        .unwrap()
}

#[test]
fn missing_npm_is_a_clear_error() {
    let cache = std::env::temp_dir().join(format!("facemtl-setup-npm-{}", std::process::id()));
    let out = setup(&cache, "/nonexistent");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "an error exit, not a panic (101): {stderr}");
    assert!(stderr.contains("could not run `npm`") && stderr.contains("install Node.js"), "{stderr}");
    let _ = fs::remove_dir_all(&cache);
}

#[test]
fn a_tarball_with_the_wrong_checksum_is_refused_and_removed() {
    let cache = std::env::temp_dir().join(format!("facemtl-setup-sum-{}", std::process::id()));
    let home = cache.join("npm/@vladmandic/human");
    fs::create_dir_all(&home).unwrap();
    let tarball = home.join("_vladmandic_human-3.3.6.tgz");
    fs::write(&tarball, b"not the package").unwrap();
    let out = setup(&cache, "/nonexistent");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("checksum mismatch for @vladmandic/human@3.3.6"), "{stderr}");
    assert!(!tarball.exists(), "the bad download is removed so that the next run fetches it again");
    let _ = fs::remove_dir_all(&cache);
}
