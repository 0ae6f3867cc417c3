"""Starting from trained float weights: torchvision state dicts, Lightning checkpoints, safetensors."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from inqnet.modules.errors import DataError
from inqnet.modules.init_from import load_float_weights
from inqnet.modules.networks.vgg16 import PaperVGG


def small(num_classes: int = 10) -> PaperVGG:
    return PaperVGG("vgg_small5_bn", num_classes=num_classes, input_size=32, width=0.125)


def same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_torchvision_style_state_dict(tmp_path: Path) -> None:
    source = small()
    torch.save(source.state_dict(), tmp_path / "w.pth")
    target = small()
    report = load_float_weights(target, tmp_path / "w.pth")
    assert same(source, target) and report.prefix == "" and not report.missing


def test_lightning_checkpoint_with_prefix_and_inq_buffers(tmp_path: Path) -> None:
    source = small()
    state = {f"net.{k}": v for k, v in source.state_dict().items()}
    state["net.features.0.weight_inq_mask"] = torch.ones(1, dtype=torch.bool)
    torch.save({"state_dict": state, "epoch": 3, "hyper_parameters": {"model": {"name": "vgg16"}}}, tmp_path / "a.ckpt")
    target = small()
    report = load_float_weights(target, tmp_path / "a.ckpt")
    assert same(source, target) and report.prefix == "net."


def test_safetensors_and_ddp_prefix(tmp_path: Path) -> None:
    source = small()
    save_file({f"module.{k}": v.contiguous() for k, v in source.state_dict().items()}, str(tmp_path / "w.safetensors"))
    target = small()
    load_float_weights(target, tmp_path / "w.safetensors")
    assert same(source, target)


def test_other_head_needs_skip_mismatched(tmp_path: Path) -> None:
    torch.save(small(1000).state_dict(), tmp_path / "imagenet.pth")
    with pytest.raises(DataError, match="classifier.6.weight: shape"):
        load_float_weights(small(10), tmp_path / "imagenet.pth")
    report = load_float_weights(small(10), tmp_path / "imagenet.pth", skip_mismatched=True)
    assert sorted(report.mismatched) == ["classifier.6.bias", "classifier.6.weight"]


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_float_weights(small(), tmp_path / "none.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="cannot read checkpoint"):
        load_float_weights(small(), tmp_path / "junk.pth")
    torch.save({"other.weight": torch.zeros(2)}, tmp_path / "foreign.pth")
    with pytest.raises(DataError, match="no tensor in the checkpoint matches"):
        load_float_weights(small(), tmp_path / "foreign.pth")


def test_check_init_from_checks_everything_without_loading(tmp_path: Path) -> None:
    from inqnet.modules.init_from import check_init_from

    torch.save(small(1000).state_dict(), tmp_path / "imagenet.pth")
    target = small(10)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(DataError, match="classifier.6.weight: shape"):
        check_init_from(tmp_path / "imagenet.pth", target)
    check_init_from(tmp_path / "imagenet.pth", target, skip_mismatched=True)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())  # nothing copied
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(DataError, match="list.pt: no state dict of tensors"):
        check_init_from(tmp_path / "list.pt")  # even without a network to compare with
    check_init_from(None)
