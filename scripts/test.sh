#!/usr/bin/env bash
# The test command: sets up .venv if needed, then runs the whole suite once per Keras backend.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k imbalance`).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/setup_env.sh || { echo "environment set-up failed"; exit 1; }
status=0
summary=""
for backend in ${KSL_BACKENDS:-tensorflow jax torch}; do
  echo "================ KERAS_BACKEND=$backend ================"
  start=$(date +%s)
  KERAS_BACKEND="$backend" python -m pytest -q -p no:cacheprovider "$@"
  rc=$?
  summary="$summary\n  $backend: exit $rc in $(( $(date +%s) - start )) s"
  [ $rc -ne 0 ] && status=1
done
printf "test summary:%b\n" "$summary"
exit $status
