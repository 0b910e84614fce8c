//! BlazeBlock's shortcut: the block's input added to its branch.

use super::lanes::{F32x4, quads, quads_mut};

/// `y` `[side_out², out]` += the block's input `x` `[side², c]` (max-pooled 2x2 when
/// `side_out` is half of `side`; zero past its `c` channels), then ReLU.
pub fn add_shortcut(x: &[f32], side: usize, c: usize, y: &mut [f32], side_out: usize, out: usize) {
    let (x, y) = (quads(x), quads_mut(y));
    let (vectors_in, vectors_out) = (c / 4, out / 4);
    let pooled = side_out != side;
    let at = |row: usize, col: usize| (row * side + col) * vectors_in;
    for (p, pixel) in y.chunks_exact_mut(vectors_out).enumerate() {
        let (row, col) = (p / side_out, p % side_out);
        let (added, widened) = pixel.split_at_mut(vectors_in);
        if pooled {
            let (row, col) = (2 * row, 2 * col);
            let corners = [at(row, col), at(row, col + 1), at(row + 1, col), at(row + 1, col + 1)];
            for (j, o) in added.iter_mut().enumerate() {
                let [a, b, c, d] = corners.map(|i| F32x4::load(&x[i + j]));
                F32x4::load(o).add(a.max(b).max(c.max(d))).relu().store(o);
            }
        } else {
            for (j, o) in added.iter_mut().enumerate() {
                F32x4::load(o).add(F32x4::load(&x[at(row, col) + j])).relu().store(o);
            }
        }
        for o in widened {
            F32x4::load(o).relu().store(o);
        }
    }
}
