#!/usr/bin/env bash
# The main job: sets up .venv if needed, then runs recipes/quickstart.py (arguments are passed on),
# e.g. `bash scripts/main.sh --data ../shared/data/cifar10.npz`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/setup_env.sh
export KERAS_BACKEND="${KERAS_BACKEND:-jax}"
exec python recipes/quickstart.py "$@"
