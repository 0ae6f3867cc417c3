"""Quantized ÷ float suggestive FCNs: how far apart their predictions are (the paper's diversity argument).

Run: python benchmarks/bench_sa_diversity.py [--seeds 0 1 2] [--bits 7 5 3] [--nt] [-- key=value ...]
Runs `inq annotate recipes/sa_quickstart.yaml` (synthetic GlaS) once with float suggestive FCNs and
once per bit width, same seed: same initial set, same bootstrap samples, same initial weights, same
epochs. Reads each run's summary.json and prints, per configuration, the FCNs' mean pairwise L1
distance between probability maps over the unannotated pool in round 1 (identical pool for every
configuration) and averaged over all rounds, the mean uncertainty, and the ratio to float. With
--nt it also trains `recipes/sa_quickstart_nt.yaml` (float, then 5-bit INQ) on each run's
suggestions and prints the test F1/Dice mean of both. Printed, never asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str]) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "inqnet.cli.app", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True)
    if proc.returncode:
        sys.exit(f"inq {args[0]} failed:\n{proc.stderr[-2000:]}")


def annotate(out: Path, name: str, seed: int, bits: int | None, extra: list[str]) -> dict:
    """One `inq annotate` run; its summary.json."""
    quant = [f"inq.bits={bits}"] if bits else ["inq.enabled=false"]
    target = out / name
    _run(["annotate", "recipes/sa_quickstart.yaml", f"output_dir={target}", f"seed={seed}", *quant, *extra])
    (summary,) = target.glob("sa_quickstart/2*/summary.json")
    return json.loads(summary.read_text())


def network_training(out: Path, name: str, suggestions: str, extra: list[str]) -> tuple[float, float]:
    """(float, 5-bit INQ) test f1_dice of the quickstart NT recipe on ``suggestions``."""
    target = out / f"nt_{name}"
    _run(["train", "recipes/sa_quickstart_nt.yaml", f"output_dir={target}", f"data.suggestions={suggestions}",
          "trainer.enable_progress_bar=false", *extra])
    (summary,) = target.glob("sa_quickstart_nt/*/summary.json")
    data = json.loads(summary.read_text())
    return data["float_metrics"]["test/f1_dice"], data["final_metrics"]["test/f1_dice"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--bits", type=int, nargs="+", default=[7, 5, 3])
    parser.add_argument("--nt", action="store_true", help="also train the NT quickstart on each run's suggestions")
    parser.add_argument("overrides", nargs="*", help="key=value overrides for both recipes (e.g. data.root=...)")
    args = parser.parse_args()
    configs: list[tuple[str, int | None]] = [("float", None)] + [(f"{b}-bit", b) for b in args.bits]
    rows: dict[str, dict[str, list[float]]] = {name: {} for name, _ in configs}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for seed in args.seeds:
            for name, bits in configs:
                summary = annotate(out, f"{name}_s{seed}", seed, bits, args.overrides)
                row = rows[name]
                row.setdefault("round1", []).append(summary["rounds"][0]["mean_distance"])
                row.setdefault("all", []).append(summary["mean_distance"])
                row.setdefault("unc", []).append(summary["mean_uncertainty"])
                row.setdefault("loss", []).append(statistics.mean(r["fcn_loss"] for r in summary["rounds"]))
                if args.nt:
                    f, q = network_training(out, f"{name}_s{seed}", summary["suggestions"], args.overrides)
                    row.setdefault("nt_float", []).append(f)
                    row.setdefault("nt_inq", []).append(q)
                nt = f", NT f1_dice float {row['nt_float'][-1]:.4f} / 5-bit {row['nt_inq'][-1]:.4f}" if args.nt else ""
                print(f"seed {seed} {name}: round-1 distance {row['round1'][-1]:.4f}, all rounds {row['all'][-1]:.4f}"
                      f"{nt}", file=sys.stderr, flush=True)
    mean = {name: {k: statistics.mean(v) for k, v in row.items()} for name, row in rows.items()}
    base = mean["float"]
    print(f"suggestive FCNs on synthetic GlaS (sa_quickstart), seeds {args.seeds}; mean pairwise L1 distance of "
          "the FCNs' probability maps over the unannotated pool")
    head = (f"{'SA FCNs':>8} {'round 1':>9} {'÷ float':>8} {'all rounds':>11} {'÷ float':>8} {'uncertainty':>12} "
            f"{'FCN loss':>9}")
    if args.nt:
        head += f" {'NT float f1_dice':>17} {'NT 5-bit f1_dice':>17}"
    print(head)
    for name, m in mean.items():
        line = (f"{name:>8} {m['round1']:9.4f} {m['round1'] / base['round1']:8.2f} {m['all']:11.4f} "
                f"{m['all'] / base['all']:8.2f} {m['unc']:12.4f} {m['loss']:9.4f}")
        if args.nt:
            line += f" {100 * m['nt_float']:16.2f}% {100 * m['nt_inq']:16.2f}%"
        print(line)


if __name__ == "__main__":
    main()
