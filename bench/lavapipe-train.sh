#!/usr/bin/env bash
# The wgpu backend's training step on Mesa's lavapipe, a Vulkan driver that runs on the CPU
# (issue 28, "GPU readiness"): the same steps as the CPU backend's, from the same weights and
# batches (`bench train` draws them on the CPU from a seed), and how many GPU dispatches a step
# takes, a figure that does not depend on the device. It checks correctness, not speed.
# Needs Debian's mesa-vulkan-drivers. Writes bench/lavapipe-train.json.
# Usage (after scripts/run.sh or scripts/test.sh): bash bench/lavapipe-train.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
icd=$(ls /usr/share/vulkan/icd.d/lvp_icd.*.json 2>/dev/null | head -1)
[ -n "$icd" ] || { echo "no lavapipe: apt-get install mesa-vulkan-drivers" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# CubeCL logs every kernel it runs when its profiling logger is at "minimal"; it reads
# cubecl.toml from the working directory.
cat >"$work/cubecl.toml" <<TOML
[profiling.logger]
level = "minimal"
file = "$work/kernels.log"
append = true
TOML
out=bench/lavapipe-train.json
echo "[" >"$out.tmp"
first=1
for config in "blocks 2 8" "full 13 2"; do
  read -r mode blocks batch <<<"$config"
  for steps in 1 3; do
    for backend in cpu wgpu; do
      rm -f "$work/kernels.log"
      echo "$mode (blocks $blocks), batch $batch, $steps steps on $backend" >&2
      line=$(cd "$work" && VK_DRIVER_FILES=$icd timeout 1800 "$FACEMTL_BIN" --backend "$backend" bench train \
        --mode "$mode" --tune-blocks "$blocks" --batch "$batch" --warmup 0 --steps "$steps" --no-layers 2>/dev/null)
      kernels=$( [ -f "$work/kernels.log" ] && wc -l <"$work/kernels.log" || echo 0)
      [ $first = 1 ] || echo "," >>"$out.tmp"
      first=0
      echo "{\"run\": $line, \"kernel_log_lines\": $kernels}" >>"$out.tmp"
    done
  done
done
echo "]" >>"$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out" >&2
