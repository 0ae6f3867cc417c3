"""Items of a suggestive-annotation pool (whole images or patches) and the suggestions file.

An item id names a training image by its GlaS name (``train_3``) or a patch of it in numpy slice
notation, rows then columns: ``train_3[64:128,0:64]``. Ids are self-contained, so a suggestions
file can be read (and audited) without the settings of the run that wrote it.

``suggestions.json``: ``{"rounds": [{"candidates": {id: uncertainty, ...}, "selected": [ids in
pick order]}, ...]}``; `inq annotate` also writes ``"initial"`` (the ids annotated before round 1)
and ``"unit"``. The annotated set after round r is the initial ids plus every id selected in
rounds 1..r.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inqnet.modules.errors import data_error

Box = tuple[int, int, int, int]  # row start, row stop, column start, column stop
_ID = re.compile(r"^(?P<name>[A-Za-z]+_\d+)(?:\[(?P<r0>\d+):(?P<r1>\d+),(?P<c0>\d+):(?P<c1>\d+)\])?$")


def format_id(name: str, box: Box | None = None) -> str:
    """The item id of image ``name`` or of its patch ``box``."""
    if box is None:
        return name
    r0, r1, c0, c1 = box
    return f"{name}[{r0}:{r1},{c0}:{c1}]"


def parse_id(item_id: str) -> tuple[str, Box | None]:
    """(image name, box or None); ValueError for text that is not an item id."""
    match = _ID.match(item_id.strip()) if isinstance(item_id, str) else None
    if match is None:
        raise ValueError(f"{item_id!r} is not an item id (expected e.g. train_3 or train_3[0:64,64:128])")
    if match.group("r0") is None:
        return match.group("name"), None
    r0, r1, c0, c1 = (int(match.group(k)) for k in ("r0", "r1", "c0", "c1"))
    if r1 <= r0 or c1 <= c0:
        raise ValueError(f"{item_id!r}: empty patch (stop must be after start)")
    return match.group("name"), (r0, r1, c0, c1)


def tile_starts(length: int, size: int) -> list[int]:
    """Starts of size-``size`` tiles covering ``length``: a stride of ``size``, the last tile flush
    with the end (it may overlap its neighbour). One tile at 0 when ``length <= size``."""
    if length <= size:
        return [0]
    starts = list(range(0, length - size + 1, size))
    if starts[-1] + size < length:
        starts.append(length - size)
    return starts


def image_tiles(name: str, height: int, width: int, size: int) -> list[str]:
    """Ids of the patches tiling one image, row by row."""
    return [format_id(name, (r, min(r + size, height), c, min(c + size, width)))
            for r in tile_starts(height, size) for c in tile_starts(width, size)]


def pool_ids(sizes: Mapping[str, tuple[int, int]], unit: str, patch_size: int | None = None) -> list[str]:
    """Every item of a pool of images (name -> (height, width)), in the images' order."""
    if unit == "image":
        return list(sizes)
    if unit != "patch" or patch_size is None:
        raise ValueError(f"unit must be 'image' or 'patch' with a patch size (got {unit!r}, {patch_size!r})")
    return [tile for name, (h, w) in sizes.items() for tile in image_tiles(name, h, w, patch_size)]


def crop(array: np.ndarray, box: Box | None) -> np.ndarray:
    """The patch ``box`` of an (H, W, ...) array (the whole array for None)."""
    if box is None:
        return array
    r0, r1, c0, c1 = box
    return array[r0:r1, c0:c1]


def resolve_ids(ids: Iterable[str], sizes: Mapping[str, tuple[int, int]],
                source: str | Path) -> list[tuple[str, Box | None]]:
    """(image name, box) for each id, checked against the images (name -> (height, width));
    a DataError naming ``source`` and the first bad id otherwise."""
    out = []
    for item_id in ids:
        try:
            name, box = parse_id(item_id)
        except ValueError as err:
            raise data_error(source, str(err)) from None
        if name not in sizes:
            raise data_error(source, f"unknown id {item_id!r}: no training image {name}")
        if box is not None:
            h, w = sizes[name]
            if box[1] > h or box[3] > w:
                raise data_error(source, f"unknown id {item_id!r}: patch outside the {w}x{h} image {name}")
        out.append((name, box))
    return out


@dataclass
class SuggestionRound:
    """One round: the candidates' uncertainties and the ids picked, in pick order."""

    candidates: dict[str, float]
    selected: list[str]


@dataclass
class Suggestions:
    """A suggestions file's content."""

    rounds: list[SuggestionRound] = field(default_factory=list)
    initial: list[str] = field(default_factory=list)
    unit: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"rounds": [{"candidates": r.candidates, "selected": r.selected} for r in self.rounds]}
        data["initial"] = list(self.initial)
        if self.unit is not None:
            data["unit"] = self.unit
        return data

    def annotated(self, rounds: int | None = None, initial: Sequence[str] | None = None) -> list[str]:
        """The annotated ids after ``rounds`` rounds (all by default): ``initial`` (default the
        file's) then the selections, each id once."""
        ids = list(self.initial if initial is None else initial)
        for r in self.rounds[: len(self.rounds) if rounds is None else rounds]:
            ids += r.selected
        return list(dict.fromkeys(ids))


def _ids(value: Any, path: Path, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise data_error(path, f"{where}: expected a list of item ids")
    return list(value)


def parse_suggestions(data: Any, path: Path) -> Suggestions:
    """Validates the JSON of a suggestions file; DataError naming the file and the key otherwise."""
    if not isinstance(data, dict) or not isinstance(data.get("rounds"), list):
        raise data_error(path, 'not a suggestions file: expected {"rounds": [...]}')
    rounds = []
    for r, entry in enumerate(data["rounds"], start=1):
        if not isinstance(entry, dict) or "selected" not in entry:
            raise data_error(path, f"rounds[{r - 1}]: expected an object with 'candidates' and 'selected'")
        candidates = entry.get("candidates", {})
        if not isinstance(candidates, dict) or not all(isinstance(v, (int, float)) for v in candidates.values()):
            raise data_error(path, f"rounds[{r - 1}].candidates: expected {{id: uncertainty}}")
        rounds.append(SuggestionRound({str(k): float(v) for k, v in candidates.items()},
                                      _ids(entry["selected"], path, f"rounds[{r - 1}].selected")))
    initial = _ids(data.get("initial", []), path, "initial")
    unit = data.get("unit")
    return Suggestions(rounds=rounds, initial=initial, unit=unit if isinstance(unit, str) else None)


def read_suggestions(path: str | Path) -> Suggestions:
    """Reads a suggestions file; DataError (one line) if missing, not JSON or malformed."""
    path = Path(path)
    if not path.is_file():
        raise data_error(path, "no such suggestions file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise data_error(path, f"cannot read ({err})") from None
    except json.JSONDecodeError as err:
        raise data_error(path, f"not JSON (line {err.lineno}, column {err.colno}: {err.msg})") from None
    return parse_suggestions(data, path)


__all__ = ["Box", "SuggestionRound", "Suggestions", "crop", "format_id", "image_tiles", "parse_id",
           "parse_suggestions", "pool_ids", "read_suggestions", "resolve_ids", "tile_starts"]
