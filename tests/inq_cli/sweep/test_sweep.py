"""`inq sweep`: grid parsing, the W&B sweep YAML, and its points rendered as the W&B agent renders them."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from inqnet.cli.errors import InqError
from inqnet.cli.config.overrides import parse_override, parse_value
from inqnet.cli.sweep.grid import expand, parse_axes, parse_axis, point_name, point_overrides

ROOT = Path(__file__).resolve().parents[3]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "inqnet.cli.app", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


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


@pytest.mark.parametrize("text", ["5", "-1", "1e-4", "0.01", "true", "False", "None", "null", "magnitude",
                                  "bf16-mixed"])
def test_grid_values_read_as_overrides(text: str) -> None:
    value = parse_axis(f"inq.x={text}").values[0]
    assert repr(value) == repr(parse_value(text))  # the one parser, type included
    assert parse_override(point_overrides({"inq.x": value})[0]).value == value  # rendered, it reads back
    assert parse_axis("inq.x='7',8").values == ("7", 8)
    with pytest.raises(InqError, match=r"--grid 'inq.x=1,\{2\}': cannot read the value"):
        parse_axis("inq.x=1,{2}")


def test_sweep_command_splits_overrides_without_slurm() -> None:
    import ast

    tree = ast.parse((ROOT / "inq_cli" / "commands" / "sweep.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "inqnet.cli.config.overrides" in imported
    assert not any(name.startswith("inqnet.cli.slurm") for name in imported)


@pytest.mark.slow  # validates the recipe in a fresh process (imports torch)
def test_sweep_yaml(tmp_path: Path) -> None:
    from wandb.sdk.launch.sweeps.utils import load_sweep_config

    recipe = tmp_path / "tiny.yaml"
    recipe.write_text((ROOT / "recipes" / "quickstart.yaml").read_text()
                      + "logger:\n  wandb: {project: inq-tests, entity: lab}\n")
    proc = _cli("sweep", "tiny.yaml", "--grid", "inq.bits=2..9", "--grid", "ensemble.members=1,2,3",
                "--metric", "val_acc", "trainer.max_epochs=30", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    config = load_sweep_config(str(tmp_path / "sweeps" / "tiny" / "sweep.yaml"))
    assert config["method"] == "grid"
    assert config["command"] == ["inq", "train", "tiny.yaml", "trainer.max_epochs=30", "${args_no_hyphens}"]
    assert config["parameters"] == {"inq.bits": {"values": list(range(2, 10))},
                                    "ensemble.members": {"values": [1, 2, 3]}}
    assert config["project"] == "inq-tests" and config["entity"] == "lab"
    assert config["metric"] == {"name": "val_acc", "goal": "maximize"}
    assert "24 points" in proc.stdout


@pytest.mark.slow  # validates the recipe in a fresh process (imports torch)
def test_sweep_refusals(tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text((ROOT / "recipes" / "quickstart.yaml").read_text())
    cases = [
        (["tiny.yaml", "--grid", "inq.bits=8..12"], "inq.bits: must be <= 9 (got 10)"),
        (["tiny.yaml", "--grid", "inq.bitz=2,3"], "inq.bitz"),
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


# --- running points: as the W&B agent would, and here with --local --------------------------------

TINY = [
    "threads=1", "model.layers=[8, M]", "model.hidden=[16]", "data.batch_size=64",
    "inq.float_epochs=1", "inq.epochs_per_stage=1", "inq.portions=[0.5, 1.0]", "trainer.max_epochs=3",
    "trainer.accelerator=cpu", "trainer.devices=1", "trainer.enable_progress_bar=false",
    "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
]


def _agent_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "SLURM_"))}
    env.update(PYTHONPATH=str(ROOT), NETRC=str(tmp_path / "no-netrc"), WANDB_CONFIG_DIR=str(tmp_path / "wbcfg"))
    return env


@pytest.mark.slow
def test_a_point_runs_as_the_wandb_agent_runs_it(tmp_path: Path) -> None:
    from wandb.sdk.launch.sweeps.utils import create_sweep_command, create_sweep_command_args, load_sweep_config

    out = tmp_path / "sweep"
    proc = _cli("sweep", "recipes/quickstart.yaml", "--grid", "inq.bits=3..4", "--grid", "ensemble.members=1",
                "--out", str(out), *TINY, f"output_dir={tmp_path / 'runs'}", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    config = load_sweep_config(str(out / "sweep.yaml"))
    # What wandb_agent.Agent._command_run does with the command and one point the server hands out.
    point = {"inq.bits": {"value": config["parameters"]["inq.bits"]["values"][1]},
             "ensemble.members": {"value": config["parameters"]["ensemble.members"]["values"][0]}}
    sweep_vars = create_sweep_command_args({"args": point})
    command: list[str] = []
    for chunk in create_sweep_command(list(config["command"])):
        chunk = str(chunk)
        command += sweep_vars.get(chunk[2:-1], []) if chunk.startswith("${") and chunk.endswith("}") else [chunk]
    assert command[:3] == ["inq", "train", "recipes/quickstart.yaml"]
    assert command[-2:] == ["inq.bits=4", "ensemble.members=1"]
    inq = Path(sys.executable).with_name("inq")
    command = ([str(inq)] if inq.exists() else [sys.executable, "-m", "inqnet.cli.app"]) + command[1:]
    env = {**_agent_env(tmp_path), "WANDB_SWEEP_ID": "sw33p1d", "WANDB_RUN_ID": "agentrun1"}
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    (run_dir,) = list((tmp_path / "runs" / "quickstart").iterdir())
    resolved = yaml.safe_load((run_dir / "resolved.yaml").read_text())
    assert resolved["inq"]["bits"] == 4 and resolved["ensemble"]["members"] == 1
    # A sweep agent's run logs to W&B without a logger section; here offline, as run `agentrun1`.
    (offline,) = list((run_dir / "wandb").glob("offline-run-*-agentrun1"))
    assert "sync later with: wandb sync" in run.stdout
    from tests.inq_cli.run.test_wandb import _history_keys

    keys, config = _history_keys(offline)
    assert {"val/acc", "inq/frozen_fraction", "inq/compression_ratio", "stage/val/acc"} <= keys
    assert any(k.startswith("weights/") for k in keys) and config["inq"].find('"bits":4') >= 0


@pytest.mark.slow
def test_local_sweep_runs_points_skips_finished_and_collects(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    args = ["sweep", "recipes/quickstart.yaml", "--grid", "inq.bits=3,4", "--local", "--out", str(out), *TINY]
    proc = _cli(*args, "--jobs", "2", cwd=ROOT)  # both points at once, one process each
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    ledger = json.loads((out / "points.json").read_text())["points"]
    assert set(ledger) == {"inq.bits-3", "inq.bits-4"}
    assert all(p["status"] == "finished" for p in ledger.values())
    for name, point in ledger.items():
        run_dir = Path(point["run_dir"])
        assert run_dir.is_relative_to(out / "runs" / name)
        assert yaml.safe_load((run_dir / "resolved.yaml").read_text())["inq"]["bits"] == point["values"]["inq.bits"]
    with (out / "results.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:2] == ["inq.bits", "status"] and [r[:2] for r in rows[1:]] == [["3", "finished"], ["4", "finished"]]
    assert all(r[2] for r in rows[1:]), rows  # a metric value per point
    report = (out / "report" / "report.md").read_text()
    assert "| Configurations | float start (1 epoch) | 3 bits | 4 bits |" in report
    # A second call trains nothing; a point whose run folder is gone is run again.
    again = _cli(*args, cwd=ROOT)
    assert again.returncode == 0 and again.stdout.count("finished earlier, skipped") == 2
    shutil.rmtree(ledger["inq.bits-4"]["run_dir"])
    third = _cli(*args, cwd=ROOT)
    assert third.returncode == 0 and third.stdout.count("finished earlier, skipped") == 1
    assert json.loads((out / "points.json").read_text())["points"]["inq.bits-4"]["status"] == "finished"


# --- float controls: one per seed and configuration, not one per bit width ------------------------

def test_control_points_one_per_seed_and_configuration(tmp_path: Path) -> None:
    from inqnet.cli.sweep.grid import control_axes
    from inqnet.cli.sweep.local import LocalSweep, sweep_config

    axes = parse_axes(["inq.bits=2..4", "seed=0..1", "model.width=0.5,1.0"])
    points = LocalSweep("r.yaml", axes, tmp_path, control=True).points()
    inq, controls = points[:12], points[12:]
    assert len(inq) == 12 and all("inq.control" not in p.values for p in inq)
    assert [p.overrides for p in controls] == [
        ["seed=0", "model.width=0.5", "inq.control=True"], ["seed=0", "model.width=1.0", "inq.control=True"],
        ["seed=1", "model.width=0.5", "inq.control=True"], ["seed=1", "model.width=1.0", "inq.control=True"]]
    assert controls[0].name == "seed-0_model.width-0.5_inq.control-True"
    assert parse_override(controls[0].overrides[-1]).value is True
    assert len(LocalSweep("r.yaml", axes, tmp_path).points()) == 12  # no controls unless asked
    config = sweep_config("r.yaml", control_axes(parse_axes(["inq.bits=2..9"])), name="c")
    assert config["parameters"] == {"inq.control": {"values": [True]}}  # a valid W&B grid of one point


def test_sweep_control_writes_a_control_sweep_for_wandb(tmp_path: Path, call_main) -> None:
    (tmp_path / "tiny.yaml").write_text((ROOT / "recipes" / "quickstart.yaml").read_text())
    out = tmp_path / "sw"
    result = call_main("sweep", str(tmp_path / "tiny.yaml"), "--grid", "inq.bits=2..9", "--grid", "seed=0..2",
                       "--control", "--out", str(out))
    assert result.code == 0, result.err
    assert "(24 points)" in result.out and "(3 controls)" in result.out
    control = yaml.safe_load((out / "sweep_control.yaml").read_text())
    assert control["parameters"] == {"seed": {"values": [0, 1, 2]}, "inq.control": {"values": [True]}}
    assert control["command"][-1] == "${args_no_hyphens}" and control["method"] == "grid"
    bad = call_main("sweep", str(tmp_path / "tiny.yaml"), "--grid", "inq.bits=2,3", "--control", "inq.control=true",
                    "--out", str(tmp_path / "bad"))
    assert bad.code == 2 and "--control: inq.control is set by --control itself" in bad.err
    assert not (tmp_path / "bad").exists()


def test_results_best_is_fully_quantized_and_tables_never_pool(tmp_path: Path) -> None:
    from inqnet.cli.sweep.local import LocalSweep
    from inqnet.cli.sweep.results import collect_results
    from tests.inq_cli.report.fakeruns import write_run

    axes = parse_axes(["inq.bits=2,3", "model.width=0.5,1.0"])
    states = LocalSweep("r.yaml", axes, tmp_path, control=True).points()
    for state in states:
        width = state.values["model.width"]
        last = 0.60 + state.values.get("inq.bits", 4) / 100 + width / 10
        state.run_dir = str(write_run(tmp_path / "runs" / state.name, [0.95, 0.99, 0.5, last],
                                      bits=state.values.get("inq.bits", 5), control="inq.control" in state.values,
                                      model__width=width))
        state.status = "finished"
    markdown, files = collect_results(states, axes, tmp_path / "out")
    lines = markdown.splitlines()
    assert lines[0] == ("| inq.bits | model.width | control | status | val/acc (last) | val/acc (best, fully quantized) "
                        "| run_dir |")
    assert lines[2].startswith("| 2 | 0.5 |  | finished | 0.6700 | 0.6700 |")  # not the float epochs' 0.99
    assert lines[6].startswith("|  | 0.5 | yes | finished | 0.6900 | 0.6900 |")  # control: over the same epochs
    assert "| vgg (model.width=0.5) | 69.00 (n=1) | 67.00 (n=1) | 68.00 (n=1) |" in markdown
    assert "| vgg (model.width=1.0) | 74.00 (n=1) | 72.00 (n=1) | 73.00 (n=1) |" in markdown
    assert "INQ − float (equal budget)" in markdown
    assert tmp_path / "out" / "report" / "val_acc_by_bits.png" in files
