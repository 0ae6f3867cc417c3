"""modules.load_model: rebuild a module from a checkpoint alone, INQ buffers included."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from inqnet.modules import load_model
from inqnet.modules.tasks.classification import ClassificationModule
from inqnet.modules.errors import InputError

SECTIONS = {"model": {"name": "vgg", "layers": [4, "M"], "hidden": [8]},
            "data_info": {"num_classes": 10, "in_channels": 1, "input_size": 8},
            "optimizer": {"name": "sgd", "lr": 0.1}}


def _with_inq_state(module: ClassificationModule) -> ClassificationModule:
    """Gives the first conv the buffers INQ keeps (mask, n1, bits), as a trained model has them."""
    conv = module.net.features[0]
    mask = torch.zeros_like(conv.weight, dtype=torch.bool)
    mask.view(-1)[:5] = True
    conv.register_buffer("weight_inq_mask", mask)
    conv.register_buffer("weight_inq_n1", torch.tensor(-1))
    conv.register_buffer("weight_inq_bits", torch.tensor(5))
    return module


def test_round_trip_with_inq_buffers(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = _with_inq_state(ClassificationModule(**SECTIONS, recipe={"seed": 3}))
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, tmp_path / "m.ckpt")
    loaded = load_model(tmp_path / "m.ckpt")
    assert isinstance(loaded, ClassificationModule) and not loaded.training
    assert loaded.hparams["recipe"] == {"seed": 3}
    conv = loaded.net.features[0]
    assert torch.equal(conv.weight_inq_mask, module.net.features[0].weight_inq_mask)
    assert int(conv.weight_inq_n1) == -1 and int(conv.weight_inq_bits) == 5
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(loaded(x), module.eval()(x))


def test_hparams_are_plain_data_with_defaults_filled() -> None:
    hp = ClassificationModule(**SECTIONS).hparams
    assert hp["model"]["width"] == 1.0 and hp["optimizer"]["momentum"] == 0.0
    assert hp["scheduler"] == {"interval": "epoch", "name": "none"}


@pytest.mark.parametrize("payload, message", [
    (b"not a checkpoint", "not a readable checkpoint"),
    ({"weights": 1}, "not a Lightning checkpoint"),
    ({"state_dict": {}}, "carries no model description"),
    ({"state_dict": {"net.bogus": torch.zeros(1)}, "hyper_parameters": SECTIONS}, "weights do not fit"),
    ({"state_dict": {}, "hyper_parameters": {**SECTIONS, "model": {"name": "vgg", "widht": 1}}}, "cannot rebuild"),
])
def test_bad_checkpoints(tmp_path: Path, payload: object, message: str) -> None:
    path = tmp_path / "bad.ckpt"
    if isinstance(payload, bytes):
        path.write_bytes(payload)
    else:
        torch.save(payload, path)
    with pytest.raises(InputError, match=message):
        load_model(path)
    with pytest.raises(InputError, match="no such checkpoint file"):
        load_model(tmp_path / "missing.ckpt")


def test_loads_stay_weights_only_when_the_environment_says_otherwise(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from inqnet.modules.checkpoints import UnreadableCheckpoint, safe_load

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (Path.touch, (marker,))

    torch.save({"state_dict": {}, "x": Payload()}, tmp_path / "evil.ckpt")
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(UnreadableCheckpoint, match="evil.ckpt: not a readable checkpoint"):
        safe_load(tmp_path / "evil.ckpt")
    with pytest.raises(UnreadableCheckpoint):
        load_model(tmp_path / "evil.ckpt")
    assert not marker.exists()


def test_a_resume_point_needs_what_lightning_restores(tmp_path: Path) -> None:
    from inqnet.modules.checkpoints import RESUME_KEYS, missing_resume_keys, read_resume_point

    full = {key: {} for key in RESUME_KEYS}
    torch.save(full, tmp_path / "full.ckpt")
    assert read_resume_point(tmp_path / "full.ckpt") == full
    torch.save({"state_dict": {}, "epoch": 0, "global_step": 0, "loops": {}}, tmp_path / "weights.ckpt")
    with pytest.raises(InputError, match=r"weights only; missing optimizer_states, lr_schedulers\)$"):
        read_resume_point(tmp_path / "weights.ckpt")
    torch.save({"net.weight": torch.zeros(1)}, tmp_path / "plain.pt")
    with pytest.raises(InputError, match=r"a plain state dict; missing state_dict, epoch"):
        read_resume_point(tmp_path / "plain.pt")
    assert missing_resume_keys([1, 2]) == list(RESUME_KEYS)
