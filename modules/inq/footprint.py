"""Weight memory of an INQ model: b bits per quantized weight vs 32 bits per float parameter.

The one home of INQ's progress figures: the frozen fraction, the compression ratio (logged during
training by `monitor.InqTracker` and the callback) and the footprint `inq verify` and the run
summary print.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from torch import nn

if TYPE_CHECKING:
    from inqnet.modules.inq import LayerReport

FLOAT_BITS = 32


class _Layer(Protocol):
    bits: int
    numel: int
    frozen_fraction: float


def reduction(weights: float, quantized: float, quantized_bits: float) -> float:
    """Float size of ``weights`` entries over their size when ``quantized`` of them take
    ``quantized_bits`` bits in all and the rest FLOAT_BITS each; 1.0 when there is nothing."""
    stored = quantized_bits + FLOAT_BITS * (weights - quantized)
    return FLOAT_BITS * weights / stored if stored else 1.0


def frozen_fraction(layers: Iterable[_Layer]) -> float:
    """Fraction of all quantizable weights that are frozen (weighted by layer size)."""
    layers = list(layers)
    total = sum(layer.numel for layer in layers)
    return sum(layer.numel * layer.frozen_fraction for layer in layers) / total if total else 0.0


def compression_ratio(layers: Iterable[_Layer]) -> float:
    """32-bit storage of the quantizable weights over their storage now: frozen entries take
    `bits` bits, the float remainder 32. Fully quantized at b bits this is 32/b (5 bits -> 6.4)."""
    layers = list(layers)
    frozen = [layer.numel * layer.frozen_fraction for layer in layers]
    return reduction(sum(layer.numel for layer in layers), sum(frozen),
                     sum(f * int(layer.bits) for f, layer in zip(frozen, layers)))


@dataclass(frozen=True)
class Footprint:
    """Counts over a model's parameters (entries, not tensors)."""

    parameters: int  # every parameter entry
    inq_weights: int  # entries of the layers INQ covers (started or not)
    quantized: int  # entries frozen to a value in P
    quantized_bits: int  # sum of bit widths over the quantized entries
    bits: tuple[int, ...]  # distinct bit widths in use

    @property
    def quantized_fraction(self) -> float:
        """Share of the INQ-covered weights that are quantized (1.0 after the last stage)."""
        return self.quantized / self.inq_weights if self.inq_weights else 0.0

    @property
    def parameter_fraction(self) -> float:
        """Share of all parameters that are quantized (biases and norms stay float)."""
        return self.quantized / self.parameters if self.parameters else 0.0

    @property
    def quantized_reduction(self) -> float:
        """32/b over the quantized weights alone (5 bits -> 6.4x); 1.0 when nothing is quantized."""
        return reduction(self.quantized, self.quantized, self.quantized_bits)

    @property
    def model_reduction(self) -> float:
        """Float size over quantized size, measured over all the model's parameters."""
        return reduction(self.parameters, self.quantized, self.quantized_bits)


def footprint_from_reports(reports: Iterable[LayerReport], parameters: int) -> Footprint:
    """Footprint from `inqnet.modules.inq.layer_report` rows and the model's parameter count."""
    inq_weights = quantized = quantized_bits = 0
    bits: set[int] = set()
    for row in reports:
        inq_weights += row.numel
        if row.started:
            frozen = int(round(row.frozen_fraction * row.numel))
            quantized += frozen
            quantized_bits += frozen * int(row.bits)
            if frozen:
                bits.add(int(row.bits))
    return Footprint(parameters, inq_weights, quantized, quantized_bits, tuple(sorted(bits)))


def model_footprint(model: nn.Module) -> Footprint:
    """The footprint of a model holding INQ state (see inqnet.modules.inq)."""
    from inqnet.modules.inq import layer_report

    return footprint_from_reports(layer_report(model), sum(p.numel() for p in model.parameters()))
