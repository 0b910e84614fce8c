#!/usr/bin/env bash
# The thesis's experiments on cached features (issue 4): builds, sets up the weights, then runs
# `facemtl reproduce` (resumable: finished runs are read back) and writes results/REPORT.md,
# results/report.json and results/plots/. Extra arguments go to `facemtl reproduce`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/prepare.sh
"$FACEMTL_BIN" reproduce --runs-dir runs/reproduce --out results "$@"
