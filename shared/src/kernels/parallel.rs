//! Work spread over rayon's threads where the crate is built with it (the trainer), one thread
//! otherwise (the browser).

/// Scratch buffers a worker keeps from one task to the next.
#[derive(Debug, Default)]
pub struct Scratch {
    /// A depthwise plane's buffers.
    pub plane: super::planes::Scratch,
    /// A gradient that passed back through ReLU6.
    pub passed: Vec<f32>,
}

/// Runs `work(index, chunk, scratch)` on each `len`-sized chunk of `out`.
pub fn each_chunk(out: &mut [f32], len: usize, work: impl Fn(usize, &mut [f32], &mut Scratch) + Send + Sync) {
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(len)
            .enumerate()
            .for_each_init(Scratch::default, |scratch, (i, chunk)| work(i, chunk, scratch));
    }
    #[cfg(not(feature = "rayon"))]
    {
        let mut scratch = Scratch::default();
        out.chunks_mut(len).enumerate().for_each(|(i, chunk)| work(i, chunk, &mut scratch));
    }
}

/// Runs `work(index, chunk, sums, scratch)` for each of `count` tasks, where `chunk` is the
/// task's `len`-sized chunk of `out` (empty when `out` is) and `sums` running sums (`sums_len`
/// long) that each worker keeps for itself; returns them added together.
pub fn each_summing(
    count: usize,
    out: &mut [f32],
    len: usize,
    sums_len: usize,
    work: impl Fn(usize, &mut [f32], &mut [f32], &mut Scratch) + Send + Sync,
) -> Vec<f32> {
    let mut chunks: Vec<&mut [f32]> =
        if out.is_empty() { (0..count).map(|_| &mut [][..]).collect() } else { out.chunks_mut(len).collect() };
    assert_eq!(chunks.len(), count, "one chunk per task");
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        let add = |mut a: Vec<f32>, b: Vec<f32>| {
            a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
            a
        };
        chunks
            .par_iter_mut()
            .enumerate()
            .fold(
                || (vec![0.0; sums_len], Scratch::default()),
                |(mut sums, mut scratch), (i, chunk)| {
                    work(i, chunk, &mut sums, &mut scratch);
                    (sums, scratch)
                },
            )
            .map(|(sums, _)| sums)
            .reduce(|| vec![0.0; sums_len], add)
    }
    #[cfg(not(feature = "rayon"))]
    {
        let (mut sums, mut scratch) = (vec![0.0; sums_len], Scratch::default());
        chunks.iter_mut().enumerate().for_each(|(i, chunk)| work(i, chunk, &mut sums, &mut scratch));
        sums
    }
}
