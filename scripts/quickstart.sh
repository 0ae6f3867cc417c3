#!/usr/bin/env bash
# The main job: set up, then train the quickstart recipe (digits, float then 5-bit INQ).
# Extra arguments are passed on as key=value overrides, e.g. inq.bits=4 optimizer.lr=0.01.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/inq train recipes/quickstart.yaml "$@"
