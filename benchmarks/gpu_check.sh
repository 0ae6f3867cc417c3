#!/usr/bin/env bash
# For a session with a CUDA GPU (H100/H200): the compiled kernels against the torch reference and
# the kernel benchmark, most valuable first. Results (JSON + Markdown + junit XML) go to the folder
# given as $1 (default benchmarks/results). Most of the time is Triton compiling (cached on disk
# in ~/.triton, so a second run on the same machine is much faster).
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
start=$SECONDS
stage() { echo "== [$((SECONDS - start)) s] $*"; }

stage "device"
nvidia-smi --query-gpu=name,memory.total,clocks.max.memory,driver_version --format=csv || true
"$PY" -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, 'cuda', torch.cuda.is_available())"

stage "core GPU tests: autotuned kernels, odd shapes (fp32 with input_precision=ieee), conv2d, modules"
timeout 300 "$PY" -m pytest -m gpu tests/kernels/test_triton_gpu.py -q -x \
  -k "autotuned or odd_shapes or conv2d or modules" --junitxml="$RESULTS/gpu_tests_core.xml" \
  2>&1 | tail -15 || status=1

stage "inq bench kernels (4-bit codes, bf16 activations)"
timeout 420 "$PY" -m inqnet.cli.app bench kernels --bits 4 --out "$RESULTS" --shift-add || status=1

stage "remaining GPU tests: every bit width, shift-add"
timeout 300 "$PY" -m pytest -m gpu tests/kernels/test_triton_gpu.py -q \
  -k "not (autotuned or odd_shapes or conv2d or modules)" --junitxml="$RESULTS/gpu_tests_rest.xml" \
  2>&1 | tail -15 || status=1

stage "done (status $status)"
ls -l "$RESULTS"
exit $status
