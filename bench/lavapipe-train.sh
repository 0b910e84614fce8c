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
# CubeCL logs every kernel it runs when its profiling logger is at "minimal"; it reads
# cubecl.toml from the working directory.
cat >"$work/cubecl.toml" <<TOML
[profiling.logger]
level = "minimal"
file = "$work/kernels.log"
append = true
TOML
runs=$(mktemp)
trap 'rm -rf "$work" "$runs"' EXIT
for config in "blocks 2 8" "full 13 2"; do
  read -r mode blocks batch <<<"$config"
  for steps in 1 3; do
    for backend in cpu wgpu; do
      rm -f "$work/kernels.log"
      echo "$mode (blocks $blocks), batch $batch, $steps steps on $backend" >&2
      line=$(cd "$work" && VK_DRIVER_FILES=$icd timeout 1800 "$FACEMTL_BIN" --backend "$backend" bench train \
        --mode "$mode" --tune-blocks "$blocks" --batch "$batch" --warmup 0 --steps "$steps" --no-layers 2>/dev/null)
      kernels=0
      [ -f "$work/kernels.log" ] && kernels=$(wc -l <"$work/kernels.log")
      echo "{\"steps\": $steps, \"kernels\": $kernels, \"run\": $line}" >>"$runs"
    done
  done
done
# Per configuration: the losses of the 3-step runs side by side, their largest relative gap,
# and the kernels a step dispatches on wgpu (the 3-step run's less the 1-step run's, halved:
# what the device and model set-up dispatch once cancels out).
python3 - "$runs" >bench/lavapipe-train.json <<'PY'
import json, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
rows = []
for mode in dict.fromkeys(r["run"]["mode"] for r in runs):
    of = lambda backend, steps: next(r for r in runs if r["run"]["mode"] == mode and r["steps"] == steps and r["run"]["backend"].startswith(backend))
    cpu, gpu = of("cpu", 3)["run"], of("gpu", 3)["run"]
    gaps = [abs(a - b) / abs(a) for a, b in zip(cpu["losses"], gpu["losses"])]
    rows.append({
        "mode": mode, "tune_blocks": cpu["tune_blocks"], "batch": cpu["batch"], "wgpu": gpu["backend"],
        "cpu_losses": cpu["losses"], "wgpu_losses": gpu["losses"], "largest_relative_gap": max(gaps),
        "dispatches_per_step": (of("gpu", 3)["kernels"] - of("gpu", 1)["kernels"]) / 2,
        "wgpu_step_ms": gpu["step_ms"],
    })
print(json.dumps({"rows": rows}, indent=1))
PY
echo "wrote bench/lavapipe-train.json" >&2
