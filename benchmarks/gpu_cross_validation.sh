#!/usr/bin/env bash
# The accuracy work for a session that is lent a GPU, as one command on the device machine
# (run from the repository root there; see docs/benchmarks.md, "Training recipe and
# cross-validation"). Prepared here first, on this CPU:
#     semiconv data pack ../shared/data/bbbc010 data/bbbc010-train.npz          # 21 MB, git-ignored
#     python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#         --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl pycocotools platformdirs
# then run with carry [data, .whl]:
#     bash benchmarks/gpu_cross_validation.sh "0 1" 3      # folds 0 and 1 side by side, 3 trainings at once
# Runs go to runs/cv; cv.json, the log and the final model (with --final in EXTRA) are copied
# to $OUT when there is one (at most 8 files come back from the device).
set -euo pipefail
FOLDS=${1:-"0 1 2 3 4"}
PARALLEL=${2:-3}
CONFIG=${3:-benchmarks/configs/bbbc010-recipe.json}
EXTRA=${4:-}
RUNS=runs/cv
mkdir -p "$RUNS"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=src:${PYTHONPATH:-} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
start=$(date +%s)
python3 benchmarks/cross_validate.py --data data/bbbc010-train.npz --config "$CONFIG" --runs "$RUNS" \
  --folds $FOLDS --parallel "$PARALLEL" --device auto $EXTRA 2>&1 | tee "$RUNS/cv.log"
echo "wall time: $(( $(date +%s) - start )) s" | tee -a "$RUNS/cv.log"
if [ -n "${OUT:-}" ]; then
  cp "$RUNS/cv.json" "$RUNS/cv.log" "$OUT/"
  for f in "$RUNS"/fold*.log; do cat "$f"; done > "$OUT/train.log" 2>/dev/null || true
  if [ -f "$RUNS/final/weights.pt" ]; then cp "$RUNS/final/weights.pt" "$RUNS/final/config.json" "$OUT/"; fi
fi
