"""Files written by `inq` before the package layout change (tests/fixtures/pre_layout, made by
commit d03cebb) still load, verify, evaluate and resume the same under the `inqnet` root."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pre_layout"
# The overrides the fixtures were trained with (see tests/fixtures/pre_layout/README.md).
TINY = ["model.layers=[8,M,16,M]", "model.hidden=[16]", "inq.float_epochs=2", "inq.epochs_per_stage=1",
        "scheduler.t_max=2"]


def _state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def test_old_checkpoint_loads_with_its_inq_state() -> None:
    from inqnet.modules import load_model
    from inqnet.modules.inq import tracked_targets

    module = load_model(FIXTURES / "last.ckpt")
    targets = list(tracked_targets(module))
    assert targets, "the INQ buffers of an old checkpoint were not restored"
    loaded = module.state_dict()
    for key, value in _state(FIXTURES / "last.ckpt").items():
        assert torch.equal(loaded[key], value), key


def test_old_checkpoint_verifies_and_evaluates_the_same(call_main) -> None:  # type: ignore[no-untyped-def]
    assert call_main("verify", str(FIXTURES / "last.ckpt")).code == 0
    result = call_main("eval", str(FIXTURES / "last.ckpt"), "--json")
    assert result.code == 0, result.err
    expected = json.loads((FIXTURES / "eval_test.json").read_text())["metrics"]
    got = json.loads(result.out.strip().splitlines()[-1])["metrics"]
    assert got == expected


def test_old_export_runs_like_its_checkpoint(call_main, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from inqnet.modules import load_model, load_quantized

    export = FIXTURES / "quickstart.inq.safetensors"
    assert call_main("inspect", str(export), "--histogram", str(tmp_path / "codes.png")).code == 0
    deployed = load_quantized(export)
    module = load_model(FIXTURES / "last.ckpt").eval()
    x = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(deployed(x), module(x))


@pytest.mark.slow
def test_old_midrun_checkpoint_resumes_to_the_same_weights(tmp_path: Path, call_main) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(FIXTURES / "midrun.ckpt", run / "last.ckpt")
    result = call_main("train", "recipes/quickstart.yaml", f"output_dir={tmp_path}", *TINY,
                       "--resume", str(run / "last.ckpt"))
    assert result.code == 0, result.err
    resumed, uninterrupted = _state(run / "last.ckpt"), _state(FIXTURES / "last.ckpt")
    assert resumed.keys() == uninterrupted.keys()
    for key, value in uninterrupted.items():
        if f"{key}_inq_mask" in uninterrupted or not value.is_floating_point():
            assert torch.equal(resumed[key], value), key  # INQ weights, masks, n1, bits: exactly
        else:
            # parameters INQ never rounds (biases) went on training in float: the fixture was made
            # on another CPU, whose BLAS may sum in another order (1-2 ulp here)
            torch.testing.assert_close(resumed[key], value, rtol=1e-5, atol=1e-7, msg=key)
