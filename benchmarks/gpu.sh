#!/usr/bin/env bash
# One short GPU job (see benchmarks/gpu.py): writes ${1:-gpu.json} and prints the table.
# On a machine without CUDA every GPU part prints "SKIPPED: no CUDA device".
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python}" benchmarks/gpu.py --out "${1:-gpu.json}" "${@:2}"
