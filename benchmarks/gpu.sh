#!/usr/bin/env bash
# One short GPU job (see benchmarks/gpu.py): writes ${1:-gpu.json} and prints the table.
# On a machine without CUDA every GPU part prints "SKIPPED: no CUDA device".
# Then benchmarks/scale.py's DataComp-shaped job on the GPU at full size (752,016 JPEGs: hard links
# over 8 distinct images per task, so little disk), cold then warm, ViT-B/16 bf16, printing its time
# against the 15-minute (cold) and 1-minute (warm) targets into scale-gpu.json. It needs about as long
# as the job itself (estimate: 2-7 minutes cold with 16 cores) plus ~1 minute of setup:
# CLIPBENCH_GPU_SCALE=0.1 runs a tenth of it, CLIPBENCH_GPU_SCALE=0 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
"${PYTHON:-python}" benchmarks/gpu.py --out "${1:-gpu.json}" "${@:2}"
if [[ "${CLIPBENCH_GPU_SCALE:-1}" != "0" ]]; then
    "${PYTHON:-python}" benchmarks/scale.py --device cuda --scale "${CLIPBENCH_GPU_SCALE:-1}" \
        --arch ViT-B/16 --out scale-gpu.json
fi
