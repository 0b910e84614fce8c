#!/usr/bin/env bash
# On a lent GPU (wgpu on Vulkan), the one prepared GPU run: first the training pace beside
# PyTorch's on the same GPU (issue 28: `bench train` with fusion on, and off where
# .gpu/facemtl-nofusion.xz is carried, autotune off in both; bench/torch-train.py on CUDA in
# both layouts; $OUT/train-speed.jsonl), then faceres fine-tuned with the multi-task head on
# the CelebA subset, the run behind RESULTS.md's fine-tuned row.
#
# Expects, in the repo root: .gl/*.deb (the Vulkan loader, from Debian), .gpu/facemtl.xz (a
# stripped release build), .gpu/cache/weights/{blazeface.bpk,faceres.bpk.xz,converted.json}
# (from `facemtl setup`; converted.json holds the checksums the binary checks them against) and .gpu/data/celeba (the data set in its authors' layout). Writes logs, metrics,
# results and the exported model to $OUT.
set -uo pipefail
limit_s=${1:-300}
backend=${BACKEND:-wgpu}
if [ -z "${SKIP_GL:-}" ]; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd
export XDG_RUNTIME_DIR=/tmp FACEMTL_CACHE=/tmp/facemtl-cache
mkdir -p "$FACEMTL_CACHE/weights"
xz -dc .gpu/facemtl.xz >/tmp/facemtl && chmod +x /tmp/facemtl
cp .gpu/cache/weights/blazeface.bpk .gpu/cache/weights/converted.json "$FACEMTL_CACHE/weights/"
xz -dc .gpu/cache/weights/faceres.bpk.xz >"$FACEMTL_CACHE/weights/faceres.bpk"
nvidia-smi -L 2>/dev/null
nproc
xz -dc .gpu/facemtl-nofusion.xz >/tmp/facemtl-nofusion 2>/dev/null && chmod +x /tmp/facemtl-nofusion
for config in "full 32 1" "full 128 1" "blocks 256 1"; do
  read -r mode batch blocks <<<"$config"
  for bin in /tmp/facemtl /tmp/facemtl-nofusion; do
    [ -x "$bin" ] || continue
    line=$(timeout 180 "$bin" --backend "$backend" bench train --mode "$mode" --tune-blocks "$blocks" --batch "$batch" \
      --steps 10 --no-layers 2>/dev/null) && echo "{\"binary\": \"${bin##*/}\", \"run\": $line}" | tee -a "$OUT/train-speed.jsonl"
  done
  for layout in "" "--channels-last"; do
    timeout 180 python3 bench/torch-train.py --device cuda --threads "$(nproc)" --mode "$mode" --tune-blocks "$blocks" \
      --batch "$batch" --steps 10 $layout | tee -a "$OUT/train-speed.jsonl"
  done
done
run=/tmp/celeba-finetuned-faceres
rm -rf "$run"
start=$(date +%s.%N)
# shellcheck disable=SC2086 # EXTRA holds several flags (a smoke test here: "--limit 32")
/tmp/facemtl --backend "$backend" train --dataset celeba --backbone faceres --fine-tune --data-dir .gpu/data \
  --run-dir "$run" --max-epochs "${EPOCHS:-30}" --patience 3 --time-limit-s "$limit_s" ${EXTRA:-} 2>&1 |
  tr '\r' '\n' | grep -v '^$' | grep -v '^epochs ' | tee "$OUT/train.log" | tail -n 20
end=$(date +%s.%N)
echo "wall seconds: $(echo "$end - $start" | bc)" | tee -a "$OUT/train.log"
ls -la --time-style=+%s.%N "$run" | tee "$OUT/run-files.txt"
ls -la --time-style=+%s.%N "$run"/checkpoint-* >>"$OUT/run-files.txt" 2>/dev/null
cp "$run/config.json" "$run/metrics.csv" "$OUT/" 2>/dev/null
cp "$run/result.json" "$OUT/" 2>/dev/null
/tmp/facemtl export --run-dir "$run" --out "$OUT/celeba-finetuned-faceres.fmtl"
