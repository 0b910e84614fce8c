//! BlazeFace's blocks, apart from its network so that `bench/wasm-layers` can read them with no
//! Burn.

/// Channels and stride of each BlazeBlock, in order.
pub fn block_plan() -> Vec<(usize, usize, usize)> {
    let mut plan = vec![(24, 24, 1); 7];
    plan.push((24, 24, 2));
    plan.extend([(24, 24, 1); 7]);
    plan.push((24, 48, 2));
    plan.extend([(48, 48, 1); 7]);
    plan.push((48, 96, 2));
    plan.extend([(96, 96, 1); 7]);
    plan
}
