//! Seeded draws from SplitMix64 (Steele, Lea and Flood): the same numbers on every platform, on
//! every backend and in every crate version, for training's order and dropout and for the
//! calibration floor's simulations.

/// SplitMix64's increment.
pub const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a well-mixed value for each input.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A mixed value's top 53 bits as a uniform number on [0, 1).
pub fn unit(z: u64) -> f64 {
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// The stream of mixed values from `seed`.
pub fn stream(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        state = state.wrapping_add(GOLDEN);
        mix(state)
    }
}

/// Uniform draws on [0, 1) from `seed`.
pub fn uniform_draws(seed: u64) -> impl FnMut() -> f64 {
    let mut next = stream(seed);
    move || unit(next())
}
