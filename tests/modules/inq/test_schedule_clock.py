"""INQ's clock has one owner (`inqnet.modules.inq.schedule.InqClock`): the recipe's `inq` section,
INQCallback, the float baseline, the annotate FCNs' float snapshot and their fine-tuning length all
read it, so none of them can disagree about when the float phase ends or a stage starts."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from inqnet.cli.annotate.fcns import FloatSnapshot, _schedule
from inqnet.cli.config.load import load_recipe
from inqnet.modules.inq import INQCallback, InqClock
from inqnet.modules.inq.baseline import FloatBaseline
from tests.inq_cli.clirunner import REPO

QUICKSTART = REPO / "recipes" / "quickstart.yaml"
EPOCHS = InqClock(float_length=3, stage_length=2, stages=4)
STEPS = InqClock(float_length=5, stage_length=10, stages=2, step_mode=True)


def fake_trainer(position: int, step_mode: bool) -> SimpleNamespace:
    """What the callbacks read of a Trainer, at ``position`` on an epoch or a step clock."""
    return SimpleNamespace(current_epoch=0 if step_mode else position, global_step=position if step_mode else 0,
                           optimizers=[], lr_scheduler_configs=[], callback_metrics={"val/acc": torch.tensor(0.5)})


def test_the_clock() -> None:
    assert EPOCHS.stage_starts == (3, 5, 7, 9) and EPOCHS.last_stage_start == 9
    assert EPOCHS.min_length == 10 and EPOCHS.total == 11
    assert [EPOCHS.stages_due(t) for t in range(12)] == [0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 4]
    assert (EPOCHS.unit, EPOCHS.limit_key, STEPS.unit, STEPS.limit_key) == ("epoch", "max_epochs", "step", "max_steps")
    assert STEPS.stage_starts == (5, 15) and STEPS.total == 25
    assert EPOCHS.tick(fake_trainer(4, False), "epoch") == 4 and EPOCHS.tick(fake_trainer(4, False), "batch") is None
    assert STEPS.tick(fake_trainer(7, True), "batch") == 7 and STEPS.tick(fake_trainer(7, True), "epoch") is None
    assert InqClock.of(4, epochs_per_stage=2, float_epochs=3, float_steps=99) == EPOCHS  # the idle clock is ignored
    assert InqClock.of(2, epochs_per_stage=7, float_epochs=9, steps_per_stage=10, float_steps=5) == STEPS
    for kwargs, message in [(dict(float_epochs=-1), "float_epochs must be"), (dict(epochs_per_stage=0), "epochs_per_stage"),
                            (dict(steps_per_stage=0), "steps_per_stage"), (dict(epochs_per_stage=True), "epochs_per_stage")]:
        with pytest.raises(ValueError, match=message):
            InqClock.of(2, **kwargs)


@pytest.mark.parametrize("clock", [EPOCHS, STEPS], ids=["epochs", "steps"])
def test_callback_quantizes_at_the_clock_s_stage_starts(clock: InqClock, monkeypatch: pytest.MonkeyPatch) -> None:
    if clock.step_mode:
        inq = INQCallback(portions=[0.5, 1.0], steps_per_stage=clock.stage_length, float_steps=clock.float_length,
                          log_stats=False)
    else:
        inq = INQCallback(epochs_per_stage=clock.stage_length, float_epochs=clock.float_length, log_stats=False)
    assert inq.clock == clock
    applied: list[tuple[int, int]] = []
    position = 0
    monkeypatch.setattr(inq, "apply_stage", lambda stage: applied.append((stage, position)))
    for position in range(clock.total + 3):
        trainer = fake_trainer(position, clock.step_mode)
        inq.on_train_epoch_start(trainer, None)
        inq.on_train_batch_start(trainer, None, None, 0)
    assert applied == list(enumerate(clock.stage_starts)) and inq.finished


@pytest.mark.parametrize("clock", [EPOCHS, STEPS, InqClock(0, 1, 2)], ids=["epochs", "steps", "no float phase"])
def test_float_baseline_and_snapshot_take_the_float_end(clock: InqClock) -> None:
    baseline, snapshot = FloatBaseline(clock), FloatSnapshot(clock)
    module = SimpleNamespace(net=nn.Linear(2, 2))
    fired: dict[str, list[tuple[int, str]]] = {"baseline": [], "snapshot": []}
    for position in range(clock.total):
        trainer = fake_trainer(position, clock.step_mode)
        for hook in ("epoch", "batch"):
            if hook == "epoch":
                baseline.on_train_epoch_start(trainer, module)
                snapshot.on_train_epoch_start(trainer, module)
            else:
                baseline.on_train_batch_start(trainer, module, None, 0)
                snapshot.on_train_batch_start(trainer, module, None, 0)
            for name, done in (("baseline", baseline.done), ("snapshot", snapshot.weights is not None)):
                if done and not fired[name]:
                    fired[name].append((position, hook))
    end = [(clock.float_length, "batch" if clock.step_mode else "epoch")]
    assert fired["snapshot"] == end  # the weights stage 0 quantizes
    assert fired["baseline"] == (end if clock.float_length else [])  # no float phase: nothing to record
    assert baseline.metrics == ({"val/acc": 0.5} if clock.float_length else {})


@pytest.mark.parametrize("overrides, clock", [
    (["inq.float_epochs=3", "inq.epochs_per_stage=2"], EPOCHS),
    (["inq.epochs_per_stage=null", "inq.float_epochs=0", "inq.steps_per_stage=10", "inq.float_steps=5",
      "inq.portions=[0.5, 1]"], STEPS),
], ids=["epochs", "steps"])
def test_recipe_and_callback_read_one_clock(overrides: list[str], clock: InqClock) -> None:
    recipe = load_recipe(QUICKSTART, overrides + ["trainer.max_epochs=null"])
    assert recipe.inq.clock == clock == INQCallback(**recipe.inq.callback_kwargs(recipe.seed)).clock
    assert getattr(recipe.trainer, clock.limit_key) == clock.total  # every stage runs its full length
    assert load_recipe(QUICKSTART, overrides + [f"trainer.{clock.limit_key}={clock.min_length}"])
    with pytest.raises(Exception, match=f"needs >= {clock.min_length}"):
        load_recipe(QUICKSTART, overrides + [f"trainer.{clock.limit_key}={clock.min_length - 1}"])


def test_annotate_finetune_runs_the_callback_s_whole_clock() -> None:
    recipe = load_recipe(QUICKSTART, ["inq.float_epochs=3", "inq.epochs_per_stage=2", "annotate.finetune_epochs=4"])
    length, inq_kwargs = _schedule(recipe, finetune=True)
    clock = INQCallback(**inq_kwargs).clock
    assert clock.float_length == 4 and clock.stage_starts == (4, 6, 8, 10)
    assert length == {"max_epochs": clock.total, "max_steps": -1}
    assert _schedule(recipe, finetune=False)[0]["max_epochs"] == recipe.inq.clock.total
