"""`inq verify` fails a checkpoint or export holding NaN/inf weights, naming the first tensor."""
from __future__ import annotations

from pathlib import Path

import torch

from inqnet.modules.inq.verify import non_finite
from tests.inq_cli.clirunner import run_main
from tests.inq_cli.commands.test_export_inspect import make_checkpoint


def test_non_finite_names_the_first_tensor_and_counts() -> None:
    tensors = {"a": torch.ones(3), "steps": torch.tensor([5]), "b": torch.tensor([1.0, float("nan"), float("inf")]),
               "c": torch.tensor([float("-inf")])}
    bad = non_finite(tensors)
    assert bad is not None and (bad.name, bad.count, bad.tensors) == ("b", 2, 2)
    assert "tensor b holds 2 non-finite" in bad.message()
    assert non_finite({"a": torch.ones(2), "i": torch.arange(3)}) is None


def _poison(ckpt: Path, key: str, value: float) -> None:
    data = torch.load(ckpt, weights_only=True)
    data["state_dict"][key].view(-1)[0] = value
    torch.save(data, ckpt)


def test_verify_fails_a_checkpoint_with_nan_weights(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    good = make_checkpoint(tmp_path / "good.ckpt", bits=4)
    assert run_main(["verify", str(good)]) == 0
    capsys.readouterr()
    bad = make_checkpoint(tmp_path / "bad.ckpt", bits=4)
    # a float (not INQ-tracked) tensor: "in P" checks alone would not see it
    _poison(bad, "net.classifier.1.bias", float("nan"))
    assert run_main(["verify", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "net.classifier.1.bias" in err[0] and "non-finite" in err[0], err


def test_verify_fails_an_export_with_inf_floats(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from inqnet.modules.export.writer import export_model
    from inqnet.modules import load_model

    module = load_model(make_checkpoint(tmp_path / "run.ckpt", bits=4))
    good = tmp_path / "good.inq.safetensors"
    export_model(module, good)
    assert run_main(["verify", str(good)]) == 0
    assert "all finite" in capsys.readouterr().out
    with torch.no_grad():
        module.net.classifier[1].bias[0] = float("inf")
    bad = tmp_path / "bad.inq.safetensors"
    export_model(module, bad)
    assert run_main(["verify", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "net.classifier.1.bias" in err[0] and "non-finite" in err[0], err
