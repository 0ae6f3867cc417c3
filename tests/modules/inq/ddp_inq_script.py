"""Run by test_inq_ddp.py: 2-process CPU DDP (gloo) with INQ; each rank saves its INQ state."""
from __future__ import annotations

import sys
from pathlib import Path

import lightning.pytorch as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from inqnet.modules.inq import INQCallback  # noqa: E402
from tests.modules.inq.inq_tiny import TinyNet, tiny_loader, trainer_kwargs  # noqa: E402


class SaveState(pl.Callback):
    def __init__(self, out: Path) -> None:
        self.out = out

    def on_train_epoch_end(self, trainer, pl_module):
        state = {k: v.clone() for k, v in pl_module.state_dict().items()}
        torch.save(state, self.out / f"rank{trainer.global_rank}_epoch{trainer.current_epoch}.pt")


if __name__ == "__main__":
    out, strategy = Path(sys.argv[1]), sys.argv[2]
    torch.manual_seed(1234)
    model = TinyNet(optimizer="sgd_momentum")
    inq = INQCallback(bits=5, portions=[0.5, 0.75, 1.0], epochs_per_stage=1, strategy=strategy)
    trainer = pl.Trainer(max_epochs=3, strategy="ddp", callbacks=[inq, SaveState(out)],
                         **trainer_kwargs(out, devices=2))
    trainer.fit(model, tiny_loader(batch_size=8))
