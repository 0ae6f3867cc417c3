#!/usr/bin/env bash
# The main job: set up, then train the quickstart recipe (digits, float then 5-bit INQ) and its
# float control at equal budget, so the printed change is INQ against a float model trained as long.
# Extra arguments are passed on as key=value overrides, e.g. inq.bits=4 optimizer.lr=0.01.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/inq train recipes/quickstart.yaml --control "$@"
