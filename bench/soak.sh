#!/usr/bin/env bash
# Soak runs (BENCHMARKS.md "Soak"), after scripts/test.sh has built everything:
#   browser: the browser test's soak with the webcam running for 5 minutes (CI runs 1), its
#            figures (wasm memory along the way, frame rate) in bench/soak-browser.json;
#   native:  `facemtl predict` over every UTKFace photo in one process, with its peak RSS and
#            wall time in bench/soak-native.json.
# Usage: bash bench/soak.sh [browser|native|both]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
what="${1:-both}"
if [ "$what" != native ]; then
  (cd tests/browser && FACEMTL_BIN="$FACEMTL_BIN" FACEMTL_SOAK_WEBCAM_S=300 \
    node --test --test-name-pattern=soak app.test.mjs)
  cp tests/browser/artifacts/soak.json bench/soak-browser.json
fi
if [ "$what" != browser ]; then
  photos="$FACEMTL_DATA/utkface/UTKFace"
  log=$(mktemp)
  started=$(date +%s)
  /usr/bin/time -v "$FACEMTL_BIN" --backend cpu predict --model models/utkface-celeba-faceres.fmtl "$photos" \
    2>"$log" | awk '/"error"/ { e++ } !/"error"/ { f++ } END { print f + 0, e + 0 }' >"$log.counts"
  read -r faces errors <"$log.counts"
  rss_kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$log")
  cat >bench/soak-native.json <<JSON
{
  "command": "facemtl --backend cpu predict --model models/utkface-celeba-faceres.fmtl \$FACEMTL_DATA/utkface/UTKFace",
  "photos": $(find "$photos" -name '*.jpg' | wc -l),
  "face_lines": $faces,
  "error_lines": $errors,
  "peak_rss_mb": $((rss_kb / 1024)),
  "wall_seconds": $(( $(date +%s) - started ))
}
JSON
  cat bench/soak-native.json
fi
