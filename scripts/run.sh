#!/usr/bin/env bash
# Sets everything up on a fresh machine and runs the main job: build, fetch and convert the
# pretrained weights, then find and describe every face in the sample photos.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
source scripts/tools.sh
cargo build --release -p facemtl-trainer
"$FACEMTL_BIN" setup
"$FACEMTL_BIN" detect "$FACEMTL_CACHE"/npm/@vladmandic/face-api/package/demo/sample*.jpg
