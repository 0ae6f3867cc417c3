"""Training-step time with INQCallback ÷ without: same model, data and process.

Run: python benchmarks/bench_inq_overhead.py [--steps 60] [--rounds 3]
Goal: <= 1.05. Printed, not asserted. The INQ runs are timed while 50% of every layer is frozen
(grads masked, weights saved and put back around each optimizer step), runs alternate
with/without so machine noise hits both, and the median step time of each is compared.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from inqnet.modules.inq import INQCallback  # noqa: E402


class SmallVGG(pl.LightningModule):
    """Six 3x3 conv layers and two FC layers on 32x32 inputs (~0.6M weights)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        c = [3, width, width, 2 * width, 2 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = []
        for i in range(6):
            layers += [nn.Conv2d(c[i], c[i + 1], 3, padding=1), nn.BatchNorm2d(c[i + 1]), nn.ReLU()]
            if i % 2:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(c[-1] * 16, 256), nn.ReLU(), nn.Linear(256, 10))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self.classifier(self.features(x)), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)


class StepTimer(pl.Callback):
    def __init__(self, skip: int) -> None:
        self.skip, self.times, self._t0 = skip, [], 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if batch_idx >= self.skip:
            self.times.append(time.perf_counter() - self._t0)

    def on_train_epoch_end(self, trainer, pl_module):
        trainer.should_stop = True  # only epoch 0 is timed: INQ stage 0 (50% frozen) is active


def run(with_inq: bool, steps: int, loader: DataLoader) -> float:
    torch.manual_seed(0)
    timer = StepTimer(skip=3)
    callbacks: list[pl.Callback] = [timer]
    if with_inq:
        callbacks.insert(0, INQCallback(bits=5, portions=[0.5, 1.0], epochs_per_stage=1))
    trainer = pl.Trainer(accelerator="cpu", max_epochs=2, limit_train_batches=steps, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=callbacks)
    trainer.fit(SmallVGG(), loader)
    return statistics.median(timer.times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads for both sides (1 keeps a shared machine's noise low)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(args.steps * args.batch_size, 3, 32, 32, generator=g),
                         torch.randint(10, (args.steps * args.batch_size,), generator=g))
    loader = DataLoader(data, batch_size=args.batch_size)
    plain, inq = [], []
    for _ in range(args.rounds):
        plain.append(run(False, args.steps, loader))
        inq.append(run(True, args.steps, loader))
    p, q = statistics.median(plain), statistics.median(inq)
    print(f"threads: {torch.get_num_threads()}  torch {torch.__version__}  steps/run: {args.steps}  rounds: {args.rounds}")
    print(f"median step without INQ: {p * 1e3:.2f} ms")
    print(f"median step with INQ:    {q * 1e3:.2f} ms (50% of each layer frozen)")
    print(f"ratio: {q / p:.3f}  (goal <= 1.05)")


if __name__ == "__main__":
    main()
