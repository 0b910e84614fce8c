//! Float sums the compiler can vectorise: a sum in one running total cannot be (each addition
//! waits for the last), eight independent running sums can.

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a_blocks, b_blocks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_blocks.remainder().iter().zip(b_blocks.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a_blocks.zip(b_blocks) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

pub fn sum(values: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let blocks = values.chunks_exact(8);
    let tail: f32 = blocks.remainder().iter().sum();
    for block in blocks {
        for i in 0..8 {
            lanes[i] += block[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}
