"""INQCallback: Incremental Network Quantization for any LightningModule.

Stage k (of the accumulated portions σ1 < … < σN = 1) starts at epoch ``float_epochs + k *
epochs_per_stage`` (or at that optimizer step in step mode). Before the first batch of a stage each
quantized layer freezes its largest-magnitude unfrozen weights, rounded into P, until σk of it is
frozen. Frozen entries are held bit-exact whatever the optimizer: their gradients are zeroed before
each step, the weights are put back after it, and optimizer state for them is cleared at each stage.

State the model needs (masks, n1, bits) lives in buffers (see ``state.py``), so checkpoints carry it;
the callback itself only keeps ``stages_done``.

With ``control=True`` the callback runs the same clock (stage starts, learning-rate restarts,
optimizer state) but freezes and rounds nothing and attaches no INQ buffers: the float control at
equal budget that an INQ run is compared with.
"""
from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_only
from torch import Tensor

from inqnet.kernels.packing import check_bits, lowest_exponent
from inqnet.modules.inq.footprint import frozen_fraction
from inqnet.modules.inq.math import exponent_range, freeze_stage_, max_abs, validate_portions
from inqnet.modules.inq.schedule import InqClock, restart_lr, set_phase_length
from inqnet.modules.inq.state import BITS, MASK, N1, UNSET, Target, attach_buffers, layer_report, select_targets

_UNSUPPORTED_STRATEGIES = ("FSDP", "DeepSpeed", "ModelParallel")
ZERO_SHARE_WARNING = 0.5  # a layer with more of its weights rounding to 0 gets a warning line


def zero_share(weight: Tensor, bits: int, n1: int) -> float:
    """Share of ``weight`` below 2^(n2-1), which INQ rounds to 0 (the whole layer, frozen or not)."""
    bound = math.ldexp(1.0, lowest_exponent(bits, n1) - 1)
    return float((weight.detach().abs() < bound).sum()) / max(1, weight.numel())


@rank_zero_only
def _warn_line(line: str) -> None:
    """One line on stderr: Python warnings go to the run's log, and this one is for the user."""
    print(line, file=sys.stderr, flush=True)


