#!/usr/bin/env bash
# Creates (or refreshes) the project's virtual environment in .venv and activates it.
# Sourced by scripts/test.sh and scripts/main.sh; safe to run again: it reinstalls only
# when pyproject.toml changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${KSL_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment in $VENV"
  "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
STAMP="$VENV/.ksl-installed"
WANT="$(cat "$ROOT/pyproject.toml" "$ROOT/scripts/constraints.txt" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "[setup] installing keras-ssl-lt with its test, jax, torch and recipe extras (a few minutes the first time)"
  python -m pip install -q --upgrade pip
  # The CPU build of PyTorch; a plain `torch` would pull several GB of CUDA libraries.
  python -m pip install -q "torch==2.13.0"
  python -m pip install -q -c "$ROOT/scripts/constraints.txt" -e "$ROOT[test,jax,torch,recipes]"
  echo "$WANT" > "$STAMP"
fi
export PYTHONUNBUFFERED=1
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
