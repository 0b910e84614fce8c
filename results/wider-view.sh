#!/usr/bin/env bash
# The wider view of a model (issue "Right on photos unlike the training set"): its test
# figures on UTKFace (all ages) and CelebA, each photo seen clean and five other ways before
# detection (black-and-white, a small face, JPEG quality 20, darker, over-exposed), one JSON
# object per data set and look in results/wider-view-<model>.jsonl. A model trained on one
# set is scored on the other by the labels they share (gender, and Young against age < 30).
# Usage: results/wider-view.sh MODEL [LOOK...]   (FACEMTL_BIN, FACEMTL_DATA as for the tests)
set -euo pipefail
cd "$(dirname "$0")/.."
model=$1
shift
looks=("${@:-clean bw small jpeg dark bright}")
bin=${FACEMTL_BIN:-${CARGO_TARGET_DIR:-target}/release/facemtl}
out=results/wider-view-$(basename "${model%.fmtl}").jsonl
: >"$out.partial"
for look in ${looks[*]}; do
  for set in "utkface --protocol all-ages" "celeba"; do
    # shellcheck disable=SC2086 # the data set's flags are words
    figures=$("$bin" --backend cpu eval --model "$model" --look "$look" --dataset $set)
    jq -c --arg look "$look" --arg set "${set%% *}" '{data_set: $set, look: $look, figures: .}' <<<"$figures" >>"$out.partial"
  done
done
mv "$out.partial" "$out"
echo "wrote $out"
