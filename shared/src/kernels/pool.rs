//! The global average pool at the end of faceres on NCHW slices, forward and gradient, images
//! spread over the threads: Burn's two `mean_dim`s and their backward (an expansion and a scale
//! each) run as single-threaded tensor passes while the pool waits.

use super::parallel::each_chunk;

/// `[n, c]` = the mean of each `[h, w]` plane of `x` `[n, c, h, w]`.
pub fn forward(x: &[f32], [n, c, h, w]: [usize; 4]) -> Vec<f32> {
    let pixels = h * w;
    each_chunk(n, c, |image, means, _| {
        let planes = x[image * c * pixels..][..c * pixels].chunks_exact(pixels);
        means.iter_mut().zip(planes).for_each(|(mean, plane)| *mean = plane.iter().sum::<f32>() / pixels as f32);
    })
}

/// `[n, c, h, w]`: each plane's share of its mean's gradient `grad` `[n, c]`.
pub fn gradient(grad: &[f32], [n, c, h, w]: [usize; 4]) -> Vec<f32> {
    let pixels = h * w;
    each_chunk(n, c * pixels, |image, out, _| {
        let shares = grad[image * c..][..c].iter().map(|g| g / pixels as f32);
        out.chunks_exact_mut(pixels).zip(shares).for_each(|(plane, share)| plane.fill(share));
    })
}
