"""The shipped SA quickstart, shrunk by overrides: synthetic GlaS written on first use, `inq annotate`,
then network training on its suggestions through the `latest` link the NT recipe names."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.inq_cli.clirunner import run_cli

pytestmark = pytest.mark.slow
SMALL = ["model.width=4", "inq.float_epochs=1", "inq.epochs_per_stage=1", "data.patches_per_image=2",
         "annotate.initial=4", "trainer.enable_progress_bar=false"]


def test_sa_quickstart_then_nt(tmp_path: Path) -> None:
    root, out = tmp_path / "glas_synth", tmp_path / "runs"
    proc = run_cli("annotate", "recipes/sa_quickstart.yaml", f"data.root={root}", f"output_dir={out}", *SMALL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (root / "Grade.csv").is_file()  # generated on first use
    assert "pool of 48 64px patches" in proc.stdout and "round 2/2" in proc.stdout
    suggestions = out / "sa_quickstart" / "latest" / "suggestions.json"
    rounds = json.loads(suggestions.read_text())["rounds"]
    assert [len(r["candidates"]) for r in rounds] == [4, 4] and [len(r["selected"]) for r in rounds] == [2, 2]

    nt = run_cli("train", "recipes/sa_quickstart_nt.yaml", f"data.root={root}", f"output_dir={out}",
                 f"data.suggestions={suggestions}", "model.width=4", "inq.float_epochs=1", "inq.epochs_per_stage=1",
                 "data.patches_per_image=2", "trainer.enable_progress_bar=false")
    assert nt.returncode == 0, nt.stderr[-3000:]
    (run_dir,) = (out / "sa_quickstart_nt").iterdir()
    assert "test/f1_dice" in json.loads((run_dir / "summary.json").read_text())["final_metrics"]
