#!/usr/bin/env bash
# For a session with a CUDA GPU (H100/H200): the compiled-kernel tests against the torch
# reference, then the kernel benchmark. Results: JSON + Markdown in the folder given as $1
# (default benchmarks/results). Budget: about 8-10 minutes on an H100, most of it compiling.
#   bash benchmarks/gpu_check.sh [RESULTS_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
RESULTS=${1:-benchmarks/results}
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH=$PWD
mkdir -p "$RESULTS"
status=0

echo "== device"
nvidia-smi --query-gpu=name,memory.total,clocks.max.memory,driver_version --format=csv || true
"$PY" -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, 'cuda', torch.cuda.is_available())"

echo "== compiled kernels against the reference (pytest -m gpu)"
timeout 360 "$PY" -m pytest -m gpu tests/kernels/test_triton_gpu.py -q -x \
  --junitxml="$RESULTS/gpu_tests.xml" 2>&1 | tail -25 || status=1

echo "== inq bench kernels (4-bit codes, bf16 activations)"
timeout 420 "$PY" -m inq_cli.app bench kernels --bits 4 --out "$RESULTS" --shift-add || status=1

ls -l "$RESULTS"
exit $status
