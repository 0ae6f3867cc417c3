"""The float control: the INQ run minus the quantization (same clock, restarts, data order)."""
from __future__ import annotations

import lightning.pytorch as pl
import torch

from inqnet.modules.inq import INQCallback, in_levels
from inqnet.modules.inq.state import is_inq_buffer, tracked_targets
from tests.modules.inq.inq_tiny import TinyNet, tiny_loader, trainer_kwargs


class Snapshots(pl.Callback):
    """Weights at the end of each epoch and the learning rate of each epoch's first batch."""

    def __init__(self) -> None:
        self.weights: dict[int, dict[str, torch.Tensor]] = {}
        self.lrs: dict[int, float] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 0:
            self.lrs[trainer.current_epoch] = trainer.optimizers[0].param_groups[0]["lr"]

    def on_train_epoch_end(self, trainer, pl_module):
        self.weights[trainer.current_epoch] = {k: v.detach().clone() for k, v in pl_module.state_dict().items()
                                               if k.endswith("weight")}


def _run(tmp_path, control: bool) -> tuple[TinyNet, Snapshots]:
    torch.manual_seed(0)
    model, snaps = TinyNet(lr=0.05, scheduler="exponential"), Snapshots()
    inq = INQCallback(bits=3, portions=[0.5, 1.0], epochs_per_stage=2, float_epochs=2, control=control)
    pl.seed_everything(0, verbose=False)
    pl.Trainer(max_epochs=6, callbacks=[inq, snaps], **trainer_kwargs(tmp_path)).fit(model, tiny_loader())
    return model, snaps


def test_control_shares_the_float_phase_then_quantizes_nothing(tmp_path) -> None:
    inq_model, inq_snaps = _run(tmp_path / "inq", control=False)
    ctl_model, ctl_snaps = _run(tmp_path / "control", control=True)
    # Same weights through the float phase (epochs 0 and 1; the first stage starts epoch 2).
    for epoch in (0, 1):
        for name, w in inq_snaps.weights[epoch].items():
            assert torch.equal(w, ctl_snaps.weights[epoch][name]), (epoch, name)
    # Same learning-rate clock: restarts at each stage start in both runs.
    assert inq_snaps.lrs == ctl_snaps.lrs
    assert ctl_snaps.lrs[2] == ctl_snaps.lrs[0] == ctl_snaps.lrs[4] == 0.05
    # No INQ state on the control, and its weights are not powers of two.
    assert list(tracked_targets(ctl_model)) == []
    assert not any(is_inq_buffer(k) for k in ctl_model.state_dict())
    w = ctl_model.conv.weight.detach()
    assert not bool(in_levels(w, 3, 0).all())
    assert not torch.equal(w, inq_model.conv.weight.detach())
