#!/usr/bin/env bash
# One GPU lease's chunk of the campaign (issue 21): install the carried Keras wheels, run the next runs that fit.
#
#   bash scripts/gpu_campaign.sh .gpu/campaign_slice.npz "$OUT" [budget seconds, default 570]
#
# From the device tool: carry [".whl", ".gpu"], timeout_s 600 (a run cut at 600 s is lost; finished ones come back). The records come back under $OUT/campaign; copy
# them to docs/records/gpu_campaign and commit them. Rehearse here with: KSL_SKIP_WHEELS=1 bash
# scripts/gpu_campaign.sh SLICE /tmp/out 60 --preset smoke --epochs 1
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SLICE="${1:?slice path}"
OUT_DIR="${2:-${OUT:-/tmp/campaign}}"
BUDGET="${3:-570}"
mkdir -p "$OUT_DIR/campaign"
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
if [ -d .whl ] && [ -z "${KSL_SKIP_WHEELS:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}" || { echo "wheel install failed"; exit 1; }
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT_DIR/nvidia_smi.txt"
KERAS_BACKEND="${KERAS_BACKEND:-jax}" python3 scripts/gpu_campaign.py "$SLICE" --out "$OUT_DIR/campaign" \
  --budget "$BUDGET" "${@:4}" 2>&1 | grep -v -E "^(WARNING|I0000|E0000|W0000)" | tee "$OUT_DIR/campaign.log"
