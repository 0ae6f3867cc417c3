"""Learning-rate schedules follow their phase: the float phase and each INQ stage."""
from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from inqnet.modules.inq import INQCallback
from inqnet.modules.inq.schedule import first_phase_length
from inqnet.modules.optim import held_cosine_lr, lightning_optimizers, parse_optimizer, parse_scheduler
from tests.modules.inq.inq_tiny import TinyNet, tiny_loader, trainer_kwargs


class PhasedNet(TinyNet):
    def __init__(self, scheduler: dict) -> None:
        super().__init__(lr=0.1)
        self.sched = parse_scheduler(scheduler)

    def configure_optimizers(self):
        return lightning_optimizers(parse_optimizer({"name": "sgd", "lr": 0.1}), self.sched, self.parameters(),
                                    first_phase_length(self.trainer, self.sched.interval))


class EpochLr(pl.Callback):
    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 0:
            self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


@pytest.mark.parametrize("control", [False, True])
def test_cosine_without_t_max_anneals_over_each_phase(tmp_path, control: bool) -> None:
    torch.manual_seed(0)
    seen = EpochLr()
    inq = INQCallback(bits=4, portions=[0.5, 1.0], epochs_per_stage=2, float_epochs=4, control=control)
    pl.Trainer(max_epochs=8, callbacks=[inq, seen], **trainer_kwargs(tmp_path)).fit(
        PhasedNet({"name": "cosine"}), tiny_loader())
    float_phase = [held_cosine_lr(0.1, 0.0, 4, t) for t in range(4)]
    stage = [held_cosine_lr(0.1, 0.0, 2, t) for t in range(2)]
    assert seen.lrs == pytest.approx(float_phase + stage + stage)


def test_multistep_fires_inside_every_stage(tmp_path) -> None:
    seen = EpochLr()
    inq = INQCallback(bits=4, portions=[0.5, 1.0], epochs_per_stage=3, float_epochs=3)
    pl.Trainer(max_epochs=9, callbacks=[inq, seen], **trainer_kwargs(tmp_path)).fit(
        PhasedNet({"name": "multistep", "milestones": [2], "gamma": 0.1}), tiny_loader())
    assert seen.lrs == pytest.approx([0.1, 0.1, 0.01] * 3)


def test_milestones_as_fractions_land_inside_phases_of_any_length(tmp_path) -> None:
    seen = EpochLr()
    inq = INQCallback(bits=4, portions=[0.5, 1.0], epochs_per_stage=2, float_epochs=4)
    pl.Trainer(max_epochs=8, callbacks=[inq, seen], **trainer_kwargs(tmp_path)).fit(
        PhasedNet({"name": "multistep", "milestones": [0.5], "gamma": 0.1}), tiny_loader())
    assert seen.lrs == pytest.approx([0.1, 0.1, 0.01, 0.01] + [0.1, 0.01] * 2)


def test_milestones_mixing_counts_and_fractions_are_refused() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="not a mix"):
        parse_scheduler({"name": "multistep", "milestones": [0.5, 3]})
    with pytest.raises(ValidationError, match="not a mix"):
        parse_scheduler({"name": "multistep", "milestones": [1.5]})
