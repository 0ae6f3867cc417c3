"""Pool item ids, tiling, and the suggestions file reader."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from inqnet.modules.errors import DataError
from inqnet.modules.suggestive.items import (Suggestions, SuggestionRound, crop, format_id, image_tiles, parse_id, pool_ids,
                                      read_suggestions, resolve_ids, tile_starts)


def test_ids_round_trip() -> None:
    assert parse_id("train_3") == ("train_3", None)
    assert parse_id(format_id("train_3", (0, 64, 64, 128))) == ("train_3", (0, 64, 64, 128))
    assert format_id("train_3", (0, 64, 64, 128)) == "train_3[0:64,64:128]"
    for bad in ("train", "train_3[0:64]", "train_3[64:0,0:1]", "x/y", ""):
        with pytest.raises(ValueError):
            parse_id(bad)


def test_tiles_cover_the_image() -> None:
    assert tile_starts(128, 64) == [0, 64]
    assert tile_starts(150, 64) == [0, 64, 86]
    assert tile_starts(50, 64) == [0]
    tiles = image_tiles("train_1", 100, 64, 64)
    assert tiles == ["train_1[0:64,0:64]", "train_1[36:100,0:64]"]
    covered = np.zeros((100, 64), bool)
    for t in tiles:
        box = parse_id(t)[1]
        assert crop(covered, box).shape == (64, 64)
        r0, r1, c0, c1 = box
        covered[r0:r1, c0:c1] = True
    assert covered.all()


def test_pool_ids_by_unit() -> None:
    sizes = {"train_1": (128, 128), "train_2": (64, 64)}
    assert pool_ids(sizes, "image") == ["train_1", "train_2"]
    assert len(pool_ids(sizes, "patch", 64)) == 5


def test_resolve_ids_names_the_first_unknown(tmp_path: Path) -> None:
    sizes = {"train_1": (128, 128)}
    assert resolve_ids(["train_1", "train_1[0:64,0:64]"], sizes, "s.json")[1] == ("train_1", (0, 64, 0, 64))
    with pytest.raises(DataError, match="s.json: unknown id 'train_9'"):
        resolve_ids(["train_1", "train_9"], sizes, "s.json")
    with pytest.raises(DataError, match="outside"):
        resolve_ids(["train_1[64:192,0:64]"], sizes, "s.json")


def test_suggestions_file_round_trip_and_annotated_set(tmp_path: Path) -> None:
    s = Suggestions(rounds=[SuggestionRound({"train_2": 0.3, "train_3": 0.2}, ["train_2"]),
                            SuggestionRound({"train_3": 0.1}, ["train_3"])], initial=["train_1"], unit="image")
    path = tmp_path / "suggestions.json"
    path.write_text(json.dumps(s.to_json()))
    back = read_suggestions(path)
    assert back == s
    assert back.annotated() == ["train_1", "train_2", "train_3"]
    assert back.annotated(rounds=1) == ["train_1", "train_2"]
    assert back.annotated(initial=[]) == ["train_2", "train_3"]


@pytest.mark.parametrize("text, message", [
    ("{", "not JSON"),
    ('{"rounds": 3}', "not a suggestions file"),
    ('{"rounds": [{"candidates": {}}]}', "rounds\\[0\\]"),
    ('{"rounds": [{"candidates": {"a": "x"}, "selected": []}]}', "candidates"),
    ('{"rounds": [{"candidates": {}, "selected": [1]}]}', "selected"),
])
def test_malformed_suggestions_give_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "s.json"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as info:
        read_suggestions(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    with pytest.raises(DataError, match="no such suggestions file"):
        read_suggestions(tmp_path / "missing.json")
