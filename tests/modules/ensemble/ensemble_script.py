"""Run by test_ensemble_ddp.py: trains a tiny digits ensemble on W CPU ranks (gloo), K members.

Each rank writes `rank<r>.pt` (its full state dict after the final sync) into OUT.
Usage: ensemble_script.py OUT MEMBERS DEVICES [MAX_EPOCHS] [CKPT_TO_RESUME]
"""
from __future__ import annotations

import sys
from pathlib import Path

import lightning.pytorch as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from inqnet.cli.run.ensemble import assemble_ensemble  # noqa: E402
from inqnet.cli.config.load import load_recipe  # noqa: E402
from inqnet.cli.run.train import build_datamodule, build_module  # noqa: E402
from inqnet.modules.inq import INQCallback  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]


class DumpState(pl.Callback):
    def __init__(self, out: Path) -> None:
        self.out = out

    def on_train_end(self, trainer, pl_module):  # after EnsembleSync.on_train_end (callbacks run in order)
        torch.save({k: v.clone() for k, v in pl_module.state_dict().items()}, self.out / f"rank{trainer.global_rank}.pt")


def main() -> None:
    out, members, devices = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    max_epochs = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    resume = sys.argv[5] if len(sys.argv) > 5 else None
    recipe = load_recipe(ROOT / "recipes/quickstart.yaml", [
        "model.layers=[8, M, 8, M]", "model.hidden=[16]", "data.batch_size=64", "inq.float_epochs=1",
        "inq.epochs_per_stage=1", "inq.portions=[0.5, 1.0]", f"ensemble.members={members}",
        f"trainer.devices={devices}", f"trainer.max_epochs={max_epochs}"])
    torch.set_num_threads(1)
    pl.seed_everything(recipe.seed, verbose=False)
    datamodule = build_datamodule(recipe)
    extra, callbacks = {}, []
    if members > 1:
        module, datamodule, extra, callbacks = assemble_ensemble(recipe, datamodule)
    else:
        module = build_module(recipe, dict(datamodule.data_info))
        extra = {"strategy": "ddp"} if devices > 1 else {}
    callbacks += [INQCallback(**recipe.inq.callback_kwargs(recipe.seed)), DumpState(out),
                  pl.callbacks.ModelCheckpoint(dirpath=out, filename="{epoch}", save_top_k=-1, every_n_epochs=1)]
    trainer = pl.Trainer(accelerator="cpu", devices=devices, max_epochs=max_epochs, logger=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks,
                         default_root_dir=str(out), num_sanity_val_steps=0, **extra)
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume)


if __name__ == "__main__":
    main()
