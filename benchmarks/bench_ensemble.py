"""Ensemble of 2 on 2 ranks ÷ 1 member on 1 rank: wall time of the same recipe, run side by side.

Run: python benchmarks/bench_ensemble.py [--rounds 2] [key=value ...]
Goal: <= 1.15. Printed, not asserted. Each round runs `inq train` twice (K=1/W=1, then K=2/W=2 on
CPU with gloo), alternating so machine noise hits both; reports the median of the in-run wall time
(`summary.json`: from recipe load to the end of fit and test) and of the whole command.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ["inq.float_epochs=2", "inq.epochs_per_stage=1", "trainer.enable_progress_bar=false"]


def one_run(members: int, devices: int, extra: list[str]) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as out:
        args = [sys.executable, "-m", "inqnet.cli.app", "train", "recipes/quickstart.yaml", f"output_dir={out}",
                f"ensemble.members={members}", f"trainer.devices={devices}", *DEFAULT, *extra]
        env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
        t0 = time.perf_counter()
        proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
        total = time.perf_counter() - t0
        if proc.returncode:
            sys.exit(f"inq train failed:\n{proc.stderr[-2000:]}")
        (summary,) = Path(out).glob("quickstart/*/summary.json")
        return json.loads(summary.read_text())["wall_time_s"], total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("overrides", nargs="*", help="key=value overrides for both runs")
    args = parser.parse_args()
    single, pair = [], []
    for _ in range(args.rounds):
        single.append(one_run(1, 1, args.overrides))
        pair.append(one_run(2, 2, args.overrides))
    s_in, s_all = (statistics.median(x) for x in zip(*single))
    p_in, p_all = (statistics.median(x) for x in zip(*pair))
    print(f"rounds: {args.rounds}  cpu cores: {os.cpu_count()}  recipe: quickstart {' '.join(DEFAULT + args.overrides)}")
    print(f"1 member, 1 rank:   in-run {s_in:.1f} s   command {s_all:.1f} s")
    print(f"2 members, 2 ranks: in-run {p_in:.1f} s   command {p_all:.1f} s")
    print(f"ratio (in-run): {p_in / s_in:.3f}   ratio (command): {p_all / s_all:.3f}   (goal <= 1.15)")


if __name__ == "__main__":
    main()
