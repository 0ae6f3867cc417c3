"""Checks behind `inq verify`: every weight finite, frozen INQ weights equal to their own
quantization (in P)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from inqnet.modules.inq import LayerReport, in_levels, layer_report, tracked_targets
from inqnet.modules.inq.state import BITS, MASK, N1, UNSET

FULL = 1.0 - 1e-9


def frozen_outside_p(model: nn.Module) -> dict[str, int]:
    """For each INQ-tracked parameter (by dotted name), how many frozen entries are not in P."""
    counts: dict[str, int] = {}
    for target in tracked_targets(model):
        mask = target.buffer(MASK).bool()
        n1 = int(target.buffer(N1))
        if n1 == UNSET:  # INQ not started: nothing may be frozen yet
            counts[target.name] = int(mask.sum())
            continue
        inside = in_levels(target.param.detach(), int(target.buffer(BITS)), n1)
        counts[target.name] = int((mask & ~inside).sum())
    return counts


@dataclass(frozen=True)
class LayerCheck:
    """A layer's report and whether it passes."""

    report: LayerReport
    outside_p: int  # frozen entries outside P

    @property
    def ok(self) -> bool:
        return self.outside_p == 0 and (not self.report.fully_quantized or self.report.in_p_fraction >= FULL)

    @property
    def status(self) -> str:
        if not self.ok:
            return f"FAIL ({self.outside_p} frozen outside P)" if self.outside_p else "FAIL (weights outside P)"
        if self.report.fully_quantized:
            return "ok"
        return "partial" if self.report.started else "float"


def verify_layers(model: nn.Module) -> list[LayerCheck]:
    """One check per row of `layer_report(model)`."""
    outside = frozen_outside_p(model)
    checks = []
    for report in layer_report(model):
        checks.append(LayerCheck(report=report, outside_p=outside.get(report.name, 0)))
    return checks


@dataclass(frozen=True)
class NonFinite:
    """The first tensor holding NaN or inf, how many such entries it has, how many such tensors."""

    name: str
    count: int
    tensors: int

    def message(self) -> str:
        others = f" (and {self.tensors - 1} more tensor(s))" if self.tensors > 1 else ""
        return f"tensor {self.name} holds {self.count:,} non-finite value(s) (NaN/inf){others}"


def non_finite(tensors: Mapping[str, torch.Tensor] | Iterable[tuple[str, torch.Tensor]]) -> NonFinite | None:
    """The first floating tensor (in state-dict order) with a NaN or inf entry, else None: a model
    trained into NaN may still be "in P" by accident, so this check comes first."""
    items = tensors.items() if isinstance(tensors, Mapping) else tensors
    first: tuple[str, int] | None = None
    bad = 0
    for name, tensor in items:
        if not (tensor.is_floating_point() or tensor.is_complex()):
            continue
        count = int((~torch.isfinite(tensor.detach())).sum())
        if count:
            bad += 1
            first = first or (name, count)
    return None if first is None else NonFinite(first[0], first[1], bad)
