"""`inq sweep`: grid parsing, the W&B sweep YAML, and its points rendered as the W&B agent renders them."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from inq_cli.errors import InqError
from inq_cli.grid import expand, parse_axes, parse_axis, point_name, point_overrides

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "inq_cli.app", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_grid_specs() -> None:
    assert parse_axis("inq.bits=2..9").values == tuple(range(2, 10))
    assert parse_axis("ensemble.members=1,2,3").values == (1, 2, 3)
    assert parse_axis("optimizer.lr=1e-4,0.01").values == (1e-4, 0.01)
    assert parse_axis("inq.strategy=magnitude,random").values == ("magnitude", "random")
    assert parse_axis("inq.restart_lr=true,false").values == (True, False)
    for bad, why in [("inq.bits", "expected KEY"), ("inq.bits=9..2", "empty"), ("inq.bits=1,,2", "empty value"),
                     ("inq bits=1", "dotted recipe key"), ("inq.bits=2,2", "twice")]:
        with pytest.raises(InqError, match=why):
            parse_axis(bad)
    with pytest.raises(InqError, match="swept twice"):
        parse_axes(["inq.bits=2,3", "inq.bits=4"])


def test_points_match_the_wandb_agent_rendering() -> None:
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    axes = parse_axes(["inq.bits=2..4", "ensemble.members=1,2", "optimizer.lr=1e-4"])
    points = expand(axes)
    assert len(points) == 6 and points[0] == {"inq.bits": 2, "ensemble.members": 1, "optimizer.lr": 1e-4}
    assert points[1]["ensemble.members"] == 2  # the last axis varies fastest, as W&B's grid
    for point in points:
        agent = create_sweep_command_args({"args": {k: {"value": v} for k, v in point.items()}})
        assert point_overrides(point) == agent["args_no_hyphens"]
    assert point_name(points[0]) == "inq.bits-2_ensemble.members-1_optimizer.lr-0.0001"


def test_sweep_yaml(tmp_path: Path) -> None:
    from wandb.sdk.launch.sweeps.utils import load_sweep_config

    recipe = tmp_path / "tiny.yaml"
    recipe.write_text("model: {name: cnn}\nlogger:\n  wandb: {project: inq-tests, entity: lab}\n")
    proc = _cli("sweep", "tiny.yaml", "--grid", "inq.bits=2..9", "--grid", "ensemble.members=1,2,3",
                "--metric", "val_acc", "trainer.max_epochs=3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    config = load_sweep_config(str(tmp_path / "sweeps" / "tiny" / "sweep.yaml"))
    assert config["method"] == "grid"
    assert config["command"] == ["inq", "train", "tiny.yaml", "trainer.max_epochs=3", "${args_no_hyphens}"]
    assert config["parameters"] == {"inq.bits": {"values": list(range(2, 10))},
                                    "ensemble.members": {"values": [1, 2, 3]}}
    assert config["project"] == "inq-tests" and config["entity"] == "lab"
    assert config["metric"] == {"name": "val_acc", "goal": "maximize"}
    assert "24 points" in proc.stdout


def test_sweep_refusals(tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text("model: {name: cnn}\n")
    cases = [
        (["missing.yaml", "--grid", "inq.bits=2,3"], "missing.yaml: no such recipe file"),
        (["tiny.yaml", "--grid", "inq.bits=2,3", "inq.bits=4"], "inq.bits: both swept"),
        (["tiny.yaml", "--grid", "inq.bits=5..2"], "range 5..2 is empty"),
        (["tiny.yaml", "--grid", "inq.bits=2", "--goal", "up"], "--goal 'up'"),
    ]
    for args, message in cases:
        proc = _cli("sweep", *args, cwd=tmp_path)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.startswith("error: ") and message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "sweeps").exists()
