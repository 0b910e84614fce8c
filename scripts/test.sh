#!/usr/bin/env bash
# Runs every test: builds (cached), fetches and converts the pretrained weights (cached),
# then the workspace's tests on the real data sets in $FACEMTL_DATA.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
source scripts/tools.sh
echo "cache: $FACEMTL_CACHE  data: $FACEMTL_DATA"
cargo build --release -p facemtl-trainer
"$FACEMTL_BIN" setup
cargo test --release
# The shared library must build for the browser, with WebGPU (wgpu) and the CPU backend.
CARGO_TARGET_DIR="$FACEMTL_CACHE/target-wasm" cargo build --release --target wasm32-unknown-unknown -p facemtl-web
echo "wasm32 build of the shared library and the web crate (WebGPU + CPU backends): ok"
