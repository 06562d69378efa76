#!/usr/bin/env bash
# The one GPU run of issue 11: installs the carried wheels (Keras and the two Keras dependencies the GPU image
# lacks), then runs benchmarks/gpu_check.py on the JAX and then the PyTorch Keras backend. No TensorFlow.
#
#   bash benchmarks/gpu_check.sh gpu_data/cifar10_slice.npz "$OUT"
#   bash benchmarks/gpu_check.sh gpu_data/cifar10_slice.npz /tmp/gc --tiny    # CPU rehearsal; extra args go
#                                                                             # to gpu_check.py
#
# Run it from the device tool with carry [".whl", "gpu_data"] and timeout_s 600. Hard limits per backend:
# KSL_GPU_CHECK_TIMEOUT_JAX (default 330 s: XLA compiles two ResNet-18 steps) and KSL_GPU_CHECK_TIMEOUT_TORCH
# (default 220 s). Results are written after each section (fit, probe/kNN, rwSAM), so a run cut short still
# returns what it measured. Files in $OUT: nvidia_smi.txt, gpu_check_{jax,torch}.{json,md,log}.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DATA="${1:-gpu_data/cifar10_slice.npz}"
OUT_DIR="${2:-${OUT:-/tmp/gpu_check}}"
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
if [ -d .whl ] && [ -z "${KSL_SKIP_WHEELS:-}" ]; then  # KSL_SKIP_WHEELS=1: Keras already installed
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}" || { echo "wheel install failed"; exit 1; }
fi
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv 2>&1 \
  | tee "$OUT_DIR/nvidia_smi.txt"
KERAS_BACKEND=jax python3 -c "import sys, keras, jax, torch, sklearn; print('python', sys.version.split()[0], '| keras', keras.__version__, \
'| jax', jax.__version__, jax.devices(), '| torch', torch.__version__, torch.cuda.is_available(), \
'| scikit-learn', sklearn.__version__); assert 'tensorflow' not in sys.modules" || exit 1
[ -f "$DATA" ] || { echo "no data at $DATA"; exit 1; }
status=0
for backend in jax torch; do
  echo "================ KERAS_BACKEND=$backend ================"
  if [ "$backend" = jax ]; then LIMIT="${KSL_GPU_CHECK_TIMEOUT_JAX:-330}"; else LIMIT="${KSL_GPU_CHECK_TIMEOUT_TORCH:-220}"; fi
  KERAS_BACKEND=$backend timeout "$LIMIT" python3 benchmarks/gpu_check.py "$DATA" --out "$OUT_DIR" "${@:3}" \
    > "$OUT_DIR/gpu_check_$backend.log" 2>&1
  rc=$?
  grep -v -E "^(WARNING|I0000|E0000|W0000)" "$OUT_DIR/gpu_check_$backend.log" | tail -25
  echo "KERAS_BACKEND=$backend: exit $rc"
  [ $rc -ne 0 ] && status=1
done
for backend in jax torch; do
  [ -f "$OUT_DIR/gpu_check_$backend.md" ] && cat "$OUT_DIR/gpu_check_$backend.md"
done
exit $status
