"""`inq eval CHECKPOINT [key=value ...]`: test (or validate) a run checkpoint and print its metrics."""
from __future__ import annotations

import json
import logging
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from inqnet.cli.errors import InqError

HELP = """Evaluate a checkpoint written by `inq train` on its recipe's data and print the metrics.

The model is rebuilt from the recipe stored in the checkpoint. Overrides may change data.*,
trainer.* and seed (e.g. where the data lives, the batch size, the accelerator); evaluation uses
one device unless trainer.devices is given.

Examples:

  inq eval runs/quickstart/20250101-120000/best.ckpt

  inq eval runs/quickstart/20250101-120000/last.ckpt --split val --json

  inq eval runs/vgg16_5bit/20250101-120000/best.ckpt data.root=/data/imagenet data.batch_size=128

An ensemble checkpoint (ensemble.members > 1) reports each member and the ensemble (mean of the
members' probabilities); several checkpoints of one model family are scored as an ensemble:

  inq eval runs/quickstart/a/best.ckpt runs/quickstart/b/best.ckpt --json
"""

EVAL_OVERRIDE_SECTIONS = ("data", "trainer", "seed")


class Split(str, Enum):
    test = "test"
    val = "val"


def ensemble_view(metrics: dict[str, float], split: str) -> dict[str, Any]:
    """{"members": [per-member metrics], "ensemble": {...}} from `<split>/member<i>/<name>` keys."""
    members: dict[int, dict[str, float]] = {}
    ensemble: dict[str, float] = {}
    for key, value in metrics.items():
        parts = key.split("/")
        if len(parts) == 3 and parts[1].startswith("member") and parts[1][6:].isdigit():
            members.setdefault(int(parts[1][6:]), {})[f"{split}/{parts[2]}"] = value
        else:
            ensemble[key] = value
    return {"members": [members[i] for i in sorted(members)], "ensemble": ensemble}


def eval_checkpoint(
    arguments: list[str] = typer.Argument(..., metavar="CHECKPOINT... [key=value ...]",
                                          help="One or more .ckpt written by `inq train` (several: scored as an "
                                               "ensemble), then key=value overrides of data.*, trainer.*, seed.",
                                          show_default=False),
    split: Split = typer.Option(Split.test, "--split", help="Which split to evaluate."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
) -> None:
    from inqnet.cli.config.overrides import split_overrides
    from inqnet.cli.config.load import recipe_from_checkpoint
    from inqnet.modules.checkpoints import module_from_checkpoint, read_checkpoint

    paths, parsed = split_overrides(arguments, positional=lambda arg: Path(arg).exists())  # a file: a checkpoint
    if not paths:
        raise InqError("inq eval: name at least one CHECKPOINT")
    checkpoints, overrides = [Path(p) for p in paths], [o.text for o in parsed]
    for override in parsed:
        if override.key.split(".")[0] not in EVAL_OVERRIDE_SECTIONS:
            raise InqError(f"override {override.text!r}: inq eval only takes data.*, trainer.* and seed overrides")
    ckpt = read_checkpoint(checkpoints[0])
    hparams = ckpt.get("hyper_parameters") or {}
    recipe = recipe_from_checkpoint(hparams.get("recipe"), f"{checkpoints[0]} (its recipe)", overrides)
    module = module_from_checkpoint(ckpt, str(checkpoints[0]))
    if len(checkpoints) > 1:
        module = assemble_from_checkpoints(module, checkpoints)
    metrics = run_evaluation(module, recipe, split.value, devices_given=any(o.key == "trainer.devices" for o in parsed),
                             quiet=as_json)
    checkpoint = checkpoints[0] if len(checkpoints) == 1 else [str(c) for c in checkpoints]
    if as_json:
        out: dict[str, Any] = {"checkpoint": str(checkpoint) if len(checkpoints) == 1 else checkpoint,
                               "split": split.value, "metrics": metrics}
        if getattr(module, "num_members", 1) > 1:
            out.update(ensemble_view(metrics, split.value))
        typer.echo(json.dumps(out))
        return
    from inqnet.cli.console import console, metrics_table

    console.print(metrics_table({"value": metrics}, f"{split.value} metrics of {checkpoint}"))


def assemble_from_checkpoints(first, checkpoints: list[Path]):  # type: ignore[no-untyped-def]
    """An EnsembleModule of every member found in ``checkpoints`` (ensemble checkpoints contribute all theirs)."""
    from inqnet.modules.ensemble import EnsembleModule
    from inqnet.modules.checkpoints import load_model

    members = []
    for index, path in enumerate(checkpoints):
        module = first if index == 0 else load_model(path)
        members.extend(module.members if isinstance(module, EnsembleModule) else [module])
    try:
        return EnsembleModule.from_members(members).eval()
    except ValueError as err:
        raise InqError(f"{checkpoints[0]}...: {err}") from None


def run_evaluation(module, recipe, split: str, devices_given: bool, quiet: bool) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Runs Lightning's test or validation loop on the recipe's data; returns `<split>/*` scalars."""
    from inqnet.cli.run.train import build_datamodule, make_trainer, quiet_lightning_noise

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
