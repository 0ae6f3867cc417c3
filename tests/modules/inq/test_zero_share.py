"""A layer whose weights mostly round to 0 gets one warning line, and every share is recorded."""
from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from inqnet.modules.inq import INQCallback
from inqnet.modules.inq.callback import zero_share
from tests.modules.inq.inq_tiny import TinyNet, tiny_loader, trainer_kwargs


def test_zero_share_counts_weights_below_half_the_smallest_level() -> None:
    w = torch.tensor([0.0, 0.01, 0.03, 0.1, 0.5, -0.02])
    # 3 bits, n1 = 0: levels 2^-1, 2^0; below 2^-2 rounds to 0
    assert zero_share(w, 3, 0) == pytest.approx(5 / 6)
    assert zero_share(w, 9, 0) == 1 / 6


@pytest.mark.parametrize("max_value, warned", [(None, False), (64.0, True)])
def test_first_stage_warns_once_per_layer_mostly_zero(tmp_path, capsys, max_value, warned) -> None:
    torch.manual_seed(0)
    inq = INQCallback(bits=3, portions=[0.5, 1.0], epochs_per_stage=1, float_epochs=1, max_value=max_value)
    pl.Trainer(max_epochs=3, callbacks=[inq], **trainer_kwargs(tmp_path)).fit(TinyNet(), tiny_loader())
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: inq:")]
    assert set(inq.zero_shares) == {"conv.weight", "fc.weight"}
    if warned:
        assert len(lines) == 2 and all("inq.max_value=64 fixes n1" in line for line in lines)
        assert all(share > 0.5 for share in inq.zero_shares.values())
        assert "conv.weight" in lines[0] and "n1 = 6" in lines[0]
    else:
        assert lines == [] and all(share <= 0.5 for share in inq.zero_shares.values())
    state = inq.state_dict()
    again = INQCallback(bits=3, portions=[0.5, 1.0])
    again.load_state_dict(state)
    assert again.zero_shares == inq.zero_shares
