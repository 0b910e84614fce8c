#!/usr/bin/env bash
# Regenerates tests/golden/golden.json: decoded inputs from Rust, reference outputs from TF.js.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/env.sh
export GOLDEN_INPUTS="$FACEMTL_CACHE/golden-inputs"
cargo test --release -p facemtl-trainer --test golden -- --ignored write_golden_inputs
(cd tests/golden && npm ci --no-audit --no-fund)
node tests/golden/make_golden.mjs "$GOLDEN_INPUTS" "$FACEMTL_CACHE" tests/golden/golden.json
