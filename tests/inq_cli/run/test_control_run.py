"""`inq train --control`: the float control at equal budget beside the INQ run (real CLI)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from inqnet.modules.inq import in_levels
from inqnet.modules.inq.state import is_inq_buffer
from tests.inq_cli.clirunner import run_cli

pytestmark = pytest.mark.slow
TINY = ["inq.float_epochs=1", "inq.epochs_per_stage=1", "trainer.enable_progress_bar=False"]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    return {k: v for k, v in state.items() if k.endswith("weight") and not is_inq_buffer(k)}


def test_control_trains_beside_the_inq_run_and_only_it_gets_a_change_column(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    proc = run_cli("train", "recipes/quickstart.yaml", f"output_dir={out}", *TINY, "--control")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "float control (5 epochs)" in proc.stdout and "float start (1 epoch)" in proc.stdout
    assert "change (INQ 5-bit − float control)" in proc.stdout
    (run_dir,) = (out / "quickstart").iterdir()
    control = run_dir / "control"
    summary = json.loads((run_dir / "summary.json").read_text())
    control_summary = json.loads((control / "summary.json").read_text())
    assert summary["control_metrics"] == control_summary["final_metrics"] and summary["control_metrics"]
    assert summary["control_dir"] == str(control)
    resolved = yaml.safe_load((control / "resolved.yaml").read_text())
    assert resolved["inq"]["control"] is True and resolved["trainer"]["max_epochs"] == 5
    # the same float phase (same seed and data order), then nothing frozen or rounded into P
    inq_float, control_float = _weights(run_dir / "float.ckpt"), _weights(control / "float.ckpt")
    assert inq_float.keys() == control_float.keys()
    assert all(torch.equal(inq_float[k], control_float[k]) for k in inq_float)
    last = torch.load(control / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    assert not any(is_inq_buffer(k) for k in last)
    conv = next(v for k, v in last.items() if k.endswith("weight") and v.dim() == 4)
    assert not bool(in_levels(conv, 5, 0).all())
    assert control_summary["inq"]["quantized_fraction"] == 0.0
    # the report takes "Original" from the control
    report = run_cli("report", str(out), "--no-weights")
    assert report.returncode == 0, report.stderr[-2000:]
    assert "float (equal budget)" in report.stdout

