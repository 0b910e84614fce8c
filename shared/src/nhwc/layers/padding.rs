//! SAME padding as Burn places it.

/// The padding before the first row (or column) of a SAME convolution: half of what is
/// needed, rounded down, the rest after the last.
pub fn same_padding_before(kernel: usize, stride: usize, side: usize) -> usize {
    let needed = (side.div_ceil(stride) - 1) * stride + kernel;
    needed.saturating_sub(side) / 2
}
