#!/usr/bin/env bash
# The accuracy work on a GPU, as one command on the device machine (H100/H200), run from the
# repository root there (docs/benchmarks.md, "Training recipe and cross-validation"):
#   1. the 5 fold trainings and the all-wells training of CONFIG side by side (PARALLEL at a time;
#      the recipe's max_minutes bounds each), 2. the all-wells model's weights (float16, in parts
#      under 16 MiB) to $OUT, 3. the out-of-fold evaluation (thresholds from pooled out-of-fold
#      outputs, per-fold and pooled metrics, census, shifted copy) with WORKERS processes; cv.json
#      and the final config (with those thresholds) to $OUT, 4. GPU inference throughput
#      (benchmarks/gpu_speed.py), 5. if 100 s are left, the fine-tuning benchmark on the GPU
#      (benchmarks/finetune_domain_shift.py, seed 0), logs. Each phase is cut off so that the
#      whole stays inside BUDGET s (lower the recipe's max_minutes to leave room for phase 5).
# Prepared here first, on the CPU (and tested small: TEST=1 bash benchmarks/gpu_cross_validation.sh):
#     semiconv data pack ../shared/data/bbbc010 data/bbbc010-train.npz          # 21 MB, git-ignored
#     python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#         --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl pycocotools platformdirs
# then on the device, with carry [data, .whl]:   bash benchmarks/gpu_cross_validation.sh
set -uo pipefail
CONFIG=${1:-benchmarks/configs/bbbc010-recipe.json}
PARALLEL=${2:-6}
WORKERS=${3:-14}
BUDGET=${4:-575}
DATA=${DATA:-data/bbbc010-train.npz}
RUNS=${RUNS:-runs/cv}
OUT=${OUT:-$RUNS/out}
DEVICE=${DEVICE:-cuda}
begin=$(date +%s)
left() { echo $(( BUDGET - ($(date +%s) - begin) )); }
mkdir -p "$RUNS" "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=src:${PYTHONPATH:-} PYTHONUNBUFFERED=1
exec > >(tee -a "$OUT/device.log") 2>&1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import sys, torch, torchvision, numpy; print(sys.version.split()[0], torch.__version__, torchvision.__version__, numpy.__version__, torch.cuda.is_available())"
echo "cpus: $(nproc)"

echo "== 1. trainings ($(left) s left)"
timeout $(( $(left) - 150 )) python3 benchmarks/cross_validate.py --data "$DATA" --config "$CONFIG" --runs "$RUNS" --final \
  --parallel "$PARALLEL" --threads 1 --device "$DEVICE" --train-only
echo "trainings: exit $?, $(( $(date +%s) - begin )) s"

echo "== 2. final weights ($(left) s left)"
if [ -f "$RUNS/final/weights.pt" ]; then
  python3 - "$RUNS/final/weights.pt" "$OUT/final_weights_fp16.pt" <<'PY'
import sys, torch
state = torch.load(sys.argv[1], map_location="cpu")
torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, sys.argv[2])
PY
  split -b 15m -d "$OUT/final_weights_fp16.pt" "$OUT/final_weights_fp16.pt.part" && rm "$OUT/final_weights_fp16.pt"
  cp "$RUNS/final/config.json" "$OUT/final_config.json"
  ls -la "$OUT"
fi

echo "== 3. out-of-fold evaluation ($(left) s left)"
timeout $(( $(left) - 40 )) python3 benchmarks/cross_validate.py --data "$DATA" --config "$CONFIG" --runs "$RUNS" --final --evaluate-only \
  --workers "$WORKERS" --threads 1 --device "$DEVICE"
echo "evaluation: exit $?, $(( $(date +%s) - begin )) s"
cp "$RUNS/cv.json" "$OUT/" 2>/dev/null
[ -f "$RUNS/final/config.json" ] && cp "$RUNS/final/config.json" "$OUT/final_config.json"

echo "== 4. GPU speed ($(left) s left)"
if [ -f "$RUNS/final/weights.pt" ]; then
  timeout $(( $(left) > 50 ? 45 : $(left) - 5 )) python3 benchmarks/gpu_speed.py --model "$RUNS/final" --data "$DATA" --device "$DEVICE" --repeats 3 | tee "$OUT/gpu_speed.json"
fi

echo "== 5. fine-tuning on a GPU, if time is left ($(left) s left)"
if [ "$(left)" -ge 100 ]; then
  timeout $(( $(left) - 10 )) python3 benchmarks/finetune_domain_shift.py --data "$DATA" --device "$DEVICE" --seeds 0 | tee "$OUT/finetune_gpu.json"
fi

tar czf "$OUT/logs.tar.gz" "$RUNS"/*.log "$RUNS"/*/log.jsonl 2>/dev/null
echo "done in $(( $(date +%s) - begin )) s"
