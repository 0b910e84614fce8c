//! The cache directory that holds fetched packages and converted weights, outside the repo so
//! that it survives fresh clones (CI) and is shared by every command.

use std::path::PathBuf;

use facemtl::backbone::BackboneKind;
use facemtl::compact::Precision;

/// `$FACEMTL_CACHE`, else `$XDG_CACHE_HOME/facemtl`, else `~/.cache/facemtl`.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FACEMTL_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    base.join("facemtl")
}

/// Paths inside a cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    pub root: PathBuf,
}

impl Cache {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// The unpacked npm package, e.g. `npm/@vladmandic/human/package`.
    pub fn package_dir(&self, package: &str) -> PathBuf {
        self.root.join("npm").join(package).join("package")
    }

    pub fn weights_dir(&self) -> PathBuf {
        self.root.join("weights")
    }

    pub fn detector_weights(&self) -> PathBuf {
        self.weights_dir().join("blazeface.bpk")
    }

    /// The same weights in the browser's smaller file (`facemtl::compact`, lossless):
    /// `blazeface.fmh`, 30 KB less to download with brotli than the burnpack file.
    pub fn compact_detector_weights(&self) -> PathBuf {
        self.weights_dir().join("blazeface.fmh")
    }

    pub fn backbone_weights(&self, kind: BackboneKind) -> PathBuf {
        self.weights_dir().join(format!("{}.bpk", kind.name()))
    }

    /// The same weights in the browser's smaller file (`facemtl::compact`) at `precision`:
    /// `faceres.fmh` (lossless), `faceres-int8.fmh`.
    pub fn compact_backbone_weights(&self, kind: BackboneKind, precision: Precision) -> PathBuf {
        self.weights_dir().join(format!("{}{}.fmh", kind.name(), precision.suffix()))
    }
}