class INQCallback(pl.Callback):
    """Quantize conv/linear weights to {0, ±2^k} incrementally while training the rest.

    Args:
        bits: bit width b in [2, 9] (one code is reserved for zero).
        portions: accumulated frozen portions, strictly increasing, ending at 1.
        epochs_per_stage: epochs between stages (epoch mode).
        float_epochs: epochs of plain float training before the first stage.
        steps_per_stage: if set, stages are counted in optimizer steps instead of epochs.
        float_steps: float steps before the first stage (step mode).
        max_value: fixed s for n1 = floor(log2(4s/3)) instead of each layer's max |W|.
        include: glob patterns of parameter names to quantize (replaces the default choice).
        exclude: glob patterns of parameter names to keep float.
        strategy: "magnitude" (largest |w| first, the paper's) or "random".
        restart_lr: restart the learning-rate schedule at each stage (the paper's practice).
        seed: seed of the random partition (identical on every rank).
        log_stats: log frozen/zero fractions and n1/n2 per layer at each stage.
        control: keep the schedule (stage starts, lr restarts) but quantize nothing (a float control).
    """

    def __init__(
        self,
        bits: int = 5,
        portions: Sequence[float] = (0.5, 0.75, 0.875, 1.0),
        epochs_per_stage: int = 2,
        float_epochs: int = 0,
        steps_per_stage: int | None = None,
        float_steps: int = 0,
        max_value: float | None = None,
        include: Sequence[str] | None = None,
        exclude: Sequence[str] = (),
        strategy: str = "magnitude",
        restart_lr: bool = True,
        seed: int = 0,
        log_stats: bool = True,
        control: bool = False,
    ) -> None:
        self.bits = check_bits(bits)
        self.portions = validate_portions(portions)
        self.clock = InqClock.of(len(self.portions), epochs_per_stage=epochs_per_stage, float_epochs=float_epochs,
                                 steps_per_stage=steps_per_stage, float_steps=float_steps)
        if max_value is not None and not float(max_value) > 0:
            raise ValueError(f"max_value must be > 0 (got {max_value!r})")
        if strategy not in ("magnitude", "random"):
            raise ValueError(f"strategy must be 'magnitude' or 'random' (got {strategy!r})")
        self.max_value = max_value
        self.include = list(include) if include is not None else None
        self.exclude = list(exclude)
        self.strategy = strategy
        self.restart_lr = restart_lr
        self.seed = seed
        self.log_stats = log_stats
        self.control = control
        self.stages_done = 0
        self.zero_shares: dict[str, float] = {}  # per layer, when its n1 was fixed (summary.json)
        self._targets: list[Target] = []
        self._hooks: list[Any] = []
        self._saved: dict[int, Tensor] = {}
        self._by_optimizer: dict[int, list[Target]] = {}
        self._grads_masked = False

    # ------------------------------------------------------------------ Lightning hooks
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        name = type(trainer.strategy).__name__
        if any(s in name for s in _UNSUPPORTED_STRATEGIES):
            raise ValueError(f"INQCallback does not support the {name} strategy (parameters are sharded); use DDP")
        self._targets = select_targets(pl_module, self.include, self.exclude)
        if not self._targets:
            raise ValueError("INQCallback found no parameter to quantize (check include/exclude patterns)")
        if not self.control:
            for target in self._targets:
                attach_buffers(target, self.bits)
        if stage == "fit":
            self._check_length(trainer)

    def _check_length(self, trainer: pl.Trainer) -> None:
        clock = self.clock
        limit = getattr(trainer, clock.limit_key)
        if limit is not None and limit != -1 and limit < clock.min_length:
            raise ValueError(
                f"INQ's last stage starts at {clock.unit} {clock.last_stage_start}, so it needs "
                f"{clock.limit_key} >= {clock.min_length} (got {limit}): raise trainer.{clock.limit_key} or "
                "shorten the schedule")

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.control:
            for optimizer in trainer.optimizers:
                for group in optimizer.param_groups:
                    group.setdefault("initial_lr", group["lr"])
            self._tick(trainer, pl_module, "batch")
            return
        for target in self._targets:
            if int(target.buffer(BITS)) != self.bits:
                raise ValueError(f"{target.name} was quantized with {int(target.buffer(BITS))} bits, "
                                 f"not {self.bits}: resume with the same inq.bits")
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
            owned = {id(p) for group in optimizer.param_groups for p in group["params"]}
            self._by_optimizer[id(optimizer)] = [t for t in self._targets if id(t.param) in owned]
            self._hooks.append(optimizer.register_step_pre_hook(self._before_step))
            self._hooks.append(optimizer.register_step_post_hook(self._after_step))
        self._tick(trainer, pl_module, "batch")  # a step clock: catch up before the first batch

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._tick(trainer, pl_module, "epoch")

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        self._tick(trainer, pl_module, "batch")

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        # Before gradient clipping, so frozen gradients do not count in the norm.
        if self.control:
            return
        self._mask_grads()
        self._grads_masked = True

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._remove_hooks()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._remove_hooks()

    def state_dict(self) -> dict[str, Any]:
        return {"stages_done": self.stages_done, "bits": self.bits, "portions": list(self.portions),
                "control": self.control, "zero_shares": dict(self.zero_shares)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.stages_done = int(state_dict["stages_done"])
        self.zero_shares = {str(k): float(v) for k, v in dict(state_dict.get("zero_shares", {})).items()}

    # ------------------------------------------------------------------ frozen stays frozen
    def _mask_grads(self) -> None:
        for target in self._targets:
            grad = target.param.grad
            if grad is not None:
                grad.masked_fill_(target.buffer(MASK), 0)

    def _before_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if not self._grads_masked:
            self._mask_grads()
        self._grads_masked = False
        # Under Lightning the step runs the closure (forward, backward) after this hook, so whether a
        # parameter will get a gradient is not known yet: save every target of this optimizer.
        if self.stages_done > 0:
            self._saved = {id(t.param): t.param.detach().clone() for t in self._by_optimizer.get(id(optimizer), ())}

    def _after_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        with torch.no_grad():
            for target in self._targets:
                saved = self._saved.get(id(target.param))
                if saved is not None:
                    target.param.copy_(torch.where(target.buffer(MASK), saved, target.param))
        self._saved = {}

    def _remove_hooks(self) -> None:
        for handle in self._hooks:
            handle.remove()
        self._hooks, self._by_optimizer = [], {}

    # ------------------------------------------------------------------ stages
    def _tick(self, trainer: pl.Trainer, pl_module: pl.LightningModule, hook: str) -> None:
        position = self.clock.tick(trainer, hook)
        if position is None:  # not where this clock ticks
            return
        due = self.clock.stages_due(position)
        if due <= self.stages_done:
            return
        while self.stages_done < due:
            if not self.control:
                self.apply_stage(self.stages_done)
            self.stages_done += 1
        if not self.control:
            self._clear_optimizer_state(trainer.optimizers)
        if self.restart_lr:
            schedulers = [cfg.scheduler for cfg in trainer.lr_scheduler_configs]
            restart_lr(trainer.optimizers, schedulers)
            set_phase_length(schedulers, self._phase_length(trainer))
        if self.log_stats:
            self._log(trainer)

    def _phase_length(self, trainer: pl.Trainer) -> int:
        """Length of the phase the run is in (the schedule's horizon when it follows its phase)."""
        phases = self.clock.phases(getattr(trainer, self.clock.limit_key, None))
        if self.stages_done == 0:
            return phases["the float phase"]
        if self.stages_done < self.clock.stages:
            return phases["each INQ stage"]
        return phases["the last INQ stage"]

    @torch.no_grad()
    def apply_stage(self, stage: int) -> None:
        """Freeze every target up to portion σ_stage (fixing n1 the first time). Pure in the weights."""
        portion = self.portions[stage]
        for index, target in enumerate(self._targets):
            weight, mask, n1_buf = target.param, target.buffer(MASK), target.buffer(N1)
            if int(n1_buf) == UNSET:
                s = self.max_value if self.max_value is not None else max_abs(weight)
                n1_buf.fill_(exponent_range(s, self.bits)[0] if s > 0 else 0)
                self._check_zero_share(target.name, weight, int(n1_buf))
            gen = None
            if self.strategy == "random":
                gen = torch.Generator().manual_seed(self.seed * 1_000_003 + stage * 7919 + index)
            freeze_stage_(weight, mask, portion, self.bits, int(n1_buf), self.strategy, gen)

    def _check_zero_share(self, name: str, weight: Tensor, n1: int) -> None:
        """Record the share of the layer that rounds to 0 once n1 is fixed; over half is a warning
        line naming its cause (the layer's max |w| against n1, and inq.max_value if it was set)."""
        share = zero_share(weight, self.bits, n1)
        self.zero_shares[name] = share
        if share > ZERO_SHARE_WARNING:
            cause = (f"inq.max_value={self.max_value:g} fixes n1" if self.max_value is not None
                     else "n1 comes from the layer's max |w|")
            _warn_line(f"warning: inq: {name}: {100 * share:.0f}% of its weights round to 0 at {self.bits} bits "
                       f"(max |w| = {max_abs(weight):.4g}, n1 = {n1}, smallest level 2^{lowest_exponent(self.bits, n1)}; "
                       f"{cause})")

    def _clear_optimizer_state(self, optimizers: Sequence[torch.optim.Optimizer]) -> None:
        for optimizer in optimizers:
            for target in self._targets:
                state = optimizer.state.get(target.param)
                for value in (state or {}).values():
                    if isinstance(value, Tensor) and value.shape == target.param.shape:
                        value.masked_fill_(target.buffer(MASK), 0)

    @rank_zero_only
    def _log(self, trainer: pl.Trainer) -> None:
        if self.control:
            for logger in trainer.loggers:
                logger.log_metrics({"inq/stage": float(self.stages_done)}, step=trainer.global_step)
            return
        rows = layer_report(trainer.lightning_module)
        total = sum(r.numel for r in rows)
        metrics: dict[str, float] = {
            "inq/stage": float(self.stages_done),
            "inq/frozen_fraction": frozen_fraction(rows),
            "inq/zero_fraction": sum(r.zero_fraction * r.numel for r in rows) / total,
        }
        for r in rows:
            metrics[f"inq/{r.name}/frozen_fraction"] = r.frozen_fraction
            metrics[f"inq/{r.name}/zero_fraction"] = r.zero_fraction
            metrics[f"inq/{r.name}/n1"] = float(r.n1) if r.n1 is not None else float("nan")
            metrics[f"inq/{r.name}/n2"] = float(r.n2) if r.n2 is not None else float("nan")
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)

    @property
    def finished(self) -> bool:
        """True once the last stage (σN = 1) has been applied."""
        return self.stages_done >= self.clock.stages
