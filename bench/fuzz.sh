#!/usr/bin/env bash
# The long fuzzing run (BENCHMARKS.md "Fuzzing"): every fuzz target of shared/tests/fuzz/
# and trainer/tests/fuzz.rs with CASES cases each (default 20000), timed. A failure is kept by
# proptest in the tests' `.regressions` files, to be committed as a regression case.
# Usage: bash bench/fuzz.sh [CASES]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
export PROPTEST_CASES="${1:-20000}"
started=$(date +%s)
cargo test --release -p facemtl --test fuzz -- --test-threads 2
cargo test --release -p facemtl-trainer --test fuzz -- --test-threads 2
echo "fuzz: $PROPTEST_CASES cases per target, $(( $(date +%s) - started )) s" >&2
