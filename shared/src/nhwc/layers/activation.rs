//! What follows a layer's sums.

use super::lanes::F32x4;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// Nothing (BlazeFace's depthwise convolutions, and layers whose shortcut is added first).
    Linear,
    Relu,
    /// min(max(x, 0), 6): faceres's.
    Relu6,
}

impl Activation {
    #[inline(always)]
    pub fn apply(self, v: F32x4) -> F32x4 {
        match self {
            Activation::Linear => v,
            Activation::Relu => v.relu(),
            Activation::Relu6 => v.relu6(),
        }
    }
}
