"""Sweep grids: `--grid inq.bits=2..9 --grid ensemble.members=1,2,3` as axes and their points.

A point renders its values exactly as the W&B agent renders `${args_no_hyphens}` (`key=value` with
Python's `str`), so a point run here and the same point run by an agent get identical overrides.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

from inqnet.cli.config.overrides import is_key, read_value
from inqnet.cli.errors import InqError

_RANGE = re.compile(r"^(-?\d+)\.\.(-?\d+)$")


@dataclass(frozen=True)
class GridAxis:
    """One swept recipe key and the values it takes, in order."""

    key: str
    values: tuple[Any, ...]


def parse_axis(spec: str) -> GridAxis:
    """`key=lo..hi` (integers, both ends included) or `key=a,b,c` -> a GridAxis."""
    key, sep, rhs = spec.partition("=")
    key = key.strip()
    if not sep or not key:
        raise InqError(f"--grid {spec!r}: expected KEY=LO..HI or KEY=A,B,C")
    if not is_key(key):
        raise InqError(f"--grid {spec!r}: {key!r} is not a dotted recipe key like inq.bits")
    rhs = rhs.strip()
    match = _RANGE.match(rhs)
    if match:
        lo, hi = int(match.group(1)), int(match.group(2))
        if lo > hi:
            raise InqError(f"--grid {spec!r}: range {lo}..{hi} is empty (low end above high end)")
        values: tuple[Any, ...] = tuple(range(lo, hi + 1))
    else:
        parts = [p for p in rhs.split(",")]
        if not rhs or any(not p.strip() for p in parts):
            raise InqError(f"--grid {spec!r}: empty value in the list")
        values = tuple(read_value(p, f"--grid {spec!r}") for p in parts)  # read as a `key=value` override
    if len(set(map(repr, values))) != len(values):
        raise InqError(f"--grid {spec!r}: a value appears twice")
    return GridAxis(key=key, values=values)


def parse_axes(specs: list[str]) -> list[GridAxis]:
    """All `--grid` options; a key may be swept only once."""
    if not specs:
        raise InqError("inq sweep: give at least one --grid KEY=VALUES")
    axes = [parse_axis(s) for s in specs]
    keys = [a.key for a in axes]
    for key in keys:
        if keys.count(key) > 1:
            raise InqError(f"--grid: {key} is swept twice")
    return axes


def expand(axes: list[GridAxis]) -> list[dict[str, Any]]:
    """The grid's points in W&B grid order (the first axis varies slowest)."""
    return [dict(zip([a.key for a in axes], combo)) for combo in itertools.product(*(a.values for a in axes))]


def render_value(value: Any) -> str:
    """A value as the W&B agent writes it into `${args_no_hyphens}`."""
    return str(value)


def point_overrides(point: dict[str, Any]) -> list[str]:
    """The `key=value` overrides of one point, in axis order."""
    return [f"{key}={render_value(value)}" for key, value in point.items()]


def point_name(point: dict[str, Any]) -> str:
    """A folder-safe name for a point, e.g. `inq.bits-5_ensemble.members-2`."""
    parts = []
    for key, value in point.items():
        text = re.sub(r"[^A-Za-z0-9.+-]+", "-", render_value(value)).strip("-") or "x"
        parts.append(f"{key}-{text}")
    return "_".join(parts)


BITS_KEY = "inq.bits"
CONTROL_KEY = "inq.control"


def control_axes(axes: list[GridAxis]) -> list[GridAxis]:
    """The grid of float controls for a grid: bits do not change a control, so the bit-width axis is
    dropped and `inq.control=True` added; one control per seed and configuration."""
    return [a for a in axes if a.key != BITS_KEY] + [GridAxis(CONTROL_KEY, (True,))]
