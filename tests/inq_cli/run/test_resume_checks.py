"""`--resume` and SLURM auto-resume check a checkpoint before anything is written: another family,
a plain state dict or a changed bit width is one line naming the keys (exit 2) and the run folder
stays byte-identical; a damaged checkpoint gives way to the newest good one, saying so; allowed
changes are recorded in resolved.yaml."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from inqnet.cli.config.load import load_recipe
from inqnet.cli.errors import InqError
from inqnet.cli.run.resume import RESUMED_KEY, auto_resume, check_resume, recipe_changes
from inqnet.modules.checkpoints import read_resume_point
from inqnet.modules.errors import InputError
from tests.inq_cli.clirunner import REPO

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "pre_layout"
QUICKSTART = REPO / "recipes" / "quickstart.yaml"
# The overrides the fixtures were trained with (tests/fixtures/pre_layout/README.md), but scheduler.t_max=1
# (not 2): the cosine must fit one INQ stage, a check made after they were written; a resume may change it.
TINY = ["model.layers=[8,M,16,M]", "model.hidden=[16]", "inq.float_epochs=2", "inq.epochs_per_stage=1",
        "scheduler.t_max=1"]


@pytest.fixture()
def run(tmp_path: Path) -> Path:
    """A finished 5-bit run folder (the fixtures' files) with a metrics.csv."""
    folder = tmp_path / "quickstart" / "run"
    folder.mkdir(parents=True)
    for name in ("last.ckpt", "float.ckpt", "resolved.yaml", "summary.json"):
        shutil.copy(FIXTURES / name, folder / name)
    (folder / "metrics.csv").write_text("epoch,step,val/acc\n5,204,0.9\n")
    return folder


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _refused(call_main, run: Path, recipe: Path, overrides: list[str],  # type: ignore[no-untyped-def]
             ckpt: Path) -> str:
    before = _snapshot(run)
    result = call_main("train", str(recipe), f"output_dir={run.parents[1]}", *overrides, "--resume", str(ckpt))
    assert result.code == 2, result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.err, result.err
    assert _snapshot(run) == before  # nothing written: no resolved.yaml, no metrics.csv, no checkpoint
    return lines[0]


def test_a_checkpoint_of_another_family_is_refused(call_main, run: Path) -> None:  # type: ignore[no-untyped-def]
    line = _refused(call_main, run, REPO / "recipes" / "fcn_quickstart.yaml", ["scheduler.t_max=2"], run / "last.ckpt")
    assert "cannot change what its checkpoint already is" in line
    assert "model.name (checkpoint: 'vgg', recipe: 'fcn')" in line and "data.name (checkpoint: 'digits'" in line


def test_a_plain_state_dict_is_refused(call_main, run: Path) -> None:  # type: ignore[no-untyped-def]
    weights = torch.load(run / "last.ckpt", weights_only=True)["state_dict"]
    torch.save(weights, run / "plain.ckpt")
    line = _refused(call_main, run, QUICKSTART, TINY, run / "plain.ckpt")
    assert "plain.ckpt: not a checkpoint a run can resume from (a plain state dict; missing state_dict," in line
    line = _refused(call_main, run, QUICKSTART, TINY, run / "float.ckpt")  # weights only
    assert "(weights only; missing optimizer_states, lr_schedulers)" in line


def test_a_finished_5bit_run_cannot_become_4bit(call_main, run: Path) -> None:  # type: ignore[no-untyped-def]
    line = _refused(call_main, run, QUICKSTART, [*TINY, "inq.bits=4"], run / "last.ckpt")
    assert "inq.bits (checkpoint: 5, recipe: 4)" in line and "model." not in line


@pytest.mark.parametrize("override, refused", [
    ("inq.float_epochs=3", "inq.float_epochs"),  # the float phase is over
    ("inq.epochs_per_stage=2", "inq.epochs_per_stage"),  # two stages ran on the old clock
    ("inq.portions=[0.5,0.8,0.9,1.0]", "inq.portions"),  # 0.75 is already applied
    ("inq.strategy=random", "inq.strategy"),
    ("optimizer={name: adam, lr: 0.02}", "optimizer.name"),  # its state would not load
    ("model.hidden=[32]", "model.hidden"),
    ("", "trainer.max_epochs"),  # a checkpoint beyond the run's end
])
def test_what_the_weights_already_are_stays(override: str, refused: str) -> None:
    ckpt = read_resume_point(FIXTURES / "midrun.ckpt")  # two of four stages applied
    if not override:
        ckpt["epoch"] = 7
    recipe = load_recipe(QUICKSTART, [*TINY, "output_dir=/tmp/mid", *filter(None, [override])])
    with pytest.raises(InqError, match="midrun.ckpt: a resumed run cannot change") as info:
        recipe_changes(recipe, ckpt, "midrun.ckpt")
    assert re.findall(r"(?:differing: |; )([a-z_]+\.[a-z_.]+) \(", str(info.value)) == [refused]


def test_settings_that_do_not_touch_the_weights_may_change() -> None:
    ckpt = read_resume_point(FIXTURES / "midrun.ckpt")
    recipe = load_recipe(QUICKSTART, [*TINY, "output_dir=/tmp/mid", "inq.portions=[0.5,0.75,0.9,1.0]",
                                      "optimizer.lr=0.01", "data.batch_size=16", "inq.restart_lr=false"])
    assert recipe_changes(recipe, ckpt, "midrun.ckpt") == {
        "data.batch_size": (32, 16), "inq.portions": ([0.5, 0.75, 0.875, 1.0], [0.5, 0.75, 0.9, 1.0]),
        "inq.restart_lr": (True, False), "optimizer.lr": (0.02, 0.01), "scheduler.t_max": (2, 1)}


def test_the_float_phase_may_change_while_it_lasts(tmp_path: Path) -> None:
    ckpt = read_resume_point(FIXTURES / "midrun.ckpt")
    ckpt["callbacks"]["INQCallback"]["stages_done"], ckpt["callbacks"]["FloatBaseline"]["done"] = 0, False
    longer = load_recipe(QUICKSTART, [*TINY, "output_dir=/tmp/mid", "inq.float_epochs=5"])
    assert recipe_changes(longer, ckpt, "x")["inq.float_epochs"] == (2, 5)
    over = load_recipe(QUICKSTART, [*TINY, "output_dir=/tmp/mid", "inq.float_epochs=3"])  # epoch 4 comes next
    with pytest.raises(InqError, match="inq.float_epochs .*the float phase would already be over at epoch 4"):
        recipe_changes(over, ckpt, "x")


def test_a_damaged_checkpoint_gives_way_to_the_newest_good_one(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(FIXTURES / "midrun.ckpt", run / "preempted.ckpt")
    os.utime(run / "preempted.ckpt", ns=(1, 1))  # older than the damaged last.ckpt
    good = (run / "last.ckpt").read_bytes()
    (run / "last.ckpt").write_bytes(good[: len(good) // 2])  # truncated by a full disk
    recipe = load_recipe(QUICKSTART, [*TINY, "output_dir=/tmp/mid"])
    plan = check_resume(recipe, run / "last.ckpt")
    assert plan.checkpoint == run / "preempted.ckpt" and plan.run_dir == run
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"warning: resuming from {run / 'preempted.ckpt'}, the newest good")
    assert f"passed over {run / 'last.ckpt'} (not a readable checkpoint" in err[0]
    (run / "preempted.ckpt").unlink()
    with pytest.raises(InputError, match="no checkpoint to resume from: .*last.ckpt: not a readable checkpoint"):
        check_resume(recipe, run / "last.ckpt")


def test_a_requeued_job_passes_over_a_damaged_checkpoint(run: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    recipe = load_recipe(QUICKSTART, [*TINY, "output_dir=/tmp/mid"])
    for var in [v for v in os.environ if v.startswith("SLURM_")]:
        monkeypatch.delenv(var)
    assert auto_resume(recipe, run) is None  # no SLURM job: an ordinary run never resumes by itself
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    monkeypatch.setenv("SLURM_NTASKS", "1")
    monkeypatch.setenv("SLURM_JOB_NAME", "inq")
    os.utime(run / "last.ckpt", ns=(1, 1))
    (run / "hpc_ckpt_1.ckpt").write_bytes(b"\0" * 64)  # the newest, and damaged
    plan = auto_resume(recipe, run)
    assert plan is not None and plan.checkpoint == run / "last.ckpt"
    assert f"passed over {run / 'hpc_ckpt_1.ckpt'}" in capsys.readouterr().err
    assert auto_resume(recipe, run.parent / "fresh") is None  # a first start


def test_allowed_changes_are_recorded_in_resolved_yaml(call_main, run: Path) -> None:  # type: ignore[no-untyped-def]
    out = run.parents[1]
    for lr in ("0.01", "0.005"):
        result = call_main("train", str(QUICKSTART), f"output_dir={out}", *TINY, f"optimizer.lr={lr}",
                           "--resume", str(run / "last.ckpt"))
        assert result.code == 0, result.err
    saved = yaml.safe_load((run / "resolved.yaml").read_text())
    assert saved["optimizer"]["lr"] == 0.005 and saved["inq"]["bits"] == 5
    first, second = saved[RESUMED_KEY]
    assert first["from"] == str(run / "last.ckpt") and first["at"] <= second["at"]
    moved = {"output_dir": ["/tmp/fx", str(out)], "scheduler.t_max": [2, 1]}
    assert first["changed"] == {"optimizer.lr": [0.02, 0.01], **moved}
    # a finished run trains no further: the checkpoint, and what the second resume compares with, stay
    assert second["changed"] == {"optimizer.lr": [0.02, 0.005], **moved}


def test_a_malformed_checkpoint_is_one_line(tmp_path: Path) -> None:
    ckpt = read_resume_point(FIXTURES / "midrun.ckpt")
    ckpt["epoch"] = "three"
    torch.save(ckpt, tmp_path / "odd.ckpt")
    recipe = load_recipe(QUICKSTART, [*TINY, "output_dir=/tmp/mid"])
    with pytest.raises(InqError, match=r"odd.ckpt: a malformed checkpoint \(invalid literal"):
        check_resume(recipe, tmp_path / "odd.ckpt")
