"""Checks behind `inq verify`: frozen INQ weights must equal their own quantization (be in P)."""
from __future__ import annotations

from dataclasses import dataclass

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
