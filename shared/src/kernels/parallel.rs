//! Work spread over rayon's threads where the crate is built with it (the trainer), one thread
//! otherwise (the browser).
//!
//! Each task fills its own chunk of a new buffer. The chunk is zeroed by the thread that fills it,
//! just before: a layer's outputs and gradients run to tens of MB, and the trainer keeps the
//! memory it frees (no fresh zeroed pages from the system), so a `vec![0.0; len]` would be a
//! memset of the whole buffer that the calling thread runs alone while the pool waits (80 ms of a
//! 593 ms full fine-tuning step of 16, perf). Zeroed by the workers, chunk by chunk, it no
//! longer holds the pool up.

use std::mem::MaybeUninit;

/// Scratch buffers a worker keeps from one task to the next.
#[derive(Debug, Default)]
pub struct Scratch {
    /// A depthwise plane's buffers.
    pub plane: super::planes::Scratch,
    /// A depthwise block's buffers (eight small planes).
    pub block: super::blocks::Scratch,
    /// A gradient that passed back through ReLU6.
    pub passed: Vec<f32>,
    /// An image's columns for a full 3x3 convolution, or their gradient.
    pub columns: Vec<f32>,
}

/// A new buffer of `count` chunks of `len` values, each zeroed, then filled by
/// `work(index, chunk, scratch)`.
pub fn each_chunk(count: usize, len: usize, work: impl Fn(usize, &mut [f32], &mut Scratch) + Send + Sync) -> Vec<f32> {
    let mut out = Vec::with_capacity(count * len);
    let chunks = chunks(&mut out, count, len);
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        chunks
            .into_par_iter()
            .enumerate()
            .for_each_init(Scratch::default, |scratch, (i, chunk)| work(i, zeroed(chunk), scratch));
    }
    #[cfg(not(feature = "rayon"))]
    {
        let mut scratch = Scratch::default();
        chunks.into_iter().enumerate().for_each(|(i, chunk)| work(i, zeroed(chunk), &mut scratch));
    }
    // SAFETY: every chunk of the first `count * len` values was zeroed above.
    unsafe { out.set_len(count * len) };
    out
}

/// Runs `work(index, chunk, sums, scratch)` for each of `count` tasks, where `chunk` is the
/// task's zeroed `len`-sized chunk of a new buffer (empty when `len` is 0) and `sums` running
/// sums (`sums_len` long) that each worker keeps for itself; returns the buffer and the sums
/// added together.
pub fn each_summing(
    count: usize,
    len: usize,
    sums_len: usize,
    work: impl Fn(usize, &mut [f32], &mut [f32], &mut Scratch) + Send + Sync,
) -> (Vec<f32>, Vec<f32>) {
    let mut out = Vec::with_capacity(count * len);
    let chunks = chunks(&mut out, count, len);
    #[cfg(feature = "rayon")]
    let sums = {
        use rayon::prelude::*;
        let add = |mut a: Vec<f32>, b: Vec<f32>| {
            a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
            a
        };
        chunks
            .into_par_iter()
            .enumerate()
            .fold(
                || (vec![0.0; sums_len], Scratch::default()),
                |(mut sums, mut scratch), (i, chunk)| {
                    work(i, zeroed(chunk), &mut sums, &mut scratch);
                    (sums, scratch)
                },
            )
            .map(|(sums, _)| sums)
            .reduce(|| vec![0.0; sums_len], add)
    };
    #[cfg(not(feature = "rayon"))]
    let sums = {
        let (mut sums, mut scratch) = (vec![0.0; sums_len], Scratch::default());
        chunks.into_iter().enumerate().for_each(|(i, chunk)| work(i, zeroed(chunk), &mut sums, &mut scratch));
        sums
    };
    // SAFETY: every chunk of the first `count * len` values was zeroed above.
    unsafe { out.set_len(count * len) };
    (out, sums)
}

/// The first `count * len` values of `out`'s spare room, as `count` chunks (empty ones when
/// `len` is 0).
fn chunks(out: &mut Vec<f32>, count: usize, len: usize) -> Vec<&mut [MaybeUninit<f32>]> {
    if len == 0 {
        return (0..count).map(|_| &mut [][..]).collect();
    }
    out.spare_capacity_mut()[..count * len].chunks_mut(len).collect()
}

/// `chunk` with every value 0.0.
fn zeroed(chunk: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: all-zero bytes are the f32 0.0, so once written every value is an initialised f32,
    // and the slice keeps `chunk`'s pointer, length and exclusive borrow.
    unsafe {
        std::ptr::write_bytes(chunk.as_mut_ptr(), 0, chunk.len());
        &mut *(chunk as *mut [MaybeUninit<f32>] as *mut [f32])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_chunk_starts_from_zeros_and_keeps_its_order() {
        let out = each_chunk(4, 3, |i, chunk, _| {
            assert!(chunk.iter().all(|&v| v == 0.0));
            chunk[i % 3] = i as f32 + 1.0;
        });
        assert_eq!(out, [1.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 3.0, 4.0, 0.0, 0.0]);
    }

    #[test]
    fn each_summing_adds_every_workers_sums_with_or_without_a_buffer() {
        let (out, sums) = each_summing(5, 2, 2, |i, chunk, sums, _| {
            chunk[1] = i as f32;
            sums[0] += 1.0;
            sums[1] += i as f32;
        });
        assert_eq!(out, [0.0, 0.0, 0.0, 1.0, 0.0, 2.0, 0.0, 3.0, 0.0, 4.0]);
        assert_eq!(sums, [5.0, 10.0]);
        let (out, sums) = each_summing(3, 0, 1, |_, chunk, sums, _| {
            assert!(chunk.is_empty());
            sums[0] += 2.0;
        });
        assert!(out.is_empty());
        assert_eq!(sums, [6.0]);
    }
}
