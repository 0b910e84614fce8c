//! The order training sees its examples in, and its dropout: seeded, drawn on the host and
//! stable across crate versions, so that a seed names the same split, the same batches, the
//! same mirror views and the same dropped units forever, on every backend (a GPU's random
//! numbers differ from the CPU's, and a browser run must match a native one).

use crate::draws::{GOLDEN, mix, stream, unit};

/// A deterministic Fisher-Yates shuffle (SplitMix64).
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut next = stream(seed);
    for i in (1..items.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// The order in which an epoch visits `n` training examples (the session's batches are its
/// consecutive runs of the batch size).
pub fn epoch_order(seed: u64, epoch: usize, n: usize) -> Vec<i64> {
    let mut order: Vec<i64> = (0..n as i64).collect();
    shuffle(&mut order, seed.wrapping_mul(1000).wrapping_add(epoch as u64));
    order
}

/// Whether training example `index` is seen mirrored in `epoch` (the one augmentation, for
/// inputs that can be mirrored).
pub fn mirror_flag(seed: u64, epoch: usize, index: u64) -> bool {
    let mut x = seed ^ (epoch as u64).wrapping_mul(GOLDEN) ^ index.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    (x >> 40) & 1 == 1
}

/// Dropout's keep mask for head `head` in batch `batch` of `epoch`: `len` values, each 0 with
/// probability `p` and `1 / (1 - p)` otherwise (inverted dropout keeps the expected sum).
pub fn dropout_keep(seed: u64, epoch: usize, batch: usize, head: usize, len: usize, p: f64) -> Vec<f32> {
    let stream = [epoch, batch, head].iter().fold(mix(seed), |s, &n| mix(s ^ (n as u64).wrapping_add(GOLDEN)));
    let scale = (1.0 / (1.0 - p)) as f32;
    (0..len as u64)
        .map(|i| {
            let uniform = unit(mix(stream.wrapping_add(i.wrapping_mul(GOLDEN))));
            if uniform < p { 0.0 } else { scale }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropout_keeps_one_minus_p_of_the_units_scaled_and_the_same_for_a_seed() {
        let keep = dropout_keep(7, 3, 11, 1, 100_000, 0.5);
        let kept = keep.iter().filter(|&&k| k > 0.0).count() as f64 / keep.len() as f64;
        assert!((kept - 0.5).abs() < 0.01, "kept {kept}");
        assert!(keep.iter().all(|&k| k == 0.0 || k == 2.0));
        assert_eq!(keep, dropout_keep(7, 3, 11, 1, 100_000, 0.5));
        let quarter = dropout_keep(7, 3, 11, 1, 100_000, 0.25);
        let kept = quarter.iter().filter(|&&k| k > 0.0).count() as f64 / quarter.len() as f64;
        assert!((kept - 0.75).abs() < 0.01, "kept {kept}");
        // Another seed, epoch, batch or head drops other units.
        for other in [
            dropout_keep(8, 3, 11, 1, 1000, 0.5),
            dropout_keep(7, 4, 11, 1, 1000, 0.5),
            dropout_keep(7, 3, 12, 1, 1000, 0.5),
            dropout_keep(7, 3, 11, 2, 1000, 0.5),
        ] {
            let same = other.iter().zip(&keep).filter(|(a, b)| a == b).count();
            assert!((400..600).contains(&same), "{same} of 1000 alike");
        }
    }

    #[test]
    fn a_seed_names_the_same_shuffle_forever() {
        let mut items: Vec<u32> = (0..10).collect();
        shuffle(&mut items, 42);
        assert_eq!(items, [0, 9, 5, 8, 6, 4, 7, 2, 1, 3]);
    }
}
