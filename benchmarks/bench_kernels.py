"""Kernel benchmark, same code as `inq bench kernels` (arguments are passed through).

    python benchmarks/bench_kernels.py --out benchmarks/results [--all-kernels] [--shift-add]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inqnet.cli.app import main  # noqa: E402

if __name__ == "__main__":
    main(["bench", "kernels", *sys.argv[1:]])
