#!/usr/bin/env bash
# Issue 28, point 5: faceres fine-tuned whole (`--recipe whole`: the thesis's learning rate 3e-5,
# learned loss weights and Early Freeze, the partial recipe's age head, 10 epochs), UTKFace all
# ages and the CORAL protocol, seeds 0-2, in the run folders `facemtl reproduce --whole-backbone`
# uses, so the report reads these runs back. Every run resumes from its last checkpoint when
# this script is run again (about 5 min an epoch for CORAL and 9 for all ages on a 2-core Xeon:
# hours in all), so it can be stopped at any time. Each finished run is exported on the
# browser's int8 weights and read on the validation faces of its own protocol and of CelebA,
# clean and in black and white (the figures models are chosen on), beside its run folder.
# Usage: results/full-finetune.sh [PROTOCOL...]   (FACEMTL_BIN, FACEMTL_DATA as for the tests)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${FACEMTL_BIN:-${CARGO_TARGET_DIR:-target}/release/facemtl}
protocols=("${@:-all-ages coral}")
for protocol in ${protocols[*]}; do
  for seed in 0 1 2; do
    run=runs/reproduce/utkface-$protocol/faceres/whole-seed$seed
    if [ ! -f "$run/result.json" ]; then
      resume=()
      compgen -G "$run/checkpoint-*" >/dev/null && resume=(--resume)
      "$bin" --backend cpu train --dataset utkface --protocol "$protocol" --recipe whole --seed "$seed" \
        --run-dir "$run" "${resume[@]}"
    fi
    [ -f "$run.fmtl" ] || "$bin" --backend cpu export --run-dir "$run" --out "$run.fmtl" --backbone-weights int8 --head-weights int8
    for look in clean bw; do
      for set in "utkface --protocol $protocol" celeba; do
        out=$run-${set%% *}-$look.json
        # shellcheck disable=SC2086 # the data set's flags are words
        [ -s "$out" ] || "$bin" --backend cpu eval --model "$run.fmtl" --split validation --look "$look" --dataset $set >"$out"
      done
    done
  done
done
