//! The order training sees its examples in: seeded, and stable across crate versions, so that
//! a seed names the same split, the same batches and the same mirror views forever (and a
//! browser run matches a native one).

/// A deterministic Fisher-Yates shuffle (SplitMix64).
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

/// Whether training example `index` is seen mirrored in `epoch` (the one augmentation, for
/// inputs that can be mirrored).
pub fn mirror_flag(seed: u64, epoch: usize, index: u64) -> bool {
    let mut x = seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    (x >> 40) & 1 == 1
}
