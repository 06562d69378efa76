#!/usr/bin/env bash
# The issue-19 GPU comparison in one leased command: SimSiam, resnet18_cifar at 32 px, batch 512, 60 epochs on the
# 14,000-image balanced CIFAR-10 slice of benchmarks/make_cifar_slice.py, kNN gain over each model's own floor,
# the package (`package`: Keras' initialisation and decay; `torch_init`: PyTorch's initialisation, as the gpu
# preset now has it) against the plain PyTorch reference, seed-major, float32 on both sides.
#
#   python benchmarks/make_cifar_slice.py ../shared/data/cifar10.npz gpu_data/cifar10_slice.npz   # here, once
#   bash benchmarks/parity/gpu_curves.sh gpu_data/cifar10_slice.npz "$OUT" 540     # device: carry [".whl", "gpu_data"]
#
# A run starts only while its (generous) estimate fits the budget; records land in $OUT/parity_curves_gpu (copy
# them to docs/records/parity_curves/ and regenerate docs/fidelity.md's table with --report). Rehearse on a CPU:
#   KSL_SKIP_WHEELS=1 KSL_EPOCHS=1 KSL_PER_CLASS=52 bash benchmarks/parity/gpu_curves.sh SLICE /tmp/gc 3000
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
DATA="${1:?slice .npz}"
OUT_DIR="${2:-${OUT:-/tmp/parity_gpu}}"
BUDGET="${3:-540}"
EPOCHS="${KSL_EPOCHS:-60}"
PER_CLASS="${KSL_PER_CLASS:-1400}"
EST="${KSL_RUN_ESTIMATE:-75}"   # seconds per run on one H200 (60 epochs of 14,000 images plus compile and kNN)
mkdir -p "$OUT_DIR/parity_curves_gpu"
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3 KERAS_BACKEND="${KERAS_BACKEND:-jax}"
if [ -d .whl ] && [ -z "${KSL_SKIP_WHEELS:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}" || { echo "wheel install failed"; exit 1; }
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
start=$(date +%s)
for seed in 0 1 2; do
  for arm in reference package torch_init; do
    left=$(( BUDGET - ($(date +%s) - start) ))
    if [ "$left" -lt "$EST" ]; then echo "budget: simsiam $arm seed $seed not started (${left} s left)"; continue; fi
    python3 benchmarks/parity/learning_curves.py --data "$DATA" --method simsiam --arm "$arm" --seed "$seed" \
      --epochs "$EPOCHS" --eval-every 20 --per-class "$PER_CLASS" --test-per-class 200 --scale gpu \
      --out "$OUT_DIR/parity_curves_gpu" 2>&1 | grep -v -E "^(WARNING|I0000|E0000|W0000)" | tail -2
  done
done
python3 benchmarks/parity/learning_curves.py --out "$OUT_DIR/parity_curves_gpu" --report | tee "$OUT_DIR/parity_gpu.md"
