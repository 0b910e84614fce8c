//! What a fused layer's backward reads, its values laid out in NCHW order.

/// A layer's input, weight (or kernel), output `y` and the output's gradient, and whether its
/// input wants a gradient.
pub struct Saved<'a> {
    pub x: &'a [f32],
    pub weight: &'a [f32],
    pub y: &'a [f32],
    pub grad: &'a [f32],
    pub input_wanted: bool,
}

/// The input's gradient (when wanted), the weight's and the bias's.
pub type Gradients = (Option<Vec<f32>>, Vec<f32>, Vec<f32>);
