#!/usr/bin/env bash
# Sets everything up on a fresh machine and runs the main job: build, fetch and convert the
# pretrained weights, predict gender, age and race of every face in the sample group photos
# with the shipped model (models/utkface-celeba-faceres.fmtl) as JSON lines, then build the
# browser app and serve it on 127.0.0.1 (PORT, default 8080) until stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/prepare.sh
"$FACEMTL_BIN" predict --model models/utkface-celeba-faceres.fmtl \
  "$FACEMTL_CACHE"/npm/@vladmandic/face-api/package/demo/sample*.jpg
source scripts/web.sh
web_tools
web_build
exec node web/serve.mjs dist "${PORT:-8080}"
