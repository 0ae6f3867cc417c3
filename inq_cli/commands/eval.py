"""`inq eval CHECKPOINT [key=value ...]`: test (or validate) a run checkpoint and print its metrics."""
from __future__ import annotations

import json
import logging
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from inq_cli.errors import InqError

HELP = """Evaluate a checkpoint written by `inq train` on its recipe's data and print the metrics.

The model is rebuilt from the recipe stored in the checkpoint. Overrides may change data.*,
trainer.* and seed (e.g. where the data lives, the batch size, the accelerator); evaluation uses
one device unless trainer.devices is given.

Examples:

  inq eval runs/quickstart/20250101-120000/best.ckpt

  inq eval runs/quickstart/20250101-120000/last.ckpt --split val --json

  inq eval runs/vgg16_5bit/20250101-120000/best.ckpt data.root=/data/imagenet data.batch_size=128
"""

EVAL_OVERRIDE_SECTIONS = ("data", "trainer", "seed")


class Split(str, Enum):
    test = "test"
    val = "val"


def eval_checkpoint(
    checkpoint: Path = typer.Argument(..., help="A .ckpt written by `inq train`.", show_default=False),
    overrides: Optional[list[str]] = typer.Argument(None, help="key=value overrides of data.*, trainer.*, seed.",
                                                    show_default=False),
    split: Split = typer.Option(Split.test, "--split", help="Which split to evaluate."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
) -> None:
    from inq_cli.overrides import parse_overrides
    from inq_cli.recipe import recipe_from_checkpoint
    from modules.loading import module_from_checkpoint, read_checkpoint

    parsed = parse_overrides(overrides or [])
    for override in parsed:
        if override.key.split(".")[0] not in EVAL_OVERRIDE_SECTIONS:
            raise InqError(f"override {override.text!r}: inq eval only takes data.*, trainer.* and seed overrides")
    ckpt = read_checkpoint(checkpoint)
    hparams = ckpt.get("hyper_parameters") or {}
    recipe = recipe_from_checkpoint(hparams.get("recipe"), f"{checkpoint} (its recipe)", overrides or [])
    module = module_from_checkpoint(ckpt, str(checkpoint))
    metrics = run_evaluation(module, recipe, split.value, devices_given=any(o.key == "trainer.devices" for o in parsed),
                             quiet=as_json)
    if as_json:
        typer.echo(json.dumps({"checkpoint": str(checkpoint), "split": split.value, "metrics": metrics}))
        return
    from inq_cli.report import console, metrics_table

    console.print(metrics_table({"value": metrics}, f"{split.value} metrics of {checkpoint}"))


def run_evaluation(module, recipe, split: str, devices_given: bool, quiet: bool) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Runs Lightning's test or validation loop on the recipe's data; returns `<split>/*` scalars."""
    from inq_cli.runs import build_datamodule, make_trainer, quiet_lightning_noise

    quiet_lightning_noise()
    if quiet:
        for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
            logging.getLogger(name).setLevel(logging.WARNING)
    trainer_cfg = recipe.trainer
    trainer = make_trainer({"accelerator": trainer_cfg.accelerator,
                            "devices": trainer_cfg.devices if devices_given else 1,
                            "precision": trainer_cfg.precision}, logger=False, enable_checkpointing=False,
                           enable_model_summary=False, enable_progress_bar=not quiet)
    datamodule = build_datamodule(recipe)
    loop = trainer.test if split == "test" else trainer.validate
    results = loop(module, datamodule=datamodule, verbose=False)
    return {k: float(v) for k, v in sorted((results[0] if results else {}).items()) if k.startswith(f"{split}/")}


def register(app: typer.Typer) -> None:
    app.command("eval", help=HELP, no_args_is_help=True)(eval_checkpoint)
