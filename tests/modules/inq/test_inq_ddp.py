"""Two CPU processes under DDP (gloo) make the identical INQ partition."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["magnitude", "random"])
def test_ddp_ranks_make_identical_partition(tmp_path: Path, strategy: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve().parent / "ddp_inq_script.py"), str(tmp_path), strategy],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for epoch in range(3):
        a = torch.load(tmp_path / f"rank0_epoch{epoch}.pt")
        b = torch.load(tmp_path / f"rank1_epoch{epoch}.pt")
        masks = [k for k in a if k.endswith("_inq_mask")]
        assert masks == ["conv.weight_inq_mask", "fc.weight_inq_mask"]
        for k in a:
            if k.startswith("bn.running") or k.endswith("num_batches_tracked"):
                continue  # BatchNorm statistics are per rank between DDP buffer broadcasts
            assert torch.equal(a[k], b[k]), f"epoch {epoch}: {k} differs between ranks"
        frac = float(a["conv.weight_inq_mask"].float().mean())
        assert frac == pytest.approx([0.5, 0.75, 1.0][epoch], abs=0.03)
