//! The data sets, read in their authors' layouts, as labelled samples split into train,
//! validation and test. Malformed rows and missing images are skipped and counted, never fatal.

pub mod celeba;
pub mod utkface;

use std::path::PathBuf;

use facemtl::mtl::Task;
use serde::{Deserialize, Serialize};

/// What is known of one face image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub file: PathBuf,
    /// 0 male, 1 female.
    pub gender: u8,
    /// Age in years, when the data set gives it.
    pub age_years: Option<f32>,
    /// The regression target for age (the protocol's normalisation).
    pub age_target: Option<f32>,
    /// 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others.
    pub race: Option<u8>,
    /// 1 young, 0 old.
    pub young: Option<u8>,
}

impl Sample {
    /// The class index of a classification task.
    pub fn class(&self, task: Task) -> Option<u8> {
        match task {
            Task::Gender => Some(self.gender),
            Task::Race => self.race,
            Task::Young => self.young,
            Task::Age => None,
        }
    }
}

/// A data set split three ways, with what was skipped while reading it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Splits {
    pub train: Vec<Sample>,
    pub val: Vec<Sample>,
    pub test: Vec<Sample>,
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    pub entry: String,
    pub reason: String,
}

impl Splits {
    /// Print the one warning line a run shows about skipped entries.
    pub fn warn_skipped(&self, name: &str) {
        if !self.skipped.is_empty() {
            let examples: Vec<_> = self.skipped.iter().take(3).map(|s| format!("{} ({})", s.entry, s.reason)).collect();
            eprintln!("warning: {name}: skipped {} entries, e.g. {}", self.skipped.len(), examples.join(", "));
        }
    }
}

/// A deterministic Fisher-Yates shuffle (SplitMix64), stable across crate versions so that
/// a seed names the same split forever.
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for i in (1..items.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// Shuffle with `seed` and cut at the given fractions: (first, second, rest).
pub fn split3<T>(mut items: Vec<T>, seed: u64, first: f64, second: f64) -> (Vec<T>, Vec<T>, Vec<T>) {
    shuffle(&mut items, seed);
    let n = items.len();
    let a = (n as f64 * first).round() as usize;
    let b = ((n as f64 * (first + second)).round() as usize).min(n);
    let rest = items.split_off(b);
    let second = items.split_off(a);
    (items, second, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_always_gives_the_same_split_and_loses_nothing() {
        let (a, b, c) = split3((0..100).collect::<Vec<_>>(), 7, 0.8, 0.1);
        assert_eq!((a.len(), b.len(), c.len()), (80, 10, 10));
        let (a2, ..) = split3((0..100).collect::<Vec<_>>(), 7, 0.8, 0.1);
        assert_eq!(a, a2);
        let mut all: Vec<_> = a.iter().chain(&b).chain(&c).copied().collect();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        let (other, ..) = split3((0..100).collect::<Vec<_>>(), 8, 0.8, 0.1);
        assert_ne!(a, other);
    }
}
