#!/usr/bin/env bash
# The test command: sets up .venv if needed, runs ruff once, then the whole suite and the docstring examples
# (doctests) once per Keras backend.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k imbalance`).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/setup_env.sh || { echo "environment set-up failed"; exit 1; }
set +e  # setup_env.sh sets -e; a failing backend must not stop the others from running
status=0
summary=""
echo "================ ruff (lint and format, configured in pyproject.toml) ================"
ruff check . && ruff format --check .
rc=$?
summary="$summary\n  ruff: exit $rc"
[ $rc -ne 0 ] && status=1
for backend in ${KSL_BACKENDS:-tensorflow jax torch}; do
  echo "================ KERAS_BACKEND=$backend ================"
  start=$(date +%s)
  # The test suite and every docstring example of the package (pyproject.toml's pytest settings), per backend.
  KERAS_BACKEND="$backend" python -m pytest -q -p no:cacheprovider "$@"
  rc=$?
  summary="$summary\n  $backend: exit $rc in $(( $(date +%s) - start )) s"
  [ $rc -ne 0 ] && status=1
done
printf "test summary:%b\n" "$summary"
exit $status
