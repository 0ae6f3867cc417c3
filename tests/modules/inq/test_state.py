"""INQ state owners (modules/inq/state.py): buffer names, the walker, "fully quantized", and
registering buffers from a state dict (a missing bits buffer is an error, not a silent 5)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from inqnet.modules.errors import InputError
from inqnet.modules.inq import layer_report
from inqnet.modules.inq.state import (BITS, MASK, N1, SUFFIXES, Target, attach_buffers, is_fully_quantized,
                                      is_inq_buffer, prepare_state_dict_buffers, select_targets,
                                      tracked_targets)
from inqnet.modules.inq.verify import verify_layers
from tests.modules.inq.inq_nets import add_inq_state

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "pre_layout"


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Sequential(nn.Conv1d(3, 2, 1)))


def test_buffer_names() -> None:
    assert SUFFIXES == ("_inq_mask", "_inq_n1", "_inq_bits") == (MASK, N1, BITS)
    assert is_inq_buffer("net.0.weight_inq_mask") and is_inq_buffer("weight_inq_bits")
    assert not is_inq_buffer("net.0.weight") and not is_inq_buffer("net.0.bias")


def test_walker_yields_tracked_parameters_in_state_dict_order() -> None:
    net = _net()
    assert list(tracked_targets(net)) == []
    for t in reversed(select_targets(net)):
        attach_buffers(t, 4)
    names = [t.name for t in tracked_targets(net)]
    assert names == ["0.weight", "2.0.weight"]
    assert [k for k in net.state_dict() if k.endswith(MASK)] == [n + MASK for n in names]
    t = next(tracked_targets(net))
    assert t.module is net[0] and t.attr == "weight" and int(t.buffer(BITS)) == 4


def test_missing_buffer_names_itself() -> None:
    net = _net()
    net[0].register_buffer("weight" + MASK, torch.ones(3, 4, dtype=torch.bool))
    (t,) = tracked_targets(net)
    with pytest.raises(InputError, match=r"parameter 0.weight has INQ state but no weight_inq_bits buffer"):
        t.buffer(BITS)


def test_fully_quantized_predicate() -> None:
    net = _net()
    assert not is_fully_quantized(net)  # a float model holds no INQ state
    add_inq_state(net[0], "weight", 5, frozen=1.0)
    add_inq_state(net[2][0], "weight", 5, frozen=0.5)
    first, second = tracked_targets(net)
    assert first.fully_quantized and not second.fully_quantized and not is_fully_quantized(net)
    assert [r.fully_quantized for r in layer_report(net)] == [True, False]
    assert [c.status for c in verify_layers(net)] == ["ok", "partial"]
    add_inq_state(net[2][0], "weight", 5, frozen=1.0)
    assert is_fully_quantized(net) and all(r.fully_quantized for r in layer_report(net))


def test_prepare_state_dict_buffers_round_trip() -> None:
    source = _net()
    add_inq_state(source[0], "weight", 3)
    fresh = _net()
    prepare_state_dict_buffers(fresh, source.state_dict())
    fresh.load_state_dict(source.state_dict())  # strict: every INQ buffer was registered
    (t,) = tracked_targets(fresh)
    assert int(t.buffer(BITS)) == 3 and t.fully_quantized


def test_missing_bits_buffer_is_an_error_naming_the_key() -> None:
    source = _net()
    add_inq_state(source[0], "weight", 3)
    state = {k: v for k, v in source.state_dict().items() if not k.endswith(BITS)}
    with pytest.raises(InputError, match=r"'0.weight_inq_mask' but no '0.weight_inq_bits'"):
        prepare_state_dict_buffers(_net(), state)


def test_inq_state_for_an_unknown_parameter_is_an_error() -> None:
    state = {"9.weight" + MASK: torch.ones(1, dtype=torch.bool), "9.weight" + BITS: torch.tensor(5)}
    with pytest.raises(InputError, match=r"'9.weight_inq_mask' but the model has no parameter there"):
        prepare_state_dict_buffers(_net(), state)


@pytest.mark.parametrize("name", ["last.ckpt", "float.ckpt"])
def test_old_checkpoints_carry_their_bits_and_load(name: str) -> None:
    from inqnet.modules.checkpoints import load_model

    module = load_model(FIXTURES / name)
    targets = list(tracked_targets(module))
    assert targets and all(int(t.buffer(BITS)) == 5 for t in targets)
    assert is_fully_quantized(module) == (name == "last.ckpt")


def test_target_buffer_is_the_registered_tensor() -> None:
    layer = nn.Linear(2, 2)
    attach_buffers(Target("weight", layer, "weight"), 6)
    assert Target("weight", layer, "weight").buffer(MASK) is layer.weight_inq_mask
