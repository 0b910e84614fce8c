//! Work spread over rayon's threads where the crate is built with it (the trainer), one thread
//! otherwise (the browser).

/// Runs `work(index, chunk, scratch)` on each `len`-sized chunk of `out`, each worker with a
/// scratch buffer of its own.
pub fn each_chunk(out: &mut [f32], len: usize, work: impl Fn(usize, &mut [f32], &mut Vec<f32>) + Send + Sync) {
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(len).enumerate().for_each_init(Vec::new, |scratch, (i, chunk)| work(i, chunk, scratch));
    }
    #[cfg(not(feature = "rayon"))]
    {
        let mut scratch = Vec::new();
        out.chunks_mut(len).enumerate().for_each(|(i, chunk)| work(i, chunk, &mut scratch));
    }
}

/// Runs `work(index, a_chunk, b_chunk)` on the `a_len`-sized chunks of `a` beside the `b_len`-sized
/// chunks of `b`: two outputs written together, chunk by chunk.
pub fn each_pair<A: Send, B: Send>(
    a: &mut [A],
    a_len: usize,
    b: &mut [B],
    b_len: usize,
    work: impl Fn(usize, &mut [A], &mut [B]) + Send + Sync,
) {
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        a.par_chunks_mut(a_len).zip(b.par_chunks_mut(b_len)).enumerate().for_each(|(i, (a, b))| work(i, a, b));
    }
    #[cfg(not(feature = "rayon"))]
    a.chunks_mut(a_len).zip(b.chunks_mut(b_len)).enumerate().for_each(|(i, (a, b))| work(i, a, b));
}

/// Σ over `0..count` of what `add(i, sum)` adds into a `len`-long sum: each worker keeps a sum of
/// its own, added together at the end.
pub fn sum_over(count: usize, len: usize, add: impl Fn(usize, &mut [f32]) + Send + Sync) -> Vec<f32> {
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        (0..count)
            .into_par_iter()
            .fold(
                || vec![0.0; len],
                |mut sum, i| {
                    add(i, &mut sum);
                    sum
                },
            )
            .reduce(
                || vec![0.0; len],
                |mut a, b| {
                    a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                    a
                },
            )
    }
    #[cfg(not(feature = "rayon"))]
    {
        let mut sum = vec![0.0; len];
        (0..count).for_each(|i| add(i, &mut sum));
        sum
    }
}
