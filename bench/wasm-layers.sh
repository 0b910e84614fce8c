#!/usr/bin/env bash
# The browser's packed CPU kernels (shared/src/nhwc/layers) timed under Node's V8, layer kind by
# layer kind, for faceres (one 224x224 crop) and BlazeFace (one 256x256 view), on random weights:
# writes bench/wasm-layers.jsonl. BENCHMARKS.md "Packed kernels for the CPU fallback".
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
export CARGO_TARGET_DIR="$FACEMTL_CACHE/target-wasm-layers"
RUSTFLAGS="-C target-feature=+simd128" cargo build --quiet --release --target wasm32-unknown-unknown \
  --manifest-path bench/wasm-layers/Cargo.toml
node bench/wasm-layers/run.mjs "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/wasm_layers.wasm" | tee bench/wasm-layers.jsonl
