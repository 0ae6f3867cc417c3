"""`inq bench kernels` on a machine without a GPU: a clear message, or a labelled CPU run."""
from __future__ import annotations

import json

import pytest
import torch

from tests.inq_cli.clirunner import run_main


pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU behaviour")


def test_without_gpu_says_so_and_writes_nothing(tmp_path, capsys) -> None:
    assert run_main(["bench", "kernels", "--out", str(tmp_path)]) == 0
    assert "no CUDA GPU" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_cpu_reference_run_is_labelled(tmp_path, capsys) -> None:
    assert run_main(["bench", "kernels", "--cpu-reference", "--family", "deepspeech", "--no-conv",
          "--m", "1", "--out", str(tmp_path)]) == 0
    files = sorted(p.suffix for p in tmp_path.iterdir())
    assert files == [".json", ".md"]
    data = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert data["backend"] == "cpu (torch reference)" and data["goals"] == []
    kernels = {r["kernel"] for r in data["rows"]}
    assert kernels == {"dense_fp32", "torch_reference"}
    assert all(r["max_rel_error"] is None or r["max_rel_error"] < 1e-5 for r in data["rows"])
    assert "not the Triton kernels" in capsys.readouterr().out


def test_bad_options_exit_2(tmp_path, capsys) -> None:
    for argv in (["--bits", "12"], ["--m", "1,x"], ["--family", "resnet"]):
        assert run_main(["bench", "kernels", *argv, "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.count("error: ") == 3
