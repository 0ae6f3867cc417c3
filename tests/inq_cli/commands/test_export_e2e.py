"""End to end through the real CLI: `inq train` (tiny quickstart), `inq export`, `inq inspect`,
then `load_quantized` against `load_model` on the same checkpoint."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.inq_cli.clirunner import run_cli

pytestmark = pytest.mark.slow
TINY = ["inq.float_epochs=1", "inq.epochs_per_stage=1", "inq.bits=4",
        "trainer.enable_progress_bar=False"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    proc = run_cli("train", "recipes/quickstart.yaml", f"output_dir={out}", *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (out / "quickstart").iterdir()
    return run_dir


def test_train_export_inspect_load(run_dir: Path, tmp_path: Path) -> None:
    from inqnet.modules import load_model, load_quantized
    from inqnet.modules.export.runtime import QuantConv2d, QuantLinear

    export = tmp_path / "quickstart.inq.safetensors"
    proc = run_cli("export", str(run_dir / "last.ckpt"), "-o", str(export), "--zstd")
    assert proc.returncode == 0, proc.stderr
    assert "4-bit codes" in proc.stdout and "reduction" in proc.stdout
    proc = run_cli("inspect", str(export))
    assert proc.returncode == 0, proc.stderr
    assert "net.features.0.weight" in proc.stdout
    assert export.with_name("quickstart.inq.codes.png").is_file()

    float_model = load_model(run_dir / "last.ckpt")
    quantized = load_quantized(export)
    layers = [m for m in quantized.modules() if isinstance(m, (QuantConv2d, QuantLinear))]
    assert len(layers) == 6  # 4 conv + 2 linear of the quickstart VGG
    x = torch.randn(4, 1, 8, 8)
    torch.testing.assert_close(quantized(x), float_model(x), rtol=1e-5, atol=1e-5)


def test_float_checkpoint_is_refused(run_dir: Path, tmp_path: Path) -> None:
    proc = run_cli("export", str(run_dir / "float.ckpt"), "-o", str(tmp_path / "f.inq.safetensors"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "float.ckpt" in lines[0]
    assert "Traceback" not in proc.stderr
