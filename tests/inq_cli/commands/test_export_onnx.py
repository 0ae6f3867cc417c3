"""`inq export CKPT --onnx -o model.onnx`: a file ONNX Runtime loads and runs like load_model;
bad paths, missing packages and options that do not apply are one line, exit code 2."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnx", reason="onnx is not installed (pip install 'inqnet[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'inqnet[onnx]')")

from inqnet.modules.checkpoints import load_model, read_checkpoint  # noqa: E402
from inqnet.modules.inq import tracked_targets  # noqa: E402
from tests.inq_cli.clirunner import run_main  # noqa: E402
from tests.modules.inq.inq_nets import add_inq_state  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "pre_layout" / "last.ckpt"  # quickstart, 5-bit


def four_bit_checkpoint(path: Path) -> Path:
    """The quickstart checkpoint with its weights rounded again to 4 bits (every layer int8)."""
    checkpoint = read_checkpoint(FIXTURE)
    model = load_model(checkpoint)
    for target in list(tracked_targets(model)):
        add_inq_state(target.module, target.attr, 4)
    torch.save({**checkpoint, "state_dict": model.state_dict()}, path)
    return path


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize("bits", [4, 5])
def test_export_onnx_runs_in_onnx_runtime_like_load_model(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          bits: int) -> None:
    ckpt = FIXTURE if bits == 5 else four_bit_checkpoint(tmp_path / "q4.ckpt")
    out = tmp_path / "model.onnx"
    assert run_main(["export", str(ckpt), "--onnx", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "net.features.0.weight" in printed and "fp32 ONNX" in printed and "reduction" in printed
    assert ("int8 x 2^" in printed) == (bits == 4) and ("float16" in printed) == (bits == 5)
    assert "against the fp32 ONNX export: 0" in printed
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])  # a plain session
    x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = load_model(ckpt)(x).numpy()
    got = session.run(None, {"input": x.numpy()})[0]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_bad_paths_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.onnx"
    assert run_main(["export", str(tmp_path / "none.ckpt"), "--onnx", "-o", str(out)]) == 2
    assert "no such checkpoint file" in one_error_line(capsys.readouterr().err)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert run_main(["export", str(FIXTURE), "--onnx", "-o", str(blocker / "x.onnx")]) == 2
    assert one_error_line(capsys.readouterr().err).startswith(f"error: {blocker / 'x.onnx'}: cannot write")
    assert not out.exists() and blocker.read_text() == "not a folder"


def test_float_checkpoint_needs_allow_partial(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    float_ckpt = FIXTURE.with_name("float.ckpt")  # the end of the quickstart's float phase
    out = tmp_path / "f.onnx"
    assert run_main(["export", str(float_ckpt), "--onnx", "-o", str(out)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: {float_ckpt}: 4 of 4 INQ layers are not fully quantized") and "--allow-partial" in line
    assert not out.exists()
    assert run_main(["export", str(float_ckpt), "--onnx", "-o", str(out), "--allow-partial"]) == 0
    assert "not fully quantized" in capsys.readouterr().out and out.exists()


def test_missing_package_and_options_that_do_not_apply(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "x.onnx"
    assert run_main(["export", str(FIXTURE), "--onnx", "-o", str(out), "--zstd"]) == 2
    assert "--zstd: applies to .inq.safetensors, not --onnx" in one_error_line(capsys.readouterr().err)
    assert run_main(["export", str(FIXTURE), "--onnx", "-o", str(out), "--float-dtype", "float16"]) == 2
    assert "--float-dtype" in one_error_line(capsys.readouterr().err)
    monkeypatch.setitem(sys.modules, "onnx", None)  # as on a machine without the optional packages
    assert run_main(["export", str(FIXTURE), "--onnx", "-o", str(out)]) == 2
    assert "needs the onnx package: pip install 'inqnet[onnx]'" in one_error_line(capsys.readouterr().err)
    assert not out.exists()
