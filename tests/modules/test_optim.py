"""Optimizer / scheduler configs and builders (inqnet.modules.optim)."""
from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from inqnet.modules.errors import InputError
from inqnet.modules.optim import (HeldCosine, InverseTimeDecay, check_schedule_fits, held_cosine_lr, build_optimizer, build_scheduler, inverse_time_lr, lightning_optimizers,
                           parse_optimizer, parse_scheduler)


def _params() -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.ones(3))]


def test_sgd_settings_reach_torch() -> None:
    opt = build_optimizer(parse_optimizer({"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True,
                                           "weight_decay": 5e-4}), _params())
    assert isinstance(opt, torch.optim.SGD)
    group = opt.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"], group["weight_decay"]) == (0.1, 0.9, True, 5e-4)


@pytest.mark.parametrize("name, kind, decay", [("adam", torch.optim.Adam, 0.0), ("adamw", torch.optim.AdamW, 0.01)])
def test_adam_family(name: str, kind: type, decay: float) -> None:
    opt = build_optimizer(parse_optimizer({"name": name, "lr": 1e-3}), _params())
    assert type(opt) is kind and opt.param_groups[0]["weight_decay"] == decay


def test_frozen_parameters_are_left_out() -> None:
    frozen = torch.nn.Parameter(torch.ones(2), requires_grad=False)
    opt = build_optimizer(parse_optimizer({"name": "sgd", "lr": 0.1}), [*_params(), frozen])
    assert len(opt.param_groups[0]["params"]) == 1


@pytest.mark.parametrize("section, message", [
    ({"name": "sgd", "lr": 0.1, "nesterov": True}, "nesterov"),
    ({"name": "adam", "lr": 0.1, "betas": [0.9, 1.5]}, "betas"),
    ({"name": "sgd", "lr": 0.0}, "greater than 0"),
    ({"name": "sgd", "lr": 0.1, "decay": 1e-6}, "Extra inputs"),
])
def test_bad_optimizer_configs(section: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_optimizer(section)


def test_unknown_names() -> None:
    with pytest.raises(InputError, match="optimizer.name: unknown optimizer 'lion'"):
        parse_optimizer({"name": "lion", "lr": 1})
    with pytest.raises(InputError, match="scheduler.name: unknown scheduler"):
        parse_scheduler({"name": "warm"})


def test_inverse_time_follows_the_formula_and_restarts_exactly() -> None:
    opt = torch.optim.SGD(_params(), lr=1e-4)
    sched = build_scheduler(parse_scheduler({"name": "inverse_time", "decay": 1e-2}), opt)
    assert isinstance(sched, InverseTimeDecay)
    for t in range(1, 6):
        opt.step()
        sched.step()
        assert opt.param_groups[0]["lr"] == pytest.approx(1e-4 / (1 + 1e-2 * t))
    assert inverse_time_lr(2.0, 0.5, 2) == 1.0
    state = sched.state_dict()
    restored = InverseTimeDecay(torch.optim.SGD(_params(), lr=1e-4), decay=1e-2)
    restored.load_state_dict(state)
    assert restored.last_epoch == 5


@pytest.mark.parametrize("section, kind", [
    ({"name": "step", "step_size": 2}, torch.optim.lr_scheduler.StepLR),
    ({"name": "multistep", "milestones": [2, 4]}, torch.optim.lr_scheduler.MultiStepLR),
    ({"name": "cosine", "t_max": 10}, HeldCosine),
    ({"name": "exponential", "gamma": 0.9}, torch.optim.lr_scheduler.ExponentialLR),
])
def test_schedulers(section: dict, kind: type) -> None:
    assert isinstance(build_scheduler(parse_scheduler(section), torch.optim.SGD(_params(), lr=1.0)), kind)


def test_no_scheduler_and_lightning_dict() -> None:
    opt_cfg = parse_optimizer({"name": "sgd", "lr": 0.1})
    assert isinstance(lightning_optimizers(opt_cfg, parse_scheduler(None), _params()), torch.optim.SGD)
    out = lightning_optimizers(opt_cfg, parse_scheduler({"name": "inverse_time", "decay": 1e-6}), _params())
    assert out["lr_scheduler"]["interval"] == "step"  # the paper's decay is per iteration
    with pytest.raises(ValidationError, match="strictly increasing"):
        parse_scheduler({"name": "multistep", "milestones": [4, 2]})


def test_cosine_holds_at_eta_min_after_t_max_and_restarts_exactly() -> None:
    from inqnet.modules.inq.schedule import restart_lr

    opt = torch.optim.SGD(_params(), lr=0.1)
    sched = build_scheduler(parse_scheduler({"name": "cosine", "t_max": 4, "eta_min": 0.001}), opt)
    lrs = []
    for _ in range(8):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == 0.1 and lrs[4:] == [0.001] * 4  # torch's periodic cosine climbs back here
    assert all(a > b for a, b in zip(lrs[:4], lrs[1:5]))
    assert lrs[2] == pytest.approx(held_cosine_lr(0.1, 0.001, 4, 2))
    restart_lr([opt], [sched])
    again = []
    for _ in range(4):
        again.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert again == lrs[:4]


@pytest.mark.parametrize("section, phases, message", [
    ({"name": "multistep", "milestones": [20]}, {"each INQ stage": 4}, "milestones: 20 epochs does not fit each INQ stage, which lasts 4"),
    ({"name": "step", "step_size": 5}, {"the float phase": 12, "each INQ stage": 5}, "step_size: 5 epochs .* lasts 5"),
    ({"name": "cosine", "t_max": 12}, {"the float phase": 12, "each INQ stage": 2}, "t_max: 12 epochs .* each INQ stage, which lasts 2"),
])
def test_horizon_that_cannot_fit_its_phase_is_refused(section: dict, phases: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        check_schedule_fits(parse_scheduler(section), phases, "epoch")


def test_horizons_that_fit_and_schedules_of_another_unit_pass() -> None:
    check_schedule_fits(parse_scheduler({"name": "multistep", "milestones": [2, 3]}), {"each INQ stage": 4}, "epoch")
    check_schedule_fits(parse_scheduler({"name": "cosine", "t_max": 4}), {"each INQ stage": 4, "the float phase": 0},
                        "epoch")
    check_schedule_fits(parse_scheduler({"name": "multistep", "milestones": [900], "interval": "step"}),
                        {"each INQ stage": 4}, "epoch")
    with pytest.raises(ValidationError):
        parse_optimizer({"name": "sgd", "lr": float("inf")})
