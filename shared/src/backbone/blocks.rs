//! faceres's block table, apart from its network so that `bench/wasm-layers` can read it
//! with no Burn.

/// Output channels and depthwise stride of the 13 depthwise-separable blocks.
pub const BLOCKS: [(usize, usize); 13] = [
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
];
