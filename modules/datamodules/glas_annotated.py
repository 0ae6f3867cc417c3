"""GlaS training restricted to annotated items (whole images or patches) named by their ids.

Used on both sides of Suggestive Annotation: the suggestive FCNs train on bootstrap samples of the
annotated set (ids may repeat), and network training (NT) trains on the set a suggestions file
names (`data.suggestions`). Each annotated item is a source of random training patches, as a whole
image is in plain GlaS training.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from modules.datamodules.glas import GlasItem, GlasPatches, load_pair
from modules.errors import data_error
from modules.suggestive.items import crop, read_suggestions, resolve_ids

Pair = tuple[np.ndarray, np.ndarray]


def load_train_pairs(items: Sequence[GlasItem]) -> dict[str, Pair]:
    """Image name -> (image, instance labels) for every training image."""
    return {item.name: load_pair(item) for item in items}


def image_sizes(pairs: dict[str, Pair]) -> dict[str, tuple[int, int]]:
    """Image name -> (height, width)."""
    return {name: labels.shape[:2] for name, (_, labels) in pairs.items()}


def annotated_pairs(pairs: dict[str, Pair], ids: Sequence[str], source: str | Path) -> list[Pair]:
    """The (image, labels) crop of every id, in order (repeats kept); DataError naming ``source``
    and the first id that is not a training image or a patch inside one."""
    return [(crop(pairs[name][0], box), crop(pairs[name][1], box))
            for name, box in resolve_ids(ids, image_sizes(pairs), source)]


def patch_dataset(pairs: list[Pair], patch_size: int, patches_per_item: int, rotate: bool, flip: bool,
                  seed: int) -> GlasPatches:
    """Random training patches drawn from the given (image, labels) pairs."""
    dataset = GlasPatches([], patch_size, patches_per_item, rotate, flip, seed)
    dataset.pairs = list(pairs)
    return dataset


def suggested_ids(path: str | Path, initial: Sequence[str] | None = None, rounds: int | None = None) -> list[str]:
    """The annotated ids a suggestions file gives after ``rounds`` rounds (default all), starting
    from ``initial`` (default the file's own initial set); DataError if that selects nothing."""
    suggestions = read_suggestions(path)
    if rounds is not None and rounds > len(suggestions.rounds):
        raise data_error(path, f"has {len(suggestions.rounds)} rounds, fewer than the {rounds} asked for")
    ids = suggestions.annotated(rounds=rounds, initial=initial)
    if not ids:
        raise data_error(path, "names no annotated item (no initial ids and no selections)")
    return ids
