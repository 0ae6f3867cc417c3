"""Run folders, the 'best only when quantized' rule, and the schedule-length check."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from inqnet.cli.errors import InqError
from inqnet.cli.config.load import load_recipe
from inqnet.cli.run.folder import RUN_DIR_ENV, make_run_dir, run_name
from inqnet.modules.inq.state import is_fully_quantized
from tests.inq_cli.clirunner import REPO

QUICKSTART = REPO / "recipes" / "quickstart.yaml"


def test_run_folders_are_unique_per_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (RUN_DIR_ENV, "SLURM_JOB_ID", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(var, raising=False)
    recipe = load_recipe(QUICKSTART, [f"output_dir={tmp_path}"])
    first, second = make_run_dir(recipe, "quickstart"), make_run_dir(recipe, "quickstart")
    assert first != second and first.parent == second.parent == tmp_path / "quickstart"
    monkeypatch.setenv(RUN_DIR_ENV, str(first))  # a rank Lightning launched: same folder
    assert make_run_dir(recipe, "quickstart") == first


def test_cluster_jobs_name_their_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("SLURM_JOB_NAME", "inq")
    monkeypatch.setenv("SLURM_NTASKS", "1")  # tasks started by SLURM (Lightning's rule, inqnet.cli.slurm.requeue)
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID", raising=False)
    assert run_name() == "slurm-42"
    monkeypatch.setenv("SLURM_JOB_NAME", "bash")  # an interactive allocation is no batch job
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    assert run_name()[0].isdigit()


def test_inq_complete_needs_every_mask_full() -> None:
    net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    assert not is_fully_quantized(net)  # float model
    for layer in net:
        layer.register_buffer("weight_inq_mask", torch.ones(2, 2, dtype=torch.bool))
    assert is_fully_quantized(net)
    net[1].weight_inq_mask[0, 0] = False
    assert not is_fully_quantized(net)


def test_schedule_length_fills_max_epochs_and_steps() -> None:
    recipe = load_recipe(QUICKSTART, ["inq.float_epochs=3", "inq.epochs_per_stage=2"])
    assert recipe.trainer.max_epochs == 3 + 4 * 2
    steps = load_recipe(QUICKSTART, ["inq.epochs_per_stage=null", "inq.float_epochs=0", "inq.steps_per_stage=10",
                                     "inq.float_steps=30"])
    assert steps.trainer.max_steps == 30 + 4 * 10 and steps.trainer.max_epochs is None
    assert steps.inq.callback_kwargs(seed=1)["steps_per_stage"] == 10
    off = load_recipe(QUICKSTART, ["inq.enabled=false", "trainer.max_epochs=2"])
    assert off.trainer.max_epochs == 2


def test_callback_kwargs_match_the_inq_section() -> None:
    kwargs = load_recipe(QUICKSTART, ["inq.max_value=4.0", "inq.exclude=[net.classifier]"]).inq.callback_kwargs(seed=7)
    assert kwargs == {"bits": 5, "portions": (0.5, 0.75, 0.875, 1.0), "epochs_per_stage": 2, "float_epochs": 12,
                      "steps_per_stage": None, "float_steps": 0, "max_value": 4.0, "include": None,
                      "exclude": ("net.classifier",), "strategy": "magnitude", "restart_lr": True, "control": False, "seed": 7}


@pytest.mark.parametrize("members, devices", [(3, 2), (2, 3)])
def test_ensembles_that_do_not_fit_the_ranks_are_refused(tmp_path: Path, members: int, devices: int) -> None:
    from inqnet.cli.run.train import train

    recipe = load_recipe(QUICKSTART, [f"output_dir={tmp_path}", f"ensemble.members={members}",
                                      f"trainer.devices={devices}"])
    with pytest.raises(InqError, match=f"ensemble.members={members} does not fit {devices} ranks"):
        train(recipe, "quickstart")
    assert not (tmp_path / "quickstart").exists()


@pytest.mark.parametrize("override, message", [
    ("trainer.accelerator=abacus", "trainer: You selected an invalid accelerator name"),
    ("inq.include=[nothing.*]", "inq.include/inq.exclude: select no parameter"),
])
def test_setup_refusals_are_one_line_and_leave_no_run_folder(tmp_path: Path, override: str, message: str) -> None:
    from inqnet.cli.run.train import train

    recipe = load_recipe(QUICKSTART, [f"output_dir={tmp_path}", override])
    with pytest.raises(InqError, match=message) as info:
        train(recipe, "quickstart")
    assert "\n" not in str(info.value)
    assert not any((tmp_path / "quickstart").glob("*"))
