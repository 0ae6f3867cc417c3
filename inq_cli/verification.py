"""Checks behind `inq verify`: frozen INQ weights must equal their own quantization (be in P)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from modules.inq import LayerReport, layer_report, quantize

MASK_SUFFIX = "_inq_mask"
FULL = 1.0 - 1e-9


def frozen_outside_p(model: nn.Module) -> dict[str, int]:
    """For each INQ-quantized parameter (by full name), how many frozen entries are not in P."""
    counts: dict[str, int] = {}
    for module_name, module in model.named_modules():
        for buffer_name, mask in module.named_buffers(recurse=False):
            if not buffer_name.endswith(MASK_SUFFIX):
                continue
            param = buffer_name[: -len(MASK_SUFFIX)]
            weight = getattr(module, param).detach()
            bits = int(getattr(module, f"{param}_inq_bits"))
            n1 = int(getattr(module, f"{param}_inq_n1"))
            outside = (weight != quantize(weight, bits, n1)) & mask.to(torch.bool)
            counts[f"{module_name}.{param}" if module_name else param] = int(outside.sum())
    return counts


@dataclass(frozen=True)
class LayerCheck:
    """A layer's report and whether it passes."""

    report: LayerReport
    outside_p: int  # frozen entries outside P

    @property
    def fully_quantized(self) -> bool:
        return bool(self.report.started) and self.report.frozen_fraction >= FULL

    @property
    def ok(self) -> bool:
        return self.outside_p == 0 and (not self.fully_quantized or self.report.in_p_fraction >= FULL)

    @property
    def status(self) -> str:
        if not self.ok:
            return f"FAIL ({self.outside_p} frozen outside P)" if self.outside_p else "FAIL (weights outside P)"
        if self.fully_quantized:
            return "ok"
        return "partial" if self.report.started else "float"


def verify_layers(model: nn.Module) -> list[LayerCheck]:
    """One check per row of `layer_report(model)`."""
    outside = frozen_outside_p(model)
    checks = []
    for report in layer_report(model):
        count = outside.get(report.name, outside.get(f"{report.name}.weight", 0))
        checks.append(LayerCheck(report=report, outside_p=count))
    return checks
