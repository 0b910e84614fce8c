//! Matrix products on strided views of slices, through the `gemm` crate (the one Burn's Flex
//! backend uses): a transposed operand is a view, never a copy, and a product can add into its
//! destination, which sums a weight gradient over a batch without a `[batch, out, in]` buffer.

/// A matrix view: element (i, j) at `data[i * row_stride + j * col_stride]`.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> View<'a> {
    /// The first `rows * cols` values of `data`, row after row.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert!(data.len() >= rows * cols, "a {rows}x{cols} matrix in {} values", data.len());
        View { data, rows, cols, row_stride: cols, col_stride: 1 }
    }

    pub fn transposed(self) -> Self {
        View { rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride, ..self }
    }
}

/// Which threads one product runs on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threads {
    /// The calling thread (the caller spreads products over the threads).
    One,
    /// All of rayon's, inside gemm, where the crate is built with rayon.
    All,
}

/// `out` (`lhs.rows x rhs.cols`, row after row) = lhs · rhs, or += lhs · rhs when `accumulate`.
pub fn matmul(out: &mut [f32], lhs: View, rhs: View, accumulate: bool, threads: Threads) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(k, rhs.rows, "inner sizes");
    assert_eq!(out.len(), m * n, "destination size");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            out.fill(0.0);
        }
        return;
    }
    // SAFETY: `out` holds m x n values row after row, and its borrow keeps it alive and
    // exclusive for the call.
    unsafe { gemm_into(out.as_mut_ptr(), lhs, rhs, accumulate, threads) }
}

/// A new `lhs.rows x rhs.cols` matrix, row after row, = lhs · rhs. gemm writes every value
/// without reading the destination first, so the new buffer is not zeroed: a pass over several
/// MB a layer on one thread while the others wait (the side-by-side products, BENCHMARKS.md
/// stop 45).
pub fn product(lhs: View, rhs: View, threads: Threads) -> Vec<f32> {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(k, rhs.rows, "inner sizes");
    if m == 0 || n == 0 || k == 0 {
        return vec![0.0; m * n];
    }
    let mut out = Vec::with_capacity(m * n);
    // SAFETY: `out`'s allocation holds m x n values; gemm writes each of them once without
    // reading it (`accumulate` false), so all are initialised when the length is set.
    unsafe {
        gemm_into(out.as_mut_ptr(), lhs, rhs, false, threads);
        out.set_len(m * n);
    }
    out
}

/// gemm's product of the views into `out`, m x n values row after row (m, n and k all nonzero).
///
/// # Safety
/// `out` must be valid for writes of `lhs.rows * rhs.cols` values (and reads when `accumulate`),
/// and not overlap the views.
unsafe fn gemm_into(out: *mut f32, lhs: View, rhs: View, accumulate: bool, threads: Threads) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    // SAFETY: the views' constructors checked that every (i, j) they describe lies inside their
    // slices, and the caller vouches for `out`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out,
            1,
            n as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism(threads),
        );
    }
}

fn parallelism(threads: Threads) -> gemm::Parallelism {
    match threads {
        #[cfg(feature = "rayon")]
        Threads::All => gemm::Parallelism::Rayon(0),
        _ => gemm::Parallelism::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_of_views_and_their_transposes_add_up_as_written() {
        // a = [[1, 2, 3], [4, 5, 6]], b = [[1, 0], [0, 1], [1, 1]]
        let (a, b) = ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [1.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
        let mut ab = vec![0.0; 4];
        matmul(&mut ab, View::rows(&a, 2, 3), View::rows(&b, 3, 2), false, Threads::One);
        assert_eq!(ab, [4.0, 5.0, 10.0, 11.0]);
        assert_eq!(product(View::rows(&a, 2, 3), View::rows(&b, 3, 2), Threads::All), ab);
        matmul(&mut ab, View::rows(&a, 2, 3), View::rows(&b, 3, 2), true, Threads::All);
        assert_eq!(ab, [8.0, 10.0, 20.0, 22.0]);
        // aᵀ a: 3x3 from a's columns.
        let mut ata = vec![0.0; 9];
        matmul(&mut ata, View::rows(&a, 2, 3).transposed(), View::rows(&a, 2, 3), false, Threads::One);
        assert_eq!(ata, [17.0, 22.0, 27.0, 22.0, 29.0, 36.0, 27.0, 36.0, 45.0]);
    }
}
