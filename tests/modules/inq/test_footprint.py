"""Weight-memory accounting: 32/b on quantized weights, measured over all parameters."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from inqnet.modules.inq.footprint import footprint_from_reports


@dataclass
class Row:
    numel: int
    bits: int
    frozen_fraction: float
    started: bool = True


def test_fully_quantized_5_bit() -> None:
    foot = footprint_from_reports([Row(900, 5, 1.0), Row(90, 5, 1.0)], parameters=1000)
    assert foot.quantized == 990 and foot.bits == (5,)
    assert foot.quantized_fraction == 1.0 and foot.parameter_fraction == pytest.approx(0.99)
    assert foot.quantized_reduction == pytest.approx(6.4)
    assert foot.model_reduction == pytest.approx(32 * 1000 / (5 * 990 + 32 * 10))


def test_partial_and_unstarted_layers() -> None:
    foot = footprint_from_reports([Row(100, 4, 0.5), Row(100, 0, 0.0, started=False)], parameters=200)
    assert foot.quantized == 50 and foot.quantized_fraction == 0.25
    assert foot.quantized_reduction == pytest.approx(8.0)
    assert foot.model_reduction == pytest.approx(32 * 200 / (4 * 50 + 32 * 150))


def test_float_model() -> None:
    foot = footprint_from_reports([], parameters=10)
    assert (foot.quantized_reduction, foot.model_reduction, foot.bits) == (1.0, 1.0, ())


def test_progress_metrics_have_one_owner() -> None:
    """Frozen fraction and compression ratio live here; the W&B/CSV tracker uses these very functions."""
    from inqnet.modules.inq import footprint, monitor

    assert monitor.frozen_fraction is footprint.frozen_fraction
    assert monitor.compression_ratio is footprint.compression_ratio
    assert not hasattr(monitor, "FLOAT_BITS")
    rows = [Row(300, 5, 1.0), Row(100, 4, 0.5)]
    assert footprint.frozen_fraction(rows) == pytest.approx(350 / 400)
    assert footprint.compression_ratio(rows) == pytest.approx(32 * 400 / (300 * 5 + 50 * 4 + 50 * 32))
    # the same accounting as the footprint over the INQ layers alone
    assert footprint.compression_ratio(rows) == pytest.approx(footprint_from_reports(rows, 400).model_reduction)
    assert footprint.compression_ratio([]) == 1.0 and footprint.frozen_fraction([]) == 0.0
