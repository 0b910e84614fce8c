//! The cache folder outside the repository: fetched packages, converted weights and their
//! ledger, shared by every command and surviving fresh clones.

mod converted;
mod paths;

pub use converted::{Converted, read_weights};
pub use paths::{Cache, default_dir};
