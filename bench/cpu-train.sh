#!/usr/bin/env bash
# facemtl's training pace beside PyTorch's on this CPU, in one run, alternating (BENCHMARKS.md
# "Training speed"), and the whole network's forward pace (inference, batch 32): for each
# configuration, `facemtl bench train`, then bench/torch-train.py in
# PyTorch's two layouts (NCHW and channels-last; the better one counts), the whole round
# $REPEATS times (3), each figure the median of its repeats (PyTorch's pace alone varies by a
# third from one 5-step run to the next on this machine). Writes
# bench/train-speed.json: per configuration `facemtl_img_s`, `pytorch_img_s` and
# `ratio` = facemtl / PyTorch (higher is better), with the machine.
# PyTorch comes from PyPI into a venv under $FACEMTL_CACHE (about 5 GB, once); nothing else of
# the project needs it. Usage (after scripts/run.sh or scripts/test.sh): bash bench/cpu-train.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
venv="$FACEMTL_CACHE/torch-venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "installing PyTorch from PyPI into $venv (once)" >&2
  python3 -m venv "$venv" && "$venv/bin/pip" install --quiet torch
fi
runs=$(mktemp)
trap 'rm -f "$runs"' EXIT
for round in $(seq "${REPEATS:-3}"); do
  for config in "full 16 1" "full 32 1" "blocks 64 1" "blocks 64 2" "head 64 1" "inference 32 1"; do
    read -r mode batch blocks <<<"$config"
    echo "round $round: $mode, batch $batch (blocks: $blocks)" >&2
    "$FACEMTL_BIN" --backend cpu bench train --mode "$mode" --tune-blocks "$blocks" --batch "$batch" --steps 5 2>/dev/null >>"$runs"
    for layout in "" "--channels-last"; do
      "$venv/bin/python" bench/torch-train.py --mode "$mode" --tune-blocks "$blocks" --batch "$batch" --steps 5 $layout >>"$runs"
    done
  done
done
python3 - "$runs" >bench/train-speed.json <<'PY'
import json, os, platform, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
ours = [r for r in runs if "backend" in r]
theirs = [r for r in runs if "torch" in r]
def key(r):
    return (r["mode"], r["tune_blocks"] if r["mode"] == "blocks" else None, r["batch"])
def median(values):
    values = sorted(values)
    return values[len(values) // 2]
rows = []
for k in dict.fromkeys(key(r) for r in ours):
    mine = [r for r in ours if key(r) == k]
    speed = median([r["images_per_second"] for r in mine])
    r = next(r for r in mine if r["images_per_second"] == speed)
    peers = [t for t in theirs if key(t) == k]
    by_layout = {l: median([t["images_per_second"] for t in peers if t["layout"] == l]) for l in dict.fromkeys(t["layout"] for t in peers)}
    layout = max(by_layout, key=by_layout.get)
    rows.append({
        "mode": r["mode"], "tune_blocks": r["tune_blocks"], "batch": r["batch"],
        "facemtl_img_s": round(speed, 1),
        "pytorch_img_s": round(by_layout[layout], 1), "pytorch_layout": layout,
        "pytorch_by_layout": {l: round(v, 1) for l, v in by_layout.items()},
        "ratio": round(speed / by_layout[layout], 2),
        "repeats": len(mine),
        "facemtl_runs": [round(m["images_per_second"], 1) for m in mine],
        "pytorch_runs": {l: [round(t["images_per_second"], 1) for t in peers if t["layout"] == l] for l in by_layout},
        "facemtl_step": {k: r[k] for k in ("step_ms", "gradients_ms", "optimiser_ms", "data_ms", "layers")},
    })
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print(json.dumps({"machine": {"cpu": cpu, "cores": os.cpu_count()}, "torch": theirs[0]["torch"], "rows": rows}, indent=1))
PY
echo "wrote bench/train-speed.json" >&2
