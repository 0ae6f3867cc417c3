"""Time to quantize and partition VGG-16-sized weights (138M) ÷ one torch.abs pass over them.

Run: python benchmarks/bench_quantize_partition.py [--repeats 3]
Goal: <= 3. Printed, not asserted. Measures one INQ stage (50% magnitude partition of unfrozen
weights + rounding of the newly frozen ones into P), the same work INQCallback.apply_stage does.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.bench_cpu_inference import cpu_name  # noqa: E402
from benchmarks.vgg16_shapes import vgg16_weight_shapes  # noqa: E402
from inqnet.modules.inq import exponent_range  # noqa: E402
from inqnet.modules.inq.math import freeze_stage_, max_abs  # noqa: E402


def one_stage(weights: list[torch.Tensor], masks: list[torch.Tensor], portion: float, bits: int) -> None:
    """What INQCallback.apply_stage does per layer: fix n1 from max |W|, then freeze to ``portion``."""
    for w, m in zip(weights, masks):
        n1, _ = exponent_range(max_abs(w), bits)
        freeze_stage_(w, m, portion, bits, n1)


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bits", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads for both sides (1 keeps a shared machine's noise low)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    weights = [torch.randn(s) * 0.02 for s in vgg16_weight_shapes()]
    total = sum(w.numel() for w in weights)
    t_abs = best_of(args.repeats, lambda: [w.abs() for w in weights])

    def stage() -> None:
        ws = [w.clone() for w in weights]
        ms = [torch.zeros(w.shape, dtype=torch.bool) for w in weights]
        t0 = time.perf_counter()
        one_stage(ws, ms, 0.5, args.bits)
        stage.elapsed = time.perf_counter() - t0

    best = float("inf")
    for _ in range(args.repeats):
        stage()
        best = min(best, stage.elapsed)
    print(f"weights: {total / 1e6:.1f}M  threads: {torch.get_num_threads()}  torch {torch.__version__}  cpu: {cpu_name()}")
    print(f"torch.abs pass:            {t_abs:.3f} s")
    print(f"quantize + partition 50%:  {best:.3f} s")
    print(f"ratio: {best / t_abs:.2f}  (goal <= 3)")


if __name__ == "__main__":
    main()
